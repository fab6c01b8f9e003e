//! [`JobStore`] over DynamoDB (aws-sdk-dynamodb + serde_dynamo).
//!
//! Every write is conditional, so the database itself refuses a backward move even when two
//! Lambda invocations race on one job:
//! - a status write is a `PutItem` of the merged record, on the condition that the stored item
//!   is one the merged record may replace ([`JobRecord::may_replace`], spelled as a condition
//!   expression) and that still carries the `Version` the writer read; a lost condition means
//!   someone else moved the job first, so the adapter reads again and re-merges, and stops as
//!   soon as the merge has nothing left to change. Two writers can therefore never store the
//!   same version with different states;
//! - a pointer write is a `PutItem` on the condition that the stored pointer names an older job
//!   ([`JobPointer::supersedes`]); a lost condition is the normal "already newer" outcome.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_dynamo::{from_item, to_attribute_value, to_item};

use super::{corrupt, unavailable};

use crate::config::TableNames;
use crate::domain::{JobPointer, JobRecord, JobStatus, JobUpdate, UNFINISHED_INDEX};
use crate::ports::{Applied, JobStore, StoreError};

/// How often a status write re-reads after losing its condition before giving up. Each loss
/// means another writer advanced the job, so a handful always suffices in practice.
const MAX_ATTEMPTS: u32 = 8;

pub struct DynamoJobStore {
    client: Client,
    tables: TableNames,
    retention: Option<std::time::Duration>,
    confirmation_refresh: std::time::Duration,
}

impl DynamoJobStore {
    pub fn new(client: Client, tables: TableNames) -> Self {
        let confirmation_refresh = std::time::Duration::from_millis(crate::domain::CONFIRMATION_REFRESH_MS);
        Self { client, tables, retention: None, confirmation_refresh }
    }

    /// A change keeps a job's `ConfirmedAt` when it is younger than this (by default
    /// [`CONFIRMATION_REFRESH_MS`](crate::domain::CONFIRMATION_REFRESH_MS)).
    pub fn with_confirmation_refresh(mut self, refresh: std::time::Duration) -> Self {
        self.confirmation_refresh = refresh;
        self
    }

    /// Status items written from now on expire `retention` after their job was created
    /// (`ExpiresAt`, the table's TTL attribute); `None` keeps them forever.
    pub fn with_retention(mut self, retention: Option<std::time::Duration>) -> Self {
        self.retention = retention;
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn tables(&self) -> &TableNames {
        &self.tables
    }

    async fn put_if(
        &self,
        table: &str,
        item: std::collections::HashMap<String, AttributeValue>,
        condition: Condition,
    ) -> Result<bool, StoreError> {
        let request = self
            .client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression(condition.expression)
            .set_expression_attribute_names(Some(condition.names))
            .set_expression_attribute_values(Some(condition.values));
        super::put_if(request).await
    }
}

/// A condition expression with its placeholders.
struct Condition {
    expression: String,
    names: std::collections::HashMap<String, String>,
    values: std::collections::HashMap<String, AttributeValue>,
}

impl Condition {
    fn new(names: &[&str]) -> Self {
        Self {
            expression: String::new(),
            names: names.iter().map(|n| (format!("#{n}"), (*n).to_owned())).collect(),
            values: Default::default(),
        }
    }

    fn value<T: serde::Serialize>(&mut self, placeholder: &str, value: &T) -> Result<String, StoreError> {
        let value = to_attribute_value(value).map_err(corrupt)?;
        self.values.insert(format!(":{placeholder}"), value);
        Ok(format!(":{placeholder}"))
    }

