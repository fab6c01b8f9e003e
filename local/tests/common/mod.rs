//! Helpers shared by the local stack's integration tests.

#![allow(dead_code)]

pub mod oidc;
#[path = "../../../tests/src/protocol.rs"]
pub mod protocol;

/// One HTTP exchange (reqwest): status and body as text.
pub async fn http(method: &str, url: &str, body: Option<&str>) -> Result<(u16, String), reqwest::Error> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body.to_owned());
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

/// A JSON POST (with `Authorization: Bearer …` when `bearer` is given): status and JSON body.
pub async fn post_json(url: &str, body: &serde_json::Value, bearer: Option<&str>) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("origin", "http://localhost:3000")
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(bearer) = bearer {
        request = request.header("authorization", format!("Bearer {bearer}"));
    }
    let response = request.send().await.expect("the stack answers");
    let status = response.status().as_u16();
    (status, serde_json::from_str(&response.text().await.expect("a body")).expect("a JSON body"))
}

/// The local stack on 127.0.0.1 for a test: a fresh S3 folder under Cargo's temporary folder
/// (`label` names it), a 10 ms stream batch window and a 30 ms simulator step, then `adjust`'s
/// changes. Answers its URL, its functions and its S3 folder.
pub async fn serve_stack(
    label: &str,
    adjust: impl FnOnce(&mut mcpush_local::Options),
) -> (String, mcpush_local::run::stack::Stack, std::path::PathBuf) {
    let (base, stack, _, s3_dir) = serve_stack_with_s3(label, adjust).await;
    (base, stack, s3_dir)
}

/// [`serve_stack`], with the simulated S3 too (what it received).
pub async fn serve_stack_with_s3(
    label: &str,
    adjust: impl FnOnce(&mut mcpush_local::Options),
) -> (String, mcpush_local::run::stack::Stack, std::sync::Arc<mcpush_local::aws::s3::LocalS3>, std::path::PathBuf) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let base = format!("http://{}", listener.local_addr().expect("its address"));
    let s3_dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{label}-{}-{}",
        std::process::id(),
        fastrand::u32(..)
    ));
    let mut options = mcpush_local::Options {
        batch_window: std::time::Duration::from_millis(10),
        s3_dir: s3_dir.clone(),
        simulator: mcpush_local::aws::mediaconvert::SimSettings {
            step: std::time::Duration::from_millis(30),
            ..Default::default()
        },
        ..mcpush_local::Options::default()
    };
    adjust(&mut options);
    let local = mcpush_local::local(&base, options);
    tokio::spawn(axum::serve(listener, local.router).into_future());
    (base, local.stack, local.s3, s3_dir)
}
