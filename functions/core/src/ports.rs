//! Ports: what the handlers need from the outside world, nothing more.

use async_trait::async_trait;

use crate::domain::get_job::MediaConvertJob;
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
    /// The store refused the item itself (a key or an item over DynamoDB's limits): retrying
    /// cannot help.
    #[error("the store refused the item: {0}")]
    Refused(String),
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

    /// The stored `InputFile → JobId` pointer of a file.
    async fn pointer(&self, input_file: &str) -> Result<Option<JobPointer>, StoreError>;

    /// The newest job of a file.
    async fn latest_job_id(&self, input_file: &str) -> Result<Option<String>, StoreError> {
        Ok(self.pointer(input_file).await?.map(|p| p.job_id))
    }

    /// Up to `limit` unfinished jobs whose state was last confirmed before `before_ms`, oldest
    /// first, as `(job id, confirmed at)`: read from the sparse index, never a Scan.
    async fn unconfirmed(&self, before_ms: u64, limit: usize) -> Result<Vec<(String, u64)>, StoreError>;

    /// Records that MediaConvert still reports the stored state of an unfinished job at `now_ms`
    /// (moves it to the back of [`JobStore::unconfirmed`]); a job that became final meanwhile
    /// is left alone.
    async fn confirm(&self, job_id: &str, now_ms: u64) -> Result<(), StoreError>;

    /// Records that reconciling an unfinished job failed at `now_ms`: it moves to the back of
    /// [`JobStore::unconfirmed`], so it never holds the front, and at its `max_failures`th
    /// failure in a row it is parked: out of the index, `ReconcileFailures` and `ParkedAt` kept
    /// on the item for a person to look at. `true` when this call parked it; a job that became
    /// final meanwhile is left alone.
    async fn record_failure(&self, job_id: &str, now_ms: u64, max_failures: u32) -> Result<bool, StoreError>;

    /// The newest job of a file, both reads strongly consistent: a subscribe's snapshot is never
    /// older than a write that finished before it. Stores that are always consistent keep this.
    async fn newest_job_consistent(&self, input_file: &str) -> Result<Option<JobRecord>, StoreError> {
        match self.latest_job_id(input_file).await? {
            Some(job_id) => self.job(&job_id).await,
            None => Ok(None),
        }
    }
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

/// MediaConvert could not answer GetJob (throttled, unreachable, access denied, …).
#[derive(Debug, thiserror::Error)]
#[error("MediaConvert GetJob failed: {}", chain(.0.as_ref()))]
pub struct InspectError(#[source] pub BoxError);

/// An adapter's underlying error (the SDK's), kept whole for logs and `source()`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An error and its causes on one line, as the SDK's `DisplayErrorContext` prints them.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        line.push_str(": ");
        line.push_str(&e.to_string());
        cause = e.source();
    }
    line
}

/// MediaConvert's GetJob.
#[async_trait]
pub trait JobInspector: Send + Sync {
    /// The job as MediaConvert knows it now; `Ok(None)` when it does not know it (NotFound).
    async fn get_job(&self, job_id: &str) -> Result<Option<MediaConvertJob>, InspectError>;
}

/// A browser POST upload: where to send it and the form fields that go before the file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PresignedPost {
    pub url: String,
    pub fields: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot sign the upload: {}", chain(.0.as_ref()))]
pub struct UploadSignerError(#[source] pub BoxError);

/// Signs S3 POST policies (upload-api).
#[async_trait]
pub trait UploadSigner: Send + Sync {
    async fn presign(
        &self,
        policy: &crate::domain::upload::PostPolicy,
        now: std::time::SystemTime,
    ) -> Result<PresignedPost, UploadSignerError>;
}

/// Verifies OIDC access tokens (JWTs) against the issuer's keys (`adapters::oidc`).
#[async_trait]
pub trait IdentityVerifier: Send + Sync {
    async fn verify(
        &self,
        jwt: &str,
    ) -> Result<crate::domain::identity::Verified, crate::domain::identity::IdentityError>;
}

/// What a subscribe did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscribeOutcome {
    Added,
    AlreadySubscribed,
    /// The connection already has the configured maximum of subscriptions.
    LimitReached,
}

/// A connection watching a file, and how it takes the file's updates.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Watcher {
    pub connection_id: String,
    /// Subscribed with `"batch": true`: its updates come in one `statuses` message per push.
    pub batch: bool,
}

/// A file's job listed under one of its folders, for prefix snapshots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderEntry {
    pub folder: String,
    pub input_file: String,
    pub job_id: String,
    pub job_order: u64,
    /// Epoch seconds after which the entry is no longer listed (and TTL deletes it).
    pub expires_at: u64,
}

/// The subscriptions table: which connections watch which topics (an input file, or a folder
/// ending in `/`: [`crate::domain::topic::Topic`]), and which files were recently active under
/// each folder. Entries expire (TTL) with their connection, so nothing outlives API Gateway's
/// two-hour connection limit.
#[async_trait]
pub trait SubscriptionStore: Send + Sync {
    /// Records a new connection, expiring at `expires_at` (epoch seconds).
    async fn add_connection(&self, connection_id: &str, expires_at: u64) -> Result<(), StoreError>;

