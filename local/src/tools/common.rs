//! What the terminal tools share: their error type, TLS (rustls with the system's roots, or the
//! bundle `SSL_CERT_FILE` names, by rustls-native-certs), the HTTP client and progress bar, and
//! [`printable`]: whatever a server sends, the tools end with an error naming it, never a panic,
//! and print server strings with control characters escaped.

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {reason}")]
    Input { path: String, reason: String },
    #[error("{url}: {reason}")]
    Http { url: String, reason: String },
    #[error("{url}: {reason}")]
    WebSocket { url: String, reason: String },
    #[error("the server refused: {0}")]
    Refused(String),
    #[error("Lambda Invoke {function}: {reason}")]
    Invoke { function: String, reason: String },
    #[error("TLS setup: {0}")]
    Tls(String),
}

/// Longest server text printed; the rest is cut.
const MAX_PRINTED_CHARS: usize = 500;

/// A server's text made safe for a terminal: control characters (escape sequences included)
/// escaped, at most [`MAX_PRINTED_CHARS`] characters.
pub fn printable(text: &str) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == MAX_PRINTED_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// An error and its causes on one line: reqwest's and tungstenite's errors keep the useful part
/// (refused connection, unknown issuer, …) in their sources.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    printable(&text)
}

/// rustls with the system's roots, or `SSL_CERT_FILE` / `SSL_CERT_DIR` when set.
pub fn tls_config() -> Result<Arc<rustls::ClientConfig>, CliError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        tracing::warn!(errors = ?found.errors, "no trusted root certificates found: https:// and wss:// will fail");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| CliError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The bar for a terminal (hidden when stderr is not one, so lines are printed instead).
pub fn progress_bar(length: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(length);
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("#>-"),
    );
    bar
}

/// reqwest over the same TLS settings; `wait` bounds the connection and each whole request.
pub fn http_client(tls: &Arc<rustls::ClientConfig>, wait: Duration) -> Result<reqwest::Client, CliError> {
    reqwest::Client::builder()
        .tls_backend_preconfigured((**tls).clone())
        .connect_timeout(wait)
        .timeout(wait)
        .build()
        .map_err(|e| CliError::Tls(chain(&e)))
}

/// The most the tools read of an AWS API's answer: Lambda's synchronous payloads stop at 6 MB,
/// SQS messages at 256 KB a message.
pub const MAX_SDK_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// An SDK interceptor that reads at most `.0` bytes of any answer: a server that sends more
/// ends the call with an error instead of filling memory.
#[derive(Debug)]
pub struct ResponseLimit(pub usize);

impl aws_sdk_lambda::config::Intercept for ResponseLimit {
    fn name(&self) -> &'static str {
        "ResponseLimit"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut aws_sdk_lambda::config::interceptors::BeforeDeserializationInterceptorContextMut<'_>,
        _: &aws_sdk_lambda::config::RuntimeComponents,
        _: &mut aws_sdk_lambda::config::ConfigBag,
    ) -> Result<(), aws_sdk_lambda::error::BoxError> {
        use aws_sdk_lambda::primitives::SdkBody;
        let body = std::mem::replace(context.response_mut().body_mut(), SdkBody::taken());
        *context.response_mut().body_mut() = SdkBody::from_body_1_x(http_body_util::Limited::new(body, self.0));
        Ok(())
    }
}

/// `url` as the tools print it: a read token or an access token in its query becomes
/// `[redacted]`, so no error line or log hands a bearer credential to whoever reads it.
pub fn redacted(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    if url.query_pairs().any(|(k, _)| k == "token" || k == "access_token") {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let secret = k == "token" || k == "access_token";
                (k.into_owned(), if secret { "[redacted]".to_owned() } else { v.into_owned() })
            })
            .collect();
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_urls_carry_no_token() {
        let url = reqwest::Url::parse("https://api.example/media/status?input_file=a+b.mp4&token=99.abcdef").unwrap();
        assert_eq!(redacted(&url), "https://api.example/media/status?input_file=a+b.mp4&token=%5Bredacted%5D");
        let plain = reqwest::Url::parse("http://x/media/status?input_file=a").unwrap();
        assert_eq!(redacted(&plain), "http://x/media/status?input_file=a");
    }

    #[test]
    fn server_text_is_printed_with_controls_escaped_and_cut() {
        assert_eq!(printable("ok \u{1b}[2J\u{7}\r\n動画"), "ok \\u{1b}[2J\\u{7}\\r\\n動画");
        let long = "a".repeat(2 * MAX_PRINTED_CHARS);
        assert_eq!(printable(&long).chars().count(), MAX_PRINTED_CHARS + 1);
    }
}
