//! `events`: the local stack's `Job Status Changed` events (`GET /_local/events`), printed as
//! they come: JSON Lines on stdout (what a webhook receives, one event per line), or with
//! `--summary` one readable line each. `--once` prints what is kept and ends.

use std::collections::{HashSet, VecDeque};
use std::io::Write;
use std::time::Duration;

use reqwest::Url;
use serde_json::Value;

use super::common::{CliError, chain, printable};

/// Ids remembered so an event is never printed twice (the list keeps 1,000).
const REMEMBERED: usize = 2_000;

/// How to tail.
pub struct Tail<'a> {
    pub client: &'a reqwest::Client,
    /// The local stack, e.g. `http://127.0.0.1:3000`.
    pub url: &'a Url,
    pub interval: Duration,
    pub once: bool,
    pub summary: bool,
}

/// One readable line: `time  job_id  vN  PREVIOUS → STATUS  progress%  input_file`.
pub fn summary(event: &Value) -> String {
    let detail = &event["detail"];
    let text = |v: &Value| v.as_str().map(printable).unwrap_or_else(|| "-".into());
    format!(
        "{}  {}  v{}  {} → {}  {}%  {}",
        text(&event["time"]),
        text(&detail["job_id"]),
        detail["version"].as_u64().unwrap_or_default(),
        detail["previous_status"].as_str().map_or_else(|| "(new)".into(), printable),
        text(&detail["job_status"]),
        detail["progress_rate"].as_u64().unwrap_or_default(),
        text(&detail["input_file"]),
    )
}

impl Tail<'_> {
    /// Prints events until the stack stops answering (or once, with `once`).
    pub async fn run(&self, out: &mut impl Write) -> Result<usize, CliError> {
        let mut endpoint = self.url.clone();
        endpoint.set_path("/_local/events");
        let (mut seen, mut order) = (HashSet::new(), VecDeque::new());
        let mut last: Option<String> = None;
        let mut printed = 0;
        loop {
            let mut url = endpoint.clone();
            if let Some(id) = &last {
                url.query_pairs_mut().append_pair("after", id);
            }
            let http = |reason: String| CliError::Http { url: super::common::redacted(&endpoint), reason };
            let answer = self.client.get(url).send().await.map_err(|e| http(chain(&e)))?;
            if !answer.status().is_success() {
                return Err(http(format!("answered {}", answer.status())));
            }
            let body = answer.text().await.map_err(|e| http(chain(&e)))?;
            for line in body.lines().filter(|l| !l.trim().is_empty()) {
                let event: Value = serde_json::from_str(line).map_err(|e| http(format!("not JSON Lines: {e}")))?;
                let Some(id) = event["id"].as_str().map(str::to_owned) else { continue };
                last = Some(id.clone());
                if !seen.insert(id.clone()) {
                    continue;
                }
                order.push_back(id);
                if order.len() > REMEMBERED {
                    order.pop_front().map(|old| seen.remove(&old));
                }
                let line = if self.summary { summary(&event) } else { event.to_string() };
                writeln!(out, "{line}").and_then(|_| out.flush()).map_err(|e| http(e.to_string()))?;
                printed += 1;
            }
            if self.once {
                return Ok(printed);
            }
            tokio::time::sleep(self.interval).await;
        }
    }
}
