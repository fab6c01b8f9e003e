//! `progress-push`: the status table's DynamoDB stream → every connection subscribed to the
//! changed job's input file or to a folder above it (a prefix).
//!
//! A batch goes through five phases, a function each:
//! 1. [`collect_changes`]: REMOVE records (TTL deletions included) and records whose old and new
//!    images show the same state push nothing; each job's newest state is kept once; a malformed
//!    record is logged and skipped (retrying it could never succeed);
//! 2. [`address`]: watchers are looked up once per file and once per folder above the changed
//!    files ([`watched_folders`]); only the file's newest job is pushed (a late event of an older
//!    job reaches nobody), and each connection gets each update once;
//! 3. [`index`]: a job whose status changed is listed under its folders, for prefix snapshots
//!    (until ten minutes after it ends);
//! 4. [`deliver`]: posts run with as many in flight as the API allows
//!    ([`InFlightLimit`]: slow start, then AIMD on 429), under `PUSH_RATE_LIMIT` if set; 429 /
//!    5xx are retried with exponential backoff and full jitter, a bounded number of times;
//! 5. [`forget`]: 410 Gone drops the connection's subscriptions.
//!
//! A job still failing has its records reported in `batchItemFailures` ([`report`]), so Lambda
//! retries only from there.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::dynamodb::EventRecord;
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde_json::Value;

use super::batch::RecordBatch;
use crate::adapters::dynamodb::stream::{self, ImageError, JobImages};
use crate::config::PushConfig;
use crate::domain::congestion::{InFlightLimit, Pacer};
use crate::domain::protocol::{MAX_MESSAGE_BYTES, ServerMessage, StatusUpdate, statuses_messages};
use crate::domain::topic::{RECENT_AFTER_FINAL_SECS, RECENT_WHILE_RUNNING_SECS, watched_folders};
use crate::domain::{JobPointer, JobRecord, StatusView};
use crate::metrics::{self, PUSH};
use crate::ports::{FolderEntry, JobStore, PushError, Pusher, StoreError, SubscriptionStore, Watcher};

/// What progress-push works with; built by [`PushContext::new`] wherever the function runs.
pub struct PushContext<'a> {
    jobs: &'a dyn JobStore,
    subscriptions: &'a dyn SubscriptionStore,
    pusher: &'a dyn Pusher,
    config: &'a PushConfig,
}

