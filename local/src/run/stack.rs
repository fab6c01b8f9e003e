//! The functions of the pipeline over one set of stores and clients: every trigger of the local
//! stack (Invoke API, HTTP API, S3 notifications, EventBridge, the stream) calls the handlers
//! through here, as Lambda would call the function binaries.

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use aws_lambda_events::streams::DynamoDbEventResponse;
use mcpush_core::config::{CreateJobConfig, EventsConfig, PushConfig, ReconcileConfig, UploadConfig};
use mcpush_core::domain::token::ReadAccess;
use mcpush_core::domain::{AllowedOrigins, OutputBaseUrl};
use mcpush_core::handlers::event_publisher::{self, EventsContext};
use mcpush_core::handlers::http::RestContext;
use mcpush_core::handlers::multipart_api::{self, MultipartContext};
use mcpush_core::handlers::progress_push::{self, PushContext};
use mcpush_core::handlers::reconcile::{self, ReconcileContext, ReconcileStats};
use mcpush_core::handlers::{create_job, job_id_api, progress_ingest, status_api, token_api, upload_api};
use mcpush_core::ports::{
    EventPublisher, IdentityVerifier, JobCreator, JobInspector, JobStore, MultipartUploads, Pusher, SubscriptionStore,
    UploadSigner,
};
use serde_json::Value;

#[derive(Clone)]
pub struct Stack {
    pub jobs: Arc<dyn JobStore>,
    pub subscriptions: Arc<dyn SubscriptionStore>,
    pub pusher: Arc<dyn Pusher>,
    pub creator: Arc<dyn JobCreator>,
    pub inspector: Arc<dyn JobInspector>,
    pub origins: Arc<AllowedOrigins>,
    /// The token rule of every read (REST and `subscribe`).
    pub access: Arc<ReadAccess>,
    pub push_config: Arc<PushConfig>,
    pub create_job_config: Arc<CreateJobConfig>,
    pub reconcile_config: Arc<ReconcileConfig>,
    /// upload-api's settings and its signer (the simulated S3's credentials and URL).
    pub upload_config: Arc<UploadConfig>,
    pub upload_signer: Arc<dyn UploadSigner>,
    /// upload-api's multipart uploads: the real S3 client on the simulated bucket.
    pub multipart: Arc<dyn MultipartUploads>,
    /// With OIDC: the token check HTTP API's JWT authorizer and the WebSocket authorizer make.
    pub identity: Option<Arc<dyn IdentityVerifier>>,
    /// `OUTPUT_BASE_URL` (by default the local S3's URL of the output bucket).
    pub output_base_url: Option<OutputBaseUrl>,
    /// event-publisher's bus (the real SDK client on the local EventBridge) and settings.
    pub publisher: Arc<dyn EventPublisher>,
    pub events_config: Arc<EventsConfig>,
    /// Each function's invocations are billed here (`/_local/metrics`'s `billing`).
    pub billing: Arc<crate::aws::billing::Billing>,
}

impl Stack {
    pub async fn create_job(
        &self,
        event: &Value,
    ) -> Result<Vec<create_job::RecordOutcome>, create_job::CreateJobError> {
        let _billed = self.billing.invocation("create-job");
        create_job::handle(
            &self.create_job_config,
            self.creator.as_ref(),
            self.jobs.as_ref(),
            event,
            mcpush_core::now_ms(),
        )
        .await
    }

    pub async fn progress_ingest(
        &self,
        event: &Value,
    ) -> Result<progress_ingest::IngestOutcome, progress_ingest::IngestError> {
        let _billed = self.billing.invocation("progress-ingest");
        progress_ingest::handle(self.jobs.as_ref(), event, mcpush_core::now_ms()).await
    }

    fn rest(&self) -> RestContext<'_> {
        RestContext::new(self.jobs.as_ref(), &self.origins, &self.access)
            .with_output_base_url(self.output_base_url.as_ref())
    }

    pub async fn job_id_api(&self, event: Value) -> ApiGatewayV2httpResponse {
        let _billed = self.billing.invocation("job-id-api");
        job_id_api::handle(&self.rest(), event, mcpush_core::now_ms() / 1000).await
    }

    pub async fn status_api(&self, event: Value) -> ApiGatewayV2httpResponse {
        let _billed = self.billing.invocation("status-api");
        status_api::handle(&self.rest(), event, mcpush_core::now_ms() / 1000).await
    }

    pub async fn progress_push(&self, event: &Value) -> DynamoDbEventResponse {
        let _billed = self.billing.invocation("progress-push");
        let ctx =
            PushContext::new(self.jobs.as_ref(), self.subscriptions.as_ref(), self.pusher.as_ref(), &self.push_config);
        progress_push::handle(&ctx, event, mcpush_core::now_ms() / 1000).await.0
    }

    pub async fn event_publisher(&self, event: &Value) -> DynamoDbEventResponse {
        let _billed = self.billing.invocation("event-publisher");
        let ctx = EventsContext::new(self.publisher.as_ref(), &self.events_config);
        event_publisher::handle(&ctx, event).await.0
    }

    pub async fn upload_api(&self, event: Value) -> ApiGatewayV2httpResponse {
        let _billed = self.billing.invocation("upload-api");
        let signer = self.upload_signer.as_ref();
        let ctx = upload_api::UploadContext::new(
            &self.origins,
            &self.access,
            signer,
            &self.upload_config,
            self.identity.is_some(),
        )
        .with_multipart(self.multipart.as_ref());
        upload_api::handle(&ctx, event, std::time::SystemTime::now()).await
    }

    /// upload-api's multipart routes, `POST /media/uploads/{parts,complete,abort}`.
    pub async fn multipart_api(&self, event: Value) -> ApiGatewayV2httpResponse {
        let _billed = self.billing.invocation("upload-api");
        let ctx = MultipartContext::new(
            &self.origins,
            &self.access,
            self.multipart.as_ref(),
            &self.upload_config,
            self.identity.is_some(),
        );
        multipart_api::handle(&ctx, event, std::time::SystemTime::now()).await
    }

    /// upload-api's other route, `POST /media/tokens`.
    pub async fn token_api(&self, event: Value) -> ApiGatewayV2httpResponse {
        let _billed = self.billing.invocation("upload-api");
        let ctx = token_api::TokenContext::new(&self.origins, &self.access, self.jobs.as_ref(), &self.upload_config)
            .with_identity(self.identity.as_deref());
        token_api::handle(&ctx, event, mcpush_core::now_ms() / 1000).await
    }

    pub async fn reconcile(&self) -> Result<ReconcileStats, reconcile::ReconcileError> {
        let _billed = self.billing.invocation("reconcile");
        let ctx = ReconcileContext::new(self.jobs.as_ref(), self.inspector.as_ref(), &self.reconcile_config);
        reconcile::handle(&ctx, mcpush_core::now_ms()).await
    }
}
