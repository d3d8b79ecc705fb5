//! The kubelet process: registers the node and keeps it alive, watches the pods bound to
//! it, relists the runtime's containers every second (upstream's PLEG) and hands each pod's
//! share to that pod's [`worker`](crate::pod::worker). Containers of pods that no longer
//! exist are stopped and removed; containers that run when the kubelet starts are adopted.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use keelson_common::component::Started;
use keelson_common::events::EventSink;
use kube::api::Api;
use kube::runtime::watcher;

use crate::network::{Cni, NetworkConfig};
use crate::node::NodeSpec;
use crate::pod::source::ApiObjectSource;
use crate::pod::worker::{self, PodRef, Shared, Snapshot, WorkerHandle};
use crate::runtime::containerd::ContainerdRuntime;
use crate::runtime::Runtime;

/// The containerd namespace Keelson's containers live in (CRI's is `k8s.io`).
pub const CONTAINERD_NAMESPACE: &str = "keelson";
/// How often the runtime is relisted.
const RELIST: Duration = Duration::from_secs(1);
/// Lease renewals (upstream's 10 s) and full status updates (upstream: on change or
/// every 5 min; we say every minute).
const LEASE_INTERVAL: Duration = Duration::from_secs(10);
const STATUS_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub struct Config {
    pub kubeconfig: Option<PathBuf>,
    pub node_name: String,
    /// Volumes, pod files, the CNI state: `/var/lib/keelson/kubelet` by default.
    pub root_dir: PathBuf,
    /// Container logs (`/var/log/pods` upstream).
    pub log_dir: PathBuf,
    /// containerd's socket; None: start a containerd of our own under `root_dir`.
    pub containerd_socket: Option<PathBuf>,
    pub network: NetworkConfig,
    /// The binary containerd's shim runs as each container's logger (`keelson
    /// container-logger`); None: containerd writes the raw output to the log file.
    pub logger_binary: Option<PathBuf>,
    pub health_address: SocketAddr,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Component(#[from] keelson_common::Error),
    #[error("container runtime: {0}")]
    Runtime(#[from] crate::runtime::RuntimeError),
    #[error("registering the node: {0}")]
    Node(#[from] crate::node::NodeError),
    #[error("{0}")]
    Other(String),
}

/// Runs the kubelet until the process ends.
pub async fn run(config: Config) -> Result<(), Error> {
    let started = Started::start(
        config.kubeconfig.as_deref(),
        None,
        config.health_address,
        prometheus_client::registry::Registry::default(),
    )
    .await?;
    let client = started.client.clone();
    std::fs::create_dir_all(&config.root_dir)
        .map_err(|e| Error::Other(format!("{}: {e}", config.root_dir.display())))?;
    let socket = match &config.containerd_socket {
        Some(s) => s.clone(),
        None => start_containerd(&config.root_dir.join("containerd")).await?,
    };
    let mut runtime = ContainerdRuntime::connect(&socket, CONTAINERD_NAMESPACE).await?;
    if let Some(binary) = &config.logger_binary {
        runtime.set_logger(binary.clone());
    }
    let runtime: Arc<dyn Runtime> = Arc::new(runtime);
    let version = runtime.version().await?;
    let host_ip = host_ip();
    let mut node = NodeSpec::from_host(&config.node_name, &config.root_dir, &version);
    node.addresses = vec![
        ("InternalIP".into(), host_ip.clone()),
        ("Hostname".into(), config.node_name.clone()),
    ];
    node.pod_cidr = Some(config.network.subnet.clone());
    crate::node::create(&client, std::slice::from_ref(&node), 1).await?;
    let _lease = crate::node::heartbeat(client.clone(), vec![node.name.clone()], LEASE_INTERVAL);
    let status_client = client.clone();
    let status_node = node.clone();
    let _status = tokio::spawn(async move {
        loop {
            tokio::time::sleep(STATUS_INTERVAL).await;
            if let Err(e) = crate::node::update_status(&status_client, &status_node).await {
                tracing::warn!(error = %e, "updating the node status");
            }
        }
    });
    tracing::info!(node = %node.name, runtime = %version, %host_ip, "kubelet registered its node");

    let cni = Arc::new(Cni::new(config.network.clone()));
    let allocatable = [
        ("cpu", &node.cpu),
        ("memory", &node.memory),
        ("ephemeral-storage", &node.ephemeral_storage),
        ("pods", &node.pods),
    ]
    .into_iter()
    .map(|(k, v)| {
        (
            k.to_string(),
            k8s_openapi::apimachinery::pkg::api::resource::Quantity(v.clone()),
        )
    })
    .collect();
    let shared = Arc::new(Shared {
        client: client.clone(),
        runtime: runtime.clone(),
        cni: cni.clone(),
        events: EventSink::new(client.clone(), "kubelet"),
        source: Arc::new(ApiObjectSource::new(client.clone())),
        node_name: config.node_name.clone(),
        host_ip,
        root_dir: config.root_dir.clone(),
        log_dir: config.log_dir.clone(),
        allocatable,
        static_pods: false,
    });
    started.ready.store(true, Ordering::Relaxed);
    let agent = Agent {
        shared,
        workers: HashMap::new(),
        snapshot: HashMap::new(),
    };
    tokio::select! {
        e = started.lost() => Err(e.into()),
        r = agent.run(client, &config.node_name) => r,
    }
}

struct Agent {
    shared: Arc<Shared>,
    workers: HashMap<String, WorkerHandle>,
    /// The last relist, by pod uid.
    snapshot: HashMap<String, (PodRef, Snapshot)>,
}

impl Agent {
    async fn relist(&mut self) {
        let at = Instant::now();
        let all = match self.shared.runtime.list().await {
            Ok(all) => all,
            Err(e) => {
                tracing::warn!(error = %e, "listing containers");
                return;
            }
        };
        let mut by_pod: HashMap<String, (PodRef, Snapshot)> = HashMap::new();
        for info in &all {
            if let Some((pod, instance)) = worker::instance(info) {
                by_pod
                    .entry(pod.uid.clone())
                    .or_insert_with(|| (pod, (at, Vec::new())))
                    .1
                     .1
                    .push(instance);
            }
        }
        for (uid, handle) in &self.workers {
            let instances = by_pod
                .get(uid)
                .map(|(_, s)| s.1.clone())
                .unwrap_or_default();
            handle.instances.send_if_modified(|current| {
                if current.1 == instances {
                    false
                } else {
                    *current = (at, instances);
                    true
                }
            });
        }
        self.snapshot = by_pod;
    }

    fn instances_of(&self, uid: &str) -> Snapshot {
        self.snapshot
            .get(uid)
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| (Instant::now(), Vec::new()))
    }

    fn upsert(&mut self, pod: Pod) {
        let pod_ref = PodRef::of(&pod);
        if pod_ref.uid.is_empty() {
            return;
        }
        if let Some(handle) = self.workers.get(&pod_ref.uid) {
            let _ = handle.pod.send(Some(pod));
            return;
        }
        let snapshot = self.instances_of(&pod_ref.uid);
        let handle = worker::spawn(self.shared.clone(), pod_ref.clone(), Some(pod), snapshot);
        self.workers.insert(pod_ref.uid, handle);
    }

    fn gone(&mut self, uid: &str) {
        if let Some(handle) = self.workers.get(uid) {
            let _ = handle.pod.send(None);
        }
    }

    /// Containers and networks of pods the API server does not know: stop and remove them
    /// (pods deleted while the kubelet was down).
    async fn collect_orphans(&mut self, known: &HashSet<String>) {
        let orphans: Vec<(PodRef, Snapshot)> = self
            .snapshot
            .iter()
            .filter(|(uid, _)| !known.contains(*uid) && !self.workers.contains_key(*uid))
            .map(|(_, v)| v.clone())
            .collect();
        for (pod_ref, snapshot) in orphans {
            tracing::info!(pod = %pod_ref.key(), "removing the containers of a pod that is gone");
            let handle = worker::spawn(self.shared.clone(), pod_ref.clone(), None, snapshot);
            self.workers.insert(pod_ref.uid, handle);
        }
        let known_keys: HashSet<String> = self
            .workers
            .values()
            .filter_map(|h| h.pod.borrow().as_ref().map(|p| PodRef::of(p).key()))
            .collect();
        for key in self.shared.cni.recorded_pods().await {
            if !known_keys.contains(&key) {
                if let Err(e) = self.shared.cni.teardown(&key).await {
                    tracing::warn!(pod = %key, error = %e, "tearing down a stale pod network");
                }
            }
        }
    }

    async fn run(mut self, client: kube::Client, node_name: &str) -> Result<(), Error> {
        // Adopt first: workers start from what runs now, so nothing starts twice.
        self.relist().await;
        let api: Api<Pod> = Api::all(client);
        let config = watcher::Config::default().fields(&format!("spec.nodeName={node_name}"));
        let mut pods = watcher(api, config).boxed();
        let mut relist = tokio::time::interval(RELIST);
        let mut listing: Option<HashSet<String>> = None;
        loop {
            tokio::select! {
                event = pods.next() => match event {
                    None => return Err(Error::Other("pod watch ended".into())),
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "watching pods");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    Some(Ok(event)) => match event {
                        watcher::Event::Init => listing = Some(HashSet::new()),
                        watcher::Event::InitApply(pod) => {
                            if let (Some(seen), Some(uid)) = (listing.as_mut(), pod.metadata.uid.clone()) {
                                seen.insert(uid);
                            }
                            self.upsert(pod);
                        }
                        watcher::Event::InitDone => {
                            let seen = listing.take().unwrap_or_default();
                            let stale: Vec<String> = self
                                .workers
                                .iter()
                                .filter(|(uid, h)| !seen.contains(*uid) && h.pod.borrow().is_some())
                                .map(|(uid, _)| uid.clone())
                                .collect();
                            for uid in stale {
                                self.gone(&uid);
                            }
                            self.collect_orphans(&seen).await;
                        }
                        watcher::Event::Apply(pod) => self.upsert(pod),
                        watcher::Event::Delete(pod) => {
                            if let Some(uid) = pod.metadata.uid.as_deref() {
                                self.gone(uid);
                            }
                        }
                    },
                },
                _ = relist.tick() => {
                    self.relist().await;
                    self.workers.retain(|_, h| !h.task.is_finished());
                }
            }
        }
    }
}

/// The node's address: the first global IPv4 address of the host, else loopback.
fn host_ip() -> String {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output();
    out.ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout).lines().find_map(|l| {
                let mut words = l.split_whitespace();
                words.find(|w| *w == "inet")?;
                let cidr = words.next()?;
                Some(cidr.split('/').next()?.to_string())
            })
        })
        .unwrap_or_else(|| "127.0.0.1".into())
}

