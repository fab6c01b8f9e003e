//! The real Lambda binaries, run as Lambda runs them: a Runtime API server on 127.0.0.1 (the
//! `2018-06-01` routes a custom runtime calls: `invocation/next`, `…/response`, `…/error`,
//! `init/error`) and the function's binary started with `AWS_LAMBDA_RUNTIME_API` pointing at it.
//!
//! [`binaries`] builds the function packages once per test binary (`cargo build`, the dev
//! profile, so the workspace's test build is reused).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};

/// Every Lambda function of the workspace (package = binary name).
pub const FUNCTIONS: [&str; 12] = [
    "create-job",
    "progress-ingest",
    "job-id-api",
    "status-api",
    "upload-api",
    "ws-authorizer",
    "ws-connect",
    "ws-disconnect",
    "ws-message",
    "progress-push",
    "reconcile",
    "event-publisher",
];

/// Builds every function binary once (debug) and answers the folder they are in.
pub fn binaries() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut command = std::process::Command::new(cargo);
            command.arg("build").arg("--quiet").current_dir(crate::workspace());
            for function in FUNCTIONS {
                command.args(["-p", function]);
            }
            let status = command.status().expect("cargo runs");
            assert!(status.success(), "cargo build of the function binaries failed");
            let target = std::env::var("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|_| crate::workspace().join("target"));
            target.join("debug")
        })
        .clone()
}

/// How an invocation ended.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// `…/response`: the function's answer.
    Response(Value),
    /// `…/error`: the error the runtime reported (`errorType`, `errorMessage`).
    Error(Value),
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<(String, Value)>,
    waiting: HashMap<String, oneshot::Sender<Outcome>>,
    init_error: Option<Value>,
    next_calls: usize,
    pid: Option<u32>,
    first_next: Option<Probe>,
}

/// When the process first asked for an event (the end of its init), and the CPU time its
/// threads had used by then (`/proc/<pid>/task/*/schedstat`, Linux only).
#[derive(Clone, Copy, Debug)]
pub struct Probe {
    pub at: std::time::Instant,
    pub cpu: Option<Duration>,
}

