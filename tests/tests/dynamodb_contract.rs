//! The DynamoDB adapter against a real DynamoDB API (moto over HTTP): the write conditions refuse
//! backward moves in the database, and concurrent writers on one job converge.

use std::sync::Arc;

use mcpush_core::adapters::dynamodb::DynamoJobStore;
use mcpush_core::adapters::memory::MemoryJobStore;
use mcpush_core::domain::{
    CompleteDetails, JobPointer, JobRecord, JobStatus, JobUpdate, Phase, StatusView, Transition,
};
use mcpush_core::ports::JobStore;
use mcpush_tests::fresh_store;

const JOB: &str = "1700000000000-racing";

fn update(transition: Transition, progress: Option<u8>) -> JobUpdate {
    JobUpdate {
        job_id: JOB.into(),
        input_file: Some("race.mp4".into()),
        transition,
        progress,
        job_order: 1700000000000,
        phase: None,
        event_at: None,
        observed: Default::default(),
    }
}

fn complete() -> JobUpdate {
    let details = CompleteDetails {
        duration_ms: Some(1000),
        width_px: Some(640),
        height_px: Some(360),
        output_path: "o/".into(),
        ..Default::default()
    };
    update(Transition::Complete(details), Some(100))
}

fn job_events() -> Vec<JobUpdate> {
    let mut events = vec![update(Transition::Submitted, Some(0)), update(Transition::Progressing, None)];
    events.extend((1..=30).map(|p| update(Transition::Progressing, Some(p * 3))));
    events.push(complete());
    events
}

/// The state without its version: two paths to one state may count different numbers of steps.
fn unversioned(record: Option<JobRecord>) -> Option<JobRecord> {
    record.map(|r| JobRecord { version: None, ..r })
}

/// The same contract, for any store: the DynamoDB adapter and the in-memory one must agree.
async fn contract_merges_like_the_domain(store: &dyn JobStore) {
    let events = job_events();
    let mut expected: Option<JobRecord> = None;
    for e in &events {
        expected = JobRecord::merge(expected.as_ref(), e).or(expected);
    }
    for e in events.iter().rev().chain(events.iter()) {
        store.apply(e).await.unwrap();
    }
    assert_eq!(unversioned(store.job(JOB).await.unwrap()), unversioned(expected));

    let older = JobPointer {
        input_file: "race.mp4".into(),
        job_id: "1600000000000-older1".into(),
        job_order: Some(1600000000000),
    };
    let newer = JobPointer { input_file: "race.mp4".into(), job_id: JOB.into(), job_order: Some(1700000000000) };
    assert!(store.point_to(&older).await.unwrap());
    assert!(store.point_to(&newer).await.unwrap());
    assert!(!store.point_to(&older).await.unwrap(), "losing the condition is a normal outcome");
    assert!(!store.point_to(&newer).await.unwrap(), "a duplicate changes nothing");
    assert_eq!(store.latest_job_id("race.mp4").await.unwrap().as_deref(), Some(JOB));
    assert_eq!(store.latest_job_id("never.mp4").await.unwrap(), None);
}

/// The reconciler's view, for any store: unfinished jobs quiet since before a time, oldest first;
/// a confirmation moves a job to the back; final jobs are never listed, nor confirmed back in.
async fn contract_lists_quiet_unfinished_jobs(store: &dyn JobStore) {
    let job = |id: &str, transition, progress| JobUpdate {
        job_id: id.into(),
        input_file: Some(format!("{id}.mp4")),
        transition,
        progress,
        job_order: 1700000000000,
        phase: None,
        event_at: None,
        observed: Default::default(),
    };
    let pause = || tokio::time::sleep(std::time::Duration::from_millis(3));
    let (first, second, done) = ("1700000000000-quiet1", "1700000000000-quiet2", "1700000000000-done00");
    store.apply(&job(first, Transition::Progressing, Some(10))).await.unwrap();
    pause().await;
    store.apply(&job(second, Transition::Submitted, Some(0))).await.unwrap();
    store.apply(&job(done, Transition::Progressing, Some(10))).await.unwrap();
    store.apply(&job(done, complete().transition, Some(100))).await.unwrap();
    pause().await;
    let t = mcpush_core::now_ms();
    let ids = |due: Vec<(String, u64)>| due.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
    assert_eq!(ids(store.unconfirmed(t, 10).await.unwrap()), [first, second]);
    assert_eq!(ids(store.unconfirmed(t, 1).await.unwrap()), [first]);
    store.confirm(first, t).await.unwrap();
    store.confirm(done, t).await.unwrap();
    assert_eq!(ids(store.unconfirmed(t, 10).await.unwrap()), [second]);
    assert_eq!(ids(store.unconfirmed(t + 1, 10).await.unwrap()), [second, first]);
    assert_eq!(store.job(done).await.unwrap().unwrap().confirmed_at, None);
}

