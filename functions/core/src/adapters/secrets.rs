//! The token secret: `SUBSCRIBE_SECRET` as it is, or the Secrets Manager secret that
//! `SUBSCRIBE_SECRET_ARN` names (aws-sdk-secretsmanager), read once at init.

use aws_sdk_secretsmanager::error::DisplayErrorContext;

use crate::config::{ConfigError, SecretSource};
use crate::domain::token::ReadAccess;

/// The token rule the environment asks for; a secret that cannot be read fails the init,
/// naming the variable.
pub async fn read_access(source: &SecretSource, sdk: &aws_config::SdkConfig) -> Result<ReadAccess, ConfigError> {
    read_access_with(source, async { sdk.clone() }).await
}

/// As [`read_access`], building the SDK settings only when Secrets Manager is asked
/// (`SUBSCRIBE_SECRET_ARN`), so the local stack never looks for AWS credentials otherwise.
pub async fn read_access_with(
    source: &SecretSource,
    sdk: impl std::future::Future<Output = aws_config::SdkConfig>,
) -> Result<ReadAccess, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid { name: "SUBSCRIBE_SECRET_ARN", reason };
    match source {
        SecretSource::Off => Ok(ReadAccess::new(None)),
        SecretSource::Value(secret) => Ok(ReadAccess::new(Some(secret.clone()))),
        SecretSource::SecretsManager(arn) => {
            let answer = aws_sdk_secretsmanager::Client::new(&sdk.await)
                .get_secret_value()
                .secret_id(arn)
                .send()
                .await
                .map_err(|e| invalid(format!("{arn}: {}", DisplayErrorContext(e))))?;
            let secret = match (answer.secret_string(), answer.secret_binary()) {
                (Some(text), _) => text.as_bytes().to_vec(),
                (None, Some(bytes)) => bytes.as_ref().to_vec(),
                (None, None) => Vec::new(),
            };
            if secret.len() < crate::config::MIN_SECRET_BYTES {
                let min = crate::config::MIN_SECRET_BYTES;
                return Err(invalid(format!("{arn} holds {} bytes; a secret needs at least {min}", secret.len())));
            }
            Ok(ReadAccess::new(Some(secret)))
        }
    }
}
