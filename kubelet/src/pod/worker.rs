//! One task per pod on this node: it sets up the pod's network and volumes, applies the
//! [`plan`](super::plan) to the runtime, runs the probes, reports the status, and on
//! deletion stops everything and confirms the delete. It owns all of its pod's state, so
//! nothing here is shared between pods but the runtime and the API client.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::core::v1::{Container, Pod};
use keelson_common::events::{EventSink, EventType};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};

use super::plan::{self, Action, Backoff, Instance, KillReason, Observed};
use super::source::ObjectSource;
use super::status::{self, StatusInput};
use super::{env, etc_files, volumes};
use crate::network::{Network, PodNetwork};
use crate::probe::{self, ProbeHandle, ProbeKind, ProbeResult, ProbeTarget};
use crate::runtime::{normalize_reference, ContainerSpec, ContainerState, Runtime, RuntimeError};

/// Labels every container gets, so that a restarted kubelet knows whose it is.
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";
const LABEL_ATTEMPT: &str = "keelson.dev/attempt";
const LABEL_INIT: &str = "keelson.dev/init";
const LABEL_SPEC_HASH: &str = "keelson.dev/spec-hash";

/// How often volumes with API content (configMap, secret, projected) are rewritten.
const VOLUME_REFRESH: Duration = Duration::from_secs(60);
/// A sync at least this often, whatever happens.
const RESYNC: Duration = Duration::from_secs(10);
/// The grace period of a pod that names none (upstream's default).
const DEFAULT_GRACE: i64 = 30;

/// What all pod workers share.
pub struct Shared {
    pub client: kube::Client,
    pub runtime: Arc<dyn Runtime>,
    pub cni: Arc<dyn Network>,
    pub events: EventSink,
    pub source: Arc<dyn ObjectSource>,
    pub node_name: String,
    pub host_ip: String,
    /// Per-pod directories (volumes, /etc/hosts) live under `<root_dir>/pods/<uid>`.
    pub root_dir: PathBuf,
    /// Container logs: `<log_dir>/<ns>_<name>_<uid>/<container>/<attempt>.log`.
    pub log_dir: PathBuf,
    /// The node's allocatable resources: resourceFieldRef and emptyDir size defaults.
    pub allocatable: BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
}

/// A pod's identity, known even when only its containers are left.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PodRef {
    pub uid: String,
    pub namespace: String,
    pub name: String,
}

impl PodRef {
    pub fn of(pod: &Pod) -> PodRef {
        PodRef {
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
        }
    }

    /// `namespace/name`: the CNI key.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// The instances of this pod the runtime showed, and when it was asked.
pub type Snapshot = (Instant, Vec<Instance>);

/// Reads a runtime container as an instance of a pod, if it is one of the kubelet's.
pub fn instance(info: &crate::runtime::ContainerInfo) -> Option<(PodRef, Instance)> {
    let label = |k: &str| info.labels.get(k).cloned();
    let pod = PodRef {
        uid: label(LABEL_POD_UID)?,
        namespace: label(LABEL_POD_NAMESPACE).unwrap_or_default(),
        name: label(LABEL_POD_NAME).unwrap_or_default(),
    };
    let instance = Instance {
        id: info.id.clone(),
        name: label(LABEL_CONTAINER_NAME)?,
        attempt: label(LABEL_ATTEMPT)?.parse().ok()?,
        init: label(LABEL_INIT).as_deref() == Some("true"),
        spec_hash: label(LABEL_SPEC_HASH).unwrap_or_default(),
        image: info.image.clone(),
        state: info.state.clone(),
    };
    Some((pod, instance))
}

/// The runtime id of one attempt of one container: stable, so that a repeated start of the
/// same attempt is refused by the runtime instead of running twice.
pub fn container_runtime_id(uid: &str, name: &str, attempt: u32) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(format!("{uid}/{name}/{attempt}").as_bytes()))
}

