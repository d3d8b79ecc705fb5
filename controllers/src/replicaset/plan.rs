//! The pure planning half of the ReplicaSet and ReplicationController controllers, after
//! upstream's `pkg/controller/replicaset` (`syncReplicaSet`, `claimPods`, `manageReplicas`,
//! `getPodsToDelete`, `calculateStatus`) and `pkg/controller/controller_utils.go`.
//!
//! A reconciler turns the object into a [`ReplicaSetView`], lists the pods of its namespace,
//! and then:
//! 1. calls [`plan`] and applies it: adopt / release (patches of `ownerReferences`, after
//!    re-checking that the owner is not being deleted), create [`Plan::create`] pods from
//!    [`pod_from_template`] in [`slow_start_batches`], delete [`Plan::delete`];
//! 2. calls [`status`] with the pods it now owns ([`claimed`] on a fresh or updated list)
//!    and the error of step 1, and writes the status when [`status_changed`];
//! 3. requeues after [`Plan::requeue_after`] when it is set.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use keelson_apimachinery::labels::Selector;
use keelson_apimachinery::names::NameRule;

use crate::pods;

/// Upstream's `BurstReplicas`: at most this many pods are created or deleted per sync.
pub const BURST_REPLICAS: usize = 500;

/// Upstream's `SlowStartInitialBatchSize`.
pub const SLOW_START_INITIAL_BATCH_SIZE: usize = 1;

/// The condition type set when creating or deleting pods failed.
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

/// What the controllers need of a ReplicaSet or of a ReplicationController.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplicaSetView {
    /// `apps/v1` for a ReplicaSet, `v1` for a ReplicationController.
    pub api_version: String,
    /// `ReplicaSet` or `ReplicationController`.
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub uid: String,
    /// `spec.replicas`, 1 when unset.
    pub replicas: i32,
    pub selector: Selector,
    pub min_ready_seconds: i32,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// Whether `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    pub template: Option<PodTemplateSpec>,
    /// The current `status.conditions`.
    pub conditions: Vec<ReplicaSetCondition>,
}

fn identity(meta: &ObjectMeta, kind: &str) -> Result<(String, String, String), String> {
    let name = meta
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("{kind} has no metadata.name"))?;
    let namespace = meta
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("{kind} {name} has no metadata.namespace"))?;
    let uid = meta
        .uid
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("{kind} {namespace}/{name} has no metadata.uid"))?;
    Ok((name, namespace, uid))
}

impl ReplicaSetView {
    /// The view of an `apps/v1` ReplicaSet.
    pub fn from_replica_set(rs: &ReplicaSet) -> Result<Self, String> {
        let kind = "ReplicaSet";
        let (name, namespace, uid) = identity(&rs.metadata, kind)?;
        let spec = rs
            .spec
            .as_ref()
            .ok_or_else(|| format!("{kind} {namespace}/{name} has no spec"))?;
        let selector_json = serde_json::to_value(&spec.selector)
            .map_err(|e| format!("{kind} {namespace}/{name}: selector: {e}"))?;
        let selector = Selector::from_label_selector_json(&selector_json)
            .map_err(|e| format!("{kind} {namespace}/{name}: invalid selector: {e}"))?;
        Ok(ReplicaSetView {
            api_version: "apps/v1".to_owned(),
            kind: kind.to_owned(),
            name,
            namespace,
            uid,
            replicas: spec.replicas.unwrap_or(1),
            selector,
            min_ready_seconds: spec.min_ready_seconds.unwrap_or(0),
            generation: rs.metadata.generation,
            deleting: rs.metadata.deletion_timestamp.is_some(),
            template: spec.template.clone(),
            conditions: rs
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default(),
        })
    }

    /// The view of a `v1` ReplicationController. Its equality-based selector defaults to the
    /// template's labels, as the API server's defaulting does; a selector that is still empty
    /// matches no pod (upstream validation never lets one through).
    pub fn from_replication_controller(rc: &ReplicationController) -> Result<Self, String> {
        let kind = "ReplicationController";
        let (name, namespace, uid) = identity(&rc.metadata, kind)?;
        let spec = rc
            .spec
            .as_ref()
            .ok_or_else(|| format!("{kind} {namespace}/{name} has no spec"))?;
        let mut selector_set: BTreeMap<String, String> = spec.selector.clone().unwrap_or_default();
        if selector_set.is_empty() {
            selector_set = spec
                .template
                .as_ref()
                .and_then(|t| t.metadata.as_ref())
                .and_then(|m| m.labels.clone())
                .unwrap_or_default();
        }
        let selector = if selector_set.is_empty() {
            Selector::nothing()
        } else {
            Selector::from_set(selector_set)
        };
        let conditions = rc
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .map(|c| ReplicaSetCondition {
                last_transition_time: c.last_transition_time.clone(),
                message: c.message.clone(),
                reason: c.reason.clone(),
                status: c.status.clone(),
                type_: c.type_.clone(),
            })
            .collect();
        Ok(ReplicaSetView {
            api_version: "v1".to_owned(),
            kind: kind.to_owned(),
            name,
            namespace,
            uid,
            replicas: spec.replicas.unwrap_or(1),
            selector,
            min_ready_seconds: spec.min_ready_seconds.unwrap_or(0),
            generation: rc.metadata.generation,
            deleting: rc.metadata.deletion_timestamp.is_some(),
            template: spec.template.clone(),
            conditions,
        })
    }

    /// The owner reference that marks a pod as controlled by this object
    /// (`metav1.NewControllerRef`).
    pub fn controller_ref(&self) -> OwnerReference {
        OwnerReference {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    fn matches(&self, pod: &Pod) -> bool {
        match pod.metadata.labels.as_ref() {
            Some(labels) => self.selector.matches(labels),
            None => self.selector.matches(&BTreeMap::<String, String>::new()),
        }
    }

    fn in_namespace(&self, pod: &Pod) -> bool {
        pod.metadata
            .namespace
            .as_deref()
            .is_none_or(|ns| ns == self.namespace)
    }
}

/// What one sync must do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Orphan pods to adopt (names): patch in [`ReplicaSetView::controller_ref`].
    pub adopt: Vec<String>,
    /// Controlled pods whose labels no longer match (names): remove our owner reference.
    pub release: Vec<String>,
    /// How many pods to create from [`pod_from_template`].
    pub create: usize,
    /// Pods to delete (names), the best candidates first.
    pub delete: Vec<String>,
    /// Sync again after this long (pods that are ready but not yet available).
    pub requeue_after: Option<Duration>,
}

/// How a sync failed to create or delete pods, for the `ReplicaFailure` condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManageError {
    /// True when creating pods failed (`FailedCreate`), false when deleting (`FailedDelete`).
    pub creating: bool,
    pub message: String,
}

