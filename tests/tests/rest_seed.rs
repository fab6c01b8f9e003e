//! The REST fallback answers every test event printed in the seed with the seed's exact status
//! code and body, reading from DynamoDB (moto) filled by the ingest handler.

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use aws_lambda_events::encodings::Body;
use mcpush_core::adapters::dynamodb::DynamoJobStore;
use mcpush_core::domain::AllowedOrigins;
use mcpush_core::handlers::http::RestContext;
use mcpush_core::handlers::{job_id_api, progress_ingest, status_api};
use mcpush_tests::{fixture, fresh_store};
use serde_json::{Value, json};

const SEED_COMPLETE: &str = r#"{"success": true, "job_status": "COMPLETE", "progress_rate": 100, "duration_ms": 596458, "width_px": 1280, "height_px": 720, "output_path": "Big Buck Bunny.mp4_test/", "playlists": {".m3u8": "Big Buck Bunny.m3u8"}}"#;
const SEED_PROGRESSING: &str = r#"{"success": true, "job_status": "PROGRESSING", "progress_rate": 70}"#;
const SEED_ERROR: &str = r#"{"success": true, "job_status": "ERROR", "progress_rate": 100, "error_code": 1010, "error_message": "Unable to open input file [Big Buck Bunny.mp4]: [Failed probe/open: [The version of the manifest file at this URL is more recent than we support: [Big Buck Bunny.mp4]. We support versions up to [4].]]"}"#;

fn origins() -> AllowedOrigins {
    AllowedOrigins::parse(r"https://test\.nightonly\.com http://localhost:\d+").unwrap()
}

/// GIVEN the seed's three jobs ingested from MediaConvert events, plus the seed's "OK" job id.
async fn seeded() -> DynamoJobStore {
    let store = fresh_store("rest").await;
    let mut ok_job = fixture("eventbridge/seed-complete.json");
    ok_job["detail"]["jobId"] = json!("123456789012-smb6o7");
    ok_job["detail"]["userMetadata"] = json!({"input_file": "older upload.mp4"});
    for event in [
        ok_job,
        fixture("eventbridge/seed-complete.json"),
        fixture("eventbridge/seed-progressing-70.json"),
        fixture("eventbridge/seed-error.json"),
    ] {
        progress_ingest::handle(&store, &event, 1).await.expect("ingest seed event");
    }
    store
}

fn body(response: &ApiGatewayV2httpResponse) -> Option<&str> {
    match &response.body {
        Some(Body::Text(text)) => Some(text),
        None => None,
        other => panic!("unexpected body {other:?}"),
    }
}

fn header<'a>(response: &'a ApiGatewayV2httpResponse, name: &str) -> Option<&'a str> {
    response.headers.get(name).and_then(|v| v.to_str().ok())
}

fn get(query: Value) -> Value {
    json!({"requestContext": {"http": {"method": "GET"}}, "headers": {}, "queryStringParameters": query})
}

