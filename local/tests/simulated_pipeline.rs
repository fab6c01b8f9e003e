//! The simulated half of the local stack over real HTTP: an upload to the simulated S3 bucket runs
//! create-job, which calls the simulated MediaConvert through aws-sdk-mediaconvert, whose events
//! reach progress-ingest and, through the change feed, a WebSocket subscriber.

mod common;
use common::http;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_mediaconvert::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_mediaconvert::error::ProvideErrorMetadata;
use futures::{SinkExt, StreamExt};
use mcpush_local::aws::mediaconvert::SimSettings;
use mcpush_local::{Options, local};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

struct Running {
    base: String,
    s3_dir: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.s3_dir);
    }
}

async fn start(simulator: SimSettings) -> Running {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let s3_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("sim-s3-{}-{n}", std::process::id()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let options =
        Options { batch_window: Duration::from_millis(10), simulator, s3_dir: s3_dir.clone(), ..Options::default() };
    let stack = local(&base, options);
    tokio::spawn(axum::serve(listener, stack.router).into_future());
    Running { base, s3_dir }
}

fn fast() -> SimSettings {
    SimSettings { step: Duration::from_millis(30), ..SimSettings::default() }
}

/// Subscribes to `input_file` and collects its `status` messages until a final one.
async fn follow(base: &str, input_file: &str, upload: impl std::future::Future<Output = ()>) -> Vec<Value> {
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("{}/ws", base.replace("http://", "ws://"))).await.unwrap();
    socket.send(Message::text(json!({"action": "subscribe", "input_file": input_file}).to_string())).await.unwrap();
    let subscribed = socket.next().await.unwrap().unwrap();
    let subscribed: Value = serde_json::from_str(subscribed.to_text().unwrap()).unwrap();
    common::protocol::assert_server_message(&subscribed);
    assert_eq!(subscribed["type"], "subscribed");
    upload.await;
    let mut statuses: Vec<Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !statuses
        .last()
        .is_some_and(|m| ["COMPLETE", "ERROR"].contains(&m["job_status"].as_str().unwrap_or_default()))
    {
        let frame = tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), socket.next())
            .await
            .expect("a final status within 20 s");
        if let Some(Ok(Message::Text(text))) = frame {
            let message: Value = serde_json::from_str(&text).unwrap();
            common::protocol::assert_server_message(&message);
            statuses.push(message);
        }
    }
    statuses
}

