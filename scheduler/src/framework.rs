//! The pure part of kube-scheduler's framework: per-node aggregates ([`NodeInfo`]), the
//! cluster view they form ([`Snapshot`]), and one scheduling cycle ([`schedule`]):
//! PreFilter, Filter over a sample of the nodes, PreScore / Score / NormalizeScore with
//! the default plugin weights, and the choice of a host (upstream's `schedule_one.go`).
//!
//! # Use
//!
//! The caller keeps one [`Snapshot`] up to date from its watches and schedules against it:
//!
//! ```no_run
//! use std::sync::Arc;
//! use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
//! use keelson_scheduler::framework::{schedule, SchedulerConfig, Snapshot};
//!
//! # fn nodes() -> Vec<Node> { Vec::new() }
//! # fn bound_pods() -> Vec<Pod> { Vec::new() }
//! # fn pending() -> Pod { Pod::default() }
//! let mut snapshot = Snapshot::new();
//! for node in nodes() {
//!     snapshot.upsert_node(node); // add or update; pods already bound to it are kept
//! }
//! for pod in bound_pods() {
//!     snapshot.add_pod(pod); // pods with spec.nodeName; terminal pods are ignored
//! }
//! // namespace labels, for pod affinity terms with a namespaceSelector:
//! snapshot.set_namespace_labels("default", Default::default());
//! // claims and volumes, for VolumeBinding (also `remove_pvc` / `remove_pv`):
//! snapshot.upsert_pvc(PersistentVolumeClaim::default());
//! snapshot.upsert_pv(PersistentVolume::default());
//!
//! let config = SchedulerConfig::default();
//! let mut next_start = 0; // kept across cycles, like upstream's nextStartNodeIndex
//! let mut pod = pending();
//! match schedule(&pod, &snapshot, &config, &mut next_start) {
//!     Ok(result) => {
//!         // assume: account the pod on its node before binding it
//!         pod.spec.get_or_insert_with(Default::default).node_name = Some(result.node);
//!         snapshot.add_pod(pod);
//!     }
//!     Err(mut fit_error) => {
//!         fit_error.set_post_filter_message("preemption: not eligible due to preemptionPolicy=Never.");
//!         let _condition_message = fit_error.to_string();
//!     }
//! }
//! ```
//!
//! Node and pod events update only the [`NodeInfo`] they concern, so a cycle costs the
//! filters of the sampled nodes plus the scores of the feasible ones; the cluster-wide
//! passes of PodTopologySpread and InterPodAffinity run only for pods that use them.
//!
//! Preemption can reuse the filters: [`CycleState::new`] runs PreFilter once, then
//! [`CycleState::filter`] checks a (modified) [`NodeInfo`], and
//! [`CycleState::remove_pod`] / [`CycleState::add_pod`] keep the inter-pod affinity and
//! topology spread counts in step with simulated evictions.
//!
//! Not modelled: nominated pods of other pods during Filter, extenders, volume plugins
//! other than VolumeBinding's claim and PV node affinity checks, resources reported in
//! pod status (in-place resize), DRA.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Container, Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;
use keelson_apimachinery::labels::{Operator, Requirement, Selector};
use keelson_apimachinery::quantity::{Format, Quantity};
use rand::Rng;

use crate::plugins::{
    self, balanced_allocation, image_locality, inter_pod_affinity, node_affinity, node_name,
    node_ports, node_resources_fit, node_unschedulable, pod_topology_spread, taint_toleration,
    volume_binding,
};

/// The highest score a plugin gives a node (`framework.MaxNodeScore`).
pub const MAX_NODE_SCORE: i64 = 100;
/// CPU, in millicores, counted for a container without a CPU request when scoring
/// (`schedutil.DefaultMilliCPURequest`).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Memory, in bytes, counted for a container without a memory request when scoring
/// (`schedutil.DefaultMemoryRequest`: 200Mi).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: i64 = 5;

// ---------------------------------------------------------------------------------------
// Resources

/// An amount of each resource (`framework.Resource`): CPU in millicores, memory and
/// ephemeral storage in bytes, the pod count, and scalar resources (extended resources
/// such as `example.com/gpu`, `hugepages-*`, `attachable-volumes-*`) in whole units.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    /// `cpu`, in millicores.
    pub milli_cpu: i64,
    /// `memory`, in bytes.
    pub memory: i64,
    /// `ephemeral-storage`, in bytes.
    pub ephemeral_storage: i64,
    /// `pods`: how many pods a node takes.
    pub allowed_pod_number: i64,
    /// Extended and other scalar resources by name.
    pub scalar: BTreeMap<String, i64>,
}

impl Resources {
    /// `NewResource`: sums a resource list (a node's `status.allocatable`, say). Entries
    /// that are neither native nor scalar resources, or do not parse, are skipped.
    pub fn from_list(list: &BTreeMap<String, ApiQuantity>) -> Resources {
        let mut r = Resources::default();
        for (name, q) in list {
            if let Ok(q) = Quantity::parse(q.0.trim()) {
                r.add_quantity(name, &q);
            }
        }
        r
    }

    fn from_quantities(list: &BTreeMap<String, Quantity>) -> Resources {
        let mut r = Resources::default();
        for (name, q) in list {
            r.add_quantity(name, q);
        }
        r
    }

    fn add_quantity(&mut self, name: &str, q: &Quantity) {
        match name {
            "cpu" => self.milli_cpu = self.milli_cpu.saturating_add(to_i64(q.milli_value())),
            "memory" => self.memory = self.memory.saturating_add(to_i64(q.value())),
            "pods" => {
                self.allowed_pod_number = self.allowed_pod_number.saturating_add(to_i64(q.value()))
            }
            "ephemeral-storage" => {
                self.ephemeral_storage = self.ephemeral_storage.saturating_add(to_i64(q.value()))
            }
            _ if is_scalar_resource_name(name) => {
                let entry = self.scalar.entry(name.to_string()).or_insert(0);
                *entry = entry.saturating_add(to_i64(q.value()));
            }
            _ => {}
        }
    }

    fn add(&mut self, other: &Resources) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.allowed_pod_number += other.allowed_pod_number;
        for (name, v) in &other.scalar {
            *self.scalar.entry(name.clone()).or_insert(0) += v;
        }
    }

    fn sub(&mut self, other: &Resources) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.allowed_pod_number -= other.allowed_pod_number;
        for (name, v) in &other.scalar {
            let entry = self.scalar.entry(name.clone()).or_insert(0);
            *entry -= v;
            if *entry == 0 {
                self.scalar.remove(name);
            }
        }
    }

    /// Whether nothing at all is requested (the pod count aside).
    pub(crate) fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.is_empty()
    }
}

fn to_i64(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// `schedutil.IsScalarResourceName`: extended resources (a domain-prefixed name outside
/// `kubernetes.io/`), `kubernetes.io/`-prefixed native ones, `hugepages-*` and
/// `attachable-volumes-*`.
pub(crate) fn is_scalar_resource_name(name: &str) -> bool {
    if name.starts_with("hugepages-") || name.starts_with("attachable-volumes-") {
        return true;
    }
    if !name.contains('/') {
        return false;
    }
    if name.contains("kubernetes.io/") {
        return true;
    }
    // IsExtendedResourceName
    !name.starts_with("requests.")
        && keelson_apimachinery::names::is_qualified_name(&format!("requests.{name}")).is_empty()
}

/// `IsSupportedPodLevelResource`: cpu, memory and hugepages.
fn is_supported_pod_level_resource(name: &str) -> bool {
    name == "cpu" || name == "memory" || name.starts_with("hugepages-")
}

type ResourceList = BTreeMap<String, Quantity>;

fn parse_list(list: Option<&BTreeMap<String, ApiQuantity>>) -> ResourceList {
    let mut out = ResourceList::new();
    for (name, q) in list.into_iter().flatten() {
        if let Ok(q) = Quantity::parse(q.0.trim()) {
            out.insert(name.clone(), q);
        }
    }
    out
}

fn add_resource_list(dst: &mut ResourceList, src: &ResourceList) {
    for (name, q) in src {
        match dst.get_mut(name) {
            Some(existing) => {
                if let Some(sum) = existing.checked_add(q) {
                    *existing = sum;
                }
            }
            None => {
                dst.insert(name.clone(), q.clone());
            }
        }
    }
}

fn max_resource_list(dst: &mut ResourceList, src: &ResourceList) {
    for (name, q) in src {
        match dst.get_mut(name) {
            Some(existing) => {
                if q > existing {
                    *existing = q.clone();
                }
            }
            None => {
                dst.insert(name.clone(), q.clone());
            }
        }
    }
}

fn container_requests(container: &Container, non_missing: &ResourceList) -> ResourceList {
    let raw = container
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref());
    let mut reqs = parse_list(raw);
    for (name, q) in non_missing {
        if !raw.is_some_and(|r| r.contains_key(name)) {
            add_resource_list(&mut reqs, &ResourceList::from([(name.clone(), q.clone())]));
        }
    }
    reqs
}

fn pod_level_requests(pod: &Pod) -> Option<&BTreeMap<String, ApiQuantity>> {
    let requests = pod.spec.as_ref()?.resources.as_ref()?.requests.as_ref()?;
    requests
        .keys()
        .any(|k| is_supported_pod_level_resource(k))
        .then_some(requests)
}

