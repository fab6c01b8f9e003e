//! [`Pusher`] over API Gateway's Management API (aws-sdk-apigatewaymanagement).
//!
//! The endpoint is configured, never guessed: `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`,
//! a custom domain, or the local stack's emulator. The SDK's own retries are off: progress-push
//! retries with its own backoff and knows when to give up.

use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::config::retry::RetryConfig;
use aws_sdk_apigatewaymanagement::error::{DisplayErrorContext, SdkError};
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;

use crate::ports::{PushError, Pusher};

pub struct ManagementApiPusher {
    client: Client,
}

impl ManagementApiPusher {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// A client for `endpoint` with the SDK's region and credentials and no SDK-level retries.
    pub fn from_sdk_config(config: &aws_config::SdkConfig, endpoint: &str) -> Self {
        let conf = aws_sdk_apigatewaymanagement::config::Builder::from(config)
            .endpoint_url(endpoint)
            .retry_config(RetryConfig::disabled())
            .build();
        Self::new(Client::from_conf(conf))
    }
}

#[async_trait]
impl Pusher for ManagementApiPusher {
    async fn post(&self, connection_id: &str, payload: &[u8]) -> Result<(), PushError> {
        // The id goes into the request's path: only an id of API Gateway's shape goes out (one
        // that is not can name no connection, so it is gone), never one the SDK cannot hold.
        if !crate::domain::ids::is_connection_id(connection_id) {
            return Err(PushError::Gone);
        }
        let result =
            self.client.post_to_connection().connection_id(connection_id).data(Blob::new(payload)).send().await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) => {
                let status = e.raw().status().as_u16();
                let message = DisplayErrorContext(e.err()).to_string();
                Err(match e.err() {
                    PostToConnectionError::GoneException(_) => PushError::Gone,
                    PostToConnectionError::PayloadTooLargeException(_) => PushError::TooLarge(message),
                    PostToConnectionError::LimitExceededException(_) => PushError::Throttled(message),
                    _ if status == 410 => PushError::Gone,
                    _ if status == 413 => PushError::TooLarge(message),
                    _ if status == 429 => PushError::Throttled(format!("HTTP 429: {message}")),
                    _ if status >= 500 => PushError::Retryable(format!("HTTP {status}: {message}")),
                    _ => PushError::Refused(format!("HTTP {status}: {message}")),
                })
            }
            Err(e) => Err(PushError::Retryable(DisplayErrorContext(e).to_string())),
        }
    }
}
