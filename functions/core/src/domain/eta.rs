//! Time remaining of a running job, from what MediaConvert's events reported.
//!
//! Neither the events nor GetJob give the input's length, so the remaining time cannot come
//! from "frames left". It comes from the pace of `jobPercentComplete`:
//!
//! 1. Each STATUS_UPDATE (and INPUT_INFORMATION, which marks the end of probing) is kept as a
//!    [`ProgressSample`]: its event time, `jobPercentComplete` (INPUT_INFORMATION has none: it
//!    takes the percent reached before it), `currentPhase` and `framesDecoded`. A job keeps the
//!    first sample of each phase and its [`MAX_SAMPLES`] latest, as a set: the same events in
//!    any order, duplicates included, leave the same samples, so the estimate is a function of
//!    the stored events only.
//! 2. The pace is the slope of the percent within the current phase (MediaConvert weights its
//!    phases inside `jobPercentComplete`, and they run at different paces: probing and uploading
//!    are not transcoding), measured against the events' own timestamps, so irregular spacing
//!    does not bias it. It is taken from the latest report back to the most recent one at least
//!    [`MIN_GAIN`] points lower (MediaConvert reports whole percents: a shorter span would
//!    mostly measure rounding), else from the phase's first report. A job that speeds up or
//!    slows down shows in that window; time spent queued or probing never enters it. With no
//!    two reports in the phase, the same over all phases.
//! 3. `framesDecoded` only adjusts the pace as a rate: when the latest two samples and the
//!    window's ends carry it, the pace is scaled by the latest decode rate over the window's
//!    (bounded to ×0.5…×2), so a transcode that speeds up or slows down shows it at once. The
//!    input's frame rate would cancel out of that ratio, so it is not needed.
//! 4. `eta_ms` = what remains (100 − the latest percent) ÷ the pace, from the latest sample's
//!    time. No pace (one sample, or no progress) means unknowable: `None`.
//!
//! `tests/benches/eta.rs` measures it against the naive estimate (elapsed since the start ÷
//! progress × what remains) on simulated timelines; figures in `tests/benches/README.md`.

use serde::{Deserialize, Serialize};

use super::job::Phase;

/// How many of its latest progress samples a job keeps (besides each phase's first).
pub const MAX_SAMPLES: usize = 8;
/// The fewest percentage points the pace is measured over, when the reports allow.
pub const MIN_GAIN: u8 = 20;

/// One progress report of a running job.
#[serde_with::skip_serializing_none]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProgressSample {
    /// The event's `detail.timestamp` (epoch ms).
    pub at: u64,
    /// `jobPercentComplete`; `None` on INPUT_INFORMATION.
    pub percent: Option<u8>,
    /// `jobProgress.currentPhase`; INPUT_INFORMATION starts TRANSCODING.
    pub phase: Option<Phase>,
    /// `framesDecoded`, when the event has it.
    pub frames: Option<u64>,
}

/// `samples` ∪ `sample`, in time order: each phase's first and the latest [`MAX_SAMPLES`]
/// (a set: idempotent and order-independent).
pub fn keep(samples: &mut Vec<ProgressSample>, sample: ProgressSample) {
    if !samples.contains(&sample) {
        samples.push(sample);
        samples.sort();
    }
    let latest_from = samples.len().saturating_sub(MAX_SAMPLES);
    let mut phases_seen = Vec::new();
    let mut index = 0;
    samples.retain(|s| {
        let first_of_phase = !phases_seen.contains(&s.phase);
        phases_seen.push(s.phase);
        index += 1;
        first_of_phase || index > latest_from
    });
}

/// Milliseconds from the latest sample to COMPLETE, or `None` when the samples do not tell.
pub fn eta_ms(samples: &[ProgressSample]) -> Option<u64> {
    let filled = fill_percents(samples);
    let &(last, last_percent) = filled.last()?;
    if last_percent >= 100 {
        return None;
    }
    let same_phase: Vec<(ProgressSample, u8)> = filled.iter().filter(|(s, _)| s.phase == last.phase).copied().collect();
    let pace = pace(&window(&same_phase)).or_else(|| pace(&window(&filled)))?;
    let remaining = f64::from(100 - last_percent) / pace;
    (remaining.is_finite() && remaining >= 0.0).then(|| remaining.round() as u64)
}

/// From the most recent sample at least [`MIN_GAIN`] points below the latest (else the first)
/// to the latest, oldest first.
fn window(samples: &[(ProgressSample, u8)]) -> Vec<(ProgressSample, u8)> {
    let Some(&(_, last)) = samples.last() else { return Vec::new() };
    let start = samples.iter().rposition(|(_, p)| last.saturating_sub(*p) >= MIN_GAIN).unwrap_or(0);
    samples[start..].to_vec()
}

/// Where a running job is at `now_ms`, between two statuses: its `progress` (0–100) moved on
/// at the pace its `eta_ms` implies since `updated_at`, easing towards the current phase's end
/// (the job's remaining progress taken in proportion to the phase's remaining `phase_percent`)
/// and never reaching 100; and the time left, counted down. The same rule as the browser
/// client's `estimate` (`clients/js/mcpush-client.js`), for terminals (`watch`).
pub fn interpolate(progress: u8, eta_ms: u64, updated_at: u64, phase_percent: Option<u8>, now_ms: u64) -> (f64, u64) {
    let progress = f64::from(progress.min(100));
    let elapsed = now_ms.saturating_sub(updated_at);
    let room = 100.0 - progress;
    let phase_room = match phase_percent {
        Some(phase) if phase < 100 => room * f64::from(100 - phase) / 100.0,
        _ => room,
    };
    let limit = phase_room.min(99.9 - progress);
    let linear = if eta_ms > 0 { room * elapsed as f64 / eta_ms as f64 } else { room };
    let gained = if limit > 0.0 { limit * (1.0 - (-linear / limit).exp()) } else { 0.0 };
    (progress + gained, eta_ms.saturating_sub(elapsed))
}

