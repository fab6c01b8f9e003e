//! What keeps web pages out of the local stack.
//!
//! - DNS rebinding: every route answers 421 unless `Host` is `127.0.0.1`, `[::1]` or `localhost`
//!   (any port), so a page whose name resolves to 127.0.0.1 cannot read or drive the stack.
//! - Ambiguous requests: a `Host` or an `Origin` sent twice answers 400 on every route, so no
//!   check can pass on the first value while something else reads the second.
//! - Cross-site requests: the routes that act on a request alone — the Invoke API, simulated S3
//!   writes, the simulated MediaConvert, EventBridge (`/eventbridge`) and the Management API
//!   (`/@connections`), and the job events kept (`/_local/events`) — answer 403 to
//!   a request whose `Origin` is not allowed (`ALLOWED_ORIGINS`), whatever its content type, so a
//!   "simple" `text/plain` POST that needs no preflight is refused too. Requests without `Origin`
//!   (CLIs, SDKs, curl) pass. An unreadable `Origin` is refused, and every one of several values
//!   must be allowed ([`AllowedOrigins::allows_all`]). The REST routes and `$connect` check the
//!   Origin in their handlers, as on AWS.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mcpush_core::domain::AllowedOrigins;
use mcpush_core::domain::origin::origin_values;
use serde_json::json;

/// The router with both checks in front of every route.
pub fn guarded(router: Router, origins: Arc<AllowedOrigins>) -> Router {
    router.layer(axum::middleware::from_fn_with_state(origins, guard))
}

async fn guard(State(origins): State<Arc<AllowedOrigins>>, request: Request, next: Next) -> Response {
    if let Some(name) = repeated_header(request.headers()) {
        // Which of two values would a handler read? Neither: a proxy or a client that sends two
        // is refused before any check could read only the first.
        tracing::warn!(header = name, path = request.uri().path(), "refused: header sent more than once");
        let message = format!("{name} must be sent once");
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"message": message}))).into_response();
    }
    if !is_local_host(request.headers()) {
        let host = request.headers().get(header::HOST).map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned());
        tracing::warn!(host, path = request.uri().path(), "refused: not a loopback Host");
        let message = "this local stack answers only to Host 127.0.0.1, [::1] or localhost";
        return (StatusCode::MISDIRECTED_REQUEST, axum::Json(json!({"message": message}))).into_response();
    }
    if acts_alone(request.method(), request.uri().path()) && !origins.allows_all(origin_values(request.headers())) {
        tracing::warn!(path = request.uri().path(), "refused: Origin not allowed");
        let message = "Origin is not allowed (ALLOWED_ORIGINS)";
        return (StatusCode::FORBIDDEN, axum::Json(json!({"message": message}))).into_response();
    }
    next.run(request).await
}

/// `Host` or `Origin` when the request carries it more than once.
pub fn repeated_header(headers: &HeaderMap) -> Option<&'static str> {
    [(header::HOST, "Host"), (header::ORIGIN, "Origin")]
        .into_iter()
        .find(|(name, _)| headers.get_all(name).iter().nth(1).is_some())
        .map(|(_, shown)| shown)
}

/// `Host` names the loopback interface: `127.0.0.1`, `[::1]` or `localhost`, with any port.
pub fn is_local_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else { return false };
    let name = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((inside, port)) if port.is_empty() || is_port(port) => return inside == "::1",
            _ => return false,
        },
        None => match host.rsplit_once(':') {
            Some((name, port)) if is_port(port) => name,
            Some(_) => return false,
            None => host,
        },
    };
    name == "127.0.0.1" || name.eq_ignore_ascii_case("localhost")
}

fn is_port(suffix: &str) -> bool {
    suffix.strip_prefix(':').unwrap_or(suffix).parse::<u16>().is_ok()
}

/// Routes that change state on a request alone (reads of S3 objects and preflights excepted).
fn acts_alone(method: &Method, path: &str) -> bool {
    let s3_write = path.starts_with("/s3/") && !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    s3_write
        || ["/2015-03-31/functions/", "/2017-08-29/", "/@connections/", "/eventbridge"]
            .iter()
            .any(|prefix| path.starts_with(prefix))
        || path == "/_local/events"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, value.parse().unwrap());
        headers
    }

    #[test]
    fn only_loopback_hosts_are_local() {
        for local in ["127.0.0.1", "127.0.0.1:3000", "localhost", "LOCALHOST:8080", "[::1]", "[::1]:3000"] {
            assert!(is_local_host(&host(local)), "{local}");
        }
        for foreign in [
            "evil.example",
            "evil.example:3000",
            "127.0.0.1.evil.example",
            "localhost.",
            "[::2]:3000",
            "127.0.0.2:3000",
            "localhost:x",
            "[::1]x",
            "",
        ] {
            assert!(!is_local_host(&host(foreign)), "{foreign}");
        }
        assert!(!is_local_host(&HeaderMap::new()));
    }

    #[test]
    fn a_host_or_origin_sent_twice_is_named() {
        let mut headers = host("127.0.0.1:3000");
        assert_eq!(repeated_header(&headers), None);
        headers.insert(header::ORIGIN, "http://127.0.0.1:3000".parse().unwrap());
        assert_eq!(repeated_header(&headers), None);
        headers.append(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert_eq!(repeated_header(&headers), Some("Origin"));
        let mut hosts = host("127.0.0.1");
        hosts.append(header::HOST, "evil.example".parse().unwrap());
        assert_eq!(repeated_header(&hosts), Some("Host"));
    }
}
