//! Lambda function `ws-message`: WebSocket API routes `subscribe`, `unsubscribe`, `ping` and
//! `$default`. The handler lives in `mcpush_core::handlers::ws`; this file only wires
//! configuration and clients.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use mcpush_core::adapters::apigw_management::ManagementApiPusher;
use mcpush_core::adapters::dynamodb::{DynamoJobStore, DynamoSubscriptionStore};
use mcpush_core::adapters::{sdk_config, secrets};
use mcpush_core::config::{self, TableNames, WsConfig};
use mcpush_core::handlers::ws::{self, WsContext};
use mcpush_core::runtime::init;
use mcpush_core::{now_ms, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let endpoint = init(config::management_endpoint_from_env()).await?;
    let sdk = sdk_config().await;
    let ws_config = init(WsConfig::from_env(init(secrets::read_access(&sdk).await).await?)).await?;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let jobs = DynamoJobStore::new(client.clone(), TableNames::from_env());
    let subscriptions = DynamoSubscriptionStore::new(client, config::subscriptions_table_from_env());
    let pusher = ManagementApiPusher::from_sdk_config(&sdk, &endpoint);
    let ctx = WsContext { jobs: &jobs, subscriptions: &subscriptions, pusher: &pusher, config: &ws_config };
    lambda_runtime::run(service_fn(|event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
        let ctx = &ctx;
        async move { Ok::<_, Error>(telemetry::metered(ws::message(ctx, &event.payload, now_ms())).await) }
    }))
    .await
}
