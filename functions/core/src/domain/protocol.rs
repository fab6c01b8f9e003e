//! The WebSocket protocol: client messages (route selection on `action`) and server messages.

use serde::Serialize;
use serde_json::Value;

use crate::domain::topic::{self, MAX_FOLDER_DEPTH, Topic};
use crate::domain::{JobRecord, OutputBaseUrl, StatusView};

/// Longest accepted `input_file`, in UTF-8 bytes (an S3 key's limit).
pub const MAX_INPUT_FILE_BYTES: usize = 1024;

/// Longest `error_message` a pushed `status` message carries, in UTF-8 bytes. A longer text is cut
/// at a character boundary and ends with [`CUT_MARKER`]; the stored item and `GET /media/status`
/// keep the whole text. Every other field is bounded too (an input file or an S3 path is at most
/// 1,024 bytes, a job has a few playlists), so a status message stays far below API Gateway's
/// 128 KB limit and is never refused as too large.
pub const MAX_PUSHED_ERROR_MESSAGE_BYTES: usize = 4096;
/// What ends a cut `error_message`.
pub const CUT_MARKER: &str = " [...cut; GET /media/status has the whole message]";

/// A valid message from a browser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientMessage {
    /// `batch`: the connection takes this topic's updates in `statuses` messages, one per push.
    Subscribe {
        topic: Topic,
        token: Option<String>,
        batch: bool,
    },
    Unsubscribe {
        topic: Topic,
    },
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
    #[error("missing \"input_file\" or \"prefix\"")]
    MissingTopic,
    #[error("give \"input_file\" or \"prefix\", not both")]
    BothTopics,
    #[error("\"{0}\" must be a string")]
    NotString(&'static str),
    #[error("\"{0}\" is empty")]
    Empty(&'static str),
    #[error("\"{0}\" is longer than {MAX_INPUT_FILE_BYTES} bytes")]
    TooLong(&'static str),
    #[error("\"{0}\" contains a control character")]
    ControlCharacter(&'static str),
    #[error("\"input_file\" ends with \"/\": that is a folder, subscribe to it with \"prefix\"")]
    FileIsFolder,
    #[error("\"prefix\" must end with \"/\": it names a folder")]
    PrefixNotFolder,
    #[error("\"prefix\" is deeper than {MAX_FOLDER_DEPTH} folders")]
    PrefixTooDeep,
    #[error("\"token\" must be a string")]
    TokenNotString,
    #[error("\"batch\" must be true or false")]
    BatchNotBool,
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
                let batch = match object.get("batch") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(batch)) => *batch,
                    Some(_) => return Err(ProtocolError::BatchNotBool),
                };
                Ok(Self::Subscribe { topic: topic(object)?, token, batch })
            }
            "unsubscribe" => Ok(Self::Unsubscribe { topic: topic(object)? }),
            other => Err(ProtocolError::UnknownAction(other.to_owned())),
        }
    }
}

/// A JSON object's `input_file` or `prefix` (one of them), validated: a subscription's, and
/// a token renewal's (`POST /media/tokens`).
pub fn topic(object: &serde_json::Map<String, Value>) -> Result<Topic, ProtocolError> {
    let field = |name: &'static str| match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(ProtocolError::NotString(name)),
    };
    match (field("input_file")?, field("prefix")?) {
        (Some(file), None) => {
            validate_input_file(&file)?;
            if file.ends_with('/') {
                return Err(ProtocolError::FileIsFolder);
            }
            Ok(Topic::File(file))
        }
        (None, Some(prefix)) => {
            validate_prefix(&prefix)?;
            Ok(Topic::Prefix(prefix))
        }
        (None, None) => Err(ProtocolError::MissingTopic),
        (Some(_), Some(_)) => Err(ProtocolError::BothTopics),
    }
}

/// Non-empty, at most 1,024 bytes of UTF-8, no control characters.
pub fn validate_input_file(file: &str) -> Result<(), ProtocolError> {
    validate_text("input_file", file)
}

/// As an input file, and a folder: it ends with `/` and is at most [`MAX_FOLDER_DEPTH`] deep.
pub fn validate_prefix(prefix: &str) -> Result<(), ProtocolError> {
    validate_text("prefix", prefix)?;
    if !prefix.ends_with('/') {
        Err(ProtocolError::PrefixNotFolder)
    } else if topic::depth(prefix) > MAX_FOLDER_DEPTH {
        Err(ProtocolError::PrefixTooDeep)
    } else {
        Ok(())
    }
}

