//! The simulated jobs: each job's timeline of "MediaConvert Job State Change" events, delivered
//! with the configured chaos, and its true state for GetJob.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcpush_core::config::StatusUpdateInterval;
use mcpush_core::domain::mediaconvert::{
    DETAIL_TYPE, InputAudio, InputDetail, InputVideo, JobProgress, OutputDetail, OutputGroupDetail, PhaseProgress,
    VideoDetails,
};
use mcpush_core::domain::{JobStateChange, MediaConvertEvent};
use regex::Regex;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;

use crate::aws::s3::{LocalS3, split_s3_url};

use super::shapes::{CreateJobRequest, Job, JobTemplate};

/// How the simulated jobs behave.
#[derive(Clone, Debug)]
pub struct SimSettings {
    /// `SIMULATOR_STEP_MS` (default 400): the wall time of [`STEP_SECONDS`] of MediaConvert's
    /// time (events of a job are at least one step apart, STATUS_UPDATEs one interval apart).
    pub step: Duration,
    /// `SIMULATOR_CHAOS` (0 to 1, default 0): the chance that an event is delayed by one to three
    /// steps (so later ones overtake it), and, separately, that it is delivered twice.
    pub chaos: f64,
    /// `SIMULATOR_DROP` (0 to 1, default 0): the chance that an event is never delivered, final
    /// ones included (the job's true state, which GetJob answers, still moves on).
    pub drop: f64,
    /// `SIMULATOR_FAIL_PATTERN` (default `(?i)fail`): input keys matching it fail to "probe".
    pub fail_pattern: Regex,
    /// `SIMULATOR_SEED` (default: random): makes the chaos repeatable.
    pub seed: Option<u64>,
    /// The only job template there is (create-job's `MEDIACONVERT_JOB_TEMPLATE`, default `local-hls`).
    pub template: String,
    /// `AWS_REGION` (default `us-east-1`): the region in ARNs and events.
    pub region: String,
    pub account: String,
    /// How long a transcode takes in MediaConvert's time, in seconds (default
    /// [`TRANSCODE_SECONDS`]; the cost bench models 10-minute jobs).
    pub transcode_seconds: f64,
}

impl Default for SimSettings {
    fn default() -> Self {
        Self {
            step: Duration::from_millis(400),
            chaos: 0.0,
            drop: 0.0,
            fail_pattern: Regex::new("(?i)fail").unwrap_or_else(|_| unreachable!("the built-in pattern compiles")),
            seed: None,
            template: "local-hls".into(),
            region: "us-east-1".into(),
            account: "000000000000".into(),
            transcode_seconds: TRANSCODE_SECONDS,
        }
    }
}

/// The MediaConvert time one `SIMULATOR_STEP_MS` stands for: the finest `StatusUpdateInterval`.
pub const STEP_SECONDS: f64 = 10.0;
/// How long a simulated transcode takes in MediaConvert's time by default.
pub const TRANSCODE_SECONDS: f64 = 60.0;

/// One event of a job's timeline: when (in steps from CreateJob) and what.
#[derive(Clone, Debug)]
pub struct Scheduled {
    pub at_step: f64,
    pub event: MediaConvertEvent,
}

/// The simulator: its REST API ([`MediaConvertSim::router`]) and its running jobs.
pub struct MediaConvertSim {
    settings: SimSettings,
    s3: Arc<LocalS3>,
    bus: UnboundedSender<MediaConvertEvent>,
    jobs_by_token: Mutex<HashMap<String, Job>>,
    /// Every job's true state, for `GetJob`.
    jobs_by_id: Mutex<HashMap<String, Job>>,
    rng: Mutex<fastrand::Rng>,
}

impl MediaConvertSim {
    pub fn new(settings: SimSettings, s3: Arc<LocalS3>, bus: UnboundedSender<MediaConvertEvent>) -> Arc<Self> {
        let rng = settings.seed.map(fastrand::Rng::with_seed).unwrap_or_default();
        Arc::new(Self {
            settings,
            s3,
            bus,
            jobs_by_token: Mutex::default(),
            jobs_by_id: Mutex::default(),
            rng: Mutex::new(rng),
        })
    }

