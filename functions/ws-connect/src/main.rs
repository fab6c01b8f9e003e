//! Lambda function `ws-connect`: WebSocket API route `$connect`.
//! The handler lives in `mcpush_core::handlers::ws`; this file only wires configuration and clients.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use mcpush_core::adapters::{dynamodb::DynamoSubscriptionStore, sdk_config};
use mcpush_core::config::{Env, WsConnectSettings};
use mcpush_core::{handlers::ws, now_ms, runtime::init, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let settings = &init(WsConnectSettings::read(&Env::process())).await?;
    let client = aws_sdk_dynamodb::Client::new(&sdk_config().await);
    let subscriptions = &DynamoSubscriptionStore::new(client, settings.subscriptions_table.clone());
    lambda_runtime::run(service_fn(|event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
        Ok::<_, Error>(ws::connect(&settings.origins, subscriptions, &settings.ws, &event.payload, now_ms()).await)
    }))
    .await
}
