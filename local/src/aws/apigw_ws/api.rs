//! An API Gateway WebSocket API emulator: real WebSocket clients in, the same
//! `ApiGatewayWebsocketProxyRequest` events API Gateway sends to Lambda out, and the Management
//! API (`POST` / `GET` / `DELETE /@connections/{id}`) over HTTP for the real SDK client.
//!
//! - route selection on `$request.body.action` among the configured routes, `$default` otherwise;
//! - a non-2xx answer from `$connect` refuses the upgrade with 403;
//! - connection ids look like API Gateway's (`L0SM9cOFvHcCIhw=`);
//! - posts answer 410 for unknown or closed ids and 413 above 128 KB, and a fault switch makes a
//!   chosen share of posts answer 429 or 500;
//! - as API Gateway, a connection idle for [`ConnectionLimits::idle`] (10 minutes; only the
//!   client's data frames count) or open for [`ConnectionLimits::max_age`] (2 hours) is closed
//!   with 1001 (Going Away) and `$disconnect` runs with that code;
//! - as API Gateway, [`RequestLimits`]: every Management API call takes a round trip's latency,
//!   posts share one token bucket (429 `TooManyRequestsException` when it is empty) and new
//!   connections another (429 at the handshake); all off by default, so tests run at full speed;
//! - as API Gateway, a client message over 128 KB or a frame over 32 KB closes the connection
//!   with 1009; a reader too slow to take its messages is closed with 1008 once 1 MiB waits for
//!   it, so memory stays bounded.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayCustomAuthorizerResponse, ApiGatewayProxyResponse,
    ApiGatewayWebsocketProxyRequest, ApiGatewayWebsocketProxyRequestContext,
};
use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use mcpush_core::domain::identity::IdentityError;

use crate::aws::http_api::query_params;

/// What an authorizer's answer puts in `requestContext.authorizer`: `principalId` and the context.
type AuthorizerFields = HashMap<String, Value>;

/// Largest message the Management API accepts, and the largest message a client may send.
pub const MAX_POST_BYTES: usize = 128 * 1024;
/// Largest frame a client may send (longer messages come in several frames).
pub const MAX_FRAME_BYTES: usize = 32 * 1024;
/// Bytes tungstenite reads per call on a connection (the buffer grows for a longer message).
pub const IDLE_READ_BUFFER_BYTES: usize = 4 * 1024;
/// Most bytes of posted messages waiting for a slow reader; above it the connection is closed
/// with 1008, so no client can make the emulator hold unbounded memory.
pub const MAX_QUEUED_BYTES: usize = 1024 * 1024;

/// API Gateway's connection limits (`APIGW_IDLE_TIMEOUT_S`, `APIGW_MAX_CONNECTION_S` locally).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A connection whose client sends no data frame for this long is closed (API Gateway: 10 minutes).
    pub idle: std::time::Duration,
    /// A connection is closed this long after it opened (API Gateway: 2 hours).
    pub max_age: std::time::Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self { idle: std::time::Duration::from_secs(600), max_age: std::time::Duration::from_secs(7200) }
    }
}

/// API Gateway's request limits (`APIGW_POST_LATENCY_MS`, `APIGW_POST_RATE`, `APIGW_POST_BURST`,
/// `APIGW_CONNECT_RATE` locally). On AWS: tens of milliseconds per Management API call, 10,000
/// requests/s with a burst of 5,000 per account and Region, 500 new connections/s.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RequestLimits {
    /// Added to every Management API call, drawn uniformly from this range (`20` or `10-40` ms).
    pub post_latency: (std::time::Duration, std::time::Duration),
    /// One token bucket over all posts; `None`: unlimited.
    pub post_rate: Option<Rate>,
    /// New connections; `None`: unlimited.
    pub connect_rate: Option<Rate>,
}

/// A token bucket's refill rate per second and size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

/// A token bucket, full at start.
struct Bucket {
    rate: Rate,
    state: Mutex<(f64, std::time::Instant)>,
}

