//! `ws-connect`, `ws-disconnect` and `ws-message`: the WebSocket API's routes.
//!
//! Replies go back through the Management API (not as route responses), so a client always sees
//! `subscribed` before the snapshot that follows it: the file's `status`, or for a prefix the
//! `status` of each recently active file under it (one `statuses` message when batched).

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use futures::StreamExt;

use crate::config::WsConfig;
use crate::domain::AllowedOrigins;
use crate::domain::OutputBaseUrl;
use crate::domain::identity::{SUB_CLAIM, Subject};
use crate::domain::protocol::{ClientMessage, MAX_MESSAGE_BYTES, ServerMessage, StatusUpdate, statuses_messages};
use crate::domain::token::TokenError;
use crate::domain::topic::{MAX_SNAPSHOT_FILES, Topic};
use crate::metrics::{self, WS_MESSAGE};
use crate::ports::{JobStore, PushError, Pusher, StoreError, SubscribeOutcome, SubscriptionStore};
use crate::service::post_with_retry;

/// What `ws-message` needs.
pub struct WsContext<'a> {
    jobs: &'a dyn JobStore,
    subscriptions: &'a dyn SubscriptionStore,
    pusher: &'a dyn Pusher,
    config: &'a WsConfig,
}

impl<'a> WsContext<'a> {
    pub fn new(
        jobs: &'a dyn JobStore,
        subscriptions: &'a dyn SubscriptionStore,
        pusher: &'a dyn Pusher,
        config: &'a WsConfig,
    ) -> Self {
        WsContext { jobs, subscriptions, pusher, config }
    }
}

fn response(status: i64, body: Option<&str>) -> ApiGatewayProxyResponse {
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = status;
    r.body = body.map(|b| Body::Text(b.to_owned()));
    r
}

fn expires_at(event: &ApiGatewayWebsocketProxyRequest, config: &WsConfig, now_ms: u64) -> u64 {
    let connected_ms = u64::try_from(event.request_context.connected_at).ok().filter(|&ms| ms > 0).unwrap_or(now_ms);
    connected_ms / 1000 + config.connection_ttl_secs
}

/// `$connect`: refuses a foreign `Origin` with 403 (API Gateway then refuses the upgrade) and
/// records the connection with its expiry.
pub async fn connect(
    origins: &AllowedOrigins,
    subscriptions: &dyn SubscriptionStore,
    config: &WsConfig,
    event: &ApiGatewayWebsocketProxyRequest,
    now_ms: u64,
) -> ApiGatewayProxyResponse {
    let origin = event.headers.get("origin").and_then(|v| v.to_str().ok());
    if !origins.allows_all(crate::domain::origin::origin_values(&event.headers)) {
        tracing::info!(origin, "connection refused: origin not allowed");
        return response(403, Some("Origin is not allowed."));
    }
    let Some(connection_id) = event.request_context.connection_id.as_deref() else {
        return response(400, Some("requestContext.connectionId is missing."));
    };
    match subscriptions.add_connection(connection_id, expires_at(event, config, now_ms)).await {
        Ok(()) => response(200, None),
        Err(e) => {
            tracing::error!(connection_id, error = %e, "could not record connection");
            response(500, Some("Internal error."))
        }
    }
}

/// `$disconnect`: forgets the connection and its subscriptions (best effort on AWS; TTL and 410
/// handling clean up whatever it misses).
pub async fn disconnect(
    subscriptions: &dyn SubscriptionStore,
    event: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    let Some(connection_id) = event.request_context.connection_id.as_deref() else {
        return response(400, Some("requestContext.connectionId is missing."));
    };
    let context = &event.request_context;
    if context.connected_at > 0 && context.request_time_epoch >= context.connected_at {
        let minutes = (context.request_time_epoch - context.connected_at) as f64 / 60_000.0;
        crate::metrics::WS_DISCONNECT.sample(crate::metrics::CONNECTION_MINUTES, minutes);
    }
    match subscriptions.remove_connection(connection_id).await {
        Ok(removed) => {
            tracing::info!(connection_id, removed, "disconnected");
            response(200, None)
        }
        Err(e) => {
            tracing::error!(connection_id, error = %e, "could not remove connection");
            response(500, Some("Internal error."))
        }
    }
}

