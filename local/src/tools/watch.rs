//! `watch`: a live progress bar over the WebSocket API (`ws://` or `wss://`, any stage path),
//! REST polling of `/media/status` (`http://` or `https://`) when the socket cannot open (long
//! polls: `If-None-Match` with `?wait=`, within `--timeout-seconds`); ends with COMPLETE, or
//! ERROR / CANCELED ([`Ending`]).

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use indicatif::ProgressBar;
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::Message;

use crate::tools::common::{CliError, chain, http_client, printable, redacted, tls_config};

/// Where `watch` looks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// Base of the REST API (`http(s)://host[/stage]/`); `media/status` is appended.
    pub rest: Url,
    /// The WebSocket API (`ws(s)://host/stage`).
    pub ws: Url,
}

impl Endpoints {
    /// `rest` and `ws` default from `url`: the REST base is `url` itself, the WebSocket API is
    /// `ws://HOST/ws` (`wss://` for an `https://` URL), as the local stack serves it.
    pub fn new(url: &Url, rest: Option<Url>, ws: Option<Url>) -> Result<Self, CliError> {
        let mut rest = rest.unwrap_or_else(|| url.clone());
        if !matches!(rest.scheme(), "http" | "https") {
            return Err(CliError::Usage(format!("the REST URL {rest} must be http:// or https://")));
        }
        if !rest.path().ends_with('/') {
            let path = format!("{}/", rest.path());
            rest.set_path(&path);
        }
        let ws = match ws {
            Some(ws) => ws,
            None => {
                let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
                let host = url.host_str().ok_or_else(|| CliError::Usage(format!("{url} names no host")))?;
                let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
                let host = if host.contains(':') { format!("[{host}]") } else { host.to_owned() };
                Url::parse(&format!("{scheme}://{host}{port}/ws")).map_err(|e| CliError::Usage(e.to_string()))?
            }
        };
        if !matches!(ws.scheme(), "ws" | "wss") {
            return Err(CliError::Usage(format!("the WebSocket URL {ws} must be ws:// or wss://")));
        }
        Ok(Self { rest, ws })
    }

    fn status_url(&self, input_file: &str, token: Option<&str>) -> Result<Url, CliError> {
        let mut url = self.rest.join("media/status").map_err(|e| CliError::Usage(e.to_string()))?;
        url.query_pairs_mut().append_pair("input_file", input_file);
        if let Some(token) = token {
            url.query_pairs_mut().append_pair("token", token);
        }
        Ok(url)
    }
}

/// A job's state as `/media/status` and the WebSocket `status` message show it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Status {
    pub job_status: String,
    pub progress_rate: u8,
    pub current_phase: Option<String>,
    #[serde(default)]
    pub phase_progress: BTreeMap<String, u8>,
    pub updated_at: Option<u64>,
    pub eta_ms: Option<u64>,
    pub duration_ms: Option<u64>,
    pub width_px: Option<u32>,
    pub height_px: Option<u32>,
    pub output_path: Option<String>,
    #[serde(default)]
    pub playlists: BTreeMap<String, String>,
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
}

/// The WebSocket message `watch` sends.
#[derive(Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
enum ClientMessage<'a> {
    Subscribe {
        input_file: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        token: Option<&'a str>,
    },
}

/// The WebSocket messages `watch` reads.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerMessage {
    Status(Box<Status>),
    Error {
        message: String,
    },
    #[serde(other)]
    Other,
}

/// How a watched job ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    Complete(Status),
    Failed(Status),
}

/// Shows statuses: on the bar, and as lines on `out` when the bar is hidden.
struct Display<'a> {
    out: &'a mut (dyn Write + Send),
    bar: ProgressBar,
    best: u8,
    last_line: String,
    /// Has a status been shown, or the wait for a job announced?
    spoken: bool,
    /// The latest running status, which [`Display::tick`] moves the bar on from.
    running: Option<Status>,
}

