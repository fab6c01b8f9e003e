//! Configuration from environment variables, read once at init. Missing or invalid values fail
//! the cold start with a message naming the variable, instead of failing requests later.

use std::env;
use std::time::Duration;

use crate::domain::token::ReadAccess;
use crate::domain::{AllowedOrigins, DestinationTemplate, OriginPatternError};

/// Default status table: the seed's name, so its data stays readable.
pub const DEFAULT_STATUS_TABLE: &str = "MediaConvertJobIdToStatus";
/// Default `InputFile → JobId` table: the seed's name.
pub const DEFAULT_JOB_ID_TABLE: &str = "MediaConvertInputFileToJobId";
/// Default `userMetadata` marker create-job puts on its jobs.
pub const DEFAULT_JOB_MARKER: &str = "mediaconvert-push";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error(transparent)]
    Origins(#[from] OriginPatternError),
}

/// A variable's value, trimmed; unset and blank are the same.
pub fn var(name: &'static str) -> Option<String> {
    env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn required(name: &'static str) -> Result<String, ConfigError> {
    var(name).ok_or(ConfigError::Missing(name))
}

/// A variable parsed with `FromStr`, `default` when unset; the error names the variable.
pub fn parsed<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|e: T::Err| ConfigError::Invalid { name, reason: format!("{v:?}: {e}") }),
    }
}

/// `JOB_STATUS_TABLE`, `JOB_ID_TABLE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableNames {
    pub status: String,
    pub job_id: String,
}

impl Default for TableNames {
    fn default() -> Self {
        Self { status: DEFAULT_STATUS_TABLE.to_owned(), job_id: DEFAULT_JOB_ID_TABLE.to_owned() }
    }
}

impl TableNames {
    pub fn from_env() -> Self {
        let defaults = Self::default();
        Self {
            status: var("JOB_STATUS_TABLE").unwrap_or(defaults.status),
            job_id: var("JOB_ID_TABLE").unwrap_or(defaults.job_id),
        }
    }
}

/// Default of `STATUS_RETENTION_DAYS`.
pub const DEFAULT_STATUS_RETENTION_DAYS: u64 = 90;

/// `STATUS_RETENTION_DAYS` (default 90; `0` keeps status items forever): how long after its
/// creation a job's status item expires through the table's TTL.
pub fn status_retention_from_env() -> Result<Option<Duration>, ConfigError> {
    status_retention_from_env_or(Some(DEFAULT_STATUS_RETENTION_DAYS))
}

/// `STATUS_RETENTION_DAYS` with another default (`None`: forever), as the local stack has.
pub fn status_retention_from_env_or(default_days: Option<u64>) -> Result<Option<Duration>, ConfigError> {
    let days = match var("STATUS_RETENTION_DAYS") {
        Some(v) => v.parse::<u64>().map_err(|_| ConfigError::Invalid {
            name: "STATUS_RETENTION_DAYS",
            reason: format!("{v:?} is not a whole number of days"),
        })?,
        None => default_days.unwrap_or(0),
    };
    Ok((days > 0).then(|| Duration::from_secs(days * 86_400)))
}

/// `ALLOWED_ORIGINS`: required on Lambda, as in the seed (an empty list would refuse every
/// browser, which is never what a deployment wants).
pub fn allowed_origins_from_env() -> Result<AllowedOrigins, ConfigError> {
    Ok(AllowedOrigins::parse(&required("ALLOWED_ORIGINS")?)?)
}

/// `ALLOWED_ORIGINS`, or `default` (a pattern list) when unset.
pub fn allowed_origins_from_env_or(default: &AllowedOrigins) -> Result<AllowedOrigins, ConfigError> {
    match var("ALLOWED_ORIGINS") {
        Some(list) => Ok(AllowedOrigins::parse(&list)?),
        None => Ok(default.clone()),
    }
}

/// Default subscriptions table name.
pub const DEFAULT_SUBSCRIPTIONS_TABLE: &str = "MediaConvertPushSubscriptions";

/// `SUBSCRIPTIONS_TABLE` (default `MediaConvertPushSubscriptions`).
pub fn subscriptions_table_from_env() -> String {
    var("SUBSCRIPTIONS_TABLE").unwrap_or_else(|| DEFAULT_SUBSCRIPTIONS_TABLE.to_owned())
}

