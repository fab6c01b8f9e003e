//! The local stack's HTTP surface: REST requests become payload v2 events for the same handlers,
//! and the Invoke API feeds raw events to them.

mod common;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use mcpush_local::{Options, local};
use serde_json::{Value, json};
use tower::ServiceExt;

fn options() -> Options {
    Options { batch_window: std::time::Duration::from_millis(20), ..Options::default() }
}

fn stack() -> axum::Router {
    local("http://127.0.0.1:9", options()).router
}

/// Sends a request in process, with the `Host` a client of the stack sends (the stack answers 421
/// to any other).
async fn send(app: &axum::Router, mut request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    if !request.headers().contains_key("host") {
        request.headers_mut().insert("host", axum::http::HeaderValue::from_static("127.0.0.1:9"));
    }
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    (parts.status, parts.headers, String::from_utf8(to_bytes(body, 1 << 20).await.unwrap().to_vec()).unwrap())
}

fn event() -> Value {
    json!({"version": "0", "id": "7c5c0e2e-0000-4000-8000-000000000001", "detail-type": "MediaConvert Job State Change",
           "source": "aws.mediaconvert", "account": "111122223333", "time": "2026-11-24T22:00:00Z", "region": "ap-northeast-1",
           "resources": [], "detail": {"timestamp": 1795557600000_i64, "jobId": "1795557600000-local1", "status": "STATUS_UPDATE",
           "userMetadata": {"input_file": "my clip.mp4"}, "jobProgress": {"jobPercentComplete": 42, "currentPhase": "TRANSCODING"}}})
}

#[tokio::test]
async fn an_event_invoked_into_progress_ingest_is_served_by_the_rest_api() {
    let app = stack();
    let invoke = Request::post("/2015-03-31/functions/progress-ingest/invocations")
        .body(Body::from(event().to_string()))
        .unwrap();
    let (status, _, body) = send(&app, invoke).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["progress_rate"], 42);

    let get = Request::get("/media/job_id?input_file=my+clip.mp4")
        .header("origin", "http://localhost:3000")
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = send(&app, get).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, r#"{"success": true, "job_id": "1795557600000-local1"}"#));
    assert_eq!(headers.get("access-control-allow-origin").unwrap(), "http://localhost:3000");

    let get = Request::get("/media/status?input_file=my%20clip.mp4").body(Body::empty()).unwrap();
    let (status, _, body) = send(&app, get).await;
    assert_eq!(
        (status, body.as_str()),
        (
            StatusCode::OK,
            r#"{"success": true, "job_id": "1795557600000-local1", "job_status": "PROGRESSING", "progress_rate": 42, "version": 1, "current_phase": "TRANSCODING", "submitted_at": 1795557600000, "started_at": 1795557600000, "updated_at": 1795557600000, "queued_ms": 0, "elapsed_ms": 0}"#
        )
    );
}

/// The STATUS_UPDATE of [`event`] at `percent`.
fn at(percent: u8) -> Value {
    let mut e = event();
    e["detail"]["jobProgress"]["jobPercentComplete"] = json!(percent);
    e
}

async fn ingest(app: &axum::Router, event: Value) {
    let invoke = Request::post("/2015-03-31/functions/progress-ingest/invocations").body(Body::from(event.to_string()));
    assert_eq!(send(app, invoke.unwrap()).await.0, StatusCode::OK);
}

async fn get_status(
    app: &axum::Router,
    query: &str,
    if_none_match: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut request = Request::get(format!("/media/status?{query}")).header("origin", "http://localhost:3000");
    if let Some(tag) = if_none_match {
        request = request.header("if-none-match", tag);
    }
    send(app, request.body(Body::empty()).unwrap()).await
}

