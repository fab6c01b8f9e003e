//! Lambda function `ws-message`: WebSocket routes `subscribe`, `unsubscribe`, `ping`, `$default`.
//! The handler lives in `mcpush_core::handlers`; this file only wires configuration and clients.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use mcpush_core::adapters::{apigw_management::ManagementApiPusher, dynamodb, sdk_config, secrets};
use mcpush_core::config::{Env, WsMessageSettings};
use mcpush_core::handlers::ws::{self, WsContext};
use mcpush_core::{now_ms, runtime::init, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let settings = init(WsMessageSettings::read(&Env::process())).await?;
    let sdk = sdk_config().await;
    let ws_config = settings.ws.with_access(init(secrets::read_access(&settings.tokens, &sdk).await).await?);
    let (jobs, subscriptions) = dynamodb::stores(&sdk, settings.tables, settings.subscriptions_table);
    let pusher = ManagementApiPusher::from_sdk_config(&sdk, &settings.endpoint);
    let ctx = &WsContext::new(&jobs, &subscriptions, &pusher, &ws_config);
    lambda_runtime::run(service_fn(|event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
        Ok::<_, Error>(telemetry::metered(ws::message(ctx, &event.payload, now_ms())).await)
    }))
    .await
}
