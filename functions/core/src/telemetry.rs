//! Structured logs: JSON on Lambda (what CloudWatch Logs Insights queries), compact text on a
//! terminal; see [`LogConfig`] for the variables.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogConfig;

/// Installs the global subscriber and the metrics recorder ([`crate::metrics`], namespace
/// `METRICS_NAMESPACE`) from the environment once; later calls do nothing.
pub fn init() {
    let env = crate::config::Env::process();
    init_with(&LogConfig::read(&env));
    crate::metrics::collector(&env.metrics_namespace());
}

/// One Lambda invocation: runs it, then writes the metrics it recorded to stdout as Embedded
/// Metric Format lines (CloudWatch Logs extracts them).
pub async fn metered<T>(invocation: impl std::future::Future<Output = T>) -> T {
    let output = invocation.await;
    crate::metrics::flush(std::io::stdout().lock());
    output
}

/// Installs the global subscriber once; later calls do nothing. The filter takes `RUST_LOG`'s
/// usual `level` and `target=level` directives, comma separated (tracing-subscriber's `Targets`:
/// env-filter's span and field directives would link a regex engine into every function for
/// nothing); one it cannot read gives `info` and a warning naming it.
pub fn init_with(config: &LogConfig) {
    let (filter, refused) = match config.filter.parse::<Targets>() {
        Ok(filter) => (filter, None),
        Err(error) => (Targets::new().with_default(tracing::Level::INFO), Some(error)),
    };
    let installed = if config.json {
        tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().json().with_current_span(false).with_writer(std::io::stderr))
            .with(filter)
            .try_init()
    } else {
        tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().compact().with_writer(std::io::stderr))
            .with(filter)
            .try_init()
    };
    if let (Ok(()), Some(error)) = (installed, refused) {
        tracing::warn!(filter = %config.filter, %error, "RUST_LOG is not a list of `level` or `target=level` directives; logging at info");
    }
}
