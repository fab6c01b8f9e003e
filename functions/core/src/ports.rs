//! Ports: what the handlers need from the outside world, nothing more.

use async_trait::async_trait;

use crate::domain::{JobPointer, JobRecord, JobUpdate};

/// A store failure, already translated from whatever the adapter talks to.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("stored item is not readable: {0}")]
    Corrupt(String),
    #[error("gave up after {0} attempts: the item kept changing under concurrent writers")]
    Contention(u32),
}

/// The result of applying an update: the state now stored and whether this call changed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub record: JobRecord,
    pub changed: bool,
}

/// The status table and the `InputFile → JobId` table.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Merges `update` into the stored job with [`JobRecord::merge`]; the store refuses, at write
    /// time, any write that would move the job backwards ([`JobRecord::may_replace`]).
    async fn apply(&self, update: &JobUpdate) -> Result<Applied, StoreError>;

    async fn job(&self, job_id: &str) -> Result<Option<JobRecord>, StoreError>;

    /// Points the file at `pointer`'s job when it is newer than the stored one
    /// ([`JobPointer::supersedes`]). Returns whether the pointer moved; losing is normal.
    async fn point_to(&self, pointer: &JobPointer) -> Result<bool, StoreError>;

    async fn latest_job_id(&self, input_file: &str) -> Result<Option<String>, StoreError>;
}

/// What create-job asks MediaConvert for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewJob {
    /// `s3://bucket/key` of the uploaded object.
    pub input_url: String,
    /// The decoded object key, recorded as `userMetadata.input_file`.
    pub input_file: String,
    /// Where the outputs go (`s3://…/`).
    pub destination: String,
    /// Idempotency token: the same upload always yields the same token, so a redelivered S3
    /// event does not start a second job.
    pub client_request_token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum JobCreatorError {
    #[error("MediaConvert rejected the job: {0}")]
    Rejected(String),
    #[error("MediaConvert unavailable: {0}")]
    Unavailable(String),
}

/// MediaConvert's CreateJob.
#[async_trait]
pub trait JobCreator: Send + Sync {
    /// Starts a job and returns its id.
    async fn create_job(&self, job: &NewJob) -> Result<String, JobCreatorError>;
}
