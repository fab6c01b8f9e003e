//! `redrive` against a real SQS API (moto over HTTP) and the local stack's Invoke API: Lambda's
//! on-failure records are invoked again, deleted only once their invocation succeeded.

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use mcpush_core::domain::JobStatus;
use mcpush_local::tools::redrive::{Redrive, Redriven};
use mcpush_local::tools::replay;
use mcpush_local::{Options, local};
use mcpush_tests::{fixture, sqs_client};
use serde_json::json;

/// What Lambda sends to an on-failure destination after an asynchronous invocation failed.
fn record(event: &str) -> String {
    json!({
        "version": "1.0",
        "timestamp": "2026-11-25T10:00:00.000Z",
        "requestContext": {
            "requestId": "c9b8fa9f-5a7f-4d4b-9f7e-1b2c3d4e5f60",
            "functionArn": "arn:aws:lambda:us-east-1:111122223333:function:stack-progress-ingest:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3
        },
        "requestPayload": fixture(&format!("eventbridge/{event}")),
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": "store unavailable: throttled", "errorType": "HandlerError"}
    })
    .to_string()
}

async fn messages_left(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> (i64, i64) {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    let count = |name| attributes.get(&name).and_then(|v| v.parse().ok()).unwrap_or(-1);
    (
        count(QueueAttributeName::ApproximateNumberOfMessages),
        count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    )
}

#[tokio::test]
async fn redrive_invokes_each_record_again_and_deletes_only_what_succeeded() {
    // GIVEN the local stack, and a failure queue holding two good records, one the function
    // refuses, and one that is not a record at all
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stack = local(&base, Options { batch_window: Duration::from_millis(10), ..Options::default() });
    tokio::spawn(axum::serve(listener, stack.router.clone()).into_future());
    let sqs = sqs_client();
    let queue_url = sqs
        .create_queue()
        .queue_name(format!("ingest-failures-{}", std::process::id()))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    for body in [
        record("hls-1-progressing.json"),
        record("hls-6-complete.json"),
        record("malformed-no-status.json"),
        "not a record".to_owned(),
    ] {
        sqs.send_message().queue_url(&queue_url).message_body(body).send().await.unwrap();
    }
    let lambda = replay::lambda_client(Some(&base), std::time::Duration::from_secs(10)).await;
    let redrive = |dry_run| Redrive {
        sqs: &sqs,
        lambda: &lambda,
        queue_url: &queue_url,
        function_name: Some("progress-ingest"),
        dry_run,
    };

    // WHEN a dry run lists them
    let mut out = Vec::new();
    let listed = redrive(true).run(&mut out).await.unwrap();

    // THEN nothing is invoked or deleted
    assert_eq!(listed, Redriven { redriven: 3, failed: 0, skipped: 1 }, "{}", String::from_utf8_lossy(&out));
    assert_eq!(stack.stack.jobs.latest_job_id("Big Buck Bunny.mp4").await.unwrap(), None);
    assert_eq!(messages_left(&sqs, &queue_url).await, (4, 0));

    // WHEN the redrive runs
    let mut out = Vec::new();
    let done = redrive(false).run(&mut out).await.unwrap();
    let printed = String::from_utf8_lossy(&out);

    // THEN the good records reached progress-ingest and are gone; the others stay, each with its reason
    assert_eq!(done, Redriven { redriven: 2, failed: 1, skipped: 1 }, "{printed}");
    let job = stack.stack.jobs.newest_job_consistent("Big Buck Bunny.mp4").await.unwrap().unwrap();
    assert_eq!((job.job_status, job.progress_rate), (JobStatus::Complete, 100));
    assert!(printed.contains("failed again, kept:") && printed.contains("detail.status is missing"), "{printed}");
    assert!(printed.contains("skipped, kept: not a Lambda invocation record"), "{printed}");
    assert!(printed.ends_with("2 redriven, 1 failed again, 1 skipped\n"), "{printed}");
    assert_eq!(messages_left(&sqs, &queue_url).await, (0, 2));
}
