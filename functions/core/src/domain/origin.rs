//! The `ALLOWED_ORIGINS` allow-list shared by the REST functions and `$connect`.

use aws_lambda_events::http;
use regex_lite::Regex;

/// Space-separated regular expressions (`regex-lite` syntax: the `regex` crate's, without Unicode
/// classes), each matched against the whole `Origin` header.
#[derive(Clone, Debug)]
pub struct AllowedOrigins {
    patterns: Vec<Regex>,
}

#[derive(Debug, thiserror::Error)]
#[error("ALLOWED_ORIGINS pattern {pattern:?} is not a valid regular expression: {source}")]
pub struct OriginPatternError {
    pub pattern: String,
    #[source]
    pub source: regex_lite::Error,
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

    /// Is a request with these `Origin` header values allowed? Each value as received: `None`
    /// when it is not readable text (non-ASCII), which is refused, never taken for "no Origin".
    /// A value may be a comma-separated list (how HTTP APIs join repeated headers); every origin
    /// in every value must be allowed. No value at all is allowed, as [`AllowedOrigins::allows`].
    pub fn allows_all<'a>(&self, values: impl IntoIterator<Item = Option<&'a str>>) -> bool {
        values
            .into_iter()
            .all(|value| value.is_some_and(|v| v.split(',').all(|origin| self.allows(Some(origin.trim())))))
    }
}

/// The values of the `Origin` headers of a request, `None` for one that is not visible ASCII.
pub fn origin_values(headers: &http::HeaderMap) -> impl Iterator<Item = Option<&str>> {
    headers.get_all(http::header::ORIGIN).into_iter().map(|v| v.to_str().ok())
}

/// Whether `url` is `https://`, or `http://` to this machine (tests, the local stack), read as a
/// URL parser reads its authority: up to the first `/`, `?` or `#`, no userinfo
/// (`http://127.0.0.1:@evil.example` is evil.example's URL), a loopback host for plain http
/// (`http://127.0.0.1.evil.example` is not), and a numeric port if any.
pub fn secure_or_loopback(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else { return false };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return false;
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((host, _)) => host,
            None => return false,
        },
        None => authority.split(':').next().unwrap_or_default(),
    };
    let after_host = authority.rsplit_once(']').map_or_else(|| &authority[host.len()..], |(_, after)| after);
    let port_ok = after_host.is_empty() || after_host.strip_prefix(':').is_some_and(|p| p.parse::<u16>().is_ok());
    let loopback = ["127.0.0.1", "localhost", "::1"].contains(&host);
    port_ok && (scheme == "https" || (scheme == "http" && loopback))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_origin_value_must_be_readable_and_allowed() {
        let allowed = AllowedOrigins::parse(r"http://a\.example").unwrap();
        assert!(allowed.allows_all([]));
        assert!(allowed.allows_all([Some("http://a.example")]));
        assert!(allowed.allows_all([Some("http://a.example, http://a.example")]));
        assert!(!allowed.allows_all([Some("http://a.example, http://evil.example")]));
        assert!(!allowed.allows_all([Some("http://a.example"), Some("http://evil.example")]));
        assert!(!allowed.allows_all([None]), "an unreadable Origin is not an absent one");
        let mut headers = http::HeaderMap::new();
        headers.append(http::header::ORIGIN, http::HeaderValue::from_bytes("http://é.example".as_bytes()).unwrap());
        assert_eq!(origin_values(&headers).collect::<Vec<_>>(), [None]);
    }

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