impl<'a> PushContext<'a> {
    pub fn new(
        jobs: &'a dyn JobStore,
        subscriptions: &'a dyn SubscriptionStore,
        pusher: &'a dyn Pusher,
        config: &'a PushConfig,
    ) -> Self {
        PushContext { jobs, subscriptions, pusher, config }
    }
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

/// A job's newest state in the batch, and the records that carried it.
struct Change {
    record: JobRecord,
    sequence_numbers: Vec<String>,
    /// Did a record of the batch change the job's status (or bring the job in)?
    status_changed: bool,
}

/// Newest state per job id.
type Changes = BTreeMap<String, Change>;

/// A job and when MediaConvert reported the state pushed for it (`EndToEndLagMs`).
type PushedJob = (String, Option<u64>);

/// One message for one connection: a `status`, or a batched connection's `statuses`.
struct Delivery {
    /// The jobs whose state the message carries, each with when MediaConvert reported that
    /// state (`EndToEndLagMs`).
    jobs: Vec<PushedJob>,
    connection_id: String,
    message: Arc<str>,
}

pub async fn handle(ctx: &PushContext<'_>, event: &Value, now_secs: u64) -> (DynamoDbEventResponse, PushStats) {
    let mut stats = PushStats::default();
    let changes = collect_changes(event, &mut stats);
    let (deliveries, entries, mut failed_jobs) = address(ctx, &changes, now_secs).await;
    index(ctx, &entries, &mut failed_jobs).await;
    let gone = deliver(ctx, deliveries, &mut stats, &mut failed_jobs).await;
    forget(ctx, gone).await;
    PUSH.count(metrics::PUSH_DELIVERED, stats.delivered);
    PUSH.count(metrics::PUSH_GONE, stats.gone);
    PUSH.count(metrics::PUSH_FAILED, stats.failed);
    PUSH.sample(metrics::POSTS_PER_INVOCATION, (stats.delivered + stats.gone + stats.failed) as f64);
    tracing::info!(
        records = stats.records,
        malformed = stats.malformed,
        unchanged = stats.unchanged,
        jobs = stats.jobs,
        delivered = stats.delivered,
        gone = stats.gone,
        failed = stats.failed,
        "pushed"
    );
    (report(&changes, &failed_jobs), stats)
}

/// The state a subscriber sees; two images with the same view are no change worth pushing.
fn view(record: &JobRecord) -> (Option<&str>, StatusView) {
    (record.input_file.as_deref(), StatusView::from(record))
}

/// A record's new state, or `None` when it changes nothing a subscriber sees (REMOVE, TTL, or
/// the same view in both images).
fn changed_state(record: EventRecord) -> Result<Option<(JobRecord, Option<String>, bool)>, ImageError> {
    let Some(JobImages { old, new, sequence_number }) = stream::decode(record)? else { return Ok(None) };
    if old.as_ref().is_some_and(|old| view(old) == view(&new)) {
        return Ok(None);
    }
    let status_changed = old.is_none_or(|old| old.job_status != new.job_status);
    Ok(Some((new, sequence_number, status_changed)))
}

/// Phase 1: each job's newest state, in stream order; malformed records are logged and skipped.
fn collect_changes(event: &Value, stats: &mut PushStats) -> Changes {
    let batch = match RecordBatch::parse(event) {
        Ok(batch) => batch,
        Err(e) => {
            tracing::error!(error = %e, "event is not a DynamoDB stream batch");
            return Changes::new();
        }
    };
    stats.records = batch.len();
    let mut changes = Changes::new();
    for (index, record) in batch.typed::<EventRecord>() {
        match record.and_then(|r| changed_state(r).map_err(|e| e.to_string())) {
            Ok(Some((record, sequence_number, status_changed))) => {
                let change = changes.entry(record.job_id.clone()).or_insert_with(|| Change {
                    record: record.clone(),
                    sequence_numbers: Vec::new(),
                    status_changed: false,
                });
                change.record = record;
                change.sequence_numbers.extend(sequence_number);
                change.status_changed |= status_changed;
            }
            Ok(None) => stats.unchanged += 1,
            Err(reason) => {
                stats.malformed += 1;
                tracing::warn!(index, reason, "malformed stream record skipped");
            }
        }
    }
    stats.jobs = changes.len();
    changes
}

/// Phase 2: one pointer and watcher lookup per file and one watcher lookup per folder above the
/// files (all concurrently); a message for every connection watching each file's newest job,
/// directly or through a prefix, once per connection; the folder entries of jobs whose status
/// changed. Jobs whose lookups failed are returned to be retried.
async fn address(
    ctx: &PushContext<'_>,
    changes: &Changes,
    now_secs: u64,
) -> (Vec<Delivery>, Vec<FolderEntry>, BTreeSet<String>) {
    let mut by_file: BTreeMap<&str, Vec<&Change>> = BTreeMap::new();
    for change in changes.values() {
        if let Some(file) = &change.record.input_file {
            by_file.entry(file.as_str()).or_default().push(change);
        }
    }
    // Owned names: futures that borrow them would not be `Send` for every lifetime.
    let files: Vec<String> = by_file.keys().map(|file| (*file).to_owned()).collect();
    let folders: BTreeSet<String> = by_file.keys().flat_map(|file| watched_folders(file)).map(str::to_owned).collect();
    let concurrency = ctx.config.concurrency.max(1);
    let file_lookups = futures::stream::iter(files)
        .map(|file| async move {
            let found =
                async { Ok((ctx.jobs.pointer(&file).await?, ctx.subscriptions.watchers(&file, now_secs).await?)) };
            let found = found.await;
            (file, found)
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<(String, Result<_, StoreError>)>>();
    let folder_lookups = futures::stream::iter(folders)
        .map(|folder| async move {
            let found = ctx.subscriptions.watchers(&folder, now_secs).await;
            (folder, found)
        })
        .buffer_unordered(concurrency)
        .collect::<BTreeMap<String, Result<Vec<Watcher>, StoreError>>>();
    let (file_lookups, folder_watchers) = futures::join!(file_lookups, folder_lookups);

    let mut deliveries = Vec::new();
    let mut entries = Vec::new();
    let mut failed_jobs = BTreeSet::new();
    // A batched connection's updates (job, event time, serialized update), across files.
    let mut batched: BTreeMap<String, Vec<(PushedJob, String)>> = BTreeMap::new();
    for (file, found) in file_lookups {
        let file = file.as_str();
        let changes = by_file.get(file).map(Vec::as_slice).unwrap_or_default();
        let watched = watched_folders(file);
        let found =
            found.and_then(|(pointer, watchers)| Ok((pointer, connections(watchers, &watched, &folder_watchers)?)));
        let (pointer, connections) = match found {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(input_file = %file, error = %e, "watcher lookup failed");
                failed_jobs.extend(changes.iter().map(|c| c.record.job_id.clone()));
                continue;
            }
        };
        for change in changes {
            let record = &change.record;
            let candidate =
                JobPointer { input_file: file.to_owned(), job_id: record.job_id.clone(), job_order: record.job_order };
            if pointer.as_ref().is_some_and(|p| p.job_id != record.job_id && !candidate.supersedes(p)) {
                tracing::debug!(job_id = %record.job_id, "older job of its file: not pushed");
                continue;
            }
            if change.status_changed {
                entries.extend(folder_entries(file, &watched, record, now_secs));
            }
            let update = StatusUpdate::new(file, record, ctx.config.output_base_url.as_ref());
            let job = (record.job_id.clone(), record.event_at);
            // Each form is serialized once, when a watcher first needs it.
            let (mut message, mut element): (Option<Arc<str>>, Option<String>) = (None, None);
            for (connection_id, &batch) in &connections {
                if batch {
                    let element =
                        element.get_or_insert_with(|| serde_json::to_string(&update).unwrap_or_default()).clone();
                    batched.entry(connection_id.clone()).or_default().push((job.clone(), element));
                } else {
                    let message = message
                        .get_or_insert_with(|| ServerMessage::Status(Box::new(update.clone())).to_json().into())
                        .clone();
                    deliveries.push(Delivery {
                        jobs: vec![job.clone()],
                        connection_id: connection_id.clone(),
                        message,
                    });
                }
            }
        }
    }
    for (connection_id, updates) in batched {
        deliveries.extend(batch_deliveries(connection_id, updates));
    }
    (deliveries, entries, failed_jobs)
}

/// The connections watching a file: its own watchers and those of its `folders`, each connection
/// once, batched if any of its matching subscriptions is. A failed folder lookup fails the file.
fn connections(
    file_watchers: Vec<Watcher>,
    folders: &[&str],
    folder_watchers: &BTreeMap<String, Result<Vec<Watcher>, StoreError>>,
) -> Result<BTreeMap<String, bool>, StoreError> {
    let mut connections: BTreeMap<String, bool> = BTreeMap::new();
    let mut add = |watcher: &Watcher| *connections.entry(watcher.connection_id.clone()).or_default() |= watcher.batch;
    file_watchers.iter().for_each(&mut add);
    for folder in folders {
        match folder_watchers.get(*folder) {
            Some(Ok(watchers)) => watchers.iter().for_each(&mut add),
            Some(Err(e)) => return Err(StoreError::Unavailable(format!("watchers of {folder}: {e}"))),
            None => {}
        }
    }
    Ok(connections)
}

/// A job's entries in the folder index: one per watched folder of its file, listed for ten
/// minutes once the job is final, else until the reconciler would have ended it.
fn folder_entries<'a>(
    file: &'a str,
    folders: &'a [&str],
    record: &'a JobRecord,
    now_secs: u64,
) -> impl Iterator<Item = FolderEntry> + 'a {
    let listed_for = if record.job_status.is_final() { RECENT_AFTER_FINAL_SECS } else { RECENT_WHILE_RUNNING_SECS };
    folders.iter().map(move |folder| FolderEntry {
        folder: (*folder).to_owned(),
        input_file: file.to_owned(),
        job_id: record.job_id.clone(),
        job_order: record.job_order.unwrap_or(0),
        expires_at: now_secs + listed_for,
    })
}

