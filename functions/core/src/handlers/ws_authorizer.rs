//! `ws-authorizer`: the WebSocket API's Lambda REQUEST authorizer on `$connect` (only with
//! `OIDC_ISSUER` / `OIDC_AUDIENCE`).
//!
//! Browsers cannot set headers on a WebSocket, so the OIDC access token comes as
//! `?access_token=JWT`. A valid token binds the connection to its `sub`: the answer's context
//! carries `sub`, which API Gateway hands to every route of the connection, and `subscribe` lets
//! that user into their home folder without a read token. No `access_token` at all is an
//! anonymous connection (read tokens as usual); a token that does not verify is refused (Deny:
//! API Gateway answers 403 and no connection opens). An issuer whose keys cannot be read is an
//! error (API Gateway answers 500), never an anonymous pass.

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayCustomAuthorizerResponse,
};
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use serde_json::{Value, json};

use crate::domain::identity::{IdentityError, SUB_CLAIM};
use crate::ports::IdentityVerifier;

/// The query parameter that carries the OIDC access token.
pub const ACCESS_TOKEN_PARAM: &str = "access_token";
/// The principal of a connection opened without an access token.
pub const ANONYMOUS: &str = "anonymous";

fn policy(
    effect: IamPolicyEffect,
    principal: &str,
    method_arn: &str,
    context: Value,
) -> ApiGatewayCustomAuthorizerResponse {
    let mut statement = IamPolicyStatement::default();
    statement.action = vec!["execute-api:Invoke".into()];
    statement.effect = effect;
    statement.resource = vec![method_arn.to_owned()];
    let mut document = ApiGatewayCustomAuthorizerPolicy::default();
    document.version = Some("2012-10-17".into());
    document.statement = vec![statement];
    let mut response = ApiGatewayCustomAuthorizerResponse::default();
    response.principal_id = Some(principal.to_owned());
    response.policy_document = document;
    response.context = context;
    response
}

/// Allows anonymous connections and connections with a valid `access_token` (bound to its
/// `sub`); denies any other token. `Err` only when the issuer's keys cannot be read.
pub async fn authorize(
    verifier: &dyn IdentityVerifier,
    request: &ApiGatewayCustomAuthorizerRequestTypeRequest,
) -> Result<ApiGatewayCustomAuthorizerResponse, IdentityError> {
    let method_arn = request.method_arn.as_deref().unwrap_or("*");
    let Some(jwt) = request.query_string_parameters.first(ACCESS_TOKEN_PARAM) else {
        return Ok(policy(IamPolicyEffect::Allow, ANONYMOUS, method_arn, json!({})));
    };
    match verifier.verify(jwt).await {
        Ok(verified) => {
            tracing::info!(sub = verified.subject.as_str(), "connection signed in");
            Ok(policy(
                IamPolicyEffect::Allow,
                verified.subject.as_str(),
                method_arn,
                json!({ SUB_CLAIM: verified.subject.as_str() }),
            ))
        }
        Err(e) if e.is_client_error() => {
            tracing::info!(reason = %e, "connection refused: access_token invalid");
            Ok(policy(IamPolicyEffect::Deny, ANONYMOUS, method_arn, json!({ "reason": e.to_string() })))
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot check access tokens");
            Err(e)
        }
    }
}

/// Did the authorizer let the connection in?
pub fn allowed(response: &ApiGatewayCustomAuthorizerResponse) -> bool {
    !response.policy_document.statement.is_empty()
        && response.policy_document.statement.iter().all(|s| s.effect == IamPolicyEffect::Allow)
}
