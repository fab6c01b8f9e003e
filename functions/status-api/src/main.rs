//! Lambda function `status-api`: HTTP API `GET /media/status` (payload v2).
//! The handler lives in `mcpush_core::handlers`; this file only wires configuration and clients.


use lambda_runtime::{Error, LambdaEvent, service_fn};
use mcpush_core::adapters::{dynamodb::DynamoJobStore, sdk_config};
use mcpush_core::{config, handlers::status_api, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let origins = config::allowed_origins_from_env()?;
    let store = DynamoJobStore::from_sdk_config(&sdk_config().await);
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let (store, origins) = (&store, &origins);
        async move { Ok::<_, Error>(status_api::handle(store, origins, event.payload).await) }
    }))
    .await
}
