//! Configuration from environment variables, read once at init. Each function has one settings
//! struct (`…Settings::read`), read in one place by its main; the local stack reads the same
//! structs over its own defaults ([`Env::or`]). Missing or invalid values fail the cold start with
//! a message naming the variable, instead of failing requests later.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::domain::token::ReadAccess;
use crate::domain::upload::UploadRules;
use crate::domain::{AllowedOrigins, DestinationTemplate, OriginPatternError, OutputBaseUrl};

/// Default status table: the seed's name, so its data stays readable.
pub const DEFAULT_STATUS_TABLE: &str = "MediaConvertJobIdToStatus";
/// Default `InputFile → JobId` table: the seed's name.
pub const DEFAULT_JOB_ID_TABLE: &str = "MediaConvertInputFileToJobId";
/// Default subscriptions table name.
pub const DEFAULT_SUBSCRIPTIONS_TABLE: &str = "MediaConvertPushSubscriptions";
/// Default `userMetadata` marker create-job puts on its jobs.
pub const DEFAULT_JOB_MARKER: &str = "mediaconvert-push";
/// Default of `STATUS_RETENTION_DAYS`.
pub const DEFAULT_STATUS_RETENTION_DAYS: u64 = 90;
/// The longest `STATUS_RETENTION_DAYS`: a century (the template's `StatusRetentionDays` MaxValue).
pub const MAX_STATUS_RETENTION_DAYS: u64 = 36_500;
/// `TOKEN_TTL_SECONDS`' default: a day.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(86_400);
/// `MAX_TOKEN_TTL_SECONDS`' default: 7 days, as long as S3 lets a presigned request live.
pub const DEFAULT_MAX_TOKEN_TTL: Duration = Duration::from_secs(7 * 86_400);
/// The shortest token secret accepted, in bytes (the template generates 64 characters).
pub const MIN_SECRET_BYTES: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error(transparent)]
    Origins(#[from] OriginPatternError),
}

fn invalid(name: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { name, reason: reason.into() }
}

