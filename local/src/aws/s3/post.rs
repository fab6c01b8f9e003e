//! The simulated S3's check of a browser POST upload, as S3 makes it: the `x-amz-*` signature
//! over the base64 policy (SigV4, the local credentials), the policy's expiry, every condition,
//! and no form field the policy does not cover. The size condition is enforced while the file
//! streams in (the bucket's POST route).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use base64::Engine;
use serde_json::Value;

/// The access key and secret the simulated S3 accepts on presigned POSTs (upload-api signs
/// with them locally; on AWS it signs with its role's credentials).
pub const LOCAL_ACCESS_KEY: &str = "LOCALACCESSKEY";
pub const LOCAL_SECRET_KEY: &str = "local-secret-key";

/// upload-api's signer for the local stack at `base`: POSTs go to `{base}/s3/{bucket}`.
pub fn local_post_signer(base: &str, bucket: &str, region: &str) -> mcpush_core::adapters::s3_post::S3PostSigner {
    let credentials =
        aws_credential_types::Credentials::new(LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY, None, None, "local-s3");
    let provider = aws_credential_types::provider::SharedCredentialsProvider::new(credentials);
    mcpush_core::adapters::s3_post::S3PostSigner::new(provider, region, &format!("{base}/s3/{bucket}"))
}

/// upload-api's multipart uploads for the local stack at `base`: the real S3 client, path-style
/// on `{base}/s3/`, with the local credentials.
pub fn local_multipart(base: &str, bucket: &str, region: &str) -> mcpush_core::adapters::s3_multipart::S3Multipart {
    use aws_sdk_s3::config::{
        BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    };
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(Credentials::new(LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY, None, None, "local-s3"))
        // (a trailing slash: the SDK appends `{bucket}/{key}` to the endpoint's path as it is)
        .endpoint_url(format!("{base}/s3/"))
        .force_path_style(true)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .build();
    mcpush_core::adapters::s3_multipart::S3Multipart::new(aws_sdk_s3::Client::from_conf(config), bucket)
}

/// S3's refusal: HTTP status, error code and message.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

fn denied(message: impl Into<String>) -> Refusal {
    Refusal { status: 403, code: "AccessDenied", message: message.into() }
}

/// The size range the policy allows (`content-length-range`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeRange {
    pub min: u64,
    pub max: u64,
}

