//! The terminal tools of the local stack binary (they work against a deployed stack too):
//! - `watch INPUT_FILE [--url URL]`: a live progress bar over the WebSocket API, REST polling of
//!   `/media/status` when the socket cannot open; exits 0 on COMPLETE, 1 on ERROR or CANCELED;
//! - `replay FILES… [--url URL]`: posts EventBridge events (JSON files, or JSON Lines with one
//!   event per line) to a running stack's `progress-ingest`, with a progress bar.

use std::io::Write;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {reason}")]
    Input { path: String, reason: String },
    #[error("HTTP: {0}")]
    Http(String),
}

/// A minimal HTTP/1.1 exchange with the local stack (plain http only): status and body.
pub async fn http(method: &str, url: &str, body: Option<&str>) -> Result<(u16, String), CliError> {
    let rest = url.strip_prefix("http://").ok_or_else(|| CliError::Http(format!("{url}: only http:// URLs are supported")))?;
    let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let mut stream = tokio::net::TcpStream::connect(host).await.map_err(|e| CliError::Http(format!("{host}: {e}")))?;
    let body = body.unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.map_err(|e| CliError::Http(e.to_string()))?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.map_err(|e| CliError::Http(e.to_string()))?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| CliError::Http(format!("bad response: {head}")))?;
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_owned() };
    Ok((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

fn bar(progress: u64, width: usize) -> String {
    let filled = (progress.min(100) as usize * width) / 100;
    format!("[{}{}] {progress:>3}%", "#".repeat(filled), "-".repeat(width - filled))
}

/// Reads events from files: a JSON document per file, or JSON Lines.
pub fn read_events(paths: &[String]) -> Result<Vec<(String, Value)>, CliError> {
    let mut events = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(path).map_err(|e| CliError::Input { path: path.clone(), reason: e.to_string() })?;
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Array(items)) => events.extend(items.into_iter().map(|v| (path.clone(), v))),
            Ok(value) => events.push((path.clone(), value)),
            Err(_) => {
                for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                    let value = serde_json::from_str(line)
                        .map_err(|e| CliError::Input { path: format!("{path}:{}", n + 1), reason: e.to_string() })?;
                    events.push((format!("{path}:{}", n + 1), value));
                }
            }
        }
    }
    Ok(events)
}

/// `replay`: posts each event to `{url}/2015-03-31/functions/progress-ingest/invocations`.
/// Returns how many the function rejected.
pub async fn replay(url: &str, paths: &[String], out: &mut impl Write) -> Result<usize, CliError> {
    let events = read_events(paths)?;
    let endpoint = format!("{}/2015-03-31/functions/progress-ingest/invocations", url.trim_end_matches('/'));
    let mut rejected = 0;
    for (i, (source, event)) in events.iter().enumerate() {
        let (status, body) = http("POST", &endpoint, Some(&event.to_string())).await?;
        let answer: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if status != 200 || answer.get("errorMessage").is_some() {
            rejected += 1;
            let reason = answer.get("errorMessage").and_then(Value::as_str).map(str::to_owned).unwrap_or(body);
            let _ = writeln!(out, "\r{source}: rejected: {reason}");
        }
        let _ = write!(out, "\r{} {}/{} events", bar(((i + 1) * 100 / events.len().max(1)) as u64, 30), i + 1, events.len());
        let _ = out.flush();
    }
    let _ = writeln!(out, "\n{} replayed, {rejected} rejected", events.len() - rejected);
    Ok(rejected)
}

/// How a watched job ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    Complete(Value),
    Failed(Value),
}

fn render(out: &mut impl Write, status: &Value) -> Option<Ending> {
    let job_status = status["job_status"].as_str().unwrap_or_default();
    let progress = status["progress_rate"].as_u64().unwrap_or(0);
    let _ = write!(out, "\r{} {job_status:<11}", bar(progress, 30));
    let _ = out.flush();
    match job_status {
        "COMPLETE" => {
            let _ = writeln!(
                out,
                "\n{} ms, {}x{}, {}{}",
                status["duration_ms"], status["width_px"], status["height_px"], status["output_path"].as_str().unwrap_or_default(),
                status["playlists"].as_object().map(|p| p.values().filter_map(Value::as_str).collect::<Vec<_>>().join(" ")).unwrap_or_default()
            );
            Some(Ending::Complete(status.clone()))
        }
        "ERROR" | "CANCELED" => {
            let _ = writeln!(out, "\n{}", status["error_message"].as_str().unwrap_or(job_status));
            Some(Ending::Failed(status.clone()))
        }
        _ => None,
    }
}

/// `watch`: follows `input_file` until its newest job ends, over the WebSocket API when it opens,
/// else by polling `/media/status?input_file=` every `poll` interval.
pub async fn watch(url: &str, input_file: &str, poll: Duration, out: &mut impl Write) -> Result<Ending, CliError> {
    let base = url.trim_end_matches('/');
    let ws_url = format!("{}/ws", base.replacen("http://", "ws://", 1));
    match tokio_tungstenite::connect_async(ws_url.as_str()).await {
        Ok((mut socket, _)) => {
            let subscribe = json!({"action": "subscribe", "input_file": input_file}).to_string();
            socket.send(Message::Text(subscribe.into())).await.map_err(|e| CliError::Http(e.to_string()))?;
            let mut best = 0;
            while let Some(frame) = socket.next().await {
                let Ok(Message::Text(text)) = frame else { continue };
                let message: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                match message["type"].as_str() {
                    Some("status") => {
                        let progress = message["progress_rate"].as_u64().unwrap_or(0);
                        if progress < best && message["job_status"] == "PROGRESSING" {
                            continue;
                        }
                        best = best.max(progress);
                        if let Some(ending) = render(out, &message) {
                            return Ok(ending);
                        }
                    }
                    Some("error") => return Err(CliError::Usage(message["message"].as_str().unwrap_or("error").to_owned())),
                    _ => {}
                }
            }
            Err(CliError::Http("the WebSocket closed before the job ended".into()))
        }
        Err(e) => {
            let _ = writeln!(out, "WebSocket unavailable ({e}); polling {base}/media/status");
            let encoded: String = input_file
                .bytes()
                .map(|b| if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
                .collect();
            loop {
                let (status, body) = http("GET", &format!("{base}/media/status?input_file={encoded}"), None).await?;
                if status == 200 {
                    let message: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    if let Some(ending) = render(out, &message) {
                        return Ok(ending);
                    }
                }
                tokio::time::sleep(poll).await;
            }
        }
    }
}
