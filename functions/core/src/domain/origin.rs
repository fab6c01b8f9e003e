//! The `ALLOWED_ORIGINS` allow-list shared by the REST functions and `$connect`.

use regex::Regex;

/// Space-separated regular expressions, each matched against the whole `Origin` header.
#[derive(Clone, Debug)]
pub struct AllowedOrigins {
    patterns: Vec<Regex>,
}

#[derive(Debug, thiserror::Error)]
#[error("ALLOWED_ORIGINS pattern {pattern:?} is not a valid regular expression: {source}")]
pub struct OriginPatternError {
    pub pattern: String,
    #[source]
    pub source: regex::Error,
}

impl AllowedOrigins {
    /// Compiles the list once; each pattern is anchored so it must match the whole origin.
    pub fn parse(list: &str) -> Result<Self, OriginPatternError> {
        let patterns = list
            .split_whitespace()
            .map(|pattern| {
                Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|source| OriginPatternError { pattern: pattern.to_owned(), source })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { patterns })
    }

    /// Is a request with this `Origin` header allowed? No header, or an empty one, is allowed
    /// (not a browser's cross-origin request), as in the seed.
    pub fn allows(&self, origin: Option<&str>) -> bool {
        match origin {
            None | Some("") => true,
            Some(origin) => self.patterns.iter().any(|p| p.is_match(origin)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_the_whole_origin() {
        let allowed = AllowedOrigins::parse(r"https://test\.nightonly\.com http://localhost:\d+").unwrap();
        assert!(allowed.allows(Some("https://test.nightonly.com")));
        assert!(allowed.allows(Some("http://localhost:3000")));
        assert!(!allowed.allows(Some("https://test.nightonly.com.evil.example")));
        assert!(!allowed.allows(Some("https://evil.example/?https://test.nightonly.com")));
        assert!(allowed.allows(None));
        assert!(allowed.allows(Some("")));
    }

    #[test]
    fn alternation_is_anchored_as_a_whole() {
        let allowed = AllowedOrigins::parse("https://a|https://b").unwrap();
        assert!(allowed.allows(Some("https://b")));
        assert!(!allowed.allows(Some("https://bx")));
    }

    #[test]
    fn invalid_pattern_is_named() {
        let err = AllowedOrigins::parse("ok (unclosed").unwrap_err();
        assert_eq!(err.pattern, "(unclosed");
    }
}
