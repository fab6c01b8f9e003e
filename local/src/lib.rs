//! The local stack: the very handlers the Lambda functions run, behind local HTTP endpoints.
//!
//! - `GET /media/job_id`, `GET /media/status` (and `OPTIONS`): the REST fallback, each HTTP
//!   request turned into an HTTP API payload v2 event as API Gateway does;
//! - `POST /2015-03-31/functions/{function}/invocations`: the Lambda Invoke API, a raw event in
//!   and the handler's result out (`aws lambda invoke --endpoint-url http://127.0.0.1:3000`);
//! - `GET /ws`: the WebSocket API, and `/@connections/{id}`: its Management API ([`apigw_ws`]);
//! - the embedded store's change feed, delivered to `progress-push` in batches as Lambda's event
//!   source mapping would ([`stream::run_feed`]);
//! - `PUT /s3/{bucket}/{key}`: a simulated upload bucket ([`s3`]) whose notifications go to
//!   `create-job`, which calls a simulated MediaConvert ([`mediaconvert`]) through
//!   aws-sdk-mediaconvert; the simulator's events go to `progress-ingest`, as EventBridge's would;
//! - `/`: the demo page and its client module ([`web`]).

pub mod apigw_ws;
pub mod backend;
pub mod cli;
pub mod mediaconvert;
pub mod s3;
pub mod stream;
pub mod web;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use mcpush_core::adapters::memory::{MemoryJobStore, MemorySubscriptionStore};
use mcpush_core::adapters::mediaconvert::MediaConvertJobCreator;
use mcpush_core::config::{CreateJobConfig, DestinationTemplate, PushConfig, WsConfig};
use mcpush_core::domain::AllowedOrigins;
use mcpush_core::handlers::progress_push::{self, PushContext};
use mcpush_core::handlers::{create_job, job_id_api, progress_ingest, status_api};
use mcpush_core::ports::{JobCreator, JobStore, Pusher, SubscriptionStore};
use serde_json::{Value, json};

/// Origins the local stack allows by default: any local port.
pub const LOCAL_ALLOWED_ORIGINS: &str = r"http://127\.0\.0\.1(:\d+)? http://localhost(:\d+)?";

/// Functions the local Invoke API answers to.
pub const FUNCTIONS: [&str; 5] = ["create-job", "progress-ingest", "job-id-api", "status-api", "progress-push"];

/// Bucket of the simulated uploads (`UPLOAD_BUCKET`).
pub const DEFAULT_UPLOAD_BUCKET: &str = "uploads";
/// Where the simulated MediaConvert writes each upload's outputs (`OUTPUT_DESTINATION`).
pub const DEFAULT_OUTPUT_DESTINATION: &str = "s3://outputs/{key}_hls/";
/// Folder of the simulated buckets (`LOCAL_S3_DIR`).
pub const DEFAULT_S3_DIR: &str = ".local/s3";

#[derive(Clone)]
pub struct Stack {
    pub store: Arc<dyn JobStore>,
    pub origins: Arc<AllowedOrigins>,
    pub subscriptions: Arc<dyn SubscriptionStore>,
    pub pusher: Arc<dyn Pusher>,
    pub push: PushConfig,
    pub creator: Arc<dyn JobCreator>,
    pub create_job: Arc<CreateJobConfig>,
}

impl Stack {
    /// create-job over this stack's store and MediaConvert.
    pub async fn create_job(&self, event: Value) -> Result<Vec<create_job::RecordOutcome>, create_job::CreateJobError> {
        create_job::handle(&self.create_job, self.creator.as_ref(), self.store.as_ref(), event, mcpush_core::now_ms()).await
    }

    /// progress-push over this stack's stores and pusher.
    pub async fn push(&self, event: &Value) -> aws_lambda_events::streams::DynamoDbEventResponse {
        let ctx = PushContext {
            jobs: self.store.as_ref(),
            subscriptions: self.subscriptions.as_ref(),
            pusher: self.pusher.as_ref(),
            config: &self.push,
        };
        progress_push::handle(&ctx, event, mcpush_core::now_ms() / 1000).await.0
    }
}

