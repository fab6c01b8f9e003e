//! The local stack's HTTP server: hyper, with what `axum::serve` cannot set, so no client can hold
//! a connection or a buffer open forever:
//! - a header read timeout ([`ServerLimits::header_read`]): a request whose headers do not arrive
//!   in time is answered by closing the connection;
//! - a body idle timeout ([`ServerLimits::body_idle`]): a body that sends nothing for that long
//!   fails; one that keeps sending is never cut, so a multi-GB upload goes through.
//!
//! WebSocket upgrades go through as with `axum::serve`.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::timeout::RequestBodyTimeoutLayer;

/// How long the server waits for a client (`HTTP_HEADER_TIMEOUT_S`, `HTTP_BODY_IDLE_TIMEOUT_S`:
/// 1 to 30 s, default 30).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    pub header_read: Duration,
    pub body_idle: Duration,
}

/// The longest either wait may be.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

impl Default for ServerLimits {
    fn default() -> Self {
        Self { header_read: MAX_WAIT, body_idle: MAX_WAIT }
    }
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let service = ServiceBuilder::new().layer(RequestBodyTimeoutLayer::new(limits.body_idle)).service(router);
    let mut connections = Builder::new(TokioExecutor::new());
    connections.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read);
    connections.http2().timer(TokioTimer::new());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let (connections, service) = (connections.clone(), TowerToHyperService::new(service.clone()));
        tokio::spawn(async move {
            if let Err(e) = connections.serve_connection_with_upgrades(TokioIo::new(stream), service).await {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
}
