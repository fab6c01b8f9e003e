//! The identifiers that come from outside, checked where they enter: a MediaConvert job id and
//! an input file's S3 key. Nothing that fails these checks is stored or sent to an AWS API, so
//! no stored value can make an SDK call fail on its shape (or a client library panic on it).

/// MediaConvert's job ids are about 20 characters (`1700000000000-abc123`); 128 leaves room.
pub const MAX_JOB_ID_CHARS: usize = 128;
/// S3's longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// Why an identifier was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("is empty")]
    Empty,
    #[error("is {0} characters; at most {MAX_JOB_ID_CHARS}")]
    TooLong(usize),
    #[error("has {0:?}: only A-Z, a-z, 0-9, _ and - are allowed")]
    Character(char),
    #[error("is {0} bytes; S3 keys are at most {MAX_KEY_BYTES}")]
    KeyTooLong(usize),
    #[error("contains a control character")]
    Control,
}

/// A job id: 1 to 128 characters of `[A-Za-z0-9_-]`.
pub fn check_job_id(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty);
    }
    if let Some(bad) = id.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-')) {
        return Err(IdError::Character(bad));
    }
    match id.len() {
        n if n > MAX_JOB_ID_CHARS => Err(IdError::TooLong(n)),
        _ => Ok(()),
    }
}

/// An API Gateway WebSocket connection id: base64 (`L0SM9cOFvHcCIhw=`), at most 128 characters.
pub fn is_connection_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=_-".contains(&b))
}

/// An input file's key: 1 to 1,024 bytes, no control characters.
pub fn check_key(key: &str) -> Result<(), IdError> {
    match key.len() {
        0 => Err(IdError::Empty),
        n if n > MAX_KEY_BYTES => Err(IdError::KeyTooLong(n)),
        _ if key.chars().any(char::is_control) => Err(IdError::Control),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn job_ids_are_mediaconverts_shape_and_nothing_else() {
        for good in ["1700000000000-abc123", "c123456789012-smb6o7", "a", "A_b-9", &"x".repeat(128)] {
            assert_eq!(check_job_id(good), Ok(()), "{good}");
        }
        assert_eq!(check_job_id(""), Err(IdError::Empty));
        assert_eq!(check_job_id(&"x".repeat(22_000)), Err(IdError::TooLong(22_000)));
        assert_eq!(check_job_id("a/b"), Err(IdError::Character('/')));
        assert_eq!(check_job_id("a b"), Err(IdError::Character(' ')));
        assert_eq!(check_job_id("é"), Err(IdError::Character('é')));
        assert_eq!(check_key(&"k".repeat(1024)), Ok(()));
        assert_eq!(check_key(&"k".repeat(1025)), Err(IdError::KeyTooLong(1025)));
        assert_eq!(check_key("a\nb"), Err(IdError::Control));
        assert!(is_connection_id("L0SM9cOFvHcCIhw="));
        for bad in ["", "a b", "a/../b?x", &"A".repeat(129), "id\u{0}"] {
            assert!(!is_connection_id(bad), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn a_valid_job_id_is_short_and_url_safe(id in "\\PC{0,200}") {
            if check_job_id(&id).is_ok() {
                prop_assert!((1..=MAX_JOB_ID_CHARS).contains(&id.len()));
                prop_assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
            }
        }
    }
}
