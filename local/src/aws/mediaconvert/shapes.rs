//! The REST API's shapes: a CreateJob request, a job as CreateJob and GetJob answer it, a job
//! template. The job settings are the domain's (`mcpush_core::domain::get_job`), the same the
//! reconciler reads.

use std::collections::HashMap;

use mcpush_core::domain::get_job::{JobSettings, OutputGroup};
use mcpush_core::domain::mediaconvert::OutputGroupDetail;
use serde::{Deserialize, Serialize};

/// The body of `CreateJob`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateJobRequest {
    pub role: Option<String>,
    pub job_template: Option<String>,
    pub queue: Option<String>,
    pub client_request_token: Option<String>,
    #[serde(default)]
    pub user_metadata: HashMap<String, String>,
    #[serde(default)]
    pub settings: JobSettings,
}

/// A job, as `CreateJob` and `GetJob` answer it. The state fields follow what has happened so far
/// (whatever EventBridge delivered): while PROGRESSING `jobPercentComplete` and `currentPhase`; on
/// ERROR `errorCode` and `errorMessage`; on COMPLETE `outputGroupDetails` with only
/// `durationInMs` and `videoDetails`, no file paths, as the real API answers.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub id: String,
    pub arn: String,
    pub job_template: Option<String>,
    pub queue: String,
    pub role: String,
    pub settings: JobSettings,
    pub status: String,
    pub user_metadata: HashMap<String, String>,
    /// Epoch seconds.
    pub created_at: Option<i64>,
    pub job_percent_complete: Option<u64>,
    pub current_phase: Option<String>,
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
    pub output_group_details: Option<Vec<OutputGroupDetail>>,
}

impl Job {
    pub fn input(&self) -> &str {
        self.settings.inputs.first().and_then(|i| i.file_input.as_deref()).unwrap_or_default()
    }

    pub fn first_hls_group(&self) -> Option<&OutputGroup> {
        self.settings.output_groups.first()
    }

    /// Width and height of the job's first output that names them; 1280x720 otherwise.
    pub fn output_resolution(&self) -> (u32, u32) {
        let outputs = self.settings.output_groups.iter().flat_map(|g| &g.outputs);
        outputs
            .filter_map(|o| o.video_description.as_ref())
            .find_map(|v| Some((v.width?, v.height?)))
            .unwrap_or((1280, 720))
    }
}

/// A job template, as `GetJobTemplate` answers it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobTemplate {
    pub name: String,
    pub arn: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub settings: JobSettings,
}
