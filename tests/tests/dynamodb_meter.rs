//! The DynamoDB meter (`mcpush_local::aws::dynamodb_meter`) in front of moto: each call of the
//! real SDK client billed the request units DynamoDB's rules give for items of known sizes, the
//! table's index included, and the calls pass through unchanged.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use mcpush_local::aws::billing::Billing;
use mcpush_local::aws::dynamodb_meter::DynamoDbMeter;
use mcpush_tests::moto;

fn client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// An item of `bytes` bytes as DynamoDB counts them: `pk` (2 + its value), `owner` when given,
/// and a padding string `p` (1 + its length).
fn item(pk: &str, owner: Option<&str>, bytes: usize) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([("pk".to_owned(), AttributeValue::S(pk.to_owned()))]);
    let mut used = 2 + pk.len();
    if let Some(owner) = owner {
        item.insert("owner".into(), AttributeValue::S(owner.to_owned()));
        used += 5 + owner.len();
    }
    item.insert("p".into(), AttributeValue::S("x".repeat(bytes - used - 1)));
    item
}

#[tokio::test]
async fn each_call_bills_the_units_dynamodbs_rules_give() {
    // GIVEN the meter in front of moto, and a table keyed by `pk` with a keys-only index on `owner`
    let billing = Arc::new(Billing::default());
    let meter = DynamoDbMeter::start(&moto().endpoint, billing.clone()).await.unwrap();
    let db = client(&meter);
    let table = format!("metered-{}", std::process::id());
    let attribute = |name: &str| {
        AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build().unwrap()
    };
    let hash = |name: &str| KeySchemaElement::builder().attribute_name(name).key_type(KeyType::Hash).build().unwrap();
    db.create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("owner"))
        .key_schema(hash("pk"))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by_owner")
                .key_schema(hash("owner"))
                .projection(Projection::builder().projection_type(ProjectionType::KeysOnly).build())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let index = format!("{table}/index/by_owner");
    let units = |name: &str| {
        let counts = billing.snapshot();
        (counts.dynamodb_wru.get(name).copied().unwrap_or(0.0), counts.dynamodb_rru.get(name).copied().unwrap_or(0.0))
    };

    // WHEN an item of exactly 1 KB is put, THEN 1 WRU, no index (no owner)
    db.put_item().table_name(&table).set_item(Some(item("a", None, 1024))).send().await.unwrap();
    assert_eq!(units(&table), (1.0, 0.0));
    // WHEN one byte over 1 KB, with an owner, THEN 2 WRU and the index's projected keys 1
    db.put_item().table_name(&table).set_item(Some(item("b", Some("ann"), 1025))).send().await.unwrap();
    assert_eq!((units(&table), units(&index)), ((3.0, 0.0), (1.0, 0.0)));
    // WHEN b shrinks to 100 bytes (keys unchanged) THEN the larger image bills: 2, the index nothing
    db.put_item().table_name(&table).set_item(Some(item("b", Some("ann"), 100))).send().await.unwrap();
    assert_eq!((units(&table), units(&index)), ((5.0, 0.0), (1.0, 0.0)));
    // WHEN a conditional put finds b THEN the refused write bills b's size: 1
    let refused = db
        .put_item()
        .table_name(&table)
        .set_item(Some(item("b", None, 3000)))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await;
    assert!(refused.is_err());
    assert_eq!((units(&table), units(&index)), ((6.0, 0.0), (1.0, 0.0)));
    // WHEN b's owner changes THEN the index deletes and puts: 2
    db.update_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("b".into()))
        .update_expression("SET #o = :o")
        .expression_attribute_names("#o", "owner")
        .expression_attribute_values(":o", AttributeValue::S("bob".into()))
        .send()
        .await
        .unwrap();
    assert_eq!((units(&table), units(&index)), ((7.0, 0.0), (3.0, 0.0)));
    // WHEN a 5,000-byte item is read strongly, eventually, and a missing one
    db.put_item().table_name(&table).set_item(Some(item("c", None, 5000))).send().await.unwrap();
    assert_eq!(units(&table), (12.0, 0.0));
    let key = |pk: &str| AttributeValue::S(pk.to_owned());
    db.get_item().table_name(&table).key("pk", key("c")).consistent_read(true).send().await.unwrap();
    db.get_item().table_name(&table).key("pk", key("c")).send().await.unwrap();
    db.get_item().table_name(&table).key("pk", key("nobody")).send().await.unwrap();
    // THEN 2 (two started 4 KB), 1 (halved), 0.5 (the least a read bills)
    assert_eq!(units(&table), (12.0, 3.5));
    // WHEN the index is queried for bob (eventually) THEN 0.5 on the index
    let found = db
        .query()
        .table_name(&table)
        .index_name("by_owner")
        .key_condition_expression("#o = :o")
        .expression_attribute_names("#o", "owner")
        .expression_attribute_values(":o", AttributeValue::S("bob".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(found.count, 1, "the call passed through unchanged");
    assert_eq!(units(&index), (3.0, 0.5));
    // WHEN b is deleted THEN its size (100 bytes: 1) and its index entry (1)
    db.delete_item().table_name(&table).key("pk", key("b")).send().await.unwrap();
    assert_eq!((units(&table), units(&index)), ((13.0, 3.5), (4.0, 0.5)));
}

#[tokio::test]
async fn a_running_jobs_progress_reports_write_its_status_item_and_nothing_else() {
    // GIVEN the job store behind the meter, and a job whose PROGRESSING event was ingested
    let billing = Arc::new(Billing::default());
    let meter = DynamoDbMeter::start(&moto().endpoint, billing.clone()).await.unwrap();
    let tables = mcpush_tests::unique_tables("reports");
    let db = client(&meter);
    mcpush_core::adapters::dynamodb::ensure_tables(&db, &tables).await.unwrap();
    let store = mcpush_core::adapters::dynamodb::DynamoJobStore::new(db, tables.clone());
    let event = |status: &str, percent: Option<u8>, at: u64| {
        let mut event = mcpush_tests::fixture("eventbridge/hls-3-status-update-25.json");
        event["detail"]["status"] = serde_json::json!(status);
        event["detail"]["timestamp"] = serde_json::json!(at);
        event["detail"]["jobProgress"]["jobPercentComplete"] = serde_json::json!(percent);
        event
    };
    let ingest = |event: serde_json::Value| {
        let store = &store;
        async move { mcpush_core::handlers::progress_ingest::handle(store, &event, 1).await.unwrap() }
    };
    let t0 = 1_700_000_000_000;
    assert!(ingest(event("PROGRESSING", None, t0)).await.pointer_moved);
    let wru = |name: &str| billing.snapshot().dynamodb_wru.get(name).copied().unwrap_or(0.0);
    let index = format!("{}/index/UnfinishedByConfirmedAt", tables.status);
    let (pointer_before, index_before, status_before) = (wru(&tables.job_id), wru(&index), wru(&tables.status));
    assert!(index_before > 0.0, "the running job entered the reconciler's index");

    // WHEN five progress reports of it arrive within the minute
    for (n, percent) in [10u8, 20, 30, 40, 50].into_iter().enumerate() {
        let outcome = ingest(event("STATUS_UPDATE", Some(percent), t0 + 10_000 * (n as u64 + 1))).await;
        assert!(outcome.changed && !outcome.pointer_moved);
    }

    // THEN each wrote the status item, and neither the file's pointer (a refused conditional
    // write would bill 1 WRU each) nor the index item (its sort key kept: 2 WRU each)
    assert!(wru(&tables.status) >= status_before + 5.0);
    assert_eq!(wru(&tables.job_id), pointer_before, "no pointer write");
    assert_eq!(wru(&index), index_before, "no index rewrite");
    let read = billing.snapshot().dynamodb_rru.get(&tables.job_id).copied().unwrap_or(0.0);
    assert_eq!(read, 2.5, "one eventually consistent pointer read per report");
}
