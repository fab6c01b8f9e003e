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

mod api;
mod connections;
mod limits;
mod management;

pub use api::{Counters, WebSocketApi, WsBackend};
pub use limits::{
    ConnectionLimits, IDLE_READ_BUFFER_BYTES, MAX_FRAME_BYTES, MAX_POST_BYTES, MAX_QUEUED_BYTES, Rate, RequestLimits,
};

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get};

impl WebSocketApi {
    /// `GET /ws` (the WebSocket endpoint) and `/@connections/{id}` (the Management API).
    pub fn router(self: &Arc<Self>) -> Router {
        self.websocket_router("/ws")
            .merge(Router::new().route("/@connections/{id}", any(management::management)).with_state(self.clone()))
    }

    /// The WebSocket endpoint alone, at `path` (API Gateway serves it at `/{stage}`).
    pub fn websocket_router(self: &Arc<Self>, path: &str) -> Router {
        Router::new().route(path, get(connections::upgrade)).with_state(self.clone())
    }
}
