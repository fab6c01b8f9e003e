//! `job-id-api`: `GET /media/job_id?input_file=F` → the newest job of F.

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use serde::Serialize;

use super::http::{self, Answer, RestContext};

#[derive(Serialize)]
struct JobIdBody<'a> {
    success: bool,
    job_id: &'a str,
}

/// With tokens on, `token` must cover `input_file` (403 otherwise, naming why).
pub async fn handle(ctx: &RestContext<'_>, event: serde_json::Value, now_secs: u64) -> ApiGatewayV2httpResponse {
    http::serve(event, ctx.origins, |request| async move {
        let input_file = match request.param("input_file") {
            Ok(v) => v,
            Err(answer) => return answer,
        };
        if let Err(e) = ctx.access.check(input_file, request.optional_param("token"), now_secs) {
            return http::forbidden(&e);
        }
        match ctx.jobs.latest_job_id(input_file).await {
            Ok(Some(job_id)) => Answer::ok(&JobIdBody { success: true, job_id: &job_id }),
            Ok(None) => Answer::error(422, "Not found item."),
            Err(e) => {
                tracing::error!(error = %e, input_file, "job-id lookup failed");
                Answer::error(500, "Internal error.")
            }
        }
    })
    .await
}
