//! The local stack's settings: the functions' own variables, read by `mcpush_core::config` with
//! the local stack's defaults, and the local-only ones (`STREAM_*`, `LOCAL_S3_DIR`,
//! `UPLOAD_BUCKET`, `SIMULATOR_*`), read here and nowhere else.

use std::path::PathBuf;
use std::time::Duration;

use mcpush_core::config::{
    ConfigError, CreateJobConfig, Env, EventsConfig, OidcConfig, PushConfig, ReconcileConfig, TableNames, UploadConfig,
    WsConfig,
};
use mcpush_core::domain::AllowedOrigins;
use regex::Regex;

use crate::aws::apigw_ws::{ConnectionLimits, Rate, RequestLimits};
use crate::aws::eventbridge::Webhook;
use crate::aws::mediaconvert::SimSettings;
use crate::run::server::{MAX_WAIT, ServerLimits};

/// Origins the local stack allows by default: any local port.
pub const LOCAL_ALLOWED_ORIGINS: &str = r"http://127\.0\.0\.1(:\d+)? http://localhost(:\d+)?";
/// Bucket of the simulated uploads (`UPLOAD_BUCKET`).
pub const DEFAULT_UPLOAD_BUCKET: &str = "uploads";
/// Where the simulated MediaConvert writes each upload's outputs (`OUTPUT_DESTINATION`).
pub const DEFAULT_OUTPUT_DESTINATION: &str = "s3://outputs/{key}_hls/";
/// Folder of the simulated buckets (`LOCAL_S3_DIR`).
pub const DEFAULT_S3_DIR: &str = ".local/s3";

/// The functions' variables whose local default differs from Lambda's (where Lambda has none, or
/// the local stack wants another): any local origin, the simulator's template and a throwaway
/// role, the simulated buckets, status items kept forever (so replayed fixtures of old jobs
/// stay), and a reconciler that looks after 3 s instead of 5 min.
pub fn local_defaults(env: Env) -> Env {
    env.or("ALLOWED_ORIGINS", LOCAL_ALLOWED_ORIGINS)
        .or("MEDIACONVERT_JOB_TEMPLATE", SimSettings::default().template)
        .or("MEDIACONVERT_ROLE_ARN", "arn:aws:iam::000000000000:role/MediaConvertLocal")
        .or("OUTPUT_DESTINATION", DEFAULT_OUTPUT_DESTINATION)
        .or("UPLOAD_BUCKET", DEFAULT_UPLOAD_BUCKET)
        .or("STATUS_RETENTION_DAYS", "0")
        .or("RECONCILE_AFTER_SECONDS", "3")
}

