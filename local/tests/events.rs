//! Backends told too: the local stack's event-publisher puts one `Job Status Changed` event per
//! status transition on the local EventBridge, which keeps them (`GET /_local/events`) and
//! delivers them to `WEBHOOK_URL` as an API destination would. Every event seen is checked
//! against `docs/events/job-status-changed.schema.json`.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use common::http;
use mcpush_local::aws::eventbridge::{SECRET_HEADER, USER_AGENT, Webhook};
use mcpush_local::aws::mediaconvert::SimSettings;
use serde_json::Value;

/// A backend's webhook receiver: answers 500 to every third request (before keeping it), and
/// keeps the others' bodies and headers.
#[derive(Clone, Default)]
struct Receiver {
    requests: Arc<Mutex<usize>>,
    kept: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
}

impl Receiver {
    async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let url = format!("http://{}/hooks/mediaconvert", listener.local_addr().expect("its address"));
        let receiver = self.clone();
        let router = axum::Router::new().route(
            "/hooks/mediaconvert",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let receiver = receiver.clone();
                async move {
                    let n = {
                        let mut requests = receiver.requests.lock().unwrap();
                        *requests += 1;
                        *requests
                    };
                    if n % 3 == 0 {
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    let event: Value = serde_json::from_str(&body).expect("the body is the event, JSON");
                    receiver.kept.lock().unwrap().push((headers, event));
                    StatusCode::OK
                }
            }),
        );
        tokio::spawn(axum::serve(listener, router).into_future());
        url
    }

    fn events(&self) -> Vec<Value> {
        self.kept.lock().unwrap().iter().map(|(_, e)| e.clone()).collect()
    }
}

async fn put(base: &str, path: &str, bytes: usize) {
    let (status, body) = http("PUT", &format!("{base}/s3/{path}"), Some(&"x".repeat(bytes))).await.unwrap();
    assert_eq!(status, 200, "{body}");
}

const FINAL: [&str; 3] = ["COMPLETE", "ERROR", "CANCELED"];

