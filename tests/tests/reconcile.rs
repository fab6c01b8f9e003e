//! The reconciler: GetJob's answer mapped as the same job's event would be (HLS, CMAF,
//! FILE_GROUP, ERROR, PROGRESSING), read through aws-sdk-mediaconvert from a server answering in
//! the real API's shape, and whole runs against a real DynamoDB API (moto) with its sparse index.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_mediaconvert::config::{BehaviorVersion, Credentials, Region};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::get};
use mcpush_core::adapters::mediaconvert::MediaConvertJobInspector;
use mcpush_core::config::ReconcileConfig;
use mcpush_core::domain::get_job::{MediaConvertJob, Verdict, reconcile};
use mcpush_core::domain::mediaconvert::parse_event;
use mcpush_core::domain::{JobStatus, JobUpdate, Observed, Transition};
use mcpush_core::handlers::reconcile::{ReconcileContext, ReconcileStats, handle};
use mcpush_core::ports::{JobInspector, JobStore};
use mcpush_core::service::record_update;
use mcpush_tests::{fixture, fresh_store};
use serde_json::{Value, json};

/// GetJob answers by job id; ids starting with `throttled` answer 429.
type Answers = Arc<Mutex<HashMap<String, Value>>>;

async fn get_job(State(answers): State<Answers>, Path(id): Path<String>) -> Response {
    let (status, kind, message) = match answers.lock().unwrap().get(&id) {
        Some(answer) => return Json(answer.clone()).into_response(),
        None if id.starts_with("throttled") => {
            (StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException", "Too many requests")
        }
        None => (StatusCode::NOT_FOUND, "NotFoundException", "The job does not exist."),
    };
    let mut response = (status, Json(json!({"message": message}))).into_response();
    response.headers_mut().insert("x-amzn-errortype", HeaderValue::from_static(kind));
    response
}

/// A MediaConvert API answering GetJob from `answers`, and the adapter pointed at it.
async fn mediaconvert(answers: Answers) -> MediaConvertJobInspector {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = Router::new().route("/2017-08-29/jobs/{id}", get(get_job)).with_state(answers);
    tokio::spawn(axum::serve(listener, router).into_future());
    let config = aws_sdk_mediaconvert::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("ap-northeast-1"))
        .credentials_provider(Credentials::new("x", "x", None, None, "test"))
        .endpoint_url(base)
        .retry_config(aws_sdk_mediaconvert::config::retry::RetryConfig::disabled())
        .build();
    MediaConvertJobInspector::new(aws_sdk_mediaconvert::Client::from_conf(config))
}

fn answers(names: &[&str]) -> Answers {
    let map = names
        .iter()
        .map(|name| {
            let answer = fixture(&format!("mediaconvert/{name}"));
            (answer["job"]["id"].as_str().unwrap().to_owned(), answer)
        })
        .collect();
    Arc::new(Mutex::new(map))
}

const PAIRS: [(&str, &str); 5] = [
    ("get-job-hls-complete.json", "hls-6-complete.json"),
    ("get-job-cmaf-complete.json", "cmaf-complete.json"),
    ("get-job-file-group-complete.json", "file-group-complete.json"),
    ("get-job-error.json", "error.json"),
    ("get-job-hls-progressing.json", "hls-5-status-update-70.json"),
];