/// The local stack's settings, from the same environment variables as the Lambda functions.
#[derive(Clone, Debug)]
pub struct Options {
    pub origins: AllowedOrigins,
    pub ws: WsConfig,
    pub push: PushConfig,
    /// `STREAM_BATCH_SIZE` (default 100): records per progress-push invocation.
    pub batch_size: usize,
    /// `STREAM_BATCH_WINDOW_MS` (default 100): how long a batch waits for more records.
    pub batch_window: std::time::Duration,
    /// create-job's settings: `MEDIACONVERT_JOB_TEMPLATE` (default `local-hls`, the simulator's
    /// template), `MEDIACONVERT_ROLE_ARN`, `OUTPUT_DESTINATION` (default
    /// [`DEFAULT_OUTPUT_DESTINATION`]), `SKIP_KEY_PREFIXES`, `JOB_MARKER`.
    pub create_job: CreateJobConfig,
    /// The simulated MediaConvert's behaviour (`SIMULATOR_*`).
    pub simulator: mediaconvert::SimSettings,
    /// `LOCAL_S3_DIR` (default `.local/s3`): the simulated buckets' folder.
    pub s3_dir: std::path::PathBuf,
    /// `UPLOAD_BUCKET` (default `uploads`): the bucket the demo page uploads to.
    pub upload_bucket: String,
    /// `STATUS_RETENTION_DAYS`: status items' TTL, as on AWS. Unset, the local stack keeps them
    /// forever (unlike Lambda's default of 90 days), so replayed fixtures of old jobs stay.
    pub retention: Option<std::time::Duration>,
}

impl Default for Options {
    /// The local stack's defaults: any local origin, the functions' defaults, batches of 100
    /// records waiting at most 100 ms.
    fn default() -> Self {
        Self {
            origins: AllowedOrigins::parse(LOCAL_ALLOWED_ORIGINS).unwrap_or_else(|_| unreachable!("the built-in pattern compiles")),
            ws: WsConfig::default(),
            push: PushConfig::default(),
            batch_size: 100,
            batch_window: std::time::Duration::from_millis(100),
            create_job: CreateJobConfig {
                job_template: "local-hls".into(),
                role_arn: "arn:aws:iam::000000000000:role/MediaConvertLocal".into(),
                queue: None,
                destination: DestinationTemplate::parse(DEFAULT_OUTPUT_DESTINATION).unwrap_or_else(|_| unreachable!("the built-in template parses")),
                skip_prefixes: Vec::new(),
                marker: mcpush_core::config::DEFAULT_JOB_MARKER.into(),
            },
            simulator: mediaconvert::SimSettings::default(),
            s3_dir: DEFAULT_S3_DIR.into(),
            upload_bucket: DEFAULT_UPLOAD_BUCKET.into(),
            retention: None,
        }
    }
}

impl Options {
    pub fn from_env() -> Result<Self, Box<dyn std::error::Error>> {
        let defaults = Self::default();
        let number = |name: &str, default: u64| -> Result<u64, String> {
            match std::env::var(name) {
                Ok(v) => v.parse().map_err(|_| format!("{name}={v:?} is not a number")),
                Err(_) => Ok(default),
            }
        };
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let simulator = mediaconvert::SimSettings::from_env()?;
        let create_job = CreateJobConfig {
            job_template: simulator.template.clone(),
            role_arn: var("MEDIACONVERT_ROLE_ARN").unwrap_or(defaults.create_job.role_arn),
            queue: var("MEDIACONVERT_QUEUE_ARN"),
            destination: match var("OUTPUT_DESTINATION") {
                Some(d) => DestinationTemplate::parse(&d).map_err(|reason| format!("OUTPUT_DESTINATION: {reason}"))?,
                None => defaults.create_job.destination,
            },
            skip_prefixes: var("SKIP_KEY_PREFIXES").map(|v| v.split_whitespace().map(str::to_owned).collect()).unwrap_or_default(),
            marker: var("JOB_MARKER").unwrap_or(defaults.create_job.marker),
        };
        Ok(Self {
            create_job,
            simulator,
            s3_dir: var("LOCAL_S3_DIR").map(Into::into).unwrap_or(defaults.s3_dir),
            upload_bucket: var("UPLOAD_BUCKET").unwrap_or(defaults.upload_bucket),
            retention: match var("STATUS_RETENTION_DAYS") {
                Some(_) => mcpush_core::config::status_retention_from_env()?,
                None => defaults.retention,
            },
            origins: match std::env::var("ALLOWED_ORIGINS") {
                Ok(list) => AllowedOrigins::parse(&list)?,
                Err(_) => defaults.origins,
            },
            ws: WsConfig::from_env()?,
            push: PushConfig::from_env()?,
            batch_size: number("STREAM_BATCH_SIZE", defaults.batch_size as u64)? as usize,
            batch_window: std::time::Duration::from_millis(number("STREAM_BATCH_WINDOW_MS", defaults.batch_window.as_millis() as u64)?),
        })
    }
}

