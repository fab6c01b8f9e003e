//! A job as MediaConvert's `GetJob` answers it, and what that answer means for the stored job
//! (the reconciler's rule, [`reconcile`]).
//!
//! GetJob's `outputGroupDetails[].outputDetails[]` carry only `durationInMs` and `videoDetails`:
//! no playlist and no file paths. So the paths a COMPLETE event would give are rebuilt from the
//! job's `settings.outputGroups` — each group's destination, its outputs' name modifiers and its
//! type — and the result goes through the same [`JobStateChange::to_update`] an event goes
//! through. Per group type (`{folder}` and `{base}` come from the destination: a destination
//! ending in `/` is a folder and `{base}` is the input's file name without its extension,
//! otherwise its last segment is `{base}`):
//!
//! | settings type | event type | playlist paths | output paths |
//! |---|---|---|---|
//! | `HLS_GROUP_SETTINGS` | `HLS_GROUP` | `{folder}{base}.m3u8` | `{folder}{base}{nameModifier}.m3u8` |
//! | `CMAF_GROUP_SETTINGS` | `CMAF_GROUP` | `{folder}{base}.mpd` (unless `writeDashManifest` is `DISABLED`), then `{folder}{base}.m3u8` (unless `writeHlsManifest` is `DISABLED`) | none |
//! | `DASH_ISO_GROUP_SETTINGS` | `DASH_ISO_GROUP` | `{folder}{base}.mpd` | none |
//! | `MS_SMOOTH_GROUP_SETTINGS` | `MS_SMOOTH_GROUP` | `{folder}{base}.ism` | `{folder}{base}{nameModifier}.ismv` |
//! | `FILE_GROUP_SETTINGS` | `FILE_GROUP` | none | `{folder}{base}{nameModifier}.{ext}` |
//!
//! `{ext}` is the output's `extension`, else its container's usual one (`mp4`, `mov`, …). Only
//! the folder of a FILE_GROUP output is stored (`OutputPath`), so a file name MediaConvert
//! numbers (frame captures) does not need to be exact.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::job::{JobUpdate, Transition, job_order_from_id};
use super::mediaconvert::{EventError, INPUT_FILE_KEY, JobProgress, JobStateChange, OutputDetail, OutputGroupDetail};

/// How long MediaConvert lets a job run: a job still PROGRESSING this long after it started
/// will never finish.
pub const MAX_JOB_RUN_MS: u64 = 48 * 3600 * 1000;

/// `job` of a GetJob answer: the fields the reconciler reads, in the REST API's JSON shape.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaConvertJob {
    pub id: String,
    /// `SUBMITTED`, `PROGRESSING`, `COMPLETE`, `CANCELED` or `ERROR`.
    pub status: Option<String>,
    /// Epoch seconds.
    pub created_at: Option<i64>,
    pub timing: Option<Timing>,
    pub job_percent_complete: Option<u64>,
    pub current_phase: Option<String>,
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
    pub user_metadata: Option<HashMap<String, String>>,
    pub settings: Option<JobSettings>,
    /// Durations and video sizes only (see the module's documentation).
    pub output_group_details: Option<Vec<OutputGroupDetail>>,
}

/// `job.timing`, epoch seconds.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timing {
    pub submit_time: Option<i64>,
    pub start_time: Option<i64>,
    pub finish_time: Option<i64>,
}

