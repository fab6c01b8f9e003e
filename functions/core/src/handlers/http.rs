//! The REST fallback's shared plumbing (HTTP API, payload v2), byte-compatible with the seed:
//! method and origin checks, query parameters, CORS headers and `json.dumps`-style bodies.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, HeaderValue, Method};
use serde::Serialize;

use crate::domain::token::{ReadAccess, TokenError};
use crate::domain::{AllowedOrigins, OutputBaseUrl};
use crate::ports::JobStore;
use crate::pyjson;

/// What the REST routes read with: the job store, the allowed origins, the token rule and
/// where outputs are served.
pub struct RestContext<'a> {
    pub(crate) jobs: &'a dyn JobStore,
    pub(crate) origins: &'a AllowedOrigins,
    pub(crate) access: &'a ReadAccess,
    pub(crate) output_base_url: Option<&'a OutputBaseUrl>,
}

impl<'a> RestContext<'a> {
    pub fn new(jobs: &'a dyn JobStore, origins: &'a AllowedOrigins, access: &'a ReadAccess) -> Self {
        RestContext { jobs, origins, access, output_base_url: None }
    }

    /// Statuses give their outputs' URLs under `base` (`OUTPUT_BASE_URL`).
    pub fn with_output_base_url(self, base: Option<&'a OutputBaseUrl>) -> Self {
        Self { output_base_url: base, ..self }
    }

    /// Without tokens, as the seed.
    pub fn open(jobs: &'a dyn JobStore, origins: &'a AllowedOrigins) -> Self {
        Self::new(jobs, origins, &crate::domain::token::OPEN)
    }
}

/// A refused token: 403 naming the reason.
pub fn forbidden(e: &TokenError) -> Answer {
    Answer::error(403, &e.to_string())
}

/// A request that passed the shared checks, as the routes see it.
pub struct ApiRequest {
    pub request: ApiGatewayV2httpRequest,
}

/// An answer: status code, an optional JSON body and, for a job's state, its entity tag.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Option<String>,
    /// `ETag` (quoted): sent with `Cache-Control: no-cache` and exposed to browsers.
    pub etag: Option<String>,
}

#[derive(Serialize)]
struct Failure<'a> {
    success: bool,
    message: &'a str,
}

impl Answer {
    pub fn ok<T: Serialize>(body: &T) -> Self {
        Self { status: 200, body: Some(pyjson::to_string(body)), etag: None }
    }

    pub fn error(status: u16, message: &str) -> Self {
        Self { status, body: Some(pyjson::to_string(&Failure { success: false, message })), etag: None }
    }

    /// Any status and body, without a tag.
    pub fn raw(status: u16, body: Option<String>) -> Self {
        Self { status, body, etag: None }
    }

    /// This answer, tagged.
    pub fn tagged(self, etag: String) -> Self {
        Self { etag: Some(etag), ..self }
    }

    /// `304 Not Modified`: no body, the tag the client already has.
    pub fn not_modified(etag: String) -> Self {
        Self { status: 304, body: None, etag: Some(etag) }
    }
}

/// Parses the raw event. A `null` query parameter (the seed's test event) becomes an empty value
/// so it gets the seed's 422; anything that still does not parse is a 400 naming the problem.
pub fn parse(mut raw: serde_json::Value) -> Result<ApiGatewayV2httpRequest, Answer> {
    if let Some(params) = raw.get_mut("queryStringParameters").and_then(|q| q.as_object_mut()) {
        for value in params.values_mut().filter(|v| v.is_null()) {
            *value = serde_json::Value::String(String::new());
        }
    }
    serde_path_to_error::deserialize(&raw).map_err(|e| Answer::error(400, &format!("Malformed request event: {e}.")))
}

/// The checks every route shares, in the seed's order: OPTIONS, method (`allowed`), origin.
/// `Err` is the response to send at once.
pub fn check(
    request: ApiGatewayV2httpRequest,
    origins: &AllowedOrigins,
    allowed: &Method,
) -> Result<ApiRequest, Answer> {
    let method = &request.request_context.http.method;
    if method == Method::OPTIONS {
        return Err(Answer::raw(200, None));
    }
    if method != allowed {
        return Err(Answer::error(404, "No route matches."));
    }
    if !origins.allows_all(crate::domain::origin::origin_values(&request.headers)) {
        return Err(Answer::error(422, "ORIGIN is invalid."));
    }
    Ok(ApiRequest { request })
}

