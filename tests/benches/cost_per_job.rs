//! What a job costs, pushed and polled. N jobs run through the local stack on moto (the DynamoDB
//! meter in front of it), each watched for its whole length by W browsers over the WebSocket and
//! by one dashboard per 50 jobs (a folder, batched), with `STATUS_UPDATE_INTERVAL` at SECONDS_10
//! and SECONDS_60; in the same run the same jobs are followed by REST polling every 2 s (the
//! seed's design). The stack's `billing` counts are priced with `docs/cost/prices.csv`. Method and
//! figures: `tests/benches/README.md`.
//!
//! A job is modelled as 10 minutes of MediaConvert's time (the simulator's transcode, each step one
//! update interval), run faster than real time; what real time would add is counted from the
//! model: connection minutes (each watcher for the job's length, a dashboard's shared by its 50
//! jobs), the JS client's keep-alive pings (every 5 min) and re-checks (after 30 s without a
//! push), and the polls (the job's length ÷ 2 s per watcher), each priced at what one such call
//! cost when measured on its own.
//!
//! `cargo bench -p mcpush-tests --bench cost_per_job [-- JOBS]` (default 200). Writes
//! `tests/benches/cost-per-job.{md,svg,json}` (the JSON: the counts per job); with
//! `cost-per-job-before.json` beside them (a run before the waste cuts) the write-up shows both.
//! `-- --report` writes the write-up again from the JSON without running (new prices).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use mcpush_core::config::StatusUpdateInterval;
use mcpush_local::aws::billing::BillingCounts;
use mcpush_local::aws::mediaconvert::SimSettings;
use mcpush_local::{Local, Options, local_dynamodb};
use mcpush_tests::{moto, unique_tables, workspace};
use plotters::prelude::*;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const JOB_SECONDS: f64 = 600.0;
const POLL_SECONDS: f64 = 2.0;
/// A running job's index item rewrites in real time: its `ConfirmedAt` moves at most once a
/// minute (`RECONCILE_AFTER_SECONDS` 300 ÷ 5), so 9 times in 10 minutes, each a delete and a put
/// (its entering and leaving the index are measured). The compressed run takes less than a
/// minute per job, so it measures none of them.
const INDEX_REWRITES: f64 = 2.0 * (JOB_SECONDS / 60.0 - 1.0);
/// The JS client's `pingIntervalMs` and `recheckIntervalMs`.
const PING_SECONDS: f64 = 300.0;
const RECHECK_SECONDS: f64 = 30.0;
const JOBS_PER_DASHBOARD: usize = 50;
/// Real polls each poller makes per job, spread over it (their cost is scaled to the model's).
const SAMPLED_POLLS: usize = 6;
/// Jobs in flight at once: few, so that a function's measured duration is moto's per-call latency
/// rather than its queue, and most stream batches hold one job's record, as at a modest volume.
const JOBS_AT_ONCE: usize = 2;
/// The simulator's step (one update interval): longer than the stream's polling period (250 ms),
/// so a job's records reach progress-push in batches of their own, as in real time.
const STEP: Duration = Duration::from_millis(300);

/// One priced line: what, how many per job, dollars per million jobs.
#[derive(Clone, Debug)]
struct Line {
    item: String,
    per_job: f64,
    usd_per_million_jobs: f64,
}

/// One line of `docs/cost/prices.csv` (its other columns: unit, region, read, source).
#[derive(serde::Deserialize)]
struct Price {
    service: String,
    item: String,
    usd: f64,
}

/// The list prices (`docs/cost/prices.csv`), by `service/item`.
struct Prices(BTreeMap<String, f64>);

impl Prices {
    fn load() -> Self {
        let text = std::fs::read_to_string(workspace().join("docs/cost/prices.csv")).expect("docs/cost/prices.csv");
        let prices = csv::ReaderBuilder::new()
            .comment(Some(b'#'))
            .from_reader(text.as_bytes())
            .deserialize::<Price>()
            .map(|price| price.map(|p| (format!("{}/{}", p.service, p.item), p.usd)))
            .collect::<Result<_, _>>()
            .expect("docs/cost/prices.csv");
        Prices(prices)
    }

