//! What `upload-api` grants: the server chooses the key (`UPLOAD_PREFIX` + a random id + the
//! sanitised file name), and the browser POSTs the file straight to S3 under a policy that pins
//! the key, the content type and a `content-length-range` up to the declared size, so S3 itself
//! refuses anything else.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::identity::Subject;

/// The body of `POST /media/uploads`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    pub file_name: String,
    pub content_type: String,
    #[serde(deserialize_with = "whole_number")]
    pub size: u64,
    /// A resumable multipart upload instead of one POST (only when asked).
    #[serde(default)]
    pub multipart: bool,
}

/// The largest single POST S3 takes (5 GiB); larger files need a multipart upload.
pub const MAX_POST_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// The smallest part a multipart grant asks for (S3's own minimum is 5 MiB).
pub const MIN_PART_BYTES: u64 = 8 * 1024 * 1024;
/// The largest part a multipart grant asks for.
pub const MAX_PART_BYTES: u64 = 512 * 1024 * 1024;
/// S3's most parts per upload.
pub const MAX_PARTS: u64 = 10_000;
/// Presigned part URLs per `POST /media/uploads/parts`.
pub const MAX_PARTS_PER_CALL: usize = 100;

/// How a multipart upload is cut: every part `part_size` bytes but the last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PartPlan {
    pub part_size: u64,
    pub part_count: u64,
}

impl PartPlan {
    /// The smallest part size from 8 MiB up (whole MiB) that keeps `size` within 10,000 parts;
    /// `None` when even 512 MiB parts would not.
    pub fn for_size(size: u64) -> Option<Self> {
        const MIB: u64 = 1024 * 1024;
        let needed = size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
        let part_size = needed.max(MIN_PART_BYTES);
        (part_size <= MAX_PART_BYTES).then(|| Self { part_size, part_count: size.div_ceil(part_size).max(1) })
    }
}

/// A JSON number with no fraction, as JSON Schema's `integer` (so `1.0` is 1, `1.5` is refused);
/// one beyond `u64` counts as `u64::MAX`, which every size limit refuses as too large.
fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    if let Some(n) = number.as_u64() {
        return Ok(n);
    }
    match number.as_f64() {
        // (`as` saturates: anything above u64::MAX becomes u64::MAX)
        Some(f) if f.fract() == 0.0 && f >= 0.0 => Ok(f as u64),
        _ => Err(serde::de::Error::custom(format!("{number} is not a whole number of bytes"))),
    }
}

/// Why an upload is refused: the HTTP status and a message naming what was wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UploadRefusal {
    #[error("{0}")]
    Malformed(String),
    #[error("size {size} is larger than the {max} bytes an upload may have")]
    TooLarge { size: u64, max: u64 },
    #[error("content_type {0:?} is not accepted (ALLOWED_CONTENT_TYPES)")]
    Unsupported(String),
    #[error("{0}")]
    Invalid(String),
}

impl UploadRefusal {
    /// 400 / 413 / 415 / 422, as the seed's error answers.
    pub fn status(&self) -> u16 {
        match self {
            Self::Malformed(_) => 400,
            Self::TooLarge { .. } => 413,
            Self::Unsupported(_) => 415,
            Self::Invalid(_) => 422,
        }
    }
}

/// upload-api's rules (`UPLOAD_PREFIX`, `MAX_UPLOAD_BYTES`, `ALLOWED_CONTENT_TYPES`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadRules {
    pub prefix: String,
    pub max_bytes: u64,
    /// `type/subtype` or `type/*`, lower case.
    pub allowed_types: Vec<String>,
    /// How long the upload grant (the signed policy) is valid.
    pub grant_ttl: Duration,
}

impl Default for UploadRules {
    fn default() -> Self {
        Self {
            prefix: "uploads/".into(),
            max_bytes: 50 * 1024 * 1024 * 1024,
            allowed_types: vec!["video/*".into(), "audio/*".into()],
            grant_ttl: Duration::from_secs(15 * 60),
        }
    }
}