/// `subscribe`, `unsubscribe`, `ping` and `$default`. Always answers 200: protocol errors are
/// reported to the client as `error` messages and the connection stays open.
pub async fn message(
    ctx: &WsContext<'_>,
    event: &ApiGatewayWebsocketProxyRequest,
    now_ms: u64,
) -> ApiGatewayProxyResponse {
    let Some(connection_id) = event.request_context.connection_id.as_deref() else {
        return response(400, Some("requestContext.connectionId is missing."));
    };
    let body = event.body.as_deref().unwrap_or_default();
    let replies = match ClientMessage::parse(body) {
        Ok(message) => answer(ctx, event, connection_id, message, now_ms).await,
        Err(e) => vec![ServerMessage::error(e.to_string()).to_json()],
    };
    // The answer first; then the snapshot's messages (a prefix's can be 100 `status` messages),
    // several in flight, so a slow API cannot run the function out of time.
    let mut replies = replies.into_iter();
    let post = |reply: String| async move {
        post_with_retry(ctx.pusher, &ctx.config.retry, WS_MESSAGE, connection_id, reply.as_bytes()).await
    };
    let mut failures = match replies.next() {
        Some(answer) => post(answer).await.err().into_iter().collect::<Vec<_>>(),
        None => Vec::new(),
    };
    if failures.is_empty() {
        let results: Vec<Result<(), PushError>> =
            futures::stream::iter(replies).map(post).buffered(SNAPSHOT_POSTS).collect().await;
        failures.extend(results.into_iter().filter_map(Result::err));
    }
    for e in &failures {
        tracing::warn!(connection_id, error = %e, "reply not delivered");
    }
    if failures.iter().any(|e| matches!(e, PushError::Gone)) {
        let _ = ctx.subscriptions.remove_connection(connection_id).await;
    }
    response(200, None)
}

/// Snapshot messages ws-message has in flight.
const SNAPSHOT_POSTS: usize = 16;

/// The messages that answer `message`, in the order they are sent.
async fn answer(
    ctx: &WsContext<'_>,
    event: &ApiGatewayWebsocketProxyRequest,
    connection_id: &str,
    message: ClientMessage,
    now_ms: u64,
) -> Vec<String> {
    let internal = |e: crate::ports::StoreError| {
        tracing::error!(connection_id, error = %e, "store failed");
        vec![ServerMessage::error("internal error, try again").to_json()]
    };
    match message {
        ClientMessage::Ping => vec![ServerMessage::Pong.to_json()],
        ClientMessage::Unsubscribe { topic } => {
            match ctx.subscriptions.unsubscribe(connection_id, topic.as_str()).await {
                Ok(_) => vec![ServerMessage::Unsubscribed { topic }.to_json()],
                Err(e) => internal(e),
            }
        }
        ClientMessage::Subscribe { topic, token, batch } => {
            let reader = signed_in(event);
            if let Err(e) = ctx.config.access.check_as(
                reader.as_ref(),
                &ctx.config.home_prefix,
                topic.as_str(),
                token.as_deref(),
                now_ms / 1000,
            ) {
                WS_MESSAGE.count(metrics::SUBSCRIPTIONS_REFUSED, 1);
                let message = match (&topic, e) {
                    (Topic::Prefix(_), TokenError::Mismatch) => "\"token\" does not cover this prefix".to_owned(),
                    (_, e) => e.to_string(),
                };
                return vec![ServerMessage::Error { message, topic: Some(topic) }.to_json()];
            }
            let expires = expires_at(event, ctx.config, now_ms);
            match ctx
                .subscriptions
                .subscribe(connection_id, topic.as_str(), expires, ctx.config.max_subscriptions, batch)
                .await
            {
                Ok(SubscribeOutcome::LimitReached) => {
                    WS_MESSAGE.count(metrics::SUBSCRIPTIONS_REFUSED, 1);
                    let message = format!(
                        "subscription limit reached: at most {} files or prefixes per connection",
                        ctx.config.max_subscriptions
                    );
                    vec![ServerMessage::Error { message, topic: Some(topic) }.to_json()]
                }
                Ok(_) => {
                    WS_MESSAGE.count(metrics::SUBSCRIPTIONS_ADDED, 1);
                    let base = ctx.config.output_base_url.as_ref();
                    let snapshot = match &topic {
                        Topic::File(file) => snapshot(ctx.jobs, file, base).await.map(|s| s.into_iter().collect()),
                        Topic::Prefix(folder) => {
                            prefix_snapshot(ctx.jobs, ctx.subscriptions, folder, now_ms / 1000, base).await
                        }
                    };
                    let mut replies = vec![ServerMessage::Subscribed { topic }.to_json()];
                    match snapshot {
                        Ok(updates) => replies.extend(snapshot_messages(updates, batch)),
                        Err(e) => tracing::error!(connection_id, error = %e, "snapshot failed"),
                    }
                    replies
                }
                Err(e) => internal(e),
            }
        }
    }
}

