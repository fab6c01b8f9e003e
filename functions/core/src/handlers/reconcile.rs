//! `reconcile`: runs on a schedule and brings jobs whose events were lost back to MediaConvert's
//! truth, so every watcher reaches the job's final state.
//!
//! A run reads up to `max_jobs` unfinished jobs whose state has not changed (or been confirmed)
//! for `after`, oldest first, from the status table's sparse index (never a Scan); asks
//! MediaConvert for each (GetJob, `concurrency` at a time); and applies what it says with the
//! same update and merge rule as an event ([`reconcile`](crate::domain::get_job::reconcile),
//! [`record_update`]). A job whose answer changes nothing is confirmed, so it goes to the back
//! of the queue and the next runs look at others first. A job that fails goes to the back of the
//! queue too, with its failure counted; after `max_failures` failed runs in a row it is parked
//! (out of the index, `ReconcileParked` counted and alarmed), so no job, however broken its
//! stored data, takes a run's slots from the others.

use futures::StreamExt;
use serde::Serialize;

use crate::config::ReconcileConfig;
use crate::domain::get_job::{Verdict, reconcile};
use crate::metrics::{self, RECONCILE};
use crate::ports::{JobInspector, JobStore, StoreError};
use crate::service::record_update;

pub struct ReconcileContext<'a> {
    jobs: &'a dyn JobStore,
    mediaconvert: &'a dyn JobInspector,
    config: &'a ReconcileConfig,
}

impl<'a> ReconcileContext<'a> {
    pub fn new(jobs: &'a dyn JobStore, mediaconvert: &'a dyn JobInspector, config: &'a ReconcileConfig) -> Self {
        ReconcileContext { jobs, mediaconvert, config }
    }
}

/// What one run did: the function's result, and its log line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileStats {
    /// Jobs read from the index (at most `max_jobs`).
    pub checked: usize,
    /// Jobs whose stored state moved forward.
    pub updated: usize,
    /// Of those, jobs that reached a final state in this run (their final event was lost).
    pub finalized: usize,
    /// Jobs MediaConvert reports as stored (or not started yet): confirmed.
    pub confirmed: usize,
    /// Jobs MediaConvert does not know, or past its 48-hour limit: ended as ERROR.
    pub abandoned: usize,
    /// GetJob or the store failed; moved to the back of the queue for a later run.
    pub failed: usize,
    /// Of those, jobs that failed `max_failures` runs in a row: parked, never checked again
    /// until an event moves them.
    pub parked: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The index could not be read: nothing was done; the next run tries again.
    #[error("could not list unfinished jobs: {0}")]
    Store(#[from] StoreError),
}

enum Outcome {
    Updated { finalized: bool, abandoned: bool },
    Confirmed,
    Failed { parked: bool },
}

pub async fn handle(ctx: &ReconcileContext<'_>, now_ms: u64) -> Result<ReconcileStats, ReconcileError> {
    let before = now_ms.saturating_sub(ctx.config.after.as_millis() as u64);
    let due = ctx.jobs.unconfirmed(before, ctx.config.max_jobs).await?;
    let mut stats = ReconcileStats { checked: due.len(), ..ReconcileStats::default() };
    let mut outcomes = futures::stream::iter(due)
        .map(|(job_id, _)| check(ctx, job_id, now_ms))
        .buffer_unordered(ctx.config.concurrency);
    while let Some(outcome) = outcomes.next().await {
        match outcome {
            Outcome::Updated { finalized, abandoned } => {
                stats.updated += 1;
                stats.finalized += usize::from(finalized);
                stats.abandoned += usize::from(abandoned);
            }
            Outcome::Confirmed => stats.confirmed += 1,
            Outcome::Failed { parked } => {
                stats.failed += 1;
                stats.parked += usize::from(parked);
            }
        }
    }
    RECONCILE.count(metrics::RECONCILE_CHECKED, stats.checked);
    RECONCILE.count(metrics::JOBS_RECONCILED, stats.updated);
    RECONCILE.count(metrics::RECONCILE_FAILED, stats.failed);
    RECONCILE.count(metrics::RECONCILE_PARKED, stats.parked);
    if stats.checked == 0 {
        tracing::debug!("reconciled: no quiet unfinished job");
    } else {
        tracing::info!(
            checked = stats.checked,
            updated = stats.updated,
            finalized = stats.finalized,
            confirmed = stats.confirmed,
            abandoned = stats.abandoned,
            failed = stats.failed,
            parked = stats.parked,
            "reconciled"
        );
    }
    Ok(stats)
}

/// One job: its outcome, a failure recorded against it (so it goes to the back of the queue, or
/// is parked once it has failed too often).
async fn check(ctx: &ReconcileContext<'_>, job_id: String, now_ms: u64) -> Outcome {
    match attempt(ctx, &job_id, now_ms).await {
        Some(outcome) => outcome,
        None => match ctx.jobs.record_failure(&job_id, now_ms, ctx.config.max_failures).await {
            Ok(parked) => {
                if parked {
                    let failures = ctx.config.max_failures;
                    tracing::error!(job_id, failures, "reconciliation keeps failing; the job is parked (ParkedAt)");
                }
                Outcome::Failed { parked }
            }
            Err(e) => {
                tracing::warn!(job_id, error = %e, "could not record the failure; the job is checked again next run");
                Outcome::Failed { parked: false }
            }
        },
    }
}

/// GetJob and its answer applied; `None` when either failed.
async fn attempt(ctx: &ReconcileContext<'_>, job_id: &str, now_ms: u64) -> Option<Outcome> {
    let answer = match ctx.mediaconvert.get_job(job_id).await {
        Ok(answer) => answer,
        Err(e) => {
            tracing::warn!(job_id, error = %e, "GetJob failed");
            return None;
        }
    };
    let update = match reconcile(job_id, answer.as_ref(), now_ms) {
        Ok(Verdict::Apply(update)) => *update,
        Ok(Verdict::NotStarted) => return confirm(ctx, job_id, now_ms).await,
        Err(e) => {
            tracing::warn!(job_id, error = %e, "GetJob's answer cannot be applied");
            return None;
        }
    };
    let abandoned = answer.is_none()
        || (answer.as_ref().is_some_and(|a| a.status.as_deref() == Some("PROGRESSING"))
            && update.transition.status().is_final());
    match record_update(ctx.jobs, &update).await {
        Ok(recorded) if recorded.applied.changed => {
            let record = &recorded.applied.record;
            tracing::info!(job_id, job_status = %record.job_status, progress_rate = record.progress_rate, abandoned, "reconciled from GetJob");
            Some(Outcome::Updated { finalized: record.job_status.is_final(), abandoned })
        }
        Ok(_) => confirm(ctx, job_id, now_ms).await,
        Err(e) => {
            tracing::warn!(job_id, error = %e, "could not store GetJob's answer");
            None
        }
    }
}

async fn confirm(ctx: &ReconcileContext<'_>, job_id: &str, now_ms: u64) -> Option<Outcome> {
    match ctx.jobs.confirm(job_id, now_ms).await {
        Ok(()) => Some(Outcome::Confirmed),
        Err(e) => {
            tracing::warn!(job_id, error = %e, "could not confirm the job");
            None
        }
    }
}