    /// The job template: one HLS output group with a 1280x720 output.
    pub fn template(&self) -> JobTemplate {
        let Self { settings, .. } = self;
        JobTemplate {
            name: settings.template.clone(),
            arn: format!(
                "arn:aws:mediaconvert:{}:{}:jobTemplates/{}",
                settings.region, settings.account, settings.template
            ),
            kind: "CUSTOM".into(),
            settings: json!({"outputGroups": [{
                "name": "Apple HLS",
                "outputGroupSettings": {
                    "type": "HLS_GROUP_SETTINGS",
                    "hlsGroupSettings": {"destination": "s3://template-destination/", "segmentLength": 6, "minSegmentLength": 0},
                },
                "outputs": [{
                    "nameModifier": "_720p",
                    "videoDescription": {"width": 1280, "height": 720},
                    "containerSettings": {"container": "M3U8"},
                }],
            }, {
                "name": "Thumbnail",
                "outputGroupSettings": {
                    "type": "FILE_GROUP_SETTINGS",
                    "fileGroupSettings": {"destination": "s3://template-destination/"},
                },
                "outputs": [{
                    "nameModifier": "_thumb",
                    "extension": "jpg",
                    "videoDescription": {"width": THUMBNAIL_SIZE.0, "height": THUMBNAIL_SIZE.1, "codecSettings": {"codec": "FRAME_CAPTURE"}},
                    "containerSettings": {"container": "RAW"},
                }],
            }]}),
        }
    }