/// How an active pod relates to the controller (upstream `claimObject`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Claim {
    /// Controlled by us and matching: ours.
    Owned,
    /// An orphan that matches: ours once adopted.
    Adopt,
    /// Controlled by us but no longer matching: to release.
    Release,
    /// Someone else's, or not ours to take.
    Ignore,
}

fn claim(rs: &ReplicaSetView, pod: &Pod) -> Claim {
    match pods::controller_of(&pod.metadata) {
        Some(owner) if owner.uid != rs.uid => Claim::Ignore,
        Some(_) if rs.matches(pod) => Claim::Owned,
        // A controller being deleted releases nothing.
        Some(_) if rs.deleting => Claim::Ignore,
        Some(_) => Claim::Release,
        None if rs.deleting || pods::is_being_deleted(pod) || !rs.matches(pod) => Claim::Ignore,
        None => Claim::Adopt,
    }
}

/// The pods the controller owns once [`Plan::adopt`] and [`Plan::release`] are applied:
/// active pods it controls that match its selector, active matching orphans it would adopt
/// (none while it is being deleted), and terminating pods it controls that match (upstream
/// `filterClaimedPods`). Terminal pods are left out. This is what [`status`] takes.
pub fn claimed<'a>(rs: &ReplicaSetView, pods: &'a [Pod]) -> Vec<&'a Pod> {
    pods.iter()
        .filter(|pod| rs.in_namespace(pod))
        .filter(|pod| {
            if pods::is_active(pod) {
                matches!(claim(rs, pod), Claim::Owned | Claim::Adopt)
            } else if pods::is_terminating(pod) {
                pods::is_controlled_by(&pod.metadata, &rs.uid) && rs.matches(pod)
            } else {
                false
            }
        })
        .collect()
}

fn pod_name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

/// Upstream `ClaimPods` then `manageReplicas` over `pods`, every pod of the namespace.
///
/// Only active pods take part. The claimed ones are compared with `spec.replicas`: missing
/// pods are created (at most [`BURST_REPLICAS`]), extra ones deleted in the order of
/// [`pods_to_delete`] (at most [`BURST_REPLICAS`]). A controller being deleted adopts,
/// releases, creates and deletes nothing.
pub fn plan(rs: &ReplicaSetView, pods: &[Pod], now: DateTime<Utc>) -> Plan {
    let mut out = Plan::default();
    let mut active: Vec<&Pod> = Vec::new();
    for pod in pods
        .iter()
        .filter(|p| rs.in_namespace(p) && pods::is_active(p))
    {
        match claim(rs, pod) {
            Claim::Owned => active.push(pod),
            Claim::Adopt => {
                out.adopt.push(pod_name(pod));
                active.push(pod);
            }
            Claim::Release => out.release.push(pod_name(pod)),
            Claim::Ignore => {}
        }
    }

    if !rs.deleting {
        let have = active.len();
        let want = usize::try_from(rs.replicas).unwrap_or(0);
        if have < want {
            out.create = (want - have).min(BURST_REPLICAS);
        } else if have > want {
            let count = (have - want).min(BURST_REPLICAS);
            out.delete = pods_to_delete(&active, &active, count, now)
                .into_iter()
                .map(pod_name)
                .collect();
        }
    }

    out.requeue_after = requeue_after(rs, &active, now);
    out
}

/// Upstream's resync for `minReadySeconds`: when some claimed pods are ready but not yet
/// available, the time until the first of them becomes available (or `minReadySeconds` when
/// that cannot be told).
fn requeue_after(rs: &ReplicaSetView, active: &[&Pod], now: DateTime<Utc>) -> Option<Duration> {
    if rs.min_ready_seconds <= 0 {
        return None;
    }
    let ready = active.iter().filter(|p| pods::is_ready(p)).count();
    let available = active
        .iter()
        .filter(|p| pods::is_available(p, rs.min_ready_seconds, now))
        .count();
    if ready == available {
        return None;
    }
    let fallback = Duration::from_secs(u64::try_from(rs.min_ready_seconds).unwrap_or(0));
    Some(
        active
            .iter()
            .filter_map(|p| pods::next_availability_check(p, rs.min_ready_seconds, now))
            .min()
            .unwrap_or(fallback),
    )
}

/// Upstream `slowStartBatch` sizes: `initial_batch`, then doubling, capped by what remains
/// (total 10 from 1: `[1, 2, 4, 3]`). The reconciler creates batch by batch and stops after
/// the first batch with an error. An initial batch of 0 creates nothing, as upstream.
pub fn slow_start_batches(total: usize, initial_batch: usize) -> Vec<usize> {
    let mut batches = Vec::new();
    let mut remaining = total;
    let mut batch = remaining.min(initial_batch);
    while batch > 0 {
        batches.push(batch);
        remaining -= batch;
        batch = batch.saturating_mul(2).min(remaining);
    }
    batches
}

/// The facts upstream's `ActivePodsWithRanks.Less` compares, computed once per pod.
struct Ranked<'a> {
    pod: &'a Pod,
    node: &'a str,
    phase: u8,
    ready: bool,
    cost: i32,
    rank: usize,
    ready_since: Option<DateTime<Utc>>,
    restarts: (i32, i32),
    created: Option<DateTime<Utc>>,
    uid: &'a str,
}

fn phase_ordinal(pod: &Pod) -> u8 {
    match pods::phase(pod) {
        "Unknown" => 1,
        "Running" => 2,
        // Pending, and anything not in upstream's table.
        _ => 0,
    }
}

/// `afterOrZero`: a missing time counts as later than any time.
fn after_or_zero(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a > b,
        (a, _) => a.is_none(),
    }
}

/// `logarithmicRankDiff`: compares how long ago two times were on a log2 scale of
/// nanoseconds.
fn log_rank(t: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    let elapsed = (now - t).num_nanoseconds().unwrap_or(i64::MAX);
    if elapsed > 0 {
        // Truncation of log2 to its integer part is the rank.
        (elapsed as f64).log2().floor() as i64
    } else {
        -1
    }
}

