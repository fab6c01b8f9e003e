//! Lambda function `upload-api`: HTTP API `POST /media/uploads` (payload v2) → a presigned S3
//! POST for a server-chosen key, and its read token.
//! The handler lives in `mcpush_core::handlers`; this file only wires configuration and clients.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use mcpush_core::adapters::{s3_post::S3PostSigner, sdk_config, secrets};
use mcpush_core::config::{Env, UploadSettings};
use mcpush_core::handlers::upload_api::{self, UploadContext};
use mcpush_core::{runtime::init, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let settings = init(UploadSettings::read(&Env::process())).await?;
    let sdk = sdk_config().await;
    let access = init(secrets::read_access(&settings.tokens, &sdk).await).await?;
    let signer = init(S3PostSigner::for_bucket(&sdk, &settings.upload.bucket)).await?;
    // With OIDC, HTTP API's JWT authorizer verifies the token before this function runs.
    let ctx = &UploadContext::new(&settings.origins, &access, &signer, &settings.upload, settings.sign_in);
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| async move {
        Ok::<_, Error>(upload_api::handle(ctx, event.payload, std::time::SystemTime::now()).await)
    }))
    .await
}
