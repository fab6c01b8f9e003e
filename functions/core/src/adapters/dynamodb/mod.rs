//! The DynamoDB adapters (aws-sdk-dynamodb + serde_dynamo): the job store ([`jobs`]) and the
//! subscription store ([`subscriptions`]), with the SDK's errors translated into
//! [`StoreError`](crate::ports::StoreError) once ([`client`]); and the status table's stream
//! images ([`stream`]), which need no SDK.

#[cfg(feature = "dynamodb")]
mod client;
#[cfg(feature = "dynamodb")]
pub mod jobs;
pub mod stream;
#[cfg(feature = "dynamodb")]
pub mod subscriptions;

#[cfg(feature = "dynamodb")]
pub(crate) use client::{av, corrupt, put_if, unavailable};
#[cfg(feature = "dynamodb")]
pub use jobs::{DynamoJobStore, ensure_tables};
#[cfg(feature = "dynamodb")]
pub use subscriptions::{DynamoSubscriptionStore, INPUT_FILE_INDEX, ensure_subscriptions_table};

/// Both stores over one client of `sdk`'s (progress-push and ws-message read jobs and
/// subscriptions).
#[cfg(feature = "dynamodb")]
pub fn stores(
    sdk: &aws_config::SdkConfig,
    tables: crate::config::TableNames,
    subscriptions_table: String,
) -> (DynamoJobStore, DynamoSubscriptionStore) {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    (DynamoJobStore::new(client.clone(), tables), DynamoSubscriptionStore::new(client, subscriptions_table))
}
