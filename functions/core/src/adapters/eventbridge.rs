//! [`EventPublisher`] over EventBridge's `PutEvents` (aws-sdk-eventbridge), on one bus.
//!
//! The SDK's own retries are off: event-publisher retries failed calls and refused entries with
//! its own backoff, and knows when to hand the batch back to the stream.

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::config::retry::RetryConfig;
use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::ports::{BusEntry, EventPublisher, PublishError};

pub struct EventBridgePublisher {
    client: Client,
    bus: String,
}

impl EventBridgePublisher {
    pub fn new(client: Client, bus: &str) -> Self {
        Self { client, bus: bus.to_owned() }
    }

    /// A client with the SDK's region, credentials and endpoint (`AWS_ENDPOINT_URL_EVENTBRIDGE`)
    /// and no SDK-level retries, putting on `bus` (a name or an ARN).
    pub fn from_sdk_config(config: &aws_config::SdkConfig, bus: &str) -> Self {
        let conf = aws_sdk_eventbridge::config::Builder::from(config).retry_config(RetryConfig::disabled()).build();
        Self::new(Client::from_conf(conf), bus)
    }
}

#[async_trait]
impl EventPublisher for EventBridgePublisher {
    async fn put(&self, entries: &[BusEntry]) -> Result<Vec<Option<String>>, PublishError> {
        let entries = entries.iter().map(|e| {
            PutEventsRequestEntry::builder()
                .event_bus_name(&self.bus)
                .source(&e.source)
                .detail_type(&e.detail_type)
                .detail(&e.detail)
                .build()
        });
        let output = (self.client.put_events().set_entries(Some(entries.collect())).send().await)
            .map_err(|e| PublishError(DisplayErrorContext(e).to_string()))?;
        Ok(output
            .entries
            .unwrap_or_default()
            .into_iter()
            .map(|result| result.error_code.map(|code| format!("{code}: {}", result.error_message.unwrap_or_default())))
            .collect())
    }
}
