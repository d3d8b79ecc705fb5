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
/// How often the static pod folder is read (upstream's file check frequency).
const MANIFEST_CHECK: Duration = Duration::from_secs(20);
/// How often mirror pods are checked against the static pods.
const MIRROR_SYNC: Duration = Duration::from_secs(5);

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
    /// A folder of static pod manifests, run without the API server.
    pub pod_manifest_path: Option<PathBuf>,
    /// Run simulated nodes instead of this host on containerd.
    pub simulated: Option<Simulated>,
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
    let nodes = match config.simulated {
        Some(sim) => simulated_nodes(&config, sim),
        None => vec![containerd_node(&config).await?],
    };
    started.ready.store(true, Ordering::Relaxed);
    let node_tasks = nodes
        .into_iter()
        .map(|node| run_node(client.clone(), node, &config));
    tokio::select! {
        e = started.lost() => Err(e.into()),
        r = futures::future::try_join_all(node_tasks) => r.map(|_| ()),
    }
}

/// Simulated nodes (`--runtime simulated`): how many, and how their containers behave.
#[derive(Clone, Copy, Debug)]
pub struct Simulated {
    pub nodes: usize,
    pub timings: crate::runtime::simulated::Timings,
}

/// One node this process runs: its description, runtime, pod network and root dir.
struct NodeParts {
    spec: NodeSpec,
    runtime: Arc<dyn Runtime>,
    network: Arc<dyn crate::network::Network>,
    root_dir: PathBuf,
    host_ip: String,
}

async fn containerd_node(config: &Config) -> Result<NodeParts, Error> {
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
    let mut spec = NodeSpec::from_host(&config.node_name, &config.root_dir, &version);
    spec.addresses = vec![
        ("InternalIP".into(), host_ip.clone()),
        ("Hostname".into(), config.node_name.clone()),
    ];
    spec.pod_cidr = Some(config.network.subnet.clone());
    Ok(NodeParts {
        spec,
        runtime,
        network: Arc::new(Cni::new(config.network.clone())),
        root_dir: config.root_dir.clone(),
        host_ip,
    })
}

/// `nodes` simulated nodes named NODE-0, NODE-1, ... (or NODE when there is one), each
/// with a runtime and pod addresses of its own.
fn simulated_nodes(config: &Config, sim: Simulated) -> Vec<NodeParts> {
    (0..sim.nodes.max(1))
        .map(|i| {
            let name = if sim.nodes <= 1 {
                config.node_name.clone()
            } else {
                format!("{}-{i}", config.node_name)
            };
            // 100.64.0.0/10-style addresses, one /16 per node; never contacted.
            let prefix = [100 + (i >> 8) as u8, (i & 0xff) as u8];
            let mut spec = NodeSpec::new(&name);
            spec.pod_cidr = Some(format!("{}.{}.0.0/16", prefix[0], prefix[1]));
            let host_ip = format!("{}.{}.0.1", prefix[0], prefix[1]);
            spec.addresses = vec![
                ("InternalIP".into(), host_ip.clone()),
                ("Hostname".into(), name.clone()),
            ];
            NodeParts {
                root_dir: config.root_dir.join(&name),
                spec,
                runtime: Arc::new(crate::runtime::simulated::SimulatedRuntime::new(
                    sim.timings,
                )),
                network: Arc::new(crate::network::SimulatedNetwork::new(prefix)),
                host_ip,
            }
        })
        .collect()
}

