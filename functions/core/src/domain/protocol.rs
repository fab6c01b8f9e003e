//! The WebSocket protocol: client messages (route selection on `action`) and server messages.

use serde::Serialize;
use serde_json::Value;

use crate::domain::StatusView;

/// Longest accepted `input_file`, in UTF-8 bytes (an S3 key's limit).
pub const MAX_INPUT_FILE_BYTES: usize = 1024;

/// A valid message from a browser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientMessage {
    Subscribe { input_file: String, token: Option<String> },
    Unsubscribe { input_file: String },
    Ping,
}

/// Why a client message is refused; `Display` is the text sent back in the `error` message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("message is not valid JSON: {0}")]
    NotJson(String),
    #[error("message must be a JSON object")]
    NotObject,
    #[error("missing \"action\" (expected subscribe, unsubscribe or ping)")]
    MissingAction,
    #[error("unknown action {0:?} (expected subscribe, unsubscribe or ping)")]
    UnknownAction(String),
    #[error("missing \"input_file\"")]
    MissingInputFile,
    #[error("\"input_file\" must be a string")]
    InputFileNotString,
    #[error("\"input_file\" is empty")]
    EmptyInputFile,
    #[error("\"input_file\" is longer than {MAX_INPUT_FILE_BYTES} bytes")]
    InputFileTooLong,
    #[error("\"input_file\" contains a control character")]
    ControlCharacter,
    #[error("\"token\" must be a string")]
    TokenNotString,
}

impl ClientMessage {
    /// Parses a text frame's body.
    pub fn parse(body: &str) -> Result<Self, ProtocolError> {
        let value: Value = serde_json::from_str(body).map_err(|e| ProtocolError::NotJson(e.to_string()))?;
        let object = value.as_object().ok_or(ProtocolError::NotObject)?;
        let action = match object.get("action") {
            Some(Value::String(action)) => action.as_str(),
            Some(other) => return Err(ProtocolError::UnknownAction(other.to_string())),
            None => return Err(ProtocolError::MissingAction),
        };
        match action {
            "ping" => Ok(Self::Ping),
            "subscribe" => {
                let token = match object.get("token") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(t)) => Some(t.clone()),
                    Some(_) => return Err(ProtocolError::TokenNotString),
                };
                Ok(Self::Subscribe { input_file: input_file(object)?, token })
            }
            "unsubscribe" => Ok(Self::Unsubscribe { input_file: input_file(object)? }),
            other => Err(ProtocolError::UnknownAction(other.to_owned())),
        }
    }
}

fn input_file(object: &serde_json::Map<String, Value>) -> Result<String, ProtocolError> {
    let file = match object.get("input_file") {
        None | Some(Value::Null) => return Err(ProtocolError::MissingInputFile),
        Some(Value::String(file)) => file,
        Some(_) => return Err(ProtocolError::InputFileNotString),
    };
    validate_input_file(file)?;
    Ok(file.clone())
}

/// Non-empty, at most 1,024 bytes of UTF-8, no control characters.
pub fn validate_input_file(file: &str) -> Result<(), ProtocolError> {
    if file.is_empty() {
        Err(ProtocolError::EmptyInputFile)
    } else if file.len() > MAX_INPUT_FILE_BYTES {
        Err(ProtocolError::InputFileTooLong)
    } else if file.chars().any(char::is_control) {
        Err(ProtocolError::ControlCharacter)
    } else {
        Ok(())
    }
}

/// A message from the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Subscribed { input_file: String },
    Unsubscribed { input_file: String },
    Pong,
    Error { message: String },
    Status {
        input_file: String,
        job_id: String,
        #[serde(flatten)]
        view: StatusView,
    },
}

impl ServerMessage {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| r#"{"type":"error","message":"internal error"}"#.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_messages_parse() {
        assert_eq!(ClientMessage::parse(r#"{"action":"ping"}"#), Ok(ClientMessage::Ping));
        assert_eq!(
            ClientMessage::parse(r#"{"action":"subscribe","input_file":"Big Buck Bunny.mp4"}"#),
            Ok(ClientMessage::Subscribe { input_file: "Big Buck Bunny.mp4".into(), token: None })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"action":"unsubscribe","input_file":"動画.mp4"}"#),
            Ok(ClientMessage::Unsubscribe { input_file: "動画.mp4".into() })
        );
    }

    #[test]
    fn every_malformed_message_names_its_fault() {
        let long = format!(r#"{{"action":"subscribe","input_file":"{}"}}"#, "あ".repeat(342));
        let cases: [(&str, ProtocolError); 10] = [
            ("{", ProtocolError::NotJson("EOF while parsing an object at line 1 column 1".into())),
            ("[1]", ProtocolError::NotObject),
            (r#"{"input_file":"a"}"#, ProtocolError::MissingAction),
            (r#"{"action":"dance"}"#, ProtocolError::UnknownAction("dance".into())),
            (r#"{"action":"subscribe"}"#, ProtocolError::MissingInputFile),
            (r#"{"action":"subscribe","input_file":7}"#, ProtocolError::InputFileNotString),
            (r#"{"action":"unsubscribe","input_file":""}"#, ProtocolError::EmptyInputFile),
            (&long, ProtocolError::InputFileTooLong),
            (r#"{"action":"subscribe","input_file":"a\u0007b"}"#, ProtocolError::ControlCharacter),
            (r#"{"action":"subscribe","input_file":"a","token":1}"#, ProtocolError::TokenNotString),
        ];
        for (body, expected) in cases {
            assert_eq!(ClientMessage::parse(body), Err(expected), "{body}");
        }
        let exactly_1024 = format!(r#"{{"action":"subscribe","input_file":"{}"}}"#, "a".repeat(1024));
        assert!(ClientMessage::parse(&exactly_1024).is_ok());
    }

    #[test]
    fn server_messages_are_tagged_by_type() {
        assert_eq!(ServerMessage::Pong.to_json(), r#"{"type":"pong"}"#);
        assert_eq!(
            ServerMessage::Subscribed { input_file: "a.mp4".into() }.to_json(),
            r#"{"type":"subscribed","input_file":"a.mp4"}"#
        );
    }
}
