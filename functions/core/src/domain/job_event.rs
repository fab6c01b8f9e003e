//! What backends are told: one `Job Status Changed` event per status transition of a job
//! (SUBMITTED, PROGRESSING, COMPLETE, ERROR, CANCELED; never progress alone), read from the status
//! table's stream images, old against new.
//!
//! A transition is one successful conditional write of the status table, so the stream carries it
//! once; what can repeat it is a redelivered stream batch. Consumers therefore dedupe on
//! `job_id` + `version` (EventBridge's own `id` differs on every publish).

use serde::Serialize;

use super::job::{JobRecord, JobStatus};
use super::status::{OutputBaseUrl, StatusView};

/// The event's `detail-type`.
pub const DETAIL_TYPE: &str = "Job Status Changed";
/// The event's `source` unless `EVENT_SOURCE` says otherwise.
pub const DEFAULT_SOURCE: &str = "mcpush";

/// The event's `detail`: the job, its status before, and the whole status view after.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JobStatusChanged {
    pub job_id: String,
    pub input_file: Option<String>,
    /// The status the job left; absent for a job's first state.
    pub previous_status: Option<JobStatus>,
    /// The state it reached (`version` among its fields: with `job_id`, the idempotency key).
    #[serde(flatten)]
    pub view: StatusView,
}

impl JobStatusChanged {
    /// The event a write from `old` to `new` calls for: `Some` when the status changed (or the
    /// job is new), `None` for progress, times or anything else alone.
    pub fn of(old: Option<&JobRecord>, new: &JobRecord, base: Option<&OutputBaseUrl>) -> Option<Self> {
        let previous_status = old.map(|o| o.job_status);
        if previous_status == Some(new.job_status) {
            return None;
        }
        Some(Self {
            job_id: new.job_id.clone(),
            input_file: new.input_file.clone(),
            previous_status,
            view: StatusView::from(new).linked(base),
        })
    }

    /// The idempotency key consumers dedupe on.
    pub fn key(&self) -> (String, u64) {
        (self.job_id.clone(), self.view.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: JobStatus, progress: u8, version: u64) -> JobRecord {
        JobRecord {
            job_id: "1700000000000-bbbhls".into(),
            input_file: Some("a.mp4".into()),
            job_status: status,
            progress_rate: progress,
            version: Some(version),
            ..JobRecord::default()
        }
    }

    #[test]
    fn a_status_change_is_an_event_and_progress_alone_is_not() {
        let submitted = record(JobStatus::Submitted, 0, 1);
        let first = JobStatusChanged::of(None, &submitted, None).expect("a new job is news");
        assert_eq!((first.previous_status, first.view.job_status, first.key().1), (None, JobStatus::Submitted, 1));
        let running = record(JobStatus::Progressing, 10, 2);
        let started = JobStatusChanged::of(Some(&submitted), &running, None).expect("a transition");
        assert_eq!(started.previous_status, Some(JobStatus::Submitted));
        assert_eq!(JobStatusChanged::of(Some(&running), &record(JobStatus::Progressing, 40, 3), None), None);
        let done = JobStatusChanged::of(Some(&running), &record(JobStatus::Complete, 100, 4), None).unwrap();
        let detail = serde_json::to_value(&done).unwrap();
        assert_eq!(detail["job_id"], "1700000000000-bbbhls");
        assert_eq!(detail["previous_status"], "PROGRESSING");
        assert_eq!((detail["job_status"].as_str(), detail["version"].as_u64()), (Some("COMPLETE"), Some(4)));
        assert_eq!(detail["input_file"], "a.mp4");
    }
}
