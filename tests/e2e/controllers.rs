//! The controller-manager driven by the real kubectl: Deployments, ReplicaSets and their
//! rollouts, with pods made Ready by a stand-in for the kubelet.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Result};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::runtime::watcher::{self, Event};
use kube::ResourceExt;

use keelson_bench::readier::PodReadier;

use crate::harness::{wait_for_async, Component, Server};

/// The nginx Deployment of https://kubernetes.io/docs/concepts/workloads/controllers/deployment/:
/// the walkthrough's, with 3 replicas of nginx:1.14.2.
static NGINX_DEPLOYMENT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    crate::kubectl::NGINX_DEPLOYMENT
        .replace("replicas: 1", "replicas: 3")
        .replace("nginx:1.7.9", "nginx:1.14.2")
});

const KUBECTL: &str = "1.37";

/// An API server, a controller-manager and the kubelet stand-in, which readies every pod
/// except those whose image says `never-ready`.
async fn cluster() -> Result<(Server, Component, PodReadier)> {
    let server = Server::start()?;
    let cm = server.start_controller_manager("controller-manager", &[])?;
    let readier = PodReadier::start(server.client().await?, |pod| {
        !pod.spec.as_ref().is_some_and(|s| {
            s.containers
                .iter()
                .any(|c| c.image.as_deref().unwrap_or("").contains("never-ready"))
        })
    });
    Ok((server, cm, readier))
}

/// `kubectl rollout status` of the nginx Deployment, which must report success.
fn rolled_out(server: &Server) -> Result<()> {
    let out = server.kubectl_ok(
        KUBECTL,
        &[
            "rollout",
            "status",
            "deployment/nginx-deployment",
            "--timeout=60s",
        ],
    )?;
    ensure!(
        out.contains("deployment \"nginx-deployment\" successfully rolled out"),
        "{out}"
    );
    Ok(())
}

