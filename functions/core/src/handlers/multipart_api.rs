//! upload-api's resumable uploads (S3 multipart), after `POST /media/uploads` with
//! `"multipart": true` granted one (see [`super::upload_api`]):
//!
//! - `POST /media/uploads/parts` `{input_file, upload_id, token, part_numbers}` →
//!   `{success, parts: [{part_number, url}], uploaded: [{part_number, etag, size}]}`: presigned
//!   `PUT` URLs (at most 100 per call, valid `UPLOAD_GRANT_SECONDS`) and the parts S3 already
//!   holds, so a client resumes by sending only what is missing;
//! - `POST /media/uploads/complete` `{input_file, upload_id, token, parts: [{part_number, etag}]}`
//!   → `{success, input_file}`, once the parts' sizes (from ListParts) are within
//!   `MAX_UPLOAD_BYTES` (an oversize upload is aborted, never transcoded);
//! - `POST /media/uploads/abort` `{input_file, upload_id, token}` → 204.
//!
//! Only the caller granted the upload may go on with it: the grant's read token must cover
//! `input_file` (or, with sign-in, the caller owns its home folder), and `upload_id` must be an
//! upload of that `input_file` (S3 says which); otherwise 403. With neither tokens nor sign-in,
//! the unguessable `upload_id` is the capability.

use std::collections::BTreeMap;
use std::time::SystemTime;

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use aws_lambda_events::http::Method;
use serde::{Deserialize, Serialize};

use super::http::{self, Answer, ApiRequest};
use crate::config::UploadConfig;
use crate::domain::AllowedOrigins;
use crate::domain::identity::{SUB_CLAIM, Subject};
use crate::domain::token::ReadAccess;
use crate::domain::upload::{MAX_PARTS, MAX_PARTS_PER_CALL};
use crate::ports::{MultipartError, MultipartUploads, UploadedPart};

/// The three routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Parts,
    Complete,
    Abort,
}

/// Which multipart route an HTTP API event is for, if any.
pub fn route_of(event: &serde_json::Value) -> Option<Route> {
    let path = event.get("rawPath").and_then(serde_json::Value::as_str)?;
    [
        ("/media/uploads/parts", Route::Parts),
        ("/media/uploads/complete", Route::Complete),
        ("/media/uploads/abort", Route::Abort),
    ]
    .into_iter()
    .find_map(|(suffix, route)| path.ends_with(suffix).then_some(route))
}

pub struct MultipartContext<'a> {
    origins: &'a AllowedOrigins,
    access: &'a ReadAccess,
    uploads: &'a dyn MultipartUploads,
    config: &'a UploadConfig,
    /// Sign-in on: the JWT authorizer in front verified the caller's token.
    sign_in: bool,
}

