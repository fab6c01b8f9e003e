//! The local stack against web pages, over real HTTP: DNS rebinding (a foreign `Host`), a `Host`
//! or `Origin` sent twice, and cross-site requests (a foreign, unreadable or mixed `Origin`,
//! "simple" `text/plain` POSTs that need no preflight) get nowhere near the functions; CLIs and
//! SDKs (no `Origin`) still work.

use std::time::Duration;

use mcpush_local::{Options, local};
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

struct Case {
    name: &'static str,
    method: Method,
    path: &'static str,
    headers: Vec<(&'static str, HeaderValue)>,
    body: Option<String>,
    expected: u16,
}

fn case(
    name: &'static str,
    method: Method,
    path: &'static str,
    headers: &[(&'static str, &str)],
    expected: u16,
) -> Case {
    let headers = headers.iter().map(|(n, v)| (*n, HeaderValue::from_bytes(v.as_bytes()).unwrap())).collect();
    Case { name, method, path, headers, body: None, expected }
}

const INVOKE: &str = "/2015-03-31/functions/progress-ingest/invocations";

#[tokio::test]
async fn foreign_hosts_and_origins_are_refused_and_tools_without_origin_still_work() {
    // GIVEN the local stack on a loopback port
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let s3_dir =
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("hardening-{}", std::process::id()));
    let stack =
        local(&base, Options { batch_window: Duration::from_millis(10), s3_dir: s3_dir.clone(), ..Options::default() });
    tokio::spawn(axum::serve(listener, stack.router).into_future());
    let forged = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/eventbridge/hls-6-complete.json"
    ))
    .unwrap();
    let own = format!("http://127.0.0.1:{port}");
    let (local_host, ipv6_host) = (format!("localhost:{port}"), format!("[::1]:{port}"));
    let latin1 = HeaderValue::from_bytes(b"http://\xe9vil.example").unwrap();
    let evil = "http://evil.example";

    let mut cases = vec![
        // DNS rebinding: any route, any method, a name that is not loopback
        case("rebound demo page", Method::GET, "/", &[("host", "evil.example")], 421),
        case("rebound REST", Method::GET, "/media/status?input_file=a.mp4", &[("host", "evil.example:3000")], 421),
        case("rebound invoke", Method::POST, INVOKE, &[("host", "attacker.example")], 421),
        case("rebound S3 write", Method::PUT, "/s3/uploads/a.mp4", &[("host", "127.0.0.1.nip.io")], 421),
        case("rebound MediaConvert", Method::GET, "/2017-08-29/jobs/1-x", &[("host", "rebind.example")], 421),
        case("rebound management API", Method::POST, "/@connections/abc", &[("host", "localhost.evil.example")], 421),
        case("rebound with a trailing dot", Method::GET, "/", &[("host", "localhost.")], 421),
        case("rebound WebSocket", Method::GET, "/ws", &[("host", "evil.example")], 421),
        // cross-site: a foreign Origin on the routes that act alone, whatever the content type
        case("text/plain invoke", Method::POST, INVOKE, &[("origin", evil), ("content-type", "text/plain")], 403),
        case("json invoke", Method::POST, INVOKE, &[("origin", evil), ("content-type", "application/json")], 403),
        case(
            "form invoke",
            Method::POST,
            INVOKE,
            &[("origin", evil), ("content-type", "application/x-www-form-urlencoded")],
            403,
        ),
        case("opaque origin invoke", Method::POST, INVOKE, &[("origin", "null")], 403),
        case("S3 PUT", Method::PUT, "/s3/uploads/a.mp4", &[("origin", evil), ("content-type", "text/plain")], 403),
        case(
            "S3 POST",
            Method::POST,
            "/s3/uploads",
            &[("origin", evil), ("content-type", "multipart/form-data; boundary=x")],
            403,
        ),
        case("S3 DELETE", Method::DELETE, "/s3/uploads/a.mp4", &[("origin", evil)], 403),
        // S3's multipart API: create, a part, complete, abort
        case("S3 CreateMultipartUpload", Method::POST, "/s3/uploads/a.mp4?uploads", &[("origin", evil)], 403),
        case(
            "S3 UploadPart",
            Method::PUT,
            "/s3/uploads/a.mp4?partNumber=1&uploadId=x",
            &[("origin", evil), ("content-type", "text/plain")],
            403,
        ),
        case(
            "S3 CompleteMultipartUpload",
            Method::POST,
            "/s3/uploads/a.mp4?uploadId=x",
            &[("origin", evil), ("content-type", "text/plain")],
            403,
        ),
        case("S3 AbortMultipartUpload", Method::DELETE, "/s3/uploads/a.mp4?uploadId=x", &[("origin", evil)], 403),
        case(
            "rebound UploadPart",
            Method::PUT,
            "/s3/uploads/a.mp4?partNumber=1&uploadId=x",
            &[("host", "evil.example")],
            421,
        ),
        case(
            "MediaConvert CreateJob",
            Method::POST,
            "/2017-08-29/jobs",
            &[("origin", evil), ("content-type", "text/plain")],
            403,
        ),
        case("MediaConvert GetJob", Method::GET, "/2017-08-29/jobs/1-x", &[("origin", evil)], 403),
        case(
            "management post",
            Method::POST,
            "/@connections/abc",
            &[("origin", evil), ("content-type", "text/plain")],
            403,
        ),
        case("management delete", Method::DELETE, "/@connections/abc", &[("origin", evil)], 403),
        // a header sent twice is refused on every route, whichever value comes first
        case("an allowed and a foreign Origin", Method::POST, INVOKE, &[("origin", &own), ("origin", evil)], 400),
        case(
            "two Origins on REST, the allowed one first",
            Method::GET,
            "/media/job_id?input_file=a.mp4",
            &[("origin", &own), ("origin", evil)],
            400,
        ),
        case("two Hosts, loopback first", Method::GET, "/", &[("host", &local_host), ("host", "evil.example")], 400),
        case(
            "a comma-joined list with a foreign one",
            Method::POST,
            INVOKE,
            &[("origin", &format!("{own}, {evil}"))],
            403,
        ),
        case("a foreign port", Method::POST, INVOKE, &[("origin", "http://127.0.0.1.evil.example")], 403),
        // REST keeps the seed's answer to a foreign Origin
        case("REST foreign origin", Method::GET, "/media/status?input_file=a.mp4", &[("origin", evil)], 422),
        // reads, preflights and tools without an Origin pass
        case("S3 read with a foreign Origin", Method::GET, "/s3/uploads/none.mp4", &[("origin", evil)], 404),
        case("REST from localhost", Method::GET, "/media/job_id?input_file=a.mp4", &[("host", &local_host)], 422),
        case("REST from [::1]", Method::GET, "/media/job_id?input_file=a.mp4", &[("host", &ipv6_host)], 422),
    ];
    cases.push(Case {
        name: "unreadable Origin",
        method: Method::POST,
        path: INVOKE,
        headers: vec![("origin", latin1)],
        body: Some(forged.clone()),
        expected: 403,
    });
    for case in cases.iter_mut().filter(|c| c.method == Method::POST && c.path == INVOKE) {
        case.body = Some(forged.clone());
    }
    cases.push(Case {
        name: "the stack's own page",
        method: Method::GET,
        path: "/media/job_id?input_file=a.mp4",
        headers: vec![("origin", HeaderValue::from_str(&own).unwrap())],
        body: None,
        expected: 422,
    });

