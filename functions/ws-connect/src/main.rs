//! Lambda function `ws-connect`: WebSocket API route `$connect`.
//! The handler lives in `mcpush_core::handlers::ws`; this file only wires configuration and clients.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use mcpush_core::adapters::{dynamodb::DynamoSubscriptionStore, sdk_config};
use mcpush_core::config::{self, WsConfig};
use mcpush_core::domain::token::ReadAccess;
use mcpush_core::runtime::init;
use mcpush_core::{handlers::ws, now_ms, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let (origins, ws_config) =
        (init(config::allowed_origins_from_env()).await?, init(WsConfig::from_env(ReadAccess::default())).await?);
    let client = aws_sdk_dynamodb::Client::new(&sdk_config().await);
    let subscriptions = DynamoSubscriptionStore::new(client, config::subscriptions_table_from_env());
    lambda_runtime::run(service_fn(|event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
        let (origins, subscriptions, ws_config) = (&origins, &subscriptions, &ws_config);
        async move { Ok::<_, Error>(ws::connect(origins, subscriptions, ws_config, &event.payload, now_ms()).await) }
    }))
    .await
}
