//! The SQLite backend: the shared conformance suite, plus what is specific to it.

use crate::conformance;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use conformance::{assert_quiet, next_event};
use futures::StreamExt;
use keelson_storage::{
    spawn_compactor, CompactionPolicy, SqliteOptions, SqliteStore, StorageError, Store,
};

fn open_with(opts: SqliteOptions) -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_with(dir.path().join("data/state.db"), opts).unwrap();
    (dir, store)
}

fn open() -> (tempfile::TempDir, Arc<SqliteStore>) {
    open_with(SqliteOptions::default())
}

macro_rules! conformance_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let (_dir, store) = open();
            conformance::$name(store.clone()).await;
            store.close().await;
        }
    )*};
}

conformance_tests!(
    create_get_update_delete,
    revisions_are_global_and_strictly_increasing,
    list_matches_the_prefix_only,
    paging_returns_each_key_once_at_a_fixed_revision,
    list_at_an_old_revision_sees_the_old_state,
    compaction_forgets_old_revisions_only,
    watch_replays_history_then_streams_live,
    watch_under_concurrent_writers_is_ordered_and_complete,
    concurrent_conflicting_updates_have_one_winner,
);

/// Rows in the revisions table, read beside the store.
fn rows(store: &SqliteStore) -> i64 {
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    conn.query_row("SELECT COUNT(*) FROM kv", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_store_is_at_revision_0_and_the_first_write_is_1() {
    let (_dir, store) = open();
    assert_eq!(store.current_revision().await.unwrap(), 0);
    assert_eq!(store.list("", None, 0, None).await.unwrap().revision, 0);
    let kv = store.create("/a", Bytes::new()).await.unwrap();
    assert_eq!(kv.mod_revision, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_is_in_wal_mode() {
    let (_dir, store) = open();
    store.create("/a", Bytes::from_static(b"x")).await.unwrap();
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_watcher_loses_nothing_when_the_broadcast_overflows() {
    let opts = SqliteOptions {
        event_buffer: 16,
        watch_page: 7,
        ..SqliteOptions::default()
    };
    let (_dir, store) = open_with(opts);
    let start = store.current_revision().await.unwrap();
    let mut w = store.watch("/k/", start).await.unwrap();
    // Far more commits than the broadcast holds, while the watcher reads nothing.
    let mut expected = Vec::new();
    for i in 0..400 {
        let kv = store
            .create(&format!("/k/{i:04}"), Bytes::from(format!("v{i}")))
            .await
            .unwrap();
        store
            .create(&format!("/other/{i:04}"), Bytes::new())
            .await
            .unwrap();
        expected.push(kv);
    }
    for want in &expected {
        let e = next_event(&mut w).await;
        assert_eq!(&e.kv, want);
    }
    assert_quiet(&mut w).await;
    // And it is live again afterwards.
    let kv = store.create("/k/late", Bytes::new()).await.unwrap();
    assert_eq!(next_event(&mut w).await.kv, kv);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_deletes_superseded_rows_and_delete_markers() {
    let (_dir, store) = open_with(SqliteOptions {
        compact_batch: 3,
        ..SqliteOptions::default()
    });
    let mut kv = store
        .create("/k/a", Bytes::from_static(b"0"))
        .await
        .unwrap();
    for i in 1..20 {
        kv = store
            .update("/k/a", Bytes::from(i.to_string()), kv.mod_revision)
            .await
            .unwrap();
    }
    for i in 0..10 {
        store
            .create(&format!("/k/tmp{i}"), Bytes::new())
            .await
            .unwrap();
        store.delete(&format!("/k/tmp{i}"), None).await.unwrap();
    }
    let keep = store.create("/k/b", Bytes::new()).await.unwrap();
    assert_eq!(rows(&store), 41);
    store.compact(keep.mod_revision).await.unwrap();
    // Only the latest row of each live key is left.
    assert_eq!(rows(&store), 2);
    assert_eq!(store.get("/k/a").await.unwrap(), Some(kv));
    assert_eq!(store.count("/k/").await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revisions_are_never_reused_across_compaction_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = SqliteStore::open(&path).unwrap();
    store.create("/k/a", Bytes::new()).await.unwrap();
    let deleted = store.delete("/k/a", None).await.unwrap();
    store.compact(deleted.mod_revision).await.unwrap();
    assert_eq!(rows(&store), 0);
    store.close().await;

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.current_revision().await.unwrap(),
        deleted.mod_revision
    );
    assert_eq!(
        store.compacted_revision().await.unwrap(),
        deleted.mod_revision
    );
    let again = store.create("/k/a", Bytes::new()).await.unwrap();
    assert_eq!(again.mod_revision, deleted.mod_revision + 1);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_compaction_is_finished_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = SqliteStore::open(&path).unwrap();
    let mut kv = store.create("/k/a", Bytes::new()).await.unwrap();
    for _ in 0..5 {
        kv = store
            .update("/k/a", Bytes::new(), kv.mod_revision)
            .await
            .unwrap();
    }
    store.close().await;
    // What a crash right after recording the compacted revision leaves behind.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE meta SET value = ?1 WHERE name = 'compacted'",
            [kv.mod_revision],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(rows(&store), 1);
    assert!(matches!(
        store.list("/k/", None, 0, Some(kv.mod_revision - 1)).await,
        Err(StorageError::Compacted { .. })
    ));
    assert_eq!(
        store.list("/k/", None, 0, None).await.unwrap().kvs,
        vec![kv]
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_fails_later_calls_and_ends_watches_and_data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = SqliteStore::open(&path).unwrap();
    let a = store
        .create("/k/a", Bytes::from_static(b"a"))
        .await
        .unwrap();
    let mut w = store.watch("/k/", a.mod_revision).await.unwrap();
    store.close().await;
    assert!(matches!(
        store.create("/k/b", Bytes::new()).await,
        Err(StorageError::Unavailable(_))
    ));
    assert!(matches!(
        store.get("/k/a").await,
        Err(StorageError::Unavailable(_))
    ));
    assert!(matches!(
        store.watch("/k/", 0).await,
        Err(StorageError::Unavailable(_))
    ));
    match tokio::time::timeout(Duration::from_secs(10), w.next()).await {
        Ok(Some(Err(StorageError::Unavailable(_)))) => {}
        other => panic!("watch of a closed store: {other:?}"),
    }
    assert!(w.next().await.is_none());

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.get("/k/a").await.unwrap(), Some(a.clone()));
    assert_eq!(store.current_revision().await.unwrap(), a.mod_revision);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_store_ends_its_watches() {
    let (_dir, store) = open();
    let mut w = store.watch("/k/", 0).await.unwrap();
    drop(store);
    match tokio::time::timeout(Duration::from_secs(10), w.next()).await {
        Ok(Some(Err(StorageError::Unavailable(_)))) => {}
        other => panic!("watch of a dropped store: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_compactor_compacts_while_writers_and_watchers_run() {
    let (_dir, store) = open_with(SqliteOptions {
        compact_batch: 50,
        ..SqliteOptions::default()
    });
    let policy = CompactionPolicy {
        interval: Duration::from_millis(50),
        min_retained_revisions: 100,
    };
    let compactor = spawn_compactor(&store, policy);
    let mut w = store.watch("/k/", 0).await.unwrap();
    const TOTAL: usize = 4 * 301;
    let watcher = tokio::spawn(async move {
        let mut seen = std::collections::BTreeSet::new();
        let mut last = 0;
        while seen.len() < TOTAL {
            let e = next_event(&mut w).await;
            assert!(e.revision() > last, "revisions increase");
            last = e.revision();
            seen.insert(e.revision());
        }
        seen
    });

    let mut writers = Vec::new();
    for t in 0..4 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let key = format!("/k/{t}");
            let mut kv = store.create(&key, Bytes::new()).await.unwrap();
            let mut revs = vec![kv.mod_revision];
            for i in 0..300 {
                kv = store
                    .update(&key, Bytes::from(i.to_string()), kv.mod_revision)
                    .await
                    .unwrap();
                revs.push(kv.mod_revision);
                if i % 50 == 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            (kv, revs)
        }));
    }
    let mut last = Vec::new();
    let mut acked = std::collections::BTreeSet::new();
    for t in writers {
        let (kv, revs) = t.await.unwrap();
        last.push(kv);
        acked.extend(revs);
    }
    // The watcher kept up through the compactions and saw every write.
    assert_eq!(acked.len(), TOTAL);
    assert_eq!(watcher.await.unwrap(), acked);

    // Wait for the compactor to catch up with the writes.
    let current = store.current_revision().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while store.compacted_revision().await.unwrap() < current - policy.min_retained_revisions {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the compactor did not compact"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let compacted = store.compacted_revision().await.unwrap();
    assert!(compacted <= current - policy.min_retained_revisions);
    assert!(matches!(
        store.list("/k/", None, 0, Some(compacted - 1)).await,
        Err(StorageError::Compacted { .. })
    ));
    let now = store.list("/k/", None, 0, None).await.unwrap();
    assert_eq!(now.kvs, last);
    assert!(rows(&store) < 4 * 301);

    // The compactor ends once the store is gone.
    drop(store);
    tokio::time::timeout(Duration::from_secs(5), compactor)
        .await
        .unwrap()
        .unwrap();
}
