//! Cold-start benchmark: every function binary, built as it is packaged for Lambda, against a
//! hello-world `lambda_runtime` binary built the same way in the same run, each started as Lambda
//! starts it under the test Runtime API (`tests/src/runtime_api.rs`). See
//! `tests/benches/README.md` for the method and the recorded figures.
//!
//! `scripts/bench-cold-start [RUNS]` (default 11 starts per binary). `COLD_START_BINARIES=DIR`
//! measures binaries already built into `DIR/<package>/bootstrap` instead of building them.
//! `COLD_START_ONLY=upload-api,reconcile` builds and measures those functions (and the two
//! baselines) only, writing to `target/cold-start-only/` instead of the recorded figures.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use mcpush_tests::runtime_api::{
    FUNCTIONS, Function, Outcome, RuntimeApi, authorizer_event, http_event, peak_rss, ws_event,
};
use mcpush_tests::{fixture, workspace};
use plotters::prelude::*;
use serde_json::{Value, json};

const BASELINE: &str = "hello-lambda";
/// The AWS SDK's floor: hello-lambda plus aws-config and a DynamoDB client, one `GetItem` per
/// event (`tests/hello-dynamodb`); what any function calling DynamoDB through the SDK starts from.
const SDK_FLOOR: &str = "hello-dynamodb";
const ANSWER: Duration = Duration::from_secs(20);

/// One start of one binary.
#[derive(Clone, Copy)]
struct Start {
    init: Duration,
    init_cpu: Duration,
    first_response: Duration,
    peak_rss: u64,
}

struct Binary {
    name: &'static str,
    path: PathBuf,
    size: u64,
    zip: u64,
    starts: Vec<Start>,
}

/// The functions `COLD_START_ONLY` names (all when unset), with the two baselines first.
fn packages() -> Vec<&'static str> {
    let only = std::env::var("COLD_START_ONLY").ok();
    let wanted = |name: &str| only.as_deref().is_none_or(|only| only.split(',').any(|o| o.trim() == name));
    let chosen: Vec<&'static str> = FUNCTIONS.into_iter().filter(|name| wanted(name)).collect();
    assert!(!chosen.is_empty(), "COLD_START_ONLY names none of {FUNCTIONS:?}");
    [BASELINE, SDK_FLOOR].into_iter().chain(chosen).collect()
}

fn main() {
    let runs: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(11);
    let folder = match std::env::var_os("COLD_START_BINARIES") {
        // (cargo runs benches in the package's folder: a relative path is the workspace's)
        Some(dir) => workspace().join(dir),
        None => build(),
    };
    let mut binaries: Vec<Binary> = packages()
        .into_iter()
        .map(|name| {
            let path = folder.join(name).join("bootstrap");
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            Binary { name, size: bytes.len() as u64, zip: zipped(&bytes), path, starts: Vec::new() }
        })
        .collect();

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        let env = peers().await;
        // Round-robin: each round starts every binary once, so drift in the machine's load
        // touches all of them alike.
        for round in 0..runs {
            eprint!("\rround {}/{runs}", round + 1);
            for binary in &mut binaries {
                let start = start(binary.name, &binary.path, &env).await;
                binary.starts.push(start);
            }
        }
        eprintln!();
    });

    let table = table(&binaries, runs);
    println!("{table}");
    let out = match std::env::var_os("COLD_START_ONLY") {
        Some(_) => workspace().join("target/cold-start-only"),
        None => workspace().join("tests/benches"),
    };
    std::fs::create_dir_all(&out).expect("the output folder");
    std::fs::write(out.join("cold-start.md"), &table).expect("write the table");
    plot(&binaries, &out.join("cold-start.svg"));
    eprintln!("wrote {0}/cold-start.md and {0}/cold-start.svg", out.display());
}

