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
    let status_table = options.tables.status.clone();
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

    // AND event-publisher, on a mapping of its own on the same stream, told backends each status
    // transition once, in order, the last one COMPLETE
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let events = loop {
        let request = Request::get("/_local/events").header("host", "127.0.0.1").body(Body::empty()).unwrap();
        let body = app.clone().oneshot(request).await.unwrap().into_body();
        let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        let events: Vec<serde_json::Value> = String::from_utf8_lossy(&body)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|e: &serde_json::Value| e["detail"]["input_file"] == "Big Buck Bunny.mp4")
            .collect();
        if events.last().is_some_and(|e| e["detail"]["job_status"] == "COMPLETE") {
            break events;
        }
        assert!(std::time::Instant::now() < deadline, "no COMPLETE event within 10 s: {events:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    events.iter().for_each(mcpush_tests::protocol::assert_job_event);
    let statuses: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e["detail"]["previous_status"].as_str().unwrap_or("-"), e["detail"]["job_status"].as_str().unwrap()))
        .collect();
    assert_eq!(statuses, [("-", "PROGRESSING"), ("PROGRESSING", "COMPLETE")]);

    // AND the DynamoDB meter in front of moto billed the status table at least a write unit per
    // event, and the reads the subscriptions took
    let request = Request::get("/_local/metrics").header("host", "127.0.0.1").body(Body::empty()).unwrap();
    let body = axum::body::to_bytes(app.clone().oneshot(request).await.unwrap().into_body(), 1 << 20).await.unwrap();
    let billing = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["billing"].clone();
    let written = billing["dynamodb_wru"][&status_table].as_f64().unwrap_or(0.0);
    assert!(written >= mcpush_tests::HLS_JOB_EVENTS.len() as f64, "{billing:#}");
    assert!(billing["dynamodb_rru"].as_object().is_some_and(|r| !r.is_empty()), "{billing:#}");
}

#[tokio::test]
async fn on_moto_with_the_simulator_a_poison_job_is_parked_while_a_lost_job_is_reconciled() {
    use mcpush_core::config::ReconcileConfig;
    use mcpush_core::domain::{JobStatus, JobUpdate, Transition};
    // GIVEN the stack on moto, its simulated MediaConvert delivering no event at all, and a
    // reconciler that looks every 200 ms at once-quiet jobs and parks after 2 failed runs
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let s3_dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("poison-{}", std::process::id()));
    let mut options = Options {
        s3_dir: s3_dir.clone(),
        reconcile: ReconcileConfig { after: Duration::ZERO, max_jobs: 100, concurrency: 4, max_failures: 2 },
        reconcile_every: Duration::from_millis(200),
        // tables of its own: the other test of this binary creates the default ones on the same moto
        tables: mcpush_core::config::TableNames { status: "PoisonStatus".into(), job_id: "PoisonJobId".into() },
        subscriptions_table: "PoisonSubscriptions".into(),
        ..Options::default()
    };
    options.simulator.drop = 1.0;
    options.simulator.step = Duration::from_millis(50);
    let stack = local_dynamodb(&base, options, &moto().endpoint).await.expect("stack on moto");
    let (app, jobs) = (stack.router.clone(), stack.stack.jobs.clone());
    tokio::spawn(async move { axum::serve(listener, stack.router).await });
    // AND a stored job whose id GetJob cannot take (it came in before ids were checked)
    let poison = format!("1700000000001-{}", "x".repeat(300));
    let update = JobUpdate {
        job_id: poison.clone(),
        input_file: Some("poison.mp4".into()),
        transition: Transition::Progressing,
        progress: Some(10),
        job_order: 1_700_000_000_001,
        phase: None,
        event_at: None,
        observed: Default::default(),
    };
    mcpush_core::service::record_update(jobs.as_ref(), &update).await.unwrap();

    // WHEN a file is uploaded, so the simulator runs its job but no event of it arrives
    let upload =
        Request::put("/s3/uploads/lost-events.mp4").header("host", "127.0.0.1").body(Body::from(vec![7u8; 50_000]));
    assert!(app.clone().oneshot(upload.unwrap()).await.unwrap().status().is_success());

    // THEN the reconciler brings the lost job to COMPLETE from GetJob and parks the poison job
    let mut state = (None, None);
    for _ in 0..150 {
        let lost = match jobs.pointer("lost-events.mp4").await.unwrap() {
            Some(pointer) => jobs.job(&pointer.job_id).await.unwrap().map(|j| j.job_status),
            None => None,
        };
        let parked = jobs.job(&poison).await.unwrap().and_then(|j| j.parked_at);
        state = (lost, parked);
        if state.0 == Some(JobStatus::Complete) && state.1.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(state.0, Some(JobStatus::Complete), "the lost job: {state:?}");
    assert!(state.1.is_some(), "the poison job was parked: {state:?}");
    let poison_job = jobs.job(&poison).await.unwrap().unwrap();
    assert_eq!((poison_job.unfinished, poison_job.reconcile_failures), (None, Some(2)));
    let _ = std::fs::remove_dir_all(&s3_dir);
}
