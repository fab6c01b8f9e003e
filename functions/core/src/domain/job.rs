//! Job state as stored in the status table, and the merge rule that keeps it monotonic.
//!
//! The stored state is a small lattice: the status moves SUBMITTED → PROGRESSING → one final
//! status (COMPLETE, ERROR or CANCELED; the first one wins), the progress only ever grows, and
//! `InputFile` / `JobOrder` are set once. Applying an update is commutative for one job's real
//! event stream and idempotent, so EventBridge's duplicates and reordering change nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::eta::{self, ProgressSample};
use super::status::StatusView;

/// `JobStatus` as stored in the status table and shown by the REST and WebSocket APIs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    #[default]
    Submitted,
    Progressing,
    Complete,
    Error,
    Canceled,
}

impl JobStatus {
    /// COMPLETE, ERROR and CANCELED never change once stored.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Complete | Self::Error | Self::Canceled)
    }

    /// The stored statuses a record with this status may replace (itself included).
    pub fn replaceable(self) -> &'static [JobStatus] {
        use JobStatus::*;
        match self {
            Submitted => &[Submitted],
            Progressing => &[Submitted, Progressing],
            Complete => &[Submitted, Progressing, Complete],
            Error => &[Submitted, Progressing, Error],
            Canceled => &[Submitted, Progressing, Canceled],
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "SUBMITTED",
            Self::Progressing => "PROGRESSING",
            Self::Complete => "COMPLETE",
            Self::Error => "ERROR",
            Self::Canceled => "CANCELED",
        }
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `jobProgress.currentPhase` of STATUS_UPDATE events, in the order a job goes through them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Phase {
    Probing,
    Transcoding,
    Uploading,
}

impl Phase {
    /// MediaConvert's spelling; `None` for a phase this product does not know.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "PROBING" => Some(Self::Probing),
            "TRANSCODING" => Some(Self::Transcoding),
            "UPLOADING" => Some(Self::Uploading),
            _ => None,
        }
    }

    /// This phase and the ones before it: the stored phases a record in this phase may replace.
    pub fn up_to(self) -> &'static [Phase] {
        const ALL: [Phase; 3] = [Phase::Probing, Phase::Transcoding, Phase::Uploading];
        &ALL[..=self as usize]
    }
}

/// What a finished job produced, read from a COMPLETE event's `outputGroupDetails`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompleteDetails {
    pub duration_ms: Option<u64>,
    pub width_px: Option<u32>,
    pub height_px: Option<u32>,
    /// Folder of the outputs relative to the bucket, ending in `/` (`""` at the bucket root).
    pub output_path: String,
    /// Extension → file name, e.g. `{".m3u8": "Big Buck Bunny.m3u8"}`.
    pub playlists: BTreeMap<String, String>,
    /// Every output of every output group, in the job's order.
    pub outputs: Vec<OutputFile>,
    /// The frame captures' files (S3 URIs).
    pub thumbnails: Vec<String>,
}

/// One output a finished job wrote, as far as its COMPLETE event (or GetJob) tells.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputFile {
    /// The output group's position in the job (0-based).
    pub group: u32,
    /// The group's type: `HLS_GROUP`, `DASH_ISO_GROUP`, `CMAF_GROUP`, `MS_SMOOTH_GROUP`, `FILE_GROUP`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The file (S3 URI): a rendition's playlist for streaming groups, the file for file groups.
    pub path: Option<String>,
    /// `path` under `OUTPUT_BASE_URL`, when it is set (added when shown, never stored).
    pub url: Option<String>,
    pub width_px: Option<u32>,
    pub height_px: Option<u32>,
    pub duration_ms: Option<u64>,
    /// Average bits per second (`videoDetails.averageBitrate`).
    pub bitrate: Option<u64>,
    /// The group's manifest (S3 URI) that lists this output, for streaming groups.
    pub playlist: Option<String>,
}

