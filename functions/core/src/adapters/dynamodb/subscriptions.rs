//! [`SubscriptionStore`] over DynamoDB.
//!
//! One table, `MediaConvertPushSubscriptions` by default:
//!
//! | item | `ConnectionId` (PK) | `Topic` (SK) | `InputFile` | `ExpiresAt` (TTL) | other |
//! |---|---|---|---|---|---|
//! | a connection | C | `"\u{0}connection"` | — | connectedAt + 2 h | — |
//! | a subscription | C | topic T | T | the connection's expiry | `Batch`: `true` when batched, else absent |
//! | a folder's job | `"\u{1}folder:"` + folder | job order (20 digits) `\u{1}` job id | — | see `domain::topic` | `File`, `JobId` |
//!
//! A topic is a file, or a folder ending in `/` (prefix subscriptions). "Topics of connection C"
//! is a Query on the table; "connections watching topic T" is a Query on the sparse index
//! `InputFileIndex` (PK `InputFile`, SK `ConnectionId`, projecting `ExpiresAt` and `Batch`),
//! which holds subscriptions only. "Files recently active under folder D, newest job first" (a
//! prefix snapshot) is a backwards Query on D's folder items. Topics never contain a control
//! character and connection ids never start with one, so none of these keys collide. Expired
//! entries are filtered out until TTL deletes them.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, ReturnValue, Select, WriteRequest};
use serde::{Deserialize, Serialize};
use serde_dynamo::{from_items, to_item};

use super::{av, corrupt, unavailable};
use crate::ports::{FolderEntry, StoreError, SubscribeOutcome, SubscriptionStore, Watcher};
/// The index that answers "connections subscribed to file F".
pub const INPUT_FILE_INDEX: &str = "InputFileIndex";
/// Sort key of a connection's own item.
const CONNECTION_TOPIC: &str = "\u{0}connection";
/// What starts a folder item's partition key.
const FOLDER_KEY: &str = "\u{1}folder:";

/// A job listed under a folder.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct FolderItem {
    connection_id: String,
    topic: String,
    file: String,
    job_id: String,
    expires_at: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct FileItem {
    file: String,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    connection_id: String,
    topic: String,
    input_file: Option<String>,
    expires_at: u64,
    batch: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WatcherItem {
    connection_id: String,
    #[serde(default)]
    batch: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Key {
    connection_id: String,
    topic: String,
}

pub struct DynamoSubscriptionStore {
    client: Client,
    table: String,
}

impl DynamoSubscriptionStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn key(connection_id: &str, topic: &str) -> Result<HashMap<String, AttributeValue>, StoreError> {
        Ok(HashMap::from([("ConnectionId".to_owned(), av(connection_id)?), ("Topic".to_owned(), av(topic)?)]))
    }

    /// Every key under a connection (its own item and its subscriptions).
    async fn keys_of(&self, connection_id: &str) -> Result<Vec<Key>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("ConnectionId = :c")
            .expression_attribute_values(":c", av(connection_id)?)
            .projection_expression("ConnectionId, Topic")
            .consistent_read(true);
        query_keys(query).await
    }
}

/// Every page of a query, as keys.
async fn query_keys(
    query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
) -> Result<Vec<Key>, StoreError> {
    let items = query.into_paginator().items().send().collect::<Result<Vec<_>, _>>().await.map_err(unavailable)?;
    from_items(items).map_err(corrupt)
}

