//! `status-api`: `GET /media/status?job_id=J` (or `?input_file=F` for F's newest job) → status,
//! progress and, when finished, the outputs or the error.
//!
//! `?job_id=` answers exactly as the seed did. The `?input_file=` extension also names the job
//! (`job_id`) and, while PROGRESSING, its `current_phase`, as the WebSocket `status` message does.

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use serde::Serialize;

use super::http::{self, Answer};
use crate::domain::{AllowedOrigins, StatusView};
use crate::ports::JobStore;

#[serde_with::skip_serializing_none]
#[derive(Serialize)]
struct StatusBody {
    success: bool,
    /// Only for `?input_file=`: which job the answer is about.
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
                let view = StatusView::from(&record);
                let view = if by_file.is_some() { view } else { view.without_phase() };
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
