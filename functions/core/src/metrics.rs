//! The pipeline's numbers as CloudWatch metrics.
//!
//! Handlers count through the `metrics` facade with a [`Meter`] (one per function: the `Function`
//! dimension); the recorder is metrics_cloudwatch_embedded's, which writes what was recorded as
//! Embedded Metric Format lines (JSON that CloudWatch Logs turns into metrics) in the namespace
//! `METRICS_NAMESPACE` (default `MediaConvertPush`). A Lambda function flushes them to stdout
//! after every invocation ([`crate::telemetry::metered`]); the local stack flushes them into its
//! log (`RUST_LOG=metrics=debug`) and its `/_local/metrics` counts.
//!
//! The names below are a contract: the template's alarms and dashboard read them.

use std::sync::OnceLock;

use metrics_cloudwatch_embedded::Collector;

/// The one dimension of every metric: the function that recorded it (`progress-push`, …).
pub const DIMENSION: &str = "Function";
/// `METRICS_NAMESPACE`' default.
pub const DEFAULT_NAMESPACE: &str = "MediaConvertPush";

/// progress-ingest: events that changed the stored state.
pub const INGEST_APPLIED: &str = "IngestApplied";
/// progress-ingest: events that changed nothing (duplicates, late or lower progress).
pub const INGEST_STALE: &str = "IngestStale";
/// progress-ingest: events that failed (unreadable, or the store failed: Lambda retries them).
pub const INGEST_FAILED: &str = "IngestFailed";
/// progress-push: messages a subscriber received.
pub const PUSH_DELIVERED: &str = "PushDelivered";
/// progress-push: posts to connections that were gone (410); their subscriptions are dropped.
pub const PUSH_GONE: &str = "PushGone";
/// progress-push and ws-message: posts retried after a 429 / 5xx.
pub const PUSH_RETRIED: &str = "PushRetried";
/// progress-push: posts that failed after their retries (their records are reported as batch
/// item failures and retried by the stream).
pub const PUSH_FAILED: &str = "PushFailed";
/// progress-push: posts made by one invocation.
pub const POSTS_PER_INVOCATION: &str = "PostsPerInvocation";
/// progress-push: time from MediaConvert's event (`detail.timestamp`) to the last post of the
/// change it brought, in milliseconds: what a watcher waits.
pub const END_TO_END_LAG_MS: &str = "EndToEndLagMs";
/// ws-message: subscriptions made.
pub const SUBSCRIPTIONS_ADDED: &str = "SubscriptionsAdded";
/// ws-message: subscriptions refused (token, limit).
pub const SUBSCRIPTIONS_REFUSED: &str = "SubscriptionsRefused";
/// reconcile: jobs asked about (GetJob).
pub const RECONCILE_CHECKED: &str = "ReconcileChecked";
/// reconcile: jobs whose stored state moved forward: an event was lost.
pub const JOBS_RECONCILED: &str = "JobsReconciled";
/// reconcile: GetJob or the store failed; the job waits for the next run.
pub const RECONCILE_FAILED: &str = "ReconcileFailed";
/// Jobs the reconciler parked after `RECONCILE_MAX_FAILURES` failed runs in a row (alarmed).
pub const RECONCILE_PARKED: &str = "ReconcileParked";
/// create-job: MediaConvert jobs created.
pub const JOBS_CREATED: &str = "JobsCreated";
/// status-api: answers `304 Not Modified` (the caller's `If-None-Match` named the current state).
pub const STATUS_NOT_MODIFIED: &str = "StatusNotModified";
/// status-api: how long a `?wait=` request was held before its answer (a distribution, ms).
pub const STATUS_WAIT_MS: &str = "StatusWaitMs";
/// upload-api: read tokens renewed through `POST /media/tokens`.
pub const TOKENS_RENEWED: &str = "TokensRenewed";
/// upload-api: renewals refused (a token missing, expired, foreign, at its chain's end, or a job
/// that ended a day ago).
pub const TOKEN_RENEWALS_REFUSED: &str = "TokenRenewalsRefused";

/// ws-disconnect: how long each closed connection was open, in minutes (its Sum is what API
/// Gateway bills as WebSocket connection minutes, which CloudWatch does not report).
pub const CONNECTION_MINUTES: &str = "ConnectionMinutes";