/// The state change one event (or create-job) asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transition {
    /// create-job stored a new job.
    Submitted,
    /// Any non-final MediaConvert event: PROGRESSING, STATUS_UPDATE, INPUT_INFORMATION, …
    Progressing,
    Complete(CompleteDetails),
    Error {
        code: Option<i64>,
        message: Option<String>,
    },
    Canceled,
}

impl Transition {
    pub fn status(&self) -> JobStatus {
        match self {
            Self::Submitted => JobStatus::Submitted,
            Self::Progressing => JobStatus::Progressing,
            Self::Complete(_) => JobStatus::Complete,
            Self::Error { .. } => JobStatus::Error,
            Self::Canceled => JobStatus::Canceled,
        }
    }
}

/// One update of one job, independent of where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobUpdate {
    pub job_id: String,
    pub input_file: Option<String>,
    pub transition: Transition,
    /// Progress the update reports, if any (COMPLETE and ERROR report 100).
    pub progress: Option<u8>,
    /// Creation order of the job: see [`job_order_from_id`]; the caller supplies "now" for ids
    /// without an epoch-millisecond prefix.
    pub job_order: u64,
    /// Phase a STATUS_UPDATE reports, if any.
    pub phase: Option<Phase>,
    /// When MediaConvert reported it (the event's `detail.timestamp`, epoch ms); `None` for the
    /// reconciler's GetJob answers, which are no event.
    pub event_at: Option<u64>,
    /// What it tells about the job's times and pace.
    pub observed: Observed,
}

impl JobUpdate {
    /// A running job's progress report (a STATUS_UPDATE with a percent): the bulk of a job's
    /// events, each one more of the same job.
    pub fn is_progress_report(&self) -> bool {
        matches!(self.transition, Transition::Progressing)
            && self.observed.sample.as_ref().is_some_and(|sample| sample.percent.is_some())
    }
}

/// What an event (or GetJob) tells about when things happened and how fast, on MediaConvert's
/// own clock (epoch ms). Merged as a set: the earliest start, the latest report, every sample.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// GetJob's `timing.submitTime` (events carry none; the job id's prefix says it too).
    pub submitted_at: Option<u64>,
    /// GetJob's `timing.startTime`, or the time of an event of the running job.
    pub started_at: Option<u64>,
    /// GetJob's `timing.finishTime`, or the time of the final event.
    pub finished_at: Option<u64>,
    /// A STATUS_UPDATE's or INPUT_INFORMATION's progress report.
    pub sample: Option<ProgressSample>,
    /// `jobProgress.phaseProgress`: each phase's percent.
    pub phase_progress: BTreeMap<Phase, u8>,
}

