//! The code AWS runs: every function's binary (its `main.rs`), started as Lambda starts it under
//! a Runtime API (`tests/src/runtime_api.rs`), with the environment the template gives it, against
//! moto (DynamoDB), the WebSocket emulator (Management API) and the local stack's simulated
//! MediaConvert. One real event per function, checked end to end (answer, store, pushed frame),
//! and a bad setting fails each init with the variable's name, reported to `/runtime/init/error`.

use std::sync::Arc;
use std::time::Duration;

use mcpush_core::adapters::dynamodb::{DynamoJobStore, DynamoSubscriptionStore};
use mcpush_core::adapters::memory::JobChange;
use mcpush_core::config::WsConfig;
use mcpush_core::ports::JobStore;
use mcpush_local::aws::stream::{EmbeddedStream, lambda_event};
use mcpush_tests::runtime_api::{Function, Outcome, authorizer_event, http_event, ws_event};
use mcpush_tests::ws::{Emulator, ORIGINS};
use mcpush_tests::{HLS_JOB_EVENTS, dynamodb_client, fixture, fresh_store, fresh_subscriptions, moto};
use serde_json::{Value, json};

const START: Duration = Duration::from_secs(30);
const ANSWER: Duration = Duration::from_secs(20);

/// The variables every function gets from the template's Globals, on moto.
fn tables_env(store: &DynamoJobStore, subscriptions: &DynamoSubscriptionStore) -> Vec<(String, String)> {
    vec![
        ("AWS_ENDPOINT_URL_DYNAMODB".into(), moto().endpoint.clone()),
        ("JOB_STATUS_TABLE".into(), store.tables().status.clone()),
        ("JOB_ID_TABLE".into(), store.tables().job_id.clone()),
        ("SUBSCRIPTIONS_TABLE".into(), subscriptions.table().to_owned()),
        ("STATUS_RETENTION_DAYS".into(), "90".into()),
        ("ALLOWED_ORIGINS".into(), ORIGINS.into()),
    ]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_push_rest_and_websocket_routes_run_as_lambda_runs_them() {
    // GIVEN tables on moto, the WebSocket emulator over them, and a browser connected to it
    let store = fresh_store("bin").await;
    let subscriptions = fresh_subscriptions("bin").await;
    let jobs: Arc<dyn JobStore> = Arc::new(DynamoJobStore::new(dynamodb_client(), store.tables().clone()));
    let emulator = Emulator::start(
        jobs,
        Arc::new(DynamoSubscriptionStore::new(dynamodb_client(), subscriptions.table().to_owned())),
        WsConfig::default(),
    )
    .await;
    let mut browser = emulator.client().await;
    // (the emulator registers a connection just after its handshake)
    let registered = async {
        loop {
            if let Some(id) = emulator.api.connection_ids().pop() {
                break id;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let connection_id =
        tokio::time::timeout(Duration::from_secs(5), registered).await.expect("the emulator registers the connection");
    let mut env = tables_env(&store, &subscriptions);
    env.push(("MANAGEMENT_API_ENDPOINT".into(), emulator.base.clone()));

    // WHEN ws-connect's binary gets $connect events
    let connect = start("ws-connect", &env).await;
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

    // WHEN ws-message's binary gets the browser's subscribe
    let message = start("ws-message", &env).await;
    let subscribe = json!({"action": "subscribe", "input_file": "Big Buck Bunny.mp4"});
    let answer = response(
        message
            .api
            .invoke(ws_event("subscribe", &connection_id, Some(subscribe), "https://app.example.com"), ANSWER)
            .await,
    );
    // THEN it answers 200 and the browser hears `subscribed` through the Management API
    assert_eq!(answer["statusCode"], 200);
    assert_eq!(browser.next().await, json!({"type": "subscribed", "input_file": "Big Buck Bunny.mp4"}));

    // WHEN progress-ingest's binary gets a job's six EventBridge events
    let ingest = start("progress-ingest", &env).await;
    for name in HLS_JOB_EVENTS {
        let outcome = response(ingest.api.invoke(fixture(&format!("eventbridge/{name}")), ANSWER).await);
        assert!(outcome["job_id"].is_string(), "{name}: {outcome}");
    }
    // THEN the status table holds the COMPLETE job with its event time
    let job_id = fixture("eventbridge/hls-6-complete.json")["detail"]["jobId"].as_str().unwrap().to_owned();
    let record = store.job(&job_id).await.unwrap().expect("stored");
    assert_eq!(record.job_status.to_string(), "COMPLETE");
    assert!(record.event_at.is_some());

    // WHEN progress-push's binary gets the stream record of that change
    let push = start("progress-push", &env).await;
    let stream_record = EmbeddedStream::new(&store.tables().status).record(&JobChange::Inserted(record.clone()));
    let answer = response(push.api.invoke(lambda_event(&[stream_record]), ANSWER).await);
    // THEN no record failed and the browser got the COMPLETE status
    assert_eq!(answer["batchItemFailures"], json!([]));
    let pushed = browser.next().await;
    assert_eq!(
        (pushed["type"].as_str(), pushed["job_status"].as_str()),
        (Some("status"), Some("COMPLETE")),
        "{pushed}"
    );
    // AND the binary wrote its metrics as EMF lines on stdout
    let emf = push.stdout().await;
    assert!(
        emf.lines().any(|l| l.contains("\"PushDelivered\":1")
            && l.contains("\"_aws\"")
            && l.contains("\"Function\":\"progress-push\"")),
        "{emf}"
    );

    // WHEN the REST functions' binaries are asked about the file
    let query = json!({"input_file": "Big Buck Bunny.mp4"});
    let status = start("status-api", &env).await;
    let answer = response(status.api.invoke(http_event("GET", "/media/status", query.clone(), None), ANSWER).await);
    let job_id_api = start("job-id-api", &env).await;
    let pointer = response(job_id_api.api.invoke(http_event("GET", "/media/job_id", query, None), ANSWER).await);
    // THEN they answer as the seed did
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!((body["job_status"].as_str(), body["progress_rate"].as_u64()), (Some("COMPLETE"), Some(100)));
    let body: Value = serde_json::from_str(pointer["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["job_id"], job_id.as_str());

    // WHEN ws-disconnect's binary gets the browser's $disconnect
    let disconnect = start("ws-disconnect", &env).await;
    let answer = response(
        disconnect.api.invoke(ws_event("$disconnect", &connection_id, None, "https://app.example.com"), ANSWER).await,
    );
    // THEN its subscriptions are gone
    assert_eq!(answer["statusCode"], 200);
    assert!(subscriptions_of(&subscriptions, "Big Buck Bunny.mp4").await.is_empty());
}

async fn subscriptions_of(subscriptions: &DynamoSubscriptionStore, file: &str) -> Vec<String> {
    use mcpush_core::ports::SubscriptionStore;
    subscriptions.subscribers(file, 0).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_job_reconcile_upload_api_and_the_authorizer_run_as_lambda_runs_them() {
    // GIVEN tables on moto and the local stack's simulated MediaConvert
    let store = fresh_store("bin-mc").await;
    let subscriptions = fresh_subscriptions("bin-mc").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let s3_dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bin-mc-{}", std::process::id()));
    let stack = mcpush_local::local(&base, mcpush_local::Options { s3_dir, ..mcpush_local::Options::default() });
    tokio::spawn(axum::serve(listener, stack.router).into_future());
    let mut env = tables_env(&store, &subscriptions);
    env.extend([
        ("AWS_ENDPOINT_URL_MEDIACONVERT".to_owned(), base.clone()),
        ("MEDIACONVERT_JOB_TEMPLATE".to_owned(), "local-hls".to_owned()),
        ("MEDIACONVERT_ROLE_ARN".to_owned(), "arn:aws:iam::000000000000:role/MediaConvert".to_owned()),
        ("OUTPUT_DESTINATION".to_owned(), "s3://{bucket}/{key}_hls/".to_owned()),
        ("RECONCILE_AFTER_SECONDS".to_owned(), "0".to_owned()),
    ]);

    // WHEN create-job's binary gets an S3 ObjectCreated event
    let create = start("create-job", &env).await;
    let created = response(create.api.invoke(fixture("s3/object-created.json"), ANSWER).await);
    // THEN it created the job with MediaConvert and stored it as SUBMITTED
    let job_id = created[0]["job_id"].as_str().unwrap_or_else(|| panic!("{created}")).to_owned();
    let pointer = store.pointer("uploads/Big Buck Bunny.mp4").await.unwrap().expect("pointer");
    assert_eq!(pointer.job_id, job_id);

    // WHEN reconcile's binary runs on its schedule
    let reconcile = start("reconcile", &env).await;
    let stats = response(
        reconcile
            .api
            .invoke(json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}), ANSWER)
            .await,
    );
    // THEN it asked MediaConvert about the quiet job
    assert_eq!(stats["checked"], 1, "{stats}");
    assert_eq!(stats["failed"], 0, "{stats}");

    // WHEN upload-api's binary is asked for an upload
    let mut upload_env = env.clone();
    upload_env.extend([
        ("UPLOAD_BUCKET".to_owned(), "uploads".to_owned()),
        ("SUBSCRIBE_SECRET".to_owned(), "s3cret-of-the-tests".to_owned()),
    ]);
    let upload = start("upload-api", &upload_env).await;
    let body = json!({"file_name": "clip.mp4", "content_type": "video/mp4", "size": 1000});
    let granted =
        response(upload.api.invoke(http_event("POST", "/media/uploads", json!({}), Some(body)), ANSWER).await);
    // THEN it grants a presigned POST for a key of its own, with a read token
    assert_eq!(granted["statusCode"], 200, "{granted}");
    let granted: Value = serde_json::from_str(granted["body"].as_str().unwrap()).unwrap();
    assert!(
        granted["input_file"].as_str().unwrap().starts_with("uploads/") && granted["token"].is_string(),
        "{granted}"
    );
    assert_eq!(granted["upload"]["fields"]["x-amz-algorithm"], "AWS4-HMAC-SHA256");

    // WHEN ws-authorizer's binary gets $connect requests without and with a bad access token
    let oidc =
        [("OIDC_ISSUER".to_owned(), "http://127.0.0.1:9".to_owned()), ("OIDC_AUDIENCE".to_owned(), "web".to_owned())];
    let authorizer = start("ws-authorizer", &oidc).await;
    let request = |query: Value| authorizer_event("Yx3=", query);
    let anonymous = response(authorizer.api.invoke(request(json!({})), ANSWER).await);
    let forged = response(authorizer.api.invoke(request(json!({"access_token": "a.b.c"})), ANSWER).await);
    // THEN the first is an anonymous pass and the second is denied
    assert_eq!(
        (anonymous["principalId"].as_str(), anonymous["policyDocument"]["Statement"][0]["Effect"].as_str()),
        (Some("anonymous"), Some("Allow"))
    );
    assert_eq!(forged["policyDocument"]["Statement"][0]["Effect"], "Deny", "{forged}");
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
    let cases: [Case; 10] = [
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
