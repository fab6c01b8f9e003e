//! Recorded DynamoDB stream events through `progress-push`: the pusher is the real SDK client
//! talking to the emulator's Management API, and every subscriber is a real WebSocket client, so
//! each test asserts exactly which connection received which messages.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::streams::DynamoDbEventResponse;
use mcpush_core::adapters::memory::{MemoryJobStore, MemorySubscriptionStore};
use mcpush_core::config::{PushConfig, RetryPolicy, WsConfig};
use mcpush_core::domain::JobPointer;
use mcpush_core::handlers::progress_push::{self, PushContext, PushStats};
use mcpush_core::ports::{JobStore, SubscriptionStore};
use mcpush_tests::fixture;
use mcpush_tests::ws::{Client, Emulator};
use serde_json::{Value, json};

const BBB: &str = "Big Buck Bunny.mp4";
const JOB: &str = "1700000000000-bbbhls";
const QUIET: Duration = Duration::from_millis(300);

struct Setup {
    emulator: Emulator,
    jobs: Arc<MemoryJobStore>,
    subscriptions: Arc<MemorySubscriptionStore>,
}

async fn setup() -> Setup {
    let jobs = Arc::new(MemoryJobStore::default());
    let subscriptions = Arc::new(MemorySubscriptionStore::default());
    let emulator = Emulator::start(jobs.clone(), subscriptions.clone(), WsConfig::default()).await;
    Setup { emulator, jobs, subscriptions }
}

impl Setup {
    /// `n` subscribers of `input_file`.
    async fn subscribers(&self, input_file: &str, n: usize) -> Vec<Client> {
        let mut clients = Vec::with_capacity(n);
        for _ in 0..n {
            clients.push(self.subscriber(input_file).await);
        }
        clients
    }

    async fn subscriber(&self, input_file: &str) -> Client {
        let mut client = self.emulator.client().await;
        assert_eq!(client.subscribe(input_file).await, json!({"type": "subscribed", "input_file": input_file}));
        client
    }

    async fn push_with(&self, file: &str, config: PushConfig) -> (DynamoDbEventResponse, PushStats) {
        let ctx =
            PushContext::new(self.jobs.as_ref(), self.subscriptions.as_ref(), self.emulator.pusher.as_ref(), &config);
        progress_push::handle(&ctx, &fixture(&format!("dynamodb/{file}")), mcpush_core::now_ms() / 1000).await
    }

    async fn push(&self, file: &str) -> (DynamoDbEventResponse, PushStats) {
        self.push_with(file, PushConfig::default()).await
    }
}

/// A pushed status at `version` (the fixture's new image's); `submitted_at` is the job id's
/// epoch-millisecond prefix (MediaConvert's own time of the job), as every job id of these
/// fixtures has one.
fn status(job_id: &str, input_file: &str, job_status: &str, progress_rate: u8, version: u64) -> Value {
    let submitted_at: u64 = job_id.split('-').next().and_then(|p| p.parse().ok()).expect("a time prefix");
    json!({"type": "status", "input_file": input_file, "job_id": job_id, "job_status": job_status, "progress_rate": progress_rate,
           "version": version, "submitted_at": submitted_at})
}

/// The COMPLETE of `modify-complete.json` (version 4).
fn complete() -> Value {
    completed(4)
}

fn completed(version: u64) -> Value {
    let mut complete = status(JOB, BBB, "COMPLETE", 100, version);
    let outputs = json!({"duration_ms": 596458, "width_px": 1280, "height_px": 720, "output_path": "Big Buck Bunny.mp4_test/",
           "playlists": {".m3u8": "Big Buck Bunny.m3u8"}});
    complete.as_object_mut().unwrap().extend(outputs.as_object().unwrap().clone());
    complete
}

#[tokio::test]
async fn insert_reaches_every_subscriber_of_the_file_and_nobody_else() {
    let s = setup().await;
    let (mut a, mut b, mut other) =
        (s.subscriber(BBB).await, s.subscriber(BBB).await, s.subscriber("sintel.mov").await);

    let (response, stats) = s.push("insert.json").await;

    assert_eq!(a.next().await, status(JOB, BBB, "SUBMITTED", 0, 1));
    assert_eq!(b.next().await, status(JOB, BBB, "SUBMITTED", 0, 1));
    other.expect_silence(QUIET).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!((stats.delivered, stats.failed), (2, 0));
}

