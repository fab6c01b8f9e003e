//! The local stack in DynamoDB mode: tables created on moto, the status table's real stream
//! polled and delivered to progress-push, pushes reaching a WebSocket client on `/ws`.

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use mcpush_local::{Options, local_dynamodb};
use mcpush_tests::ws::Client;
use mcpush_tests::{fixture, moto};
use serde_json::json;
use tower::ServiceExt;

#[tokio::test]
async fn events_invoked_into_the_stack_reach_subscribers_through_the_dynamodb_stream() {
    // GIVEN the stack on moto (tables created by the stack itself) and a subscribed client
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let options = Options { batch_window: Duration::from_millis(20), ..Options::default() };
    let stack = local_dynamodb(&base, options, &moto().endpoint).await.expect("stack on moto");
    let app = stack.router.clone();
    tokio::spawn(async move { axum::serve(listener, stack.router).await });
    let mut client = Client::connect(&format!("{}/ws", base.replace("http://", "ws://")), None).await.unwrap();
    assert_eq!(client.subscribe("Big Buck Bunny.mp4").await["type"], "subscribed");

    // WHEN the HLS job's events are invoked into progress-ingest
    for file in mcpush_tests::HLS_JOB_EVENTS {
        let event = fixture(&format!("eventbridge/{file}")).to_string();
        let request = Request::post("/2015-03-31/functions/progress-ingest/invocations")
            .header("host", "127.0.0.1")
            .body(Body::from(event))
            .unwrap();
        assert!(app.clone().oneshot(request).await.unwrap().status().is_success());
    }

    // THEN the client sees the job progress to COMPLETE, read back from the DynamoDB stream
    let seen = client.until(|m| m["job_status"] == "COMPLETE").await;
    let progress: Vec<u64> = seen.iter().filter_map(|m| m["progress_rate"].as_u64()).collect();
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    assert_eq!(seen.last().unwrap()["output_path"], json!("Big Buck Bunny.mp4_test/"));
}
