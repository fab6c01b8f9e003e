//! Lambda function `upload-api`: HTTP API `POST /media/uploads` (payload v2) → a presigned S3
//! POST (or a multipart upload) for a server-chosen key, and its read token;
//! `POST /media/uploads/{parts,complete,abort}` → the multipart upload's next steps;
//! `POST /media/tokens` → a renewed read token.
//! The handlers live in `mcpush_core::handlers`; this file only wires configuration and clients.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use mcpush_core::adapters::{
    dynamodb::DynamoJobStore, oidc::OidcVerifier, s3_multipart::S3Multipart, s3_post::S3PostSigner, sdk_config, secrets,
};
use mcpush_core::config::{Env, UploadSettings};
use mcpush_core::handlers::multipart_api::{self, MultipartContext};
use mcpush_core::handlers::token_api::{self, TokenContext};
use mcpush_core::handlers::upload_api::{self, UploadContext};
use mcpush_core::ports::IdentityVerifier;
use mcpush_core::{now_ms, runtime::init, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let settings = init(UploadSettings::read(&Env::process())).await?;
    let sdk = sdk_config().await;
    let access = init(secrets::read_access(&settings.tokens, &sdk).await).await?;
    let signer = init(S3PostSigner::for_bucket(&sdk, &settings.upload.bucket)).await?;
    let store = DynamoJobStore::new(aws_sdk_dynamodb::Client::new(&sdk), settings.tables.clone());
    let multipart = S3Multipart::from_sdk_config(&sdk, &settings.upload.bucket);
    let verifier = settings.oidc.clone().map(OidcVerifier::new);
    // On /media/uploads* HTTP API's JWT authorizer has verified the bearer before this runs.
    let uploads = &UploadContext::new(&settings.origins, &access, &signer, &settings.upload, settings.sign_in())
        .with_multipart(&multipart);
    let parts = &MultipartContext::new(&settings.origins, &access, &multipart, &settings.upload, settings.sign_in());
    let tokens = &TokenContext::new(&settings.origins, &access, &store, &settings.upload)
        .with_identity(verifier.as_ref().map(|v| v as &dyn IdentityVerifier));
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| async move {
        Ok::<_, Error>(if upload_api::is_token_route(&event.payload) {
            telemetry::metered(token_api::handle(tokens, event.payload, now_ms() / 1000)).await
        } else if multipart_api::route_of(&event.payload).is_some() {
            multipart_api::handle(parts, event.payload, std::time::SystemTime::now()).await
        } else {
            upload_api::handle(uploads, event.payload, std::time::SystemTime::now()).await
        })
    }))
    .await
}
