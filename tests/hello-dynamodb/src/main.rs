//! The second baseline of `tests/benches/cold_start.rs`, the floor any function that calls
//! DynamoDB through the AWS SDK for Rust starts from: `hello-lambda` plus aws-config (region,
//! credentials, endpoint from the environment) and one DynamoDB client built at init, with the
//! same SDK features as the project's functions. Each event costs one `GetItem`.

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = aws_config::load_from_env().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = std::env::var("JOB_STATUS_TABLE")?;
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| {
        let (client, table) = (client.clone(), table.clone());
        async move {
            let item =
                client.get_item().table_name(table).key("input_file", AttributeValue::S("hello".into())).send().await?;
            Ok::<_, Error>(json!({"found": item.item.is_some()}))
        }
    }))
    .await
}
