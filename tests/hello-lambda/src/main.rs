//! The baseline of `tests/benches/cold_start.rs`: a `lambda_runtime` function that answers its
//! event, built and started exactly as the project's functions are.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move { Ok::<_, Error>(event.payload) })).await
}
