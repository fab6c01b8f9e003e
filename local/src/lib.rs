//! The local stack: the very handlers the Lambda functions run, wired as on AWS. Three rooms:
//!
//! - [`aws`]: the emulated AWS services (API Gateway WebSocket and HTTP APIs, Lambda Invoke, S3,
//!   MediaConvert, EventBridge, the DynamoDB stream);
//! - [`run`]: the wiring that runs the handlers as AWS would (settings, the stack of functions,
//!   triggers, WebSocket backend, metrics, the Host/Origin guard, the demo page);
//! - [`tools`]: the terminal tools (`watch`, `replay`, `redrive`, `token`).
//!
//! This module assembles them: [`local`] (embedded store) and [`local_dynamodb`] (a DynamoDB API).

pub mod aws;
pub mod run;
pub mod sdk;
pub mod tools;

use std::sync::Arc;

use axum::Router;
use mcpush_core::adapters::dynamodb::{
    DynamoJobStore, DynamoSubscriptionStore, ensure_subscriptions_table, ensure_tables,
};
use mcpush_core::adapters::eventbridge::EventBridgePublisher;
use mcpush_core::adapters::mediaconvert::{MediaConvertJobCreator, MediaConvertJobInspector};
use mcpush_core::adapters::memory::{JobChange, MemoryJobStore, MemorySubscriptionStore};
use mcpush_core::adapters::oidc::OidcVerifier;
use mcpush_core::config::{EventsConfig, TableNames};
use mcpush_core::domain::OutputBaseUrl;
use mcpush_core::ports::{IdentityVerifier, JobStore, Pusher, SubscriptionStore};

pub use aws::invoke::Function;
pub use run::options::Options;
pub use run::stack::Stack;
pub use sdk::sdk_config_for;

/// A running local stack: its router (serve it on the listener whose address is `base`), the
/// WebSocket emulator and the functions.
pub struct Local {
    pub router: Router,
    pub api: Arc<aws::apigw_ws::WebSocketApi>,
    pub stack: Stack,
    /// The simulated MediaConvert (its jobs and their event timelines).
    pub simulator: Arc<aws::mediaconvert::MediaConvertSim>,
    /// The local EventBridge bus (the events event-publisher put, the webhook).
    pub bus: Arc<aws::eventbridge::LocalEventBus>,
    /// The simulated S3 (its buckets on disk, multipart uploads in progress).
    pub s3: Arc<aws::s3::LocalS3>,
    /// What AWS would bill for what the stack did (`/_local/metrics`'s `billing`).
    pub billing: Arc<aws::billing::Billing>,
}

/// Where progress-push's stream records come from.
pub enum Feed {
    /// The embedded store's change feed.
    Embedded(tokio::sync::mpsc::UnboundedReceiver<JobChange>),
    /// A real table's DynamoDB stream (moto or an AWS account), polled like Lambda does: one
    /// poller per event source mapping (progress-push's, event-publisher's).
    DynamoDbStreams { push: aws::stream::StreamPoller, events: aws::stream::StreamPoller },
}

/// Builds the whole pipeline for a server at `base` (e.g. `http://127.0.0.1:3000`) with an
/// embedded store, and starts the change feed's delivery to progress-push.
pub fn local(base: &str, options: Options) -> Local {
    let (jobs, feed) = MemoryJobStore::with_change_feed();
    let jobs = Arc::new(
        jobs.with_retention(options.retention).with_confirmation_refresh(options.reconcile.confirmation_refresh()),
    );
    if options.retention.is_some() {
        tokio::spawn(run::triggers::sweep_expired(Arc::downgrade(&jobs), run::triggers::TTL_SWEEP_INTERVAL));
    }
    let billing = Arc::new(aws::billing::Billing::default());
    assemble(base, options, jobs, Arc::new(MemorySubscriptionStore::default()), Feed::Embedded(feed), billing)
}