    /// The events a job goes through, in MediaConvert's order, before any chaos, each at the
    /// step it happens: one step stands for [`STEP_SECONDS`] of MediaConvert's time, so
    /// STATUS_UPDATEs while transcoding come every `StatusUpdateInterval` (scaled), and a job
    /// asking for SECONDS_60 hears of its transcode once instead of six times.
    pub async fn timeline(&self, job: &Job) -> Vec<Scheduled> {
        let input = &job.input();
        let event = |status: &str, detail: JobStateChange| self.event(job, status, detail);
        let interval = (job.status_update_interval.as_deref())
            .and_then(StatusUpdateInterval::parse)
            .unwrap_or(StatusUpdateInterval::MEDIACONVERT_DEFAULT);
        let mut at = 0.0;
        let mut events =
            vec![Scheduled { at_step: after(&mut at, 1.0), event: event("PROGRESSING", JobStateChange::default()) }];
        let phase = |phase: &str, percent: u64, phase_percent: u64| {
            let state = |p: &str| {
                let (status, percent_complete) = match (p, phase) {
                    (p, current) if p == current => ("PROGRESSING", phase_percent),
                    ("PROBING", _) | ("TRANSCODING", "UPLOADING") => ("COMPLETE", 100),
                    _ => ("PENDING", 0),
                };
                (p.to_owned(), PhaseProgress { status: status.into(), percent_complete })
            };
            JobStateChange {
                job_progress: Some(JobProgress {
                    phase_progress: Some(BTreeMap::from([state("PROBING"), state("TRANSCODING"), state("UPLOADING")])),
                    job_percent_complete: Some(percent),
                    current_phase: Some(phase.into()),
                    retry_count: Some(0),
                }),
                ..JobStateChange::default()
            }
        };
        events.push(Scheduled { at_step: after(&mut at, 1.0), event: event("STATUS_UPDATE", phase("PROBING", 0, 50)) });

        let (_, key) = split_s3_url(input).unwrap_or_default();
        let size = self.s3.size_of(input).await;
        let failure = match size {
            None => Some(format!(
                "Failed to open input file [{input}]: [Failed probe/open: [No such object in the upload bucket]]"
            )),
            Some(0) => Some(format!(
                "Failed to open input file [{input}]: [Failed probe/open: [Failed to read data: the file is empty]]"
            )),
            Some(_) if self.settings.fail_pattern.is_match(key) => Some(format!(
                "Failed to open input file [{input}]: [Failed probe/open: [Can't find a demuxer for the input]]"
            )),
            Some(_) => None,
        };
        if let Some(message) = failure {
            let failed = JobStateChange { error_code: Some(1010), error_message: Some(message), ..Default::default() };
            events.push(Scheduled { at_step: after(&mut at, 1.0), event: event("ERROR", failed) });
            return events;
        }

        let size = size.unwrap_or_default();
        let (width, height) = job.output_resolution();
        // A nominal 2 Mbit/s input: duration follows the file's size.
        let duration_ms = (size.saturating_mul(4) / 1000).max(1000);
        let probed = InputDetail {
            id: Some(1),
            uri: Some(input.to_owned()),
            video: vec![InputVideo {
                bit_depth: Some(8),
                codec: Some("H_264".into()),
                color_format: Some("YUV_420".into()),
                four_cc: Some("avc1".into()),
                frame_rate: Some(30.0),
                height: Some(height),
                width: Some(width),
                interlace_mode: Some("PROGRESSIVE".into()),
                sar: Some("1:1".into()),
                standard: Some("UNSPECIFIED".into()),
                stream_id: Some(1),
            }],
            audio: vec![InputAudio {
                channels: Some(2),
                codec: Some("AAC".into()),
                language: Some("UND".into()),
                sample_rate: Some(48000),
                stream_id: Some(2),
            }],
        };
        let information = JobStateChange { input_details: Some(vec![probed]), ..JobStateChange::default() };
        events.push(Scheduled { at_step: after(&mut at, 1.0), event: event("INPUT_INFORMATION", information) });
        // The transcode takes `transcode_seconds` of MediaConvert's time; it reports every interval.
        let transcode_seconds = self.settings.transcode_seconds.max(STEP_SECONDS);
        let transcoding_from = at;
        let every = f64::from(interval.seconds());
        let mut reported = every;
        while reported < transcode_seconds {
            let share = reported / transcode_seconds;
            let update = phase("TRANSCODING", 5 + (share * 80.0) as u64, (share * 100.0) as u64);
            let at_step = transcoding_from + reported / STEP_SECONDS;
            events.push(Scheduled { at_step, event: event("STATUS_UPDATE", update) });
            reported += every;
        }
        at = transcoding_from + transcode_seconds / STEP_SECONDS;
        events.push(Scheduled {
            at_step: after(&mut at, 1.0),
            event: event("STATUS_UPDATE", phase("UPLOADING", 95, 50)),
        });

        let settings = job.parsed_settings();
        let group = settings.output_groups.first();
        let destination = group
            .and_then(|g| g.output_group_settings.as_ref())
            .and_then(|s| s.hls_group_settings.as_ref())
            .and_then(|h| h.destination.clone())
            .unwrap_or_else(|| "s3://local-outputs/".to_owned());
        let base = key.rsplit('/').next().unwrap_or(key);
        let base = base.rsplit_once('.').map_or(base, |(stem, _)| stem);
        let modifier =
            group.and_then(|g| g.outputs.first()).and_then(|o| o.name_modifier.as_deref()).unwrap_or("_720p");
        let master = format!("{destination}{base}.m3u8");
        let variant = format!("{destination}{base}{modifier}.m3u8");
        if let Err(e) = self.write_playlists(&master, &variant, width, height, duration_ms).await {
            tracing::warn!(job_id = %job.id, error = %e, "could not write the simulated outputs");
        }
        let output = OutputDetail {
            output_file_paths: Some(vec![variant]),
            duration_in_ms: Some(duration_ms),
            video_details: Some(VideoDetails {
                width_in_px: Some(width),
                height_in_px: Some(height),
                average_bitrate: Some(2_000_000),
            }),
        };
        let group = OutputGroupDetail {
            kind: Some("HLS_GROUP".into()),
            output_details: Some(vec![output]),
            playlist_file_paths: Some(vec![master]),
        };
        let mut groups = vec![group];
        groups.extend(self.capture_frames(job, &settings, base, duration_ms).await);
        let complete = JobStateChange { output_group_details: Some(groups), ..JobStateChange::default() };
        events.push(Scheduled { at_step: after(&mut at, 1.0), event: event("COMPLETE", complete) });
        events
    }

