//! The DynamoDB meter: a proxy on loopback between the stack's SDK clients and a DynamoDB API on
//! loopback (moto, DynamoDB Local) that bills each call's request units into [`Billing`] as
//! on-demand DynamoDB computes them (moto's own `ConsumedCapacity` is a constant):
//!
//! - writes (PutItem, UpdateItem, DeleteItem, BatchWriteItem): 1 WRU per started KB of the larger
//!   of the item before and after, at least 1, a failed condition included (then the existing
//!   item's size); the images come from a strongly consistent GetItem the meter makes before and
//!   after the call (not billed; two writes racing on one item may see each other's image).
//!   Each global secondary index the write touches bills its
//!   projected item: a put or a delete when the item enters or leaves the index, both when an
//!   index key changes, one write when only projected attributes change, none otherwise;
//! - reads (GetItem, BatchGetItem, Query, Scan): per started 4 KB, of each item for GetItem and
//!   BatchGetItem, of the items returned together for Query and Scan (items a filter drops are
//!   not seen, and not counted), at least one unit; 0.5 RRU eventually consistent, 1 strongly.
//!
//! Table and index names are `table` and `table/index/NAME`. DynamoDB Streams calls (free for
//! Lambda triggers) and operations the stack does not make are passed through unbilled. Item
//! sizes follow DynamoDB's rules ([`item_size`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::billing::Billing;

const WRITE_UNIT: u64 = 1024;
const READ_UNIT: u64 = 4096;
const TARGET_PREFIX: &str = "DynamoDB_20120810.";

/// The bytes DynamoDB counts for an item (`{"name": {"S": "…"}, …}` in its JSON wire format):
/// each attribute's name (UTF-8) and value.
pub fn item_size(item: &Map<String, Value>) -> u64 {
    item.iter().map(|(name, value)| name.len() as u64 + value_size(value)).sum()
}

/// A value's size: strings and binaries by their bytes, a number 1 byte per two significant
/// digits plus 1, booleans and nulls 1 byte, sets their elements, lists and maps 3 bytes plus
/// 1 byte and the size of each element (and, for maps, each key).
pub fn value_size(value: &Value) -> u64 {
    let Some((kind, inner)) = value.as_object().and_then(|o| o.iter().next()) else { return 0 };
    let number = |n: &str| {
        let digits: String = n.chars().filter(char::is_ascii_digit).collect();
        let significant = digits.trim_start_matches('0').trim_end_matches('0').len().max(1) as u64;
        significant.div_ceil(2) + 1
    };
    let binary = |b: &str| base64::engine::general_purpose::STANDARD.decode(b).map_or(b.len(), |d| d.len()) as u64;
    let strings: Vec<&str> = inner.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    match kind.as_str() {
        "S" => inner.as_str().map_or(0, |s| s.len() as u64),
        "N" => inner.as_str().map_or(0, number),
        "B" => inner.as_str().map_or(0, binary),
        "BOOL" | "NULL" => 1,
        "SS" => strings.iter().map(|s| s.len() as u64).sum(),
        "NS" => strings.iter().map(|s| number(s)).sum(),
        "BS" => strings.iter().map(|s| binary(s)).sum(),
        "L" => 3 + inner.as_array().map_or(0, |l| l.iter().map(|v| 1 + value_size(v)).sum()),
        "M" => 3 + inner.as_object().map_or(0, |m| m.iter().map(|(k, v)| 1 + k.len() as u64 + value_size(v)).sum()),
        _ => 0,
    }
}

fn units(bytes: u64, unit: u64) -> u64 {
    bytes.div_ceil(unit).max(1)
}

/// A global secondary index: its key attributes and what it projects.
#[derive(Clone, Debug)]
pub struct Index {
    pub name: String,
    pub keys: Vec<String>,
    /// `None`: every attribute (ALL); otherwise the non-key attributes projected (none for
    /// KEYS_ONLY).
    pub projected: Option<Vec<String>>,
}

/// What the meter needs of a table: its key attributes and indexes.
#[derive(Clone, Debug)]
pub struct Schema {
    pub keys: Vec<String>,
    pub indexes: Vec<Index>,
}

