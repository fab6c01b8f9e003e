//! Lambda function `upload-api`: HTTP API `POST /media/uploads` (payload v2) → a presigned S3
//! POST for a server-chosen key, and its read token.
//! The handler lives in `mcpush_core::handlers`; this file only wires configuration and clients.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use mcpush_core::adapters::s3_post::S3PostSigner;
use mcpush_core::adapters::{sdk_config, secrets};
use mcpush_core::config::{self, UploadConfig};
use mcpush_core::handlers::upload_api::{self, UploadContext};
use mcpush_core::telemetry;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let (origins, upload) = (config::allowed_origins_from_env()?, UploadConfig::from_env()?);
    let sdk = sdk_config().await;
    let access = secrets::read_access(&sdk).await?;
    let region = sdk.region().map(ToString::to_string).ok_or(config::ConfigError::Missing("AWS_REGION"))?;
    let credentials = sdk.credentials_provider().ok_or(config::ConfigError::Missing("AWS_ACCESS_KEY_ID"))?;
    let signer = S3PostSigner::new(credentials, &region, &S3PostSigner::bucket_url(&upload.bucket, &region));
    // With OIDC, HTTP API's JWT authorizer verifies the token before this function runs.
    let sign_in = config::oidc_from_env()?.is_some();
    let ctx = UploadContext { origins: &origins, access: &access, signer: &signer, rules: &upload.rules, bucket: &upload.bucket, token_ttl: upload.token_ttl, sign_in };
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let ctx = &ctx;
        async move { Ok::<_, Error>(upload_api::handle(ctx, event.payload, std::time::SystemTime::now()).await) }
    }))
    .await
}