    // WHEN each request is sent
    let client = reqwest::Client::new();
    let mut failures = Vec::new();
    for case in &cases {
        let mut headers = HeaderMap::new();
        for (name, value) in &case.headers {
            headers.append(HeaderName::from_static(name), value.clone());
        }
        let mut request = client.request(case.method.clone(), format!("{base}{}", case.path)).headers(headers);
        if let Some(body) = &case.body {
            request = request.body(body.clone());
        }
        let status = request.send().await.unwrap().status().as_u16();
        if status != case.expected {
            failures.push(format!("{}: {status}, expected {}", case.name, case.expected));
        }
    }

    // THEN each got its expected answer, and no forged event reached the store
    assert!(cases.len() >= 20);
    assert!(failures.is_empty(), "{failures:#?}");
    let (status, body) = http_get(&client, &format!("{base}/media/job_id?input_file=Big%20Buck%20Bunny.mp4")).await;
    assert_eq!((status, body.as_str()), (422, r#"{"success": false, "message": "Not found item."}"#));

    // AND a tool without an Origin invokes as before, even with text/plain
    let response =
        client.post(format!("{base}{INVOKE}")).header("content-type", "text/plain").body(forged).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let (status, _) = http_get(&client, &format!("{base}/media/job_id?input_file=Big%20Buck%20Bunny.mp4")).await;
    assert_eq!(status, 200);
    let _ = std::fs::remove_dir_all(&s3_dir);
}

async fn http_get(client: &reqwest::Client, url: &str) -> (u16, String) {
    let response = client.get(url).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Reads until the server closes the connection; `true` when it did within `within`.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut sink = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn half_sent_requests_and_stalled_bodies_are_closed_but_a_slow_steady_body_is_not_cut() {
    use tokio::io::AsyncWriteExt;
    // GIVEN the stack's own server with 1 s waits
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let s3_dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("waits-{}", std::process::id()));
    let stack = local(&format!("http://{address}"), Options { s3_dir: s3_dir.clone(), ..Options::default() });
    let limits = mcpush_local::run::server::ServerLimits {
        header_read: Duration::from_secs(1),
        body_idle: Duration::from_secs(1),
    };
    tokio::spawn(mcpush_local::run::server::serve(listener, stack.router, limits, std::future::pending()));

    // WHEN 100 clients send half a request's headers and stop
    let mut half_sent = Vec::new();
    for _ in 0..100 {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream.write_all(b"GET /media/status?job_id=x HTTP/1.1\r\nHost: 127.0.0.1\r\n").await.unwrap();
        half_sent.push(stream);
    }
    // AND one sends its headers but stalls in its body
    let mut stalled = tokio::net::TcpStream::connect(address).await.unwrap();
    stalled
        .write_all(b"POST /s3/uploads/a.mp4 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n0123456789")
        .await
        .unwrap();

    // THEN every one is closed within a few seconds, not held open
    let started = std::time::Instant::now();
    for stream in &mut half_sent {
        assert!(closed_within(stream, Duration::from_secs(10)).await, "a half-sent request still open");
    }
    assert!(closed_within(&mut stalled, Duration::from_secs(10)).await, "a stalled body still open");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());

    // AND a body that keeps coming, a byte every 300 ms for 3 s, is never cut
    let mut steady = tokio::net::TcpStream::connect(address).await.unwrap();
    steady
        .write_all(b"PUT /s3/uploads/steady.mp4 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\n")
        .await
        .unwrap();
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        steady.write_all(b"x").await.unwrap();
    }
    let mut answer = [0u8; 12];
    tokio::io::AsyncReadExt::read_exact(&mut steady, &mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200", "{}", String::from_utf8_lossy(&answer));
    let _ = std::fs::remove_dir_all(&s3_dir);
}