/// Starts containerd with its root and state under `dir` (when none answers on its
/// socket there already: a restarted kubelet finds the one it started before, with the
/// containers still running). Returns the socket.
pub async fn start_containerd(dir: &Path) -> Result<PathBuf, Error> {
    let socket = dir.join("containerd.sock");
    if containerd_answers(&socket).await {
        return Ok(socket);
    }
    let io = |e: std::io::Error| Error::Other(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let config = dir.join("config.toml");
    // Only the plain containerd services: Keelson is its own CRI.
    std::fs::write(
        &config,
        "version = 2\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n",
    )
    .map_err(io)?;
    let log = std::fs::File::create(dir.join("containerd.log")).map_err(io)?;
    let log2 = log.try_clone().map_err(io)?;
    let _ = std::fs::remove_file(&socket);
    let mut command = std::process::Command::new("containerd");
    command
        .arg("--config")
        .arg(&config)
        .arg("--root")
        .arg(dir.join("root"))
        .arg("--state")
        .arg(dir.join("state"))
        .arg("--address")
        .arg(&socket)
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log2);
    // Its own process group: a Ctrl-C of `keelson server` leaves containerd (and the
    // containers) running, as a node's containerd outlives its kubelet.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    command
        .spawn()
        .map_err(|e| Error::Other(format!("starting containerd: {e}")))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if containerd_answers(&socket).await {
            tracing::info!(socket = %socket.display(), "started containerd");
            return Ok(socket);
        }
        if Instant::now() > deadline {
            return Err(Error::Other(format!(
                "containerd did not answer on {} within 30 s (see {})",
                socket.display(),
                dir.join("containerd.log").display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn containerd_answers(socket: &Path) -> bool {
    if !socket.exists() {
        return false;
    }
    match ContainerdRuntime::connect(socket, CONTAINERD_NAMESPACE).await {
        Ok(rt) => rt.version().await.is_ok(),
        Err(_) => false,
    }
}