/// `cargo lambda build --release` of each package on its own, as `sam build` does (so each
/// binary gets its own features), for this machine's architecture.
fn build() -> PathBuf {
    let folder = workspace().join("target/cold-start");
    let arch = if cfg!(target_arch = "aarch64") { "--arm64" } else { "--x86-64" };
    for package in packages() {
        eprintln!("cargo lambda build --release {arch} -p {package}");
        let status = Command::new("cargo")
            .args(["lambda", "build", "--release", arch, "-p", package, "--lambda-dir"])
            .arg(&folder)
            .current_dir(workspace())
            .status()
            .expect("cargo lambda runs (scripts/bench-cold-start puts it on PATH)");
        assert!(status.success(), "cargo lambda build -p {package} failed");
    }
    folder
}

/// The size of `bootstrap` alone in a zip archive (deflate, level 9), as Lambda receives it.
fn zipped(bytes: &[u8]) -> u64 {
    let mut archive = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(9))
        .unix_permissions(0o755);
    archive.start_file("bootstrap", options).expect("zip entry");
    archive.write_all(bytes).expect("zip");
    archive.finish().expect("zip").into_inner().len() as u64
}

/// The loopback peers and the environment every function gets: a canned AWS endpoint
/// (DynamoDB, the Management API) so that a store call costs a loopback round trip and not a
/// Python server's time, and the local stack's simulated MediaConvert for create-job.
async fn peers() -> Vec<(String, String)> {
    let aws = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let aws_base = format!("http://{}", aws.local_addr().expect("address"));
    tokio::spawn(axum::serve(aws, Router::new().fallback(canned_aws)).into_future());
    let local = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let local_base = format!("http://{}", local.local_addr().expect("address"));
    let s3_dir = workspace().join("target/cold-start/s3");
    let stack = mcpush_local::local(&local_base, mcpush_local::Options { s3_dir, ..mcpush_local::Options::default() });
    tokio::spawn(axum::serve(local, stack.router).into_future());
    [
        ("AWS_ENDPOINT_URL_DYNAMODB", aws_base.as_str()),
        ("MANAGEMENT_API_ENDPOINT", aws_base.as_str()),
        ("AWS_ENDPOINT_URL_MEDIACONVERT", local_base.as_str()),
        ("AWS_ENDPOINT_URL_EVENTBRIDGE", aws_base.as_str()),
        ("EVENT_BUS_NAME", "default"),
        ("JOB_STATUS_TABLE", "bench-status"),
        ("JOB_ID_TABLE", "bench-job-id"),
        ("SUBSCRIPTIONS_TABLE", "bench-subscriptions"),
        ("STATUS_RETENTION_DAYS", "90"),
        ("ALLOWED_ORIGINS", "https://app\\.example\\.com"),
        ("MEDIACONVERT_JOB_TEMPLATE", "local-hls"),
        ("MEDIACONVERT_ROLE_ARN", "arn:aws:iam::000000000000:role/MediaConvert"),
        ("OUTPUT_DESTINATION", "s3://{bucket}/{key}_hls/"),
        ("UPLOAD_BUCKET", "uploads"),
        ("SUBSCRIBE_SECRET", "bench-secret-of-16+-bytes"),
        ("OIDC_ISSUER", "http://127.0.0.1:9"),
        ("OIDC_AUDIENCE", "web"),
    ]
    .into_iter()
    .chain(trust_store())
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Amazon Linux keeps its CA certificates in one bundle file; Debian adds a folder of ~150
/// hashed copies, which rustls-native-certs would also read one by one at every start. Naming
/// the bundle (`SSL_CERT_FILE`) gives the functions Lambda's trust store layout.
/// `COLD_START_CERT_DIR=1` keeps this machine's default instead.
fn trust_store() -> Option<(&'static str, &'static str)> {
    const BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
    (std::env::var_os("COLD_START_CERT_DIR").is_none() && Path::new(BUNDLE).exists())
        .then_some(("SSL_CERT_FILE", BUNDLE))
}

/// DynamoDB answers by operation (empty results), PutEvents takes every entry, everything else 200 `{}`.
async fn canned_aws(headers: HeaderMap) -> impl IntoResponse {
    let operation = headers
        .get("x-amz-target")
        .and_then(|t| t.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or_default();
    let body = match operation {
        "Query" | "Scan" => r#"{"Count":0,"Items":[],"ScannedCount":0}"#,
        "BatchWriteItem" => r#"{"UnprocessedItems":{}}"#,
        "BatchGetItem" => r#"{"Responses":{},"UnprocessedKeys":{}}"#,
        "PutEvents" => r#"{"FailedEntryCount":0,"Entries":[{"EventId":"cold-start"}]}"#,
        _ => "{}",
    };
    (StatusCode::OK, [("content-type", "application/x-amz-json-1.0"), ("x-amzn-requestid", "cold-start")], body)
}

/// The first event each binary gets: one that makes it do its usual work, one store call or more.
fn event(name: &str) -> Value {
    let origin = "https://app.example.com";
    let file = json!({"input_file": "Big Buck Bunny.mp4"});
    match name {
        BASELINE => json!({"hello": "world"}),
        SDK_FLOOR => json!({}),
        "create-job" => fixture("s3/object-created.json"),
        "progress-ingest" => fixture("eventbridge/hls-3-status-update-25.json"),
        "progress-push" => fixture("dynamodb/modify.json"),
        "event-publisher" => fixture("dynamodb/insert.json"),
        "job-id-api" => http_event("GET", "/media/job_id", file, None),
        "status-api" => http_event("GET", "/media/status", file, None),
        "upload-api" => http_event(
            "POST",
            "/media/uploads",
            json!({}),
            Some(json!({"file_name": "clip.mp4", "content_type": "video/mp4", "size": 1000})),
        ),
        "ws-connect" => ws_event("$connect", "Yx1=", None, origin),
        "ws-disconnect" => ws_event("$disconnect", "Yx1=", None, origin),
        "ws-message" => ws_event(
            "subscribe",
            "Yx1=",
            Some(json!({"action": "subscribe", "input_file": "Big Buck Bunny.mp4"})),
            origin,
        ),
        "ws-authorizer" => authorizer_event("Yx1=", json!({})),
        "reconcile" => json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}),
        other => panic!("no event for {other}"),
    }
}

