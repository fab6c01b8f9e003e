//! `status-api`: `GET /media/status?job_id=J` (or `?input_file=F` for F's newest job) → status,
//! progress and, when finished, the outputs or the error.
//!
//! `?job_id=` answers exactly as the seed did. The `?input_file=` extension also names the job
//! (`job_id`) and, while PROGRESSING, its `current_phase`, as the WebSocket `status` message does.

use std::collections::BTreeMap;

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use serde::Serialize;

use super::http::{self, Answer};
use crate::domain::{AllowedOrigins, JobRecord, JobStatus, Phase};
use crate::ports::JobStore;

/// The body of `/media/status`, fields in the seed's order; also the payload of the WebSocket
/// `status` message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusView {
    pub job_status: JobStatus,
    pub progress_rate: u8,
    /// While PROGRESSING, the furthest `jobProgress.currentPhase` reported. Shown by WebSocket
    /// messages and by the `?input_file=` extension; `?job_id=` keeps the seed's exact body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_phase: Option<Phase>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width_px: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height_px: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub playlists: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
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

#[derive(Serialize)]
struct StatusBody {
    success: bool,
    /// Only for `?input_file=`: which job the answer is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    job_id: Option<String>,
    #[serde(flatten)]
    view: StatusView,
}

pub async fn handle(store: &dyn JobStore, origins: &AllowedOrigins, event: serde_json::Value) -> ApiGatewayV2httpResponse {
    http::serve(event, origins, |request| async move {
        let by_file = request.optional_param("input_file").filter(|_| request.optional_param("job_id").is_none());
        let job_id = match by_file {
            Some(input_file) => match store.latest_job_id(input_file).await {
                Ok(Some(job_id)) => job_id,
                Ok(None) => return Answer::error(422, "Not found item."),
                Err(e) => return internal(&e),
            },
            None => match request.param("job_id") {
                Ok(job_id) => job_id.to_owned(),
                Err(answer) => return answer,
            },
        };
        match store.job(&job_id).await {
            Ok(Some(record)) => {
                let mut view = StatusView::from(&record);
                if by_file.is_none() {
                    view.current_phase = None;
                }
                let job_id = by_file.is_some().then_some(record.job_id);
                Answer::ok(&StatusBody { success: true, job_id, view })
            }
            Ok(None) => Answer::error(422, "Not found item."),
            Err(e) => internal(&e),
        }
    })
    .await
}

fn internal(e: &crate::ports::StoreError) -> Answer {
    tracing::error!(error = %e, "status lookup failed");
    Answer::error(500, "Internal error.")
}
