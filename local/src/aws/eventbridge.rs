//! EventBridge on a laptop: `PutEvents` (the awsJson 1.1 API the real SDK client speaks, at
//! `/eventbridge`), every event kept as the bus would deliver it (the last [`KEPT_EVENTS`], at
//! `GET /_local/events` as JSON Lines), and with `WEBHOOK_URL` the API destination: each event
//! POSTed to that URL with the headers an EventBridge API destination sends, retried with backoff.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::billing::Billing;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

/// Events `GET /_local/events` keeps.
pub const KEPT_EVENTS: usize = 1_000;
/// The header carrying the webhook's shared secret (the connection's API key header on AWS).
pub const SECRET_HEADER: &str = "x-mcpush-webhook-secret";
/// The `User-Agent` of EventBridge API destinations.
pub const USER_AGENT: &str = "Amazon/EventBridge/ApiDestinations";
/// Webhook tries per event locally (EventBridge makes up to 185 over 24 h).
pub const WEBHOOK_ATTEMPTS: u32 = 12;

/// An event as EventBridge delivers it to a rule's targets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub version: String,
    pub id: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    pub account: String,
    pub time: String,
    pub region: String,
    pub resources: Vec<String>,
    pub detail: Value,
}

/// Where the API destination delivers, and with which secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    /// `WEBHOOK_URL`.
    pub url: String,
    /// `WEBHOOK_SECRET`: sent in [`SECRET_HEADER`] when set.
    pub secret: Option<String>,
    /// First retry delay (doubling, at most 30 s).
    pub backoff: Duration,
}

/// The local bus.
pub struct LocalEventBus {
    /// What EventBridge bills: entries accepted, API-destination calls.
    billing: Arc<Billing>,
    region: String,
    account: String,
    kept: Mutex<VecDeque<Envelope>>,
    next_id: AtomicU64,
    /// Share of entries refused with `InternalFailure` (parts per million).
    fault_ppm: AtomicU32,
    webhook: Option<UnboundedSender<Envelope>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutEventsRequest {
    #[serde(default)]
    entries: Vec<RequestEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RequestEntry {
    source: Option<String>,
    detail_type: Option<String>,
    detail: Option<String>,
    #[serde(default)]
    resources: Vec<String>,
}

impl LocalEventBus {
    /// A bus in `region`; with a webhook, starts its delivery.
    pub fn new(region: &str, webhook: Option<Webhook>, billing: Arc<Billing>) -> Arc<Self> {
        let sender = webhook.map(|webhook| {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(deliver_webhooks(webhook, rx, billing.clone()));
            tx
        });
        Arc::new(Self {
            region: region.to_owned(),
            account: "000000000000".to_owned(),
            kept: Mutex::new(VecDeque::new()),
            next_id: AtomicU64::new(1),
            fault_ppm: AtomicU32::new(0),
            webhook: sender,
            billing,
        })
    }

    /// `EVENTBRIDGE_FAULT_RATE`: that share of entries is refused (`InternalFailure`), as
    /// `PutEvents` refuses some entries of a call now and then.
    pub fn set_fault_rate(&self, share: f64) {
        self.fault_ppm.store((share.clamp(0.0, 1.0) * 1_000_000.0) as u32, Ordering::Relaxed);
    }

    /// The events kept, oldest first.
    pub fn events(&self) -> Vec<Envelope> {
        self.kept.lock().map(|k| k.iter().cloned().collect()).unwrap_or_default()
    }

    /// One entry: its envelope, or `(code, message)` as PutEvents refuses it.
    fn accept(&self, entry: RequestEntry) -> Result<Envelope, (&'static str, String)> {
        let (Some(source), Some(detail_type), Some(detail)) = (entry.source, entry.detail_type, entry.detail) else {
            return Err(("MalformedDetail", "Source, DetailType and Detail are required".into()));
        };
        let detail: Value = match serde_json::from_str(&detail) {
            Ok(value @ Value::Object(_)) => value,
            _ => return Err(("MalformedDetail", "Detail is malformed.".into())),
        };
        if fastrand::u32(0..1_000_000) < self.fault_ppm.load(Ordering::Relaxed) {
            return Err(("InternalFailure", "Internal service failure (EVENTBRIDGE_FAULT_RATE).".into()));
        }
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        Ok(Envelope {
            version: "0".into(),
            id: format!("{:08x}-{:04x}-4000-8000-{:012x}", fastrand::u32(..), n >> 48, n & 0xffff_ffff_ffff),
            detail_type,
            source,
            account: self.account.clone(),
            time: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            region: self.region.clone(),
            resources: entry.resources,
            detail,
        })
    }

    fn keep(&self, envelope: &Envelope) {
        if let Ok(mut kept) = self.kept.lock() {
            if kept.len() == KEPT_EVENTS {
                kept.pop_front();
            }
            kept.push_back(envelope.clone());
        }
        if let Some(webhook) = &self.webhook {
            let _ = webhook.send(envelope.clone());
        }
    }
}

fn aws_json(status: StatusCode, body: Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/x-amz-json-1.1")], body.to_string()).into_response()
}

async fn put_events(State(bus): State<Arc<LocalEventBus>>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers.get("x-amz-target").and_then(|t| t.to_str().ok()).unwrap_or_default();
    if target != "AWSEvents.PutEvents" {
        let message = format!("the local EventBridge serves AWSEvents.PutEvents only, not {target:?}");
        return aws_json(StatusCode::BAD_REQUEST, json!({"__type": "UnknownOperationException", "message": message}));
    }
    let request: PutEventsRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            let message = format!("the request body is not a PutEvents request: {e}");
            return aws_json(StatusCode::BAD_REQUEST, json!({"__type": "ValidationException", "message": message}));
        }
    };
    if !(1..=10).contains(&request.entries.len()) {
        let message = "1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length between 1 and 10";
        return aws_json(StatusCode::BAD_REQUEST, json!({"__type": "ValidationException", "message": message}));
    }
    let mut failed = 0;
    let entries: Vec<Value> = request
        .entries
        .into_iter()
        .map(|entry| match bus.accept(entry) {
            Ok(envelope) => {
                bus.billing.eventbridge_events(1);
                bus.keep(&envelope);
                json!({"EventId": envelope.id})
            }
            Err((code, message)) => {
                failed += 1;
                json!({"ErrorCode": code, "ErrorMessage": message})
            }
        })
        .collect();
    aws_json(StatusCode::OK, json!({"FailedEntryCount": failed, "Entries": entries}))
}

