//! The code AWS runs: every function's binary (its `main.rs`), started as Lambda starts it under
//! a Runtime API (`tests/src/runtime_api.rs`), with the environment the expanded template gives
//! it (`infra/rehearse.py env`), against moto (DynamoDB, Secrets Manager), the WebSocket
//! emulator (Management API) and the local stack's simulated MediaConvert, each behind the
//! rehearsal's recorder (`tests/src/rehearsal.rs`). Every function runs under each environment
//! the template can give it (tokens on and off, sign-in on and off, a queue or not), and every
//! path that calls AWS runs once (progress-push's 410 cleanup, reconcile's GetJob, create-job's
//! PassRole, the token secret's read): the sessions saved to `target/rehearsal/` are what
//! `scripts/rehearse` checks the template against. A bad setting fails each init with the
//! variable's name, reported to `/runtime/init/error`.

use std::sync::Arc;
use std::time::Duration;

use mcpush_core::adapters::dynamodb::{DynamoJobStore, DynamoSubscriptionStore};
use mcpush_core::adapters::memory::JobChange;
use mcpush_core::config::{Env, WsConfig, read_function_settings};
use mcpush_core::domain::{JobRecord, JobStatus};
use mcpush_core::ports::{JobStore, SubscriptionStore};
use mcpush_local::aws::stream::{EmbeddedStream, lambda_event};
use mcpush_tests::rehearsal::{Session, create_bucket, create_secret};
use mcpush_tests::runtime_api::{Function, Outcome, authorizer_event, http_event, ws_event};
use mcpush_tests::ws::{Emulator, ORIGINS};
use mcpush_tests::{
    HLS_JOB_EVENTS, dynamodb_client, fixture, fresh_store, fresh_subscriptions, job_events_queue, moto, received_events,
};
use serde_json::{Value, json};

const START: Duration = Duration::from_secs(30);
const ANSWER: Duration = Duration::from_secs(20);
/// The bucket of `tests/fixtures/s3/object-created.json`.
const BUCKET: &str = "upload-bucket";
const SECRET: &str = "rehearsal-secret-of-the-tests-0123456789";

/// The template parameters naming the test's tables (and bucket, origins).
fn table_parameters(store: &DynamoJobStore, subscriptions: &DynamoSubscriptionStore) -> Vec<(&'static str, String)> {
    vec![
        ("StatusTableName", store.tables().status.clone()),
        ("JobIdTableName", store.tables().job_id.clone()),
        ("SubscriptionsTableName", subscriptions.table().to_owned()),
        ("UploadBucketName", BUCKET.to_owned()),
        ("JobTemplate", "local-hls".to_owned()),
        ("AllowedOrigins", ORIGINS.to_owned()),
    ]
}