/// Checks the form fields (names lower-cased) that came before the file against `bucket` at
/// `now`; the size range the file must fall in when they pass.
pub fn check(fields: &BTreeMap<String, String>, bucket: &str, now: SystemTime) -> Result<SizeRange, Refusal> {
    let field = |name: &str| fields.get(name).map(String::as_str);
    let policy = field("policy").ok_or_else(|| denied("Bucket POST must contain a field named 'policy'."))?;
    let signature =
        field("x-amz-signature").ok_or_else(|| denied("Bucket POST must contain a field named 'x-amz-signature'."))?;
    if field("x-amz-algorithm") != Some("AWS4-HMAC-SHA256") {
        return Err(Refusal {
            status: 400,
            code: "InvalidArgument",
            message: "x-amz-algorithm must be AWS4-HMAC-SHA256".into(),
        });
    }
    let credential = field("x-amz-credential").unwrap_or_default();
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key, _date, region, "s3", "aws4_request"] = parts[..] else {
        return Err(Refusal {
            status: 400,
            code: "InvalidArgument",
            message: format!("x-amz-credential {credential:?} is malformed"),
        });
    };
    if access_key != LOCAL_ACCESS_KEY {
        return Err(Refusal {
            status: 403,
            code: "InvalidAccessKeyId",
            message: "The AWS Access Key Id you provided does not exist in our records.".into(),
        });
    }
    let signed_at = field("x-amz-date")
        .and_then(|d| chrono::NaiveDateTime::parse_from_str(d, "%Y%m%dT%H%M%SZ").ok())
        .map(|d| SystemTime::UNIX_EPOCH + Duration::from_secs(d.and_utc().timestamp().max(0) as u64))
        .ok_or_else(|| Refusal {
            status: 400,
            code: "InvalidArgument",
            message: "x-amz-date is not YYYYMMDDTHHMMSSZ".into(),
        })?;
    let key = aws_sigv4::sign::v4::generate_signing_key(LOCAL_SECRET_KEY, signed_at, region, "s3");
    if aws_sigv4::sign::v4::calculate_signature(key, policy.as_bytes()) != signature {
        return Err(Refusal {
            status: 403,
            code: "SignatureDoesNotMatch",
            message: "The request signature we calculated does not match the signature you provided.".into(),
        });
    }

    let document: Value = base64::engine::general_purpose::STANDARD
        .decode(policy)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| Refusal {
            status: 400,
            code: "InvalidPolicyDocument",
            message: "Invalid Policy: Invalid JSON.".into(),
        })?;
    let expiration = document["expiration"]
        .as_str()
        .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
        .ok_or_else(|| Refusal {
            status: 400,
            code: "InvalidPolicyDocument",
            message: "Invalid Policy: Invalid 'expiration' value.".into(),
        })?;
    if chrono::DateTime::<chrono::Utc>::from(now) > expiration {
        return Err(denied("Invalid according to Policy: Policy expired."));
    }
    let mut covered = vec!["policy".to_owned(), "x-amz-signature".to_owned(), "file".to_owned()];
    let mut range = SizeRange { min: 0, max: u64::MAX };
    let value_of = |name: &str| if name == "bucket" { Some(bucket) } else { field(name) };
    for condition in document["conditions"].as_array().into_iter().flatten() {
        let failed = || denied(format!("Invalid according to Policy: Policy Condition failed: {condition}"));
        match condition {
            Value::Object(pairs) => {
                for (name, expected) in pairs {
                    let name = name.to_ascii_lowercase();
                    if value_of(&name) != expected.as_str() {
                        return Err(failed());
                    }
                    covered.push(name);
                }
            }
            Value::Array(items) => match items.as_slice() {
                [Value::String(op), Value::String(name), Value::String(expected)]
                    if op == "eq" || op == "starts-with" =>
                {
                    let name = name.trim_start_matches('$').to_ascii_lowercase();
                    let actual = value_of(&name).unwrap_or_default();
                    let ok = if op == "eq" { actual == expected } else { actual.starts_with(expected.as_str()) };
                    if !ok {
                        return Err(failed());
                    }
                    covered.push(name);
                }
                [Value::String(op), min, max] if op == "content-length-range" => {
                    range = SizeRange { min: min.as_u64().ok_or_else(failed)?, max: max.as_u64().ok_or_else(failed)? };
                }
                _ => {
                    return Err(Refusal {
                        status: 400,
                        code: "InvalidPolicyDocument",
                        message: format!("Invalid Policy: Invalid condition {condition}"),
                    });
                }
            },
            _ => {
                return Err(Refusal {
                    status: 400,
                    code: "InvalidPolicyDocument",
                    message: format!("Invalid Policy: Invalid condition {condition}"),
                });
            }
        }
    }
    if let Some(extra) = fields.keys().find(|name| !name.starts_with("x-ignore-") && !covered.contains(name)) {
        return Err(denied(format!("Invalid according to Policy: Extra input fields: {extra}")));
    }
    Ok(range)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpush_core::adapters::s3_post::{SigningKeys, sign_post};
    use mcpush_core::domain::upload::PostPolicy;

    fn signed(expires_at: u64, now: SystemTime) -> BTreeMap<String, String> {
        let policy = PostPolicy {
            bucket: "uploads".into(),
            key: "uploads/id/a.mp4".into(),
            content_type: "video/mp4".into(),
            max_bytes: 10,
            expires_at,
            multipart: false,
        };
        let keys = SigningKeys {
            access_key: LOCAL_ACCESS_KEY,
            secret_key: LOCAL_SECRET_KEY,
            session_token: None,
            region: "us-east-1",
        };
        sign_post(&policy, &keys, now).into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect()
    }

    #[test]
    fn a_signed_policy_passes_and_every_change_is_refused_with_s3s_code() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let fields = signed(1_800_000_600, now);
        assert_eq!(check(&fields, "uploads", now), Ok(SizeRange { min: 1, max: 10 }));
        let refused = |change: &dyn Fn(&mut BTreeMap<String, String>), bucket: &str, at: SystemTime| {
            let mut fields = fields.clone();
            change(&mut fields);
            check(&fields, bucket, at).unwrap_err().code
        };
        let later = now + Duration::from_secs(601);
        assert_eq!(refused(&|_| {}, "uploads", later), "AccessDenied", "expired");
        assert_eq!(
            refused(
                &|f| {
                    f.insert("key".into(), "uploads/other.mp4".into());
                },
                "uploads",
                now
            ),
            "AccessDenied"
        );
        assert_eq!(
            refused(
                &|f| {
                    f.insert("content-type".into(), "text/html".into());
                },
                "uploads",
                now
            ),
            "AccessDenied"
        );
        assert_eq!(refused(&|_| {}, "other-bucket", now), "AccessDenied");
        assert_eq!(
            refused(
                &|f| {
                    f.insert("acl".into(), "public-read".into());
                },
                "uploads",
                now
            ),
            "AccessDenied"
        );
        assert_eq!(
            refused(
                &|f| {
                    f.insert("x-amz-signature".into(), "00".into());
                },
                "uploads",
                now
            ),
            "SignatureDoesNotMatch"
        );
        assert_eq!(
            refused(
                &|f| {
                    f.remove("policy");
                },
                "uploads",
                now
            ),
            "AccessDenied"
        );
        let tampered = |f: &mut BTreeMap<String, String>| {
            let policy =
                String::from_utf8(base64::engine::general_purpose::STANDARD.decode(&f["policy"]).unwrap()).unwrap();
            f.insert(
                "policy".into(),
                base64::engine::general_purpose::STANDARD.encode(policy.replace("10]", "99999]")),
            );
        };
        assert_eq!(refused(&tampered, "uploads", now), "SignatureDoesNotMatch");
    }
}
