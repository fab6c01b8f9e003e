//! `token`: a read token for a file or a folder (`--prefix`), signed with the stack's secret
//! (`SUBSCRIBE_SECRET`, or the Secrets Manager secret `SUBSCRIBE_SECRET_ARN` names).

use mcpush_core::config::{ConfigError, Env};
use mcpush_core::domain::token::valid_scope;

/// Why no token was printed.
#[derive(Debug, thiserror::Error)]
pub enum TokenCommandError {
    #[error("--prefix {0:?} must end with / (it is a folder)")]
    PrefixNotAFolder(String),
    #[error("{0:?} ends with /: use --prefix for a folder")]
    FileIsAFolder(String),
    #[error("name a file or --prefix")]
    NoScope,
    #[error("{0:?} is not a file or folder a token can cover")]
    InvalidScope(String),
    #[error("no secret: set SUBSCRIBE_SECRET or SUBSCRIBE_SECRET_ARN")]
    NoSecret,
    #[error("--ttl-seconds {ttl} is not from 1 to MAX_TOKEN_TTL_SECONDS ({max})")]
    Lifetime { ttl: u64, max: u64 },
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// What a token covers: the folder when `prefix` is given, else the file.
pub fn scope(input_file: Option<String>, prefix: Option<String>) -> Result<String, TokenCommandError> {
    let scope = match (input_file, prefix) {
        (_, Some(prefix)) if !prefix.ends_with('/') => return Err(TokenCommandError::PrefixNotAFolder(prefix)),
        (_, Some(prefix)) => prefix,
        (Some(file), None) if file.ends_with('/') => return Err(TokenCommandError::FileIsAFolder(file)),
        (Some(file), None) => file,
        (None, None) => return Err(TokenCommandError::NoScope),
    };
    if valid_scope(&scope) { Ok(scope) } else { Err(TokenCommandError::InvalidScope(scope)) }
}

/// A token for `scope` valid for `ttl_seconds` (default `TOKEN_TTL_SECONDS`), and its expiry in
/// epoch seconds.
pub async fn issue(env: &Env, scope: &str, ttl_seconds: Option<u64>) -> Result<(String, u64), TokenCommandError> {
    let secret = env.token_secret()?;
    let access = mcpush_core::adapters::secrets::read_access_with(&secret, crate::sdk::sdk_config_for(None)).await?;
    let max = env.max_token_ttl()?.as_secs();
    let ttl = match ttl_seconds {
        Some(ttl) if (1..=max).contains(&ttl) => ttl,
        Some(ttl) => return Err(TokenCommandError::Lifetime { ttl, max }),
        None => env.token_ttl()?.as_secs(),
    };
    // Both are bounded (epoch seconds now, at most ten years more), so this cannot wrap.
    let expires = (mcpush_core::now_ms() / 1000).saturating_add(ttl);
    let token = access.issue(scope, expires).ok_or(TokenCommandError::NoSecret)?;
    Ok((token, expires))
}