/// The local stack's settings, from the same environment variables as the Lambda functions.
#[derive(Clone, Debug)]
pub struct Options {
    /// `JOB_STATUS_TABLE`, `JOB_ID_TABLE` (DynamoDB mode).
    pub tables: TableNames,
    /// `SUBSCRIPTIONS_TABLE` (DynamoDB mode).
    pub subscriptions_table: String,
    pub origins: AllowedOrigins,
    pub ws: WsConfig,
    pub push: PushConfig,
    /// `STREAM_BATCH_SIZE` (default 100): records per progress-push invocation.
    pub batch_size: usize,
    /// `STREAM_BATCH_WINDOW_MS` (default 0): how long a batch waits for more records. At 0 a
    /// change is pushed at once, and records already waiting still go in the same batch
    /// (coalesced per job).
    pub batch_window: Duration,
    /// create-job's settings: `MEDIACONVERT_JOB_TEMPLATE` (default `local-hls`, the simulator's
    /// template), `MEDIACONVERT_ROLE_ARN`, `OUTPUT_DESTINATION` (default
    /// [`DEFAULT_OUTPUT_DESTINATION`]), `SKIP_KEY_PREFIXES`, `JOB_MARKER`.
    pub create_job: CreateJobConfig,
    /// The simulated MediaConvert's behaviour (`SIMULATOR_*`); its template is create-job's.
    pub simulator: SimSettings,
    /// `LOCAL_S3_DIR` (default `.local/s3`): the simulated buckets' folder.
    pub s3_dir: PathBuf,
    /// upload-api's settings: `UPLOAD_BUCKET` (default `uploads`, the bucket the demo page
    /// uploads to), `UPLOAD_PREFIX`, `MAX_UPLOAD_BYTES`, `ALLOWED_CONTENT_TYPES`,
    /// `UPLOAD_GRANT_SECONDS`, `TOKEN_TTL_SECONDS`.
    pub upload: UploadConfig,
    /// `STATUS_RETENTION_DAYS`: status items' TTL, as on AWS. Unset, the local stack keeps them
    /// forever (unlike Lambda's default of 90 days), so replayed fixtures of old jobs stay.
    pub retention: Option<Duration>,
    /// `WS_POST_FAULT_RATE` (0 to 1, default 0): that share of all Management API posts answer
    /// 429 or 500, decided before anything else (whatever the connection id).
    pub ws_post_fault_rate: f64,
    /// `APIGW_IDLE_TIMEOUT_S` (default 600) and `APIGW_MAX_CONNECTION_S` (default 7200): API
    /// Gateway's idle timeout and maximum connection age, after which the emulator closes a
    /// connection with 1001 and runs `$disconnect`.
    pub apigw_limits: ConnectionLimits,
    /// API Gateway's request limits, all off by default: `APIGW_POST_LATENCY_MS` (`20` or a range
    /// `10-40`, added to every Management API call), `APIGW_POST_RATE` and `APIGW_POST_BURST` (a
    /// token bucket over all posts, 429 above it; the burst defaults to the rate) and
    /// `APIGW_CONNECT_RATE` (new connections per second, 429 at the handshake above it).
    pub apigw_requests: RequestLimits,
    /// The reconciler's settings; locally `RECONCILE_AFTER_SECONDS` defaults to 3, so a job
    /// whose final event was lost shows its final state within seconds.
    pub reconcile: ReconcileConfig,
    /// `RECONCILE_INTERVAL_MS` (default 2000): how often the local stack runs `reconcile` (on
    /// AWS, the template's `ReconcileSchedule`).
    pub reconcile_every: Duration,
    /// `OIDC_ISSUER` and `OIDC_AUDIENCE` (both or neither): sign-in on `POST /media/uploads`
    /// (`Authorization: Bearer JWT`, checked as HTTP API's JWT authorizer would) and on the
    /// WebSocket (`?access_token=JWT`, checked by the same authorizer as on AWS).
    pub oidc: Option<OidcConfig>,
    /// `HTTP_HEADER_TIMEOUT_S` and `HTTP_BODY_IDLE_TIMEOUT_S` (1 to 30, default 30): how long
    /// the server waits for a request's headers, and for the next bytes of its body.
    pub server: ServerLimits,
    /// event-publisher's settings (`EVENT_SOURCE`, `EVENTS_MAX_ATTEMPTS`, `EVENTS_BACKOFF_MS`).
    pub events: EventsConfig,
    /// `EVENT_BUS_NAME` (default `default`): the bus event-publisher puts on (locally, any name
    /// reaches the local bus).
    pub event_bus: String,
    /// `EVENTBRIDGE_FAULT_RATE` (0 to 1, default 0): that share of `PutEvents` entries is refused.
    pub eventbridge_fault_rate: f64,
    /// `WEBHOOK_URL` (http or https) and `WEBHOOK_SECRET`: every event is POSTed there as an
    /// API destination would.
    pub webhook: Option<Webhook>,
}

impl Default for Options {
    /// The local stack's defaults: any local origin, the functions' defaults, batches of up to
    /// 100 records that wait for nothing.
    fn default() -> Self {
        Self::read(&Env::empty()).unwrap_or_else(|e| unreachable!("the built-in defaults are valid: {e}"))
    }
}

impl Options {
    /// The settings from the environment; the token secret from `SUBSCRIBE_SECRET`, or from
    /// Secrets Manager with `SUBSCRIBE_SECRET_ARN` (the SDK's own credentials and region).
    pub async fn from_env() -> Result<Self, ConfigError> {
        let env = Env::process();
        let options = Self::read(&env)?;
        let secret = env.token_secret()?;
        let access =
            mcpush_core::adapters::secrets::read_access_with(&secret, crate::sdk::sdk_config_for(None)).await?;
        Ok(Self { ws: options.ws.clone().with_access(access), ..options })
    }

