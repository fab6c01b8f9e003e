//! `replay` and `watch` against a running local stack.

use std::time::Duration;

use mcpush_local::cli::{self, Ending};
use mcpush_local::{Local, Options, local, router};

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

#[tokio::test]
async fn replay_posts_json_and_json_lines_and_counts_rejections() {
    let (base, _stack) = start().await;
    let lines = std::env::temp_dir().join(format!("replay-{}.jsonl", std::process::id()));
    let progressing = std::fs::read_to_string(fixture("hls-1-progressing.json")).unwrap();
    let no_status = std::fs::read_to_string(fixture("malformed-no-status.json")).unwrap();
    let compact = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap().to_string();
    std::fs::write(&lines, format!("{}\n{}\n", compact(&progressing), compact(&no_status))).unwrap();

    let mut out = Vec::new();
    let files = [lines.display().to_string(), fixture("hls-6-complete.json")];
    let rejected = cli::replay(&base, &files, &mut out).await.unwrap();

    let printed = String::from_utf8(out).unwrap();
    assert_eq!(rejected, 1, "{printed}");
    assert!(printed.contains(":2: rejected: detail.status is missing"), "{printed}");
    assert!(printed.ends_with("2 replayed, 1 rejected\n"), "{printed}");
    let (status, body) = cli::http("GET", &format!("{base}/media/job_id?input_file=Big%20Buck%20Bunny.mp4"), None).await.unwrap();
    assert_eq!((status, body.as_str()), (200, r#"{"success": true, "job_id": "1700000000000-bbbhls"}"#));
}

#[tokio::test]
async fn watch_follows_the_job_over_the_websocket_to_complete() {
    let (base, _stack) = start().await;
    let watching = tokio::spawn({
        let base = base.clone();
        async move {
            let mut out = Vec::new();
            let ending = cli::watch(&base, "Big Buck Bunny.mp4", Duration::from_millis(50), &mut out).await.unwrap();
            (ending, String::from_utf8(out).unwrap())
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let files: Vec<String> = mcpush_files();
    cli::replay(&base, &files, &mut Vec::new()).await.unwrap();
    let (ending, printed) = tokio::time::timeout(Duration::from_secs(10), watching).await.unwrap().unwrap();
    assert!(matches!(ending, Ending::Complete(_)), "{printed}");
    assert!(printed.contains("100% COMPLETE"), "{printed}");
    assert!(printed.contains("596458 ms, 1280x720, Big Buck Bunny.mp4_test/Big Buck Bunny.m3u8"), "{printed}");
    assert!(!printed.contains("polling"), "{printed}");
}

#[tokio::test]
async fn watch_falls_back_to_rest_polling_and_reports_an_error() {
    let (base, stack) = start().await;
    // The same stack's REST API alone: the WebSocket upgrade at /ws is not there.
    let rest_only = serve(router(stack.stack.clone())).await;
    cli::replay(&base, &[fixture("error.json")], &mut Vec::new()).await.unwrap();
    let mut out = Vec::new();
    let ending = cli::watch(&rest_only, "broken.mp4", Duration::from_millis(50), &mut out).await.unwrap();
    let printed = String::from_utf8(out).unwrap();
    assert!(matches!(ending, Ending::Failed(_)), "{printed}");
    assert!(printed.contains("polling"), "{printed}");
    assert!(printed.contains("No parser found for container"), "{printed}");
}

fn mcpush_files() -> Vec<String> {
    ["hls-1-progressing.json", "hls-3-status-update-25.json", "hls-5-status-update-70.json", "hls-6-complete.json"]
        .iter()
        .map(|f| fixture(f))
        .collect()
}
