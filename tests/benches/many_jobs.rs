//! Many jobs at once through the whole local stack: JOBS concurrent jobs, each with two WebSocket
//! watchers of its file, and 20 dashboards watching the folder of all of them with a prefix and
//! `"batch": true` (clients in a separate process). Every job sends five MediaConvert events
//! (PROGRESSING, STATUS_UPDATE 25 / 50 / 75 %, COMPLETE) to progress-ingest's Invoke API; they go
//! through the store, the change feed, progress-push and the Management API emulator to the
//! sockets. Reports the posts made, the progress-push invocations, the posts each dashboard got,
//! and ingest invoke → frame latency, with the local defaults and with API Gateway's limits.
//! Method and figures: `tests/benches/README.md`.
//!
//! `cargo bench -p mcpush-tests --bench many_jobs [-- JOBS]` (default 1000). Writes
//! `tests/benches/many-jobs.md` and `tests/benches/many-jobs.svg`.

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use mcpush_local::aws::apigw_ws::{Rate, RequestLimits};
use mcpush_local::{Options, local};
use mcpush_tests::{fixture, workspace};
use plotters::style::RGBColor;

mod common;
use common::{Curve, latency_cdf, percentile};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const WATCHERS_PER_JOB: usize = 2;
const DASHBOARDS: usize = 20;
/// The folder every job's file is under (in one of 50 subfolders).
const FOLDER: &str = "many/";
/// Events per job: PROGRESSING, STATUS_UPDATE 25, 50 and 75 %, COMPLETE.
const STEPS: usize = 5;
/// Invokes in flight while the events are sent.
const INVOKES_IN_FLIGHT: usize = 16;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    if args.first().map(String::as_str) == Some("--clients") {
        let url = args.get(1).cloned().expect("url");
        let jobs: usize = args.get(2).and_then(|n| n.parse().ok()).expect("jobs");
        runtime.block_on(clients(url, jobs, args.get(3).map(String::as_str) == Some("batch")));
        return;
    }
    let jobs: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(1000);
    let aws = RequestLimits {
        post_latency: (Duration::from_millis(20), Duration::from_millis(20)),
        post_rate: Some(Rate { per_second: 10_000.0, burst: 5_000.0 }),
        connect_rate: None,
    };
    let scenarios = [
        Scenario {
            name: "local defaults (no API limits), events at once",
            limits: RequestLimits::default(),
            events_per_second: None,
            batch: true,
        },
        Scenario { name: "API Gateway's limits, events at once", limits: aws, events_per_second: None, batch: true },
        Scenario {
            name: "API Gateway's limits, 1,000 events/s",
            limits: aws,
            events_per_second: Some(1000.0),
            batch: true,
        },
        Scenario {
            name: "baseline: the same, dashboards without batch",
            limits: aws,
            events_per_second: Some(1000.0),
            batch: false,
        },
    ];
    let runs: Vec<Run> = scenarios.iter().map(|scenario| runtime.block_on(run(scenario, jobs))).collect();
    let table = table(&runs, jobs);
    println!("{table}");
    let out = workspace().join("tests/benches");
    std::fs::write(out.join("many-jobs.md"), &table).expect("write the table");
    plot(&runs, &out.join("many-jobs.svg"));
    eprintln!("wrote tests/benches/many-jobs.md and tests/benches/many-jobs.svg");
}

fn job_id(k: usize) -> String {
    format!("{}-many{k:05}", 1_800_000_000_000u64 + k as u64)
}

fn file(k: usize) -> String {
    format!("{FOLDER}{:02}/clip-{k:05}.mp4", k % 50)
}

/// The job index of a job id of [`job_id`].
fn job_index(job_id: &str) -> Option<usize> {
    job_id.rsplit("-many").next()?.parse().ok()
}

/// Which of the five events a pushed state is.
fn step(update: &Value) -> Option<usize> {
    match (update["job_status"].as_str()?, update["progress_rate"].as_u64()?) {
        ("PROGRESSING", 0) => Some(0),
        ("PROGRESSING", p) if p % 25 == 0 && p < 100 => Some((p / 25) as usize),
        ("COMPLETE", _) => Some(4),
        _ => None,
    }
}