#[async_trait]
impl SubscriptionStore for DynamoSubscriptionStore {
    async fn add_connection(&self, connection_id: &str, expires_at: u64) -> Result<(), StoreError> {
        let entry = Entry {
            connection_id: connection_id.into(),
            topic: CONNECTION_TOPIC.into(),
            input_file: None,
            expires_at,
            batch: None,
        };
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&entry).map_err(corrupt)?))
            .send()
            .await
            .map_err(unavailable)?;
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
        let count = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("ConnectionId = :c")
            .filter_expression("attribute_exists(InputFile)")
            .expression_attribute_values(":c", av(connection_id)?)
            .select(Select::Count)
            .consistent_read(true)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(unavailable)?
            .iter()
            .map(|page| page.count as usize)
            .sum::<usize>();
        if count >= max_per_connection {
            let existing = self
                .client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(Self::key(connection_id, topic)?))
                .consistent_read(true)
                .send()
                .await
                .map_err(unavailable)?;
            if existing.item.is_none() {
                return Ok(SubscribeOutcome::LimitReached);
            }
        }
        // One write either way: a new subscription, or the same one with this subscribe's mode.
        let entry = Entry {
            connection_id: connection_id.into(),
            topic: topic.into(),
            input_file: Some(topic.into()),
            expires_at,
            batch: batch.then_some(true),
        };
        let old = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&entry).map_err(corrupt)?))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(if old.attributes.is_some_and(|a| !a.is_empty()) {
            SubscribeOutcome::AlreadySubscribed
        } else {
            SubscribeOutcome::Added
        })
    }

    async fn unsubscribe(&self, connection_id: &str, topic: &str) -> Result<bool, StoreError> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(connection_id, topic)?))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(output.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn watchers(&self, topic: &str, now_secs: u64) -> Result<Vec<Watcher>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(INPUT_FILE_INDEX)
            .key_condition_expression("InputFile = :f")
            .filter_expression("ExpiresAt > :now")
            .expression_attribute_values(":f", av(topic)?)
            .expression_attribute_values(":now", av(&now_secs)?)
            // (BATCH is one of DynamoDB's reserved words)
            .projection_expression("ConnectionId, #batch")
            .expression_attribute_names("#batch", "Batch");
        let items = query.into_paginator().items().send().collect::<Result<Vec<_>, _>>().await.map_err(unavailable)?;
        let items: Vec<WatcherItem> = from_items(items).map_err(corrupt)?;
        Ok(items
            .into_iter()
            .map(|i| Watcher { connection_id: i.connection_id, batch: i.batch.unwrap_or(false) })
            .collect())
    }

    async fn subscriptions(&self, connection_id: &str) -> Result<Vec<String>, StoreError> {
        Ok(self.keys_of(connection_id).await?.into_iter().map(|k| k.topic).filter(|t| t != CONNECTION_TOPIC).collect())
    }

    async fn remove_connection(&self, connection_id: &str) -> Result<usize, StoreError> {
        let keys = self.keys_of(connection_id).await?;
        let subscriptions = keys.iter().filter(|k| k.topic != CONNECTION_TOPIC).count();
        let deletes = keys
            .iter()
            .map(|k| {
                let delete = DeleteRequest::builder()
                    .set_key(Some(Self::key(&k.connection_id, &k.topic)?))
                    .build()
                    .map_err(unavailable)?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.write_all(deletes).await?;
        Ok(subscriptions)
    }

    async fn index_files(&self, entries: &[FolderEntry]) -> Result<(), StoreError> {
        let puts = entries
            .iter()
            .map(|e| {
                let item = FolderItem {
                    connection_id: format!("{FOLDER_KEY}{}", e.folder),
                    topic: format!("{:020}\u{1}{}", e.job_order, e.job_id),
                    file: e.input_file.clone(),
                    job_id: e.job_id.clone(),
                    expires_at: e.expires_at,
                };
                let put = PutRequest::builder()
                    .set_item(Some(to_item(&item).map_err(corrupt)?))
                    .build()
                    .map_err(unavailable)?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.write_all(puts).await
    }

    async fn recent_files(&self, folder: &str, now_secs: u64, limit: usize) -> Result<Vec<String>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("ConnectionId = :d")
            .filter_expression("ExpiresAt > :now")
            .expression_attribute_values(":d", av(&format!("{FOLDER_KEY}{folder}"))?)
            .expression_attribute_values(":now", av(&now_secs)?)
            // (FILE is one of DynamoDB's reserved words)
            .projection_expression("#file")
            .expression_attribute_names("#file", "File")
            .scan_index_forward(false)
            // Pages of a few times the files wanted (a file's older jobs and expired items take
            // rows too), not 1 MB: a busy folder costs what the snapshot reads.
            .limit(i32::try_from(limit.saturating_mul(2).clamp(25, 1000)).unwrap_or(1000));
        let mut pages = query.into_paginator().items().send();
        let mut files: Vec<String> = Vec::new();
        while files.len() < limit
            && let Some(item) = pages.next().await
        {
            let item: FileItem = serde_dynamo::from_item(item.map_err(unavailable)?).map_err(corrupt)?;
            if !files.contains(&item.file) {
                files.push(item.file);
            }
        }
        Ok(files)
    }
}

impl DynamoSubscriptionStore {
    /// Every request, 25 per BatchWriteItem, retrying what DynamoDB leaves unprocessed.
    async fn write_all(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in requests.chunks(25) {
            let mut requests = chunk.to_vec();
            for attempt in 0..5u32 {
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(unavailable)?;
                requests = output.unprocessed_items.and_then(|mut u| u.remove(&self.table)).unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                if attempt == 4 {
                    return Err(StoreError::Unavailable(format!("{} writes left unprocessed", requests.len())));
                }
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
            }
        }
        Ok(())
    }
}

/// Creates the subscriptions table with its index and TTL if it does not exist (local DynamoDB
/// mode and tests; on AWS the SAM template owns it).
pub async fn ensure_subscriptions_table(client: &Client, table: &str) -> Result<(), StoreError> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
        ScalarAttributeType, TimeToLiveSpecification,
    };
    let existing = client.list_tables().send().await.map_err(unavailable)?.table_names.unwrap_or_default();
    if existing.iter().any(|t| t == table) {
        return Ok(());
    }
    let attr =
        |name: &str| AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build();
    let key = |name: &str, kind| KeySchemaElement::builder().attribute_name(name).key_type(kind).build();
    let index = GlobalSecondaryIndex::builder()
        .index_name(INPUT_FILE_INDEX)
        .key_schema(key("InputFile", KeyType::Hash).map_err(unavailable)?)
        .key_schema(key("ConnectionId", KeyType::Range).map_err(unavailable)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::Include)
                .non_key_attributes("ExpiresAt")
                .non_key_attributes("Batch")
                .build(),
        )
        .build()
        .map_err(unavailable)?;
    client
        .create_table()
        .table_name(table)
        .attribute_definitions(attr("ConnectionId").map_err(unavailable)?)
        .attribute_definitions(attr("Topic").map_err(unavailable)?)
        .attribute_definitions(attr("InputFile").map_err(unavailable)?)
        .key_schema(key("ConnectionId", KeyType::Hash).map_err(unavailable)?)
        .key_schema(key("Topic", KeyType::Range).map_err(unavailable)?)
        .global_secondary_indexes(index)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .map_err(unavailable)?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("ExpiresAt")
                .build()
                .map_err(unavailable)?,
        )
        .send()
        .await
        .map_err(unavailable)?;
    Ok(())
}
