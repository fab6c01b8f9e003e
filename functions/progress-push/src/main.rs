//! Lambda function `progress-push`: the status table's DynamoDB stream → subscribed WebSocket
//! connections. The handler lives in `mcpush_core::handlers::progress_push`; this file only wires
//! configuration and clients.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use mcpush_core::adapters::apigw_management::ManagementApiPusher;
use mcpush_core::adapters::dynamodb::{DynamoJobStore, DynamoSubscriptionStore};
use mcpush_core::adapters::sdk_config;
use mcpush_core::config::{self, PushConfig, TableNames};
use mcpush_core::handlers::progress_push::{self, PushContext};
use mcpush_core::runtime::init;
use mcpush_core::{now_ms, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let sdk = sdk_config().await;
    let (push_config, endpoint) =
        (init(PushConfig::from_env()).await?, init(config::management_endpoint_from_env()).await?);
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let jobs = DynamoJobStore::new(client.clone(), TableNames::from_env());
    let subscriptions = DynamoSubscriptionStore::new(client, config::subscriptions_table_from_env());
    let pusher = ManagementApiPusher::from_sdk_config(&sdk, &endpoint);
    let ctx = PushContext { jobs: &jobs, subscriptions: &subscriptions, pusher: &pusher, config: &push_config };
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let ctx = &ctx;
        async move {
            Ok::<_, Error>(telemetry::metered(progress_push::handle(ctx, &event.payload, now_ms() / 1000)).await.0)
        }
    }))
    .await
}
