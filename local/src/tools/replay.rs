//! `replay`: EventBridge events (JSON files, or JSON Lines with one event per line) sent to a
//! function through the Lambda Invoke API with aws-sdk-lambda (SigV4), as AWS invokes it.

use std::io::Write;

use aws_sdk_lambda::primitives::Blob;
use indicatif::ProgressBar;
use serde::Deserialize;
use serde_json::Value;

use crate::tools::common::{CliError, printable};

/// Reads events from files: a JSON document per file (an array is several events), or JSON Lines.
pub fn read_events(paths: &[String]) -> Result<Vec<(String, Value)>, CliError> {
    let mut events = Vec::new();
    for path in paths {
        let text =
            std::fs::read_to_string(path).map_err(|e| CliError::Input { path: path.clone(), reason: e.to_string() })?;
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Array(items)) => events.extend(items.into_iter().map(|v| (path.clone(), v))),
            Ok(value) => events.push((path.clone(), value)),
            Err(_) => {
                for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                    let value = serde_json::from_str(line)
                        .map_err(|e| CliError::Input { path: format!("{path}:{}", n + 1), reason: e.to_string() })?;
                    events.push((format!("{path}:{}", n + 1), value));
                }
            }
        }
    }
    Ok(events)
}

/// A Lambda client for `endpoint` (see [`crate::sdk::sdk_config_for`]) that waits at most `wait`
/// for a connection and for each attempt of an invocation.
pub async fn lambda_client(endpoint: Option<&str>, wait: std::time::Duration) -> aws_sdk_lambda::Client {
    let sdk = crate::sdk::sdk_config_for(endpoint).await;
    let config = aws_sdk_lambda::config::Builder::from(&sdk)
        .timeout_config(crate::sdk::timeouts(wait))
        .interceptor(crate::tools::common::ResponseLimit(crate::tools::common::MAX_SDK_RESPONSE_BYTES))
        .build();
    aws_sdk_lambda::Client::from_conf(config)
}

#[derive(Deserialize)]
struct FunctionError {
    #[serde(rename = "errorMessage")]
    error_message: String,
}

/// `replay`: invokes `function` once per event, in order (`RequestResponse`). Returns how many
/// the function rejected; each rejection is printed with where the event came from.
pub async fn replay(
    client: &aws_sdk_lambda::Client,
    function: &str,
    paths: &[String],
    out: &mut (dyn Write + Send),
    bar: ProgressBar,
) -> Result<usize, CliError> {
    let events = read_events(paths)?;
    bar.set_length(events.len() as u64);
    let mut rejected = 0;
    for (source, event) in &events {
        let payload =
            serde_json::to_vec(event).map_err(|e| CliError::Input { path: source.clone(), reason: e.to_string() })?;
        let output = client.invoke().function_name(function).payload(Blob::new(payload)).send().await.map_err(|e| {
            CliError::Invoke {
                function: function.to_owned(),
                reason: printable(&aws_sdk_lambda::error::DisplayErrorContext(e).to_string()),
            }
        })?;
        if output.function_error().is_some() {
            rejected += 1;
            let body = output.payload().map(|p| p.as_ref()).unwrap_or_default();
            let reason = serde_json::from_slice::<FunctionError>(body)
                .map(|f| f.error_message)
                .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned());
            bar.suspend(|| writeln!(out, "{source}: rejected: {}", printable(&reason)))
                .map_err(|e| CliError::Input { path: "output".into(), reason: e.to_string() })?;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let _ = writeln!(out, "{} replayed, {rejected} rejected", events.len() - rejected);
    Ok(rejected)
}
