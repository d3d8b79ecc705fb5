//! The garbage collector and the namespace controller, through the real controller-manager.
//! Owners and dependents are ConfigMaps and Secrets with hand-written ownerReferences, so
//! that nothing depends on the other controllers; kubectl v1.37 drives the deletions.

use std::time::Duration;

use anyhow::{anyhow, ensure, Result};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::{json, Value};

use crate::harness::{wait_for_async, Component, Server};

const KUBECTL: &str = "1.37";
const TIMEOUT: Duration = Duration::from_secs(30);

/// An API server and a controller-manager against it.
async fn cluster() -> Result<(Server, Component, kube::Client)> {
    let server = Server::start()?;
    let cm = server.start_controller_manager("controller-manager", &[])?;
    let client = server.client().await?;
    Ok((server, cm, client))
}

/// An ownerReference to `owner`, a ConfigMap.
fn owned_by(owner: &ConfigMap, block: bool) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": owner.name_any(),
        "uid": owner.uid().unwrap_or_default(),
        "blockOwnerDeletion": block,
    })
}

async fn configmap(
    api: &Api<ConfigMap>,
    name: &str,
    owners: Vec<Value>,
    finalizers: &[&str],
) -> Result<ConfigMap> {
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": name, "ownerReferences": owners, "finalizers": finalizers},
        "data": {"k": "v"},
    }))?;
    Ok(api.create(&PostParams::default(), &cm).await?)
}

async fn secret(
    api: &Api<Secret>,
    name: &str,
    owners: Vec<Value>,
    finalizers: &[&str],
) -> Result<Secret> {
    let s: Secret = serde_json::from_value(json!({
        "metadata": {"name": name, "ownerReferences": owners, "finalizers": finalizers},
        "stringData": {"k": "v"},
    }))?;
    Ok(api.create(&PostParams::default(), &s).await?)
}

/// Waits until `name` is gone from `api`.
async fn gone<K>(api: &Api<K>, name: &str) -> Result<()>
where
    K: kube::Resource + Clone + k8s_openapi::serde::de::DeserializeOwned + std::fmt::Debug,
{
    wait_for_async(TIMEOUT, || async {
        matches!(api.get_opt(name).await, Ok(None)).then_some(())
    })
    .await
    .map_err(|e| anyhow!("{name} still exists: {e}"))
}

fn owner_uids<K: kube::Resource>(obj: &K) -> Vec<String> {
    obj.owner_references()
        .iter()
        .map(|o| o.uid.clone())
        .collect()
}