/// Compares two times, newer first: on the logarithmic scale, with the uid as tie-break
/// (upstream `LogarithmicScaleDown`), or directly when one of them is missing.
fn newer_first(
    a: Option<DateTime<Utc>>,
    b: Option<DateTime<Utc>>,
    a_uid: &str,
    b_uid: &str,
    now: DateTime<Utc>,
) -> bool {
    match (a, b) {
        (Some(ta), Some(tb)) => {
            let diff = log_rank(ta, now) - log_rank(tb, now);
            if diff == 0 {
                a_uid < b_uid
            } else {
                diff < 0
            }
        }
        _ => after_or_zero(a, b),
    }
}

/// Upstream `ActivePodsWithRanks.Less`: whether `a` should be deleted before `b`.
fn delete_first(a: &Ranked<'_>, b: &Ranked<'_>, now: DateTime<Utc>) -> bool {
    // 1. Unassigned before assigned.
    if a.node != b.node && (a.node.is_empty() || b.node.is_empty()) {
        return a.node.is_empty();
    }
    // 2. Pending < Unknown < Running.
    if a.phase != b.phase {
        return a.phase < b.phase;
    }
    // 3. Not ready before ready.
    if a.ready != b.ready {
        return !a.ready;
    }
    // 4. Lower pod-deletion-cost first.
    if a.cost != b.cost {
        return a.cost < b.cost;
    }
    // 5. More related pods on the same node first.
    if a.rank != b.rank {
        return a.rank > b.rank;
    }
    // 6. Ready for a shorter time first.
    if a.ready && b.ready && a.ready_since != b.ready_since {
        return newer_first(a.ready_since, b.ready_since, a.uid, b.uid, now);
    }
    // 7. More container restarts first, then more sidecar restarts.
    if a.restarts.0 != b.restarts.0 {
        return a.restarts.0 > b.restarts.0;
    }
    if a.restarts.1 != b.restarts.1 {
        return a.restarts.1 > b.restarts.1;
    }
    // 8. Newer first.
    if a.created != b.created {
        return newer_first(a.created, b.created, a.uid, b.uid, now);
    }
    false
}

/// A stable merge sort that only asks `less`; unlike `slice::sort_by` it stays well-defined
/// (no panic) when `less` is not a strict total order, which upstream's ranking is not.
fn merge_sort<T: Copy>(items: Vec<T>, less: &impl Fn(&T, &T) -> bool) -> Vec<T> {
    if items.len() <= 1 {
        return items;
    }
    let mut left = items;
    let right = left.split_off(left.len() / 2);
    let left = merge_sort(left, less);
    let right = merge_sort(right, less);
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut i, mut j) = (0, 0);
    while i < left.len() && j < right.len() {
        if less(&right[j], &left[i]) {
            out.push(right[j]);
            j += 1;
        } else {
            out.push(left[i]);
            i += 1;
        }
    }
    out.extend_from_slice(&left[i..]);
    out.extend_from_slice(&right[j..]);
    out
}

/// Upstream `getPodsToDelete`: the `count` pods of `candidates` to delete first. Each pod's
/// rank is the number of active pods of `related` on its node (upstream passes the pods of
/// every ReplicaSet sharing the controller; [`plan`] passes the claimed pods). When every
/// candidate goes, they are returned as given.
pub fn pods_to_delete<'a>(
    candidates: &[&'a Pod],
    related: &[&Pod],
    count: usize,
    now: DateTime<Utc>,
) -> Vec<&'a Pod> {
    if count >= candidates.len() {
        return candidates.to_vec();
    }
    let mut on_node: HashMap<&str, usize> = HashMap::new();
    for pod in related.iter().filter(|p| pods::is_active(p)) {
        *on_node.entry(node_name(pod)).or_default() += 1;
    }
    let ranked: Vec<Ranked<'a>> = candidates
        .iter()
        .map(|pod| {
            let node = node_name(pod);
            Ranked {
                pod,
                node,
                phase: phase_ordinal(pod),
                ready: pods::is_ready(pod),
                cost: pods::deletion_cost(pod),
                rank: on_node.get(node).copied().unwrap_or(0),
                ready_since: pods::ready_since(pod),
                restarts: pods::max_container_restarts(pod),
                created: pods::creation_time(&pod.metadata),
                uid: pod.metadata.uid.as_deref().unwrap_or(""),
            }
        })
        .collect();
    let order: Vec<usize> = (0..ranked.len()).collect();
    let order = merge_sort(order, &|a: &usize, b: &usize| {
        delete_first(&ranked[*a], &ranked[*b], now)
    });
    order
        .into_iter()
        .take(count)
        .map(|i| ranked[i].pod)
        .collect()
}

fn node_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

/// Upstream `getPodsPrefix`: `name-`, or `name` when the dash would make it too long.
fn generate_name_prefix(name: &str) -> String {
    let prefix = format!("{name}-");
    if NameRule::DnsSubdomain.validate(&prefix, true).is_empty() {
        prefix
    } else {
        name.to_owned()
    }
}

/// Upstream `GetPodFromTemplate` (plus `createPods`' label check): the pod to POST, named
/// by `generateName`, with the template's labels, annotations, finalizers and spec, in the
/// controller's namespace and controlled by it.
pub fn pod_from_template(rs: &ReplicaSetView) -> Result<Pod, String> {
    let template = rs.template.as_ref().ok_or_else(|| {
        format!(
            "{} {}/{} has no pod template",
            rs.kind, rs.namespace, rs.name
        )
    })?;
    let meta = template.metadata.clone().unwrap_or_default();
    let labels = meta.labels.filter(|l| !l.is_empty());
    if labels.is_none() {
        return Err("unable to create pods, no labels".to_owned());
    }
    Ok(Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name_prefix(&rs.name)),
            namespace: Some(rs.namespace.clone()),
            labels,
            annotations: meta.annotations.filter(|a| !a.is_empty()),
            finalizers: meta.finalizers.filter(|f| !f.is_empty()),
            owner_references: Some(vec![rs.controller_ref()]),
            ..ObjectMeta::default()
        },
        spec: Some(template.spec.clone().unwrap_or_default()),
        status: None,
    })
}

