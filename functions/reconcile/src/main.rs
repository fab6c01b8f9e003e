//! Lambda function `reconcile`: on a schedule, unfinished jobs that have been quiet too long →
//! MediaConvert GetJob → status table (the same merge rule as events).
//! The handler lives in `mcpush_core::handlers`; this file only wires configuration and clients.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use mcpush_core::adapters::{dynamodb::DynamoJobStore, mediaconvert::MediaConvertJobInspector, sdk_config};
use mcpush_core::config::{Env, ReconcileSettings};
use mcpush_core::handlers::reconcile::{self, ReconcileContext};
use mcpush_core::{now_ms, runtime::init, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let settings = init(ReconcileSettings::read(&Env::process())).await?;
    let sdk = sdk_config().await;
    let jobs = DynamoJobStore::new(aws_sdk_dynamodb::Client::new(&sdk), settings.tables)
        .with_retention(settings.retention)
        .with_confirmation_refresh(settings.reconcile.confirmation_refresh());
    let mediaconvert = MediaConvertJobInspector::new(aws_sdk_mediaconvert::Client::new(&sdk));
    let ctx = &ReconcileContext::new(&jobs, &mediaconvert, &settings.reconcile);
    lambda_runtime::run(service_fn(|_: LambdaEvent<serde_json::Value>| async move {
        Ok::<_, Error>(telemetry::metered(reconcile::handle(ctx, now_ms())).await?)
    }))
    .await
}
