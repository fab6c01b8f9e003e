//! Test support shared by the workspace's integration tests: a moto server (a real DynamoDB and
//! SQS API over HTTP), SDK clients pointed at it, fresh tables per test, and fixture loading.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use mcpush_core::adapters::dynamodb::{DynamoJobStore, ensure_tables};
use mcpush_core::config::TableNames;

pub mod protocol;
pub mod rehearsal;
pub mod runtime_api;
pub mod subscribers;
pub mod ws;

/// One HLS job's recorded EventBridge events, in the order MediaConvert sent them.
pub const HLS_JOB_EVENTS: [&str; 6] = [
    "hls-1-progressing.json",
    "hls-2-input-information.json",
    "hls-3-status-update-25.json",
    "hls-4-status-update-no-progress.json",
    "hls-5-status-update-70.json",
    "hls-6-complete.json",
];

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// A fixture file under `tests/fixtures/`, parsed as JSON.
pub fn fixture(name: &str) -> serde_json::Value {
    let path = workspace().join("tests/fixtures").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// A status table stream record: job `job_id` of `input_file` moving from `old` (`None`: an
/// INSERT) to `new`, each `(JobStatus, ProgressRate)`; its job order is the id's leading number.
pub fn status_record(
    job_id: &str,
    input_file: &str,
    old: Option<(&str, u32)>,
    new: (&str, u32),
    sequence: u64,
) -> serde_json::Value {
    use serde_json::json;
    let order = job_id.split('-').next().unwrap_or("0");
    let image = |(status, progress): (&str, u32)| {
        json!({"JobId": {"S": job_id}, "InputFile": {"S": input_file},
        "JobStatus": {"S": status}, "ProgressRate": {"N": progress.to_string()}, "JobOrder": {"N": order}})
    };
    let mut change = json!({"ApproximateCreationDateTime": 1795557600, "Keys": {"JobId": {"S": job_id}}, "NewImage": image(new),
        "SequenceNumber": sequence.to_string(), "SizeBytes": 120, "StreamViewType": "NEW_AND_OLD_IMAGES"});
    if let Some(old) = old {
        change["OldImage"] = image(old);
    }
    json!({"eventID": sequence.to_string(), "eventName": if old.is_some() { "MODIFY" } else { "INSERT" }, "eventVersion": "1.1",
        "eventSource": "aws:dynamodb", "awsRegion": "us-east-1", "dynamodb": change,
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:000000000000:table/status/stream/x"})
}

/// A stream batch of `records`, as Lambda hands it to progress-push.
pub fn stream_event(records: Vec<serde_json::Value>) -> serde_json::Value {
    serde_json::json!({ "Records": records })
}

/// One moto server per test binary, started on first use.
pub struct Moto {
    pub endpoint: String,
    _child: Child,
}

/// The Python that has moto: `MOTO_PYTHON`, else the workspace's `.venv`, else `python3`.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("MOTO_PYTHON") {
        return p.into();
    }
    let venv = workspace().join(".venv/bin/python");
    if venv.exists() { venv } else { "python3".into() }
}

pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        let script = workspace().join("tests/support/moto_server.py");
        let mut child = Command::new(python())
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto (run scripts/test, which installs it)");
        let stdout = child.stdout.take().expect("moto stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read moto port");
        let port: u16 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("moto did not print a port: {line:?} (is moto[server] installed?)"));
        Moto { endpoint: format!("http://127.0.0.1:{port}"), _child: child }
    })
}

/// A DynamoDB client for moto with throwaway credentials.
pub fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .endpoint_url(&moto().endpoint)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// Table names no other test uses.
pub fn unique_tables(label: &str) -> TableNames {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    TableNames { status: format!("{label}-status-{pid}-{n}"), job_id: format!("{label}-jobid-{pid}-{n}") }
}

/// A DynamoDB job store on moto with freshly created tables.
pub async fn fresh_store(label: &str) -> DynamoJobStore {
    let client = dynamodb_client();
    let tables = unique_tables(label);
    ensure_tables(&client, &tables).await.expect("create tables on moto");
    DynamoJobStore::new(client, tables)
}

/// A DynamoDB Streams client for moto.
pub fn dynamodb_streams_client() -> aws_sdk_dynamodbstreams::Client {
    let config = aws_sdk_dynamodbstreams::Config::builder()
        .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodbstreams::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodbstreams::config::Credentials::new("test", "test", None, None, "tests"))
        .endpoint_url(&moto().endpoint)
        .build();
    aws_sdk_dynamodbstreams::Client::from_conf(config)
}

/// An SQS client for moto.
pub fn sqs_client() -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .region(aws_sdk_sqs::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "tests"))
        .endpoint_url(&moto().endpoint)
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

/// A DynamoDB subscription store on moto with a fresh table.
pub async fn fresh_subscriptions(label: &str) -> mcpush_core::adapters::dynamodb::DynamoSubscriptionStore {
    use mcpush_core::adapters::dynamodb::{DynamoSubscriptionStore, ensure_subscriptions_table};
    let client = dynamodb_client();
    let table = unique_tables(label).status.replace("-status-", "-subs-");
    ensure_subscriptions_table(&client, &table).await.expect("create subscriptions table on moto");
    DynamoSubscriptionStore::new(client, table)
}

/// An EventBridge client for moto.
pub fn eventbridge_client() -> aws_sdk_eventbridge::Client {
    let config = aws_sdk_eventbridge::Config::builder()
        .behavior_version(aws_sdk_eventbridge::config::BehaviorVersion::latest())
        .region(aws_sdk_eventbridge::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_eventbridge::config::Credentials::new("test", "test", None, None, "tests"))
        .endpoint_url(&moto().endpoint)
        .build();
    aws_sdk_eventbridge::Client::from_conf(config)
}

/// A rule on moto's default bus sending the `Job Status Changed` events of `source` to a fresh
/// SQS queue, as a backend would subscribe; answers the queue's URL.
pub async fn job_events_queue(label: &str, source: &str) -> String {
    let name = format!("{label}-{}-{}", std::process::id(), fastrand::u32(..));
    let queue = sqs_client().create_queue().queue_name(&name).send().await.expect("CreateQueue on moto");
    let url = queue.queue_url.expect("a queue URL");
    let arn = format!("arn:aws:sqs:us-east-1:123456789012:{name}");
    let pattern = serde_json::json!({"source": [source], "detail-type": ["Job Status Changed"]}).to_string();
    let events = eventbridge_client();
    events.put_rule().name(&name).event_pattern(pattern).send().await.expect("PutRule on moto");
    let target = aws_sdk_eventbridge::types::Target::builder().id("queue").arn(arn).build().expect("a target");
    events.put_targets().rule(&name).targets(target).send().await.expect("PutTargets on moto");
    url
}

/// The events the queue of [`job_events_queue`] received within `within` (each message's body).
pub async fn received_events(queue_url: &str, within: std::time::Duration) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + within;
    let mut events = Vec::new();
    while std::time::Instant::now() < deadline {
        let answer = sqs_client().receive_message().queue_url(queue_url).max_number_of_messages(10).send().await;
        let messages = answer.expect("ReceiveMessage on moto").messages.unwrap_or_default();
        if messages.is_empty() && !events.is_empty() {
            break;
        }
        for message in messages {
            let body = message.body.unwrap_or_default();
            events.push(serde_json::from_str(&body).unwrap_or_else(|e| panic!("{body}: {e}")));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    events
}