/// CPU time used so far by every thread of `pid` (nanosecond resolution, unlike `/proc/<pid>/stat`).
fn cpu_time(pid: u32) -> Option<Duration> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0u64;
    for task in tasks.flatten() {
        let schedstat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        total += schedstat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// The peak resident set of `pid` (`VmHWM`), in bytes.
pub fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

/// A Runtime API for one function process.
#[derive(Clone, Default)]
pub struct RuntimeApi {
    inner: Arc<Mutex<Inner>>,
    queued: Arc<Notify>,
    init_failed: Arc<Notify>,
}

impl RuntimeApi {
    /// Serves the Runtime API on 127.0.0.1; answers it and its `host:port`.
    pub async fn start() -> (Self, String) {
        let api = Self::default();
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(api.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        tokio::spawn(async move { axum::serve(listener, router).await });
        (api, address)
    }

    /// Hands `event` to the function and waits (at most `within`) for its answer.
    pub async fn invoke(&self, event: Value, within: Duration) -> Outcome {
        let rx = self.enqueue(event);
        tokio::time::timeout(within, rx).await.expect("the function answers in time").expect("an answer")
    }

    /// The error the function reported from its init, waiting at most `within`.
    pub async fn init_error(&self, within: Duration) -> Option<Value> {
        let wait = self.init_failed.notified();
        if let Some(error) = self.inner.lock().expect("lock").init_error.clone() {
            return Some(error);
        }
        let _ = tokio::time::timeout(within, wait).await;
        self.inner.lock().expect("lock").init_error.clone()
    }

    /// How many times the function asked for its next event (1 once its init is done).
    pub fn next_calls(&self) -> usize {
        self.inner.lock().map(|i| i.next_calls).unwrap_or(0)
    }

    /// Events queued before the process starts are handed out at its first `/next`, so an
    /// invocation can be timed from the spawn.
    pub fn enqueue(&self, event: Value) -> oneshot::Receiver<Outcome> {
        let id = format!("{:032x}", fastrand::u128(..));
        let (tx, rx) = oneshot::channel();
        let mut inner = self.inner.lock().expect("lock");
        inner.waiting.insert(id.clone(), tx);
        inner.queue.push_back((id, event));
        drop(inner);
        self.queued.notify_one();
        rx
    }

    /// The process whose CPU time the first `/next` samples.
    pub fn watch(&self, pid: u32) {
        self.inner.lock().expect("lock").pid = Some(pid);
    }

    /// The first `/next`, once it happened.
    pub fn first_next(&self) -> Option<Probe> {
        self.inner.lock().ok()?.first_next
    }
}

async fn next(State(api): State<RuntimeApi>) -> Response {
    {
        let mut inner = api.inner.lock().expect("lock");
        inner.next_calls += 1;
        if inner.first_next.is_none() {
            let at = std::time::Instant::now();
            inner.first_next = Some(Probe { at, cpu: inner.pid.and_then(cpu_time) });
        }
    }
    loop {
        let queued = api.queued.notified();
        if let Some((id, event)) = api.inner.lock().expect("lock").queue.pop_front() {
            let mut headers = HeaderMap::new();
            let deadline = mcpush_core::now_ms() + 30_000;
            headers.insert("lambda-runtime-aws-request-id", HeaderValue::from_str(&id).expect("id"));
            headers
                .insert("lambda-runtime-deadline-ms", HeaderValue::from_str(&deadline.to_string()).expect("deadline"));
            headers.insert(
                "lambda-runtime-invoked-function-arn",
                HeaderValue::from_static("arn:aws:lambda:us-east-1:000000000000:function:test"),
            );
            headers.insert(
                "lambda-runtime-trace-id",
                HeaderValue::from_static("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0"),
            );
            headers.insert("content-type", HeaderValue::from_static("application/json"));
            return (StatusCode::OK, headers, event.to_string()).into_response();
        }
        queued.await;
    }
}

fn finish(api: &RuntimeApi, id: &str, outcome: Outcome) -> StatusCode {
    match api.inner.lock().expect("lock").waiting.remove(id) {
        Some(tx) => {
            let _ = tx.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

fn json(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn response(State(api): State<RuntimeApi>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    finish(&api, &id, Outcome::Response(json(&body)))
}

async fn error(State(api): State<RuntimeApi>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    finish(&api, &id, Outcome::Error(json(&body)))
}

async fn init_error(State(api): State<RuntimeApi>, body: Bytes) -> StatusCode {
    api.inner.lock().expect("lock").init_error = Some(json(&body));
    api.init_failed.notify_waiters();
    StatusCode::ACCEPTED
}

/// A function process under a [`RuntimeApi`], killed when dropped.
pub struct Function {
    pub api: RuntimeApi,
    pub child: tokio::process::Child,
    logs: Arc<Mutex<String>>,
}

impl Function {
    /// Starts `name`'s binary with only `env` (plus what Lambda itself sets) in its environment.
    pub async fn start(name: &str, env: &[(&str, &str)]) -> Self {
        let (api, address) = RuntimeApi::start().await;
        // The first call builds the binaries: off the runtime's worker threads.
        let folder = tokio::task::spawn_blocking(binaries).await.expect("the build ran");
        Self::spawn(&folder.join(name), name, env, api, &address).await
    }

    /// Starts `binary` as the function `name` under `api`, which serves at `address`.
    pub async fn spawn(
        binary: &std::path::Path,
        name: &str,
        env: &[(&str, &str)],
        api: RuntimeApi,
        address: &str,
    ) -> Self {
        let mut child = tokio::process::Command::new(binary)
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", address)
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Some(pid) = child.id() {
            api.watch(pid);
        }
        // Its logs (stderr) are kept, not printed: `logs()` shows them.
        let logs = Arc::new(Mutex::new(String::new()));
        if let Some(stderr) = child.stderr.take() {
            let logs = logs.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncBufReadExt;
                let mut lines = tokio::io::BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(mut logs) = logs.lock() {
                        logs.push_str(&line);
                        logs.push('\n');
                    }
                }
            });
        }
        Self { api, child, logs }
    }

    /// What the process logged (stderr) so far.
    pub fn logs(&self) -> String {
        self.logs.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits until the function has finished its init and asks for an event.
    pub async fn ready(&self, within: Duration) {
        let deadline = std::time::Instant::now() + within;
        while self.api.next_calls() == 0 {
            assert!(std::time::Instant::now() < deadline, "the function did not finish its init in time");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Everything the process wrote to stdout so far (its metrics lines), after it exits.
    pub async fn stdout(mut self) -> String {
        let _ = self.child.start_kill();
        let output = self.child.wait_with_output().await.expect("output");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

/// An API Gateway WebSocket event for `route` (`$connect`, `$disconnect` or a message route).
pub fn ws_event(route: &str, connection_id: &str, body: Option<Value>, origin: &str) -> Value {
    let event_type = match route {
        "$connect" => "CONNECT",
        "$disconnect" => "DISCONNECT",
        _ => "MESSAGE",
    };
    json!({
        "headers": {"Origin": origin, "Host": "abc123.execute-api.us-east-1.amazonaws.com"},
        "multiValueHeaders": {"Origin": [origin]},
        "requestContext": {
            "routeKey": route, "eventType": event_type, "connectionId": connection_id, "connectedAt": mcpush_core::now_ms(),
            "requestId": "req-1", "apiId": "abc123", "stage": "prod", "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "messageDirection": "IN", "requestTimeEpoch": mcpush_core::now_ms(), "identity": {"sourceIp": "203.0.113.9"}
        },
        "body": body.map(|b| b.to_string()),
        "isBase64Encoded": false
    })
}

/// An HTTP API (payload 2.0) event.
pub fn http_event(method: &str, path: &str, query: Value, body: Option<Value>) -> Value {
    let raw_query = query
        .as_object()
        .map(|q| q.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect::<Vec<_>>().join("&"))
        .unwrap_or_default();
    json!({
        "version": "2.0", "routeKey": format!("{method} {path}"), "rawPath": path, "rawQueryString": raw_query,
        "headers": {"origin": "https://app.example.com", "content-type": "application/json"},
        "queryStringParameters": query,
        "requestContext": {"http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9", "userAgent": "test"},
                           "routeKey": format!("{method} {path}"), "stage": "$default", "requestId": "r", "apiId": "api", "timeEpoch": 0},
        "body": body.map(|b| b.to_string()),
        "isBase64Encoded": false
    })
}

/// The `$connect` REQUEST authorizer event API Gateway sends `ws-authorizer`, with `query` as the
/// query string parameters (e.g. `{"access_token": …}`).
pub fn authorizer_event(connection_id: &str, query: Value) -> Value {
    json!({"type": "REQUEST", "methodArn": "arn:aws:execute-api:us-east-1:000000000000:abc123/prod/$connect", "headers": {}, "queryStringParameters": query,
           "requestContext": {"routeKey": "$connect", "eventType": "CONNECT", "connectionId": connection_id, "apiId": "abc123", "stage": "prod"}})
}
