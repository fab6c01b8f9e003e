//! Fan-out benchmark: one job change pushed to N subscribed, real WebSocket clients through the
//! API Gateway emulator and the real aws-sdk-apigatewaymanagement client, at several push
//! concurrencies. See `tests/benches/README.md` for the method and recorded figures.
//!
//! `cargo bench -p mcpush-tests --bench fanout [-- N ...]` (default N: 1000 10000).
//! The clients live in a child process (this binary with `--clients`), so each side stays under
//! the per-process file descriptor limit.

use mcpush_core::config::{PushConfig, RetryPolicy};
use mcpush_tests::subscribers::{self, Fleet};

const CONCURRENCIES: [usize; 4] = [1, 16, 64, 256];
const REPEATS: usize = 3;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    if subscribers::run_as_clients(&args, &runtime) {
        return;
    }
    println!("clients  concurrency  median_ms  messages_per_s  (of {REPEATS} runs)");
    for n in subscribers::sizes(&args) {
        runtime.block_on(server(n));
    }
}

async fn server(n: usize) {
    let mut fleet = Fleet::start(n).await;
    for concurrency in CONCURRENCIES {
        let config = PushConfig::fixed(concurrency, RetryPolicy { max_attempts: 1, backoff_base_ms: 1 });
        let mut times = Vec::new();
        for _ in 0..REPEATS {
            let (elapsed, stats) = fleet.push(&config).await;
            assert_eq!(stats.delivered, n);
            times.push(elapsed);
        }
        times.sort();
        let median = times[REPEATS / 2];
        println!(
            "{n:>7}  {concurrency:>11}  {:>9.1}  {:>14.0}",
            median.as_secs_f64() * 1e3,
            n as f64 / median.as_secs_f64()
        );
    }
}