/// What S3 must enforce on one upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PostPolicy {
    pub bucket: String,
    pub key: String,
    pub content_type: String,
    pub max_bytes: u64,
    /// Epoch seconds.
    pub expires_at: u64,
    /// Asked for as a multipart upload (its size may then exceed [`MAX_POST_BYTES`]).
    pub multipart: bool,
}

impl UploadRules {
    /// Parses and checks a request body; `id` is the random part of the key, which lies in the
    /// signed-in `owner`'s home folder (`UPLOAD_PREFIX{sub}/`) when there is one.
    pub fn grant(
        &self,
        body: &[u8],
        bucket: &str,
        id: &str,
        owner: Option<&Subject>,
        now_secs: u64,
    ) -> Result<PostPolicy, UploadRefusal> {
        let request: UploadRequest = serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(body))
            .map_err(|e| {
                UploadRefusal::Malformed(format!(
                    "body is not an upload request ({{\"file_name\", \"content_type\", \"size\"}}): {e}"
                ))
            })?;
        let content_type = request.content_type.trim().to_ascii_lowercase();
        let Some((kind, subtype)) = content_type.split_once('/').filter(|(k, s)| token(k) && token(s)) else {
            return Err(UploadRefusal::Invalid(format!(
                "content_type {:?} is not a media type such as video/mp4",
                request.content_type
            )));
        };
        if !self
            .allowed_types
            .iter()
            .any(|allowed| allowed == &content_type || allowed.strip_suffix("/*") == Some(kind))
        {
            return Err(UploadRefusal::Unsupported(format!("{kind}/{subtype}")));
        }
        if request.size == 0 {
            return Err(UploadRefusal::Invalid("size must be at least 1 byte".into()));
        }
        let max = if request.multipart { self.max_bytes } else { self.max_bytes.min(MAX_POST_BYTES) };
        if request.size > max {
            return Err(UploadRefusal::TooLarge { size: request.size, max });
        }
        let name = sanitise(&request.file_name).ok_or_else(|| {
            UploadRefusal::Invalid(format!("file_name {:?} has no usable characters", request.file_name))
        })?;
        Ok(PostPolicy {
            bucket: bucket.to_owned(),
            key: format!("{}{id}/{name}", owner.map_or_else(|| self.prefix.clone(), |owner| owner.home(&self.prefix))),
            content_type,
            max_bytes: request.size,
            expires_at: now_secs + self.grant_ttl.as_secs(),
            multipart: request.multipart,
        })
    }
}

/// An RFC 7230 token (the parts of a media type).
fn token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
}