impl Schema {
    fn from_description(table: &Value) -> Self {
        let keys = |schema: &Value| -> Vec<String> {
            schema
                .as_array()
                .map(|k| k.iter().filter_map(|e| e["AttributeName"].as_str().map(str::to_owned)).collect())
                .unwrap_or_default()
        };
        let indexes = table["GlobalSecondaryIndexes"]
            .as_array()
            .map(|indexes| {
                indexes
                    .iter()
                    .map(|index| Index {
                        name: index["IndexName"].as_str().unwrap_or_default().to_owned(),
                        keys: keys(&index["KeySchema"]),
                        projected: match index["Projection"]["ProjectionType"].as_str() {
                            Some("ALL") => None,
                            Some("INCLUDE") => Some(
                                index["Projection"]["NonKeyAttributes"]
                                    .as_array()
                                    .map(|a| a.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect())
                                    .unwrap_or_default(),
                            ),
                            _ => Some(Vec::new()),
                        },
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self { keys: keys(&table["KeySchema"]), indexes }
    }

    /// The item's primary key.
    fn key_of(&self, item: &Map<String, Value>) -> Map<String, Value> {
        self.keys.iter().filter_map(|k| item.get(k).map(|v| (k.clone(), v.clone()))).collect()
    }

    /// The item as `index` holds it, `None` when it lacks the index's keys (not in the index).
    fn projection(&self, index: &Index, item: &Map<String, Value>) -> Option<Map<String, Value>> {
        if !index.keys.iter().all(|k| item.contains_key(k)) {
            return None;
        }
        Some(
            item.iter()
                .filter(|(name, _)| {
                    self.keys.contains(name)
                        || index.keys.contains(name)
                        || index.projected.as_ref().is_none_or(|p| p.contains(name))
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }

    /// The write units of a write that turned `before` into `after` (`None`: no item), for the
    /// table and each index it touched.
    pub fn write_units(
        &self,
        before: Option<&Map<String, Value>>,
        after: Option<&Map<String, Value>>,
        succeeded: bool,
    ) -> Vec<(Option<&str>, u64)> {
        let size = |item: Option<&Map<String, Value>>| item.map_or(0, item_size);
        let mut billed = vec![(None, units(size(before).max(size(after)), WRITE_UNIT))];
        if !succeeded {
            return billed;
        }
        for index in &self.indexes {
            let old = before.and_then(|item| self.projection(index, item));
            let new = after.and_then(|item| self.projection(index, item));
            let key = |item: &Map<String, Value>| index.keys.iter().map(|k| item.get(k).cloned()).collect::<Vec<_>>();
            let n = match (&old, &new) {
                (None, None) => 0,
                (Some(o), None) => units(item_size(o), WRITE_UNIT),
                (None, Some(n)) => units(item_size(n), WRITE_UNIT),
                (Some(o), Some(n)) if key(o) != key(n) => {
                    units(item_size(o), WRITE_UNIT) + units(item_size(n), WRITE_UNIT)
                }
                (Some(o), Some(n)) if o != n => units(item_size(o).max(item_size(n)), WRITE_UNIT),
                _ => 0,
            };
            if n > 0 {
                billed.push((Some(index.name.as_str()), n));
            }
        }
        billed
    }
}

/// Read units for `bytes` read at once.
pub fn read_units(bytes: u64, consistent: bool) -> f64 {
    units(bytes, READ_UNIT) as f64 * if consistent { 1.0 } else { 0.5 }
}

/// The meter in front of `upstream`.
pub struct DynamoDbMeter {
    upstream: String,
    client: reqwest::Client,
    billing: Arc<Billing>,
    schemas: Mutex<HashMap<String, Arc<Schema>>>,
}

/// What a call answered.
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// A refused condition (still billed, as DynamoDB bills it).
    fn condition_failed(&self) -> bool {
        self.status == StatusCode::BAD_REQUEST
            && self.json()["__type"].as_str().is_some_and(|t| t.ends_with("ConditionalCheckFailedException"))
    }
}

impl DynamoDbMeter {
    /// Starts the meter on 127.0.0.1 in front of `upstream`; answers its URL.
    pub async fn start(upstream: &str, billing: Arc<Billing>) -> std::io::Result<String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let meter = Arc::new(Self {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
            billing,
            schemas: Mutex::new(HashMap::new()),
        });
        let router = axum::Router::new().fallback(proxy).with_state(meter);
        tokio::spawn(async move { axum::serve(listener, router).await });
        Ok(url)
    }

    /// Sends a request upstream with the caller's headers (its signature and target among them).
    async fn forward(&self, headers: &HeaderMap, body: Bytes) -> Result<Answer, reqwest::Error> {
        let mut request = self.client.post(&self.upstream).body(body);
        for (name, value) in headers {
            if name != axum::http::header::HOST && name != axum::http::header::CONTENT_LENGTH {
                request = request.header(name, value);
            }
        }
        let response = request.send().await?;
        let (status, headers) = (response.status(), response.headers().clone());
        Ok(Answer { status, headers, body: response.bytes().await? })
    }

    /// DynamoDB's `target` operation with the caller's headers (the meter's own calls).
    async fn call(&self, target: &str, headers: &HeaderMap, body: Bytes) -> Result<Answer, reqwest::Error> {
        let mut headers = headers.clone();
        if let Ok(value) = HeaderValue::from_str(&format!("{TARGET_PREFIX}{target}")) {
            headers.insert("x-amz-target", value);
        }
        self.forward(&headers, body).await
    }

    /// The meter's own call (not billed), signed as the request it meters.
    async fn own(&self, target: &str, headers: &HeaderMap, body: Value) -> Value {
        match self.call(target, headers, Bytes::from(body.to_string())).await {
            Ok(answer) if answer.status.is_success() => answer.json(),
            _ => Value::Null,
        }
    }

    async fn schema(&self, table: &str, headers: &HeaderMap) -> Arc<Schema> {
        if let Some(schema) = self.schemas.lock().ok().and_then(|s| s.get(table).cloned()) {
            return schema;
        }
        let described = self.own("DescribeTable", headers, json!({"TableName": table})).await;
        let schema = Arc::new(Schema::from_description(&described["Table"]));
        if let Ok(mut schemas) = self.schemas.lock() {
            schemas.insert(table.to_owned(), schema.clone());
        }
        schema
    }

    async fn image(&self, table: &str, key: &Map<String, Value>, headers: &HeaderMap) -> Option<Map<String, Value>> {
        let answer =
            self.own("GetItem", headers, json!({"TableName": table, "Key": key, "ConsistentRead": true})).await;
        answer["Item"].as_object().cloned()
    }

    fn bill_writes(&self, table: &str, billed: Vec<(Option<&str>, u64)>) {
        for (index, units) in billed {
            let name = index.map_or_else(|| table.to_owned(), |i| format!("{table}/index/{i}"));
            self.billing.dynamodb(&name, units as f64, 0.0);
        }
    }

    fn bill_read(&self, table: &str, index: Option<&str>, read: f64) {
        let name = index.map_or_else(|| table.to_owned(), |i| format!("{table}/index/{i}"));
        self.billing.dynamodb(&name, 0.0, read);
    }

    /// Forwards one call, billing it.
    async fn metered(&self, operation: &str, headers: &HeaderMap, body: Bytes) -> Result<Answer, reqwest::Error> {
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let table = request["TableName"].as_str().unwrap_or_default().to_owned();
        match operation {
            "PutItem" | "UpdateItem" | "DeleteItem" => {
                let schema = self.schema(&table, headers).await;
                let key = match request["Key"].as_object() {
                    Some(key) => key.clone(),
                    None => schema.key_of(request["Item"].as_object().unwrap_or(&Map::new())),
                };
                let before = self.image(&table, &key, headers).await;
                let answer = self.forward(headers, body).await?;
                let failed = answer.condition_failed();
                if answer.status.is_success() || failed {
                    let after = match (operation, failed) {
                        (_, true) => before.clone(),
                        ("PutItem", _) => request["Item"].as_object().cloned(),
                        ("DeleteItem", _) => None,
                        _ => self.image(&table, &key, headers).await,
                    };
                    self.bill_writes(&table, schema.write_units(before.as_ref(), after.as_ref(), !failed));
                }
                Ok(answer)
            }
            "BatchWriteItem" => {
                let mut writes = Vec::new();
                for (table, requests) in request["RequestItems"].as_object().cloned().unwrap_or_default() {
                    let schema = self.schema(&table, headers).await;
                    for write in requests.as_array().cloned().unwrap_or_default() {
                        let (key, after) = match (
                            write["PutRequest"]["Item"].as_object(),
                            write["DeleteRequest"]["Key"].as_object(),
                        ) {
                            (Some(item), _) => (schema.key_of(item), Some(item.clone())),
                            (None, Some(key)) => (key.clone(), None),
                            _ => continue,
                        };
                        let before = self.image(&table, &key, headers).await;
                        writes.push((table.clone(), schema.clone(), write, before, after));
                    }
                }
                let answer = self.forward(headers, body).await?;
                if answer.status.is_success() {
                    let unprocessed = answer.json()["UnprocessedItems"].clone();
                    for (table, schema, write, before, after) in writes {
                        let left = unprocessed[&table].as_array().is_some_and(|l| l.contains(&write));
                        if !left {
                            self.bill_writes(&table, schema.write_units(before.as_ref(), after.as_ref(), true));
                        }
                    }
                }
                Ok(answer)
            }
            "GetItem" => {
                let answer = self.forward(headers, body).await?;
                if answer.status.is_success() {
                    let size = answer.json()["Item"].as_object().map_or(0, item_size);
                    self.bill_read(&table, None, read_units(size, request["ConsistentRead"] == true));
                }
                Ok(answer)
            }
            "BatchGetItem" => {
                let answer = self.forward(headers, body).await?;
                if answer.status.is_success() {
                    let answered = answer.json();
                    for (table, asked) in request["RequestItems"].as_object().cloned().unwrap_or_default() {
                        let consistent = asked["ConsistentRead"] == true;
                        let found = answered["Responses"][&table].as_array().cloned().unwrap_or_default();
                        let unprocessed = answered["UnprocessedKeys"][&table]["Keys"].as_array().map_or(0, Vec::len);
                        let requested = asked["Keys"].as_array().map_or(0, Vec::len).saturating_sub(unprocessed);
                        let mut read: f64 =
                            found.iter().map(|i| read_units(i.as_object().map_or(0, item_size), consistent)).sum();
                        read += requested.saturating_sub(found.len()) as f64 * read_units(0, consistent);
                        self.bill_read(&table, None, read);
                    }
                }
                Ok(answer)
            }
            "Query" | "Scan" => {
                let answer = self.forward(headers, body).await?;
                if answer.status.is_success() {
                    let items = answer.json()["Items"].as_array().cloned().unwrap_or_default();
                    let size = items.iter().map(|i| i.as_object().map_or(0, item_size)).sum();
                    let read = read_units(size, request["ConsistentRead"] == true);
                    self.bill_read(&table, request["IndexName"].as_str(), read);
                }
                Ok(answer)
            }
            "CreateTable" | "DeleteTable" | "UpdateTable" => {
                if let Ok(mut schemas) = self.schemas.lock() {
                    schemas.remove(&table);
                }
                self.forward(headers, body).await
            }
            _ => self.forward(headers, body).await,
        }
    }
}

async fn proxy(State(meter): State<Arc<DynamoDbMeter>>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers.get("x-amz-target").and_then(|t| t.to_str().ok()).unwrap_or_default().to_owned();
    let answer = match target.strip_prefix(TARGET_PREFIX) {
        Some(operation) => meter.metered(operation, &headers, body).await,
        // DynamoDB Streams and anything else: passed through, unbilled.
        None => meter.forward(&headers, body).await,
    };
    match answer {
        Ok(answer) => {
            let mut response = (answer.status, answer.body).into_response();
            for (name, value) in &answer.headers {
                if name != reqwest::header::CONTENT_LENGTH
                    && name != reqwest::header::TRANSFER_ENCODING
                    && let Ok(value) = HeaderValue::from_bytes(value.as_bytes())
                {
                    response.headers_mut().insert(name.clone(), value);
                }
            }
            response
        }
        Err(e) => (StatusCode::BAD_GATEWAY, format!("the DynamoDB meter could not reach {}: {e}", meter.upstream))
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn sizes_follow_dynamodbs_rules() {
        // names and strings by UTF-8 bytes; numbers 1 byte per two significant digits plus 1
        assert_eq!(item_size(&item(json!({"id": {"S": "abc"}}))), 5);
        assert_eq!(item_size(&item(json!({"é": {"S": "ü"}}))), 4);
        assert_eq!(item_size(&item(json!({"n": {"N": "12345"}}))), 1 + 4);
        assert_eq!(item_size(&item(json!({"n": {"N": "1000"}}))), 1 + 2);
        assert_eq!(item_size(&item(json!({"n": {"N": "-0.00123"}}))), 1 + 3);
        // binaries by their decoded bytes, booleans and nulls 1 byte
        assert_eq!(
            item_size(&item(json!({"b": {"B": "AAECAw=="}, "t": {"BOOL": true}, "z": {"NULL": true}}))),
            1 + 4 + 2 + 2
        );
        // lists and maps: 3 bytes, plus 1 and the element (and key) each
        assert_eq!(item_size(&item(json!({"l": {"L": []}}))), 1 + 3);
        assert_eq!(item_size(&item(json!({"l": {"L": [{"S": "ab"}, {"N": "1"}]}}))), 1 + 3 + (1 + 2) + (1 + 2));
        assert_eq!(item_size(&item(json!({"m": {"M": {"k": {"S": "v"}}}}))), 1 + 3 + 1 + 1 + 1);
        assert_eq!(item_size(&item(json!({"ss": {"SS": ["a", "bc"]}}))), 2 + 3);
    }

    fn subscriptions() -> Schema {
        Schema {
            keys: vec!["connection_id".into(), "topic".into()],
            indexes: vec![Index { name: "by_file".into(), keys: vec!["input_file".into()], projected: Some(vec![]) }],
        }
    }

    #[test]
    fn writes_bill_started_kilobytes_of_the_larger_image_and_the_indexes_they_touch() {
        let schema = subscriptions();
        let padding = |n: usize| "x".repeat(n);
        // 1 KB exactly: 1 unit; one byte more: 2
        let base = item(json!({"connection_id": {"S": "c"}, "topic": {"S": "t"}}));
        let fill = 1024 - item_size(&base) as usize - 1;
        let mut kb = base.clone();
        kb.insert("p".into(), json!({"S": padding(fill)}));
        assert_eq!(item_size(&kb), 1024);
        assert_eq!(schema.write_units(None, Some(&kb), true), vec![(None, 1)]);
        let mut over = base.clone();
        over.insert("p".into(), json!({"S": padding(fill + 1)}));
        assert_eq!(schema.write_units(None, Some(&over), true), vec![(None, 2)]);
        // an update to a smaller item bills the larger; a delete its item; a failed condition the
        // existing item and no index
        assert_eq!(schema.write_units(Some(&over), Some(&base), true), vec![(None, 2)]);
        assert_eq!(schema.write_units(Some(&over), None, true), vec![(None, 2)]);
        assert_eq!(schema.write_units(Some(&over), Some(&over), false), vec![(None, 2)]);
        // the index: entering, unchanged, its key changed (delete + put), leaving
        let mut indexed = base.clone();
        indexed.insert("input_file".into(), json!({"S": "a.mp4"}));
        assert_eq!(schema.write_units(Some(&base), Some(&indexed), true), vec![(None, 1), (Some("by_file"), 1)]);
        let mut touched = indexed.clone();
        touched.insert("expires_at".into(), json!({"N": "1700000000"}));
        assert_eq!(schema.write_units(Some(&indexed), Some(&touched), true), vec![(None, 1)], "not projected");
        let mut moved = indexed.clone();
        moved.insert("input_file".into(), json!({"S": "b.mp4"}));
        assert_eq!(schema.write_units(Some(&indexed), Some(&moved), true), vec![(None, 1), (Some("by_file"), 2)]);
        assert_eq!(schema.write_units(Some(&moved), None, true), vec![(None, 1), (Some("by_file"), 1)]);
    }

    #[test]
    fn reads_bill_started_4_kb_halved_when_eventually_consistent() {
        assert_eq!(read_units(0, false), 0.5);
        assert_eq!(read_units(4096, true), 1.0);
        assert_eq!(read_units(4097, true), 2.0);
        assert_eq!(read_units(9000, false), 1.5);
    }
}
