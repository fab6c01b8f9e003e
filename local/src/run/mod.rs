//! The wiring that runs the handlers as AWS runs them:
//! - [`options`]: settings, from the functions' variables with local defaults;
//! - [`stack`]: the functions over one set of stores and clients;
//! - [`backend`]: the WebSocket routes on the same handlers the Lambda functions run;
//! - [`triggers`]: S3 notifications, EventBridge and the reconcile schedule delivered to them;
//! - [`metrics`]: the functions' CloudWatch metrics in the log and at `GET /_local/metrics`;
//! - [`server`]: the HTTP server, with header and body idle timeouts;
//! - [`guard`]: 421 to a foreign `Host`, 403 to a foreign `Origin` on the routes that act alone;
//! - [`web`]: the demo page and its client module.

pub mod backend;
pub mod guard;
pub mod metrics;
pub mod options;
pub mod server;
pub mod stack;
pub mod triggers;
pub mod web;
