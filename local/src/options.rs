//! The local stack's settings: the functions' own variables, read by `mcpush_core::config` with
//! the local stack's defaults, and the local-only ones (`STREAM_*`, `LOCAL_S3_DIR`,
//! `UPLOAD_BUCKET`, `SIMULATOR_*`), read here and nowhere else.

use crate::apigw_ws::{ConnectionLimits, Rate, RequestLimits};
use std::path::PathBuf;
use std::time::Duration;

use mcpush_core::config::{
    self, ConfigError, CreateJobConfig, OidcConfig, PushConfig, ReconcileConfig, UploadConfig, WsConfig, parsed, var,
};
use mcpush_core::domain::{AllowedOrigins, DestinationTemplate};
use regex::Regex;

use crate::mediaconvert::SimSettings;

/// Origins the local stack allows by default: any local port.
pub const LOCAL_ALLOWED_ORIGINS: &str = r"http://127\.0\.0\.1(:\d+)? http://localhost(:\d+)?";
/// Bucket of the simulated uploads (`UPLOAD_BUCKET`).
pub const DEFAULT_UPLOAD_BUCKET: &str = "uploads";
/// Where the simulated MediaConvert writes each upload's outputs (`OUTPUT_DESTINATION`).
pub const DEFAULT_OUTPUT_DESTINATION: &str = "s3://outputs/{key}_hls/";
/// Folder of the simulated buckets (`LOCAL_S3_DIR`).
pub const DEFAULT_S3_DIR: &str = ".local/s3";

/// The local stack's settings, from the same environment variables as the Lambda functions.
#[derive(Clone, Debug)]
pub struct Options {
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
}

impl Default for Options {
    /// The local stack's defaults: any local origin, the functions' defaults, batches of up to
    /// 100 records that wait for nothing.
    fn default() -> Self {
        let simulator = SimSettings::default();
        Self {
            origins: AllowedOrigins::parse(LOCAL_ALLOWED_ORIGINS)
                .unwrap_or_else(|_| unreachable!("the built-in pattern compiles")),
            ws: WsConfig::default(),
            push: PushConfig::default(),
            batch_size: 100,
            batch_window: Duration::ZERO,
            create_job: CreateJobConfig {
                job_template: simulator.template.clone(),
                role_arn: "arn:aws:iam::000000000000:role/MediaConvertLocal".into(),
                queue: None,
                destination: DestinationTemplate::parse(DEFAULT_OUTPUT_DESTINATION)
                    .unwrap_or_else(|_| unreachable!("the built-in template parses")),
                skip_prefixes: Vec::new(),
                marker: config::DEFAULT_JOB_MARKER.into(),
            },
            simulator,
            s3_dir: DEFAULT_S3_DIR.into(),
            upload: UploadConfig::for_bucket(DEFAULT_UPLOAD_BUCKET),
            retention: None,
            ws_post_fault_rate: 0.0,
            apigw_limits: ConnectionLimits::default(),
            apigw_requests: RequestLimits::default(),
            reconcile: ReconcileConfig { after: Duration::from_secs(3), ..ReconcileConfig::default() },
            reconcile_every: Duration::from_millis(2000),
            oidc: None,
        }
    }
}

impl Options {
    /// The settings from the environment; the token secret from `SUBSCRIBE_SECRET`, or from
    /// Secrets Manager with `SUBSCRIBE_SECRET_ARN` (the SDK's own credentials and region).
    pub async fn from_env() -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let access = mcpush_core::adapters::secrets::read_access_with(crate::sdk_config_for(None)).await?;
        let create_job = CreateJobConfig::from_env_or(&defaults.create_job)?;
        let simulator =
            SimSettings { template: create_job.job_template.clone(), ..sim_settings_from_env(&defaults.simulator)? };
        Ok(Self {
            origins: config::allowed_origins_from_env_or(&defaults.origins)?,
            ws: WsConfig::from_env(access)?,
            push: PushConfig::from_env()?,
            batch_size: parsed("STREAM_BATCH_SIZE", defaults.batch_size)?,
            batch_window: Duration::from_millis(parsed(
                "STREAM_BATCH_WINDOW_MS",
                defaults.batch_window.as_millis() as u64,
            )?),
            create_job,
            simulator,
            s3_dir: var("LOCAL_S3_DIR").map(Into::into).unwrap_or(defaults.s3_dir),
            upload: UploadConfig::from_env_or(&defaults.upload.bucket)?,
            retention: config::status_retention_from_env_or(None)?,
            ws_post_fault_rate: share("WS_POST_FAULT_RATE", defaults.ws_post_fault_rate)?,
            apigw_limits: ConnectionLimits {
                idle: Duration::from_secs(parsed("APIGW_IDLE_TIMEOUT_S", defaults.apigw_limits.idle.as_secs())?.max(1)),
                max_age: Duration::from_secs(
                    parsed("APIGW_MAX_CONNECTION_S", defaults.apigw_limits.max_age.as_secs())?.max(1),
                ),
            },
            apigw_requests: request_limits_from_env()?,
            reconcile: ReconcileConfig::from_env_or(&defaults.reconcile)?,
            reconcile_every: Duration::from_millis(
                parsed("RECONCILE_INTERVAL_MS", defaults.reconcile_every.as_millis() as u64)?.max(1),
            ),
            oidc: config::oidc_from_env()?,
        })
    }
}

/// `SIMULATOR_STEP_MS`, `SIMULATOR_CHAOS`, `SIMULATOR_FAIL_PATTERN`, `SIMULATOR_SEED` and the
/// region (`AWS_REGION`, else `AWS_DEFAULT_REGION`).
fn sim_settings_from_env(defaults: &SimSettings) -> Result<SimSettings, ConfigError> {
    let invalid = |name: &'static str, reason: String| ConfigError::Invalid { name, reason };
    let fail_pattern = match var("SIMULATOR_FAIL_PATTERN") {
        Some(v) => {
            Regex::new(&v).map_err(|e| invalid("SIMULATOR_FAIL_PATTERN", format!("{v:?} is not a regex: {e}")))?
        }
        None => defaults.fail_pattern.clone(),
    };
    Ok(SimSettings {
        step: Duration::from_millis(parsed("SIMULATOR_STEP_MS", defaults.step.as_millis() as u64)?),
        chaos: share("SIMULATOR_CHAOS", defaults.chaos)?,
        drop: share("SIMULATOR_DROP", defaults.drop)?,
        fail_pattern,
        seed: var("SIMULATOR_SEED")
            .map(|v| v.parse().map_err(|_| invalid("SIMULATOR_SEED", format!("{v:?} is not a number"))))
            .transpose()?,
        template: defaults.template.clone(),
        region: var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")).unwrap_or_else(|| defaults.region.clone()),
        account: defaults.account.clone(),
    })
}

/// `APIGW_POST_LATENCY_MS`, `APIGW_POST_RATE`, `APIGW_POST_BURST`, `APIGW_CONNECT_RATE`.
fn request_limits_from_env() -> Result<RequestLimits, ConfigError> {
    let rate = |name: &'static str| -> Result<Option<f64>, ConfigError> {
        let value: f64 = parsed(name, 0.0)?;
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
            let burst: f64 = parsed("APIGW_POST_BURST", per_second)?;
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
        post_latency: latency_range(var("APIGW_POST_LATENCY_MS").as_deref())?,
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

/// A share from 0 to 1.
fn share(name: &'static str, default: f64) -> Result<f64, ConfigError> {
    let value: f64 = parsed(name, default)?;
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
