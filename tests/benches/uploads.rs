//! A large upload through the local stack: one presigned form POST (the baseline) against the
//! resumable multipart upload (`mcpush-local upload`, parts of 8 MiB, 4 at a time), and a
//! multipart upload killed at 60 % and resumed. Each scenario gets a fresh stack process (the
//! release `mcpush-local`, as `cargo run --release` runs it) whose resident memory is sampled every
//! 50 ms and whose peak (`VmHWM`) is read before it stops; an idle stack is the memory baseline.
//! Method and figures: `tests/benches/README.md`.
//!
//! `cargo bench -p mcpush-tests --bench uploads [-- GIB [RUNS]]` (default 2 GiB, 3 runs). Writes
//! `tests/benches/uploads.md` and `tests/benches/uploads.svg`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mcpush_core::domain::upload::PartPlan;
use mcpush_tests::workspace;
use plotters::prelude::*;
use serde_json::{Value, json};

const MIB: u64 = 1024 * 1024;
/// Where the resumed scenario kills the client: this share of the parts at S3.
const KILL_AT: f64 = 0.6;

/// A stack process and what its memory did.
struct Stack {
    child: Child,
    base: String,
    s3_dir: PathBuf,
    samples: Arc<std::sync::Mutex<Vec<(f64, f64)>>>,
    sampling: Arc<AtomicBool>,
    started: Instant,
}

