//! Every parser that takes outside input, fed arbitrary and mutated input with proptest: a
//! MediaConvert event, a stream record batch, a WebSocket message, a REST query, an upload
//! request, a read token. None may panic, and what each accepts keeps the limits it promises.
//!
//! Budget: `FUZZ_CASES` cases per property (default 256, what `scripts/test` runs: a few seconds
//! in all); `FUZZ_CASES=100000 cargo test -p mcpush-core --test fuzz_parsers` runs longer on
//! demand. A failing case is kept in `proptest-regressions/` beside this file and replayed first
//! on every later run; commit it with the fix.

use aws_lambda_events::dynamodb::EventRecord;
use proptest::prelude::*;
use serde_json::{Value, json};

use mcpush_core::adapters::dynamodb::stream;
use mcpush_core::adapters::memory::MemoryJobStore;
use mcpush_core::domain::ids::{MAX_JOB_ID_CHARS, MAX_KEY_BYTES, check_job_id};
use mcpush_core::domain::mediaconvert::parse_event;
use mcpush_core::domain::protocol::{ClientMessage, MAX_INPUT_FILE_BYTES};
use mcpush_core::domain::token::{ReadAccess, issue, verify};
use mcpush_core::domain::upload::UploadRules;
use mcpush_core::domain::{AllowedOrigins, JobUpdate, Transition};
use mcpush_core::handlers::batch::RecordBatch;
use mcpush_core::handlers::http::RestContext;
use mcpush_core::handlers::status_api;
use mcpush_core::ports::JobStore;

fn config() -> ProptestConfig {
    let cases = std::env::var("FUZZ_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256);
    ProptestConfig { cases, ..ProptestConfig::default() }
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,24}".prop_map(Value::from),
        Just(Value::from("x".repeat(3000))),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z_-]{1,14}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// `value` with the thing at one of its paths replaced by `with`: a real shape, broken in one place.
