//! [`JobCreator`] over AWS Elemental MediaConvert (aws-sdk-mediaconvert).
//!
//! Jobs are created from the configured job template. To send each upload's outputs to its own
//! folder, the template's output groups are read once (GetJobTemplate, cached for the life of the
//! process) and passed with every job with their destination replaced.

use async_trait::async_trait;
use aws_sdk_mediaconvert::Client;
use aws_sdk_mediaconvert::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_mediaconvert::types::{Input, JobSettings, OutputGroup};
use tokio::sync::OnceCell;

use crate::config::CreateJobConfig;
use crate::domain::mediaconvert::INPUT_FILE_KEY;
use crate::ports::{JobCreator, JobCreatorError, NewJob};

/// `userMetadata` key of the marker that tells this stack's jobs from others in the account.
pub const MARKER_KEY: &str = "notifier";

pub struct MediaConvertJobCreator {
    client: Client,
    config: CreateJobConfig,
    output_groups: OnceCell<Vec<OutputGroup>>,
}

impl MediaConvertJobCreator {
    pub fn new(client: Client, config: CreateJobConfig) -> Self {
        Self { client, config, output_groups: OnceCell::new() }
    }

    async fn template_output_groups(&self) -> Result<&Vec<OutputGroup>, JobCreatorError> {
        self.output_groups
            .get_or_try_init(|| async {
                let template = self
                    .client
                    .get_job_template()
                    .name(&self.config.job_template)
                    .send()
                    .await
                    .map_err(translate)?
                    .job_template
                    .ok_or_else(|| JobCreatorError::Rejected(format!("job template {:?} not returned", self.config.job_template)))?;
                let groups = template.settings.and_then(|s| s.output_groups).unwrap_or_default();
                if groups.is_empty() {
                    return Err(JobCreatorError::Rejected(format!("job template {:?} has no output groups", self.config.job_template)));
                }
                Ok(groups)
            })
            .await
    }
}

fn with_destination(group: &OutputGroup, destination: &str) -> OutputGroup {
    let mut group = group.clone();
    if let Some(settings) = group.output_group_settings.as_mut() {
        let destination = Some(destination.to_owned());
        if let Some(s) = settings.hls_group_settings.as_mut() {
            s.destination = destination.clone();
        }
        if let Some(s) = settings.cmaf_group_settings.as_mut() {
            s.destination = destination.clone();
        }
        if let Some(s) = settings.dash_iso_group_settings.as_mut() {
            s.destination = destination.clone();
        }
        if let Some(s) = settings.file_group_settings.as_mut() {
            s.destination = destination.clone();
        }
        if let Some(s) = settings.ms_smooth_group_settings.as_mut() {
            s.destination = destination;
        }
    }
    group
}

fn translate<E, R>(e: SdkError<E, R>) -> JobCreatorError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let client_fault = match &e {
        SdkError::ServiceError(service) => {
            matches!(service.err().code(), Some("BadRequestException" | "NotFoundException" | "ForbiddenException" | "ConflictException"))
        }
        _ => false,
    };
    let message = DisplayErrorContext(e).to_string();
    if client_fault { JobCreatorError::Rejected(message) } else { JobCreatorError::Unavailable(message) }
}

#[async_trait]
impl JobCreator for MediaConvertJobCreator {
    async fn create_job(&self, job: &NewJob) -> Result<String, JobCreatorError> {
        let groups = self.template_output_groups().await?;
        let settings = JobSettings::builder()
            .inputs(Input::builder().file_input(&job.input_url).build())
            .set_output_groups(Some(groups.iter().map(|g| with_destination(g, &job.destination)).collect()))
            .build();
        let output = self
            .client
            .create_job()
            .job_template(&self.config.job_template)
            .role(&self.config.role_arn)
            .set_queue(self.config.queue.clone())
            .user_metadata(INPUT_FILE_KEY, &job.input_file)
            .user_metadata(MARKER_KEY, &self.config.marker)
            .client_request_token(&job.client_request_token)
            .settings(settings)
            .send()
            .await
            .map_err(translate)?;
        output
            .job
            .and_then(|j| j.id)
            .ok_or_else(|| JobCreatorError::Unavailable("CreateJob answered without a job id".into()))
    }
}
