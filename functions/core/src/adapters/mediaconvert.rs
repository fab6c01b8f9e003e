//! [`JobCreator`] and [`JobInspector`] over AWS Elemental MediaConvert (aws-sdk-mediaconvert).
//!
//! Jobs are created from the configured job template. To send each upload's outputs to its own
//! folder, the template's output groups are read once (GetJobTemplate, cached for the life of the
//! process) and passed with every job with their destination replaced.

use async_trait::async_trait;
use aws_sdk_mediaconvert::Client;
use aws_sdk_mediaconvert::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_mediaconvert::types::{Input, JobSettings, OutputGroup};
use tokio::sync::OnceCell;

use aws_sdk_mediaconvert::types as sdk;

use crate::config::CreateJobConfig;
use crate::domain::get_job::{self, MediaConvertJob};
use crate::domain::mediaconvert::{INPUT_FILE_KEY, OutputDetail, OutputGroupDetail, VideoDetails};
use crate::ports::{InspectError, JobCreator, JobCreatorError, JobInspector, NewJob};

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
                    .ok_or_else(|| {
                        JobCreatorError::Rejected(format!("job template {:?} not returned", self.config.job_template))
                    })?;
                let groups = template.settings.and_then(|s| s.output_groups).unwrap_or_default();
                if groups.is_empty() {
                    return Err(JobCreatorError::Rejected(format!(
                        "job template {:?} has no output groups",
                        self.config.job_template
                    )));
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
            matches!(
                service.err().code(),
                Some("BadRequestException" | "NotFoundException" | "ForbiddenException" | "ConflictException")
            )
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
            .status_update_interval(sdk::StatusUpdateInterval::from(
                self.config.status_update_interval.as_api().as_str(),
            ))
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

/// [`JobInspector`] over MediaConvert's GetJob: the SDK's job translated into the domain's
/// [`MediaConvertJob`] (the fields the reconciler reads, nothing else).
pub struct MediaConvertJobInspector {
    client: Client,
}

impl MediaConvertJobInspector {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl JobInspector for MediaConvertJobInspector {
    async fn get_job(&self, job_id: &str) -> Result<Option<MediaConvertJob>, InspectError> {
        // The SDK builds the request URI from the id and panics on one it cannot hold: only a
        // job id of MediaConvert's shape goes out.
        crate::domain::ids::check_job_id(job_id).map_err(|e| InspectError(Box::new(e)))?;
        match self.client.get_job().id(job_id).send().await {
            Ok(output) => Ok(output.job.as_ref().map(domain_job)),
            Err(SdkError::ServiceError(e)) if e.err().is_not_found_exception() => Ok(None),
            Err(e) => Err(InspectError(Box::new(e))),
        }
    }
}

fn domain_job(job: &sdk::Job) -> MediaConvertJob {
    let seconds = |t: Option<&aws_sdk_mediaconvert::primitives::DateTime>| t.map(|t| t.secs());
    let owned = |s: Option<&str>| s.map(str::to_owned);
    MediaConvertJob {
        id: job.id().unwrap_or_default().to_owned(),
        status: job.status().map(|s| s.as_str().to_owned()),
        created_at: seconds(job.created_at()),
        timing: job.timing().map(|t| get_job::Timing {
            submit_time: seconds(t.submit_time()),
            start_time: seconds(t.start_time()),
            finish_time: seconds(t.finish_time()),
        }),
        job_percent_complete: job.job_percent_complete().map(|p| p.max(0) as u64),
        current_phase: job.current_phase().map(|p| p.as_str().to_owned()),
        error_code: job.error_code().map(i64::from),
        error_message: owned(job.error_message()),
        user_metadata: job.user_metadata().cloned(),
        settings: job.settings().map(|s| get_job::JobSettings {
            inputs: s.inputs().iter().map(|i| get_job::Input { file_input: owned(i.file_input()) }).collect(),
            output_groups: s.output_groups().iter().map(domain_group).collect(),
        }),
        output_group_details: Some(
            job.output_group_details()
                .iter()
                .map(|g| OutputGroupDetail {
                    output_details: Some(
                        g.output_details()
                            .iter()
                            .map(|o| OutputDetail {
                                duration_in_ms: o.duration_in_ms().map(|d| d.max(0) as u64),
                                video_details: o.video_details().map(|v| VideoDetails {
                                    width_in_px: v.width_in_px().map(|w| w.max(0) as u32),
                                    height_in_px: v.height_in_px().map(|h| h.max(0) as u32),
                                    ..VideoDetails::default()
                                }),
                                ..OutputDetail::default()
                            })
                            .collect(),
                    ),
                    ..OutputGroupDetail::default()
                })
                .collect(),
        )
        .filter(|groups: &Vec<_>| !groups.is_empty()),
    }
}

fn domain_group(group: &OutputGroup) -> get_job::OutputGroup {
    let owned = |s: Option<&str>| s.map(str::to_owned);
    let destination = |d: Option<&str>| Some(get_job::GroupDestination { destination: owned(d) });
    get_job::OutputGroup {
        name: owned(group.name()),
        output_group_settings: group.output_group_settings().map(|s| get_job::OutputGroupSettings {
            kind: s.r#type().map(|t| t.as_str().to_owned()),
            hls_group_settings: s.hls_group_settings().and_then(|g| destination(g.destination())),
            cmaf_group_settings: s.cmaf_group_settings().map(|g| get_job::CmafGroupSettings {
                destination: owned(g.destination()),
                write_hls_manifest: g.write_hls_manifest().map(|w| w.as_str().to_owned()),
                write_dash_manifest: g.write_dash_manifest().map(|w| w.as_str().to_owned()),
            }),
            dash_iso_group_settings: s.dash_iso_group_settings().and_then(|g| destination(g.destination())),
            ms_smooth_group_settings: s.ms_smooth_group_settings().and_then(|g| destination(g.destination())),
            file_group_settings: s.file_group_settings().and_then(|g| destination(g.destination())),
        }),
        outputs: group
            .outputs()
            .iter()
            .map(|o| get_job::Output {
                name_modifier: owned(o.name_modifier()),
                extension: owned(o.extension()),
                video_description: o.video_description().map(|v| get_job::VideoDescription {
                    width: v.width().map(|w| w.max(0) as u32),
                    height: v.height().map(|h| h.max(0) as u32),
                    codec_settings: v
                        .codec_settings()
                        .map(|c| get_job::CodecSettings { codec: c.codec().map(|codec| codec.as_str().to_owned()) }),
                }),
                container_settings: o
                    .container_settings()
                    .map(|c| get_job::ContainerSettings { container: c.container().map(|t| t.as_str().to_owned()) }),
            })
            .collect(),
    }
}
