//! The API server on etcd: two API servers on one etcd serve each other's writes.

use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Result};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use kube::runtime::watcher::{self, Event};
use kube::ResourceExt;

use crate::harness::{Etcd, Server};

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
