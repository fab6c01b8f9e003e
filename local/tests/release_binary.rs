//! The README's first command as a user runs it: `cargo run --release` at the repository root
//! (built by this test if needed), then the demo page, an upload, a WebSocket subscriber and the
//! REST fallback against the running binary, and Ctrl-C.

mod common;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cargo_run_release_serves_the_whole_pipeline() {
    // GIVEN `cargo run --release` at the root, on a free port, with a fresh S3 folder
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let s3_dir =
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("release-s3-{}", std::process::id()));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut child = Command::new(cargo)
        .args(["run", "--release", "--locked", "--quiet", "--", "--port", "0"])
        .current_dir(root)
        .env("LOCAL_S3_DIR", &s3_dir)
        .env("SIMULATOR_STEP_MS", "100")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("cargo runs");
    let stdout = child.stdout.take().unwrap();
    let mut running = Running(child);
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    // The release build takes 10 to 16 minutes on a fresh clone with 2 cores, more on a busy machine.
    let mut printed = Vec::new();
    let base = loop {
        let line = lines_rx.recv_timeout(Duration::from_secs(1800)).expect("the stack prints its URLs");
        printed.push(line.clone());
        if let Some(url) = line.strip_prefix("  demo page").map(str::trim) {
            break url.trim_end_matches('/').to_owned();
        }
    };
    while let Ok(line) = lines_rx.recv_timeout(Duration::from_millis(300)) {
        printed.push(line);
    }
    let printed = printed.join("\n");
    for expected in [
        "/media/status?job_id=J",
        "/ws",
        "/@connections/{connectionId}",
        "/2015-03-31/functions/progress-ingest/invocations",
        "Ctrl-C stops it.",
    ] {
        assert!(printed.contains(expected), "{expected:?} not printed:\n{printed}");
    }

    // WHEN a browser loads the demo page and its module
    let get = |url: String| async move { common::http("GET", &url, None).await.expect("HTTP answers") };
    let (status, page) = get(format!("{base}/")).await;
    assert_eq!(status, 200);
    assert!(page.contains("<script type=\"module\" src=\"demo.js\">"));
    let (status, module) = get(format!("{base}/mcpush-client.js")).await;
    assert_eq!(status, 200);
    assert!(module.contains("export class ProgressClient"));

    // AND a WebSocket client subscribes to a file, which is then uploaded
    let ws_url = format!("{}/ws", base.replace("http://", "ws://"));
    let (mut socket, _) = tokio_tungstenite::connect_async(&ws_url).await.expect("WebSocket opens");
    socket
        .send(Message::text(json!({"action": "subscribe", "input_file": "clips/release test.mp4"}).to_string()))
        .await
        .unwrap();
    let video = "v".repeat(500_000);
    let (status, _) =
        common::http("PUT", &format!("{base}/s3/uploads/clips/release%20test.mp4"), Some(&video)).await.unwrap();
    assert_eq!(status, 200);

    // THEN the job's states arrive pushed, in order, up to COMPLETE
    let mut statuses = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while statuses.last().map(|m: &Value| m["job_status"] != "COMPLETE").unwrap_or(true) {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = tokio::time::timeout(left, socket.next()).await.expect("COMPLETE within 30 s");
        if let Some(Ok(Message::Text(text))) = frame {
            let message: Value = serde_json::from_str(&text).unwrap();
            common::protocol::assert_server_message(&message);
            if message["type"] == "status" {
                statuses.push(message);
            }
        }
    }
    let rates: Vec<u64> = statuses.iter().map(|m| m["progress_rate"].as_u64().unwrap()).collect();
    assert!(rates.len() >= 4 && rates.windows(2).all(|w| w[0] <= w[1]), "progress pushed: {rates:?}");
    let done = statuses.last().unwrap();
    assert_eq!(done["playlists"], json!({".m3u8": "release test.m3u8"}));
    assert_eq!(done["output_path"], "clips/release test.mp4_hls/");

    // AND the REST fallback answers the same, byte-compatible with the seed for ?job_id=
    let job_id = done["job_id"].as_str().unwrap();
    let (status, body) = get(format!("{base}/media/status?job_id={job_id}")).await;
    assert_eq!(status, 200);
    assert!(
        body.starts_with(
            r#"{"success": true, "job_status": "COMPLETE", "progress_rate": 100, "duration_ms": 2000, "width_px": 1280"#
        ),
        "{body}"
    );
    let (status, body) = get(format!("{base}/media/job_id?input_file=clips/release%20test.mp4")).await;
    assert_eq!((status, body), (200, format!(r#"{{"success": true, "job_id": "{job_id}"}}"#)));

    // AND Ctrl-C stops it promptly, even with the socket open
    let pid = running.0.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let stopped = Instant::now();
    loop {
        if let Some(exit) = running.0.try_wait().unwrap() {
            assert!(exit.success(), "exit status after Ctrl-C: {exit}");
            break;
        }
        assert!(stopped.elapsed() < Duration::from_secs(5), "still running 5 s after Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(socket);
    let _ = std::fs::remove_dir_all(&s3_dir);
}
