//! Lambda function `ws-disconnect`: WebSocket API route `$disconnect`.
//! The handler lives in `mcpush_core::handlers::ws`; this file only wires configuration and clients.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use mcpush_core::adapters::{sdk_config, subscriptions::DynamoSubscriptionStore};
use mcpush_core::{handlers::ws, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let subscriptions = DynamoSubscriptionStore::from_sdk_config(&sdk_config().await);
    lambda_runtime::run(service_fn(|event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
        let subscriptions = &subscriptions;
        async move { Ok::<_, Error>(ws::disconnect(subscriptions, &event.payload).await) }
    }))
    .await
}