    /// `#name` is unset, or equal to `value`; with no value, `#name` must stay unset.
    fn same_or_unset<T: serde::Serialize>(
        &mut self,
        name: &str,
        placeholder: &str,
        value: Option<&T>,
    ) -> Result<String, StoreError> {
        Ok(match value {
            Some(v) => {
                let p = self.value(placeholder, v)?;
                format!("(attribute_not_exists(#{name}) OR #{name} = {p})")
            }
            None => format!("attribute_not_exists(#{name})"),
        })
    }
}

/// [`JobRecord::may_replace`] as a condition on the stored item, which must also still carry
/// `read_version`, the version the writer merged from (`None`: no item, or one without a version).
fn may_replace_condition(next: &JobRecord, read_version: Option<u64>) -> Result<Condition, StoreError> {
    let mut c = Condition::new(&[
        "JobId",
        "JobStatus",
        "ProgressRate",
        "InputFile",
        "JobOrder",
        "CurrentPhase",
        "UpdatedAt",
        "Version",
    ]);
    let version = match read_version {
        Some(v) => format!("#Version = {}", c.value("v", &v)?),
        None => "attribute_not_exists(#Version)".to_owned(),
    };
    let statuses = next
        .job_status
        .replaceable()
        .iter()
        .enumerate()
        .map(|(i, s): (usize, &JobStatus)| c.value(&format!("s{i}"), s))
        .collect::<Result<Vec<_>, _>>()?
        .join(", ");
    let progress = c.value("p", &next.progress_rate)?;
    let input_file = c.same_or_unset("InputFile", "f", next.input_file.as_ref())?;
    let job_order = c.same_or_unset("JobOrder", "o", next.job_order.as_ref())?;
    // A final status clears the phase, so only a running job's phase must not go back.
    let phase = match next.current_phase {
        _ if next.job_status.is_final() => {
            c.names.remove("#CurrentPhase");
            String::new()
        }
        Some(phase) => {
            let earlier = phase
                .up_to()
                .iter()
                .enumerate()
                .map(|(i, p)| c.value(&format!("ph{i}"), p))
                .collect::<Result<Vec<_>, _>>()?
                .join(", ");
            format!(" AND (attribute_not_exists(#CurrentPhase) OR #CurrentPhase IN ({earlier}))")
        }
        None => " AND attribute_not_exists(#CurrentPhase)".to_owned(),
    };
    // The latest report's time never goes back either.
    let updated = match next.updated_at {
        Some(at) => {
            let at = c.value("u", &at)?;
            format!(" AND (attribute_not_exists(#UpdatedAt) OR #UpdatedAt <= {at})")
        }
        None => " AND attribute_not_exists(#UpdatedAt)".to_owned(),
    };
    c.expression = format!(
        "{version} AND (attribute_not_exists(#JobId) OR (#JobStatus IN ({statuses}) AND #ProgressRate <= {progress} AND {input_file} AND {job_order}{phase}{updated}))"
    );
    Ok(c)
}

/// [`JobPointer::supersedes`] as a condition on the stored pointer.
fn supersedes_condition(pointer: &JobPointer) -> Result<Condition, StoreError> {
    let mut c = Condition::new(&["InputFile", "JobId", "JobOrder"]);
    let job_id = c.value("j", &pointer.job_id)?;
    c.expression = match pointer.job_order {
        Some(order) => {
            let order = c.value("o", &order)?;
            format!(
                "attribute_not_exists(#InputFile) OR (#JobId <> {job_id} AND (attribute_not_exists(#JobOrder) \
                 OR #JobOrder < {order} OR (#JobOrder = {order} AND #JobId < {job_id})))"
            )
        }
        None => format!("attribute_not_exists(#InputFile) OR (#JobId <> {job_id} AND attribute_not_exists(#JobOrder))"),
    };
    Ok(c)
}

#[async_trait]
impl JobStore for DynamoJobStore {
    async fn apply(&self, update: &JobUpdate) -> Result<Applied, StoreError> {
        for _ in 0..MAX_ATTEMPTS {
            let current = self.read_job(&update.job_id, true).await?;
            let Some(next) = JobRecord::merge(current.as_ref(), update) else {
                let record = current.ok_or_else(|| StoreError::Corrupt("merge of a new job changed nothing".into()))?;
                return Ok(Applied { record, changed: false });
            };
            let next =
                next.expiring(self.retention).confirmed(crate::now_ms(), self.confirmation_refresh.as_millis() as u64);
            if self.replace_if_allowed(&next, current.and_then(|c| c.version)).await? {
                return Ok(Applied { record: next, changed: true });
            }
            tracing::debug!(job_id = %update.job_id, "status write lost its condition; re-reading");
        }
        Err(StoreError::Contention(MAX_ATTEMPTS))
    }

    async fn job(&self, job_id: &str) -> Result<Option<JobRecord>, StoreError> {
        self.read_job(job_id, false).await
    }