/// Where settings come from: values set on it, then the process environment (unless
/// [`Env::empty`]), then defaults layered below by [`Env::or`] (the local stack's).
#[derive(Clone, Debug, Default)]
pub struct Env {
    process: bool,
    values: BTreeMap<&'static str, String>,
    defaults: BTreeMap<&'static str, String>,
    seen: Option<std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<&'static str>>>>,
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Self { process: true, ..Self::default() }
    }

    /// Nothing but what is set on it (tests, the local stack's built-in defaults).
    pub fn empty() -> Self {
        Self::default()
    }

    /// `name` = `value`, whatever the environment says.
    pub fn set(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.values.insert(name, value.into());
        self
    }

    /// `value` when the environment does not set `name`.
    pub fn or(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.defaults.insert(name, value.into());
        self
    }

    /// Remembers the name of every variable asked for (see [`Env::seen`]).
    pub fn recording(mut self) -> Self {
        self.seen = Some(Default::default());
        self
    }

    /// The variables asked for since [`Env::recording`], whether set or not.
    pub fn seen(&self) -> Vec<&'static str> {
        let seen = self.seen.as_ref().map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).clone());
        seen.unwrap_or_default().into_iter().collect()
    }

    /// A variable's value, trimmed; unset and blank are the same.
    pub fn var(&self, name: &'static str) -> Option<String> {
        if let Some(seen) = &self.seen {
            seen.lock().unwrap_or_else(|e| e.into_inner()).insert(name);
        }
        let clean = |v: &str| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
        (self.values.get(name).and_then(|v| clean(v)))
            .or_else(|| self.process.then(|| std::env::var(name).ok().and_then(|v| clean(&v))).flatten())
            .or_else(|| self.defaults.get(name).and_then(|v| clean(v)))
    }

    fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.var(name).ok_or(ConfigError::Missing(name))
    }

    /// A variable parsed with `FromStr`, `default` when unset; the error names the variable.
    pub fn parsed<T: std::str::FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.var(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e: T::Err| invalid(name, format!("{v:?}: {e}"))),
        }
    }

    /// A whole number at least 1.
    fn positive(&self, name: &'static str, default: usize) -> Result<usize, ConfigError> {
        match self.parsed(name, default)? {
            0 => Err(invalid(name, "must be at least 1")),
            value => Ok(value),
        }
    }

    /// `ALLOWED_ORIGINS`: required on Lambda, as in the seed (an empty list would refuse every
    /// browser, which is never what a deployment wants).
    pub fn origins(&self) -> Result<AllowedOrigins, ConfigError> {
        Ok(AllowedOrigins::parse(&self.required("ALLOWED_ORIGINS")?)?)
    }

    /// `SUBSCRIPTIONS_TABLE` (default `MediaConvertPushSubscriptions`).
    pub fn subscriptions_table(&self) -> String {
        self.var("SUBSCRIPTIONS_TABLE").unwrap_or_else(|| DEFAULT_SUBSCRIPTIONS_TABLE.to_owned())
    }

    /// `STATUS_RETENTION_DAYS` (default 90; `0` keeps status items forever; at most
    /// [`MAX_STATUS_RETENTION_DAYS`]): how long after its creation a job's status item expires
    /// through the table's TTL.
    pub fn retention(&self) -> Result<Option<Duration>, ConfigError> {
        let days = match self.var("STATUS_RETENTION_DAYS") {
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| invalid("STATUS_RETENTION_DAYS", format!("{v:?} is not a whole number of days")))?,
            None => DEFAULT_STATUS_RETENTION_DAYS,
        };
        if days > MAX_STATUS_RETENTION_DAYS {
            let reason = format!("{days} days is more than {MAX_STATUS_RETENTION_DAYS} (0 keeps items forever)");
            return Err(invalid("STATUS_RETENTION_DAYS", reason));
        }
        Ok((days > 0).then(|| Duration::from_secs(days * 86_400)))
    }

    /// `MANAGEMENT_API_ENDPOINT` (required by ws-message and progress-push): where
    /// `POST /@connections/{id}` goes, e.g. `https://abc123.execute-api.eu-west-1.amazonaws.com/prod`.
    fn management_endpoint(&self) -> Result<String, ConfigError> {
        let endpoint = self.required("MANAGEMENT_API_ENDPOINT")?;
        if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
            return Err(invalid("MANAGEMENT_API_ENDPOINT", format!("{endpoint:?} is not an http(s) URL")));
        }
        Ok(endpoint.trim_end_matches('/').to_owned())
    }

    /// `UPLOAD_PREFIX` (default `uploads/`): empty or a folder ending in `/`.
    fn upload_prefix(&self) -> Result<String, ConfigError> {
        let prefix = self.var("UPLOAD_PREFIX").unwrap_or(UploadRules::default().prefix);
        if prefix.starts_with('/') || !(prefix.is_empty() || prefix.ends_with('/')) {
            return Err(invalid("UPLOAD_PREFIX", format!("{prefix:?} must be empty or a folder ending in /")));
        }
        Ok(prefix)
    }

    /// `MAX_TOKEN_TTL_SECONDS` (default 7 days): the longest any token, upload grant or
    /// `--ttl-seconds` may live, so no lifetime is unbounded and no expiry overflows.
    pub fn max_token_ttl(&self) -> Result<Duration, ConfigError> {
        let max = self.parsed("MAX_TOKEN_TTL_SECONDS", DEFAULT_MAX_TOKEN_TTL.as_secs())?;
        // Ten years: far beyond any use, far below where epoch seconds could overflow.
        if !(1..=10 * 365 * 86_400).contains(&max) {
            return Err(invalid("MAX_TOKEN_TTL_SECONDS", format!("{max} is not from 1 to 315360000 seconds")));
        }
        Ok(Duration::from_secs(max))
    }

    /// A lifetime in seconds from 1 to `MAX_TOKEN_TTL_SECONDS`.
    pub fn lifetime(&self, name: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        let max = self.max_token_ttl()?.as_secs();
        match self.parsed(name, default.as_secs())? {
            secs if (1..=max).contains(&secs) => Ok(Duration::from_secs(secs)),
            secs => Err(invalid(name, format!("{secs} is not from 1 to MAX_TOKEN_TTL_SECONDS ({max}) seconds"))),
        }
    }

    /// `TOKEN_TTL_SECONDS` (default 86400): how long a read token handed out with an upload (or
    /// by the `token` subcommand) stays valid: long enough to watch a long job across reconnects.
    pub fn token_ttl(&self) -> Result<Duration, ConfigError> {
        self.lifetime("TOKEN_TTL_SECONDS", DEFAULT_TOKEN_TTL)
    }

    /// `SUBSCRIBE_SECRET` or `SUBSCRIBE_SECRET_ARN` (not both).
    pub fn token_secret(&self) -> Result<SecretSource, ConfigError> {
        match (self.var("SUBSCRIBE_SECRET"), self.var("SUBSCRIBE_SECRET_ARN")) {
            (Some(_), Some(_)) => Err(invalid("SUBSCRIBE_SECRET_ARN", "SUBSCRIBE_SECRET is set too; set one of them")),
            (Some(secret), None) if secret.len() < MIN_SECRET_BYTES => Err(invalid(
                "SUBSCRIBE_SECRET",
                format!("is {} bytes; a secret needs at least {MIN_SECRET_BYTES}", secret.len()),
            )),
            (Some(secret), None) => Ok(SecretSource::Value(secret.into_bytes())),
            (None, Some(arn)) => Ok(SecretSource::SecretsManager(arn)),
            (None, None) => Ok(SecretSource::Off),
        }
    }

    /// `OIDC_ISSUER` and `OIDC_AUDIENCE`: `None` when neither is set; one without the other, or
    /// an issuer that is not `https://` (plain `http://` only on loopback, for tests), is an error.
    pub fn oidc(&self) -> Result<Option<OidcConfig>, ConfigError> {
        match (self.var("OIDC_ISSUER"), self.var("OIDC_AUDIENCE")) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(ConfigError::Missing("OIDC_AUDIENCE")),
            (None, Some(_)) => Err(ConfigError::Missing("OIDC_ISSUER")),
            (Some(issuer), Some(audience)) => Ok(Some(OidcConfig::new(&issuer, &audience)?)),
        }
    }

    /// `OUTPUT_BASE_URL` (optional): where the output bucket is served (a CloudFront
    /// distribution's URL), so statuses give their outputs' and thumbnails' URLs.
    pub fn output_base_url(&self) -> Result<Option<OutputBaseUrl>, ConfigError> {
        self.var("OUTPUT_BASE_URL")
            .map(|url| OutputBaseUrl::parse(&url).map_err(|r| invalid("OUTPUT_BASE_URL", r)))
            .transpose()
    }

    /// `METRICS_NAMESPACE` (default `MediaConvertPush`): the CloudWatch namespace of every metric
    /// (the template sets one per stack).
    pub fn metrics_namespace(&self) -> String {
        self.var("METRICS_NAMESPACE").unwrap_or_else(|| crate::metrics::DEFAULT_NAMESPACE.to_owned())
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
    pub fn read(env: &Env) -> Self {
        let defaults = Self::default();
        Self {
            status: env.var("JOB_STATUS_TABLE").unwrap_or(defaults.status),
            job_id: env.var("JOB_ID_TABLE").unwrap_or(defaults.job_id),
        }
    }
}

