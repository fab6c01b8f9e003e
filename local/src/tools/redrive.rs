//! `redrive`: replays the failed asynchronous invocations Lambda sent to an on-failure SQS queue
//! (create-job's and progress-ingest's `EventInvokeConfig`). Each message is Lambda's invocation
//! record; its `requestPayload` (the S3 or EventBridge event) is invoked again through the Invoke
//! API, and the message is deleted only once that invocation succeeded. `--dry-run` only lists.

use std::collections::HashSet;
use std::io::Write;

use aws_sdk_lambda::primitives::Blob;
use serde::Deserialize;
use serde_json::Value;

use crate::tools::common::{CliError, printable};

/// What Lambda sends to an on-failure destination.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvocationRecord {
    pub request_context: Option<RequestContext>,
    /// The event the function was invoked with.
    pub request_payload: Value,
    pub response_payload: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestContext {
    pub function_arn: Option<String>,
    /// `RetriesExhausted`, `EventAgeExceeded`, …
    pub condition: Option<String>,
    pub approximate_invoke_count: Option<u32>,
}

/// What a redrive did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Redriven {
    /// Invoked successfully and deleted (or, in a dry run, would be invoked).
    pub redriven: usize,
    /// Invoked, but the function failed again: the message stays.
    pub failed: usize,
    /// Not an invocation record, or naming no function: the message stays.
    pub skipped: usize,
}

pub struct Redrive<'a> {
    pub sqs: &'a aws_sdk_sqs::Client,
    pub lambda: &'a aws_sdk_lambda::Client,
    pub queue_url: &'a str,
    /// The function to invoke; the record's `requestContext.functionArn` when `None`.
    pub function_name: Option<&'a str>,
    pub dry_run: bool,
}

impl Redrive<'_> {
    /// Reads the queue until it holds nothing this run has not seen, handling each message once.
    pub async fn run(&self, out: &mut (dyn Write + Send)) -> Result<Redriven, CliError> {
        let sqs_error = |e: &dyn std::fmt::Display| CliError::Http {
            url: self.queue_url.to_owned(),
            reason: printable(&e.to_string()),
        };
        let mut seen = HashSet::new();
        let mut totals = Redriven::default();
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .visibility_timeout(60)
                .send()
                .await
                .map_err(|e| sqs_error(&aws_sdk_sqs::error::DisplayErrorContext(e)))?;
            let mut fresh = Vec::new();
            for message in received.messages.unwrap_or_default() {
                if message.message_id.as_ref().is_none_or(|id| seen.insert(id.clone())) {
                    fresh.push(message);
                } else if self.dry_run {
                    self.make_visible(&message, out).await;
                }
            }
            if fresh.is_empty() {
                break;
            }
            for message in fresh {
                let id = message.message_id.clone().unwrap_or_default();
                let outcome = self.handle(message.body.as_deref().unwrap_or_default()).await;
                let line = match outcome {
                    Outcome::Redriven(function) if self.dry_run => {
                        totals.redriven += 1;
                        format!("{id}: would invoke {function}")
                    }
                    Outcome::Redriven(function) => {
                        totals.redriven += 1;
                        if let Some(handle) = &message.receipt_handle {
                            self.sqs
                                .delete_message()
                                .queue_url(self.queue_url)
                                .receipt_handle(handle)
                                .send()
                                .await
                                .map_err(|e| sqs_error(&aws_sdk_sqs::error::DisplayErrorContext(e)))?;
                        }
                        format!("{id}: invoked {function}, deleted")
                    }
                    Outcome::Failed(reason) => {
                        totals.failed += 1;
                        format!("{id}: failed again, kept: {reason}")
                    }
                    Outcome::Skipped(reason) => {
                        totals.skipped += 1;
                        format!("{id}: skipped, kept: {reason}")
                    }
                };
                let _ = writeln!(out, "{line}");
                if self.dry_run {
                    self.make_visible(&message, out).await;
                }
            }
        }
        let verb = if self.dry_run { "to redrive" } else { "redriven" };
        let _ = writeln!(out, "{} {verb}, {} failed again, {} skipped", totals.redriven, totals.failed, totals.skipped);
        Ok(totals)
    }

    /// A dry run leaves every message visible again at once, as if nothing had read it.
    async fn make_visible(&self, message: &aws_sdk_sqs::types::Message, out: &mut (dyn Write + Send)) {
        let Some(handle) = &message.receipt_handle else { return };
        let reset = self
            .sqs
            .change_message_visibility()
            .queue_url(self.queue_url)
            .receipt_handle(handle)
            .visibility_timeout(0)
            .send()
            .await;
        if let Err(e) = reset {
            let id = message.message_id.as_deref().unwrap_or_default();
            let _ = writeln!(
                out,
                "{id}: could not be made visible again: {}",
                printable(&aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
            );
        }
    }

    async fn handle(&self, body: &str) -> Outcome {
        let record: InvocationRecord = match serde_json::from_str(body) {
            Ok(record) => record,
            Err(e) => return Outcome::Skipped(format!("not a Lambda invocation record ({e})")),
        };
        let from_record = record.request_context.as_ref().and_then(|c| c.function_arn.as_deref());
        let Some(function) = self.function_name.or(from_record).map(str::to_owned) else {
            return Outcome::Skipped("no --function-name, and the record names no function".into());
        };
        if let Some(context) = &record.request_context {
            tracing::info!(
                function,
                condition = context.condition.as_deref(),
                invocations = context.approximate_invoke_count,
                "redriving"
            );
        }
        if self.dry_run {
            return Outcome::Redriven(function);
        }
        let payload = match serde_json::to_vec(&record.request_payload) {
            Ok(payload) => payload,
            Err(e) => return Outcome::Skipped(e.to_string()),
        };
        match self.lambda.invoke().function_name(&function).payload(Blob::new(payload)).send().await {
            Ok(output) if output.function_error().is_none() => Outcome::Redriven(function),
            Ok(output) => {
                let body =
                    output.payload().map(|p| String::from_utf8_lossy(p.as_ref()).into_owned()).unwrap_or_default();
                Outcome::Failed(printable(&body))
            }
            Err(e) => Outcome::Failed(printable(&aws_sdk_lambda::error::DisplayErrorContext(e).to_string())),
        }
    }
}

enum Outcome {
    Redriven(String),
    Failed(String),
    Skipped(String),
}
