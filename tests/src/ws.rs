//! WebSocket test support: the emulator with the real handlers behind it, and a real WebSocket
//! client (tokio-tungstenite) that records what it receives.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use mcpush_core::config::WsConfig;
use mcpush_core::domain::AllowedOrigins;
use mcpush_core::ports::{JobStore, SubscriptionStore};
use mcpush_local::aws::apigw_ws::WebSocketApi;
use mcpush_local::run::backend::{HandlerBackend, ROUTES, local_pusher};
use serde_json::Value;

pub use crate::protocol::{assert_client_message, assert_server_message};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const ORIGINS: &str = r"http://localhost:\d+ https://app\.example\.com";

/// The emulator serving on a free loopback port, wired to the handlers with the given stores.
pub struct Emulator {
    pub api: Arc<WebSocketApi>,
    pub base: String,
    pub pusher: Arc<mcpush_core::adapters::apigw_management::ManagementApiPusher>,
}

impl Emulator {
    pub async fn start(jobs: Arc<dyn JobStore>, subscriptions: Arc<dyn SubscriptionStore>, config: WsConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind emulator");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let pusher = Arc::new(local_pusher(&base));
        let backend = HandlerBackend {
            origins: Arc::new(AllowedOrigins::parse(ORIGINS).expect("origins")),
            jobs,
            subscriptions,
            pusher: pusher.clone(),
            config,
            identity: None,
            billing: Arc::default(),
        };
        let api = WebSocketApi::new(Arc::new(backend), &ROUTES, "test", "127.0.0.1");
        let router = api.router();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { api, base, pusher }
    }

    pub fn ws_url(&self) -> String {
        self.base.replace("http://", "ws://") + "/ws"
    }

    /// Connects a client with an allowed origin.
    pub async fn client(&self) -> Client {
        Client::connect(&self.ws_url(), Some("http://localhost:3000")).await.expect("connect")
    }
}

/// A WebSocket client for the tests. Every message it receives is checked against
/// `docs/asyncapi.yaml`, and so is every message it sends that the server answers without an
/// `error` (the tests also send malformed messages on purpose).
pub struct Client {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Every message received so far, in order.
    pub received: Vec<Value>,
    /// Check messages against `docs/asyncapi.yaml` (not for raw emulator tests).
    checked: bool,
}

impl Client {
    pub async fn connect(url: &str, origin: Option<&str>) -> Result<Self, WsError> {
        let mut request = url.into_client_request()?;
        if let Some(origin) = origin {
            request.headers_mut().insert("origin", origin.parse().expect("origin header"));
        }
        let (socket, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Self { socket, received: Vec::new(), checked: true })
    }

    /// A client of the bare emulator, whose posts are any bytes a test sends: no protocol checks.
    pub async fn connect_raw(url: &str, origin: Option<&str>) -> Result<Self, WsError> {
        Ok(Self { checked: false, ..Self::connect(url, origin).await? })
    }

    pub async fn send(&mut self, text: &str) {
        self.socket.send(Message::Text(text.into())).await.expect("send");
    }

    /// The next message, or `None` after `wait` without one.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        loop {
            match tokio::time::timeout(wait, self.socket.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    let value: Value = serde_json::from_str(&text).expect("server sent JSON");
                    if self.checked {
                        assert_server_message(&value);
                    }
                    self.received.push(value.clone());
                    return Some(value);
                }
                Ok(Some(Ok(_))) => continue,
                _ => return None,
            }
        }
    }

    /// The next message; panics after 5 s.
    pub async fn next(&mut self) -> Value {
        self.next_within(Duration::from_secs(5)).await.expect("a message within 5 s")
    }

    /// Sends a message and returns the reply; a message answered without an `error` must be
    /// one the protocol describes.
    pub async fn ask(&mut self, text: &str) -> Value {
        self.send(text).await;
        let reply = self.next().await;
        if self.checked && reply["type"] != "error" {
            assert_client_message(&serde_json::from_str(text).unwrap_or(Value::Null));
        }
        reply
    }

    /// Subscribes and returns the `subscribed` reply.
    pub async fn subscribe(&mut self, input_file: &str) -> Value {
        self.ask(&serde_json::json!({"action": "subscribe", "input_file": input_file}).to_string()).await
    }

    /// Reads until a message satisfies `done` (5 s per message at most), returning all read.
    pub async fn until(&mut self, done: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut read = Vec::new();
        loop {
            let message = self.next().await;
            let finished = done(&message);
            read.push(message);
            if finished {
                return read;
            }
        }
    }

    /// Asserts nothing arrives for `wait`.
    pub async fn expect_silence(&mut self, wait: Duration) {
        if let Some(message) = self.next_within(wait).await {
            panic!("expected no message, got {message}");
        }
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}
