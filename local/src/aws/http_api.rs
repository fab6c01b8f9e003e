//! The HTTP API front: each HTTP request to `/media/job_id`, `/media/status`, `/media/uploads` or
//! `/media/tokens` becomes the HTTP API
//! payload v2 event API Gateway would send (typed, then serialized as Lambda receives it), and the
//! handler's response goes back as HTTP.

use std::collections::HashMap;
use std::net::SocketAddr;

use aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription, ApiGatewayV2httpRequest,
    ApiGatewayV2httpRequestContext, ApiGatewayV2httpResponse,
};
use aws_lambda_events::encodings::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use serde_json::{Value, json};

use mcpush_core::handlers::http::{Answer, origin, respond_to};
use mcpush_core::ports::IdentityVerifier;

use crate::aws::invoke::Function;
use crate::run::stack::Stack;

/// A query string's parameters, decoded as API Gateway decodes them (`+` is a space), in order.
pub fn query_params(raw_query: &str) -> HashMap<String, Vec<String>> {
    let mut params: HashMap<String, Vec<String>> = HashMap::new();
    for (key, value) in form_urlencoded::parse(raw_query.as_bytes()) {
        params.entry(key.into_owned()).or_default().push(value.into_owned());
    }
    params
}

/// An HTTP request as API Gateway's HTTP API (payload v2) hands it to a Lambda function.
pub fn http_api_event(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> ApiGatewayV2httpRequest {
    let now = mcpush_core::now_ms() as i64;
    let raw_query = uri.query().unwrap_or_default();
    let route_key = format!("{method} {}", uri.path());

    let mut context = ApiGatewayV2httpRequestContext::default();
    context.route_key = Some(route_key.clone());
    context.account_id = Some("000000000000".into());
    context.stage = Some("$default".into());
    context.request_id = Some(format!("local-{now}"));
    context.apiid = Some("local".into());
    context.domain_name = Some("127.0.0.1".into());
    context.domain_prefix = Some("local".into());
    context.time_epoch = now;
    context.http.method = method.clone();
    context.http.path = Some(uri.path().to_owned());
    context.http.protocol = Some("HTTP/1.1".into());
    context.http.source_ip = Some(peer.map(|p| p.ip().to_string()).unwrap_or_default());
    context.http.user_agent =
        Some(headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned());

    let mut event = ApiGatewayV2httpRequest::default();
    event.version = Some("2.0".into());
    event.route_key = Some(route_key);
    event.raw_path = Some(uri.path().to_owned());
    event.raw_query_string = Some(raw_query.to_owned());
    event.headers = headers.clone();
    // HTTP API joins a repeated parameter's values with commas.
    let joined: HashMap<String, String> = query_params(raw_query).into_iter().map(|(k, v)| (k, v.join(","))).collect();
    event.query_string_parameters = joined.into();
    event.request_context = context;
    event
}

/// `GET /local/endpoints`, `/media/job_id`, `/media/status` and `/media/uploads` (any method:
/// the handlers answer OPTIONS and refuse the rest as the seed did).
pub fn router(stack: Stack) -> Router {
    Router::new()
        .route("/local/endpoints", get(endpoints))
        .route("/media/job_id", any(rest))
        .route("/media/status", any(rest))
        .route("/media/uploads", any(rest))
        .route("/media/tokens", any(rest))
        .route("/media/uploads/parts", any(rest))
        .route("/media/uploads/complete", any(rest))
        .route("/media/uploads/abort", any(rest))
        .with_state(stack)
}

async fn endpoints() -> Json<Value> {
    Json(json!({
        "demo": "/",
        "uploads": "/media/uploads",
        "tokens": "/media/tokens",
        "upload": "/s3/{bucket}/{key}",
        "rest": ["/media/job_id?input_file=F", "/media/status?job_id=J", "/media/status?input_file=F"],
        "websocket": "/ws",
        "management": "/@connections/{connectionId}",
        "metrics": "/_local/metrics",
        "invoke": Function::ALL.iter().map(|f| f.invoke_path()).collect::<Vec<_>>(),
    }))
}

/// The REST routes: each request becomes the payload v2 event HTTP API sends (a body as text,
/// or base64 when it is not UTF-8), handed to the route's function.
async fn rest(
    State(stack): State<Stack>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    // The stack listens on loopback only, so every caller is local.
    let mut event = http_api_event(&method, &uri, &headers, Some(SocketAddr::from(([127, 0, 0, 1], 0))));
    if !body.is_empty() {
        match std::str::from_utf8(&body) {
            Ok(text) => event.body = Some(text.to_owned()),
            Err(_) => {
                event.body = Some(base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &body));
                event.is_base64_encoded = true;
            }
        }
    }
    if uri.path() == "/media/uploads"
        && method != Method::OPTIONS
        && let Some(verifier) = &stack.identity
    {
        match jwt_authorizer(verifier.as_ref(), &headers).await {
            Ok(authorizer) => event.request_context.authorizer = Some(authorizer),
            Err(answer) => return into_http(respond_to(answer, origin(&event), &stack.origins, &Method::POST)),
        }
    }
    let event = serde_json::to_value(event).unwrap_or_default();
    let response = match uri.path() {
        "/media/job_id" => stack.job_id_api(event).await,
        "/media/uploads" => stack.upload_api(event).await,
        "/media/tokens" => stack.token_api(event).await,
        "/media/uploads/parts" | "/media/uploads/complete" | "/media/uploads/abort" => stack.multipart_api(event).await,
        _ => stack.status_api(event).await,
    };
    into_http(response)
}