/// The `step`-th MediaConvert event of job `k`.
fn event(k: usize, step: usize) -> Value {
    let mut event = match step {
        0 => fixture("eventbridge/hls-1-progressing.json"),
        4 => fixture("eventbridge/hls-6-complete.json"),
        s => {
            let mut e = fixture("eventbridge/hls-3-status-update-25.json");
            e["detail"]["jobProgress"]["jobPercentComplete"] = json!(25 * s);
            e
        }
    };
    event["detail"]["jobId"] = json!(job_id(k));
    event["detail"]["userMetadata"]["input_file"] = json!(file(k));
    event["detail"]["timestamp"] = json!(mcpush_core::now_ms());
    event["resources"] = json!([format!("arn:aws:mediaconvert:ap-northeast-1:111122223333:jobs/{}", job_id(k))]);
    event
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or_default()
}

/// How the API answers and how fast the events come.
#[derive(Clone, Copy)]
struct Scenario {
    name: &'static str,
    limits: RequestLimits,
    /// `None`: as fast as progress-ingest's Invoke API takes them ([`INVOKES_IN_FLIGHT`]).
    events_per_second: Option<f64>,
    /// Do the dashboards subscribe with `"batch": true`?
    batch: bool,
}

/// What one scenario measured.
struct Run {
    name: &'static str,
    sent_per_second: f64,
    invocations: u64,
    posts: u64,
    throttled: u64,
    /// Frames each dashboard received (min, max).
    dashboard_frames: (u64, u64),
    /// Invoke → frame, in ms, sorted: file watchers, dashboards (per update).
    watchers: Vec<f64>,
    dashboards: Vec<f64>,
}

