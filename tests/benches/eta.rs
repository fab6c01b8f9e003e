//! How good is `eta_ms`? Replays event timelines through the real parsing and merge
//! (`parse_event` → `to_update` → `JobRecord::merge` → `StatusView`) and compares, at the first
//! report at or past 25, 50 and 75 %, the status's `eta_ms` and the naive linear estimate
//! (elapsed since the job started ÷ progress × what remains) with the true time left (the
//! COMPLETE event's time minus the report's). Method and figures: `tests/benches/README.md`.
//!
//! `cargo bench -p mcpush-tests --bench eta [-- JOBS_PER_KIND]` (default 300). Writes
//! `tests/benches/eta.md` and `tests/benches/eta.svg`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use mcpush_core::domain::mediaconvert::parse_event;
use mcpush_core::domain::{JobRecord, StatusView};
use mcpush_tests::workspace;
use plotters::prelude::*;
use serde_json::{Value, json};

#[allow(dead_code)] // (its latency plot is the other benches')
mod common;
use common::percentile;

/// MediaConvert's weights of its phases inside `jobPercentComplete` (probing, transcoding,
/// uploading), as its published STATUS_UPDATE shows (probing done, transcoding 2 % → 7 %).
const WEIGHTS: [f64; 3] = [5.0, 85.0, 10.0];
const POINTS: [u8; 3] = [25, 50, 75];

/// Per point (25, 50, 75 %): the absolute errors (s) of `eta_ms` and of the naive estimate.
type Errors = BTreeMap<u8, (Vec<f64>, Vec<f64>)>;
/// Draws a value between two bounds.
type Draw<'a> = &'a mut dyn FnMut(f64, f64) -> f64;

/// A job as the bench builds it: phase durations (s) and how transcoding advances.
struct Job {
    queue: f64,
    probe: f64,
    transcode: f64,
    upload: f64,
    pace: Pace,
    /// Report spacing: the interval (s), its jitter (± s) and the share of reports lost.
    interval: f64,
    jitter: f64,
    lost: f64,
}

enum Pace {
    /// Transcoding at one speed.
    Steady,
    /// Its speed changes by `factor` at `at` (a share of the planned time).
    Change { at: f64, factor: f64 },
    /// Accelerated transcoding: segments transcoded in parallel, each adding its share when it
    /// finishes (times as shares of the transcode).
    Jumps(Vec<f64>),
}

impl Job {
    /// Transcoding's share done at `t` seconds into it, and the phase's real length.
    fn transcoded(&self, t: f64) -> (f64, f64) {
        match &self.pace {
            Pace::Steady => ((t / self.transcode).clamp(0.0, 1.0), self.transcode),
            Pace::Change { at, factor } => {
                let before = at * self.transcode;
                let length = before + (self.transcode - before) / factor;
                let done = if t <= before { t / self.transcode } else { at + (t - before) * factor / self.transcode };
                (done.clamp(0.0, 1.0), length)
            }
            Pace::Jumps(finishes) => {
                let done = finishes.iter().filter(|f| **f * self.transcode <= t).count() as f64 / finishes.len() as f64;
                (done, self.transcode * finishes.iter().copied().fold(0.0, f64::max))
            }
        }
    }

    /// The job's MediaConvert events, in order, with their times (epoch ms).
    fn events(&self, id: &str, rng: &mut fastrand::Rng) -> Vec<Value> {
        let t0: f64 = 1_767_225_600_000.0;
        let frames_per_s = 30.0 * 4.0; // decoded frames per second of transcoding (4x real time)
        let (_, transcode_length) = self.transcoded(f64::INFINITY);
        let started = self.queue;
        let probed = started + self.probe;
        let transcoded = probed + transcode_length;
        let done = transcoded + self.upload;
        let event = |status: &str, at: f64, extra: Value| {
            let mut detail = json!({"timestamp": (t0 + at * 1000.0) as i64, "jobId": id, "status": status,
                "accountId": "111122223333", "userMetadata": {"input_file": "bench.mp4", "notifier": "mediaconvert-push"}});
            if let (Some(d), Some(e)) = (detail.as_object_mut(), extra.as_object()) {
                d.extend(e.clone());
            }
            json!({"version": "0", "id": "bench", "detail-type": "MediaConvert Job State Change", "source": "aws.mediaconvert",
                   "account": "111122223333", "time": "2026-01-01T00:00:00Z", "region": "us-east-1", "resources": [], "detail": detail})
        };
        let mut events = vec![event("PROGRESSING", started, json!({}))];
        let mut next = started + self.interval;
        let mut info_sent = false;
        while next < done {
            let at = (next + (rng.f64() * 2.0 - 1.0) * self.jitter).max(started + 0.1);
            if !info_sent && at >= probed {
                events.push(event("INPUT_INFORMATION", probed, json!({"inputDetails": [{"id": 1}]})));
                info_sent = true;
            }
            if rng.f64() >= self.lost && at < done {
                let (phase, phases) = if at < probed {
                    let p = (at - started) / self.probe;
                    ("PROBING", [p, 0.0, 0.0])
                } else if at < transcoded {
                    ("TRANSCODING", [1.0, self.transcoded(at - probed).0, 0.0])
                } else {
                    ("UPLOADING", [1.0, 1.0, (at - transcoded) / self.upload])
                };
                let percent: f64 = phases.iter().zip(WEIGHTS).map(|(p, w)| p * w).sum();
                let name = ["PROBING", "TRANSCODING", "UPLOADING"];
                let progress: serde_json::Map<String, Value> = name
                    .iter()
                    .zip(phases)
                    .map(|(n, p)| {
                        ((*n).to_owned(), json!({"status": "PROGRESSING", "percentComplete": (p * 100.0) as u64}))
                    })
                    .collect();
                let frames = ((at - probed).clamp(0.0, transcode_length) * frames_per_s) as u64;
                events.push(event(
                    "STATUS_UPDATE",
                    at,
                    json!({"framesDecoded": frames, "jobProgress": {
                    "jobPercentComplete": percent.floor() as u64, "currentPhase": phase, "phaseProgress": progress}}),
                ));
            }
            next += self.interval;
        }
        events.push(event("COMPLETE", done, json!({"outputGroupDetails": []})));
        events
    }
}