    fn of(&self, prefix: &str) -> f64 {
        let found: Vec<_> = self.0.iter().filter(|(k, _)| k.starts_with(prefix)).collect();
        assert_eq!(found.len(), 1, "one price for {prefix}: {found:?}");
        *found[0].1
    }
}

/// Each function's memory (MB), as infra/template.yaml gives it: its own `MemorySize`, else the
/// Globals'; by the folder of its `CodeUri` (the package name).
fn memory_mb() -> BTreeMap<String, f64> {
    let text = std::fs::read_to_string(workspace().join("infra/template.yaml")).expect("the template");
    let template: serde_norway::Value = serde_norway::from_str(&text).expect("the template is YAML");
    let default = template["Globals"]["Function"]["MemorySize"].as_f64();
    let memory: BTreeMap<String, f64> = template["Resources"]
        .as_mapping()
        .expect("Resources")
        .values()
        .filter(|resource| resource["Type"].as_str() == Some("AWS::Serverless::Function"))
        .filter_map(|function| {
            let properties = &function["Properties"];
            let package = properties["CodeUri"].as_str()?.rsplit('/').next()?.to_owned();
            Some((package, properties["MemorySize"].as_f64().or(default)?))
        })
        .collect();
    assert!(memory.len() >= 12, "every function's memory: {memory:?}");
    memory
}

/// A stack on moto with fresh tables; answers its URL and the stack.
async fn stack(label: &str, interval: &str) -> (String, Local) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let base = format!("http://{}", listener.local_addr().expect("its address"));
    let mut options = Options {
        // Lambda polls a stream's shards about 4 times a second
        batch_window: Duration::from_millis(250),
        s3_dir: workspace().join(format!("target/bench-cost/{label}-{}-{}", std::process::id(), fastrand::u32(..))),
        simulator: SimSettings { step: STEP, transcode_seconds: JOB_SECONDS, ..SimSettings::default() },
        reconcile_every: Duration::from_secs(24 * 3600),
        ..Options::default()
    };
    // as on AWS: a running job's ConfirmedAt moves at most once a minute (see `INDEX_REWRITES`)
    options.reconcile.after = Duration::from_secs(300);
    options.tables = unique_tables(label);
    options.subscriptions_table = format!("{}-subscriptions", options.tables.status);
    options.create_job.status_update_interval = StatusUpdateInterval::parse(interval).expect("an interval");
    let local = local_dynamodb(&base, options, &moto().endpoint).await.expect("the stack on moto");
    let router = local.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (base, local)
}

