//! Structured logs: JSON on Lambda (what CloudWatch Logs Insights queries), compact text on a
//! terminal; see [`LogConfig`] for the variables.

use tracing_subscriber::EnvFilter;

use crate::config::LogConfig;

/// Installs the global subscriber and the metrics recorder ([`crate::metrics`], namespace
/// `METRICS_NAMESPACE`) from the environment once; later calls do nothing.
pub fn init() {
    init_with(&LogConfig::from_env());
    crate::metrics::collector(&crate::config::metrics_namespace_from_env());
}

/// One Lambda invocation: runs it, then writes the metrics it recorded to stdout as Embedded
/// Metric Format lines (CloudWatch Logs extracts them).
pub async fn metered<T>(invocation: impl std::future::Future<Output = T>) -> T {
    let output = invocation.await;
    crate::metrics::flush(std::io::stdout().lock());
    output
}

/// Installs the global subscriber once; later calls do nothing.
pub fn init_with(config: &LogConfig) {
    let filter = EnvFilter::try_new(&config.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if config.json { builder.json().with_current_span(false).try_init() } else { builder.compact().try_init() };
}
