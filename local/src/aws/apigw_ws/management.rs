//! The Management API: `POST` / `GET` / `DELETE /@connections/{id}`, as the SDK calls it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::api::{InFlight, Outgoing, WebSocketApi, iso8601};
use super::limits::{MAX_POST_BYTES, MAX_QUEUED_BYTES};

fn management_error(status: StatusCode, kind: &'static str, message: &str) -> Response {
    let mut response = (status, axum::Json(json!({"message": message}))).into_response();
    response.headers_mut().insert("x-amzn-errortype", axum::http::HeaderValue::from_static(kind));
    response
}

pub(super) async fn management(
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
            // Counted as the socket will take it off the queue: the text after the lossy
            // conversion, which may be longer than the bytes posted.
            let text = String::from_utf8_lossy(&body).into_owned();
            let size = text.len();
            let sent = api.connections.lock().ok().and_then(|c| {
                c.get(id).map(|conn| {
                    let waiting = conn.queued.fetch_add(size, Ordering::Relaxed) + size;
                    if waiting > MAX_QUEUED_BYTES {
                        conn.queued.fetch_sub(size, Ordering::Relaxed);
                        return None;
                    }
                    api.counters.max_queued_bytes.fetch_max(waiting as u64, Ordering::Relaxed);
                    Some(conn.tx.send(Outgoing::Text(text)).is_ok())
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
                api.billing().websocket_message(size);
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
