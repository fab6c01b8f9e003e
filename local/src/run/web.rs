//! The demo page at `/` (with its icon) and the browser client module it uses (`/mcpush-client.js`), embedded in
//! the binary so `cargo run` serves them from anywhere. `config.json` tells the page where the
//! simulated buckets are.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Serialize;

/// What the demo page reads from `/config.json`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebConfig {
    /// Output bucket URL prefix: `output_path` and a playlist name are appended (`/s3/outputs/`).
    pub outputs_url: String,
    /// The client's `recheckIntervalMs`: how often the page asks `/media/status` while subscribed.
    pub recheck_interval_ms: u64,
}

/// The demo page's re-check period: short, as a local job lasts seconds.
pub const DEMO_RECHECK_INTERVAL_MS: u64 = 3000;

const INDEX: &str = include_str!("../../web/index.html");
const DEMO_JS: &str = include_str!("../../web/demo.js");
const DEMO_CSS: &str = include_str!("../../web/demo.css");
const FAVICON: &str = include_str!("../../web/favicon.svg");
const CLIENT_JS: &str = include_str!("../../../clients/js/mcpush-client.js");

pub fn router(config: WebConfig) -> Router {
    let page = |kind: &'static str, body: &'static str| {
        get(move || async move { ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "no-cache")], body) })
    };
    Router::new()
        .route("/", page("text/html; charset=utf-8", INDEX))
        .route("/demo.js", page("text/javascript; charset=utf-8", DEMO_JS))
        .route("/demo.css", page("text/css; charset=utf-8", DEMO_CSS))
        .route("/favicon.svg", page("image/svg+xml", FAVICON))
        .route("/favicon.ico", page("image/svg+xml", FAVICON))
        .route("/mcpush-client.js", page("text/javascript; charset=utf-8", CLIENT_JS))
        .route("/config.json", get(move || async move { axum::Json(config.clone()).into_response() }))
}
