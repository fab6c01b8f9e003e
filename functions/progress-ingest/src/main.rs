//! Lambda function `progress-ingest`: EventBridge "MediaConvert Job State Change" → status table.
//! The handler lives in `mcpush_core::handlers`; this file only wires configuration and clients.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use mcpush_core::adapters::{dynamodb::DynamoJobStore, sdk_config};
use mcpush_core::config::{Env, IngestSettings};
use mcpush_core::{handlers::progress_ingest, now_ms, runtime::init, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let settings = init(IngestSettings::read(&Env::process())).await?;
    let client = aws_sdk_dynamodb::Client::new(&sdk_config().await);
    let store = &DynamoJobStore::new(client, settings.tables)
        .with_retention(settings.retention)
        .with_confirmation_refresh(settings.confirmation_refresh);
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| async move {
        Ok::<_, Error>(telemetry::metered(progress_ingest::handle(store, &event.payload, now_ms())).await?)
    }))
    .await
}
