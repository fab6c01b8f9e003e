//! Presigned S3 POST uploads (a SigV4 POST policy), signed with the function's own credentials.
//! aws-sdk-s3 presigns single requests only, so the policy is built here and signed with
//! aws-sigv4's signing key and signature functions, as S3's browser-POST documentation
//! describes.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use base64::Engine;
use serde_json::json;

use crate::domain::upload::PostPolicy;
use crate::ports::{PresignedPost, UploadSigner, UploadSignerError};

/// Signs POST policies for one bucket URL with credentials from a provider (Lambda's role).
pub struct S3PostSigner {
    credentials: SharedCredentialsProvider,
    region: String,
    url: String,
}

impl S3PostSigner {
    /// `url`: where browsers POST (`https://{bucket}.s3.{region}.amazonaws.com/`, or the local
    /// stack's `/s3/{bucket}`).
    pub fn new(credentials: SharedCredentialsProvider, region: &str, url: &str) -> Self {
        Self { credentials, region: region.to_owned(), url: url.to_owned() }
    }

    /// Lambda's: the function's region and role credentials, the bucket's virtual-hosted URL.
    #[cfg(feature = "aws")]
    pub fn for_bucket(sdk: &aws_config::SdkConfig, bucket: &str) -> Result<Self, crate::config::ConfigError> {
        use crate::config::ConfigError::Missing;
        let region = sdk.region().map(ToString::to_string).ok_or(Missing("AWS_REGION"))?;
        let credentials = sdk.credentials_provider().ok_or(Missing("AWS_ACCESS_KEY_ID"))?;
        Ok(Self::new(credentials, &region, &Self::bucket_url(bucket, &region)))
    }

    /// The virtual-hosted URL of a bucket.
    pub fn bucket_url(bucket: &str, region: &str) -> String {
        format!("https://{bucket}.s3.{region}.amazonaws.com/")
    }
}

#[async_trait]
impl UploadSigner for S3PostSigner {
    async fn presign(&self, policy: &PostPolicy, now: SystemTime) -> Result<PresignedPost, UploadSignerError> {
        let credentials = self.credentials.provide_credentials().await.map_err(|e| UploadSignerError(Box::new(e)))?;
        let keys = SigningKeys {
            access_key: credentials.access_key_id(),
            secret_key: credentials.secret_access_key(),
            session_token: credentials.session_token(),
            region: &self.region,
        };
        Ok(PresignedPost { url: self.url.clone(), fields: sign_post(policy, &keys, now) })
    }
}

/// What signs a policy.
pub struct SigningKeys<'a> {
    pub access_key: &'a str,
    pub secret_key: &'a str,
    pub session_token: Option<&'a str>,
    pub region: &'a str,
}

/// The form fields of a browser POST for `policy`: `key`, `Content-Type`, the `x-amz-*` signing
/// fields, `policy` (base64) and `x-amz-signature`; the file goes last.
pub fn sign_post(policy: &PostPolicy, keys: &SigningKeys<'_>, now: SystemTime) -> BTreeMap<String, String> {
    let at = chrono::DateTime::<chrono::Utc>::from(now);
    let date = at.format("%Y%m%d").to_string();
    let amz_date = at.format("%Y%m%dT%H%M%SZ").to_string();
    let credential = format!("{}/{date}/{}/s3/aws4_request", keys.access_key, keys.region);
    let expiration =
        chrono::DateTime::<chrono::Utc>::from(SystemTime::UNIX_EPOCH + Duration::from_secs(policy.expires_at))
            .format("%Y-%m-%dT%H:%M:%S.000Z")
            .to_string();
    let mut conditions = vec![
        json!({"bucket": policy.bucket}),
        json!({"key": policy.key}),
        json!({"Content-Type": policy.content_type}),
        json!(["content-length-range", 1, policy.max_bytes]),
        json!({"x-amz-algorithm": "AWS4-HMAC-SHA256"}),
        json!({"x-amz-credential": credential}),
        json!({"x-amz-date": amz_date}),
    ];
    if let Some(token) = keys.session_token {
        conditions.push(json!({"x-amz-security-token": token}));
    }
    let document = json!({"expiration": expiration, "conditions": conditions}).to_string();
    let encoded = base64::engine::general_purpose::STANDARD.encode(document);
    let signing_key = aws_sigv4::sign::v4::generate_signing_key(keys.secret_key, now, keys.region, "s3");
    let signature = aws_sigv4::sign::v4::calculate_signature(signing_key, encoded.as_bytes());
    let mut fields = BTreeMap::from([
        ("key".to_owned(), policy.key.clone()),
        ("Content-Type".to_owned(), policy.content_type.clone()),
        ("x-amz-algorithm".to_owned(), "AWS4-HMAC-SHA256".to_owned()),
        ("x-amz-credential".to_owned(), credential),
        ("x-amz-date".to_owned(), amz_date),
        ("policy".to_owned(), encoded),
        ("x-amz-signature".to_owned(), signature),
    ]);
    if let Some(token) = keys.session_token {
        fields.insert("x-amz-security-token".to_owned(), token.to_owned());
    }
    fields
}
