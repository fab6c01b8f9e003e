//! Fan-out benchmark: one job change pushed to N subscribed, real WebSocket clients through the
//! API Gateway emulator and the real aws-sdk-apigatewaymanagement client, at several push
//! concurrencies. See `tests/benches/README.md` for the method and recorded figures.
//!
//! `cargo bench -p mcpush-tests --bench fanout [-- N ...]` (default N: 1000 10000).
//! The clients live in a child process (this binary with `--clients`), so each side stays under
//! the per-process file descriptor limit.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use mcpush_core::adapters::memory::{MemoryJobStore, MemorySubscriptionStore};
use mcpush_core::config::{PushConfig, RetryPolicy, WsConfig};
use mcpush_core::handlers::progress_push::{self, PushContext};
use mcpush_tests::ws::Emulator;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const FILE: &str = "benchmark.mp4";
const CONCURRENCIES: [usize; 4] = [1, 16, 64, 256];
const REPEATS: usize = 3;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    if args.first().map(String::as_str) == Some("--clients") {
        let url = args.get(1).cloned().expect("url");
        let n: usize = args.get(2).and_then(|n| n.parse().ok()).expect("client count");
        runtime.block_on(clients(url, n));
        return;
    }
    let sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![1000, 10_000] } else { sizes };
    println!("clients  concurrency  median_ms  messages_per_s  (of {REPEATS} runs)");
    for n in sizes {
        runtime.block_on(server(n));
    }
}

/// One change record: the job moves from `progress - 1` to `progress`.
fn change(progress: u32) -> Value {
    let image = |p: u32| json!({"JobId": {"S": "1795557600000-benchm"}, "InputFile": {"S": FILE},
        "JobStatus": {"S": "PROGRESSING"}, "ProgressRate": {"N": p.to_string()}, "JobOrder": {"N": "1795557600000"}});
    json!({"Records": [{"eventID": progress.to_string(), "eventName": "MODIFY", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1", "dynamodb": {"ApproximateCreationDateTime": 1795557600, "Keys": {"JobId": {"S": "1795557600000-benchm"}},
        "NewImage": image(progress), "OldImage": image(progress - 1), "SequenceNumber": progress.to_string(), "SizeBytes": 120,
        "StreamViewType": "NEW_AND_OLD_IMAGES"}, "eventSourceARN": "arn:aws:dynamodb:us-east-1:000000000000:table/bench/stream/x"}]})
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
            let event = change(progress);
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

async fn clients(url: String, n: usize) {
    let received: Arc<Vec<AtomicUsize>> = Arc::new((0..64).map(|_| AtomicUsize::new(0)).collect());
    let ready = Arc::new(AtomicUsize::new(0));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let permits = Arc::new(tokio::sync::Semaphore::new(256));
    for _ in 0..n {
        let (url, received, ready, done_tx, permits) = (url.clone(), received.clone(), ready.clone(), done_tx.clone(), permits.clone());
        tokio::spawn(async move {
            let permit = permits.acquire_owned().await.expect("semaphore");
            let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str()).await.expect("connect");
            let subscribe = json!({"action": "subscribe", "input_file": FILE}).to_string();
            socket.send(Message::Text(subscribe.into())).await.expect("subscribe");
            while let Some(Ok(message)) = socket.next().await {
                let Message::Text(text) = message else { continue };
                let value: Value = serde_json::from_str(&text).expect("json");
                match value["type"].as_str() {
                    Some("subscribed") => {
                        drop(permit);
                        if ready.fetch_add(1, Ordering::SeqCst) + 1 == n {
                            let _ = done_tx.send(0);
                        }
                        break;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            while let Some(Ok(message)) = socket.next().await {
                let Message::Text(text) = message else { continue };
                let value: Value = serde_json::from_str(&text).expect("json");
                let round = value["progress_rate"].as_u64().unwrap_or(0) as usize;
                if received[round].fetch_add(1, Ordering::SeqCst) + 1 == n {
                    let _ = done_tx.send(round);
                }
            }
        });
    }
    drop(done_tx);
    let stdout = std::io::stdout();
    while let Some(round) = done_rx.recv().await {
        let mut out = stdout.lock();
        let _ = if round == 0 { writeln!(out, "ready") } else { writeln!(out, "round {round}") };
        let _ = out.flush();
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
}