/// How the functions log: JSON on Lambda (or with `AWS_LAMBDA_LOG_FORMAT=JSON`), compact text
/// elsewhere; the filter is `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging controls win, as in
/// the Rust runtime), else `RUST_LOG`, else `info`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    pub json: bool,
    pub filter: String,
}

impl LogConfig {
    pub fn read(env: &Env) -> Self {
        let on_lambda = env.var("AWS_LAMBDA_FUNCTION_NAME").is_some();
        let json_format = env.var("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));
        let filter = (env.var("AWS_LAMBDA_LOG_LEVEL").map(|l| l.to_lowercase()))
            .or_else(|| env.var("RUST_LOG"))
            .unwrap_or_else(|| "info".to_owned());
        Self { json: on_lambda || json_format, filter }
    }
}

/// Where the token secret comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// Neither variable: tokens are off.
    Off,
    /// `SUBSCRIBE_SECRET`: the secret itself (local stack, tests).
    Value(Vec<u8>),
    /// `SUBSCRIBE_SECRET_ARN`: a Secrets Manager secret, read once at init (AWS).
    SecretsManager(String),
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Off => f.write_str("Off"),
            Self::Value(_) => f.write_str("Value([redacted])"),
            Self::SecretsManager(arn) => f.debug_tuple("SecretsManager").field(arn).finish(),
        }
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

impl OidcConfig {
    pub fn new(issuer: &str, audience: &str) -> Result<Self, ConfigError> {
        if !crate::domain::origin::secure_or_loopback(issuer) {
            let reason = format!("{issuer:?} must be an https:// URL (http:// only on loopback)");
            return Err(invalid("OIDC_ISSUER", reason));
        }
        Ok(Self { issuer: issuer.to_owned(), audience: audience.to_owned() })
    }
}

/// create-job's job settings.
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
    /// `STATUS_UPDATE_INTERVAL` (default `SECONDS_10`): how often MediaConvert sends a running
    /// job's STATUS_UPDATE event (MediaConvert's own default, 60 s, makes a bar that jumps).
    pub status_update_interval: StatusUpdateInterval,
}

/// MediaConvert's `StatusUpdateInterval`: one of its `SECONDS_n` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusUpdateInterval(u32);

impl StatusUpdateInterval {
    /// The seconds MediaConvert accepts, as `SECONDS_{n}`.
    pub const ALLOWED: [u32; 15] = [10, 12, 15, 20, 30, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600];
    /// What create-job asks for unless told otherwise.
    pub const DEFAULT: Self = Self(10);
    /// What MediaConvert uses when a job names none.
    pub const MEDIACONVERT_DEFAULT: Self = Self(60);

    /// `SECONDS_10` → 10 s; `None` for anything MediaConvert would refuse.
    pub fn parse(text: &str) -> Option<Self> {
        let seconds = text.strip_prefix("SECONDS_")?.parse().ok()?;
        Self::ALLOWED.contains(&seconds).then_some(Self(seconds))
    }

    pub fn seconds(self) -> u32 {
        self.0
    }

    /// MediaConvert's spelling, `SECONDS_{n}`.
    pub fn as_api(self) -> String {
        format!("SECONDS_{}", self.0)
    }
}