#[tokio::test]
async fn get_job_answers_map_to_what_the_same_jobs_events_give() {
    for (get_job, event) in PAIRS {
        // GIVEN GetJob's answer for a job, served in the REST API's shape, and that job's event
        let inspector = mediaconvert(answers(&[get_job])).await;
        let answer: MediaConvertJob =
            serde_json::from_value(fixture(&format!("mediaconvert/{get_job}"))["job"].clone()).unwrap();
        let event = parse_event(&fixture(&format!("eventbridge/{event}"))).unwrap();

        // WHEN the adapter reads it through aws-sdk-mediaconvert and the reconciler maps it
        let read = inspector.get_job(&answer.id).await.unwrap().expect("the job is known");
        let verdict = reconcile(&answer.id, Some(&read), 1_700_000_999_000).unwrap();

        // THEN the adapter lost nothing the rule reads, and the update is the event's, field for
        // field (output folder and playlists rebuilt from the settings included), but for the
        // event's time and what it tells of times and pace: GetJob's answer is no event, and
        // its times are its `timing`
        assert_eq!(read, answer, "{get_job}: SDK translation");
        let Verdict::Apply(update) = verdict else { panic!("{get_job}: {verdict:?}") };
        let timing = answer.timing.clone().unwrap_or_default();
        let ms = |t: Option<i64>| t.map(|s| s as u64 * 1000);
        let final_state = update.transition.status().is_final();
        assert_eq!(
            (update.observed.submitted_at, update.observed.started_at, update.observed.finished_at),
            (ms(timing.submit_time), ms(timing.start_time), ms(timing.finish_time).filter(|_| final_state)),
            "{get_job}"
        );
        // (GetJob's videoDetails have no bitrate; a frame capture's event names its last image,
        // the settings only let the reconciler name the first: `.0000000.jpg`)
        let numbered = |p: &mut String| {
            if let Some(at) = p.rfind(".jpg").filter(|&at| at >= 8 && p[at - 8..at].starts_with('.')) {
                p.replace_range(at - 7..at, "NNNNNNN");
            }
        };
        let without = |mut u: JobUpdate| {
            if let Transition::Complete(details) = &mut u.transition {
                details.outputs.iter_mut().for_each(|o| o.bitrate = None);
                details.outputs.iter_mut().filter_map(|o| o.path.as_mut()).for_each(numbered);
                details.thumbnails.iter_mut().for_each(numbered);
            }
            JobUpdate { event_at: None, observed: Observed::default(), ..u }
        };
        let from_event = event.detail.to_update(1_700_000_999_000).unwrap();
        assert_eq!(without(*update), without(from_event), "{get_job} vs {event:?}");
    }
}

#[test]
fn each_group_type_gives_the_event_s_folder_and_playlists() {
    let update = |name: &str| match reconcile(
        "x",
        Some(&serde_json::from_value(fixture(&format!("mediaconvert/{name}"))["job"].clone()).unwrap()),
        0,
    ) {
        Ok(Verdict::Apply(update)) => match *update {
            JobUpdate { transition: Transition::Complete(details), .. } => details,
            other => panic!("{name}: {other:?}"),
        },
        other => panic!("{name}: {other:?}"),
    };
    let hls = update("get-job-hls-complete.json");
    assert_eq!(
        (hls.output_path.as_str(), hls.duration_ms, hls.width_px, hls.height_px),
        ("Big Buck Bunny.mp4_test/", Some(596458), Some(1280), Some(720))
    );
    assert_eq!(hls.playlists, [(".m3u8".to_owned(), "Big Buck Bunny.m3u8".to_owned())].into());
    let cmaf = update("get-job-cmaf-complete.json");
    assert_eq!(cmaf.output_path, "cmaf/trailers/sintel/");
    assert_eq!(
        cmaf.playlists,
        [(".mpd".to_owned(), "sintel.mpd".to_owned()), (".m3u8".to_owned(), "sintel.m3u8".to_owned())].into()
    );
    let files = update("get-job-file-group-complete.json");
    assert_eq!((files.output_path.as_str(), files.playlists.len(), files.duration_ms), ("file/clips/", 0, Some(5000)));
}

fn progressing(job_id: &str, progress: u8) -> JobUpdate {
    JobUpdate {
        job_id: job_id.into(),
        input_file: Some(format!("{job_id}.mp4")),
        transition: Transition::Progressing,
        progress: Some(progress),
        job_order: mcpush_core::domain::job_order_from_id(job_id).unwrap_or(1_700_000_800_000),
        phase: None,
        event_at: None,
        observed: Default::default(),
    }
}