/// Phase 3: lists the jobs under their folders; if that fails, the jobs are retried so no prefix
/// snapshot misses them.
async fn index(ctx: &PushContext<'_>, entries: &[FolderEntry], failed_jobs: &mut BTreeSet<String>) {
    if entries.is_empty() {
        return;
    }
    if let Err(e) = ctx.subscriptions.index_files(entries).await {
        tracing::error!(entries = entries.len(), error = %e, "folder index not written");
        failed_jobs.extend(entries.iter().map(|e| e.job_id.clone()));
    }
}

/// A batched connection's updates as `statuses` messages of at most 128 KB, each naming the jobs
/// it carries.
fn batch_deliveries(connection_id: String, updates: Vec<(PushedJob, String)>) -> Vec<Delivery> {
    let (jobs, json): (Vec<_>, Vec<_>) = updates.into_iter().unzip();
    let mut jobs = jobs.into_iter();
    statuses_messages(&json, MAX_MESSAGE_BYTES)
        .into_iter()
        .map(|(message, count)| {
            // Each message holds the next `count` updates, in order.
            Delivery {
                jobs: jobs.by_ref().take(count).collect(),
                connection_id: connection_id.clone(),
                message: message.into(),
            }
        })
        .collect()
}

/// Phase 4: posts with an adaptive number in flight and bounded retries; returns the connections
/// that are gone.
async fn deliver(
    ctx: &PushContext<'_>,
    deliveries: Vec<Delivery>,
    stats: &mut PushStats,
    failed_jobs: &mut BTreeSet<String>,
) -> BTreeSet<String> {
    let config = ctx.config;
    let started = tokio::time::Instant::now();
    let mut limit = InFlightLimit::new(config.concurrency, config.max_concurrency);
    let mut pacer = config.rate_limit.map(Pacer::new);
    let mut waiting: std::collections::VecDeque<Delivery> = deliveries.into();
    let mut in_flight = FuturesUnordered::new();
    // One try of one post, after `delay` (a retry's backoff) and its pacing slot.
    let attempt = |delivery: Delivery, tries: u32, delay: Duration, pacer: &mut Option<Pacer>| {
        let ready = started.elapsed() + delay;
        let at = pacer.as_mut().map_or(ready, |p| p.reserve(ready));
        async move {
            tokio::time::sleep_until(started + at).await;
            let sent = tokio::time::Instant::now();
            let result = ctx.pusher.post(&delivery.connection_id, delivery.message.as_bytes()).await;
            (delivery, tries, result, sent.elapsed())
        }
    };
    let mut results: Vec<(Delivery, Result<(), PushError>, u64)> = Vec::new();
    loop {
        while in_flight.len() < limit.limit()
            && let Some(delivery) = waiting.pop_front()
        {
            in_flight.push(attempt(delivery, 1, Duration::ZERO, &mut pacer));
        }
        let Some((delivery, tries, result, round_trip)) = in_flight.next().await else { break };
        match result {
            Err(PushError::Throttled(_)) => limit.on_throttled(started.elapsed()),
            _ => limit.on_answer(round_trip),
        }
        match result {
            Err(e) if e.is_retryable() && tries < config.retry.max_attempts => {
                PUSH.count(metrics::PUSH_RETRIED, 1);
                in_flight.push(attempt(delivery, tries + 1, config.retry.backoff(tries), &mut pacer));
            }
            result => results.push((delivery, result, crate::now_ms())),
        }
    }

    let mut gone = BTreeSet::new();
    // Each change's lag: from MediaConvert's event to its last delivered post.
    let mut lags: BTreeMap<String, u64> = BTreeMap::new();
    for (Delivery { jobs, connection_id, .. }, result, done_ms) in results {
        match result {
            Ok(()) => {
                stats.delivered += 1;
                for (job_id, event_at) in jobs {
                    if let Some(event_at) = event_at {
                        let lag = lags.entry(job_id).or_default();
                        *lag = (*lag).max(done_ms.saturating_sub(event_at));
                    }
                }
            }
            Err(PushError::Gone) => {
                stats.gone += 1;
                gone.insert(connection_id);
            }
            Err(e) if e.is_retryable() => {
                stats.failed += 1;
                tracing::warn!(?jobs, %connection_id, error = %e, "push failed after retries");
                failed_jobs.extend(jobs.into_iter().map(|(job_id, _)| job_id));
            }
            Err(e) => {
                stats.failed += 1;
                tracing::warn!(?jobs, %connection_id, error = %e, "push refused; not retried");
            }
        }
    }
    for lag in lags.values() {
        PUSH.sample(metrics::END_TO_END_LAG_MS, *lag as f64);
    }
    gone
}

/// Phase 5: a gone connection's subscriptions go too.
async fn forget(ctx: &PushContext<'_>, gone: BTreeSet<String>) {
    for connection in gone {
        if let Err(e) = ctx.subscriptions.remove_connection(&connection).await {
            tracing::warn!(connection_id = %connection, error = %e, "could not drop a gone connection");
        }
    }
}

/// The records of every job still failing, as `batchItemFailures`.
fn report(changes: &Changes, failed_jobs: &BTreeSet<String>) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    let sequence_numbers = failed_jobs.iter().filter_map(|job| changes.get(job)).flat_map(|c| &c.sequence_numbers);
    for sequence_number in sequence_numbers {
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(sequence_number.clone());
        response.batch_item_failures.push(failure);
    }
    response
}