impl CreateJobConfig {
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        let destination = env.required("OUTPUT_DESTINATION")?;
        Ok(Self {
            job_template: env.required("MEDIACONVERT_JOB_TEMPLATE")?,
            role_arn: env.required("MEDIACONVERT_ROLE_ARN")?,
            queue: env.var("MEDIACONVERT_QUEUE_ARN").map(queue_arn).transpose()?,
            destination: DestinationTemplate::parse(&destination).map_err(|r| invalid("OUTPUT_DESTINATION", r))?,
            skip_prefixes: (env.var("SKIP_KEY_PREFIXES").unwrap_or_default())
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            marker: env.var("JOB_MARKER").unwrap_or_else(|| DEFAULT_JOB_MARKER.to_owned()),
            status_update_interval: match env.var("STATUS_UPDATE_INTERVAL") {
                None => StatusUpdateInterval::DEFAULT,
                Some(v) => StatusUpdateInterval::parse(&v).ok_or_else(|| {
                    let allowed = StatusUpdateInterval::ALLOWED.map(|s| format!("SECONDS_{s}")).join(", ");
                    invalid("STATUS_UPDATE_INTERVAL", format!("{v:?} is not one of MediaConvert's {allowed}"))
                })?,
            },
        })
    }
}

/// `MEDIACONVERT_QUEUE_ARN`: `arn:{partition}:mediaconvert:{region}:{account}:queues/{name}`,
/// checked at init so CreateJob never carries a queue it would refuse.
fn queue_arn(arn: String) -> Result<String, ConfigError> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let well_formed = arn.len() <= 2048
        && parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "mediaconvert"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5].strip_prefix("queues/").is_some_and(|name| {
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b))
        });
    if well_formed {
        Ok(arn)
    } else {
        Err(invalid(
            "MEDIACONVERT_QUEUE_ARN",
            format!("{arn:?} is not arn:aws:mediaconvert:REGION:ACCOUNT:queues/NAME"),
        ))
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

    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        let d = Self::default();
        Ok(Self {
            max_attempts: env.positive("PUSH_MAX_ATTEMPTS", d.max_attempts as usize)? as u32,
            backoff_base_ms: env.parsed("PUSH_BACKOFF_MS", d.backoff_base_ms)?,
        })
    }
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
    /// `SUBSCRIBE_SECRET_ARN`, resolved at init ([`WsConfig::with_access`]).
    pub access: ReadAccess,
    /// How replies (`subscribed`, the snapshot, `pong`, errors) are retried on 429 / 5xx: as
    /// progress-push retries its posts (`PUSH_MAX_ATTEMPTS`, `PUSH_BACKOFF_MS`).
    pub retry: RetryPolicy,
    /// `UPLOAD_PREFIX` (default `uploads/`): a connection signed in as `sub` may subscribe to
    /// `UPLOAD_PREFIX{sub}/…` without a token.
    pub home_prefix: String,
    /// `OUTPUT_BASE_URL`: the snapshot's outputs get their URLs.
    pub output_base_url: Option<OutputBaseUrl>,
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            max_subscriptions: 10,
            connection_ttl_secs: 7200,
            access: ReadAccess::default(),
            retry: RetryPolicy::default(),
            home_prefix: UploadRules::default().prefix,
            output_base_url: None,
        }
    }
}

impl WsConfig {
    /// The variables; tokens off until [`WsConfig::with_access`].
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        Ok(Self {
            max_subscriptions: env.parsed("MAX_SUBSCRIPTIONS_PER_CONNECTION", defaults.max_subscriptions)?,
            connection_ttl_secs: env.parsed("CONNECTION_TTL_SECONDS", defaults.connection_ttl_secs)?,
            access: defaults.access,
            retry: RetryPolicy::read(env)?,
            home_prefix: env.upload_prefix()?,
            output_base_url: env.output_base_url()?,
        })
    }

    /// The token rule resolved from [`SecretSource`].
    pub fn with_access(self, access: ReadAccess) -> Self {
        Self { access, ..self }
    }
}

/// progress-push's delivery settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushConfig {
    /// `PUSH_CONCURRENCY` (default 64): posts in flight when a push starts; the window then
    /// adapts to what the API allows (`domain::congestion`).
    pub concurrency: usize,
    /// `PUSH_MAX_CONCURRENCY` (default 1000): the most posts in flight. Equal to
    /// `PUSH_CONCURRENCY`, the window is fixed (it still shrinks on 429); below it, it caps the
    /// start too (the template passes both, so any allowed pair must start).
    pub max_concurrency: usize,
    /// `PUSH_RATE_LIMIT` (posts/s; unset or 0: none): a cap for accounts whose API Gateway
    /// throttle other workloads share.
    pub rate_limit: Option<u32>,
    /// Retries per post on 429 / 5xx (`PUSH_MAX_ATTEMPTS`, `PUSH_BACKOFF_MS`); a post still
    /// failing after them has its records reported as batch item failures.
    pub retry: RetryPolicy,
    /// `OUTPUT_BASE_URL`: pushed outputs get their URLs.
    pub output_base_url: Option<OutputBaseUrl>,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            concurrency: 64,
            max_concurrency: 1000,
            rate_limit: None,
            retry: RetryPolicy::default(),
            output_base_url: None,
        }
    }
}