#[tokio::test]
async fn a_poll_for_an_unchanged_state_is_answered_304_and_a_waiting_one_when_it_changes() {
    // GIVEN a job at version 1
    let app = stack();
    ingest(&app, at(10)).await;
    let (status, headers, body) = get_status(&app, "input_file=my+clip.mp4", None).await;
    assert_eq!(status, StatusCode::OK);
    let etag = headers.get("etag").expect("a tagged state").to_str().unwrap().to_owned();
    assert_eq!(etag, r#""1795557600000-local1.1""#);
    assert_eq!(headers.get("cache-control").unwrap(), "no-cache");
    assert_eq!(headers.get("access-control-expose-headers").unwrap(), "ETag");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["version"], 1);
    // The seed's form keeps its body byte for byte and is tagged too.
    let (status, headers, body) = get_status(&app, "job_id=1795557600000-local1", None).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"{"success": true, "job_status": "PROGRESSING", "progress_rate": 10}"#)
    );
    assert_eq!(headers.get("etag").unwrap().to_str().unwrap(), etag);

    // WHEN a client asks again with the tag it has
    for tag in [etag.as_str(), &format!("W/{etag}"), &format!(r#""other", {etag}"#), "*"] {
        let (status, headers, body) = get_status(&app, "input_file=my+clip.mp4", Some(tag)).await;
        // THEN nothing changed: 304, no body, CORS kept
        assert_eq!((status, body.as_str()), (StatusCode::NOT_MODIFIED, ""), "{tag}");
        assert_eq!(headers.get("etag").unwrap().to_str().unwrap(), etag);
        assert_eq!(headers.get("access-control-allow-origin").unwrap(), "http://localhost:3000");
        assert!(headers.get("content-type").is_none());
    }
    let (status, _, _) = get_status(&app, "input_file=my+clip.mp4", Some(r#""1795557600000-local1.0""#)).await;
    assert_eq!(status, StatusCode::OK, "an older tag gets the state");

    // WHEN a client waits with its tag and the job moves 300 ms later
    let mover = {
        let app = app.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            ingest(&app, at(20)).await;
        })
    };
    let started = std::time::Instant::now();
    let (status, headers, body) = get_status(&app, "input_file=my+clip.mp4&wait=20", Some(&etag)).await;
    mover.await.unwrap();
    // THEN the answer is the new state, as soon as the server saw it, not after the wait
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "held for {:?}", started.elapsed());
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((body["progress_rate"].as_u64(), body["version"].as_u64()), (Some(20), Some(2)));
    let etag = headers.get("etag").unwrap().to_str().unwrap().to_owned();

    // AND a wait that sees no change ends in 304 once the wait is over
    let started = std::time::Instant::now();
    let (status, _, _) = get_status(&app, "input_file=my+clip.mp4&wait=1", Some(&etag)).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(started.elapsed() >= std::time::Duration::from_secs(1), "answered after {:?}", started.elapsed());

    // AND wait is whole seconds from 0 to 20
    for wait in ["21", "-1", "1.5", "x"] {
        let (status, _, body) = get_status(&app, &format!("input_file=my+clip.mp4&wait={wait}"), Some(&etag)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "wait={wait}");
        assert!(body.contains("wait"), "{body}");
    }
}

#[tokio::test]
async fn rest_errors_match_the_seed() {
    let app = stack();
    for (uri, status, body) in [
        ("/media/status", 400, r#"{"success": false, "message": "Not found parameter."}"#),
        ("/media/status?job_id=", 422, r#"{"success": false, "message": "Not exist parameter job_id."}"#),
        ("/media/job_id?diff=x", 400, r#"{"success": false, "message": "Not found parameter input_file."}"#),
    ] {
        let (got_status, _, got_body) = send(&app, Request::get(uri).body(Body::empty()).unwrap()).await;
        assert_eq!((got_status.as_u16(), got_body.as_str()), (status, body), "{uri}");
    }
    let foreign =
        Request::get("/media/status?job_id=x").header("origin", "https://evil.example").body(Body::empty()).unwrap();
    let (status, _, body) = send(&app, foreign).await;
    assert_eq!((status.as_u16(), body.as_str()), (422, r#"{"success": false, "message": "ORIGIN is invalid."}"#));
    let (status, _, _) = send(&app, Request::delete("/media/status?job_id=x").body(Body::empty()).unwrap()).await;
    assert_eq!(status.as_u16(), 404);
}

#[tokio::test]
async fn invoke_reports_handler_errors_and_unknown_functions_as_lambda_does() {
    let app = stack();
    let mut bad = event();
    bad["detail"].as_object_mut().unwrap().remove("status");
    let invoke =
        Request::post("/2015-03-31/functions/progress-ingest/invocations").body(Body::from(bad.to_string())).unwrap();
    let (status, headers, body) = send(&app, invoke).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers.get("x-amz-function-error").unwrap(), "Unhandled");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["errorMessage"], "detail.status is missing");

    let invoke = Request::post("/2015-03-31/functions/nope/invocations").body(Body::from("{}")).unwrap();
    let (status, headers, _) = send(&app, invoke).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers.get("x-amzn-errortype").unwrap(), "ResourceNotFoundException");
}

#[tokio::test]
async fn an_invoked_event_reaches_a_websocket_subscriber_through_the_change_feed() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    // GIVEN the local stack served on a free port, and a browser-like client subscribed over /ws
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stack = local(&base, options());
    let app = stack.router.clone();
    tokio::spawn(async move { axum::serve(listener, stack.router).await });
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("{}/ws", base.replace("http://", "ws://"))).await.unwrap();
    let subscribe = json!({"action": "subscribe", "input_file": "my clip.mp4"}).to_string();
    socket.send(Message::Text(subscribe.into())).await.unwrap();
    let mut next = async || -> Value {
        loop {
            let frame = tokio::time::timeout(std::time::Duration::from_secs(5), socket.next())
                .await
                .expect("a message within 5 s");
            if let Some(Ok(Message::Text(text))) = frame {
                let message: Value = serde_json::from_str(&text).unwrap();
                common::protocol::assert_server_message(&message);
                return message;
            }
        }
    };
    assert_eq!(next().await, json!({"type": "subscribed", "input_file": "my clip.mp4"}));

    // WHEN MediaConvert's STATUS_UPDATE is invoked into progress-ingest
    let invoke = Request::post("/2015-03-31/functions/progress-ingest/invocations")
        .body(Body::from(event().to_string()))
        .unwrap();
    assert_eq!(send(&app, invoke).await.0, StatusCode::OK);

    // THEN the change is pushed to the subscriber
    assert_eq!(
        next().await,
        json!({"type": "status", "input_file": "my clip.mp4", "job_id": "1795557600000-local1", "job_status": "PROGRESSING", "progress_rate": 42, "version": 1, "current_phase": "TRANSCODING",
               "submitted_at": 1795557600000u64, "started_at": 1795557600000u64, "updated_at": 1795557600000u64, "queued_ms": 0, "elapsed_ms": 0})
    );
}

