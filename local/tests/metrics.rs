//! The functions' CloudWatch metrics, as the local stack shows them at `GET /_local/metrics`
//! (the Embedded Metric Format lines the Lambda functions write, summed per function). One test
//! in this binary: the recorder is the process's.

mod common;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use mcpush_local::aws::mediaconvert::SimSettings;
use mcpush_local::{Options, local};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_shows_in_every_functions_metrics() {
    // GIVEN the local stack and a watcher of one file
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let s3_dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("metrics-{}", std::process::id()));
    let options = Options {
        batch_window: Duration::from_millis(10),
        s3_dir,
        simulator: SimSettings { step: Duration::from_millis(30), ..SimSettings::default() },
        ..Options::default()
    };
    let stack = local(&base, options);
    tokio::spawn(axum::serve(listener, stack.router).into_future());
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("{}/ws", base.replace("http://", "ws://"))).await.unwrap();
    socket
        .send(Message::Text(json!({"action": "subscribe", "input_file": "metered.mp4"}).to_string().into()))
        .await
        .unwrap();
    socket.send(Message::Text(json!({"action": "subscribe", "input_file": ""}).to_string().into())).await.unwrap();

    // WHEN a file is uploaded and its job runs to COMPLETE
    let (status, body) = common::http("PUT", &format!("{base}/s3/uploads/metered.mp4"), Some("video")).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut statuses = 0;
    loop {
        let frame = tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), socket.next())
            .await
            .expect("COMPLETE in time")
            .unwrap()
            .unwrap();
        let message: Value = serde_json::from_str(frame.to_text().unwrap()).unwrap();
        if message["type"] == "status" {
            statuses += 1;
            if message["job_status"] == "COMPLETE" {
                break;
            }
        }
    }

    // AND a poller asks for the state it already has
    let poll = reqwest::Client::new()
        .get(format!("{base}/media/status?input_file=metered.mp4"))
        .header("if-none-match", "*")
        .send()
        .await
        .unwrap();
    assert_eq!(poll.status().as_u16(), 304);
    tokio::time::sleep(Duration::from_millis(600)).await;

    // THEN each function's metrics count it
    let (status, body) = common::http("GET", &format!("{base}/_local/metrics"), None).await.unwrap();
    assert_eq!(status, 200);
    let metrics: Value = serde_json::from_str(&body).unwrap();
    let sum = |function: &str, name: &str| metrics[function][name]["sum"].as_f64().unwrap_or(0.0);
    assert_eq!(sum("create-job", "JobsCreated"), 1.0, "{metrics:#}");
    assert!(sum("progress-ingest", "IngestApplied") >= 3.0, "{metrics:#}");
    assert_eq!(sum("progress-push", "PushDelivered"), f64::from(statuses), "{metrics:#}");
    assert_eq!(sum("ws-message", "SubscriptionsAdded"), 1.0, "{metrics:#}");
    assert_eq!(
        sum("ws-message", "SubscriptionsRefused"),
        0.0,
        "an empty input_file is a protocol error, not a refusal: {metrics:#}"
    );
    // AND the end-to-end lag is measured from MediaConvert's event to the post, once per change
    // (all but the first, SUBMITTED by create-job: no event brought it)
    let lag = &metrics["progress-push"]["EndToEndLagMs"];
    assert_eq!(lag["count"].as_u64(), Some(u64::try_from(statuses - 1).unwrap()), "{metrics:#}");
    assert!(lag["p50"].as_f64().is_some_and(|ms| (0.0..5_000.0).contains(&ms)), "{metrics:#}");
    assert!(metrics["progress-push"]["PostsPerInvocation"]["count"].as_u64() >= Some(1), "{metrics:#}");
    assert_eq!(sum("status-api", "StatusNotModified"), 1.0, "{metrics:#}");
}
