//! Behaviour every `Store` backend must have. Each function takes a fresh, empty store;
//! a backend's test file runs all of them (see `sqlite.rs` and `etcd.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use keelson_storage::{Event, EventKind, KeyValue, Revision, StorageError, Store, WatchStream};

pub type DynStore = Arc<dyn Store>;

fn b(s: &str) -> Bytes {
    Bytes::from(s.to_owned())
}

pub async fn next_event(stream: &mut WatchStream) -> Event {
    match tokio::time::timeout(Duration::from_secs(20), stream.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(err))) => panic!("watch failed: {err}"),
        Ok(None) => panic!("watch ended"),
        Err(_) => panic!("no watch event within 20s"),
    }
}

/// Nothing more arrives on `stream` within a short while.
pub async fn assert_quiet(stream: &mut WatchStream) {
    if let Ok(item) = tokio::time::timeout(Duration::from_millis(300), stream.next()).await {
        panic!("unexpected watch item: {item:?}");
    }
}

fn keys(kvs: &[KeyValue]) -> Vec<&str> {
    kvs.iter().map(|kv| kv.key.as_str()).collect()
}

pub async fn create_get_update_delete(store: DynStore) {
    // A fresh store holds nothing. Its revision is backend-specific: 0 for SQLite (see
    // sqlite.rs), 1 for etcd, which counts its own creation as a revision (see etcd.rs).
    let start = store.current_revision().await.unwrap();
    assert!(start >= 0);
    assert!(store.list("", None, 0, None).await.unwrap().kvs.is_empty());
    assert_eq!(store.get("/r/a").await.unwrap(), None);

    let a1 = store.create("/r/a", b("v1")).await.unwrap();
    assert_eq!(a1.key, "/r/a");
    assert_eq!(a1.value, b("v1"));
    assert_eq!(a1.create_revision, a1.mod_revision);
    assert_eq!(a1.mod_revision, start + 1);
    assert_eq!(store.get("/r/a").await.unwrap(), Some(a1.clone()));

    match store.create("/r/a", b("again")).await {
        Err(StorageError::AlreadyExists { key }) => assert_eq!(key, "/r/a"),
        other => panic!("create of a live key: {other:?}"),
    }

    let a2 = store
        .update("/r/a", b("v2"), a1.mod_revision)
        .await
        .unwrap();
    assert_eq!(a2.value, b("v2"));
    assert_eq!(a2.create_revision, a1.create_revision);
    assert!(a2.mod_revision > a1.mod_revision);
    assert_eq!(store.get("/r/a").await.unwrap(), Some(a2.clone()));

    // Stale revision: conflict carrying what is there now; nothing changes.
    match store.update("/r/a", b("stale"), a1.mod_revision).await {
        Err(StorageError::Conflict { key, current }) => {
            assert_eq!(key, "/r/a");
            assert_eq!(current, Some(a2.clone()));
        }
        other => panic!("stale update: {other:?}"),
    }
    assert_eq!(store.get("/r/a").await.unwrap(), Some(a2.clone()));

    match store.update("/r/missing", b("x"), 1).await {
        Err(StorageError::NotFound { key }) => assert_eq!(key, "/r/missing"),
        other => panic!("update of a missing key: {other:?}"),
    }

    match store.delete("/r/a", Some(a1.mod_revision)).await {
        Err(StorageError::Conflict { current, .. }) => assert_eq!(current, Some(a2.clone())),
        other => panic!("delete with a stale precondition: {other:?}"),
    }
    assert_eq!(store.get("/r/a").await.unwrap(), Some(a2.clone()));

    let deleted = store.delete("/r/a", Some(a2.mod_revision)).await.unwrap();
    assert_eq!(deleted.value, b("v2"));
    assert_eq!(deleted.create_revision, a1.create_revision);
    assert!(deleted.mod_revision > a2.mod_revision);
    assert_eq!(
        store.current_revision().await.unwrap(),
        deleted.mod_revision
    );
    assert_eq!(store.get("/r/a").await.unwrap(), None);
    assert!(matches!(
        store.delete("/r/a", None).await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(matches!(
        store.update("/r/a", b("x"), deleted.mod_revision).await,
        Err(StorageError::NotFound { .. })
    ));

    // Delete without precondition.
    let c = store.create("/r/c", b("c")).await.unwrap();
    let c_deleted = store.delete("/r/c", None).await.unwrap();
    assert_eq!(c_deleted.value, b("c"));
    assert_eq!(c_deleted.create_revision, c.create_revision);
    assert!(c_deleted.mod_revision > c.mod_revision);

    // A new incarnation gets a new create_revision.
    let a3 = store.create("/r/a", b("v3")).await.unwrap();
    assert_eq!(a3.create_revision, a3.mod_revision);
    assert!(a3.create_revision > deleted.mod_revision);
    assert_eq!(store.get("/r/a").await.unwrap(), Some(a3));

    // Empty values and binary values round-trip.
    let empty = store.create("/r/empty", Bytes::new()).await.unwrap();
    assert_eq!(store.get("/r/empty").await.unwrap(), Some(empty));
    let binary = Bytes::from(vec![0u8, 255, 0, 1, 2]);
    store.create("/r/bin", binary.clone()).await.unwrap();
    assert_eq!(
        store.get("/r/bin").await.unwrap().map(|kv| kv.value),
        Some(binary)
    );
}

pub async fn revisions_are_global_and_strictly_increasing(store: DynStore) {
    let mut last = store.current_revision().await.unwrap();
    for i in 0..20 {
        let key = format!("/r/{}/k{i}", if i % 2 == 0 { "even" } else { "odd" });
        let kv = store.create(&key, b("x")).await.unwrap();
        assert_eq!(
            kv.mod_revision,
            last + 1,
            "one revision per write, shared by all keys"
        );
        last = kv.mod_revision;
        // Failed writes take no revision.
        assert!(store.create(&key, b("y")).await.is_err());
        assert!(store
            .update(&key, b("y"), kv.mod_revision - 1)
            .await
            .is_err());
        assert_eq!(store.current_revision().await.unwrap(), last);
        let kv = store.update(&key, b("z"), kv.mod_revision).await.unwrap();
        assert_eq!(kv.mod_revision, last + 1);
        last = kv.mod_revision;
    }
    let d = store.delete("/r/even/k0", None).await.unwrap();
    assert_eq!(d.mod_revision, last + 1);
    assert_eq!(store.current_revision().await.unwrap(), last + 1);
}

pub async fn list_matches_the_prefix_only(store: DynStore) {
    for key in [
        "/registry/pods/ns1/a",
        "/registry/pods/ns1/b",
        "/registry/pods/ns2/a",
        "/registry/podsx/ns1/a",
        "/registry/pods",
        "/registry/pod",
        "/registry/podtemplates/ns1/a",
        "/registry/pods/ns1/\u{e9}t\u{e9}",
    ] {
        store.create(key, b(key)).await.unwrap();
    }
    let list = store.list("/registry/pods/", None, 0, None).await.unwrap();
    assert_eq!(
        keys(&list.kvs),
        [
            "/registry/pods/ns1/a",
            "/registry/pods/ns1/b",
            "/registry/pods/ns1/\u{e9}t\u{e9}",
            "/registry/pods/ns2/a"
        ]
    );
    assert_eq!(list.revision, store.current_revision().await.unwrap());
    assert!(!list.more);
    assert_eq!(list.remaining, 0);
    for kv in &list.kvs {
        assert_eq!(kv.value, b(&kv.key));
    }
    assert_eq!(store.count("/registry/pods/").await.unwrap(), 4);

    let ns1 = store
        .list("/registry/pods/ns1/", None, 0, None)
        .await
        .unwrap();
    assert_eq!(
        keys(&ns1.kvs),
        [
            "/registry/pods/ns1/a",
            "/registry/pods/ns1/b",
            "/registry/pods/ns1/\u{e9}t\u{e9}"
        ]
    );
    assert_eq!(store.count("/registry/podsx/").await.unwrap(), 1);
    assert_eq!(store.count("/registry/nothing/").await.unwrap(), 0);
    assert!(store
        .list("/registry/nothing/", None, 0, None)
        .await
        .unwrap()
        .kvs
        .is_empty());
    // The empty prefix is everything.
    assert_eq!(store.count("").await.unwrap(), 8);
    assert_eq!(store.list("", None, 0, None).await.unwrap().kvs.len(), 8);

    // Deleted keys are not listed nor counted.
    store.delete("/registry/pods/ns1/b", None).await.unwrap();
    let list = store.list("/registry/pods/", None, 0, None).await.unwrap();
    assert_eq!(
        keys(&list.kvs),
        [
            "/registry/pods/ns1/a",
            "/registry/pods/ns1/\u{e9}t\u{e9}",
            "/registry/pods/ns2/a"
        ]
    );
    assert_eq!(store.count("/registry/pods/").await.unwrap(), 3);

    // start_key is inclusive and clamped to the prefix.
    let from = store
        .list(
            "/registry/pods/",
            Some("/registry/pods/ns1/\u{e9}t\u{e9}"),
            0,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        keys(&from.kvs),
        ["/registry/pods/ns1/\u{e9}t\u{e9}", "/registry/pods/ns2/a"]
    );
    let before = store
        .list("/registry/pods/", Some("/registry/a"), 0, None)
        .await
        .unwrap();
    assert_eq!(before.kvs.len(), 3);
    let past = store
        .list("/registry/pods/", Some("/registry/z"), 0, None)
        .await
        .unwrap();
    assert!(past.kvs.is_empty());
}

/// Pages through `prefix` at one revision with `limit`, running `between` after each page.
async fn page_all<F, Fut>(
    store: &DynStore,
    prefix: &str,
    limit: usize,
    mut between: F,
) -> (Vec<KeyValue>, Vec<ListResult>)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut all = Vec::new();
    let mut pages = Vec::new();
    let mut revision = None;
    let mut start: Option<String> = None;
    for page in 0.. {
        let list = store
            .list(prefix, start.as_deref(), limit, revision)
            .await
            .unwrap();
        if let Some(r) = revision {
            assert_eq!(list.revision, r);
        }
        revision = Some(list.revision);
        all.extend(list.kvs.iter().cloned());
        let next = list.kvs.last().map(|kv| format!("{}\0", kv.key));
        let more = list.more;
        pages.push(list);
        if !more {
            break;
        }
        start = next;
        between(page).await;
    }
    (all, pages)
}

use keelson_storage::ListResult;

pub async fn paging_returns_each_key_once_at_a_fixed_revision(store: DynStore) {
    let mut expected = BTreeMap::new();
    for i in 0..50 {
        let key = format!("/registry/things/ns/k{i:03}");
        let kv = store.create(&key, b(&format!("v{i}"))).await.unwrap();
        expected.insert(key, kv);
    }
    store
        .create("/registry/thingsx/ns/k000", b("other"))
        .await
        .unwrap();
    let total = expected.len() as i64;

    let writer = store.clone();
    let (all, pages) = page_all(&store, "/registry/things/", 7, |page| {
        let store = writer.clone();
        async move {
            // Writes between pages, before and after the cursor: new keys, updates, deletes.
            store
                .create(&format!("/registry/things/ns/k{:03}x", page * 7), b("new"))
                .await
                .unwrap();
            store
                .create(&format!("/registry/things/ns/z{page}"), b("new"))
                .await
                .unwrap();
            store
                .create(&format!("/registry/things/ns/a{page}"), b("new"))
                .await
                .unwrap();
            let victim = format!("/registry/things/ns/k{:03}", 49 - page);
            if let Some(kv) = store.get(&victim).await.unwrap() {
                store
                    .update(&victim, b("changed"), kv.mod_revision)
                    .await
                    .unwrap();
            }
            let gone = format!("/registry/things/ns/k{:03}", 30 + page);
            let _ = store.delete(&gone, None).await;
        }
    })
    .await;
    assert_eq!(pages.len(), 8);
    for (i, page) in pages.iter().enumerate() {
        let before = (i * 7) as i64 + page.kvs.len() as i64;
        assert_eq!(page.remaining, total - before, "remaining after page {i}");
        assert_eq!(page.more, i < 7);
        assert!(page.kvs.len() <= 7);
    }
    let got: Vec<&KeyValue> = all.iter().collect();
    let want: Vec<&KeyValue> = expected.values().collect();
    assert_eq!(
        got, want,
        "every key exactly once, as it was at the first page's revision"
    );

    // The same, exact limit boundaries.
    let exact = store
        .list("/registry/thingsx/", None, 1, None)
        .await
        .unwrap();
    assert_eq!(exact.kvs.len(), 1);
    assert!(!exact.more);
    assert_eq!(exact.remaining, 0);
}

pub async fn list_at_an_old_revision_sees_the_old_state(store: DynStore) {
    let a1 = store.create("/r/a", b("a1")).await.unwrap();
    let a2 = store
        .update("/r/a", b("a2"), a1.mod_revision)
        .await
        .unwrap();
    let b1 = store.create("/r/b", b("b1")).await.unwrap();
    let del = store.delete("/r/a", None).await.unwrap();
    let c1 = store.create("/r/c", b("c1")).await.unwrap();
    let a3 = store.create("/r/a", b("a3")).await.unwrap();

    let at = |r: Revision| {
        let store = store.clone();
        async move { store.list("/r/", None, 0, Some(r)).await.unwrap() }
    };
    assert_eq!(at(a1.mod_revision).await.kvs, vec![a1.clone()]);
    assert_eq!(at(a2.mod_revision).await.kvs, vec![a2.clone()]);
    assert_eq!(at(b1.mod_revision).await.kvs, vec![a2.clone(), b1.clone()]);
    assert_eq!(at(del.mod_revision).await.kvs, vec![b1.clone()]);
    assert_eq!(at(c1.mod_revision).await.kvs, vec![b1.clone(), c1.clone()]);
    assert_eq!(
        at(a3.mod_revision).await.kvs,
        vec![a3.clone(), b1.clone(), c1.clone()]
    );
    assert_eq!(at(a2.mod_revision).await.revision, a2.mod_revision);
    // A paged list at an old revision counts what is left at that revision.
    let page = store
        .list("/r/", None, 1, Some(b1.mod_revision))
        .await
        .unwrap();
    assert_eq!(page.kvs, vec![a2.clone()]);
    assert!(page.more);
    assert_eq!(page.remaining, 1);
    // Some(0) is the current revision.
    let now = store.list("/r/", None, 0, Some(0)).await.unwrap();
    assert_eq!(now.revision, a3.mod_revision);
    assert_eq!(now.kvs.len(), 3);

    let current = store.current_revision().await.unwrap();
    match store.list("/r/", None, 0, Some(current + 1)).await {
        Err(StorageError::FutureRevision {
            requested,
            current: c,
        }) => {
            assert_eq!(requested, current + 1);
            assert_eq!(c, current);
        }
        other => panic!("list at a future revision: {other:?}"),
    }
}

pub async fn compaction_forgets_old_revisions_only(store: DynStore) {
    let a1 = store.create("/r/a", b("a1")).await.unwrap();
    let a2 = store
        .update("/r/a", b("a2"), a1.mod_revision)
        .await
        .unwrap();
    let b1 = store.create("/r/b", b("b1")).await.unwrap();
    let gone = store.create("/r/gone", b("g")).await.unwrap();
    let gone_del = store.delete("/r/gone", None).await.unwrap();
    let a3 = store
        .update("/r/a", b("a3"), a2.mod_revision)
        .await
        .unwrap();
    let b_del = store.delete("/r/b", None).await.unwrap();
    let before_at_a3 = store
        .list("/r/", None, 0, Some(a3.mod_revision))
        .await
        .unwrap();

    assert_eq!(store.compacted_revision().await.unwrap(), 0);
    store.compact(a3.mod_revision).await.unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), a3.mod_revision);

    match store.list("/r/", None, 0, Some(a2.mod_revision)).await {
        Err(StorageError::Compacted {
            requested,
            compacted,
        }) => {
            assert_eq!(requested, a2.mod_revision);
            assert_eq!(compacted, a3.mod_revision);
        }
        other => panic!("list at a compacted revision: {other:?}"),
    }
    assert!(matches!(
        store
            .list("/r/", None, 0, Some(gone_del.mod_revision))
            .await,
        Err(StorageError::Compacted { .. })
    ));
    // At and after the compacted revision everything is as before.
    let at_a3 = store
        .list("/r/", None, 0, Some(a3.mod_revision))
        .await
        .unwrap();
    assert_eq!(at_a3, before_at_a3);
    assert_eq!(at_a3.kvs, vec![a3.clone(), b1.clone()]);
    assert_eq!(
        store.list("/r/", None, 0, None).await.unwrap().kvs,
        vec![a3.clone()]
    );
    assert_eq!(store.get("/r/a").await.unwrap(), Some(a3.clone()));
    assert_eq!(store.get("/r/b").await.unwrap(), None);
    assert_eq!(store.get("/r/gone").await.unwrap(), None);
    assert_eq!(store.count("/r/").await.unwrap(), 1);

    // Watches from before the compacted revision are refused; from it on they work.
    match store.watch("/r/", a2.mod_revision).await {
        Err(StorageError::Compacted {
            requested,
            compacted,
        }) => {
            assert_eq!(requested, a2.mod_revision);
            assert_eq!(compacted, a3.mod_revision);
        }
        Err(other) => panic!("watch from a compacted revision: {other:?}"),
        Ok(_) => panic!("watch from a compacted revision started"),
    }
    let mut w = store.watch("/r/", a3.mod_revision).await.unwrap();
    let e = next_event(&mut w).await;
    assert_eq!(e.kind, EventKind::Delete);
    assert_eq!(e.kv, b_del);
    assert_eq!(e.prev, Some(b1.clone()));

    // Writes go on; compacting to the same revision is a no-op; older or future are refused.
    let a4 = store
        .update("/r/a", b("a4"), a3.mod_revision)
        .await
        .unwrap();
    assert_eq!(a4.mod_revision, b_del.mod_revision + 1);
    store.compact(a3.mod_revision).await.unwrap();
    assert!(matches!(
        store.compact(a2.mod_revision).await,
        Err(StorageError::Compacted { .. })
    ));
    assert!(matches!(
        store.compact(a4.mod_revision + 1).await,
        Err(StorageError::FutureRevision { .. })
    ));
    // Compacting to the current revision keeps the current state.
    store.compact(a4.mod_revision).await.unwrap();
    assert_eq!(
        store.list("/r/", None, 0, None).await.unwrap().kvs,
        vec![a4.clone()]
    );
    let gone_again = store.create("/r/gone", b("again")).await.unwrap();
    assert_eq!(gone_again.create_revision, a4.mod_revision + 1);
    assert_eq!(gone.key, gone_again.key);
    let e = next_event(&mut w).await;
    assert_eq!(e.kv, a4);
    assert_eq!(e.prev, Some(a3));
    let e = next_event(&mut w).await;
    assert_eq!((e.kind, e.prev), (EventKind::Put, None));
}