fn validate_text(field: &'static str, text: &str) -> Result<(), ProtocolError> {
    if text.is_empty() {
        Err(ProtocolError::Empty(field))
    } else if text.len() > MAX_INPUT_FILE_BYTES {
        Err(ProtocolError::TooLong(field))
    } else if text.chars().any(char::is_control) {
        Err(ProtocolError::ControlCharacter(field))
    } else {
        Ok(())
    }
}

/// One file's job state, as a `status` message or an element of a `statuses` message's `updates`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusUpdate {
    pub input_file: String,
    pub job_id: String,
    #[serde(flatten)]
    pub view: StatusView,
}

impl StatusUpdate {
    /// The record's [`StatusView`] (its outputs' URLs under `base`), with `error_message` cut to
    /// [`MAX_PUSHED_ERROR_MESSAGE_BYTES`], and within [`MAX_UPDATE_BYTES`]: a job with more
    /// outputs and thumbnails than fit keeps the first ones and says `outputs_truncated`.
    pub fn new(input_file: &str, record: &JobRecord, base: Option<&OutputBaseUrl>) -> Self {
        let mut view = StatusView::from(record).linked(base);
        view.error_message = view.error_message.map(|message| cut(message, MAX_PUSHED_ERROR_MESSAGE_BYTES));
        let mut update = Self { input_file: input_file.to_owned(), job_id: record.job_id.clone(), view };
        update.fit(MAX_UPDATE_BYTES);
        update
    }

    /// Drops the last thumbnails and outputs until the update's JSON is at most `max_bytes`. Only
    /// a COMPLETE status with outputs can be that long, so only that one is measured: the push
    /// serializes every other update once, as before.
    fn fit(&mut self, max_bytes: usize) {
        if self.view.outputs.is_none() && self.view.thumbnails.is_none() {
            return;
        }
        let size = |u: &Self| serde_json::to_string(u).map_or(usize::MAX, |s| s.len());
        let mut over = size(self).saturating_sub(max_bytes);
        while over > 0 {
            let view = &mut self.view;
            let dropped = match (view.thumbnails.as_mut().and_then(Vec::pop), view.outputs.as_mut()) {
                (Some(path), _) => {
                    let url = view.thumbnail_urls.as_mut().and_then(Vec::pop);
                    path.len() + url.map_or(0, |u| u.len() + 3) + 3
                }
                (None, Some(outputs)) if !outputs.is_empty() => {
                    outputs.pop().and_then(|o| serde_json::to_string(&o).ok()).map_or(1, |o| o.len() + 1)
                }
                _ => break,
            };
            view.outputs_truncated = Some(true);
            over = over.saturating_sub(dropped.max(1));
            if over == 0 {
                over = size(self).saturating_sub(max_bytes);
            }
        }
    }
}

/// The most one update may take in a message: a `status` (or a `statuses` with this one
/// update) stays under API Gateway's 128 KB ([`MAX_MESSAGE_BYTES`]).
pub const MAX_UPDATE_BYTES: usize = MAX_MESSAGE_BYTES - 64;

/// A message from the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// `"input_file": …` or `"prefix": …`, as subscribed.
    Subscribed {
        #[serde(flatten)]
        topic: Topic,
    },
    Unsubscribed {
        #[serde(flatten)]
        topic: Topic,
    },
    Pong,
    Error {
        message: String,
        /// The subscription refused (a token that does not cover it, the subscription limit), so
        /// a client knows which of its watches to act on; absent for other errors.
        #[serde(flatten, skip_serializing_if = "Option::is_none")]
        topic: Option<Topic>,
    },
    Status(Box<StatusUpdate>),
    /// A batched connection's updates of one push.
    Statuses {
        updates: Vec<StatusUpdate>,
    },
}

impl ServerMessage {
    /// The `status` message of a file's job.
    pub fn status(input_file: &str, record: &JobRecord) -> Self {
        Self::Status(Box::new(StatusUpdate::new(input_file, record, None)))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| r#"{"type":"error","message":"internal error"}"#.to_owned())
    }

    /// An `error` about no subscription in particular.
    pub fn error(message: impl Into<String>) -> Self {
        Self::Error { message: message.into(), topic: None }
    }
}

/// `{"type":"statuses","updates":[` … `]}` around updates already serialized.
const STATUSES_HEAD: &str = r#"{"type":"statuses","updates":["#;
const STATUSES_TAIL: &str = "]}";

