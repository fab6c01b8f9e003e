//! The API Gateway WebSocket emulator: the events it hands the integrations, its route
//! selection, and its Management API as the real SDK client sees it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use mcpush_core::ports::{PushError, Pusher};
use mcpush_local::aws::apigw_ws::{MAX_POST_BYTES, WebSocketApi, WsBackend};
use mcpush_local::run::backend::{ROUTES, local_pusher};
use mcpush_tests::ws::Client;

#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<ApiGatewayWebsocketProxyRequest>>,
}

impl Recorder {
    fn record(&self, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
        self.events.lock().unwrap().push(event);
        let mut ok = ApiGatewayProxyResponse::default();
        ok.status_code = 200;
        ok
    }

    fn routes(&self) -> Vec<String> {
        self.events.lock().unwrap().iter().map(|e| e.request_context.route_key.clone().unwrap_or_default()).collect()
    }
}

#[async_trait]
impl WsBackend for Recorder {
    async fn connect(&self, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
        self.record(event)
    }
    async fn disconnect(&self, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
        self.record(event)
    }
    async fn message(&self, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
        self.record(event)
    }
}

async fn start() -> (Arc<Recorder>, Arc<WebSocketApi>, String) {
    let recorder = Arc::new(Recorder::default());
    let api = WebSocketApi::new(recorder.clone(), &ROUTES, "dev", "127.0.0.1");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = api.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (recorder, api, base)
}