/// Spawns `path` with its first event already queued: init is spawn → first `/next`, first
/// response is spawn → the answer to that event.
async fn start(name: &'static str, path: &Path, env: &[(String, String)]) -> Start {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (api, address) = RuntimeApi::start().await;
    let answer = api.enqueue(event(name));
    let spawned = Instant::now();
    let function = Function::spawn(path, name, &env, api.clone(), &address).await;
    let outcome = tokio::time::timeout(ANSWER, answer)
        .await
        .unwrap_or_else(|_| panic!("{name} did not answer: {}", function.logs()))
        .expect("an answer");
    let first_response = spawned.elapsed();
    if let Outcome::Error(error) = &outcome {
        panic!("{name} failed its first event: {error}\n{}", function.logs());
    }
    let pid = function.child.id().expect("running");
    let peak_rss = peak_rss(pid).unwrap_or_default();
    let probe = api.first_next().expect("the function asked for its event");
    Start { init: probe.at - spawned, init_cpu: probe.cpu.unwrap_or_default(), first_response, peak_rss }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

struct Medians {
    init_ms: f64,
    init_cpu_ms: f64,
    first_ms: f64,
    rss_mb: f64,
}

fn medians(binary: &Binary) -> Medians {
    let of = |f: fn(&Start) -> f64| median(binary.starts.iter().map(f).collect());
    Medians {
        init_ms: of(|s| s.init.as_secs_f64() * 1e3),
        init_cpu_ms: of(|s| s.init_cpu.as_secs_f64() * 1e3),
        first_ms: of(|s| s.first_response.as_secs_f64() * 1e3),
        rss_mb: of(|s| s.peak_rss as f64 / 1e6),
    }
}

fn table(binaries: &[Binary], runs: usize) -> String {
    let base = medians(&binaries[0]);
    let (base_zip, base_size) = (binaries[0].zip as f64, binaries[0].size as f64);
    let floor_zip = binaries.iter().find(|b| b.name == SDK_FLOOR).map_or(base_zip, |b| b.zip as f64);
    let mut out = format!(
        "Medians of {runs} starts each, {} on {}, trust store: {}.\n\n\
         | binary | init ms | × | init CPU ms | first response ms | × | peak RSS MB | stripped MB | × | zip MB | × | zip × {SDK_FLOOR} |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        if cfg!(target_arch = "aarch64") { "arm64" } else { "x86_64" },
        std::env::var("COLD_START_MACHINE")
            .unwrap_or_else(|_| format!("{} CPUs", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))),
        trust_store().map_or("the system's default (bundle and hashed folder)", |_| "SSL_CERT_FILE, the bundle alone")
    );
    for binary in binaries {
        let m = medians(binary);
        out += &format!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.1} | {:.2} | {:.1} | {:.2} |\n",
            binary.name,
            m.init_ms,
            m.init_ms / base.init_ms,
            m.init_cpu_ms,
            m.first_ms,
            m.first_ms / base.first_ms,
            m.rss_mb,
            binary.size as f64 / 1e6,
            binary.size as f64 / base_size,
            binary.zip as f64 / 1e6,
            binary.zip as f64 / base_zip,
            binary.zip as f64 / floor_zip,
        );
    }
    out
}

