//! `progress-push`: the status table's DynamoDB stream → every connection subscribed to the
//! changed job's input file.
//!
//! Per batch: REMOVE records (TTL deletions included) and records whose old and new images show
//! the same state push nothing; each job's newest state is pushed once; subscribers are looked up
//! once per file, and only for the file's newest job (a late event of an older job reaches
//! nobody). Posts run at bounded concurrency; 410 Gone drops the connection's subscriptions;
//! 429 / 5xx are retried with exponential backoff and full jitter, and a job still failing has
//! its records reported in `batchItemFailures` so Lambda retries only from there. A malformed
//! record is logged and skipped: retrying it could never succeed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_lambda_events::dynamodb::EventRecord;
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use futures::StreamExt;
use serde_json::Value;

use crate::config::PushConfig;
use crate::domain::protocol::ServerMessage;
use crate::domain::{JobPointer, JobRecord};
use crate::handlers::status_api::StatusView;
use crate::ports::{JobStore, PushError, Pusher, SubscriptionStore};

pub struct PushContext<'a> {
    pub jobs: &'a dyn JobStore,
    pub subscriptions: &'a dyn SubscriptionStore,
    pub pusher: &'a dyn Pusher,
    pub config: &'a PushConfig,
}

/// Counts for logs and benchmarks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushStats {
    pub records: usize,
    pub malformed: usize,
    pub unchanged: usize,
    pub jobs: usize,
    pub delivered: usize,
    pub gone: usize,
    pub failed: usize,
}

struct Change {
    record: JobRecord,
    sequence_numbers: Vec<String>,
}

/// The state a subscriber sees; two images with the same view are no change worth pushing.
fn view(record: &JobRecord) -> (Option<&str>, StatusView) {
    (record.input_file.as_deref(), StatusView::from(record))
}

fn parse_record(raw: &Value) -> Result<Option<(JobRecord, Option<String>)>, String> {
    let record: EventRecord = serde_path_to_error::deserialize(raw).map_err(|e| e.to_string())?;
    if record.event_name == "REMOVE" {
        return Ok(None);
    }
    let new: JobRecord = serde_dynamo::from_item(record.change.new_image).map_err(|e| format!("NewImage: {e}"))?;
    let old: Option<JobRecord> =
        if record.change.old_image.is_empty() { None } else { serde_dynamo::from_item(record.change.old_image).ok() };
    if old.as_ref().is_some_and(|old| view(old) == view(&new)) {
        return Ok(None);
    }
    Ok(Some((new, record.change.sequence_number)))
}