async fn put(base: &str, path: &str, bytes: usize) {
    let (status, body) = http("PUT", &format!("{base}/s3/{path}"), Some(&"x".repeat(bytes))).await.unwrap();
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_runs_through_create_job_and_mediaconvert_to_complete() {
    // GIVEN the local stack and a subscriber to a file in a folder, with a space in its name
    let stack = start(fast()).await;
    let base = stack.base.clone();

    // WHEN the file is uploaded
    let statuses = follow(&base, "shows/clip one.mp4", put(&base, "uploads/shows/clip%20one.mp4", 750_000)).await;

    // THEN it went SUBMITTED → PROGRESSING through the phases in order → COMPLETE, never backwards
    let seen: Vec<(String, u64, Option<String>)> = statuses
        .iter()
        .map(|m| {
            (
                m["job_status"].as_str().unwrap().to_owned(),
                m["progress_rate"].as_u64().unwrap(),
                m["current_phase"].as_str().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(seen.first().map(|s| s.0.as_str()), Some("SUBMITTED"), "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0].1 <= w[1].1), "{seen:?}");
    let phases: Vec<&str> = seen.iter().filter_map(|s| s.2.as_deref()).collect();
    let mut ordered = phases.clone();
    ordered.dedup();
    assert_eq!(ordered, ["PROBING", "TRANSCODING", "UPLOADING"], "{seen:?}");
    let done = statuses.last().unwrap();
    assert_eq!(
        (&done["job_status"], &done["progress_rate"], &done["duration_ms"], &done["width_px"], &done["height_px"]),
        (&json!("COMPLETE"), &json!(100), &json!(3000), &json!(1280), &json!(720))
    );
    assert_eq!(done["output_path"], "shows/clip one.mp4_hls/");
    assert_eq!(done["playlists"], json!({".m3u8": "clip one.m3u8"}));
    assert!(done.get("current_phase").is_none());

    // AND from its first TRANSCODING report on, it said when it started, how long it queued and
    // how long was left
    let first_transcoding = statuses.iter().find(|m| m["current_phase"] == "TRANSCODING").expect("transcoding");
    for field in ["started_at", "queued_ms", "elapsed_ms", "eta_ms", "updated_at"] {
        assert!(first_transcoding[field].is_u64(), "{field}: {first_transcoding}");
    }
    assert!(first_transcoding["phase_progress"]["TRANSCODING"].is_u64(), "{first_transcoding}");
    // AND COMPLETE lists its outputs, a frame capture among them, with URLs the local S3 serves
    let outputs = done["outputs"].as_array().expect("outputs");
    assert_eq!(outputs.len(), 2, "{done}");
    assert_eq!(outputs[0]["type"], "HLS_GROUP");
    let thumbnail = done["thumbnail_urls"][0].as_str().expect("a thumbnail URL");
    assert!(thumbnail.starts_with(&format!("{base}/s3/outputs/shows/clip%20one.mp4_hls/")), "{thumbnail}");
    let (status, jpeg) = http("GET", thumbnail, None).await.unwrap();
    assert_eq!(status, 200, "{jpeg}");

    // AND the upload and the simulated outputs are in the S3 folder, readable over HTTP
    assert_eq!(std::fs::metadata(stack.s3_dir.join("uploads/shows/clip one.mp4")).unwrap().len(), 750_000);
    let (status, master) =
        http("GET", &format!("{base}/s3/outputs/shows/clip%20one.mp4_hls/clip%20one.m3u8"), None).await.unwrap();
    assert_eq!(status, 200);
    assert!(master.starts_with("#EXTM3U") && master.contains("RESOLUTION=1280x720\nclip%20one_720p.m3u8"), "{master}");

    // AND the REST fallback says the same, the seed's way
    let job_id = done["job_id"].as_str().unwrap();
    let (_, body) = http("GET", &format!("{base}/media/job_id?input_file=shows/clip%20one.mp4"), None).await.unwrap();
    assert_eq!(body, format!(r#"{{"success": true, "job_id": "{job_id}"}}"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_duplicated_and_out_of_order_events_end_in_mediaconverts_final_state() {
    // GIVEN a simulator that delays and duplicates most events
    let stack =
        start(SimSettings { step: Duration::from_millis(20), chaos: 0.8, seed: Some(11), ..SimSettings::default() })
            .await;
    let base = stack.base.clone();

    // WHEN three files are uploaded at once, and one that cannot be probed
    let watches = ["a.mp4", "b.mp4", "c.mp4"].map(|name| {
        let base = base.clone();
        tokio::spawn(async move {
            let path = format!("uploads/{name}");
            follow(&base, name, async { put(&base, &path, 500_000).await }).await
        })
    });
    let failed = follow(&base, "failing.mp4", put(&base, "uploads/failing.mp4", 10)).await;

    // THEN every pushed sequence only moves forward and ends where MediaConvert ended
    for watch in watches {
        let statuses = watch.await.unwrap();
        assert!(
            statuses.windows(2).all(|w| w[0]["progress_rate"].as_u64() <= w[1]["progress_rate"].as_u64()),
            "{statuses:?}"
        );
        let done = statuses.last().unwrap();
        assert_eq!((&done["job_status"], &done["duration_ms"]), (&json!("COMPLETE"), &json!(2000)), "{statuses:?}");
    }
    let error = failed.last().unwrap();
    assert_eq!((&error["job_status"], &error["error_code"]), (&json!("ERROR"), &json!(1010)));
    assert!(error["error_message"].as_str().unwrap().contains("s3://uploads/failing.mp4"));

    // AND once the stragglers are in, the stored state is still the final one
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, body) = http("GET", &format!("{base}/media/status?input_file=b.mp4"), None).await.unwrap();
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (&body["job_status"], &body["progress_rate"], &body["duration_ms"]),
        (&json!("COMPLETE"), &json!(100), &json!(2000))
    );
    // with MediaConvert's times, whatever order the events came in
    let at = |field: &str| body[field].as_u64().unwrap_or_else(|| panic!("{field}: {body}"));
    assert!(at("submitted_at") <= at("started_at") && at("started_at") < at("finished_at"), "{body}");
    assert_eq!(at("elapsed_ms"), at("finished_at") - at("started_at"));
}

#[tokio::test]
async fn the_simulator_answers_the_sdk_as_mediaconvert_does() {
    let stack = start(fast()).await;
    let config = aws_sdk_mediaconvert::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("x", "x", None, None, "test"))
        .endpoint_url(&stack.base)
        .build();
    let client = aws_sdk_mediaconvert::Client::from_conf(config);

    let template = client.get_job_template().name("local-hls").send().await.unwrap().job_template.unwrap();
    // (HLS, and a file group capturing a frame: the thumbnail)
    let groups = template.settings.unwrap().output_groups.unwrap();
    let kinds: Vec<_> = groups.iter().filter_map(|g| g.output_group_settings()?.r#type()).map(|t| t.as_str()).collect();
    assert_eq!(kinds, ["HLS_GROUP_SETTINGS", "FILE_GROUP_SETTINGS"]);
    let missing = client.get_job_template().name("nope").send().await.unwrap_err();
    assert_eq!(missing.code(), Some("NotFoundException"));

    let no_role = client.create_job().send().await.unwrap_err();
    assert_eq!(no_role.code(), Some("BadRequestException"));

    let settings = aws_sdk_mediaconvert::types::JobSettings::builder()
        .inputs(aws_sdk_mediaconvert::types::Input::builder().file_input("s3://uploads/never-uploaded.mp4").build())
        .build();
    let create = || {
        client
            .create_job()
            .role("arn:aws:iam::000000000000:role/x")
            .client_request_token("token-1")
            .settings(settings.clone())
            .send()
    };
    let first = create().await.unwrap().job.unwrap();
    let again = create().await.unwrap().job.unwrap();
    assert_eq!(first.id, again.id, "the same client request token answers the same job");
    assert!(
        first.id.as_deref().is_some_and(|id| mcpush_core::domain::job_order_from_id(id).is_some()),
        "{:?}",
        first.id
    );
}

#[tokio::test]
async fn create_job_is_invocable_with_an_s3_event() {
    // GIVEN the stack, and S3's notification for an object it does not hold
    let stack = start(fast()).await;
    let event =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/s3/object-created.json"))
            .unwrap();

    // WHEN it is invoked into create-job
    let (status, body) =
        http("POST", &format!("{}/2015-03-31/functions/create-job/invocations", stack.base), Some(&event))
            .await
            .unwrap();

    // THEN a job is created and stored as SUBMITTED, and its probe fails: there is no such object
    assert_eq!(status, 200, "{body}");
    let outcomes: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(outcomes[0]["outcome"], "created", "{body}");
    assert_eq!(outcomes[0]["input_file"], "uploads/Big Buck Bunny.mp4");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) =
            http("GET", &format!("{}/media/status?input_file=uploads/Big%20Buck%20Bunny.mp4", stack.base), None)
                .await
                .unwrap();
        if body.contains("ERROR") {
            assert!(body.contains("No such object"), "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "no ERROR within 10 s: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_job_answers_the_true_state_in_the_real_apis_shape() {
    // GIVEN the stack, an upload that completes and one that cannot be probed
    let stack = start(fast()).await;
    let base = stack.base.clone();
    let config = aws_sdk_mediaconvert::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("x", "x", None, None, "test"))
        .endpoint_url(&base)
        .build();
    let client = aws_sdk_mediaconvert::Client::from_conf(config);
    put(&base, "uploads/getjob.mp4", 500_000).await;
    put(&base, "uploads/getjob-empty.mp4", 0).await;
    let job_id = |file: &'static str| {
        let base = base.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let (status, body) =
                    http("GET", &format!("{base}/media/job_id?input_file={file}"), None).await.unwrap();
                if status == 200 {
                    return serde_json::from_str::<Value>(&body).unwrap()["job_id"].as_str().unwrap().to_owned();
                }
                assert!(Instant::now() < deadline, "no job for {file}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let (done_id, failed_id) = (job_id("getjob.mp4").await, job_id("getjob-empty.mp4").await);

    // WHEN GetJob is polled until both are final
    let mut seen_progressing = false;
    let final_job = |id: String| {
        let client = client.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut phases = Vec::new();
            loop {
                let job = client.get_job().id(&id).send().await.unwrap().job.unwrap();
                let status = job.status.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default();
                if status == "PROGRESSING" {
                    phases.push((job.job_percent_complete, job.current_phase.as_ref().map(|p| p.as_str().to_owned())));
                }
                if status == "COMPLETE" || status == "ERROR" {
                    return (job, phases);
                }
                assert!(Instant::now() < deadline, "{id} not final");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    let (done, phases) = final_job(done_id).await;
    seen_progressing |= phases.iter().any(|(p, phase)| p.is_some() && phase.is_some());
    let (failed, _) = final_job(failed_id).await;

    // THEN COMPLETE carries durations and sizes but no paths, ERROR its code and message,
    // PROGRESSING its percentage and phase; an unknown id is NotFound
    assert!(seen_progressing, "a PROGRESSING answer had jobPercentComplete and currentPhase: {phases:?}");
    assert_eq!(done.status.map(|s| s.as_str().to_owned()).as_deref(), Some("COMPLETE"));
    let output = &done.output_group_details.unwrap()[0].output_details.clone().unwrap()[0];
    assert_eq!(output.duration_in_ms, Some(2000));
    let video = output.video_details.clone().unwrap();
    assert_eq!((video.width_in_px, video.height_in_px), (Some(1280), Some(720)));
    assert!(done.created_at.is_some());
    assert_eq!(failed.error_code, Some(1010));
    assert!(failed.error_message.unwrap().contains("the file is empty"));
    let missing = client.get_job().id("1700000000000-nojob").send().await.unwrap_err();
    assert_eq!(missing.code(), Some("NotFoundException"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_whose_events_are_all_lost_still_end_final_through_the_reconciler() {
    // GIVEN a simulated MediaConvert that never delivers an event, and the local stack's
    // reconciler defaults
    let stack = start(SimSettings { drop: 1.0, ..fast() }).await;
    let base = stack.base.clone();
    let started = Instant::now();

    // WHEN a file that completes and one that cannot be probed are uploaded, each watched
    let complete = {
        let base = base.clone();
        tokio::spawn(async move { follow(&base, "lost/done.mp4", put(&base, "uploads/lost/done.mp4", 500_000)).await })
    };
    let failed = follow(&base, "lost/fail.mp4", put(&base, "uploads/lost/fail.mp4", 10)).await;
    let complete = complete.await.unwrap();

    // THEN both watchers see MediaConvert's final state within 15 s, with what the COMPLETE event
    // would have given (outputs rebuilt from the job's settings), never moving backwards
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    let done = complete.last().unwrap();
    assert_eq!(
        (&done["job_status"], &done["progress_rate"], &done["duration_ms"], &done["width_px"], &done["height_px"]),
        (&json!("COMPLETE"), &json!(100), &json!(2000), &json!(1280), &json!(720)),
        "{complete:?}"
    );
    assert_eq!(done["output_path"], "lost/done.mp4_hls/");
    assert_eq!(done["playlists"], json!({".m3u8": "done.m3u8"}));
    assert!(
        complete.windows(2).all(|w| w[0]["progress_rate"].as_u64() <= w[1]["progress_rate"].as_u64()),
        "{complete:?}"
    );
    let error = failed.last().unwrap();
    assert_eq!((&error["job_status"], &error["error_code"]), (&json!("ERROR"), &json!(1010)), "{failed:?}");
    assert!(error["error_message"].as_str().unwrap().contains("s3://uploads/lost/fail.mp4"));
}

/// The next text frame as JSON, checked against the protocol.
async fn frame<S>(socket: &mut S) -> Value
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(20), socket.next()).await.expect("a frame within 20 s");
        if let Some(Ok(Message::Text(text))) = frame {
            let message: Value = serde_json::from_str(&text).unwrap();
            common::protocol::assert_server_message(&message);
            return message;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batched_prefix_watcher_follows_every_upload_under_its_folder_and_a_late_one_gets_the_snapshot() {
    // GIVEN the local stack and a dashboard watching the folder shows/ with "batch": true
    let stack = start(fast()).await;
    let base = stack.base.clone();
    let ws = format!("{}/ws", base.replace("http://", "ws://"));
    let (mut dashboard, _) = tokio_tungstenite::connect_async(ws.as_str()).await.unwrap();
    dashboard
        .send(Message::text(json!({"action": "subscribe", "prefix": "shows/", "batch": true}).to_string()))
        .await
        .unwrap();
    assert_eq!(frame(&mut dashboard).await, json!({"type": "subscribed", "prefix": "shows/"}));

    // WHEN two files under it and one elsewhere are uploaded
    put(&base, "uploads/shows/a.mp4", 500_000).await;
    put(&base, "uploads/shows/season%202/b.mp4", 500_000).await;
    put(&base, "uploads/other/c.mp4", 500_000).await;

    // THEN the dashboard follows both files to COMPLETE in statuses messages, and never sees the other
    let mut finished = std::collections::BTreeSet::new();
    while finished.len() < 2 {
        let message = frame(&mut dashboard).await;
        assert_eq!(message["type"], "statuses", "{message}");
        for update in message["updates"].as_array().unwrap() {
            let file = update["input_file"].as_str().unwrap().to_owned();
            assert!(file.starts_with("shows/"), "{file} is not under shows/");
            if update["job_status"] == "COMPLETE" {
                finished.insert(file);
            }
        }
    }
    assert_eq!(finished.into_iter().collect::<Vec<_>>(), ["shows/a.mp4", "shows/season 2/b.mp4"]);

    // AND a plain watcher subscribing afterwards gets both finished files at once, one status each
    let (mut late, _) = tokio_tungstenite::connect_async(ws.as_str()).await.unwrap();
    late.send(Message::text(json!({"action": "subscribe", "prefix": "shows/"}).to_string())).await.unwrap();
    assert_eq!(frame(&mut late).await, json!({"type": "subscribed", "prefix": "shows/"}));
    let mut snapshot = [frame(&mut late).await, frame(&mut late).await];
    snapshot.sort_by_key(|m| m["input_file"].as_str().unwrap_or_default().to_owned());
    let seen: Vec<(&str, &str, &str)> = snapshot
        .iter()
        .map(|m| (m["type"].as_str().unwrap(), m["input_file"].as_str().unwrap(), m["job_status"].as_str().unwrap()))
        .collect();
    assert_eq!(seen, [("status", "shows/a.mp4", "COMPLETE"), ("status", "shows/season 2/b.mp4", "COMPLETE")]);
}
