//! API Gateway's WebSocket limits in the emulator, over real sockets: a client message over
//! 128 KB or a frame over 32 KB closes the connection with 1009; a reader that takes nothing
//! while 1,000 messages are posted to it is closed with 1008 once 1 MiB waits for it; an idle
//! connection (pings do not count) and one past its maximum age are closed with 1001 and
//! disconnected.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use mcpush_local::aws::apigw_ws::{MAX_QUEUED_BYTES, WebSocketApi};
use mcpush_local::{Options, local};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn start() -> (String, std::sync::Arc<WebSocketApi>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stack = local(&base, Options::default());
    tokio::spawn(axum::serve(listener, stack.router).into_future());
    (base, stack.api)
}

async fn connect(base: &str) -> Socket {
    tokio_tungstenite::connect_async(format!("{}/ws", base.replace("http://", "ws://"))).await.unwrap().0
}

/// A text message sent as `parts` frames of `size` bytes each.
async fn send_fragmented(socket: &mut Socket, text: &str, size: usize) {
    let chunks: Vec<&[u8]> = text.as_bytes().chunks(size).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let opcode = if i == 0 { OpCode::Data(Data::Text) } else { OpCode::Data(Data::Continue) };
        socket.send(Message::Frame(Frame::message(chunk.to_vec(), opcode, i + 1 == chunks.len()))).await.unwrap();
    }
}

/// The close code the server ends with (frames before it are skipped).
async fn close_code(socket: &mut Socket) -> Option<u16> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), socket.next()).await.expect("the server answers") {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            _ => return None,
        }
    }
}

fn ping_padded_to(bytes: usize) -> String {
    let shell = r#"{"action":"ping","pad":""}"#;
    format!(r#"{{"action":"ping","pad":"{}"}}"#, "x".repeat(bytes - shell.len()))
}

#[tokio::test]
async fn messages_over_128_kb_and_frames_over_32_kb_close_with_1009() {
    let (base, api) = start().await;

    // a message of 120 KB in 30 KB frames is fine: the route answers and the connection stays
    let mut fine = connect(&base).await;
    send_fragmented(&mut fine, &ping_padded_to(120 * 1024), 30 * 1024).await;
    let reply = tokio::time::timeout(Duration::from_secs(5), fine.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(reply.to_text().unwrap(), r#"{"type":"pong"}"#);

    // a single 40 KB frame, and a 150 KB message in 30 KB frames, are closed with 1009
    let mut big_frame = connect(&base).await;
    send_fragmented(&mut big_frame, &ping_padded_to(40 * 1024), 40 * 1024).await;
    assert_eq!(close_code(&mut big_frame).await, Some(1009));
    let mut big_message = connect(&base).await;
    send_fragmented(&mut big_message, &ping_padded_to(150 * 1024), 30 * 1024).await;
    assert_eq!(close_code(&mut big_message).await, Some(1009));
    assert_eq!(api.counters.closed_for_limits.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn a_reader_that_takes_nothing_is_closed_before_1_mib_waits_for_it() {
    // GIVEN a client that connects and then never reads
    let (base, api) = start().await;
    let _silent = connect(&base).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let id = api.connection_ids().pop().expect("one connection");

    // WHEN 1,000 messages of 64 KB are posted to it through the Management API
    let client = reqwest::Client::new();
    let message = format!(r#"{{"type":"status","pad":"{}"}}"#, "x".repeat(64 * 1024 - 30));
    let mut url = reqwest::Url::parse(&format!("{base}/@connections")).unwrap();
    url.path_segments_mut().unwrap().push(&id); // ids hold '/' and '+', as API Gateway's do
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..1000 {
        let status = client.post(url.clone()).body(message.clone()).send().await.unwrap().status();
        *statuses.entry(status.as_u16()).or_insert(0) += 1;
    }
    let gone = statuses.get(&410).copied().unwrap_or(0);

    // THEN what waited for it never exceeded 1 MiB, the connection was closed, and later posts
    // answer 410 Gone
    let max = api.counters.max_queued_bytes.load(Ordering::Relaxed);
    assert!(max as usize <= MAX_QUEUED_BYTES, "{max} bytes waited");
    assert!(gone > 0, "the slow reader was never closed: {statuses:?}");
    assert_eq!(api.counters.closed_for_limits.load(Ordering::Relaxed), 1);
    assert!(!api.connection_ids().contains(&id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_old_connections_are_closed_with_1001_and_disconnected() {
    use mcpush_local::aws::apigw_ws::ConnectionLimits;
    // GIVEN API Gateway's limits shortened: 1 s idle, 3 s at most
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let options = Options {
        apigw_limits: ConnectionLimits { idle: Duration::from_secs(1), max_age: Duration::from_secs(3) },
        ..Options::default()
    };
    let stack = local(&base, options);
    let subscriptions = stack.stack.subscriptions.clone();
    tokio::spawn(axum::serve(listener, stack.router).into_future());

    // WHEN one client subscribes and then only pings (control frames), and another sends data
    let mut quiet = connect(&base).await;
    quiet.send(Message::Text(r#"{"action":"subscribe","input_file":"idle.mp4"}"#.into())).await.unwrap();
    let started = std::time::Instant::now();
    while subscriptions.subscribers("idle.mp4", 0).await.unwrap().is_empty() {
        assert!(started.elapsed() < Duration::from_millis(500), "the subscription is recorded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut chatty = connect(&base).await;
    let pinger = tokio::spawn(async move {
        for _ in 0..8 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if quiet.send(Message::Ping(vec![1].into())).await.is_err() {
                break;
            }
        }
        close_code(&mut quiet).await
    });
    let talker = tokio::spawn(async move {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if chatty.send(Message::Text(r#"{"action":"ping"}"#.into())).await.is_err() {
                break;
            }
        }
        close_code(&mut chatty).await
    });

    // THEN the quiet one is closed as idle with 1001, and its $disconnect dropped its subscription
    assert_eq!(pinger.await.unwrap(), Some(1001));
    let idle_after = started.elapsed();
    assert!(subscriptions.subscribers("idle.mp4", 0).await.unwrap().is_empty());
    // AND the chatty one lives on until its maximum age, then is closed with 1001 too
    assert_eq!(talker.await.unwrap(), Some(1001));
    let old_after = started.elapsed();
    assert!(
        idle_after < Duration::from_millis(2500) && old_after >= Duration::from_millis(2900),
        "idle {idle_after:?}, max age {old_after:?}"
    );
}
