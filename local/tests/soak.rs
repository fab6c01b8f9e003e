//! Soak: 50 uploads (every fifth one fails to probe), 3 plain watchers each (subscribe, then only
//! listen: no re-check), over real HTTP and WebSockets, while the local stack loses 30 % of
//! MediaConvert's events (`SIMULATOR_DROP`), delays or duplicates half of them
//! (`SIMULATOR_CHAOS`) and fails 20 % of all Management API posts (`WS_POST_FAULT_RATE`).
//! Every watcher must end on exactly MediaConvert's final state, never moving backwards on the
//! way. `reconcile` runs every 2 s through the Invoke API (the local schedule's interval), so the
//! test can count the finals it recorded. Run with `--nocapture` for the figures the README quotes.

mod common;
use common::http;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_mediaconvert::config::{BehaviorVersion, Credentials, Region};
use futures::{SinkExt, StreamExt};
use mcpush_local::aws::mediaconvert::SimSettings;
use mcpush_local::{Options, local};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const UPLOADS: usize = 50;
const WATCHERS: usize = 3;

struct Watch {
    statuses: Vec<Value>,
    final_at: Instant,
    confirmed: bool,
}

/// A plain protocol client: subscribes, then listens until a final status.
async fn watch(ws_url: String, input_file: String, ready: tokio::sync::mpsc::Sender<()>) -> Watch {
    let (mut socket, _) = tokio_tungstenite::connect_async(ws_url).await.expect("connect");
    socket
        .send(Message::text(json!({"action": "subscribe", "input_file": input_file}).to_string()))
        .await
        .expect("subscribe");
    let mut statuses: Vec<Value> = Vec::new();
    // A `subscribed` reply lost to the posts' faults does not undo the subscription: wait a
    // little for it, then go on listening either way.
    let confirmed = loop {
        match tokio::time::timeout(Duration::from_secs(3), socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let message: Value = serde_json::from_str(&text).expect("JSON frame");
                common::protocol::assert_server_message(&message);
                if message["type"] == "subscribed" {
                    break true;
                }
                statuses.push(message);
            }
            Ok(Some(Ok(_))) => {}
            _ => break false,
        }
    };
    let _ = ready.send(()).await;
    let is_final =
        |m: &Value| ["COMPLETE", "ERROR", "CANCELED"].contains(&m["job_status"].as_str().unwrap_or_default());
    while !statuses.last().is_some_and(is_final) {
        match tokio::time::timeout(Duration::from_secs(60), socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let message: Value = serde_json::from_str(&text).expect("JSON frame");
                common::protocol::assert_server_message(&message);
                if message["type"] == "status" {
                    statuses.push(message);
                }
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("{input_file}: no final status within 60 s ({other:?}); saw {statuses:?}"),
        }
    }
    Watch { statuses, final_at: Instant::now(), confirmed }
}

