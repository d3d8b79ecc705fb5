//! The Node object a kubelet registers and keeps alive: capacity, labels, taints, the
//! node conditions and nodeInfo, and the Lease heartbeat in kube-node-lease. The real
//! kubelet describes its host ([`NodeSpec::from_host`]); simulated nodes (scheduler tests
//! and benchmarks) describe whatever capacity they are given.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

/// One node: what its Node object says about it.
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
    pub ephemeral_storage: String,
    pub kernel_version: String,
    pub os_image: String,
    pub container_runtime_version: String,
    /// `node.status.addresses`, as (type, address).
    pub addresses: Vec<(String, String)>,
    /// Marks the node as simulated (label `keelson.dev/simulated=true`).
    pub simulated: bool,
    /// The node's pod address range (spec.podCIDR).
    pub pod_cidr: Option<String>,
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
            ephemeral_storage: "100Gi".into(),
            kernel_version: "simulated".into(),
            os_image: "simulated".into(),
            container_runtime_version: "simulated://0".into(),
            addresses: vec![("Hostname".into(), name.to_string())],
            simulated: true,
            pod_cidr: None,
        }
    }

    /// This machine, as a kubelet reports it: cpus, memory (`/proc/meminfo`), the
    /// filesystem holding `root_dir`, kernel and OS release, the host name.
    pub fn from_host(name: &str, root_dir: &std::path::Path, runtime_version: &str) -> NodeSpec {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let memory_kib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .unwrap_or(0);
        let os_image = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|r| {
                r.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                    .map(|v| v.trim_matches('"').to_string())
            })
            .unwrap_or_else(|| "Linux".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|k| k.trim().to_string())
            .unwrap_or_default();
        NodeSpec {
            cpu: cpus.to_string(),
            memory: format!("{memory_kib}Ki"),
            ephemeral_storage: filesystem_size(root_dir)
                .map(|b| b.to_string())
                .unwrap_or_else(|| "0".into()),
            kernel_version: kernel,
            os_image,
            container_runtime_version: runtime_version.to_string(),
            simulated: false,
            ..NodeSpec::new(name)
        }
    }

    fn object(&self) -> Value {
        let mut labels = self.labels.clone();
        labels.insert("kubernetes.io/hostname".into(), self.name.clone());
        labels.insert("kubernetes.io/os".into(), "linux".into());
        labels.insert("kubernetes.io/arch".into(), "amd64".into());
        if self.simulated {
            labels.insert("keelson.dev/simulated".into(), "true".into());
        }
        json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.name, "labels": labels},
            "spec": {
                "taints": self.taints,
                "podCIDR": self.pod_cidr,
                "podCIDRs": self.pod_cidr.as_ref().map(|c| vec![c]),
            },
        })
    }

    fn status(&self) -> Value {
        let now = now();
        let mut resources = json!({
            "cpu": self.cpu,
            "memory": self.memory,
            "pods": self.pods,
            "ephemeral-storage": self.ephemeral_storage,
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
            "addresses": self.addresses.iter()
                .map(|(t, a)| json!({"type": t, "address": a}))
                .collect::<Vec<_>>(),
            "nodeInfo": {
                "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": self.kernel_version,
                "osImage": self.os_image, "containerRuntimeVersion": self.container_runtime_version,
                "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": "",
                "operatingSystem": "linux", "architecture": "amd64",
            },
        }})
    }
}

/// Registering a node failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("API request failed: {0}")]
    Kube(#[from] kube::Error),
    #[error("node object: {0}")]
    Json(#[from] serde_json::Error),
}

/// What `kubectl get nodes` shows in its VERSION column.
pub const KUBELET_VERSION: &str = "v1.35.0-keelson";

/// Size in bytes of the filesystem holding `path` (`df`'s total), for ephemeral-storage.
fn filesystem_size(path: &std::path::Path) -> Option<u64> {
    let out = std::process::Command::new("df")
        .args(["-B1", "--output=size"])
        .arg(path)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)?
        .trim()
        .parse()
        .ok()
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Creates the nodes (`concurrency` requests at a time), or takes over existing ones, and
/// writes a Ready status.
pub async fn create(
    client: &kube::Client,
    specs: &[NodeSpec],
    concurrency: usize,
) -> Result<(), NodeError> {
    let results: Vec<Result<(), NodeError>> = futures::stream::iter(specs)
        .map(|spec| register(client, spec))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

/// Creates (or takes over) one node and writes its status.
pub async fn register(client: &kube::Client, spec: &NodeSpec) -> Result<(), NodeError> {
    let api: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(spec.object())?;
    match api.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    update_status(client, spec).await
}

/// Writes the node's status again (conditions with a fresh heartbeat time).
pub async fn update_status(client: &kube::Client, spec: &NodeSpec) -> Result<(), NodeError> {
    let api: Api<Node> = Api::all(client.clone());
    api.patch_status(
        &spec.name,
        &PatchParams::default(),
        &Patch::Merge(spec.status()),
    )
    .await?;
    Ok(())
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
                        let params = PatchParams::apply("keelson-kubelet").force();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_described_from_proc() {
        let spec = NodeSpec::from_host("host", std::path::Path::new("/"), "containerd://1.6.20");
        assert!(
            spec.cpu.parse::<usize>().is_ok_and(|n| n >= 1),
            "{}",
            spec.cpu
        );
        let kib: u64 = spec.memory.trim_end_matches("Ki").parse().unwrap_or(0);
        assert!(kib > 100_000, "{}", spec.memory);
        assert!(spec.ephemeral_storage.parse::<u64>().is_ok_and(|b| b > 0));
        assert!(!spec.kernel_version.is_empty());
        assert!(!spec.simulated);
        let object = spec.object();
        assert!(object["metadata"]["labels"]
            .get("keelson.dev/simulated")
            .is_none());
        let status = spec.status();
        assert_eq!(
            status["status"]["nodeInfo"]["containerRuntimeVersion"],
            "containerd://1.6.20"
        );
        assert_eq!(status["status"]["capacity"]["cpu"], spec.cpu.as_str());
    }

    #[test]
    fn simulated_nodes_say_so() {
        let spec = NodeSpec::new("sim");
        assert_eq!(
            spec.object()["metadata"]["labels"]["keelson.dev/simulated"],
            "true"
        );
        let conditions = spec.status()["status"]["conditions"].clone();
        assert!(conditions.as_array().is_some_and(|c| c
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")));
    }
}
