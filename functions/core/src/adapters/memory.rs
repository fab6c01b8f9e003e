//! In-memory stores with the same write rules as the DynamoDB adapters: the local stack's embedded
//! store, and handler tests that are about domain logic. The job store can emit a change feed of
//! records shaped exactly like the status table's DynamoDB stream as Lambda receives it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::domain::{JobPointer, JobRecord, JobUpdate};
use crate::ports::{Applied, JobStore, StoreError, SubscribeOutcome, SubscriptionStore};

#[derive(Default)]
pub struct MemoryJobStore {
    jobs: Mutex<HashMap<String, JobRecord>>,
    pointers: Mutex<HashMap<String, JobPointer>>,
    feed: Option<ChangeFeed>,
    retention: Option<std::time::Duration>,
}

struct ChangeFeed {
    sender: mpsc::UnboundedSender<Value>,
    table: String,
    sequence: AtomicU64,
}

impl MemoryJobStore {
    /// A store whose every change of a job is also sent, as a DynamoDB stream record
    /// (NEW_AND_OLD_IMAGES) of table `table`, to the returned receiver.
    pub fn with_change_feed(table: &str) -> (Self, mpsc::UnboundedReceiver<Value>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let feed = ChangeFeed { sender, table: table.to_owned(), sequence: AtomicU64::new(0) };
        (Self { feed: Some(feed), ..Self::default() }, receiver)
    }

    /// As [`DynamoJobStore::with_retention`](crate::adapters::dynamodb::DynamoJobStore::with_retention).
    pub fn with_retention(mut self, retention: Option<std::time::Duration>) -> Self {
        self.retention = retention;
        self
    }

    /// DynamoDB's TTL sweep: deletes the jobs whose `ExpiresAt` is at or before `now_secs`, each
    /// deletion a REMOVE record on the feed made by the DynamoDB service, as TTL deletions are.
    /// Returns how many were deleted.
    pub fn expire(&self, now_secs: u64) -> Result<usize, StoreError> {
        let mut jobs = self.jobs.lock().map_err(poisoned)?;
        let expired: Vec<String> = jobs.iter().filter(|(_, r)| r.expires_at.is_some_and(|t| t <= now_secs)).map(|(id, _)| id.clone()).collect();
        for job_id in &expired {
            if let (Some(old), Some(feed)) = (jobs.remove(job_id), &self.feed) {
                feed.emit_ttl_removal(&old);
            }
        }
        Ok(expired.len())
    }
}

fn image(r: &JobRecord) -> Value {
    serde_dynamo::to_item::<_, serde_dynamo::Item>(r).ok().and_then(|item| serde_json::to_value(item).ok()).unwrap_or(Value::Null)
}

impl ChangeFeed {
    fn record(&self, event_name: &str, job_id: &str, old: Option<&JobRecord>, new: Option<&JobRecord>) -> Value {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed) + 1;
        let mut record = json!({
            "eventID": format!("{n:032x}"),
            "eventName": event_name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "local",
            "dynamodb": {
                "ApproximateCreationDateTime": crate::now_ms() / 1000,
                "Keys": {"JobId": {"S": job_id}},
                "SequenceNumber": format!("{n:021}"),
                "StreamViewType": "NEW_AND_OLD_IMAGES"
            },
            "eventSourceARN": format!("arn:aws:dynamodb:local:000000000000:table/{}/stream/local", self.table),
        });
        let mut size = 0;
        for (name, r) in [("NewImage", new), ("OldImage", old)] {
            if let Some(r) = r {
                let image = image(r);
                size += image.to_string().len();
                record["dynamodb"][name] = image;
            }
        }
        record["dynamodb"]["SizeBytes"] = json!(size);
        record
    }

    fn emit(&self, old: Option<&JobRecord>, new: &JobRecord) {
        let record = self.record(if old.is_some() { "MODIFY" } else { "INSERT" }, &new.job_id, old, Some(new));
        // A closed receiver means nobody consumes the feed any more; the store keeps working.
        let _ = self.sender.send(record);
    }

    fn emit_ttl_removal(&self, old: &JobRecord) {
        let mut record = self.record("REMOVE", &old.job_id, Some(old), None);
        record["userIdentity"] = json!({"type": "Service", "principalId": "dynamodb.amazonaws.com"});
        let _ = self.sender.send(record);
    }
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Unavailable("memory store lock poisoned".into())
}

