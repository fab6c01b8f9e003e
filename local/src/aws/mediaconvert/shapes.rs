//! The REST API's shapes: a CreateJob request, a job as CreateJob and GetJob answer it, a job
//! template. A job's settings are kept as sent and echoed whole, as MediaConvert does; the
//! simulator reads them through the domain's GetJob types (`mcpush_core::domain::get_job`), the
//! same the reconciler reads.

use std::collections::HashMap;

use mcpush_core::domain::get_job::JobSettings;
use mcpush_core::domain::mediaconvert::OutputGroupDetail;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The body of `CreateJob`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateJobRequest {
    pub role: Option<String>,
    pub job_template: Option<String>,
    pub queue: Option<String>,
    pub client_request_token: Option<String>,
    /// `SECONDS_n`: how often a running job reports (MediaConvert's default is 60 s).
    pub status_update_interval: Option<String>,
    #[serde(default)]
    pub user_metadata: HashMap<String, String>,
    #[serde(default)]
    pub settings: Value,
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
    pub settings: Value,
    pub status: String,
    pub status_update_interval: Option<String>,
    pub user_metadata: HashMap<String, String>,
    /// Epoch seconds.
    pub created_at: Option<i64>,
    pub job_percent_complete: Option<u64>,
    pub current_phase: Option<String>,
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
    pub output_group_details: Option<Vec<OutputGroupDetail>>,
}

impl CreateJobRequest {
    /// The settings as the simulator reads them; an error when they do not have the API's shape.
    pub fn parsed_settings(&self) -> Result<JobSettings, serde_json::Error> {
        if self.settings.is_null() { Ok(JobSettings::default()) } else { JobSettings::deserialize(&self.settings) }
    }
}

impl Job {
    /// The settings as the simulator reads them (checked when the job was created).
    pub fn parsed_settings(&self) -> JobSettings {
        JobSettings::deserialize(&self.settings).unwrap_or_default()
    }

    pub fn input(&self) -> String {
        self.parsed_settings().inputs.into_iter().next().and_then(|i| i.file_input).unwrap_or_default()
    }

    /// Width and height of the job's first output that names them; 1280x720 otherwise.
    pub fn output_resolution(&self) -> (u32, u32) {
        let settings = self.parsed_settings();
        let outputs = settings.output_groups.iter().flat_map(|g| &g.outputs);
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
    pub settings: Value,
}
