//! An OIDC issuer for tests: RSA keys generated per run, a discovery document and JWKS served on
//! 127.0.0.1, and tokens signed with them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcpush_core::config::OidcConfig;
use serde_json::{Value, json};

pub const AUDIENCE: &str = "mcpush-web";

/// A signing key and its public JWK.
pub struct Key {
    pub kid: String,
    pub encoding: EncodingKey,
    pub jwk: Jwk,
}

impl Key {
    pub fn generate(kid: &str) -> Self {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA key");
        let encoding = EncodingKey::from_rsa_pem(pair.serialize_pem().as_bytes()).expect("PEM");
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256).expect("JWK");
        jwk.common.key_id = Some(kid.to_owned());
        Self { kid: kid.to_owned(), encoding, jwk }
    }

    /// The same key pair under another `kid`.
    pub fn renamed(&self, kid: &str) -> Self {
        Self { kid: kid.to_owned(), encoding: self.encoding.clone(), jwk: self.jwk.clone() }
    }
}

/// An OIDC issuer on loopback: `/.well-known/openid-configuration` and `/jwks.json`.
pub struct Issuer {
    pub url: String,
    pub keys: Arc<Mutex<Vec<Jwk>>>,
    pub jwks_reads: Arc<AtomicU64>,
}

impl Issuer {
    pub async fn start(keys: &[&Key]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let keys = Arc::new(Mutex::new(keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()));
        let jwks_reads = Arc::new(AtomicU64::new(0));
        let discovery = json!({"issuer": url, "jwks_uri": format!("{url}/jwks.json")});
        let (served, reads) = (keys.clone(), jwks_reads.clone());
        let router = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || async move { axum::Json(discovery) }),
            )
            .route(
                "/jwks.json",
                axum::routing::get(move || async move {
                    reads.fetch_add(1, Ordering::SeqCst);
                    axum::Json(JwkSet { keys: served.lock().unwrap().clone() })
                }),
            );
        tokio::spawn(axum::serve(listener, router).into_future());
        Self { url, keys, jwks_reads }
    }

    pub fn config(&self) -> OidcConfig {
        OidcConfig::new(&self.url, AUDIENCE).unwrap()
    }

    /// A token for `sub` signed by `key` with the usual claims (`iss`, `aud`, `iat`, `exp` in 10 min).
    pub fn token(&self, key: &Key, sub: &str) -> String {
        token(&self.url, key, sub, |_| {})
    }
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A token signed by `key` with the usual claims, then `edit`ed.
pub fn token(issuer: &str, key: &Key, sub: &str, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let mut claims = json!({"iss": issuer, "aud": AUDIENCE, "sub": sub, "iat": now(), "exp": now() + 600})
        .as_object()
        .unwrap()
        .clone();
    edit(&mut claims);
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap()
}
