//! Lambda function `create-job`: S3 ObjectCreated → MediaConvert CreateJob, then the SUBMITTED status.
//! The handler lives in `mcpush_core::handlers`; this file only wires configuration and clients.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use mcpush_core::adapters::{dynamodb::DynamoJobStore, mediaconvert::MediaConvertJobCreator, sdk_config};
use mcpush_core::config::{self, CreateJobConfig, TableNames};
use mcpush_core::runtime::init;
use mcpush_core::{handlers::create_job, now_ms, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = init(CreateJobConfig::from_env()).await?;
    let sdk = sdk_config().await;
    let retention = init(config::status_retention_from_env()).await?;
    let store =
        DynamoJobStore::new(aws_sdk_dynamodb::Client::new(&sdk), TableNames::from_env()).with_retention(retention);
    let creator = MediaConvertJobCreator::new(aws_sdk_mediaconvert::Client::new(&sdk), config.clone());
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let (config, creator, store) = (&config, &creator, &store);
        async move {
            Ok::<_, Error>(
                telemetry::metered(create_job::handle(config, creator, store, &event.payload, now_ms())).await?,
            )
        }
    }))
    .await
}