/// A running local stack: its router (serve it on the listener whose address is `base`), the
/// WebSocket emulator and the stores.
pub struct Local {
    pub router: Router,
    pub api: Arc<apigw_ws::WebSocketApi>,
    pub stack: Stack,
}

/// Where progress-push's stream records come from.
pub enum Feed {
    /// The embedded store's change feed.
    Embedded(tokio::sync::mpsc::UnboundedReceiver<Value>),
    /// A real table's DynamoDB stream (moto or an AWS account), polled like Lambda does.
    DynamoDbStreams(stream::StreamPoller),
}

/// Builds the whole pipeline for a server at `base` (e.g. `http://127.0.0.1:3000`) with an
/// embedded store, and starts the change feed's delivery to progress-push.
pub fn local(base: &str, options: Options) -> Local {
    let (jobs, feed) = MemoryJobStore::with_change_feed(mcpush_core::config::DEFAULT_STATUS_TABLE);
    let jobs = Arc::new(jobs.with_retention(options.retention));
    if options.retention.is_some() {
        tokio::spawn(sweep_expired(Arc::downgrade(&jobs), TTL_SWEEP_INTERVAL));
    }
    assemble(base, options, jobs, Arc::new(MemorySubscriptionStore::default()), Feed::Embedded(feed))
}

/// How often the embedded store deletes expired items (DynamoDB does it within a few days).
pub const TTL_SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// The embedded store's TTL: expired status items become REMOVE records made by the service.
async fn sweep_expired(jobs: std::sync::Weak<MemoryJobStore>, every: std::time::Duration) {
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        let Some(jobs) = jobs.upgrade() else { return };
        match jobs.expire(mcpush_core::now_ms() / 1000) {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "TTL deleted status items"),
            Err(e) => tracing::warn!(error = %e, "TTL sweep failed"),
        }
    }
}

/// The pipeline on a DynamoDB API at `endpoint`: creates missing tables (status table with its
/// stream, job-id table, subscriptions table with index and TTL) and polls the status table's
/// stream. Without credentials in the environment, throwaway ones are used (fine for moto).
pub async fn local_dynamodb(base: &str, options: Options, endpoint: &str) -> Result<Local, Box<dyn std::error::Error>> {
    use aws_config::BehaviorVersion;
    use mcpush_core::adapters::dynamodb::{DynamoJobStore, ensure_tables};
    use mcpush_core::adapters::subscriptions::{DynamoSubscriptionStore, ensure_subscriptions_table};

    let mut loader = aws_config::defaults(BehaviorVersion::latest()).endpoint_url(endpoint);
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() && std::env::var_os("AWS_PROFILE").is_none() {
        loader = loader.credentials_provider(aws_sdk_dynamodb::config::Credentials::new("local", "local", None, None, "local"));
    }
    if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none() {
        loader = loader.region(aws_config::Region::new("us-east-1"));
    }
    let sdk = loader.load().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let tables = mcpush_core::config::TableNames::from_env();
    ensure_tables(&client, &tables).await?;
    let subscriptions = DynamoSubscriptionStore::from_sdk_config(&sdk);
    ensure_subscriptions_table(&client, subscriptions.table()).await?;
    let poller = stream::StreamPoller::open(&client, aws_sdk_dynamodbstreams::Client::new(&sdk), &tables.status, options.batch_size as i32).await?;
    let jobs = DynamoJobStore::new(client, tables).with_retention(options.retention);
    Ok(assemble(base, options, Arc::new(jobs), Arc::new(subscriptions), Feed::DynamoDbStreams(poller)))
}

