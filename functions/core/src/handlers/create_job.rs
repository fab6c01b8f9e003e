//! `create-job`: S3 ObjectCreated → MediaConvert CreateJob with `userMetadata.input_file` = the
//! decoded key, then `InputFile → JobId` and a SUBMITTED status item with progress 0.
//!
//! Records are handled one by one: a malformed record is reported and skipped, a failed
//! CreateJob or store write makes the invocation fail so S3's retry redelivers it. CreateJob is
//! idempotent per upload (its client request token comes from the object's identity), so a
//! redelivered event never starts a second job.

use crate::metrics::{self, CREATE_JOB};
use aws_lambda_events::s3::S3EventRecord;
use serde::Serialize;

use super::batch::{BatchError, RecordBatch};
use crate::config::CreateJobConfig;
use crate::domain::s3_key::decode_event_key;
use crate::domain::{JobUpdate, Transition, job_order_from_id};
use crate::ports::{JobCreator, JobCreatorError, JobStore, NewJob, StoreError};
use crate::service::record_update;

/// What happened to one record of the S3 event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RecordOutcome {
    Created { input_file: String, job_id: String },
    Skipped { key: String, reason: String },
    Rejected { index: usize, reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum CreateJobError {
    #[error("CreateJob failed for {input_file:?}: {source}")]
    Create { input_file: String, source: JobCreatorError },
    #[error("job {job_id} of {input_file:?} was created but could not be stored: {source}")]
    Store { input_file: String, job_id: String, source: StoreError },
    #[error("event is not an S3 notification: {0}")]
    Malformed(#[from] BatchError),
}

pub async fn handle(
    config: &CreateJobConfig,
    creator: &dyn JobCreator,
    store: &dyn JobStore,
    event: &serde_json::Value,
    now_ms: u64,
) -> Result<Vec<RecordOutcome>, CreateJobError> {
    let batch = RecordBatch::parse(event)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for (index, record) in batch.typed::<S3EventRecord>() {
        let outcome = match record {
            Ok(record) => handle_record(config, creator, store, &record, index, now_ms).await?,
            Err(e) => RecordOutcome::Rejected { index, reason: format!("malformed S3 record: {e}") },
        };
        match &outcome {
            RecordOutcome::Created { input_file, job_id } => {
                CREATE_JOB.count(metrics::JOBS_CREATED, 1);
                tracing::info!(input_file, job_id, "job created")
            }
            RecordOutcome::Skipped { key, reason } => tracing::info!(key, reason, "upload skipped"),
            RecordOutcome::Rejected { index, reason } => tracing::warn!(index, reason, "record rejected"),
        }
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

async fn handle_record(
    config: &CreateJobConfig,
    creator: &dyn JobCreator,
    store: &dyn JobStore,
    record: &S3EventRecord,
    index: usize,
    now_ms: u64,
) -> Result<RecordOutcome, CreateJobError> {
    let event_name = record.event_name.as_deref().unwrap_or_default();
    let raw_key = record.s3.object.key.as_deref().unwrap_or_default();
    let skip = |reason: &str| Ok(RecordOutcome::Skipped { key: raw_key.to_owned(), reason: reason.to_owned() });
    if !event_name.starts_with("ObjectCreated:") {
        return skip(&format!("event {event_name:?} is not ObjectCreated"));
    }
    let Some(bucket) = record.s3.bucket.name.as_deref().filter(|b| !b.is_empty()) else {
        return Ok(RecordOutcome::Rejected { index, reason: "s3.bucket.name is missing".into() });
    };
    let Some(key) = decode_event_key(raw_key).filter(|k| !k.is_empty()) else {
        return Ok(RecordOutcome::Rejected {
            index,
            reason: format!("s3.object.key {raw_key:?} is missing or not UTF-8 once decoded"),
        });
    };
    if key.ends_with('/') {
        return skip("folder marker");
    }
    if config.destination.is_output(bucket, &key) {
        return skip("an output of this pipeline");
    }
    if let Some(prefix) = config.skip_prefixes.iter().find(|p| key.starts_with(p.as_str())) {
        return skip(&format!("under skipped prefix {prefix:?}"));
    }

    let job = NewJob {
        input_url: format!("s3://{bucket}/{key}"),
        input_file: key.clone(),
        destination: config.destination.render(bucket, &key),
        client_request_token: request_token(bucket, &key, record),
    };
    let job_id =
        creator.create_job(&job).await.map_err(|source| CreateJobError::Create { input_file: key.clone(), source })?;

    let update = JobUpdate {
        job_id: job_id.clone(),
        input_file: Some(key.clone()),
        transition: Transition::Submitted,
        progress: Some(0),
        job_order: job_order_from_id(&job_id).unwrap_or(now_ms),
        phase: None,
        event_at: None,
        observed: Default::default(),
    };
    record_update(store, &update).await.map_err(|source| CreateJobError::Store {
        input_file: key.clone(),
        job_id: job_id.clone(),
        source,
    })?;
    Ok(RecordOutcome::Created { input_file: key, job_id })
}

/// Same upload, same token: bucket, key, version and S3's sequencer identify one object write.
/// MediaConvert accepts up to 64 characters; a 128-bit FNV-1a hash in hex fits.
fn request_token(bucket: &str, key: &str, record: &S3EventRecord) -> String {
    let object = &record.s3.object;
    let identity = [
        bucket,
        key,
        object.version_id.as_deref().unwrap_or_default(),
        object.sequencer.as_deref().unwrap_or_default(),
        object.e_tag.as_deref().unwrap_or_default(),
    ]
    .join("\u{0}");
    let mut hash: u128 = 0x6c62272e07bb014262b821756295c58d;
    for byte in identity.bytes() {
        hash ^= u128::from(byte);
        hash = hash.wrapping_mul(0x0000000001000000000000000000013B);
    }
    format!("{hash:032x}")
}