fn rank(status: &str) -> u8 {
    match status {
        "SUBMITTED" => 0,
        "PROGRESSING" => 1,
        _ => 2,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_watcher_ends_on_mediaconverts_final_state_whatever_is_lost() {
    // GIVEN the local stack losing, reordering and duplicating events and failing posts
    let s3_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("soak-s3-{}", std::process::id()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let simulator = SimSettings {
        step: Duration::from_millis(100),
        chaos: 0.5,
        drop: 0.3,
        seed: Some(20261126),
        ..SimSettings::default()
    };
    let defaults = Options::default();
    let options = Options {
        simulator,
        ws_post_fault_rate: 0.2,
        s3_dir: s3_dir.clone(),
        reconcile_every: Duration::from_secs(3600),
        ..defaults.clone()
    };
    let stack = local(&base, options);
    tokio::spawn(axum::serve(listener, stack.router).into_future());
    let reconciled = {
        let url = format!("{base}/2015-03-31/functions/reconcile/invocations");
        let every = defaults.reconcile_every;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let (status, body) = http("POST", &url, Some("{}")).await.expect("invoke reconcile");
                assert_eq!(status, 200, "{body}");
                let finalized =
                    serde_json::from_str::<Value>(&body).expect("stats")["finalized"].as_u64().expect("finalized");
                RECONCILED.fetch_add(finalized, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };

    // AND three plain watchers per file, subscribed before the uploads
    let files: Vec<String> = (0..UPLOADS)
        .map(|i| if i % 5 == 4 { format!("soak/fail-{i}.mp4") } else { format!("soak/clip-{i}.mp4") })
        .collect();
    let (ready, mut readiness) = tokio::sync::mpsc::channel(UPLOADS * WATCHERS);
    let ws_url = format!("{}/ws", base.replace("http://", "ws://"));
    let watches: Vec<(String, tokio::task::JoinHandle<Watch>)> = files
        .iter()
        .flat_map(|file| std::iter::repeat_n(file.clone(), WATCHERS))
        .map(|file| (file.clone(), tokio::spawn(watch(ws_url.clone(), file, ready.clone()))))
        .collect();
    for _ in 0..watches.len() {
        readiness.recv().await.expect("every watcher subscribes");
    }

    // WHEN every file is uploaded at once
    let mut uploaded_at = BTreeMap::new();
    let uploads = files.iter().enumerate().map(|(i, file)| {
        let url = format!("{base}/s3/uploads/{file}");
        async move {
            let (status, body) = http("PUT", &url, Some(&"x".repeat(100_000 + i * 10_000))).await.expect("upload");
            assert_eq!(status, 200, "{body}");
        }
    });
    for file in &files {
        uploaded_at.insert(file.clone(), Instant::now());
    }
    futures::future::join_all(uploads).await;

    // THEN every watcher ends on a final status, never moving backwards on the way…
    let mut last_final: BTreeMap<String, Instant> = BTreeMap::new();
    let mut finals: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut unconfirmed = 0;
    for (file, handle) in watches {
        let watch = handle.await.expect("watcher");
        unconfirmed += usize::from(!watch.confirmed);
        let seen: Vec<(u8, u64)> = watch
            .statuses
            .iter()
            .map(|m| {
                (rank(m["job_status"].as_str().unwrap_or_default()), m["progress_rate"].as_u64().unwrap_or_default())
            })
            .collect();
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{file} moved backwards: {seen:?}");
        let entry = last_final.entry(file.clone()).or_insert(watch.final_at);
        *entry = (*entry).max(watch.final_at);
        finals.entry(file).or_default().push(watch.statuses.last().cloned().expect("a final status"));
    }

    // …and that final status is exactly MediaConvert's (GetJob on the simulator)
    let client = aws_sdk_mediaconvert::Client::from_conf(
        aws_sdk_mediaconvert::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("x", "x", None, None, "test"))
            .endpoint_url(&base)
            .build(),
    );
    for (file, seen) in &finals {
        assert!(seen.windows(2).all(|w| w[0] == w[1]), "{file}: watchers disagree: {seen:?}");
        let last = &seen[0];
        let job = client.get_job().id(last["job_id"].as_str().unwrap()).send().await.unwrap().job.unwrap();
        let truth = job.status.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default();
        assert_eq!(last["job_status"].as_str(), Some(truth.as_str()), "{file}: {last}");
        if file.contains("fail") {
            assert_eq!(
                (truth.as_str(), last["error_code"].as_i64()),
                ("ERROR", job.error_code.map(i64::from)),
                "{file}"
            );
            assert_eq!(last["error_message"].as_str(), job.error_message.as_deref(), "{file}");
        } else {
            let output = job.output_group_details.unwrap()[0].output_details.clone().unwrap()[0].clone();
            let video = output.video_details.unwrap();
            assert_eq!(
                (truth.as_str(), last["duration_ms"].as_i64(), last["width_px"].as_i64(), last["height_px"].as_i64()),
                (
                    "COMPLETE",
                    output.duration_in_ms.map(i64::from),
                    video.width_in_px.map(i64::from),
                    video.height_in_px.map(i64::from)
                ),
                "{file}"
            );
            assert_eq!(last["output_path"], format!("{file}_hls/"), "{file}");
            let stem = file.trim_start_matches("soak/").trim_end_matches(".mp4");
            assert_eq!(last["playlists"], json!({".m3u8": format!("{stem}.m3u8")}), "{file}");
        }
    }

    // AND some finals really were lost and recorded by the reconciler
    tokio::time::sleep(Duration::from_millis(50)).await;
    let by_reconcile = RECONCILED.load(std::sync::atomic::Ordering::Relaxed);
    reconciled.abort();
    assert!(by_reconcile > 0, "with SIMULATOR_DROP=0.3 some of {UPLOADS} finals should have been dropped");
    let mut lags: Vec<Duration> = files.iter().map(|f| last_final[f] - uploaded_at[f]).collect();
    lags.sort();
    println!(
        "soak: {UPLOADS} uploads x {WATCHERS} watchers; upload -> last watcher final: p50 {} ms, p99 {} ms, max {} ms; \
         finals recorded by progress-ingest {} and by reconcile {by_reconcile}; all {} watcher finals came by push \
         (plain clients: none by re-check); {unconfirmed} `subscribed` replies lost to WS_POST_FAULT_RATE",
        percentile(&lags, 0.5).as_millis(),
        percentile(&lags, 0.99).as_millis(),
        lags.last().unwrap().as_millis(),
        UPLOADS as u64 - by_reconcile,
        UPLOADS * WATCHERS,
    );
    let _ = std::fs::remove_dir_all(&s3_dir);
}

/// Finals recorded by the test's reconcile runs.
static RECONCILED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
