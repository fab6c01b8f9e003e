//! End to end on real peers: MediaConvert events → progress-ingest → DynamoDB (moto) → the
//! table's real stream (DynamoDB Streams API, read like Lambda's event source mapping) →
//! progress-push → the Management API emulator → real WebSocket clients.

use std::sync::Arc;
use std::time::Duration;

use mcpush_core::adapters::dynamodb::DynamoJobStore;
use mcpush_core::adapters::dynamodb::DynamoSubscriptionStore;
use mcpush_core::config::{PushConfig, RetryPolicy, WsConfig};
use mcpush_core::domain::token::{self, ReadAccess};
use mcpush_core::handlers::progress_ingest;
use mcpush_core::handlers::progress_push::{self, PushContext};
use mcpush_core::ports::{JobStore, SubscriptionStore};
use mcpush_local::aws::stream::StreamPoller;
use mcpush_tests::ws::{Client, Emulator};
use mcpush_tests::{dynamodb_client, dynamodb_streams_client, fixture, fresh_store, fresh_subscriptions};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Error as WsError;

const BBB: &str = "Big Buck Bunny.mp4";
const HLS: [&str; 6] = mcpush_tests::HLS_JOB_EVENTS;

struct Pipeline {
    jobs: Arc<DynamoJobStore>,
    subscriptions: Arc<DynamoSubscriptionStore>,
    emulator: Emulator,
    poller: StreamPoller,
    push: PushConfig,
}

impl Pipeline {
    async fn start(ws: WsConfig, push: PushConfig) -> Self {
        let jobs = Arc::new(fresh_store("e2e").await);
        let subscriptions = Arc::new(fresh_subscriptions("e2e").await);
        let emulator = Emulator::start(jobs.clone(), subscriptions.clone(), ws).await;
        let mut poller = StreamPoller::open(&dynamodb_client(), dynamodb_streams_client(), &jobs.tables().status, 100)
            .await
            .unwrap();
        poller.max_retries = 20;
        Self { jobs, subscriptions, emulator, poller, push }
    }

    async fn ingest(&self, file: &str) {
        progress_ingest::handle(self.jobs.as_ref(), &fixture(&format!("eventbridge/{file}")), 1).await.unwrap();
    }

    /// Runs the event source mapping until the stream is drained.
    async fn flow(&mut self) -> usize {
        let ctx = PushContext::new(
            self.jobs.as_ref(),
            self.subscriptions.as_ref(),
            self.emulator.pusher.as_ref(),
            &self.push,
        );
        let ctx = &ctx;
        self.poller
            .drain(
                |event: Value| async move { progress_push::handle(ctx, &event, mcpush_core::now_ms() / 1000).await.0 },
            )
            .await
            .unwrap()
    }

    /// Ingests the HLS job's events one by one, letting each change flow to the clients.
    async fn run_hls_job(&mut self) {
        for file in HLS {
            self.ingest(file).await;
            self.flow().await;
        }
    }

    async fn subscriber(&self) -> Client {
        let mut client = self.emulator.client().await;
        assert_eq!(client.subscribe(BBB).await, json!({"type": "subscribed", "input_file": BBB}));
        client
    }
}

fn progress_of(messages: &[Value]) -> Vec<u64> {
    messages.iter().filter(|m| m["type"] == "status").filter_map(|m| m["progress_rate"].as_u64()).collect()
}

fn is_complete(message: &Value) -> bool {
    message["job_status"] == "COMPLETE"
}