/// Three panels (init, first response, zip size), each binary relative to hello world (= 1),
/// with the budget the issue set drawn across.
fn plot(binaries: &[Binary], path: &Path) {
    let base = medians(&binaries[0]);
    let rows: Vec<(&str, [f64; 3])> = binaries
        .iter()
        .map(|b| {
            let m = medians(b);
            (b.name, [m.init_ms / base.init_ms, m.first_ms / base.first_ms, b.zip as f64 / binaries[0].zip as f64])
        })
        .collect();
    let root = SVGBackend::new(path, (1300, 900)).into_drawing_area();
    root.fill(&WHITE).expect("plot");
    let panels = [
        ("init (spawn → first /next), median × hello world; budget 2×", RGBColor(31, 119, 180), 2.0),
        ("first response (spawn → answer), median × hello world; budget 3×", RGBColor(255, 127, 14), 3.0),
        ("zip size × hello world; budget 3× (black), the SDK floor hello-dynamodb (grey)", RGBColor(44, 160, 44), 3.0),
    ];
    let n = rows.len();
    for (k, (area, (title, color, budget))) in root.split_evenly((3, 1)).iter().zip(panels).enumerate() {
        let top = rows.iter().map(|r| r.1[k]).fold(budget, f64::max) * 1.15;
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(24)
            .y_label_area_size(44)
            .build_cartesian_2d((0..n - 1).into_segmented(), 0.0..top)
            .expect("plot");
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .x_labels(n)
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => rows.get(*i).map(|r| r.0.to_owned()).unwrap_or_default(),
                _ => String::new(),
            })
            .x_label_style(("sans-serif", 12))
            .draw()
            .expect("plot");
        chart
            .draw_series(
                Histogram::vertical(&chart)
                    .style(color.filled())
                    .margin(14)
                    .data(rows.iter().enumerate().map(|(i, r)| (i, r.1[k]))),
            )
            .expect("plot");
        chart
            .draw_series(LineSeries::new(
                [(SegmentValue::Exact(0), budget), (SegmentValue::Last, budget)],
                BLACK.stroke_width(1),
            ))
            .expect("plot");
        if k == 2 {
            // The SDK's floor (hello-dynamodb's zip), which no function calling DynamoDB gets under.
            let floor = rows.iter().find(|r| r.0 == SDK_FLOOR).map_or(1.0, |r| r.1[2]);
            chart
                .draw_series(LineSeries::new(
                    [(SegmentValue::Exact(0), floor), (SegmentValue::Last, floor)],
                    RGBColor(120, 120, 120).stroke_width(1),
                ))
                .expect("plot");
        }
    }
    root.present().expect("plot");
}
