//! Simulated nodes: Node objects with a given capacity, labels and taints, kept Ready with
//! Lease heartbeats in kube-node-lease as a kubelet keeps them, with no containers behind
//! them. For scheduler tests and benchmarks until the kubelet's simulated runtime exists.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

/// One node to simulate.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    pub name: String,
    /// Quantities as Kubernetes writes them: "4", "16Gi", "110".
    pub cpu: String,
    pub memory: String,
    pub pods: String,
    pub labels: BTreeMap<String, String>,
    /// `{"key": ..., "value": ..., "effect": ...}` objects.
    pub taints: Vec<Value>,
    /// Extra allocatable resources (extended resources such as `example.com/gpu`).
    pub extra: BTreeMap<String, String>,
}

impl NodeSpec {
    /// A node with 4 cpus, 16 GiB and 110 pods, labelled as a kubelet labels its node.
    pub fn new(name: &str) -> NodeSpec {
        NodeSpec {
            name: name.to_string(),
            cpu: "4".into(),
            memory: "16Gi".into(),
            pods: "110".into(),
            labels: BTreeMap::new(),
            taints: Vec::new(),
            extra: BTreeMap::new(),
        }
    }

    fn object(&self) -> Value {
        let mut labels = self.labels.clone();
        labels.insert("kubernetes.io/hostname".into(), self.name.clone());
        labels.insert("kubernetes.io/os".into(), "linux".into());
        labels.insert("kubernetes.io/arch".into(), "amd64".into());
        labels.insert("keelson.dev/simulated".into(), "true".into());
        json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.name, "labels": labels},
            "spec": {"taints": self.taints},
        })
    }

    fn status(&self) -> Value {
        let now = now();
        let mut resources = json!({
            "cpu": self.cpu,
            "memory": self.memory,
            "pods": self.pods,
            "ephemeral-storage": "100Gi",
        });
        for (k, v) in &self.extra {
            resources[k] = json!(v);
        }
        let condition = |type_: &str, status: &str, reason: &str, message: &str| {
            json!({"type": type_, "status": status, "reason": reason, "message": message,
                   "lastHeartbeatTime": now, "lastTransitionTime": now})
        };
        json!({"status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [{"type": "Hostname", "address": self.name}],
            "nodeInfo": {
                "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "simulated",
                "osImage": "simulated", "containerRuntimeVersion": "simulated://0",
                "kubeletVersion": "v1.35.0-keelson", "kubeProxyVersion": "",
                "operatingSystem": "linux", "architecture": "amd64",
            },
        }})
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Creates the nodes (`concurrency` requests at a time) with a Ready status.
pub async fn create(
    client: &kube::Client,
    specs: &[NodeSpec],
    concurrency: usize,
) -> anyhow::Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(specs)
        .map(|spec| {
            let api = api.clone();
            async move {
                let node: Node = serde_json::from_value(spec.object())?;
                match api.create(&PostParams::default(), &node).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 409 => {}
                    Err(e) => return Err(e.into()),
                }
                api.patch_status(
                    &spec.name,
                    &PatchParams::default(),
                    &Patch::Merge(spec.status()),
                )
                .await?;
                Ok(())
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

/// Renews each node's Lease in kube-node-lease every `interval` (a kubelet's is 10 s),
/// creating it first. Stops when the returned handle is aborted or dropped with the
/// runtime.
pub fn heartbeat(
    client: kube::Client,
    names: Vec<String>,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<Lease> = Api::namespaced(client, "kube-node-lease");
        loop {
            futures::stream::iter(&names)
                .for_each_concurrent(16, |name| {
                    let api = api.clone();
                    async move {
                        let lease = json!({
                            "apiVersion": "coordination.k8s.io/v1",
                            "kind": "Lease",
                            "metadata": {"name": name, "namespace": "kube-node-lease"},
                            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now()},
                        });
                        let params = PatchParams::apply("keelson-simulated-kubelet").force();
                        if let Err(e) = api.patch(name, &params, &Patch::Apply(lease)).await {
                            tracing::debug!(node = %name, error = %e, "lease renewal failed");
                        }
                    }
                })
                .await;
            tokio::time::sleep(interval).await;
        }
    })
}
