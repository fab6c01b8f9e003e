//! S3 object keys as S3 event notifications carry them: URL-encoded, `+` for a space.

use percent_encoding::percent_decode_str;

/// `Big+Buck+Bunny.mp4` → `Big Buck Bunny.mp4`; `a%2Bb` → `a+b`. `None` if the decoded bytes are
/// not UTF-8.
pub fn decode_event_key(key: &str) -> Option<String> {
    let spaced = key.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8().ok().map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plus_and_percent_escapes() {
        assert_eq!(decode_event_key("Big+Buck+Bunny.mp4").as_deref(), Some("Big Buck Bunny.mp4"));
        assert_eq!(decode_event_key("a%2Bb%20c.mp4").as_deref(), Some("a+b c.mp4"));
        assert_eq!(decode_event_key("%E5%8B%95%E7%94%BB.mp4").as_deref(), Some("動画.mp4"));
        assert_eq!(decode_event_key("%FF.mp4"), None);
    }
}
