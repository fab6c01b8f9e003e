//! A simulated AWS Elemental MediaConvert: the REST API aws-sdk-mediaconvert speaks
//! (`GetJobTemplate`, `CreateJob`), and for every job a timeline of "MediaConvert Job State Change"
//! events, shaped like the real ones, sent to an EventBridge-like channel.
//!
//! A job "probes" its input in the local S3 folder: a missing or empty object, or a key matching
//! the fail pattern, ends in ERROR; anything else goes PROGRESSING → STATUS_UPDATE (PROBING) →
//! INPUT_INFORMATION → STATUS_UPDATE (TRANSCODING, growing `jobPercentComplete`) → STATUS_UPDATE
//! (UPLOADING) → COMPLETE with HLS `outputGroupDetails`, after writing the playlists to the local
//! S3 folder. Events are `step` apart. With `chaos` > 0, events are delivered late, twice and out
//! of order, as EventBridge may.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use regex::Regex;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;

use crate::s3::{LocalS3, split_s3_url};

/// How the simulated jobs behave.
#[derive(Clone, Debug)]
pub struct SimSettings {
    /// `SIMULATOR_STEP_MS` (default 400): time between two events of a job.
    pub step: Duration,
    /// `SIMULATOR_CHAOS` (0 to 1, default 0): the chance that an event is delayed by one to three
    /// steps (so later ones overtake it), and, separately, that it is delivered twice.
    pub chaos: f64,
    /// `SIMULATOR_FAIL_PATTERN` (default `(?i)fail`): input keys matching it fail to "probe".
    pub fail_pattern: Regex,
    /// `SIMULATOR_SEED` (default: random): makes the chaos repeatable.
    pub seed: Option<u64>,
    /// The only job template there is (`MEDIACONVERT_JOB_TEMPLATE`, default `local-hls`).
    pub template: String,
    pub region: String,
    pub account: String,
}

impl Default for SimSettings {
    fn default() -> Self {
        Self {
            step: Duration::from_millis(400),
            chaos: 0.0,
            fail_pattern: Regex::new("(?i)fail").unwrap_or_else(|_| unreachable!("the built-in pattern compiles")),
            seed: None,
            template: "local-hls".into(),
            region: "us-east-1".into(),
            account: "000000000000".into(),
        }
    }
}

impl SimSettings {
    pub fn from_env() -> Result<Self, String> {
        let d = Self::default();
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let step = match var("SIMULATOR_STEP_MS") {
            Some(v) => Duration::from_millis(v.parse().map_err(|_| format!("SIMULATOR_STEP_MS={v:?} is not a number of milliseconds"))?),
            None => d.step,
        };
        let chaos = match var("SIMULATOR_CHAOS") {
            Some(v) => v.parse::<f64>().ok().filter(|c| (0.0..=1.0).contains(c)).ok_or_else(|| format!("SIMULATOR_CHAOS={v:?} is not a number from 0 to 1"))?,
            None => d.chaos,
        };
        let fail_pattern = match var("SIMULATOR_FAIL_PATTERN") {
            Some(v) => Regex::new(&v).map_err(|e| format!("SIMULATOR_FAIL_PATTERN={v:?} is not a regex: {e}"))?,
            None => d.fail_pattern,
        };
        let seed = match var("SIMULATOR_SEED") {
            Some(v) => Some(v.parse().map_err(|_| format!("SIMULATOR_SEED={v:?} is not a number"))?),
            None => None,
        };
        Ok(Self {
            step,
            chaos,
            fail_pattern,
            seed,
            template: var("MEDIACONVERT_JOB_TEMPLATE").unwrap_or(d.template),
            region: var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")).unwrap_or(d.region),
            account: d.account,
        })
    }
}

/// One event of a job's timeline: when (in steps from CreateJob) and what.
#[derive(Clone, Debug, PartialEq)]
pub struct Scheduled {
    pub at_step: f64,
    pub event: Value,
}

/// The simulator: its REST API ([`MediaConvertSim::router`]) and its running jobs.
pub struct MediaConvertSim {
    settings: SimSettings,
    s3: Arc<LocalS3>,
    bus: UnboundedSender<Value>,
    jobs_by_token: Mutex<HashMap<String, Value>>,
    rng: Mutex<fastrand::Rng>,
}

