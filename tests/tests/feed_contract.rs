//! The embedded store's change feed and a real table's DynamoDB stream (moto, read with the local
//! stack's poller and turned into records as Lambda delivers them) carry the same records for
//! the same writes, and both set the same TTL: the local stack's progress-push sees what it
//! would see on AWS.

use std::time::Duration;

use mcpush_core::adapters::memory::MemoryJobStore;
use mcpush_core::domain::{CompleteDetails, JobUpdate, Phase, Transition};
use mcpush_core::ports::JobStore;
use mcpush_local::aws::stream::{EmbeddedStream, StreamPoller};
use mcpush_tests::{dynamodb_streams_client, fresh_store};
use serde_json::{Value, json};

const RETENTION: Option<Duration> = Some(Duration::from_secs(7 * 86_400));

fn writes() -> Vec<JobUpdate> {
    let update = |transition, progress, phase| JobUpdate {
        job_id: "1700000000000-feedcc".into(),
        input_file: Some("feed contract.mp4".into()),
        transition,
        progress,
        job_order: 1_700_000_000_000,
        phase,
        event_at: None,
        observed: Default::default(),
    };
    let details = CompleteDetails {
        duration_ms: Some(1000),
        width_px: Some(1280),
        height_px: Some(720),
        output_path: "o/".into(),
        ..Default::default()
    };
    vec![
        update(Transition::Submitted, Some(0), None),
        update(Transition::Progressing, Some(40), Some(Phase::Transcoding)),
        update(Transition::Progressing, Some(30), Some(Phase::Probing)), // late: changes nothing
        update(Transition::Complete(details), Some(100), None),
    ]
}

/// An image with its `ConfirmedAt` (a clock reading, different in each store) reduced to its
/// presence.
fn timeless(image: &Value) -> Value {
    let mut image = image.clone();
    if let Some(at) = image.get_mut("ConfirmedAt") {
        *at = json!({"N": "now"});
    }
    image
}

/// What progress-push reads of a record; the rest (ids, times, ARNs) differs by nature.
fn essence(record: &Value) -> Value {
    json!({
        "eventName": record["eventName"],
        "eventSource": record["eventSource"],
        "Keys": record["dynamodb"]["Keys"],
        "OldImage": timeless(&record["dynamodb"]["OldImage"]),
        "NewImage": timeless(&record["dynamodb"]["NewImage"]),
        "StreamViewType": record["dynamodb"]["StreamViewType"],
        "hasSequenceNumber": record["dynamodb"]["SequenceNumber"].is_string(),
    })
}

#[tokio::test]
async fn the_embedded_feed_and_a_dynamodb_stream_carry_the_same_records() {
    // GIVEN the same writes to the embedded store and to a table on moto, both with a retention
    let (memory, mut feed) = MemoryJobStore::with_change_feed();
    let stream = EmbeddedStream::new("feed-contract");
    let memory = memory.with_retention(RETENTION);
    let dynamodb = fresh_store("feed").await.with_retention(RETENTION);
    for write in writes() {
        let mut embedded = memory.apply(&write).await.unwrap();
        let mut real = dynamodb.apply(&write).await.unwrap();
        assert_eq!(embedded.record.confirmed_at.is_some(), real.record.confirmed_at.is_some(), "{write:?}");
        (embedded.record.confirmed_at, real.record.confirmed_at) = (None, None);
        assert_eq!(embedded, real, "both stores answer the same for {write:?}");
    }
    assert_eq!(memory.job("1700000000000-feedcc").await.unwrap().unwrap().expires_at, Some(1_700_000_000 + 7 * 86_400));

    // WHEN both feeds are read
    let mut embedded = Vec::new();
    while let Ok(change) = feed.try_recv() {
        embedded.push(serde_json::to_value(stream.record(&change)).unwrap());
    }
    let mut poller =
        StreamPoller::open(dynamodb.client(), dynamodb_streams_client(), &dynamodb.tables().status, 100).await.unwrap();
    let streamed: Vec<Value> =
        poller.next_batch().await.unwrap().iter().map(|r| serde_json::to_value(r).unwrap()).collect();

    // THEN they hold the same three records (INSERT, MODIFY, MODIFY), images included
    assert_eq!(embedded.len(), 3);
    assert_eq!(embedded.iter().map(essence).collect::<Vec<_>>(), streamed.iter().map(essence).collect::<Vec<_>>());
    assert_eq!(
        embedded[2]["dynamodb"]["NewImage"]["ExpiresAt"],
        json!({"N": (1_700_000_000u64 + 7 * 86_400).to_string()})
    );
    for record in embedded.iter().chain(&streamed) {
        serde_json::from_value::<aws_lambda_events::dynamodb::EventRecord>(record.clone())
            .expect("a Lambda stream record");
    }
}