/// How the functions log: JSON on Lambda (or with `AWS_LAMBDA_LOG_FORMAT=JSON`), compact text
/// elsewhere; the filter is `RUST_LOG`, else `AWS_LAMBDA_LOG_LEVEL`, else `info`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    pub json: bool,
    pub filter: String,
}

impl LogConfig {
    pub fn from_env() -> Self {
        let on_lambda = var("AWS_LAMBDA_FUNCTION_NAME").is_some();
        let json_format = var("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));
        let filter = var("RUST_LOG")
            .or_else(|| var("AWS_LAMBDA_LOG_LEVEL").map(|l| l.to_lowercase()))
            .unwrap_or_else(|| "info".to_owned());
        Self { json: on_lambda || json_format, filter }
    }
}

/// create-job's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateJobConfig {
    /// `MEDIACONVERT_JOB_TEMPLATE` (required): name or ARN of the job template.
    pub job_template: String,
    /// `MEDIACONVERT_ROLE_ARN` (required): the role MediaConvert assumes.
    pub role_arn: String,
    /// `MEDIACONVERT_QUEUE_ARN` (optional): the template's or the account's default queue if unset.
    pub queue: Option<String>,
    /// `OUTPUT_DESTINATION` (required): `s3://` URL template with `{bucket}` and `{key}`
    /// placeholders, e.g. `s3://{bucket}/{key}_output/`.
    pub destination: DestinationTemplate,
    /// `SKIP_KEY_PREFIXES` (optional, space-separated): uploads under these prefixes start no job.
    pub skip_prefixes: Vec<String>,
    /// `JOB_MARKER` (default `mediaconvert-push`): set as `userMetadata.notifier` so the
    /// EventBridge rule can select this stack's jobs.
    pub marker: String,
}

impl CreateJobConfig {
    /// Lambda's: the template, the role and the destination are required.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_with(None)
    }

    /// With `defaults` for whatever is unset (the local stack's simulator settings).
    pub fn from_env_or(defaults: &CreateJobConfig) -> Result<Self, ConfigError> {
        Self::from_env_with(Some(defaults))
    }

    fn from_env_with(defaults: Option<&CreateJobConfig>) -> Result<Self, ConfigError> {
        let or_default = |name: &'static str, default: Option<&str>| match var(name) {
            Some(v) => Ok(v),
            None => default.map(str::to_owned).ok_or(ConfigError::Missing(name)),
        };
        let destination = match var("OUTPUT_DESTINATION") {
            Some(d) => DestinationTemplate::parse(&d)
                .map_err(|reason| ConfigError::Invalid { name: "OUTPUT_DESTINATION", reason })?,
            None => defaults.map(|d| d.destination.clone()).ok_or(ConfigError::Missing("OUTPUT_DESTINATION"))?,
        };
        Ok(Self {
            job_template: or_default("MEDIACONVERT_JOB_TEMPLATE", defaults.map(|d| d.job_template.as_str()))?,
            role_arn: or_default("MEDIACONVERT_ROLE_ARN", defaults.map(|d| d.role_arn.as_str()))?,
            queue: var("MEDIACONVERT_QUEUE_ARN").or_else(|| defaults.and_then(|d| d.queue.clone())),
            destination,
            skip_prefixes: var("SKIP_KEY_PREFIXES")
                .map(|v| v.split_whitespace().map(str::to_owned).collect())
                .or_else(|| defaults.map(|d| d.skip_prefixes.clone()))
                .unwrap_or_default(),
            marker: var("JOB_MARKER")
                .or_else(|| defaults.map(|d| d.marker.clone()))
                .unwrap_or_else(|| DEFAULT_JOB_MARKER.to_owned()),
        })
    }
}

/// `MANAGEMENT_API_ENDPOINT` (required by ws-message and progress-push): where
/// `POST /@connections/{id}` goes, e.g. `https://abc123.execute-api.eu-west-1.amazonaws.com/prod`.
pub fn management_endpoint_from_env() -> Result<String, ConfigError> {
    let endpoint = required("MANAGEMENT_API_ENDPOINT")?;
    if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
        return Err(ConfigError::Invalid {
            name: "MANAGEMENT_API_ENDPOINT",
            reason: format!("{endpoint:?} is not an http(s) URL"),
        });
    }
    Ok(endpoint.trim_end_matches('/').to_owned())
}

