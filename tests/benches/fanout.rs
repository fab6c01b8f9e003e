//! Fan-out benchmark: one job change pushed to N subscribed, real WebSocket clients through the
//! API Gateway emulator and the real aws-sdk-apigatewaymanagement client, at several push
//! concurrencies. See `tests/benches/README.md` for the method and recorded figures.
//!
//! `cargo bench -p mcpush-tests --bench fanout [-- N ...]` (default N: 1000 10000).
//! The clients live in a child process (this binary with `--clients`), so each side stays under
//! the per-process file descriptor limit.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use mcpush_core::adapters::memory::{MemoryJobStore, MemorySubscriptionStore};
use mcpush_core::config::{PushConfig, RetryPolicy, WsConfig};
use mcpush_core::handlers::progress_push::{self, PushContext};
use mcpush_tests::ws::Emulator;

const CONCURRENCIES: [usize; 4] = [1, 16, 64, 256];
const REPEATS: usize = 3;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    if args.first().map(String::as_str) == Some("--clients") {
        let url = args.get(1).cloned().expect("url");
        let n: usize = args.get(2).and_then(|n| n.parse().ok()).expect("client count");
        runtime.block_on(mcpush_tests::subscribers::clients(url, n));
        return;
    }
    let sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![1000, 10_000] } else { sizes };
    println!("clients  concurrency  median_ms  messages_per_s  (of {REPEATS} runs)");
    for n in sizes {
        runtime.block_on(server(n));
    }
}


async fn server(n: usize) {
    let jobs = Arc::new(MemoryJobStore::default());
    let subscriptions = Arc::new(MemorySubscriptionStore::default());
    let emulator = Emulator::start(jobs.clone(), subscriptions.clone(), WsConfig::default()).await;
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .args(["--clients", &emulator.ws_url(), &n.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn client process");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next_line = move || lines.next().and_then(Result::ok).unwrap_or_default();
    assert_eq!(next_line(), "ready", "clients connected and subscribed");

    let mut progress = 1;
    for concurrency in CONCURRENCIES {
        let config = PushConfig::fixed(concurrency, RetryPolicy { max_attempts: 1, backoff_base_ms: 1 });
        let ctx = PushContext { jobs: jobs.as_ref(), subscriptions: subscriptions.as_ref(), pusher: emulator.pusher.as_ref(), config: &config };
        let mut times = Vec::new();
        for _ in 0..REPEATS {
            let event = mcpush_tests::subscribers::change(progress);
            let start = Instant::now();
            let (_, stats) = progress_push::handle(&ctx, &event, mcpush_core::now_ms() / 1000).await;
            let line = tokio::task::block_in_place(&mut next_line);
            let elapsed = start.elapsed();
            assert_eq!(line, format!("round {progress}"), "every client got round {progress}");
            assert_eq!(stats.delivered, n);
            times.push(elapsed);
            progress += 1;
        }
        times.sort();
        let median = times[REPEATS / 2];
        println!("{n:>7}  {concurrency:>11}  {:>9.1}  {:>14.0}", median.as_secs_f64() * 1e3, n as f64 / median.as_secs_f64());
    }
    drop(child.stdin.take());
    let _ = child.kill();
    let _ = child.wait();
}