/// Upstream `calculateStatus`. `pods` are the controller's pods as [`claimed`] returns them:
/// active ones are counted as replicas, terminating ones as `terminatingReplicas` (a
/// ReplicaSet field only; `None` for a ReplicationController), terminal ones ignored.
///
/// `fullyLabeledReplicas` counts active pods carrying every label of the template. The
/// `ReplicaFailure` condition is added (status `True`, reason `FailedCreate` or
/// `FailedDelete`) when `manage_error` is set and it is not there yet, left as it is when it
/// is, and removed when `manage_error` is `None`. Other conditions are kept.
pub fn status(
    rs: &ReplicaSetView,
    pods: &[&Pod],
    manage_error: Option<ManageError>,
    now: DateTime<Utc>,
) -> ReplicaSetStatus {
    let template_labels = Selector::from_set(
        rs.template
            .as_ref()
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.clone())
            .unwrap_or_default(),
    );
    let no_labels = BTreeMap::<String, String>::new();
    let mut replicas = 0;
    let mut fully_labeled = 0;
    let mut ready = 0;
    let mut available = 0;
    let mut terminating = 0;
    for pod in pods {
        if pods::is_terminating(pod) {
            terminating += 1;
            continue;
        }
        if !pods::is_active(pod) {
            continue;
        }
        replicas += 1;
        if template_labels.matches(pod.metadata.labels.as_ref().unwrap_or(&no_labels)) {
            fully_labeled += 1;
        }
        if pods::is_ready(pod) {
            ready += 1;
            if pods::is_available(pod, rs.min_ready_seconds, now) {
                available += 1;
            }
        }
    }

    let mut conditions = rs.conditions.clone();
    let has_failure = conditions.iter().any(|c| c.type_ == REPLICA_FAILURE);
    match manage_error {
        Some(error) if !has_failure => conditions.push(ReplicaSetCondition {
            type_: REPLICA_FAILURE.to_owned(),
            status: "True".to_owned(),
            reason: Some(if error.creating {
                "FailedCreate".to_owned()
            } else {
                "FailedDelete".to_owned()
            }),
            message: Some(error.message),
            last_transition_time: Some(pods::to_time(now)),
        }),
        Some(_) => {}
        None => conditions.retain(|c| c.type_ != REPLICA_FAILURE),
    }

    ReplicaSetStatus {
        replicas,
        fully_labeled_replicas: Some(fully_labeled),
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        terminating_replicas: (rs.kind == "ReplicaSet").then_some(terminating),
        observed_generation: rs.generation,
        conditions: (!conditions.is_empty()).then_some(conditions),
    }
}

