//! kube-rs against a running server: typed CRUD, watchers (incl. 410 recovery and
//! streaming lists), paging, optimistic concurrency.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use anyhow::{anyhow, ensure, Result};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, ListParams, PatchParams, PostParams};
use kube::runtime::watcher::{self, Event};
use kube::ResourceExt;
use serde_json::json;

use crate::harness::Server;

fn configmap(name: &str, value: &str) -> ConfigMap {
    ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("k".to_string(), value.to_string())])),
        ..Default::default()
    }
}

#[tokio::test]
async fn pod_crud_round_trip() -> Result<()> {
    let s = Server::start()?;
    let pods: Api<Pod> = Api::namespaced(s.client().await?, "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}
    }))?;
    let created = pods.create(&PostParams::default(), &pod).await?;
    ensure!(created.uid().is_some() && created.resource_version().is_some());
    ensure!(created.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending"));
    ensure!(
        created
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.as_deref())
            == Some("default")
    );
    let got = pods.get("web").await?;
    ensure!(got.uid() == created.uid());
    let patched = pods
        .patch(
            "web",
            &PatchParams::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"labels": {"tier": "a"}}})),
        )
        .await?;
    ensure!(patched.labels().get("tier").map(String::as_str) == Some("a"));
    let listed = pods.list(&ListParams::default().labels("app=web")).await?;
    ensure!(listed.items.len() == 1);
    pods.delete("web", &DeleteParams::default()).await?;
    let err = pods
        .get("web")
        .await
        .err()
        .ok_or_else(|| anyhow!("pod still there"))?;
    ensure!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn stale_update_is_a_conflict() -> Result<()> {
    let s = Server::start()?;
    let cms: Api<ConfigMap> = Api::namespaced(s.client().await?, "default");
    let base = cms
        .create(&PostParams::default(), &configmap("race", "0"))
        .await?;
    let mut first = base.clone();
    first.data = Some(BTreeMap::from([("k".into(), "1".into())]));
    let mut second = base.clone();
    second.data = Some(BTreeMap::from([("k".into(), "2".into())]));
    let pp = PostParams::default();
    let (a, b) = tokio::join!(
        cms.replace("race", &pp, &first),
        cms.replace("race", &pp, &second)
    );
    let codes: Vec<u16> = [a, b]
        .into_iter()
        .map(|r| match r {
            Ok(_) => 200,
            Err(kube::Error::Api(s)) => s.code,
            Err(_) => 0,
        })
        .collect();
    ensure!(codes.contains(&200) && codes.contains(&409), "{codes:?}");
    Ok(())
}

async fn next_event(
    stream: &mut (impl futures::Stream<Item = Result<Event<ConfigMap>, watcher::Error>> + Unpin),
) -> Result<Event<ConfigMap>> {
    tokio::time::timeout(Duration::from_secs(60), stream.try_next())
        .await?
        .map_err(|e| anyhow!("{e}"))?
        .ok_or_else(|| anyhow!("watch ended"))
}

fn describe(e: &Event<ConfigMap>) -> String {
    match e {
        Event::Apply(o) => format!("Apply {}", o.name_any()),
        Event::Delete(o) => format!("Delete {}", o.name_any()),
        Event::Init => "Init".into(),
        Event::InitApply(o) => format!("InitApply {}", o.name_any()),
        Event::InitDone => "InitDone".into(),
    }
}

/// Waits for the event about `name` for which `pred` holds, skipping others.
async fn expect(
    stream: &mut (impl futures::Stream<Item = Result<Event<ConfigMap>, watcher::Error>> + Unpin),
    pred: impl Fn(&Event<ConfigMap>) -> bool,
) -> Result<()> {
    for _ in 0..100 {
        let event = next_event(stream).await?;
        eprintln!("watch event: {}", describe(&event));
        if pred(&event) {
            return Ok(());
        }
    }
    Err(anyhow!("event never came"))
}