#[derive(Deserialize)]
struct EventsQuery {
    /// Only the events after the one with this id (all when it is no longer kept).
    after: Option<String>,
}

/// `GET /_local/events`: the events kept, oldest first, one JSON object per line.
async fn list_events(State(bus): State<Arc<LocalEventBus>>, Query(query): Query<EventsQuery>) -> Response {
    let events = bus.events();
    let start = query.after.and_then(|id| events.iter().position(|e| e.id == id)).map_or(0, |i| i + 1);
    let mut body = String::new();
    for event in &events[start..] {
        body.push_str(&serde_json::to_string(event).unwrap_or_default());
        body.push('\n');
    }
    ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}

pub fn router(bus: Arc<LocalEventBus>) -> Router {
    Router::new()
        .route("/eventbridge", post(put_events))
        .route("/eventbridge/", post(put_events))
        .route("/_local/events", get(list_events))
        .with_state(bus)
}

/// What the API destination does with an answer: EventBridge retries 401, 407, 409, 429 and 5xx
/// (and transport failures); any other answer ends the delivery.
pub fn is_retried(status: StatusCode) -> bool {
    matches!(status.as_u16(), 401 | 407 | 409 | 429) || status.is_server_error()
}

/// The API destination: each event, in order, POSTed to the webhook (the whole event as the body);
/// retried with exponential backoff up to [`WEBHOOK_ATTEMPTS`] times, then logged as dead-lettered.
async fn deliver_webhooks(webhook: Webhook, mut events: UnboundedReceiver<Envelope>, billing: Arc<Billing>) {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap_or_default();
    while let Some(event) = events.recv().await {
        let body = serde_json::to_vec(&event).unwrap_or_default();
        for attempt in 1..=WEBHOOK_ATTEMPTS {
            let mut request = client
                .post(&webhook.url)
                .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
                .header(header::USER_AGENT, USER_AGENT)
                .body(body.clone());
            if let Some(secret) = &webhook.secret {
                request = request.header(SECRET_HEADER, secret);
            }
            billing.eventbridge_events(1);
            let outcome = match request.send().await {
                Ok(answer) if answer.status().is_success() => break,
                Ok(answer) if !is_retried(answer.status()) => {
                    tracing::error!(url = %webhook.url, status = %answer.status(), id = %event.id, "the webhook refused an event; not retried");
                    break;
                }
                Ok(answer) => answer.status().to_string(),
                Err(e) => e.to_string(),
            };
            if attempt == WEBHOOK_ATTEMPTS {
                tracing::error!(url = %webhook.url, id = %event.id, error = %outcome, "webhook delivery given up; on AWS the event goes to the dead-letter queue");
                break;
            }
            tracing::warn!(url = %webhook.url, id = %event.id, attempt, error = %outcome, "webhook delivery failed; retrying");
            let delay = webhook.backoff.saturating_mul(1 << (attempt - 1).min(10)).min(Duration::from_secs(30));
            tokio::time::sleep(delay).await;
        }
    }
}

/// The real SDK client for the local EventBridge at `{base}/eventbridge` (any credentials do;
/// no SDK retries: event-publisher retries itself).
pub fn local_client(base: &str, region: &str) -> aws_sdk_eventbridge::Client {
    use aws_sdk_eventbridge::config::{BehaviorVersion, Credentials, Region, retry::RetryConfig};
    let conf = aws_sdk_eventbridge::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(Credentials::new("local", "local", None, None, "local"))
        .endpoint_url(format!("{base}/eventbridge"))
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_eventbridge::Client::from_conf(conf)
}