/// event-publisher: `Job Status Changed` events the bus took.
pub const EVENTS_PUBLISHED: &str = "EventsPublished";
/// event-publisher: entries the bus refused or a call that failed, retried within the invocation.
pub const EVENTS_RETRIED: &str = "EventsRetried";
/// event-publisher: events still refused after the retries (their records are reported as batch
/// item failures; the stream retries them, then the mapping's failure queue keeps them).
pub const EVENTS_FAILED: &str = "EventsFailed";

/// Where a function's metrics go: every value carries its `Function` dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meter {
    function: &'static str,
}

impl Meter {
    pub const fn new(function: &'static str) -> Self {
        Self { function }
    }

    /// Adds `n` to a counter (nothing is recorded for 0).
    pub fn count(self, name: &'static str, n: usize) {
        if n > 0 {
            metrics::counter!(name, DIMENSION => self.function).increment(n as u64);
        }
    }

    /// Records one value of a distribution (CloudWatch keeps its statistics: p50, p99, max…).
    pub fn sample(self, name: &'static str, value: f64) {
        metrics::histogram!(name, DIMENSION => self.function).record(value);
    }
}

pub const INGEST: Meter = Meter::new("progress-ingest");
pub const PUSH: Meter = Meter::new("progress-push");
pub const WS_MESSAGE: Meter = Meter::new("ws-message");
pub const RECONCILE: Meter = Meter::new("reconcile");
pub const CREATE_JOB: Meter = Meter::new("create-job");
pub const STATUS_API: Meter = Meter::new("status-api");
pub const UPLOAD_API: Meter = Meter::new("upload-api");
pub const EVENTS: Meter = Meter::new("event-publisher");
pub const WS_DISCONNECT: Meter = Meter::new("ws-disconnect");

static COLLECTOR: OnceLock<Option<&'static Collector>> = OnceLock::new();

/// Installs the Embedded Metric Format recorder as the process's `metrics` recorder, once (later
/// calls answer the first one, whatever their namespace); `None` if another recorder was
/// installed first (then nothing is written).
pub fn collector(namespace: &str) -> Option<&'static Collector> {
    *COLLECTOR.get_or_init(|| {
        let collector = metrics_cloudwatch_embedded::Builder::new().cloudwatch_namespace(namespace.to_owned()).init();
        match collector {
            Ok(collector) => {
                describe();
                Some(collector)
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed");
                None
            }
        }
    })
}

/// Writes what was recorded since the last flush, one EMF document per line, to `out`.
pub fn flush(out: impl std::io::Write) {
    if let Some(collector) = COLLECTOR.get().copied().flatten()
        && let Err(e) = collector.flush(out)
    {
        tracing::warn!(error = %e, "metrics not written");
    }
}

fn describe() {
    use metrics::Unit;
    metrics::describe_histogram!(
        END_TO_END_LAG_MS,
        Unit::Milliseconds,
        "MediaConvert event to the last post of its change"
    );
    metrics::describe_histogram!(POSTS_PER_INVOCATION, Unit::Count, "posts made by one progress-push invocation");
    metrics::describe_histogram!(STATUS_WAIT_MS, Unit::Milliseconds, "how long a ?wait= request was held");
    metrics::describe_histogram!(CONNECTION_MINUTES, Unit::Count, "minutes a closed WebSocket connection was open");
    for counter in [
        INGEST_APPLIED,
        INGEST_STALE,
        INGEST_FAILED,
        PUSH_DELIVERED,
        PUSH_GONE,
        PUSH_RETRIED,
        PUSH_FAILED,
        SUBSCRIPTIONS_ADDED,
        SUBSCRIPTIONS_REFUSED,
        RECONCILE_CHECKED,
        JOBS_RECONCILED,
        RECONCILE_FAILED,
        RECONCILE_PARKED,
        JOBS_CREATED,
        STATUS_NOT_MODIFIED,
        TOKENS_RENEWED,
        TOKEN_RENEWALS_REFUSED,
    ] {
        metrics::describe_counter!(counter, Unit::Count, "");
    }
}
