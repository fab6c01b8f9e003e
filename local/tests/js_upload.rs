//! The JS client's resumable upload (`uploadResumable`, `clients/js`) in Node against the local
//! stack: stopped after two parts, a second process (a reloaded page) finds the remembered upload,
//! sends only the missing parts (counted at the simulated S3), and completes it.

mod common;

use std::sync::atomic::Ordering;

use mcpush_core::domain::token::ReadAccess;
use serde_json::Value;

const MIB: usize = 1024 * 1024;

fn node(args: &[&str]) -> Value {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients/js/test-support/resumable-upload.mjs");
    let output = std::process::Command::new("node").arg(script).args(args).output().expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last =
        stdout.lines().last().unwrap_or_else(|| panic!("no output: {}", String::from_utf8_lossy(&output.stderr)));
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{last}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_upload_resumes_in_a_new_process_with_only_the_missing_parts() {
    // GIVEN a stack with read tokens, and a 40 MiB file (five parts of 8 MiB)
    let (base, _stack, s3, dir) = common::serve_stack_with_s3("js-upload", |options| {
        options.ws.access = ReadAccess::new(Some(b"js-upload-secret".to_vec()));
    })
    .await;
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("holiday.mp4");
    std::fs::write(&file, (0..40 * MIB).map(|i| (i % 249) as u8).collect::<Vec<u8>>()).unwrap();
    let storage = dir.join("local-storage.json");
    let (file, storage) = (file.to_str().unwrap(), storage.to_str().unwrap());
    let received = || s3.uploads.parts_received.load(Ordering::Relaxed);

    // WHEN the client uploads one part at a time and is stopped once two parts are in
    let first = node(&[&base, file, storage, "stop-after-parts", "2"]);
    // THEN it stopped with two parts at S3, and the upload is remembered
    assert_eq!(first["outcome"], "stopped", "{first}");
    assert_eq!((received(), first["remembered"].as_u64()), (2, Some(1)), "{first}");

    // WHEN a new process (a reloaded page) uploads the same file
    let second = node(&[&base, file, storage, "finish"]);
    // THEN it found the remembered upload, sent the three missing parts only, and completed it
    assert_eq!(second["outcome"], "complete", "{second}");
    assert_eq!(
        (second["resumed_grant"].as_bool(), second["resumed"].as_u64(), second["sent"].as_u64()),
        (Some(true), Some(2), Some(3)),
        "{second}"
    );
    assert_eq!(received(), 5, "each part sent once");
    assert_eq!(second["input_file"], first["input_file"]);
    assert_eq!(second["remembered"], 0, "a completed upload is forgotten");
    // its progress started where the first stopped and never went back
    let progress: Vec<f64> = second["progress"].as_array().unwrap().iter().filter_map(Value::as_f64).collect();
    assert!((progress[0] - 0.4).abs() < 1e-9, "{progress:?}");
    assert!(progress.windows(2).all(|w| w[0] <= w[1]) && progress.last() == Some(&1.0), "{progress:?}");
    let key = second["input_file"].as_str().unwrap();
    assert_eq!(std::fs::read(dir.join("uploads").join(key)).unwrap(), std::fs::read(file).unwrap());
    let _ = std::fs::remove_dir_all(dir);
}
