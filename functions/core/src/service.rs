//! Use cases over the ports that more than one handler needs.

use crate::config::RetryPolicy;
use crate::domain::{JobPointer, JobUpdate};
use crate::metrics::Meter;
use crate::ports::{Applied, JobStore, PushError, Pusher, StoreError};

/// What [`record_update`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub applied: Applied,
    /// Did `InputFile → JobId` move to this job?
    pub pointer_moved: bool,
}

/// Merges `update` into the stored job (never backwards), then, when the job names its input
/// file, points that file at the job if it is the file's newest. create-job and progress-ingest
/// both record a job this way, so the pointer follows the same rule whoever writes first.
/// A progress report ([`JobUpdate::is_progress_report`], most of a job's events) first reads the
/// pointer (eventually consistent, 0.5 RRU) and writes only when it names an older job or none:
/// the file nearly always points at the job already, and a refused conditional write bills a
/// whole WRU, ten times the read. A stale read only costs that write; the write's condition
/// still decides.
pub async fn record_update(store: &dyn JobStore, update: &JobUpdate) -> Result<Recorded, StoreError> {
    let applied = store.apply(update).await?;
    let pointer_moved = match &applied.record.input_file {
        Some(input_file) => {
            let pointer = JobPointer {
                input_file: input_file.clone(),
                job_id: applied.record.job_id.clone(),
                job_order: applied.record.job_order,
            };
            let pointed = update.is_progress_report()
                && store.pointer(input_file).await?.is_some_and(|stored| !pointer.supersedes(&stored));
            !pointed && store.point_to(&pointer).await?
        }
        None => false,
    };
    Ok(Recorded { applied, pointer_moved })
}

/// Posts `payload` to a connection, retrying 429 / 5xx ([`PushError::is_retryable`]) with
/// exponential backoff and full jitter up to `policy.max_attempts` tries; any other outcome is
/// final at once. progress-push's pushes and ws-message's replies both post this way.
/// Each retry counts as `PushRetried` on `meter`.
pub async fn post_with_retry(
    pusher: &dyn Pusher,
    policy: &RetryPolicy,
    meter: Meter,
    connection: &str,
    payload: &[u8],
) -> Result<(), PushError> {
    let mut attempt = 1;
    loop {
        match pusher.post(connection, payload).await {
            Err(e) if e.is_retryable() && attempt < policy.max_attempts => {
                meter.count(crate::metrics::PUSH_RETRIED, 1);
                tokio::time::sleep(policy.backoff(attempt)).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryJobStore;
    use crate::domain::Transition;

    fn update(job_id: &str, input_file: Option<&str>) -> JobUpdate {
        JobUpdate {
            job_id: job_id.into(),
            input_file: input_file.map(Into::into),
            transition: Transition::Progressing,
            progress: Some(10),
            job_order: crate::domain::job_order_from_id(job_id).unwrap_or(0),
            phase: None,
            event_at: None,
            observed: Default::default(),
        }
    }

    #[tokio::test]
    async fn the_pointer_follows_the_newest_job_only() {
        // GIVEN a store where a file's newer job is recorded first
        let store = MemoryJobStore::default();
        let newer = record_update(&store, &update("1700000000002-new", Some("f.mp4"))).await.unwrap();
        assert!(newer.pointer_moved && newer.applied.changed);

        // WHEN an older job of the same file, and a job without a file, are recorded
        let older = record_update(&store, &update("1700000000001-old", Some("f.mp4"))).await.unwrap();
        let anonymous = record_update(&store, &update("1700000000003-anon", None)).await.unwrap();

        // THEN both are stored, but the file still points at the newer job
        assert!(older.applied.changed && !older.pointer_moved);
        assert!(anonymous.applied.changed && !anonymous.pointer_moved);
        assert_eq!(store.latest_job_id("f.mp4").await.unwrap().as_deref(), Some("1700000000002-new"));
    }

    #[tokio::test]
    async fn a_progress_report_points_the_file_only_when_the_pointer_is_behind() {
        let report = |job_id: &str| {
            let mut report = update(job_id, Some("f.mp4"));
            report.observed.sample =
                Some(crate::domain::eta::ProgressSample { at: 1, percent: Some(10), phase: None, frames: None });
            assert!(report.is_progress_report());
            report
        };
        // GIVEN a file with no pointer: a lone progress report points it (order-free ingest)
        let store = MemoryJobStore::default();
        assert!(record_update(&store, &report("1700000000002-new")).await.unwrap().pointer_moved);
        // WHEN more reports of that job and one of an older job arrive
        let again = record_update(&store, &report("1700000000002-new")).await.unwrap();
        let older = record_update(&store, &report("1700000000001-old")).await.unwrap();
        // THEN nothing moves, and a newer job's report moves it
        assert!(!again.pointer_moved && !older.pointer_moved);
        assert!(record_update(&store, &report("1700000000003-newest")).await.unwrap().pointer_moved);
        assert_eq!(store.latest_job_id("f.mp4").await.unwrap().as_deref(), Some("1700000000003-newest"));
    }
}
