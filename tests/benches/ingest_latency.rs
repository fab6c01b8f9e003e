//! Ingest → frame: how long after progress-ingest is invoked with a MediaConvert event one
//! subscriber has the `status` frame, through the whole local stack (Invoke API, ingest, store,
//! change feed, progress-push, Management API, WebSocket), with the local default
//! `STREAM_BATCH_WINDOW_MS=0` beside the 100 ms window the local stack had before. Method and
//! figures: `tests/benches/README.md`.
//!
//! `cargo bench -p mcpush-tests --bench ingest_latency [-- CHANGES]` (default 300 per window).
//! Writes `tests/benches/ingest-latency.md` and `tests/benches/ingest-latency.svg`.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use mcpush_local::{Options, local};
use mcpush_tests::{fixture, workspace};
use plotters::style::RGBColor;

mod common;
use common::{Curve, latency_cdf, percentile};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const FILE: &str = "latency.mp4";
const WINDOWS_MS: [u64; 2] = [0, 100];

fn main() {
    let changes: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(300);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let mut runs = Vec::new();
    for window in WINDOWS_MS {
        let mut samples = runtime.block_on(measure(Duration::from_millis(window), changes));
        samples.sort_by(f64::total_cmp);
        eprintln!(
            "window {window:>3} ms: p50 {:.2} ms, p99 {:.2} ms",
            percentile(&samples, 0.5),
            percentile(&samples, 0.99)
        );
        runs.push((window, samples));
    }
    let mut table = format!(
        "{changes} changes per window, one subscriber, release build, x86_64 on {} CPUs.\n\n\
         | STREAM_BATCH_WINDOW_MS | p50 ms | p90 ms | p99 ms | max ms |\n|---:|---:|---:|---:|---:|\n",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    for (window, samples) in &runs {
        table += &format!(
            "| {window} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
            percentile(samples, 0.5),
            percentile(samples, 0.9),
            percentile(samples, 0.99),
            samples.last().copied().unwrap_or_default()
        );
    }
    println!("{table}");
    let out = workspace().join("tests/benches");
    std::fs::write(out.join("ingest-latency.md"), &table).expect("write the table");
    plot(&runs, &out.join("ingest-latency.svg"));
    eprintln!("wrote tests/benches/ingest-latency.md and tests/benches/ingest-latency.svg");
}

/// A STATUS_UPDATE of the `k`-th job of the file: each change is a newer job, so every one is
/// pushed (a job's progress only grows, a file follows its newest job).
fn event(k: usize) -> (String, Value) {
    let job_id = format!("{}-lat{k:05}", 1_800_000_000_000u64 + k as u64);
    let mut event = fixture("eventbridge/hls-3-status-update-25.json");
    event["detail"]["jobId"] = json!(job_id);
    event["detail"]["userMetadata"]["input_file"] = json!(FILE);
    event["detail"]["timestamp"] = json!(mcpush_core::now_ms());
    event["resources"] = json!([format!("arn:aws:mediaconvert:ap-northeast-1:111122223333:jobs/{job_id}")]);
    (job_id, event)
}

/// One local stack with `window`, one subscriber, `changes` invocations one after the other:
/// each sample is invoke sent → that job's frame received, in milliseconds.
async fn measure(window: Duration, changes: usize) -> Vec<f64> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let s3_dir = workspace().join("target/ingest-latency/s3");
    let stack = local(&base, Options { batch_window: window, s3_dir, ..Options::default() });
    tokio::spawn(axum::serve(listener, stack.router).into_future());

    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("{}/ws", base.replace("http://", "ws://"))).await.expect("connect");
    socket
        .send(Message::Text(json!({"action": "subscribe", "input_file": FILE}).to_string().into()))
        .await
        .expect("subscribe");
    let _subscribed = next_json(&mut socket).await;
    let http = reqwest::Client::new();
    let invoke = format!("{base}/2015-03-31/functions/progress-ingest/invocations");
    let mut samples = Vec::with_capacity(changes);
    for k in 0..changes + 10 {
        let (job_id, event) = event(k);
        let body = serde_json::to_vec(&event).expect("json");
        let sent = Instant::now();
        let answer = http.post(&invoke).body(body).send().await.expect("invoke");
        assert!(answer.status().is_success(), "progress-ingest answered {}", answer.status());
        loop {
            let frame =
                tokio::time::timeout(Duration::from_secs(10), next_json(&mut socket)).await.expect("the frame arrives");
            if frame["job_id"] == job_id.as_str() {
                break;
            }
        }
        // The first 10 warm the stack up (connections, allocations).
        if k >= 10 {
            samples.push(sent.elapsed().as_secs_f64() * 1e3);
        }
    }
    samples
}

async fn next_json<S>(socket: &mut S) -> Value
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).expect("json"),
            Some(Ok(_)) => continue,
            other => panic!("the socket ended: {other:?}"),
        }
    }
}

/// The distribution of each window as a cumulative curve, on a log time axis.
fn plot(runs: &[(u64, Vec<f64>)], path: &std::path::Path) {
    let colors = [RGBColor(44, 160, 44), RGBColor(214, 39, 40)];
    let curves: Vec<Curve<'_>> = runs
        .iter()
        .zip(colors)
        .map(|((window, samples), color)| Curve { label: format!("STREAM_BATCH_WINDOW_MS={window}"), samples, color })
        .collect();
    latency_cdf(
        path,
        (900, 480),
        "ingest invoke → status frame, one subscriber: share of changes within x ms",
        0.1,
        &curves,
    );
}