#[async_trait]
impl JobStore for MemoryJobStore {
    async fn apply(&self, update: &JobUpdate) -> Result<Applied, StoreError> {
        let mut jobs = self.jobs.lock().map_err(poisoned)?;
        let current = jobs.get(&update.job_id);
        match JobRecord::merge(current, update).map(|next| next.expiring(self.retention)) {
            Some(next) if current.is_none_or(|stored| next.may_replace(stored)) => {
                if let Some(feed) = &self.feed {
                    feed.emit(current, &next);
                }
                jobs.insert(next.job_id.clone(), next.clone());
                Ok(Applied { record: next, changed: true })
            }
            Some(_) => Err(StoreError::Corrupt(format!("merge of {} produced a backward move", update.job_id))),
            None => Ok(Applied { record: current.cloned().ok_or_else(|| StoreError::Corrupt("merge lost the job".into()))?, changed: false }),
        }
    }

    async fn job(&self, job_id: &str) -> Result<Option<JobRecord>, StoreError> {
        Ok(self.jobs.lock().map_err(poisoned)?.get(job_id).cloned())
    }

    async fn point_to(&self, pointer: &JobPointer) -> Result<bool, StoreError> {
        let mut pointers = self.pointers.lock().map_err(poisoned)?;
        if pointers.get(&pointer.input_file).is_none_or(|stored| pointer.supersedes(stored)) {
            pointers.insert(pointer.input_file.clone(), pointer.clone());
            return Ok(true);
        }
        Ok(false)
    }

    async fn pointer(&self, input_file: &str) -> Result<Option<JobPointer>, StoreError> {
        Ok(self.pointers.lock().map_err(poisoned)?.get(input_file).cloned())
    }
}

/// One connection: its own expiry and its files with theirs.
type ConnectionEntry = (u64, std::collections::BTreeMap<String, u64>);

/// An in-memory [`SubscriptionStore`] with the DynamoDB adapter's semantics.
#[derive(Default)]
pub struct MemorySubscriptionStore {
    connections: Mutex<HashMap<String, ConnectionEntry>>,
}

#[async_trait]
impl SubscriptionStore for MemorySubscriptionStore {
    async fn add_connection(&self, connection_id: &str, expires_at: u64) -> Result<(), StoreError> {
        self.connections.lock().map_err(poisoned)?.entry(connection_id.to_owned()).or_default().0 = expires_at;
        Ok(())
    }

    async fn subscribe(&self, connection_id: &str, input_file: &str, expires_at: u64, max_per_connection: usize)
    -> Result<SubscribeOutcome, StoreError> {
        let mut connections = self.connections.lock().map_err(poisoned)?;
        let files = &mut connections.entry(connection_id.to_owned()).or_default().1;
        Ok(if files.contains_key(input_file) {
            SubscribeOutcome::AlreadySubscribed
        } else if files.len() >= max_per_connection {
            SubscribeOutcome::LimitReached
        } else {
            files.insert(input_file.to_owned(), expires_at);
            SubscribeOutcome::Added
        })
    }

    async fn unsubscribe(&self, connection_id: &str, input_file: &str) -> Result<bool, StoreError> {
        let mut connections = self.connections.lock().map_err(poisoned)?;
        Ok(connections.get_mut(connection_id).is_some_and(|(_, files)| files.remove(input_file).is_some()))
    }

    async fn subscribers(&self, input_file: &str, now_secs: u64) -> Result<Vec<String>, StoreError> {
        let connections = self.connections.lock().map_err(poisoned)?;
        let mut ids: Vec<String> = connections
            .iter()
            .filter(|(_, (_, files))| files.get(input_file).is_some_and(|&expires| expires > now_secs))
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        Ok(ids)
    }

