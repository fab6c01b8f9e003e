//! Everything the Lambda functions of the MediaConvert push notifier share.
//!
//! - [`domain`]: pure rules (job state merge, MediaConvert event mapping, origins, S3 keys);
//! - [`ports`]: the small traits the handlers need (job store, job creator);
//! - [`service`]: use cases over the ports shared by several handlers;
//! - [`handlers`]: one module per Lambda function, typed event in, typed response out;
//! - [`adapters`]: DynamoDB, MediaConvert, API Gateway and in-memory implementations of the ports;
//! - [`config`]: every environment variable, read once at init (one `…Settings::read` per function, failing fast).

pub mod adapters;
pub mod config;
pub mod domain;
pub mod handlers;
pub mod metrics;
pub mod ports;
pub mod pyjson;
pub mod runtime;
pub mod service;
pub mod telemetry;

/// Milliseconds since the Unix epoch, from the system clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
