//! Read tokens: `"{expires_epoch_seconds}.{hex HMAC-SHA256}"` over a scope and the expiry, or,
//! renewed, `"{expires}.{first_expires}.{hex HMAC-SHA256}"` over the scope, the expiry and the
//! expiry of the first token of its chain, so a renewal can tell how long the chain has lived
//! ([`ReadAccess::renew`]).
//!
//! A scope is one input file (`clips/a.mp4`) or a folder: a prefix ending in `/` (`clips/`) that
//! covers every file under it, at any depth. The scope is what is signed, so a token for
//! `clips/a.mp4` says nothing about `clips/b.mp4`, and a file's name never ends in `/`, so a file
//! token is never a folder token. A token is checked against its target and each folder above it.
//!
//! When a secret is configured ([`ReadAccess`]), every read of job data needs one: `subscribe`,
//! `GET /media/status` and `GET /media/job_id`. Whoever grants uploads hands them out (upload-api,
//! the `token` subcommand).

use hmac::{Hmac, Mac};

use super::identity::Subject;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("a \"token\" is required")]
    Missing,
    #[error("\"token\" is malformed")]
    Malformed,
    #[error("\"token\" has expired")]
    Expired,
    #[error("\"token\" does not cover this input_file")]
    Mismatch,
    #[error("the job names no input_file, so no token covers it")]
    NoInputFile,
    #[error(
        "\"token\" cannot be renewed further: a renewed token may not outlive the first token of its chain by more than MAX_TOKEN_TTL_SECONDS"
    )]
    ChainTooLong,
    #[error("the job of this input_file ended over 24 hours ago: its token is not renewed")]
    JobEndedLongAgo,
}

/// A file's token is not renewed once its job has been final this long.
pub const RENEWAL_AFTER_END_SECS: u64 = 24 * 3600;

fn mac(secret: &[u8], scope: &str, expires: u64, first_expires: Option<u64>) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac =
        <HmacSha256 as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(scope.as_bytes());
    mac.update(b"\n");
    mac.update(expires.to_string().as_bytes());
    if let Some(first) = first_expires {
        mac.update(b"\n");
        mac.update(first.to_string().as_bytes());
    }
    mac
}

/// Is `scope` a file or a folder a token can be issued for? (Not empty, not the root `/`.)
pub fn valid_scope(scope: &str) -> bool {
    !scope.is_empty() && scope != "/" && !scope.starts_with('/')
}

/// A token that lets its bearer read `scope` (a file, or every file under a folder ending in `/`)
/// until `expires` (epoch seconds).
pub fn issue(secret: &[u8], scope: &str, expires: u64) -> String {
    format!("{expires}.{}", hex::encode(mac(secret, scope, expires, None).finalize().into_bytes()))
}

/// A renewed token: as [`issue`], carrying the expiry of the first token of its chain.
fn issue_renewed(secret: &[u8], scope: &str, expires: u64, first_expires: u64) -> String {
    let signature = hex::encode(mac(secret, scope, expires, Some(first_expires)).finalize().into_bytes());
    format!("{expires}.{first_expires}.{signature}")
}

/// `target` itself, then every folder above it, nearest first: `a/b/c.mp4` → `a/b/c.mp4`,
/// `a/b/`, `a/`.
fn scopes_covering(target: &str) -> impl Iterator<Item = &str> {
    std::iter::once(target).chain(super::topic::folders_above(target))
}

/// What a token says of itself (before its signature is checked).
struct Parsed {
    expires: u64,
    /// The first token's expiry, on a renewed token.
    first_expires: Option<u64>,
    signature: Vec<u8>,
}

/// Epoch seconds as [`issue`] writes them: decimal digits without a sign or a leading zero.
fn seconds(text: &str) -> Result<u64, TokenError> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if !digits || (text.len() > 1 && text.starts_with('0')) {
        return Err(TokenError::Malformed);
    }
    text.parse().map_err(|_| TokenError::Malformed)
}