impl PushConfig {
    /// A fixed window of `concurrency` posts in flight, no rate cap.
    pub fn fixed(concurrency: usize, retry: RetryPolicy) -> Self {
        Self { concurrency, max_concurrency: concurrency, rate_limit: None, retry, output_base_url: None }
    }

    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let concurrency = env.positive("PUSH_CONCURRENCY", defaults.concurrency)?;
        let max_concurrency = env.positive("PUSH_MAX_CONCURRENCY", defaults.max_concurrency.max(concurrency))?;
        Ok(Self {
            concurrency: concurrency.min(max_concurrency),
            max_concurrency,
            rate_limit: Some(env.parsed("PUSH_RATE_LIMIT", 0u32)?).filter(|&rate| rate > 0),
            retry: RetryPolicy::read(env)?,
            output_base_url: env.output_base_url()?,
        })
    }
}

/// The reconciler's run settings.
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
    /// `RECONCILE_MAX_FAILURES` (default 5): a job whose reconciliation fails this many runs in a
    /// row is parked (out of the index, `ReconcileParked` counted and alarmed), so one bad job
    /// never holds the others back.
    pub max_failures: u32,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        Self { after: Duration::from_secs(300), max_jobs: 100, concurrency: 4, max_failures: 5 }
    }
}

impl ReconcileConfig {
    /// How old a job's `ConfirmedAt` may get before a change moves it: a fifth of `after`, at
    /// most [`CONFIRMATION_REFRESH_MS`](crate::domain::CONFIRMATION_REFRESH_MS) (a minute).
    pub fn confirmation_refresh(&self) -> Duration {
        (self.after / 5).min(Duration::from_millis(crate::domain::CONFIRMATION_REFRESH_MS))
    }

    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        Ok(Self {
            after: Duration::from_secs(env.parsed("RECONCILE_AFTER_SECONDS", defaults.after.as_secs())?),
            max_jobs: env.positive("RECONCILE_MAX_JOBS", defaults.max_jobs)?,
            concurrency: env.positive("RECONCILE_CONCURRENCY", defaults.concurrency)?,
            max_failures: env.positive("RECONCILE_MAX_FAILURES", defaults.max_failures as usize)?.min(u32::MAX as usize)
                as u32,
        })
    }
}

/// upload-api's upload settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadConfig {
    /// `UPLOAD_BUCKET` (required on AWS): where browsers POST their files.
    pub bucket: String,
    /// `UPLOAD_PREFIX` (default `uploads/`), `MAX_UPLOAD_BYTES` (default 5 GiB),
    /// `ALLOWED_CONTENT_TYPES` (default `video/* audio/*`), `UPLOAD_GRANT_SECONDS` (default 900).
    pub rules: UploadRules,
    /// `TOKEN_TTL_SECONDS` (default 86400).
    pub token_ttl: Duration,
    /// `MAX_TOKEN_TTL_SECONDS` (default 7 days): also how long a renewed token's chain may
    /// outlive its first token (`POST /media/tokens`).
    pub max_token_ttl: Duration,
}

impl UploadConfig {
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        let defaults = UploadRules::default();
        let allowed_types: Vec<String> = match env.var("ALLOWED_CONTENT_TYPES") {
            Some(list) => list.split_whitespace().map(str::to_ascii_lowercase).collect(),
            None => defaults.allowed_types,
        };
        if let Some(bad) =
            allowed_types.iter().find(|t| t.split_once('/').is_none_or(|(a, b)| a.is_empty() || b.is_empty()))
        {
            return Err(invalid("ALLOWED_CONTENT_TYPES", format!("{bad:?} is not type/subtype or type/*")));
        }
        Ok(Self {
            bucket: env.required("UPLOAD_BUCKET")?,
            rules: UploadRules {
                prefix: env.upload_prefix()?,
                max_bytes: env.parsed("MAX_UPLOAD_BYTES", defaults.max_bytes)?,
                allowed_types,
                grant_ttl: env.lifetime("UPLOAD_GRANT_SECONDS", defaults.grant_ttl)?,
            },
            token_ttl: env.token_ttl()?,
            max_token_ttl: env.max_token_ttl()?,
        })
    }
}

/// status-api's and job-id-api's settings.
#[derive(Clone, Debug)]
pub struct RestSettings {
    pub tables: TableNames,
    pub origins: AllowedOrigins,
    pub tokens: SecretSource,
}

impl RestSettings {
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self { tables: TableNames::read(env), origins: env.origins()?, tokens: env.token_secret()? })
    }
}

/// status-api's settings: the REST ones, and `OUTPUT_BASE_URL`.
#[derive(Clone, Debug)]
pub struct StatusApiSettings {
    pub rest: RestSettings,
    pub output_base_url: Option<OutputBaseUrl>,
}

impl StatusApiSettings {
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self { rest: RestSettings::read(env)?, output_base_url: env.output_base_url()? })
    }
}

/// progress-ingest's settings.
#[derive(Clone, Debug)]
pub struct IngestSettings {
    pub tables: TableNames,
    pub retention: Option<Duration>,
    /// From `RECONCILE_AFTER_SECONDS`: [`ReconcileConfig::confirmation_refresh`].
    pub confirmation_refresh: Duration,
}

impl IngestSettings {
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            tables: TableNames::read(env),
            retention: env.retention()?,
            confirmation_refresh: ReconcileConfig::read(env)?.confirmation_refresh(),
        })
    }
}