/// What a browser does to upload: the grant (its cost), then the object under `key`.
async fn upload(http: &reqwest::Client, base: &str, key: &str) {
    let grant = json!({"file_name": "clip.mp4", "content_type": "video/mp4", "size": 1000});
    let answer = http
        .post(format!("{base}/media/uploads"))
        .header("content-type", "application/json")
        .body(grant.to_string())
        .send()
        .await
        .expect("the grant");
    assert!(answer.status().is_success());
    let put = http.put(format!("{base}/s3/uploads/{key}")).body(vec![7u8; 1000]).send().await.expect("the PUT");
    assert!(put.status().is_success());
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn subscribe(base: &str, subscription: Value) -> Socket {
    let url = format!("{}/ws", base.replace("http://", "ws://"));
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.expect("a connection");
    socket.send(Message::text(subscription.to_string())).await.expect("subscribe");
    loop {
        let frame = socket.next().await.expect("an answer").expect("a frame");
        if let Message::Text(text) = frame {
            let message: Value = serde_json::from_str(&text).expect("json");
            if message["type"] == "subscribed" {
                return socket;
            }
            assert_ne!(message["type"], "error", "{message}");
        }
    }
}

/// Reads until `done` COMPLETE states were seen (in `status` or `statuses` messages), then closes.
async fn until_complete(mut socket: Socket, done: usize) {
    let mut seen = 0;
    while seen < done {
        let frame = tokio::time::timeout(Duration::from_secs(600), socket.next()).await.expect("in time");
        let Some(Ok(Message::Text(text))) = frame else { panic!("the socket closed early") };
        let message: Value = serde_json::from_str(&text).expect("json");
        let states = match message["type"].as_str() {
            Some("statuses") => message["updates"].as_array().cloned().unwrap_or_default(),
            Some("status") => vec![message],
            _ => Vec::new(),
        };
        seen += states.iter().filter(|s| s["job_status"] == "COMPLETE").count();
    }
    let _ = socket.close(None).await;
}

/// One REST poll of `key`'s status; answers its `job_status`.
async fn poll(http: &reqwest::Client, base: &str, key: &str) -> Value {
    let url = reqwest::Url::parse_with_params(&format!("{base}/media/status"), [("input_file", key)]).expect("a URL");
    let text = http.get(url).send().await.expect("a poll").text().await.unwrap_or_default();
    serde_json::from_str::<Value>(&text).unwrap_or(Value::Null)["job_status"].clone()
}

/// Polls `key`'s status until COMPLETE, `SAMPLED_POLLS` times at most before it; answers the polls made.
async fn poll_until_complete(http: &reqwest::Client, base: &str, key: &str) -> u64 {
    let mut polls = 0;
    loop {
        polls += 1;
        if poll(http, base, key).await == "COMPLETE" {
            return polls;
        }
        assert!(polls < 600, "{key} did not complete within 600 polls");
        let pause = if polls < SAMPLED_POLLS as u64 { 300 } else { 1000 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

/// A table's role (`status`, `job-id`, `subscriptions`) instead of the run's own name.
fn role(name: &str) -> String {
    let (table, index) = name.split_once("/index/").map_or((name, None), |(t, i)| (t, Some(i)));
    let table = if table.ends_with("-subscriptions") {
        "subscriptions"
    } else if table.contains("-jobid-") {
        "job-id"
    } else {
        "status"
    };
    index.map_or_else(|| table.to_owned(), |i| format!("{table}/index/{i}"))
}

/// The counts as one flat map (`lambda_requests/status-api`, `dynamodb_wru/status`, …), divided by `n`.
fn per(counts: &BillingCounts, n: f64) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (function, requests) in &counts.lambda_requests {
        out.insert(format!("lambda_requests/{function}"), *requests as f64 / n);
    }
    for (function, ms) in &counts.lambda_billed_ms {
        out.insert(format!("lambda_billed_ms/{function}"), *ms as f64 / n);
    }
    for (name, units) in &counts.dynamodb_wru {
        *out.entry(format!("dynamodb_wru/{}", role(name))).or_default() += units / n;
    }
    for (name, units) in &counts.dynamodb_rru {
        *out.entry(format!("dynamodb_rru/{}", role(name))).or_default() += units / n;
    }
    out.insert("websocket_messages".into(), counts.websocket_messages as f64 / n);
    out.insert("http_api_requests".into(), counts.http_api_requests as f64 / n);
    out.insert("eventbridge_events".into(), counts.eventbridge_events as f64 / n);
    out.insert("s3_requests".into(), counts.s3_requests as f64 / n);
    out.insert("mediaconvert_requests".into(), counts.mediaconvert_requests as f64 / n);
    out
}

/// What happened between two snapshots, per time it was done (`times`).
fn between(before: &BillingCounts, after: &BillingCounts, times: usize) -> BTreeMap<String, f64> {
    let mut out = per(after, times as f64);
    add(&mut out, &per(before, times as f64), -1.0);
    out.retain(|_, v| v.abs() > 1e-9);
    out
}

fn add(into: &mut BTreeMap<String, f64>, what: &BTreeMap<String, f64>, times: f64) {
    for (k, v) in what {
        *into.entry(k.clone()).or_default() += v * times;
    }
}

/// The per-job counts priced: one line per item.
fn price(counts: &BTreeMap<String, f64>, prices: &Prices, memory: &BTreeMap<String, f64>) -> Vec<Line> {
    let m = 1_000_000.0;
    let mut lines = Vec::new();
    let mut line = |item: String, per_job: f64, unit_price: f64| {
        if per_job > 0.0 {
            lines.push(Line { item, per_job, usd_per_million_jobs: per_job * unit_price * m });
        }
    };
    for (key, value) in counts {
        let (kind, name) = key.split_once('/').unwrap_or((key.as_str(), ""));
        match kind {
            "lambda_requests" => line(format!("Lambda requests: {name}"), *value, prices.of("lambda/requests")),
            "lambda_billed_ms" => {
                let gb = memory.get(name).copied().unwrap_or(256.0) / 1024.0;
                line(format!("Lambda GB-s: {name}"), value / 1000.0 * gb, prices.of("lambda/duration arm64"));
            }
            "dynamodb_wru" => line(format!("DynamoDB WRU: {name}"), *value, prices.of("dynamodb/on-demand write")),
            "dynamodb_rru" => line(format!("DynamoDB RRU: {name}"), *value, prices.of("dynamodb/on-demand read")),
            "websocket_messages" => {
                line("WebSocket messages".into(), *value, prices.of("apigateway/WebSocket messages"))
            }
            "websocket_connection_minutes" => {
                line("WebSocket connection minutes".into(), *value, prices.of("apigateway/WebSocket connection"))
            }
            "http_api_requests" => line("HTTP API requests".into(), *value, prices.of("apigateway/HTTP API")),
            "eventbridge_events" => line("EventBridge events".into(), *value, prices.of("eventbridge/custom events")),
            "s3_requests" => line("S3 PUT/POST requests".into(), *value, prices.of("s3/PUT")),
            "mediaconvert_requests" => line("MediaConvert API requests".into(), *value, prices.of("mediaconvert/")),
            _ => {}
        }
    }
    lines
}

/// One configuration's result.
struct Outcome {
    label: String,
    push: Vec<Line>,
    poll: Vec<Line>,
    /// The same configuration in `cost-per-job-before.json` (before the waste cuts), if kept.
    before: Option<(Vec<Line>, Vec<Line>)>,
}

fn total(lines: &[Line]) -> f64 {
    lines.iter().map(|l| l.usd_per_million_jobs).sum()
}

/// Counts per job by configuration label, then `push` / `poll`.
type Measured = BTreeMap<String, BTreeMap<String, BTreeMap<String, f64>>>;

const INTERVALS: [&str; 2] = ["SECONDS_10", "SECONDS_60"];
const WATCHERS: [usize; 2] = [1, 5];

fn label(interval: &str, watchers: usize) -> String {
    format!("{interval}, {watchers} watcher{}", if watchers == 1 { "" } else { "s" })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--bench")).collect();
    // Each stack runs in a child process with its own moto, so a finished stack's tasks (its
    // stream pollers) end with it and never load the next one's DynamoDB.
    if args.first().map(String::as_str) == Some("--one") {
        let (interval, run, jobs) = (args[1].clone(), args[2].clone(), args[3].parse().expect("JOBS"));
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
        let pieces = runtime.block_on(async {
            match run.strip_prefix("push") {
                Some(watchers) => push(&interval, watchers.parse().expect("watchers"), jobs).await,
                None => poll_run(&interval, jobs).await,
            }
        });
        println!("{}", json!(pieces));
        return;
    }
    let out = workspace().join("tests/benches");
    let (prices, memory) = (Prices::load(), memory_mb());
    let (jobs, measured) = if args.iter().any(|a| a == "--report") {
        // the report again from the last run's counts (new prices, a new baseline)
        let text = std::fs::read_to_string(out.join("cost-per-job.json")).expect("a run's cost-per-job.json");
        let saved: Value = serde_json::from_str(&text).expect("json");
        let measured = serde_json::from_value(saved["measured"].clone()).expect("counts");
        (saved["jobs"].as_u64().expect("jobs") as usize, measured)
    } else {
        let jobs: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(200);
        let measured = run(jobs);
        let saved = json!({"jobs": jobs, "memory_mb": memory, "measured": measured});
        std::fs::write(out.join("cost-per-job.json"), serde_json::to_string_pretty(&saved).expect("json"))
            .expect("write");
        (jobs, measured)
    };
    let before = std::fs::read_to_string(out.join("cost-per-job-before.json"))
        .ok()
        .map(|text| serde_json::from_str::<Value>(&text).expect("cost-per-job-before.json"));
    let before_measured: Option<Measured> =
        before.as_ref().map(|b| serde_json::from_value(b["measured"].clone()).expect("its counts"));
    let before_memory: BTreeMap<String, f64> = before
        .as_ref()
        .and_then(|b| serde_json::from_value(b["memory_mb"].clone()).ok())
        .unwrap_or_else(|| memory.clone());
    let priced = |m: &Measured, label: &str, memory: &BTreeMap<String, f64>| {
        m.get(label).map(|c| (price(&c["push"], &prices, memory), price(&c["poll"], &prices, memory)))
    };
    let outcomes: Vec<Outcome> = INTERVALS
        .iter()
        .flat_map(|i| WATCHERS.map(|w| label(i, w)))
        .map(|label| {
            let (push, poll) = priced(&measured, &label, &memory).expect("measured");
            let before = before_measured.as_ref().and_then(|b| priced(b, &label, &before_memory));
            Outcome { label, push, poll, before }
        })
        .collect();
    report(&outcomes, &measured, &memory, jobs);
}

/// Every configuration measured, `jobs` jobs each: the counts per job.
fn run(jobs: usize) -> Measured {
    let child = |interval: &str, run: &str| -> Pieces {
        eprintln!("{interval}, {run}: {jobs} jobs");
        let output = std::process::Command::new(std::env::current_exe().expect("the bench"))
            .args(["--one", interval, run, &jobs.to_string()])
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("the run");
        assert!(output.status.success(), "{interval}, {run} failed");
        let line = String::from_utf8_lossy(&output.stdout);
        serde_json::from_str(line.lines().last().unwrap_or_default()).expect("its counts")
    };
    let mut measured = Measured::new();
    for interval in INTERVALS {
        let seconds = f64::from(StatusUpdateInterval::parse(interval).expect("an interval").seconds());
        let polled = child(interval, "poll");
        for watchers in WATCHERS {
            let pushed = child(interval, &format!("push{watchers}"));
            let (w, boards) = (watchers as f64, 1.0 / JOBS_PER_DASHBOARD as f64);
            // the sampled polls replaced by the model's: the job's length ÷ 2 s per watcher
            let rewrites = BTreeMap::from([("dynamodb_wru/status/index/UnfinishedByConfirmedAt".to_owned(), 1.0)]);
            let mut polling = polled["job"].clone();
            add(&mut polling, &polled["one_poll"], w * JOB_SECONDS / POLL_SECONDS);
            add(&mut polling, &rewrites, INDEX_REWRITES);
            // what real time adds to the compressed run: each connection open for the job's
            // length (a dashboard's share of its 50 jobs), its keep-alive pings, the re-checks
            let mut pushing = pushed["job"].clone();
            add(&mut pushing, &rewrites, INDEX_REWRITES);
            pushing.insert("websocket_connection_minutes".into(), (w + boards) * JOB_SECONDS / 60.0);
            add(&mut pushing, &pushed["one_ping"], (w + boards) * (JOB_SECONDS / PING_SECONDS).floor());
            add(&mut pushing, &polled["one_poll"], w * rechecks_per_job(seconds));
            add(&mut pushing, &pushed["one_resubscribe"], boards * rechecks_per_job(seconds));
            measured.insert(
                label(interval, watchers),
                BTreeMap::from([("push".to_owned(), pushing), ("poll".to_owned(), polling)]),
            );
        }
    }
    measured
}

/// What one child measured, by name (`job`: counts per job; `one_poll`, `one_ping`,
/// `one_resubscribe`: the counts of one such call).
type Pieces = BTreeMap<String, BTreeMap<String, f64>>;

/// Re-checks a watcher's client makes in a job whose pushes arrive every `interval` seconds.
/// `@mcpush/client` asks the REST API (a watch) or subscribes again (a folder) only after
/// `recheckIntervalMs` (30 s) without a push about it: none while pushes come more often, one
/// per 30 s of each silence. (Until the cuts it asked every 30 s: `JOB_SECONDS / 30`.)
fn rechecks_per_job(interval: f64) -> f64 {
    (JOB_SECONDS / interval) * ((interval / RECHECK_SECONDS).ceil() - 1.0)
}

/// The polling run of one interval: each job polled by one watcher until COMPLETE (a sample of
/// polls), then one poll's cost measured on its own; answers the job's counts without the sample.
async fn poll_run(interval: &str, jobs: usize) -> Pieces {
    let http = reqwest::Client::new();
    let (base, local) = stack("cost-poll", interval).await;
    let keys: Vec<String> = (0..jobs).map(|i| format!("poll/job{i}.mp4")).collect();
    let sampled: u64 = futures::stream::iter(keys.iter().map(|key| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            upload(&http, &base, key).await;
            poll_until_complete(&http, &base, key).await
        }
    }))
    .buffer_unordered(JOBS_AT_ONCE)
    .collect::<Vec<u64>>()
    .await
    .iter()
    .sum();
    let jobs_done = settled(&local).await;
    durations("poll", &jobs_done);
    for _ in 0..CALIBRATION {
        poll(&http, &base, &keys[fastrand::usize(..keys.len())]).await;
    }
    let one_poll = between(&jobs_done, &settled(&local).await, CALIBRATION);
    let mut job = per(&jobs_done, jobs as f64);
    add(&mut job, &one_poll, -(sampled as f64) / jobs as f64);
    job.retain(|_, v| *v > 1e-9);
    BTreeMap::from([("job".to_owned(), job), ("one_poll".to_owned(), one_poll)])
}

/// Times each calibration call is made (its cost is their average).
const CALIBRATION: usize = 100;

/// The counts once the stack is quiet (the stream and the pushes it triggers drained); an open
/// connection's minutes grow by the second, and the model counts them anyway.
async fn settled(local: &Local) -> BillingCounts {
    let quiet = || BillingCounts { websocket_connection_minutes: 0.0, ..local.billing.snapshot() };
    let mut last = quiet();
    loop {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let now = quiet();
        if now == last {
            return now;
        }
        last = now;
    }
}

/// Each function's billed ms per invocation, on stderr (what the run's durations look like).
fn durations(run: &str, counts: &BillingCounts) {
    let each: Vec<String> = counts
        .lambda_billed_ms
        .iter()
        .map(|(f, ms)| format!("{f} {:.1}", *ms as f64 / counts.lambda_requests[f].max(1) as f64))
        .collect();
    eprintln!("  {run}: ms per invocation: {}", each.join(", "));
}

/// The push run of one interval and number of watchers: its counts per job, and what one
/// keep-alive ping and one dashboard re-subscribe (its folder's snapshot) cost.
async fn push(interval: &str, watchers: usize, jobs: usize) -> Pieces {
    let http = reqwest::Client::new();
    let (base, local) = stack("cost-push", interval).await;
    let dashboards = jobs.div_ceil(JOBS_PER_DASHBOARD);
    let folder = |d: usize| json!({"action": "subscribe", "prefix": format!("push/d{d}/"), "batch": true});
    let boards = futures::future::join_all((0..dashboards).map(|d| {
        let base = base.clone();
        let subscription = folder(d);
        async move {
            let socket = subscribe(&base, subscription).await;
            let mine = (0..jobs).filter(|i| i / JOBS_PER_DASHBOARD == d).count();
            (socket, mine)
        }
    }))
    .await;
    let boards: Vec<_> = boards.into_iter().map(|(socket, mine)| tokio::spawn(until_complete(socket, mine))).collect();
    futures::stream::iter((0..jobs).map(|i| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let key = format!("push/d{}/job{i}.mp4", i / JOBS_PER_DASHBOARD);
            let sockets = futures::future::join_all(
                (0..watchers).map(|_| subscribe(&base, json!({"action": "subscribe", "input_file": key}))),
            )
            .await;
            upload(&http, &base, &key).await;
            futures::future::join_all(sockets.into_iter().map(|s| until_complete(s, 1))).await;
        }
    }))
    .buffer_unordered(JOBS_AT_ONCE)
    .collect::<Vec<()>>()
    .await;
    for board in boards {
        board.await.expect("a dashboard");
    }
    let jobs_done = settled(&local).await;
    durations(&format!("push to {watchers}"), &jobs_done);
    let mut socket = subscribe(&base, folder(0)).await;
    let opened = settled(&local).await;
    for _ in 0..CALIBRATION {
        socket.send(Message::text(json!({"action": "ping"}).to_string())).await.expect("a ping");
        until_type(&mut socket, "pong").await;
    }
    let pinged = settled(&local).await;
    for _ in 0..CALIBRATION / 10 {
        socket.send(Message::text(folder(0).to_string())).await.expect("a re-subscribe");
        until_type(&mut socket, "subscribed").await;
    }
    let resubscribed = settled(&local).await;
    BTreeMap::from([
        ("job".to_owned(), per(&jobs_done, jobs as f64)),
        ("one_ping".to_owned(), between(&opened, &pinged, CALIBRATION)),
        ("one_resubscribe".to_owned(), between(&pinged, &resubscribed, CALIBRATION / 10)),
    ])
}