/// The WebSocket functions' settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsConfig {
    /// `MAX_SUBSCRIPTIONS_PER_CONNECTION` (default 10).
    pub max_subscriptions: usize,
    /// `CONNECTION_TTL_SECONDS` (default 7200, API Gateway's connection limit): subscriptions
    /// expire this long after their connection opened.
    pub connection_ttl_secs: u64,
    /// Whether `subscribe` needs a token (see `domain::token`): from `SUBSCRIBE_SECRET` or
    /// `SUBSCRIBE_SECRET_ARN`, resolved by the caller ([`token_secret_source`]).
    pub access: ReadAccess,
    /// How replies (`subscribed`, the snapshot, `pong`, errors) are retried on 429 / 5xx: as
    /// progress-push retries its posts (`PUSH_MAX_ATTEMPTS`, `PUSH_BACKOFF_MS`).
    pub retry: RetryPolicy,
    /// `UPLOAD_PREFIX` (default `uploads/`): a connection signed in as `sub` may subscribe to
    /// `UPLOAD_PREFIX{sub}/…` without a token.
    pub home_prefix: String,
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            max_subscriptions: 10,
            connection_ttl_secs: 7200,
            access: ReadAccess::default(),
            retry: RetryPolicy::default(),
            home_prefix: crate::domain::upload::UploadRules::default().prefix,
        }
    }
}

/// Retries of a post to a connection on 429 / 5xx: exponential backoff with full jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// `PUSH_MAX_ATTEMPTS` (default 4): tries per post, the first included.
    pub max_attempts: u32,
    /// `PUSH_BACKOFF_MS` (default 50): first retry delay; doubles per retry, capped at 2 s.
    pub backoff_base_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 4, backoff_base_ms: 50 }
    }
}

impl RetryPolicy {
    /// How long to wait before try `attempt + 1`: full jitter below `backoff_base_ms · 2^(attempt-1)`, at most 2 s.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self.backoff_base_ms.saturating_mul(1 << attempt.saturating_sub(1).min(16)).min(2_000);
        Duration::from_millis(fastrand::u64(0..=ceiling))
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        let d = Self::default();
        let policy = Self {
            max_attempts: parsed("PUSH_MAX_ATTEMPTS", d.max_attempts)?,
            backoff_base_ms: parsed("PUSH_BACKOFF_MS", d.backoff_base_ms)?,
        };
        if policy.max_attempts == 0 {
            return Err(ConfigError::Invalid { name: "PUSH_MAX_ATTEMPTS", reason: "must be at least 1".into() });
        }
        Ok(policy)
    }
}

impl WsConfig {
    /// The variables, with the token rule the caller resolved from [`token_secret_source`].
    pub fn from_env(access: ReadAccess) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        Ok(Self {
            max_subscriptions: parsed("MAX_SUBSCRIPTIONS_PER_CONNECTION", defaults.max_subscriptions)?,
            connection_ttl_secs: parsed("CONNECTION_TTL_SECONDS", defaults.connection_ttl_secs)?,
            access,
            retry: RetryPolicy::from_env()?,
            home_prefix: upload_prefix_from_env()?,
        })
    }
}

/// progress-push's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushConfig {
    /// `PUSH_CONCURRENCY` (default 64): posts in flight when a push starts; the window then
    /// adapts to what the API allows (`domain::congestion`).
    pub concurrency: usize,
    /// `PUSH_MAX_CONCURRENCY` (default 1000): the most posts in flight. Equal to
    /// `PUSH_CONCURRENCY`, the window is fixed (it still shrinks on 429).
    pub max_concurrency: usize,
    /// `PUSH_RATE_LIMIT` (posts/s; unset or 0: none): a cap for accounts whose API Gateway
    /// throttle other workloads share.
    pub rate_limit: Option<u32>,
    /// Retries per post on 429 / 5xx (`PUSH_MAX_ATTEMPTS`, `PUSH_BACKOFF_MS`); a post still
    /// failing after them has its records reported as batch item failures.
    pub retry: RetryPolicy,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self { concurrency: 64, max_concurrency: 1000, rate_limit: None, retry: RetryPolicy::default() }
    }
}

