//! Lambda function `ws-disconnect`: WebSocket API route `$disconnect`.
//! The handler lives in `mcpush_core::handlers::ws`; this file only wires configuration and clients.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use mcpush_core::adapters::{dynamodb::DynamoSubscriptionStore, sdk_config};
use mcpush_core::config::{Env, WsDisconnectSettings};
use mcpush_core::{handlers::ws, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let settings = WsDisconnectSettings::read(&Env::process());
    let client = aws_sdk_dynamodb::Client::new(&sdk_config().await);
    let subscriptions = &DynamoSubscriptionStore::new(client, settings.subscriptions_table);
    lambda_runtime::run(service_fn(|event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
        Ok::<_, Error>(telemetry::metered(ws::disconnect(subscriptions, &event.payload)).await)
    }))
    .await
}
