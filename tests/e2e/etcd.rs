//! The API server on etcd: two API servers on one etcd serve each other's writes.

use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Result};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use kube::runtime::watcher::{self, Event};
use kube::ResourceExt;

use crate::harness::{Etcd, EtcdCluster, Server};

fn cm(name: &str) -> Result<ConfigMap> {
    Ok(serde_json::from_value(
        serde_json::json!({"metadata": {"name": name}, "data": {"k": "v"}}),
    )?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_api_servers_on_one_etcd() -> Result<()> {
    let etcd = Etcd::start()?;
    let args = vec!["--etcd-servers".to_string(), etcd.url.clone()];
    let mut a = Server::start_with(&args)?;
    let b = Server::start_with(&args)?;
    let on_a: Api<ConfigMap> = Api::namespaced(a.client().await?, "default");
    let on_b: Api<ConfigMap> = Api::namespaced(b.client().await?, "default");

    // A watch on B sees what is created through A, within a second.
    let mut stream = watcher::watcher(on_b.clone(), watcher::Config::default()).boxed();
    loop {
        match tokio::time::timeout(Duration::from_secs(30), stream.try_next()).await?? {
            Some(Event::InitDone) => break,
            Some(_) => {}
            None => return Err(anyhow!("watch ended")),
        }
    }
    let created_at = Instant::now();
    let created = on_a.create(&PostParams::default(), &cm("from-a")?).await?;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.try_next()).await?? {
            Some(Event::Apply(o)) if o.name_any() == "from-a" => break,
            Some(_) => {}
            None => return Err(anyhow!("watch ended")),
        }
    }
    let seen_after = created_at.elapsed();
    ensure!(
        seen_after < Duration::from_secs(1),
        "seen after {seen_after:?}"
    );

    // resourceVersions are shared: a stale update through B is a conflict.
    let mut fresh = created.clone();
    fresh.data = Some([("k".to_string(), "a2".to_string())].into());
    on_a.replace("from-a", &PostParams::default(), &fresh)
        .await?;
    let mut stale = created.clone();
    stale.data = Some([("k".to_string(), "b2".to_string())].into());
    let err = on_b
        .replace("from-a", &PostParams::default(), &stale)
        .await
        .err();
    ensure!(
        matches!(err, Some(kube::Error::Api(ref s)) if s.code == 409),
        "{err:?}"
    );

    // The data lives in etcd: A restarted finds it.
    tokio::task::block_in_place(|| a.restart())?;
    let on_a: Api<ConfigMap> = Api::namespaced(a.client().await?, "default");
    let got = on_a.get("from-a").await?;
    ensure!(got.data.and_then(|d| d.get("k").cloned()).as_deref() == Some("a2"));
    Ok(())
}

/// Creates `name`, retrying failed attempts until `deadline`; a create that etcd applied
/// but whose answer was lost comes back as AlreadyExists, which counts as acknowledged.
async fn create_until_acknowledged(
    api: &Api<ConfigMap>,
    name: &str,
    deadline: Duration,
) -> Result<u32> {
    let started = Instant::now();
    let mut failures = 0;
    loop {
        match api.create(&PostParams::default(), &cm(name)?).await {
            Ok(_) => return Ok(failures),
            Err(kube::Error::Api(s)) if s.code == 409 => return Ok(failures),
            Err(e) => {
                failures += 1;
                ensure!(
                    started.elapsed() < deadline,
                    "{name} not acknowledged within {deadline:?}: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_member_etcd_loses_its_leader_during_writes() -> Result<()> {
    let mut cluster = EtcdCluster::start(3)?;
    let server = Server::start_with(&["--etcd-servers".to_string(), cluster.urls()])?;
    let api: Api<ConfigMap> = Api::namespaced(server.client().await?, "default");
    let mut failed_attempts = 0;
    for i in 0..90 {
        if i == 30 {
            let leader = cluster.leader()?;
            cluster.members[leader].kill();
        }
        // The API must keep accepting writes: every write lands within a few seconds of
        // the kill (a new leader is elected in about one election timeout).
        failed_attempts +=
            create_until_acknowledged(&api, &format!("cm-{i}"), Duration::from_secs(15)).await?;
    }
    eprintln!("failed attempts around the kill: {failed_attempts}");
    // No acknowledged write is lost, seen through a fresh consistent list.
    let names: std::collections::BTreeSet<String> = api
        .list(&Default::default())
        .await?
        .items
        .iter()
        .map(|c| c.name_any())
        .collect();
    for i in 0..90 {
        ensure!(names.contains(&format!("cm-{i}")), "cm-{i} was lost");
    }
    Ok(())
}

/// Waits until the watcher task reports `name`.
async fn wait_seen(
    seen: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    name: &str,
) -> Result<()> {
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(n) = seen.recv().await {
            if n == name {
                return Ok(());
            }
        }
        Err(anyhow!("watcher ended"))
    })
    .await
    .map_err(|_| anyhow!("the watcher did not see {name}"))?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_stopped_and_restarted_under_a_running_api_server() -> Result<()> {
    let mut etcd = Etcd::start()?;
    let server = Server::start_with(&["--etcd-servers".to_string(), etcd.url.clone()])?;
    let api: Api<ConfigMap> = Api::namespaced(server.client().await?, "default");
    let mut stream = watcher::watcher(api.clone(), watcher::Config::default()).boxed();
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(event) = stream.next().await {
            if let Ok(Event::Apply(o) | Event::InitApply(o)) = event {
                let _ = seen_tx.send(o.name_any());
            }
        }
    });
    api.create(&PostParams::default(), &cm("before")?).await?;
    wait_seen(&mut seen, "before").await?;

    etcd.kill();
    // While etcd is down, writes and consistent reads fail with a 5xx Status, within the
    // request timeout, rather than hang.
    let impatient: Api<ConfigMap> =
        Api::namespaced(server.client_without_retries().await?, "default");
    for attempt in ["create", "get"] {
        let started = Instant::now();
        let result = match attempt {
            "create" => {
                impatient
                    .create(&PostParams::default(), &cm("during")?)
                    .await
            }
            _ => impatient.get("before").await,
        };
        let elapsed = started.elapsed();
        match result {
            Err(kube::Error::Api(s)) => ensure!(s.code >= 500, "{attempt}: {s:?}"),
            other => return Err(anyhow!("{attempt} while etcd is down: {other:?}")),
        }
        ensure!(
            elapsed < Duration::from_secs(20),
            "{attempt} took {elapsed:?}"
        );
    }

    etcd.restart()?;
    // Service resumes by itself, and the same watcher sees the new object.
    create_until_acknowledged(&api, "after", Duration::from_secs(30)).await?;
    ensure!(api.get("before").await.is_ok());
    wait_seen(&mut seen, "after").await?;
    Ok(())
}