#[tokio::test]
async fn several_clients_see_progress_never_decrease_and_end_in_complete() {
    let mut p = Pipeline::start(WsConfig::default(), PushConfig::default()).await;
    let mut clients = vec![p.subscriber().await, p.subscriber().await, p.subscriber().await];
    p.run_hls_job().await;
    for client in &mut clients {
        let seen = client.until(is_complete).await;
        let progress = progress_of(&seen);
        assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
        // (every event is news: INPUT_INFORMATION and a report without a percent move the times)
        assert_eq!(progress, [0, 0, 25, 25, 70, 100]);
        let mut last = seen.last().unwrap().clone();
        let outputs = last.as_object_mut().unwrap().remove("outputs").expect("outputs");
        assert_eq!(outputs.as_array().map(Vec::len), Some(3), "{outputs}");
        assert_eq!(
            &last,
            &json!({"type": "status", "input_file": BBB, "job_id": "1700000000000-bbbhls", "job_status": "COMPLETE",
                    "progress_rate": 100, "version": 6, "submitted_at": 1700000000000u64, "started_at": 1700000001000u64,
                    "finished_at": 1700000181000u64, "updated_at": 1700000181000u64, "queued_ms": 1000, "elapsed_ms": 180000,
                    "duration_ms": 596458, "width_px": 1280, "height_px": 720,
                    "output_path": "Big Buck Bunny.mp4_test/", "playlists": {".m3u8": "Big Buck Bunny.m3u8"}})
        );
    }
}

#[tokio::test]
async fn a_client_subscribing_after_complete_gets_the_snapshot() {
    let mut p = Pipeline::start(WsConfig::default(), PushConfig::default()).await;
    for file in HLS {
        p.ingest(file).await;
    }
    p.flow().await;
    let mut late = p.emulator.client().await;
    assert_eq!(late.subscribe(BBB).await, json!({"type": "subscribed", "input_file": BBB}));
    let snapshot = late.next().await;
    assert!(is_complete(&snapshot), "{snapshot}");
    assert_eq!(snapshot["progress_rate"], 100);
}

#[tokio::test]
async fn a_client_that_vanished_without_disconnect_loses_its_subscriptions_on_the_next_push() {
    let mut p = Pipeline::start(WsConfig::default(), PushConfig::default()).await;
    let mut stays = p.subscriber().await;
    let stays_id = p.emulator.api.connection_ids().pop().unwrap();
    let _vanishes = p.subscriber().await;
    let vanishing = p.emulator.api.connection_ids().into_iter().find(|id| *id != stays_id).unwrap();
    assert!(p.emulator.api.forget(&vanishing));
    assert_eq!(p.subscriptions.subscriptions(&vanishing).await.unwrap(), [BBB]);

    p.ingest("hls-3-status-update-25.json").await;
    p.flow().await;

    assert_eq!(stays.next().await["progress_rate"], 25);
    assert!(p.subscriptions.subscriptions(&vanishing).await.unwrap().is_empty(), "410 removed it");
    assert_eq!(p.subscriptions.subscriptions(&stays_id).await.unwrap(), [BBB]);
}

#[tokio::test]
async fn with_a_fifth_of_posts_failing_every_subscriber_still_gets_the_terminal_message() {
    let push = PushConfig {
        concurrency: 16,
        retry: RetryPolicy { max_attempts: 2, backoff_base_ms: 1 },
        ..PushConfig::default()
    };
    let mut p = Pipeline::start(WsConfig::default(), push).await;
    let mut clients = Vec::new();
    for _ in 0..10 {
        clients.push(p.subscriber().await);
    }
    p.emulator.api.set_fault_rate(0.2);
    p.run_hls_job().await;
    for client in &mut clients {
        let seen = client.until(is_complete).await;
        let progress = progress_of(&seen);
        assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    }
    assert!(p.emulator.api.counters.faults.load(std::sync::atomic::Ordering::Relaxed) > 0);
}