/// What HTTP API's JWT authorizer does before upload-api runs: the `Authorization` header's
/// token (with or without `Bearer `) verified against the issuer, its claims passed on in
/// `requestContext.authorizer.jwt.claims`; otherwise 401 `{"message":"Unauthorized"}` (the
/// reason goes to the log, as API Gateway's goes to its access log).
async fn jwt_authorizer(
    verifier: &dyn IdentityVerifier,
    headers: &HeaderMap,
) -> Result<ApiGatewayRequestAuthorizer, Answer> {
    let unauthorized = || Answer::raw(401, Some(json!({"message": "Unauthorized"}).to_string()));
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim());
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        tracing::info!("upload refused: no Authorization header");
        return Err(unauthorized());
    };
    match verifier.verify(token).await {
        Ok(verified) => {
            let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
            jwt.claims = verified.claims.into_iter().collect();
            jwt.scopes = None;
            let mut authorizer = ApiGatewayRequestAuthorizer::default();
            authorizer.jwt = Some(jwt);
            Ok(authorizer)
        }
        Err(e) if e.is_client_error() => {
            tracing::info!(reason = %e, "upload refused: access token invalid");
            Err(unauthorized())
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot check access tokens");
            Err(Answer::raw(500, Some(json!({"message": "Internal Server Error"}).to_string())))
        }
    }
}

fn into_http(response: ApiGatewayV2httpResponse) -> Response {
    let status = u16::try_from(response.status_code)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = HeaderMap::new();
    for (name, value) in &response.headers {
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name.as_str().as_bytes()), HeaderValue::from_bytes(value.as_bytes()))
        {
            out.insert(name, value);
        }
    }
    let body = match response.body {
        Some(Body::Text(text)) => text.into_bytes(),
        Some(Body::Binary(bytes)) => bytes,
        _ => Vec::new(),
    };
    let mut response = axum::body::Body::from(body).into_response();
    (*response.status_mut(), *response.headers_mut()) = (status, out);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_reads_back_as_api_gateway_sends_it() {
        let uri: Uri = "/media/status?input_file=Big+Buck%20Bunny.mp4&x=1&x=2".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("origin", HeaderValue::from_static("http://localhost:3000"));
        let event = serde_json::to_value(http_api_event(&Method::GET, &uri, &headers, None)).unwrap();
        assert_eq!(event["queryStringParameters"], json!({"input_file": "Big Buck Bunny.mp4", "x": "1,2"}));
        assert_eq!(event["requestContext"]["http"]["method"], "GET");
        assert_eq!(event["headers"]["origin"], "http://localhost:3000");
        let parsed: ApiGatewayV2httpRequest = serde_json::from_value(event).unwrap();
        assert_eq!(parsed.raw_path.as_deref(), Some("/media/status"));
    }
}
