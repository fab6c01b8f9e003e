//! `upload` (the binary, as a user runs it) against the local stack: a killed upload resumes
//! sending only the parts S3 does not hold (counted at the simulated S3), completes, and `watch`
//! follows the job to COMPLETE.

mod common;

use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const MIB: usize = 1024 * 1024;

fn binary(state: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mcpush-local"));
    command
        .env("RUST_LOG", "warn")
        .env("MCPUSH_UPLOAD_STATE", state)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_upload_resumes_with_the_missing_parts_and_watch_follows_it_to_complete() {
    // GIVEN the local stack and a 40 MiB video (five parts of 8 MiB)
    let (base, _stack, s3, s3_dir) = common::serve_stack_with_s3("cli-upload", |_| {}).await;
    std::fs::create_dir_all(&s3_dir).unwrap();
    let video = s3_dir.join("holiday.mp4");
    std::fs::write(&video, (0..40 * MIB).map(|i| (i % 253) as u8).collect::<Vec<u8>>()).unwrap();
    let state = s3_dir.join("state/uploads.json");
    let received = || s3.uploads.parts_received.load(Ordering::Relaxed);

    // WHEN `upload` runs one part at a time at 16 MiB/s and is killed once S3 holds two parts
    let mut first = binary(&state)
        .args(["upload", video.to_str().unwrap(), "--url", &base, "--concurrency", "1", "--limit-rate", "16777216"])
        .spawn()
        .expect("the binary starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while received() < 2 {
        assert!(Instant::now() < deadline, "two parts within 30 s");
        assert!(first.try_wait().unwrap().is_none(), "the first run ended before it was killed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.kill().unwrap();
    let _ = first.wait();
    let held_at_kill = received();
    assert!(held_at_kill < 5, "killed before the end");
    assert!(std::fs::read_to_string(&state).unwrap().contains("holiday.mp4"), "the upload is remembered");

    // AND it runs again on the same file
    let second = binary(&state).args(["upload", video.to_str().unwrap(), "--url", &base]).output().unwrap();
    // THEN it resumes, sends only the parts S3 did not hold, and completes
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("{held_at_kill} of 5 parts already uploaded")), "{stderr}");
    assert_eq!(received(), 5, "each part was sent once: {stderr}");
    let input_file = String::from_utf8_lossy(&second.stdout).trim().to_owned();
    assert!(input_file.starts_with("uploads/") && input_file.ends_with("/holiday.mp4"), "{input_file}");
    assert_eq!(std::fs::read(s3_dir.join("uploads").join(&input_file)).unwrap(), std::fs::read(&video).unwrap());
    assert!(!std::fs::read_to_string(&state).unwrap().contains("holiday.mp4"), "a finished upload is forgotten");

    // AND `watch` follows its job to COMPLETE
    let watched = binary(&state).args(["watch", &input_file, "--url", &base]).output().unwrap();
    assert!(watched.status.success(), "{}", String::from_utf8_lossy(&watched.stderr));
    let _ = std::fs::remove_dir_all(s3_dir);
}
