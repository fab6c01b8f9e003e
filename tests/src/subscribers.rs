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
    let image = |p: u32| json!({"JobId": {"S": "1795557600000-benchm"}, "InputFile": {"S": FILE},
        "JobStatus": {"S": "PROGRESSING"}, "ProgressRate": {"N": p.to_string()}, "JobOrder": {"N": "1795557600000"}});
    json!({"Records": [{"eventID": progress.to_string(), "eventName": "MODIFY", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1", "dynamodb": {"ApproximateCreationDateTime": 1795557600, "Keys": {"JobId": {"S": "1795557600000-benchm"}},
        "NewImage": image(progress), "OldImage": image(progress - 1), "SequenceNumber": progress.to_string(), "SizeBytes": 120,
        "StreamViewType": "NEW_AND_OLD_IMAGES"}, "eventSourceARN": "arn:aws:dynamodb:us-east-1:000000000000:table/bench/stream/x"}]})
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