/// Whether `new` differs from the stored status `old` (upstream `updateReplicaSetStatus`'s
/// steady-state check). Counts compare with unset as 0, conditions with unset as empty;
/// `terminatingReplicas` compares exactly, as upstream's pointer comparison does.
pub fn status_changed(old: Option<&ReplicaSetStatus>, new: &ReplicaSetStatus) -> bool {
    let default = ReplicaSetStatus::default();
    let old = old.unwrap_or(&default);
    let count = |v: Option<i32>| v.unwrap_or(0);
    let conditions = |s: &ReplicaSetStatus| s.conditions.clone().unwrap_or_default();
    old.replicas != new.replicas
        || count(old.fully_labeled_replicas) != count(new.fully_labeled_replicas)
        || count(old.ready_replicas) != count(new.ready_replicas)
        || count(old.available_replicas) != count(new.available_replicas)
        || old.terminating_replicas != new.terminating_replicas
        || old.observed_generation.unwrap_or(0) != new.observed_generation.unwrap_or(0)
        || conditions(old) != conditions(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const UID: &str = "rs-uid";

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn now() -> DateTime<Utc> {
        at("2024-01-01T12:00:00Z")
    }

    /// `now` minus `seconds`, as RFC 3339.
    fn ago(seconds: i64) -> String {
        (now() - chrono::Duration::seconds(seconds)).to_rfc3339()
    }

    fn replica_set(replicas: i32, extra_spec: Value) -> ReplicaSet {
        let mut spec = json!({
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web", "tier": "front"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}
            }
        });
        if let (Some(spec), Value::Object(extra)) = (spec.as_object_mut(), extra_spec) {
            spec.extend(extra);
        }
        serde_json::from_value(json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "web", "namespace": "ns", "uid": UID, "generation": 3},
            "spec": spec
        }))
        .unwrap()
    }

    fn view(replicas: i32) -> ReplicaSetView {
        ReplicaSetView::from_replica_set(&replica_set(replicas, json!({}))).unwrap()
    }

    fn owner(uid: &str) -> Value {
        json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x", "uid": uid,
                "controller": true, "blockOwnerDeletion": true}])
    }

    /// A running, ready (for an hour), scheduled pod controlled by the test ReplicaSet, with
    /// `patch` merged over it (one level deep per top-level key).
    fn pod(name: &str, patch: Value) -> Pod {
        let mut base = json!({
            "metadata": {
                "name": name, "namespace": "ns", "uid": format!("uid-{name}"),
                "labels": {"app": "web", "tier": "front"},
                "ownerReferences": owner(UID),
                "creationTimestamp": ago(7200)
            },
            "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "nginx"}]},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": ago(3600)}
            ]}
        });
        if let Value::Object(patch) = patch {
            for (key, value) in patch {
                match (base.get_mut(&key), value) {
                    (Some(Value::Object(section)), Value::Object(fields)) => {
                        for (field, v) in fields {
                            if v.is_null() {
                                section.remove(&field);
                            } else {
                                section.insert(field, v);
                            }
                        }
                    }
                    (_, value) => {
                        base[key.as_str()] = value;
                    }
                }
            }
        }
        serde_json::from_value(base).unwrap()
    }

    fn not_ready() -> Value {
        json!([{"type": "Ready", "status": "False", "lastTransitionTime": ago(3600)}])
    }

    fn names(pods: &[&Pod]) -> Vec<String> {
        pods.iter().map(|p| pod_name(p)).collect()
    }

    #[test]
    fn claims_adopts_orphans_and_releases_mismatched_pods() {
        let pods = vec![
            pod("owned", json!({})),
            pod("orphan", json!({"metadata": {"ownerReferences": null}})),
            pod(
                "mismatched",
                json!({"metadata": {"labels": {"app": "other"}}}),
            ),
            pod(
                "foreign",
                json!({"metadata": {"ownerReferences": owner("other")}}),
            ),
            pod(
                "orphan-mismatched",
                json!({"metadata": {"ownerReferences": null, "labels": {"app": "db"}}}),
            ),
            pod(
                "orphan-deleting",
                json!({"metadata": {"ownerReferences": null, "deletionTimestamp": ago(1)}}),
            ),
            pod(
                "orphan-succeeded",
                json!({"metadata": {"ownerReferences": null}, "status": {"phase": "Succeeded"}}),
            ),
            pod(
                "other-namespace",
                json!({"metadata": {"namespace": "elsewhere", "ownerReferences": null}}),
            ),
        ];
        let rs = view(2);
        let plan = plan(&rs, &pods, now());
        assert_eq!(plan.adopt, vec!["orphan"]);
        assert_eq!(plan.release, vec!["mismatched"]);
        assert_eq!(plan.create, 0);
        assert!(plan.delete.is_empty());
        assert_eq!(names(&claimed(&rs, &pods)), vec!["owned", "orphan"]);
    }

    #[test]
    fn a_replica_set_being_deleted_adopts_releases_creates_and_deletes_nothing() {
        let pods = vec![
            pod("owned", json!({})),
            pod("orphan", json!({"metadata": {"ownerReferences": null}})),
            pod(
                "mismatched",
                json!({"metadata": {"labels": {"app": "other"}}}),
            ),
        ];
        let mut rs = view(10);
        rs.deleting = true;
        let p = plan(&rs, &pods, now());
        assert!(p.adopt.is_empty() && p.release.is_empty() && p.delete.is_empty());
        assert_eq!(p.create, 0);
        assert_eq!(names(&claimed(&rs, &pods)), vec!["owned"]);
        rs.replicas = 0;
        assert!(plan(&rs, &pods, now()).delete.is_empty());
    }

    #[test]
    fn creates_the_missing_pods_up_to_the_burst_limit() {
        assert_eq!(plan(&view(3), &[], now()).create, 3);
        assert_eq!(plan(&view(1000), &[], now()).create, BURST_REPLICAS);
        let pods = vec![pod("a", json!({}))];
        assert_eq!(plan(&view(3), &pods, now()).create, 2);
        // Inactive pods (terminal or terminating) do not count as replicas.
        let pods = vec![
            pod("done", json!({"status": {"phase": "Failed"}})),
            pod("going", json!({"metadata": {"deletionTimestamp": ago(1)}})),
        ];
        assert_eq!(plan(&view(2), &pods, now()).create, 2);
        // An adopted orphan counts.
        let pods = vec![pod(
            "orphan",
            json!({"metadata": {"ownerReferences": null}}),
        )];
        let p = plan(&view(2), &pods, now());
        assert_eq!((p.create, p.adopt.len()), (1, 1));
        // Exactly the right number: nothing to do.
        let pods = vec![pod("a", json!({})), pod("b", json!({}))];
        assert_eq!(plan(&view(2), &pods, now()), Plan::default());
    }

    #[test]
    fn deletes_the_extra_pods_up_to_the_burst_limit() {
        let pods: Vec<Pod> = (0..600).map(|i| pod(&format!("p{i}"), json!({}))).collect();
        let p = plan(&view(0), &pods, now());
        assert_eq!(p.delete.len(), BURST_REPLICAS);
        assert_eq!(p.create, 0);
        let p = plan(&view(598), &pods, now());
        assert_eq!(p.delete.len(), 2);
        // Deleting all of them keeps their order.
        let pods = vec![pod("a", json!({})), pod("b", json!({}))];
        assert_eq!(plan(&view(0), &pods, now()).delete, vec!["a", "b"]);
    }

    #[test]
    fn slow_start_batch_sizes() {
        assert_eq!(slow_start_batches(10, 1), vec![1, 2, 4, 3]);
        assert_eq!(slow_start_batches(1, 1), vec![1]);
        assert_eq!(slow_start_batches(0, 1), Vec::<usize>::new());
        assert_eq!(slow_start_batches(7, 1), vec![1, 2, 4]);
        assert_eq!(slow_start_batches(7, 2), vec![2, 4, 1]);
        assert_eq!(slow_start_batches(5, 0), Vec::<usize>::new());
        let burst = slow_start_batches(500, SLOW_START_INITIAL_BATCH_SIZE);
        assert_eq!(burst, vec![1, 2, 4, 8, 16, 32, 64, 128, 245]);
        assert_eq!(burst.iter().sum::<usize>(), 500);
    }

    /// With one replica wanted and `first` and `second` claimed, `first` is deleted, whatever
    /// the order they are listed in.
    fn assert_deleted_first(first: Pod, second: Pod) {
        let expected = pod_name(&first);
        let rs = view(1);
        let forward = plan(&rs, &[first.clone(), second.clone()], now());
        assert_eq!(forward.delete, vec![expected.clone()], "listed first");
        let backward = plan(&rs, &[second, first], now());
        assert_eq!(backward.delete, vec![expected], "listed second");
    }

    #[test]
    fn deletes_unassigned_pods_before_assigned_ones() {
        assert_deleted_first(
            pod("unassigned", json!({"spec": {"nodeName": null}})),
            pod("assigned", json!({})),
        );
        // Before every later rule: an unassigned running ready pod goes before an assigned
        // pending not-ready one.
        assert_deleted_first(
            pod("unassigned", json!({"spec": {"nodeName": null}})),
            pod(
                "assigned",
                json!({"status": {"phase": "Pending", "conditions": not_ready()}}),
            ),
        );
    }

    #[test]
    fn deletes_pending_before_unknown_before_running() {
        assert_deleted_first(
            pod("pending", json!({"status": {"phase": "Pending"}})),
            pod("unknown", json!({"status": {"phase": "Unknown"}})),
        );
        assert_deleted_first(
            pod("unknown", json!({"status": {"phase": "Unknown"}})),
            pod("running", json!({})),
        );
        assert_deleted_first(
            pod("pending", json!({"status": {"phase": "Pending"}})),
            pod("running", json!({})),
        );
        // Phase comes before readiness.
        assert_deleted_first(
            pod("pending", json!({"status": {"phase": "Pending"}})),
            pod("running", json!({"status": {"conditions": not_ready()}})),
        );
    }

    #[test]
    fn deletes_not_ready_before_ready() {
        assert_deleted_first(
            pod("not-ready", json!({"status": {"conditions": not_ready()}})),
            pod("ready", json!({})),
        );
        // Readiness comes before the deletion cost.
        assert_deleted_first(
            pod(
                "not-ready",
                json!({"status": {"conditions": not_ready()},
                       "metadata": {"annotations": {pods::POD_DELETION_COST: "100"}}}),
            ),
            pod("ready", json!({})),
        );
    }

    #[test]
    fn deletes_lower_deletion_cost_first() {
        assert_deleted_first(
            pod(
                "cheap",
                json!({"metadata": {"annotations": {pods::POD_DELETION_COST: "-10"}}}),
            ),
            pod("default", json!({})),
        );
        assert_deleted_first(
            pod("default", json!({})),
            pod(
                "costly",
                json!({"metadata": {"annotations": {pods::POD_DELETION_COST: "10"}}}),
            ),
        );
        // The cost comes before co-location: the costly pod shares its node, the cheap one
        // is alone.
        let rs = view(2);
        let pods = vec![
            pod(
                "crowded-1",
                json!({"metadata": {"annotations": {pods::POD_DELETION_COST: "5"}}}),
            ),
            pod(
                "crowded-2",
                json!({"metadata": {"annotations": {pods::POD_DELETION_COST: "5"}}}),
            ),
            pod("alone", json!({"spec": {"nodeName": "node-2"}})),
        ];
        assert_eq!(plan(&rs, &pods, now()).delete, vec!["alone"]);
    }

    #[test]
    fn deletes_pods_on_crowded_nodes_first() {
        let rs = view(2);
        let pods = vec![
            pod("alone", json!({"spec": {"nodeName": "node-2"}})),
            pod("crowded-1", json!({})),
            pod("crowded-2", json!({})),
        ];
        let deleted = plan(&rs, &pods, now()).delete;
        assert_eq!(deleted.len(), 1);
        assert!(deleted[0].starts_with("crowded-"), "{deleted:?}");
        // Co-location comes before readiness time: the crowded pods have been ready longer.
        let pods = vec![
            pod(
                "alone",
                json!({"spec": {"nodeName": "node-2"}, "status": {"conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": ago(10)}
                ]}}),
            ),
            pod("crowded-1", json!({})),
            pod("crowded-2", json!({})),
        ];
        let deleted = plan(&rs, &pods, now()).delete;
        assert!(deleted[0].starts_with("crowded-"), "{deleted:?}");
        // Terminating pods on a node do not count towards its rank: were they counted,
        // node-2 would be the crowded one and "alone" would go; as it is the ranks tie and
        // the newer pod goes.
        let pods = vec![
            pod(
                "alone",
                json!({"metadata": {"creationTimestamp": ago(100_000)},
                       "spec": {"nodeName": "node-2"}}),
            ),
            pod("busy", json!({"metadata": {"creationTimestamp": ago(100)}})),
            pod(
                "going",
                json!({"metadata": {"deletionTimestamp": ago(1)}, "spec": {"nodeName": "node-2"}}),
            ),
            pod(
                "going-2",
                json!({"metadata": {"deletionTimestamp": ago(1)}, "spec": {"nodeName": "node-2"}}),
            ),
        ];
        assert_eq!(plan(&view(1), &pods, now()).delete, vec!["busy"]);
    }

    #[test]
    fn deletes_pods_ready_for_a_shorter_time_first() {
        let ready_since = |seconds: i64| {
            json!({"status": {"conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": ago(seconds)}
            ]}})
        };
        assert_deleted_first(
            pod("recent", ready_since(10)),
            pod("old", ready_since(1000)),
        );
        // Readiness time comes before restarts.
        let mut recent = ready_since(10);
        recent["status"]["containerStatuses"] = json!([]);
        let old_with_restarts = json!({"status": {
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": ago(1000)}],
            "containerStatuses": [{"name": "c", "restartCount": 9, "ready": true,
                                   "image": "nginx", "imageID": ""}]
        }});
        assert_deleted_first(pod("recent", recent), pod("old", old_with_restarts));
        // A ready pod with no transition time counts as the most recent.
        assert_deleted_first(
            pod(
                "no-time",
                json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
            ),
            pod("recent", ready_since(10)),
        );
        // Within the same power-of-two bucket the uid decides, not the exact time.
        assert_deleted_first(pod("a", ready_since(1001)), pod("b", ready_since(1000)));
    }

    #[test]
    fn deletes_pods_with_more_restarts_first() {
        let restarts = |n: i32| {
            json!({"status": {
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": ago(3600)}],
                "containerStatuses": [{"name": "c", "restartCount": n, "ready": true,
                                       "image": "nginx", "imageID": ""}]
            }})
        };
        assert_deleted_first(pod("flaky", restarts(5)), pod("steady", restarts(1)));
        // Restarts come before age: the steady pod is newer.
        let mut steady = restarts(0);
        steady["metadata"] = json!({"creationTimestamp": ago(3700)});
        assert_deleted_first(pod("flaky", restarts(5)), pod("steady", steady));
        // Sidecar restarts break a tie of regular restarts.
        let sidecar = |n: i32| {
            json!({
                "spec": {"initContainers": [{"name": "side", "restartPolicy": "Always"}]},
                "status": {
                    "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": ago(3600)}],
                    "initContainerStatuses": [{"name": "side", "restartCount": n, "ready": true,
                                               "image": "busybox", "imageID": ""}]
                }
            })
        };
        assert_deleted_first(
            pod("flaky-side", sidecar(3)),
            pod("steady-side", sidecar(0)),
        );
    }

    #[test]
    fn deletes_newer_pods_first() {
        let created = |seconds: i64| json!({"metadata": {"creationTimestamp": ago(seconds)}});
        assert_deleted_first(pod("new", created(100)), pod("old", created(100_000)));
        // A pod with no creation time goes first.
        assert_deleted_first(
            pod(
                "unknown-age",
                json!({"metadata": {"creationTimestamp": null}}),
            ),
            pod("new", created(100)),
        );
        // Within the same power-of-two bucket, the uid decides.
        assert_deleted_first(pod("a", created(1001)), pod("b", created(1000)));
    }

    #[test]
    fn pods_to_delete_takes_the_ranking_of_related_pods() {
        let a = pod("a", json!({"spec": {"nodeName": "node-a"}}));
        let b = pod("b", json!({"spec": {"nodeName": "node-b"}}));
        // Pods of a sibling ReplicaSet crowd node-b.
        let sibling = pod("s", json!({"spec": {"nodeName": "node-b"}}));
        let chosen = pods_to_delete(&[&a, &b], &[&a, &b, &sibling], 1, now());
        assert_eq!(names(&chosen), vec!["b"]);
        let chosen = pods_to_delete(&[&a, &b], &[&a, &b], 5, now());
        assert_eq!(names(&chosen), vec!["a", "b"]);
    }

    #[test]
    fn requeues_until_ready_pods_become_available() {
        let rs = ReplicaSetView::from_replica_set(&replica_set(2, json!({"minReadySeconds": 30})))
            .unwrap();
        let ready_since = |seconds: i64| {
            json!({"status": {"conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": ago(seconds)}
            ]}})
        };
        let pods = vec![pod("a", ready_since(10)), pod("b", ready_since(25))];
        assert_eq!(
            plan(&rs, &pods, now()).requeue_after,
            Some(Duration::from_secs(5))
        );
        let pods = vec![pod("a", ready_since(10)), pod("b", ready_since(100))];
        assert_eq!(
            plan(&rs, &pods, now()).requeue_after,
            Some(Duration::from_secs(20))
        );
        // All available, or none ready: nothing to wait for.
        let pods = vec![pod("a", ready_since(100)), pod("b", ready_since(100))];
        assert_eq!(plan(&rs, &pods, now()).requeue_after, None);
        let pods = vec![pod("a", json!({"status": {"conditions": not_ready()}}))];
        assert_eq!(plan(&rs, &pods, now()).requeue_after, None);
        // Ready without a transition time never becomes available: retry after
        // minReadySeconds.
        let pods = vec![pod(
            "a",
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        )];
        assert_eq!(
            plan(&rs, &pods, now()).requeue_after,
            Some(Duration::from_secs(30))
        );
        // No minReadySeconds: ready means available.
        let pods = vec![pod("a", ready_since(1))];
        assert_eq!(plan(&view(1), &pods, now()).requeue_after, None);
    }

    #[test]
    fn status_counts_replicas() {
        let rs = ReplicaSetView::from_replica_set(&replica_set(5, json!({"minReadySeconds": 60})))
            .unwrap();
        let pods = vec![
            // Fully labeled, ready and available.
            pod("available", json!({})),
            // Ready for 10s only: not available yet; missing the template's tier label.
            pod(
                "fresh",
                json!({"metadata": {"labels": {"app": "web"}}, "status": {"conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": ago(10)}
                ]}}),
            ),
            // Not ready; extra labels still count as fully labeled.
            pod(
                "starting",
                json!({"metadata": {"labels": {"app": "web", "tier": "front", "x": "y"}},
                       "status": {"phase": "Pending", "conditions": not_ready()}}),
            ),
            pod(
                "terminating",
                json!({"metadata": {"deletionTimestamp": ago(1)}}),
            ),
            pod("succeeded", json!({"status": {"phase": "Succeeded"}})),
            pod("orphan", json!({"metadata": {"ownerReferences": null}})),
            pod(
                "orphan-terminating",
                json!({"metadata": {"ownerReferences": null, "deletionTimestamp": ago(1)}}),
            ),
            pod(
                "foreign",
                json!({"metadata": {"ownerReferences": owner("x")}}),
            ),
        ];
        let owned = claimed(&rs, &pods);
        assert_eq!(
            names(&owned),
            vec!["available", "fresh", "starting", "terminating", "orphan"]
        );
        let s = status(&rs, &owned, None, now());
        assert_eq!(s.replicas, 4);
        assert_eq!(s.fully_labeled_replicas, Some(3));
        assert_eq!(s.ready_replicas, Some(3));
        assert_eq!(s.available_replicas, Some(2));
        assert_eq!(s.terminating_replicas, Some(1));
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(s.conditions, None);
        // minReadySeconds 0: every ready pod is available.
        let s = status(&view(5), &owned, None, now());
        assert_eq!(s.available_replicas, Some(3));
    }

    #[test]
    fn replica_failure_condition_is_set_kept_and_cleared() {
        let mut rs = view(3);
        rs.conditions = vec![ReplicaSetCondition {
            type_: "Custom".to_owned(),
            status: "True".to_owned(),
            ..ReplicaSetCondition::default()
        }];
        let error = ManageError {
            creating: true,
            message: "pods \"web-x\" is forbidden: exceeded quota".to_owned(),
        };
        let s = status(&rs, &[], Some(error.clone()), now());
        let conditions = s.conditions.clone().unwrap();
        assert_eq!(conditions.len(), 2);
        let failure = &conditions[1];
        assert_eq!(failure.type_, REPLICA_FAILURE);
        assert_eq!(failure.status, "True");
        assert_eq!(failure.reason.as_deref(), Some("FailedCreate"));
        assert_eq!(failure.message.as_deref(), Some(error.message.as_str()));
        assert_eq!(
            failure
                .last_transition_time
                .as_ref()
                .and_then(pods::to_chrono),
            Some(now())
        );

        // A later failure leaves the existing condition, transition time included, alone.
        rs.conditions = conditions.clone();
        let later = now() + chrono::Duration::seconds(30);
        let again = ManageError {
            creating: false,
            message: "other".to_owned(),
        };
        let s = status(&rs, &[], Some(again), later);
        assert_eq!(s.conditions.as_ref(), Some(&conditions));

        // Success removes it and keeps the rest.
        let s = status(&rs, &[], None, later);
        let kept = s.conditions.unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].type_, "Custom");

        let deleting = ManageError {
            creating: false,
            message: "boom".to_owned(),
        };
        let s = status(&view(0), &[], Some(deleting), now());
        assert_eq!(
            s.conditions.unwrap()[0].reason.as_deref(),
            Some("FailedDelete")
        );
    }

    #[test]
    fn status_changes_are_detected_with_unset_counts_as_zero() {
        let rs = view(1);
        let pods = [pod("a", json!({}))];
        let refs: Vec<&Pod> = pods.iter().collect();
        let new = status(&rs, &refs, None, now());
        assert!(status_changed(None, &new));
        assert!(!status_changed(Some(&new), &new));
        // What the API returns when zero counts were omitted.
        let zero = status(&view(0), &[], None, now());
        let stored = ReplicaSetStatus {
            replicas: 0,
            observed_generation: Some(3),
            terminating_replicas: Some(0),
            ..ReplicaSetStatus::default()
        };
        assert!(!status_changed(Some(&stored), &zero));
        let mut other_generation = stored.clone();
        other_generation.observed_generation = Some(2);
        assert!(status_changed(Some(&other_generation), &zero));
        let mut no_terminating = stored.clone();
        no_terminating.terminating_replicas = None;
        assert!(status_changed(Some(&no_terminating), &zero));
        let failed = status(
            &view(0),
            &[],
            Some(ManageError {
                creating: true,
                message: "x".to_owned(),
            }),
            now(),
        );
        assert!(status_changed(Some(&stored), &failed));
    }

    fn replication_controller(spec: Value) -> ReplicationController {
        serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "ReplicationController",
            "metadata": {"name": "rc", "namespace": "ns", "uid": "rc-uid", "generation": 2},
            "spec": spec,
            "status": {"replicas": 0, "conditions": [{
                "type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                "message": "quota", "lastTransitionTime": "2024-01-01T00:00:00Z"
            }]}
        }))
        .unwrap()
    }

    #[test]
    fn replication_controller_selector_defaults_to_template_labels() {
        let rc = replication_controller(json!({
            "template": {"metadata": {"labels": {"app": "legacy"}},
                         "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
        }));
        let v = ReplicaSetView::from_replication_controller(&rc).unwrap();
        assert_eq!(
            (v.api_version.as_str(), v.kind.as_str()),
            ("v1", "ReplicationController")
        );
        assert_eq!(v.replicas, 1);
        assert_eq!(v.generation, Some(2));
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert!(v
            .selector
            .matches(&labels(&[("app", "legacy"), ("x", "y")])));
        assert!(!v.selector.matches(&labels(&[("app", "web")])));
        assert!(!v.selector.matches(&labels(&[])));
        assert_eq!(v.conditions.len(), 1);
        assert_eq!(v.conditions[0].type_, REPLICA_FAILURE);
        assert_eq!(v.conditions[0].reason.as_deref(), Some("FailedCreate"));
        assert!(v.conditions[0].last_transition_time.is_some());
        // An explicit selector wins over the template's labels.
        let rc = replication_controller(json!({
            "replicas": 4,
            "minReadySeconds": 7,
            "selector": {"app": "legacy", "track": "stable"},
            "template": {"metadata": {"labels": {"app": "legacy", "track": "stable", "v": "2"}}}
        }));
        let v = ReplicaSetView::from_replication_controller(&rc).unwrap();
        assert_eq!((v.replicas, v.min_ready_seconds), (4, 7));
        assert!(v
            .selector
            .matches(&labels(&[("app", "legacy"), ("track", "stable")])));
        assert!(!v
            .selector
            .matches(&labels(&[("app", "legacy"), ("v", "2")])));
        // Neither selector nor template labels: matches nothing rather than everything.
        let rc = replication_controller(json!({}));
        let v = ReplicaSetView::from_replication_controller(&rc).unwrap();
        assert!(v.selector.is_nothing());
        let p = plan(
            &v,
            &[pod("stray", json!({"metadata": {"ownerReferences": null}}))],
            now(),
        );
        assert!(p.adopt.is_empty());
        // RC status has no terminatingReplicas.
        let s = status(&v, &[], None, now());
        assert_eq!(s.terminating_replicas, None);
    }

    #[test]
    fn replica_set_view_reads_the_object() {
        let rs = replica_set(
            0,
            json!({"replicas": null, "minReadySeconds": 12, "selector": {"matchExpressions": [
                {"key": "app", "operator": "In", "values": ["web", "api"]}
            ]}}),
        );
        let v = ReplicaSetView::from_replica_set(&rs).unwrap();
        assert_eq!(
            (v.api_version.as_str(), v.kind.as_str()),
            ("apps/v1", "ReplicaSet")
        );
        assert_eq!(
            (v.name.as_str(), v.namespace.as_str(), v.uid.as_str()),
            ("web", "ns", UID)
        );
        assert_eq!(v.replicas, 1);
        assert_eq!(v.min_ready_seconds, 12);
        assert_eq!(v.generation, Some(3));
        assert!(!v.deleting);
        assert!(v.template.is_some());
        assert_eq!(v.selector.to_string(), "app in (api,web)");
        let mut deleting = rs.clone();
        deleting.metadata.deletion_timestamp = Some(pods::to_time(now()));
        assert!(
            ReplicaSetView::from_replica_set(&deleting)
                .unwrap()
                .deleting
        );
        let mut no_uid = rs;
        no_uid.metadata.uid = None;
        assert!(ReplicaSetView::from_replica_set(&no_uid).is_err());
    }

    #[test]
    fn pod_from_template_copies_the_template_and_sets_the_owner() {
        let rs = replica_set(
            1,
            json!({"template": {
                "metadata": {
                    "name": "ignored",
                    "labels": {"app": "web"},
                    "annotations": {"note": "hi"},
                    "finalizers": ["example.com/keep"]
                },
                "spec": {"containers": [{"name": "c", "image": "nginx"}], "restartPolicy": "Always"}
            }}),
        );
        let v = ReplicaSetView::from_replica_set(&rs).unwrap();
        let p = pod_from_template(&v).unwrap();
        let value = serde_json::to_value(&p).unwrap();
        assert_eq!(
            value,
            json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "generateName": "web-",
                    "namespace": "ns",
                    "labels": {"app": "web"},
                    "annotations": {"note": "hi"},
                    "finalizers": ["example.com/keep"],
                    "ownerReferences": [{
                        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                        "uid": UID, "controller": true, "blockOwnerDeletion": true
                    }]
                },
                "spec": {"containers": [{"name": "c", "image": "nginx"}], "restartPolicy": "Always"}
            })
        );

        // A ReplicationController owns its pods as v1/ReplicationController.
        let rc = replication_controller(json!({
            "template": {"metadata": {"labels": {"app": "legacy"}},
                         "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
        }));
        let v = ReplicaSetView::from_replication_controller(&rc).unwrap();
        let p = pod_from_template(&v).unwrap();
        let owner = &p.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (
                owner.api_version.as_str(),
                owner.kind.as_str(),
                owner.uid.as_str()
            ),
            ("v1", "ReplicationController", "rc-uid")
        );

        // Upstream's prefix check masks the trailing dash, so even a name at the length
        // limit keeps its dash; a name that is no DNS subdomain at all is used as is.
        let mut long = view(1);
        long.name = "a".repeat(253);
        assert_eq!(
            pod_from_template(&long).unwrap().metadata.generate_name,
            Some(format!("{}-", "a".repeat(253)))
        );
        let mut odd = view(1);
        odd.name = "Web_1".to_owned();
        assert_eq!(
            pod_from_template(&odd)
                .unwrap()
                .metadata
                .generate_name
                .as_deref(),
            Some("Web_1")
        );

        let mut no_template = view(1);
        no_template.template = None;
        assert!(pod_from_template(&no_template).is_err());
        let mut no_labels = view(1);
        if let Some(t) = no_labels.template.as_mut() {
            t.metadata = None;
        }
        assert_eq!(
            pod_from_template(&no_labels).unwrap_err(),
            "unable to create pods, no labels"
        );
    }
}
