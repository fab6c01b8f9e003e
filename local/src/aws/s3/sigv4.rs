//! S3's check of a SigV4-signed request, header (`Authorization`) or presigned (`X-Amz-*` query)
//! form: the canonical request rebuilt from what arrived, signed again with the local stack's
//! secret, compared; a presigned request also must not have expired.

use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, Method, Uri};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};

use super::post::{LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY, Refusal};

/// SigV4's URI encoding: everything but `A-Za-z0-9-_.~`.
const SIGV4: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
/// The longest a presigned URL may live (7 days).
const MAX_EXPIRES_SECS: u64 = 604_800;

fn refused(status: u16, code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal { status, code, message: message.into() }
}

fn mismatch() -> Refusal {
    refused(
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
    )
}

/// What the request says about its signature.
struct Claimed {
    access_key: String,
    date: String,
    region: String,
    signed_headers: Vec<String>,
    signature: String,
    amz_date: String,
    payload: String,
    /// Presigned: `X-Amz-Expires` seconds.
    expires: Option<u64>,
}

fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    let decode = |s: &str| percent_decode_str(&s.replace('+', "%20")).decode_utf8_lossy().into_owned();
    uri.query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn claimed(headers: &HeaderMap, query: &[(String, String)]) -> Result<Claimed, Refusal> {
    let q = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (credential, signed, signature, amz_date, payload, expires) = if let Some(signature) = q("X-Amz-Signature") {
        if q("X-Amz-Algorithm").as_deref() != Some("AWS4-HMAC-SHA256") {
            return Err(refused(
                400,
                "AuthorizationQueryParametersError",
                "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"",
            ));
        }
        let expires =
            q("X-Amz-Expires").and_then(|e| e.parse::<u64>().ok()).filter(|e| (1..=MAX_EXPIRES_SECS).contains(e));
        let Some(expires) = expires else {
            return Err(refused(
                400,
                "AuthorizationQueryParametersError",
                "X-Amz-Expires must be a number of seconds from 1 to 604800",
            ));
        };
        let credential = q("X-Amz-Credential").unwrap_or_default();
        let signed = q("X-Amz-SignedHeaders").unwrap_or_default();
        (
            credential,
            signed,
            signature,
            q("X-Amz-Date").unwrap_or_default(),
            "UNSIGNED-PAYLOAD".to_owned(),
            Some(expires),
        )
    } else if let Some(auth) = header("authorization") {
        let rest = auth
            .strip_prefix("AWS4-HMAC-SHA256 ")
            .ok_or_else(|| refused(400, "InvalidArgument", "Unsupported Authorization Type"))?;
        let field = |name: &str| {
            rest.split(',').map(str::trim).find_map(|p| p.strip_prefix(name)).map(str::to_owned).unwrap_or_default()
        };
        let payload = header("x-amz-content-sha256").ok_or_else(|| {
            refused(400, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
        })?;
        (
            field("Credential="),
            field("SignedHeaders="),
            field("Signature="),
            header("x-amz-date").unwrap_or_default(),
            payload,
            None,
        )
    } else {
        return Err(refused(403, "AccessDenied", "Access Denied: the request is not signed"));
    };
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key, date, region, "s3", "aws4_request"] = parts[..] else {
        return Err(refused(
            400,
            "AuthorizationHeaderMalformed",
            format!("the credential {credential:?} is malformed"),
        ));
    };
    Ok(Claimed {
        access_key: access_key.to_owned(),
        date: date.to_owned(),
        region: region.to_owned(),
        signed_headers: signed.split(';').filter(|h| !h.is_empty()).map(str::to_ascii_lowercase).collect(),
        signature,
        amz_date,
        payload,
        expires,
    })
}

/// Checks the request's signature at `now`; `Ok` when S3 would take it.
pub fn check(method: &Method, uri: &Uri, headers: &HeaderMap, now: SystemTime) -> Result<(), Refusal> {
    let query = query_pairs(uri);
    let claim = claimed(headers, &query)?;
    if claim.access_key != LOCAL_ACCESS_KEY {
        return Err(refused(
            403,
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
        ));
    }
    let signed_at = chrono::NaiveDateTime::parse_from_str(&claim.amz_date, "%Y%m%dT%H%M%SZ")
        .map(|d| SystemTime::UNIX_EPOCH + Duration::from_secs(d.and_utc().timestamp().max(0) as u64))
        .map_err(|_| refused(400, "InvalidArgument", "X-Amz-Date is not YYYYMMDDTHHMMSSZ"))?;
    if !claim.amz_date.starts_with(&claim.date) {
        return Err(mismatch());
    }
    if let Some(expires) = claim.expires
        && now > signed_at + Duration::from_secs(expires)
    {
        return Err(refused(403, "AccessDenied", "Request has expired"));
    }
    if !claim.signed_headers.iter().any(|h| h == "host") {
        return Err(mismatch());
    }
    let mut canonical_query: Vec<(String, String)> = query
        .iter()
        .filter(|(k, _)| k != "X-Amz-Signature")
        .map(|(k, v)| (utf8_percent_encode(k, SIGV4).to_string(), utf8_percent_encode(v, SIGV4).to_string()))
        .collect();
    canonical_query.sort();
    let canonical_query: Vec<String> = canonical_query.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut canonical_headers = String::new();
    for name in &claim.signed_headers {
        let values: Vec<String> = headers
            .get_all(name.as_str())
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let canonical = format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{}\n{}",
        uri.path(),
        canonical_query.join("&"),
        claim.signed_headers.join(";"),
        claim.payload
    );
    let scope = format!("{}/{}/s3/aws4_request", claim.date, claim.region);
    let to_sign = format!("AWS4-HMAC-SHA256\n{}\n{scope}\n{}", claim.amz_date, hex::encode(Sha256::digest(canonical)));
    let key = aws_sigv4::sign::v4::generate_signing_key(LOCAL_SECRET_KEY, signed_at, &claim.region, "s3");
    if aws_sigv4::sign::v4::calculate_signature(key, to_sign.as_bytes()) == claim.signature {
        Ok(())
    } else {
        Err(mismatch())
    }
}