/// The pipeline on a DynamoDB API at `endpoint`: creates missing tables (status table with its
/// stream, job-id table, subscriptions table with index and TTL) and polls the status table's
/// stream. Credentials as [`sdk_config_for`] says (throwaway ones for moto on loopback). On a
/// loopback endpoint (moto, DynamoDB Local) the calls go through the DynamoDB meter
/// ([`aws::dynamodb_meter`]), which bills their request units as DynamoDB would.
pub async fn local_dynamodb(base: &str, options: Options, endpoint: &str) -> Result<Local, Box<dyn std::error::Error>> {
    let billing = Arc::new(aws::billing::Billing::default());
    let metered = if sdk::is_loopback(endpoint) {
        aws::dynamodb_meter::DynamoDbMeter::start(endpoint, billing.clone()).await?
    } else {
        endpoint.to_owned()
    };
    let sdk = sdk_config_for(Some(&metered)).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let tables = options.tables.clone();
    ensure_tables(&client, &tables).await?;
    let subscriptions = DynamoSubscriptionStore::new(client.clone(), options.subscriptions_table.clone());
    ensure_subscriptions_table(&client, subscriptions.table()).await?;
    let streams = aws_sdk_dynamodbstreams::Client::new(&sdk);
    let batch_size = options.batch_size as i32;
    let push = aws::stream::StreamPoller::open(&client, streams.clone(), &tables.status, batch_size).await?;
    let events = aws::stream::StreamPoller::open(&client, streams, &tables.status, batch_size).await?;
    let jobs = DynamoJobStore::new(client, tables)
        .with_retention(options.retention)
        .with_confirmation_refresh(options.reconcile.confirmation_refresh());
    let feed = Feed::DynamoDbStreams { push, events };
    Ok(assemble(base, options, Arc::new(jobs), Arc::new(subscriptions), feed, billing))
}

