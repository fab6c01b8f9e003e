//! In-memory stores with the same write rules as the DynamoDB adapters: the local stack's embedded
//! store, and handler tests that are about domain logic. The job store can report every change
//! of a job, as the status table's stream would ([`JobChange`]); turning those into Lambda's
//! stream records is the local stack's business.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::domain::{JobPointer, JobRecord, JobUpdate};
use crate::ports::{Applied, FolderEntry, JobStore, StoreError, SubscribeOutcome, SubscriptionStore, Watcher};

/// One change of a status item, in write order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobChange {
    /// A new job.
    Inserted(JobRecord),
    /// A job moved forward.
    Modified { old: Box<JobRecord>, new: Box<JobRecord> },
    /// The TTL sweep deleted an expired job (a deletion by the service, not by a writer).
    Expired(JobRecord),
}

#[derive(Default)]
pub struct MemoryJobStore {
    jobs: Mutex<HashMap<String, JobRecord>>,
    pointers: Mutex<HashMap<String, JobPointer>>,
    feed: Option<mpsc::UnboundedSender<JobChange>>,
    retention: Option<std::time::Duration>,
    /// `None`: [`CONFIRMATION_REFRESH_MS`](crate::domain::CONFIRMATION_REFRESH_MS).
    confirmation_refresh: Option<std::time::Duration>,
}

impl MemoryJobStore {
    /// A store whose every change of a job is also sent to the returned receiver.
    pub fn with_change_feed() -> (Self, mpsc::UnboundedReceiver<JobChange>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (Self { feed: Some(sender), ..Self::default() }, receiver)
    }

    /// As [`DynamoJobStore::with_retention`](crate::adapters::dynamodb::DynamoJobStore::with_retention).
    pub fn with_retention(mut self, retention: Option<std::time::Duration>) -> Self {
        self.retention = retention;
        self
    }

    /// As [`DynamoJobStore::with_confirmation_refresh`](crate::adapters::dynamodb::DynamoJobStore::with_confirmation_refresh).
    pub fn with_confirmation_refresh(mut self, refresh: std::time::Duration) -> Self {
        self.confirmation_refresh = Some(refresh);
        self
    }

    fn refresh_ms(&self) -> u64 {
        self.confirmation_refresh.map_or(crate::domain::CONFIRMATION_REFRESH_MS, |r| r.as_millis() as u64)
    }

    /// DynamoDB's TTL sweep: deletes the jobs whose `ExpiresAt` is at or before `now_secs`, each
    /// deletion a [`JobChange::Expired`] on the feed. Returns how many were deleted.
    pub fn expire(&self, now_secs: u64) -> Result<usize, StoreError> {
        let mut jobs = self.jobs.lock().map_err(poisoned)?;
        let expired: Vec<String> = jobs
            .iter()
            .filter(|(_, r)| r.expires_at.is_some_and(|t| t <= now_secs))
            .map(|(id, _)| id.clone())
            .collect();
        for job_id in &expired {
            if let Some(old) = jobs.remove(job_id) {
                self.emit(JobChange::Expired(old));
            }
        }
        Ok(expired.len())
    }

    fn emit(&self, change: JobChange) {
        // A closed receiver means nobody consumes the feed any more; the store keeps working.
        if let Some(feed) = &self.feed {
            let _ = feed.send(change);
        }
    }
}

/// DynamoDB's limits, enforced as DynamoDB answers them, so the embedded store keeps nothing the
/// real table would refuse.
const MAX_PARTITION_KEY_BYTES: usize = 2048;
const MAX_ITEM_BYTES: usize = 400 * 1024;

