//! Signed-in users (optional OIDC): who they are and which files are theirs.
//!
//! With `OIDC_ISSUER` and `OIDC_AUDIENCE` set, upload-api requires a verified JWT and files a
//! user's uploads under their home folder, `UPLOAD_PREFIX{sub}/`. A WebSocket connection opened
//! with `?access_token=JWT` is bound to its `sub`, and may subscribe to anything in that folder
//! without a read token (anything else still needs one). The JWT itself is checked by API
//! Gateway's JWT authorizer on AWS, or by `adapters::oidc` (WebSocket authorizer, local stack);
//! this module only holds the rules on the verified subject.

use std::collections::BTreeMap;

use serde_json::Value;

/// Why an identity was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("sign-in required: send a valid OIDC access token")]
    Missing,
    #[error("the token's sub claim {0:?} cannot name a folder (1-128 of A-Z a-z 0-9 . _ - @ | + = :)")]
    UnusableSubject(String),
    #[error("the token is malformed: {0}")]
    Malformed(String),
    #[error("the token's algorithm {0} is not accepted (RS*, PS*, ES*, EdDSA only)")]
    Algorithm(String),
    #[error("the token's header names no kid")]
    NoKeyId,
    #[error("the token's key {0:?} is not in the issuer's JWKS")]
    UnknownKey(String),
    #[error("the token's signature is invalid")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by {0:?}, not the configured OIDC_ISSUER")]
    Issuer(String),
    #[error("the token is not for this audience (aud / client_id must be OIDC_AUDIENCE)")]
    Audience,
    #[error("the issuer's keys could not be read: {0}")]
    KeysUnavailable(String),
}

impl IdentityError {
    /// Did the caller send something wrong (as opposed to the issuer being unreachable)?
    pub fn is_client_error(&self) -> bool {
        !matches!(self, Self::KeysUnavailable(_))
    }
}

/// The verified `sub` of a signed-in user, usable as one folder name of an S3 key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Subject(String);

impl Subject {
    /// Accepts what identity providers use as subjects (UUIDs, `auth0|abc`, `user@example.com`)
    /// and refuses anything that could leave or fake a folder (`/`, `..`, control characters).
    pub fn parse(sub: &str) -> Result<Self, IdentityError> {
        let usable = (1..=128).contains(&sub.len())
            && sub.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-@|+=:".contains(&b))
            && sub.bytes().any(|b| b.is_ascii_alphanumeric());
        if usable {
            Ok(Self(sub.to_owned()))
        } else {
            Err(IdentityError::UnusableSubject(sub.chars().take(140).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The user's home folder: `{upload_prefix}{sub}/`.
    pub fn home(&self, upload_prefix: &str) -> String {
        format!("{upload_prefix}{}/", self.0)
    }

    /// Is `target` (a file or a folder) in the user's home folder?
    pub fn owns(&self, upload_prefix: &str, target: &str) -> bool {
        target
            .strip_prefix(upload_prefix)
            .and_then(|rest| rest.strip_prefix(self.0.as_str()))
            .is_some_and(|rest| rest.starts_with('/'))
    }
}

/// A verified token: its subject, and every claim as a string, the way API Gateway's JWT
/// authorizer hands them to the integration (`requestContext.authorizer.jwt.claims`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub subject: Subject,
    pub claims: BTreeMap<String, String>,
}

impl Verified {
    /// Reads a verified payload's claims; `sub` must name a folder.
    pub fn from_claims(claims: &serde_json::Map<String, Value>) -> Result<Self, IdentityError> {
        let sub = claims
            .get(SUB_CLAIM)
            .and_then(Value::as_str)
            .ok_or_else(|| IdentityError::Malformed("no sub claim".into()))?;
        let subject = Subject::parse(sub)?;
        let claims = claims.iter().map(|(name, value)| (name.clone(), claim_string(value))).collect();
        Ok(Self { subject, claims })
    }
}

/// A claim as API Gateway's JWT authorizer renders it: strings as they are, arrays as
/// `[a b]`, anything else as JSON.
fn claim_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!("[{}]", items.iter().map(claim_string).collect::<Vec<_>>().join(" ")),
        other => other.to_string(),
    }
}

/// The name under which the subject travels in authorizer contexts (WebSocket `requestContext.
/// authorizer.sub`, HTTP API `requestContext.authorizer.jwt.claims.sub`).
pub const SUB_CLAIM: &str = "sub";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_name_one_folder_and_nothing_else() {
        for good in ["0b5e6a10-1c9f-4f7e-9a42-3c1f0e2f7d11", "auth0|6543", "user@example.com", "google-oauth2|1", "a"] {
            assert_eq!(Subject::parse(good).map(|s| s.as_str().to_owned()), Ok(good.to_owned()));
        }
        for bad in ["", "..", ".", "a/b", "../x", "a b", "tab\t", "é", &"x".repeat(129), "--", "|"] {
            assert!(Subject::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_user_owns_exactly_their_home_folder() {
        let alice = Subject::parse("alice").unwrap();
        assert_eq!(alice.home("uploads/"), "uploads/alice/");
        for mine in ["uploads/alice/x/clip.mp4", "uploads/alice/", "uploads/alice/a/b/c.mov"] {
            assert!(alice.owns("uploads/", mine), "{mine}");
        }
        for theirs in
            ["uploads/alice2/x.mp4", "uploads/alice", "uploads/bob/alice/x.mp4", "alice/x.mp4", "other/alice/x.mp4"]
        {
            assert!(!alice.owns("uploads/", theirs), "{theirs}");
        }
        assert!(alice.owns("", "alice/x.mp4"), "an empty UPLOAD_PREFIX puts homes at the root");
    }
}
