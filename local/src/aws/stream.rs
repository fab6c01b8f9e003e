//! DynamoDB Streams → Lambda, the way an event source mapping does it: the records of a table's
//! stream (the embedded store's [`JobChange`]s, or a real stream read with
//! aws-sdk-dynamodbstreams from moto or an account) become the typed records of the DynamoDB
//! event Lambda builds, through one builder ([`StreamRecord`]); batches go to `progress-push`,
//! and `batchItemFailures` are honoured by redelivering from the first failed record.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_lambda_events::dynamodb::{Event, EventRecord, StreamViewType, UserIdentity};
use aws_lambda_events::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use chrono::{DateTime, Utc};
use mcpush_core::adapters::memory::JobChange;
use mcpush_core::domain::JobRecord;
use serde_dynamo::Item;
use serde_json::Value;

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
    pub async fn next_batch(&mut self) -> Result<Vec<EventRecord>, StreamError> {
        self.discover_shards().await?;
        let mut batch = Vec::new();
        for iterator in self.iterators.values_mut() {
            let Some(current) = iterator.clone() else { continue };
            let output =
                self.client.get_records().shard_iterator(current).limit(self.batch_size).send().await.map_err(api)?;
            *iterator = output.next_shard_iterator;
            batch.extend(output.records.unwrap_or_default().iter().map(|r| lambda_record(r, &self.stream_arn)));
        }
        Ok(batch)
    }

    /// Delivers one batch to `handler` as Lambda would (see [`deliver`]).
    pub async fn deliver<F, Fut>(&self, records: Vec<EventRecord>, handler: F)
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

/// Everything a Lambda DynamoDB stream record says; [`StreamRecord::build`] is the one place
/// such a record is made.
pub struct StreamRecord {
    pub event_id: String,
    /// `INSERT`, `MODIFY` or `REMOVE`.
    pub event_name: String,
    pub region: String,
    pub keys: Item,
    pub new_image: Option<Item>,
    pub old_image: Option<Item>,
    pub sequence_number: Option<String>,
    pub size_bytes: i64,
    pub created: DateTime<Utc>,
    /// The service's own deletions (TTL) carry `userIdentity {type: Service, principalId: dynamodb.amazonaws.com}`.
    pub user_identity: Option<(String, String)>,
    pub stream_arn: String,
}

impl StreamRecord {
    pub fn build(self) -> EventRecord {
        let mut record = EventRecord::default();
        record.event_id = self.event_id;
        record.event_name = self.event_name;
        record.event_version = Some("1.1".into());
        record.event_source = Some("aws:dynamodb".into());
        record.aws_region = self.region;
        record.event_source_arn = Some(self.stream_arn);
        record.change.approximate_creation_date_time = self.created;
        record.change.keys = self.keys;
        record.change.new_image = self.new_image.unwrap_or_default();
        record.change.old_image = self.old_image.unwrap_or_default();
        record.change.sequence_number = self.sequence_number;
        record.change.size_bytes = self.size_bytes;
        record.change.stream_view_type = Some(StreamViewType::NewAndOldImages);
        record.user_identity = self.user_identity.map(|(kind, principal)| {
            let mut identity = UserIdentity::default();
            identity.type_ = kind;
            identity.principal_id = principal;
            identity
        });
        record
    }
}

/// The embedded store's stream: numbers its [`JobChange`]s as a shard numbers its records.
pub struct EmbeddedStream {
    table: String,
    sequence: AtomicU64,
}

impl EmbeddedStream {
    pub fn new(table: &str) -> Self {
        Self { table: table.to_owned(), sequence: AtomicU64::new(0) }
    }