    /// A MediaConvert Job State Change event of `job` with `detail`'s status-specific parts, as
    /// EventBridge delivers it; `time` and `detail.timestamp` are stamped by
    /// [`MediaConvertSim::schedule`].
    fn event(&self, job: &Job, status: &str, detail: JobStateChange) -> MediaConvertEvent {
        let detail = JobStateChange {
            account_id: Some(self.settings.account.clone()),
            queue: Some(job.queue.clone()),
            job_id: job.id.clone(),
            status: Some(status.to_owned()),
            user_metadata: Some(job.user_metadata.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect()),
            ..detail
        };
        let mut event = MediaConvertEvent::default();
        event.version = Some("0".into());
        event.id = Some(format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            fastrand::u32(..),
            fastrand::u16(..),
            fastrand::u16(..0x1000),
            fastrand::u16(..0x1000),
            fastrand::u64(..1 << 48)
        ));
        event.detail_type = DETAIL_TYPE.to_owned();
        event.source = "aws.mediaconvert".to_owned();
        event.account = Some(self.settings.account.clone());
        event.region = Some(self.settings.region.clone());
        event.resources = Some(vec![job.arn.clone()]);
        event.detail = detail;
        event
    }

    /// The job's frame-capture outputs (file groups with the FRAME_CAPTURE codec): one real
    /// JPEG each, named as MediaConvert names a capture, and the group detail of its COMPLETE.
    async fn capture_frames(
        &self,
        job: &Job,
        settings: &mcpush_core::domain::get_job::JobSettings,
        base: &str,
        duration_ms: u64,
    ) -> Vec<OutputGroupDetail> {
        let mut groups = Vec::new();
        for group in &settings.output_groups {
            let file_group = group.output_group_settings.as_ref().and_then(|s| s.file_group_settings.as_ref());
            let Some(destination) = file_group.and_then(|f| f.destination.clone()) else { continue };
            let captures: Vec<_> = group
                .outputs
                .iter()
                .filter_map(|o| o.video_description.as_ref().map(|v| (o, v)))
                .filter(|(_, v)| v.codec_settings.as_ref().and_then(|c| c.codec.as_deref()) == Some("FRAME_CAPTURE"))
                .collect();
            if captures.is_empty() {
                continue;
            }
            let mut details = Vec::new();
            for (output, video) in captures {
                let modifier = output.name_modifier.as_deref().unwrap_or_default();
                let path = format!("{destination}{base}{modifier}.0000000.jpg");
                let (width, height) =
                    (video.width.unwrap_or(THUMBNAIL_SIZE.0), video.height.unwrap_or(THUMBNAIL_SIZE.1));
                match thumbnail(&path, width.min(1920) as u16, height.min(1080) as u16) {
                    Ok(jpeg) => {
                        if let Err(e) = self.s3.write(&path, &jpeg).await {
                            tracing::warn!(job_id = %job.id, error = %e, "could not write the simulated frame capture");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(job_id = %job.id, error = %e, "could not encode the simulated frame capture")
                    }
                }
                details.push(OutputDetail {
                    output_file_paths: Some(vec![path]),
                    duration_in_ms: Some(duration_ms),
                    video_details: Some(VideoDetails {
                        width_in_px: Some(width),
                        height_in_px: Some(height),
                        average_bitrate: None,
                    }),
                });
            }
            groups.push(OutputGroupDetail {
                kind: Some("FILE_GROUP".into()),
                output_details: Some(details),
                playlist_file_paths: None,
            });
        }
        groups
    }

    async fn write_playlists(
        &self,
        master: &str,
        variant: &str,
        width: u32,
        height: u32,
        duration_ms: u64,
    ) -> std::io::Result<()> {
        let variant_name = variant.rsplit('/').next().unwrap_or(variant);
        let uri = percent_encoding::utf8_percent_encode(variant_name, &PLAYLIST_URI);
        self.s3
            .write(master, format!("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=2000000,RESOLUTION={width}x{height}\n{uri}\n").as_bytes())
            .await?;
        let seconds = duration_ms.div_ceil(1000);
        self.s3
            .write(
                variant,
                format!(
                    "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{seconds}\n#EXT-X-PLAYLIST-TYPE:VOD\n\
                     # Simulated by the local stack: MediaConvert did not really run, so there are no segments.\n#EXT-X-ENDLIST\n"
                )
                .as_bytes(),
            )
            .await
    }

    /// Delivery times for a timeline: when each event happens (stamped with that time), then
    /// with chaos some late and some twice, and with drop some never.
    pub fn schedule(&self, events: Vec<Scheduled>) -> Vec<Scheduled> {
        let (chaos, drop) = (self.settings.chaos, self.settings.drop);
        let start = mcpush_core::now_ms();
        let step_ms = self.settings.step.as_millis() as u64;
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::with_capacity(events.len() * 2);
        for Scheduled { at_step: happens, mut event } in events {
            let happened = start + (happens * step_ms as f64) as u64;
            event.detail.timestamp = Some(happened as i64);
            event.time = chrono::DateTime::from_timestamp(happened as i64 / 1000, 0);
            if drop > 0.0 && rng.f64() < drop {
                tracing::debug!(job_id = %event.detail.job_id, status = event.detail.status.as_deref().unwrap_or_default(), "event dropped (SIMULATOR_DROP)");
                continue;
            }
            let mut at_step = happens;
            if chaos > 0.0 && rng.f64() < chaos {
                at_step += 1.0 + rng.f64() * 2.0;
            }
            if chaos > 0.0 && rng.f64() < chaos {
                out.push(Scheduled { at_step: at_step + 0.5 + rng.f64() * 2.5, event: event.clone() });
            }
            out.push(Scheduled { at_step, event });
        }
        out.sort_by(|a, b| a.at_step.total_cmp(&b.at_step));
        out
    }

    async fn run(self: Arc<Self>, job: Job) {
        let timeline = self.timeline(&job).await;
        tokio::spawn(self.clone().happen(timeline.clone()));
        let schedule = self.schedule(timeline);
        let start = tokio::time::Instant::now();
        for Scheduled { at_step, event } in schedule {
            tokio::time::sleep_until(start + self.settings.step.mul_f64(at_step)).await;
            tracing::debug!(job_id = %event.detail.job_id, status = event.detail.status.as_deref().unwrap_or_default(), "MediaConvert event");
            if self.bus.send(event).is_err() {
                return;
            }
        }
    }
}