/// Reads frames until a message of `kind` (e.g. `pong`) arrives.
async fn until_type(socket: &mut Socket, kind: &str) {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), socket.next()).await.expect("in time");
        let Some(Ok(Message::Text(text))) = frame else { panic!("the socket closed early") };
        let message: Value = serde_json::from_str(&text).expect("json");
        if message["type"] == kind {
            return;
        }
    }
}

fn report(outcomes: &[Outcome], measured: &Measured, memory: &BTreeMap<String, f64>, jobs: usize) {
    let mut md = String::new();
    writeln!(md, "<!-- written by `cargo bench -p mcpush-tests --bench cost_per_job -- {jobs}` -->").unwrap();
    writeln!(md, "{jobs} jobs of 10 minutes each per configuration, priced with docs/cost/prices.csv (us-east-1).\n")
        .unwrap();
    let with_before = outcomes.iter().any(|o| o.before.is_some());
    write!(md, "| configuration | push $ / M jobs | poll $ / M jobs | push ÷ poll |").unwrap();
    if with_before {
        writeln!(md, " before the cuts: push | poll | push ÷ poll |\n|---|---:|---:|---:|---:|---:|---:|").unwrap();
    } else {
        writeln!(md, "\n|---|---:|---:|---:|").unwrap();
    }
    for o in outcomes {
        let (push, poll) = (total(&o.push), total(&o.poll));
        write!(md, "| {} | {push:.2} | {poll:.2} | {:.3} |", o.label, push / poll).unwrap();
        if let Some((b_push, b_poll)) = &o.before {
            let (b_push, b_poll) = (total(b_push), total(b_poll));
            write!(md, " {b_push:.2} | {b_poll:.2} | {:.3} |", b_push / b_poll).unwrap();
        }
        writeln!(md).unwrap();
    }
    writeln!(md, "\nEach function's memory and the milliseconds it billed per invocation (SECONDS_10, pushed to 1):\n")
        .unwrap();
    writeln!(md, "| function | MemorySize MB | ms per invocation |").unwrap();
    writeln!(md, "|---|---:|---:|").unwrap();
    let first = measured.get(&label(INTERVALS[0], WATCHERS[0])).map(|c| &c["push"]);
    for (function, mb) in memory {
        let ms = first.and_then(|c| {
            let requests = c.get(&format!("lambda_requests/{function}")).filter(|r| **r > 0.0)?;
            Some(c.get(&format!("lambda_billed_ms/{function}"))? / requests)
        });
        let ms = ms.map_or_else(|| "–".to_owned(), |ms| format!("{ms:.1}"));
        writeln!(md, "| {function} | {mb} | {ms} |").unwrap();
    }
    for o in outcomes {
        writeln!(md, "\n### {}\n", o.label).unwrap();
        writeln!(md, "| item | push per job | push $ / M jobs | poll per job | poll $ / M jobs |").unwrap();
        writeln!(md, "|---|---:|---:|---:|---:|").unwrap();
        let mut items: Vec<&String> = o.push.iter().chain(&o.poll).map(|l| &l.item).collect();
        items.sort();
        items.dedup();
        let find = |lines: &[Line], item: &str| {
            lines.iter().find(|l| l.item == item).map_or((0.0, 0.0), |l| (l.per_job, l.usd_per_million_jobs))
        };
        for item in items {
            let ((a, b), (c, d)) = (find(&o.push, item), find(&o.poll, item));
            writeln!(md, "| {item} | {a:.3} | {b:.2} | {c:.3} | {d:.2} |").unwrap();
        }
        writeln!(md, "| **total** | | **{:.2}** | | **{:.2}** |", total(&o.push), total(&o.poll)).unwrap();
    }
    let out = workspace().join("tests/benches");
    std::fs::write(out.join("cost-per-job.md"), &md).expect("the write-up");
    print!("{md}");
    plot(outcomes, &out.join("cost-per-job.svg"));
}

