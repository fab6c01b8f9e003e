//! `create-job` through the real MediaConvert SDK client, against a small HTTP peer that answers
//! GetJobTemplate and CreateJob the way MediaConvert's REST API does and records what it was sent;
//! the store is DynamoDB on moto.

use std::sync::{Arc, Mutex};

use aws_sdk_mediaconvert::config::{BehaviorVersion, Credentials, Region};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use mcpush_core::adapters::mediaconvert::MediaConvertJobCreator;
use mcpush_core::config::{CreateJobConfig, StatusUpdateInterval};
use mcpush_core::domain::DestinationTemplate;
use mcpush_core::domain::JobStatus;
use mcpush_core::handlers::create_job::{self, CreateJobError, RecordOutcome};
use mcpush_core::ports::JobStore;
use mcpush_tests::{fixture, fresh_store};
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Peer {
    created: Arc<Mutex<Vec<Value>>>,
    template_reads: Arc<Mutex<u32>>,
    fail_with: Option<StatusCode>,
}

async fn get_template(State(peer): State<Peer>, Path(name): Path<String>) -> Json<Value> {
    *peer.template_reads.lock().unwrap() += 1;
    Json(json!({"jobTemplate": {"name": name, "settings": {"outputGroups": [{
        "name": "Apple HLS",
        "outputGroupSettings": {"type": "HLS_GROUP_SETTINGS",
            "hlsGroupSettings": {"destination": "s3://template-destination/", "segmentLength": 6, "minSegmentLength": 0}},
        "outputs": [{"nameModifier": "_720p"}]
    }]}}}))
}

async fn create(State(peer): State<Peer>, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    if let Some(status) = peer.fail_with {
        return (status, Json(json!({"message": "simulated failure"})));
    }
    let mut created = peer.created.lock().unwrap();
    let token = body["clientRequestToken"].as_str().unwrap_or_default().to_owned();
    // Idempotent like MediaConvert: the same token answers the same job.
    let index = created.iter().position(|b| b["clientRequestToken"] == token.as_str()).unwrap_or_else(|| {
        created.push(body.clone());
        created.len() - 1
    });
    let id = format!("{}-job{index:03}", 1764021600000u64 + index as u64);
    (
        StatusCode::CREATED,
        Json(json!({"job": {"id": id, "arn": format!("arn:aws:mediaconvert:ap-northeast-1:111122223333:jobs/{id}"),
        "role": body["role"], "settings": {}, "status": "SUBMITTED", "userMetadata": body["userMetadata"]}})),
    )
}