/// Registers one node and runs its pods until the process ends.
async fn run_node(client: kube::Client, node: NodeParts, config: &Config) -> Result<(), Error> {
    let NodeParts {
        spec,
        runtime,
        network,
        root_dir,
        host_ip,
    } = node;
    // Registration waits for the API server in the background: static pods run before.
    let (node_uid_tx, node_uid_rx) = tokio::sync::watch::channel(None::<String>);
    let _registration = AbortOnDrop(tokio::spawn(register(
        client.clone(),
        spec.clone(),
        node_uid_tx,
    )));
    tracing::info!(node = %spec.name, runtime = %spec.container_runtime_version, %host_ip, "kubelet starting");
    let allocatable = [
        ("cpu", &spec.cpu),
        ("memory", &spec.memory),
        ("ephemeral-storage", &spec.ephemeral_storage),
        ("pods", &spec.pods),
    ]
    .into_iter()
    .map(|(k, v)| {
        (
            k.to_string(),
            k8s_openapi::apimachinery::pkg::api::resource::Quantity(v.clone()),
        )
    })
    .collect();
    let log_dir = if config.simulated.is_some() {
        root_dir.join("logs")
    } else {
        config.log_dir.clone()
    };
    let shared = Arc::new(Shared {
        client: client.clone(),
        runtime,
        cni: network,
        events: EventSink::new(client.clone(), "kubelet"),
        source: Arc::new(ApiObjectSource::new(client.clone())),
        node_name: spec.name.clone(),
        host_ip,
        root_dir,
        log_dir,
        allocatable,
    });
    let (static_tx, static_rx) = tokio::sync::watch::channel(Vec::new());
    let _mirrors = AbortOnDrop(tokio::spawn(sync_mirror_pods(
        client.clone(),
        spec.name.clone(),
        node_uid_rx,
        static_rx,
    )));
    let agent = Agent {
        shared,
        workers: HashMap::new(),
        snapshot: HashMap::new(),
        static_pods: HashMap::new(),
        manifests: config.pod_manifest_path.clone(),
        static_tx,
    };
    agent.run(client, &spec.name).await
}

/// Aborts a background task when the owner goes.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Agent {
    shared: Arc<Shared>,
    workers: HashMap<String, WorkerHandle>,
    /// The last relist, by pod uid.
    snapshot: HashMap<String, (PodRef, Snapshot)>,
    /// The static pods being run, by uid.
    static_pods: HashMap<String, Pod>,
    manifests: Option<PathBuf>,
    /// The static pods, for the mirror pod task.
    static_tx: tokio::sync::watch::Sender<Vec<Pod>>,
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
        if pod_ref.uid.is_empty() || crate::static_pods::is_mirror(&pod) {
            return;
        }
        if let Some(handle) = self.workers.get(&pod_ref.uid) {
            let _ = handle.pod.send(Some(pod));
            return;
        }
        let snapshot = self.instances_of(&pod_ref.uid);
        let handle = worker::spawn(
            self.shared.clone(),
            pod_ref.clone(),
            Some(pod),
            snapshot,
            false,
        );
        self.workers.insert(pod_ref.uid, handle);
    }

    /// Reads the manifest folder again: new or changed manifests start, removed ones stop.
    fn reload_static_pods(&mut self) {
        let Some(dir) = &self.manifests else {
            return;
        };
        let pods: HashMap<String, Pod> = crate::static_pods::load(dir, &self.shared.node_name)
            .into_iter()
            .filter_map(|p| Some((p.metadata.uid.clone()?, p)))
            .collect();
        let removed: Vec<String> = self
            .static_pods
            .keys()
            .filter(|uid| !pods.contains_key(*uid))
            .cloned()
            .collect();
        for uid in removed {
            self.static_pods.remove(&uid);
            self.gone(&uid);
        }
        for (uid, pod) in &pods {
            if self.static_pods.contains_key(uid) {
                continue;
            }
            tracing::info!(pod = %PodRef::of(pod).key(), "running a static pod");
            let snapshot = self.instances_of(uid);
            let handle = worker::spawn(
                self.shared.clone(),
                PodRef::of(pod),
                Some(pod.clone()),
                snapshot,
                true,
            );
            self.workers.insert(uid.clone(), handle);
        }
        self.static_pods = pods;
        let _ = self
            .static_tx
            .send(self.static_pods.values().cloned().collect());
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
            .filter(|(uid, _)| {
                !known.contains(*uid)
                    && !self.workers.contains_key(*uid)
                    && !self.static_pods.contains_key(*uid)
            })
            .map(|(_, v)| v.clone())
            .collect();
        for (pod_ref, snapshot) in orphans {
            tracing::info!(pod = %pod_ref.key(), "removing the containers of a pod that is gone");
            let handle = worker::spawn(self.shared.clone(), pod_ref.clone(), None, snapshot, false);
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
        self.reload_static_pods();
        let mut manifests = tokio::time::interval(MANIFEST_CHECK);
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
                                .filter(|(uid, h)| {
                                    !seen.contains(*uid)
                                        && !self.static_pods.contains_key(*uid)
                                        && h.pod.borrow().is_some()
                                })
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
                _ = manifests.tick() => self.reload_static_pods(),
                _ = relist.tick() => {
                    self.relist().await;
                    self.workers.retain(|_, h| !h.task.is_finished());
                }
            }
        }
    }
}

