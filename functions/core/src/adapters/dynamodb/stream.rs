//! The status table's stream images: a [`JobRecord`] as a stream record's `NewImage` / `OldImage`
//! carries it (written by the local stack's embedded stream) and read back (by progress-push).
//! DynamoDB's storage format lives here, not in the handler.

use aws_lambda_events::dynamodb::EventRecord;
use serde_dynamo::Item;

use crate::domain::JobRecord;

/// A stream record's images, decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct JobImages {
    /// The item before the write; `None` for an INSERT (or an old image that no longer decodes).
    pub old: Option<JobRecord>,
    pub new: JobRecord,
    pub sequence_number: Option<String>,
}

/// A stream record progress-push cannot read.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("NewImage: {0}")]
    NewImage(#[from] serde_dynamo::Error),
}

/// A job's item as a stream image.
pub fn encode(record: &JobRecord) -> Option<Item> {
    serde_dynamo::to_item(record).ok()
}

/// The images of an INSERT or MODIFY; `None` for a REMOVE (a TTL deletion included), which
/// carries no new state.
pub fn decode(record: EventRecord) -> Result<Option<JobImages>, ImageError> {
    if record.event_name == "REMOVE" {
        return Ok(None);
    }
    let new = serde_dynamo::from_item(record.change.new_image)?;
    let old = (!record.change.old_image.is_empty()).then(|| serde_dynamo::from_item(record.change.old_image).ok());
    Ok(Some(JobImages { old: old.flatten(), new, sequence_number: record.change.sequence_number }))
}
