//! Resumable uploads through the local stack's HTTP API: `POST /media/uploads` with
//! `"multipart": true`, then `/media/uploads/parts`, `/complete` and `/abort`, the parts PUT to
//! their presigned URLs on the simulated S3. Only the grant's holder may go on with an upload
//! (the token with tokens on, the upload id without), and an upload over `MAX_UPLOAD_BYTES` is
//! aborted at completion.

mod common;

use std::time::Duration;

use mcpush_core::domain::token::ReadAccess;
use serde_json::{Value, json};

const SECRET: &[u8] = b"multipart-secret";
const MIB: usize = 1024 * 1024;

async fn start(tokens: bool, max_bytes: u64) -> (String, mcpush_local::run::stack::Stack, std::path::PathBuf) {
    common::serve_stack("multipart-api", |options| {
        if tokens {
            options.ws.access = ReadAccess::new(Some(SECRET.to_vec()));
        }
        options.upload.rules.max_bytes = max_bytes;
    })
    .await
}

/// A JSON POST from an allowed page: status and body (JSON, or `null` when empty).
async fn call(base: &str, path: &str, body: Value) -> (u16, Value) {
    let answer = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("origin", "http://localhost:3000")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("the stack answers");
    let status = answer.status().as_u16();
    let text = answer.text().await.unwrap();
    (
        status,
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"))
        },
    )
}

async fn grant(base: &str, size: usize) -> Value {
    let request = json!({"file_name": "big.mp4", "content_type": "video/mp4", "size": size, "multipart": true});
    let (status, granted) = call(base, "/media/uploads", request).await;
    assert_eq!(status, 200, "{granted}");
    granted
}

/// PUTs `body` to a presigned part URL as a browser does; answers the part's ETag.
async fn put_part(url: &str, body: &[u8]) -> String {
    let answer = reqwest::Client::new().put(url).body(body.to_vec()).send().await.unwrap();
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
    answer.headers()["etag"].to_str().unwrap().to_owned()
}

fn url_of(answer: &Value, part: u64) -> String {
    let parts = answer["parts"].as_array().unwrap_or_else(|| panic!("{answer}"));
    parts.iter().find(|p| p["part_number"] == part).unwrap()["url"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_upload_goes_in_parts_resumes_with_what_s3_holds_and_completes_into_a_job() {
    // GIVEN a stack with read tokens, and a 12 MiB file granted as a multipart upload
    let (base, stack, s3_dir) = start(true, 50 << 30).await;
    let file: Vec<u8> = (0..12 * MIB + 5).map(|i| (i % 251) as u8).collect();
    let granted = grant(&base, file.len()).await;
    let (input_file, upload_id, token) = (
        granted["input_file"].as_str().unwrap(),
        granted["upload_id"].as_str().unwrap(),
        granted["token"].as_str().unwrap(),
    );
    assert_eq!((granted["part_size"].as_u64(), granted["part_count"].as_u64()), (Some(8 * MIB as u64), Some(2)));
    assert!(granted["success"] == true && granted["token_expires_at"].is_u64() && granted["expires_at"].is_u64());

    // WHEN the first part is sent, then the client "crashes" and asks again for both parts
    let ask = |numbers: Value| json!({"input_file": input_file, "upload_id": upload_id, "token": token, "part_numbers": numbers});
    let (status, first) = call(&base, "/media/uploads/parts", ask(json!([1, 2]))).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["uploaded"], json!([]));
    let etag1 = put_part(&url_of(&first, 1), &file[..8 * MIB]).await;
    let (_, resumed) = call(&base, "/media/uploads/parts", ask(json!([2, 1, 2]))).await;
    // THEN S3's part 1 is listed, so only part 2 needs sending
    assert_eq!(resumed["uploaded"], json!([{"part_number": 1, "etag": etag1, "size": 8 * MIB}]));
    assert_eq!(resumed["parts"].as_array().unwrap().len(), 2, "duplicates are asked once: {resumed}");
    let etag2 = put_part(&url_of(&resumed, 2), &file[8 * MIB..]).await;

    // WHEN it is completed
    let parts = json!([{"part_number": 1, "etag": etag1}, {"part_number": 2, "etag": etag2}]);
    let complete = json!({"input_file": input_file, "upload_id": upload_id, "token": token, "parts": parts});
    let (status, done) = call(&base, "/media/uploads/complete", complete.clone()).await;
    // THEN the object is the file, and create-job starts its job
    assert_eq!((status, &done), (200, &json!({"success": true, "input_file": input_file})));
    assert_eq!(std::fs::read(s3_dir.join("uploads").join(input_file)).unwrap(), file);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while stack.jobs.latest_job_id(input_file).await.unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "no job for the completed upload");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // AND the upload is over: completing it again is refused
    assert_eq!(call(&base, "/media/uploads/complete", complete).await.0, 403);
    let _ = std::fs::remove_dir_all(s3_dir);
}