fn plot(outcomes: &[Outcome], path: &std::path::Path) {
    let root = SVGBackend::new(path, (820, 420)).into_drawing_area();
    root.fill(&WHITE).expect("plot");
    let top = outcomes.iter().map(|o| total(&o.poll).max(total(&o.push))).fold(1.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption("$ per million jobs: WebSocket push against 2 s polling", ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..(outcomes.len() as f64), 0.0..top)
        .expect("plot");
    let labels: Vec<String> = outcomes.iter().map(|o| o.label.clone()).collect();
    chart
        .configure_mesh()
        .x_labels(outcomes.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.01 { labels.get(i).cloned().unwrap_or_default() } else { String::new() }
        })
        .y_desc("$ per million jobs")
        .draw()
        .expect("plot");
    for (i, o) in outcomes.iter().enumerate() {
        let x = i as f64;
        let bars = [(x + 0.1, x + 0.45, total(&o.push), BLUE), (x + 0.55, x + 0.9, total(&o.poll), RED)];
        for (from, to, value, color) in bars {
            chart.draw_series([Rectangle::new([(from, 0.0), (to, value)], color.filled())]).expect("plot");
        }
    }
    chart
        .draw_series([Rectangle::new([(0.0, 0.0), (0.0, 0.0)], BLUE.filled())])
        .expect("plot")
        .label("push")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], BLUE.filled()));
    chart
        .draw_series([Rectangle::new([(0.0, 0.0), (0.0, 0.0)], RED.filled())])
        .expect("plot")
        .label("poll every 2 s")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], RED.filled()));
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw().expect("plot");
    root.present().expect("plot");
}