/// The handles the agent keeps for a running worker.
pub struct WorkerHandle {
    pub pod: watch::Sender<Option<Pod>>,
    pub instances: watch::Sender<Snapshot>,
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts the worker of one pod. `pod` None: the pod is gone from the API server and only
/// its containers are left (they are stopped and removed).
///
/// A static pod (`is_static`, from a manifest file) reports its status to its mirror pod
/// when there is one, and is not deleted through the API.
pub fn spawn(
    shared: Arc<Shared>,
    pod_ref: PodRef,
    pod: Option<Pod>,
    instances: Snapshot,
    is_static: bool,
) -> WorkerHandle {
    let (pod_tx, pod_rx) = watch::channel(pod);
    let (inst_tx, inst_rx) = watch::channel(instances);
    let task = tokio::spawn(async move {
        let mut worker = Worker::new(shared, pod_ref, pod_rx, inst_rx);
        worker.is_static = is_static;
        worker.run().await;
    });
    WorkerHandle {
        pod: pod_tx,
        instances: inst_tx,
        task,
    }
}

struct Probes {
    handles: HashMap<(String, ProbeKind), ProbeHandle>,
    /// Forwards result changes of all probes to the worker.
    changed: Arc<Notify>,
    forwarders: HashMap<(String, ProbeKind), tokio::task::JoinHandle<()>>,
    /// Probes whose failure was already reported.
    failing: HashSet<(String, ProbeKind)>,
}

struct Worker {
    shared: Arc<Shared>,
    pod_ref: PodRef,
    pod_rx: watch::Receiver<Option<Pod>>,
    inst_rx: watch::Receiver<Snapshot>,
    instances: Vec<Instance>,
    listed_at: Instant,
    network: Option<PodNetwork>,
    volumes: Option<volumes::PodVolumes>,
    volumes_at: Instant,
    backoff: HashMap<String, Backoff>,
    image_backoff: HashMap<String, Backoff>,
    start_errors: BTreeMap<String, (String, String)>,
    /// Containers in crash-loop back-off at the last pass (one BackOff event each time
    /// one enters it).
    backing_off: HashSet<String>,
    probes: Probes,
    /// Container ids whose Unhealthy/Killing was already handled.
    liveness_failed: HashSet<String>,
    last_status: Option<Value>,
    start_time: SystemTime,
    is_static: bool,
}

impl Worker {
    fn new(
        shared: Arc<Shared>,
        pod_ref: PodRef,
        pod_rx: watch::Receiver<Option<Pod>>,
        mut inst_rx: watch::Receiver<Snapshot>,
    ) -> Worker {
        let (listed_at, instances) = inst_rx.borrow_and_update().clone();
        let start_time = pod_rx
            .borrow()
            .as_ref()
            .and_then(|p| p.status.as_ref())
            .and_then(|s| s.start_time.as_ref())
            .map(|t| SystemTime::from(t.0))
            .unwrap_or_else(SystemTime::now);
        Worker {
            shared,
            pod_ref,
            pod_rx,
            inst_rx,
            instances,
            listed_at,
            network: None,
            volumes: None,
            volumes_at: Instant::now(),
            backoff: HashMap::new(),
            image_backoff: HashMap::new(),
            start_errors: BTreeMap::new(),
            probes: Probes {
                handles: HashMap::new(),
                changed: Arc::new(Notify::new()),
                forwarders: HashMap::new(),
                failing: HashSet::new(),
            },
            backing_off: HashSet::new(),
            liveness_failed: HashSet::new(),
            last_status: None,
            start_time,
            is_static: false,
        }
    }

    fn pod_dir(&self) -> PathBuf {
        self.shared.root_dir.join("pods").join(&self.pod_ref.uid)
    }

    fn log_path(&self, name: &str, attempt: u32) -> PathBuf {
        self.shared
            .log_dir
            .join(format!(
                "{}_{}_{}",
                self.pod_ref.namespace, self.pod_ref.name, self.pod_ref.uid
            ))
            .join(name)
            .join(format!("{attempt}.log"))
    }

