//! The demo page in real headless Chromium: `browser/demo.test.mjs` (node's test runner with
//! playwright-core driving Debian's `/usr/bin/chromium`) against an in-process local stack whose
//! simulated MediaConvert runs at 150 ms per event. `scripts/test` installs Chromium and the npm
//! package when they are missing. `browser/resume.test.mjs` uploads 300 MiB in parts, reloads the
//! page half way and resumes; the parts the simulated S3 received are counted here.
//!
//! The screenshot goes to `$SCREENSHOT` when set (`SCREENSHOT=$PWD/docs/demo.png` refreshes the
//! README's), otherwise to Cargo's temporary folder.

mod common;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::oidc::{Issuer, Key};

use mcpush_local::Options;

/// The browser tests' folder and Chromium, both installed by `scripts/test`.
fn browser_setup() -> (PathBuf, String) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists() && dir.join("node_modules/playwright-core").exists(),
        "{chromium} or {}/node_modules/playwright-core is missing: run scripts/test, which installs them",
        dir.display()
    );
    (dir, chromium)
}

/// Runs `node --test-reporter=spec SCRIPT ARGS…` in the browser tests' folder; answers whether it
/// passed and its report.
async fn node_test(dir: &Path, chromium: &str, script: &str, args: &[&std::ffi::OsStr]) -> (bool, String) {
    let run = tokio::process::Command::new("node")
        .args(["--test-reporter=spec", script])
        .args(args)
        .env("CHROMIUM", chromium)
        .current_dir(dir)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .expect("browser tests finish within 4 minutes")
        .expect("node runs");
    let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    println!("{report}");
    (output.status.success(), report)
}

