//! Recorded EventBridge events replayed through `progress-ingest` into DynamoDB (moto), read
//! back through the store exactly as the REST and push paths read them.

use mcpush_core::domain::StatusView;
use mcpush_core::domain::{JobRecord, JobStatus};
use mcpush_core::handlers::progress_ingest::{self, IngestError};
use mcpush_core::ports::JobStore;
use mcpush_tests::{fixture, fresh_store};
use serde_json::json;

const HLS: [&str; 6] = mcpush_tests::HLS_JOB_EVENTS;

async fn replay(store: &dyn JobStore, files: &[&str]) -> Vec<(bool, JobStatus, u8)> {
    let mut seen = Vec::new();
    for file in files {
        let outcome = progress_ingest::handle(store, &fixture(&format!("eventbridge/{file}")), 1).await.expect(file);
        seen.push((outcome.changed, outcome.job_status, outcome.progress_rate));
    }
    seen
}

async fn stored(store: &dyn JobStore, job_id: &str) -> JobRecord {
    store.job(job_id).await.expect("read").expect("job stored")
}

#[tokio::test]
async fn hls_job_in_order_moves_forward_at_every_step() {
    let store = fresh_store("replay").await;
    let seen = replay(&store, &HLS).await;
    assert_eq!(
        seen,
        [
            (true, JobStatus::Progressing, 0),
            // INPUT_INFORMATION ends probing; a STATUS_UPDATE without a percent is still a report
            (true, JobStatus::Progressing, 0),
            (true, JobStatus::Progressing, 25),
            (true, JobStatus::Progressing, 25),
            (true, JobStatus::Progressing, 70),
            (true, JobStatus::Complete, 100),
        ]
    );
    let record = stored(&store, "1700000000000-bbbhls").await;
    assert_eq!(record.input_file.as_deref(), Some("Big Buck Bunny.mp4"));
    assert_eq!(store.latest_job_id("Big Buck Bunny.mp4").await.unwrap().as_deref(), Some("1700000000000-bbbhls"));
    assert_eq!(
        serde_json::to_value(StatusView::from(&record)).unwrap(),
        json!({"job_status": "COMPLETE", "progress_rate": 100,
               "submitted_at": 1700000000000u64, "started_at": 1700000001000u64, "finished_at": 1700000181000u64,
               "updated_at": 1700000181000u64, "queued_ms": 1000, "elapsed_ms": 180000,
               "duration_ms": 596458, "width_px": 1280, "height_px": 720,
               "output_path": "Big Buck Bunny.mp4_test/", "playlists": {".m3u8": "Big Buck Bunny.m3u8"}})
    );
}

#[tokio::test]
async fn a_running_job_shows_its_times_phases_and_the_time_left() {
    // GIVEN a job's events up to its 70 % report: transcoding started at 1.9 s (INPUT_INFORMATION),
    // 25 % at 61 s, a report without a percent at 91 s, 70 % at 121 s
    let store = fresh_store("replay").await;
    replay(&store, &HLS[..5]).await;
    // WHEN its status is read
    let view = serde_json::to_value(StatusView::from(&stored(&store, "1700000000000-bbbhls").await)).unwrap();
    // THEN it shows when it started, how long it has run, and 30 % at the pace of 70 % in 119.1 s
    assert_eq!(
        view,
        json!({"job_status": "PROGRESSING", "progress_rate": 70, "current_phase": "TRANSCODING",
               "phase_progress": view["phase_progress"].clone(),
               "submitted_at": 1700000000000u64, "started_at": 1700000001000u64, "updated_at": 1700000121000u64,
               "queued_ms": 1000, "elapsed_ms": 120000, "eta_ms": 51043})
    );
    assert!(view["phase_progress"]["TRANSCODING"].as_u64().is_some(), "{view}");
}

#[tokio::test]
async fn hls_job_reversed_and_duplicated_ends_in_the_same_state() {
    let store = fresh_store("replay").await;
    let mut shuffled: Vec<&str> = HLS.iter().rev().copied().collect();
    shuffled.extend(["hls-3-status-update-25.json", "hls-6-complete.json", "hls-1-progressing.json"]);
    let seen = replay(&store, &shuffled).await;
    assert!(seen.iter().all(|&(_, status, progress)| status == JobStatus::Complete && progress == 100), "{seen:?}");
    // After the first COMPLETE only the earlier running events change anything: each tells an
    // earlier start; the redelivered ones change nothing.
    assert_eq!(seen.iter().filter(|(changed, ..)| *changed).count(), 6, "{seen:?}");
    assert!(!seen[6].0 && !seen[7].0 && !seen[8].0, "{seen:?}");

    let reference = fresh_store("replay").await;
    replay(&reference, &HLS).await;
    // (all but EventAt, the time of the event behind the last change, which feeds the lag metric)
    let state = |r: JobRecord| JobRecord { event_at: None, ..r };
    assert_eq!(
        state(stored(&store, "1700000000000-bbbhls").await),
        state(stored(&reference, "1700000000000-bbbhls").await)
    );
}