    /// The Lambda record of one change.
    pub fn record(&self, change: &JobChange) -> EventRecord {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed) + 1;
        let (event_name, old, new, by_service) = match change {
            JobChange::Inserted(new) => ("INSERT", None, Some(new), false),
            JobChange::Modified { old, new } => ("MODIFY", Some(old.as_ref()), Some(new.as_ref()), false),
            JobChange::Expired(old) => ("REMOVE", Some(old), None, true),
        };
        let image = |r: Option<&JobRecord>| r.and_then(mcpush_core::adapters::dynamodb::stream::encode);
        let (new_image, old_image) = (image(new), image(old));
        let size = [&new_image, &old_image]
            .iter()
            .filter_map(|i| i.as_ref())
            .map(|i| serde_json::to_string(i).map_or(0, |s| s.len()))
            .sum::<usize>();
        let job_id = new.or(old).map(|r| r.job_id.clone()).unwrap_or_default();
        StreamRecord {
            event_id: format!("{n:032x}"),
            event_name: event_name.into(),
            region: "local".into(),
            keys: Item::from(HashMap::from([("JobId".to_owned(), serde_dynamo::AttributeValue::S(job_id))])),
            new_image,
            old_image,
            sequence_number: Some(format!("{n:021}")),
            size_bytes: size as i64,
            created: DateTime::from_timestamp_millis(mcpush_core::now_ms() as i64).unwrap_or_default(),
            user_identity: by_service.then(|| ("Service".to_owned(), "dynamodb.amazonaws.com".to_owned())),
            stream_arn: format!("arn:aws:dynamodb:local:000000000000:table/{}/stream/local", self.table),
        }
        .build()
    }
}