/// Absolute errors (s) of both estimates at each point, for one timeline.
fn replay(events: &[Value]) -> Vec<(u8, f64, f64)> {
    let complete_at = events.last().and_then(|e| e["detail"]["timestamp"].as_u64()).unwrap_or_default();
    let mut record: Option<JobRecord> = None;
    let mut errors = Vec::new();
    let mut points = POINTS.iter().peekable();
    for raw in events {
        let update = parse_event(raw).expect("a bench event").detail.to_update(0).expect("an update");
        if let Some(next) = JobRecord::merge(record.as_ref(), &update) {
            record = Some(next);
        }
        let Some(r) = &record else { continue };
        let view = StatusView::from(r);
        while let Some(&&point) = points.peek() {
            if view.progress_rate < point || view.job_status.is_final() {
                break;
            }
            points.next();
            let (Some(updated), Some(started)) = (view.updated_at, view.started_at) else { continue };
            let truth = complete_at.saturating_sub(updated) as f64 / 1000.0;
            let elapsed = updated.saturating_sub(started) as f64 / 1000.0;
            let p = f64::from(view.progress_rate);
            let naive = elapsed / p * (100.0 - p);
            // No estimate counts as the worst error: the whole time left.
            let ours = view.eta_ms.map_or(truth, |eta| (eta as f64 / 1000.0 - truth).abs());
            errors.push((point, ours, (naive - truth).abs()));
        }
    }
    errors
}

fn kinds(jobs: usize, rng: &mut fastrand::Rng) -> Vec<(&'static str, Vec<Job>)> {
    let mut between = |lo: f64, hi: f64| lo + rng.f64() * (hi - lo);
    let mut make = |pace: &mut dyn FnMut(Draw<'_>) -> Pace, queue: (f64, f64), jitter: f64, lost: f64| {
        (0..jobs)
            .map(|_| Job {
                queue: between(queue.0, queue.1),
                probe: between(5.0, 40.0),
                transcode: between(120.0, 1200.0),
                upload: between(3.0, 30.0),
                pace: pace(&mut between),
                interval: 10.0,
                jitter,
                lost,
            })
            .collect::<Vec<_>>()
    };
    vec![
        ("steady, 10 s reports", make(&mut |_| Pace::Steady, (0.0, 5.0), 0.0, 0.0)),
        ("irregular: ±4 s jitter, 20 % of reports lost", make(&mut |_| Pace::Steady, (0.0, 5.0), 4.0, 0.2)),
        (
            "speed change ×0.4–2.5 at 30–70 %",
            make(&mut |b| Pace::Change { at: b(0.3, 0.7), factor: b(0.4, 2.5) }, (0.0, 5.0), 2.0, 0.0),
        ),
        (
            "accelerated: 4–10 parallel segments",
            make(
                &mut |b| {
                    let n = b(4.0, 11.0) as usize;
                    let mut finishes: Vec<f64> = (0..n).map(|_| b(0.15, 1.0)).collect();
                    finishes.sort_by(f64::total_cmp);
                    Pace::Jumps(finishes)
                },
                (0.0, 5.0),
                2.0,
                0.0,
            ),
        ),
        ("queued 1–5 min first", make(&mut |_| Pace::Steady, (60.0, 300.0), 2.0, 0.0)),
    ]
}

