//! `keelson kubelet --runtime simulated`: nodes without processes, driven by the real
//! controller-manager and scheduler through the same kubelet code paths as containerd.

use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

use crate::harness::{wait_for_async, Server};

const KUBECTL: &str = "1.37";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_nodes_run_a_deployment_and_complete_pods() -> Result<()> {
    let server = Server::start()?;
    let _cm = server.start_controller_manager("cm", &["--leader-elect=false"])?;
    let _sched = server.start_scheduler("sched", &["--leader-elect=false"])?;
    let root = server.dir.path().join("simulated");
    let root = root.display().to_string();
    let _kubelet = server.start_component(
        "kubelet",
        "sim",
        &[
            "--runtime",
            "simulated",
            "--nodes",
            "3",
            "--node-name",
            "sim",
            "--root-dir",
            &root,
            "--simulated-start-delay-ms",
            "200",
            "--simulated-run-for-ms",
            "1000",
        ],
    )?;
    let client = server.client().await?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    wait_for_async(Duration::from_secs(30), || {
        let leases = leases.clone();
        async move {
            let names: Vec<String> = leases
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .filter_map(|l| l.metadata.name)
                .collect();
            ["sim-0", "sim-1", "sim-2"]
                .iter()
                .all(|n| names.iter().any(|m| m == n))
                .then_some(())
        }
    })
    .await
    .context("the simulated nodes hold no Leases")?;
    let nodes = server.kubectl_ok(KUBECTL, &["get", "nodes"])?;
    assert_eq!(
        nodes
            .lines()
            .filter(|l| l.starts_with("sim-") && l.contains(" Ready"))
            .count(),
        3,
        "{nodes}"
    );

    server.kubectl_stdin(
        KUBECTL,
        &["apply", "-f", "-"],
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 6
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.27
        readinessProbe:
          httpGet:
            port: 80
---
apiVersion: v1
kind: Pod
metadata:
  name: job-like
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
"#,
    )?;
    if let Err(e) = server.kubectl_ok(
        KUBECTL,
        &["rollout", "status", "deployment/web", "--timeout=60s"],
    ) {
        let pods = server.kubectl_ok(KUBECTL, &["get", "pods", "-o", "wide"])?;
        let events = server.kubectl_ok(KUBECTL, &["get", "events"])?;
        anyhow::bail!("{e}\n{pods}\n{events}");
    }
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let list = pods.list(&ListParams::default().labels("app=web")).await?;
    let mut nodes_used: Vec<String> = list
        .items
        .iter()
        .filter_map(|p| p.spec.as_ref()?.node_name.clone())
        .collect();
    nodes_used.sort();
    nodes_used.dedup();
    assert!(nodes_used.len() >= 2, "{nodes_used:?}");
    for pod in &list.items {
        let status = pod.status.clone().unwrap_or_default();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert!(status.pod_ip.unwrap_or_default().starts_with("100."));
    }

    let done = wait_for_async(Duration::from_secs(30), || {
        let pods = pods.clone();
        async move {
            let pod = pods.get("job-like").await.ok()?;
            (pod.status.as_ref()?.phase.as_deref() == Some("Succeeded")).then_some(pod)
        }
    })
    .await
    .context("the Never pod did not complete")?;
    let state = done
        .status
        .and_then(|s| s.container_statuses)
        .and_then(|c| c.into_iter().next())
        .and_then(|c| c.state)
        .and_then(|s| s.terminated)
        .context("no terminated state")?;
    assert_eq!(state.reason.as_deref(), Some("Completed"));

    // Deletion goes through the kubelet's graceful path and confirms the delete.
    server.kubectl_ok(KUBECTL, &["delete", "deployment", "web", "--timeout=60s"])?;
    wait_for_async(Duration::from_secs(30), || {
        let pods = pods.clone();
        async move {
            let left = pods
                .list(&ListParams::default().labels("app=web"))
                .await
                .ok()?
                .items
                .len();
            (left == 0).then_some(())
        }
    })
    .await
    .context("the Deployment's pods were not deleted")?;
    Ok(())
}
