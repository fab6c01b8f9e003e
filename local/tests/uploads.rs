//! The upload API over real HTTP: `POST /media/uploads` grants a presigned S3 POST for a key the
//! server chooses; the simulated S3 takes the file under that policy and the job runs to
//! COMPLETE; a file larger than granted, another content type, another key or an expired grant
//! is refused with S3's code and starts no job.

mod common;
use std::time::{Duration, Instant};

use mcpush_core::domain::token::ReadAccess;
use serde_json::{Value, json};

const SECRET: &[u8] = b"upload-secret";

async fn start(grant_ttl: Duration) -> String {
    let (base, ..) = common::serve_stack("uploads", |options| {
        options.ws.access = ReadAccess::new(Some(SECRET.to_vec()));
        options.upload.rules.max_bytes = 2_000_000;
        options.upload.rules.grant_ttl = grant_ttl;
    })
    .await;
    base
}

async fn grant(base: &str, body: Value) -> (u16, Value) {
    common::post_json(&format!("{base}/media/uploads"), &body, None).await
}

/// The browser's POST: the granted fields (some changed by `edit`), then the file.
async fn post_file(granted: &Value, bytes: usize, edit: impl Fn(&mut serde_json::Map<String, Value>)) -> (u16, String) {
    let mut fields = granted["upload"]["fields"].as_object().unwrap().clone();
    edit(&mut fields);
    let mut form = reqwest::multipart::Form::new();
    for (name, value) in fields {
        form = form.text(name, value.as_str().unwrap().to_owned());
    }
    form = form.part("file", reqwest::multipart::Part::bytes(vec![b'x'; bytes]).file_name("clip.mp4"));
    let response =
        reqwest::Client::new().post(granted["upload"]["url"].as_str().unwrap()).multipart(form).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn job_status(base: &str, granted: &Value) -> (u16, Value) {
    let url = reqwest::Url::parse_with_params(
        &format!("{base}/media/status"),
        [("input_file", granted["input_file"].as_str().unwrap()), ("token", granted["token"].as_str().unwrap())],
    )
    .unwrap();
    let response = reqwest::get(url).await.unwrap();
    (response.status().as_u16(), serde_json::from_str(&response.text().await.unwrap()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_through_the_upload_api_runs_to_complete() {
    // GIVEN the stack with tokens on
    let base = start(Duration::from_secs(900)).await;

    // WHEN a browser asks for an upload and POSTs the file as granted
    let (code, granted) =
        grant(&base, json!({"file_name": "My Clip.mp4", "content_type": "video/mp4", "size": 500_000})).await;
    assert_eq!(code, 200, "{granted}");
    let key = granted["input_file"].as_str().unwrap().to_owned();
    assert!(key.starts_with("uploads/") && key.ends_with("/My_Clip.mp4") && key.len() > 50, "{key}");
    assert_eq!(granted["upload"]["method"], "POST");
    assert_eq!(granted["upload"]["url"], format!("{base}/s3/uploads"));
    assert!(granted["token_expires_at"].as_u64().unwrap() > granted["expires_at"].as_u64().unwrap());
    let (code, body) = post_file(&granted, 500_000, |_| {}).await;
    assert_eq!(code, 204, "{body}");

    // THEN the job runs to COMPLETE, readable with the granted token
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, body) = job_status(&base, &granted).await;
        if body["job_status"] == "COMPLETE" {
            assert_eq!(code, 200);
            assert_eq!(body["output_path"], format!("{key}_hls/"));
            break;
        }
        assert!(Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // AND two requests for the same name get different keys
    let (_, again) = grant(&base, json!({"file_name": "My Clip.mp4", "content_type": "video/mp4", "size": 1})).await;
    assert_ne!(again["input_file"], granted["input_file"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_refuses_whatever_the_grant_does_not_allow_and_no_job_starts() {
    let base = start(Duration::from_secs(900)).await;
    let request = json!({"file_name": "a.mp4", "content_type": "video/mp4", "size": 1000});
    type Edit = Box<dyn Fn(&mut serde_json::Map<String, Value>)>;
    let cases: Vec<(&str, usize, Edit, u16, &str)> = vec![
        ("larger than granted", 1001, Box::new(|_| {}), 400, "EntityTooLarge"),
        (
            "another content type",
            10,
            Box::new(|f| {
                f.insert("Content-Type".into(), json!("text/html"));
            }),
            403,
            "AccessDenied",
        ),
        (
            "another key",
            10,
            Box::new(|f| {
                f.insert("key".into(), json!("uploads/someone-else.mp4"));
            }),
            403,
            "AccessDenied",
        ),
        (
            "an extra field",
            10,
            Box::new(|f| {
                f.insert("acl".into(), json!("public-read"));
            }),
            403,
            "AccessDenied",
        ),
        (
            "a forged signature",
            10,
            Box::new(|f| {
                f.insert("x-amz-signature".into(), json!("0".repeat(64)));
            }),
            403,
            "SignatureDoesNotMatch",
        ),
    ];
    let mut refused = Vec::new();
    for (name, bytes, edit, expected, code) in cases {
        let (_, granted) = grant(&base, request.clone()).await;
        let (status, body) = post_file(&granted, bytes, edit).await;
        assert_eq!(status, expected, "{name}: {body}");
        assert!(body.contains(&format!("<Code>{code}</Code>")), "{name}: {body}");
        refused.push(granted);
    }
    // an expired grant
    let short = start(Duration::from_secs(1)).await;
    let (_, granted) = grant(&short, request.clone()).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, body) = post_file(&granted, 10, |_| {}).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("Policy expired"), "{body}");

    // AND none of them started a job
    tokio::time::sleep(Duration::from_millis(300)).await;
    for granted in &refused {
        assert_eq!(job_status(&base, granted).await.0, 422, "{}", granted["input_file"]);
    }
    assert_eq!(job_status(&short, &granted).await.0, 422);
}

#[tokio::test]
async fn the_upload_api_names_what_is_wrong_in_the_seeds_style() {
    let base = start(Duration::from_secs(900)).await;
    let cases = [
        (json!("not an object"), 400, "body is not an upload request"),
        (json!({"file_name": "a.mp4", "content_type": "video/mp4"}), 400, "missing field `size`"),
        (
            json!({"file_name": "a.mp4", "content_type": "video/mp4", "size": 3_000_000}),
            413,
            "larger than the 2000000 bytes",
        ),
        (json!({"file_name": "a.txt", "content_type": "text/plain", "size": 1}), 415, "text/plain"),
        (json!({"file_name": "a.mp4", "content_type": "video/mp4", "size": 0}), 422, "at least 1 byte"),
        (json!({"file_name": "///", "content_type": "video/mp4", "size": 1}), 422, "no usable characters"),
    ];
    for (body, expected, message) in cases {
        let (code, answer) = grant(&base, body.clone()).await;
        assert_eq!((code, &answer["success"]), (expected, &json!(false)), "{body}: {answer}");
        assert!(answer["message"].as_str().unwrap().contains(message), "{body}: {answer}");
    }
    let (status, _) = common::http("GET", &format!("{base}/media/uploads"), None).await.unwrap();
    assert_eq!(status, 404, "the seed's answer to another method");
    let (status, body) = common::http("PUT", &format!("{base}/s3/uploads/script.mp4"), Some("x")).await.unwrap();
    assert_eq!(status, 403, "with tokens on, a plain PUT is no way around the grant: {body}");
    assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
}