impl MediaConvertSim {
    /// The job's true state moves with its timeline, whatever is delivered.
    async fn happen(self: Arc<Self>, timeline: Vec<Scheduled>) {
        let start = tokio::time::Instant::now();
        for Scheduled { at_step, event } in &timeline {
            tokio::time::sleep_until(start + self.settings.step.mul_f64(*at_step)).await;
            let mut jobs = self.jobs_by_id.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(job) = jobs.get_mut(&event.detail.job_id) {
                apply(job, &event.detail);
            }
        }
    }

    /// Starts a job for a checked CreateJob `request` (or answers the job an earlier request
    /// with the same `clientRequestToken` started, as MediaConvert does).
    pub fn start(self: &Arc<Self>, request: CreateJobRequest, role: String, input: &str) -> Job {
        let token = request.client_request_token.clone().unwrap_or_default();
        let (job, fresh) = {
            let mut jobs = self.jobs_by_token.lock().unwrap_or_else(|e| e.into_inner());
            match jobs.get(&token).filter(|_| !token.is_empty()) {
                Some(job) => (job.clone(), false),
                None => {
                    let SimSettings { region, account, .. } = &self.settings;
                    let id = format!(
                        "{}-{}",
                        mcpush_core::now_ms(),
                        (0..6).map(|_| fastrand::alphanumeric().to_ascii_lowercase()).collect::<String>()
                    );
                    let job = Job {
                        arn: format!("arn:aws:mediaconvert:{region}:{account}:jobs/{id}"),
                        id,
                        job_template: request.job_template,
                        queue: request
                            .queue
                            .unwrap_or_else(|| format!("arn:aws:mediaconvert:{region}:{account}:queues/Default")),
                        role,
                        settings: request.settings,
                        status: "SUBMITTED".into(),
                        status_update_interval: request.status_update_interval,
                        user_metadata: request.user_metadata,
                        created_at: Some((mcpush_core::now_ms() / 1000) as i64),
                        ..Job::default()
                    };
                    if !token.is_empty() {
                        jobs.insert(token, job.clone());
                    }
                    self.jobs_by_id.lock().unwrap_or_else(|e| e.into_inner()).insert(job.id.clone(), job.clone());
                    (job, true)
                }
            }
        };
        if fresh {
            tracing::info!(job_id = %job.id, input, "simulated MediaConvert job started");
            tokio::spawn(self.clone().run(job.clone()));
        }
        job
    }

    /// The one job template there is (create-job's `MEDIACONVERT_JOB_TEMPLATE`).
    pub fn template_name(&self) -> &str {
        &self.settings.template
    }

