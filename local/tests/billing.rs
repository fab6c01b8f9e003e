//! What AWS would bill, as `GET /_local/metrics` counts it under `billing`, against counts made
//! elsewhere: the requests this test makes, the frames its sockets send and receive, the
//! connection time it measures, the WebSocket emulator's deliveries, the local EventBridge's
//! events and the functions' own metrics. One test in this binary: the metrics recorder is the
//! process's.

mod common;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const FILES: usize = 3;
const WATCHERS: usize = 2;

/// One browser's upload: the grant, then the form POST to the simulated S3. Answers the key.
async fn upload(base: &str, name: &str) -> String {
    let (code, granted) = common::post_json(
        &format!("{base}/media/uploads"),
        &json!({"file_name": name, "content_type": "video/mp4", "size": 1000}),
        None,
    )
    .await;
    assert_eq!(code, 200, "{granted}");
    let mut form = reqwest::multipart::Form::new();
    for (field, value) in granted["upload"]["fields"].as_object().unwrap() {
        form = form.text(field.clone(), value.as_str().unwrap().to_owned());
    }
    form = form.part("file", reqwest::multipart::Part::bytes(vec![b'v'; 1000]).file_name(name.to_owned()));
    let url = granted["upload"]["url"].as_str().unwrap();
    let posted = reqwest::Client::new().post(url).multipart(form).send().await.unwrap();
    assert!(posted.status().is_success(), "{}", posted.text().await.unwrap());
    granted["input_file"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_billing_counts_match_what_was_sent_received_and_run() {
    // GIVEN the local stack (no reconciler run during the test) and two watchers of a folder
    let (base, _stack, _s3, s3_dir) = common::serve_stack_with_s3("billing", |options| {
        options.reconcile_every = Duration::from_secs(3600);
    })
    .await;
    let ws_url = format!("{}/ws", base.replace("http://", "ws://"));
    let mut sockets = Vec::new();
    let (mut sent, mut received) = (0u64, 0u64);
    for _ in 0..WATCHERS {
        let opened = Instant::now();
        let (mut socket, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
        socket
            .send(Message::Text(json!({"action": "subscribe", "prefix": "uploads/"}).to_string().into()))
            .await
            .unwrap();
        sent += 1;
        sockets.push((socket, opened, 0usize));
    }

    // WHEN three files are uploaded and their jobs run to COMPLETE, each watcher seeing them
    let (mut status_polls, mut job_id_polls) = (0u64, 0u64);
    let mut keys = Vec::new();
    for i in 0..FILES {
        keys.push(upload(&base, &format!("clip {i}.mp4")).await);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for (socket, _, completed) in &mut sockets {
        while *completed < FILES {
            let frame = tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), socket.next())
                .await
                .expect("every job COMPLETE in time")
                .unwrap()
                .unwrap();
            let Message::Text(text) = frame else { continue };
            received += 1;
            let message: Value = serde_json::from_str(&text).unwrap();
            if message["type"] == "status" && message["job_status"] == "COMPLETE" {
                *completed += 1;
            }
        }
    }
    // ... a poller asks for each file's status and job id, and each watcher pings once
    for key in &keys {
        for path in ["status", "job_id"] {
            let url = reqwest::Url::parse_with_params(&format!("{base}/media/{path}"), [("input_file", key)]).unwrap();
            assert_eq!(reqwest::get(url).await.unwrap().status().as_u16(), 200);
        }
        status_polls += 1;
        job_id_polls += 1;
    }
    for (socket, _, _) in &mut sockets {
        socket.send(Message::Text(json!({"action": "ping"}).to_string().into())).await.unwrap();
        sent += 1;
        loop {
            let frame = socket.next().await.unwrap().unwrap();
            if let Message::Text(text) = frame {
                received += 1;
                if serde_json::from_str::<Value>(&text).unwrap()["type"] == "pong" {
                    break;
                }
            }
        }
    }
    // ... and the watchers leave after about three seconds
    let open_for = Duration::from_secs(3).saturating_sub(sockets[0].1.elapsed());
    tokio::time::sleep(open_for).await;
    let mut minutes = 0.0;
    for (mut socket, opened, _) in sockets {
        socket.close(None).await.unwrap();
        while let Some(Ok(frame)) = socket.next().await {
            received += u64::from(frame.is_text());
        }
        minutes += opened.elapsed().as_secs_f64() / 60.0;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // THEN the billing counts are the counts made elsewhere
    let (_, body) = common::http("GET", &format!("{base}/_local/metrics"), None).await.unwrap();
    let metrics: Value = serde_json::from_str(&body).unwrap();
    let billing = &metrics["billing"];
    let calls = |function: &str| billing["lambda_requests"][function].as_u64().unwrap_or(0);
    let sum = |function: &str, name: &str| metrics[function][name]["sum"].as_f64().unwrap_or(0.0) as u64;
    let files = FILES as u64;
    // requests this test made: grants and polls through the HTTP API, form POSTs to S3
    assert_eq!(billing["http_api_requests"].as_u64(), Some(files + status_polls + job_id_polls), "{billing:#}");
    assert_eq!(billing["s3_requests"].as_u64(), Some(files), "{billing:#}");
    assert_eq!(calls("upload-api"), files, "{billing:#}");
    assert_eq!(calls("status-api"), status_polls, "{billing:#}");
    assert_eq!(calls("job-id-api"), job_id_polls, "{billing:#}");
    // one create-job per object, one CreateJob call to MediaConvert each (and the job template
    // read once, as one execution environment caches it)
    assert_eq!(calls("create-job"), files, "{billing:#}");
    assert_eq!(sum("create-job", "JobsCreated"), files, "{metrics:#}");
    assert_eq!(billing["mediaconvert_requests"].as_u64(), Some(files + 1), "{billing:#}");
    // one progress-ingest per MediaConvert event, as its own metrics count them
    let ingested = sum("progress-ingest", "IngestApplied") + sum("progress-ingest", "IngestStale");
    assert_eq!((calls("progress-ingest"), sum("progress-ingest", "IngestFailed")), (ingested, 0), "{metrics:#}");
    assert!(ingested >= 3 * files, "{metrics:#}");
    // the sockets: each connected, sent its frames and disconnected through its function
    assert_eq!((calls("ws-connect"), calls("ws-message"), calls("ws-disconnect")), (2, sent, 2), "{billing:#}");
    assert_eq!(billing["websocket_messages"].as_u64(), Some(sent + received), "{billing:#}");
    let billed_minutes = billing["websocket_connection_minutes"].as_f64().unwrap();
    assert!(
        billed_minutes <= minutes && billed_minutes >= minutes * 0.99,
        "{billed_minutes} connection minutes billed, {minutes} measured"
    );
    // every event the bus took, one per transition
    let (_, events) = common::http("GET", &format!("{base}/_local/events"), None).await.unwrap();
    assert_eq!(billing["eventbridge_events"].as_u64(), Some(events.lines().count() as u64), "{billing:#}");
    assert!(events.lines().count() as u64 >= 3 * files);
    // each invocation billed at least 1 ms, and each function's first its init
    for (function, requests) in billing["lambda_requests"].as_object().unwrap() {
        let (requests, billed) = (requests.as_u64().unwrap(), billing["lambda_billed_ms"][function].as_u64().unwrap());
        assert!(billed >= requests + mcpush_local::aws::billing::MODELLED_INIT_MS, "{function}: {billing:#}");
    }
    assert!(calls("progress-push") >= 1 && calls("event-publisher") >= 1, "{billing:#}");
    let _ = std::fs::remove_dir_all(&s3_dir);
}