    /// Subscribes a connection to a topic, up to `max_per_connection` topics per connection, with
    /// its updates one by one or `batch`ed; subscribing again keeps the subscription and takes
    /// the new `batch`.
    async fn subscribe(
        &self,
        connection_id: &str,
        topic: &str,
        expires_at: u64,
        max_per_connection: usize,
        batch: bool,
    ) -> Result<SubscribeOutcome, StoreError>;

    /// Returns whether the subscription existed.
    async fn unsubscribe(&self, connection_id: &str, topic: &str) -> Result<bool, StoreError>;

    /// Connections subscribed to `topic` whose entries have not expired at `now_secs`, and how
    /// each takes its updates.
    async fn watchers(&self, topic: &str, now_secs: u64) -> Result<Vec<Watcher>, StoreError>;

    /// The connection ids of [`SubscriptionStore::watchers`].
    async fn subscribers(&self, topic: &str, now_secs: u64) -> Result<Vec<String>, StoreError> {
        Ok(self.watchers(topic, now_secs).await?.into_iter().map(|w| w.connection_id).collect())
    }

    /// Topics a connection is subscribed to.
    async fn subscriptions(&self, connection_id: &str) -> Result<Vec<String>, StoreError>;

    /// Forgets a connection and all its subscriptions; returns how many subscriptions it had.
    async fn remove_connection(&self, connection_id: &str) -> Result<usize, StoreError>;

    /// Lists jobs under folders (the index prefix snapshots read); writing an entry again
    /// replaces its expiry.
    async fn index_files(&self, entries: &[FolderEntry]) -> Result<(), StoreError>;

    /// Up to `limit` distinct files listed under `folder` and unexpired at `now_secs`, the file
    /// with the newest job first: a Query, never a Scan.
    async fn recent_files(&self, folder: &str, now_secs: u64, limit: usize) -> Result<Vec<String>, StoreError>;
}

/// Why a post to a connection failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// 410: the connection is gone; its subscriptions should go too.
    #[error("connection is gone")]
    Gone,
    /// 413: the message can never be delivered.
    #[error("message too large for API Gateway: {0}")]
    TooLarge(String),
    /// 429: the account's request rate is over API Gateway's throttle; worth retrying, slower.
    #[error("throttled: {0}")]
    Throttled(String),
    /// 5xx or a transport failure: worth retrying.
    #[error("retryable failure: {0}")]
    Retryable(String),
    /// Anything else (403, …): retrying will not help.
    #[error("push refused: {0}")]
    Refused(String),
}

impl PushError {
    /// 429, 5xx, transport failures: another try may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Throttled(_) | Self::Retryable(_))
    }
}

/// API Gateway's Management API, `POST /@connections/{id}`.
#[async_trait]
pub trait Pusher: Send + Sync {
    async fn post(&self, connection_id: &str, payload: &[u8]) -> Result<(), PushError>;
}

/// One entry of an EventBridge `PutEvents` call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusEntry {
    pub source: String,
    pub detail_type: String,
    /// The `detail`, serialized JSON.
    pub detail: String,
}

impl BusEntry {
    /// Its size as EventBridge counts it against `PutEvents`' 256 KB (the UTF-8 bytes of source,
    /// detail-type and detail, plus 14 for the time EventBridge adds).
    pub fn size(&self) -> usize {
        14 + self.source.len() + self.detail_type.len() + self.detail.len()
    }
}

/// A whole `PutEvents` call that failed (throttled, unreachable, refused).
#[derive(Debug, thiserror::Error)]
#[error("PutEvents failed: {0}")]
pub struct PublishError(pub String);

/// An event bus (EventBridge `PutEvents`, ≤ 10 entries per call).
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Puts `entries`; answers, entry by entry, `None` when it was taken or the error the bus
    /// gave that entry (a partial failure).
    async fn put(&self, entries: &[BusEntry]) -> Result<Vec<Option<String>>, PublishError>;
}

/// A part S3 already holds (ListParts).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct UploadedPart {
    pub part_number: u32,
    pub etag: String,
    pub size: u64,
}

/// Why a multipart operation failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MultipartError {
    /// No upload with this id for this key (never created, completed, aborted, or another key's).
    #[error("no such upload")]
    NoSuchUpload,
    /// S3 refused the request as the caller made it (a part missing or with another ETag, a part
    /// under 5 MiB that is not the last, parts out of order): `(code, message)`.
    #[error("{0}: {1}")]
    Refused(String, String),
    /// S3 could not be reached or failed.
    #[error("S3: {0}")]
    Unavailable(String),
}

/// S3's multipart upload on the upload bucket, for upload-api.
#[async_trait]
pub trait MultipartUploads: Send + Sync {
    /// CreateMultipartUpload; answers the upload id.
    async fn create(&self, key: &str, content_type: &str) -> Result<String, MultipartError>;
    /// A presigned `PUT` URL for one part, valid for `expires` from `now`.
    async fn presign_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        now: std::time::SystemTime,
        expires: std::time::Duration,
    ) -> Result<String, MultipartError>;
    /// ListParts, every page.
    async fn list_parts(&self, key: &str, upload_id: &str) -> Result<Vec<UploadedPart>, MultipartError>;
    /// CompleteMultipartUpload with `(part number, ETag)`s in ascending order.
    async fn complete(&self, key: &str, upload_id: &str, parts: &[(u32, String)]) -> Result<(), MultipartError>;
    /// AbortMultipartUpload.
    async fn abort(&self, key: &str, upload_id: &str) -> Result<(), MultipartError>;
}