/// The last path segment of a file name, with everything but letters, digits, `.`, `-` and `_`
/// replaced by `_`, no leading dots, at most 100 characters; `None` when nothing is left.
pub fn sanitise(file_name: &str) -> Option<String> {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let mut clean: String = base
        .chars()
        .map(|c| if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .skip_while(|c| *c == '.')
        .take(100)
        .collect();
    while clean.contains("__") {
        clean = clean.replace("__", "_");
    }
    (!clean.trim_matches(['_', '.']).is_empty()).then_some(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(body: &str) -> Result<PostPolicy, UploadRefusal> {
        UploadRules { max_bytes: 1000, ..UploadRules::default() }.grant(body.as_bytes(), "b", "ID", None, 100)
    }

    #[test]
    fn a_good_request_gets_a_server_chosen_key_and_its_limits() {
        let policy = grant(r#"{"file_name": "../My Clip (1).MP4", "content_type": "Video/MP4", "size": 999}"#).unwrap();
        assert_eq!(
            policy,
            PostPolicy {
                bucket: "b".into(),
                key: "uploads/ID/My_Clip_1_.MP4".into(),
                content_type: "video/mp4".into(),
                max_bytes: 999,
                expires_at: 1000,
                multipart: false,
            }
        );
    }

    #[test]
    fn a_signed_in_users_uploads_land_in_their_home_folder() {
        let owner = Subject::parse("auth0|42").unwrap();
        let body = br#"{"file_name": "a.mp4", "content_type": "video/mp4", "size": 1}"#;
        let policy = UploadRules::default().grant(body, "b", "ID", Some(&owner), 0).unwrap();
        assert_eq!(policy.key, "uploads/auth0|42/ID/a.mp4");
        assert!(owner.owns("uploads/", &policy.key));
    }

    #[test]
    fn refusals_name_what_was_wrong_with_the_right_status() {
        let status = |body: &str| grant(body).unwrap_err().status();
        assert_eq!(status("nope"), 400);
        assert_eq!(status(r#"{"file_name": "a.mp4", "content_type": "video/mp4"}"#), 400);
        assert_eq!(status(r#"{"file_name": "a.mp4", "content_type": "video/mp4", "size": -1}"#), 400);
        assert_eq!(status(r#"{"file_name": "a.mp4", "content_type": "video/mp4", "size": 1.5}"#), 400);
        assert!(
            grant(r#"{"file_name": "a.mp4", "content_type": "video/mp4", "size": 1.0}"#).is_ok(),
            "1.0 is JSON Schema's integer 1"
        );
        assert_eq!(
            status(r#"{"file_name": "a.mp4", "content_type": "video/mp4", "size": 1328421786072605968578316861440}"#),
            413
        );
        assert_eq!(status(r#"{"file_name": "a.mp4", "content_type": "video/mp4", "size": 1, "key": "x"}"#), 400);
        assert_eq!(status(r#"{"file_name": "a.mp4", "content_type": "video/mp4", "size": 1001}"#), 413);
        assert_eq!(status(r#"{"file_name": "a.exe", "content_type": "application/x-msdownload", "size": 1}"#), 415);
        assert_eq!(status(r#"{"file_name": "a.mp4", "content_type": "video", "size": 1}"#), 422);
        assert_eq!(status(r#"{"file_name": "a.mp4", "content_type": "video/mp4", "size": 0}"#), 422);
        assert_eq!(status(r#"{"file_name": "../..", "content_type": "video/mp4", "size": 1}"#), 422);
        assert!(grant(r#"{"file_name": "a", "content_type": "audio/mpeg", "size": 1}"#).is_ok());
    }

    #[test]
    fn one_post_stays_within_5_gib_and_a_multipart_upload_goes_up_to_the_limit() {
        let rules = UploadRules { max_bytes: 50 << 30, ..UploadRules::default() };
        let body = |size: u64, multipart: bool| {
            format!(
                r#"{{"file_name": "a.mp4", "content_type": "video/mp4", "size": {size}, "multipart": {multipart}}}"#
            )
        };
        let grant = |size, multipart| rules.grant(body(size, multipart).as_bytes(), "b", "ID", None, 0);
        assert_eq!(grant(6 << 30, false), Err(UploadRefusal::TooLarge { size: 6 << 30, max: MAX_POST_BYTES }));
        assert!(grant(6 << 30, true).is_ok_and(|p| p.multipart && p.max_bytes == 6 << 30));
        assert_eq!(grant(51 << 30, true).unwrap_err().status(), 413);
    }

    #[test]
    fn parts_are_at_least_8_mib_and_at_most_10000() {
        const MIB: u64 = 1 << 20;
        assert_eq!(PartPlan::for_size(1), Some(PartPlan { part_size: 8 * MIB, part_count: 1 }));
        assert_eq!(PartPlan::for_size(300 * MIB), Some(PartPlan { part_size: 8 * MIB, part_count: 38 }));
        let fifty = PartPlan::for_size(50 << 30).unwrap();
        assert_eq!((fifty.part_size, fifty.part_count), (8 * MIB, 6400));
        let big = PartPlan::for_size(100 << 30).unwrap();
        assert!(
            big.part_count <= MAX_PARTS
                && big.part_size.is_multiple_of(MIB)
                && big.part_size * big.part_count >= 100 << 30
        );
        assert_eq!(PartPlan::for_size(MAX_PART_BYTES * MAX_PARTS + 1), None);
    }

    #[test]
    fn names_are_cleaned_to_one_safe_segment() {
        assert_eq!(sanitise("C:\\Users\\x\\動画 1.mov").as_deref(), Some("動画_1.mov"));
        assert_eq!(sanitise("...hidden").as_deref(), Some("hidden"));
        assert_eq!(sanitise("a/b/../c.mp4").as_deref(), Some("c.mp4"));
        assert_eq!(sanitise("???"), None);
    }
}