/// `statuses` messages carrying every update once, in order, each message at most `max_bytes`
/// (API Gateway's 128 KB: [`MAX_MESSAGE_BYTES`]), with how many updates each holds. Every update
/// fits alone (a `status` message is far below the limit), so each message holds at least one.
pub fn statuses_messages(updates: &[String], max_bytes: usize) -> Vec<(String, usize)> {
    let mut messages = Vec::new();
    let (mut current, mut count) = (String::from(STATUSES_HEAD), 0);
    for update in updates {
        if count > 0 && current.len() + 1 + update.len() + STATUSES_TAIL.len() > max_bytes {
            current.push_str(STATUSES_TAIL);
            messages.push((std::mem::replace(&mut current, String::from(STATUSES_HEAD)), count));
            count = 0;
        }
        if count > 0 {
            current.push(',');
        }
        current.push_str(update);
        count += 1;
    }
    if count > 0 {
        current.push_str(STATUSES_TAIL);
        messages.push((current, count));
    }
    messages
}

/// Largest message API Gateway posts to a connection (128 KB).
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;

/// `text` if it fits in `max` bytes, else its longest prefix that fits with [`CUT_MARKER`] after it.
fn cut(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max.saturating_sub(CUT_MARKER.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(CUT_MARKER);
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::JobStatus;

    #[test]
    fn a_status_message_always_fits_and_says_when_it_was_cut() {
        // GIVEN an ERROR whose message is 200 KB of multi-byte characters
        let whole = "失".repeat(70_000);
        let record = JobRecord {
            job_status: JobStatus::Error,
            progress_rate: 100,
            error_message: Some(whole.clone()),
            ..JobRecord::submitted("1-x")
        };

        // WHEN it becomes a status message
        let json = ServerMessage::status("f.mp4", &record).to_json();

        // THEN the message is far below 128 KB, and its error_message is a prefix plus the marker
        assert!(json.len() < 8 * 1024, "{} bytes", json.len());
        let message: serde_json::Value = serde_json::from_str(&json).unwrap();
        let pushed = message["error_message"].as_str().unwrap();
        assert!(pushed.len() <= MAX_PUSHED_ERROR_MESSAGE_BYTES);
        let kept = pushed.strip_suffix(CUT_MARKER).expect("ends with the marker");
        assert!(!kept.is_empty() && whole.starts_with(kept));

        // AND a message that fits is not touched
        let short = JobRecord { error_message: Some("Failed probe".into()), ..record };
        let json = ServerMessage::status("f.mp4", &short).to_json();
        assert!(json.contains(r#""error_message":"Failed probe""#), "{json}");
    }

    #[test]
    fn valid_messages_parse() {
        assert_eq!(ClientMessage::parse(r#"{"action":"ping"}"#), Ok(ClientMessage::Ping));
        assert_eq!(
            ClientMessage::parse(r#"{"action":"subscribe","input_file":"Big Buck Bunny.mp4"}"#),
            Ok(ClientMessage::Subscribe { topic: Topic::File("Big Buck Bunny.mp4".into()), token: None, batch: false })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"action":"unsubscribe","input_file":"動画.mp4"}"#),
            Ok(ClientMessage::Unsubscribe { topic: Topic::File("動画.mp4".into()) })
        );
    }

    #[test]
    fn every_malformed_message_names_its_fault() {
        let long = format!(r#"{{"action":"subscribe","input_file":"{}"}}"#, "あ".repeat(342));
        let deep = format!(r#"{{"action":"subscribe","prefix":"{}"}}"#, "d/".repeat(MAX_FOLDER_DEPTH + 1));
        let cases: [(&str, ProtocolError); 18] = [
            ("{", ProtocolError::NotJson("EOF while parsing an object at line 1 column 1".into())),
            ("[1]", ProtocolError::NotObject),
            (r#"{"input_file":"a"}"#, ProtocolError::MissingAction),
            (r#"{"action":"dance"}"#, ProtocolError::UnknownAction("dance".into())),
            (r#"{"action":"subscribe"}"#, ProtocolError::MissingTopic),
            (r#"{"action":"subscribe","input_file":7}"#, ProtocolError::NotString("input_file")),
            (r#"{"action":"unsubscribe","input_file":""}"#, ProtocolError::Empty("input_file")),
            (&long, ProtocolError::TooLong("input_file")),
            (r#"{"action":"subscribe","input_file":"a\u0007b"}"#, ProtocolError::ControlCharacter("input_file")),
            (r#"{"action":"subscribe","input_file":"a","token":1}"#, ProtocolError::TokenNotString),
            (r#"{"action":"subscribe","input_file":"a","batch":"yes"}"#, ProtocolError::BatchNotBool),
            (r#"{"action":"subscribe","input_file":"uploads/"}"#, ProtocolError::FileIsFolder),
            (r#"{"action":"subscribe","input_file":"a.mp4","prefix":"a/"}"#, ProtocolError::BothTopics),
            (r#"{"action":"subscribe","prefix":"uploads"}"#, ProtocolError::PrefixNotFolder),
            (r#"{"action":"unsubscribe","prefix":""}"#, ProtocolError::Empty("prefix")),
            (r#"{"action":"subscribe","prefix":["a/"]}"#, ProtocolError::NotString("prefix")),
            (r#"{"action":"subscribe","prefix":"a\u0000/"}"#, ProtocolError::ControlCharacter("prefix")),
            (&deep, ProtocolError::PrefixTooDeep),
        ];
        for (body, expected) in cases {
            assert_eq!(ClientMessage::parse(body), Err(expected), "{body}");
        }
        let exactly_1024 = format!(r#"{{"action":"subscribe","input_file":"{}"}}"#, "a".repeat(1024));
        assert!(ClientMessage::parse(&exactly_1024).is_ok());
        let deepest = format!(r#"{{"action":"subscribe","prefix":"{}"}}"#, "d/".repeat(MAX_FOLDER_DEPTH));
        assert!(ClientMessage::parse(&deepest).is_ok());
    }

    #[test]
    fn a_prefix_names_a_folder() {
        assert_eq!(
            ClientMessage::parse(r#"{"action":"subscribe","prefix":"uploads/u1/","batch":true,"token":"t"}"#),
            Ok(ClientMessage::Subscribe {
                topic: Topic::Prefix("uploads/u1/".into()),
                token: Some("t".into()),
                batch: true
            })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"action":"unsubscribe","prefix":"uploads/u1/","input_file":null}"#),
            Ok(ClientMessage::Unsubscribe { topic: Topic::Prefix("uploads/u1/".into()) })
        );
        assert_eq!(
            ServerMessage::Subscribed { topic: Topic::Prefix("uploads/u1/".into()) }.to_json(),
            r#"{"type":"subscribed","prefix":"uploads/u1/"}"#
        );
    }

    #[test]
    fn batch_is_opt_in() {
        assert_eq!(
            ClientMessage::parse(r#"{"action":"subscribe","input_file":"a.mp4","batch":true}"#),
            Ok(ClientMessage::Subscribe { topic: Topic::File("a.mp4".into()), token: None, batch: true })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"action":"subscribe","input_file":"a.mp4","batch":null}"#),
            Ok(ClientMessage::Subscribe { topic: Topic::File("a.mp4".into()), token: None, batch: false })
        );
    }

    #[test]
    fn a_job_with_more_outputs_than_a_message_holds_keeps_the_first_and_says_so() {
        // GIVEN a COMPLETE job with 3,000 outputs and 1,000 thumbnails (far over 128 KB)
        use crate::domain::{JobStatus, OutputFile};
        let outputs: Vec<OutputFile> = (0..3000)
            .map(|i| OutputFile {
                kind: Some("FILE_GROUP".into()),
                path: Some(format!("s3://out/renditions/clip_{i:05}.mp4")),
                width_px: Some(1920),
                height_px: Some(1080),
                ..OutputFile::default()
            })
            .collect();
        let thumbnails: Vec<String> = (0..1000).map(|i| format!("s3://out/thumbs/clip.{i:07}.jpg")).collect();
        let record = JobRecord {
            job_id: "1700000000000-manyyy".into(),
            job_status: JobStatus::Complete,
            progress_rate: 100,
            outputs: Some(outputs.clone()),
            thumbnails: Some(thumbnails),
            ..JobRecord::default()
        };
        let base = OutputBaseUrl::parse("https://d111111abcdef8.cloudfront.net").unwrap();
        // WHEN it is pushed, with URLs
        let update = StatusUpdate::new("clip.mp4", &record, Some(&base));
        let json = serde_json::to_string(&ServerMessage::Status(Box::new(update.clone()))).unwrap();
        // THEN the message fits API Gateway's frame, keeps the first outputs in order, says it cut
        assert!(json.len() <= MAX_MESSAGE_BYTES, "{} bytes", json.len());
        let kept = update.view.outputs.clone().unwrap();
        assert!(!kept.is_empty() && kept.len() < outputs.len(), "{}", kept.len());
        assert!(kept.iter().zip(&outputs).all(|(k, o)| k.path == o.path));
        assert_eq!(kept[0].url.as_deref(), Some("https://d111111abcdef8.cloudfront.net/renditions/clip_00000.mp4"));
        assert_eq!(update.view.outputs_truncated, Some(true));
        assert_eq!(update.view.thumbnails.map(|t| t.len()), update.view.thumbnail_urls.map(|t| t.len()));
        // AND a job whose outputs fit is shown whole, without the flag
        let small = JobRecord { outputs: Some(outputs[..3].to_vec()), thumbnails: None, ..record };
        let whole = StatusUpdate::new("clip.mp4", &small, None);
        assert_eq!((whole.view.outputs.map(|o| o.len()), whole.view.outputs_truncated), (Some(3), None));
    }

    #[test]
    fn output_urls_are_the_base_and_the_encoded_key() {
        let base = OutputBaseUrl::parse("https://media.example.com/vod/").unwrap();
        assert_eq!(
            base.url_of("s3://bucket/outputs/Big Buck Bunny.mp4/a+b#1.m3u8").as_deref(),
            Some("https://media.example.com/vod/outputs/Big%20Buck%20Bunny.mp4/a%2Bb%231.m3u8")
        );
        assert_eq!(base.url_of("not-s3"), None);
        assert!(OutputBaseUrl::parse("http://cdn.example.com").is_err(), "plain http only on loopback");
        assert!(OutputBaseUrl::parse("https://cdn.example.com/?x=1").is_err());
        assert!(OutputBaseUrl::parse("http://127.0.0.1:3000/s3/out").is_ok());
        assert!(OutputBaseUrl::parse("http://127.0.0.1.evil.example/").is_err(), "loopback by host, not by prefix");
    }

    #[test]
    fn statuses_are_split_below_128_kb_with_every_update_once_in_order() {
        // GIVEN 100 updates of about 4.2 KB each (420 KB in all), each an ERROR with a cut message
        let updates: Vec<String> = (0..100)
            .map(|i| {
                let record = JobRecord {
                    job_status: JobStatus::Error,
                    error_message: Some("x".repeat(10_000)),
                    ..JobRecord::submitted(&format!("1700000000000-{i:06}"))
                };
                serde_json::to_string(&StatusUpdate::new(&format!("file-{i}.mp4"), &record, None)).unwrap()
            })
            .collect();

        // WHEN they become statuses messages
        let messages = statuses_messages(&updates, MAX_MESSAGE_BYTES);

        // THEN each message is valid JSON of at most 128 KB, and together they carry every update
        // once, in order; all but the last are full (the next update would not have fitted)
        assert_eq!(messages.len(), 4);
        let mut carried = Vec::new();
        for (k, (message, count)) in messages.iter().enumerate() {
            assert!(message.len() <= MAX_MESSAGE_BYTES, "{} bytes", message.len());
            let value: serde_json::Value = serde_json::from_str(message).unwrap();
            assert_eq!(value["type"], "statuses");
            let these = value["updates"].as_array().unwrap();
            assert_eq!(these.len(), *count);
            if k + 1 < messages.len() {
                assert!(message.len() + updates[carried.len() + these.len()].len() + 1 > MAX_MESSAGE_BYTES);
            }
            carried.extend(these.iter().map(|u| u["job_id"].as_str().unwrap().to_owned()));
        }
        let expected: Vec<String> = (0..100).map(|i| format!("1700000000000-{i:06}")).collect();
        assert_eq!(carried, expected);
        // AND no updates, no message; one update, one message
        assert!(statuses_messages(&[], MAX_MESSAGE_BYTES).is_empty());
        assert_eq!(
            statuses_messages(&updates[..1], MAX_MESSAGE_BYTES),
            [(format!(r#"{{"type":"statuses","updates":[{}]}}"#, updates[0]), 1)]
        );
    }

    #[test]
    fn server_messages_are_tagged_by_type() {
        assert_eq!(ServerMessage::Pong.to_json(), r#"{"type":"pong"}"#);
        assert_eq!(
            ServerMessage::Subscribed { topic: Topic::File("a.mp4".into()) }.to_json(),
            r#"{"type":"subscribed","input_file":"a.mp4"}"#
        );
    }
}
