//! "MediaConvert Job State Change" events (EventBridge) and their meaning for a job.
//!
//! The envelope is `aws_lambda_events`' [`EventBridgeEvent`]; only `detail` is ours. Every field
//! that real events omit for some statuses or output types is optional here.

use std::collections::{BTreeMap, HashMap};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};

use super::eta::ProgressSample;
use super::job::{CompleteDetails, JobUpdate, Observed, OutputFile, Phase, Transition, job_order_from_id};

/// `detail-type` of the events this product consumes.
pub const DETAIL_TYPE: &str = "MediaConvert Job State Change";
/// `userMetadata` key under which create-job records the job's input file (the S3 key).
pub const INPUT_FILE_KEY: &str = "input_file";

pub type MediaConvertEvent = EventBridgeEvent<JobStateChange>;

/// Why an event cannot be applied; the message names the offending part.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error("malformed MediaConvert event: {0}")]
    Malformed(String),
    #[error("unexpected detail-type {0:?}: expected \"{DETAIL_TYPE}\"")]
    DetailType(String),
    #[error("detail.status is missing")]
    MissingStatus,
    #[error("detail.jobId is empty")]
    EmptyJobId,
    #[error("detail.jobId {0}")]
    JobId(super::ids::IdError),
    #[error("detail.userMetadata.input_file {0}")]
    InputFile(super::ids::IdError),
}

/// `detail` of a MediaConvert Job State Change event.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStateChange {
    pub job_id: String,
    pub status: Option<String>,
    pub account_id: Option<String>,
    /// Epoch milliseconds.
    pub timestamp: Option<i64>,
    pub queue: Option<String>,
    /// Always present on real events (maybe `{}`); values are strings in practice.
    pub user_metadata: Option<HashMap<String, serde_json::Value>>,
    pub job_progress: Option<JobProgress>,
    /// STATUS_UPDATE: the frames decoded so far.
    pub frames_decoded: Option<u64>,
    /// INPUT_INFORMATION only: what MediaConvert probed in each input.
    pub input_details: Option<Vec<InputDetail>>,
    pub output_group_details: Option<Vec<OutputGroupDetail>>,
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
}

/// `detail.jobProgress` (STATUS_UPDATE only, and not on every one).
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobProgress {
    pub job_percent_complete: Option<u64>,
    pub current_phase: Option<String>,
    /// `PROBING`, `TRANSCODING`, `UPLOADING` → that phase's state.
    pub phase_progress: Option<BTreeMap<String, PhaseProgress>>,
    pub retry_count: Option<u32>,
}

/// One entry of `jobProgress.phaseProgress`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseProgress {
    /// `PENDING`, `PROGRESSING` or `COMPLETE`.
    pub status: String,
    pub percent_complete: u64,
}

/// One element of INPUT_INFORMATION's `inputDetails`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InputDetail {
    pub id: Option<u32>,
    pub uri: Option<String>,
    #[serde(default)]
    pub video: Vec<InputVideo>,
    #[serde(default)]
    pub audio: Vec<InputAudio>,
}

/// A probed video stream.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InputVideo {
    pub bit_depth: Option<u32>,
    pub codec: Option<String>,
    pub color_format: Option<String>,
    #[serde(rename = "fourCC")]
    pub four_cc: Option<String>,
    pub frame_rate: Option<f64>,
    pub height: Option<u32>,
    pub width: Option<u32>,
    pub interlace_mode: Option<String>,
    pub sar: Option<String>,
    pub standard: Option<String>,
    pub stream_id: Option<u32>,
}

