//! The emulated API: its connections, the events it sends the integrations, counters.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayCustomAuthorizerResponse, ApiGatewayProxyResponse,
    ApiGatewayWebsocketProxyRequest, ApiGatewayWebsocketProxyRequestContext,
};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use serde_json::Value;
use tokio::sync::mpsc;

use mcpush_core::domain::identity::IdentityError;

use super::limits::{ConnectionLimits, RequestLimits, Throttles};

/// What an authorizer's answer puts in `requestContext.authorizer`: `principalId` and the context.
pub(super) type AuthorizerFields = HashMap<String, Value>;

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

pub(super) enum Outgoing {
    Text(String),
    /// A close frame, with a code and reason or none.
    Close(Option<(u16, &'static str)>),
}

pub(super) struct Connection {
    pub(super) tx: mpsc::UnboundedSender<Outgoing>,
    /// Bytes posted to this connection and not yet written to its socket.
    pub(super) queued: Arc<std::sync::atomic::AtomicUsize>,
    /// Tells the connection's task to drop the socket (a reader too slow to take its messages).
    pub(super) shutdown: Arc<tokio::sync::Notify>,
    pub(super) connected_at: i64,
    pub(super) last_active_at: Arc<AtomicU64>,
    pub(super) source_ip: String,
    pub(super) user_agent: String,
    pub(super) authorizer: AuthorizerFields,
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
pub(super) struct InFlight<'a>(&'a Counters);

impl<'a> InFlight<'a> {
    pub(super) fn new(counters: &'a Counters) -> Self {
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
    pub(super) backend: Arc<dyn WsBackend>,
    pub(super) routes: Vec<String>,
    pub(super) stage: String,
    pub(super) domain: String,
    pub(super) connections: Mutex<HashMap<String, Connection>>,
    /// Share of posts answering 429 / 500, in parts per million.
    pub(super) fault_ppm: AtomicU32,
    pub(super) limits: Mutex<ConnectionLimits>,
    pub(super) throttles: std::sync::RwLock<Arc<Throttles>>,
    pub counters: Counters,
    billing: Mutex<Arc<crate::aws::billing::Billing>>,
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
            billing: Mutex::new(Arc::default()),
        })
    }

    /// Where its messages and connection minutes are billed (by default a meter of its own).
    pub fn set_billing(&self, billing: Arc<crate::aws::billing::Billing>) {
        if let Ok(mut meter) = self.billing.lock() {
            *meter = billing;
        }
    }

    pub(super) fn billing(&self) -> Arc<crate::aws::billing::Billing> {
        self.billing.lock().map(|b| b.clone()).unwrap_or_default()
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

    pub(super) fn throttles(&self) -> Arc<Throttles> {
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
    pub(super) fn event(
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

    pub(super) fn disconnect_event(
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

    pub(super) fn route_for(&self, body: &str) -> String {
        serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| v.get("action").and_then(Value::as_str).map(str::to_owned))
            .filter(|action| self.routes.iter().any(|r| r == action))
            .unwrap_or_else(|| "$default".to_owned())
    }

    /// Runs the `$connect` authorizer, if any, with the request API Gateway would send it:
    /// the fields for `requestContext.authorizer`, or the status that refuses the upgrade.
    pub(super) async fn authorize(
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

    pub(super) async fn invoke(&self, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
        match event.request_context.route_key.as_deref() {
            Some("$connect") => self.backend.connect(event).await,
            Some("$disconnect") => self.backend.disconnect(event).await,
            _ => self.backend.message(event).await,
        }
    }
}

/// 12 random bytes in base64: the shape of API Gateway's connection and request ids.
/// 11 random bytes in base64: the shape of API Gateway's request and message ids.
pub(super) fn new_id() -> String {
    let bytes: [u8; 11] = std::array::from_fn(|_| fastrand::u8(..));
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A connection id, shaped as [`new_id`]'s but from the operating system's secure generator:
/// an id is a capability (whoever knows it may post to the connection), as API Gateway's are
/// unguessable.
pub(super) fn new_connection_id() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 11];
    getrandom::fill(&mut bytes)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// API Gateway's `requestTime`: `11/Nov/2024:11:35:24 +0000`.
fn request_time(epoch_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(epoch_ms).unwrap_or_default().format("%d/%b/%Y:%H:%M:%S +0000").to_string()
}

/// Epoch milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub(super) fn iso8601(epoch_ms: u64) -> String {
    let time = chrono::DateTime::from_timestamp_millis(epoch_ms as i64).unwrap_or_default();
    time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_times_look_like_api_gateways() {
        let id = new_id();
        assert_eq!(id.len(), 16);
        let connection = new_connection_id().unwrap();
        assert_eq!((connection.len(), connection.ends_with('=')), (16, true));
        assert_ne!(connection, new_connection_id().unwrap());
        assert!(id.ends_with('='));
        assert_eq!(iso8601(1_731_324_924_553), "2024-11-11T11:35:24.553Z");
        assert_eq!(request_time(1_731_324_924_553), "11/Nov/2024:11:35:24 +0000");
    }
}
