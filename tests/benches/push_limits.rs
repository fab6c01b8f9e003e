//! Push at API Gateway's limits: one change pushed to N real WebSocket subscribers through the
//! emulator with AWS's latency and throttle (`APIGW_POST_LATENCY_MS=20`, `APIGW_POST_RATE=10000`,
//! `APIGW_POST_BURST=5000`), progress-push with a fixed 64 posts in flight against the adaptive
//! window, beside the floor the limits set and this machine's own ceiling (no latency, no
//! throttle). It also reports what an idle subscribed connection costs the emulator (its process's
//! RSS growth while the N clients connect and subscribe, divided by N). Method and figures:
//! `tests/benches/README.md`.
//!
//! `cargo bench -p mcpush-tests --bench push_limits [-- N ...]` (default N: 1000 10000). Writes
//! `tests/benches/push-limits.md` and `tests/benches/push-limits.svg`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use mcpush_core::config::{PushConfig, RetryPolicy};
use mcpush_local::aws::apigw_ws::{Rate, RequestLimits};
use mcpush_tests::subscribers::{self, Fleet};
use mcpush_tests::workspace;
use plotters::prelude::*;

const REPEATS: usize = 3;
const LATENCY: Duration = Duration::from_millis(20);
const RATE: f64 = 10_000.0;
const BURST: f64 = 5_000.0;

/// One measured way of pushing.
struct Scenario {
    name: &'static str,
    limits: RequestLimits,
    config: PushConfig,
}

fn scenarios() -> Vec<Scenario> {
    let aws = RequestLimits {
        post_latency: (LATENCY, LATENCY),
        post_rate: Some(Rate { per_second: RATE, burst: BURST }),
        connect_rate: None,
    };
    let retry = RetryPolicy::default();
    vec![
        Scenario {
            name: "ceiling: no limits, fixed 64",
            limits: RequestLimits::default(),
            config: PushConfig::fixed(64, retry),
        },
        Scenario {
            name: "ceiling: no limits, adaptive",
            limits: RequestLimits::default(),
            config: PushConfig::default(),
        },
        Scenario { name: "AWS limits, fixed 64", limits: aws, config: PushConfig::fixed(64, retry) },
        Scenario { name: "AWS limits, adaptive", limits: aws, config: PushConfig::default() },
    ]
}

/// What one scenario gave for one N: the median time to the last frame and the posts throttled.
struct Row {
    n: usize,
    scenario: &'static str,
    median: Duration,
    throttled: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    if subscribers::run_as_clients(&args, &runtime) {
        return;
    }
    let sizes = subscribers::sizes(&args);
    let (mut rows, mut memory) = (Vec::new(), Vec::new());
    for n in sizes {
        let (measured, per_connection) = runtime.block_on(server(n));
        rows.extend(measured);
        memory.push((n, per_connection));
    }
    let mut table = table(&rows);
    table += "\n| idle subscribed connections | emulator RSS per connection, KB |\n|---:|---:|\n";
    for (n, bytes) in memory {
        table += &format!("| {n} | {:.1} |\n", bytes / 1024.0);
    }
    println!("{table}");
    let out = workspace().join("tests/benches");
    std::fs::write(out.join("push-limits.md"), &table).expect("write the table");
    plot(&rows, &out.join("push-limits.svg"));
    eprintln!("wrote tests/benches/push-limits.md and tests/benches/push-limits.svg");
}

/// The least time API Gateway's limits allow for N posts: the burst at once, the rest at the
/// rate, plus one round trip.
fn floor(n: usize) -> Duration {
    Duration::from_secs_f64((n as f64 - BURST).max(0.0) / RATE) + LATENCY
}

/// This process's resident set, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    kb.unwrap_or_default() * 1024
}

async fn server(n: usize) -> (Vec<Row>, f64) {
    let idle_before = rss();
    let mut fleet = Fleet::start(n).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let per_connection = rss().saturating_sub(idle_before) as f64 / n as f64;
    eprintln!("{n:>6}  idle subscribed connection: {:.1} KB of the emulator's RSS", per_connection / 1024.0);

    let mut rows = Vec::new();
    for scenario in scenarios() {
        let (mut times, mut throttled) = (Vec::new(), Vec::new());
        for _ in 0..REPEATS {
            // A full bucket each time: the account was idle before the change.
            fleet.emulator.api.set_request_limits(scenario.limits);
            tokio::time::sleep(Duration::from_millis(200)).await;
            let before = fleet.emulator.api.counters.throttled.load(Ordering::Relaxed);
            let (elapsed, stats) = fleet.push(&scenario.config).await;
            assert_eq!((stats.delivered, stats.failed), (n, 0), "{}: all delivered, none failed", scenario.name);
            times.push(elapsed);
            throttled.push(fleet.emulator.api.counters.throttled.load(Ordering::Relaxed) - before);
        }
        times.sort();
        throttled.sort_unstable();
        let row = Row { n, scenario: scenario.name, median: times[REPEATS / 2], throttled: throttled[REPEATS / 2] };
        eprintln!(
            "{n:>6}  {:<30} {:>8.1} ms  {} throttled",
            row.scenario,
            row.median.as_secs_f64() * 1e3,
            row.throttled
        );
        rows.push(row);
    }
    (rows, per_connection)
}

fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "Medians of {REPEATS} pushes, x86_64 on {} CPUs; AWS limits: {} ms a post, {RATE} posts/s, burst {BURST}.\n\n\
         | subscribers | scenario | median ms | posts/s | 429s | × budget |\n|---:|---|---:|---:|---:|---:|\n",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        LATENCY.as_millis(),
    );
    let mut sizes: Vec<usize> = rows.iter().map(|r| r.n).collect();
    sizes.dedup();
    for n in sizes {
        let budget = budget(rows, n);
        out += &format!("| {n} | floor of the AWS limits | {:.1} | | | |\n", floor(n).as_secs_f64() * 1e3);
        for row in rows.iter().filter(|r| r.n == n) {
            let secs = row.median.as_secs_f64();
            out += &format!(
                "| {n} | {} | {:.1} | {:.0} | {} | {:.2} |\n",
                row.scenario,
                secs * 1e3,
                n as f64 / secs,
                row.throttled,
                secs / budget.as_secs_f64()
            );
        }
        out +=
            &format!("| {n} | budget: 1.25 × max(floor, ceiling) | {:.1} | | | 1.00 |\n", budget.as_secs_f64() * 1e3);
    }
    out
}

/// 1.25 × the larger of the floor and the machine's ceiling (the faster no-limits scenario).
fn budget(rows: &[Row], n: usize) -> Duration {
    let ceiling = rows
        .iter()
        .filter(|r| r.n == n && r.scenario.starts_with("ceiling"))
        .map(|r| r.median)
        .min()
        .unwrap_or_default();
    floor(n).max(ceiling).mul_f64(1.25)
}

/// One panel per N: each scenario's median beside the floor, with the budget drawn across.
fn plot(rows: &[Row], path: &std::path::Path) {
    let mut sizes: Vec<usize> = rows.iter().map(|r| r.n).collect();
    sizes.dedup();
    let root = SVGBackend::new(path, (1100, 380 * sizes.len() as u32)).into_drawing_area();
    root.fill(&WHITE).expect("plot");
    let colors = [
        RGBColor(150, 150, 150),
        RGBColor(31, 119, 180),
        RGBColor(100, 160, 220),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
    ];
    for (area, n) in root.split_evenly((sizes.len(), 1)).iter().zip(sizes) {
        let mut bars: Vec<(String, f64)> = vec![("floor of the AWS limits".into(), floor(n).as_secs_f64() * 1e3)];
        bars.extend(rows.iter().filter(|r| r.n == n).map(|r| (r.scenario.to_owned(), r.median.as_secs_f64() * 1e3)));
        let budget = budget(rows, n).as_secs_f64() * 1e3;
        let top = bars.iter().map(|b| b.1).fold(budget, f64::max) * 1.15;
        let mut chart = ChartBuilder::on(area)
            .caption(
                format!("{n} subscribers: time to the last frame, ms (line: budget 1.25 × max(floor, ceiling))"),
                ("sans-serif", 16),
            )
            .margin(8)
            .x_label_area_size(24)
            .y_label_area_size(50)
            .build_cartesian_2d((0..bars.len() - 1).into_segmented(), 0.0..top)
            .expect("plot");
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .x_labels(bars.len())
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => bars.get(*i).map(|b| b.0.clone()).unwrap_or_default(),
                _ => String::new(),
            })
            .x_label_style(("sans-serif", 11))
            .draw()
            .expect("plot");
        for (i, bar) in bars.iter().enumerate() {
            let color = colors[i % colors.len()];
            chart
                .draw_series(Histogram::vertical(&chart).style(color.filled()).margin(18).data([(i, bar.1)]))
                .expect("plot");
        }
        chart
            .draw_series(LineSeries::new(
                [(SegmentValue::Exact(0), budget), (SegmentValue::Last, budget)],
                BLACK.stroke_width(1),
            ))
            .expect("plot");
    }
    root.present().expect("plot");
}
