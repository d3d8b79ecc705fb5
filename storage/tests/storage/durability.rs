//! An acknowledged write survives `kill -9` of the process that made it.
//!
//! The test re-executes its own binary as a child (selected by an environment variable) that
//! writes with many concurrent tasks (so through group commit) and prints every write the
//! store acknowledged. The parent SIGKILLs the child in the middle of the stream, reopens
//! the database and checks that every acknowledged write is there.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use keelson_storage::{SqliteStore, Store};

const CHILD_ENV: &str = "KEELSON_STORAGE_DURABILITY_CHILD_DB";
const TEST_NAME: &str = "durability::acknowledged_writes_survive_sigkill";
const TASKS: usize = 16;

#[test]
fn acknowledged_writes_survive_sigkill() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        child(&path);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    for round in 0..2 {
        // Round 1 reopens a database that already went through one kill.
        let before = if round == 0 { 0 } else { reopen_revision(&db) };
        let (acked_creates, acked_counters) = run_and_kill(&db, kill_after(round));
        assert!(
            acked_creates.len() * 2 + TASKS >= kill_after(round),
            "the child acknowledged {} creates",
            acked_creates.len()
        );

        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let store = SqliteStore::open(&db).unwrap();
            for (key, (rev, value)) in &acked_creates {
                let kv = store.get(key).await.unwrap();
                let kv =
                    kv.unwrap_or_else(|| panic!("acknowledged create of {key} at {rev} was lost"));
                assert_eq!(kv.mod_revision, *rev, "{key}");
                assert_eq!(kv.value, Bytes::from(value.clone()), "{key}");
                assert!(*rev > before);
            }
            for (key, (rev, _)) in &acked_counters {
                let kv = store
                    .get(key)
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("{key} lost"));
                // A write may have committed without its acknowledgement being printed.
                assert!(
                    kv.mod_revision >= *rev,
                    "{key}: acknowledged update at {rev} lost"
                );
            }
            let max_acked = acked_creates
                .values()
                .chain(acked_counters.values())
                .map(|(r, _)| *r)
                .max();
            assert!(store.current_revision().await.unwrap() >= max_acked.unwrap_or(0));
            // The store still works after the crash.
            store
                .create(&format!("/after-crash/{round}"), Bytes::new())
                .await
                .unwrap();
            store.close().await;
        });
    }
}

fn reopen_revision(db: &std::path::Path) -> i64 {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(db).unwrap();
        let r = store.current_revision().await.unwrap();
        store.close().await;
        r
    })
}

type Acked = BTreeMap<String, (i64, String)>;

/// Runs the child until it acknowledged `kill_after` writes, SIGKILLs it, and returns what
/// it acknowledged: creates, and the last acknowledged update of each counter key.
fn run_and_kill(db: &std::path::Path, kill_after: usize) -> (Acked, Acked) {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, db)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut creates = Acked::new();
    let mut counters = Acked::new();
    let mut record = |line: &str| {
        let mut parts = line.split(' ');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("ACK"), Some(key), Some(rev), Some(value)) => {
                let rev: i64 = rev.parse().unwrap();
                let entry = (rev, value.to_owned());
                if key.contains("/counter") {
                    let e = counters.entry(key.to_owned()).or_insert(entry.clone());
                    if e.0 < rev {
                        *e = entry;
                    }
                } else {
                    assert!(
                        creates.insert(key.to_owned(), entry).is_none(),
                        "{key} created twice"
                    );
                }
                true
            }
            _ => false,
        }
    };
    let started = Instant::now();
    let mut acks = 0;
    while acks < kill_after {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the child is too slow"
        );
        let line = lines.next().expect("the child ended early").unwrap();
        if record(&line) {
            acks += 1;
        }
    }
    // SIGKILL, in the middle of the stream of writes.
    child.kill().unwrap();
    // What it printed before dying was acknowledged too.
    for line in lines {
        let Ok(line) = line else { break };
        record(&line);
    }
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the child died of SIGKILL, while writing: {status}"
    );
    (creates, counters)
}

/// Writes forever (until killed) from many tasks, printing each acknowledged write.
fn child(path: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(path).unwrap();
        let base = store.current_revision().await.unwrap();
        let mut tasks = Vec::new();
        for t in 0..TASKS {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let counter = format!("/durability/{base}/t{t}/counter");
                let mut counter_rev = store
                    .create(&counter, Bytes::from_static(b"start"))
                    .await
                    .unwrap()
                    .mod_revision;
                let deadline = Instant::now() + Duration::from_secs(120);
                for i in 0.. {
                    if Instant::now() > deadline {
                        break;
                    }
                    let key = format!("/durability/{base}/t{t}/k{i}");
                    let value = format!("value-{t}-{i}");
                    let kv = store
                        .create(&key, Bytes::from(value.clone()))
                        .await
                        .unwrap();
                    ack(&key, kv.mod_revision, &value);
                    let value = format!("count-{i}");
                    counter_rev = store
                        .update(&counter, Bytes::from(value.clone()), counter_rev)
                        .await
                        .unwrap()
                        .mod_revision;
                    ack(&counter, counter_rev, &value);
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
}

fn ack(key: &str, rev: i64, value: &str) {
    let mut out = std::io::stdout().lock();
    // The parent went away: stop.
    if writeln!(out, "ACK {key} {rev} {value}")
        .and_then(|()| out.flush())
        .is_err()
    {
        std::process::exit(1);
    }
}

/// Acknowledgements to wait for before the kill in each round.
fn kill_after(round: usize) -> usize {
    400 + round * 300
}
