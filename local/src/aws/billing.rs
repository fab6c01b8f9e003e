//! What AWS would bill the stack for, counted as the local stack runs, at `GET /_local/metrics`
//! under `billing`:
//!
//! - `lambda_requests`, `lambda_billed_ms`: per function, each invocation's duration rounded up to
//!   1 ms; a function's first invocation also bills [`MODELLED_INIT_MS`] (provided.al2023 bills
//!   its init; one execution environment per function is modelled);
//! - `websocket_messages`: messages both ways in 32 KB units (a client's data frames, each
//!   `@connections` post delivered); `websocket_connection_minutes`: the connections' open time;
//! - `http_api_requests` (`/media/*`), `eventbridge_events` (PutEvents entries accepted and
//!   API-destination calls), `s3_requests`, `mediaconvert_requests`: one per request.
//!
//! Stream reads by Lambda triggers are free, and are not counted.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The unit a WebSocket message is billed in.
pub const WEBSOCKET_MESSAGE_UNIT: usize = 32 * 1024;
/// The init a function's first invocation bills: the cold-start bench's median init for the
/// functions (3.4–4.9 ms, `docs/operations.md`), rounded up.
pub const MODELLED_INIT_MS: u64 = 5;

/// The counts, as `/_local/metrics` shows them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BillingCounts {
    pub lambda_requests: BTreeMap<String, u64>,
    pub lambda_billed_ms: BTreeMap<String, u64>,
    /// Table (or `table/index/NAME`) → write request units.
    pub dynamodb_wru: BTreeMap<String, f64>,
    /// Table (or `table/index/NAME`) → read request units.
    pub dynamodb_rru: BTreeMap<String, f64>,
    pub websocket_messages: u64,
    pub websocket_connection_minutes: f64,
    pub http_api_requests: u64,
    pub eventbridge_events: u64,
    pub s3_requests: u64,
    pub mediaconvert_requests: u64,
}

/// The stack's meter.
#[derive(Default)]
pub struct Billing {
    counts: Mutex<BillingCounts>,
    /// Open WebSocket connections and when they opened.
    open: Mutex<HashMap<String, Instant>>,
}

/// One Lambda invocation, billed when it ends (dropped).
pub struct Invocation {
    billing: Arc<Billing>,
    function: &'static str,
    started: Instant,
}

impl Drop for Invocation {
    fn drop(&mut self) {
        self.billing.lambda(self.function, self.started.elapsed());
    }
}

/// Which requests a router's meter counts.
#[derive(Clone, Copy, Debug)]
pub enum Meter {
    /// HTTP API: the `/media/*` routes.
    HttpApi,
    S3,
    MediaConvert,
}

impl Billing {
    /// Starts billing an invocation of `function` (a package name, e.g. `status-api`).
    pub fn invocation(self: &Arc<Self>, function: &'static str) -> Invocation {
        Invocation { billing: self.clone(), function, started: Instant::now() }
    }

    fn lambda(&self, function: &str, took: Duration) {
        let Ok(mut counts) = self.counts.lock() else { return };
        let init = if counts.lambda_requests.contains_key(function) { 0 } else { MODELLED_INIT_MS };
        let billed = u64::try_from(took.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX).max(1) + init;
        *counts.lambda_requests.entry(function.to_owned()).or_default() += 1;
        *counts.lambda_billed_ms.entry(function.to_owned()).or_default() += billed;
    }

    /// A WebSocket message of `bytes`, either way.
    pub fn websocket_message(&self, bytes: usize) {
        if let Ok(mut counts) = self.counts.lock() {
            counts.websocket_messages += bytes.div_ceil(WEBSOCKET_MESSAGE_UNIT).max(1) as u64;
        }
    }

    pub fn websocket_opened(&self, connection_id: &str) {
        if let Ok(mut open) = self.open.lock() {
            open.insert(connection_id.to_owned(), Instant::now());
        }
    }

    pub fn websocket_closed(&self, connection_id: &str) {
        let opened = self.open.lock().ok().and_then(|mut open| open.remove(connection_id));
        if let (Some(opened), Ok(mut counts)) = (opened, self.counts.lock()) {
            counts.websocket_connection_minutes += opened.elapsed().as_secs_f64() / 60.0;
        }
    }

    /// `entries` EventBridge events (PutEvents entries accepted, or API-destination calls).
    pub fn eventbridge_events(&self, entries: u64) {
        if let Ok(mut counts) = self.counts.lock() {
            counts.eventbridge_events += entries;
        }
    }

    /// One request through a router `meter` counts.
    pub fn request(&self, meter: Meter) {
        if let Ok(mut counts) = self.counts.lock() {
            match meter {
                Meter::HttpApi => counts.http_api_requests += 1,
                Meter::S3 => counts.s3_requests += 1,
                Meter::MediaConvert => counts.mediaconvert_requests += 1,
            }
        }
    }

    /// `units` DynamoDB capacity units on `name` (a table or `table/index/NAME`).
    pub fn dynamodb(&self, name: &str, write_units: f64, read_units: f64) {
        if let Ok(mut counts) = self.counts.lock() {
            if write_units > 0.0 {
                *counts.dynamodb_wru.entry(name.to_owned()).or_default() += write_units;
            }
            if read_units > 0.0 {
                *counts.dynamodb_rru.entry(name.to_owned()).or_default() += read_units;
            }
        }
    }

    /// The counts so far, the open connections' minutes included.
    pub fn snapshot(&self) -> BillingCounts {
        let mut counts = self.counts.lock().map(|c| c.clone()).unwrap_or_default();
        if let Ok(open) = self.open.lock() {
            counts.websocket_connection_minutes += open.values().map(|o| o.elapsed().as_secs_f64() / 60.0).sum::<f64>();
        }
        counts
    }
}

/// Counts the requests of `router` that `meter` bills (for the HTTP API, `/media/*` only).
pub fn metered(router: axum::Router, billing: Arc<Billing>, meter: Meter) -> axum::Router {
    router.layer(axum::middleware::from_fn(move |request: axum::extract::Request, next: axum::middleware::Next| {
        let billing = billing.clone();
        async move {
            if !matches!(meter, Meter::HttpApi) || request.uri().path().starts_with("/media/") {
                billing.request(meter);
            }
            next.run(request).await
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invocations_bill_whole_milliseconds_and_the_first_its_init() {
        let billing = Arc::new(Billing::default());
        billing.lambda("status-api", Duration::from_micros(1_200));
        billing.lambda("status-api", Duration::from_micros(10));
        billing.lambda("status-api", Duration::from_millis(3));
        let counts = billing.snapshot();
        assert_eq!(counts.lambda_requests["status-api"], 3);
        assert_eq!(counts.lambda_billed_ms["status-api"], 2 + MODELLED_INIT_MS + 1 + 3);
    }

    #[test]
    fn websocket_messages_count_in_32_kb_units() {
        let billing = Billing::default();
        for bytes in [0, 1, 32 * 1024, 32 * 1024 + 1, 128 * 1024] {
            billing.websocket_message(bytes);
        }
        assert_eq!(billing.snapshot().websocket_messages, 1 + 1 + 1 + 2 + 4);
    }
}