/// A DynamoDB Streams API record as Lambda's DynamoDB event carries it.
pub fn lambda_record(record: &Record, stream_arn: &str) -> EventRecord {
    let change = record.dynamodb.as_ref();
    let item = |map: Option<&HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>| {
        map.map(|m| Item::from(m.clone()))
    };
    StreamRecord {
        event_id: record.event_id.clone().unwrap_or_default(),
        event_name: record.event_name.as_ref().map(|n| n.as_str().to_owned()).unwrap_or_default(),
        region: record.aws_region.clone().unwrap_or_default(),
        keys: item(change.and_then(|c| c.keys.as_ref())).unwrap_or_default(),
        new_image: item(change.and_then(|c| c.new_image.as_ref())),
        old_image: item(change.and_then(|c| c.old_image.as_ref())),
        sequence_number: change.and_then(|c| c.sequence_number.clone()),
        size_bytes: change.and_then(|c| c.size_bytes).unwrap_or(0),
        created: change
            .and_then(|c| c.approximate_creation_date_time)
            .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
            .unwrap_or_default(),
        user_identity: record
            .user_identity
            .as_ref()
            .map(|i| (i.r#type.clone().unwrap_or_default(), i.principal_id.clone().unwrap_or_default())),
        stream_arn: stream_arn.to_owned(),
    }
    .build()
}

/// The DynamoDB event of one batch, as Lambda hands it to the function.
pub fn lambda_event(records: &[EventRecord]) -> Value {
    let mut event = Event::default();
    event.records = records.to_vec();
    serde_json::to_value(event).unwrap_or_default()
}

/// Delivers one batch to `handler` as Lambda's event source mapping does: on reported
/// `batchItemFailures` it redelivers from the first failed record, up to `max_retries` times.
pub async fn deliver<F, Fut>(mut records: Vec<EventRecord>, handler: F, max_retries: u32)
where
    F: Fn(Value) -> Fut,
    Fut: Future<Output = DynamoDbEventResponse>,
{
    for attempt in 0..=max_retries {
        if records.is_empty() {
            return;
        }
        let response = handler(lambda_event(&records)).await;
        let failed: Vec<&str> =
            response.batch_item_failures.iter().filter_map(|f| f.item_identifier.as_deref()).collect();
        let Some(first) =
            records.iter().position(|r| r.change.sequence_number.as_deref().is_some_and(|s| failed.contains(&s)))
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
pub async fn run_feed<F, Fut>(
    mut feed: tokio::sync::mpsc::UnboundedReceiver<JobChange>,
    stream: EmbeddedStream,
    batch_size: usize,
    window: Duration,
    handler: F,
) where
    F: Fn(Value) -> Fut,
    Fut: Future<Output = DynamoDbEventResponse>,
{
    while let Some(first) = feed.recv().await {
        let mut batch = vec![stream.record(&first)];
        let deadline = tokio::time::Instant::now() + window;
        while batch.len() < batch_size.max(1) {
            match tokio::time::timeout_at(deadline, feed.recv()).await {
                Ok(Some(change)) => batch.push(stream.record(&change)),
                _ => break,
            }
        }
        deliver(batch, &handler, 3).await;
    }
}

/// Two readers of one change feed, as two event source mappings read one stream: each gets
/// every change, in order, at its own pace.
pub fn tee(
    mut feed: tokio::sync::mpsc::UnboundedReceiver<JobChange>,
) -> [tokio::sync::mpsc::UnboundedReceiver<JobChange>; 2] {
    let (first, first_rx) = tokio::sync::mpsc::unbounded_channel();
    let (second, second_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(change) = feed.recv().await {
            let a = first.send(change.clone());
            let b = second.send(change);
            if a.is_err() && b.is_err() {
                return;
            }
        }
    });
    [first_rx, second_rx]
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

#[cfg(test)]
mod tests {
    use super::*;
    use mcpush_core::domain::JobStatus;
    use serde_json::json;

    fn job(progress: u8) -> JobRecord {
        JobRecord {
            input_file: Some("f.mp4".into()),
            job_status: JobStatus::Progressing,
            progress_rate: progress,
            job_order: Some(1_700_000_000_000),
            ..JobRecord::submitted("1700000000000-feed01")
        }
    }

    #[tokio::test]
    async fn without_a_window_a_change_goes_at_once_with_the_records_already_waiting() {
        // GIVEN three changes queued before the feed runs, and one more after
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        for progress in [10, 20, 30] {
            tx.send(JobChange::Modified { old: Box::new(job(progress - 10)), new: Box::new(job(progress)) }).unwrap();
        }
        let (batches_tx, mut batches) = tokio::sync::mpsc::unbounded_channel();
        let handler = move |event: Value| {
            let batches_tx = batches_tx.clone();
            async move {
                let _ = batches_tx.send(event["Records"].as_array().map_or(0, Vec::len));
                DynamoDbEventResponse::default()
            }
        };
        tokio::spawn(run_feed(rx, EmbeddedStream::new("t"), 100, Duration::ZERO, handler));
        // THEN the three waiting records share one batch
        assert_eq!(batches.recv().await, Some(3));
        // AND a later change is delivered alone, without waiting for company
        tx.send(JobChange::Modified { old: Box::new(job(30)), new: Box::new(job(40)) }).unwrap();
        let alone = tokio::time::timeout(Duration::from_secs(1), batches.recv()).await;
        assert_eq!(alone, Ok(Some(1)));
    }

    #[test]
    fn embedded_changes_become_lambda_stream_records() {
        let stream = EmbeddedStream::new("MediaConvertJobIdToStatus");
        let insert = stream.record(&JobChange::Inserted(job(0)));
        let modify = stream.record(&JobChange::Modified { old: Box::new(job(0)), new: Box::new(job(40)) });

        assert_eq!((insert.event_name.as_str(), modify.event_name.as_str()), ("INSERT", "MODIFY"));
        assert!(insert.change.old_image.is_empty());
        let old: JobRecord = serde_dynamo::from_item(modify.change.old_image.clone()).unwrap();
        let new: JobRecord = serde_dynamo::from_item(modify.change.new_image.clone()).unwrap();
        assert_eq!((old.progress_rate, new.progress_rate), (0, 40));
        assert!(insert.change.sequence_number < modify.change.sequence_number);
        assert_eq!(
            insert.event_source_arn.as_deref(),
            Some("arn:aws:dynamodb:local:000000000000:table/MediaConvertJobIdToStatus/stream/local")
        );

        // Serialized as Lambda delivers it, it reads back the same.
        let event = lambda_event(&[insert, modify]);
        assert_eq!(event["Records"][1]["dynamodb"]["Keys"], json!({"JobId": {"S": "1700000000000-feed01"}}));
        let parsed: Event = serde_json::from_value(event).unwrap();
        assert_eq!(parsed.records.len(), 2);
    }

    #[test]
    fn ttl_deletions_are_removes_by_the_service() {
        let removal = EmbeddedStream::new("t").record(&JobChange::Expired(job(40)));
        assert_eq!(removal.event_name, "REMOVE");
        assert!(removal.change.new_image.is_empty());
        let old: JobRecord = serde_dynamo::from_item(removal.change.old_image.clone()).unwrap();
        assert_eq!(old, job(40));
        let raw = serde_json::to_value(&removal).unwrap();
        assert_eq!(raw["userIdentity"], json!({"type": "Service", "principalId": "dynamodb.amazonaws.com"}));
        assert_eq!(removal.user_identity.map(|u| u.type_), Some("Service".into()));
    }
}
