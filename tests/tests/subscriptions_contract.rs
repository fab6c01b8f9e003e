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
    assert_eq!(
        store.subscribe("L0SM9cOFvHcCIhw=", "動画 #2.mov", LATER, 2, false).await.unwrap(),
        SubscribeOutcome::Added
    );
    // THEN both lookups answer, and the cap holds
    let mut subscribers = store.subscribers("a.mp4", 0).await.unwrap();
    subscribers.sort();
    assert_eq!(subscribers, ["BFHPhfCWIAMCKlQ=", "L0SM9cOFvHcCIhw="]);
    let mut files = store.subscriptions("L0SM9cOFvHcCIhw=").await.unwrap();
    files.sort();
    assert_eq!(files, ["a.mp4", "動画 #2.mov"]);
    assert_eq!(
        store.subscribe("L0SM9cOFvHcCIhw=", "a.mp4", LATER, 2, false).await.unwrap(),
        SubscribeOutcome::AlreadySubscribed
    );
    assert_eq!(
        store.subscribe("L0SM9cOFvHcCIhw=", "c.mp4", LATER, 2, false).await.unwrap(),
        SubscribeOutcome::LimitReached
    );
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
    assert_eq!(
        store.subscribe("L0SM9cOFvHcCIhw=", "a.mp4", LATER, 1, false).await.unwrap(),
        SubscribeOutcome::AlreadySubscribed
    );
    assert_eq!(
        store.subscribe("BFHPhfCWIAMCKlQ=", "a.mp4", LATER, 1, true).await.unwrap(),
        SubscribeOutcome::AlreadySubscribed
    );
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

