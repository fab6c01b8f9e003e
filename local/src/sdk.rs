//! SDK settings for the local stack's DynamoDB mode and the terminal tools.

use aws_config::BehaviorVersion;

/// SDK settings for `endpoint` (`None`: the SDK's own): the environment's credentials and region,
/// or, for a loopback endpoint (the local stack, moto) whose environment has none, throwaway
/// credentials and `us-east-1`. The DynamoDB mode and the terminal tools all use this rule.
pub async fn sdk_config_for(endpoint: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    let Some(endpoint) = endpoint else { return loader.load().await };
    loader = loader.endpoint_url(endpoint);
    if is_loopback(endpoint) {
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() && std::env::var_os("AWS_PROFILE").is_none() {
            loader = loader.credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "local", "local", None, None, "local",
            ));
        }
        if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none() {
            loader = loader.region(aws_config::Region::new("us-east-1"));
        }
    }
    loader.load().await
}

/// Whether `endpoint` is on this machine (`localhost` or a loopback address).
pub fn is_loopback(endpoint: &str) -> bool {
    reqwest::Url::parse(endpoint).ok().and_then(|u| u.host_str().map(str::to_owned)).is_some_and(|h| {
        h == "localhost" || h.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    })
}

/// Timeouts for the terminal tools' SDK clients: `wait` for the connection and for each attempt,
/// so an endpoint that never answers ends the tool with an error instead of a hang.
pub fn timeouts(wait: std::time::Duration) -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder().connect_timeout(wait).operation_attempt_timeout(wait).build()
}