#[tokio::test]
async fn ws_post_fault_rate_fails_posts_before_anything_else() {
    // GIVEN a stack whose Management API fails every post
    let app = local("http://127.0.0.1:9", Options { ws_post_fault_rate: 1.0, ..options() }).router;

    // WHEN a post goes to a connection that does not exist (which would otherwise be 410)
    let post = || Request::post("/@connections/L0SM9cOFvHcCIhw=").body(Body::from("{}")).unwrap();
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(send(&app, post()).await.0);
    }

    // THEN every answer is a retryable fault, never Gone
    assert!(
        statuses.iter().all(|s| *s == StatusCode::TOO_MANY_REQUESTS || *s == StatusCode::INTERNAL_SERVER_ERROR),
        "{statuses:?}"
    );
    let (default_status, _, _) = send(&stack(), post()).await;
    assert_eq!(default_status, StatusCode::GONE);
}

#[tokio::test]
async fn s3_objects_are_read_back_whole_and_head_sends_no_body() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("s3-read-{}", std::process::id()));
    let app = local("http://127.0.0.1:9", Options { s3_dir: dir.clone(), ..options() }).router;
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let put = Request::put("/s3/uploads/big/clip.bin").body(Body::from(bytes.clone())).unwrap();
    assert_eq!(send(&app, put).await.0, StatusCode::OK);

    let mut get = Request::get("/s3/uploads/big/clip.bin").body(Body::empty()).unwrap();
    get.headers_mut().insert("host", axum::http::HeaderValue::from_static("127.0.0.1:9"));
    let response = app.clone().oneshot(get).await.unwrap();
    assert_eq!(response.headers()["content-length"], "3000000");
    assert_eq!(to_bytes(response.into_body(), 4_000_000).await.unwrap().as_ref(), bytes.as_slice());
    let (status, headers, body) =
        send(&app, Request::head("/s3/uploads/big/clip.bin").body(Body::empty()).unwrap()).await;
    assert_eq!((status, headers["content-length"].to_str().unwrap(), body.as_str()), (StatusCode::OK, "3000000", ""));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_22000_character_job_id_is_refused_at_ingest_and_the_reconciler_keeps_working() {
    // GIVEN the stack, and an event of a job id no MediaConvert job can have
    let app = stack();
    let long_id = "1795557600000-".to_owned() + &"x".repeat(22_000 - 14);
    let mut poison = event();
    poison["detail"]["jobId"] = json!(long_id);
    // WHEN it is invoked into progress-ingest
    let invoke = |event: Value| {
        Request::post("/2015-03-31/functions/progress-ingest/invocations").body(Body::from(event.to_string())).unwrap()
    };
    let (status, headers, body) = send(&app, invoke(poison)).await;
    // THEN the function fails naming the field, and nothing is stored
    assert_eq!(
        (status, headers.get("x-amz-function-error").map(|h| h.to_str().unwrap())),
        (StatusCode::OK, Some("Unhandled"))
    );
    assert!(body.contains("detail.jobId is 22000 characters; at most 128"), "{body}");
    let get = Request::get(format!("/media/status?job_id={long_id}")).body(Body::empty()).unwrap();
    let (status, _, body) = send(&app, get).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, r#"{"success": false, "message": "Not found item."}"#)
    );
    // AND the reconciler, invoked as the schedule does, still runs
    let run = Request::post("/2015-03-31/functions/reconcile/invocations").body(Body::from("{}")).unwrap();
    let (status, headers, body) = send(&app, run).await;
    assert_eq!((status, headers.get("x-amz-function-error")), (StatusCode::OK, None), "{body}");
}
