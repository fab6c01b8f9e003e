//! The Lambda Invoke API (`POST /2015-03-31/functions/{function}/invocations`), as
//! aws-sdk-lambda and `aws lambda invoke --endpoint-url` call it: the raw event in, the handler's
//! result out; a handler error answers 200 with `X-Amz-Function-Error: Unhandled` and Lambda's
//! error body; an unknown function 404.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use mcpush_core::handlers::{create_job, progress_ingest, reconcile};
use serde_json::{Value, json};

use crate::run::stack::Stack;

/// The functions the Invoke API answers to: one table, their names and their handlers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Function {
    CreateJob,
    ProgressIngest,
    JobIdApi,
    StatusApi,
    ProgressPush,
    Reconcile,
}

impl Function {
    pub const ALL: [Function; 6] =
        [Self::CreateJob, Self::ProgressIngest, Self::JobIdApi, Self::StatusApi, Self::ProgressPush, Self::Reconcile];

    /// The function's name, as in the SAM template.
    pub fn name(self) -> &'static str {
        match self {
            Self::CreateJob => "create-job",
            Self::ProgressIngest => "progress-ingest",
            Self::JobIdApi => "job-id-api",
            Self::StatusApi => "status-api",
            Self::ProgressPush => "progress-push",
            Self::Reconcile => "reconcile",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    /// `/2015-03-31/functions/{name}/invocations`.
    pub fn invoke_path(self) -> String {
        format!("/2015-03-31/functions/{}/invocations", self.name())
    }

    /// Runs the function's handler on `event`: its result, or its error.
    pub async fn invoke(self, stack: &Stack, event: Value) -> Result<Value, InvokeError> {
        Ok(match self {
            Self::CreateJob => serde_json::to_value(stack.create_job(&event).await?)?,
            Self::ProgressIngest => serde_json::to_value(stack.progress_ingest(&event).await?)?,
            Self::JobIdApi => serde_json::to_value(stack.job_id_api(event).await)?,
            Self::StatusApi => serde_json::to_value(stack.status_api(event).await)?,
            Self::ProgressPush => serde_json::to_value(stack.progress_push(&event).await)?,
            Self::Reconcile => serde_json::to_value(stack.reconcile().await?)?,
        })
    }
}

/// A function's failure, as Lambda reports it (`x-amz-function-error`).
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error(transparent)]
    CreateJob(#[from] create_job::CreateJobError),
    #[error(transparent)]
    Ingest(#[from] progress_ingest::IngestError),
    #[error(transparent)]
    Reconcile(#[from] reconcile::ReconcileError),
    #[error("the result is not JSON: {0}")]
    Result(#[from] serde_json::Error),
}

pub fn router(stack: Stack) -> Router {
    Router::new().route("/2015-03-31/functions/{function}/invocations", post(invoke)).with_state(stack)
}

async fn invoke(State(stack): State<Stack>, Path(function): Path<String>, body: Bytes) -> Response {
    let Some(function) = Function::from_name(&function) else {
        return function_error(
            "ResourceNotFoundException",
            &format!("Function not found: {function}"),
            StatusCode::NOT_FOUND,
        );
    };
    let event: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return function_error(
                "InvalidRequestContentException",
                &format!("Could not parse request body into json: {e}"),
                StatusCode::BAD_REQUEST,
            );
        }
    };
    match function.invoke(&stack, event).await {
        Ok(value) => Json(value).into_response(),
        Err(error) => {
            let body = json!({"errorMessage": error.to_string(), "errorType": "HandlerError"});
            let mut response = Json(body).into_response();
            response.headers_mut().insert("x-amz-function-error", HeaderValue::from_static("Unhandled"));
            response
        }
    }
}

fn function_error(kind: &'static str, message: &str, status: StatusCode) -> Response {
    let mut response = (status, Json(json!({"Type": "User", "Message": message}))).into_response();
    response.headers_mut().insert("x-amzn-errortype", HeaderValue::from_static(kind));
    response
}