pub async fn handle(ctx: &PushContext<'_>, event: &Value, now_secs: u64) -> (DynamoDbEventResponse, PushStats) {
    let mut stats = PushStats::default();
    let records = event.get("Records").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    stats.records = records.len();

    // Newest state per job, in stream order.
    let mut changes: BTreeMap<String, Change> = BTreeMap::new();
    for (index, raw) in records.iter().enumerate() {
        match parse_record(raw) {
            Ok(Some((record, sequence_number))) => {
                let change = changes
                    .entry(record.job_id.clone())
                    .or_insert_with(|| Change { record: record.clone(), sequence_numbers: Vec::new() });
                change.record = record;
                change.sequence_numbers.extend(sequence_number);
            }
            Ok(None) => stats.unchanged += 1,
            Err(reason) => {
                stats.malformed += 1;
                tracing::warn!(index, reason, "malformed stream record skipped");
            }
        }
    }
    stats.jobs = changes.len();

    // One subscriber lookup per file; only the file's newest job is pushed.
    let mut by_file: BTreeMap<String, Vec<&Change>> = BTreeMap::new();
    for change in changes.values() {
        if let Some(file) = &change.record.input_file {
            by_file.entry(file.clone()).or_default().push(change);
        }
    }
    let mut failed_jobs: BTreeSet<String> = BTreeSet::new();
    let mut deliveries: Vec<(String, String, std::sync::Arc<str>)> = Vec::new(); // (job, connection, message)
    let files: Vec<String> = by_file.keys().cloned().collect();
    let lookups: Vec<_> = futures::stream::iter(files)
        .map(|file| async move {
            let found = async {
                Ok::<_, crate::ports::StoreError>((ctx.jobs.pointer(&file).await?, ctx.subscriptions.subscribers(&file, now_secs).await?))
            };
            let found = found.await;
            (file, found)
        })
        .buffer_unordered(ctx.config.concurrency.max(1))
        .collect()
        .await;
    for (file, found) in lookups {
        let Some(file_changes) = by_file.get(&file) else { continue };
        let file = &file;
        let (pointer, subscribers) = match found {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(input_file = %file, error = %e, "subscriber lookup failed");
                failed_jobs.extend(file_changes.iter().map(|c| c.record.job_id.clone()));
                continue;
            }
        };
        for change in file_changes {
            let record = &change.record;
            let candidate = JobPointer { input_file: file.clone(), job_id: record.job_id.clone(), job_order: record.job_order };
            if pointer.as_ref().is_some_and(|p| p.job_id != record.job_id && !candidate.supersedes(p)) {
                tracing::debug!(job_id = %record.job_id, "older job of its file: not pushed");
                continue;
            }
            let message: std::sync::Arc<str> =
                ServerMessage::Status { input_file: file.clone(), job_id: record.job_id.clone(), view: StatusView::from(record) }
                    .to_json()
                    .into();
            deliveries.extend(subscribers.iter().map(|c| (record.job_id.clone(), c.clone(), message.clone())));
        }
    }

    let results: Vec<(String, String, Result<(), PushError>)> = futures::stream::iter(deliveries)
        .map(|(job, connection, message)| async move {
            let result = post_with_retry(ctx.pusher, ctx.config, &connection, message.as_bytes()).await;
            (job, connection, result)
        })
        .buffer_unordered(ctx.config.concurrency.max(1))
        .collect()
        .await;

    let mut gone: BTreeSet<String> = BTreeSet::new();
    for (job, connection, result) in results {
        match result {
            Ok(()) => stats.delivered += 1,
            Err(PushError::Gone) => {
                stats.gone += 1;
                gone.insert(connection);
            }
            Err(PushError::Retryable(reason)) => {
                stats.failed += 1;
                tracing::warn!(job_id = %job, connection_id = %connection, reason, "push failed after retries");
                failed_jobs.insert(job);
            }
            Err(e) => {
                stats.failed += 1;
                tracing::warn!(job_id = %job, connection_id = %connection, error = %e, "push refused; not retried");
            }
        }
    }
    for connection in gone {
        if let Err(e) = ctx.subscriptions.remove_connection(&connection).await {
            tracing::warn!(connection_id = %connection, error = %e, "could not drop a gone connection");
        }
    }

    let mut response = DynamoDbEventResponse::default();
    for job in &failed_jobs {
        if let Some(change) = changes.get(job) {
            for sequence_number in &change.sequence_numbers {
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = Some(sequence_number.clone());
                response.batch_item_failures.push(failure);
            }
        }
    }
    tracing::info!(
        records = stats.records, malformed = stats.malformed, unchanged = stats.unchanged, jobs = stats.jobs,
        delivered = stats.delivered, gone = stats.gone, failed = stats.failed, "pushed"
    );
    (response, stats)
}

async fn post_with_retry(pusher: &dyn Pusher, config: &PushConfig, connection: &str, payload: &[u8]) -> Result<(), PushError> {
    let mut attempt = 1;
    loop {
        match pusher.post(connection, payload).await {
            Err(PushError::Retryable(_)) if attempt < config.max_attempts => {
                let ceiling = config.backoff_base_ms.saturating_mul(1 << (attempt - 1).min(16)).min(2_000);
                tokio::time::sleep(Duration::from_millis(fastrand::u64(0..=ceiling))).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}
