//! What a watcher sees of a job: the body of `/media/status` and the payload of the WebSocket
//! `status` message, derived from a [`JobRecord`] in one place.

use std::collections::BTreeMap;

use serde::Serialize;

use super::eta;
use super::job::{JobRecord, JobStatus, Phase, job_order_from_id};

/// A job's visible state, fields in the seed's order.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusView {
    pub job_status: JobStatus,
    pub progress_rate: u8,
    /// While PROGRESSING, the furthest `jobProgress.currentPhase` reported. Shown by WebSocket
    /// messages and by the `?input_file=` extension; `?job_id=` keeps the seed's exact body.
    pub current_phase: Option<Phase>,
    /// While PROGRESSING, each phase's furthest percent (`jobProgress.phaseProgress`).
    pub phase_progress: Option<BTreeMap<Phase, u8>>,
    /// Epoch milliseconds on MediaConvert's clock, each absent until known: when it received
    /// the job, when the job started, when it ended, and its latest event.
    pub submitted_at: Option<u64>,
    pub started_at: Option<u64>,
    pub finished_at: Option<u64>,
    pub updated_at: Option<u64>,
    /// SUBMITTED → PROGRESSING.
    pub queued_ms: Option<u64>,
    /// PROGRESSING → the latest event, or the end.
    pub elapsed_ms: Option<u64>,
    /// While PROGRESSING: estimated milliseconds from `updated_at` to COMPLETE ([`super::eta`]);
    /// absent when the reports do not tell.
    pub eta_ms: Option<u64>,
    pub duration_ms: Option<u64>,
    pub width_px: Option<u32>,
    pub height_px: Option<u32>,
    pub output_path: Option<String>,
    pub playlists: Option<BTreeMap<String, String>>,
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
}

impl From<&JobRecord> for StatusView {
    fn from(r: &JobRecord) -> Self {
        let complete = r.job_status == JobStatus::Complete;
        let error = r.job_status == JobStatus::Error;
        let running = r.job_status == JobStatus::Progressing;
        let submitted_at = r.submitted_at.or_else(|| job_order_from_id(&r.job_id));
        let since = |from: Option<u64>, to: Option<u64>| Some(to?.saturating_sub(from?));
        Self {
            job_status: r.job_status,
            progress_rate: r.progress_rate,
            current_phase: r.current_phase.filter(|_| running),
            phase_progress: r.phase_progress.clone().filter(|p| running && !p.is_empty()),
            submitted_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            updated_at: r.updated_at,
            queued_ms: since(submitted_at, r.started_at),
            elapsed_ms: since(r.started_at, r.finished_at.or(r.updated_at)),
            eta_ms: r.samples.as_deref().filter(|_| running).and_then(eta::eta_ms),
            duration_ms: r.duration_ms.filter(|_| complete),
            width_px: r.width_px.filter(|_| complete),
            height_px: r.height_px.filter(|_| complete),
            output_path: r.output_path.clone().filter(|_| complete),
            playlists: complete.then(|| r.playlists.clone().unwrap_or_default()),
            error_code: r.error_code.filter(|_| error),
            error_message: r.error_message.clone().filter(|_| error),
        }
    }
}

/// The seed's `GET /media/status?job_id=` body, exactly the fields its `success_response`
/// writes, in its order: a field added to [`StatusView`] cannot reach the seed's clients.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SeedStatus {
    pub success: bool,
    pub job_status: JobStatus,
    pub progress_rate: u8,
    pub duration_ms: Option<u64>,
    pub width_px: Option<u32>,
    pub height_px: Option<u32>,
    pub output_path: Option<String>,
    pub playlists: Option<BTreeMap<String, String>>,
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
}

impl From<StatusView> for SeedStatus {
    fn from(view: StatusView) -> Self {
        Self {
            success: true,
            job_status: view.job_status,
            progress_rate: view.progress_rate,
            duration_ms: view.duration_ms,
            width_px: view.width_px,
            height_px: view.height_px,
            output_path: view.output_path,
            playlists: view.playlists,
            error_code: view.error_code,
            error_message: view.error_message,
        }
    }
}
