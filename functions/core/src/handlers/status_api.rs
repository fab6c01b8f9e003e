//! `status-api`: `GET /media/status?job_id=J` (or `?input_file=F` for F's newest job) → status,
//! progress and, when finished, the outputs or the error.

use std::collections::BTreeMap;

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use serde::Serialize;

use super::http::{self, Answer};
use crate::domain::{AllowedOrigins, JobRecord, JobStatus};
use crate::ports::JobStore;

/// The body of `/media/status`, fields in the seed's order; also the payload of the WebSocket
/// `status` message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusView {
    pub job_status: JobStatus,
    pub progress_rate: u8,
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
    #[serde(flatten)]
    view: StatusView,
}

pub async fn handle(store: &dyn JobStore, origins: &AllowedOrigins, event: serde_json::Value) -> ApiGatewayV2httpResponse {
    http::serve(event, origins, |request| async move {
        let job_id = match request.optional_param("input_file").filter(|_| request.optional_param("job_id").is_none()) {
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
            Ok(Some(record)) => Answer::ok(&StatusBody { success: true, view: StatusView::from(&record) }),
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
