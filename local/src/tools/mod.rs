//! The terminal tools of the local stack binary; all work against a deployed stack too:
//! - [`watch`]: a live progress bar over the WebSocket API, REST polling as the fallback;
//! - [`replay`]: EventBridge events sent to a function through the Lambda Invoke API;
//! - [`redrive`]: failed asynchronous invocations replayed from their on-failure queue;
//! - [`token`]: a read token for a file or folder;
//! - [`upload`]: a resumable multipart upload with a bar;
//! - [`events`]: the local stack's Job Status Changed events, tailed;
//! - [`common`]: what they share (errors, TLS, HTTP client, printing server strings safely).

pub mod common;
pub mod events;
pub mod redrive;
pub mod replay;
pub mod token;
pub mod upload;
pub mod watch;
