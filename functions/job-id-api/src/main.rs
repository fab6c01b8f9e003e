//! Lambda function `job-id-api`: HTTP API `GET /media/job_id` (payload v2).
//! The handler lives in `mcpush_core::handlers`; this file only wires configuration and clients.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use mcpush_core::adapters::{dynamodb::DynamoJobStore, sdk_config, secrets};
use mcpush_core::config::{Env, RestSettings};
use mcpush_core::handlers::{http::RestContext, job_id_api};
use mcpush_core::{now_ms, runtime::init, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let settings = init(RestSettings::read(&Env::process())).await?;
    let sdk = sdk_config().await;
    let access = init(secrets::read_access(&settings.tokens, &sdk).await).await?;
    let store = DynamoJobStore::new(aws_sdk_dynamodb::Client::new(&sdk), settings.tables);
    let ctx = &RestContext::new(&store, &settings.origins, &access);
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| async move {
        Ok::<_, Error>(job_id_api::handle(ctx, event.payload, now_ms() / 1000).await)
    }))
    .await
}