impl PushConfig {
    /// A fixed window of `concurrency` posts in flight, no rate cap.
    pub fn fixed(concurrency: usize, retry: RetryPolicy) -> Self {
        Self { concurrency, max_concurrency: concurrency, rate_limit: None, retry }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let concurrency = parsed("PUSH_CONCURRENCY", defaults.concurrency)?;
        let config = Self {
            concurrency,
            max_concurrency: parsed("PUSH_MAX_CONCURRENCY", defaults.max_concurrency.max(concurrency))?,
            rate_limit: Some(parsed("PUSH_RATE_LIMIT", 0u32)?).filter(|&rate| rate > 0),
            retry: RetryPolicy::from_env()?,
        };
        if config.concurrency == 0 {
            return Err(ConfigError::Invalid { name: "PUSH_CONCURRENCY", reason: "must be at least 1".into() });
        }
        if config.max_concurrency < config.concurrency {
            return Err(ConfigError::Invalid {
                name: "PUSH_MAX_CONCURRENCY",
                reason: format!("must be at least PUSH_CONCURRENCY ({concurrency})"),
            });
        }
        Ok(config)
    }
}

/// The reconciler's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconcileConfig {
    /// `RECONCILE_AFTER_SECONDS` (default 300): an unfinished job whose state has not changed (or
    /// been confirmed) for this long is checked with GetJob.
    pub after: Duration,
    /// `RECONCILE_MAX_JOBS` (default 100): at most this many jobs are checked per run, oldest
    /// first, so a run's work (and its GetJob calls) stays bounded.
    pub max_jobs: usize,
    /// `RECONCILE_CONCURRENCY` (default 4): GetJob calls in flight at once.
    pub concurrency: usize,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        Self { after: Duration::from_secs(300), max_jobs: 100, concurrency: 4 }
    }
}

impl ReconcileConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_or(&Self::default())
    }

    /// As [`ReconcileConfig::from_env`], with other defaults (the local stack's).
    pub fn from_env_or(defaults: &Self) -> Result<Self, ConfigError> {
        let config = Self {
            after: Duration::from_secs(parsed("RECONCILE_AFTER_SECONDS", defaults.after.as_secs())?),
            max_jobs: parsed("RECONCILE_MAX_JOBS", defaults.max_jobs)?,
            concurrency: parsed("RECONCILE_CONCURRENCY", defaults.concurrency)?,
        };
        for (name, value) in [("RECONCILE_MAX_JOBS", config.max_jobs), ("RECONCILE_CONCURRENCY", config.concurrency)] {
            if value == 0 {
                return Err(ConfigError::Invalid { name, reason: "must be at least 1".into() });
            }
        }
        Ok(config)
    }
}

/// Where the token secret comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// Neither variable: tokens are off.
    Off,
    /// `SUBSCRIBE_SECRET`: the secret itself (local stack, tests).
    Value(Vec<u8>),
    /// `SUBSCRIBE_SECRET_ARN`: a Secrets Manager secret, read once at init (AWS).
    SecretsManager(String),
}

/// `SUBSCRIBE_SECRET` or `SUBSCRIBE_SECRET_ARN` (not both).
pub fn token_secret_source() -> Result<SecretSource, ConfigError> {
    match (var("SUBSCRIBE_SECRET"), var("SUBSCRIBE_SECRET_ARN")) {
        (Some(_), Some(_)) => Err(ConfigError::Invalid {
            name: "SUBSCRIBE_SECRET_ARN",
            reason: "SUBSCRIBE_SECRET is set too; set one of them".into(),
        }),
        (Some(secret), None) => Ok(SecretSource::Value(secret.into_bytes())),
        (None, Some(arn)) => Ok(SecretSource::SecretsManager(arn)),
        (None, None) => Ok(SecretSource::Off),
    }
}

/// Optional sign-in: `OIDC_ISSUER` (the issuer URL, exactly as tokens' `iss` names it) and
/// `OIDC_AUDIENCE` (the `aud` / `client_id` tokens must carry), both or neither, as HTTP API's JWT
/// authorizers require an audience.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcConfig {
    pub issuer: String,
    pub audience: String,
}

/// `OIDC_ISSUER` and `OIDC_AUDIENCE`: `None` when neither is set; one without the other, or an
/// issuer that is not `https://` (plain `http://` only on loopback, for tests), is an error.
pub fn oidc_from_env() -> Result<Option<OidcConfig>, ConfigError> {
    match (var("OIDC_ISSUER"), var("OIDC_AUDIENCE")) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(ConfigError::Missing("OIDC_AUDIENCE")),
        (None, Some(_)) => Err(ConfigError::Missing("OIDC_ISSUER")),
        (Some(issuer), Some(audience)) => Ok(Some(OidcConfig::new(&issuer, &audience)?)),
    }
}