/// The events received per job id, in the order they arrived.
fn by_job(events: &[Value]) -> BTreeMap<String, Vec<Value>> {
    let mut jobs: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for event in events {
        let job_id = event["detail"]["job_id"].as_str().expect("a job id").to_owned();
        jobs.entry(job_id).or_default().push(event["detail"].clone());
    }
    jobs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_status_transition_reaches_the_webhook_once_in_order_through_chaos_drops_and_refusals() {
    // GIVEN a backend's webhook that fails every third request, and a local stack whose simulated
    // MediaConvert delays, duplicates and drops events and whose bus refuses a fifth of the
    // entries put on it
    let receiver = Receiver::default();
    let url = receiver.serve().await;
    let (base, _stack, s3_dir) = common::serve_stack("events", |options| {
        options.simulator = SimSettings {
            step: Duration::from_millis(40),
            chaos: 0.6,
            drop: 0.3,
            seed: Some(27),
            ..SimSettings::default()
        };
        options.eventbridge_fault_rate = 0.2;
        options.events.retry.max_attempts = 12;
        options.events.retry.backoff_base_ms = 5;
        options.webhook = Some(Webhook {
            url: url.clone(),
            secret: Some("a-shared-secret".into()),
            backoff: Duration::from_millis(20),
        });
    })
    .await;

    // (and `events` follows the stack from the start, as a developer tails it)
    let tail = std::process::Command::new(env!("CARGO_BIN_EXE_mcpush-local"))
        .args(["events", "--url", &base, "--interval-ms", "100"])
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts");

    // WHEN four files are uploaded, one of which MediaConvert cannot probe
    for name in ["a.mp4", "b.mp4", "c.mp4"] {
        put(&base, &format!("uploads/events/{name}"), 400_000).await;
    }
    put(&base, "uploads/events/failing.mp4", 10).await;

    // THEN each job's events reach the webhook ending in its final state
    let deadline = Instant::now() + Duration::from_secs(40);
    let jobs = loop {
        let jobs = by_job(&receiver.events());
        let ended = jobs.values().filter(|events| {
            events.last().is_some_and(|e| FINAL.contains(&e["job_status"].as_str().unwrap_or_default()))
        });
        if jobs.len() == 4 && ended.count() == 4 {
            break jobs;
        }
        if Instant::now() > deadline {
            let (_, kept) = http("GET", &format!("{base}/_local/events"), None).await.unwrap();
            let (_, status) = http("GET", &format!("{base}/media/status?input_file=events/a.mp4"), None).await.unwrap();
            panic!(
                "no final event for every job within 40 s: {jobs:#?}\nkept by the bus: {kept}\nevents/a.mp4: {status}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = receiver.events();
    assert_eq!(by_job(&events), jobs, "no event arrives after a job's final one");

    // AND each one is described by the schema and arrives as an API destination sends it
    for (headers, event) in receiver.kept.lock().unwrap().iter() {
        common::protocol::assert_job_event(event);
        assert_eq!(headers["content-type"], "application/json; charset=utf-8");
        assert_eq!(headers["user-agent"], USER_AGENT);
        assert_eq!(headers[SECRET_HEADER], "a-shared-secret");
        assert_eq!(
            (event["source"].as_str(), event["detail-type"].as_str()),
            (Some("mcpush"), Some("Job Status Changed"))
        );
    }
    // AND per job: exactly one event per transition, in order of version: the first has no
    // previous status, each next one left the status the one before reached, no transition twice
    for (job_id, chain) in &jobs {
        assert!(chain[0].get("previous_status").is_none(), "{job_id}: {chain:#?}");
        for pair in chain.windows(2) {
            assert_eq!(pair[1]["previous_status"], pair[0]["job_status"], "{job_id}: {chain:#?}");
            assert!(pair[0]["version"].as_u64() < pair[1]["version"].as_u64(), "{job_id}: {chain:#?}");
            assert_ne!(pair[0]["job_status"], pair[1]["job_status"], "{job_id}: {chain:#?}");
        }
        // and the last is the state the REST API answers
        let file = chain[0]["input_file"].as_str().expect("the file").to_owned();
        let (_, body) = http("GET", &format!("{base}/media/status?input_file={file}"), None).await.unwrap();
        let status: Value = serde_json::from_str(&body).unwrap();
        let last = chain.last().unwrap();
        assert_eq!((&status["job_status"], &status["version"]), (&last["job_status"], &last["version"]), "{file}");
    }
    let statuses: Vec<&str> = jobs.values().map(|c| c.last().unwrap()["job_status"].as_str().unwrap()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == "COMPLETE").count(), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == "ERROR").count(), 1, "{statuses:?}");
    // a COMPLETE event carries the whole state, outputs included
    let complete = jobs.values().map(|c| c.last().unwrap()).find(|e| e["job_status"] == "COMPLETE").unwrap();
    assert!(complete["outputs"].as_array().is_some_and(|o| !o.is_empty()), "{complete}");
    assert!(*receiver.requests.lock().unwrap() > events.len(), "the receiver's 500s were retried");

    // AND event-publisher's metrics count them (the refused entries retried), as CloudWatch would
    tokio::time::sleep(mcpush_local::run::metrics::FLUSH_INTERVAL * 3).await;
    let (_, metrics) = http("GET", &format!("{base}/_local/metrics"), None).await.unwrap();
    let metrics: Value = serde_json::from_str(&metrics).unwrap();
    let published = metrics["event-publisher"]["EventsPublished"]["sum"].as_f64().unwrap_or_default();
    assert!(published >= events.len() as f64, "{metrics:#}");
    assert!(metrics["event-publisher"]["EventsRetried"]["sum"].as_f64() > Some(0.0), "{metrics:#}");

    // AND GET /_local/events lists the same events, one JSON object per line
    let (status, lines) = http("GET", &format!("{base}/_local/events"), None).await.unwrap();
    assert_eq!(status, 200);
    let listed: Vec<Value> = lines.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    let ids = |events: &[Value]| -> Vec<String> {
        let mut ids: Vec<String> = events.iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&listed), ids(&events));
    listed.iter().for_each(common::protocol::assert_job_event);
    // AND `events` printed each of them once, as JSON Lines, while following
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut tail = tail;
    let _ = tail.kill();
    let tailed = tail.wait_with_output().unwrap();
    let tailed: Vec<Value> = String::from_utf8_lossy(&tailed.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(ids(&tailed), ids(&listed));
    // and `--once --summary` prints what is kept, a line each, and ends
    let once = std::process::Command::new(env!("CARGO_BIN_EXE_mcpush-local"))
        .args(["events", "--url", &base, "--once", "--summary"])
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs");
    assert!(once.status.success(), "{once:?}");
    let summary = String::from_utf8_lossy(&once.stdout).into_owned();
    assert_eq!(summary.lines().count(), listed.len(), "{summary}");
    assert!(summary.contains("(new) → SUBMITTED") && summary.contains("PROGRESSING → COMPLETE"), "{summary}");
    // and ?after= gives only what came after an event
    let second = listed[1]["id"].as_str().unwrap();
    let (_, after) = http("GET", &format!("{base}/_local/events?after={second}"), None).await.unwrap();
    assert_eq!(after.lines().count(), listed.len() - 2);
    let _ = std::fs::remove_dir_all(s3_dir);
}

#[tokio::test]
async fn the_local_event_list_refuses_other_sites_and_the_bus_refuses_what_eventbridge_refuses() {
    // GIVEN a local stack
    let (base, _stack, s3_dir) = common::serve_stack("events-guard", |_| {}).await;
    let client = reqwest::Client::new();
    // WHEN a page of another site reads the events
    let foreign =
        client.get(format!("{base}/_local/events")).header("origin", "https://evil.example").send().await.unwrap();
    // THEN it is refused
    assert_eq!(foreign.status(), 403);
    // WHEN PutEvents gets eleven entries, or an entry whose detail is not a JSON object
    let eventbridge = mcpush_local::aws::eventbridge::local_client(&base, "us-east-1");
    let entry = |detail: &str| {
        aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source("mcpush")
            .detail_type("Job Status Changed")
            .detail(detail)
            .build()
    };
    let eleven = eventbridge.put_events().set_entries(Some(vec![entry("{}"); 11])).send().await;
    let mixed = eventbridge.put_events().entries(entry("[1]")).entries(entry(r#"{"job_id": "j"}"#)).send().await;
    // THEN the call is refused, or that entry alone
    let error = aws_sdk_eventbridge::error::DisplayErrorContext(eleven.unwrap_err()).to_string();
    assert!(error.contains("ValidationException"), "{error}");
    let mixed = mixed.expect("a partial failure is an answer");
    assert_eq!(mixed.failed_entry_count, 1);
    let entries = mixed.entries.unwrap();
    assert_eq!(entries[0].error_code.as_deref(), Some("MalformedDetail"));
    assert!(entries[1].event_id.is_some() && entries[1].error_code.is_none());
    let _ = std::fs::remove_dir_all(s3_dir);
}

#[tokio::test]
async fn a_bus_that_refuses_everything_hands_the_batch_back_from_its_first_transition() {
    use mcpush_core::adapters::memory::JobChange;
    use mcpush_core::domain::{JobRecord, JobStatus};
    use mcpush_local::aws::stream::{EmbeddedStream, lambda_event};
    // GIVEN a local stack whose bus refuses every entry, and a stream batch of three jobs: a
    // progress-only write, a new job, and a job's start
    let local = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut options = mcpush_local::Options::default();
        options.events.retry.max_attempts = 2;
        options.events.retry.backoff_base_ms = 1;
        let local = mcpush_local::local(&base, options);
        tokio::spawn(axum::serve(listener, local.router.clone()).into_future());
        local
    };
    local.bus.set_fault_rate(1.0);
    let job = |id: &str, status: JobStatus, progress: u8, version: u64| JobRecord {
        input_file: Some(format!("refused/{id}.mp4")),
        job_status: status,
        progress_rate: progress,
        version: Some(version),
        ..JobRecord::submitted(&format!("1700000000000-{id}"))
    };
    let stream = EmbeddedStream::new("MediaConvertJobIdToStatus");
    let batch = [
        stream.record(&JobChange::Modified {
            old: Box::new(job("aaaaaa", JobStatus::Progressing, 10, 2)),
            new: Box::new(job("aaaaaa", JobStatus::Progressing, 20, 3)),
        }),
        stream.record(&JobChange::Inserted(job("bbbbbb", JobStatus::Submitted, 0, 1))),
        stream.record(&JobChange::Modified {
            old: Box::new(job("cccccc", JobStatus::Submitted, 0, 1)),
            new: Box::new(job("cccccc", JobStatus::Progressing, 5, 2)),
        }),
    ];

    // WHEN event-publisher gets the batch
    let refused = local.stack.event_publisher(&lambda_event(&batch)).await;
    // THEN the batch is handed back from the new job's record (the first transition), and the bus
    // kept nothing
    let failures: Vec<Option<String>> = refused.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
    assert_eq!(failures, vec![batch[1].change.sequence_number.clone()]);
    assert!(local.bus.events().is_empty());

    // WHEN the bus takes entries again and Lambda redelivers from that record
    local.bus.set_fault_rate(0.0);
    let retried = local.stack.event_publisher(&lambda_event(&batch[1..])).await;
    // THEN both transitions are published, in order, and nothing is handed back
    assert!(retried.batch_item_failures.is_empty());
    let published: Vec<(String, String)> = local
        .bus
        .events()
        .iter()
        .map(|e| (e.detail["job_id"].as_str().unwrap().to_owned(), e.detail["job_status"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        published,
        [
            ("1700000000000-bbbbbb".to_owned(), "SUBMITTED".to_owned()),
            ("1700000000000-cccccc".to_owned(), "PROGRESSING".to_owned())
        ]
    );
}