/// `resourcehelper.PodRequests`: containers summed, each init container's need (plus the
/// restartable init containers started before it) maxed in, restartable init containers
/// added, pod-level requests overriding cpu/memory/hugepages, overhead added.
/// `non_missing` fills requests a container leaves out (`NonMissingContainerRequests`).
fn pod_request_list(pod: &Pod, non_missing: &ResourceList) -> ResourceList {
    let mut reqs = ResourceList::new();
    for c in plugins::containers(pod) {
        add_resource_list(&mut reqs, &container_requests(c, non_missing));
    }
    let mut restartable = ResourceList::new();
    let mut init = ResourceList::new();
    for c in plugins::init_containers(pod) {
        let c_reqs = container_requests(c, non_missing);
        if plugins::is_restartable_init_container(c) {
            add_resource_list(&mut reqs, &c_reqs);
            add_resource_list(&mut restartable, &c_reqs);
            max_resource_list(&mut init, &restartable);
        } else {
            let mut combined = c_reqs;
            add_resource_list(&mut combined, &restartable);
            max_resource_list(&mut init, &combined);
        }
    }
    max_resource_list(&mut reqs, &init);
    if let Some(pod_level) = pod_level_requests(pod) {
        for (name, q) in parse_list(Some(pod_level)) {
            if is_supported_pod_level_resource(&name) {
                reqs.insert(name, q);
            }
        }
    }
    if let Some(overhead) = pod.spec.as_ref().and_then(|s| s.overhead.as_ref()) {
        add_resource_list(&mut reqs, &parse_list(Some(overhead)));
    }
    reqs
}

fn default_non_missing() -> ResourceList {
    ResourceList::from([
        (
            "cpu".to_string(),
            Quantity::from_milli(i128::from(DEFAULT_MILLI_CPU_REQUEST), Format::DecimalSI),
        ),
        (
            "memory".to_string(),
            Quantity::from_value(i128::from(DEFAULT_MEMORY_REQUEST), Format::DecimalSI),
        ),
    ])
}

/// What a pod requests, as NodeResourcesFit compares it with a node's free resources
/// (upstream's `computePodResourceRequest`): the sum of its containers, the largest init
/// container need (restartable init containers counted as the sidecars they are), the
/// pod-level requests when set, plus overhead.
pub fn pod_requests(pod: &Pod) -> Resources {
    Resources::from_quantities(&pod_request_list(pod, &ResourceList::new()))
}

/// `(cpu millicores, memory bytes)` of a pod with the scoring defaults filled in for
/// containers that leave cpu or memory out (`NonZeroRequested`, `PodInfo.CalculateResource`).
fn pod_non_zero_requests(pod: &Pod, requests: &ResourceList) -> (i64, i64) {
    let non_missing = if pod_level_requests(pod).is_some() {
        let mut defaults = default_non_missing();
        defaults.retain(|k, _| !requests.contains_key(k));
        defaults
    } else {
        default_non_missing()
    };
    let list = if non_missing.is_empty() {
        Cow::Borrowed(requests)
    } else {
        Cow::Owned(pod_request_list(pod, &non_missing))
    };
    (
        list.get("cpu").map_or(0, |q| to_i64(q.milli_value())),
        list.get("memory").map_or(0, |q| to_i64(q.value())),
    )
}

/// The incoming pod's `(cpu, memory)` for the resource scorers: with the defaults filled
/// in (`useRequested == false`, LeastAllocated) or as requested (BalancedAllocation).
pub(crate) fn pod_scoring_requests(pod: &Pod, use_requested: bool) -> [i64; 2] {
    let list = if use_requested {
        pod_request_list(pod, &ResourceList::new())
    } else {
        pod_request_list(pod, &default_non_missing())
    };
    [
        list.get("cpu").map_or(0, |q| to_i64(q.milli_value())),
        list.get("memory").map_or(0, |q| to_i64(q.value())),
    ]
}

// ---------------------------------------------------------------------------------------
// Host ports

/// One host port a pod uses, with upstream's defaults applied (`0.0.0.0`, `TCP`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct HostPort {
    pub(crate) ip: String,
    pub(crate) protocol: String,
    pub(crate) port: i32,
}

const BIND_ALL_HOST_IP: &str = "0.0.0.0";

/// `schedutil.GetHostPorts`: the ports with a `hostPort` of the containers and of the
/// restartable init containers.
pub(crate) fn pod_host_ports(pod: &Pod) -> Vec<HostPort> {
    let sidecars = plugins::init_containers(pod)
        .iter()
        .filter(|c| plugins::is_restartable_init_container(c));
    let mut out = Vec::new();
    for c in sidecars.chain(plugins::containers(pod)) {
        for p in c.ports.iter().flatten() {
            let port = p.host_port.unwrap_or(0);
            if port <= 0 {
                continue;
            }
            let ip = p.host_ip.as_deref().filter(|s| !s.is_empty());
            let protocol = p.protocol.as_deref().filter(|s| !s.is_empty());
            out.push(HostPort {
                ip: ip.unwrap_or(BIND_ALL_HOST_IP).to_string(),
                protocol: protocol.unwrap_or("TCP").to_string(),
                port,
            });
        }
    }
    out
}

/// The host ports in use on a node (`HostPortInfo`), counted per pod using them.
#[derive(Clone, Debug, Default)]
pub struct UsedPorts {
    by_port: HashMap<(String, i32), HashMap<String, u32>>,
}

impl UsedPorts {
    fn add(&mut self, p: &HostPort) {
        *self
            .by_port
            .entry((p.protocol.clone(), p.port))
            .or_default()
            .entry(p.ip.clone())
            .or_insert(0) += 1;
    }

    fn remove(&mut self, p: &HostPort) {
        let key = (p.protocol.clone(), p.port);
        if let Some(ips) = self.by_port.get_mut(&key) {
            if let Some(n) = ips.get_mut(&p.ip) {
                *n -= 1;
                if *n == 0 {
                    ips.remove(&p.ip);
                }
            }
            if ips.is_empty() {
                self.by_port.remove(&key);
            }
        }
    }

    /// `HostPortInfo.CheckConflict`: `0.0.0.0` conflicts with the same protocol and port
    /// on any address; another address with itself and `0.0.0.0`.
    pub(crate) fn conflicts(&self, p: &HostPort) -> bool {
        let Some(ips) = self.by_port.get(&(p.protocol.clone(), p.port)) else {
            return false;
        };
        if p.ip == BIND_ALL_HOST_IP {
            return !ips.is_empty();
        }
        ips.contains_key(BIND_ALL_HOST_IP) || ips.contains_key(&p.ip)
    }

    /// Whether `(ip, protocol, port)` is taken, with upstream's defaults for empty values.
    pub fn is_used(&self, ip: &str, protocol: &str, port: i32) -> bool {
        port > 0
            && self.conflicts(&HostPort {
                ip: if ip.is_empty() { BIND_ALL_HOST_IP } else { ip }.to_string(),
                protocol: if protocol.is_empty() { "TCP" } else { protocol }.to_string(),
                port,
            })
    }
}

// ---------------------------------------------------------------------------------------
// PodInfo / NodeInfo

/// A pod with what the scheduler derives from it once: its requests and parsed
/// inter-pod affinity terms (`framework.PodInfo`).
#[derive(Clone, Debug)]
pub struct PodInfo {
    pod: Arc<Pod>,
    requests: Resources,
    non0_cpu: i64,
    non0_mem: i64,
    host_ports: Vec<HostPort>,
    affinity: Option<Arc<inter_pod_affinity::PodAffinityTerms>>,
}

impl PodInfo {
    /// Derives the pod's requests, host ports and affinity terms.
    pub fn new(pod: Arc<Pod>) -> PodInfo {
        let list = pod_request_list(&pod, &ResourceList::new());
        let (non0_cpu, non0_mem) = pod_non_zero_requests(&pod, &list);
        let affinity = inter_pod_affinity::has_affinity(&pod)
            .then(|| Arc::new(inter_pod_affinity::PodAffinityTerms::parse(&pod)));
        PodInfo {
            requests: Resources::from_quantities(&list),
            non0_cpu,
            non0_mem,
            host_ports: pod_host_ports(&pod),
            affinity,
            pod,
        }
    }

    /// The pod object.
    pub fn pod(&self) -> &Arc<Pod> {
        &self.pod
    }

    /// What the pod requests ([`pod_requests`]).
    pub fn requests(&self) -> &Resources {
        &self.requests
    }

    /// The parsed (anti-)affinity terms, for pods with `podAffinity` or `podAntiAffinity`.
    pub(crate) fn affinity(&self) -> Option<&inter_pod_affinity::PodAffinityTerms> {
        self.affinity.as_deref()
    }

    fn has_required_anti_affinity(&self) -> bool {
        self.affinity
            .as_ref()
            .is_some_and(|a| !a.required_anti_affinity.is_empty())
    }

    fn is(&self, namespace: &str, name: &str) -> bool {
        plugins::pod_namespace(&self.pod) == namespace && plugins::pod_name(&self.pod) == name
    }
}

/// Pods counted twice: all of them, and those not terminating (no deletion timestamp).
#[derive(Clone, Copy, Debug, Default)]
struct PodCounts {
    all: i64,
    live: i64,
}

impl PodCounts {
    fn get(&self, live_only: bool) -> i64 {
        if live_only {
            self.live
        } else {
            self.all
        }
    }

    fn add(&mut self, live: bool, delta: i64) {
        self.all += delta;
        if live {
            self.live += delta;
        }
    }

    fn is_zero(&self) -> bool {
        self.all == 0 && self.live == 0
    }
}

/// The pods of one namespace on a node with one value of one label.
#[derive(Clone, Debug, Default)]
struct LabelBucket {
    counts: PodCounts,
    pods: Vec<Arc<Pod>>,
}

/// The pods of one namespace on a node, indexed by label.
#[derive(Clone, Debug, Default)]
struct NamespacePods {
    pods: PodCounts,
    labels: HashMap<String, HashMap<String, LabelBucket>>,
}

fn is_live(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
}

