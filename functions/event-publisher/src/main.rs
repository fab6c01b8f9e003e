//! Lambda function `event-publisher`: the status table's stream → one EventBridge
//! `Job Status Changed` event per status transition. The handler lives in `mcpush_core::handlers`;
//! this file only wires configuration and the client.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use mcpush_core::adapters::{eventbridge::EventBridgePublisher, sdk_config};
use mcpush_core::config::{Env, EventsSettings};
use mcpush_core::handlers::event_publisher::{self, EventsContext};
use mcpush_core::{runtime::init, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let settings = init(EventsSettings::read(&Env::process())).await?;
    let publisher = EventBridgePublisher::from_sdk_config(&sdk_config().await, &settings.bus);
    let ctx = &EventsContext::new(&publisher, &settings.events);
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| async move {
        Ok::<_, Error>(telemetry::metered(event_publisher::handle(ctx, &event.payload)).await.0)
    }))
    .await
}
