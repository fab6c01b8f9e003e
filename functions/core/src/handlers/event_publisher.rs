//! `event-publisher`: the status table's stream → one EventBridge `Job Status Changed` event per
//! status transition (see [`crate::domain::job_event`]), through an event source mapping of its
//! own so a slow bus never delays a browser.
//!
//! A batch goes through two phases:
//! 1. [`transitions`]: each INSERT / MODIFY whose old and new images show different statuses
//!    (or a new job) becomes one entry, in stream order; progress alone, REMOVEs and malformed
//!    records make none (a malformed one is logged: retrying it could never succeed);
//! 2. [`publish`]: entries go in `PutEvents` calls of at most 10 entries and 256 KB, in order;
//!    a failed call or an entry the bus refused is retried with backoff
//!    (`EVENTS_MAX_ATTEMPTS`). When a call's entries still fail, nothing after them is tried:
//!    the first record not published is reported in `batchItemFailures`, so Lambda resumes the
//!    stream there (and after its retries, the mapping's failure queue keeps the batch).
//!
//! What repeats an event: a batch resumed after a partial failure re-sends the entries of the
//! failed call that the bus had taken. Consumers dedupe on `job_id` + `version`.

use aws_lambda_events::dynamodb::EventRecord;
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde_json::Value;

use super::batch::RecordBatch;
use crate::adapters::dynamodb::stream::{self, JobImages};
use crate::config::EventsConfig;
use crate::domain::job_event::{DETAIL_TYPE, JobStatusChanged};
use crate::metrics::{self, EVENTS};
use crate::ports::{BusEntry, EventPublisher};

/// `PutEvents`' limits: entries per call and bytes per call.
pub const MAX_ENTRIES: usize = 10;
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// What event-publisher works with; built by [`EventsContext::new`] wherever it runs.
pub struct EventsContext<'a> {
    publisher: &'a dyn EventPublisher,
    config: &'a EventsConfig,
}

impl<'a> EventsContext<'a> {
    pub fn new(publisher: &'a dyn EventPublisher, config: &'a EventsConfig) -> Self {
        Self { publisher, config }
    }
}

/// Counts for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventStats {
    pub records: usize,
    pub malformed: usize,
    /// Records that were a status transition.
    pub transitions: usize,
    pub published: usize,
    /// Entry tries repeated after a failed call or a refused entry.
    pub retried: usize,
    /// Entries not published (refused after their retries, or after such a call).
    pub failed: usize,
    /// Entries over 256 KB, which no retry could publish (logged and skipped).
    pub too_large: usize,
}

/// One entry and the stream record it came from.
struct Pending {
    entry: BusEntry,
    sequence_number: Option<String>,
    key: (String, u64),
}

pub async fn handle(ctx: &EventsContext<'_>, event: &Value) -> (DynamoDbEventResponse, EventStats) {
    let mut stats = EventStats::default();
    let pending = transitions(ctx.config, event, &mut stats);
    let unpublished = publish(ctx, &pending, &mut stats).await;
    EVENTS.count(metrics::EVENTS_PUBLISHED, stats.published);
    EVENTS.count(metrics::EVENTS_RETRIED, stats.retried);
    EVENTS.count(metrics::EVENTS_FAILED, stats.failed);
    tracing::info!(
        records = stats.records,
        malformed = stats.malformed,
        transitions = stats.transitions,
        published = stats.published,
        retried = stats.retried,
        failed = stats.failed,
        too_large = stats.too_large,
        "published"
    );
    let mut response = DynamoDbEventResponse::default();
    if let Some(first) = unpublished.and_then(|i| pending.get(i)) {
        // Lambda resumes from the lowest sequence number reported; a record without one (never
        // on AWS) is reported as null, which retries the whole batch.
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = first.sequence_number.clone();
        response.batch_item_failures.push(failure);
    }
    (response, stats)
}