#[tokio::test]
async fn a_batched_connection_gets_one_statuses_message_per_push_and_others_see_todays_protocol() {
    let s = setup().await;
    // GIVEN a connection watching two files with "batch": true, and one watching one file plainly
    let mut batched = s.emulator.client().await;
    for file in [BBB, "sintel.mov"] {
        let reply = batched.ask(&json!({"action": "subscribe", "input_file": file, "batch": true}).to_string()).await;
        assert_eq!(reply, json!({"type": "subscribed", "input_file": file}));
    }
    let mut plain = s.subscriber(BBB).await;

    // WHEN one stream batch changes both files' jobs
    let mut event = fixture("dynamodb/modify-complete.json");
    let sintel = fixture("dynamodb/malformed-in-batch.json")["Records"][0].clone();
    event["Records"].as_array_mut().unwrap().push(sintel);
    let config = PushConfig::default();
    let ctx = PushContext::new(s.jobs.as_ref(), s.subscriptions.as_ref(), s.emulator.pusher.as_ref(), &config);
    let (response, stats) = progress_push::handle(&ctx, &event, mcpush_core::now_ms() / 1000).await;

    // THEN the batched connection got one message carrying both updates, each once
    let message = batched.next().await;
    assert_eq!(message["type"], "statuses", "{message}");
    let mut updates = message["updates"].as_array().unwrap().clone();
    updates.sort_by_key(|u| u["input_file"].as_str().unwrap_or_default().to_owned());
    let mut bbb = complete();
    bbb.as_object_mut().unwrap().remove("type");
    assert_eq!(updates[0], bbb);
    assert_eq!(
        (updates[1]["input_file"].as_str(), updates[1]["job_status"].as_str()),
        (Some("sintel.mov"), Some("PROGRESSING"))
    );
    assert_eq!(updates.len(), 2);
    batched.expect_silence(QUIET).await;
    // AND the plain connection its usual status message
    assert_eq!(plain.next().await, complete());
    plain.expect_silence(Duration::from_millis(1)).await;
    // AND that was one post per connection
    assert!(response.batch_item_failures.is_empty());
    assert_eq!((stats.delivered, stats.failed), (2, 0));
}

#[tokio::test]
async fn modify_pushes_the_new_image_and_complete_carries_its_outputs() {
    let s = setup().await;
    let mut a = s.subscriber(BBB).await;
    s.push("modify.json").await;
    assert_eq!(a.next().await, status(JOB, BBB, "PROGRESSING", 70, 4));
    s.push("modify-complete.json").await;
    assert_eq!(a.next().await, complete());
}

#[tokio::test]
async fn no_op_modify_and_ttl_remove_push_nothing() {
    let s = setup().await;
    let mut a = s.subscriber(BBB).await;
    for file in ["noop-modify.json", "ttl-remove.json"] {
        let (response, stats) = s.push(file).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!((stats.unchanged, stats.delivered), (1, 0), "{file}");
    }
    a.expect_silence(QUIET).await;
}

#[tokio::test]
async fn malformed_records_are_skipped_without_sinking_the_batch() {
    let s = setup().await;
    let (mut a, mut other) = (s.subscriber(BBB).await, s.subscriber("sintel.mov").await);
    let (response, stats) = s.push("malformed-in-batch.json").await;
    assert_eq!(a.next().await, status(JOB, BBB, "PROGRESSING", 25, 4));
    assert_eq!(other.next().await, status("1700000100000-cmafxx", "sintel.mov", "PROGRESSING", 10, 4));
    assert!(response.batch_item_failures.is_empty(), "a malformed record is never retried");
    assert_eq!((stats.records, stats.malformed, stats.delivered), (4, 2, 2));
}