impl NamespacePods {
    fn add(&mut self, pod: &Arc<Pod>, delta: i64) {
        let live = is_live(pod);
        self.pods.add(live, delta);
        for (key, value) in plugins::pod_labels(pod) {
            let values = self.labels.entry(key.clone()).or_default();
            let bucket = values.entry(value.clone()).or_default();
            bucket.counts.add(live, delta);
            if delta > 0 {
                bucket.pods.push(Arc::clone(pod));
            } else if let Some(i) = bucket.pods.iter().position(|p| Arc::ptr_eq(p, pod)) {
                bucket.pods.swap_remove(i);
            }
            if bucket.counts.is_zero() {
                values.remove(value);
                if values.is_empty() {
                    self.labels.remove(key);
                }
            }
        }
    }

    /// The buckets a `=`/`in`/`exists` requirement selects (each value once) passed to
    /// `f`; false for other requirements.
    fn for_each_bucket(&self, r: &Requirement, mut f: impl FnMut(&LabelBucket)) -> bool {
        let values = self.labels.get(r.key());
        match r.operator() {
            Operator::Equals | Operator::DoubleEquals | Operator::In => {
                let wanted = r.values();
                for (i, v) in wanted.iter().enumerate() {
                    if wanted[..i].contains(v) {
                        continue;
                    }
                    if let Some(bucket) = values.and_then(|m| m.get(v)) {
                        f(bucket);
                    }
                }
                true
            }
            Operator::Exists => {
                values.into_iter().flat_map(|m| m.values()).for_each(f);
                true
            }
            _ => false,
        }
    }

    /// The number of pods matching `selector`, from the pods carrying the rarest label the
    /// selector requires; `None` when it requires none (only `!=`, `notin`, `!key`).
    fn count(&self, selector: &Selector, live_only: bool) -> Option<i64> {
        let requirements = selector.requirements();
        if requirements.is_empty() {
            return Some(self.pods.get(live_only));
        }
        let mut best: Option<(i64, &Requirement)> = None;
        for r in requirements {
            let mut count = 0;
            if !self.for_each_bucket(r, |b| count += b.counts.get(live_only)) {
                continue;
            }
            if count == 0 {
                return Some(0);
            }
            if best.is_none_or(|(c, _)| count < c) {
                best = Some((count, r));
            }
        }
        let (count, rarest) = best?;
        if requirements.len() == 1 {
            return Some(count);
        }
        let mut matching = 0;
        self.for_each_bucket(rarest, |b| {
            matching += b
                .pods
                .iter()
                .filter(|p| (!live_only || is_live(p)) && selector.matches(plugins::pod_labels(p)))
                .count() as i64;
        });
        Some(matching)
    }
}

/// A node with the aggregates of the pods on it (`framework.NodeInfo`).
#[derive(Clone, Debug)]
pub struct NodeInfo {
    node: Arc<Node>,
    allocatable: Resources,
    requested: Resources,
    non_zero_requested: Resources,
    pods: Vec<PodInfo>,
    pods_with_affinity: usize,
    pods_with_required_anti_affinity: usize,
    used_ports: UsedPorts,
    images: HashMap<String, i64>,
    namespaces: HashMap<String, NamespacePods>,
}

impl NodeInfo {
    /// A node with no pods.
    pub fn new(node: impl Into<Arc<Node>>) -> NodeInfo {
        let mut info = NodeInfo {
            node: Arc::new(Node::default()),
            allocatable: Resources::default(),
            requested: Resources::default(),
            non_zero_requested: Resources::default(),
            pods: Vec::new(),
            pods_with_affinity: 0,
            pods_with_required_anti_affinity: 0,
            used_ports: UsedPorts::default(),
            images: HashMap::new(),
            namespaces: HashMap::new(),
        };
        info.set_node(node);
        info
    }

    /// Replaces the node object (`SetNode`), keeping the pods.
    pub fn set_node(&mut self, node: impl Into<Arc<Node>>) {
        let node = node.into();
        let status = node.status.as_ref();
        self.allocatable = status
            .and_then(|s| s.allocatable.as_ref())
            .map(Resources::from_list)
            .unwrap_or_default();
        self.images.clear();
        for image in status.and_then(|s| s.images.as_ref()).into_iter().flatten() {
            for name in image.names.iter().flatten() {
                self.images
                    .insert(name.clone(), image.size_bytes.unwrap_or(0));
            }
        }
        self.node = node;
    }

    /// The node object.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        plugins::node_name(&self.node)
    }

    /// `status.allocatable`.
    pub fn allocatable(&self) -> &Resources {
        &self.allocatable
    }

    /// The sum of the requests of the pods on the node.
    pub fn requested(&self) -> &Resources {
        &self.requested
    }

    /// Like [`NodeInfo::requested`] for cpu and memory, with 100m / 200Mi counted for
    /// containers that request none (what the resource scorers use).
    pub fn non_zero_requested(&self) -> &Resources {
        &self.non_zero_requested
    }

    /// The pods accounted on the node.
    pub fn pods(&self) -> &[PodInfo] {
        &self.pods
    }

    /// The number of pods accounted on the node.
    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    /// The host ports the node's pods use.
    pub fn used_ports(&self) -> &UsedPorts {
        &self.used_ports
    }

    /// The size of an image the node reports under `name` (`status.images[].names`).
    pub fn image_size(&self, name: &str) -> Option<i64> {
        self.images.get(name).copied()
    }

    /// The number of pods on the node in a namespace `namespace_ok` accepts whose labels
    /// match `selector` (`live_only`: leaving out terminating pods). Uses the per-label
    /// counts where they suffice and looks at the pods otherwise.
    pub(crate) fn count_matching(
        &self,
        namespace_ok: impl Fn(&str) -> bool,
        selector: &Selector,
        live_only: bool,
    ) -> i64 {
        if selector.is_nothing() {
            return 0;
        }
        let mut total = 0;
        for (ns, pods) in &self.namespaces {
            if !namespace_ok(ns) {
                continue;
            }
            total += match pods.count(selector, live_only) {
                Some(n) => n,
                None => self
                    .pods
                    .iter()
                    .filter(|p| {
                        plugins::pod_namespace(&p.pod) == ns
                            && (!live_only || p.pod.metadata.deletion_timestamp.is_none())
                            && selector.matches(plugins::pod_labels(&p.pod))
                    })
                    .count() as i64,
            };
        }
        total
    }

    pub(crate) fn has_pods_with_affinity(&self) -> bool {
        self.pods_with_affinity > 0
    }

    pub(crate) fn has_pods_with_required_anti_affinity(&self) -> bool {
        self.pods_with_required_anti_affinity > 0
    }

    /// Accounts a pod on the node (`AddPod`).
    pub fn add_pod(&mut self, pod: &Arc<Pod>) {
        self.add_pod_info(PodInfo::new(Arc::clone(pod)));
    }

    pub(crate) fn add_pod_info(&mut self, info: PodInfo) {
        self.requested.add(&info.requests);
        self.non_zero_requested.milli_cpu += info.non0_cpu;
        self.non_zero_requested.memory += info.non0_mem;
        for p in &info.host_ports {
            self.used_ports.add(p);
        }
        if info.affinity.is_some() {
            self.pods_with_affinity += 1;
        }
        if info.has_required_anti_affinity() {
            self.pods_with_required_anti_affinity += 1;
        }
        self.namespaces
            .entry(plugins::pod_namespace(&info.pod).to_string())
            .or_default()
            .add(&info.pod, 1);
        self.pods.push(info);
    }

    /// Removes the pod with `pod`'s namespace and name (`RemovePod`); false when absent.
    pub fn remove_pod(&mut self, pod: &Pod) -> bool {
        self.remove_pod_by_key(plugins::pod_namespace(pod), plugins::pod_name(pod))
            .is_some()
    }

    fn remove_pod_by_key(&mut self, namespace: &str, name: &str) -> Option<PodInfo> {
        let i = self.pods.iter().position(|p| p.is(namespace, name))?;
        let info = self.pods.swap_remove(i);
        self.requested.sub(&info.requests);
        self.non_zero_requested.milli_cpu -= info.non0_cpu;
        self.non_zero_requested.memory -= info.non0_mem;
        for p in &info.host_ports {
            self.used_ports.remove(p);
        }
        if info.affinity.is_some() {
            self.pods_with_affinity -= 1;
        }
        if info.has_required_anti_affinity() {
            self.pods_with_required_anti_affinity -= 1;
        }
        if let Some(ns) = self.namespaces.get_mut(namespace) {
            ns.add(&info.pod, -1);
            if ns.pods.is_zero() {
                self.namespaces.remove(namespace);
            }
        }
        Some(info)
    }
}

// ---------------------------------------------------------------------------------------
// Snapshot

/// The cluster as the scheduler sees it: every node with its pods, the number of nodes
/// holding each image, namespace labels, PersistentVolumeClaims and PersistentVolumes.
/// Updated incrementally by the caller.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    nodes: Vec<NodeInfo>,
    index: HashMap<String, usize>,
    image_nodes: HashMap<String, usize>,
    /// `namespace/name` of each accounted pod → its node.
    pod_nodes: HashMap<String, String>,
    /// Pods bound to nodes the snapshot does not know (yet).
    orphans: HashMap<String, Vec<PodInfo>>,
    namespace_labels: HashMap<String, BTreeMap<String, String>>,
    /// PersistentVolumeClaims by `namespace/name`.
    pvcs: HashMap<String, Arc<PersistentVolumeClaim>>,
    /// PersistentVolumes by name.
    pvs: HashMap<String, Arc<PersistentVolume>>,
}

fn count_images<'a>(
    image_nodes: &mut HashMap<String, usize>,
    names: impl Iterator<Item = &'a String>,
    delta: isize,
) {
    for name in names {
        let entry = image_nodes.entry(name.clone()).or_insert(0);
        *entry = entry.saturating_add_signed(delta);
        if *entry == 0 {
            image_nodes.remove(name);
        }
    }
}