/// The local stack's simulated MediaConvert: its one timeline (SECONDS_10, one step = 10 s).
fn simulator_timeline() -> Vec<Value> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let root = std::env::temp_dir().join(format!("eta-bench-{}", std::process::id()));
        std::fs::create_dir_all(root.join("bench-bucket")).expect("a folder");
        std::fs::write(root.join("bench-bucket/clip.mp4"), vec![7u8; 4_000_000]).expect("an input");
        let (bus, _) = tokio::sync::mpsc::unbounded_channel();
        let s3 = std::sync::Arc::new(mcpush_local::aws::s3::LocalS3::new(&root, "us-east-1"));
        let sim = mcpush_local::aws::mediaconvert::MediaConvertSim::new(Default::default(), s3, bus);
        let job = mcpush_local::aws::mediaconvert::Job {
            id: "1767225600000-simula".into(),
            settings: json!({"inputs": [{"fileInput": "s3://bench-bucket/clip.mp4"}], "outputGroups": []}),
            status_update_interval: Some("SECONDS_10".into()),
            user_metadata: [("input_file".to_owned(), "clip.mp4".to_owned())].into(),
            ..Default::default()
        };
        let timeline = sim.timeline(&job).await;
        let _ = std::fs::remove_dir_all(root);
        timeline
            .into_iter()
            .map(|s| {
                let mut event = serde_json::to_value(&s.event).expect("an event");
                event["detail"]["timestamp"] = json!(1_767_225_600_000u64 + (s.at_step * 10_000.0) as u64);
                event
            })
            .collect()
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let jobs: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(300);
    let mut rng = fastrand::Rng::with_seed(20261206);
    let mut rows: Vec<(String, Errors)> = Vec::new();
    let mut all: Errors = BTreeMap::new();
    let mut record = |name: String, errors: Vec<(u8, f64, f64)>, all: &mut Errors| {
        let mut by_point: Errors = BTreeMap::new();
        for (point, ours, naive) in errors {
            for map in [&mut by_point, &mut *all] {
                let entry = map.entry(point).or_default();
                entry.0.push(ours);
                entry.1.push(naive);
            }
        }
        rows.push((name, by_point));
    };
    let timelines = kinds(jobs, &mut rng);
    for (name, jobs) in &timelines {
        let errors = jobs
            .iter()
            .enumerate()
            .flat_map(|(i, job)| replay(&job.events(&format!("{:013}-bench{i}", 1_767_225_600_000u64), &mut rng)))
            .collect();
        record(format!("{name} ({} jobs)", jobs.len()), errors, &mut all);
    }
    record("the local stack's simulator (1 job)".into(), replay(&simulator_timeline()), &mut all);

    let mut table = String::from(
        "| timelines | at | eta_ms median s | naive median s | eta_ms p90 s | naive p90 s |\n|---|---:|---:|---:|---:|---:|\n",
    );
    let stats = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        (percentile(&v, 0.5), percentile(&v, 0.9))
    };
    for (name, by_point) in rows.iter().chain([&("all".to_owned(), all.clone())]) {
        for (point, (ours, naive)) in by_point {
            let ((om, op), (nm, np)) = (stats(ours), stats(naive));
            let _ = writeln!(table, "| {name} | {point} % | {om:.1} | {nm:.1} | {op:.1} | {np:.1} |");
        }
    }
    println!("{table}");
    let dir = workspace().join("tests/benches");
    std::fs::write(dir.join("eta.md"), &table).expect("write eta.md");
    plot(&rows, &dir.join("eta.svg"));
    let (ours50, naive50) = (stats(&all[&50].0).0, stats(&all[&50].1).0);
    println!("at 50 %: median error {ours50:.1} s with eta_ms, {naive50:.1} s naive");
}

/// Median error at 50 % per kind of timeline, both estimates side by side.
fn plot(rows: &[(String, Errors)], path: &std::path::Path) {
    let medians: Vec<(String, [f64; 6])> = rows
        .iter()
        .map(|(name, by_point)| {
            let median = |v: &[f64]| {
                let mut v = v.to_vec();
                v.sort_by(f64::total_cmp);
                percentile(&v, 0.5)
            };
            let mut values = [0.0; 6];
            for (i, point) in POINTS.iter().enumerate() {
                if let Some((ours, naive)) = by_point.get(point) {
                    values[i * 2] = median(ours);
                    values[i * 2 + 1] = median(naive);
                }
            }
            (name.split(" (").next().unwrap_or(name).to_owned(), values)
        })
        .collect();
    let top = medians.iter().flat_map(|(_, v)| v.iter().copied()).fold(1.0, f64::max) * 1.15;
    let root = SVGBackend::new(path, (1000, 560)).into_drawing_area();
    root.fill(&WHITE).expect("draw");
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "median |error| of the time left (s) at 25 / 50 / 75 %: eta_ms (dark) vs naive (light)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(90)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..(medians.len() as f64 * 7.0), 0f64..top)
        .expect("chart");
    chart.configure_mesh().disable_x_mesh().x_labels(0).y_desc("seconds").draw().expect("mesh");
    let colors = [RGBColor(31, 119, 180), RGBColor(174, 199, 232)];
    for (k, (name, values)) in medians.iter().enumerate() {
        let x0 = k as f64 * 7.0 + 0.5;
        for (i, value) in values.iter().enumerate() {
            let x = x0 + i as f64;
            chart
                .draw_series(std::iter::once(Rectangle::new([(x, 0.0), (x + 0.9, *value)], colors[i % 2].filled())))
                .expect("bar");
        }
        chart
            .draw_series(std::iter::once(Text::new(name.clone(), (x0, -top * 0.06), ("sans-serif", 11))))
            .expect("label");
    }
    root.present().expect("write the plot");
}