fn mutate(mut value: Value, pick: usize, with: Value) -> Value {
    fn paths(value: &Value, at: String, out: &mut Vec<String>) {
        out.push(at.clone());
        match value {
            Value::Object(map) => map.iter().for_each(|(k, v)| paths(v, format!("{at}/{k}"), out)),
            Value::Array(items) => items.iter().enumerate().for_each(|(i, v)| paths(v, format!("{at}/{i}"), out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    paths(&value, String::new(), &mut all);
    let path = &all[pick % all.len()];
    if let Some(slot) = value.pointer_mut(path) {
        *slot = with;
    }
    value
}

fn fixture(path: &str) -> Value {
    let file = format!("{}/../../tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"))).unwrap()
}

const EVENTS: [&str; 4] = [
    "eventbridge/hls-6-complete.json",
    "eventbridge/error.json",
    "eventbridge/cmaf-complete.json",
    "eventbridge/hls-5-status-update-70.json",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_mediaconvert_event_never_panics_and_what_it_yields_has_a_valid_job_id(
        which in 0..EVENTS.len(), pick in any::<usize>(), with in json_value(), raw in json_value(),
    ) {
        for event in [mutate(fixture(EVENTS[which]), pick, with), raw] {
            if let Ok(update) = parse_event(&event).and_then(|e| e.detail.to_update(0)) {
                prop_assert!(check_job_id(&update.job_id).is_ok(), "{}", update.job_id);
                prop_assert!(update.job_id.len() <= MAX_JOB_ID_CHARS);
                prop_assert!(update.input_file.as_ref().is_none_or(|f| f.len() <= MAX_KEY_BYTES));
            }
        }
    }

    #[test]
    fn a_stream_batch_never_panics(pick in any::<usize>(), with in json_value(), raw in json_value()) {
        for event in [mutate(fixture("dynamodb/modify-complete.json"), pick, with), raw] {
            if let Ok(batch) = RecordBatch::parse(&event) {
                for (_, record) in batch.typed::<EventRecord>() {
                    if let Ok(record) = record {
                        let _ = stream::decode(record);
                    }
                }
            }
        }
    }

    #[test]
    fn a_websocket_message_never_panics_and_an_accepted_topic_keeps_its_limits(
        text in "\\PC{0,64}", action in "[a-z]{0,12}", file in "\\PC{0,40}", token in "\\PC{0,20}", batch in json_value(),
    ) {
        let shaped = json!({"action": action, "input_file": file, "token": token, "batch": batch}).to_string();
        for body in [text, shaped, format!(r#"{{"action":"subscribe","input_file":"{}"}}"#, "a".repeat(1025))] {
            if let Ok(message) = ClientMessage::parse(&body) {
                let text = format!("{message:?}");
                prop_assert!(text.len() < 4 * 1024 + body.len(), "{text}");
                prop_assert!(!body.contains(&"a".repeat(MAX_INPUT_FILE_BYTES + 1)), "an over-long file was accepted");
            }
        }
    }

    #[test]
    fn a_rest_query_never_panics_and_answers_a_documented_status(
        params in prop::collection::btree_map("(job_id|input_file|token|[a-z]{1,8})", "\\PC{0,40}", 0..4),
        long_id in prop::bool::ANY,
        tokens_on in prop::bool::ANY,
    ) {
        let mut query: serde_json::Map<String, Value> = params.into_iter().map(|(k, v)| (k, Value::from(v))).collect();
        if long_id {
            query.insert("job_id".into(), Value::from("j".repeat(22_000)));
        }
        let event = json!({"requestContext": {"http": {"method": "GET"}}, "headers": {}, "queryStringParameters": query});
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let status = runtime.block_on(async {
            let store = MemoryJobStore::default();
            let update = JobUpdate {
                job_id: "1700000000000-abc123".into(),
                input_file: Some("a.mp4".into()),
                transition: Transition::Progressing,
                progress: Some(10),
                job_order: 1,
                phase: None,
                event_at: None,
                observed: Default::default(),
            };
            store.apply(&update).await.unwrap();
            let origins = AllowedOrigins::parse(r"https://app\.example").unwrap();
            let access = ReadAccess::new(tokens_on.then(|| b"a-secret-of-16+bytes".to_vec()));
            status_api::handle(&RestContext::new(&store, &origins, &access), event, 1_700_000_000).await.status_code
        });
        prop_assert!([200, 400, 403, 422].contains(&status), "{status}");
    }

    #[test]
    fn an_upload_request_never_panics_and_a_grant_keeps_to_the_rules(
        raw in prop::collection::vec(any::<u8>(), 0..200), name in "\\PC{0,40}", kind in "\\PC{0,20}", size in json_value(),
    ) {
        let rules = UploadRules { max_bytes: 1000, ..UploadRules::default() };
        let shaped = json!({"file_name": name, "content_type": kind, "size": size}).to_string().into_bytes();
        for body in [raw, shaped] {
            if let Ok(policy) = rules.grant(&body, "b", "ID", None, 100) {
                let text = serde_json::to_string(&policy).unwrap();
                prop_assert!(text.contains("uploads/"), "{text}");
            }
        }
    }

    #[test]
    fn a_token_never_panics_and_only_the_issued_spelling_verifies(
        token in "\\PC{0,90}", expires in 0u64..u64::MAX, target in "[a-z/.]{1,20}",
    ) {
        let secret = b"a-secret-of-16+bytes";
        prop_assert!(verify(secret, &target, Some(&token), 0).is_err() || token == issue(secret, &target, expires));
        let issued = issue(secret, &target, expires);
        prop_assert_eq!(verify(secret, &target, Some(&issued), 0), Ok(()));
        let mut altered = issued.clone();
        altered.push('0');
        prop_assert!(verify(secret, &target, Some(&altered), 0).is_err());
    }
}
