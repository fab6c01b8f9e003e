//! What invokes the functions besides callers: S3 notifications (create-job), EventBridge
//! (progress-ingest), the status table's stream (progress-push, see [`crate::aws::stream`]), the
//! reconciler's schedule and the embedded store's TTL sweep. Each typed event is serialized as Lambda delivers it.

use std::sync::Weak;
use std::time::Duration;

use aws_lambda_events::s3::S3Event;
use mcpush_core::adapters::memory::MemoryJobStore;
use mcpush_core::domain::MediaConvertEvent;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::run::stack::Stack;

/// How often the embedded store deletes expired items (DynamoDB does it within a few days).
pub const TTL_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Attempts of an asynchronous invocation: the first and Lambda's two retries.
pub const ASYNC_ATTEMPTS: u32 = 3;

/// Invokes `function` as Lambda invokes a function asynchronously: a failed invocation is
/// retried twice (after 200 ms and 400 ms here; about 1 and 2 minutes on AWS), then given up and
/// logged, where on AWS it would go to the function's failure queue.
async fn invoke_async<T, E, F>(function: &'static str, invoke: impl Fn() -> F)
where
    E: std::fmt::Display,
    F: std::future::Future<Output = Result<T, E>>,
{
    for attempt in 1..=ASYNC_ATTEMPTS {
        match invoke().await {
            Ok(_) => return,
            Err(e) if attempt < ASYNC_ATTEMPTS => {
                tracing::warn!(function, error = %e, attempt, "invocation failed; retrying");
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
            Err(e) => {
                tracing::error!(function, error = %e, attempt, "invocation failed after Lambda's retries; on AWS the event goes to the failure queue")
            }
        }
    }
}

/// S3 invokes create-job asynchronously, once per notification.
pub async fn deliver_s3_notifications(stack: Stack, mut notifications: UnboundedReceiver<S3Event>) {
    while let Some(event) = notifications.recv().await {
        let stack = stack.clone();
        let event = serde_json::to_value(event).unwrap_or_default();
        tokio::spawn(async move { invoke_async("create-job", || stack.create_job(&event)).await });
    }
}

/// EventBridge invokes progress-ingest asynchronously, once per event, concurrently.
pub async fn deliver_eventbridge_events(stack: Stack, mut events: UnboundedReceiver<MediaConvertEvent>) {
    while let Some(event) = events.recv().await {
        let stack = stack.clone();
        let event = serde_json::to_value(event).unwrap_or_default();
        tokio::spawn(async move { invoke_async("progress-ingest", || stack.progress_ingest(&event)).await });
    }
}

/// The reconciler's schedule (an EventBridge rule on AWS): one run every `every`, never two at once.
pub async fn schedule_reconcile(stack: Stack, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        // Each run on a task of its own: whatever one run meets, the schedule goes on.
        let run = stack.clone();
        match tokio::spawn(async move { run.reconcile().await }).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "reconcile failed; the next run tries again"),
            Err(e) => tracing::error!(error = %e, "a reconcile run panicked; the next run goes on"),
        }
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
