//! The published contracts.
//! - `docs/openapi.yaml` is a valid OpenAPI 3.1 document, and schemathesis, run with every check
//!   against the local stack (one COMPLETE job stored, tokens off), finds no difference between
//!   the document and the API. The exceptions the schema cannot express are in
//!   `schemathesis.toml`, each with its reason. `scripts/test` installs both tools
//!   (`CONTRACT_TOOLS`).
//! - `docs/asyncapi.yaml` passes the AsyncAPI parser (node, `browser/asyncapi.test.mjs`). Every
//!   message the WebSocket tests exchange is checked against its schemas (`tests/src/protocol.rs`,
//!   used by the tests' client and by these tests' sockets); `tests/tests/asyncapi.rs` checks the
//!   schemas themselves.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mcpush_local::{Options, local};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// `st` or `openapi-spec-validator`, from `CONTRACT_TOOLS` (else the workspace's `.venv/bin`).
fn tool(name: &str) -> PathBuf {
    let folder = std::env::var_os("CONTRACT_TOOLS").map(PathBuf::from).unwrap_or_else(|| workspace().join(".venv/bin"));
    let path = folder.join(name);
    assert!(path.exists(), "{} is missing: run scripts/test, which installs it", path.display());
    path
}

#[test]
fn the_openapi_document_is_valid() {
    let output = std::process::Command::new(tool("openapi-spec-validator"))
        .arg("docs/openapi.yaml")
        .current_dir(workspace())
        .output()
        .expect("the validator runs");
    let report = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && report.contains("OK"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_difference_between_the_document_and_the_local_stack() {
    // GIVEN the local stack on loopback with one COMPLETE job (the document's examples name it)
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let s3_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("openapi-{}", std::process::id()));
    let stack = local(&base, Options { s3_dir, ..Options::default() });
    for event in ["hls-1-progressing.json", "hls-6-complete.json"] {
        let text = std::fs::read_to_string(workspace().join("tests/fixtures/eventbridge").join(event)).unwrap();
        stack.stack.progress_ingest(&serde_json::from_str(&text).unwrap()).await.unwrap();
    }
    tokio::spawn(axum::serve(listener, stack.router).into_future());

    // WHEN schemathesis runs every check but "unsupported method" (other methods answer the
    // original API's 404 `No route matches.`, not 405), from the workspace (schemathesis.toml),
    // with a fixed seed so CI is repeatable (`SCHEMATHESIS_SEED=N` explores others)
    let seed = std::env::var("SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261126".into());
    let run = tokio::process::Command::new(tool("st"))
        .args([
            "run",
            "docs/openapi.yaml",
            "--url",
            &base,
            "--checks",
            "all",
            "--exclude-checks",
            "unsupported_method",
            "--no-color",
            "--seed",
            &seed,
        ])
        .current_dir(workspace())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("schemathesis finishes within 5 minutes")
        .expect("st runs");

    // THEN it passes
    let report = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "schemathesis found differences:\n{report}");
    assert!(report.contains("Tested: 7"), "all seven operations were tested:\n{report}");
}

#[tokio::test]
async fn the_asyncapi_document_passes_the_asyncapi_parser() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/@asyncapi/parser").exists(),
        "{}/node_modules/@asyncapi/parser is missing: run scripts/test, which installs it",
        dir.display()
    );
    let run = tokio::process::Command::new("node")
        .args(["--test-reporter=spec", "asyncapi.test.mjs"])
        .arg(workspace().join("docs/asyncapi.yaml"))
        .current_dir(&dir)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the parser finishes within 2 minutes")
        .expect("node runs");
    let report = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && report.contains("ℹ pass 1"), "{report}");
}

/// `npm`/`tsc` in `clients/js`, answering whether it passed and what it printed.
fn in_client_package(program: &str, args: &[&str]) -> (bool, String) {
    let dir = workspace().join("clients/js");
    assert!(
        dir.join("node_modules/typescript").exists(),
        "{}/node_modules/typescript is missing: run scripts/test, which installs it",
        dir.display()
    );
    let output = std::process::Command::new(program)
        .args(args)
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr),
    )
}

#[test]
fn the_typescript_consumer_example_compiles_with_strict_checks() {
    let (passed, report) = in_client_package("node_modules/.bin/tsc", &["-p", "example"]);
    assert!(passed, "tsc --strict refused example/consumer.ts or example/react-consumer.tsx:\n{report}");
}

#[test]
fn the_client_packages_logic_tests_pass() {
    let (passed, report) = in_client_package("node", &["--test-reporter=spec", "--test", "test/"]);
    assert!(passed && report.contains("ℹ fail 0"), "{report}");
}

#[test]
fn npm_pack_ships_only_what_a_user_needs() {
    let (passed, report) = in_client_package("npm", &["pack", "--dry-run", "--json", "--loglevel=error"]);
    assert!(passed, "{report}");
    let packed: serde_json::Value =
        serde_json::from_str(&report).unwrap_or_else(|e| panic!("npm pack --json: {e}\n{report}"));
    let mut files: Vec<&str> =
        packed[0]["files"].as_array().unwrap().iter().filter_map(|f| f["path"].as_str()).collect();
    files.sort_unstable();
    assert_eq!(
        files,
        ["README.md", "mcpush-client.d.ts", "mcpush-client.js", "package.json", "react.d.ts", "react.js"]
    );
    assert_eq!(packed[0]["name"], "@mcpush/client");
    // The React entry is an export of the package, with its types, and React an optional peer.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(workspace().join("clients/js/package.json")).unwrap()).unwrap();
    assert_eq!(manifest["exports"]["./react"], serde_json::json!({"types": "./react.d.ts", "default": "./react.js"}));
    assert_eq!(manifest["peerDependencies"]["react"], ">=18");
    assert_eq!(manifest["peerDependenciesMeta"]["react"]["optional"], true);
}

#[tokio::test]
async fn the_local_stack_serves_the_packages_own_module() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let s3_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("client-module-{}", std::process::id()));
    let stack = local(&base, Options { s3_dir, ..Options::default() });
    tokio::spawn(axum::serve(listener, stack.router).into_future());
    let served = reqwest::get(format!("{base}/mcpush-client.js")).await.unwrap().text().await.unwrap();
    assert_eq!(served, std::fs::read_to_string(workspace().join("clients/js/mcpush-client.js")).unwrap());
}