/// One item of the status table (`MediaConvertJobIdToStatus` by default).
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobRecord {
    pub job_id: String,
    pub input_file: Option<String>,
    pub job_status: JobStatus,
    #[serde(default)]
    pub progress_rate: u8,
    pub duration_ms: Option<u64>,
    pub width_px: Option<u32>,
    pub height_px: Option<u32>,
    pub output_path: Option<String>,
    pub playlists: Option<BTreeMap<String, String>>,
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
    /// Creation order used to keep `InputFile → JobId` on the newest job; absent on items
    /// written by the seed's Python functions.
    pub job_order: Option<u64>,
    /// The furthest phase reported so far while the job runs (phases, like progress, never go
    /// back); cleared by the final status, so a late STATUS_UPDATE changes nothing.
    pub current_phase: Option<Phase>,
    /// TTL attribute (epoch seconds): the job's creation time plus the retention, see
    /// [`JobRecord::expiring`]; absent when items are kept forever.
    pub expires_at: Option<u64>,
    /// `1` while the job is not final, absent once it is: the partition key of the status
    /// table's sparse index [`UNFINISHED_INDEX`], so the reconciler finds unfinished jobs
    /// without a Scan. Set by the stores ([`JobRecord::confirmed`]).
    pub unfinished: Option<u8>,
    /// Epoch milliseconds at which the stored state was last known to be MediaConvert's: its
    /// last change, or the reconciler's last GetJob that found nothing new. Only on unfinished
    /// jobs (the sort key of [`UNFINISHED_INDEX`]).
    pub confirmed_at: Option<u64>,
    /// Epoch milliseconds at which MediaConvert reported the stored state (the event's
    /// `detail.timestamp`); progress-push measures `EndToEndLagMs` from it. Absent when the
    /// state came from no event (creation, the reconciler).
    pub event_at: Option<u64>,
    /// Reconciliations of this unfinished job that failed in a row (GetJob or its answer); set
    /// by the stores ([`crate::ports::JobStore::record_failure`]), cleared by any change.
    pub reconcile_failures: Option<u32>,
    /// Epoch milliseconds at which the reconciler gave up on the job after too many failures:
    /// it left the index, so no run spends a GetJob on it again until an event moves it.
    pub parked_at: Option<u64>,
    /// When MediaConvert received the job (GetJob's `timing.submitTime`; the view falls back to
    /// the job id's epoch-millisecond prefix).
    pub submitted_at: Option<u64>,
    /// When it started: the earliest event of the running job, or GetJob's `timing.startTime`.
    pub started_at: Option<u64>,
    /// When it ended: its final event, or GetJob's `timing.finishTime`.
    pub finished_at: Option<u64>,
    /// The latest event's time (any event of the job).
    pub updated_at: Option<u64>,
    /// The furthest percent of each phase reported (`jobProgress.phaseProgress`).
    pub phase_progress: Option<BTreeMap<Phase, u8>>,
    /// The latest progress reports, for the time remaining ([`super::eta`]).
    pub samples: Option<Vec<ProgressSample>>,
    /// COMPLETE: every output of every group, in the job's order.
    pub outputs: Option<Vec<OutputFile>>,
    /// COMPLETE: the frame captures' files (S3 URIs).
    pub thumbnails: Option<Vec<String>>,
    /// Grows by exactly one with every change of the job's [`StatusView`] and never otherwise
    /// (set by [`JobRecord::merge`]); absent on items the seed's functions wrote (version 0).
    /// Stores write on the condition that the stored version is still the one they read.
    pub version: Option<u64>,
}

/// The status table's sparse index of unfinished jobs: partition key `Unfinished`, sort key
/// `ConfirmedAt`; final jobs carry neither, so they are not in it.
pub const UNFINISHED_INDEX: &str = "UnfinishedByConfirmedAt";

/// How old a job's `ConfirmedAt` may be, at most, before a change moves it to now. `ConfirmedAt`
/// is the index's sort key, so each move rewrites the job's index item (a delete and a put,
/// 2 WRU); moving it at most once a minute spares that on the other progress updates. A job is
/// then checked up to this much sooner after it went quiet, so the stores use a fifth of
/// `RECONCILE_AFTER_SECONDS` when that is less ([`ReconcileConfig::confirmation_refresh`]).
///
/// [`ReconcileConfig::confirmation_refresh`]: crate::config::ReconcileConfig::confirmation_refresh
pub const CONFIRMATION_REFRESH_MS: u64 = 60_000;

impl JobRecord {
    /// A job just created: SUBMITTED, 0 %, nothing else known.
    pub fn submitted(job_id: &str) -> Self {
        JobRecord { job_id: job_id.to_owned(), job_status: JobStatus::Submitted, ..JobRecord::default() }
    }

    /// The version of the state (0 for an item without one).
    pub fn version(&self) -> u64 {
        self.version.unwrap_or(0)
    }

    /// What a store writes with a changed record at `now_ms`: an unfinished job is in the
    /// reconciler's index, confirmed now (or still at its confirmation of less than `refresh_ms`
    /// ago, see [`CONFIRMATION_REFRESH_MS`]); a final one leaves it.
    pub fn confirmed(mut self, now_ms: u64, refresh_ms: u64) -> Self {
        (self.reconcile_failures, self.parked_at) = (None, None);
        if self.job_status.is_final() {
            (self.unfinished, self.confirmed_at) = (None, None);
        } else {
            let recent =
                self.confirmed_at.filter(|at| self.unfinished.is_some() && now_ms.saturating_sub(*at) < refresh_ms);
            (self.unfinished, self.confirmed_at) = (Some(1), Some(recent.unwrap_or(now_ms)));
        }
        self
    }