/// Phase 1: the entries the batch's transitions call for, in stream order.
fn transitions(config: &EventsConfig, event: &Value, stats: &mut EventStats) -> Vec<Pending> {
    let batch = match RecordBatch::parse(event) {
        Ok(batch) => batch,
        Err(e) => {
            tracing::error!(error = %e, "event is not a DynamoDB stream batch");
            return Vec::new();
        }
    };
    stats.records = batch.len();
    let mut pending = Vec::new();
    for (index, record) in batch.typed::<EventRecord>() {
        let images = record.and_then(|r| stream::decode(r).map_err(|e| e.to_string()));
        let Some(JobImages { old, new, sequence_number }) = (match images {
            Ok(images) => images,
            Err(error) => {
                stats.malformed += 1;
                tracing::error!(index, %error, "skipped a stream record that is not a job's item");
                continue;
            }
        }) else {
            continue;
        };
        let Some(change) = JobStatusChanged::of(old.as_ref(), &new, config.output_base_url.as_ref()) else { continue };
        stats.transitions += 1;
        let detail = match serde_json::to_string(&change) {
            Ok(detail) => detail,
            Err(error) => {
                stats.malformed += 1;
                tracing::error!(index, %error, "a job's state did not serialize");
                continue;
            }
        };
        let entry = BusEntry { source: config.source.clone(), detail_type: DETAIL_TYPE.to_owned(), detail };
        if entry.size() > MAX_REQUEST_BYTES {
            stats.too_large += 1;
            tracing::error!(job_id = %change.job_id, bytes = entry.size(), "a Job Status Changed event over EventBridge's 256 KB was skipped");
            continue;
        }
        pending.push(Pending { entry, sequence_number, key: change.key() });
    }
    pending
}

/// Consecutive runs of at most [`MAX_ENTRIES`] entries and [`MAX_REQUEST_BYTES`], in order.
fn calls(pending: &[Pending]) -> Vec<std::ops::Range<usize>> {
    let mut calls = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, p) in pending.iter().enumerate() {
        if i > start && (i - start == MAX_ENTRIES || bytes + p.entry.size() > MAX_REQUEST_BYTES) {
            calls.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += p.entry.size();
    }
    if start < pending.len() {
        calls.push(start..pending.len());
    }
    calls
}

/// Phase 2: publishes in order; answers the index of the first entry not published, if any.
async fn publish(ctx: &EventsContext<'_>, pending: &[Pending], stats: &mut EventStats) -> Option<usize> {
    let retry = ctx.config.retry;
    for range in calls(pending) {
        let mut left: Vec<usize> = range.clone().collect();
        for attempt in 1..=retry.max_attempts {
            let entries: Vec<BusEntry> = left.iter().map(|&i| pending[i].entry.clone()).collect();
            let refused: Vec<(usize, String)> = match ctx.publisher.put(&entries).await {
                Ok(results) => left
                    .iter()
                    .enumerate()
                    .filter_map(|(n, &i)| match results.get(n) {
                        Some(None) => None,
                        Some(Some(error)) => Some((i, error.clone())),
                        None => Some((i, "the bus gave no result for this entry".to_owned())),
                    })
                    .collect(),
                Err(error) => left.iter().map(|&i| (i, error.to_string())).collect(),
            };
            stats.published += left.len() - refused.len();
            if refused.is_empty() {
                left.clear();
                break;
            }
            for (i, error) in &refused {
                let (job_id, version) = &pending[*i].key;
                tracing::warn!(job_id, version, attempt, %error, "the bus refused an event");
            }
            left = refused.into_iter().map(|(i, _)| i).collect();
            if attempt < retry.max_attempts {
                stats.retried += left.len();
                tokio::time::sleep(retry.backoff(attempt)).await;
            }
        }
        if let Some(&first) = left.first() {
            stats.failed += left.len() + (pending.len() - range.end);
            tracing::error!(
                unpublished = pending.len() - first,
                "events still refused after their retries; the stream resumes from the first"
            );
            return Some(first);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(bytes: usize) -> Pending {
        let entry = BusEntry { source: "s".into(), detail_type: "d".into(), detail: "x".repeat(bytes) };
        Pending { entry, sequence_number: None, key: ("j".into(), 1) }
    }

    #[test]
    fn calls_hold_at_most_ten_entries_and_256_kb_in_order() {
        let small: Vec<Pending> = (0..23).map(|_| pending(10)).collect();
        assert_eq!(calls(&small), vec![0..10, 10..20, 20..23]);
        let big: Vec<Pending> = (0..5).map(|_| pending(100 * 1024)).collect();
        assert_eq!(calls(&big), vec![0..2, 2..4, 4..5]);
        assert_eq!(calls(&[]), Vec::<std::ops::Range<usize>>::new());
    }
}
