//! The domain: pure rules, no I/O. A MediaConvert event becomes a [`JobUpdate`]; a [`JobUpdate`]
//! merges into a [`JobRecord`] without ever moving it backwards; an input file points at its
//! newest job through a [`JobPointer`].

pub mod congestion;
pub mod destination;
pub mod eta;
pub mod get_job;
pub mod identity;
pub mod ids;
pub mod job;
pub mod job_event;
pub mod mediaconvert;
pub mod origin;
pub mod protocol;
pub mod s3_key;
pub mod status;
pub mod token;
pub mod topic;
pub mod upload;

pub use destination::DestinationTemplate;
pub use job::{
    CONFIRMATION_REFRESH_MS, CompleteDetails, JobPointer, JobRecord, JobStatus, JobUpdate, Observed, OutputFile, Phase,
    Transition, UNFINISHED_INDEX, job_order_from_id,
};
pub use mediaconvert::{EventError, JobStateChange, MediaConvertEvent};
pub use origin::{AllowedOrigins, OriginPatternError};
pub use status::{OutputBaseUrl, SeedStatus, StatusView};
