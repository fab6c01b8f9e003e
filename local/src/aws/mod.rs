//! The emulated AWS services, one module each, speaking the wire formats of the real ones so the
//! real SDK clients, browsers and the handlers' typed events work unchanged:
//! - [`apigw_ws`]: the API Gateway WebSocket API (`/ws`) and its Management API
//!   (`/@connections/{id}`);
//! - [`billing`]: what AWS would bill for it all, counted as it runs; [`dynamodb_meter`]: the
//!   request units of a DynamoDB API on loopback (moto), as DynamoDB computes them;
//! - [`eventbridge`]: `PutEvents`, the events kept (`/_local/events`) and the webhook;
//! - [`http_api`]: the HTTP API (`/media/*`) as payload v2 events;
//! - [`invoke`]: the Lambda Invoke API, one table of functions;
//! - [`s3`]: the upload and output buckets on disk, browser POST uploads, notifications;
//! - [`mediaconvert`]: the MediaConvert REST API and each job's timeline of events;
//! - [`stream`]: the status table's stream (embedded change feed or DynamoDB Streams) and its
//!   event source mapping to `progress-push`.

pub mod apigw_ws;
pub mod billing;
pub mod dynamodb_meter;
pub mod eventbridge;
pub mod http_api;
pub mod invoke;
pub mod mediaconvert;
pub mod s3;
pub mod stream;