#[tokio::test]
async fn with_tokens_on_only_the_grants_token_lists_continues_completes_or_aborts_the_upload() {
    // GIVEN an upload granted with tokens on, and another file's token
    let (base, _stack, s3_dir) = start(true, 50 << 30).await;
    let granted = grant(&base, 10 * MIB).await;
    let (input_file, upload_id) = (granted["input_file"].as_str().unwrap(), granted["upload_id"].as_str().unwrap());
    let other = grant(&base, 10).await;
    let foreign = other["token"].as_str().unwrap();
    // WHEN each route is asked with no token, with the other file's token, or for the other file
    for (path, extra) in [
        ("/media/uploads/parts", json!({"part_numbers": [1]})),
        ("/media/uploads/complete", json!({"parts": [{"part_number": 1, "etag": "\"x\""}]})),
        ("/media/uploads/abort", json!({})),
    ] {
        let body = |token: Option<&str>, file: &str| {
            let mut body = json!({"input_file": file, "upload_id": upload_id});
            body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            if let Some(token) = token {
                body["token"] = json!(token);
            }
            body
        };
        // THEN each is refused with 403
        assert_eq!(call(&base, path, body(None, input_file)).await.0, 403, "{path} without a token");
        assert_eq!(call(&base, path, body(Some(foreign), input_file)).await.0, 403, "{path} with another file's token");
        let other_file = other["input_file"].as_str().unwrap();
        assert_eq!(
            call(&base, path, body(Some(foreign), other_file)).await.0,
            403,
            "{path}: the upload id is not that file's"
        );
    }
    // AND with its own token it is still there, and may be aborted
    let token = granted["token"].as_str().unwrap();
    let ask = json!({"input_file": input_file, "upload_id": upload_id, "token": token, "part_numbers": []});
    assert_eq!(call(&base, "/media/uploads/parts", ask.clone()).await.0, 200);
    let abort = json!({"input_file": input_file, "upload_id": upload_id, "token": token});
    assert_eq!(call(&base, "/media/uploads/abort", abort).await, (204, Value::Null));
    assert_eq!(call(&base, "/media/uploads/parts", ask).await.0, 403, "aborted");
    let _ = std::fs::remove_dir_all(s3_dir);
}

#[tokio::test]
async fn with_tokens_off_a_wrong_upload_id_lists_continues_completes_and_aborts_nothing() {
    // GIVEN an upload granted with tokens off
    let (base, _stack, s3_dir) = start(false, 50 << 30).await;
    let granted = grant(&base, 10 * MIB).await;
    let input_file = granted["input_file"].as_str().unwrap();
    assert!(granted["token"].is_null());
    let wrong = format!("{}0", granted["upload_id"].as_str().unwrap());
    // WHEN each route gets a wrong upload id THEN it is refused with 403
    let parts = json!({"input_file": input_file, "upload_id": wrong, "part_numbers": [1]});
    let complete =
        json!({"input_file": input_file, "upload_id": wrong, "parts": [{"part_number": 1, "etag": "\"x\""}]});
    let abort = json!({"input_file": input_file, "upload_id": wrong});
    assert_eq!(call(&base, "/media/uploads/parts", parts).await.0, 403);
    assert_eq!(call(&base, "/media/uploads/complete", complete).await.0, 403);
    assert_eq!(call(&base, "/media/uploads/abort", abort).await.0, 403);
    // AND the right one still lists the upload
    let right = json!({"input_file": input_file, "upload_id": granted["upload_id"], "part_numbers": [1]});
    assert_eq!(call(&base, "/media/uploads/parts", right).await.0, 200);
    let _ = std::fs::remove_dir_all(s3_dir);
}