#[tokio::test]
async fn a_run_applies_mediaconverts_truth_to_quiet_unfinished_jobs_only() {
    // GIVEN a status table on moto with unfinished jobs that have been quiet…
    let store = fresh_store("reconcile").await;
    let now_s = (mcpush_core::now_ms() / 1000) as i64;
    let lost_complete = "1700000000000-bbbhls"; // MediaConvert: COMPLETE
    let lost_error = "1700000900000-errorx"; // MediaConvert: ERROR
    let queued = "1700000500000-queued"; // MediaConvert: SUBMITTED
    let forgotten = "1700000600000-gone00"; // MediaConvert: no such job
    let stuck = "1700000700000-stuck0"; // MediaConvert: PROGRESSING for 49 hours
    let throttled = "throttled-1700000800000"; // MediaConvert: 429
    for job in [lost_complete, lost_error, forgotten, stuck] {
        record_update(&store, &progressing(job, 25)).await.unwrap();
    }
    let mut submitted = progressing(queued, 0);
    submitted.transition = Transition::Submitted;
    record_update(&store, &submitted).await.unwrap();
    record_update(&store, &progressing(throttled, 10)).await.unwrap();
    let done = "1700000100000-cmafxx";
    record_update(
        &store,
        &parse_event(&fixture("eventbridge/cmaf-complete.json")).unwrap().detail.to_update(0).unwrap(),
    )
    .await
    .unwrap();
    let answers = answers(&["get-job-hls-complete.json", "get-job-error.json"]);
    {
        let mut answers = answers.lock().unwrap();
        let mut job = fixture("mediaconvert/get-job-hls-progressing.json");
        job["job"]["id"] = json!(stuck);
        job["job"]["timing"]["startTime"] = json!(now_s - 49 * 3600);
        answers.insert(stuck.into(), job);
        let mut job = fixture("mediaconvert/get-job-hls-progressing.json");
        job["job"]["id"] = json!(queued);
        job["job"]["status"] = json!("SUBMITTED");
        answers.insert(queued.into(), job);
        answers.insert(done.into(), fixture("mediaconvert/get-job-cmaf-complete.json"));
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    let cutoff = mcpush_core::now_ms();
    tokio::time::sleep(Duration::from_millis(5)).await;
    // …and one that changed after the cutoff
    let fresh = "1700000950000-fresh0";
    record_update(&store, &progressing(fresh, 40)).await.unwrap();

    // WHEN the reconciler runs with the cutoff as "now" minus RECONCILE_AFTER_SECONDS
    let inspector = mediaconvert(answers).await;
    let config = ReconcileConfig { after: Duration::ZERO, ..ReconcileConfig::default() };
    let ctx = ReconcileContext::new(&store, &inspector, &config);
    let stats = handle(&ctx, cutoff).await.unwrap();

    // THEN the quiet ones were checked (not the fresh one, not the final one)
    assert_eq!(
        stats,
        ReconcileStats { checked: 6, updated: 4, finalized: 4, confirmed: 1, abandoned: 2, failed: 1, parked: 0 },
        "{stats:?}"
    );
    let stored = |id: &'static str| {
        let store = &store;
        async move { store.job(id).await.unwrap().unwrap() }
    };
    let complete = stored(lost_complete).await;
    assert_eq!(
        (complete.job_status, complete.progress_rate, complete.output_path.as_deref()),
        (JobStatus::Complete, 100, Some("Big Buck Bunny.mp4_test/"))
    );
    assert_eq!((complete.unfinished, complete.confirmed_at), (None, None), "a final job leaves the index");
    let error = stored(lost_error).await;
    assert_eq!((error.job_status, error.error_code), (JobStatus::Error, Some(1010)));
    let forgotten = stored(forgotten).await;
    assert_eq!(forgotten.job_status, JobStatus::Error);
    assert!(forgotten.error_message.as_deref().unwrap().contains("MediaConvert does not know job"), "{forgotten:?}");
    let stuck = stored(stuck).await;
    assert!(stuck.error_message.as_deref().unwrap().contains("48 hours"), "{stuck:?}");
    let queued_now = stored(queued).await;
    assert_eq!(
        (queued_now.job_status, queued_now.confirmed_at),
        (JobStatus::Submitted, Some(cutoff)),
        "SUBMITTED changes nothing but is confirmed"
    );
    assert_eq!(stored(throttled).await.job_status, JobStatus::Progressing);
    assert_eq!(stored(fresh).await.progress_rate, 40);

    // AND the job that failed went to the back of the queue with its failure counted, as the
    // confirmed one did: a run at the same time finds neither, a later one checks both; work per
    // run is bounded
    assert_eq!(stored(throttled).await.reconcile_failures, Some(1));
    assert_eq!(handle(&ctx, cutoff).await.unwrap().checked, 0);
    let again = handle(&ctx, cutoff + 1).await.unwrap();
    assert_eq!(
        (again.checked, again.confirmed, again.failed),
        (2, 1, 1),
        "the queued job and the failed one: {again:?}"
    );
    let later = mcpush_core::now_ms() + 1;
    let bounded = ReconcileConfig { after: Duration::ZERO, max_jobs: 2, concurrency: 1, ..ReconcileConfig::default() };
    let ctx = ReconcileContext::new(&store, &inspector, &bounded);
    assert_eq!(handle(&ctx, later).await.unwrap().checked, 2);
}