async fn drop_finalizers<K>(api: &Api<K>, name: &str) -> Result<()>
where
    K: kube::Resource + Clone + k8s_openapi::serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_deletion_collects_dependents_and_prunes_dangling_references() -> Result<()> {
    let (server, _cm, client) = cluster().await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");

    let owner = configmap(&cms, "owner", vec![], &[]).await?;
    let keeper = configmap(&cms, "keeper", vec![], &[]).await?;
    secret(&secrets, "dep-secret", vec![owned_by(&owner, false)], &[]).await?;
    configmap(&cms, "dep-cm", vec![owned_by(&owner, true)], &[]).await?;
    configmap(
        &cms,
        "two-owners",
        vec![owned_by(&owner, false), owned_by(&keeper, false)],
        &[],
    )
    .await?;

    server.kubectl_ok(KUBECTL, &["delete", "configmap", "owner"])?;

    gone(&secrets, "dep-secret").await?;
    gone(&cms, "dep-cm").await?;
    // An object with a live owner left stays, without the reference to the deleted one.
    let keeper_uid = keeper.uid().unwrap_or_default();
    let pruned = wait_for_async(TIMEOUT, || async {
        let cm = cms.get_opt("two-owners").await.ok().flatten()?;
        (owner_uids(&cm) == vec![keeper_uid.clone()]).then_some(cm)
    })
    .await?;
    ensure!(pruned.metadata.deletion_timestamp.is_none());
    ensure!(cms.get_opt("keeper").await?.is_some());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependents_of_owners_that_do_not_exist_are_collected() -> Result<()> {
    let (_server, _cm, client) = cluster().await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let namespaces: Api<Namespace> = Api::all(client.clone());

    let live = configmap(&cms, "live-owner", vec![], &[]).await?;
    let ghost = json!({
        "apiVersion": "v1", "kind": "ConfigMap", "name": "ghost",
        "uid": "0b9f6a5e-0000-4000-8000-000000000001",
    });
    secret(&secrets, "orphaned", vec![ghost.clone()], &[]).await?;
    // The name exists, but under another uid: the owner this reference meant is gone.
    let stale = json!({
        "apiVersion": "v1", "kind": "ConfigMap", "name": "live-owner",
        "uid": "0b9f6a5e-0000-4000-8000-000000000002",
    });
    configmap(&cms, "stale-ref", vec![stale], &[]).await?;
    configmap(&cms, "kept", vec![owned_by(&live, false)], &[]).await?;
    // A cluster-scoped object cannot name a namespaced owner: the reference is invalid,
    // and the object is left alone rather than collected.
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": {"name": "invalid-owner-ref", "ownerReferences": [ghost]},
    }))?;
    namespaces.create(&PostParams::default(), &ns).await?;

    gone(&secrets, "orphaned").await?;
    gone(&cms, "stale-ref").await?;
    // Give the collector time to (wrongly) act on the rest.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let kept = cms
        .get_opt("kept")
        .await?
        .ok_or_else(|| anyhow!("kept was collected"))?;
    ensure!(owner_uids(&kept) == vec![live.uid().unwrap_or_default()]);
    let ns = namespaces
        .get_opt("invalid-owner-ref")
        .await?
        .ok_or_else(|| anyhow!("the namespace with an invalid owner reference was collected"))?;
    ensure!(ns.metadata.deletion_timestamp.is_none());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_deletion_removes_dependents_before_the_owner() -> Result<()> {
    let (server, _cm, client) = cluster().await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");

    let owner = configmap(&cms, "owner", vec![], &[]).await?;
    // Blocks the owner and holds itself with a finalizer of its own.
    secret(
        &secrets,
        "blocker",
        vec![owned_by(&owner, true)],
        &["example.com/hold"],
    )
    .await?;
    configmap(&cms, "plain", vec![owned_by(&owner, true)], &[]).await?;
    configmap(&cms, "loose", vec![owned_by(&owner, false)], &[]).await?;

    server.kubectl_ok(
        KUBECTL,
        &[
            "delete",
            "configmap",
            "owner",
            "--cascade=foreground",
            "--wait=false",
        ],
    )?;

    gone(&cms, "plain").await?;
    gone(&cms, "loose").await?;
    let blocker = wait_for_async(TIMEOUT, || async {
        let s = secrets.get_opt("blocker").await.ok().flatten()?;
        s.metadata.deletion_timestamp.is_some().then_some(s)
    })
    .await?;
    ensure!(
        blocker.finalizers() == ["example.com/hold"],
        "{:?}",
        blocker.finalizers()
    );
    // The owner waits, marked, for as long as the blocking dependent exists.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let waiting = cms
        .get_opt("owner")
        .await?
        .ok_or_else(|| anyhow!("owner deleted before its blocking dependent"))?;
    ensure!(waiting.metadata.deletion_timestamp.is_some());
    ensure!(
        waiting
            .finalizers()
            .iter()
            .any(|f| f == "foregroundDeletion"),
        "{:?}",
        waiting.finalizers()
    );
    let out = server.kubectl_ok(
        KUBECTL,
        &[
            "get",
            "configmap",
            "owner",
            "-o",
            "jsonpath={.metadata.finalizers}",
        ],
    )?;
    ensure!(out.contains("foregroundDeletion"), "{out}");

    // Release the blocker: it goes, then the owner.
    drop_finalizers(&secrets, "blocker").await?;
    gone(&secrets, "blocker").await?;
    gone(&cms, "owner").await?;
    let out = server.kubectl(KUBECTL, &["get", "configmap", "owner"])?;
    ensure!(!out.status.success());
    ensure!(String::from_utf8_lossy(&out.stderr).contains("NotFound"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_deletion_keeps_dependents_without_the_reference() -> Result<()> {
    let (server, _cm, client) = cluster().await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");

    let owner = configmap(&cms, "owner", vec![], &[]).await?;
    let keeper = configmap(&cms, "keeper", vec![], &[]).await?;
    secret(&secrets, "only-owner", vec![owned_by(&owner, true)], &[]).await?;
    configmap(
        &cms,
        "two-owners",
        vec![owned_by(&owner, false), owned_by(&keeper, false)],
        &[],
    )
    .await?;

    server.kubectl_ok(
        KUBECTL,
        &[
            "delete",
            "configmap",
            "owner",
            "--cascade=orphan",
            "--wait=false",
        ],
    )?;
    gone(&cms, "owner").await?;

    // Give the collector time to (wrongly) collect the orphans.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let only = secrets
        .get_opt("only-owner")
        .await?
        .ok_or_else(|| anyhow!("only-owner was collected"))?;
    ensure!(
        only.owner_references().is_empty(),
        "{:?}",
        only.owner_references()
    );
    ensure!(only.metadata.deletion_timestamp.is_none());
    let two = cms
        .get_opt("two-owners")
        .await?
        .ok_or_else(|| anyhow!("two-owners was collected"))?;
    let refs: Vec<OwnerReference> = two.owner_references().to_vec();
    ensure!(refs.len() == 1 && refs[0].name == "keeper", "{refs:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_namespace_deletes_everything_in_it() -> Result<()> {
    let (server, _cm, client) = cluster().await?;
    let ns = "doomed";
    server.kubectl_ok(KUBECTL, &["create", "namespace", ns])?;
    for i in 0..3 {
        server.kubectl_ok(
            KUBECTL,
            &[
                "create",
                "configmap",
                &format!("cm-{i}"),
                "-n",
                ns,
                "--from-literal=k=v",
            ],
        )?;
        server.kubectl_ok(
            KUBECTL,
            &[
                "create",
                "secret",
                "generic",
                &format!("secret-{i}"),
                "-n",
                ns,
                "--from-literal=k=v",
            ],
        )?;
    }
    server.kubectl_ok(
        KUBECTL,
        &[
            "create",
            "service",
            "clusterip",
            "web",
            "-n",
            ns,
            "--tcp=80:8080",
        ],
    )?;
    server.kubectl_ok(
        KUBECTL,
        &[
            "create",
            "deployment",
            "web",
            "-n",
            ns,
            "--image=nginx:1.25",
            "--replicas=2",
        ],
    )?;
    // The Deployment has its ReplicaSet and pods before the namespace goes.
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    wait_for_async(TIMEOUT, || async {
        let n = pods.list(&ListParams::default()).await.ok()?.items.len();
        (n == 2).then_some(())
    })
    .await
    .map_err(|e| anyhow!("the Deployment's pods did not appear: {e}"))?;

    server.kubectl_ok(KUBECTL, &["delete", "namespace", ns, "--wait=false"])?;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let terminating = namespaces.get_opt(ns).await?;
    if let Some(t) = terminating {
        ensure!(t.status.and_then(|s| s.phase).as_deref() == Some("Terminating"));
    }
    wait_for_async(TIMEOUT, || async {
        let out = server.kubectl(KUBECTL, &["get", "namespace", ns]).ok()?;
        (!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("NotFound"))
            .then_some(())
    })
    .await
    .map_err(|e| anyhow!("namespace {ns} still exists: {e}"))?;

    // Nothing of its content survived.
    let lp = ListParams::default();
    ensure!(Api::<ConfigMap>::namespaced(client.clone(), ns)
        .list(&lp)
        .await?
        .items
        .is_empty());
    ensure!(Api::<Secret>::namespaced(client.clone(), ns)
        .list(&lp)
        .await?
        .items
        .is_empty());
    ensure!(Api::<Service>::namespaced(client.clone(), ns)
        .list(&lp)
        .await?
        .items
        .is_empty());
    ensure!(Api::<Deployment>::namespaced(client.clone(), ns)
        .list(&lp)
        .await?
        .items
        .is_empty());
    ensure!(pods.list(&lp).await?.items.is_empty());
    let out = server.kubectl_ok(
        KUBECTL,
        &["get", "all,configmaps,secrets", "-n", ns, "-o", "name"],
    )?;
    ensure!(out.trim().is_empty(), "{out}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminating_namespace_reports_what_holds_it() -> Result<()> {
    let (server, _cm, client) = cluster().await?;
    let ns = "held";
    server.kubectl_ok(KUBECTL, &["create", "namespace", ns])?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    configmap(&cms, "held", vec![], &["example.com/hold"]).await?;
    configmap(&cms, "free", vec![], &[]).await?;

    server.kubectl_ok(KUBECTL, &["delete", "namespace", ns, "--wait=false"])?;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let condition = |n: &Namespace, t: &str| {
        n.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == t))
            .map(|c| (c.status.clone(), c.message.clone().unwrap_or_default()))
    };
    let waiting = wait_for_async(TIMEOUT, || async {
        let n = namespaces.get_opt(ns).await.ok().flatten()?;
        condition(&n, "NamespaceFinalizersRemaining")
            .is_some_and(|(s, _)| s == "True")
            .then_some(n)
    })
    .await?;
    ensure!(
        condition(&waiting, "NamespaceContentRemaining")
            == Some((
                "True".into(),
                "Some resources are remaining: configmaps. has 1 resource instances".into()
            )),
        "{:?}",
        waiting.status
    );
    ensure!(
        condition(&waiting, "NamespaceFinalizersRemaining")
            == Some((
                "True".into(),
                "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances".into()
            )),
        "{:?}",
        waiting.status
    );
    ensure!(
        condition(&waiting, "NamespaceDeletionDiscoveryFailure")
            == Some((
                "False".into(),
                "All resources successfully discovered".into()
            )),
        "{:?}",
        waiting.status
    );
    ensure!(waiting.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating"));
    ensure!(cms.get_opt("free").await?.is_none());
    let held = cms
        .get_opt("held")
        .await?
        .ok_or_else(|| anyhow!("held is gone"))?;
    ensure!(held.metadata.deletion_timestamp.is_some());
    let described = server.kubectl_ok(KUBECTL, &["describe", "namespace", ns])?;
    ensure!(
        described.contains("NamespaceFinalizersRemaining"),
        "{described}"
    );

    // The finalizer goes: so do the content and the namespace.
    drop_finalizers(&cms, "held").await?;
    gone(&namespaces, ns).await?;
    Ok(())
}