fn within_limits(key: &str, item: &impl serde::Serialize) -> Result<(), StoreError> {
    if key.len() > MAX_PARTITION_KEY_BYTES {
        return Err(StoreError::Refused(format!(
            "ValidationException: One or more parameter values were invalid: Size of hashkey has exceeded the \
             maximum size limit of {MAX_PARTITION_KEY_BYTES} bytes"
        )));
    }
    // The item's JSON is a little larger than DynamoDB's count (names plus values): close enough
    // to refuse what DynamoDB would.
    let size = serde_json::to_vec(item).map_or(0, |json| json.len());
    if size > MAX_ITEM_BYTES {
        return Err(StoreError::Refused("ValidationException: Item size has exceeded the maximum allowed size".into()));
    }
    Ok(())
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Unavailable("memory store lock poisoned".into())
}

#[async_trait]
impl JobStore for MemoryJobStore {
    async fn apply(&self, update: &JobUpdate) -> Result<Applied, StoreError> {
        let mut jobs = self.jobs.lock().map_err(poisoned)?;
        let current = jobs.get(&update.job_id);
        let stamped = |next: JobRecord| next.expiring(self.retention).confirmed(crate::now_ms(), self.refresh_ms());
        match JobRecord::merge(current, update).map(stamped) {
            // Read, merge and write happen under one lock: the version read is still the stored one.
            Some(next) if current.is_none_or(|stored| next.may_replace(stored)) => {
                within_limits(&next.job_id, &next)?;
                self.emit(match current {
                    Some(old) => JobChange::Modified { old: Box::new(old.clone()), new: Box::new(next.clone()) },
                    None => JobChange::Inserted(next.clone()),
                });
                jobs.insert(next.job_id.clone(), next.clone());
                Ok(Applied { record: next, changed: true })
            }
            Some(_) => Err(StoreError::Corrupt(format!("merge of {} produced a backward move", update.job_id))),
            None => Ok(Applied {
                record: current.cloned().ok_or_else(|| StoreError::Corrupt("merge lost the job".into()))?,
                changed: false,
            }),
        }
    }

    async fn job(&self, job_id: &str) -> Result<Option<JobRecord>, StoreError> {
        Ok(self.jobs.lock().map_err(poisoned)?.get(job_id).cloned())
    }

    async fn point_to(&self, pointer: &JobPointer) -> Result<bool, StoreError> {
        within_limits(&pointer.input_file, pointer)?;
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

    async fn unconfirmed(&self, before_ms: u64, limit: usize) -> Result<Vec<(String, u64)>, StoreError> {
        let jobs = self.jobs.lock().map_err(poisoned)?;
        let mut due: Vec<(String, u64)> = jobs
            .values()
            .filter(|r| r.unfinished.is_some())
            .filter_map(|r| Some((r.job_id.clone(), r.confirmed_at?)))
            .filter(|(_, at)| *at < before_ms)
            .collect();
        due.sort_by_key(|(id, at)| (*at, id.clone()));
        due.truncate(limit);
        Ok(due)
    }

    /// Like DynamoDB's `UpdateItem`, a confirmation is a change of the item, emitted on the
    /// feed (progress-push sees the same view in both images and pushes nothing).
    async fn confirm(&self, job_id: &str, now_ms: u64) -> Result<(), StoreError> {
        let mut jobs = self.jobs.lock().map_err(poisoned)?;
        if let Some(stored) = jobs.get_mut(job_id).filter(|r| r.unfinished.is_some()) {
            let old = stored.clone();
            (stored.confirmed_at, stored.reconcile_failures) = (Some(now_ms), None);
            self.emit(JobChange::Modified { old: Box::new(old), new: Box::new(stored.clone()) });
        }
        Ok(())
    }
    async fn record_failure(&self, job_id: &str, now_ms: u64, max_failures: u32) -> Result<bool, StoreError> {
        let mut jobs = self.jobs.lock().map_err(poisoned)?;
        let Some(stored) = jobs.get_mut(job_id).filter(|r| r.unfinished.is_some()) else { return Ok(false) };
        let old = stored.clone();
        let failures = stored.reconcile_failures.unwrap_or(0).saturating_add(1);
        stored.reconcile_failures = Some(failures);
        stored.confirmed_at = Some(now_ms);
        let parked = failures >= max_failures;
        if parked {
            (stored.unfinished, stored.confirmed_at, stored.parked_at) = (None, None, Some(now_ms));
        }
        let new = stored.clone();
        drop(jobs);
        self.emit(JobChange::Modified { old: Box::new(old), new: Box::new(new) });
        Ok(parked)
    }
}

/// One connection: its own expiry and its files with theirs and their `batch` flag.
type ConnectionEntry = (u64, std::collections::BTreeMap<String, (u64, bool)>);

/// A folder's listed jobs: `(job order, job id)` → `(input file, expires at)`.
type FolderListing = std::collections::BTreeMap<(u64, String), (String, u64)>;

/// An in-memory [`SubscriptionStore`] with the DynamoDB adapter's semantics.
#[derive(Default)]
pub struct MemorySubscriptionStore {
    connections: Mutex<HashMap<String, ConnectionEntry>>,
    folders: Mutex<HashMap<String, FolderListing>>,
}

#[async_trait]
impl SubscriptionStore for MemorySubscriptionStore {
    async fn add_connection(&self, connection_id: &str, expires_at: u64) -> Result<(), StoreError> {
        self.connections.lock().map_err(poisoned)?.entry(connection_id.to_owned()).or_default().0 = expires_at;
        Ok(())
    }