    async fn subscriptions(&self, connection_id: &str) -> Result<Vec<String>, StoreError> {
        let connections = self.connections.lock().map_err(poisoned)?;
        Ok(connections.get(connection_id).map(|(_, files)| files.keys().cloned().collect()).unwrap_or_default())
    }

    async fn remove_connection(&self, connection_id: &str) -> Result<usize, StoreError> {
        Ok(self.connections.lock().map_err(poisoned)?.remove(connection_id).map(|(_, files)| files.len()).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{JobStatus, Transition};
    use aws_lambda_events::dynamodb::EventRecord;

    fn update(transition: Transition, progress: Option<u8>) -> JobUpdate {
        JobUpdate { job_id: "1700000000000-feed01".into(), input_file: Some("f.mp4".into()), transition, progress, job_order: 1700000000000, phase: None }
    }

    #[tokio::test]
    async fn changes_come_out_as_lambda_stream_records_and_no_ops_do_not() {
        let (store, mut feed) = MemoryJobStore::with_change_feed("MediaConvertJobIdToStatus");
        store.apply(&update(Transition::Submitted, Some(0))).await.unwrap();
        store.apply(&update(Transition::Progressing, Some(40))).await.unwrap();
        store.apply(&update(Transition::Progressing, Some(30))).await.unwrap();

        let insert: EventRecord = serde_json::from_value(feed.recv().await.unwrap()).unwrap();
        let modify: EventRecord = serde_json::from_value(feed.recv().await.unwrap()).unwrap();
        assert!(feed.try_recv().is_err(), "a write that changes nothing emits nothing");

        assert_eq!((insert.event_name.as_str(), modify.event_name.as_str()), ("INSERT", "MODIFY"));
        assert!(insert.change.old_image.is_empty());
        let old: JobRecord = serde_dynamo::from_item(modify.change.old_image).unwrap();
        let new: JobRecord = serde_dynamo::from_item(modify.change.new_image).unwrap();
        assert_eq!((old.job_status, old.progress_rate), (JobStatus::Submitted, 0));
        assert_eq!((new.job_status, new.progress_rate), (JobStatus::Progressing, 40));
        assert!(insert.change.sequence_number < modify.change.sequence_number);
        assert_eq!(insert.event_source_arn.as_deref(), Some("arn:aws:dynamodb:local:000000000000:table/MediaConvertJobIdToStatus/stream/local"));
    }

    #[tokio::test]
    async fn expired_jobs_are_removed_by_the_service_like_ttl_deletions() {
        // GIVEN a store keeping jobs one day after their creation (1700000000 s)
        let (store, mut feed) = MemoryJobStore::with_change_feed("MediaConvertJobIdToStatus");
        let store = store.with_retention(Some(std::time::Duration::from_secs(86_400)));
        let stored = store.apply(&update(Transition::Progressing, Some(40))).await.unwrap().record;
        assert_eq!(stored.expires_at, Some(1_700_086_400));
        let _insert = feed.recv().await.unwrap();

        // WHEN the sweep runs just before, then at the expiry time
        assert_eq!(store.expire(1_700_086_399).unwrap(), 0);
        assert_eq!(store.expire(1_700_086_400).unwrap(), 1);

        // THEN the job is gone, and its REMOVE record has the old image and the service's identity
        assert_eq!(store.job("1700000000000-feed01").await.unwrap(), None);
        let raw = feed.recv().await.unwrap();
        assert_eq!(raw["userIdentity"], json!({"type": "Service", "principalId": "dynamodb.amazonaws.com"}));
        let removal: EventRecord = serde_json::from_value(raw).unwrap();
        assert_eq!(removal.event_name, "REMOVE");
        assert!(removal.change.new_image.is_empty());
        let old: JobRecord = serde_dynamo::from_item(removal.change.old_image).unwrap();
        assert_eq!(old, stored);
        assert_eq!(removal.user_identity.map(|u| u.principal_id), Some("dynamodb.amazonaws.com".into()));
    }
}
