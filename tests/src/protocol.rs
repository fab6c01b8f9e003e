//! The WebSocket protocol's schemas (`docs/asyncapi.yaml`) as checks for the tests. Shared by
//! source with the local stack's tests (`local/tests/common/mod.rs` includes this file), so both
//! test suites check the messages they exchange against the same document.

use serde_json::Value;

/// The message schemas of `docs/asyncapi.yaml`: `ClientMessage` and `ServerMessage`, each with
/// the document's `components` beside it so that its `$ref`s resolve.
struct Protocol {
    client: jsonschema::Validator,
    server: jsonschema::Validator,
}

fn protocol() -> &'static Protocol {
    static PROTOCOL: std::sync::OnceLock<Protocol> = std::sync::OnceLock::new();
    PROTOCOL.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/asyncapi.yaml");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let document: Value = serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let validator = |name: &str| {
            let schema = serde_json::json!({"components": document["components"], "$ref": format!("#/components/schemas/{name}")});
            jsonschema::options().with_draft(jsonschema::Draft::Draft7).build(&schema).unwrap_or_else(|e| panic!("docs/asyncapi.yaml's {name}: {e}"))
        };
        Protocol { client: validator("ClientMessage"), server: validator("ServerMessage") }
    })
}

/// Panics unless `message` is a `ServerMessage` of `docs/asyncapi.yaml`.
pub fn assert_server_message(message: &Value) {
    let errors: Vec<String> =
        protocol().server.iter_errors(message).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(
        errors.is_empty(),
        "the server sent a message docs/asyncapi.yaml does not describe: {message}\n{}",
        errors.join("\n")
    );
}

/// Panics unless `message` is a `ClientMessage` of `docs/asyncapi.yaml`.
pub fn assert_client_message(message: &Value) {
    let errors: Vec<String> =
        protocol().client.iter_errors(message).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(
        errors.is_empty(),
        "a message the server accepted is not one docs/asyncapi.yaml describes: {message}\n{}",
        errors.join("\n")
    );
}

/// Panics unless `event` is a `Job Status Changed` event as `docs/events/job-status-changed.schema.json`
/// describes it (the envelope EventBridge delivers, the detail in full).
pub fn assert_job_event(event: &Value) {
    static SCHEMA: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    let validator = SCHEMA.get_or_init(|| {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/events/job-status-changed.schema.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let schema: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    });
    let errors: Vec<String> = validator.iter_errors(event).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(
        errors.is_empty(),
        "an event docs/events/job-status-changed.schema.json does not describe: {event}\n{}",
        errors.join("\n")
    );
}