    async fn subscribe(
        &self,
        connection_id: &str,
        topic: &str,
        expires_at: u64,
        max_per_connection: usize,
        batch: bool,
    ) -> Result<SubscribeOutcome, StoreError> {
        let mut connections = self.connections.lock().map_err(poisoned)?;
        let files = &mut connections.entry(connection_id.to_owned()).or_default().1;
        Ok(if let Some(existing) = files.get_mut(topic) {
            *existing = (expires_at, batch);
            SubscribeOutcome::AlreadySubscribed
        } else if files.len() >= max_per_connection {
            SubscribeOutcome::LimitReached
        } else {
            files.insert(topic.to_owned(), (expires_at, batch));
            SubscribeOutcome::Added
        })
    }

    async fn unsubscribe(&self, connection_id: &str, topic: &str) -> Result<bool, StoreError> {
        let mut connections = self.connections.lock().map_err(poisoned)?;
        Ok(connections.get_mut(connection_id).is_some_and(|(_, files)| files.remove(topic).is_some()))
    }

    async fn watchers(&self, topic: &str, now_secs: u64) -> Result<Vec<Watcher>, StoreError> {
        let connections = self.connections.lock().map_err(poisoned)?;
        let mut watchers: Vec<Watcher> = connections
            .iter()
            .filter_map(|(id, (_, files))| {
                let &(expires, batch) = files.get(topic)?;
                (expires > now_secs).then(|| Watcher { connection_id: id.clone(), batch })
            })
            .collect();
        watchers.sort();
        Ok(watchers)
    }

    async fn subscriptions(&self, connection_id: &str) -> Result<Vec<String>, StoreError> {
        let connections = self.connections.lock().map_err(poisoned)?;
        Ok(connections.get(connection_id).map(|(_, files)| files.keys().cloned().collect()).unwrap_or_default())
    }

    async fn remove_connection(&self, connection_id: &str) -> Result<usize, StoreError> {
        Ok(self.connections.lock().map_err(poisoned)?.remove(connection_id).map(|(_, files)| files.len()).unwrap_or(0))
    }

    async fn index_files(&self, entries: &[FolderEntry]) -> Result<(), StoreError> {
        let mut folders = self.folders.lock().map_err(poisoned)?;
        for e in entries {
            folders
                .entry(e.folder.clone())
                .or_default()
                .insert((e.job_order, e.job_id.clone()), (e.input_file.clone(), e.expires_at));
        }
        Ok(())
    }

