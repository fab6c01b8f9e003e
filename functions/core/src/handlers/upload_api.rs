//! `upload-api`: `POST /media/uploads` → a presigned S3 POST for a key the server chooses, and
//! the read token that covers it.
//!
//! Body `{"file_name": "clip.mp4", "content_type": "video/mp4", "size": 1234567}`; answer
//! `{"success": true, "input_file": KEY, "token": T, "token_expires_at": EPOCH_S,
//! "expires_at": EPOCH_S, "upload": {"method": "POST", "url": U, "fields": {...}}}` (`token` and
//! `token_expires_at` are `null` when tokens are off). Refusals are the seed's error bodies
//! with 400 / 413 / 415 / 422 naming what was wrong.
//!
//! With `"multipart": true` in the body (and up to `MAX_UPLOAD_BYTES` instead of 5 GiB), the
//! answer is a resumable upload instead: `{"success": true, "input_file", "upload_id",
//! "part_size", "part_count", "expires_at", "token", "token_expires_at"}`, continued through
//! [`super::multipart_api`].

use std::time::{Duration, SystemTime};

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use aws_lambda_events::http::Method;
use serde::Serialize;

use super::http::{self, Answer, ApiRequest};
use crate::config::UploadConfig;
use crate::domain::AllowedOrigins;
use crate::domain::identity::{IdentityError, SUB_CLAIM, Subject};
use crate::domain::token::ReadAccess;
use crate::domain::upload::PartPlan;
use crate::domain::upload::UploadRules;
use crate::ports::{MultipartUploads, PresignedPost, UploadSigner};

pub struct UploadContext<'a> {
    origins: &'a AllowedOrigins,
    access: &'a ReadAccess,
    signer: &'a dyn UploadSigner,
    rules: &'a UploadRules,
    /// The bucket uploads go to (`UPLOAD_BUCKET`).
    bucket: &'a str,
    /// Validity of the read token handed out with the upload (`TOKEN_TTL_SECONDS`).
    token_ttl: Duration,
    /// Sign-in required (`OIDC_ISSUER` / `OIDC_AUDIENCE` set): the JWT authorizer in front (API
    /// Gateway's, or the local stack's) has verified the token and passed its claims in
    /// `requestContext.authorizer.jwt.claims`; uploads go to the user's home folder.
    sign_in: bool,
    /// S3's multipart upload, for grants asked with `"multipart": true`.
    multipart: Option<&'a dyn MultipartUploads>,
}

impl<'a> UploadContext<'a> {
    pub fn new(
        origins: &'a AllowedOrigins,
        access: &'a ReadAccess,
        signer: &'a dyn UploadSigner,
        upload: &'a UploadConfig,
        sign_in: bool,
    ) -> Self {
        let (rules, bucket, token_ttl) = (&upload.rules, upload.bucket.as_str(), upload.token_ttl);
        UploadContext { origins, access, signer, rules, bucket, token_ttl, sign_in, multipart: None }
    }

    /// Grants multipart uploads through `uploads`.
    pub fn with_multipart(self, uploads: &'a dyn MultipartUploads) -> Self {
        Self { multipart: Some(uploads), ..self }
    }
}

#[derive(Serialize)]
struct MultipartGranted {
    success: bool,
    input_file: String,
    upload_id: String,
    part_size: u64,
    part_count: u64,
    expires_at: u64,
    token: Option<String>,
    token_expires_at: Option<u64>,
}

#[derive(Serialize)]
struct Upload {
    method: &'static str,
    #[serde(flatten)]
    post: PresignedPost,
}

#[derive(Serialize)]
struct Granted {
    success: bool,
    input_file: String,
    token: Option<String>,
    token_expires_at: Option<u64>,
    expires_at: u64,
    upload: Upload,
}

