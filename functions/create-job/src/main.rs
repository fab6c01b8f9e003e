//! Lambda function `create-job`: S3 ObjectCreated → MediaConvert CreateJob, then the SUBMITTED status.
//! The handler lives in `mcpush_core::handlers`; this file only wires configuration and clients.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use mcpush_core::adapters::{dynamodb::DynamoJobStore, mediaconvert::MediaConvertJobCreator, sdk_config};
use mcpush_core::config::{CreateJobSettings, Env};
use mcpush_core::{handlers::create_job, now_ms, runtime::init, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let settings = init(CreateJobSettings::read(&Env::process())).await?;
    let sdk = sdk_config().await;
    let store = DynamoJobStore::new(aws_sdk_dynamodb::Client::new(&sdk), settings.tables)
        .with_retention(settings.retention)
        .with_confirmation_refresh(settings.confirmation_refresh);
    let creator = MediaConvertJobCreator::new(aws_sdk_mediaconvert::Client::new(&sdk), settings.job.clone());
    let (config, creator, store) = (&settings.job, &creator, &store);
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| async move {
        Ok::<_, Error>(telemetry::metered(create_job::handle(config, creator, store, &event.payload, now_ms())).await?)
    }))
    .await
}