/// A probed audio stream.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InputAudio {
    pub channels: Option<u32>,
    pub codec: Option<String>,
    pub language: Option<String>,
    pub sample_rate: Option<u32>,
    pub stream_id: Option<u32>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputGroupDetail {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub output_details: Option<Vec<OutputDetail>>,
    pub playlist_file_paths: Option<Vec<String>>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputDetail {
    pub output_file_paths: Option<Vec<String>>,
    pub duration_in_ms: Option<u64>,
    pub video_details: Option<VideoDetails>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoDetails {
    pub width_in_px: Option<u32>,
    pub height_in_px: Option<u32>,
    pub average_bitrate: Option<u64>,
}

/// Parses a raw EventBridge event, naming the field that is wrong when it does not fit.
pub fn parse_event(raw: &serde_json::Value) -> Result<MediaConvertEvent, EventError> {
    let event: MediaConvertEvent =
        serde_path_to_error::deserialize(raw).map_err(|e| EventError::Malformed(e.to_string()))?;
    if event.detail_type != DETAIL_TYPE {
        return Err(EventError::DetailType(event.detail_type));
    }
    Ok(event)
}

impl JobStateChange {
    /// The input file create-job recorded in `userMetadata.input_file`, if any.
    pub fn input_file(&self) -> Option<&str> {
        self.user_metadata.as_ref()?.get(INPUT_FILE_KEY)?.as_str().filter(|s| !s.is_empty())
    }

    /// What this event means for the job. `now_ms` orders a job whose id has no time prefix.
    pub fn to_update(&self, now_ms: u64) -> Result<JobUpdate, EventError> {
        match super::ids::check_job_id(&self.job_id) {
            Err(super::ids::IdError::Empty) => return Err(EventError::EmptyJobId),
            Err(e) => return Err(EventError::JobId(e)),
            Ok(()) => {}
        }
        if let Some(file) = self.input_file() {
            super::ids::check_key(file).map_err(EventError::InputFile)?;
        }
        let status = self.status.as_deref().ok_or(EventError::MissingStatus)?;
        let reported = self.job_progress.as_ref().and_then(|p| p.job_percent_complete).map(|p| p.min(100) as u8);
        let (transition, progress) = match status {
            "COMPLETE" => (Transition::Complete(self.complete_details()), Some(100)),
            "ERROR" => (Transition::Error { code: self.error_code, message: self.error_message.clone() }, Some(100)),
            "CANCELED" => (Transition::Canceled, reported),
            _ => (Transition::Progressing, reported),
        };
        let event_at = self.timestamp.and_then(|t| u64::try_from(t).ok());
        let phase = self.job_progress.as_ref().and_then(|p| p.current_phase.as_deref()).and_then(Phase::parse);
        Ok(JobUpdate {
            job_id: self.job_id.clone(),
            input_file: self.input_file().map(str::to_owned),
            transition,
            progress,
            job_order: job_order_from_id(&self.job_id).unwrap_or(now_ms),
            phase,
            event_at,
            observed: self.observed(status, event_at, reported, phase),
        })
    }

    /// Times and pace: a running job's event marks it started; a final one, finished; a
    /// STATUS_UPDATE with a percent, or INPUT_INFORMATION (probing done), is a progress sample.
    fn observed(&self, status: &str, at: Option<u64>, percent: Option<u8>, phase: Option<Phase>) -> Observed {
        let running = matches!(status, "PROGRESSING" | "STATUS_UPDATE" | "INPUT_INFORMATION");
        let sample = match (at, status) {
            (Some(at), "STATUS_UPDATE") if percent.is_some() => {
                Some(ProgressSample { at, percent, phase, frames: self.frames_decoded })
            }
            (Some(at), "INPUT_INFORMATION") => {
                Some(ProgressSample { at, percent: None, phase: Some(Phase::Transcoding), frames: None })
            }
            _ => None,
        };
        let phases = self.job_progress.as_ref().and_then(|p| p.phase_progress.as_ref());
        let phase_progress = phases
            .into_iter()
            .flatten()
            .filter_map(|(name, p)| Some((Phase::parse(name)?, p.percent_complete.min(100) as u8)))
            .collect();
        Observed {
            submitted_at: None,
            started_at: at.filter(|_| running),
            finished_at: at.filter(|_| matches!(status, "COMPLETE" | "ERROR" | "CANCELED")),
            sample,
            phase_progress,
        }
    }

    /// Duration, resolution, output folder and playlists of a COMPLETE event (SPEC.md's rule).
    pub fn complete_details(&self) -> CompleteDetails {
        let groups = self.output_group_details.as_deref().unwrap_or_default();
        let outputs = || groups.iter().flat_map(|g| g.output_details.as_deref().unwrap_or_default());

        let mut details = CompleteDetails::default();
        match outputs().find(|o| o.video_details.is_some()) {
            Some(first_video) => {
                let video = first_video.video_details.as_ref();
                details.duration_ms = first_video.duration_in_ms;
                details.width_px = video.and_then(|v| v.width_in_px);
                details.height_px = video.and_then(|v| v.height_in_px);
            }
            None => details.duration_ms = outputs().filter_map(|o| o.duration_in_ms).max(),
        }

        let playlist_paths = || groups.iter().flat_map(|g| g.playlist_file_paths.as_deref().unwrap_or_default());
        let mut playlists = BTreeMap::new();
        for path in playlist_paths() {
            let name = file_name(path);
            if let Some(dot) = name.rfind('.').filter(|&i| i + 1 < name.len()) {
                playlists.entry(name[dot..].to_owned()).or_insert_with(|| name.to_owned());
            }
        }
        details.playlists = playlists;

        let first_path = playlist_paths()
            .next()
            .or_else(|| outputs().flat_map(|o| o.output_file_paths.as_deref().unwrap_or_default()).next());
        details.output_path = first_path.map(|p| folder_in_bucket(p)).unwrap_or_default();
        (details.outputs, details.thumbnails) = outputs_and_thumbnails(groups);
        details
    }
}

/// Every output of every group in order, and the frame captures (a file group's image files:
/// MediaConvert names the last capture of each frame-capture output).
fn outputs_and_thumbnails(groups: &[OutputGroupDetail]) -> (Vec<OutputFile>, Vec<String>) {
    let (mut outputs, mut thumbnails) = (Vec::new(), Vec::new());
    for (index, group) in groups.iter().enumerate() {
        let playlist = group.playlist_file_paths.as_deref().unwrap_or_default().first().cloned();
        for output in group.output_details.as_deref().unwrap_or_default() {
            let paths = output.output_file_paths.as_deref().unwrap_or_default();
            let video = output.video_details.as_ref();
            let image = |p: &&String| is_image(p);
            if group.kind.as_deref() == Some("FILE_GROUP") && !paths.is_empty() && paths.iter().all(|p| image(&p)) {
                thumbnails.extend(paths.iter().cloned());
            }
            outputs.push(OutputFile {
                group: index as u32,
                kind: group.kind.clone(),
                path: paths.first().cloned(),
                url: None,
                width_px: video.and_then(|v| v.width_in_px),
                height_px: video.and_then(|v| v.height_in_px),
                duration_ms: output.duration_in_ms,
                bitrate: video.and_then(|v| v.average_bitrate),
                playlist: playlist.clone(),
            });
        }
    }
    (outputs, thumbnails)
}

/// A frame capture's file: MediaConvert writes JPEG (`.jpg`) frames, PNG on request.
fn is_image(path: &str) -> bool {
    let name = file_name(path).to_ascii_lowercase();
    [".jpg", ".jpeg", ".png"].iter().any(|e| name.ends_with(e))
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// `s3://bucket/a/b/name.m3u8` → `a/b/`; `s3://bucket/name.m3u8` → `""`.
fn folder_in_bucket(path: &str) -> String {
    let key = match path.strip_prefix("s3://") {
        Some(rest) => rest.split_once('/').map(|(_, key)| key).unwrap_or(""),
        None => path.trim_start_matches('/'),
    };
    match key.rfind('/') {
        Some(slash) => key[..=slash].to_owned(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn detail(value: serde_json::Value) -> JobStateChange {
        serde_json::from_value(value).expect("test detail")
    }

    #[test]
    fn folder_is_relative_to_the_bucket() {
        assert_eq!(folder_in_bucket("s3://b/Big Buck Bunny.mp4_test/Big Buck Bunny.m3u8"), "Big Buck Bunny.mp4_test/");
        assert_eq!(folder_in_bucket("s3://b/x.m3u8"), "");
        assert_eq!(folder_in_bucket("s3://b/a/b/c.mpd"), "a/b/");
    }

    #[test]
    fn complete_with_video_takes_the_first_video_output() {
        let d = detail(json!({
            "jobId": "1536961999428-kxngbl", "status": "COMPLETE", "userMetadata": {},
            "outputGroupDetails": [{
                "type": "HLS_GROUP",
                "playlistFilePaths": ["s3://b/Big Buck Bunny.mp4_test/Big Buck Bunny.m3u8"],
                "outputDetails": [
                    {"durationInMs": 596470},
                    {"outputFilePaths": ["s3://b/Big Buck Bunny.mp4_test/v720.m3u8"], "durationInMs": 596458,
                     "videoDetails": {"widthInPx": 1280, "heightInPx": 720}},
                    {"durationInMs": 596458, "videoDetails": {"widthInPx": 640, "heightInPx": 360}}
                ]
            }]
        }));
        let c = d.complete_details();
        assert_eq!((c.duration_ms, c.width_px, c.height_px), (Some(596458), Some(1280), Some(720)));
        assert_eq!(c.output_path, "Big Buck Bunny.mp4_test/");
        assert_eq!(c.playlists, BTreeMap::from([(".m3u8".to_owned(), "Big Buck Bunny.m3u8".to_owned())]));
    }

    #[test]
    fn audio_only_complete_takes_the_longest_duration_and_no_size() {
        let d = detail(json!({
            "jobId": "1536961999428-kxngbl", "status": "COMPLETE", "userMetadata": {},
            "outputGroupDetails": [{"type": "FILE_GROUP", "outputDetails": [
                {"outputFilePaths": ["s3://b/audio/a.m4a"], "durationInMs": 1000},
                {"outputFilePaths": ["s3://b/audio/b.m4a"], "durationInMs": 3000}
            ]}]
        }));
        let c = d.complete_details();
        assert_eq!((c.duration_ms, c.width_px, c.height_px), (Some(3000), None, None));
        assert_eq!(c.output_path, "audio/");
        assert!(c.playlists.is_empty());
    }

    #[test]
    fn status_update_without_job_progress_reports_no_progress() {
        let d = detail(json!({"jobId": "1522673670949-v90e0c", "status": "STATUS_UPDATE", "userMetadata": {}}));
        let u = d.to_update(0).unwrap();
        assert_eq!((u.transition, u.progress, u.input_file), (Transition::Progressing, None, None));
    }

    #[test]
    fn missing_status_is_rejected_by_name() {
        let d = detail(json!({"jobId": "1522673670949-v90e0c", "userMetadata": {}}));
        assert_eq!(d.to_update(0), Err(EventError::MissingStatus));
    }

    #[test]
    fn non_string_metadata_is_tolerated_and_blank_input_file_ignored() {
        let d = detail(json!({"jobId": "x", "status": "PROGRESSING", "userMetadata": {"n": 1, "input_file": ""}}));
        assert_eq!(d.input_file(), None);
        assert_eq!(d.to_update(42).unwrap().job_order, 42);
    }
}