pub async fn watch_replays_history_then_streams_live(store: DynStore) {
    let a1 = store.create("/registry/pods/a", b("a1")).await.unwrap();
    let _other = store.create("/registry/podsx/a", b("x")).await.unwrap();
    let a2 = store
        .update("/registry/pods/a", b("a2"), a1.mod_revision)
        .await
        .unwrap();
    let b1 = store.create("/registry/pods/b", b("b1")).await.unwrap();
    let a_del = store
        .delete("/registry/pods/a", Some(a2.mod_revision))
        .await
        .unwrap();

    let mut w = store
        .watch("/registry/pods/", a1.mod_revision)
        .await
        .unwrap();
    let e = next_event(&mut w).await;
    assert_eq!(
        e,
        Event {
            kind: EventKind::Put,
            kv: a2.clone(),
            prev: Some(a1.clone())
        }
    );
    let e = next_event(&mut w).await;
    assert_eq!(
        e,
        Event {
            kind: EventKind::Put,
            kv: b1.clone(),
            prev: None
        }
    );
    let e = next_event(&mut w).await;
    assert_eq!(
        e,
        Event {
            kind: EventKind::Delete,
            kv: a_del.clone(),
            prev: Some(a2.clone())
        }
    );
    assert_eq!(e.kv.value, b("a2"), "a delete carries the last value");
    assert_quiet(&mut w).await;

    // Live events, filtered by prefix.
    store.create("/registry/podsx/b", b("x")).await.unwrap();
    let b2 = store
        .update("/registry/pods/b", b("b2"), b1.mod_revision)
        .await
        .unwrap();
    let c1 = store.create("/registry/pods/c", b("c1")).await.unwrap();
    let e = next_event(&mut w).await;
    assert_eq!(
        e,
        Event {
            kind: EventKind::Put,
            kv: b2.clone(),
            prev: Some(b1.clone())
        }
    );
    let e = next_event(&mut w).await;
    assert_eq!(
        e,
        Event {
            kind: EventKind::Put,
            kv: c1.clone(),
            prev: None
        }
    );
    assert_quiet(&mut w).await;

    // From the current revision: only what comes next. From 0: everything.
    let now = store.current_revision().await.unwrap();
    let mut fresh = store.watch("/registry/pods/", now).await.unwrap();
    let mut all = store.watch("/registry/pods/", 0).await.unwrap();
    let c2 = store
        .update("/registry/pods/c", b("c2"), c1.mod_revision)
        .await
        .unwrap();
    assert_eq!(next_event(&mut fresh).await.kv, c2);
    let mut revisions = Vec::new();
    for _ in 0..7 {
        revisions.push(next_event(&mut all).await.revision());
    }
    assert_eq!(
        revisions,
        [
            a1.mod_revision,
            a2.mod_revision,
            b1.mod_revision,
            a_del.mod_revision,
            b2.mod_revision,
            c1.mod_revision,
            c2.mod_revision
        ]
    );
    assert_eq!(next_event(&mut w).await.kv, c2);

    // A watch after a future revision skips events up to it.
    let future = store.current_revision().await.unwrap() + 2;
    let mut later = store.watch("/registry/pods/", future).await.unwrap();
    for i in 0..3 {
        store
            .create(&format!("/registry/pods/f{i}"), b("f"))
            .await
            .unwrap();
    }
    let e = next_event(&mut later).await;
    assert_eq!(e.revision(), future + 1);
    assert_eq!(e.kv.key, "/registry/pods/f2");
}