/// The local stack on 127.0.0.1 (`common::serve_stack`), its simulated MediaConvert at
/// `step_ms` per step, with `adjust`'s changes; answers its URL and S3 folder.
async fn serve(label: &str, step_ms: u64, adjust: impl FnOnce(&mut Options)) -> (String, PathBuf) {
    let (base, _, s3_dir) = common::serve_stack(label, |options| {
        options.batch_window = Duration::from_millis(20);
        options.simulator.step = Duration::from_millis(step_ms);
        adjust(options);
    })
    .await;
    (base, s3_dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_page_in_headless_chromium() {
    let (dir, chromium) = browser_setup();

    // GIVEN the local stack with its simulated S3 folder in a fresh temporary directory, and read
    // tokens on, as a deployed stack has them: the page must watch with the granted token
    let (base, s3_dir) = serve("browser-s3", 150, |options| {
        options.ws.access = mcpush_core::domain::token::ReadAccess::new(Some(b"browser-test-secret".to_vec()));
    })
    .await;

    // WHEN the browser tests run against it
    let screenshot = std::env::var("SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("demo.png"));
    let (passed, report) = node_test(&dir, &chromium, "demo.test.mjs", &[base.as_ref(), screenshot.as_ref()]).await;

    // THEN every scenario passed, the page was photographed, and the upload landed in the folder
    assert!(passed, "browser tests failed:\n{report}");
    assert!(report.contains("ℹ pass 4") && report.contains("ℹ fail 0"), "expected 4 passing browser tests:\n{report}");
    assert!(
        std::fs::metadata(&screenshot).map(|m| m.len() > 10_000).unwrap_or(false),
        "no screenshot at {}",
        screenshot.display()
    );
    // (under the key the upload API chose: uploads/{random id}/{sanitised name})
    let ids: Vec<String> = std::fs::read_dir(s3_dir.join("uploads/uploads"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let id = ids
        .iter()
        .find(|id| s3_dir.join(format!("uploads/uploads/{id}/Big_Buck_Bunny.mp4")).exists())
        .expect("the upload is in the bucket");
    assert_eq!(
        std::fs::metadata(s3_dir.join(format!("uploads/uploads/{id}/Big_Buck_Bunny.mp4"))).unwrap().len(),
        250_000
    );
    assert!(s3_dir.join(format!("outputs/uploads/{id}/Big_Buck_Bunny.mp4_hls/Big_Buck_Bunny.m3u8")).exists());
    let _ = std::fs::remove_dir_all(&s3_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_in_client_in_headless_chromium() {
    let (dir, chromium) = browser_setup();
    // GIVEN the local stack with OIDC sign-in and read tokens on, and alice's access token
    let key = Key::generate("k1");
    let issuer = Issuer::start(&[&key]).await;
    let (base, s3_dir) = serve("browser-oidc-s3", 100, |options| {
        options.oidc = Some(issuer.config());
        options.ws.access = mcpush_core::domain::token::ReadAccess::new(Some(b"browser-test-secret".to_vec()));
    })
    .await;
    let jwt = issuer.token(&key, "alice");

    // WHEN the page's client uploads and watches signed in
    let (passed, report) = node_test(&dir, &chromium, "signed-in.test.mjs", &[base.as_ref(), jwt.as_ref()]).await;

    // THEN it passed
    assert!(
        passed && report.contains("ℹ pass 2") && report.contains("ℹ fail 0"),
        "signed-in browser tests failed:\n{report}"
    );
    let _ = std::fs::remove_dir_all(&s3_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_left_and_outputs_in_headless_chromium() {
    let (dir, chromium) = browser_setup();
    // GIVEN the local stack with one second per 10 s of MediaConvert's time and reports every 30 s
    let (base, s3_dir) = serve("browser-eta-s3", 1000, |options| {
        options.create_job.status_update_interval =
            mcpush_core::config::StatusUpdateInterval::parse("SECONDS_30").expect("a MediaConvert interval");
    })
    .await;

    // WHEN the page follows an upload's job
    let (passed, report) = node_test(&dir, &chromium, "eta.test.mjs", &[base.as_ref()]).await;

    // THEN its bar moved between reports and it showed what the job produced
    assert!(
        passed && report.contains("ℹ pass 1") && report.contains("ℹ fail 0"),
        "time-left browser test failed:\n{report}"
    );
    let _ = std::fs::remove_dir_all(&s3_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_token_renewal_304s_and_react_in_headless_chromium() {
    let (dir, chromium) = browser_setup();
    // GIVEN two local stacks at one second per step: one with read tokens that live five seconds,
    // one without tokens
    let secret = b"browser-recovery-secret";
    let (base, s3_dir) = serve("browser-recovery-s3", 1000, |options| {
        options.ws.access = mcpush_core::domain::token::ReadAccess::new(Some(secret.to_vec()));
        options.upload.token_ttl = Duration::from_secs(5);
    })
    .await;
    let (open, open_s3_dir) = serve("browser-recovery-open-s3", 1000, |_| {}).await;
    let stuck = mcpush_core::domain::token::issue(secret, "stuck/clip.mp4", mcpush_core::now_ms() / 1000 + 600);

    // WHEN pages cut, drop and close their sockets, poll, and render with React
    let args = [base.as_ref(), open.as_ref(), stuck.as_ref()];
    let (passed, report) = node_test(&dir, &chromium, "recovery.test.mjs", &args).await;

    // THEN every scenario passed
    assert!(
        passed && report.contains("ℹ pass 5") && report.contains("ℹ fail 0"),
        "recovery browser tests failed:\n{report}"
    );
    let _ = std::fs::remove_dir_all(&s3_dir);
    let _ = std::fs::remove_dir_all(&open_s3_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_upload_resumes_after_a_reload_in_headless_chromium() {
    let (dir, chromium) = browser_setup();
    // GIVEN the local stack with read tokens, and a 300 MiB video on disk (38 parts of 8 MiB)
    let (base, _stack, s3, s3_dir) = common::serve_stack_with_s3("browser-resume-s3", |options| {
        options.batch_window = Duration::from_millis(20);
        options.simulator.step = Duration::from_millis(100);
        options.ws.access = mcpush_core::domain::token::ReadAccess::new(Some(b"browser-test-secret".to_vec()));
    })
    .await;
    let source_dir = s3_dir.with_extension("source");
    std::fs::create_dir_all(&source_dir).unwrap();
    let source = source_dir.join("Concert 4K.mp4");
    {
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::fs::File::create(&source).unwrap());
        let mut block = vec![0u8; 1024 * 1024];
        for mib in 0..300u32 {
            block.iter_mut().enumerate().for_each(|(i, b)| *b = (i as u32 ^ mib.wrapping_mul(2_654_435_761)) as u8);
            out.write_all(&block).unwrap();
        }
        out.flush().unwrap();
    }

    // WHEN the page uploads it, is reloaded at about half way, and the same file is chosen again
    let (passed, report) = node_test(&dir, &chromium, "resume.test.mjs", &[base.as_ref(), source.as_os_str()]).await;

    // THEN the page passed (only the missing parts sent, one bar never going back, COMPLETE) ...
    assert!(
        passed && report.contains("ℹ pass 1") && report.contains("ℹ fail 0"),
        "resumable upload browser test failed:\n{report}"
    );
    // ... the simulated S3 received each of the 38 parts exactly once, and holds the whole file
    assert_eq!(s3.uploads.parts_received.load(std::sync::atomic::Ordering::Relaxed), 38, "{report}");
    let summary: serde_json::Value = report
        .lines()
        .find_map(|line| {
            serde_json::from_str(line.trim()).ok().filter(|v: &serde_json::Value| v.get("parts").is_some())
        })
        .unwrap_or_else(|| panic!("no summary in:\n{report}"));
    let key = summary["input_file"].as_str().expect("the page's input_file");
    let stored = s3_dir.join("uploads").join(key);
    assert_eq!(std::fs::metadata(&stored).map(|m| m.len()).ok(), Some(300 * 1024 * 1024), "{}", stored.display());
    assert!(files_equal(&source, &stored), "the object S3 assembled is the file, byte for byte");
    let _ = std::fs::remove_dir_all(&s3_dir);
    let _ = std::fs::remove_dir_all(&source_dir);
}

/// Whether two files hold the same bytes (read in 1 MiB blocks).
fn files_equal(a: &Path, b: &Path) -> bool {
    use std::io::Read;
    let (mut a, mut b) = (std::fs::File::open(a).unwrap(), std::fs::File::open(b).unwrap());
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = a.read(&mut x).unwrap();
        if n == 0 {
            return b.read(&mut y).unwrap() == 0;
        }
        if b.read_exact(&mut y[..n]).is_err() || x[..n] != y[..n] {
            return false;
        }
    }
}