/// Wires the handlers, the WebSocket emulator, the simulated S3 and MediaConvert, and the feed
/// around the given stores.
pub fn assemble(
    base: &str,
    mut options: Options,
    jobs: Arc<dyn JobStore>,
    subscriptions: Arc<dyn SubscriptionStore>,
    feed: Feed,
    billing: Arc<aws::billing::Billing>,
) -> Local {
    // Outputs are served by the local S3 unless OUTPUT_BASE_URL says otherwise.
    let outputs_bucket = options.create_job.destination.render(&options.upload.bucket, "k");
    let outputs_bucket = aws::s3::split_s3_url(&outputs_bucket).map_or("outputs", |(b, _)| b).to_owned();
    let served = OutputBaseUrl::parse(&format!("{base}/s3/{outputs_bucket}/")).ok();
    let output_base_url = options.push.output_base_url.clone().or(served);
    options.push.output_base_url.clone_from(&output_base_url);
    options.ws.output_base_url.clone_from(&output_base_url);
    let pusher: Arc<dyn Pusher> = Arc::new(run::backend::local_pusher(base));
    let origins = Arc::new(options.origins);
    let region = options.simulator.region.clone();
    let mediaconvert = aws_sdk_mediaconvert::Config::builder()
        .behavior_version(aws_sdk_mediaconvert::config::BehaviorVersion::latest())
        .region(aws_sdk_mediaconvert::config::Region::new(region.clone()))
        .credentials_provider(aws_sdk_mediaconvert::config::Credentials::new("local", "local", None, None, "local"))
        .endpoint_url(base)
        .build();
    let mediaconvert = aws_sdk_mediaconvert::Client::from_conf(mediaconvert);
    let creator = MediaConvertJobCreator::new(mediaconvert.clone(), options.create_job.clone());
    let event_bus = aws::eventbridge::LocalEventBus::new(&region, options.webhook.clone(), billing.clone());
    event_bus.set_fault_rate(options.eventbridge_fault_rate);
    let publisher = EventBridgePublisher::new(aws::eventbridge::local_client(base, &region), &options.event_bus);
    let stack = Stack {
        jobs: jobs.clone(),
        subscriptions: subscriptions.clone(),
        pusher: pusher.clone(),
        creator: Arc::new(creator),
        inspector: Arc::new(MediaConvertJobInspector::new(mediaconvert)),
        origins: origins.clone(),
        access: Arc::new(options.ws.access.clone()),
        push_config: Arc::new(options.push),
        create_job_config: Arc::new(options.create_job),
        reconcile_config: Arc::new(options.reconcile),
        upload_signer: Arc::new(aws::s3::local_post_signer(base, &options.upload.bucket, &region)),
        multipart: Arc::new(aws::s3::local_multipart(base, &options.upload.bucket, &region)),
        upload_config: Arc::new(options.upload.clone()),
        identity: options.oidc.map(|oidc| Arc::new(OidcVerifier::new(oidc)) as Arc<dyn IdentityVerifier>),
        output_base_url: output_base_url.clone(),
        publisher: Arc::new(publisher),
        events_config: Arc::new(EventsConfig { output_base_url, ..options.events }),
        billing: billing.clone(),
    };
    let handlers = run::backend::HandlerBackend {
        origins: origins.clone(),
        jobs,
        subscriptions,
        pusher,
        config: options.ws,
        identity: stack.identity.clone(),
        billing: billing.clone(),
    };
    let api = aws::apigw_ws::WebSocketApi::new(Arc::new(handlers), &run::backend::ROUTES, "local", "127.0.0.1");
    api.set_fault_rate(options.ws_post_fault_rate);
    api.set_billing(billing.clone());
    api.set_limits(options.apigw_limits);
    api.set_request_limits(options.apigw_requests);

    let s3 = Arc::new(aws::s3::LocalS3::new(options.s3_dir, &region));
    let (notify, notifications) = tokio::sync::mpsc::unbounded_channel();
    let (bus, events) = tokio::sync::mpsc::unbounded_channel();
    let simulator = aws::mediaconvert::MediaConvertSim::new(options.simulator, s3.clone(), bus);
    tokio::spawn(run::triggers::deliver_s3_notifications(stack.clone(), notifications));
    tokio::spawn(run::triggers::deliver_eventbridge_events(stack.clone(), events));
    tokio::spawn(run::triggers::schedule_reconcile(stack.clone(), options.reconcile_every));
    let web = run::web::WebConfig {
        outputs_url: format!("/s3/{outputs_bucket}/"),
        recheck_interval_ms: run::web::DEMO_RECHECK_INTERVAL_MS,
    };

    let pushing = stack.clone();
    let push = move |event: serde_json::Value| {
        let stack = pushing.clone();
        async move { stack.progress_push(&event).await }
    };
    let publishing = stack.clone();
    let publish = move |event: serde_json::Value| {
        let stack = publishing.clone();
        async move { stack.event_publisher(&event).await }
    };
    // Two event source mappings on the one stream, each reading at its own pace: a slow bus
    // never delays a push.
    match feed {
        Feed::Embedded(feed) => {
            let [to_push, to_publish] = aws::stream::tee(feed);
            let (size, window) = (options.batch_size, options.batch_window);
            let records = || aws::stream::EmbeddedStream::new(&TableNames::default().status);
            tokio::spawn(aws::stream::run_feed(to_push, records(), size, window, push));
            tokio::spawn(aws::stream::run_feed(to_publish, records(), size, window, publish));
        }
        Feed::DynamoDbStreams { push: push_poller, events } => {
            tokio::spawn(aws::stream::run_poller(push_poller, options.batch_window, push));
            tokio::spawn(aws::stream::run_poller(events, options.batch_window, publish));
        }
    }
    use aws::billing::{Meter, metered};
    let s3_api = aws::s3::router(s3.clone(), origins.clone(), notify, !stack.access.required());
    let router = metered(aws::http_api::router(stack.clone()), billing.clone(), Meter::HttpApi)
        .merge(aws::invoke::router(stack.clone()))
        .merge(api.router())
        .merge(metered(s3_api, billing.clone(), Meter::S3))
        .merge(metered(simulator.router(), billing.clone(), Meter::MediaConvert))
        .merge(aws::eventbridge::router(event_bus.clone()))
        .merge(run::web::router(web))
        .merge(run::metrics::router(run::metrics::LocalMetrics::global(), billing.clone()));
    let router = run::guard::guarded(router, origins);
    Local { router, api, stack, simulator, bus: event_bus, s3, billing }
}