#[tokio::test]
async fn a_foreign_origin_is_refused_with_403_and_no_origin_is_allowed() {
    let p = Pipeline::start(WsConfig::default(), PushConfig::default()).await;
    match Client::connect(&p.emulator.ws_url(), Some("https://evil.example")).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 403),
        Err(other) => panic!("expected a 403 refusal, got {other}"),
        Ok(_) => panic!("a foreign origin was accepted"),
    }
    assert!(p.emulator.api.connection_ids().is_empty());
    let mut no_origin = Client::connect(&p.emulator.ws_url(), None).await.expect("no Origin is allowed");
    assert_eq!(no_origin.ask(r#"{"action":"ping"}"#).await, json!({"type": "pong"}));
}

#[tokio::test]
async fn every_bad_message_gets_its_error_and_the_connection_stays_open() {
    let ws = WsConfig { max_subscriptions: 2, ..WsConfig::default() };
    let p = Pipeline::start(ws, PushConfig::default()).await;
    let mut client = p.emulator.client().await;
    let long = format!(r#"{{"action":"subscribe","input_file":"{}"}}"#, "x".repeat(1025));
    let cases = [
        ("not json", "message is not valid JSON: expected ident at line 1 column 2"),
        ("[]", "message must be a JSON object"),
        (r#"{"input_file":"a.mp4"}"#, "missing \"action\" (expected subscribe, unsubscribe or ping)"),
        (r#"{"action":"dance"}"#, "unknown action \"dance\" (expected subscribe, unsubscribe or ping)"),
        (r#"{"action":"subscribe"}"#, "missing \"input_file\" or \"prefix\""),
        (r#"{"action":"subscribe","input_file":42}"#, "\"input_file\" must be a string"),
        (r#"{"action":"unsubscribe","input_file":""}"#, "\"input_file\" is empty"),
        (long.as_str(), "\"input_file\" is longer than 1024 bytes"),
        ("{\"action\":\"subscribe\",\"input_file\":\"a\\nb\"}", "\"input_file\" contains a control character"),
    ];
    for (body, message) in cases {
        assert_eq!(client.ask(body).await, json!({"type": "error", "message": message}), "{body}");
    }
    assert_eq!(client.subscribe("a.mp4").await["type"], "subscribed");
    assert_eq!(client.subscribe("b.mp4").await["type"], "subscribed");
    assert_eq!(
        client.subscribe("c.mp4").await,
        json!({"type": "error", "message": "subscription limit reached: at most 2 files or prefixes per connection", "input_file": "c.mp4"})
    );
    assert_eq!(
        client.ask(r#"{"action":"unsubscribe","input_file":"a.mp4"}"#).await,
        json!({"type": "unsubscribed", "input_file": "a.mp4"})
    );
    assert_eq!(client.subscribe("c.mp4").await["type"], "subscribed");
    assert_eq!(client.ask(r#"{"action":"ping"}"#).await, json!({"type": "pong"}));
}

#[tokio::test]
async fn unsubscribe_and_disconnect_stop_the_pushes() {
    let mut p = Pipeline::start(WsConfig::default(), PushConfig::default()).await;
    let mut leaving = p.subscriber().await;
    let mut closing = p.subscriber().await;
    let closing_id = p.emulator.api.connection_ids().into_iter().last().unwrap();
    assert_eq!(
        leaving.ask(&json!({"action": "unsubscribe", "input_file": BBB}).to_string()).await["type"],
        "unsubscribed"
    );
    closing.send(r#"{"action":"ping"}"#).await;
    closing.next().await;
    closing.close().await;
    let mut removed = false;
    for _ in 0..250 {
        removed = p.subscriptions.subscriptions(&closing_id).await.unwrap().is_empty();
        if removed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(removed, "$disconnect removed the closed connection's subscriptions");

    p.ingest("hls-3-status-update-25.json").await;
    p.flow().await;
    leaving.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn with_a_subscribe_secret_only_a_valid_token_subscribes() {
    let ws = WsConfig { access: ReadAccess::new(Some(b"upload-service-secret".to_vec())), ..WsConfig::default() };
    let p = Pipeline::start(ws, PushConfig::default()).await;
    let mut client = p.emulator.client().await;
    let refused = |message: &str| json!({"type": "error", "message": message, "input_file": BBB});
    assert_eq!(client.subscribe(BBB).await, refused("a \"token\" is required"));
    let expires = mcpush_core::now_ms() / 1000 + 600;
    let wrong = token::issue(b"upload-service-secret", "other.mp4", expires);
    let request = json!({"action": "subscribe", "input_file": BBB, "token": wrong});
    assert_eq!(client.ask(&request.to_string()).await, refused("\"token\" does not cover this input_file"));
    let good = token::issue(b"upload-service-secret", BBB, expires);
    let request = json!({"action": "subscribe", "input_file": BBB, "token": good});
    assert_eq!(client.ask(&request.to_string()).await, json!({"type": "subscribed", "input_file": BBB}));
}

#[tokio::test]
async fn an_error_with_a_200_kb_message_still_reaches_its_subscriber() {
    // GIVEN a subscriber of a file whose job fails with a 200 KB error message (API Gateway
    // refuses posts above 128 KB)
    let mut p = Pipeline::start(WsConfig::default(), PushConfig::default()).await;
    let mut client = p.emulator.client().await;
    assert_eq!(client.subscribe("broken.mp4").await, json!({"type": "subscribed", "input_file": "broken.mp4"}));
    let mut event = fixture("eventbridge/error.json");
    let whole = format!("Unable to open input file: {}", "x".repeat(200 * 1024));
    event["detail"]["errorMessage"] = json!(whole);

    // WHEN it is ingested and pushed
    progress_ingest::handle(p.jobs.as_ref(), &event, 1).await.unwrap();
    p.flow().await;

    // THEN the subscriber gets the ERROR with the message cut and marked, and the store keeps it whole
    let message = client.next().await;
    assert_eq!((message["job_status"].as_str(), message["error_code"].as_i64()), (Some("ERROR"), Some(1010)));
    let pushed = message["error_message"].as_str().unwrap();
    assert!(
        pushed.starts_with("Unable to open input file: xxx")
            && pushed.ends_with(mcpush_core::domain::protocol::CUT_MARKER),
        "{}",
        &pushed[..60]
    );
    let stored = p.jobs.job("1700000900000-errorx").await.unwrap().unwrap();
    assert_eq!(stored.error_message.as_deref(), Some(whole.as_str()));
}

#[tokio::test]
async fn replies_survive_a_throttled_management_api() {
    // GIVEN a Management API answering 429 or 500 to half of all posts, and replies retried
    let ws = WsConfig { retry: RetryPolicy { max_attempts: 12, backoff_base_ms: 1 }, ..WsConfig::default() };
    let p = Pipeline::start(ws, PushConfig::default()).await;
    p.emulator.api.set_fault_rate(0.5);
    let mut client = p.emulator.client().await;

    // WHEN the client subscribes and pings twenty times
    assert_eq!(client.subscribe(BBB).await, json!({"type": "subscribed", "input_file": BBB}));
    for _ in 0..20 {
        // THEN every reply arrives
        assert_eq!(client.ask(r#"{"action":"ping"}"#).await, json!({"type": "pong"}));
    }
    let faults = p.emulator.api.counters.faults.load(std::sync::atomic::Ordering::Relaxed);
    assert!(faults >= 5, "the fault switch was on: {faults} faults");
}

/// A MediaConvert event of the fixture `template`, for job `job_id` of `input_file`.
fn job_event(template: &str, job_id: &str, input_file: &str) -> Value {
    let mut event = fixture(&format!("eventbridge/{template}"));
    event["detail"]["jobId"] = json!(job_id);
    event["detail"]["userMetadata"]["input_file"] = json!(input_file);
    event["resources"] = json!([format!("arn:aws:mediaconvert:ap-northeast-1:111122223333:jobs/{job_id}")]);
    event
}

impl Pipeline {
    /// Ingests each `(fixture, job id, input file)` event, then lets the changes flow in one go.
    async fn jobs_change(&mut self, events: &[(&str, &str, &str)]) {
        for (template, job_id, input_file) in events {
            progress_ingest::handle(self.jobs.as_ref(), &job_event(template, job_id, input_file), 1).await.unwrap();
        }
        self.flow().await;
    }
}

fn watching(message: &Value) -> (String, String) {
    (
        message["input_file"].as_str().unwrap_or_default().to_owned(),
        message["job_status"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn a_prefix_watcher_sees_every_file_under_it_once_with_a_snapshot_of_recent_ones() {
    const PROGRESSING: &str = "hls-1-progressing.json";
    const COMPLETE: &str = "hls-6-complete.json";
    let mut p = Pipeline::start(WsConfig::default(), PushConfig::default()).await;
    // GIVEN a finished job under uploads/u1/ and a running one under uploads/u2/, before anyone watches
    p.jobs_change(&[
        (PROGRESSING, "1700000000001-prefx1", "uploads/u1/old/x.mp4"),
        (PROGRESSING, "1700000000002-prefx2", "uploads/u2/y.mp4"),
    ])
    .await;
    p.jobs_change(&[(COMPLETE, "1700000000001-prefx1", "uploads/u1/old/x.mp4")]).await;

    // WHEN a dashboard watches uploads/u1/ and one of its files, and a batched one all of uploads/
    let mut dashboard = p.emulator.client().await;
    let subscribe = json!({"action": "subscribe", "prefix": "uploads/u1/"}).to_string();
    assert_eq!(dashboard.ask(&subscribe).await, json!({"type": "subscribed", "prefix": "uploads/u1/"}));
    // THEN each gets the snapshot of its folder at once: the dashboard the finished x.mp4 ...
    assert_eq!(watching(&dashboard.next().await), ("uploads/u1/old/x.mp4".into(), "COMPLETE".into()));
    assert_eq!(
        dashboard.subscribe("uploads/u1/a.mp4").await,
        json!({"type": "subscribed", "input_file": "uploads/u1/a.mp4"})
    );
    let mut batched = p.emulator.client().await;
    let subscribe = json!({"action": "subscribe", "prefix": "uploads/", "batch": true}).to_string();
    assert_eq!(batched.ask(&subscribe).await, json!({"type": "subscribed", "prefix": "uploads/"}));
    // ... the batched one both files in one statuses message, the newest job first
    let snapshot = batched.next().await;
    assert_eq!(snapshot["type"], "statuses", "{snapshot}");
    let files: Vec<_> = snapshot["updates"].as_array().unwrap().iter().map(watching).collect();
    assert_eq!(
        files,
        [("uploads/u2/y.mp4".into(), "PROGRESSING".into()), ("uploads/u1/old/x.mp4".into(), "COMPLETE".into())]
    );

    // WHEN files under both folders change in one stream batch
    p.jobs_change(&[
        (PROGRESSING, "1700000000003-prefx3", "uploads/u1/a.mp4"),
        (PROGRESSING, "1700000000004-prefx4", "uploads/u2/deep/b.mp4"),
    ])
    .await;
    // THEN the dashboard gets a.mp4 once (it watches it twice over), and not b.mp4
    assert_eq!(watching(&dashboard.next().await), ("uploads/u1/a.mp4".into(), "PROGRESSING".into()));
    dashboard.expect_silence(Duration::from_millis(300)).await;
    // AND the batched dashboard one message with both
    let push = batched.next().await;
    let mut files: Vec<_> = push["updates"].as_array().unwrap().iter().map(watching).collect();
    files.sort();
    assert_eq!(
        files,
        [("uploads/u1/a.mp4".into(), "PROGRESSING".into()), ("uploads/u2/deep/b.mp4".into(), "PROGRESSING".into())]
    );
    batched.expect_silence(Duration::from_millis(1)).await;

    // WHEN the dashboard unsubscribes from the folder
    let unsubscribe = json!({"action": "unsubscribe", "prefix": "uploads/u1/"}).to_string();
    assert_eq!(dashboard.ask(&unsubscribe).await, json!({"type": "unsubscribed", "prefix": "uploads/u1/"}));
    p.jobs_change(&[
        (COMPLETE, "1700000000003-prefx3", "uploads/u1/a.mp4"),
        (PROGRESSING, "1700000000005-prefx5", "uploads/u1/c.mp4"),
    ])
    .await;
    // THEN it still gets the file it watches, and nothing else under the folder
    assert_eq!(watching(&dashboard.next().await), ("uploads/u1/a.mp4".into(), "COMPLETE".into()));
    dashboard.expect_silence(Duration::from_millis(300)).await;
}

const SECRET: &[u8] = b"upload-service-secret";

/// The edge's rules for prefixes, whatever the store: a token for that folder or one above it, and
/// files and prefixes under one cap (3 here).
async fn a_prefix_needs_a_folder_token_and_shares_the_cap(emulator: &Emulator) {
    let mut client = emulator.client().await;
    let expires = mcpush_core::now_ms() / 1000 + 600;
    let ask = |prefix: &str, token: Option<String>| {
        json!({"action": "subscribe", "prefix": prefix, "token": token}).to_string()
    };
    // (a refusal names the prefix it refused)
    let refused = |prefix: &str, message: &str| json!({"type": "error", "message": message, "prefix": prefix});
    // no token; a file's token; a token for a sibling or a subfolder
    assert_eq!(client.ask(&ask("uploads/u1/", None)).await, refused("uploads/u1/", "a \"token\" is required"));
    let file = token::issue(SECRET, "uploads/u1/a.mp4", expires);
    assert_eq!(
        client.ask(&ask("uploads/u1/", Some(file))).await,
        refused("uploads/u1/", "\"token\" does not cover this prefix")
    );
    let folder = token::issue(SECRET, "uploads/u1/", expires);
    assert_eq!(
        client.ask(&ask("uploads/u10/", Some(folder.clone()))).await,
        refused("uploads/u10/", "\"token\" does not cover this prefix")
    );
    assert_eq!(
        client.ask(&ask("uploads/", Some(folder.clone()))).await,
        refused("uploads/", "\"token\" does not cover this prefix")
    );
    // the folder's token covers the folder and everything under it, files included
    assert_eq!(
        client.ask(&ask("uploads/u1/", Some(folder.clone()))).await,
        json!({"type": "subscribed", "prefix": "uploads/u1/"})
    );
    assert_eq!(
        client.ask(&ask("uploads/u1/deep/", Some(folder.clone()))).await,
        json!({"type": "subscribed", "prefix": "uploads/u1/deep/"})
    );
    let request = json!({"action": "subscribe", "input_file": "uploads/u1/deep/b.mp4", "token": folder});
    assert_eq!(
        client.ask(&request.to_string()).await,
        json!({"type": "subscribed", "input_file": "uploads/u1/deep/b.mp4"})
    );
    // that was the third topic: a fourth, prefix or not, is over the cap until one goes
    let parent = token::issue(SECRET, "uploads/", expires);
    let limit =
        |prefix: &str| refused(prefix, "subscription limit reached: at most 3 files or prefixes per connection");
    assert_eq!(client.ask(&ask("uploads/u2/", Some(parent.clone()))).await, limit("uploads/u2/"));
    assert_eq!(
        client.ask(&json!({"action": "unsubscribe", "prefix": "uploads/u1/deep/"}).to_string()).await,
        json!({"type": "unsubscribed", "prefix": "uploads/u1/deep/"})
    );
    assert_eq!(
        client.ask(&ask("uploads/u2/", Some(parent.clone()))).await,
        json!({"type": "subscribed", "prefix": "uploads/u2/"})
    );
    assert_eq!(client.ask(&ask("uploads/u3/", Some(parent))).await, limit("uploads/u3/"));
}

fn tokens_and_a_cap_of_three() -> WsConfig {
    WsConfig { access: ReadAccess::new(Some(SECRET.to_vec())), max_subscriptions: 3, ..WsConfig::default() }
}

#[tokio::test]
async fn on_dynamodb_a_prefix_needs_a_folder_token_and_shares_the_cap() {
    let p = Pipeline::start(tokens_and_a_cap_of_three(), PushConfig::default()).await;
    a_prefix_needs_a_folder_token_and_shares_the_cap(&p.emulator).await;
}

#[tokio::test]
async fn in_memory_a_prefix_needs_a_folder_token_and_shares_the_cap() {
    use mcpush_core::adapters::memory::{MemoryJobStore, MemorySubscriptionStore};
    let emulator = Emulator::start(
        Arc::new(MemoryJobStore::default()),
        Arc::new(MemorySubscriptionStore::default()),
        tokens_and_a_cap_of_three(),
    )
    .await;
    a_prefix_needs_a_folder_token_and_shares_the_cap(&emulator).await;
}
