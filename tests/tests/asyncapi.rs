//! `docs/asyncapi.yaml`'s schemas, as the WebSocket tests' client applies them: every example in
//! the document is a message of its kind, the messages the handlers build are accepted, and
//! messages that break the protocol are refused (so the checks on every exchanged message can
//! fail).

use mcpush_core::domain::protocol::{MAX_MESSAGE_BYTES, ServerMessage, StatusUpdate, statuses_messages};
use mcpush_core::domain::topic::Topic;
use mcpush_core::domain::{JobRecord, JobStatus};
use mcpush_tests::workspace;
use mcpush_tests::ws::{assert_client_message, assert_server_message};
use serde_json::{Value, json};

fn refused(check: fn(&Value), message: Value) -> bool {
    std::panic::catch_unwind(|| check(&message)).is_err()
}

#[test]
fn every_example_in_the_document_is_a_message_of_its_kind() {
    let text = std::fs::read_to_string(workspace().join("docs/asyncapi.yaml")).unwrap();
    let document: Value = serde_norway::from_str(&text).unwrap();
    let client = ["subscribe", "unsubscribe", "ping"];
    let mut seen = 0;
    for (name, message) in document["components"]["messages"].as_object().unwrap() {
        for example in message["examples"].as_array().into_iter().flatten() {
            if client.contains(&name.as_str()) {
                assert_client_message(&example["payload"])
            } else {
                assert_server_message(&example["payload"])
            }
            seen += 1;
        }
    }
    assert!(seen >= 6, "{seen} examples");
}

#[test]
fn the_messages_the_server_builds_are_described() {
    let complete = JobRecord {
        job_status: JobStatus::Complete,
        progress_rate: 100,
        duration_ms: Some(1000),
        output_path: Some("out/".into()),
        playlists: Some([(".m3u8".to_owned(), "a.m3u8".to_owned())].into()),
        ..JobRecord::submitted("1700000000000-abcdef")
    };
    let error = JobRecord {
        job_status: JobStatus::Error,
        error_code: Some(1010),
        error_message: Some("x".repeat(10_000)),
        ..JobRecord::submitted("1700000000001-abcdef")
    };
    for message in [
        ServerMessage::Subscribed { topic: Topic::File("a.mp4".into()) },
        ServerMessage::Unsubscribed { topic: Topic::File("a.mp4".into()) },
        ServerMessage::Subscribed { topic: Topic::Prefix("uploads/u1/".into()) },
        ServerMessage::Unsubscribed { topic: Topic::Prefix("uploads/u1/".into()) },
        ServerMessage::Pong,
        ServerMessage::error("missing \"input_file\" or \"prefix\""),
        ServerMessage::Error { message: "\"token\" has expired".into(), topic: Some(Topic::File("a.mp4".into())) },
        ServerMessage::status("a.mp4", &complete),
        ServerMessage::status("b.mp4", &error),
    ] {
        assert_server_message(&serde_json::from_str(&message.to_json()).unwrap());
    }
    let updates: Vec<String> = [("a.mp4", &complete), ("b.mp4", &error)]
        .iter()
        .map(|(f, r)| serde_json::to_string(&StatusUpdate::new(f, r, None)).unwrap())
        .collect();
    for (message, _) in statuses_messages(&updates, MAX_MESSAGE_BYTES) {
        assert_server_message(&serde_json::from_str(&message).unwrap());
    }
}

#[test]
fn messages_that_break_the_protocol_are_refused() {
    // a status without its progress, with an unknown status, with progress over 100
    assert!(refused(
        assert_server_message,
        json!({"type": "status", "input_file": "a", "job_id": "j", "job_status": "COMPLETE"})
    ));
    assert!(refused(
        assert_server_message,
        json!({"type": "status", "input_file": "a", "job_id": "j", "job_status": "DONE", "progress_rate": 1})
    ));
    assert!(refused(
        assert_server_message,
        json!({"type": "status", "input_file": "a", "job_id": "j", "job_status": "PROGRESSING", "progress_rate": 101})
    ));
    // an unknown type, an empty batch, a confirmation with an extra field
    assert!(refused(assert_server_message, json!({"type": "hello"})));
    assert!(refused(assert_server_message, json!({"type": "statuses", "updates": []})));
    assert!(refused(assert_server_message, json!({"type": "subscribed", "input_file": "a", "extra": 1})));
    // a subscribe without a file, with an empty one, with a control character, a batch that is not a boolean
    assert!(refused(assert_client_message, json!({"action": "subscribe"})));
    assert!(refused(assert_client_message, json!({"action": "subscribe", "input_file": ""})));
    assert!(refused(assert_client_message, json!({"action": "subscribe", "input_file": "a\u{7}b"})));
    assert!(refused(assert_client_message, json!({"action": "subscribe", "input_file": "a", "batch": "yes"})));
    // a file that is a folder, a prefix that is not one, both at once, a confirmation naming both
    assert!(refused(assert_client_message, json!({"action": "subscribe", "input_file": "a/"})));
    assert!(refused(assert_client_message, json!({"action": "subscribe", "prefix": "a"})));
    assert!(refused(assert_client_message, json!({"action": "subscribe", "prefix": "a/", "input_file": "a/b.mp4"})));
    assert!(refused(assert_client_message, json!({"action": "unsubscribe", "prefix": ""})));
    assert!(refused(assert_server_message, json!({"type": "subscribed", "prefix": "a/", "input_file": "a/b.mp4"})));
    assert!(refused(assert_client_message, json!({"action": "dance"})));
}

/// The names between `{` and `}` of `export interface NAME` (or the members of a union type) in
/// the client package's declarations.
fn declared(what: &str) -> Vec<String> {
    let text = std::fs::read_to_string(workspace().join("clients/js/mcpush-client.d.ts")).unwrap();
    if let Some(rest) = text.split(&format!("export interface {what} {{")).nth(1) {
        let body = rest.split("\n}").next().unwrap_or_default();
        let mut fields: Vec<String> = body
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with("/*") && !l.starts_with('*') && !l.is_empty())
            .filter_map(|l| l.split(['?', ':']).next())
            .map(str::to_owned)
            .collect();
        fields.sort();
        return fields;
    }
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("export type {what} =")))
        .unwrap_or_else(|| panic!("no {what} in mcpush-client.d.ts"));
    let mut members: Vec<String> = line
        .split('=')
        .nth(1)
        .unwrap_or_default()
        .split('|')
        .map(|m| m.trim().trim_end_matches(';').trim_matches('\'').to_owned())
        .collect();
    members.sort();
    members
}

#[test]
fn the_client_packages_types_name_what_the_protocol_names() {
    let text = std::fs::read_to_string(workspace().join("docs/asyncapi.yaml")).unwrap();
    let document: Value = serde_norway::from_str(&text).unwrap();
    let state = &document["components"]["schemas"]["JobState"];
    // (`type` is the `status` message's tag: the declarations put it on `ServerMessage`)
    let mut fields: Vec<String> =
        state["properties"].as_object().unwrap().keys().filter(|k| *k != "type").cloned().collect();
    fields.sort();
    assert_eq!(
        declared("Status"),
        fields,
        "Status in clients/js/mcpush-client.d.ts and JobState in docs/asyncapi.yaml"
    );
    assert_eq!(state["additionalProperties"], false, "JobState must refuse undocumented fields");
    let enum_of = |name: &str| {
        let mut values: Vec<String> = state["properties"][name]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        values.sort();
        values
    };
    assert_eq!(declared("JobStatus"), enum_of("job_status"));
    assert_eq!(declared("Phase"), enum_of("current_phase"));
}