/// A snapshot as a batched connection takes it (`statuses` messages below 128 KB) or as one
/// `status` message per file.
fn snapshot_messages(updates: Vec<StatusUpdate>, batch: bool) -> Vec<String> {
    if batch {
        let updates: Vec<String> = updates.iter().map(|u| serde_json::to_string(u).unwrap_or_default()).collect();
        statuses_messages(&updates, MAX_MESSAGE_BYTES).into_iter().map(|(message, _)| message).collect()
    } else {
        updates.into_iter().map(|u| ServerMessage::Status(Box::new(u)).to_json()).collect()
    }
}

/// The user the connection was opened as: the `sub` the `$connect` authorizer put in its context,
/// which API Gateway passes to every route of the connection.
fn signed_in(event: &ApiGatewayWebsocketProxyRequest) -> Option<Subject> {
    event
        .request_context
        .authorizer
        .fields
        .get(SUB_CLAIM)
        .and_then(serde_json::Value::as_str)
        .and_then(|sub| Subject::parse(sub).ok())
}

/// The current state of a file's newest job (read strongly consistent).
pub async fn snapshot(
    jobs: &dyn JobStore,
    input_file: &str,
    base: Option<&OutputBaseUrl>,
) -> Result<Option<StatusUpdate>, StoreError> {
    Ok(jobs.newest_job_consistent(input_file).await?.map(|record| StatusUpdate::new(input_file, &record, base)))
}

/// The current state of every file under `folder` that is still in progress or finished in the
/// last ten minutes: at most [`MAX_SNAPSHOT_FILES`], the file with the newest job first, each its
/// newest job read strongly consistent. The files come from the folder index progress-push keeps
/// ([`SubscriptionStore::recent_files`]), never from a Scan.
pub async fn prefix_snapshot(
    jobs: &dyn JobStore,
    subscriptions: &dyn SubscriptionStore,
    folder: &str,
    now_secs: u64,
    base: Option<&OutputBaseUrl>,
) -> Result<Vec<StatusUpdate>, StoreError> {
    let files = subscriptions.recent_files(folder, now_secs, MAX_SNAPSHOT_FILES).await?;
    let found: Vec<Result<Option<StatusUpdate>, StoreError>> = futures::stream::iter(files)
        .map(|file| async move { snapshot(jobs, &file, base).await })
        .buffered(SNAPSHOT_READS)
        .collect()
        .await;
    Ok(found.into_iter().collect::<Result<Vec<_>, _>>()?.into_iter().flatten().collect())
}

/// Job reads a prefix snapshot has in flight.
const SNAPSHOT_READS: usize = 16;
