//! `progress-ingest`: EventBridge "MediaConvert Job State Change" → status table (monotonic)
//! and, when the event names its input file, `InputFile → JobId` (never back to an older job).

use serde::Serialize;

use crate::domain::mediaconvert::parse_event;
use crate::domain::{EventError, JobStatus};
use crate::metrics::{self, INGEST};
use crate::ports::{JobStore, StoreError};
use crate::service::record_update;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The event is not a MediaConvert job state change we can read; retrying will not help.
    #[error(transparent)]
    Event(#[from] EventError),
    /// The store failed; Lambda's retry (and then the on-failure destination) keeps the event.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What ingesting one event did, returned to the caller (and logged).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IngestOutcome {
    pub job_id: String,
    pub job_status: JobStatus,
    pub progress_rate: u8,
    /// Did this event change the stored status?
    pub changed: bool,
    /// Did this event move `InputFile → JobId` to this job?
    pub pointer_moved: bool,
}

pub async fn handle(
    store: &dyn JobStore,
    event: &serde_json::Value,
    now_ms: u64,
) -> Result<IngestOutcome, IngestError> {
    let result = ingest(store, event, now_ms).await;
    match &result {
        Ok(outcome) if outcome.changed => INGEST.count(metrics::INGEST_APPLIED, 1),
        Ok(_) => INGEST.count(metrics::INGEST_STALE, 1),
        Err(_) => INGEST.count(metrics::INGEST_FAILED, 1),
    }
    result
}

async fn ingest(store: &dyn JobStore, event: &serde_json::Value, now_ms: u64) -> Result<IngestOutcome, IngestError> {
    let event = parse_event(event)?;
    let update = event.detail.to_update(now_ms)?;
    let recorded = record_update(store, &update).await?;
    let (applied, pointer_moved) = (recorded.applied, recorded.pointer_moved);
    let outcome = IngestOutcome {
        job_id: applied.record.job_id,
        job_status: applied.record.job_status,
        progress_rate: applied.record.progress_rate,
        changed: applied.changed,
        pointer_moved,
    };
    tracing::info!(
        job_id = %outcome.job_id,
        event_status = event.detail.status.as_deref().unwrap_or_default(),
        job_status = %outcome.job_status,
        progress_rate = outcome.progress_rate,
        changed = outcome.changed,
        pointer_moved = outcome.pointer_moved,
        "ingested"
    );
    Ok(outcome)
}