impl MediaConvertSim {
    pub fn new(settings: SimSettings, s3: Arc<LocalS3>, bus: UnboundedSender<Value>) -> Arc<Self> {
        let rng = settings.seed.map(fastrand::Rng::with_seed).unwrap_or_default();
        Arc::new(Self { settings, s3, bus, jobs_by_token: Mutex::default(), rng: Mutex::new(rng) })
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/2017-08-29/jobTemplates/{name}", get(get_job_template))
            .route("/2017-08-29/jobs", post(create_job))
            .with_state(self.clone())
    }

    /// The job template: one HLS output group with a 1280x720 output.
    pub fn template(&self) -> Value {
        json!({
            "name": self.settings.template,
            "arn": format!("arn:aws:mediaconvert:{}:{}:jobTemplates/{}", self.settings.region, self.settings.account, self.settings.template),
            "type": "CUSTOM",
            "settings": {"outputGroups": [{
                "name": "Apple HLS",
                "outputGroupSettings": {"type": "HLS_GROUP_SETTINGS", "hlsGroupSettings": {
                    "destination": "s3://template-destination/", "segmentLength": 6, "minSegmentLength": 0
                }},
                "outputs": [{
                    "nameModifier": "_720p",
                    "containerSettings": {"container": "M3U8"},
                    "videoDescription": {"width": 1280, "height": 720}
                }]
            }]}
        })
    }

    /// The events a job goes through, in MediaConvert's order, before any chaos.
    pub async fn timeline(&self, job: &Value) -> Vec<Value> {
        let job_id = job["id"].as_str().unwrap_or_default();
        let input = job["settings"]["inputs"][0]["fileInput"].as_str().unwrap_or_default();
        let event = |status: &str, extra: Value| self.event(job, status, extra);
        let mut events = vec![event("PROGRESSING", json!({}))];
        let phase = |phase: &str, percent: u64, phase_percent: u64| {
            let state = |p: &str| match (p, phase) {
                (p, current) if p == current => json!({"status": "PROGRESSING", "percentComplete": phase_percent}),
                ("PROBING", _) | ("TRANSCODING", "UPLOADING") => json!({"status": "COMPLETE", "percentComplete": 100}),
                _ => json!({"status": "PENDING", "percentComplete": 0}),
            };
            json!({"jobProgress": {
                "phaseProgress": {"PROBING": state("PROBING"), "TRANSCODING": state("TRANSCODING"), "UPLOADING": state("UPLOADING")},
                "jobPercentComplete": percent, "currentPhase": phase, "retryCount": 0
            }})
        };
        events.push(event("STATUS_UPDATE", phase("PROBING", 0, 50)));

        let (_, key) = split_s3_url(input).unwrap_or_default();
        let size = self.s3.size_of(input).await;
        let failure = match size {
            None => Some(format!("Failed to open input file [{input}]: [Failed probe/open: [No such object in the upload bucket]]")),
            Some(0) => Some(format!("Failed to open input file [{input}]: [Failed probe/open: [Failed to read data: the file is empty]]")),
            Some(_) if self.settings.fail_pattern.is_match(key) => {
                Some(format!("Failed to open input file [{input}]: [Failed probe/open: [Can't find a demuxer for the input]]"))
            }
            Some(_) => None,
        };
        if let Some(message) = failure {
            events.push(event("ERROR", json!({"errorCode": 1010, "errorMessage": message})));
            return events;
        }

        let size = size.unwrap_or_default();
        let (width, height) = output_resolution(job);
        // A nominal 2 Mbit/s input: duration follows the file's size.
        let duration_ms = (size.saturating_mul(4) / 1000).max(1000);
        events.push(event("INPUT_INFORMATION", json!({"inputDetails": [{
            "id": 1, "uri": input,
            "video": [{"bitDepth": 8, "codec": "H_264", "colorFormat": "YUV_420", "fourCC": "avc1", "frameRate": 30,
                       "height": height, "width": width, "interlaceMode": "PROGRESSIVE", "sar": "1:1", "standard": "UNSPECIFIED", "streamId": 1}],
            "audio": [{"channels": 2, "codec": "AAC", "language": "UND", "sampleRate": 48000, "streamId": 2}]
        }]})));
        for (percent, phase_percent) in [(10, 5), (25, 25), (45, 50), (65, 75), (85, 100)] {
            events.push(event("STATUS_UPDATE", phase("TRANSCODING", percent, phase_percent)));
        }
        events.push(event("STATUS_UPDATE", phase("UPLOADING", 95, 50)));

        let destination = job["settings"]["outputGroups"][0]["outputGroupSettings"]["hlsGroupSettings"]["destination"]
            .as_str()
            .unwrap_or("s3://local-outputs/")
            .to_owned();
        let base = key.rsplit('/').next().unwrap_or(key);
        let base = base.rsplit_once('.').map_or(base, |(stem, _)| stem);
        let modifier = job["settings"]["outputGroups"][0]["outputs"][0]["nameModifier"].as_str().unwrap_or("_720p");
        let master = format!("{destination}{base}.m3u8");
        let variant = format!("{destination}{base}{modifier}.m3u8");
        if let Err(e) = self.write_playlists(&master, &variant, width, height, duration_ms).await {
            tracing::warn!(job_id, error = %e, "could not write the simulated outputs");
        }
        events.push(event("COMPLETE", json!({
            "outputGroupDetails": [{
                "outputDetails": [{"outputFilePaths": [variant], "durationInMs": duration_ms,
                                   "videoDetails": {"widthInPx": width, "heightInPx": height, "averageBitrate": 2000000}}],
                "playlistFilePaths": [master],
                "type": "HLS_GROUP"
            }]
        })));
        events
    }