/// Wires the handlers, the WebSocket emulator, the simulated S3 and MediaConvert, and the feed
/// around the given stores.
pub fn assemble(base: &str, options: Options, jobs: Arc<dyn JobStore>, subscriptions: Arc<dyn SubscriptionStore>, feed: Feed) -> Local {
    let pusher: Arc<dyn Pusher> = Arc::new(backend::local_pusher(base));
    let origins = Arc::new(options.origins);
    let region = options.simulator.region.clone();
    let mediaconvert = aws_sdk_mediaconvert::Config::builder()
        .behavior_version(aws_sdk_mediaconvert::config::BehaviorVersion::latest())
        .region(aws_sdk_mediaconvert::config::Region::new(region.clone()))
        .credentials_provider(aws_sdk_mediaconvert::config::Credentials::new("local", "local", None, None, "local"))
        .endpoint_url(base)
        .build();
    let creator = MediaConvertJobCreator::new(aws_sdk_mediaconvert::Client::from_conf(mediaconvert), options.create_job.clone());
    let stack = Stack {
        store: jobs.clone(),
        origins: origins.clone(),
        subscriptions: subscriptions.clone(),
        pusher: pusher.clone(),
        push: options.push,
        creator: Arc::new(creator),
        create_job: Arc::new(options.create_job),
    };
    let handlers = backend::HandlerBackend { origins: origins.clone(), jobs, subscriptions, pusher, config: options.ws };
    let api = apigw_ws::WebSocketApi::new(Arc::new(handlers), &backend::ROUTES, "local", "127.0.0.1");

    let s3 = Arc::new(s3::LocalS3::new(options.s3_dir, &region));
    let (notify, notifications) = tokio::sync::mpsc::unbounded_channel();
    let (bus, events) = tokio::sync::mpsc::unbounded_channel();
    let simulator = mediaconvert::MediaConvertSim::new(options.simulator, s3.clone(), bus);
    tokio::spawn(deliver_s3_notifications(stack.clone(), notifications));
    tokio::spawn(deliver_eventbridge_events(stack.clone(), events));
    let outputs_bucket = stack.create_job.destination.render(&options.upload_bucket, "k");
    let web = web::WebConfig {
        upload_url: format!("/s3/{}/", options.upload_bucket),
        outputs_url: format!("/s3/{}/", s3::split_s3_url(&outputs_bucket).map_or("outputs", |(b, _)| b)),
    };

    let pushing = stack.clone();
    let handler = move |event: Value| {
        let stack = pushing.clone();
        async move { stack.push(&event).await }
    };
    match feed {
        Feed::Embedded(feed) => {
            tokio::spawn(stream::run_feed(feed, options.batch_size, options.batch_window, handler));
        }
        Feed::DynamoDbStreams(poller) => {
            tokio::spawn(stream::run_poller(poller, options.batch_window, handler));
        }
    }
    let router = router(stack.clone())
        .merge(api.router())
        .merge(s3::router(s3, origins, notify))
        .merge(simulator.router())
        .merge(web::router(web));
    Local { router, api, stack }
}

/// S3 invokes create-job asynchronously; a failed invocation is retried twice, as Lambda does
/// for asynchronous invocations.
async fn deliver_s3_notifications(stack: Stack, mut notifications: tokio::sync::mpsc::UnboundedReceiver<Value>) {
    while let Some(event) = notifications.recv().await {
        let stack = stack.clone();
        tokio::spawn(async move {
            for attempt in 0..3u32 {
                match stack.create_job(event.clone()).await {
                    Ok(_) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, attempt, "create-job failed");
                        tokio::time::sleep(std::time::Duration::from_millis(200 << attempt)).await;
                    }
                }
            }
        });
    }
}

/// EventBridge invokes progress-ingest once per event, concurrently.
async fn deliver_eventbridge_events(stack: Stack, mut events: tokio::sync::mpsc::UnboundedReceiver<Value>) {
    while let Some(event) = events.recv().await {
        let store = stack.store.clone();
        tokio::spawn(async move {
            if let Err(e) = progress_ingest::handle(store.as_ref(), &event, mcpush_core::now_ms()).await {
                tracing::warn!(error = %e, "progress-ingest rejected an event");
            }
        });
    }
}

pub fn router(stack: Stack) -> Router {
    Router::new()
        .route("/local/endpoints", get(endpoints))
        .route("/media/job_id", any(rest))
        .route("/media/status", any(rest))
        .route("/2015-03-31/functions/{function}/invocations", post(invoke))
        .with_state(stack)
}

async fn endpoints() -> Json<Value> {
    Json(json!({
        "demo": "/",
        "upload": "/s3/{bucket}/{key}",
        "rest": ["/media/job_id?input_file=F", "/media/status?job_id=J", "/media/status?input_file=F"],
        "websocket": "/ws",
        "management": "/@connections/{connectionId}",
        "invoke": FUNCTIONS.iter().map(|f| format!("/2015-03-31/functions/{f}/invocations")).collect::<Vec<_>>(),
    }))
}