/// create-job's settings.
#[derive(Clone, Debug)]
pub struct CreateJobSettings {
    pub tables: TableNames,
    pub retention: Option<Duration>,
    /// From `RECONCILE_AFTER_SECONDS`: [`ReconcileConfig::confirmation_refresh`].
    pub confirmation_refresh: Duration,
    pub job: CreateJobConfig,
}

impl CreateJobSettings {
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            tables: TableNames::read(env),
            retention: env.retention()?,
            confirmation_refresh: ReconcileConfig::read(env)?.confirmation_refresh(),
            job: CreateJobConfig::read(env)?,
        })
    }
}

/// progress-push's settings.
#[derive(Clone, Debug)]
pub struct PushSettings {
    pub tables: TableNames,
    pub subscriptions_table: String,
    pub endpoint: String,
    pub push: PushConfig,
}

impl PushSettings {
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            tables: TableNames::read(env),
            subscriptions_table: env.subscriptions_table(),
            endpoint: env.management_endpoint()?,
            push: PushConfig::read(env)?,
        })
    }
}

/// What event-publisher puts on the bus, and how it retries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventsConfig {
    /// `EVENT_SOURCE` (default `mcpush`): the events' `source`.
    pub source: String,
    /// `OUTPUT_BASE_URL`: the events' outputs get their URLs, as pushed statuses do.
    pub output_base_url: Option<OutputBaseUrl>,
    /// `EVENTS_MAX_ATTEMPTS` (default 4) and `EVENTS_BACKOFF_MS` (default 100): tries per entry
    /// within one invocation, on a failed call or an entry the bus refused.
    pub retry: RetryPolicy,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            source: crate::domain::job_event::DEFAULT_SOURCE.to_owned(),
            output_base_url: None,
            retry: RetryPolicy { max_attempts: 4, backoff_base_ms: 100 },
        }
    }
}

impl EventsConfig {
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        let d = Self::default();
        let source = env.var("EVENT_SOURCE").unwrap_or(d.source);
        // EventBridge: 1-256 characters; "aws." is reserved for AWS services.
        if source.len() > 256 || source.starts_with("aws.") {
            return Err(invalid("EVENT_SOURCE", format!("{source:?}: 1-256 characters, not starting with \"aws.\"")));
        }
        Ok(Self {
            source,
            output_base_url: env.output_base_url()?,
            retry: RetryPolicy {
                max_attempts: env.positive("EVENTS_MAX_ATTEMPTS", d.retry.max_attempts as usize)? as u32,
                backoff_base_ms: env.parsed("EVENTS_BACKOFF_MS", d.retry.backoff_base_ms)?,
            },
        })
    }
}

/// event-publisher's settings: `EVENT_BUS_NAME` (required: the template only deploys the
/// function when events are on) and [`EventsConfig`].
#[derive(Clone, Debug)]
pub struct EventsSettings {
    pub bus: String,
    pub events: EventsConfig,
}

impl EventsSettings {
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self { bus: env.required("EVENT_BUS_NAME")?, events: EventsConfig::read(env)? })
    }
}

/// ws-connect's settings.
#[derive(Clone, Debug)]
pub struct WsConnectSettings {
    pub origins: AllowedOrigins,
    pub subscriptions_table: String,
    pub ws: WsConfig,
}

impl WsConnectSettings {
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self { origins: env.origins()?, subscriptions_table: env.subscriptions_table(), ws: WsConfig::read(env)? })
    }
}

/// ws-disconnect's settings.
#[derive(Clone, Debug)]
pub struct WsDisconnectSettings {
    pub subscriptions_table: String,
}

impl WsDisconnectSettings {
    pub fn read(env: &Env) -> Self {
        Self { subscriptions_table: env.subscriptions_table() }
    }
}

/// ws-message's settings.
#[derive(Clone, Debug)]
pub struct WsMessageSettings {
    pub tables: TableNames,
    pub subscriptions_table: String,
    pub endpoint: String,
    pub ws: WsConfig,
    pub tokens: SecretSource,
}

impl WsMessageSettings {
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            tables: TableNames::read(env),
            subscriptions_table: env.subscriptions_table(),
            endpoint: env.management_endpoint()?,
            ws: WsConfig::read(env)?,
            tokens: env.token_secret()?,
        })
    }
}

/// reconcile's settings.
#[derive(Clone, Debug)]
pub struct ReconcileSettings {
    pub tables: TableNames,
    pub retention: Option<Duration>,
    pub reconcile: ReconcileConfig,
}

impl ReconcileSettings {
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self { tables: TableNames::read(env), retention: env.retention()?, reconcile: ReconcileConfig::read(env)? })
    }
}

/// upload-api's settings.
#[derive(Clone, Debug)]
pub struct UploadSettings {
    pub origins: AllowedOrigins,
    pub upload: UploadConfig,
    pub tokens: SecretSource,
    /// Sign-in (`OIDC_ISSUER`, `OIDC_AUDIENCE`): on `/media/uploads` HTTP API's JWT authorizer
    /// checked the token before the function runs; on `/media/tokens` the function checks it.
    pub oidc: Option<OidcConfig>,
    /// The tables `/media/tokens` reads a file's job from.
    pub tables: TableNames,
}