pub(crate) fn pod_key(pod: &Pod) -> String {
    format!("{}/{}", plugins::pod_namespace(pod), plugins::pod_name(pod))
}

impl Snapshot {
    /// An empty snapshot.
    pub fn new() -> Snapshot {
        Snapshot::default()
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The nodes, in the order Filter visits them from index 0.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.index.get(name).map(|&i| &self.nodes[i])
    }

    /// How many nodes report an image under `name` (`ImageStateSummary.NumNodes`).
    pub fn nodes_with_image(&self, name: &str) -> usize {
        self.image_nodes.get(name).copied().unwrap_or(0)
    }

    /// The labels of namespace `name`, if known.
    pub fn namespace_labels(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        self.namespace_labels.get(name)
    }

    /// Records the labels of namespace `name` (for affinity terms' `namespaceSelector`).
    pub fn set_namespace_labels(
        &mut self,
        name: impl Into<String>,
        labels: BTreeMap<String, String>,
    ) {
        self.namespace_labels.insert(name.into(), labels);
    }

    /// Forgets namespace `name`.
    pub fn remove_namespace(&mut self, name: &str) {
        self.namespace_labels.remove(name);
    }

    pub(crate) fn namespaces(&self) -> impl Iterator<Item = (&String, &BTreeMap<String, String>)> {
        self.namespace_labels.iter()
    }

    /// Adds or replaces a PersistentVolumeClaim (keyed by namespace and name).
    pub fn upsert_pvc(&mut self, pvc: impl Into<Arc<PersistentVolumeClaim>>) {
        let pvc = pvc.into();
        let key = format!(
            "{}/{}",
            pvc.metadata.namespace.as_deref().unwrap_or(""),
            pvc.metadata.name.as_deref().unwrap_or("")
        );
        self.pvcs.insert(key, pvc);
    }

    /// Forgets the PersistentVolumeClaim `namespace/name`; false when absent.
    pub fn remove_pvc(&mut self, namespace: &str, name: &str) -> bool {
        self.pvcs.remove(&format!("{namespace}/{name}")).is_some()
    }

    /// The PersistentVolumeClaim `namespace/name`, if known.
    pub fn persistent_volume_claim(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<&PersistentVolumeClaim> {
        self.pvcs.get(&format!("{namespace}/{name}")).map(|c| &**c)
    }

    /// Adds or replaces a PersistentVolume (keyed by name).
    pub fn upsert_pv(&mut self, pv: impl Into<Arc<PersistentVolume>>) {
        let pv = pv.into();
        let name = pv.metadata.name.clone().unwrap_or_default();
        self.pvs.insert(name, pv);
    }

    /// Forgets the PersistentVolume `name`; false when absent.
    pub fn remove_pv(&mut self, name: &str) -> bool {
        self.pvs.remove(name).is_some()
    }

    /// The PersistentVolume `name`, if known.
    pub fn persistent_volume(&self, name: &str) -> Option<&PersistentVolume> {
        self.pvs.get(name).map(|v| &**v)
    }

    /// Adds a node or replaces its object, keeping the pods already accounted on it.
    pub fn upsert_node(&mut self, node: impl Into<Arc<Node>>) {
        let node = node.into();
        let name = plugins::node_name(&node).to_string();
        if let Some(&i) = self.index.get(&name) {
            let info = &mut self.nodes[i];
            count_images(&mut self.image_nodes, info.images.keys(), -1);
            info.set_node(node);
            count_images(&mut self.image_nodes, info.images.keys(), 1);
            return;
        }
        let mut info = NodeInfo::new(node);
        for pod in self.orphans.remove(&name).unwrap_or_default() {
            info.add_pod_info(pod);
        }
        count_images(&mut self.image_nodes, info.images.keys(), 1);
        self.index.insert(name, self.nodes.len());
        self.nodes.push(info);
    }

    /// Removes a node. Its pods stay accounted and come back with a node of that name.
    pub fn remove_node(&mut self, name: &str) -> bool {
        let Some(i) = self.index.remove(name) else {
            return false;
        };
        let info = self.nodes.swap_remove(i);
        if let Some(moved) = self.nodes.get(i) {
            self.index.insert(moved.name().to_string(), i);
        }
        count_images(&mut self.image_nodes, info.images.keys(), -1);
        if !info.pods.is_empty() {
            self.orphans.insert(name.to_string(), info.pods);
        }
        true
    }

    /// Accounts a pod on the node of its `spec.nodeName`, replacing an earlier version of
    /// it (same namespace and name). A pod without a node name, or in phase `Succeeded` or
    /// `Failed`, is removed instead.
    pub fn add_pod(&mut self, pod: impl Into<Arc<Pod>>) {
        let pod = pod.into();
        self.remove_pod(&pod);
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or("");
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if node.is_empty() || matches!(phase, Some("Succeeded" | "Failed")) {
            return;
        }
        let node = node.to_string();
        self.pod_nodes.insert(pod_key(&pod), node.clone());
        let info = PodInfo::new(pod);
        match self.index.get(&node) {
            Some(&i) => self.nodes[i].add_pod_info(info),
            None => self.orphans.entry(node).or_default().push(info),
        }
    }

    /// Stops accounting the pod with `pod`'s namespace and name; false when absent.
    pub fn remove_pod(&mut self, pod: &Pod) -> bool {
        let Some(node) = self.pod_nodes.remove(&pod_key(pod)) else {
            return false;
        };
        let (namespace, name) = (plugins::pod_namespace(pod), plugins::pod_name(pod));
        if let Some(&i) = self.index.get(&node) {
            return self.nodes[i].remove_pod_by_key(namespace, name).is_some();
        }
        if let Some(pods) = self.orphans.get_mut(&node) {
            pods.retain(|p| !p.is(namespace, name));
            if pods.is_empty() {
                self.orphans.remove(&node);
            }
        }
        true
    }
}

// ---------------------------------------------------------------------------------------
// Status

/// Why a node was rejected (`framework.Code`, rejections only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    /// Preempting pods on the node may help.
    Unschedulable,
    /// Preemption cannot help.
    UnschedulableAndUnresolvable,
}

/// A rejection by a plugin (`framework.Status`), with upstream's reason strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    code: Code,
    reasons: Vec<Cow<'static, str>>,
    plugin: &'static str,
}

impl Status {
    pub(crate) fn new(code: Code, reason: impl Into<Cow<'static, str>>) -> Status {
        Status {
            code,
            reasons: vec![reason.into()],
            plugin: "",
        }
    }

    pub(crate) fn with_reasons(code: Code, reasons: Vec<Cow<'static, str>>) -> Status {
        Status {
            code,
            reasons,
            plugin: "",
        }
    }

    pub(crate) fn with_plugin(mut self, plugin: &'static str) -> Status {
        self.plugin = plugin;
        self
    }

    /// Whether preemption may help.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The reasons, as counted in [`FitError`]'s message.
    pub fn reasons(&self) -> impl Iterator<Item = &str> {
        self.reasons.iter().map(|r| r.as_ref())
    }

    /// The plugin that rejected (empty for the framework's own statuses).
    pub fn plugin(&self) -> &'static str {
        self.plugin
    }

    /// The reasons joined by `, ` (`Status.Message`).
    pub fn message(&self) -> String {
        self.reasons
            .iter()
            .map(|r| r.as_ref())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What a Filter plugin returns for one node.
pub type FilterResult = Result<(), Status>;

// ---------------------------------------------------------------------------------------
// FitError

/// Why no node fits a pod (`framework.FitError`). `Display` gives upstream's message,
/// for example `0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated
/// taint {node-role.kubernetes.io/control-plane: }.`, followed by the post-filter
/// (preemption) message when one was set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FitError(Box<Diagnosis>);

/// What a failed cycle found out (`framework.Diagnosis` with the node count).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Diagnosis {
    num_all_nodes: usize,
    pre_filter_message: String,
    statuses: Vec<(String, Status)>,
    absent_status: Option<Status>,
    post_filter_message: String,
    unschedulable_plugins: BTreeSet<&'static str>,
}

impl FitError {
    /// There are no nodes at all (upstream's `ErrNoNodesAvailable`).
    fn no_nodes_available() -> FitError {
        FitError(Box::new(Diagnosis {
            num_all_nodes: 0,
            pre_filter_message: String::new(),
            statuses: Vec::new(),
            absent_status: None,
            post_filter_message: String::new(),
            unschedulable_plugins: BTreeSet::new(),
        }))
    }

    /// The number of nodes in the snapshot.
    pub fn num_all_nodes(&self) -> usize {
        self.0.num_all_nodes
    }