/// A token, when it is spelled as [`issue`] (or a renewal) writes it and not expired.
fn parse(token: Option<&str>, now_secs: u64) -> Result<Parsed, TokenError> {
    let token = token.filter(|t| !t.is_empty()).ok_or(TokenError::Missing)?;
    let mut parts = token.split('.');
    let (expires, second, third, rest) = (parts.next(), parts.next(), parts.next(), parts.next());
    let (expires, first_expires, signature) = match (expires, second, third, rest) {
        (Some(expires), Some(signature), None, None) => (expires, None, signature),
        (Some(expires), Some(first), Some(signature), None) => (expires, Some(seconds(first)?), signature),
        _ => return Err(TokenError::Malformed),
    };
    // One spelling only: 64 lowercase hex digits.
    let lower_hex = signature.len() == 64 && signature.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !lower_hex {
        return Err(TokenError::Malformed);
    }
    let expires = seconds(expires)?;
    let signature = hex::decode(signature).map_err(|_| TokenError::Malformed)?;
    if expires < now_secs {
        return Err(TokenError::Expired);
    }
    Ok(Parsed { expires, first_expires, signature })
}

/// Checks, in constant time per candidate, that `token` covers `target` (a file or a folder).
pub fn verify(secret: &[u8], target: &str, token: Option<&str>, now_secs: u64) -> Result<(), TokenError> {
    verified(secret, target, token, now_secs).map(drop)
}

/// [`verify`], answering what the token said of itself.
fn verified(secret: &[u8], target: &str, token: Option<&str>, now_secs: u64) -> Result<Parsed, TokenError> {
    let parsed = parse(token, now_secs)?;
    let signed = |scope: &str| mac(secret, scope, parsed.expires, parsed.first_expires).verify_slice(&parsed.signature);
    if scopes_covering(target).any(|scope| signed(scope).is_ok()) { Ok(parsed) } else { Err(TokenError::Mismatch) }
}

/// Who may read what: with a secret, a token that covers the file; without one, anyone (the
/// seed's behaviour).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ReadAccess {
    secret: Option<Vec<u8>>,
}

impl std::fmt::Debug for ReadAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = if self.secret.is_some() { "[redacted]" } else { "none" };
        f.debug_struct("ReadAccess").field("secret", &format_args!("{secret}")).finish()
    }
}

/// No tokens: everyone reads.
pub static OPEN: ReadAccess = ReadAccess { secret: None };

impl ReadAccess {
    pub fn new(secret: Option<Vec<u8>>) -> Self {
        Self { secret: secret.filter(|s| !s.is_empty()) }
    }

    /// Are tokens required?
    pub fn required(&self) -> bool {
        self.secret.is_some()
    }

    /// May the bearer of `token` read `target` (a file or a folder) at `now_secs`?
    pub fn check(&self, target: &str, token: Option<&str>, now_secs: u64) -> Result<(), TokenError> {
        match &self.secret {
            Some(secret) => verify(secret, target, token, now_secs),
            None => Ok(()),
        }
    }

    /// As [`ReadAccess::check`], for a reader who may be signed in: a signed-in `reader` needs no
    /// token for what lies in their home folder under `home_prefix` (`UPLOAD_PREFIX`).
    pub fn check_as(
        &self,
        reader: Option<&Subject>,
        home_prefix: &str,
        target: &str,
        token: Option<&str>,
        now_secs: u64,
    ) -> Result<(), TokenError> {
        if reader.is_some_and(|reader| reader.owns(home_prefix, target)) {
            return Ok(());
        }
        self.check(target, token, now_secs)
    }

    /// May the bearer of `token` read a job whose input file is `input_file`?
    pub fn check_job(&self, input_file: Option<&str>, token: Option<&str>, now_secs: u64) -> Result<(), TokenError> {
        match (&self.secret, input_file) {
            (None, _) => Ok(()),
            (Some(_), None) => Err(TokenError::NoInputFile),
            (Some(secret), Some(file)) => verify(secret, file, token, now_secs),
        }
    }

    /// The answer to a read of a job that does not exist: with tokens on, the same refusal a
    /// token that does not cover it gets (so a token cannot tell which jobs exist); without
    /// tokens, none (the seed's 422 follows).
    pub fn refuse_unknown(&self, token: Option<&str>, now_secs: u64) -> Result<(), TokenError> {
        match &self.secret {
            None => Ok(()),
            Some(_) => Err(parse(token, now_secs).err().unwrap_or(TokenError::Mismatch)),
        }
    }

    /// A token for `scope`, when tokens are on.
    pub fn issue(&self, scope: &str, expires: u64) -> Option<String> {
        self.secret.as_ref().map(|secret| issue(secret, scope, expires))
    }