    /// The settings `env` gives over the [`local_defaults`], tokens off.
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        let env = &local_defaults(env.clone());
        let create_job = CreateJobConfig::read(env)?;
        let simulator = SimSettings { template: create_job.job_template.clone(), ..sim_settings(env)? };
        let secs = |name: &'static str, default: u64| {
            Ok::<_, ConfigError>(Duration::from_secs(env.parsed(name, default)?.max(1)))
        };
        Ok(Self {
            tables: TableNames::read(env),
            subscriptions_table: env.subscriptions_table(),
            origins: env.origins()?,
            ws: WsConfig::read(env)?,
            push: PushConfig::read(env)?,
            batch_size: env.parsed("STREAM_BATCH_SIZE", 100)?,
            batch_window: Duration::from_millis(env.parsed("STREAM_BATCH_WINDOW_MS", 0)?),
            create_job,
            simulator,
            s3_dir: env.var("LOCAL_S3_DIR").unwrap_or_else(|| DEFAULT_S3_DIR.into()).into(),
            upload: UploadConfig::read(env)?,
            retention: env.retention()?,
            ws_post_fault_rate: share(env, "WS_POST_FAULT_RATE", 0.0)?,
            apigw_limits: ConnectionLimits {
                idle: secs("APIGW_IDLE_TIMEOUT_S", ConnectionLimits::default().idle.as_secs())?,
                max_age: secs("APIGW_MAX_CONNECTION_S", ConnectionLimits::default().max_age.as_secs())?,
            },
            apigw_requests: request_limits(env)?,
            reconcile: ReconcileConfig::read(env)?,
            reconcile_every: Duration::from_millis(env.parsed("RECONCILE_INTERVAL_MS", 2000u64)?.max(1)),
            oidc: env.oidc()?,
            server: ServerLimits {
                header_read: wait(env, "HTTP_HEADER_TIMEOUT_S")?,
                body_idle: wait(env, "HTTP_BODY_IDLE_TIMEOUT_S")?,
            },
            events: EventsConfig::read(env)?,
            event_bus: env.var("EVENT_BUS_NAME").unwrap_or_else(|| "default".into()),
            eventbridge_fault_rate: share(env, "EVENTBRIDGE_FAULT_RATE", 0.0)?,
            webhook: webhook(env)?,
        })
    }
}

/// `SIMULATOR_STEP_MS`, `SIMULATOR_CHAOS`, `SIMULATOR_FAIL_PATTERN`, `SIMULATOR_SEED` and the
/// region (`AWS_REGION`, else `AWS_DEFAULT_REGION`).
fn sim_settings(env: &Env) -> Result<SimSettings, ConfigError> {
    let defaults = SimSettings::default();
    let invalid = |name: &'static str, reason: String| ConfigError::Invalid { name, reason };
    let fail_pattern = match env.var("SIMULATOR_FAIL_PATTERN") {
        Some(v) => {
            Regex::new(&v).map_err(|e| invalid("SIMULATOR_FAIL_PATTERN", format!("{v:?} is not a regex: {e}")))?
        }
        None => defaults.fail_pattern.clone(),
    };
    Ok(SimSettings {
        step: Duration::from_millis(env.parsed("SIMULATOR_STEP_MS", defaults.step.as_millis() as u64)?),
        chaos: share(env, "SIMULATOR_CHAOS", defaults.chaos)?,
        drop: share(env, "SIMULATOR_DROP", defaults.drop)?,
        fail_pattern,
        seed: env
            .var("SIMULATOR_SEED")
            .map(|v| v.parse().map_err(|_| invalid("SIMULATOR_SEED", format!("{v:?} is not a number"))))
            .transpose()?,
        template: defaults.template,
        region: env.var("AWS_REGION").or_else(|| env.var("AWS_DEFAULT_REGION")).unwrap_or(defaults.region),
        account: defaults.account,
        transcode_seconds: defaults.transcode_seconds,
    })
}