    /// A job's state now, as `GetJob` answers it.
    pub fn job(&self, id: &str) -> Option<Job> {
        self.jobs_by_id.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }
}

/// `at` moved on by `gap` steps.
fn after(at: &mut f64, gap: f64) -> f64 {
    *at += gap;
    *at
}

/// What one event says about the job's state.
fn apply(job: &mut Job, detail: &JobStateChange) {
    match detail.status.as_deref().unwrap_or_default() {
        "COMPLETE" => {
            job.status = "COMPLETE".into();
            (job.job_percent_complete, job.current_phase) = (None, None);
            // GetJob's details carry durations and video sizes only, no paths.
            job.output_group_details = detail.output_group_details.as_ref().map(|groups| {
                groups
                    .iter()
                    .map(|g| OutputGroupDetail {
                        kind: None,
                        playlist_file_paths: None,
                        output_details: g.output_details.as_ref().map(|outputs| {
                            outputs
                                .iter()
                                .map(|o| OutputDetail {
                                    output_file_paths: None,
                                    duration_in_ms: o.duration_in_ms,
                                    video_details: o
                                        .video_details
                                        .as_ref()
                                        .map(|v| VideoDetails { average_bitrate: None, ..v.clone() }),
                                })
                                .collect()
                        }),
                    })
                    .collect()
            });
        }
        "ERROR" => {
            job.status = "ERROR".into();
            (job.job_percent_complete, job.current_phase) = (None, None);
            (job.error_code, job.error_message) = (detail.error_code, detail.error_message.clone());
        }
        _ => {
            job.status = "PROGRESSING".into();
            if let Some(progress) = &detail.job_progress {
                job.job_percent_complete = progress.job_percent_complete.or(job.job_percent_complete);
                job.current_phase = progress.current_phase.clone().or(job.current_phase.take());
            }
        }
    }
}

/// The frame capture of the simulator's template (16:9).
const THUMBNAIL_SIZE: (u32, u32) = (320, 180);

/// A small real JPEG for `path`: a diagonal gradient in a hue of its own.
fn thumbnail(path: &str, width: u16, height: u16) -> Result<Vec<u8>, jpeg_encoder::EncodingError> {
    let hue = path.bytes().fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    let (r, g, b) = ((hue & 0xff) as f32, ((hue >> 8) & 0xff) as f32, ((hue >> 16) & 0xff) as f32);
    let (w, h) = (f32::from(width.max(1)), f32::from(height.max(1)));
    let mut pixels = Vec::with_capacity(usize::from(width) * usize::from(height) * 3);
    for y in 0..height {
        for x in 0..width {
            let shade = 0.35 + 0.65 * (f32::from(x) / w + f32::from(y) / h) / 2.0;
            pixels.extend([(r * shade) as u8, (g * shade) as u8, (b * shade) as u8]);
        }
    }
    let mut jpeg = Vec::new();
    jpeg_encoder::Encoder::new(&mut jpeg, 80).encode(&pixels, width, height, jpeg_encoder::ColorType::Rgb)?;
    Ok(jpeg)
}

/// Characters escaped in a playlist's URI lines.
const PLAYLIST_URI: percent_encoding::AsciiSet =
    percent_encoding::NON_ALPHANUMERIC.remove(b'.').remove(b'-').remove(b'_');

#[cfg(test)]
mod tests {
    use super::*;

    fn sim(chaos: f64) -> Arc<MediaConvertSim> {
        sim_with(SimSettings { chaos, ..SimSettings::default() })
    }

    fn sim_with(settings: SimSettings) -> Arc<MediaConvertSim> {
        let (bus, _) = tokio::sync::mpsc::unbounded_channel();
        let settings = SimSettings { seed: Some(7), ..settings };
        MediaConvertSim::new(settings, Arc::new(LocalS3::new("/nonexistent", "us-east-1")), bus)
    }

    /// Events numbered by their job id, "0" to "n-1", one step apart.
    fn timeline(n: usize) -> Vec<Scheduled> {
        (0..n)
            .map(|i| {
                let mut event = MediaConvertEvent::default();
                event.detail.job_id = i.to_string();
                Scheduled { at_step: (i + 1) as f64, event }
            })
            .collect()
    }