impl OidcConfig {
    pub fn new(issuer: &str, audience: &str) -> Result<Self, ConfigError> {
        let loopback =
            ["http://127.0.0.1:", "http://127.0.0.1/", "http://localhost:", "http://localhost/", "http://[::1]:"];
        if !(issuer.starts_with("https://") || loopback.iter().any(|p| issuer.starts_with(p))) {
            return Err(ConfigError::Invalid {
                name: "OIDC_ISSUER",
                reason: format!("{issuer:?} must be an https:// URL"),
            });
        }
        Ok(Self { issuer: issuer.to_owned(), audience: audience.to_owned() })
    }
}

/// `METRICS_NAMESPACE` (default `MediaConvertPush`): the CloudWatch namespace of every metric
/// (the template sets one per stack).
pub fn metrics_namespace_from_env() -> String {
    var("METRICS_NAMESPACE").unwrap_or_else(|| crate::metrics::DEFAULT_NAMESPACE.to_owned())
}

/// `TOKEN_TTL_SECONDS` (default 86400): how long a read token handed out with an upload (or by the
/// `token` subcommand) stays valid: long enough to watch a long job across reconnects.
pub fn token_ttl_from_env() -> Result<Duration, ConfigError> {
    Ok(Duration::from_secs(parsed("TOKEN_TTL_SECONDS", DEFAULT_TOKEN_TTL.as_secs())?))
}

/// `TOKEN_TTL_SECONDS`' default: a day.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(86_400);

/// `UPLOAD_PREFIX` (default `uploads/`): empty or a folder ending in `/`.
pub fn upload_prefix_from_env() -> Result<String, ConfigError> {
    let prefix = var("UPLOAD_PREFIX").unwrap_or(crate::domain::upload::UploadRules::default().prefix);
    if prefix.starts_with('/') || !(prefix.is_empty() || prefix.ends_with('/')) {
        return Err(ConfigError::Invalid {
            name: "UPLOAD_PREFIX",
            reason: format!("{prefix:?} must be empty or a folder ending in /"),
        });
    }
    Ok(prefix)
}

/// upload-api's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadConfig {
    /// `UPLOAD_BUCKET` (required on AWS): where browsers POST their files.
    pub bucket: String,
    /// `UPLOAD_PREFIX` (default `uploads/`), `MAX_UPLOAD_BYTES` (default 5 GiB),
    /// `ALLOWED_CONTENT_TYPES` (default `video/* audio/*`), `UPLOAD_GRANT_SECONDS` (default 900).
    pub rules: crate::domain::upload::UploadRules,
    /// `TOKEN_TTL_SECONDS` (default 86400).
    pub token_ttl: Duration,
}

impl UploadConfig {
    /// The defaults, for uploads to `bucket`.
    pub fn for_bucket(bucket: &str) -> Self {
        Self {
            bucket: bucket.to_owned(),
            rules: crate::domain::upload::UploadRules::default(),
            token_ttl: DEFAULT_TOKEN_TTL,
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::with_bucket(required("UPLOAD_BUCKET")?)
    }

    /// As [`UploadConfig::from_env`] with a default bucket (the local stack's).
    pub fn from_env_or(default_bucket: &str) -> Result<Self, ConfigError> {
        Self::with_bucket(var("UPLOAD_BUCKET").unwrap_or_else(|| default_bucket.to_owned()))
    }

    fn with_bucket(bucket: String) -> Result<Self, ConfigError> {
        let defaults = crate::domain::upload::UploadRules::default();
        let prefix = upload_prefix_from_env()?;
        let allowed_types: Vec<String> = match var("ALLOWED_CONTENT_TYPES") {
            Some(list) => list.split_whitespace().map(str::to_ascii_lowercase).collect(),
            None => defaults.allowed_types,
        };
        if let Some(bad) =
            allowed_types.iter().find(|t| t.split_once('/').is_none_or(|(a, b)| a.is_empty() || b.is_empty()))
        {
            return Err(ConfigError::Invalid {
                name: "ALLOWED_CONTENT_TYPES",
                reason: format!("{bad:?} is not type/subtype or type/*"),
            });
        }
        Ok(Self {
            bucket,
            rules: crate::domain::upload::UploadRules {
                prefix,
                max_bytes: parsed("MAX_UPLOAD_BYTES", defaults.max_bytes)?,
                allowed_types,
                grant_ttl: Duration::from_secs(parsed("UPLOAD_GRANT_SECONDS", defaults.grant_ttl.as_secs())?),
            },
            token_ttl: token_ttl_from_env()?,
        })
    }
}