pub async fn watch_under_concurrent_writers_is_ordered_and_complete(store: DynStore) {
    const WRITERS: usize = 8;
    const PER_WRITER: usize = 150;
    let start = store.current_revision().await.unwrap();
    let mut live = store.watch("/registry/", start).await.unwrap();

    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let key = format!("/registry/w{w}/counter");
            let mut counter = store.create(&key, b("0")).await.unwrap();
            acked.push(counter.mod_revision);
            for i in 0..PER_WRITER {
                let kv = store
                    .create(&format!("/registry/w{w}/k{i}"), b("v"))
                    .await
                    .unwrap();
                acked.push(kv.mod_revision);
                counter = store
                    .update(&key, b(&i.to_string()), counter.mod_revision)
                    .await
                    .unwrap();
                acked.push(counter.mod_revision);
                if i % 10 == 0 {
                    let d = store
                        .delete(&format!("/registry/w{w}/k{i}"), Some(kv.mod_revision))
                        .await
                        .unwrap();
                    acked.push(d.mod_revision);
                }
            }
            acked
        }));
    }
    // A second watch starts from the beginning while the writers run, and more start from
    // whatever the current revision is at the time (history/live hand-over under load).
    let mut replayed = store.watch("/registry/", start).await.unwrap();
    let mut midway = Vec::new();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(15)).await;
        let after = store.current_revision().await.unwrap();
        midway.push((after, store.watch("/registry/", after).await.unwrap()));
    }

    let mut acked = BTreeSet::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    let total = acked.len();
    assert_eq!(
        total,
        WRITERS * (1 + 2 * PER_WRITER + PER_WRITER.div_ceil(10))
    );
    let end = store.current_revision().await.unwrap();
    assert_eq!(
        end - start,
        total as i64,
        "acked revisions are all the revisions"
    );

    for w in [&mut live, &mut replayed] {
        let mut seen = Vec::with_capacity(total);
        while seen.len() < total {
            seen.push(next_event(w).await.revision());
        }
        assert!(
            seen.windows(2).all(|p| p[0] < p[1]),
            "strictly increasing revisions"
        );
        assert_eq!(
            seen.into_iter().collect::<BTreeSet<_>>(),
            acked,
            "no event missing"
        );
        assert_quiet(w).await;
    }
    for (after, mut w) in midway {
        let want: Vec<Revision> = ((after + 1)..=end).collect();
        let mut seen = Vec::with_capacity(want.len());
        while seen.len() < want.len() {
            seen.push(next_event(&mut w).await.revision());
        }
        assert_eq!(
            seen, want,
            "a watch from {after} sees every later revision once, in order"
        );
        assert_quiet(&mut w).await;
    }
}

