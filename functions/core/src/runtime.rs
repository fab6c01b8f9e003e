//! What a Lambda function's start needs beyond lambda_runtime: a failed init (a missing or
//! invalid variable, an unreadable secret) is reported to the Runtime API's `/init/error` with
//! its message, as Lambda expects, so the invoke that started the environment fails with the
//! variable's name instead of a bare "Runtime exited".

use std::fmt::Display;

use lambda_runtime_api_client::body::Body;

/// `result`'s value, or its error after reporting it to `/runtime/init/error` (outside Lambda,
/// without `AWS_LAMBDA_RUNTIME_API`, the error is only returned).
pub async fn init<T, E: Display>(result: Result<T, E>) -> Result<T, InitError> {
    match result {
        Ok(value) => Ok(value),
        Err(e) => {
            let error = InitError(e.to_string());
            tracing::error!(error = %error, "init failed");
            report(&error).await;
            Err(error)
        }
    }
}

/// A function that could not start, with the reason.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InitError(pub String);

async fn report(error: &InitError) {
    let Ok(client) = lambda_runtime_api_client::Client::builder().build() else { return };
    let body = serde_json::json!({"errorType": "Runtime.InitError", "errorMessage": error.0}).to_string();
    let request = lambda_runtime_api_client::build_request()
        .method("POST")
        .uri("/2018-06-01/runtime/init/error")
        .header("lambda-runtime-function-error-type", "Runtime.InitError")
        .body(Body::from(body.into_bytes()));
    match request {
        Ok(request) => {
            if let Err(e) = client.call(request).await {
                tracing::warn!(error = %e, "init error not reported to the Runtime API");
            }
        }
        Err(e) => tracing::warn!(error = %e, "init error report not built"),
    }
}
