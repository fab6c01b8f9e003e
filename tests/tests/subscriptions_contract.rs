//! The subscription store contract, run against the DynamoDB adapter on moto and the in-memory
//! one, so the two cannot drift.

use mcpush_core::adapters::memory::MemorySubscriptionStore;
use mcpush_core::ports::{SubscribeOutcome, SubscriptionStore, Watcher};
use mcpush_tests::fresh_subscriptions;

const LATER: u64 = 4_000_000_000;

async fn contract(store: &dyn SubscriptionStore) {
    // GIVEN two connections
    store.add_connection("L0SM9cOFvHcCIhw=", LATER).await.unwrap();
    store.add_connection("BFHPhfCWIAMCKlQ=", LATER).await.unwrap();
    // WHEN both subscribe to one file and one of them to another
    assert_eq!(store.subscribe("L0SM9cOFvHcCIhw=", "a.mp4", LATER, 2, false).await.unwrap(), SubscribeOutcome::Added);
    assert_eq!(store.subscribe("BFHPhfCWIAMCKlQ=", "a.mp4", LATER, 2, false).await.unwrap(), SubscribeOutcome::Added);
    assert_eq!(store.subscribe("L0SM9cOFvHcCIhw=", "動画 #2.mov", LATER, 2, false).await.unwrap(), SubscribeOutcome::Added);
    // THEN both lookups answer, and the cap holds
    let mut subscribers = store.subscribers("a.mp4", 0).await.unwrap();
    subscribers.sort();
    assert_eq!(subscribers, ["BFHPhfCWIAMCKlQ=", "L0SM9cOFvHcCIhw="]);
    let mut files = store.subscriptions("L0SM9cOFvHcCIhw=").await.unwrap();
    files.sort();
    assert_eq!(files, ["a.mp4", "動画 #2.mov"]);
    assert_eq!(store.subscribe("L0SM9cOFvHcCIhw=", "a.mp4", LATER, 2, false).await.unwrap(), SubscribeOutcome::AlreadySubscribed);
    assert_eq!(store.subscribe("L0SM9cOFvHcCIhw=", "c.mp4", LATER, 2, false).await.unwrap(), SubscribeOutcome::LimitReached);
    // expired entries are not subscribers, even before TTL deletes them
    assert_eq!(store.subscribe("BFHPhfCWIAMCKlQ=", "old.mp4", 1_000, 2, false).await.unwrap(), SubscribeOutcome::Added);
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

/// `"batch": true` is remembered per subscription, reported by `watchers`, and a second subscribe
/// changes it without counting twice against the limit.
async fn batch_contract(store: &dyn SubscriptionStore) {
    let watcher = |id: &str, batch| Watcher { connection_id: id.into(), batch };
    // GIVEN one connection subscribed batched and one plainly, with a limit of one file each
    assert_eq!(store.subscribe("L0SM9cOFvHcCIhw=", "a.mp4", LATER, 1, true).await.unwrap(), SubscribeOutcome::Added);
    assert_eq!(store.subscribe("BFHPhfCWIAMCKlQ=", "a.mp4", LATER, 1, false).await.unwrap(), SubscribeOutcome::Added);
    // THEN the watchers say which is which
    let mut watchers = store.watchers("a.mp4", 0).await.unwrap();
    watchers.sort();
    assert_eq!(watchers, [watcher("BFHPhfCWIAMCKlQ=", false), watcher("L0SM9cOFvHcCIhw=", true)]);
    // WHEN each subscribes again with the other mode (at its limit)
    assert_eq!(store.subscribe("L0SM9cOFvHcCIhw=", "a.mp4", LATER, 1, false).await.unwrap(), SubscribeOutcome::AlreadySubscribed);
    assert_eq!(store.subscribe("BFHPhfCWIAMCKlQ=", "a.mp4", LATER, 1, true).await.unwrap(), SubscribeOutcome::AlreadySubscribed);
    // THEN the modes flipped, and nothing else changed
    let mut watchers = store.watchers("a.mp4", 0).await.unwrap();
    watchers.sort();
    assert_eq!(watchers, [watcher("BFHPhfCWIAMCKlQ=", true), watcher("L0SM9cOFvHcCIhw=", false)]);
    assert_eq!(store.subscriptions("L0SM9cOFvHcCIhw=").await.unwrap(), ["a.mp4"]);
    assert!(store.watchers("a.mp4", LATER).await.unwrap().is_empty(), "expired entries are not watchers");
}

#[tokio::test]
async fn dynamodb_subscriptions_remember_batch() {
    batch_contract(&fresh_subscriptions("subs").await).await;
}

#[tokio::test]
async fn memory_subscriptions_remember_batch() {
    batch_contract(&MemorySubscriptionStore::default()).await;
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
        store.subscribe("L0SM9cOFvHcCIhw=", &format!("file-{i:02}.mp4"), LATER, 100, false).await.unwrap();
    }
    assert_eq!(store.remove_connection("L0SM9cOFvHcCIhw=").await.unwrap(), 60);
    assert!(store.subscriptions("L0SM9cOFvHcCIhw=").await.unwrap().is_empty());
}
