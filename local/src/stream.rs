//! DynamoDB Streams → Lambda, the way an event source mapping does it: read a table's stream
//! (aws-sdk-dynamodbstreams, against moto or a real account), hand `progress-push` the records
//! as the DynamoDB event Lambda builds, and honour `batchItemFailures` by redelivering from the
//! first failed record.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use aws_lambda_events::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("table {0} has no stream")]
    NoStream(String),
    #[error("DynamoDB Streams: {0}")]
    Api(String),
}

fn api<E: std::error::Error + Send + Sync + 'static>(e: E) -> StreamError {
    StreamError::Api(aws_sdk_dynamodbstreams::error::DisplayErrorContext(e).to_string())
}

/// One consumer of one table's stream, reading every shard from its start.
pub struct StreamPoller {
    client: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    iterators: HashMap<String, Option<String>>,
    batch_size: i32,
    /// How often a batch is redelivered after reported failures before it is skipped (Lambda's
    /// `MaximumRetryAttempts`).
    pub max_retries: u32,
}

impl StreamPoller {
    pub async fn open(
        dynamodb: &aws_sdk_dynamodb::Client,
        client: aws_sdk_dynamodbstreams::Client,
        table: &str,
        batch_size: i32,
    ) -> Result<Self, StreamError> {
        let description = dynamodb.describe_table().table_name(table).send().await.map_err(api)?;
        let stream_arn = description
            .table
            .and_then(|t| t.latest_stream_arn)
            .ok_or_else(|| StreamError::NoStream(table.to_owned()))?;
        let mut poller = Self { client, stream_arn, iterators: HashMap::new(), batch_size, max_retries: 3 };
        poller.discover_shards().await?;
        Ok(poller)
    }

    async fn discover_shards(&mut self) -> Result<(), StreamError> {
        let stream = self.client.describe_stream().stream_arn(&self.stream_arn).send().await.map_err(api)?;
        for shard in stream.stream_description.and_then(|d| d.shards).unwrap_or_default() {
            let Some(shard_id) = shard.shard_id else { continue };
            if self.iterators.contains_key(&shard_id) {
                continue;
            }
            let iterator = self
                .client
                .get_shard_iterator()
                .stream_arn(&self.stream_arn)
                .shard_id(&shard_id)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .map_err(api)?
                .shard_iterator;
            self.iterators.insert(shard_id, iterator);
        }
        Ok(())
    }

    /// Reads what the stream holds now, up to `batch_size` records per shard.
    pub async fn next_batch(&mut self) -> Result<Vec<Value>, StreamError> {
        self.discover_shards().await?;
        let mut batch = Vec::new();
        for iterator in self.iterators.values_mut() {
            let Some(current) = iterator.clone() else { continue };
            let output = self.client.get_records().shard_iterator(current).limit(self.batch_size).send().await.map_err(api)?;
            *iterator = output.next_shard_iterator;
            batch.extend(output.records.unwrap_or_default().iter().map(|r| lambda_record(r, &self.stream_arn)));
        }
        Ok(batch)
    }

    /// Delivers one batch to `handler` as Lambda would (see [`deliver`]).
    pub async fn deliver<F, Fut>(&self, records: Vec<Value>, handler: F)
    where
        F: Fn(Value) -> Fut,
        Fut: Future<Output = DynamoDbEventResponse>,
    {
        deliver(records, handler, self.max_retries).await
    }

    /// Reads and delivers until the stream has nothing new.
    pub async fn drain<F, Fut>(&mut self, handler: F) -> Result<usize, StreamError>
    where
        F: Fn(Value) -> Fut,
        Fut: Future<Output = DynamoDbEventResponse>,
    {
        let mut total = 0;
        loop {
            let batch = self.next_batch().await?;
            if batch.is_empty() {
                return Ok(total);
            }
            total += batch.len();
            self.deliver(batch, &handler).await;
        }
    }
}

fn image(map: Option<&HashMap<String, AttributeValue>>) -> Value {
    match map {
        Some(map) => serde_json::to_value(serde_dynamo::Item::from(map.clone())).unwrap_or(Value::Null),
        None => Value::Null,
    }
}

