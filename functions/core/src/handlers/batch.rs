//! The lenient envelope of record-batch events (S3 notifications, DynamoDB streams): `Records`
//! is taken as raw JSON and each record is typed on its own, so one malformed record is reported
//! and skipped instead of failing the whole batch.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Why an event is not a batch at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BatchError {
    #[error("the event must be a JSON object with a \"Records\" array")]
    NotAnObject,
    #[error("\"Records\" must be an array")]
    RecordsNotArray,
}

/// `{"Records": [...]}`; a missing `Records` is an empty batch.
#[derive(Clone, Copy, Debug)]
pub struct RecordBatch<'a> {
    records: &'a [Value],
}

impl<'a> RecordBatch<'a> {
    pub fn parse(event: &'a Value) -> Result<Self, BatchError> {
        let object = event.as_object().ok_or(BatchError::NotAnObject)?;
        match object.get("Records") {
            None | Some(Value::Null) => Ok(Self { records: &[] }),
            Some(Value::Array(records)) => Ok(Self { records }),
            Some(_) => Err(BatchError::RecordsNotArray),
        }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Each record with its index, typed as `T`; a record that does not fit says where.
    pub fn typed<T: DeserializeOwned>(&self) -> impl Iterator<Item = (usize, Result<T, String>)> + 'a {
        self.records
            .iter()
            .enumerate()
            .map(|(index, raw)| (index, serde_path_to_error::deserialize(raw).map_err(|e| e.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Item {
        n: u8,
    }

    #[test]
    fn each_record_is_typed_on_its_own() {
        let event = json!({"Records": [{"n": 1}, {"n": "two"}, {"n": 3}]});
        let batch = RecordBatch::parse(&event).unwrap();
        let typed: Vec<_> = batch.typed::<Item>().collect();
        assert_eq!(typed.len(), 3);
        assert_eq!(typed[0], (0, Ok(Item { n: 1 })));
        assert!(typed[1].1.as_ref().is_err_and(|e| e.starts_with("n: invalid type")), "{:?}", typed[1]);
        assert_eq!(typed[2], (2, Ok(Item { n: 3 })));
    }

    #[test]
    fn the_envelope_itself_must_be_a_batch() {
        assert_eq!(RecordBatch::parse(&json!({})).map(|b| b.len()), Ok(0));
        assert_eq!(RecordBatch::parse(&json!([1])).map(|b| b.len()), Err(BatchError::NotAnObject));
        assert_eq!(RecordBatch::parse(&json!({"Records": 7})).map(|b| b.len()), Err(BatchError::RecordsNotArray));
    }
}