async fn watcher_sees_changes(streaming: bool) -> Result<()> {
    let s = Server::start()?;
    let cms: Api<ConfigMap> = Api::namespaced(s.client().await?, "default");
    cms.create(&PostParams::default(), &configmap("before", "x"))
        .await?;
    let config = if streaming {
        watcher::Config::default().streaming_lists()
    } else {
        watcher::Config::default()
    };
    let mut stream = watcher::watcher(cms.clone(), config).boxed();
    // A streaming list starts at resourceVersion 0 ("any"), which the watch cache may serve
    // from just before "before" landed in it; "before" then comes right after InitDone, as
    // upstream allows. The non-streaming list is consistent and must carry it.
    let (mut before_seen, mut init_done) = (false, false);
    for _ in 0..100 {
        if before_seen && init_done {
            break;
        }
        match next_event(&mut stream).await? {
            Event::InitApply(cm) if cm.name_any() == "before" => before_seen = true,
            Event::Apply(cm) if cm.name_any() == "before" && streaming => before_seen = true,
            Event::InitDone => init_done = true,
            _ => {}
        }
    }
    ensure!(before_seen && init_done, "initial state never arrived");
    cms.create(&PostParams::default(), &configmap("live", "1"))
        .await?;
    expect(
        &mut stream,
        |e| matches!(e, Event::Apply(cm) if cm.name_any() == "live"),
    )
    .await?;
    cms.patch(
        "live",
        &PatchParams::default(),
        &kube::api::Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await?;
    expect(&mut stream, |e| matches!(e, Event::Apply(cm) if cm.name_any() == "live" && cm.data.as_ref().and_then(|d| d.get("k")).map(String::as_str) == Some("2"))).await?;
    cms.delete("live", &DeleteParams::default()).await?;
    expect(
        &mut stream,
        |e| matches!(e, Event::Delete(cm) if cm.name_any() == "live"),
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn watcher_sees_added_modified_deleted() -> Result<()> {
    watcher_sees_changes(false).await
}

#[tokio::test]
async fn watcher_with_streaming_lists() -> Result<()> {
    watcher_sees_changes(true).await
}

/// After a restart the new server's watch window starts at its own start: the watcher's
/// resourceVersion is too old, it gets 410 in the stream, relists and catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_relists_after_410() -> Result<()> {
    let mut s = Server::start()?;
    let cms: Api<ConfigMap> = Api::namespaced(s.client().await?, "default");
    cms.create(&PostParams::default(), &configmap("a", "1"))
        .await?;
    let mut stream = watcher::watcher(cms.clone(), watcher::Config::default()).boxed();
    expect(&mut stream, |e| matches!(e, Event::InitDone)).await?;
    // A write elsewhere moves the store past the watcher's resourceVersion, so the restarted
    // server's window starts after it.
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(s.client().await?, "default");
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "elsewhere"}}))?,
        )
        .await?;
    tokio::task::block_in_place(|| s.restart())?;
    let cms: Api<ConfigMap> = Api::namespaced(s.client().await?, "default");
    cms.create(&PostParams::default(), &configmap("b", "1"))
        .await?;
    // kube-rs reports the 410 as an error item, relists, and the relist shows "b".
    let mut expired = false;
    for _ in 0..100 {
        match tokio::time::timeout(Duration::from_secs(60), stream.next()).await? {
            Some(Err(watcher::Error::WatchError(status))) if status.code == 410 => expired = true,
            Some(Err(e)) => eprintln!("watch error while the server restarted: {e}"),
            Some(Ok(Event::InitApply(cm))) if cm.name_any() == "b" => {
                ensure!(expired, "relisted without a 410");
                return Ok(());
            }
            Some(Ok(e)) => eprintln!("watch event: {}", describe(&e)),
            None => break,
        }
    }
    Err(anyhow!("the watcher never relisted"))
}