/// Resident memory (MiB) from `/proc/PID/status`'s `field` (`VmRSS`, `VmHWM`).
fn memory(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

impl Stack {
    async fn start(bin: &Path, work: &Path, label: &str) -> Stack {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let s3_dir = work.join(format!("s3-{label}"));
        let _ = std::fs::remove_dir_all(&s3_dir);
        let log = std::fs::File::create(work.join(format!("stack-{label}.log"))).unwrap();
        let child = Command::new(bin)
            .args(["serve", "--port", &port.to_string()])
            .env("LOCAL_S3_DIR", &s3_dir)
            .env("RUST_LOG", "warn")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the stack starts");
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while client.get(format!("{base}/config.json")).send().await.map(|r| !r.status().is_success()).unwrap_or(true) {
            assert!(Instant::now() < deadline, "the stack at {base} did not answer");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (samples, sampling, started) =
            (Arc::new(std::sync::Mutex::new(Vec::new())), Arc::new(AtomicBool::new(true)), Instant::now());
        let (pid, into, on) = (child.id(), samples.clone(), sampling.clone());
        std::thread::spawn(move || {
            while on.load(Ordering::Relaxed) {
                if let Some(rss) = memory(pid, "VmRSS") {
                    into.lock().unwrap().push((started.elapsed().as_secs_f64(), rss));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Stack { child, base, s3_dir, samples, sampling, started }
    }

    /// Stops the stack; answers its peak resident memory (MiB) and the samples.
    fn stop(mut self) -> (f64, Vec<(f64, f64)>) {
        self.sampling.store(false, Ordering::Relaxed);
        let peak = memory(self.child.id(), "VmHWM").expect("the stack's VmHWM");
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.s3_dir);
        let samples = std::mem::take(&mut *self.samples.lock().unwrap());
        (peak, samples)
    }

    /// Parts the simulated S3 holds whole (named by their number) in its multipart folders.
    fn parts_held(&self) -> usize {
        let Ok(uploads) = std::fs::read_dir(self.s3_dir.join(".multipart")) else { return 0 };
        uploads
            .flatten()
            .filter_map(|d| std::fs::read_dir(d.path()).ok())
            .flat_map(|parts| parts.flatten())
            .filter(|p| p.file_name().to_string_lossy().parse::<u32>().is_ok())
            .count()
    }
}

/// One presigned form POST of `file`: the grant, then the form streamed from disk. Answers the key.
async fn single_post(base: &str, file: &Path, size: u64) -> String {
    let client = reqwest::Client::new();
    let grant: Value = client
        .post(format!("{base}/media/uploads"))
        .header("content-type", "application/json")
        .body(json!({ "file_name": "bench.mp4", "content_type": "video/mp4", "size": size }).to_string())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .map(|text| serde_json::from_str(&text).unwrap())
        .unwrap();
    let upload = &grant["upload"];
    assert_eq!(upload["method"], "POST", "{grant}");
    let url = reqwest::Url::parse(base).unwrap().join(upload["url"].as_str().unwrap()).unwrap();
    let mut form = reqwest::multipart::Form::new();
    for (name, value) in upload["fields"].as_object().unwrap() {
        form = form.text(name.clone(), value.as_str().unwrap().to_owned());
    }
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
        tokio::fs::File::open(file).await.unwrap(),
        256 * 1024,
    ));
    let part =
        reqwest::multipart::Part::stream_with_length(body, size).file_name("bench.mp4").mime_str("video/mp4").unwrap();
    let answer = client.post(url).multipart(form.part("file", part)).send().await.unwrap();
    assert!(answer.status().is_success(), "the POST was refused: {}", answer.text().await.unwrap_or_default());
    grant["input_file"].as_str().unwrap().to_owned()
}

/// The CLI's `upload` of `file` to the stack, remembering it in `state`.
fn cli_upload(bin: &Path, base: &str, file: &Path, state: &Path, log: &Path) -> Child {
    Command::new(bin)
        .args(["upload", "--url", base, "--state-file"])
        .arg(state)
        .arg(file)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("the CLI starts")
}

/// "… (N parts sent, M already there) …" from the CLI's last words.
fn cli_parts(log: &Path) -> (u64, u64) {
    let text = std::fs::read_to_string(log).unwrap();
    let line = text.lines().find(|l| l.starts_with("uploaded ")).unwrap_or_else(|| panic!("the CLI failed:\n{text}"));
    let numbers: Vec<u64> = line.split(['(', ' ', ',']).filter_map(|w| w.parse().ok()).take(2).collect();
    (numbers[0], numbers[1])
}

#[derive(Default)]
struct Figures {
    idle_peak: Vec<f64>,
    post_s: Vec<f64>,
    post_peak: Vec<f64>,
    multipart_s: Vec<f64>,
    /// Until every part was at S3 (before CompleteMultipartUpload).
    multipart_parts_s: Vec<f64>,
    multipart_peak: Vec<f64>,
    killed_after_s: Vec<f64>,
    resume_first_part_s: Vec<f64>,
    resume_s: Vec<f64>,
    resume_peak: Vec<f64>,
    resumed_parts: Vec<(u64, u64)>,
    post_samples: Vec<(f64, f64)>,
    multipart_samples: Vec<(f64, f64)>,
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn spread(values: &[f64], digits: usize) -> String {
    let (min, max) = values.iter().fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
    format!("{:.digits$} ({:.digits$}–{:.digits$})", median(values), min, max)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let gib: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(2);
    let runs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    let size = gib << 30;
    let plan = PartPlan::for_size(size).expect("a size multipart can take");
    let root = workspace();
    eprintln!("building the release mcpush-local (as `cargo run --release` does)");
    let built = Command::new(env!("CARGO"))
        .args(["build", "--release", "--locked", "-p", "mcpush-local", "--bin", "mcpush-local"])
        .current_dir(&root)
        .status()
        .expect("cargo runs");
    assert!(built.success(), "the release build failed");
    let bin = root.join("target/release/mcpush-local");
    let work = root.join("target/bench-uploads");
    std::fs::create_dir_all(&work).unwrap();
    let file = work.join("source.mp4");
    if std::fs::metadata(&file).map(|m| m.len()).ok() != Some(size) {
        eprintln!("writing a {gib} GiB source file");
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        let mut block = vec![0u8; MIB as usize];
        for mib in 0..(size / MIB) {
            let seed = (mib as u32).wrapping_mul(2_654_435_761);
            block.iter_mut().enumerate().for_each(|(i, b)| *b = (i as u32 ^ seed) as u8);
            out.write_all(&block).unwrap();
        }
        out.flush().unwrap();
    }

    let mut f = Figures::default();
    for run in 1..=runs {
        eprintln!("run {run}/{runs}: idle");
        let stack = Stack::start(&bin, &work, "idle").await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        f.idle_peak.push(stack.stop().0);

        eprintln!("run {run}/{runs}: one form POST of {gib} GiB");
        let stack = Stack::start(&bin, &work, "post").await;
        let t0 = Instant::now();
        let key = single_post(&stack.base, &file, size).await;
        f.post_s.push(t0.elapsed().as_secs_f64());
        let stored = stack.s3_dir.join("uploads").join(&key);
        assert_eq!(std::fs::metadata(&stored).map(|m| m.len()).ok(), Some(size), "{}", stored.display());
        let offset = (t0 - stack.started).as_secs_f64();
        let (peak, samples) = stack.stop();
        f.post_peak.push(peak);
        if run == 1 {
            f.post_samples = samples.into_iter().map(|(t, m)| (t - offset, m)).collect();
        }

        eprintln!(
            "run {run}/{runs}: multipart ({} parts of {} MiB, 4 at a time)",
            plan.part_count,
            plan.part_size / MIB
        );
        let stack = Stack::start(&bin, &work, "multipart").await;
        let state = work.join("uploads-state.json");
        let _ = std::fs::remove_file(&state);
        let log = work.join("cli-multipart.log");
        let t0 = Instant::now();
        let mut client = cli_upload(&bin, &stack.base, &file, &state, &log);
        while stack.parts_held() < plan.part_count as usize && client.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(2));
        }
        f.multipart_parts_s.push(t0.elapsed().as_secs_f64());
        let status = client.wait().unwrap();
        f.multipart_s.push(t0.elapsed().as_secs_f64());
        assert!(status.success(), "{}", std::fs::read_to_string(&log).unwrap());
        assert_eq!(cli_parts(&log), (plan.part_count, 0));
        let offset = (t0 - stack.started).as_secs_f64();
        let (peak, samples) = stack.stop();
        f.multipart_peak.push(peak);
        if run == 1 {
            f.multipart_samples = samples.into_iter().map(|(t, m)| (t - offset, m)).collect();
        }

        eprintln!("run {run}/{runs}: multipart killed at {} %, then resumed", KILL_AT * 100.0);
        let stack = Stack::start(&bin, &work, "resume").await;
        let _ = std::fs::remove_file(&state);
        let t0 = Instant::now();
        let mut client = cli_upload(&bin, &stack.base, &file, &state, &log);
        let kill_at = (plan.part_count as f64 * KILL_AT).ceil() as usize;
        while stack.parts_held() < kill_at {
            std::thread::sleep(Duration::from_millis(5));
        }
        client.kill().unwrap();
        client.wait().unwrap();
        f.killed_after_s.push(t0.elapsed().as_secs_f64());
        tokio::time::sleep(Duration::from_millis(500)).await;
        let held = stack.parts_held();
        let t1 = Instant::now();
        let mut resumed = cli_upload(&bin, &stack.base, &file, &state, &log);
        while stack.parts_held() <= held {
            std::thread::sleep(Duration::from_millis(2));
        }
        f.resume_first_part_s.push(t1.elapsed().as_secs_f64());
        let status = resumed.wait().unwrap();
        f.resume_s.push(t1.elapsed().as_secs_f64());
        assert!(status.success(), "{}", std::fs::read_to_string(&log).unwrap());
        let (sent, already) = cli_parts(&log);
        // Only the parts S3 lacked were sent. (A part on disk may be missing from S3's list when the
        // killed client's connection closed as it was stored: the client never had its ETag.)
        assert_eq!(sent + already, plan.part_count, "each part sent once");
        assert!(already as usize + 4 >= held && already as usize <= held, "{already} listed, {held} on disk");
        f.resumed_parts.push((sent, already));
        f.resume_peak.push(stack.stop().0);
    }
    let _ = std::fs::remove_file(&file);
    report(&f, gib, runs, plan, &root);
}

fn report(f: &Figures, gib: u64, runs: usize, plan: PartPlan, root: &Path) {
    let mut md = String::new();
    let (sent, already) = f.resumed_parts[0];
    let gib_f = gib as f64;
    writeln!(md, "<!-- written by `cargo bench -p mcpush-tests --bench uploads -- {gib} {runs}` -->").unwrap();
    writeln!(
        md,
        "A {gib} GiB file through the local stack (release build, loopback), {runs} runs: median (min–max).\n"
    )
    .unwrap();
    writeln!(md, "| scenario | wall time s | MiB/s | stack peak RSS MiB |").unwrap();
    writeln!(md, "|---|---:|---:|---:|").unwrap();
    writeln!(md, "| idle stack (memory baseline) | | | {} |", spread(&f.idle_peak, 1)).unwrap();
    let rate = |secs: &[f64]| gib_f * 1024.0 / median(secs);
    writeln!(
        md,
        "| one form POST (baseline) | {} | {:.0} | {} |",
        spread(&f.post_s, 1),
        rate(&f.post_s),
        spread(&f.post_peak, 1)
    )
    .unwrap();
    writeln!(
        md,
        "| multipart, {} parts of {} MiB, 4 at a time | {} | {:.0} | {} |",
        plan.part_count,
        plan.part_size / MIB,
        spread(&f.multipart_s, 1),
        rate(&f.multipart_s),
        spread(&f.multipart_peak, 1)
    )
    .unwrap();
    writeln!(
        md,
        "| … of which sending the parts | {} | {:.0} | |",
        spread(&f.multipart_parts_s, 1),
        rate(&f.multipart_parts_s)
    )
    .unwrap();
    writeln!(md, "| multipart killed at {:.0} % after | {} | | |", KILL_AT * 100.0, spread(&f.killed_after_s, 1))
        .unwrap();
    writeln!(md, "| … resumed: first new part at S3 after | {} | | |", spread(&f.resume_first_part_s, 2)).unwrap();
    writeln!(
        md,
        "| … resumed: done after ({sent} parts sent, {already} already there, run 1) | {} | | {} |",
        spread(&f.resume_s, 1),
        spread(&f.resume_peak, 1)
    )
    .unwrap();
    let full = median(&f.multipart_s);
    writeln!(
        md,
        "\nResuming cost {:.2} s before the first new part and finished in {:.0} % of a whole multipart upload's time \
         (the {:.0} % left: {:.0} % expected).",
        median(&f.resume_first_part_s),
        100.0 * median(&f.resume_s) / full,
        100.0 * (1.0 - KILL_AT),
        100.0 * (1.0 - KILL_AT)
    )
    .unwrap();
    std::fs::write(root.join("tests/benches/uploads.md"), &md).unwrap();
    print!("{md}");
    plot(f, gib, &root.join("tests/benches/uploads.svg"));
}

fn plot(f: &Figures, gib: u64, path: &Path) {
    let root = SVGBackend::new(path, (820, 420)).into_drawing_area();
    root.fill(&WHITE).expect("plot");
    let end = f.post_samples.iter().chain(&f.multipart_samples).map(|s| s.0).fold(1.0, f64::max);
    let top = f.post_samples.iter().chain(&f.multipart_samples).map(|s| s.1).fold(100.0, f64::max) * 1.2;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("The local stack's resident memory while it receives {gib} GiB (run 1)"), ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(50)
        .build_cartesian_2d(-0.5..end, 0.0..top)
        .expect("plot");
    chart.configure_mesh().x_desc("s since the upload began").y_desc("RSS MiB").draw().expect("plot");
    let lines = [("one form POST", &f.post_samples, RED), ("multipart, 4 parts at a time", &f.multipart_samples, BLUE)];
    for (label, samples, color) in lines {
        chart
            .draw_series(LineSeries::new(samples.iter().copied(), color.stroke_width(2)))
            .expect("plot")
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    let budget = [(-0.5, 100.0), (end, 100.0)];
    chart
        .draw_series(LineSeries::new(budget, BLACK.stroke_width(1)))
        .expect("plot")
        .label("100 MiB")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK));
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw().expect("plot");
    root.present().expect("plot");
}
