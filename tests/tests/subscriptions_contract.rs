//! The subscription store contract, run against the DynamoDB adapter on moto and the in-memory
//! one, so the two cannot drift.

use mcpush_core::adapters::memory::MemorySubscriptionStore;
use mcpush_core::ports::{SubscribeOutcome, SubscriptionStore};
use mcpush_tests::fresh_subscriptions;

const LATER: u64 = 4_000_000_000;

async fn contract(store: &dyn SubscriptionStore) {
    // GIVEN two connections
    store.add_connection("L0SM9cOFvHcCIhw=", LATER).await.unwrap();
    store.add_connection("BFHPhfCWIAMCKlQ=", LATER).await.unwrap();
    // WHEN both subscribe to one file and one of them to another
    assert_eq!(store.subscribe("L0SM9cOFvHcCIhw=", "a.mp4", LATER, 2).await.unwrap(), SubscribeOutcome::Added);
    assert_eq!(store.subscribe("BFHPhfCWIAMCKlQ=", "a.mp4", LATER, 2).await.unwrap(), SubscribeOutcome::Added);
    assert_eq!(store.subscribe("L0SM9cOFvHcCIhw=", "動画 #2.mov", LATER, 2).await.unwrap(), SubscribeOutcome::Added);
    // THEN both lookups answer, and the cap holds
    let mut subscribers = store.subscribers("a.mp4", 0).await.unwrap();
    subscribers.sort();
    assert_eq!(subscribers, ["BFHPhfCWIAMCKlQ=", "L0SM9cOFvHcCIhw="]);
    let mut files = store.subscriptions("L0SM9cOFvHcCIhw=").await.unwrap();
    files.sort();
    assert_eq!(files, ["a.mp4", "動画 #2.mov"]);
    assert_eq!(store.subscribe("L0SM9cOFvHcCIhw=", "a.mp4", LATER, 2).await.unwrap(), SubscribeOutcome::AlreadySubscribed);
    assert_eq!(store.subscribe("L0SM9cOFvHcCIhw=", "c.mp4", LATER, 2).await.unwrap(), SubscribeOutcome::LimitReached);
    // expired entries are not subscribers, even before TTL deletes them
    assert_eq!(store.subscribe("BFHPhfCWIAMCKlQ=", "old.mp4", 1_000, 2).await.unwrap(), SubscribeOutcome::Added);
    assert!(store.subscribers("old.mp4", 2_000).await.unwrap().is_empty());
    assert_eq!(store.subscribers("old.mp4", 500).await.unwrap(), ["BFHPhfCWIAMCKlQ="]);
    // unsubscribe and disconnect
    assert!(store.unsubscribe("BFHPhfCWIAMCKlQ=", "a.mp4").await.unwrap());
    assert!(!store.unsubscribe("BFHPhfCWIAMCKlQ=", "a.mp4").await.unwrap());
    assert_eq!(store.remove_connection("L0SM9cOFvHcCIhw=").await.unwrap(), 2);
    assert!(store.subscribers("a.mp4", 0).await.unwrap().is_empty());
    assert!(store.subscriptions("L0SM9cOFvHcCIhw=").await.unwrap().is_empty());
    assert_eq!(store.remove_connection("never-connected=").await.unwrap(), 0);
}

#[tokio::test]
async fn dynamodb_subscriptions_honour_the_contract() {
    contract(&fresh_subscriptions("subs").await).await;
}

#[tokio::test]
async fn memory_subscriptions_honour_the_contract() {
    contract(&MemorySubscriptionStore::default()).await;
}

#[tokio::test]
async fn removing_a_connection_with_many_subscriptions_batches_its_deletes() {
    let store = fresh_subscriptions("subs").await;
    for i in 0..60 {
        store.subscribe("L0SM9cOFvHcCIhw=", &format!("file-{i:02}.mp4"), LATER, 100).await.unwrap();
    }
    assert_eq!(store.remove_connection("L0SM9cOFvHcCIhw=").await.unwrap(), 60);
    assert!(store.subscriptions("L0SM9cOFvHcCIhw=").await.unwrap().is_empty());
}