#[tokio::test]
async fn paging_returns_each_object_once() -> Result<()> {
    let s = Server::start()?;
    let cms: Api<ConfigMap> = Api::namespaced(s.client().await?, "default");
    let names: Vec<String> = (0..1200).map(|i| format!("cm-{i:04}")).collect();
    futures::stream::iter(names.iter().cloned())
        .map(|n| {
            let cms = cms.clone();
            async move {
                cms.create(&PostParams::default(), &configmap(&n, "v"))
                    .await
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await?;
    let mut seen = HashSet::new();
    let mut pages = 0;
    let mut token: Option<String> = None;
    let mut first_rv = None;
    loop {
        let mut lp = ListParams::default().limit(500);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = cms.list(&lp).await?;
        pages += 1;
        let rv = page.metadata.resource_version.clone();
        ensure!(
            first_rv.get_or_insert(rv.clone()) == &rv,
            "pages of one list share one resourceVersion"
        );
        for cm in &page.items {
            ensure!(seen.insert(cm.name_any()), "{} twice", cm.name_any());
        }
        // Writes between pages must not leak into this list.
        cms.create(
            &PostParams::default(),
            &configmap(&format!("late-{pages}"), "v"),
        )
        .await?;
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => token = Some(c),
            None => break,
        }
    }
    ensure!(pages == 3, "{pages} pages");
    ensure!(
        names.iter().all(|n| seen.contains(n)) && seen.len() == 1200,
        "{} seen",
        seen.len()
    );
    Ok(())
}

/// autoscaling/v1 and v2 are one resource: an HPA written as v2 reads back as v1 with its
/// CPU target, and a v1 update keeps the v2-only metrics.
#[tokio::test]
async fn hpa_is_served_in_both_versions() -> Result<()> {
    use k8s_openapi::api::autoscaling::{v1, v2};
    let s = Server::start()?;
    let client = s.client().await?;
    let hpa_v2: Api<v2::HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "default");
    let hpa_v1: Api<v1::HorizontalPodAutoscaler> = Api::namespaced(client, "default");
    let created: v2::HorizontalPodAutoscaler = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 5,
                 "metrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}},
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}}]}
    }))?;
    hpa_v2.create(&PostParams::default(), &created).await?;
    let as_v1 = hpa_v1.get("web").await?;
    ensure!(
        as_v1
            .spec
            .as_ref()
            .and_then(|s| s.target_cpu_utilization_percentage)
            == Some(70)
    );
    hpa_v1
        .patch(
            "web",
            &PatchParams::default(),
            &kube::api::Patch::Merge(
                json!({"spec": {"maxReplicas": 9, "targetCPUUtilizationPercentage": 60}}),
            ),
        )
        .await?;
    let back = hpa_v2.get("web").await?;
    let spec = back.spec.ok_or_else(|| anyhow!("no spec"))?;
    ensure!(spec.max_replicas == 9);
    let metrics = spec.metrics.unwrap_or_default();
    ensure!(metrics.len() == 2, "{metrics:?}");
    ensure!(metrics
        .iter()
        .any(|m| m.resource.as_ref().is_some_and(|r| r.name == "memory")));
    ensure!(metrics.iter().any(|m| m
        .resource
        .as_ref()
        .is_some_and(|r| r.name == "cpu" && r.target.average_utilization == Some(60))));
    Ok(())
}

/// kube-runtime's metadata-only watcher (`Api<PartialObjectMeta<K>>`) asks for
/// PartialObjectMetadata(List).
#[tokio::test]
async fn metadata_watcher_sees_partial_objects() -> Result<()> {
    let s = Server::start()?;
    let cms: Api<ConfigMap> = Api::namespaced(s.client().await?, "default");
    cms.create(&PostParams::default(), &configmap("meta-a", "1"))
        .await?;
    let metas: Api<kube::core::PartialObjectMeta<ConfigMap>> =
        Api::namespaced(s.client().await?, "default");
    let mut stream = watcher::watcher(metas, watcher::Config::default()).boxed();
    let mut seen_initial = false;
    for _ in 0..20 {
        match tokio::time::timeout(Duration::from_secs(60), stream.try_next()).await?? {
            Some(Event::InitApply(m)) if m.metadata.name.as_deref() == Some("meta-a") => {
                seen_initial = true
            }
            Some(Event::InitDone) => break,
            _ => {}
        }
    }
    ensure!(seen_initial, "the initial list carried meta-a");
    cms.create(&PostParams::default(), &configmap("meta-b", "1"))
        .await?;
    for _ in 0..20 {
        if let Some(Event::Apply(m)) =
            tokio::time::timeout(Duration::from_secs(60), stream.try_next()).await??
        {
            if m.metadata.name.as_deref() == Some("meta-b") {
                ensure!(
                    m.types.as_ref().map(|t| t.kind.as_str()) == Some("PartialObjectMetadata"),
                    "{:?}",
                    m.types
                );
                return Ok(());
            }
        }
    }
    Err(anyhow!("meta-b never came"))
}