#[tokio::test]
async fn complete_outputs_of_every_group_type_are_mapped() {
    let store = fresh_store("replay").await;
    replay(
        &store,
        &["cmaf-complete.json", "file-group-complete.json", "audio-only-complete.json", "captions-complete.json"],
    )
    .await;

    let view = |r: JobRecord| serde_json::to_value(StatusView::from(&r)).unwrap();
    assert_eq!(
        view(stored(&store, "1700000100000-cmafxx").await),
        json!({"job_status": "COMPLETE", "progress_rate": 100, "submitted_at": 1700000100000u64, "finished_at": 1700000200000u64,
               "updated_at": 1700000200000u64, "duration_ms": 52209, "width_px": 1920, "height_px": 818,
               "output_path": "cmaf/trailers/sintel/", "playlists": {".m3u8": "sintel.m3u8", ".mpd": "sintel.mpd"}})
    );
    assert_eq!(
        view(stored(&store, "1700000300000-filegr").await),
        json!({"job_status": "COMPLETE", "progress_rate": 100, "submitted_at": 1700000300000u64, "finished_at": 1700000400000u64,
               "updated_at": 1700000400000u64, "duration_ms": 5000, "width_px": 640, "height_px": 360,
               "output_path": "file/clips/", "playlists": {}})
    );
    assert_eq!(
        view(stored(&store, "1700000500000-audioo").await),
        json!({"job_status": "COMPLETE", "progress_rate": 100, "submitted_at": 1700000500000u64, "finished_at": 1700000600000u64,
               "updated_at": 1700000600000u64, "duration_ms": 3541044, "output_path": "audio/", "playlists": {}})
    );
    assert_eq!(
        view(stored(&store, "1700000700000-captns").await),
        json!({"job_status": "COMPLETE", "progress_rate": 100, "submitted_at": 1700000700000u64, "finished_at": 1700000800000u64,
               "updated_at": 1700000800000u64, "duration_ms": 2700100, "width_px": 960, "height_px": 540,
               "output_path": "lecture.mp4/", "playlists": {".m3u8": "lecture.m3u8"}})
    );
}

#[tokio::test]
async fn error_and_canceled_are_final() {
    let store = fresh_store("replay").await;
    replay(&store, &["error.json", "canceled.json"]).await;
    let error = stored(&store, "1700000900000-errorx").await;
    assert_eq!(
        serde_json::to_value(StatusView::from(&error)).unwrap(),
        json!({"job_status": "ERROR", "progress_rate": 100, "submitted_at": 1700000900000u64, "finished_at": 1700000905000u64,
               "updated_at": 1700000905000u64, "error_code": 1010,
               "error_message": "Unable to open input file [s3://upload-bucket/broken.mp4]: [Failed probe/open: [No parser found for container]]"})
    );
    let mut late = fixture("eventbridge/hls-5-status-update-70.json");
    late["detail"]["jobId"] = json!("1700001000000-cancel");
    let outcome = progress_ingest::handle(&store, &late, 1).await.unwrap();
    assert_eq!(
        (outcome.job_status, outcome.progress_rate),
        (JobStatus::Canceled, 70),
        "progress still grows, status stays"
    );
}

#[tokio::test]
async fn malformed_events_are_rejected_by_name_and_store_nothing() {
    let store = fresh_store("replay").await;
    let cases = [
        ("malformed-no-status.json", "detail.status is missing"),
        (
            "malformed-wrong-detail-type.json",
            "unexpected detail-type \"MediaConvert Queue State Change\": expected \"MediaConvert Job State Change\"",
        ),
        (
            "malformed-job-id-number.json",
            "malformed MediaConvert event: detail.jobId: invalid type: integer `1700001300000`, expected a string",
        ),
    ];
    for (file, message) in cases {
        let err = progress_ingest::handle(&store, &fixture(&format!("eventbridge/{file}")), 1).await.unwrap_err();
        assert!(matches!(err, IngestError::Event(_)), "{file}: {err:?}");
        assert_eq!(err.to_string(), message, "{file}");
    }
    assert_eq!(store.job("1700001100000-nostat").await.unwrap(), None);
}

#[tokio::test]
async fn an_older_jobs_late_event_never_moves_the_file_back() {
    let store = fresh_store("replay").await;
    let mut newer = fixture("eventbridge/hls-1-progressing.json");
    newer["detail"]["jobId"] = json!("1700000999999-newjob");
    progress_ingest::handle(&store, &newer, 1).await.unwrap();
    let outcome = progress_ingest::handle(&store, &fixture("eventbridge/hls-6-complete.json"), 1).await.unwrap();
    assert!(!outcome.pointer_moved);
    assert_eq!(store.latest_job_id("Big Buck Bunny.mp4").await.unwrap().as_deref(), Some("1700000999999-newjob"));
}