/// `APIGW_POST_LATENCY_MS`, `APIGW_POST_RATE`, `APIGW_POST_BURST`, `APIGW_CONNECT_RATE`.
fn request_limits(env: &Env) -> Result<RequestLimits, ConfigError> {
    let rate = |name: &'static str| -> Result<Option<f64>, ConfigError> {
        let value: f64 = env.parsed(name, 0.0)?;
        if value.is_finite() && value >= 0.0 {
            Ok((value > 0.0).then_some(value))
        } else {
            Err(ConfigError::Invalid {
                name,
                reason: format!("{value} is not a rate per second (0 or more; 0 or unset: unlimited)"),
            })
        }
    };
    let post_rate = match rate("APIGW_POST_RATE")? {
        Some(per_second) => {
            let burst: f64 = env.parsed("APIGW_POST_BURST", per_second)?;
            if !(burst >= 1.0 && burst.is_finite()) {
                return Err(ConfigError::Invalid {
                    name: "APIGW_POST_BURST",
                    reason: format!("{burst} is not a bucket size of at least 1"),
                });
            }
            Some(Rate { per_second, burst })
        }
        None => None,
    };
    Ok(RequestLimits {
        post_latency: latency_range(env.var("APIGW_POST_LATENCY_MS").as_deref())?,
        post_rate,
        connect_rate: rate("APIGW_CONNECT_RATE")?.map(|per_second| Rate { per_second, burst: per_second.max(1.0) }),
    })
}

/// `20` (always 20 ms) or `10-40` (uniform between); unset: none.
fn latency_range(value: Option<&str>) -> Result<(Duration, Duration), ConfigError> {
    let Some(value) = value else { return Ok((Duration::ZERO, Duration::ZERO)) };
    let invalid = || ConfigError::Invalid {
        name: "APIGW_POST_LATENCY_MS",
        reason: format!("{value:?} is not milliseconds (`20`) or a range (`10-40`)"),
    };
    let ms = |part: &str| part.trim().parse::<u64>().map(Duration::from_millis).map_err(|_| invalid());
    match value.split_once('-') {
        Some((low, high)) => {
            let (low, high) = (ms(low)?, ms(high)?);
            if low > high { Err(invalid()) } else { Ok((low, high)) }
        }
        None => ms(value).map(|fixed| (fixed, fixed)),
    }
}

/// `WEBHOOK_URL` (an http or https URL) with `WEBHOOK_SECRET`; unset: no webhook.
fn webhook(env: &Env) -> Result<Option<Webhook>, ConfigError> {
    let Some(url) = env.var("WEBHOOK_URL") else { return Ok(None) };
    match reqwest::Url::parse(&url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() => {
            Ok(Some(Webhook { url, secret: env.var("WEBHOOK_SECRET"), backoff: Duration::from_millis(500) }))
        }
        _ => Err(ConfigError::Invalid { name: "WEBHOOK_URL", reason: format!("{url:?} is not an http(s) URL") }),
    }
}

/// A wait of the server's, 1 to 30 s.
fn wait(env: &Env, name: &'static str) -> Result<Duration, ConfigError> {
    match env.parsed(name, MAX_WAIT.as_secs())? {
        secs @ 1..=30 => Ok(Duration::from_secs(secs)),
        secs => Err(ConfigError::Invalid { name, reason: format!("{secs} is not from 1 to 30 seconds") }),
    }
}

/// A share from 0 to 1.
fn share(env: &Env, name: &'static str, default: f64) -> Result<f64, ConfigError> {
    let value: f64 = env.parsed(name, default)?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::Invalid { name, reason: format!("{value} is not a number from 0 to 1") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_latency_is_a_number_or_a_range() {
        assert_eq!(latency_range(None).unwrap(), (Duration::ZERO, Duration::ZERO));
        assert_eq!(latency_range(Some("20")).unwrap(), (Duration::from_millis(20), Duration::from_millis(20)));
        assert_eq!(latency_range(Some("10-40")).unwrap(), (Duration::from_millis(10), Duration::from_millis(40)));
        for bad in ["40-10", "fast", "-5", "10-"] {
            let error = latency_range(Some(bad)).unwrap_err().to_string();
            assert!(error.contains("APIGW_POST_LATENCY_MS"), "{bad}: {error}");
        }
    }
}
