//! The etcd backend: the shared conformance suite (on a bare etcd, and again under a key
//! prefix among other users' keys), plus what is specific to etcd: its revisions, the key
//! prefix, outages (etcd killed, frozen, restarted), watches that resume by themselves or
//! end with `Compacted`, compactions made by other clients, large lists, and TLS.
//!
//! Every test starts its own etcd (`etcd_server.rs`).

use crate::conformance;
use crate::etcd_server::{EtcdServer, ServerTls};

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use conformance::{assert_quiet, next_event};
use futures::StreamExt;
use keelson_storage::{
    spawn_compactor, CompactionPolicy, EtcdOptions, EtcdStore, EtcdTls, EventKind, KeyValue,
    StorageError, Store,
};

/// The key prefix of the prefixed conformance runs.
const PREFIX: &str = "/cluster-a";

/// A store under [`PREFIX`] on an etcd that already holds other users' keys, among them
/// the very keys the conformance suite writes (unprefixed, or under a neighbour prefix).
async fn prefixed_store_among_foreign_keys(etcd: &EtcdServer) -> Arc<EtcdStore> {
    let mut raw = etcd_client::Client::connect([etcd.url()], None)
        .await
        .unwrap();
    for key in [
        "/r/a",
        "/registry/pods/ns1/a",
        "/registry/w0/counter",
        "/cluster",
        "/cluster-",
        "/cluster-b/r/a",
        "/cluster-b/registry/pods/ns1/a",
        "/cluster-A/r/a",
    ] {
        raw.put(key, "foreign", None).await.unwrap();
    }
    let mut opts = etcd.options();
    // Prepended as is: "/r/a" is stored as "/cluster-a/r/a".
    opts.key_prefix = PREFIX.to_owned();
    EtcdStore::connect(opts).await.unwrap()
}

macro_rules! conformance_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let etcd = EtcdServer::start().await;
                let store = etcd.store().await;
                conformance::$name(store.clone()).await;
                store.close().await;
            }
        )*

        /// The same suite under a key prefix, with other users' keys around it.
        mod under_a_key_prefix {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let etcd = EtcdServer::start().await;
                    let store = prefixed_store_among_foreign_keys(&etcd).await;
                    conformance::$name(store.clone()).await;
                    store.close().await;
                }
            )*
        }
    };
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

fn b(s: &str) -> Bytes {
    Bytes::from(s.to_owned())
}

/// Retries `f` until it succeeds (etcd coming back), failing the test after 30 s.
async fn until_ok<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = keelson_storage::Result<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if Instant::now() < deadline => {
                eprintln!("{what}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{what} still failing after 30 s: {e}"),
        }
    }
}

