//! What a watcher sees of a job: the body of `/media/status` and the payload of the WebSocket
//! `status` message, derived from a [`JobRecord`] in one place.

use std::collections::BTreeMap;

use serde::Serialize;

use super::job::{JobRecord, JobStatus, Phase};

/// A job's visible state, fields in the seed's order.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusView {
    pub job_status: JobStatus,
    pub progress_rate: u8,
    /// While PROGRESSING, the furthest `jobProgress.currentPhase` reported. Shown by WebSocket
    /// messages and by the `?input_file=` extension; `?job_id=` keeps the seed's exact body.
    pub current_phase: Option<Phase>,
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
        Self {
            job_status: r.job_status,
            progress_rate: r.progress_rate,
            current_phase: r.current_phase.filter(|_| r.job_status == JobStatus::Progressing),
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