#[tokio::test]
async fn dynamodb_store_honours_the_contract() {
    contract_merges_like_the_domain(&fresh_store("contract").await).await;
    contract_lists_quiet_unfinished_jobs(&fresh_store("contract").await).await;
}

#[tokio::test]
async fn memory_store_honours_the_contract() {
    contract_merges_like_the_domain(&MemoryJobStore::default()).await;
    contract_lists_quiet_unfinished_jobs(&MemoryJobStore::default()).await;
}

#[tokio::test]
async fn the_database_refuses_a_stale_write() {
    // GIVEN a job stored at 60 %
    let store = fresh_store("contract").await;
    let at_60 = store.apply(&update(Transition::Progressing, Some(60))).await.unwrap().record;
    // WHEN a writer that read it earlier tries to store 40 %, or PROGRESSING over COMPLETE
    let mut stale = at_60.clone();
    stale.progress_rate = 40;
    assert!(!store.replace_if_allowed(&stale, stale.version).await.unwrap());
    let done = store.apply(&complete()).await.unwrap().record;
    assert!(!store.replace_if_allowed(&at_60, done.version).await.unwrap());
    let mut other_file = done.clone();
    other_file.input_file = Some("someone else.mp4".into());
    assert!(!store.replace_if_allowed(&other_file, other_file.version).await.unwrap());
    // THEN the stored job is still the newest state
    assert_eq!(store.job(JOB).await.unwrap(), Some(done));
}

#[tokio::test]
async fn a_writer_that_read_an_older_version_is_refused_even_moving_forward() {
    // GIVEN two writers that both read the job at version 1
    let store = fresh_store("version").await;
    let read = store.apply(&update(Transition::Progressing, Some(10))).await.unwrap().record;
    assert_eq!(read.version, Some(1));
    let mut first = read.clone();
    (first.progress_rate, first.version) = (20, Some(2));
    let mut second = read.clone();
    (second.progress_rate, second.version) = (30, Some(2));
    // WHEN both write version 2
    assert!(store.replace_if_allowed(&first, read.version).await.unwrap());
    // THEN the second is refused, though 30 % would be no backward move, and a re-merge counts on
    assert!(!store.replace_if_allowed(&second, read.version).await.unwrap());
    let applied = store.apply(&update(Transition::Progressing, Some(30))).await.unwrap().record;
    assert_eq!((applied.progress_rate, applied.version), (30, Some(3)));
    assert_eq!(store.job(JOB).await.unwrap(), Some(applied));
}