    async fn point_to(&self, pointer: &JobPointer) -> Result<bool, StoreError> {
        let item = to_item(pointer).map_err(corrupt)?;
        self.put_if(&self.tables.job_id, item, supersedes_condition(pointer)?).await
    }

    async fn pointer(&self, input_file: &str) -> Result<Option<JobPointer>, StoreError> {
        self.read_pointer(input_file, false).await
    }

    async fn newest_job_consistent(&self, input_file: &str) -> Result<Option<JobRecord>, StoreError> {
        match self.read_pointer(input_file, true).await? {
            Some(pointer) => self.read_job(&pointer.job_id, true).await,
            None => Ok(None),
        }
    }

    async fn unconfirmed(&self, before_ms: u64, limit: usize) -> Result<Vec<(String, u64)>, StoreError> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Key {
            job_id: String,
            confirmed_at: u64,
        }
        let mut due = Vec::new();
        let mut start = None;
        while due.len() < limit {
            let output = self
                .client
                .query()
                .table_name(&self.tables.status)
                .index_name(UNFINISHED_INDEX)
                .key_condition_expression("#u = :u AND #c < :before")
                .expression_attribute_names("#u", "Unfinished")
                .expression_attribute_names("#c", "ConfirmedAt")
                .expression_attribute_values(":u", super::av(&1u8)?)
                .expression_attribute_values(":before", super::av(&before_ms)?)
                .limit(i32::try_from(limit - due.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            for item in output.items.unwrap_or_default() {
                let key: Key = from_item(item).map_err(corrupt)?;
                due.push((key.job_id, key.confirmed_at));
            }
            start = output.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(due)
    }

    async fn confirm(&self, job_id: &str, now_ms: u64) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.status)
            .key("JobId", super::av(job_id)?)
            .update_expression("SET #c = :now REMOVE #f")
            .condition_expression("attribute_exists(#u) AND (attribute_not_exists(#c) OR #c < :now)")
            .expression_attribute_names("#c", "ConfirmedAt")
            .expression_attribute_names("#u", "Unfinished")
            .expression_attribute_names("#f", "ReconcileFailures")
            .expression_attribute_values(":now", super::av(&now_ms)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(aws_sdk_dynamodb::error::SdkError::ServiceError(e))
                if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(())
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn record_failure(&self, job_id: &str, now_ms: u64, max_failures: u32) -> Result<bool, StoreError> {
        use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
        use aws_sdk_dynamodb::types::ReturnValue;
        let lost_race = |e: &aws_sdk_dynamodb::error::SdkError<UpdateItemError, _>| {
            matches!(e, aws_sdk_dynamodb::error::SdkError::ServiceError(e)
                if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)))
        };
        // Count the failure and move the job to the back of the index, in one write.
        let counted = self
            .client
            .update_item()
            .table_name(&self.tables.status)
            .key("JobId", super::av(job_id)?)
            .update_expression("SET #c = :now ADD #f :one")
            .condition_expression("attribute_exists(#u)")
            .expression_attribute_names("#c", "ConfirmedAt")
            .expression_attribute_names("#u", "Unfinished")
            .expression_attribute_names("#f", "ReconcileFailures")
            .expression_attribute_values(":now", super::av(&now_ms)?)
            .expression_attribute_values(":one", super::av(&1u32)?)
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        let failures: u32 = match counted {
            Ok(output) => output
                .attributes
                .and_then(|a| a.get("ReconcileFailures").cloned())
                .map(serde_dynamo::from_attribute_value)
                .transpose()
                .map_err(corrupt)?
                .unwrap_or(0),
            Err(e) if lost_race(&e) => return Ok(false),
            Err(e) => return Err(unavailable(e)),
        };
        if failures < max_failures {
            return Ok(false);
        }
        // Park it: out of the sparse index, with when and why left on the item.
        let parked = self
            .client
            .update_item()
            .table_name(&self.tables.status)
            .key("JobId", super::av(job_id)?)
            .update_expression("SET #p = :now REMOVE #u, #c")
            .condition_expression("attribute_exists(#u)")
            .expression_attribute_names("#p", "ParkedAt")
            .expression_attribute_names("#u", "Unfinished")
            .expression_attribute_names("#c", "ConfirmedAt")
            .expression_attribute_values(":now", super::av(&now_ms)?)
            .send()
            .await;
        match parked {
            Ok(_) => Ok(true),
            Err(e) if lost_race(&e) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }
}

impl DynamoJobStore {
    /// Writes `next` only if the stored item is one it may replace ([`JobRecord::may_replace`])
    /// and still has the version `next` was merged from (`read_version`), checked by DynamoDB at
    /// write time. `false`: another writer got there first; nothing was written.
    pub async fn replace_if_allowed(&self, next: &JobRecord, read_version: Option<u64>) -> Result<bool, StoreError> {
        let item = to_item(next).map_err(corrupt)?;
        self.put_if(&self.tables.status, item, may_replace_condition(next, read_version)?).await
    }