/// "about 3 min left", "about 40 s left".
fn time_left(ms: u64) -> String {
    if ms < 60_000 {
        format!("about {} s left", ms.div_ceil(1000).max(1))
    } else {
        format!("about {} min left", ms.div_ceil(60_000))
    }
}

impl Display<'_> {
    fn line(&mut self, text: &str) {
        let out = &mut self.out;
        self.bar.suspend(|| {
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        });
    }

    /// Says once, before any status, that the file has no job yet (on a terminal or not).
    fn no_job_yet(&mut self, input_file: &str) {
        if !self.spoken {
            self.spoken = true;
            self.bar.set_message("waiting for a job");
            self.line(&format!("no job for {} yet: waiting for one to start", printable(input_file)));
        }
    }

    /// Shows `status`; returns the ending when it is final. A PROGRESSING status below the best
    /// progress seen (a poll crossing a push) is not shown.
    fn show(&mut self, status: Status) -> Option<Ending> {
        if status.job_status == "PROGRESSING" && status.progress_rate < self.best {
            return None;
        }
        self.best = self.best.max(status.progress_rate);
        self.spoken = true;
        let phase = status.current_phase.as_deref().map(|p| format!(" ({})", printable(p))).unwrap_or_default();
        let state = format!("{}{phase}", printable(&status.job_status));
        self.bar.set_position(self.bar.position().max(u64::from(status.progress_rate.min(100))));
        self.bar.set_message(state.clone());
        self.running = (status.job_status == "PROGRESSING").then(|| status.clone());
        self.tick();
        let left =
            status.eta_ms.filter(|_| status.job_status == "PROGRESSING").map(|ms| format!(" · {}", time_left(ms)));
        let line = format!("{:>3}% {state}{}", status.progress_rate, left.unwrap_or_default());
        if self.bar.is_hidden() && line != self.last_line {
            self.line(&line);
            self.last_line = line;
        }
        match status.job_status.as_str() {
            "COMPLETE" => {
                self.bar.set_position(100);
                self.bar.finish();
                let dimension = |v: Option<u32>| v.map_or("?".to_owned(), |v| v.to_string());
                let summary = format!(
                    "{} ms, {}x{}, {}{}",
                    status.duration_ms.map_or("?".to_owned(), |d| d.to_string()),
                    dimension(status.width_px),
                    dimension(status.height_px),
                    printable(status.output_path.as_deref().unwrap_or_default()),
                    printable(&status.playlists.values().cloned().collect::<Vec<_>>().join(" ")),
                );
                self.line(&summary);
                Some(Ending::Complete(status))
            }
            "ERROR" | "CANCELED" => {
                self.bar.abandon();
                let code = status.error_code.map(|c| format!(" (error {c})")).unwrap_or_default();
                let message =
                    status.error_message.as_deref().map(printable).unwrap_or_else(|| printable(&status.job_status));
                self.line(&format!("{message}{code}"));
                Some(Ending::Failed(status))
            }
            _ => None,
        }
    }
}

impl Display<'_> {
    /// Between reports, moves the bar on at the pace the latest running status implies and says
    /// about how long is left (`domain::eta::interpolate`); never back.
    fn tick(&mut self) {
        let Some(status) = &self.running else { return };
        let (Some(eta_ms), Some(updated_at)) = (status.eta_ms, status.updated_at) else { return };
        let phase = status.current_phase.as_ref().and_then(|p| status.phase_progress.get(p)).copied();
        let (progress, left) = mcpush_core::domain::eta::interpolate(
            status.progress_rate,
            eta_ms,
            updated_at,
            phase,
            mcpush_core::now_ms(),
        );
        self.bar.set_position(self.bar.position().max(progress as u64));
        let phase = status.current_phase.as_deref().map(|p| format!(" ({})", printable(p))).unwrap_or_default();
        self.bar.set_message(format!("{}{phase} · {}", printable(&status.job_status), time_left(left)));
    }
}

/// How often the bar moves between reports.
const TICK: Duration = Duration::from_millis(250);