#[tokio::test]
async fn the_database_refuses_a_phase_going_back_and_completion_clears_it() {
    // GIVEN a job stored in its UPLOADING phase
    let store = fresh_store("phase").await;
    let at = |phase| JobUpdate { phase: Some(phase), ..update(Transition::Progressing, Some(90)) };
    let uploading = store.apply(&at(Phase::Uploading)).await.unwrap().record;
    assert_eq!(uploading.current_phase, Some(Phase::Uploading));
    // WHEN a stale writer tries to store TRANSCODING, or no phase at all
    let mut stale = uploading.clone();
    stale.current_phase = Some(Phase::Transcoding);
    assert!(!store.replace_if_allowed(&stale, stale.version).await.unwrap());
    stale.current_phase = None;
    assert!(!store.replace_if_allowed(&stale, stale.version).await.unwrap());
    assert!(!store.apply(&at(Phase::Probing)).await.unwrap().changed);
    // THEN only COMPLETE moves it on, clearing the phase, and a late phase changes nothing
    let done = store.apply(&complete()).await.unwrap().record;
    assert_eq!((done.job_status, done.current_phase), (JobStatus::Complete, None));
    assert!(!store.apply(&at(Phase::Uploading)).await.unwrap().changed);
    assert_eq!(store.job(JOB).await.unwrap(), Some(done));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_on_one_job_converge_and_readers_never_see_it_go_back() {
    let store: Arc<DynamoJobStore> = Arc::new(fresh_store("race").await);
    let events = job_events();
    let mut expected: Option<JobRecord> = None;
    for e in &events {
        expected = JobRecord::merge(expected.as_ref(), e).or(expected);
    }

    // Two writers deliver the whole stream, one in order and one reversed, at the same time,
    // while a reader watches the item.
    let writers: Vec<_> = [false, true]
        .into_iter()
        .map(|reversed| {
            let (store, mut events) = (store.clone(), events.clone());
            if reversed {
                events.reverse();
            }
            tokio::spawn(async move {
                for e in &events {
                    store.apply(e).await.expect("apply under contention");
                }
            })
        })
        .collect();
    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut last: Option<JobRecord> = None;
            let mut versions = std::collections::BTreeMap::<u64, Vec<StatusView>>::new();
            for _ in 0..200 {
                if let Some(now) = store.job(JOB).await.unwrap() {
                    if let Some(before) = &last {
                        assert!(now.may_replace(before), "went back from {before:?} to {now:?}");
                    }
                    let seen = versions.entry(now.version()).or_default();
                    let view = StatusView::from(&now);
                    if !seen.contains(&view) {
                        seen.push(view);
                    }
                    let done = now.job_status == JobStatus::Complete;
                    last = Some(now);
                    if done {
                        break;
                    }
                }
            }
            versions
        })
    };
    for w in writers {
        w.await.unwrap();
    }
    let versions = reader.await.unwrap();
    assert_eq!(unversioned(store.job(JOB).await.unwrap()), unversioned(expected));
    // Each version the reader saw stands for one state only.
    for (version, views) in versions {
        assert_eq!(views.len(), 1, "version {version} was stored with different states: {views:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pointer_writers_settle_on_the_newest_job() {
    let store = Arc::new(fresh_store("race").await);
    let jobs: Vec<JobPointer> = (0..12u64)
        .map(|i| JobPointer {
            input_file: "popular.mp4".into(),
            job_id: format!("{}-job{i:03}", 1700000000000 + i),
            job_order: Some(1700000000000 + i),
        })
        .collect();
    let tasks: Vec<_> = jobs
        .iter()
        .cloned()
        .map(|p| {
            let store = store.clone();
            tokio::spawn(async move { store.point_to(&p).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.latest_job_id("popular.mp4").await.unwrap(), Some(jobs[11].job_id.clone()));
}

#[tokio::test]
async fn the_consistent_snapshot_is_the_files_newest_job_in_both_stores() {
    let memory = MemoryJobStore::default();
    let dynamodb = fresh_store("snapshot").await;
    for store in [&memory as &dyn JobStore, &dynamodb] {
        // GIVEN a file with an older and a newer job, recorded newest first
        for (job_id, order) in [("1700000000002-newer", 1_700_000_000_002), ("1700000000001-older", 1_700_000_000_001)]
        {
            let update = JobUpdate {
                job_id: job_id.into(),
                input_file: Some("snap.mp4".into()),
                transition: Transition::Progressing,
                progress: Some(10),
                job_order: order,
                phase: None,
                event_at: None,
                observed: Default::default(),
            };
            let applied = store.apply(&update).await.unwrap();
            store
                .point_to(&JobPointer {
                    input_file: "snap.mp4".into(),
                    job_id: job_id.into(),
                    job_order: applied.record.job_order,
                })
                .await
                .unwrap();
        }
        // THEN the snapshot is the newer job, and a file nobody uploaded has none
        assert_eq!(
            store.newest_job_consistent("snap.mp4").await.unwrap().map(|r| r.job_id).as_deref(),
            Some("1700000000002-newer")
        );
        assert_eq!(store.newest_job_consistent("nothing.mp4").await.unwrap(), None);
    }
}