/// A DynamoDB Streams record as Lambda's DynamoDB event carries it.
pub fn lambda_record(record: &Record, stream_arn: &str) -> Value {
    let change = record.dynamodb.as_ref();
    let mut value = json!({
        "eventID": record.event_id,
        "eventName": record.event_name.as_ref().map(|n| n.as_str()),
        "eventVersion": record.event_version,
        "eventSource": "aws:dynamodb",
        "awsRegion": record.aws_region,
        "dynamodb": {
            "ApproximateCreationDateTime": change.and_then(|c| c.approximate_creation_date_time).map(|t| t.secs()),
            "Keys": image(change.and_then(|c| c.keys.as_ref())),
            "SequenceNumber": change.and_then(|c| c.sequence_number.clone()),
            "SizeBytes": change.and_then(|c| c.size_bytes).unwrap_or(0),
            "StreamViewType": change.and_then(|c| c.stream_view_type.as_ref()).map(|v| v.as_str()),
        },
        "eventSourceARN": stream_arn,
    });
    for (name, map) in [("NewImage", change.and_then(|c| c.new_image.as_ref())), ("OldImage", change.and_then(|c| c.old_image.as_ref()))] {
        if map.is_some() {
            value["dynamodb"][name] = image(map);
        }
    }
    if let Some(identity) = &record.user_identity {
        value["userIdentity"] = json!({"type": identity.r#type, "principalId": identity.principal_id});
    }
    value
}

/// Delivers one batch to `handler` as Lambda's event source mapping does: on reported
/// `batchItemFailures` it redelivers from the first failed record, up to `max_retries` times.
pub async fn deliver<F, Fut>(mut records: Vec<Value>, handler: F, max_retries: u32)
where
    F: Fn(Value) -> Fut,
    Fut: Future<Output = DynamoDbEventResponse>,
{
    for attempt in 0..=max_retries {
        if records.is_empty() {
            return;
        }
        let response = handler(json!({"Records": records})).await;
        let failed: Vec<&str> = response.batch_item_failures.iter().filter_map(|f| f.item_identifier.as_deref()).collect();
        let Some(first) = records.iter().position(|r| r["dynamodb"]["SequenceNumber"].as_str().is_some_and(|s| failed.contains(&s)))
        else {
            return;
        };
        tracing::info!(attempt, redelivered = records.len() - first, "redelivering after batch item failures");
        records.drain(..first);
        tokio::time::sleep(Duration::from_millis(100 << attempt.min(5))).await;
    }
    tracing::warn!(skipped = records.len(), "records still failing after retries were skipped");
}

/// The embedded store's event source mapping: batches of up to `batch_size` records, waiting at
/// most `window` after the first, delivered with [`deliver`]. Ends when the feed closes.
pub async fn run_feed<F, Fut>(mut feed: tokio::sync::mpsc::UnboundedReceiver<Value>, batch_size: usize, window: Duration, handler: F)
where
    F: Fn(Value) -> Fut,
    Fut: Future<Output = DynamoDbEventResponse>,
{
    while let Some(first) = feed.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + window;
        while batch.len() < batch_size.max(1) {
            match tokio::time::timeout_at(deadline, feed.recv()).await {
                Ok(Some(record)) => batch.push(record),
                _ => break,
            }
        }
        deliver(batch, &handler, 3).await;
    }
}

/// Polls a table's stream forever, delivering each batch like Lambda's event source mapping;
/// waits `idle` when the stream has nothing new, and retries after errors.
pub async fn run_poller<F, Fut>(mut poller: StreamPoller, idle: Duration, handler: F)
where
    F: Fn(Value) -> Fut,
    Fut: Future<Output = DynamoDbEventResponse>,
{
    loop {
        match poller.next_batch().await {
            Ok(batch) if batch.is_empty() => tokio::time::sleep(idle.max(Duration::from_millis(50))).await,
            Ok(batch) => poller.deliver(batch, &handler).await,
            Err(e) => {
                tracing::warn!(error = %e, "stream poll failed; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}