impl UploadSettings {
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            origins: env.origins()?,
            upload: UploadConfig::read(env)?,
            tokens: env.token_secret()?,
            oidc: env.oidc()?,
            tables: TableNames::read(env),
        })
    }

    /// Sign-in required.
    pub fn sign_in(&self) -> bool {
        self.oidc.is_some()
    }
}

/// ws-authorizer's settings: `OIDC_ISSUER` and `OIDC_AUDIENCE`, required.
#[derive(Clone, Debug)]
pub struct AuthorizerSettings {
    pub oidc: OidcConfig,
}

impl AuthorizerSettings {
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self { oidc: env.oidc()?.ok_or(ConfigError::Missing("OIDC_ISSUER"))? })
    }
}

/// Reads one function's settings, keeping only whether they are valid.
pub type ReadSettings = fn(&Env) -> Result<(), ConfigError>;

/// Every function's binary name with what its init reads: its `…Settings::read`, logging and the
/// metrics namespace. The deploy rehearsal lists the variables each one reads through it.
pub const FUNCTION_SETTINGS: [(&str, ReadSettings); 12] = [
    ("create-job", |env| CreateJobSettings::read(env).map(drop)),
    ("progress-ingest", |env| IngestSettings::read(env).map(drop)),
    ("job-id-api", |env| RestSettings::read(env).map(drop)),
    ("status-api", |env| StatusApiSettings::read(env).map(drop)),
    ("upload-api", |env| UploadSettings::read(env).map(drop)),
    ("ws-authorizer", |env| AuthorizerSettings::read(env).map(drop)),
    ("ws-connect", |env| WsConnectSettings::read(env).map(drop)),
    ("ws-disconnect", |env| {
        WsDisconnectSettings::read(env);
        Ok(())
    }),
    ("ws-message", |env| WsMessageSettings::read(env).map(drop)),
    ("progress-push", |env| PushSettings::read(env).map(drop)),
    ("reconcile", |env| ReconcileSettings::read(env).map(drop)),
    ("event-publisher", |env| EventsSettings::read(env).map(drop)),
];