/// A random, unguessable id for the key (128 bits from the operating system).
fn random_id() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// The signed-in user, from the claims the JWT authorizer verified.
fn owner(request: &ApiRequest) -> Result<Subject, IdentityError> {
    let claims =
        request.request.request_context.authorizer.as_ref().and_then(|a| a.jwt.as_ref()).map(|jwt| &jwt.claims);
    let sub = claims.and_then(|claims| claims.get(SUB_CLAIM)).ok_or(IdentityError::Missing)?;
    Subject::parse(sub)
}

pub async fn handle(ctx: &UploadContext<'_>, event: serde_json::Value, now: SystemTime) -> ApiGatewayV2httpResponse {
    http::serve_method(event, ctx.origins, Method::POST, |request| async move {
        let body = match request.body_bytes() {
            Ok(body) => body,
            Err(answer) => return answer,
        };
        let now_secs = now.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let id = match random_id() {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(error = %e, "no randomness for the upload key");
                return Answer::error(500, "Internal error.");
            }
        };
        let owner = if ctx.sign_in {
            match owner(&request) {
                Ok(owner) => Some(owner),
                Err(e) => return Answer::error(if e == IdentityError::Missing { 401 } else { 403 }, &e.to_string()),
            }
        } else {
            None
        };
        let policy = match ctx.rules.grant(&body, ctx.bucket, &id, owner.as_ref(), now_secs) {
            Ok(policy) => policy,
            Err(refusal) => return Answer::error(refusal.status(), &refusal.to_string()),
        };
        if policy.multipart {
            return grant_multipart(ctx, policy, owner.as_ref(), now_secs).await;
        }
        let post = match ctx.signer.presign(&policy, now).await {
            Ok(post) => post,
            Err(e) => {
                tracing::error!(error = %e, "could not sign the upload");
                return Answer::error(500, "Internal error.");
            }
        };
        let token_expires_at = now_secs + ctx.token_ttl.as_secs();
        let token = ctx.access.issue(&policy.key, token_expires_at);
        tracing::info!(input_file = %policy.key, owner = owner.as_ref().map(Subject::as_str), size = policy.max_bytes, content_type = %policy.content_type, "upload granted");
        Answer::ok(&Granted {
            success: true,
            input_file: policy.key,
            token_expires_at: token.as_ref().map(|_| token_expires_at),
            token,
            expires_at: policy.expires_at,
            upload: Upload { method: "POST", post },
        })
    })
    .await
}

/// A multipart upload of the granted key (CreateMultipartUpload), cut by [`PartPlan`].
async fn grant_multipart(
    ctx: &UploadContext<'_>,
    policy: crate::domain::upload::PostPolicy,
    owner: Option<&Subject>,
    now_secs: u64,
) -> Answer {
    let Some(uploads) = ctx.multipart else {
        return Answer::error(501, "multipart uploads are not available here");
    };
    let Some(plan) = PartPlan::for_size(policy.max_bytes) else {
        return Answer::error(413, &format!("size {} needs more than 10000 parts of 512 MiB", policy.max_bytes));
    };
    let upload_id = match uploads.create(&policy.key, &policy.content_type).await {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(error = %e, "CreateMultipartUpload failed");
            return Answer::error(500, "Internal error.");
        }
    };
    let token_expires_at = now_secs + ctx.token_ttl.as_secs();
    let token = ctx.access.issue(&policy.key, token_expires_at);
    tracing::info!(input_file = %policy.key, owner = owner.map(Subject::as_str), size = policy.max_bytes, parts = plan.part_count, "multipart upload granted");
    Answer::ok(&MultipartGranted {
        success: true,
        input_file: policy.key,
        upload_id,
        part_size: plan.part_size,
        part_count: plan.part_count,
        expires_at: policy.expires_at,
        token_expires_at: token.as_ref().map(|_| token_expires_at),
        token,
    })
}

/// Is this HTTP API event for `/media/tokens` (the other route upload-api serves)?
pub fn is_token_route(event: &serde_json::Value) -> bool {
    event.get("rawPath").and_then(serde_json::Value::as_str).is_some_and(|path| path.ends_with("/media/tokens"))
}
