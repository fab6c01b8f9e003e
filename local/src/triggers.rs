//! What invokes the functions besides callers: S3 notifications (create-job), EventBridge
//! (progress-ingest), the status table's stream (progress-push, see [`crate::stream`]) and the
//! embedded store's TTL sweep. Each typed event is serialized as Lambda delivers it.

use std::sync::Weak;
use std::time::Duration;

use aws_lambda_events::s3::S3Event;
use mcpush_core::adapters::memory::MemoryJobStore;
use mcpush_core::domain::MediaConvertEvent;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::stack::Stack;

/// How often the embedded store deletes expired items (DynamoDB does it within a few days).
pub const TTL_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// S3 invokes create-job asynchronously; a failed invocation is retried twice, as Lambda does
/// for asynchronous invocations.
pub async fn deliver_s3_notifications(stack: Stack, mut notifications: UnboundedReceiver<S3Event>) {
    while let Some(event) = notifications.recv().await {
        let stack = stack.clone();
        let event = serde_json::to_value(event).unwrap_or_default();
        tokio::spawn(async move {
            for attempt in 0..3u32 {
                match stack.create_job(&event).await {
                    Ok(_) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, attempt, "create-job failed");
                        tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                    }
                }
            }
        });
    }
}

/// EventBridge invokes progress-ingest once per event, concurrently.
pub async fn deliver_eventbridge_events(stack: Stack, mut events: UnboundedReceiver<MediaConvertEvent>) {
    while let Some(event) = events.recv().await {
        let stack = stack.clone();
        let event = serde_json::to_value(event).unwrap_or_default();
        tokio::spawn(async move {
            if let Err(e) = stack.progress_ingest(&event).await {
                tracing::warn!(error = %e, "progress-ingest rejected an event");
            }
        });
    }
}

/// The embedded store's TTL: every `every`, expired status items are deleted (REMOVE records
/// made by the service). Ends when the store is dropped.
pub async fn sweep_expired(jobs: Weak<MemoryJobStore>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        let Some(jobs) = jobs.upgrade() else { return };
        match jobs.expire(mcpush_core::now_ms() / 1000) {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "TTL deleted status items"),
            Err(e) => tracing::warn!(error = %e, "TTL sweep failed"),
        }
    }
}