/// Reads `function`'s settings (and what telemetry reads) from `env`; `None` for an unknown name.
pub fn read_function_settings(function: &str, env: &Env) -> Option<Result<(), ConfigError>> {
    let (_, read) = FUNCTION_SETTINGS.iter().find(|(name, _)| *name == function)?;
    LogConfig::read(env);
    env.metrics_namespace();
    Some(read(env))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_set_win_over_defaults_and_blank_is_unset() {
        let env = Env::empty().or("JOB_MARKER", "local").set("JOB_ID_TABLE", " ").set("JOB_STATUS_TABLE", " S ");
        assert_eq!(env.var("JOB_MARKER").as_deref(), Some("local"));
        assert_eq!(TableNames::read(&env), TableNames { status: "S".into(), job_id: DEFAULT_JOB_ID_TABLE.into() });
        assert_eq!(env.clone().set("JOB_MARKER", "x").var("JOB_MARKER").as_deref(), Some("x"));
    }

    #[test]
    fn every_refusal_names_its_variable() {
        let cases = [
            ("PUSH_CONCURRENCY", "0"),
            ("PUSH_MAX_ATTEMPTS", "0"),
            ("RECONCILE_MAX_JOBS", "0"),
            ("STATUS_RETENTION_DAYS", "soon"),
            ("UPLOAD_PREFIX", "/abs/"),
            ("MANAGEMENT_API_ENDPOINT", "ftp://x"),
        ];
        let base = Env::empty().set("MANAGEMENT_API_ENDPOINT", "https://api/prod");
        for (name, value) in cases {
            let env = base.clone().set(name, value);
            let errors = [
                PushSettings::read(&env).err().map(|e| e.to_string()),
                ReconcileSettings::read(&env).err().map(|e| e.to_string()),
                WsConfig::read(&env).err().map(|e| e.to_string()),
            ];
            assert!(errors.iter().flatten().any(|e| e.contains(name)), "{name}={value}: {errors:?}");
        }
        let low = base.clone().set("PUSH_CONCURRENCY", "8").set("PUSH_MAX_CONCURRENCY", "4");
        let low = PushConfig::read(&low).unwrap();
        assert_eq!((low.concurrency, low.max_concurrency), (4, 4), "the cap caps the start too");
        let zero = base.clone().set("PUSH_MAX_CONCURRENCY", "0");
        assert!(PushConfig::read(&zero).unwrap_err().to_string().contains("PUSH_MAX_CONCURRENCY"));
        for (name, value) in [("OUTPUT_BASE_URL", "http://cdn.example.com"), ("STATUS_RETENTION_DAYS", "36501")] {
            let error = PushConfig::read(&base.clone().set(name, value)).err().map(|e| e.to_string());
            let retention = base.clone().set(name, value).retention().err().map(|e| e.to_string());
            assert!(error.or(retention).is_some_and(|e| e.contains(name)), "{name}={value}");
        }
    }

    #[test]
    fn the_status_update_interval_is_one_of_mediaconverts() {
        let job = |value: Option<&str>| {
            let env = Env::empty()
                .set("MEDIACONVERT_JOB_TEMPLATE", "t")
                .set("MEDIACONVERT_ROLE_ARN", "arn:aws:iam::111122223333:role/r")
                .set("OUTPUT_DESTINATION", "s3://{bucket}/{key}/");
            CreateJobConfig::read(&value.map_or(env.clone(), |v| env.set("STATUS_UPDATE_INTERVAL", v)))
        };
        assert_eq!(job(None).unwrap().status_update_interval.as_api(), "SECONDS_10");
        assert_eq!(job(Some("SECONDS_600")).unwrap().status_update_interval.seconds(), 600);
        for wrong in ["SECONDS_11", "10", "seconds_10", "SECONDS_"] {
            let error = job(Some(wrong)).unwrap_err().to_string();
            assert!(error.contains("STATUS_UPDATE_INTERVAL") && error.contains("SECONDS_12"), "{wrong}: {error}");
        }
    }

    #[test]
    fn the_lambda_log_level_wins_over_rust_log() {
        let env = Env::empty().set("RUST_LOG", "debug").set("AWS_LAMBDA_LOG_LEVEL", "WARN");
        assert_eq!(LogConfig::read(&env).filter, "warn");
        assert_eq!(LogConfig::read(&Env::empty().set("RUST_LOG", "debug")).filter, "debug");
    }

    #[test]
    fn lifetimes_are_bounded_and_secrets_long_enough() {
        let huge = "18446744073709551615";
        for name in ["TOKEN_TTL_SECONDS", "UPLOAD_GRANT_SECONDS"] {
            for value in [huge, "604801", "0"] {
                let env = Env::empty().set("UPLOAD_BUCKET", "b").set(name, value);
                let error = UploadConfig::read(&env).unwrap_err().to_string();
                assert!(error.contains(name) && error.contains("MAX_TOKEN_TTL_SECONDS"), "{name}={value}: {error}");
            }
        }
        let longer = Env::empty().set("MAX_TOKEN_TTL_SECONDS", "1209600").set("TOKEN_TTL_SECONDS", "1209600");
        assert_eq!(longer.token_ttl().unwrap(), Duration::from_secs(1_209_600));
        assert!(Env::empty().set("MAX_TOKEN_TTL_SECONDS", huge).token_ttl().is_err());
        let short = Env::empty().set("SUBSCRIBE_SECRET", "fifteen-bytes!!").token_secret().unwrap_err().to_string();
        assert!(short.contains("SUBSCRIBE_SECRET") && short.contains("at least 16"), "{short}");
        assert!(Env::empty().set("SUBSCRIBE_SECRET", "sixteen-bytes!!!").token_secret().is_ok());
    }

    #[test]
    fn a_queue_arn_is_mediaconverts() {
        let env = |arn: &str| {
            Env::empty()
                .set("OUTPUT_DESTINATION", "s3://o/{key}/")
                .set("MEDIACONVERT_JOB_TEMPLATE", "t")
                .set("MEDIACONVERT_ROLE_ARN", "arn:aws:iam::123456789012:role/r")
                .set("MEDIACONVERT_QUEUE_ARN", arn)
        };
        let good = "arn:aws:mediaconvert:eu-west-1:123456789012:queues/Default";
        assert_eq!(CreateJobConfig::read(&env(good)).unwrap().queue.as_deref(), Some(good));
        for bad in
            ["Default", "arn:aws:mediaconvert:eu-west-1:123456789012:queues/", &format!("{good}{}", "x".repeat(3000))]
        {
            let error = CreateJobConfig::read(&env(bad)).unwrap_err().to_string();
            assert!(error.contains("MEDIACONVERT_QUEUE_ARN"), "{bad}: {error}");
        }
    }

    #[test]
    fn plain_http_issuers_must_really_be_loopback() {
        for good in [
            "https://id.example.com/",
            "https://id.example.com:8443/realms/x",
            "http://127.0.0.1:9000/",
            "http://localhost/",
            "http://[::1]:8080",
        ] {
            assert!(OidcConfig::new(good, "web").is_ok(), "{good}");
        }
        for bad in [
            "http://127.0.0.1:@example.invalid",
            "http://127.0.0.1:@example.invalid/",
            "http://localhost@evil.example/",
            "https://user:pw@id.example.com/",
            "http://127.0.0.1.evil.example/",
            "http://localhost:notaport/",
            "http://evil.example/",
            "ftp://127.0.0.1/",
            "127.0.0.1",
            "http://",
        ] {
            let error = OidcConfig::new(bad, "web").unwrap_err().to_string();
            assert!(error.contains("OIDC_ISSUER"), "{bad}: {error}");
        }
    }

    #[test]
    fn a_secret_never_shows_in_debug() {
        let source = Env::empty().set("SUBSCRIBE_SECRET", "hunter2-hunter2-hunter2").token_secret().unwrap();
        assert!(!format!("{source:?}").contains("hunter2"));
    }
}
