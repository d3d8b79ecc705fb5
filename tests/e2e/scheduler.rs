//! The scheduler against a real API server with simulated nodes (Node objects only, no
//! kubelet): placement rules, the unschedulable message and recovery, spreading.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{ensure, Result};
use k8s_openapi::api::core::v1::Pod;
use keelson_kubelet::node::{self as nodes, NodeSpec};
use kube::api::{Api, ListParams};
use serde_json::json;

use crate::harness::{wait_for_async, Component, Server};

const KUBECTL: &str = "1.37";

async fn cluster(specs: &[NodeSpec]) -> Result<(Server, Component, Api<Pod>)> {
    let server = Server::start()?;
    let client = server.client().await?;
    nodes::create(&client, specs, 8).await?;
    let scheduler = server.start_scheduler("scheduler", &[])?;
    Ok((server, scheduler, Api::namespaced(client, "default")))
}

fn node(name: &str, cpu: &str, labels: &[(&str, &str)]) -> NodeSpec {
    let mut spec = NodeSpec::new(name);
    spec.cpu = cpu.to_string();
    spec.labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    spec
}

fn tainted(mut spec: NodeSpec, key: &str, value: &str) -> NodeSpec {
    spec.taints
        .push(json!({"key": key, "value": value, "effect": "NoSchedule"}));
    spec
}

/// A pod manifest: `spec` is merged into a one-container pod spec.
fn pod(name: &str, labels: serde_json::Value, spec: serde_json::Value) -> String {
    let mut pod_spec = json!({"containers": [{"name": "c", "image": "registry.invalid/app:1"}]});
    if let (Some(base), Some(extra)) = (pod_spec.as_object_mut(), spec.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "labels": labels}, "spec": pod_spec})
    .to_string()
}

/// Waits until `name` is bound and returns its node.
async fn bound_node(pods: &Api<Pod>, name: &str) -> Result<String> {
    wait_for_async(Duration::from_secs(20), || async {
        pods.get(name)
            .await
            .ok()?
            .spec?
            .node_name
            .filter(|n| !n.is_empty())
    })
    .await
}

