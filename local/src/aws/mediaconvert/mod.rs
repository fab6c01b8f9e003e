//! A simulated AWS Elemental MediaConvert: the REST API aws-sdk-mediaconvert speaks
//! (`GetJobTemplate`, `CreateJob`, `GetJob` with the job's true state), and for every job a timeline of "MediaConvert Job State Change"
//! events (the typed [`MediaConvertEvent`] progress-ingest reads), sent to an EventBridge-like
//! channel.
//!
//! A job "probes" its input in the local S3 folder: a missing or empty object, or a key matching
//! the fail pattern, ends in ERROR; anything else goes PROGRESSING → STATUS_UPDATE (PROBING) →
//! INPUT_INFORMATION → STATUS_UPDATE (TRANSCODING, growing `jobPercentComplete`) → STATUS_UPDATE
//! (UPLOADING) → COMPLETE with HLS `outputGroupDetails`, after writing the playlists to the local
//! S3 folder. Events are `step` apart. With `chaos` > 0, events are delivered late, twice and out
//! of order, as EventBridge may.

mod api;
mod shapes;
mod timeline;

pub use shapes::{CreateJobRequest, Job, JobTemplate};
pub use timeline::{MediaConvertSim, Scheduled, SimSettings};