/// An HTTP request as API Gateway's HTTP API (payload v2) hands it to a Lambda function.
pub fn http_api_event(method: &Method, uri: &Uri, headers: &HeaderMap, peer: Option<SocketAddr>) -> Value {
    let raw_query = uri.query().unwrap_or_default();
    let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        params.entry(decode(k)).or_default().push(decode(v));
    }
    let mut event_headers = serde_json::Map::new();
    for (name, value) in headers {
        if let Ok(value) = value.to_str() {
            let joined = match event_headers.get(name.as_str()).and_then(Value::as_str) {
                Some(previous) => format!("{previous},{value}"),
                None => value.to_owned(),
            };
            event_headers.insert(name.as_str().to_owned(), Value::String(joined));
        }
    }
    let now = mcpush_core::now_ms();
    let mut event = json!({
        "version": "2.0",
        "routeKey": format!("{method} {}", uri.path()),
        "rawPath": uri.path(),
        "rawQueryString": raw_query,
        "headers": event_headers,
        "requestContext": {
            "accountId": "000000000000", "apiId": "local", "domainName": "127.0.0.1", "domainPrefix": "local",
            "http": {"method": method.as_str(), "path": uri.path(), "protocol": "HTTP/1.1",
                     "sourceIp": peer.map(|p| p.ip().to_string()).unwrap_or_default(),
                     "userAgent": headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or_default()},
            "requestId": format!("local-{now}"), "routeKey": format!("{method} {}", uri.path()), "stage": "$default",
            "timeEpoch": now
        },
        "isBase64Encoded": false
    });
    if !params.is_empty() {
        let joined: serde_json::Map<String, Value> = params.into_iter().map(|(k, v)| (k, Value::String(v.join(",")))).collect();
        event["queryStringParameters"] = Value::Object(joined);
    }
    event
}

fn decode(s: &str) -> String {
    let spaced = s.replace('+', " ");
    mcpush_core::domain::s3_key::decode_event_key(&spaced).unwrap_or(spaced)
}

async fn rest(State(stack): State<Stack>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    // The stack listens on loopback only, so every caller is local.
    let event = http_api_event(&method, &uri, &headers, Some(SocketAddr::from(([127, 0, 0, 1], 0))));
    let response = if uri.path() == "/media/job_id" {
        job_id_api::handle(stack.store.as_ref(), &stack.origins, event).await
    } else {
        status_api::handle(stack.store.as_ref(), &stack.origins, event).await
    };
    let status = StatusCode::from_u16(response.status_code as u16).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = HeaderMap::new();
    for (name, value) in &response.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_str().as_bytes()), HeaderValue::from_bytes(value.as_bytes())) {
            out.insert(name, value);
        }
    }
    let body = match response.body {
        Some(aws_lambda_events::encodings::Body::Text(text)) => text.into_bytes(),
        Some(aws_lambda_events::encodings::Body::Binary(bytes)) => bytes,
        _ => Vec::new(),
    };
    (status, out, body).into_response()
}

/// The Lambda Invoke API: 200 with the result; a handler error answers 200 with
/// `X-Amz-Function-Error: Unhandled` and Lambda's error body; an unknown function 404.
async fn invoke(State(stack): State<Stack>, Path(function): Path<String>, body: Bytes) -> Response {
    let event: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return function_error("InvalidRequestContentException", &format!("Could not parse request body into json: {e}"), StatusCode::BAD_REQUEST),
    };
    let result: Result<Value, String> = match function.as_str() {
        "create-job" => stack.create_job(event).await.map(|o| json!(o)).map_err(|e| e.to_string()),
        "progress-ingest" => progress_ingest::handle(stack.store.as_ref(), &event, mcpush_core::now_ms())
            .await
            .map(|o| json!(o))
            .map_err(|e| e.to_string()),
        "job-id-api" => Ok(json!(job_id_api::handle(stack.store.as_ref(), &stack.origins, event).await)),
        "status-api" => Ok(json!(status_api::handle(stack.store.as_ref(), &stack.origins, event).await)),
        "progress-push" => Ok(json!(stack.push(&event).await)),
        other => {
            return function_error("ResourceNotFoundException", &format!("Function not found: {other}"), StatusCode::NOT_FOUND);
        }
    };
    match result {
        Ok(value) => Json(value).into_response(),
        Err(message) => {
            let mut response = Json(json!({"errorMessage": message, "errorType": "HandlerError"})).into_response();
            response.headers_mut().insert("x-amz-function-error", HeaderValue::from_static("Unhandled"));
            response
        }
    }
}

fn function_error(kind: &'static str, message: &str, status: StatusCode) -> Response {
    let mut response = (status, Json(json!({"Type": "User", "Message": message}))).into_response();
    response.headers_mut().insert("x-amzn-errortype", HeaderValue::from_static(kind));
    response
}
