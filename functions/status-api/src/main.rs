//! Lambda function `status-api`: HTTP API `GET /media/status` (payload v2).
//! The handler lives in `mcpush_core::handlers`; this file only wires configuration and clients.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use mcpush_core::adapters::{dynamodb::DynamoJobStore, sdk_config};
use mcpush_core::config::{self, TableNames};
use mcpush_core::{handlers::status_api, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let origins = config::allowed_origins_from_env()?;
    let store = DynamoJobStore::new(aws_sdk_dynamodb::Client::new(&sdk_config().await), TableNames::from_env());
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let (store, origins) = (&store, &origins);
        async move { Ok::<_, Error>(status_api::handle(store, origins, event.payload).await) }
    }))
    .await
}