    /// The merge rule. Returns the new state, or `None` when `update` changes nothing
    /// (a duplicate, a late event, a lower progress, anything after a final status).
    pub fn merge(current: Option<&JobRecord>, update: &JobUpdate) -> Option<JobRecord> {
        let mut next = match current {
            Some(record) => record.clone(),
            None => JobRecord::submitted(&update.job_id),
        };
        if !next.job_status.is_final() {
            match &update.transition {
                Transition::Submitted => {}
                Transition::Progressing => next.job_status = JobStatus::Progressing,
                Transition::Complete(details) => {
                    next.job_status = JobStatus::Complete;
                    next.duration_ms = details.duration_ms;
                    next.width_px = details.width_px;
                    next.height_px = details.height_px;
                    next.output_path = Some(details.output_path.clone());
                    next.playlists = Some(details.playlists.clone());
                    next.outputs = Some(details.outputs.clone()).filter(|o| !o.is_empty());
                    next.thumbnails = Some(details.thumbnails.clone()).filter(|t| !t.is_empty());
                }
                Transition::Error { code, message } => {
                    next.job_status = JobStatus::Error;
                    next.error_code = *code;
                    next.error_message = message.clone();
                }
                Transition::Canceled => next.job_status = JobStatus::Canceled,
            }
        }
        if let Some(progress) = update.progress {
            next.progress_rate = next.progress_rate.max(progress.min(100));
        }
        if next.job_status.is_final() {
            next.current_phase = None;
        } else if update.phase > next.current_phase {
            next.current_phase = update.phase;
        }
        if next.input_file.is_none() {
            next.input_file = update.input_file.clone();
        }
        if next.job_order.is_none() {
            next.job_order = Some(update.job_order);
        }
        next.observe(update);
        if current == Some(&next) {
            return None;
        }
        if current.map(StatusView::from).as_ref() != Some(&StatusView::from(&next)) {
            next.version = Some(next.version() + 1);
        }
        // Only a change takes the update's time: a duplicate stays a duplicate.
        next.event_at = update.event_at;
        Some(next)
    }

    /// Takes in what `update` tells about times and pace: the earliest submit and start, the
    /// final event's time (of the final status that won), the latest report, each phase's
    /// furthest percent and the set of latest samples; all order-independent.
    fn observe(&mut self, update: &JobUpdate) {
        let earliest = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let seen = &update.observed;
        self.submitted_at = earliest(self.submitted_at, seen.submitted_at);
        self.started_at = earliest(self.started_at, seen.started_at);
        if self.job_status.is_final() && update.transition.status() == self.job_status {
            self.finished_at = earliest(self.finished_at, seen.finished_at);
        }
        self.updated_at = self.updated_at.max(update.event_at);
        if self.job_status.is_final() {
            // Like the phase, the pace is a running job's: a final status clears it, so a late
            // report changes nothing.
            (self.phase_progress, self.samples) = (None, None);
            return;
        }
        for (phase, percent) in &seen.phase_progress {
            let phases = self.phase_progress.get_or_insert_with(BTreeMap::new);
            let furthest = phases.entry(*phase).or_insert(0);
            *furthest = (*furthest).max((*percent).min(100));
        }
        if let Some(sample) = seen.sample {
            eta::keep(self.samples.get_or_insert_with(Vec::new), sample);
        }
    }

    /// Sets `ExpiresAt` to the job's creation time plus `retention` if it has none: derived from
    /// the job, not from the clock, so every writer sets the same value and the item expires
    /// `retention` after MediaConvert created the job.
    pub fn expiring(mut self, retention: Option<std::time::Duration>) -> Self {
        if let (None, Some(retention), Some(order)) = (self.expires_at, retention, self.job_order) {
            self.expires_at = Some(order / 1000 + retention.as_secs());
        }
        self
    }

