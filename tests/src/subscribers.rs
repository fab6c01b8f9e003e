//! The fan-out benchmarks' subscribers (`fanout`, `push_limits`): N real WebSocket clients in a
//! child process, subscribed to one file, reporting on stdout when all of them have a round, and
//! the stream record that starts a round.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// The file every subscriber watches.
pub const FILE: &str = "benchmark.mp4";
/// Rounds a client process can count (progress values 1 to 63).
pub const MAX_ROUNDS: usize = 64;

/// One change record of the benchmark job: it moves from `progress - 1` to `progress`.
pub fn change(progress: u32) -> Value {
    crate::stream_event(vec![crate::status_record(
        "1795557600000-benchm",
        FILE,
        Some(("PROGRESSING", progress - 1)),
        ("PROGRESSING", progress),
        progress.into(),
    )])
}

/// The client process: `n` connections to `url` subscribe to [`FILE`] (256 handshakes at a
/// time); stdout gets `ready` once all are subscribed, then `round K` once all have the status
/// with progress K.
pub async fn clients(url: String, n: usize) {
    let received: Arc<Vec<AtomicUsize>> = Arc::new((0..MAX_ROUNDS).map(|_| AtomicUsize::new(0)).collect());
    let ready = Arc::new(AtomicUsize::new(0));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let permits = Arc::new(tokio::sync::Semaphore::new(256));
    for _ in 0..n {
        let (url, received, ready, done_tx, permits) =
            (url.clone(), received.clone(), ready.clone(), done_tx.clone(), permits.clone());
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
                if round < MAX_ROUNDS && received[round].fetch_add(1, Ordering::SeqCst) + 1 == n {
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
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
}

/// A fan-out benchmark's `main` in client mode: `BIN --clients URL N` runs [`clients`] and
/// answers true; otherwise answers false and leaves the arguments to the benchmark.
pub fn run_as_clients(args: &[String], runtime: &tokio::runtime::Runtime) -> bool {
    if args.first().map(String::as_str) != Some("--clients") {
        return false;
    }
    let url = args.get(1).cloned().expect("url");
    let n: usize = args.get(2).and_then(|n| n.parse().ok()).expect("client count");
    runtime.block_on(clients(url, n));
    true
}

/// The subscriber counts given on the command line, else 1,000 and 10,000.
pub fn sizes(args: &[String]) -> Vec<usize> {
    let sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() { vec![1000, 10_000] } else { sizes }
}

/// In-memory stores, the emulator, and `n` subscribers in a child process (this benchmark's own
/// binary with `--clients`), all subscribed to [`FILE`].
pub struct Fleet {
    pub n: usize,
    pub jobs: Arc<mcpush_core::adapters::memory::MemoryJobStore>,
    pub subscriptions: Arc<mcpush_core::adapters::memory::MemorySubscriptionStore>,
    pub emulator: crate::ws::Emulator,
    child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    progress: u32,
}

impl Fleet {
    /// Starts the emulator and the client process and waits until every client has subscribed.
    pub async fn start(n: usize) -> Self {
        use std::io::BufRead;
        let jobs = Arc::new(mcpush_core::adapters::memory::MemoryJobStore::default());
        let subscriptions = Arc::new(mcpush_core::adapters::memory::MemorySubscriptionStore::default());
        let emulator =
            crate::ws::Emulator::start(jobs.clone(), subscriptions.clone(), mcpush_core::config::WsConfig::default())
                .await;
        let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args(["--clients", &emulator.ws_url(), &n.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn client process");
        let lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut fleet = Self { n, jobs, subscriptions, emulator, child, lines, progress: 0 };
        assert_eq!(fleet.next_line(), "ready", "clients connected and subscribed");
        fleet
    }

    fn next_line(&mut self) -> String {
        tokio::task::block_in_place(|| self.lines.next().and_then(Result::ok).unwrap_or_default())
    }

    /// Pushes the next change with `config`: the time until every client had it, and what
    /// progress-push counted.
    pub async fn push(
        &mut self,
        config: &mcpush_core::config::PushConfig,
    ) -> (std::time::Duration, mcpush_core::handlers::progress_push::PushStats) {
        use mcpush_core::handlers::progress_push::{self, PushContext};
        self.progress += 1;
        let progress = self.progress;
        let ctx =
            PushContext::new(self.jobs.as_ref(), self.subscriptions.as_ref(), self.emulator.pusher.as_ref(), config);
        let event = change(progress);
        let start = std::time::Instant::now();
        let (_, stats) = progress_push::handle(&ctx, &event, mcpush_core::now_ms() / 1000).await;
        let line = self.next_line();
        let elapsed = start.elapsed();
        assert_eq!(line, format!("round {progress}"), "every client got round {progress}");
        (elapsed, stats)
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