    /// The status of a node: the one a Filter plugin gave it, or the one shared by the
    /// nodes PreFilter excluded; `None` for a node that was not rejected.
    pub fn node_status(&self, node: &str) -> Option<&Status> {
        self.0
            .statuses
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, s)| s)
            .or(self.0.absent_status.as_ref())
    }

    /// The nodes Filter plugins rejected, with their statuses.
    pub fn node_statuses(&self) -> &[(String, Status)] {
        &self.0.statuses
    }

    /// The plugins that rejected the pod, for requeueing on relevant events.
    pub fn unschedulable_plugins(&self) -> &BTreeSet<&'static str> {
        &self.0.unschedulable_plugins
    }

    /// Whether preemption could help on some node: false when every node is
    /// `UnschedulableAndUnresolvable`.
    pub fn preemption_may_help(&self) -> bool {
        let explicit = self
            .0
            .statuses
            .iter()
            .any(|(_, s)| s.code == Code::Unschedulable);
        let absent = self.0.statuses.len() < self.0.num_all_nodes
            && self
                .0
                .absent_status
                .as_ref()
                .is_some_and(|s| s.code == Code::Unschedulable);
        explicit || absent
    }

    /// Sets the message PostFilter (preemption) adds, such as `preemption: 0/3 nodes
    /// are available: 3 No preemption victims found for incoming pod.`
    pub fn set_post_filter_message(&mut self, message: impl Into<String>) {
        self.0.post_filter_message = message.into();
    }
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.num_all_nodes == 0
            && self.0.pre_filter_message.is_empty()
            && self.0.statuses.is_empty()
            && self.0.absent_status.is_none()
        {
            f.write_str("no nodes available to schedule pods")?;
        } else {
            write!(f, "0/{} nodes are available:", self.0.num_all_nodes)?;
            if !self.0.pre_filter_message.is_empty() {
                write!(f, " {}.", self.0.pre_filter_message)?;
            } else {
                let mut counts: HashMap<&str, usize> = HashMap::new();
                for (_, status) in &self.0.statuses {
                    for reason in status.reasons() {
                        *counts.entry(reason).or_insert(0) += 1;
                    }
                }
                if self.0.statuses.len() < self.0.num_all_nodes {
                    if let Some(absent) = &self.0.absent_status {
                        for reason in absent.reasons() {
                            *counts.entry(reason).or_insert(0) +=
                                self.0.num_all_nodes - self.0.statuses.len();
                        }
                    }
                }
                let mut histogram: Vec<String> = counts
                    .into_iter()
                    .map(|(reason, n)| format!("{n} {reason}"))
                    .collect();
                histogram.sort();
                if !histogram.is_empty() {
                    write!(f, " {}.", histogram.join(", "))?;
                }
            }
        }
        if !self.0.post_filter_message.is_empty() {
            write!(f, " {}", self.0.post_filter_message)?;
        }
        Ok(())
    }
}

impl std::error::Error for FitError {}

// ---------------------------------------------------------------------------------------
// Configuration and results

/// Profile settings that change what [`schedule`] does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// `percentageOfNodesToScore`: 0 picks upstream's adaptive value
    /// (`50 - nodes/125`, at least 5), and at least 100 nodes are always looked at.
    pub percentage_of_nodes_to_score: u32,
    /// InterPodAffinity's `hardPodAffinityWeight`: the score an existing pod's required
    /// affinity term gives nodes in its topology when the incoming pod matches it.
    pub hard_pod_affinity_weight: i64,
}

impl Default for SchedulerConfig {
    fn default() -> SchedulerConfig {
        SchedulerConfig {
            percentage_of_nodes_to_score: 0,
            hard_pod_affinity_weight: 1,
        }
    }
}

/// Where a pod goes (`ScheduleResult`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleResult {
    /// The chosen node.
    pub node: String,
    /// Nodes run through Filter.
    pub evaluated: usize,
    /// Nodes that passed Filter.
    pub feasible: usize,
}

// ---------------------------------------------------------------------------------------
// CycleState: PreFilter once, Filter per node

/// What PreFilter computed for one pod, ready to filter nodes (upstream's `CycleState`
/// after `RunPreFilterPlugins`).
#[derive(Clone, Debug)]
pub struct CycleState<'a> {
    pod: &'a Pod,
    requests: Resources,
    host_ports: Vec<HostPort>,
    node_affinity: Option<node_affinity::RequiredNodeAffinity>,
    pre_filter_nodes: Option<BTreeSet<String>>,
    pre_filter_plugins: BTreeSet<&'static str>,
    volume_binding: Option<volume_binding::PreFilterState>,
    topology_spread: Option<pod_topology_spread::PreFilterState>,
    inter_pod_affinity: Option<inter_pod_affinity::PreFilterState>,
}