    async fn recent_files(&self, folder: &str, now_secs: u64, limit: usize) -> Result<Vec<String>, StoreError> {
        let mut folders = self.folders.lock().map_err(poisoned)?;
        let Some(listing) = folders.get_mut(folder) else { return Ok(Vec::new()) };
        // What TTL would have deleted by now goes, so a busy folder does not grow without bound.
        listing.retain(|_, (_, expires)| *expires > now_secs);
        let mut files: Vec<String> = Vec::new();
        for (file, _) in listing.values().rev() {
            if files.len() == limit {
                break;
            }
            if !files.contains(file) {
                files.push(file.clone());
            }
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{JobStatus, Transition};

    fn update(transition: Transition, progress: Option<u8>) -> JobUpdate {
        JobUpdate {
            job_id: "1700000000000-feed01".into(),
            input_file: Some("f.mp4".into()),
            transition,
            progress,
            job_order: 1700000000000,
            phase: None,
            event_at: None,
            observed: Default::default(),
        }
    }

    #[tokio::test]
    async fn changes_are_reported_in_order_and_no_ops_are_not() {
        let (store, mut feed) = MemoryJobStore::with_change_feed();
        store.apply(&update(Transition::Submitted, Some(0))).await.unwrap();
        store.apply(&update(Transition::Progressing, Some(40))).await.unwrap();
        store.apply(&update(Transition::Progressing, Some(30))).await.unwrap();

        let JobChange::Inserted(inserted) = feed.recv().await.unwrap() else { panic!("first change is not an insert") };
        let JobChange::Modified { old, new } = feed.recv().await.unwrap() else {
            panic!("second change is not a modify")
        };
        assert!(feed.try_recv().is_err(), "a write that changes nothing emits nothing");
        assert_eq!(*old, inserted);
        assert_eq!((old.job_status, old.progress_rate), (JobStatus::Submitted, 0));
        assert_eq!((new.job_status, new.progress_rate), (JobStatus::Progressing, 40));
    }

    #[tokio::test]
    async fn expired_jobs_are_removed_by_the_sweep() {
        // GIVEN a store keeping jobs one day after their creation (1700000000 s)
        let (store, mut feed) = MemoryJobStore::with_change_feed();
        let store = store.with_retention(Some(std::time::Duration::from_secs(86_400)));
        let stored = store.apply(&update(Transition::Progressing, Some(40))).await.unwrap().record;
        assert_eq!(stored.expires_at, Some(1_700_086_400));
        let _insert = feed.recv().await.unwrap();

        // WHEN the sweep runs just before, then at the expiry time
        assert_eq!(store.expire(1_700_086_399).unwrap(), 0);
        assert_eq!(store.expire(1_700_086_400).unwrap(), 1);

        // THEN the job is gone, reported as expired with its last state
        assert_eq!(store.job("1700000000000-feed01").await.unwrap(), None);
        assert_eq!(feed.recv().await.unwrap(), JobChange::Expired(stored));
    }

    #[tokio::test]
    async fn keys_and_items_over_dynamodbs_limits_are_refused_as_dynamodb_refuses_them() {
        let store = MemoryJobStore::default();
        let long_key = JobUpdate { job_id: "k".repeat(2049), ..update(Transition::Progressing, Some(5)) };
        let refused = store.apply(&long_key).await.unwrap_err();
        assert!(matches!(&refused, StoreError::Refused(m) if m.contains("2048 bytes")), "{refused}");
        let huge = JobUpdate {
            transition: Transition::Error { code: Some(1), message: Some("e".repeat(410 * 1024)) },
            ..update(Transition::Progressing, None)
        };
        let refused = store.apply(&huge).await.unwrap_err();
        assert!(matches!(&refused, StoreError::Refused(m) if m.contains("Item size")), "{refused}");
        let pointer = JobPointer { input_file: "f".repeat(2049), job_id: "1-a".into(), job_order: Some(1) };
        assert!(matches!(store.point_to(&pointer).await, Err(StoreError::Refused(_))));
        assert!(store.job(&"k".repeat(2049)).await.unwrap().is_none(), "nothing was stored");
        let fits = JobUpdate { job_id: "k".repeat(2048), ..update(Transition::Progressing, Some(5)) };
        assert!(store.apply(&fits).await.is_ok());
    }
}