/// `job.settings`: the parts the reconciler (and the simulated MediaConvert) read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSettings {
    #[serde(default)]
    pub inputs: Vec<Input>,
    #[serde(default)]
    pub output_groups: Vec<OutputGroup>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Input {
    pub file_input: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputGroup {
    pub name: Option<String>,
    pub output_group_settings: Option<OutputGroupSettings>,
    #[serde(default)]
    pub outputs: Vec<Output>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputGroupSettings {
    /// `HLS_GROUP_SETTINGS`, `CMAF_GROUP_SETTINGS`, `DASH_ISO_GROUP_SETTINGS`,
    /// `MS_SMOOTH_GROUP_SETTINGS` or `FILE_GROUP_SETTINGS`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub hls_group_settings: Option<GroupDestination>,
    pub cmaf_group_settings: Option<CmafGroupSettings>,
    pub dash_iso_group_settings: Option<GroupDestination>,
    pub ms_smooth_group_settings: Option<GroupDestination>,
    pub file_group_settings: Option<GroupDestination>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupDestination {
    pub destination: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CmafGroupSettings {
    pub destination: Option<String>,
    /// `ENABLED` (MediaConvert's default) or `DISABLED`.
    pub write_hls_manifest: Option<String>,
    pub write_dash_manifest: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    pub name_modifier: Option<String>,
    pub extension: Option<String>,
    pub video_description: Option<VideoDescription>,
    pub container_settings: Option<ContainerSettings>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoDescription {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub codec_settings: Option<CodecSettings>,
}

/// `videoDescription.codecSettings`: only which codec (`FRAME_CAPTURE` writes images).
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CodecSettings {
    pub codec: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSettings {
    pub container: Option<String>,
}

/// What the reconciler learnt about one job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Apply this update (the same merge rule as events: nothing moves backwards).
    Apply(Box<JobUpdate>),
    /// MediaConvert has not started the job yet (SUBMITTED): nothing to change.
    NotStarted,
}

/// What MediaConvert's answer to GetJob (`None`: it does not know the job) means for the
/// stored job `job_id`, at `now_ms`.
pub fn reconcile(job_id: &str, answer: Option<&MediaConvertJob>, now_ms: u64) -> Result<Verdict, EventError> {
    let error = |message: String| {
        Verdict::Apply(Box::new(JobUpdate {
            job_id: job_id.to_owned(),
            input_file: None,
            transition: Transition::Error { code: None, message: Some(message) },
            progress: Some(100),
            job_order: job_order_from_id(job_id).unwrap_or(now_ms),
            phase: None,
            event_at: None,
            observed: Default::default(),
        }))
    };
    let Some(job) = answer else {
        return Ok(error(format!(
            "MediaConvert does not know job {job_id} (GetJob: NotFoundException); its final state was never recorded"
        )));
    };
    match job.status.as_deref() {
        None | Some("SUBMITTED") => Ok(Verdict::NotStarted),
        Some("PROGRESSING")
            if job.started_ms(job_id).is_some_and(|start| now_ms.saturating_sub(start) > MAX_JOB_RUN_MS) =>
        {
            Ok(error(format!(
                "job {job_id} is still PROGRESSING more than 48 hours after it started: past MediaConvert's own limit, it will not finish"
            )))
        }
        Some(_) => {
            job.as_event_detail().to_update(now_ms).map(|update| Verdict::Apply(Box::new(job.with_timing(update))))
        }
    }
}

impl MediaConvertJob {
    /// When the job started (epoch ms): `timing.startTime`, else `createdAt`, else its id's prefix.
    pub fn started_ms(&self, job_id: &str) -> Option<u64> {
        let seconds = self.timing.as_ref().and_then(|t| t.start_time).or(self.created_at);
        seconds.map(|s| s.max(0) as u64 * 1000).or_else(|| job_order_from_id(job_id))
    }

    /// `update` with GetJob's `timing` (epoch seconds) as its submit, start and finish times.
    pub fn with_timing(&self, mut update: JobUpdate) -> JobUpdate {
        let ms = |t: Option<i64>| t.and_then(|s| u64::try_from(s).ok()).and_then(|s| s.checked_mul(1000));
        if let Some(timing) = &self.timing {
            let observed = &mut update.observed;
            observed.submitted_at = ms(timing.submit_time);
            observed.started_at = ms(timing.start_time);
            observed.finished_at = ms(timing.finish_time).filter(|_| update.transition.status().is_final());
        }
        update
    }

    /// The `detail` a MediaConvert event reporting this job's state would carry, with the output
    /// paths rebuilt from the settings (see the module's table).
    pub fn as_event_detail(&self) -> JobStateChange {
        let status = self.status.clone();
        let progressing = status.as_deref() == Some("PROGRESSING");
        JobStateChange {
            job_id: self.id.clone(),
            status: status.clone(),
            user_metadata: self
                .user_metadata
                .as_ref()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect()),
            job_progress: progressing.then(|| JobProgress {
                job_percent_complete: self.job_percent_complete,
                current_phase: self.current_phase.clone(),
                ..JobProgress::default()
            }),
            output_group_details: (status.as_deref() == Some("COMPLETE")).then(|| self.output_groups_with_paths()),
            error_code: self.error_code,
            error_message: self.error_message.clone(),
            ..JobStateChange::default()
        }
    }

    /// GetJob's `outputGroupDetails` with the playlist and file paths of the same job's COMPLETE
    /// event, rebuilt from `settings.outputGroups` (matched by position).
    pub fn output_groups_with_paths(&self) -> Vec<OutputGroupDetail> {
        let settings = self.settings.clone().unwrap_or_default();
        let input = settings
            .inputs
            .first()
            .and_then(|i| i.file_input.clone())
            .or_else(|| self.user_metadata.as_ref().and_then(|m| m.get(INPUT_FILE_KEY).cloned()))
            .unwrap_or_default();
        let details = self.output_group_details.clone().unwrap_or_default();
        let groups = settings.output_groups.len().max(details.len());
        (0..groups)
            .map(|i| {
                let detail = details.get(i).cloned().unwrap_or_default();
                match settings.output_groups.get(i) {
                    Some(group) => with_paths(group, detail, &input),
                    None => detail,
                }
            })
            .collect()
    }
}

/// One group's event detail: its kind and the paths its type writes, with GetJob's durations
/// and video details per output.
fn with_paths(group: &OutputGroup, detail: OutputGroupDetail, input: &str) -> OutputGroupDetail {
    let settings = group.output_group_settings.clone().unwrap_or_default();
    let (kind, destination) = match settings.kind.as_deref() {
        Some("HLS_GROUP_SETTINGS") => ("HLS_GROUP", settings.hls_group_settings.and_then(|s| s.destination)),
        Some("CMAF_GROUP_SETTINGS") => {
            ("CMAF_GROUP", settings.cmaf_group_settings.as_ref().and_then(|s| s.destination.clone()))
        }
        Some("DASH_ISO_GROUP_SETTINGS") => {
            ("DASH_ISO_GROUP", settings.dash_iso_group_settings.and_then(|s| s.destination))
        }
        Some("MS_SMOOTH_GROUP_SETTINGS") => {
            ("MS_SMOOTH_GROUP", settings.ms_smooth_group_settings.and_then(|s| s.destination))
        }
        Some("FILE_GROUP_SETTINGS") => ("FILE_GROUP", settings.file_group_settings.and_then(|s| s.destination)),
        _ => return detail,
    };
    let Some(destination) = destination else {
        return OutputGroupDetail { kind: Some(kind.to_owned()), ..detail };
    };
    let stem = if destination.ends_with('/') {
        let name = input.rsplit('/').next().unwrap_or(input);
        format!("{destination}{}", name.rsplit_once('.').map_or(name, |(stem, _)| stem))
    } else {
        destination
    };
    let enabled = |flag: Option<&String>| flag.is_none_or(|f| f != "DISABLED");
    let playlists: Vec<String> = match kind {
        "HLS_GROUP" => vec![format!("{stem}.m3u8")],
        "CMAF_GROUP" => {
            let cmaf = settings.cmaf_group_settings.unwrap_or_default();
            let mut paths = Vec::new();
            if enabled(cmaf.write_dash_manifest.as_ref()) {
                paths.push(format!("{stem}.mpd"));
            }
            if enabled(cmaf.write_hls_manifest.as_ref()) {
                paths.push(format!("{stem}.m3u8"));
            }
            paths
        }
        "DASH_ISO_GROUP" => vec![format!("{stem}.mpd")],
        "MS_SMOOTH_GROUP" => vec![format!("{stem}.ism")],
        _ => Vec::new(),
    };
    let output_path = |output: &Output| {
        let modifier = output.name_modifier.as_deref().unwrap_or_default();
        match kind {
            "HLS_GROUP" => Some(format!("{stem}{modifier}.m3u8")),
            "MS_SMOOTH_GROUP" => Some(format!("{stem}{modifier}.ismv")),
            // Frame captures are numbered from 0: the first one names a real image.
            "FILE_GROUP" if is_frame_capture(output) => Some(format!("{stem}{modifier}.0000000.jpg")),
            "FILE_GROUP" => Some(format!("{stem}{modifier}.{}", file_extension(output))),
            _ => None,
        }
    };
    let measured = detail.output_details.unwrap_or_default();
    let outputs = (0..group.outputs.len().max(measured.len()))
        .map(|i| OutputDetail {
            output_file_paths: group.outputs.get(i).and_then(output_path).map(|p| vec![p]),
            ..measured.get(i).cloned().unwrap_or_default()
        })
        .collect();
    OutputGroupDetail {
        kind: Some(kind.to_owned()),
        output_details: Some(outputs),
        playlist_file_paths: (!playlists.is_empty()).then_some(playlists),
    }
}

/// A FILE_GROUP output's extension: its own, else its container's usual one.
/// A frame-capture output: the FRAME_CAPTURE codec (in a RAW container).
fn is_frame_capture(output: &Output) -> bool {
    let codec =
        output.video_description.as_ref().and_then(|v| v.codec_settings.as_ref()).and_then(|c| c.codec.as_deref());
    codec == Some("FRAME_CAPTURE")
}

fn file_extension(output: &Output) -> String {
    if let Some(extension) = output.extension.as_deref().filter(|e| !e.is_empty()) {
        return extension.trim_start_matches('.').to_owned();
    }
    let container = output.container_settings.as_ref().and_then(|c| c.container.as_deref()).unwrap_or("MP4");
    match container {
        "MOV" => "mov",
        "MXF" => "mxf",
        "M2TS" => "m2ts",
        "M3U8" => "m3u8",
        "WEBM" => "webm",
        "MPD" | "CMFC" => "mp4",
        "F4V" => "f4v",
        "OGG" => "ogg",
        "RAW" => "raw",
        _ => "mp4",
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(value: serde_json::Value) -> MediaConvertJob {
        serde_json::from_value(value).expect("test job")
    }

    #[test]
    fn submitted_changes_nothing_and_an_unknown_job_ends_in_error() {
        assert_eq!(
            reconcile("1-a", Some(&job(json!({"id": "1-a", "status": "SUBMITTED"}))), 0),
            Ok(Verdict::NotStarted)
        );
        let Ok(Verdict::Apply(update)) = reconcile("1700000000000-gone00", None, 5) else { panic!("an update") };
        assert_eq!(
            (update.transition.status(), update.progress, update.job_order),
            (crate::domain::JobStatus::Error, Some(100), 1700000000000)
        );
    }

    #[test]
    fn progressing_past_48_hours_ends_in_error_but_not_before() {
        let running =
            job(json!({"id": "j", "status": "PROGRESSING", "timing": {"startTime": 1000}, "jobPercentComplete": 40}));
        let at = |hours: u64| reconcile("j", Some(&running), 1_000_000 + hours * 3600 * 1000);
        let update = |hours| match at(hours) {
            Ok(Verdict::Apply(update)) => *update,
            other => panic!("{other:?}"),
        };
        assert!(matches!(update(47), JobUpdate { transition: Transition::Progressing, progress: Some(40), .. }));
        assert!(matches!(update(49), JobUpdate { transition: Transition::Error { .. }, .. }));
    }

    #[test]
    fn destinations_name_files_and_cmaf_writes_only_enabled_manifests() {
        let complete = job(json!({
            "id": "j", "status": "COMPLETE",
            "settings": {"inputs": [{"fileInput": "s3://in/a/clip.v2.mov"}], "outputGroups": [
                {"outputGroupSettings": {"type": "CMAF_GROUP_SETTINGS", "cmafGroupSettings": {"destination": "s3://out/c/main", "writeDashManifest": "DISABLED"}}},
                {"outputGroupSettings": {"type": "FILE_GROUP_SETTINGS", "fileGroupSettings": {"destination": "s3://out/f/"}},
                 "outputs": [{"nameModifier": "_hi", "containerSettings": {"container": "MOV"}}]}
            ]}
        }));
        let groups = complete.output_groups_with_paths();
        assert_eq!(groups[0].playlist_file_paths, Some(vec!["s3://out/c/main.m3u8".to_owned()]));
        let file = &groups[1].output_details.as_ref().unwrap()[0];
        assert_eq!(file.output_file_paths, Some(vec!["s3://out/f/clip.v2_hi.mov".to_owned()]));
        assert_eq!(complete.as_event_detail().complete_details().output_path, "c/");
    }
}
