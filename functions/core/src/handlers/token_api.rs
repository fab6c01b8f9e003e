//! `POST /media/tokens` (served by upload-api): a fresh read token for a file or a folder.
//!
//! Body `{"input_file": F, "token": T}` or `{"prefix": P, "token": T}`; answer `{"success": true,
//! "token": T2, "token_expires_at": EPOCH_S}` (`null`s when tokens are off). The caller holds a
//! valid token covering the scope ([`ReadAccess::renew`]: the chain never outlives its first
//! token by more than `MAX_TOKEN_TTL_SECONDS`), or, with sign-in, sends
//! `Authorization: Bearer <access token>` and owns the scope (it is in their home folder): this
//! function checks the bearer itself, so callers with a token only are served on the same route.
//! A file's token is not renewed once its job has been final for 24 hours.

use std::time::Duration;

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use aws_lambda_events::http::Method;
use serde::Serialize;

use super::http::{self, Answer, ApiRequest};
use crate::domain::identity::{IdentityError, Subject};
use crate::domain::protocol;
use crate::domain::token::{RENEWAL_AFTER_END_SECS, ReadAccess, TokenError};
use crate::domain::{AllowedOrigins, topic::Topic};
use crate::metrics::{self, UPLOAD_API};
use crate::ports::{IdentityVerifier, JobStore};

pub struct TokenContext<'a> {
    pub(crate) origins: &'a AllowedOrigins,
    pub(crate) access: &'a ReadAccess,
    pub(crate) jobs: &'a dyn JobStore,
    /// With sign-in: verifies a bearer's access token.
    pub(crate) identity: Option<&'a dyn IdentityVerifier>,
    /// `UPLOAD_PREFIX`: a signed-in user's home folder is under it.
    pub(crate) home_prefix: &'a str,
    /// `TOKEN_TTL_SECONDS` and `MAX_TOKEN_TTL_SECONDS`.
    pub(crate) token_ttl: Duration,
    pub(crate) max_token_ttl: Duration,
}

impl<'a> TokenContext<'a> {
    pub fn new(
        origins: &'a AllowedOrigins,
        access: &'a ReadAccess,
        jobs: &'a dyn JobStore,
        upload: &'a crate::config::UploadConfig,
    ) -> Self {
        TokenContext {
            origins,
            access,
            jobs,
            identity: None,
            home_prefix: &upload.rules.prefix,
            token_ttl: upload.token_ttl,
            max_token_ttl: upload.max_token_ttl,
        }
    }

    /// Bearers are checked with `identity` (sign-in on).
    pub fn with_identity(self, identity: Option<&'a dyn IdentityVerifier>) -> Self {
        Self { identity, ..self }
    }
}

#[derive(Serialize)]
struct Renewed {
    success: bool,
    token: Option<String>,
    token_expires_at: Option<u64>,
}

/// What the body asks for.
fn parse_body(request: &ApiRequest) -> Result<(Topic, Option<String>), Answer> {
    let body = request.body_bytes()?;
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| Answer::error(400, &format!("body is not JSON: {e}")))?;
    let object = value.as_object().ok_or_else(|| Answer::error(400, "body must be a JSON object"))?;
    let topic = protocol::topic(object).map_err(|e| Answer::error(400, &e.to_string()))?;
    let token = match object.get("token") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(token)) => Some(token.clone()),
        Some(_) => return Err(Answer::error(400, "\"token\" must be a string")),
    };
    Ok((topic, token))
}

/// The signed-in bearer, when the request has one and sign-in is on.
async fn bearer(ctx: &TokenContext<'_>, request: &ApiRequest) -> Result<Option<Subject>, Answer> {
    let (Some(identity), Some(header)) = (ctx.identity, request.header("authorization")) else { return Ok(None) };
    let jwt = header.strip_prefix("Bearer ").unwrap_or(header).trim();
    match identity.verify(jwt).await {
        Ok(verified) => Ok(Some(verified.subject)),
        Err(e @ IdentityError::KeysUnavailable(_)) => {
            tracing::error!(error = %e, "cannot check access tokens");
            Err(Answer::error(500, "Internal error."))
        }
        Err(e) => Err(Answer::error(401, &e.to_string())),
    }
}

/// Refuses a file whose newest job has been final for over [`RENEWAL_AFTER_END_SECS`].
async fn job_still_recent(ctx: &TokenContext<'_>, topic: &Topic, now_secs: u64) -> Result<(), Answer> {
    let Topic::File(file) = topic else { return Ok(()) };
    let record = match ctx.jobs.latest_job_id(file).await {
        Ok(Some(job_id)) => ctx.jobs.job(&job_id).await,
        Ok(None) => Ok(None),
        Err(e) => Err(e),
    };
    let record = record.map_err(|e| {
        tracing::error!(error = %e, "job lookup failed");
        Answer::error(500, "Internal error.")
    })?;
    let ended_ms = record.filter(|r| r.job_status.is_final()).and_then(|r| r.finished_at.or(r.updated_at));
    match ended_ms {
        Some(ended) if ended / 1000 + RENEWAL_AFTER_END_SECS < now_secs => {
            Err(http::forbidden(&TokenError::JobEndedLongAgo))
        }
        _ => Ok(()),
    }
}

pub async fn handle(ctx: &TokenContext<'_>, event: serde_json::Value, now_secs: u64) -> ApiGatewayV2httpResponse {
    http::serve_method(event, ctx.origins, Method::POST, |request| async move {
        let (topic, token) = match parse_body(&request) {
            Ok(parsed) => parsed,
            Err(answer) => return answer,
        };
        let owner = match bearer(ctx, &request).await {
            Ok(owner) => owner,
            Err(answer) => return answer,
        };
        let scope = topic.as_str();
        let renewed = match owner.filter(|o| o.owns(ctx.home_prefix, scope)) {
            // The owner starts a new chain.
            Some(_) => {
                let expires = now_secs + ctx.token_ttl.as_secs();
                Ok(ctx.access.issue(scope, expires).map(|token| (token, expires)))
            }
            None => ctx.access.renew(scope, token.as_deref(), now_secs, ctx.token_ttl, ctx.max_token_ttl),
        };
        // Only a caller who may read the scope learns about its job (and without tokens there
        // is nothing to renew).
        if matches!(renewed, Ok(Some(_)))
            && let Err(answer) = job_still_recent(ctx, &topic, now_secs).await
        {
            if answer.status == 403 {
                UPLOAD_API.count(metrics::TOKEN_RENEWALS_REFUSED, 1);
            }
            return answer;
        }
        match renewed {
            Ok(renewed) => {
                tracing::info!(scope, renewed = renewed.is_some(), "token renewed");
                UPLOAD_API.count(metrics::TOKENS_RENEWED, usize::from(renewed.is_some()));
                let (token, token_expires_at) = renewed.unzip();
                Answer::ok(&Renewed { success: true, token, token_expires_at })
            }
            Err(e) => {
                UPLOAD_API.count(metrics::TOKEN_RENEWALS_REFUSED, 1);
                http::forbidden(&e)
            }
        }
    })
    .await
}