/// GIVEN two jobs whose reconciliation always fails (GetJob throttled; an id GetJob cannot take)
/// queued before a job whose final event was lost, and runs of two jobs each
/// WHEN the reconciler runs again and again
/// THEN each bad job goes to the back after a failure and is parked at its second, while the
/// good job is reconciled in the second run; then nothing is left to check.
async fn poison_is_parked_and_never_holds_the_others_back(store: &dyn JobStore) {
    let throttled = "throttled-1700000000000";
    let unaskable = format!("1700000000001-{}", "x".repeat(300));
    let lost_complete = "1700000000000-bbbhls";
    for job in [throttled, unaskable.as_str(), lost_complete] {
        record_update(store, &progressing(job, 25)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let inspector = mediaconvert(answers(&["get-job-hls-complete.json"])).await;
    let config = ReconcileConfig { after: Duration::ZERO, max_jobs: 2, concurrency: 1, max_failures: 2 };
    let ctx = ReconcileContext::new(store, &inspector, &config);
    let t = mcpush_core::now_ms() + 1_000;

    let first = handle(&ctx, t).await.unwrap();
    assert_eq!((first.checked, first.failed, first.parked, first.updated), (2, 2, 0, 0), "{first:?}");
    let second = handle(&ctx, t + 1_000).await.unwrap();
    assert_eq!((second.checked, second.updated, second.failed, second.parked), (2, 1, 1, 1), "{second:?}");
    assert_eq!(store.job(lost_complete).await.unwrap().unwrap().job_status, JobStatus::Complete);
    let third = handle(&ctx, t + 2_000).await.unwrap();
    assert_eq!((third.checked, third.parked), (1, 1), "{third:?}");
    assert_eq!(handle(&ctx, t + 3_000).await.unwrap().checked, 0, "parked jobs are not checked again");

    for job in [throttled, unaskable.as_str()] {
        let parked = store.job(job).await.unwrap().unwrap();
        assert_eq!(
            (parked.job_status, parked.unfinished, parked.confirmed_at, parked.reconcile_failures),
            (JobStatus::Progressing, None, None, Some(2)),
            "{job}"
        );
        assert!(parked.parked_at.is_some(), "{job}");
    }
    // AND an event of a parked job brings it back, its failures forgotten
    record_update(store, &progressing(throttled, 30)).await.unwrap();
    let back = store.job(throttled).await.unwrap().unwrap();
    assert_eq!((back.unfinished, back.reconcile_failures, back.parked_at), (Some(1), None, None));
}

#[tokio::test]
async fn a_job_that_keeps_failing_is_parked_on_dynamodb() {
    poison_is_parked_and_never_holds_the_others_back(&fresh_store("parked").await).await;
}

#[tokio::test]
async fn a_job_that_keeps_failing_is_parked_in_the_embedded_store() {
    poison_is_parked_and_never_holds_the_others_back(&mcpush_core::adapters::memory::MemoryJobStore::default()).await;
}
