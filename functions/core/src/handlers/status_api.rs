//! `status-api`: `GET /media/status?job_id=J` (or `?input_file=F` for F's newest job) → status,
//! progress and, when finished, the outputs or the error.
//!
//! `?job_id=` answers exactly as the seed did. The `?input_file=` extension also names the job
//! (`job_id`), its `version` and, while PROGRESSING, its `current_phase`, as the WebSocket
//! `status` message does. Both are tagged for conditional requests and long polling (`?wait=`).

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use serde::Serialize;

use std::time::Duration;

use tokio::time::Instant;

use super::http::{self, Answer, ApiRequest, RestContext};
use crate::domain::{JobRecord, SeedStatus, StatusView};
use crate::metrics::{self, STATUS_API};

/// The `?input_file=` body: the seed's fields, the job's id, and the whole [`StatusView`].
#[serde_with::skip_serializing_none]
#[derive(Serialize)]
struct StatusBody {
    success: bool,
    /// Which job the answer is about.
    job_id: Option<String>,
    #[serde(flatten)]
    view: StatusView,
}

/// The longest `?wait=` a client may ask for: HTTP API gives an integration 30 s.
pub const MAX_WAIT_SECS: u64 = 20;
/// The first pause between two reads of a waiting request, doubled up to [`MAX_READ_PAUSE`].
const FIRST_READ_PAUSE: Duration = Duration::from_millis(250);
const MAX_READ_PAUSE: Duration = Duration::from_secs(2);

/// The entity tag of a job's state: its id and [`StatusView::version`].
pub fn etag(job_id: &str, version: u64) -> String {
    format!("\"{job_id}.{version}\"")
}

/// Does an `If-None-Match` header (a list of tags, `W/` or not, or `*`) name `etag`?
fn names(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').map(str::trim).any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// With tokens on, `token` must cover the file (`?input_file=`) or the job's input file
/// (`?job_id=`): 403 otherwise, naming why. A state is tagged ([`etag`]); `If-None-Match` with
/// its tag is answered `304` without a body, and with `?wait=N` (0 to [`MAX_WAIT_SECS`]) only
/// once the state changed or N seconds passed: the job is read again with growing pauses.
pub async fn handle(ctx: &RestContext<'_>, event: serde_json::Value, now_secs: u64) -> ApiGatewayV2httpResponse {
    http::serve(event, ctx.origins, |request| async move {
        let wait = match request.optional_param("wait").map(str::parse::<u64>) {
            None => 0,
            Some(Ok(secs)) if secs <= MAX_WAIT_SECS => secs,
            Some(_) => return Answer::error(400, &format!("\"wait\" is not whole seconds from 0 to {MAX_WAIT_SECS}.")),
        };
        let if_none_match = request.header("if-none-match").map(str::to_owned);
        let started = Instant::now();
        let deadline = started + Duration::from_secs(wait);
        let held = || {
            if wait > 0 && if_none_match.is_some() {
                STATUS_API.sample(metrics::STATUS_WAIT_MS, started.elapsed().as_secs_f64() * 1000.0);
            }
        };
        let mut pause = FIRST_READ_PAUSE;
        loop {
            let found = match find(ctx, &request, now_secs).await {
                Ok(found) => found,
                Err(answer) => {
                    held();
                    return answer;
                }
            };
            // The tag comes from the record: a state that did not change is never serialized.
            let tag = etag(&found.record.job_id, found.record.version());
            if !if_none_match.as_deref().is_some_and(|tags| names(tags, &tag)) {
                held();
                return found.answer(ctx, tag);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                held();
                STATUS_API.count(metrics::STATUS_NOT_MODIFIED, 1);
                return Answer::not_modified(tag);
            }
            tokio::time::sleep(pause.min(left)).await;
            pause = (pause * 2).min(MAX_READ_PAUSE);
        }
    })
    .await
}

/// The job a request names, found and readable by its caller.
struct Found {
    record: JobRecord,
    /// Asked by `?input_file=` (the extension's body), not `?job_id=` (the seed's).
    by_file: bool,
}

impl Found {
    /// The state's body, tagged.
    fn answer(self, ctx: &RestContext<'_>, tag: String) -> Answer {
        let view = StatusView::from(&self.record).linked(ctx.output_base_url);
        let answer = if self.by_file {
            Answer::ok(&StatusBody { success: true, job_id: Some(self.record.job_id), view })
        } else {
            Answer::ok(&SeedStatus::from(view))
        };
        answer.tagged(tag)
    }
}

/// One read of the job the request names, with the token checks; `Err` is the answer to send.
async fn find(ctx: &RestContext<'_>, request: &ApiRequest, now_secs: u64) -> Result<Found, Answer> {
    let token = request.optional_param("token");
    let by_file = request.optional_param("input_file").filter(|_| request.optional_param("job_id").is_none());
    if let Some(input_file) = by_file
        && let Err(e) = ctx.access.check(input_file, token, now_secs)
    {
        return Err(http::forbidden(&e));
    }
    let job_id = match by_file {
        Some(input_file) => match ctx.jobs.latest_job_id(input_file).await {
            Ok(Some(job_id)) => job_id,
            Ok(None) => return Err(Answer::error(422, "Not found item.")),
            Err(e) => return Err(internal(&e)),
        },
        None => request.param("job_id")?.to_owned(),
    };
    if by_file.is_none() && ctx.access.required() && token.is_none() {
        return Err(http::forbidden(&crate::domain::token::TokenError::Missing));
    }
    // An id no job can have is not looked up (a key DynamoDB would refuse): it is unknown.
    let found = match crate::domain::ids::check_job_id(&job_id) {
        Ok(()) => ctx.jobs.job(&job_id).await,
        Err(_) => Ok(None),
    };
    match found {
        Ok(Some(record)) => {
            if by_file.is_none()
                && let Err(e) = ctx.access.check_job(record.input_file.as_deref(), token, now_secs)
            {
                return Err(http::forbidden(&e));
            }
            Ok(Found { record, by_file: by_file.is_some() })
        }
        Ok(None) => Err(match ctx.access.refuse_unknown(token, now_secs) {
            Err(e) if by_file.is_none() => http::forbidden(&e),
            _ => Answer::error(422, "Not found item."),
        }),
        Err(e) => Err(internal(&e)),
    }
}

fn internal(e: &crate::ports::StoreError) -> Answer {
    tracing::error!(error = %e, "status lookup failed");
    Answer::error(500, "Internal error.")
}