    #[tokio::test]
    async fn status_updates_come_one_interval_apart_while_transcoding() {
        // GIVEN an input in the local S3 and jobs asking for SECONDS_10, SECONDS_30 and SECONDS_120
        let root = std::env::temp_dir().join(format!("sim-interval-{}", std::process::id()));
        std::fs::create_dir_all(root.join("uploads-bucket")).unwrap();
        std::fs::write(root.join("uploads-bucket/clip.mp4"), [1u8; 2048]).unwrap();
        let (bus, _) = tokio::sync::mpsc::unbounded_channel();
        let sim = MediaConvertSim::new(SimSettings::default(), Arc::new(LocalS3::new(&root, "us-east-1")), bus);
        let job = |interval: &str| Job {
            id: "1767225600000-abcdef".into(),
            settings: json!({"inputs": [{"fileInput": "s3://uploads-bucket/clip.mp4"}], "outputGroups": []}),
            status_update_interval: Some(interval.into()),
            ..Job::default()
        };
        // WHEN their timelines are built
        let transcoding = |timeline: Vec<Scheduled>| -> Vec<f64> {
            let is_transcoding = |s: &Scheduled| {
                s.event.detail.job_progress.as_ref().and_then(|p| p.current_phase.as_deref()) == Some("TRANSCODING")
            };
            timeline.iter().filter(|s| is_transcoding(s)).map(|s| s.at_step).collect()
        };
        let every_10 = transcoding(sim.timeline(&job("SECONDS_10")).await);
        let every_30 = transcoding(sim.timeline(&job("SECONDS_30")).await);
        let every_120 = transcoding(sim.timeline(&job("SECONDS_120")).await);
        // THEN the 60 s transcode reports every 10 s (one step), every 30 s (three), or never
        assert_eq!(every_10, [4.0, 5.0, 6.0, 7.0, 8.0]);
        assert_eq!(every_30, [6.0]);
        assert!(every_120.is_empty());
        let _ = std::fs::remove_dir_all(root);
    }

    fn order(schedule: &[Scheduled]) -> Vec<u64> {
        schedule.iter().map(|s| s.event.detail.job_id.parse().unwrap()).collect()
    }

    #[test]
    fn without_chaos_events_come_one_step_apart_in_order_stamped_with_their_time() {
        let schedule = sim(0.0).schedule(timeline(5));
        assert_eq!(order(&schedule), [0, 1, 2, 3, 4]);
        assert_eq!(schedule.iter().map(|s| s.at_step).collect::<Vec<_>>(), [1.0, 2.0, 3.0, 4.0, 5.0]);
        let stamps: Vec<i64> = schedule.iter().map(|s| s.event.detail.timestamp.unwrap()).collect();
        assert!(stamps.windows(2).all(|w| w[1] - w[0] == 400), "{stamps:?}");
    }

    #[test]
    fn chaos_delivers_late_twice_and_out_of_order_but_loses_nothing() {
        let schedule = sim(1.0).schedule(timeline(10));
        let delivered = order(&schedule);
        assert_eq!(delivered.len(), 20, "every event twice");
        assert!(delivered.windows(2).any(|w| w[0] > w[1]), "some overtaken: {delivered:?}");
        assert!(schedule.windows(2).all(|w| w[0].at_step <= w[1].at_step));
        for n in 0..10 {
            assert_eq!(delivered.iter().filter(|d| **d == n).count(), 2);
        }
        // Both copies of an event say when it happened, not when it was delivered.
        let stamps = |n: u64| {
            schedule
                .iter()
                .filter(|s| s.event.detail.job_id == n.to_string())
                .map(|s| s.event.detail.timestamp)
                .collect::<Vec<_>>()
        };
        assert_eq!(stamps(3)[0], stamps(3)[1]);
    }

    #[test]
    fn drop_loses_that_share_of_events_final_ones_included() {
        assert!(sim_with(SimSettings { drop: 1.0, ..SimSettings::default() }).schedule(timeline(10)).is_empty());
        let kept = order(&sim_with(SimSettings { drop: 0.5, ..SimSettings::default() }).schedule(timeline(40)));
        assert!((5..35).contains(&kept.len()), "kept {kept:?}");
        assert!(kept.windows(2).all(|w| w[0] < w[1]), "without chaos the rest stay in order, once each: {kept:?}");
    }
}
