//! `reconcile`: runs on a schedule and brings jobs whose events were lost back to MediaConvert's
//! truth, so every watcher reaches the job's final state.
//!
//! A run reads up to `max_jobs` unfinished jobs whose state has not changed (or been confirmed)
//! for `after`, oldest first, from the status table's sparse index (never a Scan); asks
//! MediaConvert for each (GetJob, `concurrency` at a time); and applies what it says with the
//! same update and merge rule as an event ([`reconcile`](crate::domain::get_job::reconcile),
//! [`record_update`]). A job whose answer changes nothing is confirmed, so it goes to the back
//! of the queue and the next runs look at others first. A job that fails is left as it is and
//! comes up again in the next run.

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
    /// GetJob or the store failed; left for the next run.
    pub failed: usize,
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
    Failed,
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
            Outcome::Failed => stats.failed += 1,
        }
    }
    RECONCILE.count(metrics::RECONCILE_CHECKED, stats.checked);
    RECONCILE.count(metrics::JOBS_RECONCILED, stats.updated);
    RECONCILE.count(metrics::RECONCILE_FAILED, stats.failed);
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
            "reconciled"
        );
    }
    Ok(stats)
}

async fn check(ctx: &ReconcileContext<'_>, job_id: String, now_ms: u64) -> Outcome {
    let answer = match ctx.mediaconvert.get_job(&job_id).await {
        Ok(answer) => answer,
        Err(e) => {
            tracing::warn!(job_id, error = %e, "GetJob failed; the job is checked again next run");
            return Outcome::Failed;
        }
    };
    let update = match reconcile(&job_id, answer.as_ref(), now_ms) {
        Ok(Verdict::Apply(update)) => update,
        Ok(Verdict::NotStarted) => return confirm(ctx, &job_id, now_ms).await,
        Err(e) => {
            tracing::warn!(job_id, error = %e, "GetJob's answer cannot be applied");
            return Outcome::Failed;
        }
    };
    let abandoned = answer.is_none()
        || (answer.as_ref().is_some_and(|a| a.status.as_deref() == Some("PROGRESSING"))
            && update.transition.status().is_final());
    match record_update(ctx.jobs, &update).await {
        Ok(recorded) if recorded.applied.changed => {
            let record = &recorded.applied.record;
            tracing::info!(job_id, job_status = %record.job_status, progress_rate = record.progress_rate, abandoned, "reconciled from GetJob");
            Outcome::Updated { finalized: record.job_status.is_final(), abandoned }
        }
        Ok(_) => confirm(ctx, &job_id, now_ms).await,
        Err(e) => {
            tracing::warn!(job_id, error = %e, "could not store GetJob's answer");
            Outcome::Failed
        }
    }
}

async fn confirm(ctx: &ReconcileContext<'_>, job_id: &str, now_ms: u64) -> Outcome {
    match ctx.jobs.confirm(job_id, now_ms).await {
        Ok(()) => Outcome::Confirmed,
        Err(e) => {
            tracing::warn!(job_id, error = %e, "could not confirm the job");
            Outcome::Failed
        }
    }
}
