//! Configuration from environment variables, read once at init. Missing or invalid values fail
//! the cold start with a message naming the variable, instead of failing requests later.

use std::env;

use crate::domain::{AllowedOrigins, OriginPatternError};

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

fn var(name: &'static str) -> Option<String> {
    env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn required(name: &'static str) -> Result<String, ConfigError> {
    var(name).ok_or(ConfigError::Missing(name))
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
pub fn status_retention_from_env() -> Result<Option<std::time::Duration>, ConfigError> {
    let days = match var("STATUS_RETENTION_DAYS") {
        Some(v) => v.parse::<u64>().map_err(|_| ConfigError::Invalid { name: "STATUS_RETENTION_DAYS", reason: format!("{v:?} is not a whole number of days") })?,
        None => DEFAULT_STATUS_RETENTION_DAYS,
    };
    Ok((days > 0).then(|| std::time::Duration::from_secs(days * 86_400)))
}

/// `ALLOWED_ORIGINS`: required on Lambda, as in the seed (an empty list would refuse every
/// browser, which is never what a deployment wants).
pub fn allowed_origins_from_env() -> Result<AllowedOrigins, ConfigError> {
    Ok(AllowedOrigins::parse(&required("ALLOWED_ORIGINS")?)?)
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
    pub fn from_env() -> Result<Self, ConfigError> {
        let destination = required("OUTPUT_DESTINATION")?;
        Ok(Self {
            job_template: required("MEDIACONVERT_JOB_TEMPLATE")?,
            role_arn: required("MEDIACONVERT_ROLE_ARN")?,
            queue: var("MEDIACONVERT_QUEUE_ARN"),
            destination: DestinationTemplate::parse(&destination)
                .map_err(|reason| ConfigError::Invalid { name: "OUTPUT_DESTINATION", reason })?,
            skip_prefixes: var("SKIP_KEY_PREFIXES")
                .map(|v| v.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default(),
            marker: var("JOB_MARKER").unwrap_or_else(|| DEFAULT_JOB_MARKER.to_owned()),
        })
    }
}

/// An output destination such as `s3://{bucket}/{key}_output/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestinationTemplate {
    template: String,
}

impl DestinationTemplate {
    pub fn parse(template: &str) -> Result<Self, String> {
        let Some(rest) = template.strip_prefix("s3://") else {
            return Err(format!("{template:?} must start with s3://"));
        };
        let (bucket, _) = rest.split_once('/').ok_or_else(|| format!("{template:?} has no path after the bucket"))?;
        if bucket.is_empty() {
            return Err(format!("{template:?} names no bucket"));
        }
        if !template.ends_with('/') {
            return Err(format!("{template:?} must end with / (it is a folder)"));
        }
        if bucket.contains("{key}") {
            return Err(format!("{template:?}: {{key}} cannot be part of the bucket name"));
        }
        Ok(Self { template: template.to_owned() })
    }

    /// The destination for one upload.
    pub fn render(&self, bucket: &str, key: &str) -> String {
        self.template.replace("{bucket}", bucket).replace("{key}", key)
    }

    /// Would an object `key` in `bucket` be an output of some job? (create-job must not transcode
    /// its own outputs.)
    pub fn is_output(&self, bucket: &str, key: &str) -> bool {
        let Some(rest) = self.template.strip_prefix("s3://") else { return false };
        let Some((dest_bucket, path)) = rest.split_once('/') else { return false };
        if dest_bucket.replace("{bucket}", bucket) != bucket {
            return false;
        }
        match path.split_once("{key}") {
            // outputs/{key}/ → anything under outputs/…/ ; {key}_output/ → …_output/…
            Some((before, after)) => {
                let after = after.replace("{bucket}", bucket);
                key.strip_prefix(before).is_some_and(|tail| {
                    tail.match_indices(after.as_str()).any(|(i, _)| i > 0)
                })
            }
            None => key.starts_with(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_renders_and_recognises_its_outputs() {
        let d = DestinationTemplate::parse("s3://{bucket}/{key}_output/").unwrap();
        assert_eq!(d.render("b", "Big Buck Bunny.mp4"), "s3://b/Big Buck Bunny.mp4_output/");
        assert!(d.is_output("b", "Big Buck Bunny.mp4_output/Big Buck Bunny.m3u8"));
        assert!(!d.is_output("b", "Big Buck Bunny.mp4"));
        assert!(!d.is_output("b", "_output/x.mp4"));

        let d = DestinationTemplate::parse("s3://out/hls/{key}/").unwrap();
        assert!(!d.is_output("in", "hls/a.mp4/a.m3u8"));
        assert!(d.is_output("out", "hls/a.mp4/a.m3u8"));

        let d = DestinationTemplate::parse("s3://{bucket}/outputs/").unwrap();
        assert!(d.is_output("b", "outputs/a.m3u8"));
        assert!(!d.is_output("b", "uploads/a.mp4"));
    }

    #[test]
    fn destination_must_be_an_s3_folder() {
        assert!(DestinationTemplate::parse("https://x/").is_err());
        assert!(DestinationTemplate::parse("s3://b/out").is_err());
        assert!(DestinationTemplate::parse("s3:///out/").is_err());
    }
}

fn parsed<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|e: T::Err| ConfigError::Invalid { name, reason: format!("{v:?}: {e}") }),
    }
}

/// `MANAGEMENT_API_ENDPOINT` (required by ws-message and progress-push): where
/// `POST /@connections/{id}` goes, e.g. `https://abc123.execute-api.eu-west-1.amazonaws.com/prod`.
pub fn management_endpoint_from_env() -> Result<String, ConfigError> {
    let endpoint = required("MANAGEMENT_API_ENDPOINT")?;
    if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
        return Err(ConfigError::Invalid { name: "MANAGEMENT_API_ENDPOINT", reason: format!("{endpoint:?} is not an http(s) URL") });
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
    /// `SUBSCRIBE_SECRET` (optional): when set, `subscribe` needs a token (see `domain::token`).
    pub subscribe_secret: Option<Vec<u8>>,
}

impl Default for WsConfig {
    fn default() -> Self {
        Self { max_subscriptions: 10, connection_ttl_secs: 7200, subscribe_secret: None }
    }
}

impl WsConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let defaults = Self::default();
        Ok(Self {
            max_subscriptions: parsed("MAX_SUBSCRIPTIONS_PER_CONNECTION", defaults.max_subscriptions)?,
            connection_ttl_secs: parsed("CONNECTION_TTL_SECONDS", defaults.connection_ttl_secs)?,
            subscribe_secret: var("SUBSCRIBE_SECRET").map(String::into_bytes),
        })
    }
}

/// progress-push's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushConfig {
    /// `PUSH_CONCURRENCY` (default 64): posts in flight at once.
    pub concurrency: usize,
    /// `PUSH_MAX_ATTEMPTS` (default 4): tries per post on 429 / 5xx before the record is reported
    /// as a batch item failure.
    pub max_attempts: u32,
    /// `PUSH_BACKOFF_MS` (default 50): first retry delay; doubles per retry, full jitter, capped at 2 s.
    pub backoff_base_ms: u64,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self { concurrency: 64, max_attempts: 4, backoff_base_ms: 50 }
    }
}

impl PushConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let d = Self::default();
        let config = Self {
            concurrency: parsed("PUSH_CONCURRENCY", d.concurrency)?,
            max_attempts: parsed("PUSH_MAX_ATTEMPTS", d.max_attempts)?,
            backoff_base_ms: parsed("PUSH_BACKOFF_MS", d.backoff_base_ms)?,
        };
        if config.concurrency == 0 || config.max_attempts == 0 {
            return Err(ConfigError::Invalid { name: "PUSH_CONCURRENCY / PUSH_MAX_ATTEMPTS", reason: "must be at least 1".into() });
        }
        Ok(config)
    }
}
