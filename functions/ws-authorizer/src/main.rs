//! Lambda function `ws-authorizer`: the WebSocket API's REQUEST authorizer on `$connect`, deployed
//! when `OIDC_ISSUER` and `OIDC_AUDIENCE` are set.
//! The handler lives in `mcpush_core::handlers::ws_authorizer`; this file only wires configuration.

use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use mcpush_core::adapters::oidc::OidcVerifier;
use mcpush_core::config::{AuthorizerSettings, Env};
use mcpush_core::{handlers::ws_authorizer, runtime::init, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let settings = init(AuthorizerSettings::read(&Env::process())).await?;
    let verifier = &OidcVerifier::new(settings.oidc);
    lambda_runtime::run(service_fn(|event: LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest>| async move {
        ws_authorizer::authorize(verifier, &event.payload).await.map_err(Error::from)
    }))
    .await
}