#[tokio::test]
async fn an_upload_over_the_limit_is_aborted_at_completion_and_misuse_is_named() {
    // GIVEN a stack whose uploads may hold 10 MiB, and an upload granted for 9 MiB
    let (base, _stack, s3_dir) = start(false, 10 * MIB as u64).await;
    let granted = grant(&base, 9 * MIB).await;
    let (input_file, upload_id) = (granted["input_file"].as_str().unwrap(), granted["upload_id"].as_str().unwrap());
    // WHEN parts of 8 MiB and 4 MiB are sent (more than it declared, and than the limit)
    let ask = json!({"input_file": input_file, "upload_id": upload_id, "part_numbers": [1, 2]});
    let (_, urls) = call(&base, "/media/uploads/parts", ask.clone()).await;
    let etag1 = put_part(&url_of(&urls, 1), &vec![1u8; 8 * MIB]).await;
    let etag2 = put_part(&url_of(&urls, 2), &vec![2u8; 4 * MIB]).await;
    let parts = json!([{"part_number": 1, "etag": etag1}, {"part_number": 2, "etag": etag2}]);
    let (status, refused) = call(
        &base,
        "/media/uploads/complete",
        json!({"input_file": input_file, "upload_id": upload_id, "parts": parts}),
    )
    .await;
    // THEN completion is refused naming the limit, and the upload is gone (never transcoded)
    assert_eq!(status, 413, "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("MAX_UPLOAD_BYTES"), "{refused}");
    assert_eq!(call(&base, "/media/uploads/parts", ask).await.0, 403);
    assert!(!s3_dir.join("uploads").join(input_file).exists());

    // AND misuse is refused naming what was wrong
    let g = grant(&base, 9 * MIB).await;
    let base_body = json!({"input_file": g["input_file"], "upload_id": g["upload_id"]});
    let with = |extra: Value| {
        let mut body = base_body.clone();
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let cases = [
        ("/media/uploads/parts", with(json!({"part_numbers": (1..=101).collect::<Vec<_>>()})), "part_numbers"),
        ("/media/uploads/parts", with(json!({"part_numbers": [0]})), "part_numbers"),
        ("/media/uploads/parts", with(json!({"part_numbers": [10001]})), "part_numbers"),
        ("/media/uploads/parts", with(json!({})), "part_numbers"),
        ("/media/uploads/complete", with(json!({"parts": []})), "parts"),
        (
            "/media/uploads/complete",
            with(json!({"parts": [{"part_number": 2, "etag": "\"a\""}, {"part_number": 1, "etag": "\"b\""}]})),
            "ascending",
        ),
        ("/media/uploads/complete", with(json!({"parts": [{"part_number": 1, "etag": "\"a\""}]})), "not been uploaded"),
        ("/media/uploads/abort", with(json!({"upload_id": ""})), "upload_id"),
    ];
    for (path, body, named) in cases {
        let (status, answer) = call(&base, path, body.clone()).await;
        assert_eq!(status, 400, "{path} {body}: {answer}");
        assert!(answer["message"].as_str().unwrap_or_default().contains(named), "{path} {body}: {answer}");
    }
    let single = json!({"file_name": "big.mp4", "content_type": "video/mp4", "size": 6u64 << 30});
    let (status, answer) = call(&base, "/media/uploads", single).await;
    assert_eq!(status, 413, "{answer}");
    let _ = std::fs::remove_dir_all(s3_dir);
}
