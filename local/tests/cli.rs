//! `replay` and `watch` against a running local stack: in-process, as the binary runs them over
//! TLS (`https://` + `wss://` with a stage path, a self-signed certificate trusted through
//! `SSL_CERT_FILE`), and against hostile HTTP servers.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use mcpush_local::aws::http_api;
use mcpush_local::tools::replay;
use mcpush_local::tools::watch::{self, Ending, Endpoints, Timing, Watched};
use mcpush_local::{Local, Options, local};
use reqwest::Url;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn fixture(name: &str) -> String {
    format!("{}/../tests/fixtures/eventbridge/{name}", env!("CARGO_MANIFEST_DIR"))
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

async fn start() -> (String, Local) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let options = Options { batch_window: Duration::from_millis(20), ..Options::default() };
    let stack = local(&base, options);
    let app = stack.router.clone();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, stack)
}

async fn replay(base: &str, files: &[String]) -> (usize, String) {
    let client = replay::lambda_client(Some(base), std::time::Duration::from_secs(10)).await;
    let mut out = Vec::new();
    let rejected = replay::replay(&client, "progress-ingest", files, &mut out, ProgressBar::hidden()).await.unwrap();
    (rejected, String::from_utf8(out).unwrap())
}

fn endpoints(base: &str) -> Endpoints {
    Endpoints::new(&Url::parse(base).unwrap(), None, None).unwrap()
}

fn hls_files() -> Vec<String> {
    ["hls-1-progressing.json", "hls-3-status-update-25.json", "hls-5-status-update-70.json", "hls-6-complete.json"]
        .iter()
        .map(|f| fixture(f))
        .collect()
}