/// Registers the node once the API server answers, then keeps its Lease and status fresh.
async fn register(
    client: kube::Client,
    node: NodeSpec,
    node_uid: tokio::sync::watch::Sender<Option<String>>,
) {
    loop {
        match crate::node::register(&client, &node).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(error = %e, "registering the node; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
    tracing::info!(node = %node.name, "node registered");
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    if let Ok(n) = nodes.get(&node.name).await {
        let _ = node_uid.send(n.metadata.uid);
    }
    let _lease = crate::node::heartbeat(client.clone(), vec![node.name.clone()], LEASE_INTERVAL);
    loop {
        tokio::time::sleep(STATUS_INTERVAL).await;
        if let Err(e) = crate::node::update_status(&client, &node).await {
            tracing::warn!(error = %e, "updating the node status");
        }
    }
}

/// Keeps one mirror pod per static pod in the API server: created when missing (also
/// after a user deleted it), replaced when the manifest changed, deleted with it.
async fn sync_mirror_pods(
    client: kube::Client,
    node_name: String,
    mut node_uid: tokio::sync::watch::Receiver<Option<String>>,
    static_pods: tokio::sync::watch::Receiver<Vec<Pod>>,
) {
    use crate::static_pods::{is_mirror, mirror, mirrors};
    use kube::api::{DeleteParams, ListParams, PostParams};
    let uid = loop {
        if let Some(uid) = node_uid.borrow_and_update().clone() {
            break uid;
        }
        if node_uid.changed().await.is_err() {
            return;
        }
    };
    let all: Api<Pod> = Api::all(client.clone());
    loop {
        let wanted = static_pods.borrow().clone();
        let fields = format!("spec.nodeName={node_name}");
        match all.list(&ListParams::default().fields(&fields)).await {
            Err(e) => tracing::debug!(error = %e, "listing mirror pods"),
            Ok(list) => {
                let existing: Vec<Pod> = list.items.into_iter().filter(is_mirror).collect();
                for pod in &wanted {
                    let key = PodRef::of(pod);
                    let api: Api<Pod> = Api::namespaced(client.clone(), &key.namespace);
                    let current = existing.iter().find(|m| PodRef::of(m).key() == key.key());
                    if let Some(current) = current {
                        if mirrors(current, pod) && current.metadata.deletion_timestamp.is_none() {
                            continue;
                        }
                        let _ = api
                            .delete(&key.name, &DeleteParams::default().grace_period(0))
                            .await;
                    }
                    match api
                        .create(&PostParams::default(), &mirror(pod, &node_name, &uid))
                        .await
                    {
                        Ok(_) => tracing::info!(pod = %key.key(), "created the mirror pod"),
                        Err(e) => {
                            tracing::warn!(pod = %key.key(), error = %e, "creating the mirror pod")
                        }
                    }
                }
                for m in &existing {
                    let key = PodRef::of(m);
                    if !wanted.iter().any(|p| PodRef::of(p).key() == key.key()) {
                        let api: Api<Pod> = Api::namespaced(client.clone(), &key.namespace);
                        let _ = api
                            .delete(&key.name, &DeleteParams::default().grace_period(0))
                            .await;
                    }
                }
            }
        }
        tokio::time::sleep(MIRROR_SYNC).await;
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

/// containerd with its configuration, root, state, socket (`containerd.sock`) and log
/// (`containerd.log`) under `dir`, ready to spawn.
pub fn containerd_command(dir: &Path) -> std::io::Result<std::process::Command> {
    std::fs::create_dir_all(dir)?;
    let config = dir.join("config.toml");
    // Only the plain containerd services: Keelson is its own CRI.
    std::fs::write(
        &config,
        "version = 2\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n",
    )?;
    let log = std::fs::File::create(dir.join("containerd.log"))?;
    let socket = dir.join("containerd.sock");
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
        .stdout(log.try_clone()?)
        .stderr(log);
    Ok(command)
}

/// Starts containerd with its root and state under `dir` (when none answers on its
/// socket there already: a restarted kubelet finds the one it started before, with the
/// containers still running). Returns the socket.
pub async fn start_containerd(dir: &Path) -> Result<PathBuf, Error> {
    let socket = dir.join("containerd.sock");
    if containerd_answers(&socket).await {
        return Ok(socket);
    }
    let mut command =
        containerd_command(dir).map_err(|e| Error::Other(format!("{}: {e}", dir.display())))?;
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