impl<'a> CycleState<'a> {
    /// Runs the PreFilter plugins. A rejection (conflicting node affinity terms, a pod
    /// spec that does not parse, a missing or unbound PersistentVolumeClaim) applies to
    /// every node.
    pub fn new(pod: &'a Pod, snapshot: &Snapshot) -> Result<CycleState<'a>, Status> {
        let mut pre_filter_plugins = BTreeSet::new();
        let (node_affinity, pre_filter_nodes) =
            match node_affinity::pre_filter(pod).map_err(|s| s.with_plugin(node_affinity::NAME))? {
                None => (None, None),
                Some((required, nodes)) => {
                    if nodes.is_some() {
                        pre_filter_plugins.insert(node_affinity::NAME);
                    }
                    (Some(required), nodes)
                }
            };
        let host_ports = node_ports::pre_filter(pod);
        let requests = node_resources_fit::pre_filter(pod);
        let volume_binding = volume_binding::pre_filter(pod, snapshot)
            .map_err(|s| s.with_plugin(volume_binding::NAME))?;
        let topology_spread = pod_topology_spread::pre_filter(pod, snapshot)
            .map_err(|s| s.with_plugin(pod_topology_spread::NAME))?;
        let inter_pod_affinity = inter_pod_affinity::pre_filter(pod, snapshot)
            .map_err(|s| s.with_plugin(inter_pod_affinity::NAME))?;
        Ok(CycleState {
            pod,
            requests,
            host_ports,
            node_affinity,
            pre_filter_nodes,
            pre_filter_plugins,
            volume_binding,
            topology_spread,
            inter_pod_affinity,
        })
    }

    /// The pod being scheduled.
    pub fn pod(&self) -> &Pod {
        self.pod
    }

    /// What the pod requests, as NodeResourcesFit computed it.
    pub fn requests(&self) -> &Resources {
        &self.requests
    }

    /// The node names PreFilter restricted the pod to (NodeAffinity's `matchFields` on
    /// `metadata.name`), if any.
    pub fn pre_filter_nodes(&self) -> Option<&BTreeSet<String>> {
        self.pre_filter_nodes.as_ref()
    }

    /// Runs the Filter plugins in upstream's order; the first rejection wins.
    pub fn filter(&self, node: &NodeInfo) -> FilterResult {
        let pod = self.pod;
        node_unschedulable::filter(pod, node)
            .map_err(|s| s.with_plugin(node_unschedulable::NAME))?;
        node_name::filter(pod, node).map_err(|s| s.with_plugin(node_name::NAME))?;
        taint_toleration::filter(pod, node).map_err(|s| s.with_plugin(taint_toleration::NAME))?;
        if let Some(required) = &self.node_affinity {
            node_affinity::filter(required, node)
                .map_err(|s| s.with_plugin(node_affinity::NAME))?;
        }
        if !self.host_ports.is_empty() {
            node_ports::filter(&self.host_ports, node)
                .map_err(|s| s.with_plugin(node_ports::NAME))?;
        }
        node_resources_fit::filter(&self.requests, node)
            .map_err(|s| s.with_plugin(node_resources_fit::NAME))?;
        if let Some(state) = &self.volume_binding {
            volume_binding::filter(state, node).map_err(|s| s.with_plugin(volume_binding::NAME))?;
        }
        if let Some(state) = &self.topology_spread {
            pod_topology_spread::filter(state, pod, node)
                .map_err(|s| s.with_plugin(pod_topology_spread::NAME))?;
        }
        if let Some(state) = &self.inter_pod_affinity {
            inter_pod_affinity::filter(state, pod, node)
                .map_err(|s| s.with_plugin(inter_pod_affinity::NAME))?;
        }
        Ok(())
    }

    /// Accounts `other` as running on `node` in the inter-pod affinity and topology spread
    /// counts (`PreFilterExtensions.AddPod`).
    pub fn add_pod(&mut self, other: &PodInfo, node: &Node) {
        self.update_with_pod(other, node, 1);
    }

    /// Stops accounting `other` on `node` (`PreFilterExtensions.RemovePod`), as when
    /// preemption simulates evicting it.
    pub fn remove_pod(&mut self, other: &PodInfo, node: &Node) {
        self.update_with_pod(other, node, -1);
    }

    fn update_with_pod(&mut self, other: &PodInfo, node: &Node, delta: i64) {
        let pod = self.pod;
        if let Some(state) = &mut self.inter_pod_affinity {
            state.update_with_pod(pod, other, node, delta);
        }
        if let Some(state) = &mut self.topology_spread {
            state.update_with_pod(pod, other.pod(), node, delta);
        }
    }

    /// PreScore, Score and NormalizeScore of every score plugin over `nodes`, weighted
    /// and summed per node.
    fn score(
        &self,
        snapshot: &Snapshot,
        nodes: &[&NodeInfo],
        config: &SchedulerConfig,
    ) -> Vec<i64> {
        let pod = self.pod;
        let mut total = vec![0i64; nodes.len()];
        let mut scores = vec![0i64; nodes.len()];
        let mut run =
            |weight: i64, score: &dyn Fn(&NodeInfo) -> i64, normalize: &dyn Fn(&mut [i64])| {
                for (s, node) in scores.iter_mut().zip(nodes) {
                    *s = score(node);
                }
                normalize(&mut scores);
                for (t, s) in total.iter_mut().zip(&scores) {
                    *t += s * weight;
                }
            };

        // TaintToleration
        let prefer = taint_toleration::pre_score(pod);
        run(
            taint_toleration::WEIGHT,
            &|n| taint_toleration::score(&prefer, n),
            &taint_toleration::normalize,
        );
        // NodeAffinity
        if let Some(preferred) = node_affinity::pre_score(pod) {
            run(
                node_affinity::WEIGHT,
                &|n| node_affinity::score(&preferred, n),
                &node_affinity::normalize,
            );
        }
        // NodeResourcesFit (LeastAllocated)
        let fit_requests = pod_scoring_requests(pod, false);
        run(
            node_resources_fit::WEIGHT,
            &|n| node_resources_fit::score(&fit_requests, n),
            &|_| {},
        );
        // PodTopologySpread
        if let Some(state) = pod_topology_spread::pre_score(pod, snapshot, nodes) {
            run(
                pod_topology_spread::WEIGHT,
                &|n| pod_topology_spread::score(&state, pod, n),
                &|s| pod_topology_spread::normalize(&state, nodes, s),
            );
        }
        // InterPodAffinity
        if let Some(state) =
            inter_pod_affinity::pre_score(pod, snapshot, config.hard_pod_affinity_weight)
        {
            run(
                inter_pod_affinity::WEIGHT,
                &|n| inter_pod_affinity::score(&state, n),
                &inter_pod_affinity::normalize,
            );
        }
        // NodeResourcesBalancedAllocation
        if let Some(requests) = balanced_allocation::pre_score(pod) {
            run(
                balanced_allocation::WEIGHT,
                &|n| balanced_allocation::score(&requests, n),
                &|_| {},
            );
        }
        // ImageLocality
        let images = image_locality::pre_score(pod);
        run(
            image_locality::WEIGHT,
            &|n| image_locality::score(&images, snapshot, n),
            &|_| {},
        );
        total
    }
}

// ---------------------------------------------------------------------------------------
// schedule

/// `numFeasibleNodesToFind`: how many feasible nodes to look for before scoring.
pub fn num_feasible_nodes_to_find(
    percentage_of_nodes_to_score: u32,
    num_all_nodes: usize,
) -> usize {
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND {
        return num_all_nodes;
    }
    let mut percentage = i64::from(percentage_of_nodes_to_score);
    if percentage == 0 {
        percentage = 50 - i64::try_from(num_all_nodes / 125).unwrap_or(i64::MAX);
        if percentage < MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND {
            percentage = MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND;
        }
    }
    let num_nodes = usize::try_from(percentage.min(100)).unwrap_or(100) * num_all_nodes / 100;
    num_nodes.max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// One scheduling cycle for `pod` over `snapshot` (`schedulePod`): PreFilter, then Filter
/// from node `*start_index` on until enough feasible nodes are found (the index then moves
/// past the nodes looked at), then Score, then the best node, ties broken at random. A
/// pod nominated to a node that still fits goes there directly.
pub fn schedule(
    pod: &Pod,
    snapshot: &Snapshot,
    config: &SchedulerConfig,
    start_index: &mut usize,
) -> Result<ScheduleResult, FitError> {
    schedule_with_rng(pod, snapshot, config, start_index, &mut rand::rng())
}

pub(crate) fn schedule_with_rng<R: Rng + ?Sized>(
    pod: &Pod,
    snapshot: &Snapshot,
    config: &SchedulerConfig,
    start_index: &mut usize,
    rng: &mut R,
) -> Result<ScheduleResult, FitError> {
    let num_all_nodes = snapshot.len();
    if num_all_nodes == 0 {
        return Err(FitError::no_nodes_available());
    }
    let state = CycleState::new(pod, snapshot).map_err(|status| {
        FitError(Box::new(Diagnosis {
            num_all_nodes,
            pre_filter_message: status.message(),
            statuses: Vec::new(),
            unschedulable_plugins: BTreeSet::from([status.plugin()]),
            absent_status: Some(status),
            post_filter_message: String::new(),
        }))
    })?;

    // Nominated node (set by an earlier preemption): taken when it still fits.
    let nominated = pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .filter(|n| !n.is_empty());
    if let Some(node) = nominated.and_then(|n| snapshot.node(n)) {
        if state.filter(node).is_ok() {
            return Ok(ScheduleResult {
                node: node.name().to_string(),
                evaluated: 1,
                feasible: 1,
            });
        }
    }

    let candidates: Option<Vec<usize>> = state.pre_filter_nodes.as_ref().map(|names| {
        let mut v: Vec<usize> = names
            .iter()
            .filter_map(|n| snapshot.index.get(n).copied())
            .collect();
        v.sort_unstable();
        v
    });
    let absent_status = candidates.as_ref().map(|_| {
        let list: Vec<&str> = state.pre_filter_plugins.iter().copied().collect();
        Status::new(
            Code::UnschedulableAndUnresolvable,
            format!("node(s) didn't satisfy plugin(s) [{}]", list.join(" ")),
        )
    });
    let num_candidates = candidates.as_ref().map_or(num_all_nodes, Vec::len);
    let to_find = num_feasible_nodes_to_find(config.percentage_of_nodes_to_score, num_candidates);

    let mut feasible: Vec<usize> = Vec::with_capacity(to_find);
    let mut statuses: Vec<(usize, Status)> = Vec::new();
    let start = *start_index;
    for i in 0..num_candidates {
        let pos = (start % num_candidates + i) % num_candidates;
        let idx = candidates.as_ref().map_or(pos, |c| c[pos]);
        match state.filter(&snapshot.nodes[idx]) {
            Ok(()) => {
                feasible.push(idx);
                if feasible.len() >= to_find {
                    break;
                }
            }
            Err(status) => statuses.push((idx, status)),
        }
    }
    let processed = feasible.len() + statuses.len();
    *start_index = (start % num_all_nodes + processed) % num_all_nodes;

    if feasible.is_empty() {
        let mut unschedulable_plugins: BTreeSet<&'static str> =
            statuses.iter().map(|(_, s)| s.plugin()).collect();
        unschedulable_plugins.extend(state.pre_filter_plugins.iter().copied());
        return Err(FitError(Box::new(Diagnosis {
            num_all_nodes,
            pre_filter_message: String::new(),
            statuses: statuses
                .into_iter()
                .map(|(i, s)| (snapshot.nodes[i].name().to_string(), s))
                .collect(),
            absent_status,
            post_filter_message: String::new(),
            unschedulable_plugins,
        })));
    }
    if feasible.len() == 1 {
        return Ok(ScheduleResult {
            node: snapshot.nodes[feasible[0]].name().to_string(),
            evaluated: processed,
            feasible: 1,
        });
    }

    let nodes: Vec<&NodeInfo> = feasible.iter().map(|&i| &snapshot.nodes[i]).collect();
    let totals = state.score(snapshot, &nodes, config);
    let best = select_host(&totals, rng);
    Ok(ScheduleResult {
        node: nodes[best].name().to_string(),
        evaluated: processed,
        feasible: feasible.len(),
    })
}

/// The index of the highest score, ties broken uniformly at random (reservoir sampling,
/// as upstream's `selectHost`).
fn select_host<R: Rng + ?Sized>(scores: &[i64], rng: &mut R) -> usize {
    let mut best = 0;
    let mut ties = 1u32;
    for (i, &s) in scores.iter().enumerate().skip(1) {
        if s > scores[best] {
            best = i;
            ties = 1;
        } else if s == scores[best] {
            ties += 1;
            if rng.random_range(0..ties) == 0 {
                best = i;
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::*;
    use k8s_openapi::api::core::v1::{ContainerPort, PodStatus};
    use rand::SeedableRng;

    fn rng() -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(7)
    }

    #[test]
    fn pod_requests_sum_containers_max_init_and_add_overhead() {
        // upstream's computePodResourceRequest example: result cpu 3, memory 3G.
        let mut p = pod(
            "p",
            &[
                &[("cpu", "2"), ("memory", "1G")],
                &[("cpu", "1"), ("memory", "1G")],
            ],
        );
        spec(&mut p).init_containers = Some(vec![
            container(&[("cpu", "2"), ("memory", "1G")]),
            container(&[("cpu", "2"), ("memory", "3G")]),
        ]);
        let r = pod_requests(&p);
        assert_eq!(r.milli_cpu, 3000);
        assert_eq!(r.memory, 3_000_000_000);

        spec(&mut p).overhead = Some(quantities(&[("cpu", "500m"), ("memory", "1G")]));
        let r = pod_requests(&p);
        assert_eq!(r.milli_cpu, 3500);
        assert_eq!(r.memory, 4_000_000_000);
    }

    #[test]
    fn pod_requests_count_restartable_init_containers_as_sidecars() {
        // component-helpers "restartable init container" case: a sidecar of 1 cpu runs
        // beside the containers (2 cpu); a later init container of 2 cpu runs beside the
        // sidecar: max(2+1, 1+2) = 3.
        let mut p = pod("p", &[&[("cpu", "2")]]);
        let mut sidecar = container(&[("cpu", "1")]);
        sidecar.restart_policy = Some("Always".to_string());
        spec(&mut p).init_containers = Some(vec![sidecar, container(&[("cpu", "2")])]);
        assert_eq!(pod_requests(&p).milli_cpu, 3000);

        // An init container larger than everything else wins: 1 (sidecar) + 5.
        let mut p = pod("p", &[&[("cpu", "1")]]);
        let mut sidecar = container(&[("cpu", "1")]);
        sidecar.restart_policy = Some("Always".to_string());
        spec(&mut p).init_containers = Some(vec![sidecar, container(&[("cpu", "5")])]);
        assert_eq!(pod_requests(&p).milli_cpu, 6000);
    }

    #[test]
    fn pod_requests_prefer_pod_level_requests_and_keep_scalars() {
        let mut p = pod(
            "p",
            &[&[("cpu", "1"), ("memory", "1Gi"), ("example.com/gpu", "2")]],
        );
        spec(&mut p).resources = Some(k8s_openapi::api::core::v1::ResourceRequirements {
            requests: Some(quantities(&[("cpu", "4")])),
            ..Default::default()
        });
        let r = pod_requests(&p);
        assert_eq!(r.milli_cpu, 4000);
        assert_eq!(r.memory, 1 << 30);
        assert_eq!(r.scalar.get("example.com/gpu"), Some(&2));
    }

    #[test]
    fn node_info_tracks_requests_non_zero_defaults_and_ports() {
        let mut info = NodeInfo::new(node(
            "n",
            &[("cpu", "4"), ("memory", "8Gi"), ("pods", "110")],
            &[],
        ));
        assert_eq!(info.allocatable().milli_cpu, 4000);
        assert_eq!(info.allocatable().allowed_pod_number, 110);

        let best_effort = Arc::new(on_node(pod("a", &[&[]]), "n"));
        let mut with_port = on_node(pod("b", &[&[("cpu", "500m")]]), "n");
        spec(&mut with_port).containers[0].ports = Some(vec![ContainerPort {
            container_port: 80,
            host_port: Some(8080),
            ..Default::default()
        }]);
        let with_port = Arc::new(with_port);
        info.add_pod(&best_effort);
        info.add_pod(&with_port);
        assert_eq!(info.pod_count(), 2);
        assert_eq!(info.requested().milli_cpu, 500);
        assert_eq!(info.requested().memory, 0);
        // 100m for the best-effort pod, 500m for the other; 200Mi for each.
        assert_eq!(info.non_zero_requested().milli_cpu, 600);
        assert_eq!(info.non_zero_requested().memory, 2 * DEFAULT_MEMORY_REQUEST);
        assert!(info.used_ports().is_used("", "TCP", 8080));
        assert!(info.used_ports().is_used("10.0.0.1", "", 8080));
        assert!(!info.used_ports().is_used("", "UDP", 8080));

        assert!(info.remove_pod(&with_port));
        assert!(!info.remove_pod(&with_port));
        assert_eq!(info.requested().milli_cpu, 0);
        assert_eq!(info.non_zero_requested().milli_cpu, 100);
        assert!(!info.used_ports().is_used("", "TCP", 8080));
    }

    #[test]
    fn snapshot_keeps_pods_across_node_updates_and_removals() {
        let mut s = Snapshot::new();
        // A pod bound before its node is known.
        s.add_pod(on_node(pod("early", &[&[("cpu", "1")]]), "n1"));
        s.upsert_node(with_images(
            node("n1", &[("cpu", "4")], &[]),
            &[(&["img:1"], 10)],
        ));
        s.upsert_node(with_images(
            node("n2", &[("cpu", "4")], &[]),
            &[(&["img:1"], 10)],
        ));
        assert_eq!(s.node("n1").map(|n| n.requested().milli_cpu), Some(1000));
        assert_eq!(s.nodes_with_image("img:1"), 2);

        // Updating the node object keeps its pods.
        s.upsert_node(node("n1", &[("cpu", "8")], &[]));
        assert_eq!(s.node("n1").map(|n| n.allocatable().milli_cpu), Some(8000));
        assert_eq!(s.node("n1").map(|n| n.pod_count()), Some(1));
        assert_eq!(s.nodes_with_image("img:1"), 1);

        // Re-adding a pod replaces it; moving it moves its requests.
        s.add_pod(on_node(pod("early", &[&[("cpu", "2")]]), "n2"));
        assert_eq!(s.node("n1").map(|n| n.requested().milli_cpu), Some(0));
        assert_eq!(s.node("n2").map(|n| n.requested().milli_cpu), Some(2000));

        // Terminal pods are not accounted.
        let mut done = on_node(pod("early", &[&[("cpu", "2")]]), "n2");
        done.status = Some(PodStatus {
            phase: Some("Succeeded".to_string()),
            ..Default::default()
        });
        s.add_pod(done);
        assert_eq!(s.node("n2").map(|n| n.pod_count()), Some(0));

        s.add_pod(on_node(pod("x", &[&[("cpu", "1")]]), "n1"));
        assert!(s.remove_node("n1"));
        assert_eq!(s.len(), 1);
        assert_eq!(s.node("n2").map(|n| n.name()), Some("n2"));
        s.upsert_node(node("n1", &[("cpu", "8")], &[]));
        assert_eq!(s.node("n1").map(|n| n.requested().milli_cpu), Some(1000));
        assert!(s.remove_pod(&pod("x", &[])));
        assert_eq!(s.node("n1").map(|n| n.pod_count()), Some(0));
    }

    #[test]
    fn num_feasible_nodes_to_find_matches_upstream() {
        // TestNumFeasibleNodesToFind
        assert_eq!(num_feasible_nodes_to_find(0, 10), 10);
        assert_eq!(num_feasible_nodes_to_find(40, 10), 10);
        assert_eq!(num_feasible_nodes_to_find(0, 1000), 420);
        assert_eq!(num_feasible_nodes_to_find(40, 1000), 400);
        assert_eq!(num_feasible_nodes_to_find(0, 6000), 300);
        assert_eq!(num_feasible_nodes_to_find(40, 6000), 2400);
        assert_eq!(num_feasible_nodes_to_find(0, 5000), 500);
        assert_eq!(num_feasible_nodes_to_find(1, 200), 100);
    }

    #[test]
    fn fit_error_message_counts_and_sorts_reasons() {
        let err = FitError(Box::new(Diagnosis {
            num_all_nodes: 3,
            pre_filter_message: String::new(),
            statuses: vec![
                (
                    "a".to_string(),
                    Status::new(Code::Unschedulable, "Insufficient cpu"),
                ),
                (
                    "b".to_string(),
                    Status::new(
                        Code::UnschedulableAndUnresolvable,
                        "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }",
                    ),
                ),
                (
                    "c".to_string(),
                    Status::new(
                        Code::UnschedulableAndUnresolvable,
                        "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }",
                    ),
                ),
            ],
            absent_status: None,
            post_filter_message: String::new(),
            unschedulable_plugins: BTreeSet::new(),
        }));
        assert_eq!(
            err.to_string(),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint \
             {node-role.kubernetes.io/control-plane: }."
        );
        assert!(err.preemption_may_help());
        let mut err = err;
        err.set_post_filter_message(
            "preemption: 0/3 nodes are available: 1 No preemption victims found for incoming \
             pod, 2 Preemption is not helpful for scheduling.",
        );
        assert_eq!(
            err.to_string(),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint \
             {node-role.kubernetes.io/control-plane: }. preemption: 0/3 nodes are available: 1 \
             No preemption victims found for incoming pod, 2 Preemption is not helpful for \
             scheduling."
        );
    }

    #[test]
    fn schedule_reports_every_node_reason() {
        let cp = with_taints(
            node("cp", &[("cpu", "8"), ("pods", "110")], &[]),
            vec![taint(
                "node-role.kubernetes.io/control-plane",
                "",
                "NoSchedule",
            )],
        );
        let small = node(
            "small",
            &[("cpu", "1"), ("memory", "1Gi"), ("pods", "110")],
            &[],
        );
        let full = node(
            "full",
            &[("cpu", "1"), ("memory", "1Gi"), ("pods", "0")],
            &[],
        );
        let s = snapshot(vec![cp, small, full], vec![]);
        let p = pod("p", &[&[("cpu", "2"), ("memory", "2Gi")]]);
        let mut start = 0;
        let err = schedule(&p, &s, &SchedulerConfig::default(), &mut start).unwrap_err();
        assert_eq!(
            err.to_string(),
            "0/3 nodes are available: 1 Too many pods, 1 node(s) had untolerated taint \
             {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu, 2 Insufficient \
             memory."
        );
        assert_eq!(
            err.unschedulable_plugins()
                .iter()
                .copied()
                .collect::<Vec<_>>(),
            vec!["NodeResourcesFit", "TaintToleration"]
        );
        assert_eq!(
            err.node_status("cp").map(Status::code),
            Some(Code::UnschedulableAndUnresolvable)
        );
        assert_eq!(
            err.node_status("small").map(Status::plugin),
            Some("NodeResourcesFit")
        );
        assert!(err.preemption_may_help());
        assert_eq!(start, 0);
    }

    #[test]
    fn schedule_without_nodes() {
        let err = schedule(
            &pod("p", &[]),
            &Snapshot::new(),
            &SchedulerConfig::default(),
            &mut 0,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "no nodes available to schedule pods");
    }

    #[test]
    fn schedule_picks_the_least_allocated_node() {
        let nodes = vec![
            node(
                "busy",
                &[("cpu", "4"), ("memory", "8Gi"), ("pods", "110")],
                &[],
            ),
            node(
                "idle",
                &[("cpu", "4"), ("memory", "8Gi"), ("pods", "110")],
                &[],
            ),
        ];
        let pods = vec![on_node(
            pod("load", &[&[("cpu", "3"), ("memory", "6Gi")]]),
            "busy",
        )];
        let s = snapshot(nodes, pods);
        let p = pod("p", &[&[("cpu", "500m"), ("memory", "512Mi")]]);
        let mut start = 0;
        let r = schedule(&p, &s, &SchedulerConfig::default(), &mut start).unwrap();
        assert_eq!(
            r,
            ScheduleResult {
                node: "idle".to_string(),
                evaluated: 2,
                feasible: 2
            }
        );
    }

    #[test]
    fn schedule_prefilter_rejection_uses_the_prefilter_message() {
        let s = snapshot(
            vec![
                node("a", &[("cpu", "1"), ("pods", "10")], &[]),
                node("b", &[("cpu", "1"), ("pods", "10")], &[]),
            ],
            vec![],
        );
        let mut p = pod("p", &[]);
        spec(&mut p).affinity = Some(from_json(serde_json::json!({"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]},
                             {"key": "metadata.name", "operator": "In", "values": ["b"]}]}
        ]}}})));
        let err = schedule(&p, &s, &SchedulerConfig::default(), &mut 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "0/2 nodes are available: pod affinity terms conflict."
        );
        assert!(!err.preemption_may_help());
    }

    #[test]
    fn schedule_prefilter_node_names_restrict_the_candidates() {
        let s = snapshot(
            vec![
                node("a", &[("cpu", "1"), ("pods", "10")], &[]),
                node("b", &[("cpu", "1"), ("pods", "10")], &[]),
                node("c", &[("cpu", "1"), ("pods", "10")], &[]),
            ],
            vec![],
        );
        let mut p = pod("p", &[&[("cpu", "2")]]);
        spec(&mut p).affinity = Some(from_json(serde_json::json!({"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["b"]}]}
        ]}}})));
        let err = schedule(&p, &s, &SchedulerConfig::default(), &mut 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't satisfy plugin(s) \
             [NodeAffinity]."
        );
        spec(&mut p).containers = vec![container(&[("cpu", "500m")])];
        let r = schedule(&p, &s, &SchedulerConfig::default(), &mut 0).unwrap();
        assert_eq!((r.node.as_str(), r.evaluated, r.feasible), ("b", 1, 1));
    }

    #[test]
    fn schedule_samples_nodes_and_rotates_the_start_index() {
        let nodes: Vec<Node> = (0..1000)
            .map(|i| node(&format!("n{i:04}"), &[("cpu", "4"), ("pods", "110")], &[]))
            .collect();
        let s = snapshot(nodes, vec![]);
        let p = pod("p", &[&[("cpu", "1")]]);
        let mut start = 990;
        let r =
            schedule_with_rng(&p, &s, &SchedulerConfig::default(), &mut start, &mut rng()).unwrap();
        assert_eq!((r.evaluated, r.feasible), (420, 420));
        assert_eq!(start, (990 + 420) % 1000);
        let config = SchedulerConfig {
            percentage_of_nodes_to_score: 100,
            ..SchedulerConfig::default()
        };
        let r = schedule_with_rng(&p, &s, &config, &mut start, &mut rng()).unwrap();
        assert_eq!((r.evaluated, r.feasible), (1000, 1000));
    }

    #[test]
    fn schedule_prefers_a_fitting_nominated_node() {
        let s = snapshot(
            vec![
                node("a", &[("cpu", "4"), ("pods", "10")], &[]),
                node("b", &[("cpu", "4"), ("pods", "10")], &[]),
            ],
            vec![on_node(pod("load", &[&[("cpu", "3")]]), "b")],
        );
        let mut p = pod("p", &[&[("cpu", "1")]]);
        p.status = Some(PodStatus {
            nominated_node_name: Some("b".to_string()),
            ..Default::default()
        });
        let r = schedule(&p, &s, &SchedulerConfig::default(), &mut 0).unwrap();
        assert_eq!((r.node.as_str(), r.evaluated), ("b", 1));
        // No longer fitting: the normal cycle runs.
        spec(&mut p).containers = vec![container(&[("cpu", "2")])];
        let r = schedule(&p, &s, &SchedulerConfig::default(), &mut 0).unwrap();
        assert_eq!((r.node.as_str(), r.evaluated), ("a", 2));
    }

    fn replica(name: &str, affinity: serde_json::Value) -> Pod {
        let mut p = pod(name, &[&[("cpu", "100m")]]);
        p.metadata.labels = Some(labels(&[("app", "web")]));
        spec(&mut p).affinity = Some(from_json(affinity));
        p
    }

    /// Schedules `pod` and accounts it where it went, like the caller's assume step.
    fn place(s: &mut Snapshot, mut p: Pod, start: &mut usize) -> Result<String, FitError> {
        let r = schedule_with_rng(&p, s, &SchedulerConfig::default(), start, &mut rng())?;
        spec(&mut p).node_name = Some(r.node.clone());
        s.add_pod(p);
        Ok(r.node)
    }

    fn zone_nodes() -> Vec<Node> {
        vec![
            node(
                "a",
                &[("cpu", "4"), ("pods", "10")],
                &[("zone", "z1"), ("kubernetes.io/hostname", "a")],
            ),
            node(
                "b",
                &[("cpu", "4"), ("pods", "10")],
                &[("zone", "z1"), ("kubernetes.io/hostname", "b")],
            ),
            node(
                "c",
                &[("cpu", "4"), ("pods", "10")],
                &[("zone", "z2"), ("kubernetes.io/hostname", "c")],
            ),
        ]
    }

    #[test]
    fn schedule_enforces_required_anti_affinity_between_replicas() {
        let anti = serde_json::json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}});
        let mut s = snapshot(zone_nodes(), vec![]);
        let mut start = 0;
        let mut placed = BTreeSet::new();
        for i in 0..3 {
            placed.insert(
                place(
                    &mut s,
                    replica(&format!("web-{i}"), anti.clone()),
                    &mut start,
                )
                .unwrap(),
            );
        }
        assert_eq!(placed.len(), 3);
        let err = place(&mut s, replica("web-3", anti), &mut start).unwrap_err();
        assert_eq!(
            err.to_string(),
            "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules."
        );
        assert!(err.preemption_may_help());
    }

    #[test]
    fn schedule_spreads_replicas_over_zones() {
        let spread = serde_json::json!([{"maxSkew": 1, "topologyKey": "zone",
            "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}}]);
        let mut s = snapshot(zone_nodes(), vec![]);
        let mut start = 0;
        let mut zones = Vec::new();
        for i in 0..4 {
            let mut p = pod(&format!("web-{i}"), &[&[("cpu", "100m")]]);
            p.metadata.labels = Some(labels(&[("app", "web")]));
            spec(&mut p).topology_spread_constraints = Some(from_json(spread.clone()));
            let node = place(&mut s, p, &mut start).unwrap();
            zones.push(if node == "c" { "z2" } else { "z1" });
        }
        let z1 = zones.iter().filter(|z| **z == "z1").count();
        assert_eq!(z1, 2, "zones: {zones:?}");
    }

    #[test]
    fn cycle_state_follows_simulated_evictions() {
        let anti = serde_json::json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}});
        let victim = on_node(replica("victim", anti.clone()), "a");
        let s = snapshot(vec![zone_nodes().remove(0)], vec![victim.clone()]);
        let p = replica("p", anti);
        let mut state = CycleState::new(&p, &s).unwrap();
        let node = &s.nodes()[0];
        let err = state.filter(node).unwrap_err();
        assert_eq!(err.plugin(), "InterPodAffinity");
        let mut without = node.clone();
        assert!(without.remove_pod(&victim));
        let info = PodInfo::new(Arc::new(victim));
        state.remove_pod(&info, node.node());
        assert_eq!(state.filter(&without), Ok(()));
        state.add_pod(&info, node.node());
        assert!(state.filter(&without).is_err());
    }

    #[test]
    fn count_matching_agrees_with_scanning_the_pods() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let mut info = NodeInfo::new(node("n", &[], &[]));
        let mut add = |name: &str, ns: &str, l: &[(&str, &str)], terminating: bool| {
            let mut p = pod(name, &[]);
            p.metadata.namespace = Some(ns.to_string());
            p.metadata.labels = Some(labels(l));
            if terminating {
                p.metadata.deletion_timestamp = Some(Time(Default::default()));
            }
            info.add_pod(&Arc::new(p));
        };
        add("a", "default", &[("app", "web"), ("tier", "fe")], false);
        add("b", "default", &[("app", "web"), ("tier", "be")], false);
        add("c", "default", &[("app", "db")], true);
        add("d", "other", &[("app", "web")], false);
        add("e", "default", &[], false);
        let sel = |s: &str| Selector::parse(s).unwrap();
        let default = |ns: &str| ns == "default";
        let scan = |info: &NodeInfo, selector: &Selector, live_only: bool| {
            info.pods()
                .iter()
                .filter(|p| plugins::pod_namespace(p.pod()) == "default")
                .filter(|p| !live_only || p.pod().metadata.deletion_timestamp.is_none())
                .filter(|p| selector.matches(plugins::pod_labels(p.pod())))
                .count() as i64
        };
        for s in [
            "app=web",
            "app in (web,web)",
            "app in (web,db)",
            "app",
            "app=web,tier=fe",
            "app=none,tier=fe",
            "tier!=fe",
            "!tier",
            "app notin (web)",
            "",
            "app=db",
        ] {
            for live_only in [false, true] {
                assert_eq!(
                    info.count_matching(default, &sel(s), live_only),
                    scan(&info, &sel(s), live_only),
                    "selector {s:?}, live_only {live_only}"
                );
            }
        }
        assert_eq!(info.count_matching(|_| true, &sel("app=web"), true), 3);
        assert_eq!(
            info.count_matching(|_| true, &Selector::nothing(), false),
            0
        );
        assert!(info.remove_pod(&pod("a", &[])));
        assert_eq!(info.count_matching(default, &sel("app=web"), false), 1);
        assert_eq!(info.count_matching(default, &sel("tier"), false), 1);
    }

    #[test]
    fn select_host_breaks_ties_at_random() {
        let mut seen = BTreeSet::new();
        let mut r = rng();
        for _ in 0..200 {
            seen.insert(select_host(&[5, 9, 3, 9, 9], &mut r));
        }
        assert_eq!(seen, BTreeSet::from([1, 3, 4]));
        assert_eq!(select_host(&[1, 2, 3], &mut r), 2);
    }

    #[test]
    fn scalar_resource_names() {
        assert!(is_scalar_resource_name("example.com/gpu"));
        assert!(is_scalar_resource_name("hugepages-2Mi"));
        assert!(is_scalar_resource_name("attachable-volumes-aws-ebs"));
        assert!(is_scalar_resource_name("kubernetes.io/batch"));
        assert!(!is_scalar_resource_name("cpu"));
        assert!(!is_scalar_resource_name("requests.example.com/gpu"));
        assert!(!is_scalar_resource_name("bad name/x"));
    }
}
