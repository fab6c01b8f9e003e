//! The functions' metrics on a laptop: the same Embedded Metric Format lines the Lambda functions
//! write (see `mcpush_core::metrics`), flushed every [`FLUSH_INTERVAL`] into the log
//! (`RUST_LOG=metrics=debug` shows them) and summed per function for `GET /_local/metrics`.
//!
//! The recorder is the process's, so every stack in one process (tests) shares these counts.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::routing::get;
use serde::Serialize;
use serde_json::Value;

/// How often recorded metrics are flushed into the log and the counts.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(250);
/// Values of a distribution kept for its percentiles.
const RECENT_VALUES: usize = 10_000;

/// A counter's total, or a distribution's summary.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Stat {
    /// Counters: the total; distributions: the sum of the values.
    pub sum: f64,
    /// Distributions only: how many values, their largest and percentiles of the latest ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99: Option<f64>,
    #[serde(skip)]
    recent: VecDeque<f64>,
}

impl Stat {
    fn add(&mut self, value: &Value) {
        match value {
            Value::Array(values) => {
                let values: Vec<f64> = values.iter().filter_map(Value::as_f64).collect();
                self.count = Some(self.count.unwrap_or(0) + values.len() as u64);
                for v in values {
                    self.sum += v;
                    self.max = Some(self.max.map_or(v, |m| m.max(v)));
                    if self.recent.len() == RECENT_VALUES {
                        self.recent.pop_front();
                    }
                    self.recent.push_back(v);
                }
            }
            other => self.sum += other.as_f64().unwrap_or(0.0),
        }
    }

    /// A copy with the percentiles of the latest values filled in (computed when read, not on
    /// every flush).
    fn summarised(&self) -> Self {
        let mut sorted: Vec<f64> = self.recent.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let at = |q: f64| sorted.get(((sorted.len() as f64 - 1.0) * q).round() as usize).copied();
        Self { sum: self.sum, count: self.count, max: self.max, p50: at(0.5), p99: at(0.99), recent: VecDeque::new() }
    }
}

/// Function → metric → stat.
pub type Counts = BTreeMap<String, BTreeMap<String, Stat>>;

#[derive(Default)]
pub struct LocalMetrics {
    counts: Mutex<Counts>,
}

impl LocalMetrics {
    /// The process's metrics: installs the recorder (`METRICS_NAMESPACE`) and starts the flusher
    /// on first use (inside a Tokio runtime).
    pub fn global() -> Arc<Self> {
        static GLOBAL: OnceLock<Arc<LocalMetrics>> = OnceLock::new();
        GLOBAL
            .get_or_init(|| {
                mcpush_core::metrics::collector(&mcpush_core::config::Env::process().metrics_namespace());
                let metrics = Arc::new(LocalMetrics::default());
                let flushing = Arc::downgrade(&metrics);
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(FLUSH_INTERVAL);
                    loop {
                        tick.tick().await;
                        let Some(metrics) = flushing.upgrade() else { break };
                        metrics.flush();
                    }
                });
                metrics
            })
            .clone()
    }

    /// Takes what was recorded since the last flush: logs each EMF line and adds it to the counts.
    pub fn flush(&self) {
        let mut lines = Vec::new();
        mcpush_core::metrics::flush(&mut lines);
        for line in String::from_utf8_lossy(&lines).lines() {
            tracing::debug!(target: "metrics", "{line}");
            if let Ok(document) = serde_json::from_str::<Value>(line) {
                self.add(&document);
            }
        }
    }

    /// Adds one EMF document: each metric it declares, under its `Function` dimension.
    fn add(&self, document: &Value) {
        let function = document.get(mcpush_core::metrics::DIMENSION).and_then(Value::as_str).unwrap_or("-").to_owned();
        let declared = document
            .pointer("/_aws/CloudWatchMetrics/0/Metrics")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let Ok(mut counts) = self.counts.lock() else { return };
        for metric in declared {
            if let Some(name) = metric.get("Name").and_then(Value::as_str)
                && let Some(value) = document.get(name)
            {
                counts.entry(function.clone()).or_default().entry(name.to_owned()).or_default().add(value);
            }
        }
    }

    /// Everything counted so far (flushing first).
    pub fn snapshot(&self) -> Counts {
        self.flush();
        let Ok(counts) = self.counts.lock() else { return Counts::new() };
        counts
            .iter()
            .map(|(function, stats)| {
                (function.clone(), stats.iter().map(|(name, stat)| (name.clone(), stat.summarised())).collect())
            })
            .collect()
    }
}

/// `GET /_local/metrics`: the counts as JSON, `{"progress-push": {"PushDelivered": {"sum": 3}, …}, …}`,
/// and what AWS would bill for it under `billing` ([`crate::aws::billing`]).
pub fn router(metrics: Arc<LocalMetrics>, billing: Arc<crate::aws::billing::Billing>) -> Router {
    Router::new().route(
        "/_local/metrics",
        get(move || async move {
            let mut counts = serde_json::to_value(metrics.snapshot()).unwrap_or_else(|_| serde_json::json!({}));
            if let (Some(object), Ok(billing)) = (counts.as_object_mut(), serde_json::to_value(billing.snapshot())) {
                object.insert("billing".to_owned(), billing);
            }
            Json(counts)
        }),
    )
}
