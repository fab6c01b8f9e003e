//! The WebSocket routes wired to the same handlers the Lambda functions run.

use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayCustomAuthorizerResponse, ApiGatewayProxyResponse,
    ApiGatewayWebsocketProxyRequest,
};
use aws_sdk_apigatewaymanagement::config::{BehaviorVersion, Credentials, Region, retry::RetryConfig};
use mcpush_core::adapters::apigw_management::ManagementApiPusher;
use mcpush_core::config::WsConfig;
use mcpush_core::domain::AllowedOrigins;
use mcpush_core::domain::identity::IdentityError;
use mcpush_core::handlers::ws::{self, WsContext};
use mcpush_core::handlers::ws_authorizer;
use mcpush_core::ports::{IdentityVerifier, JobStore, Pusher, SubscriptionStore};

use crate::aws::apigw_ws::WsBackend;

/// Routes of the WebSocket API besides `$connect`, `$disconnect` and `$default`.
pub const ROUTES: [&str; 3] = ["subscribe", "unsubscribe", "ping"];

pub struct HandlerBackend {
    pub origins: Arc<AllowedOrigins>,
    pub jobs: Arc<dyn JobStore>,
    pub subscriptions: Arc<dyn SubscriptionStore>,
    pub pusher: Arc<dyn Pusher>,
    pub config: WsConfig,
    /// With OIDC: the `$connect` authorizer's token check (`ws-authorizer` on AWS).
    pub identity: Option<Arc<dyn IdentityVerifier>>,
    /// Each route's Lambda invocation is billed here.
    pub billing: Arc<crate::aws::billing::Billing>,
}

#[async_trait]
impl WsBackend for HandlerBackend {
    async fn authorize(
        &self,
        request: ApiGatewayCustomAuthorizerRequestTypeRequest,
    ) -> Option<Result<ApiGatewayCustomAuthorizerResponse, IdentityError>> {
        let verifier = self.identity.as_ref()?;
        let _billed = self.billing.invocation("ws-authorizer");
        Some(ws_authorizer::authorize(verifier.as_ref(), &request).await)
    }

    async fn connect(&self, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
        let _billed = self.billing.invocation("ws-connect");
        ws::connect(&self.origins, self.subscriptions.as_ref(), &self.config, &event, mcpush_core::now_ms()).await
    }

    async fn disconnect(&self, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
        let _billed = self.billing.invocation("ws-disconnect");
        ws::disconnect(self.subscriptions.as_ref(), &event).await
    }

    async fn message(&self, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
        let _billed = self.billing.invocation("ws-message");
        let ctx = WsContext::new(self.jobs.as_ref(), self.subscriptions.as_ref(), self.pusher.as_ref(), &self.config);
        ws::message(&ctx, &event, mcpush_core::now_ms()).await
    }
}

/// The real SDK client for a local Management API endpoint (any credentials will do).
pub fn local_pusher(endpoint: &str) -> ManagementApiPusher {
    let conf = aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "local"))
        .endpoint_url(endpoint)
        .retry_config(RetryConfig::disabled())
        .build();
    ManagementApiPusher::new(aws_sdk_apigatewaymanagement::Client::from_conf(conf))
}