impl<'a> MultipartContext<'a> {
    pub fn new(
        origins: &'a AllowedOrigins,
        access: &'a ReadAccess,
        uploads: &'a dyn MultipartUploads,
        config: &'a UploadConfig,
        sign_in: bool,
    ) -> Self {
        Self { origins, access, uploads, config, sign_in }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartsRequest {
    input_file: String,
    upload_id: String,
    #[serde(default)]
    token: Option<String>,
    part_numbers: Vec<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartRef {
    part_number: u64,
    etag: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CompleteRequest {
    input_file: String,
    upload_id: String,
    #[serde(default)]
    token: Option<String>,
    parts: Vec<PartRef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AbortRequest {
    input_file: String,
    upload_id: String,
    #[serde(default)]
    token: Option<String>,
}

#[derive(Serialize)]
struct PartUrl {
    part_number: u32,
    url: String,
}

#[derive(Serialize)]
struct PartsAnswer {
    success: bool,
    parts: Vec<PartUrl>,
    uploaded: Vec<UploadedPart>,
}

#[derive(Serialize)]
struct Completed<'a> {
    success: bool,
    input_file: &'a str,
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8], shape: &str) -> Result<T, Answer> {
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(body))
        .map_err(|e| Answer::error(400, &format!("body is not {shape}: {e}")))
}

/// A part number S3 takes (1–10,000), or a 400 naming `field`.
fn part_number(n: u64, field: &str) -> Result<u32, Answer> {
    u32::try_from(n)
        .ok()
        .filter(|n| (1..=MAX_PARTS as u32).contains(n))
        .ok_or_else(|| Answer::error(400, &format!("{field}: {n} is not a part number from 1 to {MAX_PARTS}")))
}

/// The caller may act on `input_file`'s upload: an upload key of this stack, covered by the
/// token or owned by the signed-in caller.
fn authorize(
    ctx: &MultipartContext<'_>,
    request: &ApiRequest,
    input_file: &str,
    upload_id: &str,
    token: Option<&str>,
    now_secs: u64,
) -> Result<(), Answer> {
    if upload_id.is_empty() || upload_id.len() > 1024 || upload_id.chars().any(char::is_control) {
        return Err(Answer::error(400, "upload_id is not an upload id"));
    }
    if !input_file.starts_with(&ctx.config.rules.prefix) || input_file.len() > 1024 {
        return Err(Answer::error(403, "input_file is not an upload of this stack"));
    }
    let owner = || {
        let claims =
            request.request.request_context.authorizer.as_ref().and_then(|a| a.jwt.as_ref()).map(|j| &j.claims);
        claims.and_then(|c| c.get(SUB_CLAIM)).and_then(|sub| Subject::parse(sub).ok())
    };
    let owned = ctx.sign_in && owner().is_some_and(|o| o.owns(&ctx.config.rules.prefix, input_file));
    if ctx.access.required() {
        if owned {
            return Ok(());
        }
        return ctx.access.check(input_file, token, now_secs).map_err(|e| http::forbidden(&e));
    }
    if ctx.sign_in && !owned {
        return Err(Answer::error(403, "input_file is not in your home folder"));
    }
    Ok(())
}

/// S3's failures as answers: an upload that is not this file's is the caller's to prove (403).
fn failure(e: MultipartError) -> Answer {
    match e {
        MultipartError::NoSuchUpload => Answer::error(403, "upload_id is not an upload of input_file in progress"),
        MultipartError::Refused(code, message) => {
            Answer::error(400, &format!("parts: S3 refused them ({code}: {message})"))
        }
        MultipartError::Unavailable(e) => {
            tracing::error!(error = %e, "S3 failed");
            Answer::error(500, "Internal error.")
        }
    }
}

pub async fn handle(ctx: &MultipartContext<'_>, event: serde_json::Value, now: SystemTime) -> ApiGatewayV2httpResponse {
    let route = route_of(&event);
    http::serve_method(event, ctx.origins, Method::POST, |request| async move {
        let body = match request.body_bytes() {
            Ok(body) => body,
            Err(answer) => return answer,
        };
        let now_secs = now.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let outcome = match route {
            Some(Route::Parts) => parts(ctx, &request, &body, now, now_secs).await,
            Some(Route::Complete) => complete(ctx, &request, &body, now_secs).await,
            Some(Route::Abort) => abort(ctx, &request, &body, now_secs).await,
            None => Err(Answer::error(404, "Not Found")),
        };
        outcome.unwrap_or_else(|answer| answer)
    })
    .await
}

async fn parts(
    ctx: &MultipartContext<'_>,
    request: &ApiRequest,
    body: &[u8],
    now: SystemTime,
    now_secs: u64,
) -> Result<Answer, Answer> {
    let asked: PartsRequest = parse(body, "{\"input_file\", \"upload_id\", \"token\", \"part_numbers\"}")?;
    authorize(ctx, request, &asked.input_file, &asked.upload_id, asked.token.as_deref(), now_secs)?;
    if asked.part_numbers.len() > MAX_PARTS_PER_CALL {
        return Err(Answer::error(
            400,
            &format!("part_numbers: at most {MAX_PARTS_PER_CALL} per call, not {}", asked.part_numbers.len()),
        ));
    }
    let mut numbers =
        asked.part_numbers.iter().map(|&n| part_number(n, "part_numbers")).collect::<Result<Vec<_>, _>>()?;
    numbers.sort_unstable();
    numbers.dedup();
    // ListParts first: it proves the upload is this file's before any URL is signed.
    let uploaded = ctx.uploads.list_parts(&asked.input_file, &asked.upload_id).await.map_err(failure)?;
    let mut urls = Vec::with_capacity(numbers.len());
    for part_number in numbers {
        let url = (ctx
            .uploads
            .presign_part(&asked.input_file, &asked.upload_id, part_number, now, ctx.config.rules.grant_ttl)
            .await)
            .map_err(failure)?;
        urls.push(PartUrl { part_number, url });
    }
    Ok(Answer::ok(&PartsAnswer { success: true, parts: urls, uploaded }))
}

async fn complete(
    ctx: &MultipartContext<'_>,
    request: &ApiRequest,
    body: &[u8],
    now_secs: u64,
) -> Result<Answer, Answer> {
    let asked: CompleteRequest =
        parse(body, "{\"input_file\", \"upload_id\", \"token\", \"parts\": [{\"part_number\", \"etag\"}]}")?;
    authorize(ctx, request, &asked.input_file, &asked.upload_id, asked.token.as_deref(), now_secs)?;
    if asked.parts.is_empty() {
        return Err(Answer::error(400, "parts: at least one part"));
    }
    let mut listed = Vec::with_capacity(asked.parts.len());
    for part in &asked.parts {
        let number = part_number(part.part_number, "parts")?;
        if listed.last().is_some_and(|(last, _)| *last >= number) {
            return Err(Answer::error(400, "parts: part numbers must be in ascending order, each once"));
        }
        if part.etag.trim_matches('"').is_empty() {
            return Err(Answer::error(400, &format!("parts: part {number} has no etag")));
        }
        listed.push((number, part.etag.clone()));
    }
    let held: BTreeMap<u32, UploadedPart> = (ctx.uploads.list_parts(&asked.input_file, &asked.upload_id).await)
        .map_err(failure)?
        .into_iter()
        .map(|p| (p.part_number, p))
        .collect();
    let mut size = 0u64;
    for (number, _) in &listed {
        let part = held
            .get(number)
            .ok_or_else(|| Answer::error(400, &format!("parts: part {number} has not been uploaded")))?;
        size = size.saturating_add(part.size);
    }
    let max = ctx.config.rules.max_bytes;
    if size > max {
        tracing::warn!(input_file = %asked.input_file, size, max, "an oversize multipart upload was aborted");
        ctx.uploads.abort(&asked.input_file, &asked.upload_id).await.map_err(failure)?;
        return Err(Answer::error(
            413,
            &format!(
                "the parts hold {size} bytes, more than the {max} an upload may have (MAX_UPLOAD_BYTES); the upload was aborted"
            ),
        ));
    }
    ctx.uploads.complete(&asked.input_file, &asked.upload_id, &listed).await.map_err(failure)?;
    tracing::info!(input_file = %asked.input_file, size, parts = listed.len(), "multipart upload completed");
    Ok(Answer::ok(&Completed { success: true, input_file: &asked.input_file }))
}

async fn abort(ctx: &MultipartContext<'_>, request: &ApiRequest, body: &[u8], now_secs: u64) -> Result<Answer, Answer> {
    let asked: AbortRequest = parse(body, "{\"input_file\", \"upload_id\", \"token\"}")?;
    authorize(ctx, request, &asked.input_file, &asked.upload_id, asked.token.as_deref(), now_secs)?;
    ctx.uploads.abort(&asked.input_file, &asked.upload_id).await.map_err(failure)?;
    tracing::info!(input_file = %asked.input_file, "multipart upload aborted");
    Ok(Answer::raw(204, None))
}
