//! What a watcher sees of a job: the body of `/media/status` and the payload of the WebSocket
//! `status` message, derived from a [`JobRecord`] in one place.

use std::collections::BTreeMap;

use serde::Serialize;

use super::eta;
use super::job::{JobRecord, JobStatus, OutputFile, Phase, job_order_from_id};

/// A job's visible state, fields in the seed's order.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusView {
    pub job_status: JobStatus,
    pub progress_rate: u8,
    /// Grows by exactly one whenever anything else in this view changes: a watcher that sees
    /// a version more than one above the last it saw missed an update.
    pub version: u64,
    /// While PROGRESSING, the furthest `jobProgress.currentPhase` reported. Shown by WebSocket
    /// messages and by the `?input_file=` extension; `?job_id=` keeps the seed's exact body.
    pub current_phase: Option<Phase>,
    /// While PROGRESSING, each phase's furthest percent (`jobProgress.phaseProgress`).
    pub phase_progress: Option<BTreeMap<Phase, u8>>,
    /// Epoch milliseconds on MediaConvert's clock, each absent until known: when it received
    /// the job, when the job started, when it ended, and its latest event.
    pub submitted_at: Option<u64>,
    pub started_at: Option<u64>,
    pub finished_at: Option<u64>,
    pub updated_at: Option<u64>,
    /// SUBMITTED → PROGRESSING.
    pub queued_ms: Option<u64>,
    /// PROGRESSING → the latest event, or the end.
    pub elapsed_ms: Option<u64>,
    /// While PROGRESSING: estimated milliseconds from `updated_at` to COMPLETE ([`super::eta`]);
    /// absent when the reports do not tell.
    pub eta_ms: Option<u64>,
    pub duration_ms: Option<u64>,
    pub width_px: Option<u32>,
    pub height_px: Option<u32>,
    pub output_path: Option<String>,
    pub playlists: Option<BTreeMap<String, String>>,
    /// COMPLETE only: every output of every group, in the job's order.
    pub outputs: Option<Vec<OutputFile>>,
    /// COMPLETE only, in a pushed message too long for one WebSocket frame: `outputs` and
    /// `thumbnails` keep their first entries ([`super::protocol::StatusUpdate::new`]).
    pub outputs_truncated: Option<bool>,
    /// COMPLETE only, when the job captured frames: their files (S3 URIs).
    pub thumbnails: Option<Vec<String>>,
    /// `thumbnails` under `OUTPUT_BASE_URL`, when it is set.
    pub thumbnail_urls: Option<Vec<String>>,
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
}

/// `OUTPUT_BASE_URL`: where the output bucket is served (a CloudFront distribution), so a status
/// can give each output's and thumbnail's URL: the base followed by the object's key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputBaseUrl(String);

impl OutputBaseUrl {
    /// An `https://` URL (or `http://` on loopback, for the local stack); `/` is appended.
    pub fn parse(url: &str) -> Result<Self, String> {
        if !super::origin::secure_or_loopback(url) || url.contains(['?', '#', ' ']) {
            return Err(format!("{url:?} is not an https:// URL (without query or fragment)"));
        }
        Ok(Self(if url.ends_with('/') { url.to_owned() } else { format!("{url}/") }))
    }

    /// `s3://bucket/a b/c.m3u8` → `{base}a%20b/c.m3u8`.
    pub fn url_of(&self, s3_uri: &str) -> Option<String> {
        let (_, key) = s3_uri.strip_prefix("s3://")?.split_once('/')?;
        let encoded: Vec<String> = key
            .split('/')
            .map(|segment| percent_encoding::utf8_percent_encode(segment, URL_SEGMENT).to_string())
            .collect();
        Some(format!("{}{}", self.0, encoded.join("/")))
    }
}

/// What stays as it is in a URL path segment: RFC 3986's unreserved characters.
const URL_SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

impl StatusView {
    /// With each output's and thumbnail's URL under `base`, when there is one.
    pub fn linked(mut self, base: Option<&OutputBaseUrl>) -> Self {
        let Some(base) = base else { return self };
        for output in self.outputs.iter_mut().flatten() {
            output.url = output.path.as_deref().and_then(|p| base.url_of(p));
        }
        self.thumbnail_urls = self.thumbnails.as_ref().map(|t| t.iter().filter_map(|p| base.url_of(p)).collect());
        self
    }
}

impl From<&JobRecord> for StatusView {
    fn from(r: &JobRecord) -> Self {
        let complete = r.job_status == JobStatus::Complete;
        let error = r.job_status == JobStatus::Error;
        let running = r.job_status == JobStatus::Progressing;
        let submitted_at = r.submitted_at.or_else(|| job_order_from_id(&r.job_id));
        let since = |from: Option<u64>, to: Option<u64>| Some(to?.saturating_sub(from?));
        Self {
            job_status: r.job_status,
            progress_rate: r.progress_rate,
            version: r.version(),
            current_phase: r.current_phase.filter(|_| running),
            phase_progress: r.phase_progress.clone().filter(|p| running && !p.is_empty()),
            submitted_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            updated_at: r.updated_at,
            queued_ms: since(submitted_at, r.started_at),
            elapsed_ms: since(r.started_at, r.finished_at.or(r.updated_at)),
            eta_ms: r.samples.as_deref().filter(|_| running).and_then(eta::eta_ms),
            duration_ms: r.duration_ms.filter(|_| complete),
            width_px: r.width_px.filter(|_| complete),
            height_px: r.height_px.filter(|_| complete),
            output_path: r.output_path.clone().filter(|_| complete),
            playlists: complete.then(|| r.playlists.clone().unwrap_or_default()),
            outputs: r.outputs.clone().filter(|_| complete),
            outputs_truncated: None,
            thumbnails: r.thumbnails.clone().filter(|_| complete),
            thumbnail_urls: None,
            error_code: r.error_code.filter(|_| error),
            error_message: r.error_message.clone().filter(|_| error),
        }
    }
}

/// The seed's `GET /media/status?job_id=` body, exactly the fields its `success_response`
/// writes, in its order: a field added to [`StatusView`] cannot reach the seed's clients.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SeedStatus {
    pub success: bool,
    pub job_status: JobStatus,
    pub progress_rate: u8,
    pub duration_ms: Option<u64>,
    pub width_px: Option<u32>,
    pub height_px: Option<u32>,
    pub output_path: Option<String>,
    pub playlists: Option<BTreeMap<String, String>>,
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
}

impl From<StatusView> for SeedStatus {
    fn from(view: StatusView) -> Self {
        Self {
            success: true,
            job_status: view.job_status,
            progress_rate: view.progress_rate,
            duration_ms: view.duration_ms,
            width_px: view.width_px,
            height_px: view.height_px,
            output_path: view.output_path,
            playlists: view.playlists,
            error_code: view.error_code,
            error_message: view.error_message,
        }
    }
}