pub async fn concurrent_conflicting_updates_have_one_winner(store: DynStore) {
    for round in 0..5 {
        let key = format!("/r/contended{round}");
        let base = store.create(&key, b("base")).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..16 {
            let store = store.clone();
            let key = key.clone();
            tasks.push(tokio::spawn(async move {
                if i % 4 == 3 {
                    store.delete(&key, Some(base.mod_revision)).await
                } else {
                    store
                        .update(&key, b(&format!("writer{i}")), base.mod_revision)
                        .await
                }
            }));
        }
        let mut winners = Vec::new();
        let mut conflicts = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(kv) => winners.push(kv),
                Err(StorageError::Conflict { current, .. }) => conflicts.push(current),
                Err(StorageError::NotFound { .. }) => conflicts.push(None),
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "exactly one write from the same revision wins"
        );
        assert_eq!(conflicts.len(), 15);
        let winner = &winners[0];
        let now = store.get(&key).await.unwrap();
        if now.is_some() {
            assert_eq!(now.as_ref(), Some(winner));
            assert!(
                conflicts.iter().all(|c| c.as_ref() == Some(winner)),
                "conflicts carry the winner"
            );
        } else {
            assert!(
                conflicts.iter().all(Option::is_none),
                "the key was deleted by the winner"
            );
        }
    }
}