fn session(
    name: &str,
    parameters: &[(&'static str, String)],
    extra: &[(&str, &str)],
    binds: &[(&str, &str)],
) -> Session {
    let mut all: Vec<(&str, &str)> = parameters.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(extra);
    Session::new(name, &all, binds)
}

async fn start(name: &str, env: &[(String, String)]) -> Function {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let function = Function::start(name, &env).await;
    function.ready(START).await;
    function
}

fn response(outcome: Outcome) -> Value {
    match outcome {
        Outcome::Response(value) => value,
        Outcome::Error(error) => panic!("the function failed: {error}"),
    }
}

fn body(answer: &Value) -> Value {
    serde_json::from_str(answer["body"].as_str().unwrap_or_else(|| panic!("no body: {answer}"))).expect("a JSON body")
}

/// An HTTP API event as it reaches upload-api behind the JWT authorizer, signed in as `sub`.
fn signed_in(mut event: Value, sub: &str) -> Value {
    event["requestContext"]["authorizer"] = json!({"jwt": {"claims": {"sub": sub}, "scopes": null}});
    event
}

/// The WebSocket emulator over the test's tables on moto.
async fn emulator_over(store: &DynamoJobStore, subscriptions: &DynamoSubscriptionStore) -> Emulator {
    let jobs: Arc<dyn JobStore> = Arc::new(DynamoJobStore::new(dynamodb_client(), store.tables().clone()));
    let subscriptions = DynamoSubscriptionStore::new(dynamodb_client(), subscriptions.table().to_owned());
    Emulator::start(jobs, Arc::new(subscriptions), WsConfig::default()).await
}

async fn connection(emulator: &Emulator) -> String {
    let registered = async {
        loop {
            if let Some(id) = emulator.api.connection_ids().pop() {
                break id;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), registered).await.expect("the emulator registers the connection")
}

/// Asks upload-api for an upload and records the S3 POST its grant authorises.
async fn upload(session: &Session, upload: &Function, sub: Option<&str>) -> Value {
    let request = json!({"file_name": "clip.mp4", "content_type": "video/mp4", "size": 1000});
    let event = http_event("POST", "/media/uploads", json!({}), Some(request));
    let event = match sub {
        Some(sub) => signed_in(event, sub),
        None => event,
    };
    let answer = response(upload.api.invoke(event, ANSWER).await);
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let granted = body(&answer);
    assert_eq!(granted["upload"]["fields"]["x-amz-algorithm"], "AWS4-HMAC-SHA256", "{granted}");
    session.presigned_post(BUCKET, &granted["upload"]["fields"]);
    granted
}

/// upload-api's binary on moto's S3 (behind the recorder): grants two multipart uploads (signed
/// in as `sub` when given), signs a part's URL that a browser then PUTs, completes the first
/// upload and aborts the second; records the S3 calls and the keys.
async fn multipart(session: &Session, peers: &[(&str, String)], sub: Option<&str>) {
    create_bucket(&moto().endpoint, BUCKET).await;
    let mut s3_peers = peers.to_vec();
    s3_peers.push(("AWS_ENDPOINT_URL_S3", session.recorder.front(&moto().endpoint).await));
    let function = start("upload-api", &session.env("upload-api", &s3_peers)).await;
    let post = |path: &str, body: Value| {
        let event = http_event("POST", path, json!({}), Some(body));
        match sub {
            Some(sub) => signed_in(event, sub),
            None => event,
        }
    };
    let call = |path: &'static str, body: Value| {
        let event = post(path, body);
        let function = &function;
        async move { response(function.api.invoke(event, ANSWER).await) }
    };
    let grant = json!({"file_name": "long.mp4", "content_type": "video/mp4", "size": 1000, "multipart": true});
    let (first, second) =
        (body(&call("/media/uploads", grant.clone()).await), body(&call("/media/uploads", grant).await));
    let reference = |granted: &Value| {
        let mut reference = json!({"input_file": granted["input_file"], "upload_id": granted["upload_id"]});
        if let Some(token) = granted["token"].as_str() {
            reference["token"] = json!(token);
        }
        reference
    };
    let mut ask = reference(&first);
    ask["part_numbers"] = json!([1]);
    let urls = body(&call("/media/uploads/parts", ask).await);
    let url = urls["parts"][0]["url"].as_str().unwrap_or_else(|| panic!("{urls}: {}", function.logs()));
    let put = reqwest::Client::new().put(url).body(vec![7u8; 1000]).send().await.unwrap();
    assert_eq!(put.status(), 200, "{}", put.text().await.unwrap());
    let mut complete = reference(&first);
    complete["parts"] = json!([{"part_number": 1, "etag": put.headers()["etag"].to_str().unwrap()}]);
    let done = call("/media/uploads/complete", complete).await;
    let aborted = call("/media/uploads/abort", reference(&second)).await;
    assert_eq!(done["statusCode"], 200, "{done}: {}", function.logs());
    assert_eq!(aborted["statusCode"], 204, "{aborted}");
    session.note("upload_keys", [first["input_file"].clone(), second["input_file"].clone()]);
}

/// Asks upload-api to renew `token` for `file` (`POST /media/tokens`); answers the new token.
async fn renew(upload: &Function, file: &str, token: &str) -> String {
    let request = json!({"input_file": file, "token": token});
    let answer =
        response(upload.api.invoke(http_event("POST", "/media/tokens", json!({}), Some(request)), ANSWER).await);
    assert_eq!(answer["statusCode"], 200, "{answer}");
    body(&answer)["token"].as_str().unwrap_or_else(|| panic!("{answer}")).to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_push_rest_and_websocket_routes_run_as_lambda_runs_them() {
    // GIVEN tables on moto, the WebSocket emulator over them, a browser connected to it, and the
    // template deployed without read tokens, every peer behind the recorder
    let store = fresh_store("bin").await;
    let subscriptions = fresh_subscriptions("bin").await;
    let emulator = emulator_over(&store, &subscriptions).await;
    let mut browser = emulator.client().await;
    let connection_id = connection(&emulator).await;
    let extra = [("RequireTokens", "false"), ("MaxSubscriptionsPerConnection", "2")];
    let session = session("ingest-push-rest-ws", &table_parameters(&store, &subscriptions), &extra, &[]);
    let peers = [
        ("AWS_ENDPOINT_URL_DYNAMODB", session.recorder.front(&moto().endpoint).await),
        (
            "MANAGEMENT_API_ENDPOINT",
            session.recorder.front_management(&emulator.base, &session.reference("WebSocketApi")).await,
        ),
    ];

    // WHEN ws-connect's binary gets $connect events
    let connect = start("ws-connect", &session.env("ws-connect", &peers)).await;
    let allowed =
        response(connect.api.invoke(ws_event("$connect", "Yx1=", None, "https://app.example.com"), ANSWER).await);
    let foreign =
        response(connect.api.invoke(ws_event("$connect", "Yx2=", None, "https://evil.example"), ANSWER).await);
    // THEN it accepts the allowed origin and refuses the other
    assert_eq!(
        (allowed["statusCode"].as_i64(), foreign["statusCode"].as_i64()),
        (Some(200), Some(403)),
        "{allowed} {foreign}"
    );

    // WHEN ws-message's binary gets the browser's subscribe, unsubscribe and ping
    let message = start("ws-message", &session.env("ws-message", &peers)).await;
    let send = |route: &str, body: Value| ws_event(route, &connection_id, Some(body), "https://app.example.com");
    let subscribe = json!({"action": "subscribe", "input_file": "Big Buck Bunny.mp4"});
    let answer = response(message.api.invoke(send("subscribe", subscribe), ANSWER).await);
    // THEN it answers 200 and the browser hears `subscribed` through the Management API
    assert_eq!(answer["statusCode"], 200);
    assert_eq!(browser.next().await, json!({"type": "subscribed", "input_file": "Big Buck Bunny.mp4"}));
    let folder = json!({"action": "subscribe", "prefix": "uploads/", "batch": true});
    assert_eq!(response(message.api.invoke(send("subscribe", folder), ANSWER).await)["statusCode"], 200);
    // (a third subscription is over MaxSubscriptionsPerConnection)
    let third = json!({"action": "subscribe", "input_file": "other.mp4"});
    assert_eq!(response(message.api.invoke(send("subscribe", third), ANSWER).await)["statusCode"], 200);
    let unsubscribe = json!({"action": "unsubscribe", "prefix": "uploads/"});
    assert_eq!(response(message.api.invoke(send("unsubscribe", unsubscribe), ANSWER).await)["statusCode"], 200);
    assert_eq!(response(message.api.invoke(send("ping", json!({"action": "ping"})), ANSWER).await)["statusCode"], 200);
    while browser.next_within(Duration::from_millis(300)).await.is_some() {}

    // WHEN progress-ingest's binary gets a job's six EventBridge events
    let ingest = start("progress-ingest", &session.env("progress-ingest", &peers)).await;
    for name in HLS_JOB_EVENTS {
        let outcome = response(ingest.api.invoke(fixture(&format!("eventbridge/{name}")), ANSWER).await);
        assert!(outcome["job_id"].is_string(), "{name}: {outcome}");
    }
    // THEN the status table holds the COMPLETE job with its event time
    let job_id = fixture("eventbridge/hls-6-complete.json")["detail"]["jobId"].as_str().unwrap().to_owned();
    let record = store.job(&job_id).await.unwrap().expect("stored");
    assert_eq!(record.job_status.to_string(), "COMPLETE");
    assert!(record.event_at.is_some());
    // AND ws-message answers a subscribe with the job's state, and forgets a connection that is gone
    let again = json!({"action": "subscribe", "input_file": "Big Buck Bunny.mp4"});
    assert_eq!(response(message.api.invoke(send("subscribe", again.clone()), ANSWER).await)["statusCode"], 200);
    let replies = [browser.next().await, browser.next().await];
    assert_eq!(replies[1]["job_status"], "COMPLETE", "{replies:?}");
    let vanished = ws_event("subscribe", "VmFuaXNoZWQ=", Some(again), "https://app.example.com");
    assert_eq!(response(message.api.invoke(vanished, ANSWER).await)["statusCode"], 200);
    assert!(!subscriptions_of(&subscriptions, "Big Buck Bunny.mp4").await.contains(&"VmFuaXNoZWQ=".to_owned()));

    // WHEN progress-push's binary gets the stream record of that change, with a second watcher
    // whose connection is gone
    let gone = "R29uZQ=";
    subscriptions.subscribe(gone, "Big Buck Bunny.mp4", mcpush_core::now_ms() / 1000 + 600, 10, false).await.unwrap();
    let push = start("progress-push", &session.env("progress-push", &peers)).await;
    let stream = EmbeddedStream::new(&store.tables().status);
    let stream_record = stream.record(&JobChange::Inserted(record.clone()));
    let answer = response(push.api.invoke(lambda_event(std::slice::from_ref(&stream_record)), ANSWER).await);
    // THEN no record failed, the browser got the COMPLETE status and the gone watcher was removed
    assert_eq!(answer["batchItemFailures"], json!([]));
    let pushed = browser.next().await;
    assert_eq!(
        (pushed["type"].as_str(), pushed["job_status"].as_str()),
        (Some("status"), Some("COMPLETE")),
        "{pushed}"
    );
    assert_eq!(subscriptions_of(&subscriptions, "Big Buck Bunny.mp4").await, vec![connection_id.clone()]);
    // AND the binary wrote its metrics as EMF lines on stdout
    let emf = push.stdout().await;
    assert!(
        emf.lines().any(|l| l.contains("\"PushDelivered\":1")
            && l.contains("\"_aws\"")
            && l.contains("\"Function\":\"progress-push\"")),
        "{emf}"
    );
    // (the records progress-push must see, and the TTL deletion it must not, for the filter check)
    let modified = JobChange::Modified { old: Box::new(record.clone()), new: Box::new(record.clone()) };
    let records = [stream_record, stream.record(&modified), stream.record(&JobChange::Expired(record.clone()))];
    session.note("stream_records", records.iter().map(|r| serde_json::to_value(r).expect("a record")));

    // WHEN event-publisher's binary gets the job's change from PROGRESSING to COMPLETE and a change
    // that moves nothing a backend is told, with a backend's rule on moto's default bus
    let queue = job_events_queue("job-events", "mcpush").await;
    let events_peers = [("AWS_ENDPOINT_URL_EVENTBRIDGE", session.recorder.front(&moto().endpoint).await)];
    let publisher = start("event-publisher", &session.env("event-publisher", &events_peers)).await;
    let running =
        JobRecord { job_status: JobStatus::Progressing, version: Some(record.version() - 1), ..record.clone() };
    let batch_running = running.clone();
    let transition = JobChange::Modified { old: Box::new(running), new: Box::new(record.clone()) };
    let batch = [stream.record(&transition), stream.record(&modified)];
    let answer = response(publisher.api.invoke(lambda_event(&batch), ANSWER).await);
    // THEN no record failed and the backend's queue received exactly one event: the transition,
    // with the whole state, as the schema describes it
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    let mut events = received_events(&queue, Duration::from_secs(5)).await;
    assert_eq!(events.len(), 1, "{events:#?}");
    // (moto's SQS target leaves out the envelope's `account`, which EventBridge always sends)
    events[0].as_object_mut().expect("an event").entry("account").or_insert(json!(mcpush_tests::rehearsal::ACCOUNT));
    mcpush_tests::protocol::assert_job_event(&events[0]);
    let detail = &events[0]["detail"];
    assert_eq!(
        (detail["previous_status"].as_str(), detail["job_status"].as_str(), detail["version"].as_u64()),
        (Some("PROGRESSING"), Some("COMPLETE"), Some(record.version()))
    );
    assert_eq!(
        (detail["job_id"].as_str(), detail["input_file"].as_str()),
        (Some(job_id.as_str()), Some("Big Buck Bunny.mp4"))
    );
    let emf = publisher.stdout().await;
    assert!(
        emf.lines().any(|l| l.contains("\"EventsPublished\":1") && l.contains("\"Function\":\"event-publisher\"")),
        "{emf}"
    );
    session.note("job_events", events);
    // (records that are transitions, for event-publisher's filter check: SUBMITTED -> PROGRESSING
    // and PROGRESSING -> COMPLETE; and the progress-only one above)
    let submitted = JobRecord { job_status: JobStatus::Submitted, ..record.clone() };
    let started = JobChange::Modified { old: Box::new(submitted), new: Box::new(batch_running.clone()) };
    session.note(
        "stream_records",
        [&batch[0], &stream.record(&started)].map(|r| serde_json::to_value(r).expect("a record")),
    );

    // WHEN the REST functions' binaries are asked about the file
    let query = json!({"input_file": "Big Buck Bunny.mp4"});
    let status = start("status-api", &session.env("status-api", &peers)).await;
    let answer = response(status.api.invoke(http_event("GET", "/media/status", query.clone(), None), ANSWER).await);
    let job_id_api = start("job-id-api", &session.env("job-id-api", &peers)).await;
    let pointer = response(job_id_api.api.invoke(http_event("GET", "/media/job_id", query, None), ANSWER).await);
    // THEN they answer as the seed did
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let answer = body(&answer);
    assert_eq!((answer["job_status"].as_str(), answer["progress_rate"].as_u64()), (Some("COMPLETE"), Some(100)));
    assert_eq!(body(&pointer)["job_id"], job_id.as_str());

    // WHEN upload-api's binary is asked for an upload (no tokens, no sign-in)
    let uploads = start("upload-api", &session.env("upload-api", &peers)).await;
    let granted = upload(&session, &uploads, None).await;
    // THEN it grants a key of its own under the upload prefix, without a token
    assert!(granted["input_file"].as_str().unwrap().starts_with("uploads/") && granted["token"].is_null(), "{granted}");

    // AND on moto's S3 it grants multipart uploads, signs a part, completes one and aborts one
    multipart(&session, &peers, None).await;

    // WHEN ws-disconnect's binary gets the browser's $disconnect
    let disconnect = start("ws-disconnect", &session.env("ws-disconnect", &peers)).await;
    let mut event = ws_event("$disconnect", &connection_id, None, "https://app.example.com");
    event["requestContext"]["connectedAt"] =
        json!(event["requestContext"]["requestTimeEpoch"].as_u64().unwrap() - 90_000);
    let answer = response(disconnect.api.invoke(event, ANSWER).await);
    // THEN its subscriptions are gone, and the 90 s it was open are 1.5 connection minutes in EMF
    assert_eq!(answer["statusCode"], 200);
    assert!(subscriptions_of(&subscriptions, "Big Buck Bunny.mp4").await.is_empty());
    let emf = disconnect.stdout().await;
    assert!(
        emf.lines().any(|l| l.contains("\"ConnectionMinutes\":[1.5]") && l.contains("\"Function\":\"ws-disconnect\"")),
        "{emf}"
    );
    session.save();
}

async fn subscriptions_of(subscriptions: &DynamoSubscriptionStore, file: &str) -> Vec<String> {
    subscriptions.subscribers(file, 0).await.unwrap()
}

/// The local stack (for its simulated MediaConvert) on 127.0.0.1, with the upload in its S3.
async fn local_stack(label: &str) -> (mcpush_local::Local, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let s3_dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{label}-{}", std::process::id()));
    let input = s3_dir.join(BUCKET).join("uploads/Big Buck Bunny.mp4");
    std::fs::create_dir_all(input.parent().unwrap()).unwrap();
    std::fs::write(&input, vec![7u8; 4096]).unwrap();
    let mut options = mcpush_local::Options { s3_dir, ..mcpush_local::Options::default() };
    options.simulator.step = Duration::from_millis(20);
    let stack = mcpush_local::local(&base, options);
    tokio::spawn(axum::serve(listener, stack.router.clone()).into_future());
    (stack, base)
}

/// The events the simulated MediaConvert sends for `job_id`, and the output keys they name.
async fn note_timeline(session: &Session, stack: &mcpush_local::Local, job_id: &str) {
    let job = stack.simulator.job(job_id).expect("the simulator knows the job");
    let events: Vec<Value> =
        stack.simulator.timeline(&job).await.iter().map(|s| serde_json::to_value(&s.event).unwrap()).collect();
    let complete = events.iter().find(|e| e["detail"]["status"] == "COMPLETE").expect("the job completes");
    let mut outputs = Vec::new();
    collect_s3_keys(&complete["detail"]["outputGroupDetails"], &mut outputs);
    assert!(!outputs.is_empty(), "{complete}");
    session.note("output_keys", outputs.into_iter().map(Value::from));
    session.note("events", events);
}

fn collect_s3_keys(value: &Value, keys: &mut Vec<String>) {
    match value {
        Value::String(s) => {
            if let Some((_, key)) = s.strip_prefix("s3://").and_then(|rest| rest.split_once('/')) {
                keys.push(key.to_owned());
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_s3_keys(v, keys)),
        Value::Object(map) => map.values().for_each(|v| collect_s3_keys(v, keys)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_job_reconcile_upload_api_and_the_authorizer_run_as_lambda_runs_them() {
    // GIVEN tables on moto, the token secret in moto's Secrets Manager, the local stack's
    // simulated MediaConvert, and the template deployed with tokens, sign-in and a queue
    let store = fresh_store("bin-mc").await;
    let subscriptions = fresh_subscriptions("bin-mc").await;
    let (stack, base) = local_stack("bin-mc").await;
    let secret = create_secret(&moto().endpoint, &format!("bin-mc-{}", std::process::id()), SECRET).await;
    let sign_in = [("OidcIssuer", "http://127.0.0.1:9"), ("OidcAudience", "web")];
    let queue = ("MediaConvertQueueArn", "arn:aws:mediaconvert:us-east-1:123456789012:queues/rehearsal");
    let mut extra = vec![("RequireTokens", "true"), queue, ("ReconcileAfterSeconds", "1")];
    extra.extend(sign_in);
    let session = session(
        "create-reconcile-upload-signin",
        &table_parameters(&store, &subscriptions),
        &extra,
        &[("TokenSecret", &secret)],
    );
    let peers = [
        ("AWS_ENDPOINT_URL_DYNAMODB", session.recorder.front(&moto().endpoint).await),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", session.recorder.front(&moto().endpoint).await),
        ("AWS_ENDPOINT_URL_MEDIACONVERT", session.recorder.front(&base).await),
    ];

    // WHEN create-job's binary gets an S3 ObjectCreated event
    let create = start("create-job", &session.env("create-job", &peers)).await;
    let created = response(create.api.invoke(fixture("s3/object-created.json"), ANSWER).await);
    // THEN it created the job with MediaConvert, in the queue, and stored it as SUBMITTED
    let job_id = created[0]["job_id"].as_str().unwrap_or_else(|| panic!("{created}")).to_owned();
    let pointer = store.pointer("uploads/Big Buck Bunny.mp4").await.unwrap().expect("pointer");
    assert_eq!(pointer.job_id, job_id);
    assert_eq!(stack.simulator.job(&job_id).expect("a job").queue, queue.1);
    note_timeline(&session, &stack, &job_id).await;

    // AND a stored job whose id GetJob cannot take
    let poison = mcpush_core::domain::JobUpdate {
        job_id: format!("1700000000001-{}", "x".repeat(300)),
        input_file: Some("poison.mp4".into()),
        transition: mcpush_core::domain::Transition::Progressing,
        progress: Some(10),
        job_order: 1_700_000_000_001,
        phase: None,
        event_at: None,
        observed: Default::default(),
    };
    mcpush_core::service::record_update(&store, &poison).await.unwrap();

    // WHEN reconcile's binary runs on its schedule, once the jobs have been quiet long enough
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let reconcile = start("reconcile", &session.env("reconcile", &peers)).await;
    let scheduled = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
    let stats = response(reconcile.api.invoke(scheduled, ANSWER).await);
    // THEN it asked MediaConvert about both, and counted the one that failed
    assert_eq!((stats["checked"].as_u64(), stats["failed"].as_u64()), (Some(2), Some(1)), "{stats}");

    // WHEN upload-api's binary is asked for an upload by a signed-in user
    let uploads = start("upload-api", &session.env("upload-api", &peers)).await;
    let granted = upload(&session, &uploads, Some("user-1")).await;
    // THEN it grants a key in the user's home folder, with a read token from the secret
    assert!(granted["input_file"].as_str().unwrap().starts_with("uploads/user-1/"), "{granted}");
    assert!(granted["token"].is_string(), "{granted}");
    // AND takes a multipart upload of that user's through to its end
    multipart(&session, &peers, Some("user-1")).await;
    // AND it renews the job's file token for a caller with the token only (no bearer)
    let file = "uploads/Big Buck Bunny.mp4";
    let token = mcpush_core::domain::token::issue(SECRET.as_bytes(), file, mcpush_core::now_ms() / 1000 + 600);
    renew(&uploads, file, &token).await;

    // WHEN ws-authorizer's binary gets $connect requests without and with a bad access token
    let authorizer = start("ws-authorizer", &session.env("ws-authorizer", &peers)).await;
    let request = |query: Value| authorizer_event("Yx3=", query);
    let anonymous = response(authorizer.api.invoke(request(json!({})), ANSWER).await);
    let forged = response(authorizer.api.invoke(request(json!({"access_token": "a.b.c"})), ANSWER).await);
    // THEN the first is an anonymous pass and the second is denied
    assert_eq!(
        (anonymous["principalId"].as_str(), anonymous["policyDocument"]["Statement"][0]["Effect"].as_str()),
        (Some("anonymous"), Some("Allow"))
    );
    assert_eq!(forged["policyDocument"]["Statement"][0]["Effect"], "Deny", "{forged}");
    session.save();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_read_tokens_every_reader_reads_the_secret_and_takes_a_token() {
    // GIVEN tables on moto, the token secret in moto's Secrets Manager, the local stack's
    // simulated MediaConvert, the WebSocket emulator with a browser, and the template deployed
    // with tokens, without sign-in or a queue
    let store = fresh_store("bin-tok").await;
    let subscriptions = fresh_subscriptions("bin-tok").await;
    let (stack, base) = local_stack("bin-tok").await;
    let emulator = emulator_over(&store, &subscriptions).await;
    let mut browser = emulator.client().await;
    let connection_id = connection(&emulator).await;
    let secret = create_secret(&moto().endpoint, &format!("bin-tok-{}", std::process::id()), SECRET).await;
    let parameters = table_parameters(&store, &subscriptions);
    let extra = [("RequireTokens", "true"), ("MaxSubscriptionsPerConnection", "1")];
    let session = session("tokens", &parameters, &extra, &[("TokenSecret", &secret)]);
    let peers = [
        ("AWS_ENDPOINT_URL_DYNAMODB", session.recorder.front(&moto().endpoint).await),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", session.recorder.front(&moto().endpoint).await),
        ("AWS_ENDPOINT_URL_MEDIACONVERT", session.recorder.front(&base).await),
        (
            "MANAGEMENT_API_ENDPOINT",
            session.recorder.front_management(&emulator.base, &session.reference("WebSocketApi")).await,
        ),
    ];
    let file = "uploads/Big Buck Bunny.mp4";
    let token = mcpush_core::domain::token::issue(SECRET.as_bytes(), file, mcpush_core::now_ms() / 1000 + 600);

    // WHEN create-job's binary gets the upload's S3 event (no queue: the account's default)
    let create = start("create-job", &session.env("create-job", &peers)).await;
    let created = response(create.api.invoke(fixture("s3/object-created.json"), ANSWER).await);
    let job_id = created[0]["job_id"].as_str().unwrap_or_else(|| panic!("{created}")).to_owned();
    note_timeline(&session, &stack, &job_id).await;

    // AND the readers are asked with and without the file's token
    let status = start("status-api", &session.env("status-api", &peers)).await;
    let job_id_api = start("job-id-api", &session.env("job-id-api", &peers)).await;
    let query = |token: Option<&str>| match token {
        Some(token) => json!({"input_file": file, "token": token}),
        None => json!({"input_file": file}),
    };
    let read = |api: &'static str, token: Option<&str>| http_event("GET", api, query(token), None);
    let statuses = [
        response(status.api.invoke(read("/media/status", Some(&token)), ANSWER).await),
        response(status.api.invoke(read("/media/status", None), ANSWER).await),
        response(job_id_api.api.invoke(read("/media/job_id", Some(&token)), ANSWER).await),
        response(job_id_api.api.invoke(read("/media/job_id", None), ANSWER).await),
    ];
    // THEN they answer the token's holder only
    let codes: Vec<_> = statuses.iter().map(|s| s["statusCode"].as_u64()).collect();
    assert_eq!(codes, [Some(200), Some(403), Some(200), Some(403)], "{statuses:?}");
    assert_eq!(body(&statuses[2])["job_id"], job_id.as_str());

    // WHEN ws-message's binary gets a subscribe with the token
    let message = start("ws-message", &session.env("ws-message", &peers)).await;
    let subscribe = json!({"action": "subscribe", "input_file": file, "token": token});
    let answer = response(
        message
            .api
            .invoke(ws_event("subscribe", &connection_id, Some(subscribe), "https://app.example.com"), ANSWER)
            .await,
    );
    // THEN the browser hears `subscribed` and the job's state
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(browser.next().await, json!({"type": "subscribed", "input_file": file}));
    assert_eq!(browser.next().await["type"], "status");
    // AND a second file is over MaxSubscriptionsPerConnection, an unsubscribe is heard, and a
    // connection that is gone is forgotten
    let other = "uploads/other.mp4";
    let other_token = mcpush_core::domain::token::issue(SECRET.as_bytes(), other, mcpush_core::now_ms() / 1000 + 600);
    let send = |connection: &str, body: Value| {
        let route = body["action"].as_str().unwrap_or_default().to_owned();
        ws_event(&route, connection, Some(body), "https://app.example.com")
    };
    let over = json!({"action": "subscribe", "input_file": other, "token": other_token});
    assert_eq!(response(message.api.invoke(send(&connection_id, over), ANSWER).await)["statusCode"], 200);
    assert_eq!(browser.next().await["type"], "error");
    let unsubscribe = json!({"action": "unsubscribe", "input_file": file});
    assert_eq!(response(message.api.invoke(send(&connection_id, unsubscribe), ANSWER).await)["statusCode"], 200);
    let vanished = json!({"action": "subscribe", "input_file": file, "token": token});
    assert_eq!(response(message.api.invoke(send("VmFuaXNoZWQ=", vanished), ANSWER).await)["statusCode"], 200);

    // WHEN upload-api's binary is asked for an upload (tokens, no sign-in)
    let uploads = start("upload-api", &session.env("upload-api", &peers)).await;
    let granted = upload(&session, &uploads, None).await;
    // THEN the grant carries a read token
    assert!(granted["token"].is_string(), "{granted}");
    // AND a multipart upload goes on with the grant's token
    multipart(&session, &peers, None).await;
    // WHEN the same binary is asked to renew the file's token (POST /media/tokens)
    let renewed = renew(&uploads, file, &token).await;
    // THEN it reads the file's job and answers a renewed token for the file only
    let access = mcpush_core::domain::token::ReadAccess::new(Some(SECRET.as_bytes().to_vec()));
    assert_eq!(access.check(file, Some(&renewed), mcpush_core::now_ms() / 1000), Ok(()));
    assert!(access.check(other, Some(&renewed), 0).is_err());
    session.save();

    // AND with sign-in but no tokens, upload-api files a signed-in user's upload in their folder
    let signed_in_only = session_without_tokens_with_sign_in(&parameters);
    let uploads = start("upload-api", &signed_in_only.env("upload-api", &[])).await;
    let granted = upload(&signed_in_only, &uploads, Some("user-2")).await;
    assert!(granted["input_file"].as_str().unwrap().starts_with("uploads/user-2/") && granted["token"].is_null());
    multipart(&signed_in_only, &[], Some("user-2")).await;
    signed_in_only.save();
}

fn session_without_tokens_with_sign_in(parameters: &[(&'static str, String)]) -> Session {
    let extra = [("RequireTokens", "false"), ("OidcIssuer", "http://127.0.0.1:9"), ("OidcAudience", "web")];
    session("signin-without-tokens", parameters, &extra, &[])
}

#[test]
fn every_parameter_the_template_allows_passes_every_init() {
    // GIVEN every function's environment with each parameter at its extremes (MinValue,
    // MaxValue or 2^53-1 when unbounded, every AllowedValue), from the expanded template
    let python = mcpush_tests::rehearsal::python();
    let output = std::process::Command::new(&python)
        .arg("infra/rehearse.py")
        .arg("extremes")
        .current_dir(mcpush_tests::workspace())
        .output()
        .expect("python runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let cases: Vec<Value> = serde_json::from_slice(&output.stdout).expect("JSON");
    // WHEN each function reads its settings from it, as its init does
    let mut refused = Vec::new();
    for case in &cases {
        for (function, env) in case["functions"].as_object().expect("functions") {
            let env = env.as_object().expect("variables").iter().fold(Env::empty(), |e, (k, v)| {
                e.set(Box::leak(k.clone().into_boxed_str()), v.as_str().unwrap_or_default())
            });
            if let Some(Err(e)) = read_function_settings(function, &env) {
                refused.push(format!("{}={}: {function} refuses it: {e}", case["parameter"], case["value"]));
            }
        }
    }
    // THEN none refuses
    assert!(cases.len() > 20, "{cases:?}");
    assert!(refused.is_empty(), "{refused:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_setting_fails_each_init_with_the_variables_name() {
    let moto_endpoint = moto().endpoint.clone();
    let base = [
        ("AWS_ENDPOINT_URL_DYNAMODB", moto_endpoint.as_str()),
        ("ALLOWED_ORIGINS", ORIGINS),
        ("MANAGEMENT_API_ENDPOINT", "http://127.0.0.1:9"),
    ];
    // (function, variables set or overridden, what the error must name)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
    let cases: [Case; 12] = [
        ("create-job", vec![], "OUTPUT_DESTINATION"),
        ("progress-ingest", vec![("STATUS_RETENTION_DAYS", "ninety")], "STATUS_RETENTION_DAYS"),
        ("job-id-api", vec![("ALLOWED_ORIGINS", "(")], "("),
        ("status-api", vec![("SUBSCRIBE_SECRET", "a"), ("SUBSCRIBE_SECRET_ARN", "arn:b")], "SUBSCRIBE_SECRET"),
        ("upload-api", vec![], "UPLOAD_BUCKET"),
        ("ws-authorizer", vec![("OIDC_ISSUER", "https://issuer.example")], "OIDC_AUDIENCE"),
        ("ws-connect", vec![("CONNECTION_TTL_SECONDS", "soon")], "CONNECTION_TTL_SECONDS"),
        ("ws-message", vec![("MAX_SUBSCRIPTIONS_PER_CONNECTION", "-1")], "MAX_SUBSCRIPTIONS_PER_CONNECTION"),
        ("progress-push", vec![("PUSH_CONCURRENCY", "many")], "PUSH_CONCURRENCY"),
        ("reconcile", vec![("RECONCILE_MAX_JOBS", "x")], "RECONCILE_MAX_JOBS"),
        ("event-publisher", vec![], "EVENT_BUS_NAME"),
        ("event-publisher", vec![("EVENT_BUS_NAME", "default"), ("EVENT_SOURCE", "aws.mediaconvert")], "EVENT_SOURCE"),
    ];
    for (name, overrides, variable) in cases {
        let mut env: Vec<(&str, &str)> = base.to_vec();
        env.retain(|(k, _)| !overrides.iter().any(|(o, _)| o == k));
        env.extend(overrides);
        let function = Function::start(name, &env).await;
        let error = function.api.init_error(START).await.unwrap_or_else(|| panic!("{name}: no init error reported"));
        assert_eq!(error["errorType"], "Runtime.InitError", "{name}: {error}");
        assert!(error["errorMessage"].as_str().unwrap_or_default().contains(variable), "{name}: {error}");
        assert_eq!(function.api.next_calls(), 0, "{name} must not ask for events after a failed init");
    }
}