    async fn read_pointer(&self, input_file: &str, consistent: bool) -> Result<Option<JobPointer>, StoreError> {
        self.get(&self.tables.job_id, "InputFile", input_file, consistent).await
    }

    async fn read_job(&self, job_id: &str, consistent: bool) -> Result<Option<JobRecord>, StoreError> {
        self.get(&self.tables.status, "JobId", job_id, consistent).await
    }

    /// The item of `table` whose string key `key_name` is `key`.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        key_name: &str,
        key: &str,
        consistent: bool,
    ) -> Result<Option<T>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(table)
            .key(key_name, to_attribute_value(key).map_err(corrupt)?)
            .consistent_read(consistent)
            .send()
            .await
            .map_err(unavailable)?;
        output.item.map(|item| from_item(item).map_err(corrupt)).transpose()
    }
}

/// Creates the two job tables if they do not exist (the local stack's DynamoDB mode and the
/// tests; on AWS the SAM template owns them). The status table gets its NEW_AND_OLD_IMAGES
/// stream and the reconciler's sparse index [`UNFINISHED_INDEX`] (keys only).
pub async fn ensure_tables(client: &Client, tables: &TableNames) -> Result<(), StoreError> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
        ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
    };
    let attribute = |name: &str, kind: ScalarAttributeType| {
        AttributeDefinition::builder().attribute_name(name).attribute_type(kind).build().map_err(unavailable)
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder().attribute_name(name).key_type(kind).build().map_err(unavailable)
    };
    let existing = client.list_tables().send().await.map_err(unavailable)?.table_names.unwrap_or_default();
    if !existing.contains(&tables.job_id) {
        client
            .create_table()
            .table_name(&tables.job_id)
            .attribute_definitions(attribute("InputFile", ScalarAttributeType::S)?)
            .key_schema(key("InputFile", KeyType::Hash)?)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .map_err(unavailable)?;
    }
    if existing.contains(&tables.status) {
        return Ok(());
    }
    let unfinished = GlobalSecondaryIndex::builder()
        .index_name(UNFINISHED_INDEX)
        .key_schema(key("Unfinished", KeyType::Hash)?)
        .key_schema(key("ConfirmedAt", KeyType::Range)?)
        .projection(Projection::builder().projection_type(ProjectionType::KeysOnly).build())
        .build()
        .map_err(unavailable)?;
    let stream = StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::NewAndOldImages)
        .build()
        .map_err(unavailable)?;
    client
        .create_table()
        .table_name(&tables.status)
        .attribute_definitions(attribute("JobId", ScalarAttributeType::S)?)
        .attribute_definitions(attribute("Unfinished", ScalarAttributeType::N)?)
        .attribute_definitions(attribute("ConfirmedAt", ScalarAttributeType::N)?)
        .key_schema(key("JobId", KeyType::Hash)?)
        .global_secondary_indexes(unfinished)
        .billing_mode(BillingMode::PayPerRequest)
        .stream_specification(stream)
        .send()
        .await
        .map_err(unavailable)?;
    // Status items carry ExpiresAt (see `with_retention`), as the SAM template's table does.
    let ttl =
        TimeToLiveSpecification::builder().enabled(true).attribute_name("ExpiresAt").build().map_err(unavailable)?;
    client
        .update_time_to_live()
        .table_name(&tables.status)
        .time_to_live_specification(ttl)
        .send()
        .await
        .map_err(unavailable)?;
    Ok(())
}
