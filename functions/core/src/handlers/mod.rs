//! One module per Lambda function: a typed (or raw, where the typed model cannot express what
//! real callers send) event in, the domain and ports in the middle, a typed response out.
//! AWS, the local stack and the tests all call these functions.

pub mod batch;
pub mod create_job;
pub mod event_publisher;
pub mod http;
pub mod job_id_api;
pub mod multipart_api;
pub mod progress_ingest;
pub mod progress_push;
pub mod reconcile;
pub mod status_api;
pub mod token_api;
pub mod upload_api;
pub mod ws;
pub mod ws_authorizer;
