//! Adapters: the ports implemented over DynamoDB, MediaConvert and memory. Infrastructure
//! errors become [`crate::ports::StoreError`] / [`crate::ports::JobCreatorError`] here.

#[cfg(feature = "management-api")]
pub mod apigw_management;
pub mod dynamodb;
#[cfg(feature = "eventbridge")]
pub mod eventbridge;
#[cfg(feature = "mediaconvert")]
pub mod mediaconvert;
pub mod memory;
#[cfg(feature = "oidc")]
pub mod oidc;
#[cfg(feature = "s3")]
pub mod s3_multipart;
pub mod s3_post;
#[cfg(feature = "secrets")]
pub mod secrets;

/// The SDK configuration every function builds its clients from: region, credentials and
/// endpoints by the SDK's own rules (`AWS_REGION`, `AWS_ENDPOINT_URL`,
/// `AWS_ENDPOINT_URL_DYNAMODB`, …).
#[cfg(feature = "aws")]
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}