/// The samples with INPUT_INFORMATION's missing percent taken from the sample before it.
fn fill_percents(samples: &[ProgressSample]) -> Vec<(ProgressSample, u8)> {
    let mut reached = 0u8;
    samples
        .iter()
        .map(|s| {
            reached = reached.max(s.percent.unwrap_or(reached));
            (*s, s.percent.unwrap_or(reached))
        })
        .collect()
}

/// Percent per millisecond over `window` (oldest first), scaled by the latest decode rate.
fn pace(window: &[(ProgressSample, u8)]) -> Option<f64> {
    let (&(first, first_percent), &(last, last_percent)) = (window.first()?, window.last()?);
    let (span, gained) = (last.at.checked_sub(first.at)?, last_percent.checked_sub(first_percent)?);
    if span == 0 || gained == 0 {
        return None;
    }
    let pace = f64::from(gained) / span as f64;
    let decode_rate = |a: &ProgressSample, b: &ProgressSample| -> Option<f64> {
        let (frames, span) = (b.frames?.checked_sub(a.frames?)?, b.at.checked_sub(a.at)?);
        (span > 0 && frames > 0).then(|| frames as f64 / span as f64)
    };
    let latest = window.len().checked_sub(2).and_then(|i| decode_rate(&window[i].0, &last));
    let scale = match (latest, decode_rate(&first, &last)) {
        (Some(latest), Some(overall)) => (latest / overall).clamp(0.5, 2.0),
        _ => 1.0,
    };
    Some(pace * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(at: u64, percent: u8) -> ProgressSample {
        ProgressSample { at, percent: Some(percent), phase: Some(Phase::Transcoding), frames: None }
    }

    #[test]
    fn a_steady_pace_gives_the_time_left_from_the_latest_sample() {
        // 10 % every 10 s: at 50 %, 50 s remain
        let samples = [at(0, 10), at(10_000, 20), at(20_000, 30), at(30_000, 40), at(40_000, 50)];
        assert_eq!(eta_ms(&samples), Some(50_000));
    }

    #[test]
    fn one_sample_or_no_progress_is_unknowable() {
        assert_eq!(eta_ms(&[]), None);
        assert_eq!(eta_ms(&[at(0, 10)]), None);
        assert_eq!(eta_ms(&[at(0, 10), at(10_000, 10)]), None);
    }

    #[test]
    fn the_pace_is_the_current_phases_and_probing_does_not_slow_transcoding() {
        // probing sat at 0 % for a minute; transcoding then does 10 % per 10 s
        let probing = ProgressSample { at: 0, percent: Some(0), phase: Some(Phase::Probing), frames: None };
        let probed = ProgressSample { at: 60_000, percent: None, phase: Some(Phase::Transcoding), frames: None };
        let samples = [probing, probed, at(70_000, 10), at(80_000, 20)];
        assert_eq!(eta_ms(&samples), Some(80_000));
    }

    #[test]
    fn a_faster_decode_rate_shortens_the_estimate() {
        let with = |s: ProgressSample, frames| ProgressSample { frames: Some(frames), ..s };
        let steady = [with(at(0, 10), 0), with(at(10_000, 15), 300), with(at(20_000, 20), 600)];
        let faster = [with(at(0, 10), 0), with(at(10_000, 15), 300), with(at(20_000, 20), 1200)];
        assert_eq!(eta_ms(&steady), Some(160_000));
        assert!(eta_ms(&faster).unwrap() < 110_000, "{:?}", eta_ms(&faster));
    }

    #[test]
    fn between_reports_progress_moves_on_eases_to_the_phase_end_and_never_reaches_100() {
        // 40 % at t=1 s, 60 s left, transcoding half done: the phase ends near 70 %
        let at = |now| interpolate(40, 60_000, 1_000, Some(50), now);
        assert_eq!(at(1_000), (40.0, 60_000));
        let (soon, left) = at(2_000);
        assert!(soon > 40.9 && soon < 41.0 && left == 59_000, "{soon} {left}");
        let late: Vec<f64> = [100_000, 200_000, 400_000].map(|t| at(t).0).to_vec();
        assert!(late.windows(2).all(|w| w[0] < w[1]) && late.iter().all(|p| *p < 70.0), "{late:?}");
        assert_eq!(at(900), (40.0, 60_000), "a clock behind MediaConvert's changes nothing");
        let (end, left) = interpolate(98, 1_000, 0, None, 10_000_000);
        assert!(end > 99.0 && end < 100.0 && left == 0, "{end}");
    }

    #[test]
    fn kept_samples_are_a_set_of_each_phases_first_and_the_latest() {
        let mut forward = Vec::new();
        let mut backward = Vec::new();
        let all: Vec<_> = (0..20).map(|i| at(i * 1000, i as u8)).collect();
        all.iter().for_each(|s| keep(&mut forward, *s));
        all.iter().rev().chain(all.iter()).for_each(|s| keep(&mut backward, *s));
        assert_eq!(forward, backward);
        assert_eq!(forward.len(), MAX_SAMPLES + 1, "the phase's first and the latest");
        assert_eq!((forward.first(), forward.last()), (all.first(), all.last()));
    }
}
