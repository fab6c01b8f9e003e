//! Lambda function `progress-ingest`: EventBridge "MediaConvert Job State Change" → status table.
//! The handler lives in `mcpush_core::handlers`; this file only wires configuration and clients.


use lambda_runtime::{Error, LambdaEvent, service_fn};
use mcpush_core::adapters::{dynamodb::DynamoJobStore, sdk_config};
use mcpush_core::{config, handlers::progress_ingest, now_ms, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let retention = config::status_retention_from_env()?;
    let store = DynamoJobStore::from_sdk_config(&sdk_config().await).with_retention(retention);
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let store = &store;
        async move { Ok::<_, Error>(progress_ingest::handle(store, &event.payload, now_ms()).await?) }
    }))
    .await
}
