//! The WebSocket side: the upgrade (authorizer, `$connect`, the connection rate), then each
//! connection's frames to its routes and posted messages to its socket, within the limits.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;

use super::api::{AuthorizerFields, Connection, Outgoing, WebSocketApi, new_connection_id, new_id};
use super::limits::{IDLE_READ_BUFFER_BYTES, MAX_FRAME_BYTES, MAX_POST_BYTES};
use crate::aws::http_api::query_params;

pub(super) async fn upgrade(
    State(api): State<Arc<WebSocketApi>>,
    headers: HeaderMap,
    uri: Uri,
    ws: WebSocketUpgrade,
) -> Response {
    if api.throttles().connects.as_ref().is_some_and(|bucket| !bucket.take()) {
        api.counters.connects_throttled.fetch_add(1, Ordering::Relaxed);
        return (StatusCode::TOO_MANY_REQUESTS, axum::Json(json!({"message": "Too Many Requests"}))).into_response();
    }
    let connection_id = match new_connection_id() {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(error = %e, "no secure random connection id; upgrade refused");
            return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({"message": "Internal server error"})))
                .into_response();
        }
    };
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
    let billing = api.billing();
    billing.websocket_opened(&connection_id);
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
        billing.websocket_message(body.len());
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

    billing.websocket_closed(&connection_id);
    // Still registered means the client left on its own: API Gateway runs $disconnect.
    let was_registered = api.connections.lock().ok().and_then(|mut c| c.remove(&connection_id)).is_some();
    writer.abort();
    if was_registered {
        api.invoke(api.disconnect_event(&connection_id, connected_at, &authorizer, close_code, "")).await;
    }
}