#[tokio::test]
async fn job_id_api_answers_every_seed_event_as_the_seed_does() {
    let store = seeded().await;
    let cases = [
        ("seed-job-id-ok.json", 200, r#"{"success": true, "job_id": "c123456789012-smb6o7"}"#),
        ("seed-job-id-diff.json", 400, r#"{"success": false, "message": "Not found parameter input_file."}"#),
        ("seed-job-id-blank.json", 422, r#"{"success": false, "message": "Not exist parameter input_file."}"#),
        ("seed-job-id-null.json", 422, r#"{"success": false, "message": "Not exist parameter input_file."}"#),
        ("seed-not.json", 400, r#"{"success": false, "message": "Not found parameter."}"#),
    ];
    for (file, status, expected) in cases {
        let response =
            job_id_api::handle(&RestContext::open(&store, &origins()), fixture(&format!("http/{file}")), 0).await;
        assert_eq!((response.status_code, body(&response)), (status, Some(expected)), "{file}");
        assert_eq!(header(&response, "content-type"), Some("application/json; charset=UTF-8"), "{file}");
    }
}

#[tokio::test]
async fn status_api_answers_every_seed_event_as_the_seed_does() {
    let store = seeded().await;
    let cases = [
        ("seed-status-ok.json", 200, SEED_COMPLETE),
        ("seed-status-diff.json", 400, r#"{"success": false, "message": "Not found parameter job_id."}"#),
        ("seed-status-blank.json", 422, r#"{"success": false, "message": "Not exist parameter job_id."}"#),
        ("seed-status-null.json", 422, r#"{"success": false, "message": "Not exist parameter job_id."}"#),
        ("seed-not.json", 400, r#"{"success": false, "message": "Not found parameter."}"#),
    ];
    for (file, status, expected) in cases {
        let response =
            status_api::handle(&RestContext::open(&store, &origins()), fixture(&format!("http/{file}")), 0).await;
        assert_eq!((response.status_code, body(&response)), (status, Some(expected)), "{file}");
    }
}

#[tokio::test]
async fn status_api_gives_the_seed_lines_for_its_three_jobs() {
    let store = seeded().await;
    for (job_id, expected) in [
        ("c123456789012-smb6o7", SEED_COMPLETE),
        ("p123456789012-smb6o7", SEED_PROGRESSING),
        ("e123456789012-smb6o7", SEED_ERROR),
    ] {
        let response =
            status_api::handle(&RestContext::open(&store, &origins()), get(json!({"job_id": job_id})), 0).await;
        assert_eq!((response.status_code, body(&response)), (200, Some(expected)), "{job_id}");
    }
}

#[tokio::test]
async fn options_answers_200_with_cors_headers_and_no_body() {
    let store = seeded().await;
    for response in [
        job_id_api::handle(&RestContext::open(&store, &origins()), fixture("http/seed-options.json"), 0).await,
        status_api::handle(&RestContext::open(&store, &origins()), fixture("http/seed-options.json"), 0).await,
    ] {
        assert_eq!((response.status_code, body(&response)), (200, None));
        assert_eq!(header(&response, "access-control-allow-methods"), Some("GET, OPTIONS"));
        assert_eq!(header(&response, "access-control-allow-headers"), Some("*"));
        assert_eq!(header(&response, "access-control-max-age"), Some("7200"));
    }
}

#[tokio::test]
async fn allowed_origin_is_echoed_never_a_wildcard() {
    let store = seeded().await;
    let response =
        job_id_api::handle(&RestContext::open(&store, &origins()), fixture("http/seed-job-id-ok.json"), 0).await;
    assert_eq!(header(&response, "access-control-allow-origin"), Some("https://test.nightonly.com"));
    assert_eq!(header(&response, "vary"), Some("Origin"));

    let response =
        job_id_api::handle(&RestContext::open(&store, &origins()), fixture("http/seed-job-id-diff.json"), 0).await;
    assert_eq!(header(&response, "access-control-allow-origin"), None);
}

#[tokio::test]
async fn foreign_origin_other_methods_and_unknown_items_get_the_seed_errors() {
    let store = seeded().await;
    let mut foreign = fixture("http/seed-job-id-ok.json");
    foreign["headers"]["origin"] = json!("https://test.nightonly.com.evil.example");
    let response = job_id_api::handle(&RestContext::open(&store, &origins()), foreign, 0).await;
    assert_eq!(
        (response.status_code, body(&response)),
        (422, Some(r#"{"success": false, "message": "ORIGIN is invalid."}"#))
    );
    assert_eq!(header(&response, "access-control-allow-origin"), None);

    let mut post = fixture("http/seed-status-ok.json");
    post["requestContext"]["http"]["method"] = json!("POST");
    let response = status_api::handle(&RestContext::open(&store, &origins()), post, 0).await;
    assert_eq!(
        (response.status_code, body(&response)),
        (404, Some(r#"{"success": false, "message": "No route matches."}"#))
    );

    let response =
        job_id_api::handle(&RestContext::open(&store, &origins()), get(json!({"input_file": "never uploaded.mp4"})), 0)
            .await;
    assert_eq!(
        (response.status_code, body(&response)),
        (422, Some(r#"{"success": false, "message": "Not found item."}"#))
    );
    let response =
        status_api::handle(&RestContext::open(&store, &origins()), get(json!({"job_id": "1700000000000-nosuch"})), 0)
            .await;
    assert_eq!(
        (response.status_code, body(&response)),
        (422, Some(r#"{"success": false, "message": "Not found item."}"#))
    );
}

/// A COMPLETE body of the `?input_file=` form ends with the job's outputs.
fn complete_with_outputs(body: String) -> String {
    let outputs = r#", "outputs": [{"group": 0, "type": "HLS_GROUP", "path": "s3://b/Big Buck Bunny.mp4_test/Big Buck Bunny_720.m3u8", "width_px": 1280, "height_px": 720, "duration_ms": 596458, "playlist": "s3://b/Big Buck Bunny.mp4_test/Big Buck Bunny.m3u8"}]}"#;
    format!("{}{outputs}", body.strip_suffix('}').unwrap_or(&body))
}

#[tokio::test]
async fn status_by_input_file_answers_for_the_newest_job() {
    let store = seeded().await;
    // The extension names the job it answers for and adds its version and times (here its final
    // event's); the rest of the body is the seed's.
    let named =
        |job_id: &str, seed: &str, ended: u64| {
            let times =
                format!(r#""progress_rate": 100, "version": 1, "finished_at": {ended}, "updated_at": {ended}, "#);
            seed.replacen(r#"{"success": true, "#, &format!(r#"{{"success": true, "job_id": "{job_id}", "#), 1)
                .replacen(r#""progress_rate": 100, "#, &times, 1)
        };
    let response =
        status_api::handle(&RestContext::open(&store, &origins()), get(json!({"input_file": "Big Buck Bunny.mp4"})), 0)
            .await;
    assert_eq!(
        (response.status_code, body(&response)),
        (200, Some(complete_with_outputs(named("c123456789012-smb6o7", SEED_COMPLETE, 1_671_480_000_000)).as_str()))
    );
    let response =
        status_api::handle(&RestContext::open(&store, &origins()), get(json!({"input_file": "seed error.mp4"})), 0)
            .await;
    assert_eq!(
        (response.status_code, body(&response)),
        (200, Some(named("e123456789012-smb6o7", SEED_ERROR, 1_671_479_500_000).as_str()))
    );
    let response =
        status_api::handle(&RestContext::open(&store, &origins()), get(json!({"input_file": "unknown.mp4"})), 0).await;
    assert_eq!(
        (response.status_code, body(&response)),
        (422, Some(r#"{"success": false, "message": "Not found item."}"#))
    );
}

#[tokio::test]
async fn a_real_api_gateway_v2_event_is_served() {
    let store = seeded().await;
    let event = json!({
        "version": "2.0", "routeKey": "GET /media/status", "rawPath": "/media/status",
        "rawQueryString": "job_id=p123456789012-smb6o7",
        "headers": {"origin": "http://localhost:5173", "accept": "*/*", "host": "api.example.com"},
        "queryStringParameters": {"job_id": "p123456789012-smb6o7"},
        "requestContext": {"accountId": "111122223333", "apiId": "abc123", "domainName": "api.example.com", "domainPrefix": "api",
            "http": {"method": "GET", "path": "/media/status", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9", "userAgent": "curl/8"},
            "requestId": "id", "routeKey": "GET /media/status", "stage": "$default", "time": "24/Nov/2026:22:00:00 +0000", "timeEpoch": 1_795_557_600_000_i64},
        "isBase64Encoded": false
    });
    let response = status_api::handle(&RestContext::open(&store, &origins()), event, 0).await;
    assert_eq!((response.status_code, body(&response)), (200, Some(SEED_PROGRESSING)));
    assert_eq!(header(&response, "access-control-allow-origin"), Some("http://localhost:5173"));
}

#[tokio::test]
async fn with_a_secret_every_read_needs_a_token_that_covers_the_file() {
    // GIVEN the seed's jobs and a token secret
    let store = seeded().await;
    let secret = b"read-secret".to_vec();
    let access = mcpush_core::domain::token::ReadAccess::new(Some(secret.clone()));
    let origins = origins();
    let ctx = RestContext::new(&store, &origins, &access);
    let now = 1_800_000_000;
    let token = |scope: &str, expires: u64| mcpush_core::domain::token::issue(&secret, scope, expires);
    let file = "Big Buck Bunny.mp4";
    let job_id = "c123456789012-smb6o7";
    let forbidden = |message: &str| format!(r#"{{"success": false, "message": "{}"}}"#, message.replace('"', "\\\""));
    let cases: Vec<(&str, Option<String>, i64, String)> = vec![
        ("missing", None, 403, forbidden(r#"a "token" is required"#)),
        (
            "foreign",
            Some(token("seed error.mp4", now + 60)),
            403,
            forbidden(r#""token" does not cover this input_file"#),
        ),
        ("expired", Some(token(file, now - 1)), 403, forbidden(r#""token" has expired"#)),
        (
            "forged",
            Some(format!("{}.{}", now + 60, "00".repeat(32))),
            403,
            forbidden(r#""token" does not cover this input_file"#),
        ),
        ("malformed", Some("yes".into()), 403, forbidden(r#""token" is malformed"#)),
    ];
    for (name, token, status, expected) in cases {
        // WHEN each read is made with a bad or no token
        let with = |mut query: Value| {
            if let Some(t) = &token {
                query["token"] = json!(t);
            }
            get(query)
        };
        let answers = [
            job_id_api::handle(&ctx, with(json!({"input_file": file})), now).await,
            status_api::handle(&ctx, with(json!({"input_file": file})), now).await,
            status_api::handle(&ctx, with(json!({"job_id": job_id})), now).await,
            // a job that does not exist answers as one the token does not cover: no oracle
            status_api::handle(&ctx, with(json!({"job_id": "c999999999999-nosuch"})), now).await,
        ];
        // THEN each is refused with 403, naming why
        for response in answers {
            assert_eq!((response.status_code, body(&response)), (status, Some(expected.as_str())), "{name}");
        }
    }

    // AND a token for the file, or for nothing but a folder above it, gives the normal answers
    for good in [token(file, now + 60)] {
        let response = job_id_api::handle(&ctx, get(json!({"input_file": file, "token": good})), now).await;
        assert_eq!(
            (response.status_code, body(&response)),
            (200, Some(format!(r#"{{"success": true, "job_id": "{job_id}"}}"#).as_str()))
        );
        let response = status_api::handle(&ctx, get(json!({"job_id": job_id, "token": good})), now).await;
        assert_eq!((response.status_code, body(&response)), (200, Some(SEED_COMPLETE)));
    }
    let mut nested = fixture("eventbridge/seed-progressing-70.json");
    nested["detail"]["jobId"] = json!("1700000000000-nested");
    nested["detail"]["userMetadata"] = json!({"input_file": "users/u1/deep/clip.mp4"});
    progress_ingest::handle(&store, &nested, 1).await.unwrap();
    let folder = token("users/u1/", now + 60);
    let response =
        status_api::handle(&ctx, get(json!({"input_file": "users/u1/deep/clip.mp4", "token": folder})), now).await;
    assert_eq!(response.status_code, 200, "{:?}", body(&response));
    let response = status_api::handle(&ctx, get(json!({"job_id": "c123456789012-smb6o7", "token": folder})), now).await;
    assert_eq!(response.status_code, 403, "a folder token covers nothing outside it");
    // AND the seed's parameter errors come first, unchanged
    let response = status_api::handle(&ctx, get(json!({"job_id": ""})), now).await;
    assert_eq!(
        (response.status_code, body(&response)),
        (422, Some(r#"{"success": false, "message": "Not exist parameter job_id."}"#))
    );
}

/// The keys of a JSON object.
fn keys(body: &Value) -> std::collections::BTreeSet<String> {
    body.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
}

#[test]
fn the_job_id_body_has_exactly_the_seeds_fields_whatever_the_status_view_grows() {
    use mcpush_core::domain::{JobRecord, JobStatus, Phase, SeedStatus, StatusView};
    // GIVEN the seed's three published bodies
    let published: Vec<Value> =
        [SEED_COMPLETE, SEED_PROGRESSING, SEED_ERROR].iter().map(|b| serde_json::from_str(b).unwrap()).collect();
    let seed_fields: std::collections::BTreeSet<String> = published.iter().flat_map(keys).collect();

    // THEN the seed's body type, every field filled, has exactly those fields
    let full = SeedStatus {
        success: true,
        job_status: JobStatus::Complete,
        progress_rate: 100,
        duration_ms: Some(1),
        width_px: Some(1),
        height_px: Some(1),
        output_path: Some("o/".into()),
        playlists: Some(Default::default()),
        error_code: Some(1),
        error_message: Some("e".into()),
    };
    assert_eq!(keys(&serde_json::to_value(&full).unwrap()), seed_fields);

    // AND from a record with every field set, in each status, the seed's body keeps to the fields
    // the seed wrote for that status while the status view carries more
    for (status, published) in [
        (JobStatus::Complete, &published[0]),
        (JobStatus::Progressing, &published[1]),
        (JobStatus::Error, &published[2]),
    ] {
        let record = JobRecord {
            job_id: "j".into(),
            input_file: Some("f.mp4".into()),
            job_status: status,
            progress_rate: 50,
            duration_ms: Some(1),
            width_px: Some(1),
            height_px: Some(1),
            output_path: Some("o/".into()),
            playlists: Some(Default::default()),
            error_code: Some(1),
            error_message: Some("e".into()),
            current_phase: Some(Phase::Transcoding),
            event_at: Some(1),
            ..JobRecord::submitted("j")
        };
        let view = StatusView::from(&record);
        let seed = serde_json::to_value(SeedStatus::from(view.clone())).unwrap();
        assert_eq!(keys(&seed), keys(published), "{status:?}");
        if status == JobStatus::Progressing {
            assert!(keys(&serde_json::to_value(&view).unwrap()).contains("current_phase"), "the view is wider");
        }
    }
}
