//! An in-memory [`JobStore`] with the same write rules as the DynamoDB adapter, for the local
//! stack and for handler tests that are about domain logic.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::domain::{JobPointer, JobRecord, JobUpdate};
use crate::ports::{Applied, JobStore, StoreError};

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

    async fn latest_job_id(&self, input_file: &str) -> Result<Option<String>, StoreError> {
        Ok(self.pointers.lock().map_err(poisoned)?.get(input_file).map(|p| p.job_id.clone()))
    }
}
