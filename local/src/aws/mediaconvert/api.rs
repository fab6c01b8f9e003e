//! The REST API aws-sdk-mediaconvert speaks: `GetJobTemplate`, `CreateJob`, `GetJob`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::aws::s3::split_s3_url;

use super::shapes::CreateJobRequest;
use super::timeline::MediaConvertSim;

impl MediaConvertSim {
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/2017-08-29/jobTemplates/{name}", get(get_job_template))
            .route("/2017-08-29/jobs", post(create_job))
            .route("/2017-08-29/jobs/{id}", get(get_job))
            .with_state(self.clone())
    }
}

async fn get_job(State(sim): State<Arc<MediaConvertSim>>, Path(id): Path<String>) -> Response {
    match sim.job(&id) {
        Some(job) => Json(json!({"job": job})).into_response(),
        None => error(StatusCode::NOT_FOUND, "NotFoundException", format!("The job {id} does not exist.")),
    }
}

/// MediaConvert's error answer: status, `x-amzn-ErrorType` and `{"message": ...}`.
fn error(status: StatusCode, kind: &'static str, message: String) -> Response {
    let mut response = (status, Json(json!({"message": message}))).into_response();
    response.headers_mut().insert("x-amzn-errortype", HeaderValue::from_static(kind));
    response
}

async fn get_job_template(State(sim): State<Arc<MediaConvertSim>>, Path(name): Path<String>) -> Response {
    let template = sim.template();
    if name == template.name || name == template.arn {
        Json(json!({"jobTemplate": template})).into_response()
    } else {
        error(
            StatusCode::NOT_FOUND,
            "NotFoundException",
            format!("Job template {name:?} does not exist (the simulator knows {:?})", sim.template_name()),
        )
    }
}

async fn create_job(State(sim): State<Arc<MediaConvertSim>>, body: axum::body::Bytes) -> Response {
    let request: CreateJobRequest =
        match serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&body)) {
            Ok(v) => v,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "BadRequestException",
                    format!("request body is not a CreateJob request: {e}"),
                );
            }
        };
    let Some(role) = request.role.clone().filter(|r| !r.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "BadRequestException", "/role is required".into());
    };
    if let Some(name) = request.job_template.as_deref().filter(|name| *name != sim.template_name()) {
        return error(StatusCode::BAD_REQUEST, "BadRequestException", format!("job template {name:?} does not exist"));
    }
    let settings = match request.parsed_settings() {
        Ok(settings) => settings,
        Err(e) => return error(StatusCode::BAD_REQUEST, "BadRequestException", format!("/settings: {e}")),
    };
    let Some(input) = settings.inputs.first().and_then(|i| i.file_input.clone()).filter(|i| split_s3_url(i).is_some())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "BadRequestException",
            "/settings/inputs/0/fileInput must be an s3:// URL".into(),
        );
    };
    let job = sim.start(request, role, &input);
    (StatusCode::CREATED, Json(json!({"job": job}))).into_response()
}
