//! OIDC access tokens checked against the issuer's JWKS (jsonwebtoken + reqwest): the
//! WebSocket `$connect` authorizer and the local stack's stand-in for HTTP API's JWT authorizer.
//!
//! The JWKS is found through `{OIDC_ISSUER}/.well-known/openid-configuration` (`jwks_uri`), as
//! API Gateway finds it, and cached: read again when a token names a `kid` the cache does not
//! hold (key rotation), at most once per `min_refresh`, and when the cache is an hour old (keys
//! withdrawn). Accepted: asymmetric algorithms only (RS*, PS*, ES*, EdDSA; never `none` or HMAC),
//! a `kid`, `iss` equal to `OIDC_ISSUER`, `aud` (or, without one, `client_id`) equal to
//! `OIDC_AUDIENCE`, `exp` in the future and `nbf` past, with a minute of clock skew.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::OidcConfig;
use crate::domain::identity::{IdentityError, Verified};
use crate::ports::IdentityVerifier;

/// A cached key set older than this is read again before use.
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(3600);
/// Default shortest time between two reads of the key set caused by unknown `kid`s, so random
/// `kid`s cannot make every connection hit the issuer.
pub const DEFAULT_MIN_REFRESH: Duration = Duration::from_secs(30);

const ACCEPTED: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

#[derive(Default)]
struct Cache {
    jwks_uri: Option<String>,
    keys: HashMap<String, Jwk>,
    fetched_at: Option<Instant>,
    fetches: u64,
}

pub struct OidcVerifier {
    config: OidcConfig,
    /// Built at the first read of the issuer's keys, not at init: loading the trust store costs
    /// a cold start more than a millisecond, and upload-api checks a bearer only on renewals.
    http: std::sync::OnceLock<reqwest::Client>,
    min_refresh: Duration,
    cache: tokio::sync::Mutex<Cache>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl OidcVerifier {
    pub fn new(config: OidcConfig) -> Self {
        Self::with_min_refresh(config, DEFAULT_MIN_REFRESH)
    }

    pub fn with_min_refresh(config: OidcConfig, min_refresh: Duration) -> Self {
        Self { config, http: std::sync::OnceLock::new(), min_refresh, cache: tokio::sync::Mutex::new(Cache::default()) }
    }

    /// How many times the key set was read (tests and logs).
    pub async fn fetches(&self) -> u64 {
        self.cache.lock().await.fetches
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, IdentityError> {
        let unavailable = |e: String| IdentityError::KeysUnavailable(format!("{url}: {e}"));
        let http = self
            .http
            .get_or_init(|| reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap_or_default());
        let response = http.get(url).send().await.map_err(|e| unavailable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(unavailable(format!("HTTP {}", response.status())));
        }
        let bytes = response.bytes().await.map_err(|e| unavailable(e.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| unavailable(e.to_string()))
    }

    async fn refresh(&self, cache: &mut Cache) -> Result<(), IdentityError> {
        let jwks_uri = match &cache.jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                let url = format!("{}/.well-known/openid-configuration", self.config.issuer.trim_end_matches('/'));
                let discovery: Discovery = self.get_json(&url).await?;
                if discovery.issuer != self.config.issuer {
                    return Err(IdentityError::KeysUnavailable(format!(
                        "{url} names issuer {:?}, not OIDC_ISSUER",
                        discovery.issuer
                    )));
                }
                cache.jwks_uri = Some(discovery.jwks_uri.clone());
                discovery.jwks_uri
            }
        };
        cache.fetches += 1;
        cache.fetched_at = Some(Instant::now());
        let set: JwkSet = self.get_json(&jwks_uri).await?;
        cache.keys = set
            .keys
            .into_iter()
            .filter(|k| !matches!(k.common.public_key_use, Some(PublicKeyUse::Encryption)))
            .filter_map(|k| k.common.key_id.clone().map(|kid| (kid, k)))
            .collect();
        tracing::info!(jwks_uri, keys = cache.keys.len(), "OIDC keys read");
        Ok(())
    }

    async fn key(&self, kid: &str) -> Result<Jwk, IdentityError> {
        let mut cache = self.cache.lock().await;
        let age = cache.fetched_at.map(|at| at.elapsed());
        let stale = age.is_none_or(|age| age >= JWKS_MAX_AGE);
        let may_refresh = age.is_none_or(|age| age >= self.min_refresh);
        if (stale || (!cache.keys.contains_key(kid) && may_refresh))
            && let Err(e) = self.refresh(&mut cache).await
        {
            // A key set already read still serves while the issuer is unreachable.
            if cache.keys.is_empty() {
                return Err(e);
            }
            tracing::warn!(error = %e, "OIDC keys not refreshed; using the cached set");
        }
        cache.keys.get(kid).cloned().ok_or_else(|| IdentityError::UnknownKey(kid.to_owned()))
    }

    fn audience_matches(&self, claims: &Map<String, Value>) -> bool {
        match claims.get("aud") {
            Some(Value::String(aud)) => *aud == self.config.audience,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(self.config.audience.as_str())),
            Some(_) => false,
            None => claims.get("client_id").and_then(Value::as_str) == Some(self.config.audience.as_str()),
        }
    }
}