/// `fut` fails with `Unavailable`, and no later than `bound` after it started.
async fn expect_unavailable<T: std::fmt::Debug>(
    what: &str,
    bound: Duration,
    fut: impl Future<Output = keelson_storage::Result<T>>,
) {
    let started = Instant::now();
    // The outer timeout only keeps a hanging call from hanging the test.
    let result = tokio::time::timeout(bound + Duration::from_secs(30), fut).await;
    let elapsed = started.elapsed();
    match result {
        Ok(Err(StorageError::Unavailable(msg))) => {
            eprintln!("{what}: Unavailable after {elapsed:?}: {msg}");
            assert!(
                elapsed <= bound,
                "{what}: Unavailable only after {elapsed:?} (bound {bound:?}): {msg}"
            );
        }
        Ok(other) => panic!("{what} while etcd is unreachable: {other:?}"),
        Err(_) => panic!("{what} hung while etcd is unreachable"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revisions_are_etcds_own() {
    let etcd = EtcdServer::start().await;
    let store = etcd.store().await;
    // etcd counts its own creation as revision 1.
    assert_eq!(store.current_revision().await.unwrap(), 1);
    assert_eq!(store.compacted_revision().await.unwrap(), 0);
    let empty = store.list("", None, 0, None).await.unwrap();
    assert_eq!((empty.revision, empty.kvs.len()), (1, 0));
    let a = store.create("/k/a", b("a")).await.unwrap();
    assert_eq!((a.create_revision, a.mod_revision), (2, 2));

    // Another etcd client sees the same revisions, and the store sees its writes with them.
    let mut raw = etcd_client::Client::connect([etcd.url()], None)
        .await
        .unwrap();
    let got = raw.get("/k/a", None).await.unwrap();
    assert_eq!(got.kvs()[0].mod_revision(), a.mod_revision);
    assert_eq!(got.kvs()[0].value(), b"a");
    let put = raw.put("/k/b", "b", None).await.unwrap();
    let rev = put.header().unwrap().revision();
    assert_eq!(rev, 3);
    let kv = store.get("/k/b").await.unwrap().unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision), (rev, rev));
    assert_eq!(store.current_revision().await.unwrap(), rev);
    let updated = store.update("/k/b", b("b2"), rev).await.unwrap();
    assert_eq!(updated.mod_revision, rev + 1);
    assert_eq!(updated.create_revision, rev);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_live_under_the_key_prefix_and_other_keys_are_invisible() {
    let etcd = EtcdServer::start().await;
    let mut raw = etcd_client::Client::connect([etcd.url()], None)
        .await
        .unwrap();
    raw.put("/registry/pods/ns/a", "foreign", None)
        .await
        .unwrap();
    raw.put("/c2/registry/pods/ns/a", "neighbour", None)
        .await
        .unwrap();
    let mut opts = etcd.options();
    opts.key_prefix = "/c1".into();
    let store = EtcdStore::connect(opts).await.unwrap();
    assert_eq!(store.key_prefix(), "/c1");

    // The same key as the foreign one is free under the prefix.
    assert_eq!(store.get("/registry/pods/ns/a").await.unwrap(), None);
    let mine = store
        .create("/registry/pods/ns/a", b("mine"))
        .await
        .unwrap();
    let stored = raw.get("/c1/registry/pods/ns/a", None).await.unwrap();
    assert_eq!(stored.kvs()[0].value(), b"mine");
    assert_eq!(stored.kvs()[0].mod_revision(), mine.mod_revision);
    let foreign = raw.get("/registry/pods/ns/a", None).await.unwrap();
    assert_eq!(foreign.kvs()[0].value(), b"foreign");

    let list = store.list("", None, 0, None).await.unwrap();
    assert_eq!(list.kvs, vec![mine.clone()]);
    assert_eq!(store.count("").await.unwrap(), 1);
    assert_eq!(store.count("/registry/").await.unwrap(), 1);

    // Watches see the prefix's keys only, with the prefix removed.
    let mut w = store.watch("", mine.mod_revision).await.unwrap();
    raw.put("/registry/pods/ns/b", "foreign", None)
        .await
        .unwrap();
    raw.put("/c2/registry/pods/ns/b", "neighbour", None)
        .await
        .unwrap();
    let c = store.create("/registry/pods/ns/c", b("c")).await.unwrap();
    let e = next_event(&mut w).await;
    assert_eq!((e.kind, e.kv, e.prev), (EventKind::Put, c.clone(), None));
    let deleted = store.delete("/registry/pods/ns/a", None).await.unwrap();
    let e = next_event(&mut w).await;
    assert_eq!(
        (e.kind, e.kv, e.prev),
        (EventKind::Delete, deleted, Some(mine))
    );
    assert_quiet(&mut w).await;
    // The foreign key was untouched by the delete.
    let foreign = raw.get("/registry/pods/ns/a", None).await.unwrap();
    assert_eq!(foreign.kvs()[0].value(), b"foreign");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_fail_with_unavailable_while_etcd_is_down_and_work_after_it_restarts() {
    let mut etcd = EtcdServer::start().await;
    let timeout = Duration::from_secs(1);
    let mut opts = etcd.options();
    opts.request_timeout = timeout;
    let store = EtcdStore::connect(opts).await.unwrap();
    let a = store.create("/k/a", b("a")).await.unwrap();
    let live = store.watch("/k/", a.mod_revision).await.unwrap();

    etcd.kill();
    // Every call answers Unavailable within the request timeout (plus scheduling slack).
    let bound = timeout + Duration::from_millis(1500);
    expect_unavailable("current_revision", bound, store.current_revision()).await;
    expect_unavailable("get", bound, store.get("/k/a")).await;
    expect_unavailable("list", bound, store.list("/k/", None, 0, None)).await;
    expect_unavailable("count", bound, store.count("/k/")).await;
    expect_unavailable("create", bound, store.create("/k/b", b("b"))).await;
    expect_unavailable(
        "update",
        bound,
        store.update("/k/a", b("x"), a.mod_revision),
    )
    .await;
    expect_unavailable("delete", bound, store.delete("/k/a", None)).await;
    expect_unavailable("watch", bound, async {
        store.watch("/k/", 0).await.map(|_| ())
    })
    .await;
    expect_unavailable("compact", bound, store.compact(a.mod_revision)).await;
    expect_unavailable("compacted_revision", bound, store.compacted_revision()).await;
    drop(live);

    // A store set up while etcd is down is set up fine, and fails the same way.
    let mut opts = etcd.options();
    opts.request_timeout = timeout;
    let late = EtcdStore::connect(opts).await.unwrap();
    expect_unavailable("get on a new store", bound, late.get("/k/a")).await;

    etcd.restart().await;
    // The same stores work again, with the data and the revision counter intact.
    let got = until_ok("get after restart", || store.get("/k/a")).await;
    assert_eq!(got, Some(a.clone()));
    assert_eq!(late.get("/k/a").await.unwrap(), Some(a.clone()));
    let b2 = store.create("/k/b", b("b")).await.unwrap();
    assert_eq!(b2.mod_revision, a.mod_revision + 1);
    assert_eq!(
        store.list("/k/", None, 0, None).await.unwrap().kvs,
        vec![a, b2]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_frozen_etcd_fails_calls_with_unavailable_within_the_timeout() {
    let etcd = EtcdServer::start().await;
    let timeout = Duration::from_secs(1);
    let mut opts = etcd.options();
    opts.request_timeout = timeout;
    let store = EtcdStore::connect(opts).await.unwrap();
    let a = store.create("/k/a", b("a")).await.unwrap();

    // SIGSTOP: the connection stays open but nothing answers, so only the deadline helps.
    etcd.freeze(true);
    let bound = timeout + Duration::from_millis(1500);
    for _ in 0..2 {
        let started = Instant::now();
        expect_unavailable("get", bound, store.get("/k/a")).await;
        assert!(
            started.elapsed() >= timeout - Duration::from_millis(50),
            "failed before the timeout: {:?}",
            started.elapsed()
        );
    }
    expect_unavailable("create", bound, store.create("/k/b", b("b"))).await;
    expect_unavailable("list", bound, store.list("/k/", None, 0, None)).await;
    expect_unavailable("watch", bound, async {
        store.watch("/k/", 0).await.map(|_| ())
    })
    .await;

    etcd.freeze(false);
    let got = until_ok("get after thaw", || store.get("/k/a")).await;
    assert_eq!(got, Some(a));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_watch_resumes_by_itself_after_etcd_restarts() {
    let mut etcd = EtcdServer::start().await;
    let mut opts = etcd.options();
    opts.request_timeout = Duration::from_secs(2);
    let store = EtcdStore::connect(opts).await.unwrap();
    let start = store.current_revision().await.unwrap();
    let mut w = store.watch("/k/", start).await.unwrap();

    let mut seen: Vec<KeyValue> = Vec::new();
    let mut acked: Vec<KeyValue> = Vec::new();
    for round in 0..3 {
        for i in 0..5 {
            let key = format!("/k/r{round}-{i}");
            acked.push(until_ok("create", || store.create(&key, b("v"))).await);
        }
        // Also a write outside the watched prefix: it must not show up.
        let other = format!("/other/{round}");
        until_ok("create", || store.create(&other, b("v"))).await;
        while seen.len() < acked.len() {
            seen.push(next_event(&mut w).await.kv);
        }
        assert_eq!(seen, acked, "round {round}: every event once, in order");

        // Kill etcd. While it is down the watch yields nothing and does not end.
        etcd.kill();
        if let Ok(item) = tokio::time::timeout(Duration::from_millis(700), w.next()).await {
            panic!("watch item while etcd is down: {item:?}");
        }
        etcd.restart().await;
        // Writes right after the restart, while the watch may still be reconnecting: it
        // catches up from etcd's history.
    }
    for i in 0..5 {
        let key = format!("/k/last-{i}");
        acked.push(until_ok("create", || store.create(&key, b("v"))).await);
    }
    while seen.len() < acked.len() {
        seen.push(next_event(&mut w).await.kv);
    }
    assert_eq!(seen, acked);
    assert_quiet(&mut w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_watch_whose_history_was_compacted_while_disconnected_ends_with_compacted() {
    let mut etcd = EtcdServer::start().await;
    let mut opts = etcd.options();
    opts.request_timeout = Duration::from_secs(2);
    let store = EtcdStore::connect(opts).await.unwrap();
    let start = store.current_revision().await.unwrap();
    let mut w = store.watch("/k/", start).await.unwrap();
    let a = store.create("/k/a", b("a")).await.unwrap();
    assert_eq!(next_event(&mut w).await.kv, a);

    // etcd comes back on another client port, so the watch cannot reconnect while someone
    // else writes and compacts away the history it needs.
    etcd.kill();
    let other_port = etcd.other_port();
    etcd.restart_on(other_port).await;
    let mut other_opts = etcd.options();
    other_opts.endpoints = vec![format!("http://127.0.0.1:{other_port}")];
    let other = EtcdStore::connect(other_opts).await.unwrap();
    let b1 = other.create("/k/b", b("b")).await.unwrap();
    let c1 = other.create("/k/c", b("c")).await.unwrap();
    other.compact(c1.mod_revision).await.unwrap();
    drop(other);
    etcd.kill();
    etcd.restart().await;

    match tokio::time::timeout(Duration::from_secs(30), w.next()).await {
        Ok(Some(Err(StorageError::Compacted {
            requested,
            compacted,
        }))) => {
            assert_eq!(requested, a.mod_revision);
            assert_eq!(compacted, c1.mod_revision);
        }
        other => panic!("watch after its history was compacted: {other:?}"),
    }
    assert!(w.next().await.is_none(), "the watch ends after Compacted");
    assert!(b1.mod_revision < c1.mod_revision);
    assert_eq!(store.compacted_revision().await.unwrap(), c1.mod_revision);
    // A new watch from the compacted revision works.
    let mut again = store.watch("/k/", c1.mod_revision).await.unwrap();
    let d = store.create("/k/d", b("d")).await.unwrap();
    assert_eq!(next_event(&mut again).await.kv, d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compactions_by_other_clients_are_seen() {
    let etcd = EtcdServer::start().await;
    let one = etcd.store().await;
    let two = etcd.store().await;
    let mut kvs = Vec::new();
    for i in 0..20 {
        kvs.push(one.create(&format!("/k/{i:02}"), b("v")).await.unwrap());
    }
    assert_eq!(two.compacted_revision().await.unwrap(), 0);
    let r = |i: usize| kvs[i].mod_revision;
    one.compact(r(13)).await.unwrap();
    assert_eq!(two.compacted_revision().await.unwrap(), r(13));
    match two.list("/k/", None, 0, Some(r(5))).await {
        Err(StorageError::Compacted {
            requested,
            compacted,
        }) => assert_eq!((requested, compacted), (r(5), r(13))),
        other => panic!("list at a revision compacted by another client: {other:?}"),
    }
    match two.watch("/k/", r(5)).await {
        Err(StorageError::Compacted {
            requested,
            compacted,
        }) => assert_eq!((requested, compacted), (r(5), r(13))),
        Err(other) => panic!("watch from a compacted revision: {other}"),
        Ok(_) => panic!("watch from a revision compacted by another client started"),
    }
    // From the compacted revision on, everything is there.
    let mut w = two.watch("/k/", r(13)).await.unwrap();
    for want in &kvs[14..] {
        assert_eq!(&next_event(&mut w).await.kv, want);
    }
    assert_eq!(
        two.list("/k/", None, 0, Some(r(13))).await.unwrap().kvs,
        kvs[..14].to_vec()
    );
    // Compacting to the same revision is a no-op, to an older one is refused.
    two.compact(r(13)).await.unwrap();
    assert!(matches!(
        two.compact(r(12)).await,
        Err(StorageError::Compacted { .. })
    ));

    // A compaction by a plain etcd client, far ahead of what the stores knew.
    let mut raw = etcd_client::Client::connect([etcd.url()], None)
        .await
        .unwrap();
    raw.compact(r(18), None).await.unwrap();
    assert_eq!(one.compacted_revision().await.unwrap(), r(18));
    assert_eq!(two.compacted_revision().await.unwrap(), r(18));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_or_dropping_the_store_ends_its_watches() {
    let etcd = EtcdServer::start().await;
    let store = etcd.store().await;
    let a = store.create("/k/a", b("a")).await.unwrap();
    let mut w = store.watch("/k/", a.mod_revision).await.unwrap();
    store.close().await;
    match tokio::time::timeout(Duration::from_secs(10), w.next()).await {
        Ok(Some(Err(StorageError::Unavailable(_)))) => {}
        other => panic!("watch of a closed store: {other:?}"),
    }
    assert!(w.next().await.is_none());
    assert!(matches!(
        store.get("/k/a").await,
        Err(StorageError::Unavailable(_))
    ));
    assert!(matches!(
        store.watch("/k/", 0).await,
        Err(StorageError::Unavailable(_))
    ));

    let store = etcd.store().await;
    let mut w = store.watch("/k/", 0).await.unwrap();
    assert_eq!(next_event(&mut w).await.kv, a);
    drop(store);
    match tokio::time::timeout(Duration::from_secs(10), w.next()).await {
        Ok(Some(Err(StorageError::Unavailable(_)))) => {}
        other => panic!("watch of a dropped store: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lists_and_watches_larger_than_grpcs_default_message_limit() {
    let etcd = EtcdServer::start().await;
    let store = etcd.store().await;
    // 3,000 values of 2 KiB: 6 MiB, more than gRPC's default 4 MiB per message.
    const KEYS: usize = 3000;
    let start = store.current_revision().await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in (t..KEYS).step_by(16) {
                let value = Bytes::from(vec![b'a' + (i % 26) as u8; 2048]);
                store.create(&format!("/big/{i:05}"), value).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let list = store.list("/big/", None, 0, None).await.unwrap();
    assert_eq!(list.kvs.len(), KEYS);
    assert!(list.kvs.iter().all(|kv| kv.value.len() == 2048));
    let mut w = store.watch("/big/", start).await.unwrap();
    for _ in 0..KEYS {
        next_event(&mut w).await;
    }
    assert_quiet(&mut w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compactor_compacts_an_etcd_store() {
    let etcd = EtcdServer::start().await;
    let store = etcd.store().await;
    let policy = CompactionPolicy {
        interval: Duration::from_millis(100),
        min_retained_revisions: 10,
    };
    let compactor = spawn_compactor(&store, policy);
    let mut last = store.create("/k/a", b("0")).await.unwrap();
    for i in 1..100 {
        last = store
            .update("/k/a", b(&i.to_string()), last.mod_revision)
            .await
            .unwrap();
    }
    let current = last.mod_revision;
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.compacted_revision().await.unwrap() < current - policy.min_retained_revisions {
        assert!(Instant::now() < deadline, "the compactor did not compact");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let compacted = store.compacted_revision().await.unwrap();
    assert!(matches!(
        store.list("/k/", None, 0, Some(compacted - 1)).await,
        Err(StorageError::Compacted { .. })
    ));
    assert_eq!(store.get("/k/a").await.unwrap(), Some(last));
    drop(store);
    tokio::time::timeout(Duration::from_secs(5), compactor)
        .await
        .unwrap()
        .unwrap();
}

/// A CA, etcd's serving certificate for 127.0.0.1 and a client certificate, as PEM.
struct Pki {
    ca: String,
    ca_key: rcgen::KeyPair,
    ca_params: rcgen::CertificateParams,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.clone().self_signed(&ca_key).unwrap().pem();
        Pki {
            ca,
            ca_key,
            ca_params,
        }
    }

    /// (certificate, key) for `usage`.
    fn issue(&self, server: bool) -> (String, String) {
        let issuer = rcgen::Issuer::from_params(&self.ca_params, &self.ca_key);
        let mut params = if server {
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .unwrap()
        } else {
            rcgen::CertificateParams::new(Vec::<String>::new()).unwrap()
        };
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            if server { "etcd" } else { "keelson" },
        );
        params.extended_key_usages = vec![if server {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        }];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificates() {
    let pki = Pki::new("etcd-ca");
    let (server_cert, server_key) = pki.issue(true);
    let (client_cert, client_key) = pki.issue(false);
    let files = tempfile::tempdir().unwrap();
    let write = |name: &str, pem: &str| {
        let path = files.path().join(name);
        std::fs::write(&path, pem).unwrap();
        path
    };
    let tls = ServerTls {
        ca_pem: pki.ca.clone(),
        client_cert_pem: client_cert.clone(),
        client_key_pem: client_key.clone(),
        cert_file: write("server.crt", &server_cert),
        key_file: write("server.key", &server_key),
        ca_file: write("ca.crt", &pki.ca),
    };
    let etcd = EtcdServer::start_tls(tls).await;
    assert!(etcd.url().starts_with("https://"));

    // From files, as kube-apiserver's --etcd-cafile/--etcd-certfile/--etcd-keyfile.
    let client_tls = EtcdTls::from_files(
        Some(&files.path().join("ca.crt")),
        Some(&write("client.crt", &client_cert)),
        Some(&write("client.key", &client_key)),
    )
    .unwrap();
    let mut opts = EtcdOptions::new([etcd.url()]);
    opts.tls = Some(client_tls);
    let store = EtcdStore::connect(opts.clone()).await.unwrap();
    let a = store.create("/k/a", b("a")).await.unwrap();
    assert_eq!(store.get("/k/a").await.unwrap(), Some(a.clone()));
    let mut w = store.watch("/k/", 0).await.unwrap();
    assert_eq!(next_event(&mut w).await.kv, a);

    let short = Duration::from_secs(2);
    let refused = |opts: EtcdOptions| async move {
        let store = EtcdStore::connect(opts).await?;
        store.get("/k/a").await
    };
    // Without a client certificate etcd refuses the connection.
    let mut no_cert = opts.clone();
    no_cert.request_timeout = short;
    no_cert.tls = Some(EtcdTls {
        ca_pem: Some(pki.ca.clone().into_bytes()),
        ..EtcdTls::default()
    });
    assert!(refused(no_cert).await.is_err());
    // A certificate from another CA is refused, and so is etcd's certificate by a client
    // that trusts another CA.
    let stranger = Pki::new("other-ca");
    let (cert, key) = stranger.issue(false);
    let mut wrong_cert = opts.clone();
    wrong_cert.request_timeout = short;
    wrong_cert.tls = Some(EtcdTls {
        ca_pem: Some(pki.ca.clone().into_bytes()),
        client_cert_pem: Some(cert.into_bytes()),
        client_key_pem: Some(key.into_bytes()),
        domain_name: None,
    });
    assert!(refused(wrong_cert).await.is_err());
    let mut wrong_ca = opts.clone();
    wrong_ca.request_timeout = short;
    if let Some(tls) = wrong_ca.tls.as_mut() {
        tls.ca_pem = Some(stranger.ca.clone().into_bytes());
    }
    assert!(refused(wrong_ca).await.is_err());
    // Plain HTTP to a TLS endpoint is refused as a configuration error.
    let mut plain = EtcdOptions::new([etcd.url().replace("https://", "http://")]);
    plain.request_timeout = short;
    assert!(refused(plain).await.is_err());
    // A certificate without its key is a configuration error.
    let mut half = opts;
    if let Some(tls) = half.tls.as_mut() {
        tls.client_key_pem = None;
    }
    assert!(matches!(
        EtcdStore::connect(half).await,
        Err(StorageError::Internal(_))
    ));
}