async fn wait_for(recorder: &Recorder, count: usize) {
    for _ in 0..100 {
        if recorder.events.lock().unwrap().len() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("expected {count} events, got {:?}", recorder.routes());
}

#[tokio::test]
async fn events_carry_what_api_gateway_sends_and_routes_follow_the_action() {
    let (recorder, _api, base) = start().await;
    let url = base.replace("http://", "ws://") + "/ws?client=demo";
    let mut client = Client::connect_raw(&url, Some("http://localhost:3000")).await.unwrap();
    for body in
        [r#"{"action":"subscribe","input_file":"a.mp4"}"#, r#"{"action":"ping"}"#, r#"{"action":"nope"}"#, "not json"]
    {
        client.send(body).await;
    }
    client.close().await;
    wait_for(&recorder, 6).await;

    assert_eq!(recorder.routes(), ["$connect", "subscribe", "ping", "$default", "$default", "$disconnect"]);
    let events = recorder.events.lock().unwrap();
    let connect = &events[0].request_context;
    assert_eq!(connect.event_type.as_deref(), Some("CONNECT"));
    assert!(connect.connected_at > 1_700_000_000_000 && connect.request_time_epoch >= connect.connected_at);
    let id = connect.connection_id.clone().unwrap();
    assert!(id.len() == 16 && id.ends_with('='), "{id}");
    assert_eq!((connect.stage.as_deref(), connect.domain_name.as_deref()), (Some("dev"), Some("127.0.0.1")));
    assert_eq!(events[0].headers.get("origin").unwrap(), "http://localhost:3000");
    assert_eq!(events[0].query_string_parameters.first("client"), Some("demo"));
    let message = &events[1];
    assert_eq!(message.request_context.event_type.as_deref(), Some("MESSAGE"));
    assert_eq!(message.body.as_deref(), Some(r#"{"action":"subscribe","input_file":"a.mp4"}"#));
    assert!(message.request_context.message_id.is_some());
    assert!(events.iter().all(|e| e.request_context.connection_id.as_deref() == Some(id.as_str())));
    let disconnect = &events[5].request_context;
    // A close frame without a status code is reported as 1005, as API Gateway does.
    assert_eq!((disconnect.event_type.as_deref(), disconnect.disconnect_status_code), (Some("DISCONNECT"), Some(1005)));
}

#[tokio::test]
async fn management_api_answers_the_sdk_like_api_gateway() {
    let (recorder, api, base) = start().await;
    let pusher = local_pusher(&base);
    let mut client = Client::connect_raw(&(base.replace("http://", "ws://") + "/ws"), None).await.unwrap();
    wait_for(&recorder, 1).await;
    let id = api.connection_ids().pop().unwrap();

    pusher.post(&id, br#"{"type":"pong"}"#).await.unwrap();
    assert_eq!(client.next().await, serde_json::json!({"type": "pong"}));
    assert!(matches!(pusher.post(&id, &vec![b'x'; MAX_POST_BYTES + 1]).await, Err(PushError::TooLarge(_))));
    assert!(matches!(pusher.post("NoSuchConnId=", b"{}").await, Err(PushError::Gone)));

    let sdk = aws_sdk_apigatewaymanagement::Client::from_conf(
        aws_sdk_apigatewaymanagement::Config::builder()
            .behavior_version(aws_sdk_apigatewaymanagement::config::BehaviorVersion::latest())
            .region(aws_sdk_apigatewaymanagement::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_apigatewaymanagement::config::Credentials::new("t", "t", None, None, "t"))
            .endpoint_url(&base)
            .build(),
    );
    let info = sdk.get_connection().connection_id(&id).send().await.unwrap();
    assert!(info.connected_at.is_some());
    assert_eq!(info.identity.and_then(|i| i.source_ip), Some("127.0.0.1".into()));

    sdk.delete_connection().connection_id(&id).send().await.unwrap();
    wait_for(&recorder, 2).await;
    assert_eq!(recorder.routes(), ["$connect", "$disconnect"]);
    assert!(matches!(pusher.post(&id, b"{}").await, Err(PushError::Gone)));
}

#[tokio::test]
async fn posts_of_invalid_utf8_never_make_a_healthy_reader_look_slow() {
    // GIVEN a connection whose client reads everything
    let (recorder, api, base) = start().await;
    let pusher = local_pusher(&base);
    let mut client = Client::connect_raw(&(base.replace("http://", "ws://") + "/ws"), None).await.unwrap();
    wait_for(&recorder, 1).await;
    let id = api.connection_ids().pop().unwrap();

    // WHEN posts carry invalid UTF-8 (each byte becomes a 3-byte replacement character)
    let mut body = br#"{"type":"status","junk":""#.to_vec();
    body.extend([0xff; 200]);
    body.extend(br#""}"#);
    for _ in 0..5 {
        pusher.post(&id, &body).await.unwrap();
        assert_eq!(client.next().await["junk"].as_str().map(|j| j.chars().count()), Some(200));
    }

    // THEN the connection is still open and counted as keeping up
    pusher.post(&id, br#"{"type":"pong"}"#).await.unwrap();
    assert_eq!(client.next().await, serde_json::json!({"type": "pong"}));
    assert_eq!(api.counters.closed_for_limits.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[tokio::test]
async fn the_fault_switch_answers_429_or_500_and_the_pusher_calls_them_retryable() {
    let (recorder, api, base) = start().await;
    let pusher = local_pusher(&base);
    let _client = Client::connect_raw(&(base.replace("http://", "ws://") + "/ws"), None).await.unwrap();
    wait_for(&recorder, 1).await;
    let id = api.connection_ids().pop().unwrap();
    api.set_fault_rate(1.0);
    for _ in 0..10 {
        assert!(pusher.post(&id, b"{}").await.is_err_and(|e| e.is_retryable()));
    }
    api.set_fault_rate(0.0);
    pusher.post(&id, b"{}").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_connects_above_the_connect_rate_gets_429_at_the_handshake() {
    use mcpush_local::aws::apigw_ws::{Rate, RequestLimits};
    // GIVEN a connect bucket of 5 refilled at 1/s (slow, so that a loaded machine's slow
    // handshakes cannot earn a sixth token during the burst)
    let (recorder, api, base) = start().await;
    api.set_request_limits(RequestLimits {
        connect_rate: Some(Rate { per_second: 1.0, burst: 5.0 }),
        ..RequestLimits::default()
    });
    let url = base.replace("http://", "ws://") + "/ws";

    // WHEN 8 clients connect at once
    let attempts = futures::future::join_all((0..8).map(|_| Client::connect_raw(&url, None))).await;

    // THEN 5 are in (and ran $connect), the others were refused with 429 before any route ran
    let refused: Vec<u16> = attempts
        .iter()
        .filter_map(|a| match a {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Some(response.status().as_u16()),
            _ => None,
        })
        .collect();
    assert_eq!(attempts.iter().filter(|a| a.is_ok()).count(), 5);
    assert_eq!(refused, [429, 429, 429]);
    wait_for(&recorder, 5).await;
    assert_eq!(recorder.routes(), ["$connect"; 5]);
    assert_eq!(api.counters.connects_throttled.load(std::sync::atomic::Ordering::Relaxed), 3);
    // AND a second later the bucket has refilled
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(Client::connect_raw(&url, None).await.is_ok());
}

#[tokio::test]
async fn posts_take_the_latency_and_above_the_post_rate_answer_429_too_many_requests() {
    use mcpush_local::aws::apigw_ws::{Rate, RequestLimits};
    // GIVEN a connection, then APIGW_POST_LATENCY_MS = 30 and a post bucket of 3 refilled at one
    // per 10 s (so the five posts cannot earn a token back, however slow the machine)
    let (recorder, api, base) = start().await;
    let pusher = local_pusher(&base);
    let mut client = Client::connect_raw(&(base.replace("http://", "ws://") + "/ws"), None).await.unwrap();
    wait_for(&recorder, 1).await;
    let id = api.connection_ids().pop().unwrap();
    let latency = Duration::from_millis(30);
    api.set_request_limits(RequestLimits {
        post_latency: (latency, latency),
        post_rate: Some(Rate { per_second: 0.1, burst: 3.0 }),
        connect_rate: None,
    });

    // WHEN five posts go one after the other
    let mut outcomes = Vec::new();
    for i in 0..5 {
        let started = std::time::Instant::now();
        let result = pusher.post(&id, format!("{{\"n\":{i}}}").as_bytes()).await;
        outcomes.push((result, started.elapsed()));
    }

    // THEN each took at least the latency, the burst of 3 went through and the rest were throttled
    assert!(
        outcomes.iter().all(|(_, took)| *took >= latency),
        "{:?}",
        outcomes.iter().map(|o| o.1).collect::<Vec<_>>()
    );
    assert!(outcomes[..3].iter().all(|(r, _)| r.is_ok()));
    assert!(
        outcomes[3..].iter().all(|(r, _)| matches!(r, Err(PushError::Throttled(_)))),
        "{:?}",
        outcomes.iter().map(|o| &o.0).collect::<Vec<_>>()
    );
    assert_eq!(api.counters.throttled.load(std::sync::atomic::Ordering::Relaxed), 2);
    for i in 0..3 {
        assert_eq!(client.next().await, serde_json::json!({"n": i}));
    }
}