/// Prefixes are topics like files: they count against the same limit, have their own watchers
/// and are unsubscribed by name; the folder index lists each file once, the newest job first,
/// up to a limit, forgets expired entries and stays out of every connection's subscriptions.
async fn prefix_contract(store: &dyn SubscriptionStore) {
    use mcpush_core::ports::FolderEntry;
    let (dashboard, viewer) = ("L0SM9cOFvHcCIhw=", "BFHPhfCWIAMCKlQ=");
    // GIVEN a dashboard watching a folder (batched) and a file, at its limit of two
    assert_eq!(store.subscribe(dashboard, "uploads/u1/", LATER, 2, true).await.unwrap(), SubscribeOutcome::Added);
    assert_eq!(store.subscribe(dashboard, "uploads/u1/a.mp4", LATER, 2, false).await.unwrap(), SubscribeOutcome::Added);
    assert_eq!(store.subscribe(viewer, "uploads/u1/a.mp4", LATER, 2, false).await.unwrap(), SubscribeOutcome::Added);
    // THEN a third topic, file or prefix, is refused; the folder's and the file's watchers differ
    assert_eq!(
        store.subscribe(dashboard, "uploads/u2/", LATER, 2, false).await.unwrap(),
        SubscribeOutcome::LimitReached
    );
    assert_eq!(
        store.watchers("uploads/u1/", 0).await.unwrap(),
        [Watcher { connection_id: dashboard.into(), batch: true }]
    );
    assert_eq!(store.subscribers("uploads/u1/a.mp4", 0).await.unwrap().len(), 2);
    assert!(store.watchers("uploads/", 0).await.unwrap().is_empty(), "a parent folder is another topic");

    // WHEN jobs are listed under their folders: a.mp4 twice (an older and a newer job), b.mp4
    // deeper down, c.mp4 expired, and one in another folder
    let entry = |folder: &str, file: &str, order: u64, expires_at: u64| FolderEntry {
        folder: folder.into(),
        input_file: file.into(),
        job_id: format!("{order}-job"),
        job_order: order,
        expires_at,
    };
    store
        .index_files(&[
            entry("uploads/u1/", "uploads/u1/a.mp4", 1_700_000_000_001, LATER),
            entry("uploads/u1/", "uploads/u1/deep/b.mp4", 1_700_000_000_002, LATER),
            entry("uploads/u1/", "uploads/u1/a.mp4", 1_700_000_000_003, LATER),
            entry("uploads/u1/", "uploads/u1/c.mp4", 1_700_000_000_004, 1_000),
            entry("uploads/u2/", "uploads/u2/d.mp4", 1_700_000_000_005, LATER),
        ])
        .await
        .unwrap();
    // THEN the folder lists each live file once, newest job first, and honours the limit (the
    // clock only moves forwards: the memory store drops what TTL would have deleted)
    assert_eq!(
        store.recent_files("uploads/u1/", 500, 100).await.unwrap(),
        ["uploads/u1/c.mp4", "uploads/u1/a.mp4", "uploads/u1/deep/b.mp4"]
    );
    assert_eq!(
        store.recent_files("uploads/u1/", 2_000, 100).await.unwrap(),
        ["uploads/u1/a.mp4", "uploads/u1/deep/b.mp4"]
    );
    assert_eq!(store.recent_files("uploads/u1/", 2_000, 1).await.unwrap(), ["uploads/u1/a.mp4"]);
    assert!(store.recent_files("uploads/", 0, 100).await.unwrap().is_empty());
    // AND writing an entry again replaces its expiry: once the newer job's entry expires, a.mp4
    // is listed where its older job's entry puts it
    store.index_files(&[entry("uploads/u1/", "uploads/u1/a.mp4", 1_700_000_000_003, 3_000)]).await.unwrap();
    assert_eq!(
        store.recent_files("uploads/u1/", 2_999, 100).await.unwrap(),
        ["uploads/u1/a.mp4", "uploads/u1/deep/b.mp4"]
    );
    assert_eq!(
        store.recent_files("uploads/u1/", 3_000, 100).await.unwrap(),
        ["uploads/u1/deep/b.mp4", "uploads/u1/a.mp4"]
    );

    // AND the index is no connection's subscription; unsubscribing by prefix leaves the file
    let mut topics = store.subscriptions(dashboard).await.unwrap();
    topics.sort();
    assert_eq!(topics, ["uploads/u1/", "uploads/u1/a.mp4"]);
    assert!(store.unsubscribe(dashboard, "uploads/u1/").await.unwrap());
    assert!(store.watchers("uploads/u1/", 0).await.unwrap().is_empty());
    assert_eq!(store.subscriptions(dashboard).await.unwrap(), ["uploads/u1/a.mp4"]);
    assert_eq!(
        store.subscribe(dashboard, "uploads/u2/", LATER, 2, false).await.unwrap(),
        SubscribeOutcome::Added,
        "the slot is free again"
    );
    assert_eq!(store.remove_connection(dashboard).await.unwrap(), 2);
    assert_eq!(
        store.recent_files("uploads/u2/", 0, 100).await.unwrap(),
        ["uploads/u2/d.mp4"],
        "disconnects leave the index alone"
    );

    // AND a busy folder is read across pages: 30 files with two jobs each, under 30 newer
    // entries that have expired, still give the 20 files with the newest jobs
    let mut busy = Vec::new();
    for i in 0..30u64 {
        busy.push(entry("busy/", &format!("busy/f{i:02}.mp4"), 2 * i, LATER));
        busy.push(entry("busy/", &format!("busy/f{i:02}.mp4"), 2 * i + 1, LATER));
        busy.push(entry("busy/", &format!("busy/gone{i:02}.mp4"), 1_000 + i, 1_000));
    }
    store.index_files(&busy).await.unwrap();
    let expected: Vec<String> = (10..30).rev().map(|i| format!("busy/f{i:02}.mp4")).collect();
    assert_eq!(store.recent_files("busy/", 2_000, 20).await.unwrap(), expected);
}

#[tokio::test]
async fn dynamodb_prefixes_and_folder_index_honour_the_contract() {
    prefix_contract(&fresh_subscriptions("subs").await).await;
}

#[tokio::test]
async fn memory_prefixes_and_folder_index_honour_the_contract() {
    prefix_contract(&MemorySubscriptionStore::default()).await;
}