impl ApiRequest {
    /// A required query parameter, with the seed's errors: no query string at all → 400
    /// `Not found parameter.`; this one missing → 400; blank or null → 422.
    pub fn param(&self, name: &str) -> Result<&str, Answer> {
        let query = &self.request.query_string_parameters;
        if query.is_empty() {
            return Err(Answer::error(400, "Not found parameter."));
        }
        match query.first(name) {
            None => Err(Answer::error(400, &format!("Not found parameter {name}."))),
            Some("") => Err(Answer::error(422, &format!("Not exist parameter {name}."))),
            Some(value) => Ok(value),
        }
    }

    /// A query parameter that is present and not blank, without producing an error.
    pub fn optional_param(&self, name: &str) -> Option<&str> {
        self.request.query_string_parameters.first(name).filter(|v| !v.is_empty())
    }
}

/// Builds the API Gateway response with the seed's headers. CORS answers with the request's own
/// origin when it is allowed (it only reaches here if it is) and `Vary: Origin`, never `*`.
pub fn respond(answer: Answer, origin: Option<&str>, origins: &AllowedOrigins) -> ApiGatewayV2httpResponse {
    respond_to(answer, origin, origins, &Method::GET)
}

/// [`respond`] for a route whose method is `method`.
pub fn respond_to(
    answer: Answer,
    origin: Option<&str>,
    origins: &AllowedOrigins,
    method: &Method,
) -> ApiGatewayV2httpResponse {
    let mut headers = HeaderMap::new();
    if let Some(origin) = origin.filter(|o| !o.is_empty() && origins.allows(Some(o)))
        && let Ok(value) = HeaderValue::from_str(origin)
    {
        headers.insert("access-control-allow-origin", value);
    }
    headers.insert("vary", HeaderValue::from_static("Origin"));
    let methods = if method == Method::POST { "POST, OPTIONS" } else { "GET, OPTIONS" };
    headers.insert("access-control-allow-methods", HeaderValue::from_static(methods));
    // `*` covers every request header but Authorization, which upload-api's sign-in sends; the
    // GETs keep the seed's `*`.
    let allowed_headers = if method == Method::POST { "authorization, *" } else { "*" };
    headers.insert("access-control-allow-headers", HeaderValue::from_static(allowed_headers));
    headers.insert("access-control-max-age", HeaderValue::from_static("7200"));
    if answer.status != 304 {
        headers.insert("content-type", HeaderValue::from_static("application/json; charset=UTF-8"));
    }
    if let Some(etag) = answer.etag.as_deref().and_then(|tag| HeaderValue::from_str(tag).ok()) {
        headers.insert("etag", etag);
        headers.insert("cache-control", HeaderValue::from_static("no-cache"));
        headers.insert("access-control-expose-headers", HeaderValue::from_static("ETag"));
    }

    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = i64::from(answer.status);
    response.headers = headers;
    response.body = answer.body.map(Body::Text);
    response
}

/// The request's `Origin` header (header names are case-insensitive).
pub fn origin(request: &ApiGatewayV2httpRequest) -> Option<&str> {
    request.headers.get("origin").and_then(|v| v.to_str().ok())
}

/// Runs a REST handler body over a raw event: parse, shared checks, then `route`. An event that
/// does not parse (API Gateway never sends one) is answered 400 without CORS headers.
pub async fn serve<F, Fut>(raw: serde_json::Value, origins: &AllowedOrigins, route: F) -> ApiGatewayV2httpResponse
where
    F: FnOnce(ApiRequest) -> Fut,
    Fut: std::future::Future<Output = Answer>,
{
    serve_method(raw, origins, Method::GET, route).await
}

/// [`serve`] for a route answering `method`.
pub async fn serve_method<F, Fut>(
    raw: serde_json::Value,
    origins: &AllowedOrigins,
    method: Method,
    route: F,
) -> ApiGatewayV2httpResponse
where
    F: FnOnce(ApiRequest) -> Fut,
    Fut: std::future::Future<Output = Answer>,
{
    let request = match parse(raw) {
        Ok(request) => request,
        Err(answer) => return respond_to(answer, None, origins, &method),
    };
    let origin = origin(&request).map(str::to_owned);
    let answer = match check(request, origins, &method) {
        Ok(request) => route(request).await,
        Err(answer) => answer,
    };
    respond_to(answer, origin.as_deref(), origins, &method)
}

impl ApiRequest {
    /// A request header's value, when it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The request body's bytes (API Gateway base64-encodes binary bodies).
    pub fn body_bytes(&self) -> Result<Vec<u8>, Answer> {
        let body = self.request.body.as_deref().unwrap_or_default();
        if self.request.is_base64_encoded {
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, body)
                .map_err(|e| Answer::error(400, &format!("body is not valid base64: {e}")))
        } else {
            Ok(body.as_bytes().to_vec())
        }
    }
}