    async fn run(mut self) {
        let mut wakeup: Option<SystemTime> = None;
        loop {
            let pod = self.pod_rx.borrow_and_update().clone();
            let deleting = match &pod {
                None => true,
                Some(p) => p.metadata.deletion_timestamp.is_some(),
            };
            if deleting {
                self.terminate(pod.as_ref()).await;
                return;
            }
            if let Some(pod) = pod {
                wakeup = self.sync(&pod).await;
            }
            let sleep = wakeup
                .and_then(|w| w.duration_since(SystemTime::now()).ok())
                .map_or(RESYNC, |d| d.min(RESYNC));
            let changed = self.probes.changed.clone();
            tokio::select! {
                r = self.pod_rx.changed() => if r.is_err() { return; },
                r = self.inst_rx.changed() => {
                    if r.is_err() { return; }
                    let (at, instances) = self.inst_rx.borrow_and_update().clone();
                    // A snapshot older than our own last look misses what we started since.
                    if at >= self.listed_at {
                        self.listed_at = at;
                        self.instances = instances;
                    }
                }
                _ = changed.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
    }

    /// Asks the runtime for this pod's instances now.
    async fn refresh(&mut self) {
        let at = Instant::now();
        match self.shared.runtime.list().await {
            Ok(all) => {
                self.instances = all
                    .iter()
                    .filter_map(instance)
                    .filter(|(p, _)| p.uid == self.pod_ref.uid)
                    .map(|(_, i)| i)
                    .collect();
                self.listed_at = at;
            }
            Err(e) => tracing::warn!(pod = %self.pod_ref.key(), error = %e, "listing containers"),
        }
    }

    /// Records an event in the background: the pod's start does not wait for its diary.
    async fn event(&self, pod: &Pod, type_: EventType, reason: &str, message: &str) {
        let events = self.shared.events.clone();
        let (pod, reason, message) = (pod.clone(), reason.to_string(), message.to_string());
        tokio::spawn(async move { events.publish(&pod, type_, &reason, &message).await });
    }

    /// One pass: network, volumes, the plan's actions, probes, status. Returns when the
    /// next pass is due at the latest.
    async fn sync(&mut self, pod: &Pod) -> Option<SystemTime> {
        let host_network = pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false);
        let reported = self.last_status.as_ref().and_then(|s| s["phase"].as_str());
        let terminal = matches!(
            pod.status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .or(reported),
            Some("Succeeded" | "Failed")
        ) || matches!(reported, Some("Succeeded" | "Failed"));
        if self.network.is_none() && !host_network && !terminal {
            match self.shared.cni.setup(&self.pod_ref.key()).await {
                Ok(n) => self.network = Some(n),
                Err(e) => {
                    self.event(
                        pod,
                        EventType::Warning,
                        "FailedCreatePodSandBox",
                        &format!("Failed to create pod sandbox: {e}"),
                    )
                    .await;
                    return Some(SystemTime::now() + Duration::from_secs(2));
                }
            }
        }
        let pod_ip = if host_network {
            Some(self.shared.host_ip.clone())
        } else {
            self.network.as_ref().map(|n| n.ip.clone())
        };
        let ctx = self.context(pod_ip.clone());
        if self.volumes.is_none() || self.volumes_at.elapsed() > VOLUME_REFRESH {
            match volumes::prepare(pod, &self.pod_dir(), &ctx, self.shared.source.as_ref()).await {
                Ok(v) => {
                    self.volumes = Some(v);
                    self.volumes_at = Instant::now();
                }
                Err(e) => {
                    self.event(
                        pod,
                        EventType::Warning,
                        "FailedMount",
                        &format!("MountVolume.SetUp failed: {e}"),
                    )
                    .await;
                    self.report(pod, pod_ip.as_deref(), &Default::default())
                        .await;
                    return Some(SystemTime::now() + Duration::from_secs(2));
                }
            }
        }

        let now = SystemTime::now();
        let observed = Observed {
            instances: &self.instances,
            liveness_failed: self.liveness_failed.clone(),
            backoff: self.backoff.clone(),
            terminal,
        };
        let plan = plan::plan(pod, &observed, now);
        let acted = !plan.actions.is_empty();
        for action in &plan.actions {
            self.act(pod, &ctx, action).await;
        }
        if acted {
            self.refresh().await;
        }
        self.update_probes(pod, pod_ip.as_deref());
        let plan_after = if acted {
            let observed = Observed {
                instances: &self.instances,
                liveness_failed: self.liveness_failed.clone(),
                backoff: self.backoff.clone(),
                terminal,
            };
            plan::plan(pod, &observed, SystemTime::now())
        } else {
            plan
        };
        let now_backing_off: HashSet<String> = plan_after.backing_off.keys().cloned().collect();
        for name in now_backing_off.difference(&self.backing_off) {
            let message = format!(
                "Back-off restarting failed container {name} in pod {}_{}({})",
                self.pod_ref.name, self.pod_ref.namespace, self.pod_ref.uid
            );
            self.event(pod, EventType::Warning, "BackOff", &message)
                .await;
        }
        self.backing_off = now_backing_off;
        self.probe_events(pod).await;
        let status = self
            .report(pod, pod_ip.as_deref(), &plan_after.backing_off)
            .await;
        // A finished pod gives its address back.
        if matches!(status.as_deref(), Some("Succeeded" | "Failed")) && self.network.is_some() {
            if let Err(e) = self.shared.cni.teardown(&self.pod_ref.key()).await {
                tracing::warn!(pod = %self.pod_ref.key(), error = %e, "tearing down the network");
            }
            self.network = None;
            self.probes.handles.clear();
        }
        plan_after.next_wakeup()
    }

    fn context(&self, pod_ip: Option<String>) -> env::PodContext {
        env::PodContext {
            node_name: self.shared.node_name.clone(),
            pod_ip: pod_ip.clone(),
            pod_ips: pod_ip.into_iter().collect(),
            host_ip: Some(self.shared.host_ip.clone()),
            host_ips: vec![self.shared.host_ip.clone()],
            node_allocatable: self.shared.allocatable.clone(),
            services_optional: self.is_static,
            ..Default::default()
        }
    }

    async fn act(&mut self, pod: &Pod, ctx: &env::PodContext, action: &Action) {
        match action {
            Action::Start {
                name,
                init,
                attempt,
            } => {
                match self.start(pod, ctx, name, *init, *attempt).await {
                    Ok(()) => {
                        self.start_errors.remove(name);
                    }
                    Err((reason, message)) => {
                        self.start_errors.insert(name.clone(), (reason, message));
                    }
                }
                if *attempt > 0 {
                    let prev = self.backoff.get(name).copied();
                    self.backoff
                        .insert(name.clone(), Backoff::next(prev, SystemTime::now()));
                }
            }
            Action::Kill { id, name, reason } => {
                let message = match reason {
                    KillReason::LivenessFailed => {
                        format!("Container {name} failed liveness probe, will be restarted")
                    }
                    KillReason::SpecChanged => {
                        format!("Container {name} definition changed, will be restarted")
                    }
                };
                self.event(pod, EventType::Normal, "Killing", &message)
                    .await;
                let grace = grace_period(pod);
                self.stop_container(pod, id, name, grace).await;
            }
            Action::Remove { id } => {
                if let Some(i) = self.instances.iter().find(|i| &i.id == id).cloned() {
                    let _ = tokio::fs::remove_file(self.log_path(&i.name, i.attempt)).await;
                }
                if let Err(e) = self.shared.runtime.remove(id).await {
                    tracing::warn!(container = %id, error = %e, "removing a container");
                }
                self.liveness_failed.remove(id);
            }
        }
    }

    /// Starts one attempt of a container; Err: (waiting reason, message) for its status.
    async fn start(
        &mut self,
        pod: &Pod,
        ctx: &env::PodContext,
        name: &str,
        init: bool,
        attempt: u32,
    ) -> Result<(), (String, String)> {
        let Some(c) = find_container(pod, name) else {
            return Ok(());
        };
        let image = self.ensure_image(pod, &c).await?;
        let env = env::container_env(pod, &c, ctx, self.shared.source.as_ref())
            .await
            .map_err(|e| config_error(e.to_string()))?;
        let volumes = self
            .volumes
            .as_ref()
            .ok_or_else(|| config_error("volumes are not ready".into()))?;
        let mut mounts = volumes
            .mounts(&c, &env)
            .map_err(|e| config_error(e.to_string()))?;
        let etc = etc_files::write(pod, &self.pod_dir(), ctx)
            .await
            .map_err(|e| config_error(e.to_string()))?;
        for (host, path, ro) in etc.mounts(&c) {
            if !mounts.iter().any(|(_, p, _)| p == &path) {
                mounts.push((host, path, ro));
            }
        }
        let spec = container_spec(pod, &c, &self.pod_ref, init, attempt, image, env, mounts);
        let spec = ContainerSpec {
            network_namespace: self.network.as_ref().map(|n| n.netns_path.clone()),
            log_path: self.log_path(name, attempt),
            ..spec
        };
        if let Err(e) = self.shared.runtime.start(&spec).await {
            let message = e.to_string();
            self.event(
                pod,
                EventType::Warning,
                "Failed",
                &format!("Error: {message}"),
            )
            .await;
            return Err(("CreateContainerError".into(), message));
        }
        self.event(
            pod,
            EventType::Normal,
            "Created",
            &format!("Created container: {name}"),
        )
        .await;
        self.event(
            pod,
            EventType::Normal,
            "Started",
            &format!("Started container {name}"),
        )
        .await;
        if let Some(command) = hook_command(&c, true) {
            let out = self
                .shared
                .runtime
                .exec(&spec.id, &command, Duration::from_secs(30))
                .await;
            let failed = match out {
                Ok(o) if o.exit_code == 0 && !o.timed_out => None,
                Ok(o) => Some(format!(
                    "command {command:?} exited with {}: {}",
                    o.exit_code,
                    String::from_utf8_lossy(&o.output)
                )),
                Err(e) => Some(e.to_string()),
            };
            if let Some(message) = failed {
                self.event(
                    pod,
                    EventType::Warning,
                    "FailedPostStartHook",
                    &format!("PostStartHook failed: {message}"),
                )
                .await;
                let _ = self
                    .shared
                    .runtime
                    .stop(&spec.id, Duration::from_secs(grace_period(pod) as u64))
                    .await;
            }
        }
        Ok(())
    }

    /// Makes sure the image is there by the container's pull policy; the name to run.
    async fn ensure_image(&mut self, pod: &Pod, c: &Container) -> Result<String, (String, String)> {
        let given = c.image.clone().unwrap_or_default();
        let image = normalize_reference(&given);
        let policy = c.image_pull_policy.clone().unwrap_or_else(|| {
            let tag_latest = !given.contains('@')
                && given
                    .rsplit('/')
                    .next()
                    .is_none_or(|last| !last.contains(':') || last.ends_with(":latest"));
            if tag_latest { "Always" } else { "IfNotPresent" }.to_string()
        });
        let present = self.shared.runtime.has_image(&image).await.unwrap_or(false);
        if policy == "Never" || (present && policy != "Always") {
            if !present {
                let message =
                    format!("Container image \"{given}\" is not present with pull policy of Never");
                self.event(pod, EventType::Warning, "ErrImageNeverPull", &message)
                    .await;
                return Err(("ErrImageNeverPull".into(), message));
            }
            self.event(
                pod,
                EventType::Normal,
                "Pulled",
                &format!("Container image \"{given}\" already present on machine"),
            )
            .await;
            return Ok(image);
        }
        let now = SystemTime::now();
        if let Some(b) = self.image_backoff.get(&image) {
            if now < b.last_start + b.delay {
                let message = format!("Back-off pulling image \"{given}\"");
                self.event(pod, EventType::Normal, "BackOff", &message)
                    .await;
                return Err(("ImagePullBackOff".into(), message));
            }
        }
        self.event(
            pod,
            EventType::Normal,
            "Pulling",
            &format!("Pulling image \"{given}\""),
        )
        .await;
        let started = Instant::now();
        match self.shared.runtime.pull_image(&image, None).await {
            Ok(()) => {
                self.image_backoff.remove(&image);
                let took = started.elapsed().as_secs_f64();
                self.event(
                    pod,
                    EventType::Normal,
                    "Pulled",
                    &format!("Successfully pulled image \"{given}\" in {took:.3}s ({took:.3}s including waiting)"),
                )
                .await;
                Ok(image)
            }
            Err(e) if present => {
                // Always, but the registry is away: run what we have, as containerd would
                // not (upstream fails here); keeps pods running when a registry blips.
                tracing::warn!(image = %image, error = %e, "pull failed, using the local image");
                Ok(image)
            }
            Err(e) => {
                let prev = self.image_backoff.get(&image).copied();
                self.image_backoff
                    .insert(image.clone(), Backoff::next(prev, SystemTime::now()));
                let message = match &e {
                    RuntimeError::NotFound(m) => m.clone(),
                    other => other.to_string(),
                };
                let message = format!("Failed to pull image \"{given}\": {message}");
                self.event(pod, EventType::Warning, "Failed", &message)
                    .await;
                Err(("ErrImagePull".into(), message))
            }
        }
    }

    /// Stops a container: its preStop hook, then SIGTERM and SIGKILL after what is left of
    /// the grace period.
    async fn stop_container(&self, pod: &Pod, id: &str, name: &str, grace: i64) {
        let deadline = Instant::now() + Duration::from_secs(grace.max(0) as u64);
        if let Some(command) = find_container(pod, name).and_then(|c| hook_command(&c, false)) {
            let timeout = Duration::from_secs(grace.max(1) as u64);
            match self.shared.runtime.exec(id, &command, timeout).await {
                Ok(o) if o.exit_code == 0 => {}
                Ok(o) => {
                    self.event(
                        pod,
                        EventType::Warning,
                        "FailedPreStopHook",
                        &format!(
                            "PreStopHook failed: command {command:?} exited with {}",
                            o.exit_code
                        ),
                    )
                    .await
                }
                Err(e) => tracing::debug!(container = %id, error = %e, "preStop hook"),
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if let Err(e) = self.shared.runtime.stop(id, left).await {
            tracing::warn!(container = %id, error = %e, "stopping a container");
        }
    }

    /// Starts probes for running containers that have them, stops those of containers
    /// that are gone, and notes failed liveness.
    fn update_probes(&mut self, pod: &Pod, pod_ip: Option<&str>) {
        let running: HashMap<&str, &Instance> = self
            .instances
            .iter()
            .filter(|i| matches!(i.state, ContainerState::Running { .. }))
            .map(|i| (i.id.as_str(), i))
            .collect();
        self.probes
            .handles
            .retain(|(id, _), _| running.contains_key(id.as_str()));
        self.probes.forwarders.retain(|(id, _), task| {
            let keep = running.contains_key(id.as_str());
            if !keep {
                task.abort();
            }
            keep
        });
        for (id, i) in &running {
            let Some(c) = find_container(pod, &i.name) else {
                continue;
            };
            // Simulated containers have nothing to probe: they count as healthy.
            if self.shared.runtime.simulated() {
                continue;
            }
            let kinds = [
                (ProbeKind::Startup, c.startup_probe.clone()),
                (ProbeKind::Readiness, c.readiness_probe.clone()),
                (ProbeKind::Liveness, c.liveness_probe.clone()),
            ];
            for (kind, probe) in kinds {
                let Some(probe) = probe else { continue };
                let key = (id.to_string(), kind);
                if self.probes.handles.contains_key(&key) {
                    continue;
                }
                let started_at = match i.state {
                    ContainerState::Running { started_at, .. } => Some(started_at),
                    _ => None,
                };
                let env = c
                    .env
                    .iter()
                    .flatten()
                    .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
                    .collect();
                let target = ProbeTarget {
                    pod_ip: pod_ip.map(str::to_string),
                    container_id: id.to_string(),
                    ports: c.ports.clone().unwrap_or_default(),
                    env,
                    started_at,
                };
                let handle = probe::spawn_probe(kind, probe, target, self.shared.runtime.clone());
                let mut rx = handle.subscribe();
                let notify = self.probes.changed.clone();
                let forwarder = tokio::spawn(async move {
                    while rx.changed().await.is_ok() {
                        notify.notify_one();
                    }
                });
                self.probes.forwarders.insert(key.clone(), forwarder);
                self.probes.handles.insert(key, handle);
            }
        }
        // Startup gates liveness and readiness.
        let started: Vec<(String, bool)> = running
            .keys()
            .map(|id| (id.to_string(), self.started(id)))
            .collect();
        for (id, ok) in started {
            for kind in [ProbeKind::Liveness, ProbeKind::Readiness] {
                if let Some(h) = self.probes.handles.get(&(id.clone(), kind)) {
                    h.set_started(ok);
                }
            }
            if let Some(h) = self.probes.handles.get(&(id.clone(), ProbeKind::Liveness)) {
                if matches!(h.result(), ProbeResult::Failure { .. }) {
                    self.liveness_failed.insert(id.clone());
                }
            }
        }
    }

    fn probe_result(&self, id: &str, kind: ProbeKind) -> Option<ProbeResult> {
        self.probes
            .handles
            .get(&(id.to_string(), kind))
            .map(|h| h.result())
    }

    fn started(&self, id: &str) -> bool {
        match self.probe_result(id, ProbeKind::Startup) {
            None => true,
            Some(r) => r == ProbeResult::Success,
        }
    }

    /// Computes and, if it changed, writes the pod's status; returns its phase.
    async fn report(
        &mut self,
        pod: &Pod,
        pod_ip: Option<&str>,
        backing_off: &BTreeMap<String, plan::BackingOff>,
    ) -> Option<String> {
        let mut ready = HashSet::new();
        let mut started = HashSet::new();
        for i in &self.instances {
            if !matches!(i.state, ContainerState::Running { .. }) {
                continue;
            }
            if !self.started(&i.id) {
                continue;
            }
            started.insert(i.id.clone());
            // Simulated containers have nothing to probe: running is ready.
            let has_readiness = !self.shared.runtime.simulated()
                && find_container(pod, &i.name).is_some_and(|c| c.readiness_probe.is_some());
            let ok = if has_readiness {
                self.probe_result(&i.id, ProbeKind::Readiness) == Some(ProbeResult::Success)
            } else {
                true
            };
            if ok {
                ready.insert(i.id.clone());
            }
        }
        let status = status::pod_status(&StatusInput {
            pod,
            instances: &self.instances,
            ready: &ready,
            started: &started,
            start_errors: &self.start_errors,
            backing_off,
            network_ready: self.network.is_some()
                || pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.host_network)
                    .unwrap_or(false),
            pod_ip,
            host_ip: &self.shared.host_ip,
            start_time: self.start_time,
            now: SystemTime::now(),
        });
        let phase = status["phase"].as_str().map(str::to_string);
        if self.last_status.as_ref() == Some(&status) {
            return phase;
        }
        let api: Api<Pod> = Api::namespaced(self.shared.client.clone(), &self.pod_ref.namespace);
        let patch = json!({ "status": status });
        match api
            .patch_status(
                &self.pod_ref.name,
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await
        {
            Ok(_) => self.last_status = Some(status),
            // A static pod without its mirror yet, or the API server away: the next
            // pass writes it.
            Err(e) if self.is_static => {
                tracing::debug!(pod = %self.pod_ref.key(), error = %e, "writing the mirror pod's status")
            }
            // Deleted meanwhile: the worker learns it from the watch.
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                tracing::warn!(pod = %self.pod_ref.key(), error = %e, "writing pod status")
            }
        }
        phase
    }

    /// An Unhealthy event each time a probe turns to failure.
    async fn probe_events(&mut self, pod: &Pod) {
        let mut failing = HashSet::new();
        let mut events = Vec::new();
        for (key, h) in &self.probes.handles {
            if let ProbeResult::Failure { message } = h.result() {
                failing.insert(key.clone());
                if !self.probes.failing.contains(key) {
                    let what = match key.1 {
                        ProbeKind::Liveness => "Liveness",
                        ProbeKind::Readiness => "Readiness",
                        ProbeKind::Startup => "Startup",
                    };
                    events.push(format!("{what} probe failed: {message}"));
                }
            }
        }
        self.probes.failing = failing;
        for message in events {
            self.event(pod, EventType::Warning, "Unhealthy", &message)
                .await;
        }
    }

    /// The pod is being deleted (or is gone): stop its containers within the grace period,
    /// free its network and volumes, and confirm the deletion.
    async fn terminate(&mut self, pod: Option<&Pod>) {
        self.refresh().await;
        let grace = pod.map_or(2, grace_period);
        let running: Vec<Instance> = self
            .instances
            .iter()
            .filter(|i| {
                matches!(
                    i.state,
                    ContainerState::Running { .. } | ContainerState::Created
                )
            })
            .cloned()
            .collect();
        self.probes.handles.clear();
        for (_, f) in self.probes.forwarders.drain() {
            f.abort();
        }
        if let Some(pod) = pod {
            for i in &running {
                self.event(
                    pod,
                    EventType::Normal,
                    "Killing",
                    &format!("Stopping container {}", i.name),
                )
                .await;
            }
        }
        let empty = Pod::default();
        let stops = running
            .iter()
            .map(|i| self.stop_container(pod.unwrap_or(&empty), &i.id, &i.name, grace));
        futures::future::join_all(stops).await;
        for i in &self.instances {
            if let Err(e) = self.shared.runtime.remove(&i.id).await {
                tracing::warn!(container = %i.id, error = %e, "removing a container");
            }
        }
        if let Err(e) = self.shared.cni.teardown(&self.pod_ref.key()).await {
            tracing::warn!(pod = %self.pod_ref.key(), error = %e, "tearing down the network");
        }
        volumes::cleanup(&self.pod_dir()).await;
        let logs = self.log_path("x", 0);
        if let Some(dir) = logs.parent().and_then(|p| p.parent()) {
            let _ = tokio::fs::remove_dir_all(dir).await;
        }
        if let Some(pod) = pod {
            if self.is_static {
                return;
            }
            let api: Api<Pod> =
                Api::namespaced(self.shared.client.clone(), &self.pod_ref.namespace);
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: pod.metadata.uid.clone(),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match api.delete(&self.pod_ref.name, &params).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                Err(e) => {
                    tracing::warn!(pod = %self.pod_ref.key(), error = %e, "confirming deletion")
                }
            }
        }
    }
}

fn config_error(message: String) -> (String, String) {
    ("CreateContainerConfigError".into(), message)
}

/// The pod's grace period for stopping containers now.
fn grace_period(pod: &Pod) -> i64 {
    pod.metadata
        .deletion_grace_period_seconds
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        })
        .unwrap_or(DEFAULT_GRACE)
}

