//! Lambda function `status-api`: HTTP API `GET /media/status` (payload v2).
//! The handler lives in `mcpush_core::handlers`; this file only wires configuration and clients.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use mcpush_core::adapters::{dynamodb::DynamoJobStore, sdk_config, secrets};
use mcpush_core::config::{Env, StatusApiSettings};
use mcpush_core::handlers::{http::RestContext, status_api};
use mcpush_core::{now_ms, runtime::init, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let StatusApiSettings { rest, output_base_url } = init(StatusApiSettings::read(&Env::process())).await?;
    let sdk = sdk_config().await;
    let access = init(secrets::read_access(&rest.tokens, &sdk).await).await?;
    let store = DynamoJobStore::new(aws_sdk_dynamodb::Client::new(&sdk), rest.tables);
    let ctx = &RestContext::new(&store, &rest.origins, &access).with_output_base_url(output_base_url.as_ref());
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| async move {
        Ok::<_, Error>(telemetry::metered(status_api::handle(ctx, event.payload, now_ms() / 1000)).await)
    }))
    .await
}