    /// True when `self` may overwrite `stored` without moving anything backwards: the rule a
    /// store enforces at write time (the DynamoDB adapter as a condition expression).
    pub fn may_replace(&self, stored: &JobRecord) -> bool {
        self.job_status.replaceable().contains(&stored.job_status)
            && stored.progress_rate <= self.progress_rate
            && (stored.input_file.is_none() || stored.input_file == self.input_file)
            && (stored.job_order.is_none() || stored.job_order == self.job_order)
            && (self.job_status.is_final() || stored.current_phase <= self.current_phase)
            && stored.updated_at <= self.updated_at
            && stored.version <= self.version
    }
}

/// One item of the `InputFile → JobId` table (`MediaConvertInputFileToJobId` by default).
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobPointer {
    pub input_file: String,
    pub job_id: String,
    pub job_order: Option<u64>,
}

impl JobPointer {
    /// True when this pointer names a newer job than `stored` (ties broken by job id, so two
    /// writers always agree). A stored pointer without an order (the seed's data) is oldest.
    pub fn supersedes(&self, stored: &JobPointer) -> bool {
        if self.job_id == stored.job_id {
            return false;
        }
        match (stored.job_order, self.job_order) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(old), Some(new)) => old < new || (old == new && stored.job_id < self.job_id),
        }
    }
}