async fn start(peer: Peer) -> String {
    let app = Router::new()
        .route("/2017-08-29/jobTemplates/{name}", get(get_template))
        .route("/2017-08-29/jobs", post(create))
        .with_state(peer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn config() -> CreateJobConfig {
    CreateJobConfig {
        job_template: "hls-720p".into(),
        role_arn: "arn:aws:iam::111122223333:role/MediaConvertRole".into(),
        queue: Some("arn:aws:mediaconvert:ap-northeast-1:111122223333:queues/Default".into()),
        destination: DestinationTemplate::parse("s3://{bucket}/{key}_output/").unwrap(),
        skip_prefixes: vec!["tmp/".into()],
        marker: "mediaconvert-push".into(),
        status_update_interval: StatusUpdateInterval::parse("SECONDS_15").unwrap(),
    }
}

async fn creator(peer: &Peer) -> MediaConvertJobCreator {
    let sdk = aws_sdk_mediaconvert::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("ap-northeast-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .endpoint_url(start(peer.clone()).await)
        .build();
    MediaConvertJobCreator::new(aws_sdk_mediaconvert::Client::from_conf(sdk), config())
}

#[tokio::test]
async fn upload_starts_a_job_and_stores_it_as_submitted() {
    let peer = Peer::default();
    let (creator, store) = (creator(&peer).await, fresh_store("create").await);

    let outcomes =
        create_job::handle(&config(), &creator, &store, &fixture("s3/object-created.json"), 1).await.unwrap();

    let job_id = "1764021600000-job000".to_owned();
    assert_eq!(
        outcomes,
        [RecordOutcome::Created { input_file: "uploads/Big Buck Bunny.mp4".into(), job_id: job_id.clone() }]
    );
    let sent = peer.created.lock().unwrap()[0].clone();
    assert_eq!(sent["jobTemplate"], "hls-720p");
    assert_eq!(sent["role"], "arn:aws:iam::111122223333:role/MediaConvertRole");
    assert_eq!(sent["queue"], "arn:aws:mediaconvert:ap-northeast-1:111122223333:queues/Default");
    assert_eq!(sent["statusUpdateInterval"], "SECONDS_15");
    assert_eq!(
        sent["userMetadata"],
        json!({"input_file": "uploads/Big Buck Bunny.mp4", "notifier": "mediaconvert-push"})
    );
    assert_eq!(sent["settings"]["inputs"][0]["fileInput"], "s3://upload-bucket/uploads/Big Buck Bunny.mp4");
    assert_eq!(
        sent["settings"]["outputGroups"][0]["outputGroupSettings"]["hlsGroupSettings"]["destination"],
        "s3://upload-bucket/uploads/Big Buck Bunny.mp4_output/"
    );
    assert_eq!(sent["settings"]["outputGroups"][0]["outputs"][0]["nameModifier"], "_720p");

    assert_eq!(store.latest_job_id("uploads/Big Buck Bunny.mp4").await.unwrap(), Some(job_id.clone()));
    let record = store.job(&job_id).await.unwrap().unwrap();
    assert_eq!((record.job_status, record.progress_rate), (JobStatus::Submitted, 0));
}

#[tokio::test]
async fn a_redelivered_event_does_not_start_a_second_job() {
    let peer = Peer::default();
    let (creator, store) = (creator(&peer).await, fresh_store("create").await);
    let first = create_job::handle(&config(), &creator, &store, &fixture("s3/object-created.json"), 1).await.unwrap();
    let again = create_job::handle(&config(), &creator, &store, &fixture("s3/object-created.json"), 2).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(peer.created.lock().unwrap().len(), 1);
    assert_eq!(*peer.template_reads.lock().unwrap(), 1, "the template is read once per process");
}

#[tokio::test]
async fn a_mixed_batch_creates_skips_and_rejects_record_by_record() {
    let peer = Peer::default();
    let (creator, store) = (creator(&peer).await, fresh_store("create").await);
    let outcomes = create_job::handle(&config(), &creator, &store, &fixture("s3/mixed-batch.json"), 1).await.unwrap();
    let summary: Vec<String> = outcomes
        .iter()
        .map(|o| match o {
            RecordOutcome::Created { input_file, .. } => format!("created {input_file}"),
            RecordOutcome::Skipped { key, reason } => format!("skipped {key}: {reason}"),
            RecordOutcome::Rejected { index, reason } => {
                format!("rejected #{index}: {}", reason.split(':').next().unwrap_or_default())
            }
        })
        .collect();
    assert_eq!(
        summary,
        [
            "created uploads/動画 #1.mov",
            "skipped uploads/Big+Buck+Bunny.mp4_output/Big+Buck+Bunny.m3u8: an output of this pipeline",
            "skipped uploads/old.mp4: event \"ObjectRemoved:Delete\" is not ObjectCreated",
            "rejected #3: malformed S3 record",
            "skipped tmp/scratch.mp4: under skipped prefix \"tmp/\"",
            "skipped uploads/folder/: folder marker",
        ]
    );
    assert_eq!(peer.created.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_failed_create_job_is_an_error_for_s3_to_retry_and_stores_nothing() {
    for status in [StatusCode::INTERNAL_SERVER_ERROR, StatusCode::BAD_REQUEST] {
        let peer = Peer { fail_with: Some(status), ..Peer::default() };
        let (creator, store) = (creator(&peer).await, fresh_store("create").await);
        let err =
            create_job::handle(&config(), &creator, &store, &fixture("s3/object-created.json"), 1).await.unwrap_err();
        assert!(matches!(err, CreateJobError::Create { .. }), "{status}: {err}");
        assert!(err.to_string().starts_with("CreateJob failed for \"uploads/Big Buck Bunny.mp4\""), "{err}");
        assert_eq!(store.latest_job_id("uploads/Big Buck Bunny.mp4").await.unwrap(), None);
    }
}