impl Bucket {
    fn new(rate: Rate) -> Self {
        Self { rate, state: Mutex::new((rate.burst, std::time::Instant::now())) }
    }

    /// Takes a token if there is one.
    fn take(&self) -> bool {
        let Ok(mut state) = self.state.lock() else { return true };
        let now = std::time::Instant::now();
        let (tokens, at) = *state;
        let tokens = (tokens + now.duration_since(at).as_secs_f64() * self.rate.per_second).min(self.rate.burst);
        let taken = tokens >= 1.0;
        *state = (if taken { tokens - 1.0 } else { tokens }, now);
        taken
    }
}

/// The request limits in force: the settings and their buckets.
#[derive(Default)]
struct Throttles {
    limits: RequestLimits,
    posts: Option<Bucket>,
    connects: Option<Bucket>,
}

impl Throttles {
    fn new(limits: RequestLimits) -> Self {
        Self { limits, posts: limits.post_rate.map(Bucket::new), connects: limits.connect_rate.map(Bucket::new) }
    }

    fn latency(&self) -> std::time::Duration {
        let (low, high) = self.limits.post_latency;
        if high <= low { low } else { low + (high - low).mul_f64(fastrand::f64()) }
    }
}

/// The integrations behind the routes: what API Gateway would invoke.
#[async_trait]
pub trait WsBackend: Send + Sync {
    /// The `$connect` route's Lambda REQUEST authorizer, when it has one: `Allow` opens the
    /// connection and its principal and context reach every route as `requestContext.authorizer`;
    /// `Deny` refuses the upgrade with 403, an error with 500.
    async fn authorize(
        &self,
        _request: ApiGatewayCustomAuthorizerRequestTypeRequest,
    ) -> Option<Result<ApiGatewayCustomAuthorizerResponse, IdentityError>> {
        None
    }
    async fn connect(&self, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse;
    async fn disconnect(&self, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse;
    /// Every non-`$connect`/`$disconnect` route; `requestContext.routeKey` names it.
    async fn message(&self, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse;
}

enum Outgoing {
    Text(String),
    /// A close frame, with a code and reason or none.
    Close(Option<(u16, &'static str)>),
}

struct Connection {
    tx: mpsc::UnboundedSender<Outgoing>,
    /// Bytes posted to this connection and not yet written to its socket.
    queued: Arc<std::sync::atomic::AtomicUsize>,
    /// Tells the connection's task to drop the socket (a reader too slow to take its messages).
    shutdown: Arc<tokio::sync::Notify>,
    connected_at: i64,
    last_active_at: Arc<AtomicU64>,
    source_ip: String,
    user_agent: String,
    authorizer: AuthorizerFields,
}

/// Counters a test or benchmark can read.
#[derive(Debug, Default)]
pub struct Counters {
    pub posts: AtomicU64,
    pub delivered: AtomicU64,
    pub faults: AtomicU64,
    pub gone: AtomicU64,
    /// The most bytes that ever waited for one connection's socket.
    pub max_queued_bytes: AtomicU64,
    /// Connections closed for reading too slowly (1008) or sending too much (1009).
    pub closed_for_limits: AtomicU64,
    /// Posts refused with 429 by the post rate (`APIGW_POST_RATE`, `APIGW_POST_BURST`).
    pub throttled: AtomicU64,
    /// Handshakes refused with 429 by the connection rate (`APIGW_CONNECT_RATE`).
    pub connects_throttled: AtomicU64,
    /// Posts being answered now, and the most there ever were at once.
    pub posts_in_flight: AtomicU64,
    pub max_posts_in_flight: AtomicU64,
}

/// Counts a post in flight while it lives.
struct InFlight<'a>(&'a Counters);

impl<'a> InFlight<'a> {
    fn new(counters: &'a Counters) -> Self {
        let now = counters.posts_in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        counters.max_posts_in_flight.fetch_max(now, Ordering::Relaxed);
        Self(counters)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.posts_in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

pub struct WebSocketApi {
    backend: Arc<dyn WsBackend>,
    routes: Vec<String>,
    stage: String,
    domain: String,
    connections: Mutex<HashMap<String, Connection>>,
    /// Share of posts answering 429 / 500, in parts per million.
    fault_ppm: AtomicU32,
    limits: Mutex<ConnectionLimits>,
    throttles: std::sync::RwLock<Arc<Throttles>>,
    pub counters: Counters,
}

impl WebSocketApi {
    /// `routes`: the custom route keys (besides `$connect`, `$disconnect`, `$default`).
    pub fn new(backend: Arc<dyn WsBackend>, routes: &[&str], stage: &str, domain: &str) -> Arc<Self> {
        Arc::new(Self {
            backend,
            routes: routes.iter().map(|r| (*r).to_owned()).collect(),
            stage: stage.to_owned(),
            domain: domain.to_owned(),
            connections: Mutex::new(HashMap::new()),
            fault_ppm: AtomicU32::new(0),
            limits: Mutex::new(ConnectionLimits::default()),
            throttles: std::sync::RwLock::new(Arc::new(Throttles::default())),
            counters: Counters::default(),
        })
    }

    /// `GET /ws` (the WebSocket endpoint) and `/@connections/{id}` (the Management API).
    pub fn router(self: &Arc<Self>) -> Router {
        self.websocket_router("/ws")
            .merge(Router::new().route("/@connections/{id}", any(management)).with_state(self.clone()))
    }

    /// The WebSocket endpoint alone, at `path` (API Gateway serves it at `/{stage}`).
    pub fn websocket_router(self: &Arc<Self>, path: &str) -> Router {
        Router::new().route(path, get(upgrade)).with_state(self.clone())
    }

    /// The idle timeout and maximum age of connections opened from now on.
    pub fn set_limits(&self, limits: ConnectionLimits) {
        if let Ok(mut current) = self.limits.lock() {
            *current = limits;
        }
    }

    /// Sets the request limits, with full buckets.
    pub fn set_request_limits(&self, limits: RequestLimits) {
        if let Ok(mut current) = self.throttles.write() {
            *current = Arc::new(Throttles::new(limits));
        }
    }

    fn throttles(&self) -> Arc<Throttles> {
        self.throttles.read().map(|t| t.clone()).unwrap_or_default()
    }

    /// Makes `share` (0.0–1.0) of posts answer 429 or 500 at random.
    pub fn set_fault_rate(&self, share: f64) {
        self.fault_ppm.store((share.clamp(0.0, 1.0) * 1_000_000.0) as u32, Ordering::Relaxed);
    }

    pub fn connection_ids(&self) -> Vec<String> {
        self.connections.lock().map(|c| c.keys().cloned().collect()).unwrap_or_default()
    }

    /// Drops a connection the way a vanished client does when API Gateway never delivers its
    /// `$disconnect`: the socket closes, posts answer 410, the backend hears nothing.
    pub fn forget(&self, connection_id: &str) -> bool {
        let removed = self.connections.lock().ok().and_then(|mut c| c.remove(connection_id));
        if let Some(connection) = &removed {
            let _ = connection.tx.send(Outgoing::Close(None));
        }
        removed.is_some()
    }

    /// The event API Gateway sends a route's integration, without the route's own parts (headers
    /// and query on `$connect`, body on messages, close code on `$disconnect`).
    fn event(
        &self,
        route_key: &str,
        event_type: &str,
        connection_id: &str,
        connected_at: i64,
        authorizer: &AuthorizerFields,
    ) -> ApiGatewayWebsocketProxyRequest {
        let now = mcpush_core::now_ms() as i64;
        let mut context = ApiGatewayWebsocketProxyRequestContext::default();
        context.route_key = Some(route_key.to_owned());
        context.event_type = Some(event_type.to_owned());
        context.message_direction = Some("IN".to_owned());
        context.extended_request_id = Some(new_id());
        context.request_id = Some(new_id());
        context.request_time = Some(request_time(now));
        context.request_time_epoch = now;
        context.connected_at = connected_at;
        context.connection_id = Some(connection_id.to_owned());
        context.stage = Some(self.stage.clone());
        context.domain_name = Some(self.domain.clone());
        context.apiid = Some("local".to_owned());
        context.identity.source_ip = Some("127.0.0.1".to_owned());
        context.authorizer.fields = authorizer.clone();
        let mut event = ApiGatewayWebsocketProxyRequest::default();
        event.request_context = context;
        event
    }

    fn disconnect_event(
        &self,
        connection_id: &str,
        connected_at: i64,
        authorizer: &AuthorizerFields,
        status_code: i64,
        reason: &str,
    ) -> ApiGatewayWebsocketProxyRequest {
        let mut event = self.event("$disconnect", "DISCONNECT", connection_id, connected_at, authorizer);
        event.request_context.disconnect_status_code = Some(status_code);
        event.request_context.disconnect_reason = Some(reason.to_owned());
        event
    }

    fn route_for(&self, body: &str) -> String {
        serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| v.get("action").and_then(Value::as_str).map(str::to_owned))
            .filter(|action| self.routes.iter().any(|r| r == action))
            .unwrap_or_else(|| "$default".to_owned())
    }

    /// Runs the `$connect` authorizer, if any, with the request API Gateway would send it:
    /// the fields for `requestContext.authorizer`, or the status that refuses the upgrade.
    async fn authorize(
        &self,
        connection_id: &str,
        connected_at: i64,
        headers: &HeaderMap,
        query: &HashMap<String, String>,
        params: &HashMap<String, Vec<String>>,
    ) -> Result<AuthorizerFields, StatusCode> {
        let connect = self.event("$connect", "CONNECT", connection_id, connected_at, &AuthorizerFields::new());
        let mut request = ApiGatewayCustomAuthorizerRequestTypeRequest::default();
        request.type_ = Some("REQUEST".into());
        request.method_arn = Some(format!("arn:aws:execute-api:us-east-1:000000000000:local/{}/$connect", self.stage));
        request.headers = headers.clone();
        request.multi_value_headers = headers.clone();
        request.query_string_parameters = query.clone().into();
        request.multi_value_query_string_parameters = params.clone().into();
        request.request_context.apiid = Some("local".into());
        request.request_context.stage = connect.request_context.stage;
        request.request_context.request_id = connect.request_context.request_id;
        let Some(answer) = self.backend.authorize(request).await else { return Ok(AuthorizerFields::new()) };
        match answer {
            Ok(response) if mcpush_core::handlers::ws_authorizer::allowed(&response) => {
                let mut fields = match response.context {
                    Value::Object(map) => map.into_iter().collect(),
                    _ => AuthorizerFields::new(),
                };
                fields.insert("principalId".into(), Value::from(response.principal_id.unwrap_or_default()));
                Ok(fields)
            }
            Ok(_) => Err(StatusCode::FORBIDDEN),
            Err(_) => Err(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    async fn invoke(&self, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
        match event.request_context.route_key.as_deref() {
            Some("$connect") => self.backend.connect(event).await,
            Some("$disconnect") => self.backend.disconnect(event).await,
            _ => self.backend.message(event).await,
        }
    }
}

/// 12 random bytes in base64: the shape of API Gateway's connection and request ids.
fn new_id() -> String {
    let bytes: [u8; 12] = std::array::from_fn(|_| fastrand::u8(..));
    base64::engine::general_purpose::STANDARD.encode(&bytes[..11])
}

/// API Gateway's `requestTime`: `11/Nov/2024:11:35:24 +0000`.
fn request_time(epoch_ms: i64) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (year, month, day, h, m, s, _) = civil(epoch_ms.max(0) as u64);
    format!("{day:02}/{}/{year:04}:{h:02}:{m:02}:{s:02} +0000", MONTHS[(month - 1) as usize])
}

async fn upgrade(State(api): State<Arc<WebSocketApi>>, headers: HeaderMap, uri: Uri, ws: WebSocketUpgrade) -> Response {
    if api.throttles().connects.as_ref().is_some_and(|bucket| !bucket.take()) {
        api.counters.connects_throttled.fetch_add(1, Ordering::Relaxed);
        return (StatusCode::TOO_MANY_REQUESTS, axum::Json(json!({"message": "Too Many Requests"}))).into_response();
    }
    let connection_id = new_id();
    let connected_at = mcpush_core::now_ms() as i64;
    let params = query_params(uri.query().unwrap_or_default());
    let query: HashMap<String, String> =
        params.iter().map(|(k, v)| (k.clone(), v.last().cloned().unwrap_or_default())).collect();
    let authorizer = match api.authorize(&connection_id, connected_at, &headers, &query, &params).await {
        Ok(fields) => fields,
        Err(status) => {
            return (status, axum::Json(json!({"message": status.canonical_reason().unwrap_or_default()})))
                .into_response();
        }
    };
    let mut event = api.event("$connect", "CONNECT", &connection_id, connected_at, &authorizer);
    event.headers = headers.clone();
    event.multi_value_headers = headers.clone();
    event.query_string_parameters = query.into();
    event.multi_value_query_string_parameters = params.into();
    let accepted = (200..300).contains(&api.invoke(event).await.status_code);
    if !accepted {
        return (StatusCode::FORBIDDEN, "Forbidden").into_response();
    }
    let user_agent = headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    // A frame over 32 KB stops the parser; a message a little over 128 KB still parses. Either
    // way the reader closes with API Gateway's 1009.
    // Small buffers: tungstenite reads in 128 KiB chunks by default, which made each idle
    // connection cost ~150 KB; messages are written one at a time by the writer task anyway.
    ws.max_frame_size(MAX_FRAME_BYTES)
        .max_message_size(MAX_POST_BYTES * 2)
        .read_buffer_size(IDLE_READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .on_upgrade(move |socket| serve(api, socket, connection_id, connected_at, user_agent, authorizer))
}

async fn serve(
    api: Arc<WebSocketApi>,
    socket: WebSocket,
    connection_id: String,
    connected_at: i64,
    user_agent: String,
    authorizer: AuthorizerFields,
) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let last_active_at = Arc::new(AtomicU64::new(connected_at as u64));
    let queued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let shutdown = Arc::new(tokio::sync::Notify::new());
    if let Ok(mut connections) = api.connections.lock() {
        connections.insert(
            connection_id.clone(),
            Connection {
                tx: tx.clone(),
                queued: queued.clone(),
                shutdown: shutdown.clone(),
                connected_at,
                last_active_at: last_active_at.clone(),
                source_ip: "127.0.0.1".into(),
                user_agent,
                authorizer: authorizer.clone(),
            },
        );
    }
    let mut writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            let result = match out {
                Outgoing::Text(text) => {
                    let size = text.len();
                    let sent = sink.send(Message::Text(text.into())).await;
                    queued.fetch_sub(size, Ordering::Relaxed);
                    sent
                }
                Outgoing::Close(frame) => {
                    let frame =
                        frame.map(|(code, reason)| axum::extract::ws::CloseFrame { code, reason: reason.into() });
                    let _ = sink.send(Message::Close(frame)).await;
                    break;
                }
            };
            if result.is_err() {
                break;
            }
        }
    });

    let mut close_code: i64 = 1006;
    let mut too_big = false;
    let mut shut_down = false;
    let mut going_away = false;
    let limits = api.limits.lock().map(|l| *l).unwrap_or_default();
    let opened = tokio::time::Instant::now();
    let mut last_data = opened;
    loop {
        let frame = tokio::select! {
            frame = stream.next() => frame,
            _ = shutdown.notified() => {
                shut_down = true;
                break;
            }
            _ = tokio::time::sleep_until((last_data + limits.idle).min(opened + limits.max_age)) => {
                going_away = true;
                break;
            }
        };
        let Some(frame) = frame else { break };
        let body = match frame {
            Ok(Message::Text(text)) => text.to_string(),
            Ok(Message::Binary(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            Ok(Message::Close(frame)) => {
                close_code = frame.map(|f| i64::from(f.code)).unwrap_or(1005);
                break;
            }
            Ok(_) => continue,
            // A frame or message far over the limits: the parser refused it.
            Err(e) => {
                too_big = e.to_string().contains("Space limit exceeded");
                break;
            }
        };
        if body.len() > MAX_POST_BYTES {
            too_big = true;
            break;
        }
        last_data = tokio::time::Instant::now();
        last_active_at.store(mcpush_core::now_ms(), Ordering::Relaxed);
        let route = api.route_for(&body);
        let mut event = api.event(&route, "MESSAGE", &connection_id, connected_at, &authorizer);
        event.request_context.message_id = Some(new_id());
        event.body = Some(body);
        api.invoke(event).await;
    }
    if too_big {
        close_code = 1009;
        api.counters.closed_for_limits.fetch_add(1, Ordering::Relaxed);
        let _ = tx.send(Outgoing::Close(Some((1009, "Message too big"))));
    }
    if going_away {
        close_code = 1001;
        let _ = tx.send(Outgoing::Close(Some((1001, "Going away"))));
    }
    if too_big || shut_down || going_away {
        // Give the close frame a moment behind what is queued, then drop the socket anyway.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), &mut writer).await;
    }

    // Still registered means the client left on its own: API Gateway runs $disconnect.
    let was_registered = api.connections.lock().ok().and_then(|mut c| c.remove(&connection_id)).is_some();
    writer.abort();
    if was_registered {
        api.invoke(api.disconnect_event(&connection_id, connected_at, &authorizer, close_code, "")).await;
    }
}

fn management_error(status: StatusCode, kind: &'static str, message: &str) -> Response {
    let mut response = (status, axum::Json(json!({"message": message}))).into_response();
    response.headers_mut().insert("x-amzn-errortype", axum::http::HeaderValue::from_static(kind));
    response
}

async fn management(
    State(api): State<Arc<WebSocketApi>>,
    Path(id): Path<String>,
    method: axum::http::Method,
    body: Bytes,
) -> Response {
    // The throttle counts a call when it arrives; the answer, whatever it is, comes a round trip later.
    let _in_flight = (method == axum::http::Method::POST).then(|| InFlight::new(&api.counters));
    let throttles = api.throttles();
    let throttled = method == axum::http::Method::POST && throttles.posts.as_ref().is_some_and(|bucket| !bucket.take());
    let latency = throttles.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if throttled {
        api.counters.posts.fetch_add(1, Ordering::Relaxed);
        api.counters.throttled.fetch_add(1, Ordering::Relaxed);
        return management_error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException", "Too Many Requests");
    }
    respond(&api, &id, method, body)
}

fn respond(api: &Arc<WebSocketApi>, id: &str, method: axum::http::Method, body: Bytes) -> Response {
    use axum::http::Method;
    match method {
        Method::POST => {
            api.counters.posts.fetch_add(1, Ordering::Relaxed);
            let ppm = api.fault_ppm.load(Ordering::Relaxed);
            if ppm > 0 && fastrand::u32(0..1_000_000) < ppm {
                api.counters.faults.fetch_add(1, Ordering::Relaxed);
                return if fastrand::bool() {
                    management_error(StatusCode::TOO_MANY_REQUESTS, "LimitExceededException", "Rate exceeded")
                } else {
                    management_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "InternalServerErrorException",
                        "Internal server error",
                    )
                };
            }
            if body.len() > MAX_POST_BYTES {
                return management_error(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLargeException", "Message too long");
            }
            let sent = api.connections.lock().ok().and_then(|c| {
                c.get(id).map(|conn| {
                    let waiting = conn.queued.fetch_add(body.len(), Ordering::Relaxed) + body.len();
                    if waiting > MAX_QUEUED_BYTES {
                        conn.queued.fetch_sub(body.len(), Ordering::Relaxed);
                        return None;
                    }
                    api.counters.max_queued_bytes.fetch_max(waiting as u64, Ordering::Relaxed);
                    Some(conn.tx.send(Outgoing::Text(String::from_utf8_lossy(&body).into_owned())).is_ok())
                })
            });
            if sent == Some(None) {
                // The reader is too slow: close it as API Gateway closes a connection it gives up on.
                let removed = api.connections.lock().ok().and_then(|mut c| c.remove(id));
                if let Some(connection) = removed {
                    tracing::warn!(connection_id = %id, "closing a reader too slow to take its messages (1008)");
                    api.counters.closed_for_limits.fetch_add(1, Ordering::Relaxed);
                    let _ = connection.tx.send(Outgoing::Close(Some((1008, "Reader too slow"))));
                    connection.shutdown.notify_one();
                    let event = api.disconnect_event(
                        id,
                        connection.connected_at,
                        &connection.authorizer,
                        1008,
                        "Reader too slow",
                    );
                    let api = api.clone();
                    tokio::spawn(async move { api.invoke(event).await });
                }
                api.counters.gone.fetch_add(1, Ordering::Relaxed);
                return management_error(StatusCode::GONE, "GoneException", "");
            }
            if sent == Some(Some(true)) {
                api.counters.delivered.fetch_add(1, Ordering::Relaxed);
                StatusCode::OK.into_response()
            } else {
                api.counters.gone.fetch_add(1, Ordering::Relaxed);
                management_error(StatusCode::GONE, "GoneException", "")
            }
        }
        Method::GET => {
            let info = api.connections.lock().ok().and_then(|c| {
                c.get(id).map(|conn| {
                    json!({
                        "connectedAt": iso8601(conn.connected_at as u64),
                        "lastActiveAt": iso8601(conn.last_active_at.load(Ordering::Relaxed)),
                        "identity": {"sourceIp": conn.source_ip, "userAgent": conn.user_agent}
                    })
                })
            });
            match info {
                Some(info) => axum::Json(info).into_response(),
                None => management_error(StatusCode::GONE, "GoneException", ""),
            }
        }
        Method::DELETE => {
            // API Gateway closes the socket and runs $disconnect itself, whatever the client does.
            let removed = api.connections.lock().ok().and_then(|mut c| c.remove(id));
            match removed {
                Some(connection) => {
                    let _ = connection.tx.send(Outgoing::Close(None));
                    let event = api.disconnect_event(
                        id,
                        connection.connected_at,
                        &connection.authorizer,
                        1000,
                        "Connection deleted",
                    );
                    let api = api.clone();
                    tokio::spawn(async move { api.invoke(event).await });
                    StatusCode::NO_CONTENT.into_response()
                }
                None => management_error(StatusCode::GONE, "GoneException", ""),
            }
        }
        _ => management_error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "use POST, GET or DELETE"),
    }
}

/// Epoch milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn iso8601(epoch_ms: u64) -> String {
    let (year, month, day, h, m, s, ms) = civil(epoch_ms);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
}

/// Epoch milliseconds → (year, month, day, hour, minute, second, millisecond), UTC.
fn civil(epoch_ms: u64) -> (i64, i64, i64, u64, u64, u64, u64) {
    let (secs, ms) = (epoch_ms / 1000, epoch_ms % 1000);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, h, m, s, ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_times_look_like_api_gateways() {
        let id = new_id();
        assert_eq!(id.len(), 16);
        assert!(id.ends_with('='));
        assert_eq!(iso8601(1_731_324_924_553), "2024-11-11T11:35:24.553Z");
        assert_eq!(request_time(1_731_324_924_553), "11/Nov/2024:11:35:24 +0000");
    }
}