async fn run(scenario: &Scenario, jobs: usize) -> Run {
    let Scenario { name, limits, events_per_second, batch } = *scenario;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let s3_dir = workspace().join("target/many-jobs/s3");
    let stack = local(&base, Options { batch_window: Duration::ZERO, s3_dir, ..Options::default() });
    stack.api.set_request_limits(limits);
    tokio::spawn(axum::serve(listener, stack.router).into_future());

    let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args([
            "--clients",
            &format!("{}/ws", base.replace("http://", "ws://")),
            &jobs.to_string(),
            if batch { "batch" } else { "plain" },
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the client process");
    let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next_line = move || tokio::task::block_in_place(|| lines.next().and_then(Result::ok));
    assert_eq!(next_line().as_deref(), Some("ready"), "every client connected and subscribed");

    let http = reqwest::Client::new();
    let metrics = |http: reqwest::Client, base: String| async move {
        tokio::time::sleep(mcpush_local::run::metrics::FLUSH_INTERVAL * 2).await;
        let body =
            http.get(format!("{base}/_local/metrics")).send().await.expect("metrics").text().await.expect("body");
        let metrics: Value = serde_json::from_str(&body).expect("json");
        metrics["progress-push"]["PostsPerInvocation"]["count"].as_u64().unwrap_or(0)
    };
    let invocations_before = metrics(http.clone(), base.clone()).await;
    let (posts_before, throttled_before) =
        (stack.api.counters.posts.load(Ordering::Relaxed), stack.api.counters.throttled.load(Ordering::Relaxed));

    // Every job's events, step by step across all jobs: all jobs are in flight at once.
    let invoke = format!("{base}/2015-03-31/functions/progress-ingest/invocations");
    let started = tokio::time::Instant::now();
    let sent: Vec<Vec<u64>> = {
        let times: Vec<(usize, usize, u64)> =
            futures::stream::iter((0..STEPS).flat_map(|s| (0..jobs).map(move |k| (k, s))).enumerate())
                .map(|(i, (k, s))| {
                    let (http, invoke) = (http.clone(), invoke.clone());
                    async move {
                        if let Some(rate) = events_per_second {
                            tokio::time::sleep_until(started + Duration::from_secs_f64(i as f64 / rate)).await;
                        }
                        let body = serde_json::to_vec(&event(k, s)).expect("json");
                        let at = now_us();
                        let answer = http.post(&invoke).body(body).send().await.expect("invoke");
                        assert!(answer.status().is_success(), "progress-ingest answered {}", answer.status());
                        (k, s, at)
                    }
                })
                .buffer_unordered(INVOKES_IN_FLIGHT)
                .collect()
                .await;
        let mut sent = vec![vec![0; STEPS]; jobs];
        for (k, s, at) in times {
            sent[k][s] = at;
        }
        sent
    };
    let sent_per_second = (jobs * STEPS) as f64 / started.elapsed().as_secs_f64();

    // The clients report once each has its job's (or every job's) COMPLETE.
    let (mut watchers, mut dashboards, mut frames) = (Vec::new(), Vec::new(), Vec::new());
    let latency = |k: usize, s: usize, at: u64| at.saturating_sub(sent[k][s]) as f64 / 1e3;
    while let Some(line) = next_line() {
        let fields: Vec<u64> = line.split(' ').skip(1).filter_map(|f| f.parse().ok()).collect();
        match (line.split(' ').next(), fields.as_slice()) {
            (Some("w"), [k, s, at]) => watchers.push(latency(*k as usize, *s as usize, *at)),
            (Some("d"), [k, s, at]) => dashboards.push(latency(*k as usize, *s as usize, *at)),
            (Some("f"), [count]) => frames.push(*count),
            (Some("end"), _) => break,
            _ => panic!("unexpected line from the clients: {line}"),
        }
    }
    let _ = child.wait();
    let invocations = metrics(http, base).await - invocations_before;
    watchers.sort_by(f64::total_cmp);
    dashboards.sort_by(f64::total_cmp);
    let run = Run {
        name,
        sent_per_second,
        invocations,
        posts: stack.api.counters.posts.load(Ordering::Relaxed) - posts_before,
        throttled: stack.api.counters.throttled.load(Ordering::Relaxed) - throttled_before,
        dashboard_frames: (frames.iter().copied().min().unwrap_or(0), frames.iter().copied().max().unwrap_or(0)),
        watchers,
        dashboards,
    };
    eprintln!(
        "{name}: {:.0} events/s sent, {} invocations, {} posts ({} throttled), dashboard frames {:?}, watchers p50 {:.1} p99 {:.1} ms, dashboards p50 {:.1} p99 {:.1} ms",
        run.sent_per_second,
        run.invocations,
        run.posts,
        run.throttled,
        run.dashboard_frames,
        percentile(&run.watchers, 0.5),
        percentile(&run.watchers, 0.99),
        percentile(&run.dashboards, 0.5),
        percentile(&run.dashboards, 0.99)
    );
    run
}

/// The client process: two watchers of each job's file and [`DASHBOARDS`] prefix watchers of
/// [`FOLDER`], `batch`ed or not (256 handshakes at a time). Prints `ready` once all are subscribed;
/// then, once every watcher has its job's COMPLETE and every dashboard every job's, one line per
/// frame received (`w JOB STEP AT_US`, and `d JOB STEP AT_US` per update a dashboard received),
/// `f FRAMES` per dashboard, and `end`.
async fn clients(url: String, jobs: usize, batch: bool) {
    let total = jobs * WATCHERS_PER_JOB + DASHBOARDS;
    let ready = Arc::new(AtomicUsize::new(0));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let permits = Arc::new(tokio::sync::Semaphore::new(256));
    let mut tasks = Vec::with_capacity(total);
    for c in 0..total {
        let (url, ready, ready_tx, permits) = (url.clone(), ready.clone(), ready_tx.clone(), permits.clone());
        tasks.push(tokio::spawn(async move {
            let dashboard = c >= jobs * WATCHERS_PER_JOB;
            let mut permit = Some(permits.acquire_owned().await.expect("semaphore"));
            let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str()).await.expect("connect");
            let subscribe = if dashboard {
                json!({"action": "subscribe", "prefix": FOLDER, "batch": batch})
            } else {
                json!({"action": "subscribe", "input_file": file(c / WATCHERS_PER_JOB)})
            };
            socket.send(Message::Text(subscribe.to_string().into())).await.expect("subscribe");
            let mut lines = Vec::new();
            let (mut frames, mut complete) = (0u64, std::collections::HashSet::new());
            while let Some(Ok(message)) = socket.next().await {
                let Message::Text(text) = message else { continue };
                let at = now_us();
                let value: Value = serde_json::from_str(&text).expect("json");
                let updates = match value["type"].as_str() {
                    Some("subscribed") => {
                        permit.take();
                        if ready.fetch_add(1, Ordering::SeqCst) + 1 == total {
                            let _ = ready_tx.send(());
                        }
                        continue;
                    }
                    Some("status") => {
                        frames += 1;
                        vec![value]
                    }
                    Some("statuses") => {
                        frames += 1;
                        value["updates"].as_array().cloned().unwrap_or_default()
                    }
                    other => panic!("unexpected {other:?}: {text}"),
                };
                for update in updates {
                    let (Some(k), Some(s)) = (update["job_id"].as_str().and_then(job_index), step(&update)) else {
                        continue;
                    };
                    lines.push(format!("{} {k} {s} {at}", if dashboard { 'd' } else { 'w' }));
                    if s == STEPS - 1 {
                        complete.insert(k);
                    }
                }
                if complete.len() == if dashboard { jobs } else { 1 } {
                    break;
                }
            }
            if dashboard {
                lines.push(format!("f {frames}"));
            }
            lines
        }));
        // (A permit is held until the subscription is confirmed, so handshakes stay bounded.)
        tokio::task::yield_now().await;
    }
    drop(ready_tx);
    let _ = ready_rx.recv().await;
    let stdout = std::io::stdout();
    {
        let mut out = stdout.lock();
        let _ = writeln!(out, "ready");
        let _ = out.flush();
    }
    let mut out = std::io::BufWriter::new(stdout.lock());
    for task in tasks {
        for line in task.await.expect("client task") {
            let _ = writeln!(out, "{line}");
        }
    }
    let _ = writeln!(out, "end");
    let _ = out.flush();
}

fn table(runs: &[Run], jobs: usize) -> String {
    let mut out = format!(
        "{jobs} jobs × {STEPS} events, {WATCHERS_PER_JOB} file watchers per job, {DASHBOARDS} prefix dashboards of all jobs (batched but in the baseline); \
         release build, x86_64 on {} CPUs, local stack in memory, STREAM_BATCH_SIZE 100, STREAM_BATCH_WINDOW_MS 0.\n\n\
         | scenario | events/s sent | progress-push invocations | posts | 429s | frames per dashboard | watchers p50 / p99 ms | dashboards p50 / p99 ms |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    for r in runs {
        let frames = if r.dashboard_frames.0 == r.dashboard_frames.1 {
            r.dashboard_frames.0.to_string()
        } else {
            format!("{}–{}", r.dashboard_frames.0, r.dashboard_frames.1)
        };
        out += &format!(
            "| {} | {:.0} | {} | {} | {} | {frames} | {:.1} / {:.1} | {:.1} / {:.1} |\n",
            r.name,
            r.sent_per_second,
            r.invocations,
            r.posts,
            r.throttled,
            percentile(&r.watchers, 0.5),
            percentile(&r.watchers, 0.99),
            percentile(&r.dashboards, 0.5),
            percentile(&r.dashboards, 0.99)
        );
    }
    out
}

/// Each scenario's watcher and dashboard latencies as cumulative curves, on a log time axis.
fn plot(runs: &[Run], path: &std::path::Path) {
    let colors = [
        RGBColor(31, 119, 180),
        RGBColor(158, 202, 225),
        RGBColor(214, 39, 40),
        RGBColor(252, 146, 114),
        RGBColor(44, 160, 44),
        RGBColor(161, 217, 155),
        RGBColor(117, 107, 177),
        RGBColor(188, 189, 220),
    ];
    let series = runs.iter().flat_map(|r| {
        [(format!("{}: file watchers", r.name), &r.watchers), (format!("{}: dashboards", r.name), &r.dashboards)]
    });
    let curves: Vec<Curve<'_>> =
        series.zip(colors).map(|((label, samples), color)| Curve { label, samples, color }).collect();
    latency_cdf(
        path,
        (900, 500),
        "many jobs: ingest invoke → frame, share of frames (updates for dashboards) within x ms",
        1.0,
        &curves,
    );
}
