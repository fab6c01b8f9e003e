//! API Gateway's limits: message and frame sizes, connection ages, request rates (token buckets).

use std::sync::Mutex;

/// Largest message the Management API accepts, and the largest message a client may send.
pub const MAX_POST_BYTES: usize = 128 * 1024;
/// Largest frame a client may send (longer messages come in several frames).
pub const MAX_FRAME_BYTES: usize = 32 * 1024;
/// Bytes tungstenite reads per call on a connection (the buffer grows for a longer message).
pub const IDLE_READ_BUFFER_BYTES: usize = 4 * 1024;
/// Most bytes of posted messages waiting for a slow reader; above it the connection is closed
/// with 1008, so no client can make the emulator hold unbounded memory.
pub const MAX_QUEUED_BYTES: usize = 1024 * 1024;

/// API Gateway's connection limits (`APIGW_IDLE_TIMEOUT_S`, `APIGW_MAX_CONNECTION_S` locally).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A connection whose client sends no data frame for this long is closed (API Gateway: 10 minutes).
    pub idle: std::time::Duration,
    /// A connection is closed this long after it opened (API Gateway: 2 hours).
    pub max_age: std::time::Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self { idle: std::time::Duration::from_secs(600), max_age: std::time::Duration::from_secs(7200) }
    }
}

/// API Gateway's request limits (`APIGW_POST_LATENCY_MS`, `APIGW_POST_RATE`, `APIGW_POST_BURST`,
/// `APIGW_CONNECT_RATE` locally). On AWS: tens of milliseconds per Management API call, 10,000
/// requests/s with a burst of 5,000 per account and Region, 500 new connections/s.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RequestLimits {
    /// Added to every Management API call, drawn uniformly from this range (`20` or `10-40` ms).
    pub post_latency: (std::time::Duration, std::time::Duration),
    /// One token bucket over all posts; `None`: unlimited.
    pub post_rate: Option<Rate>,
    /// New connections; `None`: unlimited.
    pub connect_rate: Option<Rate>,
}

/// A token bucket's refill rate per second and size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

/// A token bucket, full at start.
pub(super) struct Bucket {
    pub(super) rate: Rate,
    pub(super) state: Mutex<(f64, std::time::Instant)>,
}

impl Bucket {
    pub(super) fn new(rate: Rate) -> Self {
        Self { rate, state: Mutex::new((rate.burst, std::time::Instant::now())) }
    }

    /// Takes a token if there is one.
    pub(super) fn take(&self) -> bool {
        let Ok(mut state) = self.state.lock() else { return true };
        let now = std::time::Instant::now();
        let (tokens, at) = *state;
        let tokens = (tokens + now.duration_since(at).as_secs_f64() * self.rate.per_second).min(self.rate.burst);
        let taken = tokens >= 1.0;
        *state = (if taken { tokens - 1.0 } else { tokens }, now);
        taken
    }
}

/// The request limits in force: the settings and their buckets.
#[derive(Default)]
pub(super) struct Throttles {
    pub(super) limits: RequestLimits,
    pub(super) posts: Option<Bucket>,
    pub(super) connects: Option<Bucket>,
}

impl Throttles {
    pub(super) fn new(limits: RequestLimits) -> Self {
        Self { limits, posts: limits.post_rate.map(Bucket::new), connects: limits.connect_rate.map(Bucket::new) }
    }

    pub(super) fn latency(&self) -> std::time::Duration {
        let (low, high) = self.limits.post_latency;
        if high <= low { low } else { low + (high - low).mul_f64(fastrand::f64()) }
    }
}