/// The header's `alg` as written, read before jsonwebtoken (which has no name for `none`).
fn header_alg(jwt: &str) -> Result<String, IdentityError> {
    let malformed = |what: &str| IdentityError::Malformed(what.to_owned());
    let header = jwt.split('.').next().ok_or_else(|| malformed("not a JWT"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .map_err(|_| malformed("header is not base64url"))?;
    let header: Value = serde_json::from_slice(&bytes).map_err(|_| malformed("header is not JSON"))?;
    header.get("alg").and_then(Value::as_str).map(str::to_owned).ok_or_else(|| malformed("header names no alg"))
}

#[async_trait]
impl IdentityVerifier for OidcVerifier {
    async fn verify(&self, jwt: &str) -> Result<Verified, IdentityError> {
        if jwt.split('.').count() != 3 {
            return Err(IdentityError::Malformed("a JWT has three dot-separated parts".into()));
        }
        let alg_name = header_alg(jwt)?;
        let header = jsonwebtoken::decode_header(jwt).map_err(|_| IdentityError::Algorithm(alg_name.clone()))?;
        if !ACCEPTED.contains(&header.alg) {
            return Err(IdentityError::Algorithm(alg_name));
        }
        let kid = header.kid.ok_or(IdentityError::NoKeyId)?;
        let jwk = self.key(&kid).await?;
        // A key that names its algorithm serves that one only.
        if let Some(declared) = jwk.common.key_algorithm
            && declared.to_string().parse::<Algorithm>().ok() != Some(header.alg)
        {
            return Err(IdentityError::Algorithm(alg_name));
        }
        let key =
            DecodingKey::from_jwk(&jwk).map_err(|e| IdentityError::KeysUnavailable(format!("key {kid:?}: {e}")))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.validate_aud = false;
        validation.validate_nbf = true;
        let data = jsonwebtoken::decode::<Map<String, Value>>(jwt, &key, &validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => IdentityError::Expired,
            ErrorKind::ImmatureSignature => IdentityError::NotYetValid,
            ErrorKind::InvalidSignature => IdentityError::Signature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => IdentityError::Algorithm(alg_name.clone()),
            ErrorKind::InvalidIssuer => IdentityError::Issuer(
                jsonwebtoken::dangerous::insecure_decode_claims::<Map<String, Value>>(jwt)
                    .ok()
                    .and_then(|c| c.get("iss").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_default(),
            ),
            ErrorKind::MissingRequiredClaim(claim) => IdentityError::Malformed(format!("no {claim} claim")),
            other => IdentityError::Malformed(format!("{other:?}")),
        })?;
        if !self.audience_matches(&data.claims) {
            return Err(IdentityError::Audience);
        }
        Verified::from_claims(&data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A JWT's header, whatever it holds, is read or refused with an error: never a panic,
        /// here or in jsonwebtoken's reading of it.
        #[test]
        fn a_jwt_header_never_panics(header in "\\PC{0,80}", json in "\\PC{0,60}", rest in "[A-Za-z0-9._-]{0,40}") {
            let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.as_bytes());
            for jwt in [format!("{header}.{rest}"), format!("{encoded}.{rest}"), format!("{encoded}.e30.sig")] {
                if let Ok(alg) = header_alg(&jwt) {
                    prop_assert!(jwt.len() >= alg.len());
                }
                let _ = jsonwebtoken::decode_header(&jwt);
            }
        }
    }
}