/// The longest `?wait=` the status API takes (its `MAX_WAIT_SECS`).
const MAX_WAIT_SECS: u64 = mcpush_core::handlers::status_api::MAX_WAIT_SECS;

/// How often `watch` asks the REST API, and how long it waits for a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// While the WebSocket cannot open: every poll.
    pub poll: Duration,
    /// While subscribed: at once, then every re-check, so a lost push costs at most this long.
    pub recheck: Duration,
    /// The longest wait for a connection, the WebSocket handshake, or a REST answer
    /// (`--timeout-seconds`, default 10).
    pub wait: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self { poll: Duration::from_secs(2), recheck: Duration::from_secs(30), wait: Duration::from_secs(10) }
    }
}

/// The largest REST body or WebSocket message `watch` reads: a status is a few KB, a push at most
/// API Gateway's 128 KB.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// What `watch` follows: a file, and the read token that covers it when the stack requires one.
#[derive(Clone, Copy, Debug)]
pub struct Watched<'a> {
    pub input_file: &'a str,
    pub token: Option<&'a str>,
}

/// `watch`: follows `input_file` until its newest job ends, over the WebSocket API when it opens
/// (re-checking `/media/status?input_file=` now and then, see [`Timing`]), else by polling it.
/// The token goes with the subscribe and every REST call. Lines go to `out` when `bar` is hidden.
pub async fn watch(
    endpoints: &Endpoints,
    watched: Watched<'_>,
    timing: Timing,
    out: &mut (dyn Write + Send),
    bar: ProgressBar,
) -> Result<Ending, CliError> {
    let Watched { input_file, token } = watched;
    let tls = tls_config()?;
    let mut display = Display { out, bar, best: 0, last_line: String::new(), spoken: false, running: None };
    let connector = Connector::Rustls(tls.clone());
    let ws_url = endpoints.ws.as_str();
    let limits = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(MAX_RESPONSE_BYTES))
        .max_frame_size(Some(MAX_RESPONSE_BYTES));
    let handshake = tokio_tungstenite::connect_async_tls_with_config(ws_url, Some(limits), false, Some(connector));
    let opened = match tokio::time::timeout(timing.wait, handshake).await {
        Ok(opened) => opened.map_err(|e| chain(&e)),
        Err(_) => Err(format!("no handshake within {} s", timing.wait.as_secs_f32())),
    };
    match opened {
        Ok((mut socket, _)) => {
            let subscribe = serde_json::to_string(&ClientMessage::Subscribe { input_file, token }).unwrap_or_default();
            let ws_error = |e: &dyn std::error::Error| CliError::WebSocket { url: ws_url.to_owned(), reason: chain(e) };
            socket.send(Message::Text(subscribe.into())).await.map_err(|e| ws_error(&e))?;
            let (client, status_url) = (http_client(&tls, timing.wait)?, endpoints.status_url(input_file, token)?);
            let mut recheck = tokio::time::interval(timing.recheck.max(Duration::from_millis(10)));
            let mut conditional = Conditional::default();
            let mut tick = tokio::time::interval(TICK);
            loop {
                let frame = tokio::select! {
                    frame = socket.next() => frame,
                    _ = tick.tick() => {
                        display.tick();
                        continue;
                    }
                    _ = recheck.tick() => {
                        match poll_status(&client, &status_url, &mut conditional).await {
                            Ok(Poll::Status(status)) => {
                                if let Some(ending) = display.show(*status) {
                                    return Ok(ending);
                                }
                            }
                            Ok(Poll::NoJobYet) => display.no_job_yet(input_file),
                            Ok(Poll::Again | Poll::NotModified) => {}
                            Err(e) => tracing::warn!(error = %e, "re-check failed; still listening"),
                        }
                        continue;
                    }
                };
                let Some(frame) = frame else { break };
                let text = match frame.map_err(|e| ws_error(&e))? {
                    Message::Text(text) => text.to_string(),
                    Message::Binary(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                    Message::Close(_) => break,
                    _ => continue,
                };
                let message: ServerMessage = serde_json::from_str(&text).map_err(|e| CliError::WebSocket {
                    url: ws_url.to_owned(),
                    reason: format!(
                        "the server sent a message that is not this protocol's ({e}): {}",
                        printable(&text)
                    ),
                })?;
                match message {
                    ServerMessage::Status(status) => {
                        if let Some(ending) = display.show(*status) {
                            return Ok(ending);
                        }
                    }
                    ServerMessage::Error { message, .. } => return Err(CliError::Refused(printable(&message))),
                    ServerMessage::Other => {}
                }
            }
            Err(CliError::WebSocket {
                url: ws_url.to_owned(),
                reason: "the WebSocket closed before the job ended".into(),
            })
        }
        Err(e) => {
            let url = endpoints.status_url(input_file, token)?;
            display.line(&format!(
                "WebSocket unavailable ({}); polling {}",
                printable(&e),
                endpoints.rest.join("media/status").map(String::from).unwrap_or_default()
            ));
            let client = http_client(&tls, timing.wait)?;
            // Long polls: the server holds each request until the state changes, within the
            // client's own timeout.
            let wait_secs = timing.wait.as_secs().saturating_sub(1).min(MAX_WAIT_SECS);
            let mut conditional = Conditional { etag: None, wait_secs };
            let mut tick = tokio::time::interval(TICK);
            loop {
                let found = {
                    let poll = poll_status(&client, &url, &mut conditional);
                    tokio::pin!(poll);
                    loop {
                        tokio::select! {
                            found = &mut poll => break found?,
                            _ = tick.tick() => display.tick(),
                        }
                    }
                };
                let held = match found {
                    Poll::Status(status) => {
                        if let Some(ending) = display.show(*status) {
                            return Ok(ending);
                        }
                        wait_secs > 0
                    }
                    Poll::NotModified => wait_secs > 0,
                    Poll::NoJobYet => {
                        display.no_job_yet(input_file);
                        false
                    }
                    Poll::Again => false,
                };
                // A long poll that was answered asks again at once; anything else waits a poll.
                if held && conditional.etag.is_some() {
                    continue;
                }
                let next_poll = tokio::time::Instant::now() + timing.poll;
                while tokio::time::Instant::now() < next_poll {
                    tokio::time::sleep_until(next_poll.min(tokio::time::Instant::now() + TICK)).await;
                    display.tick();
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct Failure {
    message: String,
}

/// What one poll found.
enum Poll {
    Status(Box<Status>),
    /// 304: the state the tag names is still the job's.
    NotModified,
    /// 422: the file has no job yet.
    NoJobYet,
    /// 429 / 5xx: try again.
    Again,
}

/// Conditional polling: the tag of the state seen last (sent as `If-None-Match`) and how long the
/// server may hold a request for a change (`?wait=`, seconds; 0 for a plain conditional poll).
#[derive(Default)]
struct Conditional {
    etag: Option<String>,
    wait_secs: u64,
}

/// One `GET /media/status`, conditional on the tag seen last; a 200 keeps its new tag.
async fn poll_status(client: &reqwest::Client, url: &Url, conditional: &mut Conditional) -> Result<Poll, CliError> {
    let http_error = |reason: String| CliError::Http { url: redacted(url), reason };
    let mut url = url.clone();
    if conditional.etag.is_some() && conditional.wait_secs > 0 {
        url.query_pairs_mut().append_pair("wait", &conditional.wait_secs.to_string());
    }
    let mut request = client.get(url.clone());
    if let Some(etag) = &conditional.etag {
        request = request.header(reqwest::header::IF_NONE_MATCH, etag);
    }
    let mut response = request.send().await.map_err(|e| http_error(chain(&e.without_url())))?;
    let code = response.status();
    if code == StatusCode::NOT_MODIFIED {
        return Ok(Poll::NotModified);
    }
    if code == StatusCode::OK {
        conditional.etag =
            response.headers().get(reqwest::header::ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned);
    }
    // Read a chunk at a time, never past the limit, whatever length the server announces.
    let too_large = || http_error(format!("answered more than {MAX_RESPONSE_BYTES} bytes: not a job status"));
    if response.content_length().is_some_and(|n| n > MAX_RESPONSE_BYTES as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| http_error(chain(&e.without_url())))? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    let text = String::from_utf8_lossy(&body);
    match code {
        StatusCode::OK => serde_json::from_slice::<Status>(&body).map(|s| Poll::Status(Box::new(s))).map_err(|e| {
            http_error(format!("answered 200 with a body that is not a job status ({e}): {}", printable(&text)))
        }),
        StatusCode::UNPROCESSABLE_ENTITY => Ok(Poll::NoJobYet),
        StatusCode::TOO_MANY_REQUESTS => Ok(Poll::Again),
        code if code.is_server_error() => {
            tracing::warn!(status = code.as_u16(), "status poll failed; trying again");
            Ok(Poll::Again)
        }
        code => {
            let message =
                serde_json::from_slice::<Failure>(&body).map(|f| f.message).unwrap_or_else(|_| text.into_owned());
            Err(http_error(format!("answered {code}: {}", printable(&message))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_status_says_about_how_long_is_left_and_the_bar_moves_on_between_reports() {
        let mut out = Vec::new();
        let bar = ProgressBar::hidden();
        let mut display = Display {
            out: &mut out,
            bar: bar.clone(),
            best: 0,
            last_line: String::new(),
            spoken: false,
            running: None,
        };
        let running = Status {
            job_status: "PROGRESSING".into(),
            progress_rate: 70,
            current_phase: Some("TRANSCODING".into()),
            updated_at: Some(mcpush_core::now_ms() - 10_000),
            eta_ms: Some(51_043),
            ..Status::default()
        };
        assert_eq!(display.show(running), None);
        assert!(bar.position() > 70, "ten seconds later the bar moved on: {}", bar.position());
        assert!(bar.message().ends_with("left"), "{}", bar.message());
        let far = Status { eta_ms: Some(3_600_000), ..Status::default() };
        assert_eq!(time_left(far.eta_ms.unwrap()), "about 60 min left");
        assert_eq!(time_left(1), "about 1 s left");
        drop(display);
        assert_eq!(String::from_utf8(out).unwrap(), " 70% PROGRESSING (TRANSCODING) · about 52 s left\n");
    }

    #[test]
    fn endpoints_default_from_one_url_and_keep_stage_paths() {
        let url = |s: &str| Url::parse(s).unwrap();
        let local = Endpoints::new(&url("http://127.0.0.1:3000"), None, None).unwrap();
        assert_eq!((local.rest.as_str(), local.ws.as_str()), ("http://127.0.0.1:3000/", "ws://127.0.0.1:3000/ws"));
        assert_eq!(
            local.status_url("a b&c.mp4", None).unwrap().as_str(),
            "http://127.0.0.1:3000/media/status?input_file=a+b%26c.mp4"
        );
        assert_eq!(
            local.status_url("a.mp4", Some("9.ab")).unwrap().as_str(),
            "http://127.0.0.1:3000/media/status?input_file=a.mp4&token=9.ab"
        );

        let deployed = Endpoints::new(
            &url("https://api.example.com"),
            Some(url("https://api.example.com/prod")),
            Some(url("wss://ws.example.com/prod")),
        )
        .unwrap();
        assert_eq!(
            deployed.status_url("f.mp4", None).unwrap().as_str(),
            "https://api.example.com/prod/media/status?input_file=f.mp4"
        );
        assert_eq!(deployed.ws.as_str(), "wss://ws.example.com/prod");
        assert_eq!(
            Endpoints::new(&url("https://api.example.com"), None, None).unwrap().ws.as_str(),
            "wss://api.example.com/ws"
        );

        assert!(Endpoints::new(&url("ftp://x"), None, None).is_err());
        assert!(Endpoints::new(&url("http://x"), None, Some(url("http://x/ws"))).is_err());
    }
}
