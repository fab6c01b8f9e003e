//! Lambda function `progress-ingest`: EventBridge "MediaConvert Job State Change" → status table.
//! The handler lives in `mcpush_core::handlers`; this file only wires configuration and clients.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use mcpush_core::adapters::{dynamodb::DynamoJobStore, sdk_config};
use mcpush_core::config::{self, TableNames};
use mcpush_core::runtime::init;
use mcpush_core::{handlers::progress_ingest, now_ms, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let retention = init(config::status_retention_from_env()).await?;
    let client = aws_sdk_dynamodb::Client::new(&sdk_config().await);
    let store = DynamoJobStore::new(client, TableNames::from_env()).with_retention(retention);
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let store = &store;
        async move { Ok::<_, Error>(telemetry::metered(progress_ingest::handle(store, &event.payload, now_ms())).await?) }
    }))
    .await
}
