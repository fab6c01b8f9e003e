//! Lambda function `progress-push`: the status table's stream → subscribed WebSocket connections.
//! The handler lives in `mcpush_core::handlers`; this file only wires configuration and clients.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use mcpush_core::adapters::{apigw_management::ManagementApiPusher, dynamodb, sdk_config};
use mcpush_core::config::{Env, PushSettings};
use mcpush_core::handlers::progress_push::{self, PushContext};
use mcpush_core::{now_ms, runtime::init, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let settings = init(PushSettings::read(&Env::process())).await?;
    let sdk = sdk_config().await;
    let (jobs, subscriptions) = dynamodb::stores(&sdk, settings.tables, settings.subscriptions_table);
    let pusher = ManagementApiPusher::from_sdk_config(&sdk, &settings.endpoint);
    let ctx = &PushContext::new(&jobs, &subscriptions, &pusher, &settings.push);
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| async move {
        Ok::<_, Error>(telemetry::metered(progress_push::handle(ctx, &event.payload, now_ms() / 1000)).await.0)
    }))
    .await
}