#[tokio::test]
async fn replay_invokes_with_json_and_json_lines_and_counts_rejections() {
    let (base, _stack) = start().await;
    let lines = std::env::temp_dir().join(format!("replay-{}.jsonl", std::process::id()));
    let progressing = std::fs::read_to_string(fixture("hls-1-progressing.json")).unwrap();
    let no_status = std::fs::read_to_string(fixture("malformed-no-status.json")).unwrap();
    let compact = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap().to_string();
    std::fs::write(&lines, format!("{}\n{}\n", compact(&progressing), compact(&no_status))).unwrap();

    let (rejected, printed) = replay(&base, &[lines.display().to_string(), fixture("hls-6-complete.json")]).await;

    assert_eq!(rejected, 1, "{printed}");
    assert!(printed.contains(":2: rejected: detail.status is missing"), "{printed}");
    assert!(printed.ends_with("2 replayed, 1 rejected\n"), "{printed}");
    let (status, body) =
        common::http("GET", &format!("{base}/media/job_id?input_file=Big%20Buck%20Bunny.mp4"), None).await.unwrap();
    assert_eq!((status, body.as_str()), (200, r#"{"success": true, "job_id": "1700000000000-bbbhls"}"#));
}

#[tokio::test]
async fn replay_names_a_function_the_api_does_not_know() {
    let (base, _stack) = start().await;
    let client = replay::lambda_client(Some(&base), std::time::Duration::from_secs(10)).await;
    let err = replay::replay(
        &client,
        "no-such-function",
        &[fixture("hls-6-complete.json")],
        &mut Vec::new(),
        ProgressBar::hidden(),
    )
    .await
    .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("no-such-function") && message.contains("Function not found"), "{message}");
}

#[tokio::test]
async fn watch_follows_the_job_over_the_websocket_to_complete() {
    let (base, _stack) = start().await;
    let watching = tokio::spawn({
        let base = base.clone();
        async move {
            let mut out = Vec::new();
            let ending = watch::watch(
                &endpoints(&base),
                Watched { input_file: "Big Buck Bunny.mp4", token: None },
                Timing { poll: Duration::from_millis(50), ..Timing::default() },
                &mut out,
                ProgressBar::hidden(),
            )
            .await
            .unwrap();
            (ending, String::from_utf8(out).unwrap())
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    replay(&base, &hls_files()).await;
    let (ending, printed) = tokio::time::timeout(Duration::from_secs(10), watching).await.unwrap().unwrap();
    assert!(matches!(ending, Ending::Complete(_)), "{printed}");
    assert!(printed.contains("100% COMPLETE"), "{printed}");
    assert!(printed.contains("596458 ms, 1280x720, Big Buck Bunny.mp4_test/Big Buck Bunny.m3u8"), "{printed}");
    assert!(!printed.contains("polling"), "{printed}");
    // Its output is no terminal, and it said what it waited for before the job existed, once.
    assert!(printed.starts_with("no job for Big Buck Bunny.mp4 yet: waiting for one to start\n"), "{printed}");
    assert_eq!(printed.matches("waiting for one").count(), 1, "{printed}");
}

#[tokio::test]
async fn watch_reaches_the_final_state_by_re_checking_when_every_push_is_lost() {
    // GIVEN a watcher subscribed over the WebSocket, re-checking every 200 ms
    let (base, stack) = start().await;
    let watching = tokio::spawn({
        let base = base.clone();
        async move {
            let mut out = Vec::new();
            let timing =
                Timing { poll: Duration::from_millis(50), recheck: Duration::from_millis(200), ..Timing::default() };
            let ending = watch::watch(
                &endpoints(&base),
                Watched { input_file: "Big Buck Bunny.mp4", token: None },
                timing,
                &mut out,
                ProgressBar::hidden(),
            )
            .await
            .unwrap();
            (ending, String::from_utf8(out).unwrap())
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while stack.api.counters.delivered.load(std::sync::atomic::Ordering::Relaxed) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // WHEN the Management API refuses every post from then on, and the job runs to COMPLETE
    stack.api.set_fault_rate(1.0);
    replay(&base, &hls_files()).await;

    // THEN the watcher still ends with COMPLETE, though no status was pushed to it
    let (ending, printed) = tokio::time::timeout(Duration::from_secs(10), watching).await.unwrap().unwrap();
    assert!(matches!(ending, Ending::Complete(_)), "{printed}");
    assert!(printed.contains("100% COMPLETE"), "{printed}");
    assert_eq!(
        stack.api.counters.delivered.load(std::sync::atomic::Ordering::Relaxed),
        1,
        "only `subscribed` was delivered"
    );
}

#[tokio::test]
async fn watch_falls_back_to_rest_polling_and_reports_an_error() {
    let (base, stack) = start().await;
    // The same stack's REST API alone: the WebSocket upgrade at /ws is not there.
    let rest_only = serve(http_api::router(stack.stack.clone())).await;
    replay(&base, &[fixture("error.json")]).await;
    let mut out = Vec::new();
    let ending = watch::watch(
        &endpoints(&rest_only),
        Watched { input_file: "broken.mp4", token: None },
        Timing { poll: Duration::from_millis(50), ..Timing::default() },
        &mut out,
        ProgressBar::hidden(),
    )
    .await
    .unwrap();
    let printed = String::from_utf8(out).unwrap();
    assert!(matches!(ending, Ending::Failed(_)), "{printed}");
    assert!(printed.contains("polling"), "{printed}");
    assert!(printed.contains("No parser found for container"), "{printed}");
}

/// A request the REST API got: its URI, its `If-None-Match` and the answer's status.
type Seen = (String, Option<String>, u16);

#[tokio::test]
async fn watch_long_polls_with_the_tag_it_holds_and_asks_again_as_soon_as_it_is_answered() {
    // GIVEN a job at 25 %, behind the REST API alone (no WebSocket), every request recorded
    let (base, stack) = start().await;
    replay(&base, &[fixture("hls-3-status-update-25.json")]).await;
    let seen: Arc<std::sync::Mutex<Vec<Seen>>> = Arc::default();
    let record = {
        let seen = seen.clone();
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let seen = seen.clone();
            async move {
                let uri = request.uri().to_string();
                let tag = request.headers().get("if-none-match").and_then(|v| v.to_str().ok()).map(str::to_owned);
                let response = next.run(request).await;
                seen.lock().unwrap().push((uri, tag, response.status().as_u16()));
                response
            }
        }
    };
    let rest_only = serve(http_api::router(stack.stack.clone()).layer(axum::middleware::from_fn(record))).await;
    // WHEN watch polls it (a 3 s timeout: waits of 2 s) and the job completes 2.5 s later
    let finish = tokio::spawn({
        let base = base.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(2500)).await;
            replay(&base, &[fixture("hls-6-complete.json")]).await;
        }
    });
    let started = Instant::now();
    let ending = watch::watch(
        &endpoints(&rest_only),
        Watched { input_file: "Big Buck Bunny.mp4", token: None },
        Timing { poll: Duration::from_millis(50), wait: Duration::from_secs(3), ..Timing::default() },
        &mut Vec::new(),
        ProgressBar::hidden(),
    )
    .await
    .unwrap();
    finish.await.unwrap();
    // THEN it read the state once, then held requests with its tag until the job completed: a
    // handful of requests where 50 ms polls would have made fifty
    assert!(matches!(ending, Ending::Complete(_)));
    let seen: Vec<_> =
        seen.lock().unwrap().iter().filter(|(uri, ..)| uri.starts_with("/media/status")).cloned().collect();
    assert!(seen.len() <= 5, "{seen:?}");
    assert_eq!((seen[0].1.as_deref(), seen[0].2), (None, 200), "{seen:?}");
    for (uri, tag, _) in &seen[1..] {
        assert!(uri.contains("wait=2") && tag.as_deref() == Some("\"1700000000000-bbbhls.1\""), "{seen:?}");
    }
    assert_eq!(seen.iter().filter(|(.., status)| *status == 304).count(), seen.len() - 2, "{seen:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "answered as soon as the job completed");
}

/// The binary, as a user runs it.
fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mcpush-local"));
    command
        .env_remove("SSL_CERT_DIR")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Waits for the child with a deadline, killing it if it runs over.
async fn finish(mut child: std::process::Child, within: Duration) -> Output {
    let deadline = Instant::now() + within;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.wait_with_output().unwrap()
}

/// A TLS endpoint in front of the stack, as API Gateway's would be: REST at `https://HOST/` and
/// the WebSocket API at `wss://HOST/prod`. Returns its port and the certificate's PEM file.
async fn tls_front(stack: &Local, name: &str) -> (u16, std::path::PathBuf) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let pem = std::env::temp_dir().join(format!("mcpush-{name}-{}.pem", std::process::id()));
    std::fs::write(&pem, cert.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(signing_key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let app = http_api::router(stack.stack.clone()).merge(stack.api.websocket_router("/prod"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (port, pem)
}

#[tokio::test]
async fn the_binary_watches_over_tls_trusting_ssl_cert_file() {
    // GIVEN the stack behind a TLS endpoint with a self-signed certificate
    let (base, stack) = start().await;
    let (port, pem) = tls_front(&stack, "trusted").await;
    let (rest, ws) = (format!("https://127.0.0.1:{port}/"), format!("wss://127.0.0.1:{port}/prod"));

    // WHEN `watch` runs with that certificate in SSL_CERT_FILE, once over wss:// and once with a
    // WebSocket path that does not exist (so it polls over https://), and the job's events arrive
    let watch = |ws: &str| {
        binary()
            .args(["watch", "Big Buck Bunny.mp4", "--rest-url", &rest, "--ws-url", ws, "--poll-ms", "100"])
            .env("SSL_CERT_FILE", &pem)
            .spawn()
            .unwrap()
    };
    let (over_wss, over_https) = (watch(&ws), watch(&format!("wss://127.0.0.1:{port}/no-such-stage")));
    let deadline = Instant::now() + Duration::from_secs(10);
    while stack.api.connection_ids().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    replay(&base, &hls_files()).await;
    let (over_wss, over_https) =
        (finish(over_wss, Duration::from_secs(20)).await, finish(over_https, Duration::from_secs(20)).await);

    // THEN both followed the job to COMPLETE and exited 0: one pushed over wss://, one polling https://
    for (output, polled) in [(&over_wss, false), (&over_https, true)] {
        let printed = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{printed}");
        assert!(printed.contains("100% COMPLETE"), "{printed}");
        assert!(printed.contains("596458 ms, 1280x720"), "{printed}");
        assert_eq!(printed.contains(&format!("polling https://127.0.0.1:{port}/media/status")), polled, "{printed}");
    }
}

#[tokio::test]
async fn the_binary_refuses_a_certificate_it_does_not_trust() {
    // GIVEN the same TLS endpoint, but SSL_CERT_FILE names another certificate
    let (_base, stack) = start().await;
    let (port, _pem) = tls_front(&stack, "untrusted").await;
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let other_pem = std::env::temp_dir().join(format!("mcpush-other-{}.pem", std::process::id()));
    std::fs::write(&other_pem, other.cert.pem()).unwrap();

    // WHEN `watch` runs against it
    let child = binary()
        .args([
            "watch",
            "f.mp4",
            "--url",
            &format!("https://127.0.0.1:{port}"),
            "--ws-url",
            &format!("wss://127.0.0.1:{port}/prod"),
        ])
        .env("SSL_CERT_FILE", &other_pem)
        .spawn()
        .unwrap();
    let output = finish(child, Duration::from_secs(20)).await;

    // THEN neither the socket nor the REST API is used, and the error says why
    let printed = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{printed}");
    assert!(printed.contains("error: https://127.0.0.1"), "{printed}");
    assert!(printed.to_lowercase().contains("certificate"), "{printed}");
}

/// A server that answers every connection with `response`, whatever was asked.
async fn hostile(response: Vec<Vec<u8>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let response = response.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                for part in response {
                    let _ = socket.write_all(&part).await;
                    let _ = socket.flush().await;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            });
        }
    });
    base
}

/// `body` with its length.
fn plain(status: &str, body: &[u8]) -> Vec<Vec<u8>> {
    let mut response = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n\r\n", body.len()).into_bytes();
    response.extend_from_slice(body);
    vec![response]
}

/// `body` as a chunked response whose chunks are cut at `cuts` (byte offsets).
fn chunked(body: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut parts =
        vec![b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".to_vec()];
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&body.len())) {
        let mut chunk = format!("{:x}\r\n", end - start).into_bytes();
        chunk.extend_from_slice(&body[start..end]);
        chunk.extend_from_slice(b"\r\n");
        parts.push(chunk);
        start = end;
    }
    parts.push(b"0\r\n\r\n".to_vec());
    parts
}

#[tokio::test]
async fn the_binary_survives_hostile_servers_with_clear_errors() {
    // A read token on the command line: no line printed may carry its signature.
    const TOKEN: &str = "4102444800.5eec2e7c0f5eec2e7c0f5eec2e7c0f5eec2e7c0f5eec2e7c0f5eec2e7c0f5eec2e7c";
    // A status whose message carries terminal escape sequences, chunked inside UTF-8 characters.
    let status = "{\"success\": true, \"job_status\": \"ERROR\", \"progress_rate\": 100, \"error_code\": 1010, \
                  \"error_message\": \"動画 \\u001b[2J\\u001b]0;pwned\\u0007 failed\"}";
    let body = status.as_bytes();
    let inside_a_character = status.find('動').unwrap() + 1;
    let cases: Vec<(&str, Vec<Vec<u8>>, i32, &str)> = vec![
        (
            "escapes in a chunked status",
            chunked(body, &[inside_a_character, inside_a_character + 2, inside_a_character + 3]),
            1,
            "\\u{1b}[2J",
        ),
        ("not HTTP at all", vec![b"\x1b[31mSSH-2.0-OpenSSH\r\n\x00\xff\xfe garbage".to_vec()], 2, "error: http://"),
        ("200 with a body that is no status", plain("200 OK", b"\x1b[2J\xff\xfe{oops"), 2, "not a job status"),
        (
            "a chunk cut short",
            vec![b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n64\r\n{\"job_status\"".to_vec()],
            2,
            "error: http://",
        ),
        (
            "403 with escapes",
            plain("403 Forbidden", br#"{"message": "\u001b[1mno entry\u001b[0m"}"#),
            2,
            "answered 403 Forbidden: \\u{1b}[1mno entry",
        ),
    ];
    for (name, response, code, expected) in cases {
        let base = hostile(response).await;
        let child =
            binary().args(["watch", "f.mp4", "--url", &base, "--poll-ms", "50", "--token", TOKEN]).spawn().unwrap();
        let output = finish(child, Duration::from_secs(15)).await;
        let printed = String::from_utf8_lossy(&output.stderr);
        let mut report = std::io::stderr();
        let _ = writeln!(report, "--- {name}: {:?}\n{printed}", output.status.code());
        assert_eq!(output.status.code(), Some(code), "{name}: {printed}");
        assert!(printed.contains(expected), "{name}: {expected:?} not in {printed}");
        assert!(
            !output.stderr.contains(&0x1b) && !output.stderr.contains(&0x07),
            "{name}: raw control characters printed: {printed:?}"
        );
        assert!(!printed.contains("panicked"), "{name}: {printed}");
        assert!(!printed.contains(&TOKEN[11..]), "{name}: the token's signature printed: {printed}");
    }
}

#[tokio::test]
async fn watch_sends_its_token_with_the_subscribe_and_every_rest_call() {
    // GIVEN a stack that requires tokens, and one for the file
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let secret = b"cli-secret".to_vec();
    let mut options = Options { batch_window: Duration::from_millis(20), ..Options::default() };
    options.ws.access = mcpush_core::domain::token::ReadAccess::new(Some(secret.clone()));
    let stack = local(&base, options);
    tokio::spawn(axum::serve(listener, stack.router).into_future());
    let token = mcpush_core::domain::token::issue(&secret, "Big Buck Bunny.mp4", mcpush_core::now_ms() / 1000 + 60);

    // WHEN one watch has it and another has none
    let watching = tokio::spawn({
        let (base, token) = (base.clone(), token.clone());
        async move {
            let timing =
                Timing { poll: Duration::from_millis(50), recheck: Duration::from_millis(100), ..Timing::default() };
            let watched = Watched { input_file: "Big Buck Bunny.mp4", token: Some(&token) };
            watch::watch(&endpoints(&base), watched, timing, &mut Vec::new(), ProgressBar::hidden()).await
        }
    });
    let polling = tokio::spawn({
        let (base, token) = (base.clone(), token.clone());
        async move {
            let no_socket =
                Endpoints::new(&Url::parse(&base).unwrap(), None, Some(Url::parse("ws://127.0.0.1:9/ws").unwrap()))
                    .unwrap();
            let watched = Watched { input_file: "Big Buck Bunny.mp4", token: Some(&token) };
            watch::watch(
                &no_socket,
                watched,
                Timing { poll: Duration::from_millis(50), ..Timing::default() },
                &mut Vec::new(),
                ProgressBar::hidden(),
            )
            .await
        }
    });
    let refused = watch::watch(
        &endpoints(&base),
        Watched { input_file: "Big Buck Bunny.mp4", token: None },
        Timing::default(),
        &mut Vec::new(),
        ProgressBar::hidden(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    replay(&base, &hls_files()).await;

    // THEN the first follows the job to COMPLETE over the WebSocket and the second by polling
    // with the token; the third is refused, naming why
    for watch in [watching, polling] {
        let ending = tokio::time::timeout(Duration::from_secs(10), watch).await.unwrap().unwrap();
        assert!(matches!(ending, Ok(Ending::Complete(_))), "{ending:?}");
    }
    let message = refused.unwrap_err().to_string();
    assert!(message.contains(r#"a "token" is required"#), "{message}");
    // AND over REST alone, a missing token is a 403 naming why
    let (status, body) =
        common::http("GET", &format!("{base}/media/status?input_file=Big%20Buck%20Bunny.mp4"), None).await.unwrap();
    assert_eq!((status, body.as_str()), (403, r#"{"success": false, "message": "a \"token\" is required"}"#));
}

#[test]
fn the_token_subcommand_issues_file_and_folder_tokens_from_the_secret() {
    const KEY: &str = "a-secret-of-the-tests";
    let run = |args: &[&str], secret: Option<&str>| {
        let mut command = binary();
        command
            .args(args)
            .env_remove("SUBSCRIBE_SECRET_ARN")
            .env_remove("TOKEN_TTL_SECONDS")
            .env_remove("MAX_TOKEN_TTL_SECONDS");
        match secret {
            Some(secret) => command.env("SUBSCRIBE_SECRET", secret),
            None => command.env_remove("SUBSCRIBE_SECRET"),
        };
        let output = command.output().unwrap();
        (output.status.code(), String::from_utf8(output.stdout).unwrap(), String::from_utf8(output.stderr).unwrap())
    };
    let now = mcpush_core::now_ms() / 1000;
    let (code, token, _) = run(&["token", "clips/a.mp4"], Some(KEY));
    assert_eq!(code, Some(0));
    assert_eq!(
        mcpush_core::domain::token::verify(KEY.as_bytes(), "clips/a.mp4", Some(token.trim()), now + 86_000),
        Ok(())
    );
    let (code, token, _) = run(&["token", "--prefix", "users/u1/", "--ttl-seconds", "60"], Some(KEY));
    assert_eq!(code, Some(0));
    assert_eq!(mcpush_core::domain::token::verify(KEY.as_bytes(), "users/u1/x/b.mp4", Some(token.trim()), now), Ok(()));
    assert!(
        mcpush_core::domain::token::verify(KEY.as_bytes(), "users/u1/x/b.mp4", Some(token.trim()), now + 120).is_err(),
        "expired after 60 s"
    );
    let (code, _, err) = run(&["token", "--prefix", "users/u1"], Some(KEY));
    assert_eq!(code, Some(2));
    assert!(err.contains("must end with /"), "{err}");
    // A lifetime that would wrap, or outlive MAX_TOKEN_TTL_SECONDS, is a clear error.
    for ttl in ["18446744073709551615", "604801", "0"] {
        let (code, out, err) = run(&["token", "a.mp4", "--ttl-seconds", ttl], Some(KEY));
        assert_eq!((code, out.as_str()), (Some(2), ""), "{ttl}: {err}");
        assert!(err.contains("MAX_TOKEN_TTL_SECONDS"), "{ttl}: {err}");
    }
    let (code, _, err) = run(&["token", "a.mp4"], Some("short"));
    assert_eq!(code, Some(2));
    assert!(err.contains("at least 16"), "{err}");
    let (code, _, err) = run(&["token", "a.mp4"], None);
    assert_eq!(code, Some(2));
    assert!(err.contains("SUBSCRIBE_SECRET"), "{err}");
}

/// A server that accepts connections, reads nothing and never answers.
async fn silent_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    base
}

#[tokio::test]
async fn replay_and_redrive_give_up_on_an_endpoint_that_never_answers() {
    let base = silent_server().await;
    let event = fixture("hls-6-complete.json");
    let runs: [&[&str]; 2] = [
        &["replay", &event, "--endpoint-url", &base, "--timeout-seconds", "1"],
        &[
            "redrive",
            "--queue-url",
            &format!("{base}/000000000000/q"),
            "--endpoint-url",
            &base,
            "--sqs-endpoint-url",
            &base,
            "--timeout-seconds",
            "1",
        ],
    ];
    for args in runs {
        let started = Instant::now();
        let child = binary().args(args).env("AWS_MAX_ATTEMPTS", "2").spawn().unwrap();
        let output = finish(child, Duration::from_secs(60)).await;
        let printed = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{}: {printed}", args[0]);
        assert!(started.elapsed() < Duration::from_secs(30), "{}: {:?}", args[0], started.elapsed());
        assert!(printed.to_lowercase().contains("timeout") || printed.contains("timed out"), "{}: {printed}", args[0]);
    }
}

#[tokio::test]
async fn watch_gives_up_on_a_server_that_never_answers() {
    // GIVEN a server that accepts connections and never says a word
    let base = silent_server().await;
    // WHEN watch follows a file there, waiting 2 s per step
    let started = Instant::now();
    let child = binary().args(["watch", "f.mp4", "--url", &base, "--timeout-seconds", "2"]).spawn().unwrap();
    let output = finish(child, Duration::from_secs(60)).await;
    // THEN it exits 2 on its own, well within a minute, saying why
    let printed = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{printed}");
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    assert!(printed.contains("no handshake within 2 s"), "{printed}");
}

/// A server whose every answer is a 200 that never ends (chunked junk, as long as the client
/// reads), and the bytes it got out.
async fn endless_server() -> (String, Arc<std::sync::atomic::AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = sent.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                if socket.write_all(head).await.is_err() {
                    return;
                }
                let chunk =
                    [format!("{:x}\r\n", 64 * 1024).into_bytes(), vec![b' '; 64 * 1024], b"\r\n".to_vec()].concat();
                while socket.write_all(&chunk).await.is_ok() {
                    counted.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    (base, sent)
}

#[tokio::test]
async fn watch_refuses_an_endless_body_after_a_megabyte() {
    // GIVEN a server whose status answer never ends
    let (base, sent) = endless_server().await;
    // WHEN watch polls it (its WebSocket handshake fails: the same junk)
    let child = binary().args(["watch", "f.mp4", "--url", &base, "--poll-ms", "50"]).spawn().unwrap();
    let output = finish(child, Duration::from_secs(60)).await;
    // THEN it exits 2 naming the limit, having stopped reading long before 1.5 GB
    let printed = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{printed}");
    assert!(printed.contains("answered more than 1048576 bytes"), "{printed}");
    let mib = sent.load(std::sync::atomic::Ordering::Relaxed) / (1024 * 1024);
    assert!(mib < 64, "the server got {mib} MiB out before watch stopped reading");
}

#[tokio::test]
async fn replay_refuses_an_endless_invoke_answer() {
    // GIVEN a Lambda endpoint whose Invoke answer never ends
    let (base, sent) = endless_server().await;
    // WHEN replay invokes it
    let event = fixture("hls-6-complete.json");
    let child =
        binary().args(["replay", &event, "--endpoint-url", &base]).env("AWS_MAX_ATTEMPTS", "1").spawn().unwrap();
    let output = finish(child, Duration::from_secs(60)).await;
    // THEN it ends with an error, having read at most a few MB of it
    let printed = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{printed}");
    let mib = sent.load(std::sync::atomic::Ordering::Relaxed) / (1024 * 1024);
    assert!(mib < 64, "the server got {mib} MiB out before replay stopped reading: {printed}");
}
