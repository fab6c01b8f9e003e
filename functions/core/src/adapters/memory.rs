//! An in-memory [`JobStore`] with the same write rules as the DynamoDB adapter, for the local
//! stack and for handler tests that are about domain logic.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::domain::{JobPointer, JobRecord, JobUpdate};
use crate::ports::{Applied, JobStore, StoreError, SubscribeOutcome, SubscriptionStore};

#[derive(Default)]
pub struct MemoryJobStore {
    jobs: Mutex<HashMap<String, JobRecord>>,
    pointers: Mutex<HashMap<String, JobPointer>>,
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Unavailable("memory store lock poisoned".into())
}

#[async_trait]
impl JobStore for MemoryJobStore {
    async fn apply(&self, update: &JobUpdate) -> Result<Applied, StoreError> {
        let mut jobs = self.jobs.lock().map_err(poisoned)?;
        let current = jobs.get(&update.job_id);
        match JobRecord::merge(current, update) {
            Some(next) if current.is_none_or(|stored| next.may_replace(stored)) => {
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