/// The epoch-millisecond creation time that prefixes MediaConvert job ids
/// (`1671477617078-2886ye` → `1671477617078`); `None` for ids without a 13-digit prefix.
pub fn job_order_from_id(job_id: &str) -> Option<u64> {
    let (prefix, rest) = job_id.split_once('-')?;
    if prefix.len() == 13 && !rest.is_empty() && prefix.bytes().all(|b| b.is_ascii_digit()) {
        prefix.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirmation_moves_at_most_once_a_minute_so_progress_leaves_the_index_item_alone() {
        let t0 = 1_700_000_000_000;
        let refresh = CONFIRMATION_REFRESH_MS;
        let running =
            JobRecord { job_status: JobStatus::Progressing, ..JobRecord::submitted("1-a") }.confirmed(t0, refresh);
        assert_eq!((running.unfinished, running.confirmed_at), (Some(1), Some(t0)));
        let soon = running.clone().confirmed(t0 + refresh - 1, refresh);
        assert_eq!(soon.confirmed_at, Some(t0), "a change within the minute keeps the index key");
        let later = running.clone().confirmed(t0 + refresh, refresh);
        assert_eq!(later.confirmed_at, Some(t0 + CONFIRMATION_REFRESH_MS));
        // a parked job (out of the index) re-enters it confirmed now
        let parked = JobRecord { unfinished: None, parked_at: Some(t0), ..running.clone() }.confirmed(t0 + 5, refresh);
        assert_eq!((parked.unfinished, parked.confirmed_at, parked.parked_at), (Some(1), Some(t0 + 5), None));
        let done = JobRecord { job_status: JobStatus::Complete, ..running }.confirmed(t0 + 5, refresh);
        assert_eq!((done.unfinished, done.confirmed_at), (None, None));
    }

    fn update(transition: Transition, progress: Option<u8>) -> JobUpdate {
        JobUpdate {
            job_id: "1671477617078-2886ye".into(),
            input_file: Some("in.mp4".into()),
            transition,
            progress,
            job_order: 1671477617078,
            phase: None,
            event_at: None,
            observed: Default::default(),
        }
    }

    #[test]
    fn a_change_takes_its_events_time_and_a_duplicate_changes_nothing() {
        let first = JobUpdate { event_at: Some(1_000), ..update(Transition::Progressing, Some(10)) };
        let record = JobRecord::merge(None, &first).unwrap();
        assert_eq!(record.event_at, Some(1_000));
        assert_eq!(JobRecord::merge(Some(&record), &first), None, "a redelivered event is no change");
        let later_report = JobUpdate { event_at: Some(2_000), ..first.clone() };
        let reported = JobRecord::merge(Some(&record), &later_report).expect("a later report moves updated_at");
        assert_eq!((reported.updated_at, reported.progress_rate), (Some(2_000), 10));
        let record = reported;
        let more = JobUpdate { event_at: Some(3_000), ..update(Transition::Progressing, Some(20)) };
        assert_eq!(JobRecord::merge(Some(&record), &more).unwrap().event_at, Some(3_000));
        let reconciled = update(Transition::Progressing, Some(30));
        assert_eq!(JobRecord::merge(Some(&record), &reconciled).unwrap().event_at, None, "no event, no event time");
    }

    #[test]
    fn the_version_counts_changes_of_the_view_and_nothing_else() {
        let first = JobUpdate { event_at: Some(1_000), ..update(Transition::Progressing, Some(10)) };
        let record = JobRecord::merge(None, &first).unwrap();
        assert_eq!(record.version, Some(1), "a new job is version 1");
        let later = JobUpdate { event_at: Some(2_000), ..update(Transition::Progressing, Some(20)) };
        let record = JobRecord::merge(Some(&record), &later).unwrap();
        assert_eq!(record.version, Some(2));
        // A report that only adds a sample (nothing a watcher sees) is stored without a new version.
        let sample = ProgressSample { at: 1_500, percent: Some(15), phase: None, frames: None };
        let quiet = JobUpdate {
            observed: Observed { sample: Some(sample), ..Observed::default() },
            ..update(Transition::Progressing, Some(10))
        };
        let stored = JobRecord::merge(Some(&record), &quiet).expect("the sample is kept");
        assert_ne!(stored.samples, record.samples);
        assert_eq!(StatusView::from(&stored), StatusView::from(&record));
        assert_eq!(stored.version, Some(2));
        // The seed's items have no version: their first change is version 1.
        let seed = JobRecord { version: None, ..record.clone() };
        let done = JobRecord::merge(Some(&seed), &update(Transition::Canceled, None)).unwrap();
        assert_eq!((done.version, StatusView::from(&done).version), (Some(1), 1));
    }

    fn apply_all(updates: &[JobUpdate]) -> Option<JobRecord> {
        updates.iter().fold(None, |state, u| JobRecord::merge(state.as_ref(), u).or(state))
    }

    #[test]
    fn given_no_record_when_progress_event_then_progressing_at_its_rate() {
        let record = JobRecord::merge(None, &update(Transition::Progressing, Some(30))).unwrap();
        assert_eq!(record.job_status, JobStatus::Progressing);
        assert_eq!(record.progress_rate, 30);
        assert_eq!(record.input_file.as_deref(), Some("in.mp4"));
        assert_eq!(record.job_order, Some(1671477617078));
    }

    #[test]
    fn given_complete_when_late_status_update_then_nothing_changes() {
        let done = apply_all(&[update(Transition::Complete(CompleteDetails::default()), Some(100))]);
        assert_eq!(JobRecord::merge(done.as_ref(), &update(Transition::Progressing, Some(40))), None);
    }

    #[test]
    fn given_error_when_complete_arrives_then_first_final_status_wins() {
        let failed = apply_all(&[update(Transition::Error { code: Some(1010), message: None }, Some(100))]);
        let after =
            JobRecord::merge(failed.as_ref(), &update(Transition::Complete(CompleteDetails::default()), Some(100)));
        assert_eq!(after, None);
    }

    #[test]
    fn given_progress_70_when_progress_50_then_nothing_changes() {
        let state = apply_all(&[update(Transition::Progressing, Some(70))]);
        assert_eq!(JobRecord::merge(state.as_ref(), &update(Transition::Progressing, Some(50))), None);
    }

    #[test]
    fn given_progressing_when_create_job_writes_submitted_late_then_status_stays() {
        let state = apply_all(&[update(Transition::Progressing, Some(10))]);
        assert_eq!(JobRecord::merge(state.as_ref(), &update(Transition::Submitted, Some(0))), None);
    }

    #[test]
    fn given_canceled_when_older_progress_arrives_then_progress_still_grows() {
        let state =
            apply_all(&[update(Transition::Canceled, None), update(Transition::Progressing, Some(60))]).unwrap();
        assert_eq!((state.job_status, state.progress_rate), (JobStatus::Canceled, 60));
    }

    #[test]
    fn given_uploading_when_late_transcoding_update_then_phase_stays() {
        let at = |phase| JobUpdate { phase: Some(phase), ..update(Transition::Progressing, None) };
        let state = apply_all(&[at(Phase::Uploading)]);
        assert_eq!(JobRecord::merge(state.as_ref(), &at(Phase::Transcoding)), None);
        let probing = apply_all(&[at(Phase::Probing)]).unwrap();
        let transcoding = JobRecord::merge(Some(&probing), &at(Phase::Transcoding)).unwrap();
        assert!(transcoding.may_replace(&probing) && !probing.may_replace(&transcoding));
        assert_eq!(Phase::Transcoding.up_to(), &[Phase::Probing, Phase::Transcoding]);
        let done =
            JobRecord::merge(Some(&transcoding), &update(Transition::Complete(CompleteDetails::default()), Some(100)))
                .unwrap();
        assert_eq!(done.current_phase, None, "a final status clears the phase");
        assert!(done.may_replace(&transcoding));
        assert_eq!(JobRecord::merge(Some(&done), &at(Phase::Uploading)), None);
    }

    #[test]
    fn may_replace_refuses_every_backward_move() {
        let progressing = apply_all(&[update(Transition::Progressing, Some(50))]).unwrap();
        let complete =
            JobRecord::merge(Some(&progressing), &update(Transition::Complete(CompleteDetails::default()), Some(100)))
                .unwrap();
        assert!(complete.may_replace(&progressing));
        assert!(!progressing.may_replace(&complete));
        let mut lower = progressing.clone();
        lower.progress_rate = 40;
        assert!(!lower.may_replace(&progressing));
        let mut other_file = progressing.clone();
        other_file.input_file = Some("other.mp4".into());
        assert!(!other_file.may_replace(&progressing));
    }

    #[test]
    fn job_order_reads_only_13_digit_prefixes() {
        assert_eq!(job_order_from_id("1671477617078-2886ye"), Some(1671477617078));
        assert_eq!(job_order_from_id("123456789012-smb6o7"), None);
        assert_eq!(job_order_from_id("c123456789012-smb6o7"), None);
        assert_eq!(job_order_from_id("1671477617078"), None);
        assert_eq!(job_order_from_id("1671477617078-"), None);
    }

    #[test]
    fn pointer_moves_only_to_newer_jobs() {
        let p = |id: &str, order| JobPointer { input_file: "f".into(), job_id: id.into(), job_order: order };
        assert!(p("b", Some(2)).supersedes(&p("a", Some(1))));
        assert!(!p("a", Some(1)).supersedes(&p("b", Some(2))));
        assert!(!p("a", Some(1)).supersedes(&p("a", Some(1))));
        assert!(p("b", Some(1)).supersedes(&p("a", Some(1))));
        assert!(!p("a", Some(1)).supersedes(&p("b", Some(1))));
        assert!(p("a", Some(1)).supersedes(&p("legacy", None)));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// A job's real event stream in order: non-final events with non-decreasing progress (some
    /// without any), then at most one final event.
    fn ordered_events() -> impl Strategy<Value = Vec<JobUpdate>> {
        let progress_steps = prop::collection::vec((0u8..=20, any::<bool>(), 0u8..4), 0..12);
        let last = prop_oneof![
            Just(None),
            Just(Some(Transition::Complete(CompleteDetails {
                duration_ms: Some(596458),
                width_px: Some(1280),
                height_px: Some(720),
                output_path: "out/".into(),
                playlists: BTreeMap::from([(".m3u8".into(), "a.m3u8".into())]),
                outputs: vec![OutputFile {
                    kind: Some("HLS_GROUP".into()),
                    path: Some("s3://b/out/a_720p.m3u8".into()),
                    ..OutputFile::default()
                }],
                thumbnails: vec!["s3://b/out/a.0000009.jpg".into()],
            }))),
            Just(Some(Transition::Error { code: Some(1010), message: Some("probe failed".into()) })),
            Just(Some(Transition::Canceled)),
        ];
        (progress_steps, last).prop_map(|(steps, last)| {
            let make = |transition, progress, phase| JobUpdate {
                job_id: "1671477617078-2886ye".into(),
                input_file: Some("Big Buck Bunny.mp4".into()),
                transition,
                progress,
                job_order: 1671477617078,
                phase,
                event_at: None,
                observed: Default::default(),
            };
            let mut events = vec![make(Transition::Submitted, Some(0), None)];
            let (mut progress, mut phase) = (0u8, None);
            for (step, reported, phase_step) in steps {
                progress = progress.saturating_add(step).min(99);
                let next = match phase_step {
                    1 => Some(Phase::Probing),
                    2 => Some(Phase::Transcoding),
                    3 => Some(Phase::Uploading),
                    _ => None,
                };
                phase = phase.max(next);
                events.push(make(Transition::Progressing, reported.then_some(progress), next.and(phase)));
            }
            if let Some(transition) = last {
                let final_progress = match transition {
                    Transition::Canceled => None,
                    _ => Some(100),
                };
                events.push(make(transition, final_progress, None));
            }
            // Each event at its own time, with what it tells of times and pace.
            for (i, event) in events.iter_mut().enumerate().skip(1) {
                let at = 1_671_477_617_078 + 1_000 * i as u64;
                event.event_at = Some(at);
                let observed = &mut event.observed;
                match event.transition {
                    Transition::Progressing => {
                        observed.started_at = Some(at);
                        observed.sample = event.progress.map(|p| eta::ProgressSample {
                            at,
                            percent: Some(p),
                            phase: event.phase,
                            frames: Some(30 * i as u64),
                        });
                        observed.phase_progress = event.phase.into_iter().map(|p| (p, (i * 7 % 101) as u8)).collect();
                    }
                    _ => observed.finished_at = Some(at),
                }
            }
            events
        })
    }

    /// The ordered events, shuffled, with some of them delivered twice.
    fn delivered() -> impl Strategy<Value = (Vec<JobUpdate>, Vec<JobUpdate>)> {
        ordered_events().prop_flat_map(|ordered| {
            let n = ordered.len();
            (Just(ordered), prop::collection::vec(0..n, 0..n + 1)).prop_flat_map(|(ordered, dups)| {
                let mut all = ordered.clone();
                all.extend(dups.into_iter().map(|i| ordered[i].clone()));
                (Just(ordered), Just(all).prop_shuffle())
            })
        })
    }

    proptest! {
        #[test]
        fn any_delivery_order_ends_in_the_ordered_state((ordered, shuffled) in delivered()) {
            let fold = |events: &[JobUpdate]| {
                let mut state: Option<JobRecord> = None;
                for e in events {
                    if let Some(next) = JobRecord::merge(state.as_ref(), e) {
                        let (before, after) = (state.as_ref().map(StatusView::from), StatusView::from(&next));
                        let bumped = state.as_ref().map_or(0, JobRecord::version) + 1;
                        if before.as_ref() == Some(&after) {
                            prop_assert_eq!(Some(after.version), before.map(|b| b.version), "no change shown, no new version");
                        } else {
                            prop_assert_eq!(after.version, bumped, "a change shown is exactly one version more");
                        }
                        if let Some(stored) = &state {
                            prop_assert!(next.may_replace(stored), "backward move from {stored:?} to {next:?}");
                            prop_assert!(next.progress_rate >= stored.progress_rate);
                        }
                        state = Some(next);
                    }
                }
                // `EventAt` is the time of the event that made the last change, for the lag
                // metric, and `Version` counts the changes on the way: the fields that follow
                // delivery order.
                Ok(state.map(|s| JobRecord { event_at: None, version: None, ..s }))
            };
            let expected = fold(&ordered)?;
            let got = fold(&shuffled)?;
            prop_assert_eq!(&got, &expected);
            let view = |s: &Option<JobRecord>| s.as_ref().map(StatusView::from);
            prop_assert_eq!(view(&got), view(&expected));
        }
    }
}
