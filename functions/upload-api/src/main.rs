//! Lambda function `upload-api`: HTTP API `POST /media/uploads` (payload v2) → a presigned S3
//! POST for a server-chosen key, and its read token.
//! The handler lives in `mcpush_core::handlers`; this file only wires configuration and clients.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use mcpush_core::adapters::s3_post::S3PostSigner;
use mcpush_core::adapters::{sdk_config, secrets};
use mcpush_core::config::{self, UploadConfig};
use mcpush_core::handlers::upload_api::{self, UploadContext};
use mcpush_core::runtime::init;
use mcpush_core::telemetry;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let (origins, upload) = (init(config::allowed_origins_from_env()).await?, init(UploadConfig::from_env()).await?);
    let sdk = sdk_config().await;
    let access = init(secrets::read_access(&sdk).await).await?;
    let region = init(sdk.region().map(ToString::to_string).ok_or(config::ConfigError::Missing("AWS_REGION"))).await?;
    let credentials = init(sdk.credentials_provider().ok_or(config::ConfigError::Missing("AWS_ACCESS_KEY_ID"))).await?;
    let signer = S3PostSigner::new(credentials, &region, &S3PostSigner::bucket_url(&upload.bucket, &region));
    // With OIDC, HTTP API's JWT authorizer verifies the token before this function runs.
    let sign_in = init(config::oidc_from_env()).await?.is_some();
    let ctx = UploadContext {
        origins: &origins,
        access: &access,
        signer: &signer,
        rules: &upload.rules,
        bucket: &upload.bucket,
        token_ttl: upload.token_ttl,
        sign_in,
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let ctx = &ctx;
        async move { Ok::<_, Error>(upload_api::handle(ctx, event.payload, std::time::SystemTime::now()).await) }
    }))
    .await
}
