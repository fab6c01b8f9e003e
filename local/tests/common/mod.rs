//! Helpers shared by the local stack's integration tests.

#![allow(dead_code)]

pub mod oidc;
#[path = "../../../tests/src/protocol.rs"]
pub mod protocol;

/// One HTTP exchange (reqwest): status and body as text.
pub async fn http(method: &str, url: &str, body: Option<&str>) -> Result<(u16, String), reqwest::Error> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body.to_owned());
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}