    /// A fresh token for `scope` in exchange for `token`, which must cover it: valid `ttl` from
    /// now (never less than `token`), but never past the first token of the chain's expiry plus
    /// `max_ttl`; a token already at that limit is refused ([`TokenError::ChainTooLong`]).
    /// `Ok(None)` when tokens are off.
    pub fn renew(
        &self,
        scope: &str,
        token: Option<&str>,
        now_secs: u64,
        ttl: std::time::Duration,
        max_ttl: std::time::Duration,
    ) -> Result<Option<(String, u64)>, TokenError> {
        let Some(secret) = &self.secret else { return Ok(None) };
        let held = verified(secret, scope, token, now_secs)?;
        let first = held.first_expires.unwrap_or(held.expires);
        let limit = first.saturating_add(max_ttl.as_secs());
        if limit <= held.expires {
            return Err(TokenError::ChainTooLong);
        }
        let expires = (now_secs + ttl.as_secs()).min(limit).max(held.expires);
        Ok(Some((issue_renewed(secret, scope, expires, first), expires)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_only_for_their_file_and_time() {
        let token = issue(b"s3cret", "a.mp4", 2_000);
        assert_eq!(verify(b"s3cret", "a.mp4", Some(&token), 1_999), Ok(()));
        assert_eq!(verify(b"s3cret", "b.mp4", Some(&token), 1_999), Err(TokenError::Mismatch));
        assert_eq!(verify(b"other", "a.mp4", Some(&token), 1_999), Err(TokenError::Mismatch));
        assert_eq!(verify(b"s3cret", "a.mp4", Some(&token), 2_001), Err(TokenError::Expired));
        assert_eq!(verify(b"s3cret", "a.mp4", None, 0), Err(TokenError::Missing));
        assert_eq!(verify(b"s3cret", "a.mp4", Some(""), 0), Err(TokenError::Missing));
        assert_eq!(verify(b"s3cret", "a.mp4", Some("nope"), 0), Err(TokenError::Malformed));
        // The same vector infra/smoke_test.py computes with Python's hmac.
        assert_eq!(issue(b"k", "a.mp4", 100), "100.a9485534cf56085423056b030db5b1f8e7b5b5b68679d1498d16f6a226a03453");
        let forged = format!("3000.{}", token.split_once('.').unwrap().1);
        assert_eq!(verify(b"s3cret", "a.mp4", Some(&forged), 0), Err(TokenError::Mismatch));
    }

    #[test]
    fn an_unknown_job_is_refused_as_a_job_the_token_does_not_cover() {
        let access = ReadAccess::new(Some(b"k".to_vec()));
        let other = issue(b"k", "b.mp4", 100);
        let known = access.check_job(Some("a.mp4"), Some(&other), 0).unwrap_err();
        assert_eq!(access.refuse_unknown(Some(&other), 0), Err(known));
        assert_eq!(access.refuse_unknown(None, 0), Err(TokenError::Missing));
        assert_eq!(access.refuse_unknown(Some("nope"), 0), Err(TokenError::Malformed));
        assert_eq!(access.refuse_unknown(Some(&other), 101), Err(TokenError::Expired));
        assert_eq!(OPEN.refuse_unknown(None, 0), Ok(()));
    }

    #[test]
    fn a_token_has_one_spelling_and_the_secret_never_shows() {
        let token = issue(b"k", "a.mp4", 100);
        let (expires, signature) = token.split_once('.').unwrap();
        assert_eq!(verify(b"k", "a.mp4", Some(&token), 0), Ok(()));
        for variant in [
            format!("+{expires}.{signature}"),
            format!("0{expires}.{signature}"),
            format!("{expires}.{}", signature.to_uppercase()),
            format!("{expires}.{signature}00"),
            format!(" {expires}.{signature}"),
        ] {
            assert_eq!(verify(b"k", "a.mp4", Some(&variant), 0), Err(TokenError::Malformed), "{variant}");
        }
        let access = ReadAccess::new(Some(b"hunter2-hunter2-hunter2".to_vec()));
        assert!(!format!("{access:?}").contains("hunter2"), "{access:?}");
        assert!(!format!("{:?}", ReadAccess::new(Some(vec![0x68; 20]))).contains("104"));
    }

    #[test]
    fn a_folder_token_covers_everything_under_it_and_nothing_else() {
        let token = issue(b"k", "users/u1/", 100);
        for covered in ["users/u1/a.mp4", "users/u1/deep/er/b.mov", "users/u1/", "users/u1/sub/"] {
            assert_eq!(verify(b"k", covered, Some(&token), 0), Ok(()), "{covered}");
        }
        for foreign in ["users/u10/a.mp4", "users/u1", "users/a.mp4", "a.mp4", "users/"] {
            assert_eq!(verify(b"k", foreign, Some(&token), 0), Err(TokenError::Mismatch), "{foreign}");
        }
        let file = issue(b"k", "users/u1/a.mp4", 100);
        assert_eq!(
            verify(b"k", "users/u1/a.mp4/", Some(&file), 0),
            Err(TokenError::Mismatch),
            "a file token is no folder token"
        );
        assert_eq!(scopes_covering("a/b/c.mp4").collect::<Vec<_>>(), ["a/b/c.mp4", "a/b/", "a/"]);
    }

    #[test]
    fn a_renewed_token_reads_like_the_first_and_its_chain_is_bounded() {
        use std::time::Duration;
        let access = ReadAccess::new(Some(b"k".to_vec()));
        let (ttl, max) = (Duration::from_secs(100), Duration::from_secs(250));
        let first = issue(b"k", "a/b.mp4", 100);
        // GIVEN a renewal at 90 s: valid 100 s from then, for the same file only
        let (renewed, expires) = access.renew("a/b.mp4", Some(&first), 90, ttl, max).unwrap().unwrap();
        assert_eq!(expires, 190);
        assert_eq!(access.check("a/b.mp4", Some(&renewed), 180), Ok(()));
        assert_eq!(access.check("a/c.mp4", Some(&renewed), 180), Err(TokenError::Mismatch));
        assert_eq!(access.check("a/b.mp4", Some(&renewed), 191), Err(TokenError::Expired));
        // WHEN the chain is renewed again and again
        let (renewed, expires) = access.renew("a/b.mp4", Some(&renewed), 180, ttl, max).unwrap().unwrap();
        assert_eq!(expires, 280);
        let (renewed, expires) = access.renew("a/b.mp4", Some(&renewed), 270, ttl, max).unwrap().unwrap();
        // THEN it never outlives the first token (100) by more than the maximum (250)
        assert_eq!(expires, 350);
        assert_eq!(access.renew("a/b.mp4", Some(&renewed), 340, ttl, max), Err(TokenError::ChainTooLong));
        // AND its first expiry is signed: raising it breaks the signature
        let (_, rest) = renewed.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let forged = format!("350.9999.{signature}");
        assert_eq!(access.check("a/b.mp4", Some(&forged), 300), Err(TokenError::Mismatch));
        // AND a folder token renews a file under it, never a wider scope
        let folder = issue(b"k", "a/", 100);
        assert!(access.renew("a/b.mp4", Some(&folder), 50, ttl, max).is_ok());
        assert_eq!(access.renew("b/", Some(&first), 50, ttl, max), Err(TokenError::Mismatch));
        assert_eq!(access.renew("a/b.mp4", Some(&first), 101, ttl, max), Err(TokenError::Expired));
        assert_eq!(access.renew("a/b.mp4", Some("1.2.3.4"), 0, ttl, max), Err(TokenError::Malformed));
        assert_eq!(OPEN.renew("a/b.mp4", None, 0, ttl, max), Ok(None));
    }

    #[test]
    fn without_a_secret_everyone_reads() {
        let open = ReadAccess::new(None);
        assert_eq!(open.check("a.mp4", None, 0), Ok(()));
        assert_eq!(open.check_job(None, None, 0), Ok(()));
        let closed = ReadAccess::new(Some(b"k".to_vec()));
        assert_eq!(closed.check_job(None, Some("1.ab"), 0), Err(TokenError::NoInputFile));
        assert_eq!(closed.check("a.mp4", closed.issue("a.mp4", 10).as_deref(), 0), Ok(()));
        assert!(!ReadAccess::new(Some(Vec::new())).required(), "an empty secret is no secret");
    }

    #[test]
    fn a_signed_in_reader_needs_no_token_at_home_only() {
        let closed = ReadAccess::new(Some(b"k".to_vec()));
        let alice = Subject::parse("alice").unwrap();
        assert_eq!(closed.check_as(Some(&alice), "uploads/", "uploads/alice/1/a.mp4", None, 0), Ok(()));
        assert_eq!(closed.check_as(Some(&alice), "uploads/", "uploads/bob/1/a.mp4", None, 0), Err(TokenError::Missing));
        assert_eq!(closed.check_as(None, "uploads/", "uploads/alice/1/a.mp4", None, 0), Err(TokenError::Missing));
        let token = closed.issue("uploads/bob/1/a.mp4", 10);
        assert_eq!(closed.check_as(Some(&alice), "uploads/", "uploads/bob/1/a.mp4", token.as_deref(), 0), Ok(()));
    }
}
