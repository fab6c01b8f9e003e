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

/// A JSON POST (with `Authorization: Bearer …` when `bearer` is given): status and JSON body.
pub async fn post_json(url: &str, body: &serde_json::Value, bearer: Option<&str>) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("origin", "http://localhost:3000")
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(bearer) = bearer {
        request = request.header("authorization", format!("Bearer {bearer}"));
    }
    let response = request.send().await.expect("the stack answers");
    let status = response.status().as_u16();
    (status, serde_json::from_str(&response.text().await.expect("a body")).expect("a JSON body"))
}
