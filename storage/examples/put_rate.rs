//! Create rate of a store (SQLite, or etcd with `--etcd`) with N concurrent clients.
//!
//! ```text
//! cargo run --release -p keelson-storage --example put_rate -- \
//!     [--clients 32] [--total 50000] [--value-bytes 1500] [--watchers 0] [--db PATH]
//!     [--etcd URL[,URL...] [--connections 1] [--key-prefix PREFIX]]
//! ```
//! Defaults: 32 concurrent clients, 50,000 creates of 1,500-byte values (a typical Pod), no
//! watchers, a fresh database in a temporary directory under the current directory (so on the
//! disk being measured). With `--watchers N`, N watches of `/registry/` consume every event
//! (as the API server's watch cache does) and must each see all of them. Prints creates/s and
//! the latency percentiles of one create.
//!
//! With `--etcd`, the creates go to that etcd through [`EtcdStore`] instead (one create =
//! one etcd transaction), spread over `--connections` stores (each its own gRPC connection).
//! Keys go under `--key-prefix`, by default a fresh `/put-rate/<time>` per run so that runs
//! against the same etcd do not collide. A throw-away etcd on loopback:
//!
//! ```text
//! etcd --data-dir /tmp/put-rate-etcd --listen-client-urls http://127.0.0.1:23790 \
//!     --advertise-client-urls http://127.0.0.1:23790 \
//!     --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
//!     --initial-cluster default=http://127.0.0.1:23800
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use keelson_storage::{EtcdOptions, EtcdStore, SqliteStore, Store};

/// The value after `--name`, or `default`.
fn flag<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a valid value")),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let clients: usize = flag("--clients", 32)?;
    let total: usize = flag("--total", 50_000)?;
    let value_bytes: usize = flag("--value-bytes", 1500)?;
    let watchers: usize = flag("--watchers", 0)?;
    let etcd: String = flag("--etcd", String::new())?;
    let connections: usize = flag("--connections", 1usize)?.max(1);

    // The stores the clients use (client c uses stores[c % len]) and how to close them.
    let mut stores: Vec<Arc<dyn Store>> = Vec::new();
    let mut sqlite = None;
    let mut etcd_stores = Vec::new();
    let mut _dir = None;
    if etcd.is_empty() {
        let dir = tempfile::tempdir_in(".")?;
        let path: std::path::PathBuf = flag("--db", dir.path().join("state.db"))?;
        _dir = Some(dir);
        let store = SqliteStore::open(&path)?;
        stores.push(store.clone());
        sqlite = Some(store);
    } else {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
        let key_prefix: String = flag("--key-prefix", format!("/put-rate/{}", now.as_nanos()))?;
        let mut opts = EtcdOptions::new(etcd.split(','));
        opts.key_prefix = key_prefix.clone();
        for _ in 0..connections {
            let store = EtcdStore::connect(opts.clone()).await?;
            stores.push(store.clone());
            etcd_stores.push(store);
        }
        println!(
            "etcd {etcd}, {connections} connection(s), keys under {key_prefix:?}, etcd revision {}",
            stores[0].current_revision().await?
        );
    }
    let store = stores[0].clone();
    let start = store.current_revision().await?;
    let mut watches = Vec::new();
    for _ in 0..watchers {
        let mut stream = store.watch("/registry/", start).await?;
        watches.push(tokio::spawn(async move {
            let mut seen = 0usize;
            let mut last = start;
            while seen < total {
                match stream.next().await {
                    Some(Ok(event)) if event.revision() > last => {
                        last = event.revision();
                        seen += 1;
                    }
                    other => return Err(format!("watch failed after {seen} events: {other:?}")),
                }
            }
            Ok(())
        }));
    }
    let value = Bytes::from(vec![b'x'; value_bytes]);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let store = stores[c % stores.len()].clone();
        let value = value.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let key = format!("/registry/pods/ns{}/pod-{c}-{i}", i % 10);
                let t = Instant::now();
                store.create(&key, value.clone()).await?;
                latencies.push(t.elapsed());
            }
            Ok::<_, keelson_storage::StorageError>(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    for t in tasks {
        latencies.extend(t.await??);
    }
    let elapsed = started.elapsed();
    for w in watches {
        w.await??;
    }
    let watched = started.elapsed();
    latencies.sort();
    println!(
        "{total} creates of {value_bytes} B with {clients} clients in {:.2}s: {:.0} creates/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    if watchers > 0 {
        println!(
            "{watchers} watchers saw all {total} events {:.2}s after the start",
            watched.as_secs_f64()
        );
    }
    if let Some(store) = sqlite {
        store.close().await;
    }
    for store in etcd_stores {
        store.close().await;
    }
    Ok(())
}
