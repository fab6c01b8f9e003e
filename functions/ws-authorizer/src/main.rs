//! Lambda function `ws-authorizer`: the WebSocket API's REQUEST authorizer on `$connect`, deployed
//! when `OIDC_ISSUER` and `OIDC_AUDIENCE` are set.
//! The handler lives in `mcpush_core::handlers::ws_authorizer`; this file only wires configuration.

use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use mcpush_core::adapters::oidc::OidcVerifier;
use mcpush_core::config::{self, ConfigError};
use mcpush_core::handlers::ws_authorizer;
use mcpush_core::runtime::init;
use mcpush_core::telemetry;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let verifier = OidcVerifier::new(
        init(config::oidc_from_env().and_then(|oidc| oidc.ok_or(ConfigError::Missing("OIDC_ISSUER")))).await?,
    );
    lambda_runtime::run(service_fn(|event: LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest>| {
        let verifier = &verifier;
        async move { ws_authorizer::authorize(verifier, &event.payload).await.map_err(Error::from) }
    }))
    .await
}
