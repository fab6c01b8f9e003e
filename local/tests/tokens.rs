//! `POST /media/tokens` against the local stack over HTTP: a token is renewed for the scope it
//! covers, the chain stays within `MAX_TOKEN_TTL_SECONDS` of its first token, a file's token is
//! not renewed a day after its job ended, and malformed requests are refused by name.

mod common;
use std::time::Duration;

use mcpush_core::domain::token::{ReadAccess, issue};
use serde_json::{Value, json};

const SECRET: &[u8] = b"renewal-secret";

async fn start(tokens: bool, ttl: u64, max_ttl: u64) -> String {
    let (base, stack, _) = common::serve_stack("tokens", |options| {
        if tokens {
            options.ws.access = ReadAccess::new(Some(SECRET.to_vec()));
        }
        (options.upload.token_ttl, options.upload.max_token_ttl) =
            (Duration::from_secs(ttl), Duration::from_secs(max_ttl));
    })
    .await;
    for event in ["hls-1-progressing.json", "hls-6-complete.json"] {
        let path = format!("{}/../tests/fixtures/eventbridge/{event}", env!("CARGO_MANIFEST_DIR"));
        let event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        stack.progress_ingest(&event).await.unwrap();
    }
    base
}

async fn renew(base: &str, body: Value) -> (u16, Value) {
    common::post_json(&format!("{base}/media/tokens"), &body, None).await
}

fn now() -> u64 {
    mcpush_core::now_ms() / 1000
}

#[tokio::test]
async fn a_token_is_renewed_for_its_scope_until_its_chain_reaches_the_maximum() {
    // GIVEN tokens valid 100 s, chains at most 1000 s past their first token
    let base = start(true, 100, 1000).await;
    let access = ReadAccess::new(Some(SECRET.to_vec()));
    let first = issue(SECRET, "uploads/u1/a.mp4", now() + 10);

    // WHEN the holder of a file's token asks for a fresh one
    let (code, renewed) = renew(&base, json!({"input_file": "uploads/u1/a.mp4", "token": first})).await;
    // THEN it is valid TOKEN_TTL_SECONDS from now, for that file only
    assert_eq!(code, 200, "{renewed}");
    let token = renewed["token"].as_str().unwrap();
    let expires = renewed["token_expires_at"].as_u64().unwrap();
    assert!(expires.abs_diff(now() + 100) <= 2, "{renewed}");
    assert_eq!(access.check("uploads/u1/a.mp4", Some(token), now()), Ok(()));
    assert!(access.check("uploads/u1/b.mp4", Some(token), now()).is_err());

    // AND renewing it again at once gives no less
    let (code, again) = renew(&base, json!({"input_file": "uploads/u1/a.mp4", "token": token})).await;
    assert_eq!((code, again["token_expires_at"].as_u64()), (200, Some(expires)), "{again}");

    // WHEN, where chains may outlive their first token by 50 s only, a chain is renewed twice
    let short = start(true, 100, 50).await;
    let (code, once) = renew(&short, json!({"input_file": "uploads/u1/a.mp4", "token": first})).await;
    // THEN it ends 50 s after the first token's expiry, and renews no further
    assert_eq!(code, 200, "{once}");
    let limit = first.split_once('.').unwrap().0.parse::<u64>().unwrap() + 50;
    assert_eq!(once["token_expires_at"].as_u64(), Some(limit), "{once}");
    let (code, refused) = renew(&short, json!({"input_file": "uploads/u1/a.mp4", "token": once["token"]})).await;
    assert_eq!(code, 403);
    assert!(refused["message"].as_str().unwrap().contains("MAX_TOKEN_TTL_SECONDS"), "{refused}");

    // AND a folder token renews the folder, or a file under it, never anything wider
    let folder = issue(SECRET, "uploads/u1/", now() + 10);
    assert_eq!(renew(&base, json!({"prefix": "uploads/u1/", "token": folder})).await.0, 200);
    assert_eq!(renew(&base, json!({"input_file": "uploads/u1/deep/c.mp4", "token": folder})).await.0, 200);
    assert_eq!(renew(&base, json!({"prefix": "uploads/", "token": folder})).await.0, 403);
    // AND an expired or foreign token, or none, is refused, naming why
    let expired = issue(SECRET, "uploads/u1/a.mp4", now() - 1);
    for (token, why) in [(json!(expired), "expired"), (json!(folder), "cover"), (json!(null), "required")] {
        let (code, body) = renew(&base, json!({"input_file": "uploads/u2/a.mp4", "token": token})).await;
        let message = body["message"].as_str().unwrap();
        assert_eq!(code, 403, "{body}");
        assert!(message.contains(why) || why == "cover" && message.contains("does not cover"), "{message}");
    }
    // AND upload-api's metrics counted the renewals and the refusals (at least this test's: the
    // recorder is the process's)
    let counted = |metrics: &Value, name: &str| metrics["upload-api"][name]["sum"].as_f64().unwrap_or(0.0);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, text) = common::http("GET", &format!("{base}/_local/metrics"), None).await.unwrap();
        let metrics: Value = serde_json::from_str(&text).unwrap();
        if counted(&metrics, "TokensRenewed") >= 5.0 && counted(&metrics, "TokenRenewalsRefused") >= 5.0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_files_token_is_not_renewed_a_day_after_its_job_ended() {
    // GIVEN a file whose job completed in 2023
    let base = start(true, 100, 1000).await;
    let token = issue(SECRET, "Big Buck Bunny.mp4", now() + 10);
    // WHEN its token's holder asks for a fresh one
    let (code, body) = renew(&base, json!({"input_file": "Big Buck Bunny.mp4", "token": token})).await;
    // THEN it is refused, saying why
    assert_eq!(code, 403, "{body}");
    assert!(body["message"].as_str().unwrap().contains("24 hours"), "{body}");
    // AND a file without a job yet (an upload in flight) is renewed
    let pending = issue(SECRET, "uploads/pending.mp4", now() + 10);
    assert_eq!(renew(&base, json!({"input_file": "uploads/pending.mp4", "token": pending})).await.0, 200);
}

#[tokio::test]
async fn malformed_renewals_are_refused_by_name_and_without_tokens_there_is_nothing_to_renew() {
    let base = start(true, 100, 1000).await;
    for (body, needle) in [
        (json!({"token": "1.ab"}), "input_file"),
        (json!({"input_file": "a.mp4", "prefix": "a/", "token": "1.ab"}), "not both"),
        (json!({"prefix": "a", "token": "1.ab"}), "prefix"),
        (json!({"input_file": "a/", "token": "1.ab"}), "folder"),
        (json!({"input_file": "a.mp4", "token": 7}), "token"),
        (json!(["a.mp4"]), "object"),
    ] {
        let (code, answer) = renew(&base, body.clone()).await;
        assert_eq!(code, 400, "{body}: {answer}");
        assert!(answer["message"].as_str().unwrap().contains(needle), "{body}: {answer}");
    }
    let open = start(false, 100, 1000).await;
    let (code, answer) = renew(&open, json!({"input_file": "a.mp4"})).await;
    assert_eq!((code, answer), (200, json!({"success": true, "token": null, "token_expires_at": null})));
}