#[tokio::test]
async fn many_updates_of_one_job_in_a_batch_push_only_the_newest_state_once() {
    let s = setup().await;
    let (mut a, mut b) = (s.subscriber(BBB).await, s.subscriber(BBB).await);
    let (_, stats) = s.push("many-updates-one-job.json").await;
    for client in [&mut a, &mut b] {
        assert_eq!(client.next().await, completed(12));
        client.expect_silence(QUIET).await;
    }
    assert_eq!((stats.records, stats.jobs, stats.delivered), (12, 1, 2));
}

#[tokio::test]
async fn a_late_change_of_an_older_job_reaches_nobody() {
    let s = setup().await;
    let newer = JobPointer { input_file: BBB.into(), job_id: JOB.into(), job_order: Some(1700000000000) };
    s.jobs.point_to(&newer).await.unwrap();
    let mut a = s.subscriber(BBB).await;
    let (_, stats) = s.push("older-job.json").await;
    a.expect_silence(QUIET).await;
    assert_eq!(stats.delivered, 0);
}

#[tokio::test]
async fn a_vanished_connection_loses_its_subscriptions_on_the_next_push() {
    let s = setup().await;
    let _gone = s.subscriber(BBB).await;
    let connection = s.emulator.api.connection_ids().pop().unwrap();
    assert!(s.emulator.api.forget(&connection), "dropped without $disconnect");
    assert_eq!(s.subscriptions.subscriptions(&connection).await.unwrap(), [BBB]);

    let (response, stats) = s.push("modify.json").await;

    assert_eq!((stats.gone, stats.delivered), (1, 0));
    assert!(response.batch_item_failures.is_empty(), "410 is not a failure to retry");
    assert!(s.subscriptions.subscriptions(&connection).await.unwrap().is_empty());
    assert!(s.subscriptions.subscribers(BBB, 0).await.unwrap().is_empty());
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_until_delivered() {
    let s = setup().await;
    // (40 posts at a 20 % fault rate: all would succeed once in 7,500 runs)
    let mut clients = s.subscribers(BBB, 40).await;
    s.emulator.api.set_fault_rate(0.2);
    let config = PushConfig {
        concurrency: 8,
        retry: RetryPolicy { max_attempts: 10, backoff_base_ms: 1 },
        ..PushConfig::default()
    };
    let (response, stats) = s.push_with("modify-complete.json", config).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!((stats.delivered, stats.failed), (40, 0));
    assert!(s.emulator.api.counters.faults.load(std::sync::atomic::Ordering::Relaxed) > 0, "faults were injected");
    for client in &mut clients {
        assert_eq!(client.next().await, complete());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_slow_api_the_push_raises_its_posts_in_flight_and_a_fixed_window_does_not() {
    use mcpush_local::aws::apigw_ws::RequestLimits;
    use std::sync::atomic::Ordering::Relaxed;
    // GIVEN 200 subscribers and an API that takes 50 ms a post
    let s = setup().await;
    let mut clients = s.subscribers(BBB, 200).await;
    let latency = Duration::from_millis(50);
    s.emulator.api.set_request_limits(RequestLimits { post_latency: (latency, latency), ..RequestLimits::default() });
    let retry = RetryPolicy { max_attempts: 2, backoff_base_ms: 1 };
    let mut peaks = Vec::new();
    for config in [
        PushConfig::fixed(16, retry),
        PushConfig { concurrency: 16, max_concurrency: 1000, rate_limit: None, retry, output_base_url: None },
    ] {
        // WHEN one change is pushed with a fixed window of 16, then starting from 16 and free to grow
        s.emulator.api.counters.max_posts_in_flight.store(0, Relaxed);
        let (_, stats) = s.push_with("modify-complete.json", config).await;
        assert_eq!(stats.delivered, 200);
        for client in &mut clients {
            assert_eq!(client.next().await, complete());
        }
        peaks.push(s.emulator.api.counters.max_posts_in_flight.load(Relaxed));
    }
    // THEN the fixed window never had more than 16 posts at the API, the adaptive one had twice
    // that (slow start adds one per answered post; a test build's slow signing keeps it lower
    // than a release build's)
    assert!(peaks[0] <= 16 && peaks[1] >= 32, "most posts in flight: fixed {}, adaptive {}", peaks[0], peaks[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_api_gateways_throttle_the_push_backs_off_and_loses_nothing() {
    use mcpush_local::aws::apigw_ws::{Rate, RequestLimits};
    use std::sync::atomic::Ordering::Relaxed;
    // GIVEN 150 subscribers and an API that takes 10 ms a post and allows 100 posts/s, burst 20
    let s = setup().await;
    let mut clients = s.subscribers(BBB, 150).await;
    s.emulator.api.set_request_limits(RequestLimits {
        post_latency: (Duration::from_millis(10), Duration::from_millis(10)),
        post_rate: Some(Rate { per_second: 100.0, burst: 20.0 }),
        connect_rate: None,
    });

    // WHEN progress-push pushes one change, from 64 posts in flight
    let config = PushConfig {
        concurrency: 64,
        max_concurrency: 1000,
        rate_limit: None,
        retry: RetryPolicy { max_attempts: 30, backoff_base_ms: 10 },
        output_base_url: None,
    };
    let (response, stats) = s.push_with("modify-complete.json", config).await;

    // THEN it was throttled, yet every subscriber got the final state exactly once
    assert!(s.emulator.api.counters.throttled.load(Relaxed) > 0, "the burst of 20 was exceeded");
    assert!(response.batch_item_failures.is_empty());
    assert_eq!((stats.delivered, stats.failed), (150, 0));
    for client in &mut clients {
        assert_eq!(client.next().await, complete());
        client.expect_silence(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_rate_limit_caps_the_posts_per_second() {
    // GIVEN 40 subscribers and PUSH_RATE_LIMIT = 200 posts/s
    let s = setup().await;
    let mut clients = s.subscribers(BBB, 40).await;
    let config = PushConfig { rate_limit: Some(200), ..PushConfig::default() };
    // WHEN one change is pushed
    let started = std::time::Instant::now();
    let (_, stats) = s.push_with("modify-complete.json", config).await;
    // THEN all 40 arrive, spaced by the cap: at least 39 intervals of 5 ms
    assert_eq!(stats.delivered, 40);
    assert!(started.elapsed() >= Duration::from_millis(195), "{:?}", started.elapsed());
    for client in &mut clients {
        assert_eq!(client.next().await, complete());
    }
}

#[tokio::test]
async fn a_job_still_failing_after_retries_is_reported_for_lambda_to_retry() {
    let s = setup().await;
    let (mut a, mut other) = (s.subscriber(BBB).await, s.subscriber("sintel.mov").await);
    s.emulator.api.set_fault_rate(1.0);
    let config = PushConfig {
        concurrency: 4,
        retry: RetryPolicy { max_attempts: 3, backoff_base_ms: 1 },
        ..PushConfig::default()
    };
    let (response, stats) = s.push_with("malformed-in-batch.json", config).await;
    let mut failed: Vec<String> =
        response.batch_item_failures.iter().filter_map(|f| f.item_identifier.clone()).collect();
    failed.sort();
    let batch = fixture("dynamodb/malformed-in-batch.json");
    let sequence = |i: usize| batch["Records"][i]["dynamodb"]["SequenceNumber"].as_str().unwrap().to_owned();
    assert_eq!(failed, [sequence(0), sequence(3)], "both jobs' records, never the malformed ones");
    assert_eq!(stats.failed, 2);
    a.expect_silence(QUIET).await;
    other.expect_silence(Duration::from_millis(1)).await;
}

/// Stores job `job_id` of `input_file` in `transition`'s state and returns the stream record that
/// brings it in (an INSERT).
async fn stored(
    jobs: &MemoryJobStore,
    job_id: &str,
    input_file: &str,
    transition: mcpush_core::domain::Transition,
    sequence: u64,
) -> Value {
    use mcpush_core::domain::{JobUpdate, job_order_from_id};
    let status = transition.status();
    let progress = if status.is_final() { 100 } else { 10 };
    let update = JobUpdate {
        job_id: job_id.into(),
        input_file: Some(input_file.into()),
        transition,
        progress: Some(progress),
        job_order: job_order_from_id(job_id).unwrap_or(0),
        phase: None,
        event_at: None,
        observed: Default::default(),
    };
    mcpush_core::service::record_update(jobs, &update).await.unwrap();
    let status = serde_json::to_value(status).unwrap();
    mcpush_tests::status_record(job_id, input_file, None, (status.as_str().unwrap(), progress.into()), sequence)
}

#[tokio::test]
async fn a_prefix_snapshot_holds_the_100_newest_files_and_finished_ones_for_ten_minutes() {
    use mcpush_core::domain::{CompleteDetails, Transition};
    let s = setup().await;
    let now = mcpush_core::now_ms() / 1000;
    let config = PushConfig::default();
    let ctx = PushContext::new(s.jobs.as_ref(), s.subscriptions.as_ref(), s.emulator.pusher.as_ref(), &config);
    let push = |event: Value, now_secs: u64| {
        let ctx = &ctx;
        async move { progress_push::handle(ctx, &event, now_secs).await }
    };
    // GIVEN 105 running jobs in three subfolders of dash/, pushed now
    let mut records = Vec::new();
    for i in 0..105u64 {
        records.push(
            stored(
                &s.jobs,
                &format!("{}-pf{i:04}", 1_700_000_000_000 + i),
                &format!("dash/{}/f{i}.mp4", i % 3),
                Transition::Progressing,
                i,
            )
            .await,
        );
    }
    let (response, _) = push(mcpush_tests::stream_event(records), now).await;
    assert!(response.batch_item_failures.is_empty());
    // AND two newer jobs that finished: one 601 s ago, one 599 s ago
    let old = stored(
        &s.jobs,
        "1800000000000-finold",
        "dash/finished-long-ago.mp4",
        Transition::Complete(CompleteDetails::default()),
        200,
    )
    .await;
    push(mcpush_tests::stream_event(vec![old]), now - 601).await;
    let recent = stored(
        &s.jobs,
        "1800000000001-finnew",
        "dash/finished-lately.mp4",
        Transition::Complete(CompleteDetails::default()),
        201,
    )
    .await;
    push(mcpush_tests::stream_event(vec![recent]), now - 599).await;

    // WHEN a batched dashboard subscribes to dash/
    let mut dashboard = s.emulator.client().await;
    let reply = dashboard.ask(&json!({"action": "subscribe", "prefix": "dash/", "batch": true}).to_string()).await;
    assert_eq!(reply, json!({"type": "subscribed", "prefix": "dash/"}));

    // THEN one statuses message holds 100 files, newest job first: the recently finished one, then
    // the running ones from the newest down; the one that finished over ten minutes ago is not there
    let snapshot = dashboard.next().await;
    let files: Vec<&str> =
        snapshot["updates"].as_array().unwrap().iter().map(|u| u["input_file"].as_str().unwrap()).collect();
    let mut expected = vec!["dash/finished-lately.mp4".to_owned()];
    expected.extend((6..105).rev().map(|i| format!("dash/{}/f{i}.mp4", i % 3)));
    assert_eq!(files, expected);
    dashboard.expect_silence(QUIET).await;

    // AND a plain subscriber of a subfolder gets one status per file under it (posted several at
    // a time, so in no set order)
    let mut plain = s.emulator.client().await;
    assert_eq!(
        plain.ask(&json!({"action": "subscribe", "prefix": "dash/1/"}).to_string()).await,
        json!({"type": "subscribed", "prefix": "dash/1/"})
    );
    let mut seen = Vec::new();
    while let Some(message) = plain.next_within(QUIET).await {
        assert_eq!(message["type"], "status", "{message}");
        seen.push(message["input_file"].as_str().unwrap().to_owned());
    }
    seen.sort();
    let mut expected: Vec<String> = (0..105).filter(|i| i % 3 == 1).map(|i| format!("dash/1/f{i}.mp4")).collect();
    expected.sort();
    assert_eq!(seen, expected);
}
