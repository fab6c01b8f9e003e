//! `job-id-api`: `GET /media/job_id?input_file=F` → the newest job of F.

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use serde::Serialize;

use super::http::{self, Answer};
use crate::domain::AllowedOrigins;
use crate::ports::JobStore;

#[derive(Serialize)]
struct JobIdBody<'a> {
    success: bool,
    job_id: &'a str,
}

pub async fn handle(store: &dyn JobStore, origins: &AllowedOrigins, event: serde_json::Value) -> ApiGatewayV2httpResponse {
    http::serve(event, origins, |request| async move {
        let input_file = match request.param("input_file") {
            Ok(v) => v,
            Err(answer) => return answer,
        };
        match store.latest_job_id(input_file).await {
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