    /// A MediaConvert Job State Change event of `job`, as EventBridge delivers it; `time` and
    /// `detail.timestamp` are stamped by [`MediaConvertSim::schedule`].
    fn event(&self, job: &Value, status: &str, extra: Value) -> Value {
        let job_id = job["id"].as_str().unwrap_or_default();
        let mut detail = json!({
            "accountId": self.settings.account,
            "queue": job["queue"],
            "jobId": job_id,
            "status": status,
            "userMetadata": job.get("userMetadata").cloned().unwrap_or_else(|| json!({})),
        });
        if let (Some(detail), Value::Object(extra)) = (detail.as_object_mut(), extra) {
            detail.extend(extra);
        }
        json!({
            "version": "0",
            "id": format!("{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", fastrand::u32(..), fastrand::u16(..), fastrand::u16(..0x1000), fastrand::u16(..0x1000), fastrand::u64(..1 << 48)),
            "detail-type": mcpush_core::domain::mediaconvert::DETAIL_TYPE,
            "source": "aws.mediaconvert",
            "account": self.settings.account,
            "region": self.settings.region,
            "resources": [job["arn"]],
            "detail": detail
        })
    }

    async fn write_playlists(&self, master: &str, variant: &str, width: u64, height: u64, duration_ms: u64) -> std::io::Result<()> {
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

    /// Delivery times for a timeline: one step apart (each event stamped with the time it
    /// "happened"), then with chaos some late and some twice.
    pub fn schedule(&self, events: Vec<Value>) -> Vec<Scheduled> {
        let chaos = self.settings.chaos;
        let start = mcpush_core::now_ms();
        let step_ms = self.settings.step.as_millis() as u64;
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::with_capacity(events.len() * 2);
        for (i, mut event) in events.into_iter().enumerate() {
            let happened = start + (i as u64 + 1) * step_ms;
            event["detail"]["timestamp"] = json!(happened);
            if let Some(time) = chrono::DateTime::from_timestamp_millis(happened as i64) {
                event["time"] = json!(time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            }
            let mut at_step = (i + 1) as f64;
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

    async fn run(self: Arc<Self>, job: Value) {
        let schedule = self.schedule(self.timeline(&job).await);
        let start = tokio::time::Instant::now();
        for Scheduled { at_step, event } in schedule {
            tokio::time::sleep_until(start + self.settings.step.mul_f64(at_step)).await;
            tracing::debug!(job_id = %event["detail"]["jobId"], status = %event["detail"]["status"], "MediaConvert event");
            if self.bus.send(event).is_err() {
                return;
            }
        }
    }
}

/// Width and height of the job's first output that names them; 1280x720 otherwise.
fn output_resolution(job: &Value) -> (u64, u64) {
    let outputs = job["settings"]["outputGroups"].as_array().into_iter().flatten().flat_map(|g| g["outputs"].as_array().into_iter().flatten());
    for output in outputs {
        if let (Some(w), Some(h)) = (output["videoDescription"]["width"].as_u64(), output["videoDescription"]["height"].as_u64()) {
            return (w, h);
        }
    }
    (1280, 720)
}

/// MediaConvert's error answer: status, `x-amzn-ErrorType` and `{"message": ...}`.
fn error(status: StatusCode, kind: &'static str, message: String) -> Response {
    let mut response = (status, Json(json!({"message": message}))).into_response();
    response.headers_mut().insert("x-amzn-errortype", HeaderValue::from_static(kind));
    response
}

async fn get_job_template(State(sim): State<Arc<MediaConvertSim>>, Path(name): Path<String>) -> Response {
    let template = sim.template();
    if name == sim.settings.template || Some(name.as_str()) == template["arn"].as_str() {
        Json(json!({"jobTemplate": template})).into_response()
    } else {
        error(StatusCode::NOT_FOUND, "NotFoundException", format!("Job template {name:?} does not exist (the simulator knows {:?})", sim.settings.template))
    }
}

async fn create_job(State(sim): State<Arc<MediaConvertSim>>, body: axum::body::Bytes) -> Response {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, "BadRequestException", format!("request body is not JSON: {e}")),
    };
    if request["role"].as_str().is_none_or(str::is_empty) {
        return error(StatusCode::BAD_REQUEST, "BadRequestException", "/role is required".into());
    }
    if let Some(name) = request["jobTemplate"].as_str() {
        if name != sim.settings.template {
            return error(StatusCode::BAD_REQUEST, "BadRequestException", format!("job template {name:?} does not exist"));
        }
    }
    let Some(input) = request["settings"]["inputs"][0]["fileInput"].as_str().filter(|i| split_s3_url(i).is_some()) else {
        return error(StatusCode::BAD_REQUEST, "BadRequestException", "/settings/inputs/0/fileInput must be an s3:// URL".into());
    };
    let token = request["clientRequestToken"].as_str().unwrap_or_default().to_owned();
    let (job, fresh) = {
        let mut jobs = sim.jobs_by_token.lock().unwrap_or_else(|e| e.into_inner());
        match jobs.get(&token).filter(|_| !token.is_empty()) {
            Some(job) => (job.clone(), false),
            None => {
                let id = format!("{}-{}", mcpush_core::now_ms(), (0..6).map(|_| fastrand::alphanumeric().to_ascii_lowercase()).collect::<String>());
                let job = json!({
                    "id": id,
                    "arn": format!("arn:aws:mediaconvert:{}:{}:jobs/{id}", sim.settings.region, sim.settings.account),
                    "jobTemplate": request["jobTemplate"],
                    "queue": request["queue"].as_str().map(str::to_owned)
                        .unwrap_or_else(|| format!("arn:aws:mediaconvert:{}:{}:queues/Default", sim.settings.region, sim.settings.account)),
                    "role": request["role"],
                    "settings": request["settings"],
                    "status": "SUBMITTED",
                    "userMetadata": request.get("userMetadata").cloned().unwrap_or_else(|| json!({})),
                });
                if !token.is_empty() {
                    jobs.insert(token, job.clone());
                }
                (job, true)
            }
        }
    };
    if fresh {
        tracing::info!(job_id = %job["id"], input, "simulated MediaConvert job started");
        tokio::spawn(sim.clone().run(job.clone()));
    }
    (StatusCode::CREATED, Json(json!({"job": job}))).into_response()
}

/// Characters escaped in a playlist's URI lines.
const PLAYLIST_URI: percent_encoding::AsciiSet = percent_encoding::NON_ALPHANUMERIC.remove(b'.').remove(b'-').remove(b'_');

#[cfg(test)]
mod tests {
    use super::*;

    fn sim(chaos: f64) -> Arc<MediaConvertSim> {
        let (bus, _) = tokio::sync::mpsc::unbounded_channel();
        let settings = SimSettings { chaos, seed: Some(7), ..SimSettings::default() };
        MediaConvertSim::new(settings, Arc::new(LocalS3::new("/nonexistent", "us-east-1")), bus)
    }

    fn timeline(n: usize) -> Vec<Value> {
        (0..n).map(|i| json!({"detail": {"n": i}})).collect()
    }

    fn order(schedule: &[Scheduled]) -> Vec<u64> {
        schedule.iter().map(|s| s.event["detail"]["n"].as_u64().unwrap()).collect()
    }

    #[test]
    fn without_chaos_events_come_one_step_apart_in_order_stamped_with_their_time() {
        let schedule = sim(0.0).schedule(timeline(5));
        assert_eq!(order(&schedule), [0, 1, 2, 3, 4]);
        assert_eq!(schedule.iter().map(|s| s.at_step).collect::<Vec<_>>(), [1.0, 2.0, 3.0, 4.0, 5.0]);
        let stamps: Vec<u64> = schedule.iter().map(|s| s.event["detail"]["timestamp"].as_u64().unwrap()).collect();
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
        let stamps = |n: u64| schedule.iter().filter(|s| s.event["detail"]["n"] == n).map(|s| s.event["detail"]["timestamp"].clone()).collect::<Vec<_>>();
        assert_eq!(stamps(3)[0], stamps(3)[1]);
    }
}