fn find_container(pod: &Pod, name: &str) -> Option<Container> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
        .cloned()
}

/// The exec command of a postStart (`post`) or preStop hook.
fn hook_command(c: &Container, post: bool) -> Option<Vec<String>> {
    let lifecycle = c.lifecycle.as_ref()?;
    let handler = if post {
        lifecycle.post_start.as_ref()?
    } else {
        lifecycle.pre_stop.as_ref()?
    };
    handler.exec.as_ref()?.command.clone()
}

/// The runtime's description of a container of `pod`.
#[allow(clippy::too_many_arguments)]
pub fn container_spec(
    pod: &Pod,
    c: &Container,
    pod_ref: &PodRef,
    init: bool,
    attempt: u32,
    image: String,
    env: Vec<(String, String)>,
    mounts: Vec<(PathBuf, String, bool)>,
) -> ContainerSpec {
    let spec = pod.spec.as_ref();
    let pod_sc = spec.and_then(|s| s.security_context.as_ref());
    let sc = c.security_context.as_ref();
    let uid = sc
        .and_then(|s| s.run_as_user)
        .or_else(|| pod_sc.and_then(|s| s.run_as_user));
    let gid = sc
        .and_then(|s| s.run_as_group)
        .or_else(|| pod_sc.and_then(|s| s.run_as_group));
    let user = match (uid, gid) {
        (None, None) => None,
        (u, g) => Some((u.unwrap_or(0).max(0) as u32, g.unwrap_or(0).max(0) as u32)),
    };
    let limit = |resource: &str| {
        c.resources
            .as_ref()
            .and_then(|r| r.limits.as_ref())
            .and_then(|l| l.get(resource))
            .and_then(|q| keelson_apimachinery::quantity::Quantity::parse(&q.0).ok())
    };
    let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
    let hostname = if host_network {
        None
    } else {
        let name = spec
            .and_then(|s| s.hostname.clone())
            .unwrap_or_else(|| pod_ref.name.clone());
        Some(name.chars().take(63).collect())
    };
    let labels = BTreeMap::from([
        (LABEL_POD_UID.to_string(), pod_ref.uid.clone()),
        (LABEL_POD_NAME.to_string(), pod_ref.name.clone()),
        (LABEL_POD_NAMESPACE.to_string(), pod_ref.namespace.clone()),
        (LABEL_CONTAINER_NAME.to_string(), c.name.clone()),
        (LABEL_ATTEMPT.to_string(), attempt.to_string()),
        (LABEL_INIT.to_string(), init.to_string()),
        (LABEL_SPEC_HASH.to_string(), plan::spec_hash(c)),
        (
            crate::runtime::simulated::LABEL_FINITE.to_string(),
            (spec
                .and_then(|s| s.restart_policy.as_deref())
                .unwrap_or("Always")
                != "Always"
                || init)
                .to_string(),
        ),
    ]);
    ContainerSpec {
        id: container_runtime_id(&pod_ref.uid, &c.name, attempt),
        image,
        command: c.command.clone().unwrap_or_default(),
        args: c.args.clone().unwrap_or_default(),
        hostname,
        env,
        working_dir: c.working_dir.clone().filter(|w| !w.is_empty()),
        labels,
        mounts,
        network_namespace: None,
        log_path: PathBuf::new(),
        user,
        read_only_rootfs: sc
            .and_then(|s| s.read_only_root_filesystem)
            .unwrap_or(false),
        privileged: sc.and_then(|s| s.privileged).unwrap_or(false),
        cpu_limit_milli: limit("cpu").map(|q| q.milli_value() as i64),
        memory_limit_bytes: limit("memory").map(|q| q.value() as i64),
    }
}
