//! Optional subscribe tokens (`SUBSCRIBE_SECRET`): `"{expires_epoch_seconds}.{hex HMAC-SHA256}"`
//! over the input file and the expiry. Whoever hands out upload URLs hands out tokens with
//! [`issue`], so only the uploader can watch a job (a COMPLETE message names its output folder).

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("a \"token\" is required to subscribe")]
    Missing,
    #[error("\"token\" is malformed")]
    Malformed,
    #[error("\"token\" has expired")]
    Expired,
    #[error("\"token\" does not match this input_file")]
    Mismatch,
}

fn mac(secret: &[u8], input_file: &str, expires: u64) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(input_file.as_bytes());
    mac.update(b"\n");
    mac.update(expires.to_string().as_bytes());
    mac
}

/// A token that lets its bearer subscribe to `input_file` until `expires` (epoch seconds).
pub fn issue(secret: &[u8], input_file: &str, expires: u64) -> String {
    format!("{expires}.{}", hex::encode(mac(secret, input_file, expires).finalize().into_bytes()))
}

/// Checks a token in constant time.
pub fn verify(secret: &[u8], input_file: &str, token: Option<&str>, now_secs: u64) -> Result<(), TokenError> {
    let token = token.ok_or(TokenError::Missing)?;
    let (expires, signature) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let expires: u64 = expires.parse().map_err(|_| TokenError::Malformed)?;
    let signature = hex::decode(signature).map_err(|_| TokenError::Malformed)?;
    if expires < now_secs {
        return Err(TokenError::Expired);
    }
    mac(secret, input_file, expires).verify_slice(&signature).map_err(|_| TokenError::Mismatch)
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
        assert_eq!(verify(b"s3cret", "a.mp4", Some("nope"), 0), Err(TokenError::Malformed));
        let forged = format!("3000.{}", token.split_once('.').unwrap().1);
        assert_eq!(verify(b"s3cret", "a.mp4", Some(&forged), 0), Err(TokenError::Mismatch));
    }
}
