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
    let mut view = serde_json::to_value(StatusView::from(&record)).unwrap();
    let outputs = view.as_object_mut().unwrap().remove("outputs").expect("outputs");
    assert_eq!(outputs.as_array().map(Vec::len), Some(3), "{outputs}");
    assert_eq!(
        view,
        json!({"job_status": "COMPLETE", "progress_rate": 100, "version": 6,
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
    // THEN it shows when it started, how long it has run, and the 30 % left at the pace of its
    // latest 20 points or more (25 → 70 % in 60 s): 40 s
    assert_eq!(
        view,
        json!({"job_status": "PROGRESSING", "progress_rate": 70, "version": 5, "current_phase": "TRANSCODING",
               "phase_progress": view["phase_progress"].clone(),
               "submitted_at": 1700000000000u64, "started_at": 1700000001000u64, "updated_at": 1700000121000u64,
               "queued_ms": 1000, "elapsed_ms": 120000, "eta_ms": 40000})
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
    // (all but EventAt, the time of the event behind the last change, which feeds the lag metric,
    // and the version, which counts the changes on the way)
    let state = |r: JobRecord| JobRecord { event_at: None, version: None, ..r };
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

    // (`outputs` and `thumbnails` have their own test below)
    let view = |r: JobRecord| {
        let mut view = serde_json::to_value(StatusView::from(&r)).unwrap();
        view.as_object_mut().unwrap().retain(|k, _| k != "outputs" && k != "thumbnails");
        view
    };
    assert_eq!(
        view(stored(&store, "1700000100000-cmafxx").await),
        json!({"job_status": "COMPLETE", "progress_rate": 100, "version": 1, "submitted_at": 1700000100000u64, "finished_at": 1700000200000u64,
               "updated_at": 1700000200000u64, "duration_ms": 52209, "width_px": 1920, "height_px": 818,
               "output_path": "cmaf/trailers/sintel/", "playlists": {".m3u8": "sintel.m3u8", ".mpd": "sintel.mpd"}})
    );
    assert_eq!(
        view(stored(&store, "1700000300000-filegr").await),
        json!({"job_status": "COMPLETE", "progress_rate": 100, "version": 1, "submitted_at": 1700000300000u64, "finished_at": 1700000400000u64,
               "updated_at": 1700000400000u64, "duration_ms": 5000, "width_px": 640, "height_px": 360,
               "output_path": "file/clips/", "playlists": {}})
    );
    assert_eq!(
        view(stored(&store, "1700000500000-audioo").await),
        json!({"job_status": "COMPLETE", "progress_rate": 100, "version": 1, "submitted_at": 1700000500000u64, "finished_at": 1700000600000u64,
               "updated_at": 1700000600000u64, "duration_ms": 3541044, "output_path": "audio/", "playlists": {}})
    );
    assert_eq!(
        view(stored(&store, "1700000700000-captns").await),
        json!({"job_status": "COMPLETE", "progress_rate": 100, "version": 1, "submitted_at": 1700000700000u64, "finished_at": 1700000800000u64,
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
        json!({"job_status": "ERROR", "progress_rate": 100, "version": 1, "submitted_at": 1700000900000u64, "finished_at": 1700000905000u64,
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

/// One output as `outputs` lists it: (group, type, file name, width, height, duration, bitrate, playlist file name).
type Expected<'a> =
    (u32, &'a str, Option<&'a str>, Option<u32>, Option<u32>, Option<u64>, Option<u64>, Option<&'a str>);
/// The same, owned, as read from the outputs.
type Owned = (u32, String, Option<String>, Option<u32>, Option<u32>, Option<u64>, Option<u64>, Option<String>);

#[test]
fn every_complete_fixture_yields_its_outputs_and_thumbnails() {
    use mcpush_core::domain::mediaconvert::parse_event;
    let name = |p: &Option<String>| p.as_deref().map(|p| p.rsplit('/').next().unwrap_or(p).to_owned());
    let cases: Vec<(&str, Vec<Expected>, Vec<&str>)> = vec![
        (
            "hls-6-complete.json",
            vec![
                (
                    0,
                    "HLS_GROUP",
                    Some("Big Buck Bunny_720p.m3u8"),
                    Some(1280),
                    Some(720),
                    Some(596458),
                    Some(2405411),
                    Some("Big Buck Bunny.m3u8"),
                ),
                (
                    0,
                    "HLS_GROUP",
                    Some("Big Buck Bunny_360p.m3u8"),
                    Some(640),
                    Some(360),
                    Some(596458),
                    Some(810000),
                    Some("Big Buck Bunny.m3u8"),
                ),
                (
                    0,
                    "HLS_GROUP",
                    Some("Big Buck Bunny_audio.m3u8"),
                    None,
                    None,
                    Some(596480),
                    None,
                    Some("Big Buck Bunny.m3u8"),
                ),
            ],
            vec![],
        ),
        (
            "cmaf-complete.json",
            vec![
                (0, "CMAF_GROUP", None, Some(1920), Some(818), Some(52209), None, Some("sintel.mpd")),
                (0, "CMAF_GROUP", None, Some(1280), Some(546), Some(52209), None, Some("sintel.mpd")),
                (0, "CMAF_GROUP", None, None, None, Some(52224), None, Some("sintel.mpd")),
            ],
            vec![],
        ),
        (
            "dash-complete.json",
            vec![
                (0, "DASH_ISO_GROUP", None, Some(1920), Some(1080), Some(653792), Some(4800000), Some("elephants.mpd")),
                (0, "DASH_ISO_GROUP", None, Some(960), Some(540), Some(653792), Some(1400000), Some("elephants.mpd")),
            ],
            vec![],
        ),
        (
            "mss-complete.json",
            vec![
                (
                    0,
                    "MS_SMOOTH_GROUP",
                    Some("pilot_1080.ismv"),
                    Some(1920),
                    Some(1080),
                    Some(1320400),
                    Some(6000000),
                    Some("pilot.ism"),
                ),
                (
                    0,
                    "MS_SMOOTH_GROUP",
                    Some("pilot_360.ismv"),
                    Some(640),
                    Some(360),
                    Some(1320400),
                    Some(900000),
                    Some("pilot.ism"),
                ),
            ],
            vec![],
        ),
        (
            "file-group-complete.json",
            vec![
                (0, "FILE_GROUP", Some("tears.0000004.jpg"), Some(640), Some(360), Some(5000), None, None),
                (1, "FILE_GROUP", Some("tears_1080.mp4"), Some(1920), Some(800), Some(734000), None, None),
            ],
            vec!["s3://out-bucket/file/clips/tears.0000004.jpg"],
        ),
        (
            "audio-only-complete.json",
            vec![
                (0, "FILE_GROUP", Some("podcast episode 12_128k.m4a"), None, None, Some(3541020), None, None),
                (0, "FILE_GROUP", Some("podcast episode 12_64k.m4a"), None, None, Some(3541044), None, None),
            ],
            vec![],
        ),
        (
            "captions-complete.json",
            vec![
                (0, "HLS_GROUP", Some("lecturecaptions_en.m3u8"), None, None, Some(0), None, Some("lecture.m3u8")),
                (
                    0,
                    "HLS_GROUP",
                    Some("lecture_540p.m3u8"),
                    Some(960),
                    Some(540),
                    Some(2700100),
                    None,
                    Some("lecture.m3u8"),
                ),
                (1, "FILE_GROUP", Some("lecture.vtt"), None, None, Some(0), None, None),
            ],
            vec![],
        ),
        (
            "multi-group-complete.json",
            vec![
                (
                    0,
                    "FILE_GROUP",
                    Some("keynote 2023_1080.mp4"),
                    Some(1920),
                    Some(1080),
                    Some(2711000),
                    Some(5000000),
                    None,
                ),
                (
                    0,
                    "FILE_GROUP",
                    Some("keynote 2023_poster.0000013.jpg"),
                    Some(640),
                    Some(360),
                    Some(2711000),
                    Some(250000),
                    None,
                ),
                (
                    1,
                    "HLS_GROUP",
                    Some("keynote 2023_720p.m3u8"),
                    Some(1280),
                    Some(720),
                    Some(2711000),
                    Some(3000000),
                    Some("keynote 2023.m3u8"),
                ),
                (
                    1,
                    "HLS_GROUP",
                    Some("keynote 2023_audio.m3u8"),
                    None,
                    None,
                    Some(2711040),
                    None,
                    Some("keynote 2023.m3u8"),
                ),
                (
                    2,
                    "DASH_ISO_GROUP",
                    None,
                    Some(1280),
                    Some(720),
                    Some(2711000),
                    Some(2900000),
                    Some("keynote 2023.mpd"),
                ),
            ],
            vec!["s3://out-bucket/talks/keynote 2023_poster.0000013.jpg"],
        ),
    ];
    for (fixture_name, outputs, thumbnails) in cases {
        let details = parse_event(&fixture(&format!("eventbridge/{fixture_name}"))).unwrap().detail.complete_details();
        let got: Vec<Owned> = details
            .outputs
            .iter()
            .map(|o| {
                let kind = o.kind.clone().unwrap_or_default();
                (o.group, kind, name(&o.path), o.width_px, o.height_px, o.duration_ms, o.bitrate, name(&o.playlist))
            })
            .collect();
        let expected: Vec<Owned> = outputs
            .iter()
            .map(|&(g, k, p, w, h, d, b, l)| (g, k.to_owned(), p.map(str::to_owned), w, h, d, b, l.map(str::to_owned)))
            .collect();
        assert_eq!(got, expected, "{fixture_name}");
        assert_eq!(details.thumbnails, thumbnails, "{fixture_name}");
        // every output's path is a whole S3 URI
        assert!(
            details.outputs.iter().filter_map(|o| o.path.as_deref()).all(|p| p.starts_with("s3://")),
            "{fixture_name}"
        );
    }
}
