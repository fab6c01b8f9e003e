//! `status-api`: `GET /media/status?job_id=J` (or `?input_file=F` for F's newest job) → status,
//! progress and, when finished, the outputs or the error.
//!
//! `?job_id=` answers exactly as the seed did. The `?input_file=` extension also names the job
//! (`job_id`) and, while PROGRESSING, its `current_phase`, as the WebSocket `status` message does.

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use serde::Serialize;

use super::http::{self, Answer, RestContext};
use crate::domain::{SeedStatus, StatusView};

/// The `?input_file=` body: the seed's fields, the job's id, and the whole [`StatusView`].
#[serde_with::skip_serializing_none]
#[derive(Serialize)]
struct StatusBody {
    success: bool,
    /// Which job the answer is about.
    job_id: Option<String>,
    #[serde(flatten)]
    view: StatusView,
}

/// With tokens on, `token` must cover the file (`?input_file=`) or the job's input file
/// (`?job_id=`): 403 otherwise, naming why.
pub async fn handle(ctx: &RestContext<'_>, event: serde_json::Value, now_secs: u64) -> ApiGatewayV2httpResponse {
    http::serve(event, ctx.origins, |request| async move {
        let token = request.optional_param("token");
        let by_file = request.optional_param("input_file").filter(|_| request.optional_param("job_id").is_none());
        if let Some(input_file) = by_file
            && let Err(e) = ctx.access.check(input_file, token, now_secs)
        {
            return http::forbidden(&e);
        }
        let job_id = match by_file {
            Some(input_file) => match ctx.jobs.latest_job_id(input_file).await {
                Ok(Some(job_id)) => job_id,
                Ok(None) => return Answer::error(422, "Not found item."),
                Err(e) => return internal(&e),
            },
            None => match request.param("job_id") {
                Ok(job_id) => job_id.to_owned(),
                Err(answer) => return answer,
            },
        };
        if by_file.is_none() && ctx.access.required() && token.is_none() {
            return http::forbidden(&crate::domain::token::TokenError::Missing);
        }
        // An id no job can have is not looked up (a key DynamoDB would refuse): it is unknown.
        let found = match crate::domain::ids::check_job_id(&job_id) {
            Ok(()) => ctx.jobs.job(&job_id).await,
            Err(_) => Ok(None),
        };
        match found {
            Ok(Some(record)) => {
                if by_file.is_none()
                    && let Err(e) = ctx.access.check_job(record.input_file.as_deref(), token, now_secs)
                {
                    return http::forbidden(&e);
                }
                let view = StatusView::from(&record).linked(ctx.output_base_url);
                match by_file {
                    Some(_) => Answer::ok(&StatusBody { success: true, job_id: Some(record.job_id), view }),
                    None => Answer::ok(&SeedStatus::from(view)),
                }
            }
            Ok(None) => match ctx.access.refuse_unknown(token, now_secs) {
                Err(e) if by_file.is_none() => http::forbidden(&e),
                _ => Answer::error(422, "Not found item."),
            },
            Err(e) => internal(&e),
        }
    })
    .await
}

fn internal(e: &crate::ports::StoreError) -> Answer {
    tracing::error!(error = %e, "status lookup failed");
    Answer::error(500, "Internal error.")
}