/// Waits until exactly `count` pods labelled `app=nginx` are live (not being deleted).
async fn wait_live_pods(pods: &Api<Pod>, count: usize) -> Result<()> {
    wait_for_async(Duration::from_secs(30), || async {
        (live_pods(pods, "app=nginx").await.ok()?.len() == count).then_some(())
    })
    .await
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn live_pods(api: &Api<Pod>, selector: &str) -> Result<Vec<Pod>> {
    Ok(api
        .list(&ListParams::default().labels(selector))
        .await?
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_rollout_with_kubectl() -> Result<()> {
    let (server, _cm, _readier) = cluster().await?;
    let client = server.client().await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");

    // 1. The docs' nginx Deployment: 3 pods owned by one ReplicaSet; rollout status succeeds.
    server.kubectl_stdin(KUBECTL, &["apply", "-f", "-"], &NGINX_DEPLOYMENT)?;
    rolled_out(&server)?;
    let rs_list = replica_sets.list(&ListParams::default()).await?.items;
    ensure!(rs_list.len() == 1, "{} replica sets", rs_list.len());
    let first_rs = rs_list[0].name_any();
    let running = live_pods(&pods, "app=nginx").await?;
    ensure!(running.len() == 3, "{} pods", running.len());
    for pod in &running {
        let owner = pod.owner_references().first().map(|o| o.name.clone());
        ensure!(owner.as_deref() == Some(first_rs.as_str()), "{owner:?}");
    }

    // 2. A new image rolls out within maxSurge (1) and maxUnavailable (0), checked on every
    // pod event the rollout causes.
    let watch_pods = pods.clone();
    let checker = tokio::spawn(async move {
        let mut live: BTreeMap<String, Pod> = BTreeMap::new();
        let mut events = watcher::watcher(watch_pods, watcher::Config::default()).boxed();
        let mut worst = (0usize, usize::MAX);
        let mut listed = false;
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::Apply(p) | Event::InitApply(p)) => {
                    if p.metadata.deletion_timestamp.is_some() {
                        live.remove(&p.name_any());
                    } else {
                        live.insert(p.name_any(), p);
                    }
                }
                Ok(Event::Delete(p)) => {
                    live.remove(&p.name_any());
                }
                Ok(Event::InitDone) => listed = true,
                _ => continue,
            }
            if !listed {
                continue;
            }
            let total = live.len();
            let available = live.values().filter(|p| is_ready(p)).count();
            worst = (worst.0.max(total), worst.1.min(available));
            if total > 4 || available < 3 {
                return Err(anyhow!("{total} pods, {available} available"));
            }
            let done = live.values().all(|p| {
                p.spec
                    .as_ref()
                    .is_some_and(|s| s.containers[0].image.as_deref() == Some("nginx:1.16.1"))
            });
            if total == 3 && available == 3 && done {
                return Ok(worst);
            }
        }
        Err(anyhow!("watch ended"))
    });
    server.kubectl_ok(
        KUBECTL,
        &[
            "set",
            "image",
            "deployment/nginx-deployment",
            "nginx=nginx:1.16.1",
        ],
    )?;
    rolled_out(&server)?;
    let (most, fewest) = tokio::time::timeout(Duration::from_secs(30), checker).await???;
    ensure!(most <= 4 && fewest >= 3, "{most} {fewest}");
    let history = server.kubectl_ok(
        KUBECTL,
        &["rollout", "history", "deployment/nginx-deployment"],
    )?;
    ensure!(
        history
            .lines()
            .filter(|l| l.starts_with('1') || l.starts_with('2'))
            .count()
            == 2,
        "{history}"
    );

    // rollout undo returns to the first template (and to the first ReplicaSet).
    server.kubectl_ok(KUBECTL, &["rollout", "undo", "deployment/nginx-deployment"])?;
    rolled_out(&server)?;
    let image = server.kubectl_ok(
        KUBECTL,
        &[
            "get",
            "deployment",
            "nginx-deployment",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ],
    )?;
    ensure!(image == "nginx:1.14.2", "{image}");
    let first = replica_sets.get(&first_rs).await?;
    ensure!(
        first.spec.and_then(|s| s.replicas) == Some(3),
        "the first ReplicaSet is not back"
    );

    // pause: a template change does not roll out; resume: it does.
    server.kubectl_ok(
        KUBECTL,
        &["rollout", "pause", "deployment/nginx-deployment"],
    )?;
    server.kubectl_ok(
        KUBECTL,
        &[
            "set",
            "image",
            "deployment/nginx-deployment",
            "nginx=nginx:1.17",
        ],
    )?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let count = replica_sets.list(&ListParams::default()).await?.items.len();
    ensure!(
        count == 2,
        "a paused deployment rolled out: {count} replica sets"
    );
    server.kubectl_ok(
        KUBECTL,
        &["rollout", "resume", "deployment/nginx-deployment"],
    )?;
    rolled_out(&server)?;
    let count = replica_sets.list(&ListParams::default()).await?.items.len();
    ensure!(count == 3, "{count} replica sets after resume");

    // restart: a new ReplicaSet with the restartedAt annotation in its template.
    server.kubectl_ok(
        KUBECTL,
        &["rollout", "restart", "deployment/nginx-deployment"],
    )?;
    rolled_out(&server)?;
    let restarted = replica_sets
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|rs| {
            rs.spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .and_then(|t| t.metadata.as_ref())
                .and_then(|m| m.annotations.as_ref())
                .is_some_and(|a| a.contains_key("kubectl.kubernetes.io/restartedAt"))
        })
        .count();
    ensure!(restarted == 1, "{restarted}");
    let running = live_pods(&pods, "app=nginx").await?;
    ensure!(running.len() == 3, "{} pods after restart", running.len());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_status_reports_the_progress_deadline() -> Result<()> {
    let (server, _cm, _readier) = cluster().await?;
    let manifest = NGINX_DEPLOYMENT
        .replace("nginx:1.14.2", "example/never-ready:1")
        .replace("replicas: 3", "replicas: 2\n  progressDeadlineSeconds: 3");
    server.kubectl_stdin(KUBECTL, &["apply", "-f", "-"], &manifest)?;
    let started = Instant::now();
    let out = server.kubectl(
        KUBECTL,
        &[
            "rollout",
            "status",
            "deployment/nginx-deployment",
            "--timeout=60s",
        ],
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success(), "rollout status succeeded");
    ensure!(
        stderr.contains("error: deployment \"nginx-deployment\" exceeded its progress deadline"),
        "{stderr}"
    );
    ensure!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let reason = server.kubectl_ok(
        KUBECTL,
        &[
            "get",
            "deployment",
            "nginx-deployment",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Progressing\")].reason}",
        ],
    )?;
    ensure!(reason == "ProgressDeadlineExceeded", "{reason}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_are_replaced_scaled_and_cascade_deleted() -> Result<()> {
    let (server, _cm, _readier) = cluster().await?;
    let client = server.client().await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    server.kubectl_stdin(KUBECTL, &["apply", "-f", "-"], &NGINX_DEPLOYMENT)?;
    rolled_out(&server)?;

    // A deleted pod is replaced.
    let victim = live_pods(&pods, "app=nginx").await?[0].name_any();
    server.kubectl_ok(KUBECTL, &["delete", "pod", &victim])?;
    wait_for_async(Duration::from_secs(30), || async {
        let now = live_pods(&pods, "app=nginx").await.ok()?;
        (now.len() == 3 && now.iter().all(|p| p.name_any() != victim) && now.iter().all(is_ready))
            .then_some(())
    })
    .await?;

    // Scale up and down.
    for replicas in [5usize, 2] {
        server.kubectl_ok(
            KUBECTL,
            &[
                "scale",
                "deployment/nginx-deployment",
                &format!("--replicas={replicas}"),
            ],
        )?;
        wait_live_pods(&pods, replicas).await?;
    }
    rolled_out(&server)?;

    // --cascade=orphan leaves the ReplicaSet and pods, without the owner reference.
    server.kubectl_ok(
        KUBECTL,
        &[
            "delete",
            "deployment",
            "nginx-deployment",
            "--cascade=orphan",
        ],
    )?;
    wait_for_async(Duration::from_secs(30), || async {
        let rs = replica_sets.list(&ListParams::default()).await.ok()?.items;
        (deployments
            .get_opt("nginx-deployment")
            .await
            .ok()?
            .is_none()
            && rs.len() == 1
            && rs[0].owner_references().is_empty())
        .then_some(())
    })
    .await?;
    ensure!(live_pods(&pods, "app=nginx").await?.len() == 2);
    server.kubectl_ok(KUBECTL, &["delete", "replicaset", "--all"])?;
    wait_for_async(Duration::from_secs(30), || async {
        live_pods(&pods, "app=nginx")
            .await
            .ok()?
            .is_empty()
            .then_some(())
    })
    .await?;

    // The default (background) policy removes the ReplicaSets and pods.
    server.kubectl_stdin(KUBECTL, &["apply", "-f", "-"], &NGINX_DEPLOYMENT)?;
    rolled_out(&server)?;
    server.kubectl_ok(KUBECTL, &["delete", "deployment", "nginx-deployment"])?;
    wait_for_async(Duration::from_secs(30), || async {
        (replica_sets
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .is_empty()
            && pods
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .is_empty())
        .then_some(())
    })
    .await?;

    // --cascade=foreground: the Deployment is the last to go.
    server.kubectl_stdin(KUBECTL, &["apply", "-f", "-"], &NGINX_DEPLOYMENT)?;
    rolled_out(&server)?;
    let watch_api = deployments.clone();
    let (rs_api, pod_api) = (replica_sets.clone(), pods.clone());
    let order = tokio::spawn(async move {
        let mut events = watcher::watcher(watch_api, watcher::Config::default()).boxed();
        while let Some(event) = events.next().await {
            if let Ok(Event::Delete(_)) = event {
                let rs_left = rs_api.list(&ListParams::default()).await?.items.len();
                let pods_left = pod_api.list(&ListParams::default()).await?.items.len();
                return Ok::<_, anyhow::Error>((rs_left, pods_left));
            }
        }
        Err(anyhow!("watch ended"))
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kubectl_ok(
        KUBECTL,
        &[
            "delete",
            "deployment",
            "nginx-deployment",
            "--cascade=foreground",
            "--wait=false",
        ],
    )?;
    let (rs_left, pods_left) = tokio::time::timeout(Duration::from_secs(30), order).await???;
    ensure!(
        rs_left == 0 && pods_left == 0,
        "{rs_left} replica sets, {pods_left} pods outlived their Deployment"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_controller_manager_takes_over() -> Result<()> {
    let server = Server::start()?;
    let _readier = PodReadier::start(server.client().await?, |_| true);
    let mut first = server.start_controller_manager("cm-1", &[])?;
    let client = server.client().await?;
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), "kube-system");
    let holder = || async {
        leases
            .get_opt("keelson-controller-manager")
            .await
            .ok()
            .flatten()
            .and_then(|l| l.spec.and_then(|s| s.holder_identity))
    };
    let first_holder = wait_for_async(Duration::from_secs(30), holder).await?;
    let _second = server.start_controller_manager("cm-2", &[])?;
    server.kubectl_stdin(KUBECTL, &["apply", "-f", "-"], &NGINX_DEPLOYMENT)?;
    rolled_out(&server)?;
    ensure!(
        holder().await.as_ref() == Some(&first_holder),
        "the leader changed while it was alive"
    );

    first.kill();
    let killed = Instant::now();
    let second_holder = wait_for_async(Duration::from_secs(30), || async {
        holder().await.filter(|h| *h != first_holder)
    })
    .await?;
    let took = killed.elapsed();
    ensure!(
        took < Duration::from_secs(15),
        "takeover by {second_holder} took {took:?}"
    );
    // The new leader acts: a scale-up converges.
    server.kubectl_ok(
        KUBECTL,
        &["scale", "deployment/nginx-deployment", "--replicas=5"],
    )?;
    rolled_out(&server)?;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    ensure!(live_pods(&pods, "app=nginx").await?.len() == 5);
    Ok(())
}

/// https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/
const NGINX_RC: &str = "apiVersion: v1
kind: ReplicationController
metadata:
  name: nginx
spec:
  replicas: 3
  selector:
    app: nginx
  template:
    metadata:
      name: nginx
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx
        ports:
        - containerPort: 80
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_controller_keeps_its_equality_selected_pods() -> Result<()> {
    let (server, _cm, _readier) = cluster().await?;
    let pods: Api<Pod> = Api::namespaced(server.client().await?, "default");
    server.kubectl_stdin(KUBECTL, &["apply", "-f", "-"], NGINX_RC)?;
    wait_for_async(Duration::from_secs(30), || async {
        let out = server
            .kubectl_ok(KUBECTL, &["get", "rc", "nginx", "--no-headers"])
            .ok()?;
        // NAME DESIRED CURRENT READY AGE
        let cols: Vec<&str> = out.split_whitespace().collect();
        (cols.get(1..4) == Some(&["3", "3", "3"][..])).then_some(())
    })
    .await?;
    for pod in live_pods(&pods, "app=nginx").await? {
        let owner = pod
            .owner_references()
            .first()
            .map(|o| (o.kind.clone(), o.name.clone()));
        ensure!(
            owner == Some(("ReplicationController".into(), "nginx".into())),
            "{owner:?}"
        );
    }
    server.kubectl_ok(KUBECTL, &["scale", "rc", "nginx", "--replicas=1"])?;
    wait_live_pods(&pods, 1).await?;
    // An orphan that matches the selector is adopted, which makes one too many.
    server.kubectl_ok(
        KUBECTL,
        &["run", "stray", "--image=nginx", "--labels=app=nginx"],
    )?;
    wait_for_async(Duration::from_secs(30), || async {
        let now = live_pods(&pods, "app=nginx").await.ok()?;
        (now.len() == 1
            && now[0]
                .owner_references()
                .iter()
                .any(|o| o.kind == "ReplicationController"))
        .then_some(())
    })
    .await?;
    let events = server.kubectl_ok(KUBECTL, &["describe", "rc", "nginx"])?;
    ensure!(
        events.contains("SuccessfulCreate") && events.contains("SuccessfulDelete"),
        "{events}"
    );
    Ok(())
}

/// The oldest and middle kubectl drive a rollout too (the other tests use v1.37).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_commands_of_kubectl_1_32_and_1_33() -> Result<()> {
    let (server, _cm, _readier) = cluster().await?;
    for version in ["1.32", "1.33"] {
        let name = format!("web-{}", version.replace('.', "-"));
        let deployment = format!("deployment/{name}");
        server.kubectl_ok(
            version,
            &[
                "create",
                "deployment",
                &name,
                "--image=nginx:1.14.2",
                "--replicas=2",
            ],
        )?;
        let status = &["rollout", "status", deployment.as_str(), "--timeout=60s"];
        let out = server.kubectl_ok(version, status)?;
        ensure!(out.contains("successfully rolled out"), "{version}: {out}");
        server.kubectl_ok(
            version,
            &["set", "image", &deployment, "nginx=nginx:1.16.1"],
        )?;
        let out = server.kubectl_ok(version, status)?;
        ensure!(out.contains("successfully rolled out"), "{version}: {out}");
        let history = server.kubectl_ok(version, &["rollout", "history", &deployment])?;
        ensure!(
            history
                .lines()
                .filter(|l| l.starts_with('1') || l.starts_with('2'))
                .count()
                == 2,
            "{version}: {history}"
        );
        server.kubectl_ok(version, &["rollout", "undo", &deployment])?;
        server.kubectl_ok(version, status)?;
        let image = server.kubectl_ok(
            version,
            &[
                "get",
                &deployment,
                "-o",
                "jsonpath={.spec.template.spec.containers[0].image}",
            ],
        )?;
        ensure!(image == "nginx:1.14.2", "{version}: {image}");
    }
    Ok(())
}