/// Waits until `name` carries PodScheduled=False and returns its message.
async fn unschedulable_message(pods: &Api<Pod>, name: &str) -> Result<String> {
    wait_for_async(Duration::from_secs(20), || async {
        let pod = pods.get(name).await.ok()?;
        pod.status?.conditions?.into_iter().find_map(|c| {
            (c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable"))
            .then(|| c.message.unwrap_or_default())
        })
    })
    .await
}

fn apply(server: &Server, manifest: &str) -> Result<()> {
    server.kubectl_stdin(KUBECTL, &["apply", "-f", "-"], manifest)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unschedulable_pod_is_explained_and_scheduled_when_a_node_fits() -> Result<()> {
    let specs = [
        node("small", "1", &[]),
        tainted(node("infra-1", "8", &[]), "dedicated", "infra"),
        tainted(node("infra-2", "8", &[]), "dedicated", "infra"),
    ];
    let (server, _scheduler, pods) = cluster(&specs).await?;
    let big = json!({"containers": [{"name": "c", "image": "registry.invalid/app:1",
                     "resources": {"requests": {"cpu": "2"}}}]});
    apply(&server, &pod("big", json!({}), big))?;
    let message = unschedulable_message(&pods, "big").await?;
    ensure!(
        message.starts_with(
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {dedicated: infra}."
        ),
        "{message}"
    );
    let described = server.kubectl_ok(KUBECTL, &["describe", "pod", "big"])?;
    ensure!(described.contains("FailedScheduling"), "{described}");

    // A node that fits appears: the pod is scheduled there.
    nodes::create(&server.client().await?, &[node("large", "4", &[])], 1).await?;
    ensure!(bound_node(&pods, "big").await? == "large");
    let wide = server.kubectl_ok(KUBECTL, &["get", "pod", "big", "-o", "wide"])?;
    ensure!(wide.contains("large"), "{wide}");
    let described = server.kubectl_ok(KUBECTL, &["describe", "pod", "big"])?;
    ensure!(
        described.contains("Successfully assigned default/big to large"),
        "{described}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placement_follows_selectors_affinity_taints_and_ports() -> Result<()> {
    let specs = [
        node("n-ssd", "4", &[("disktype", "ssd"), ("zone", "a")]),
        node("n-hdd", "4", &[("disktype", "hdd"), ("zone", "b")]),
        tainted(node("n-gpu", "4", &[("zone", "c")]), "gpu", "true"),
    ];
    let (server, _scheduler, pods) = cluster(&specs).await?;

    apply(
        &server,
        &pod(
            "selector",
            json!({}),
            json!({"nodeSelector": {"disktype": "hdd"}}),
        ),
    )?;
    ensure!(bound_node(&pods, "selector").await? == "n-hdd");

    let required = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}});
    apply(&server, &pod("required", json!({}), required))?;
    ensure!(bound_node(&pods, "required").await? == "n-ssd");

    let preferred = json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}}]}}});
    apply(&server, &pod("preferred", json!({}), preferred))?;
    ensure!(bound_node(&pods, "preferred").await? == "n-hdd");

    // Only a toleration opens the tainted node.
    let tolerating = json!({"nodeSelector": {"zone": "c"},
        "tolerations": [{"key": "gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}]});
    apply(&server, &pod("tolerating", json!({}), tolerating))?;
    ensure!(bound_node(&pods, "tolerating").await? == "n-gpu");
    apply(
        &server,
        &pod(
            "intolerant",
            json!({}),
            json!({"nodeSelector": {"zone": "c"}}),
        ),
    )?;
    let message = unschedulable_message(&pods, "intolerant").await?;
    ensure!(
        message.contains("1 node(s) had untolerated taint {gpu: true}"),
        "{message}"
    );

    // Host ports: two pods wanting port 8080 land on different nodes.
    let port = json!({"containers": [{"name": "c", "image": "registry.invalid/app:1",
        "ports": [{"containerPort": 80, "hostPort": 8080}]}]});
    apply(&server, &pod("port-1", json!({}), port.clone()))?;
    apply(&server, &pod("port-2", json!({}), port.clone()))?;
    let (a, b) = (
        bound_node(&pods, "port-1").await?,
        bound_node(&pods, "port-2").await?,
    );
    ensure!(a != b, "both on {a}");
    apply(&server, &pod("port-3", json!({}), port))?;
    let message = unschedulable_message(&pods, "port-3").await?;
    ensure!(
        message.contains("2 node(s) didn't have free ports for the requested pod ports"),
        "{message}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anti_affinity_and_topology_spread_spread_pods() -> Result<()> {
    let specs = [
        node("a-1", "4", &[("topology.kubernetes.io/zone", "a")]),
        node("b-1", "4", &[("topology.kubernetes.io/zone", "b")]),
        node("b-2", "4", &[("topology.kubernetes.io/zone", "b")]),
    ];
    let (server, _scheduler, pods) = cluster(&specs).await?;

    // Required anti-affinity on the host name: one per node, the fourth waits.
    let anti = json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "solo"}}, "topologyKey": "kubernetes.io/hostname"}]}}});
    for i in 0..4 {
        apply(
            &server,
            &pod(&format!("solo-{i}"), json!({"app": "solo"}), anti.clone()),
        )?;
    }
    let mut hosts = Vec::new();
    for i in 0..3 {
        hosts.push(bound_node(&pods, &format!("solo-{i}")).await?);
    }
    hosts.sort();
    hosts.dedup();
    ensure!(hosts.len() == 3, "{hosts:?}");
    let message = unschedulable_message(&pods, "solo-3").await?;
    ensure!(
        message.contains("3 node(s) didn't match pod anti-affinity rules"),
        "{message}"
    );

    // Topology spread over zones (maxSkew 1): 4 pods → 2 in zone a, 2 in zone b, although
    // zone b has twice the nodes.
    let spread = json!({"topologySpreadConstraints": [{"maxSkew": 1,
        "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"app": "spread"}}}]});
    let mut per_zone: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..4 {
        let name = format!("spread-{i}");
        apply(
            &server,
            &pod(&name, json!({"app": "spread"}), spread.clone()),
        )?;
        let node = bound_node(&pods, &name).await?;
        let zone = if node.starts_with("a-") { "a" } else { "b" };
        *per_zone.entry(zone.to_string()).or_default() += 1;
    }
    ensure!(
        per_zone.get("a") == Some(&2) && per_zone.get("b") == Some(&2),
        "{per_zone:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferred_anti_affinity_spreads_a_deployment_evenly() -> Result<()> {
    let specs = [
        node("n1", "8", &[]),
        node("n2", "8", &[]),
        node("n3", "8", &[]),
    ];
    let (server, _scheduler, pods) = cluster(&specs).await?;
    let _cm = server.start_controller_manager("controller-manager", &[])?;
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": 30, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                "containers": [{"name": "c", "image": "registry.invalid/app:1"}],
                "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}},
                        "topologyKey": "kubernetes.io/hostname"}}]}}}}}});
    apply(&server, &deployment.to_string())?;
    let per_node = wait_for_async(Duration::from_secs(60), || async {
        let list = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .ok()?;
        let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
        for p in &list.items {
            *per_node
                .entry(p.spec.as_ref()?.node_name.clone()?)
                .or_default() += 1;
        }
        (per_node.values().sum::<usize>() == 30).then_some(per_node)
    })
    .await?;
    ensure!(per_node.values().all(|&n| n == 10), "{per_node:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_higher_priority_pod_preempts_a_lower_one() -> Result<()> {
    let (server, _scheduler, pods) = cluster(&[node("only", "2", &[])]).await?;
    // Nothing runs the pods; the stand-in confirms deletions as a kubelet would.
    let _kubelet = keelson_bench::readier::PodReadier::start(server.client().await?, |_| false);
    let classes = "apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata:
  name: low
value: 10
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata:
  name: high
value: 1000
";
    apply(&server, classes)?;
    let wants = |class: &str| {
        json!({"priorityClassName": class, "containers": [{"name": "c", "image": "registry.invalid/app:1",
            "resources": {"requests": {"cpu": "1500m"}}}]})
    };
    apply(&server, &pod("victim", json!({}), wants("low")))?;
    ensure!(bound_node(&pods, "victim").await? == "only");
    apply(&server, &pod("urgent", json!({}), wants("high")))?;
    ensure!(bound_node(&pods, "urgent").await? == "only");
    ensure!(
        pods.get_opt("victim").await?.is_none(),
        "the victim is still there"
    );
    let events = server.kubectl_ok(
        KUBECTL,
        &["get", "events", "--field-selector", "reason=Preempted"],
    )?;
    ensure!(events.contains("Preempted by pod"), "{events}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_nodes_are_ready_and_renew_their_leases() -> Result<()> {
    let server = Server::start()?;
    let client = server.client().await?;
    nodes::create(
        &client,
        &[node("sim-a", "2", &[]), node("sim-b", "2", &[])],
        2,
    )
    .await?;
    let _heartbeat = nodes::heartbeat(
        client.clone(),
        vec!["sim-a".into(), "sim-b".into()],
        Duration::from_millis(500),
    );
    let out = server.kubectl_ok(KUBECTL, &["get", "nodes", "--no-headers"])?;
    ensure!(
        out.lines()
            .filter(|l| l.split_whitespace().nth(1) == Some("Ready"))
            .count()
            == 2,
        "{out}"
    );
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client, "kube-node-lease");
    let renew_time = || async {
        leases
            .get_opt("sim-a")
            .await
            .ok()
            .flatten()?
            .spec?
            .renew_time
    };
    let first = wait_for_async(Duration::from_secs(10), renew_time).await?;
    wait_for_async(Duration::from_secs(10), || async {
        renew_time().await.filter(|t| t.0 > first.0)
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_follow_their_volumes() -> Result<()> {
    let specs = [
        node("in-a", "4", &[("topology.kubernetes.io/zone", "a")]),
        node("in-b", "4", &[("topology.kubernetes.io/zone", "b")]),
    ];
    let (server, _scheduler, pods) = cluster(&specs).await?;
    let volume = |name: &str, zone: &str| {
        json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                "hostPath": {"path": format!("/data/{name}")},
                "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "topology.kubernetes.io/zone", "operator": "In", "values": [zone]}]}]}}}})
        .to_string()
    };
    apply(&server, &volume("pv-a", "a"))?;
    apply(&server, &volume("pv-b", "b"))?;
    let claim = |name: &str, volume: Option<&str>| {
        let mut spec = json!({"accessModes": ["ReadWriteOnce"], "storageClassName": "",
            "resources": {"requests": {"storage": "1Gi"}}});
        if let Some(v) = volume {
            spec["volumeName"] = json!(v);
        }
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name}, "spec": spec})
            .to_string()
    };
    apply(&server, &claim("bound-to-b", Some("pv-b")))?;
    let using = |claim: &str| json!({"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]});
    apply(&server, &pod("follows-b", json!({}), using("bound-to-b")))?;
    ensure!(bound_node(&pods, "follows-b").await? == "in-b");

    // An unbound claim keeps the pod waiting, with upstream's reason, until it is bound.
    apply(&server, &claim("later", None))?;
    apply(&server, &pod("waits", json!({}), using("later")))?;
    let message = unschedulable_message(&pods, "waits").await?;
    ensure!(
        message.contains("pod has unbound immediate PersistentVolumeClaims"),
        "{message}"
    );
    server.kubectl_ok(
        KUBECTL,
        &[
            "patch",
            "pvc",
            "later",
            "--type=merge",
            "-p",
            r#"{"spec":{"volumeName":"pv-a"}}"#,
        ],
    )?;
    ensure!(bound_node(&pods, "waits").await? == "in-a");
    Ok(())
}
