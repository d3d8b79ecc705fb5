//! The garbage collector's pure part, after upstream's `pkg/controller/garbagecollector`:
//! the ownerReferences graph that the watches feed (`graph_builder.go`), the decisions
//! `attemptToDeleteItem` and `processDeletingDependentsItem` take from it and from live
//! lookups (`garbagecollector.go`), the patches they send (`patch.go`, `operations.go`) and
//! which resources are watched (`GetDeletableResources`).
//!
//! Nothing here talks to a server: [`Graph::process`] turns what a watch saw into work
//! items, [`decide`] turns classified owner references into an action.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::{json, Value};

/// Set by the API server on `propagationPolicy: Foreground`: the owner waits for its
/// blocking dependents.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
/// Set by the API server on `propagationPolicy: Orphan`: dependents lose the reference.
pub const ORPHAN_FINALIZER: &str = "orphan";

/// Upstream's `objectReference`: an owner reference's coordinates plus a namespace. The
/// field order gives upstream's `referenceLessThan` ordering (kind, apiVersion, namespace,
/// name, uid).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity {
    pub kind: String,
    pub api_version: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl Identity {
    /// The coordinates of `owner`, looked for in `namespace`.
    pub fn from_owner(owner: &OwnerReference, namespace: &str) -> Identity {
        Identity {
            kind: owner.kind.clone(),
            api_version: owner.api_version.clone(),
            namespace: namespace.to_string(),
            name: owner.name.clone(),
            uid: owner.uid.clone(),
        }
    }

    /// Upstream `ownerReferenceMatchesCoordinates`: uid, name, kind and apiVersion agree.
    pub fn matches(&self, owner: &OwnerReference) -> bool {
        self.uid == owner.uid
            && self.name == owner.name
            && self.kind == owner.kind
            && self.api_version == owner.api_version
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{}/{}, namespace: {}, name: {}, uid: {}]",
            self.api_version, self.kind, self.namespace, self.name, self.uid
        )
    }
}

/// What a metadata watch reported about one object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    pub identity: Identity,
    /// The watch that saw it (see [`ResourceType::key`]).
    pub source: String,
    pub owners: Vec<OwnerReference>,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    pub finalizers: Vec<String>,
}

impl Observed {
    fn has_finalizer(&self, finalizer: &str) -> bool {
        self.finalizers.iter().any(|f| f == finalizer)
    }

    fn state(&self) -> Transitions {
        Transitions {
            orphaning: self.deleting && self.has_finalizer(ORPHAN_FINALIZER),
            deleting_dependents: self.deleting && self.has_finalizer(FOREGROUND_FINALIZER),
        }
    }
}

/// What of an object's last observed state its transitions depend on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Transitions {
    orphaning: bool,
    deleting_dependents: bool,
}

/// One object in the graph, observed or "virtual" (only known as somebody's owner).
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub identity: Identity,
    pub owners: Vec<OwnerReference>,
    /// uids of the objects that name this one as owner.
    pub dependents: BTreeSet<String>,
    pub being_deleted: bool,
    /// Deleted with the foreground finalizer: waits for blocking dependents.
    pub deleting_dependents: bool,
    /// Seen by a watch (false: a virtual node to verify with a GET).
    pub observed: bool,
    /// The watch that last saw it.
    pub source: Option<String>,
    last: Option<Transitions>,
}

/// A change for the graph: from a watch, or a "virtual" delete after a GET found nothing.
#[derive(Clone, Debug, PartialEq)]
pub enum GraphEvent {
    Upsert(Observed),
    Delete(Observed),
    VirtualDelete(Identity),
}

/// Work the graph hands to the two queues.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Work {
    AttemptToDelete(String),
    AttemptToOrphan(String),
}

/// Owners verified absent, so that the dependents of one missing owner cost one GET.
/// Upstream keeps the last 500 in an LRU.
#[derive(Clone, Debug)]
pub struct AbsentOwners {
    set: HashSet<Identity>,
    order: VecDeque<Identity>,
    capacity: usize,
}

impl AbsentOwners {
    pub fn new(capacity: usize) -> Self {
        AbsentOwners {
            set: HashSet::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    pub fn has(&self, identity: &Identity) -> bool {
        self.set.contains(identity)
    }

    pub fn add(&mut self, identity: Identity) {
        if self.set.contains(&identity) {
            return;
        }
        self.set.insert(identity.clone());
        self.order.push_back(identity);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }
}

impl Default for AbsentOwners {
    fn default() -> Self {
        AbsentOwners::new(500)
    }
}

/// The ownerReferences graph: uid → node.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
    pub absent: AbsentOwners,
}

fn blocks(owner: &OwnerReference) -> bool {
    owner.block_owner_deletion == Some(true)
}

impl Graph {
    pub fn node(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Observed nodes last seen by the watch `source`.
    pub fn observed_from(&self, source: &str) -> Vec<Identity> {
        let mut out: Vec<Identity> = self
            .nodes
            .values()
            .filter(|n| n.observed && n.source.as_deref() == Some(source))
            .map(|n| n.identity.clone())
            .collect();
        out.sort();
        out
    }

    /// The identities of `uid`'s dependents.
    pub fn dependents(&self, uid: &str) -> Vec<Identity> {
        self.nodes
            .get(uid)
            .map(|n| {
                n.dependents
                    .iter()
                    .filter_map(|d| self.nodes.get(d))
                    .map(|d| d.identity.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Upstream `blockingDependents`: dependents whose reference to `uid` has
    /// `blockOwnerDeletion: true`.
    pub fn blocking_dependents(&self, uid: &str) -> Vec<&Node> {
        let Some(node) = self.nodes.get(uid) else {
            return Vec::new();
        };
        node.dependents
            .iter()
            .filter_map(|d| self.nodes.get(d))
            .filter(|d| d.owners.iter().any(|o| o.uid == uid && blocks(o)))
            .collect()
    }

    /// Whether one of `uid`'s dependents is itself waiting for its dependents (upstream's
    /// cycle guard before a foreground delete).
    pub fn a_dependent_deletes_dependents(&self, uid: &str) -> bool {
        self.nodes.get(uid).is_some_and(|n| {
            n.dependents
                .iter()
                .filter_map(|d| self.nodes.get(d))
                .any(|d| d.deleting_dependents)
        })
    }

    /// Upstream `processDeletingDependentsItem` for an owner deleted in the foreground.
    pub fn foreground_step(&self, uid: &str) -> ForegroundStep {
        let blocking = self.blocking_dependents(uid);
        if blocking.is_empty() {
            return ForegroundStep::RemoveFinalizer;
        }
        ForegroundStep::Wait {
            attempt_to_delete: blocking
                .iter()
                .filter(|d| !d.deleting_dependents)
                .map(|d| d.identity.uid.clone())
                .collect(),
        }
    }

    /// Upstream `processGraphChanges`: applies one event, returns the work it causes.
    pub fn process(&mut self, event: GraphEvent) -> Vec<Work> {
        let mut work = Vec::new();
        match event {
            GraphEvent::Upsert(observed) => self.upsert(observed, &mut work),
            GraphEvent::Delete(observed) => self.delete(&observed.identity, false, &mut work),
            GraphEvent::VirtualDelete(identity) => self.delete(&identity, true, &mut work),
        }
        work
    }

    fn upsert(&mut self, observed: Observed, work: &mut Vec<Work>) {
        let uid = observed.identity.uid.clone();
        let new_state = observed.state();
        let old_state = match self.nodes.get_mut(&uid) {
            None => {
                self.nodes.insert(
                    uid.clone(),
                    Node {
                        identity: observed.identity.clone(),
                        owners: observed.owners.clone(),
                        dependents: BTreeSet::new(),
                        being_deleted: observed.deleting,
                        deleting_dependents: new_state.deleting_dependents,
                        observed: true,
                        source: Some(observed.source.clone()),
                        last: None,
                    },
                );
                self.add_dependent_to_owners(&uid, &observed.owners, work);
                None
            }
            Some(existing) => {
                let mut old = existing.last;
                if !existing.observed {
                    // First sight of an object known so far as somebody's owner.
                    old = None;
                    existing.observed = true;
                    if existing.identity != observed.identity {
                        let dependents: Vec<String> = existing.dependents.iter().cloned().collect();
                        existing.identity = observed.identity.clone();
                        let (_, mismatched) =
                            self.partition_dependents(&dependents, &observed.identity);
                        for dep in mismatched {
                            if !observed.identity.namespace.is_empty() {
                                if let Some(d) = self.nodes.get(&dep) {
                                    if d.identity.namespace != observed.identity.namespace {
                                        tracing::info!(
                                            item = %d.identity,
                                            owner = %observed.identity,
                                            "item references an owner but does not match namespaces"
                                        );
                                    }
                                }
                            }
                            work.push(Work::AttemptToDelete(dep));
                        }
                    }
                }
                let Some(existing) = self.nodes.get_mut(&uid) else {
                    return;
                };
                existing.source = Some(observed.source.clone());
                let (added, removed, changed) =
                    references_diffs(&existing.owners, &observed.owners);
                if !added.is_empty() || !removed.is_empty() || !changed.is_empty() {
                    existing.owners = observed.owners.clone();
                    self.add_unblocked_owners(&removed, &changed, work);
                    self.add_dependent_to_owners(&uid, &added, work);
                    self.remove_dependent_from_owners(&uid, &removed);
                }
                if observed.deleting {
                    if let Some(existing) = self.nodes.get_mut(&uid) {
                        existing.being_deleted = true;
                    }
                }
                old
            }
        };
        self.process_transitions(&uid, old_state, new_state, work);
        if let Some(node) = self.nodes.get_mut(&uid) {
            node.last = Some(new_state);
        }
    }

    /// Upstream `processTransitions`.
    fn process_transitions(
        &mut self,
        uid: &str,
        old: Option<Transitions>,
        new: Transitions,
        work: &mut Vec<Work>,
    ) {
        let old = old.unwrap_or_default();
        if new.orphaning && !old.orphaning {
            work.push(Work::AttemptToOrphan(uid.to_string()));
            return;
        }
        if new.deleting_dependents && !old.deleting_dependents {
            if let Some(node) = self.nodes.get_mut(uid) {
                node.deleting_dependents = true;
                for dep in &node.dependents {
                    work.push(Work::AttemptToDelete(dep.clone()));
                }
                work.push(Work::AttemptToDelete(uid.to_string()));
            }
        }
    }

    /// Upstream `addDependentToOwners`: links `uid` to its owners, creating virtual nodes
    /// (queued for verification) for owners not seen yet.
    fn add_dependent_to_owners(
        &mut self,
        uid: &str,
        owners: &[OwnerReference],
        work: &mut Vec<Work>,
    ) {
        let Some(dependent) = self.nodes.get(uid).map(|n| n.identity.clone()) else {
            return;
        };
        let mut potentially_invalid = false;
        for owner in owners {
            match self.nodes.get_mut(&owner.uid) {
                None => {
                    let mut node = Node {
                        identity: Identity::from_owner(owner, &dependent.namespace),
                        owners: Vec::new(),
                        dependents: BTreeSet::new(),
                        being_deleted: false,
                        deleting_dependents: false,
                        observed: false,
                        source: None,
                        last: None,
                    };
                    node.dependents.insert(uid.to_string());
                    self.nodes.insert(owner.uid.clone(), node);
                    work.push(Work::AttemptToDelete(owner.uid.clone()));
                }
                Some(node) => {
                    node.dependents.insert(uid.to_string());
                    let owner_namespaced = !node.identity.namespace.is_empty();
                    if owner_namespaced && node.identity.namespace != dependent.namespace {
                        if node.observed {
                            tracing::info!(
                                item = %dependent,
                                owner = %node.identity,
                                "item references an owner but does not match namespaces"
                            );
                        }
                        potentially_invalid = true;
                    } else if !node.identity.matches(owner)
                        || (!owner_namespaced
                            && node.identity.namespace != dependent.namespace
                            && !node.observed)
                    {
                        // Other coordinates for the same uid, or a cluster-scoped virtual
                        // owner that may really be a namespaced kind named by a
                        // cluster-scoped dependent: verify the dependent.
                        potentially_invalid = true;
                    }
                }
            }
        }
        if potentially_invalid {
            work.push(Work::AttemptToDelete(uid.to_string()));
        }
    }

    fn remove_dependent_from_owners(&mut self, uid: &str, owners: &[OwnerReference]) {
        for owner in owners {
            if let Some(node) = self.nodes.get_mut(&owner.uid) {
                node.dependents.remove(uid);
            }
        }
    }

    /// Upstream `addUnblockedOwnersToDeleteQueue`: an owner waiting for its dependents
    /// is checked again when a blocking reference goes away or stops blocking.
    fn add_unblocked_owners(
        &self,
        removed: &[OwnerReference],
        changed: &[(OwnerReference, OwnerReference)],
        work: &mut Vec<Work>,
    ) {
        for r in removed {
            if blocks(r) && self.nodes.contains_key(&r.uid) {
                work.push(Work::AttemptToDelete(r.uid.clone()));
            }
        }
        for (old, new) in changed {
            if blocks(old) && !blocks(new) && self.nodes.contains_key(&new.uid) {
                work.push(Work::AttemptToDelete(new.uid.clone()));
            }
        }
    }

    /// Upstream `partitionDependents`: dependents whose reference to `owner.uid` matches
    /// `owner`'s coordinates, and those with a reference that does not.
    fn partition_dependents(
        &self,
        dependents: &[String],
        owner: &Identity,
    ) -> (Vec<String>, Vec<String>) {
        let owner_namespaced = !owner.namespace.is_empty();
        let mut matching = Vec::new();
        let mut mismatching = Vec::new();
        for uid in dependents {
            let Some(dep) = self.nodes.get(uid) else {
                continue;
            };
            let (mut found_match, mut found_mismatch) = (false, false);
            if owner_namespaced && owner.namespace != dep.identity.namespace {
                found_mismatch = true;
            } else {
                for r in dep.owners.iter().filter(|r| r.uid == owner.uid) {
                    if owner.matches(r) {
                        found_match = true;
                    } else {
                        found_mismatch = true;
                    }
                }
            }
            if found_match {
                matching.push(uid.clone());
            }
            if found_mismatch {
                mismatching.push(uid.clone());
            }
        }
        (matching, mismatching)
    }

    /// Upstream `getAlternateOwnerIdentity`: another identity the dependents use for an
    /// owner uid whose `absent` coordinates were verified missing.
    fn alternate_owner_identity(
        &self,
        dependents: &[String],
        absent: &Identity,
    ) -> Option<Identity> {
        let cluster_scoped = absent.namespace.is_empty();
        let mut seen: BTreeSet<Identity> = BTreeSet::from([absent.clone()]);
        let mut first: Option<Identity> = None;
        let mut first_following: Option<Identity> = None;
        for uid in dependents {
            let Some(dep) = self.nodes.get(uid) else {
                continue;
            };
            for r in dep.owners.iter().filter(|r| r.uid == absent.uid) {
                if absent.matches(r)
                    && (cluster_scoped || absent.namespace == dep.identity.namespace)
                {
                    continue;
                }
                let mut candidate = Identity::from_owner(r, &dep.identity.namespace);
                if cluster_scoped
                    && candidate.api_version == absent.api_version
                    && candidate.kind == absent.kind
                {
                    candidate.namespace.clear();
                }
                if !seen.insert(candidate.clone()) {
                    continue;
                }
                if first.is_none() {
                    first = Some(candidate.clone());
                }
                if first_following.is_none() && *absent < candidate {
                    first_following = Some(candidate);
                }
            }
        }
        first_following.or(first)
    }

    fn delete(&mut self, identity: &Identity, virtual_event: bool, work: &mut Vec<Work>) {
        let uid = identity.uid.clone();
        let Some(existing) = self.nodes.get(&uid) else {
            return;
        };
        let dependents: Vec<String> = existing.dependents.iter().cloned().collect();
        let mut remove = true;
        if virtual_event {
            if !existing.observed {
                let existing_identity = existing.identity.clone();
                let (matching, mismatching) = self.partition_dependents(&dependents, identity);
                if !mismatching.is_empty() {
                    // Some dependents disagree on the coordinates: keep the virtual node.
                    remove = false;
                    if !matching.is_empty() {
                        self.absent.add(identity.clone());
                        work.extend(matching.into_iter().map(Work::AttemptToDelete));
                    }
                    if existing_identity == *identity {
                        if let Some(replacement) =
                            self.alternate_owner_identity(&mismatching, identity)
                        {
                            if let Some(node) = self.nodes.get_mut(&uid) {
                                node.identity = replacement;
                            }
                            work.push(Work::AttemptToDelete(uid.clone()));
                        }
                    }
                }
            } else if existing.identity != *identity {
                // A virtual delete never removes an observed node with other coordinates.
                remove = false;
                let (matching, _) = self.partition_dependents(&dependents, identity);
                if !matching.is_empty() {
                    self.absent.add(identity.clone());
                    work.extend(matching.into_iter().map(Work::AttemptToDelete));
                }
            }
        }
        if !remove {
            return;
        }
        let Some(node) = self.nodes.remove(&uid) else {
            return;
        };
        self.remove_dependent_from_owners(&uid, &node.owners);
        if !node.dependents.is_empty() {
            self.absent.add(identity.clone());
        }
        work.extend(node.dependents.iter().cloned().map(Work::AttemptToDelete));
        for owner in &node.owners {
            if self
                .nodes
                .get(&owner.uid)
                .is_some_and(|o| o.deleting_dependents)
            {
                work.push(Work::AttemptToDelete(owner.uid.clone()));
            }
        }
    }
}

/// Upstream `referencesDiffs`: references added, removed, and changed (same uid).
#[allow(clippy::type_complexity)]
fn references_diffs(
    old: &[OwnerReference],
    new: &[OwnerReference],
) -> (
    Vec<OwnerReference>,
    Vec<OwnerReference>,
    Vec<(OwnerReference, OwnerReference)>,
) {
    let mut old_by_uid: BTreeMap<&str, &OwnerReference> =
        old.iter().map(|r| (r.uid.as_str(), r)).collect();
    let mut added = Vec::new();
    let mut changed = Vec::new();
    for r in new {
        match old_by_uid.remove(r.uid.as_str()) {
            Some(o) => {
                if o != r {
                    changed.push((o.clone(), r.clone()));
                }
            }
            None => added.push(r.clone()),
        }
    }
    let removed = old_by_uid.into_values().cloned().collect();
    (added, removed, changed)
}

/// Upstream `ForegroundStep` of `processDeletingDependentsItem`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ForegroundStep {
    /// No blocking dependent is left: drop `foregroundDeletion` so the owner goes.
    RemoveFinalizer,
    /// Blocking dependents remain; these are (re)tried for deletion.
    Wait { attempt_to_delete: Vec<String> },
}

/// How a live lookup classified one owner reference (upstream `classifyReferences`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefClass {
    /// The owner exists and is not waiting for its dependents.
    Solid,
    /// The owner is gone (not found, or another uid under that name).
    Dangling,
    /// The owner has a deletionTimestamp and the `foregroundDeletion` finalizer.
    WaitingForDependentsDeletion,
}

/// A deletion's propagationPolicy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

/// What `attemptToDeleteItem` does with an object after classifying its owners.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No owner, or every owner solid: nothing to do.
    Keep,
    /// At least one owner solid: drop the references to these (dangling or waiting) owners.
    RemoveOwnerRefs(Vec<String>),
    /// Garbage: delete it. With `unblock_first`, its blocking references are first made
    /// non-blocking (a dependent of it also waits for its own dependents: a possible cycle).
    Delete {
        policy: Propagation,
        unblock_first: bool,
    },
}

/// Upstream `attemptToDeleteItem` after `classifyReferences`.
pub fn decide(
    classified: &[(OwnerReference, RefClass)],
    item_finalizers: &[String],
    item_has_dependents: bool,
    a_dependent_deletes_dependents: bool,
) -> Decision {
    if classified.is_empty() {
        return Decision::Keep;
    }
    let uids = |class: RefClass| -> Vec<String> {
        classified
            .iter()
            .filter(|(_, c)| *c == class)
            .map(|(r, _)| r.uid.clone())
            .collect()
    };
    let solid = uids(RefClass::Solid);
    let dangling = uids(RefClass::Dangling);
    let waiting = uids(RefClass::WaitingForDependentsDeletion);
    if !solid.is_empty() {
        if dangling.is_empty() && waiting.is_empty() {
            return Decision::Keep;
        }
        // Waiting owners lose the reference too, or they would wait for this object forever.
        return Decision::RemoveOwnerRefs(dangling.into_iter().chain(waiting).collect());
    }
    if !waiting.is_empty() && item_has_dependents {
        return Decision::Delete {
            policy: Propagation::Foreground,
            unblock_first: a_dependent_deletes_dependents,
        };
    }
    let has = |f: &str| item_finalizers.iter().any(|x| x == f);
    let policy = if has(ORPHAN_FINALIZER) {
        Propagation::Orphan
    } else if has(FOREGROUND_FINALIZER) {
        Propagation::Foreground
    } else {
        Propagation::Background
    };
    Decision::Delete {
        policy,
        unblock_first: false,
    }
}

/// Whether an owner's metadata says it waits for its dependents' deletion.
pub fn waits_for_dependents(deleting: bool, finalizers: &[String]) -> bool {
    deleting && finalizers.iter().any(|f| f == FOREGROUND_FINALIZER)
}

/// Upstream `GenerateDeleteOwnerRefStrategicMergeBytes`: a strategic merge patch that
/// deletes the references to `owner_uids`; the dependent's uid guards against a
/// recreated object.
pub fn delete_owner_refs_smp(dependent_uid: &str, owner_uids: &[String]) -> Value {
    let refs: Vec<Value> = owner_uids
        .iter()
        .map(|uid| json!({"$patch": "delete", "uid": uid}))
        .collect();
    json!({"metadata": {"ownerReferences": refs, "uid": dependent_uid}})
}

/// Upstream `deleteOwnerRefJSONMergePatch`: the fallback for kinds without strategic
/// merge patch, the remaining references guarded by the resourceVersion they came from.
pub fn delete_owner_refs_merge(
    latest: &[OwnerReference],
    resource_version: &str,
    owner_uids: &[String],
) -> Value {
    let remaining: Vec<&OwnerReference> = latest
        .iter()
        .filter(|r| !owner_uids.contains(&r.uid))
        .collect();
    let refs = if remaining.is_empty() {
        Value::Null
    } else {
        json!(remaining)
    };
    json!({"metadata": {"resourceVersion": resource_version, "ownerReferences": refs}})
}

/// Upstream `unblockOwnerReferencesStrategicMergePatch`: the blocking references again,
/// with `blockOwnerDeletion: false`.
pub fn unblock_owner_refs_smp(dependent_uid: &str, owners: &[OwnerReference]) -> Value {
    let refs: Vec<OwnerReference> = owners
        .iter()
        .filter(|r| blocks(r))
        .map(|r| OwnerReference {
            block_owner_deletion: Some(false),
            ..r.clone()
        })
        .collect();
    json!({"metadata": {"ownerReferences": refs, "uid": dependent_uid}})
}

/// Upstream `unblockOwnerReferencesJSONMergePatch`.
pub fn unblock_owner_refs_merge(latest: &[OwnerReference], resource_version: &str) -> Value {
    let refs: Vec<OwnerReference> = latest
        .iter()
        .map(|r| OwnerReference {
            block_owner_deletion: Some(false),
            ..r.clone()
        })
        .collect();
    json!({"metadata": {"resourceVersion": resource_version, "ownerReferences": refs}})
}

/// Upstream `removeFinalizer`: a merge patch of the finalizers without `target`, guarded
/// by `resource_version`; `None` when `target` is not there.
pub fn remove_finalizer_patch(
    finalizers: &[String],
    target: &str,
    resource_version: &str,
) -> Option<Value> {
    if !finalizers.iter().any(|f| f == target) {
        return None;
    }
    let rest: Vec<&String> = finalizers.iter().filter(|f| *f != target).collect();
    let rest = if rest.is_empty() {
        Value::Null
    } else {
        json!(rest)
    };
    Some(json!({"metadata": {"resourceVersion": resource_version, "finalizers": rest}}))
}

// ---------------------------------------------------------------------------------------
// Discovery
// ---------------------------------------------------------------------------------------

/// One resource of one group version, as discovery lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawResource {
    /// Plural name; subresources contain a `/`.
    pub name: String,
    pub kind: String,
    pub namespaced: bool,
    pub verbs: Vec<String>,
}

/// One served version of a group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiscoveredVersion {
    pub version: String,
    /// The `groupVersion` its resource list declared (`v1`, `apps/v1`).
    pub group_version: String,
    pub resources: Vec<RawResource>,
}

/// One API group (`""` for core) with its versions in the server's order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiscoveredGroup {
    pub name: String,
    pub preferred_version: String,
    pub versions: Vec<DiscoveredVersion>,
}

/// A resource at one version.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub kind: String,
    pub namespaced: bool,
    pub verbs: Vec<String>,
}

impl ResourceType {
    /// What kube-rs' dynamic APIs take.
    pub fn api_resource(&self) -> kube::api::ApiResource {
        kube::api::ApiResource {
            group: self.group.clone(),
            version: self.version.clone(),
            api_version: self.api_version(),
            kind: self.kind.clone(),
            plural: self.resource.clone(),
        }
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// `resource.version.group`, what a watch of it is known by.
    pub fn key(&self) -> String {
        format!("{}.{}.{}", self.resource, self.version, self.group)
    }
}

fn resource_type(group: &str, version: &str, r: &RawResource) -> ResourceType {
    ResourceType {
        group: group.to_string(),
        version: version.to_string(),
        resource: r.name.clone(),
        kind: r.kind.clone(),
        namespaced: r.namespaced,
        verbs: r.verbs.clone(),
    }
}

/// client-go's `ServerPreferredResources`: every top-level resource once per group, at
/// the group's preferred version when it is served there, else at the first version
/// that serves it.
pub fn preferred_resources(groups: &[DiscoveredGroup]) -> Vec<ResourceType> {
    let mut out = Vec::new();
    for group in groups {
        let mut chosen: BTreeMap<&str, ResourceType> = BTreeMap::new();
        for version in &group.versions {
            for r in &version.resources {
                if r.name.contains('/') {
                    continue;
                }
                if chosen.contains_key(r.name.as_str())
                    && version.version != group.preferred_version
                {
                    continue;
                }
                chosen.insert(&r.name, resource_type(&group.name, &version.version, r));
            }
        }
        out.extend(chosen.into_values());
    }
    out
}

/// Upstream `DefaultIgnoredResources`: events are never garbage collected.
pub fn ignored(group: &str, resource: &str) -> bool {
    resource == "events" && (group.is_empty() || group == "events.k8s.io")
}

/// Upstream `GetDeletableResources`: preferred resources supporting list, watch and
/// delete, less the ignored ones.
pub fn deletable_resources(groups: &[DiscoveredGroup]) -> Vec<ResourceType> {
    preferred_resources(groups)
        .into_iter()
        .filter(|r| r.supports("list") && r.supports("watch") && r.supports("delete"))
        .filter(|r| !ignored(&r.group, &r.resource))
        .collect()
}

/// The REST mapping of every kind at every served version: (apiVersion, kind) → resource.
#[derive(Clone, Debug, Default)]
pub struct KindMap(HashMap<(String, String), ResourceType>);

impl KindMap {
    pub fn new(groups: &[DiscoveredGroup]) -> KindMap {
        let mut map = HashMap::new();
        for group in groups {
            for version in &group.versions {
                for r in version.resources.iter().filter(|r| !r.name.contains('/')) {
                    let t = resource_type(&group.name, &version.version, r);
                    map.entry((t.api_version(), t.kind.clone())).or_insert(t);
                }
            }
        }
        KindMap(map)
    }

    pub fn get(&self, api_version: &str, kind: &str) -> Option<&ResourceType> {
        self.0.get(&(api_version.to_string(), kind.to_string()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(kind: &str, name: &str, uid: &str, block: Option<bool>) -> OwnerReference {
        OwnerReference {
            api_version: "v1".into(),
            kind: kind.into(),
            name: name.into(),
            uid: uid.into(),
            controller: None,
            block_owner_deletion: block,
        }
    }

    fn ident(kind: &str, ns: &str, name: &str, uid: &str) -> Identity {
        Identity {
            kind: kind.into(),
            api_version: "v1".into(),
            namespace: ns.into(),
            name: name.into(),
            uid: uid.into(),
        }
    }

    fn observed(kind: &str, name: &str, uid: &str, owners: Vec<OwnerReference>) -> Observed {
        Observed {
            identity: ident(kind, "ns", name, uid),
            source: if kind == "Secret" {
                "secrets.v1.".into()
            } else {
                "configmaps.v1.".into()
            },
            owners,
            deleting: false,
            finalizers: vec![],
        }
    }

    fn deleting(mut o: Observed, finalizers: &[&str]) -> Observed {
        o.deleting = true;
        o.finalizers = finalizers.iter().map(|f| f.to_string()).collect();
        o
    }

    fn del(uid: &str) -> Work {
        Work::AttemptToDelete(uid.into())
    }

    #[test]
    fn all_owners_absent_deletes_in_the_background() {
        let refs = [
            (owner("ConfigMap", "a", "u-a", None), RefClass::Dangling),
            (
                owner("ConfigMap", "b", "u-b", Some(true)),
                RefClass::Dangling,
            ),
        ];
        assert_eq!(
            decide(&refs, &[], false, false),
            Decision::Delete {
                policy: Propagation::Background,
                unblock_first: false
            }
        );
        // A finalizer the object already carries sets the policy.
        assert_eq!(
            decide(&refs, &["orphan".into()], true, false),
            Decision::Delete {
                policy: Propagation::Orphan,
                unblock_first: false
            }
        );
        assert_eq!(
            decide(&refs, &["foregroundDeletion".into()], false, false),
            Decision::Delete {
                policy: Propagation::Foreground,
                unblock_first: false
            }
        );
    }

    #[test]
    fn owner_waiting_for_dependents_deletes_in_the_foreground() {
        let refs = [(
            owner("ConfigMap", "a", "u-a", Some(true)),
            RefClass::WaitingForDependentsDeletion,
        )];
        assert_eq!(
            decide(&refs, &[], true, false),
            Decision::Delete {
                policy: Propagation::Foreground,
                unblock_first: false
            }
        );
        // A dependent of the item waits for its own dependents: unblock first (cycle guard).
        assert_eq!(
            decide(&refs, &[], true, true),
            Decision::Delete {
                policy: Propagation::Foreground,
                unblock_first: true
            }
        );
        // Without dependents of its own, there is nothing to wait for: background.
        assert_eq!(
            decide(&refs, &[], false, false),
            Decision::Delete {
                policy: Propagation::Background,
                unblock_first: false
            }
        );
    }

    #[test]
    fn some_owners_absent_removes_their_references() {
        let refs = [
            (owner("ConfigMap", "a", "u-a", None), RefClass::Solid),
            (owner("ConfigMap", "b", "u-b", None), RefClass::Dangling),
            (
                owner("ConfigMap", "c", "u-c", Some(true)),
                RefClass::WaitingForDependentsDeletion,
            ),
        ];
        assert_eq!(
            decide(&refs, &[], false, false),
            Decision::RemoveOwnerRefs(vec!["u-b".into(), "u-c".into()])
        );
        let solid = [(owner("ConfigMap", "a", "u-a", None), RefClass::Solid)];
        assert_eq!(decide(&solid, &[], false, false), Decision::Keep);
        assert_eq!(decide(&[], &[], false, false), Decision::Keep);
    }

    #[test]
    fn remove_refs_patches_keep_the_live_references() {
        let live = vec![
            owner("ConfigMap", "a", "u-a", None),
            owner("ConfigMap", "b", "u-b", Some(true)),
        ];
        assert_eq!(
            delete_owner_refs_smp("dep", &["u-b".into()]),
            json!({"metadata": {"ownerReferences": [{"$patch": "delete", "uid": "u-b"}], "uid": "dep"}})
        );
        assert_eq!(
            delete_owner_refs_merge(&live, "42", &["u-b".into()]),
            json!({"metadata": {"resourceVersion": "42", "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "a", "uid": "u-a"}
            ]}})
        );
        assert_eq!(
            delete_owner_refs_merge(&live, "42", &["u-a".into(), "u-b".into()]),
            json!({"metadata": {"resourceVersion": "42", "ownerReferences": null}})
        );
        assert_eq!(
            unblock_owner_refs_smp("dep", &live),
            json!({"metadata": {"ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "b", "uid": "u-b", "blockOwnerDeletion": false}
            ], "uid": "dep"}})
        );
    }

    #[test]
    fn finalizer_patch_keeps_other_finalizers_and_pins_the_resource_version() {
        let f = vec![
            "example.com/x".to_string(),
            "foregroundDeletion".to_string(),
        ];
        assert_eq!(
            remove_finalizer_patch(&f, FOREGROUND_FINALIZER, "7"),
            Some(json!({"metadata": {"resourceVersion": "7", "finalizers": ["example.com/x"]}}))
        );
        assert_eq!(
            remove_finalizer_patch(&["orphan".into()], ORPHAN_FINALIZER, "8"),
            Some(json!({"metadata": {"resourceVersion": "8", "finalizers": null}}))
        );
        assert_eq!(remove_finalizer_patch(&f, ORPHAN_FINALIZER, "7"), None);
    }

    #[test]
    fn unknown_owner_becomes_a_virtual_node_to_verify() {
        let mut g = Graph::default();
        let work = g.process(GraphEvent::Upsert(observed(
            "Secret",
            "dep",
            "u-dep",
            vec![owner("ConfigMap", "ghost", "u-ghost", None)],
        )));
        assert_eq!(work, vec![del("u-ghost")]);
        let ghost = g.node("u-ghost").cloned();
        assert!(ghost.as_ref().is_some_and(
            |n| !n.observed && n.identity == ident("ConfigMap", "ns", "ghost", "u-ghost")
        ));
        assert_eq!(
            g.dependents("u-ghost"),
            vec![ident("Secret", "ns", "dep", "u-dep")]
        );

        // The GET found nothing: the virtual delete queues the dependent and remembers the
        // owner as absent.
        let work = g.process(GraphEvent::VirtualDelete(ident(
            "ConfigMap",
            "ns",
            "ghost",
            "u-ghost",
        )));
        assert_eq!(work, vec![del("u-dep")]);
        assert!(g.node("u-ghost").is_none());
        assert!(g.absent.has(&ident("ConfigMap", "ns", "ghost", "u-ghost")));
    }

    #[test]
    fn virtual_owner_observed_later_becomes_a_real_node() {
        let mut g = Graph::default();
        g.process(GraphEvent::Upsert(observed(
            "Secret",
            "dep",
            "u-dep",
            vec![owner("ConfigMap", "own", "u-own", None)],
        )));
        let work = g.process(GraphEvent::Upsert(observed(
            "ConfigMap",
            "own",
            "u-own",
            vec![],
        )));
        assert!(work.is_empty());
        assert!(g.node("u-own").is_some_and(|n| n.observed));
        assert_eq!(g.dependents("u-own").len(), 1);
        assert_eq!(
            g.observed_from("configmaps.v1."),
            vec![ident("ConfigMap", "ns", "own", "u-own")]
        );
    }

    #[test]
    fn deleting_an_owner_queues_its_dependents() {
        let mut g = Graph::default();
        g.process(GraphEvent::Upsert(observed(
            "ConfigMap",
            "own",
            "u-own",
            vec![],
        )));
        g.process(GraphEvent::Upsert(observed(
            "Secret",
            "dep",
            "u-dep",
            vec![owner("ConfigMap", "own", "u-own", None)],
        )));
        let work = g.process(GraphEvent::Delete(observed(
            "ConfigMap",
            "own",
            "u-own",
            vec![],
        )));
        assert_eq!(work, vec![del("u-dep")]);
        assert!(g.absent.has(&ident("ConfigMap", "ns", "own", "u-own")));
        // The dependent still names the owner; a later owner-less update unlinks nothing.
        let work = g.process(GraphEvent::Upsert(observed(
            "Secret",
            "dep",
            "u-dep",
            vec![],
        )));
        assert!(work.is_empty());
    }

    #[test]
    fn foreground_owner_keeps_its_finalizer_while_blocking_dependents_remain() {
        let mut g = Graph::default();
        let own = observed("ConfigMap", "own", "u-own", vec![]);
        g.process(GraphEvent::Upsert(own.clone()));
        g.process(GraphEvent::Upsert(observed(
            "Secret",
            "blocker",
            "u-b",
            vec![owner("ConfigMap", "own", "u-own", Some(true))],
        )));
        g.process(GraphEvent::Upsert(observed(
            "Secret",
            "loose",
            "u-l",
            vec![owner("ConfigMap", "own", "u-own", None)],
        )));

        // kubectl delete --cascade=foreground: the API server sets the finalizer.
        let mut work = g.process(GraphEvent::Upsert(deleting(
            own.clone(),
            &["foregroundDeletion"],
        )));
        work.sort();
        assert_eq!(work, vec![del("u-b"), del("u-l"), del("u-own")]);
        assert!(g.node("u-own").is_some_and(|n| n.deleting_dependents));
        assert_eq!(
            g.foreground_step("u-own"),
            ForegroundStep::Wait {
                attempt_to_delete: vec!["u-b".into()]
            }
        );
        // The same state seen again (a relist) is no new transition.
        assert!(g
            .process(GraphEvent::Upsert(deleting(
                own.clone(),
                &["foregroundDeletion"]
            )))
            .is_empty());

        // The blocker goes away: the owner is checked again and may drop its finalizer.
        let work = g.process(GraphEvent::Delete(observed(
            "Secret",
            "blocker",
            "u-b",
            vec![owner("ConfigMap", "own", "u-own", Some(true))],
        )));
        assert_eq!(work, vec![del("u-own")]);
        assert_eq!(g.foreground_step("u-own"), ForegroundStep::RemoveFinalizer);
    }

    #[test]
    fn a_reference_that_stops_blocking_requeues_the_waiting_owner() {
        let mut g = Graph::default();
        let own = observed("ConfigMap", "own", "u-own", vec![]);
        g.process(GraphEvent::Upsert(own.clone()));
        g.process(GraphEvent::Upsert(observed(
            "Secret",
            "dep",
            "u-dep",
            vec![owner("ConfigMap", "own", "u-own", Some(true))],
        )));
        g.process(GraphEvent::Upsert(deleting(own, &["foregroundDeletion"])));
        let work = g.process(GraphEvent::Upsert(observed(
            "Secret",
            "dep",
            "u-dep",
            vec![owner("ConfigMap", "own", "u-own", Some(false))],
        )));
        assert_eq!(work, vec![del("u-own")]);
        assert_eq!(g.foreground_step("u-own"), ForegroundStep::RemoveFinalizer);
    }

    #[test]
    fn orphan_owner_removes_references_then_its_finalizer() {
        let mut g = Graph::default();
        let own = observed("ConfigMap", "own", "u-own", vec![]);
        g.process(GraphEvent::Upsert(own.clone()));
        for (name, uid) in [("d1", "u-d1"), ("d2", "u-d2")] {
            g.process(GraphEvent::Upsert(observed(
                "Secret",
                name,
                uid,
                vec![
                    owner("ConfigMap", "own", "u-own", None),
                    owner("ConfigMap", "other", "u-other", None),
                ],
            )));
        }
        // kubectl delete --cascade=orphan: the API server sets the finalizer.
        let work = g.process(GraphEvent::Upsert(deleting(own.clone(), &["orphan"])));
        assert_eq!(work, vec![Work::AttemptToOrphan("u-own".into())]);

        // Every dependent gets a patch that drops the owner and keeps the other reference.
        let dependents = g.dependents("u-own");
        assert_eq!(dependents.len(), 2);
        for d in &dependents {
            assert_eq!(
                delete_owner_refs_smp(&d.uid, &["u-own".into()]),
                json!({"metadata": {"ownerReferences": [{"$patch": "delete", "uid": "u-own"}], "uid": d.uid}})
            );
        }
        // Once the dependents are patched, the graph unlinks them; then the finalizer goes.
        for (name, uid) in [("d1", "u-d1"), ("d2", "u-d2")] {
            g.process(GraphEvent::Upsert(observed(
                "Secret",
                name,
                uid,
                vec![owner("ConfigMap", "other", "u-other", None)],
            )));
        }
        assert!(g.dependents("u-own").is_empty());
        assert_eq!(
            remove_finalizer_patch(&["orphan".into()], ORPHAN_FINALIZER, "9"),
            Some(json!({"metadata": {"resourceVersion": "9", "finalizers": null}}))
        );
    }

    #[test]
    fn mismatched_coordinates_are_verified() {
        let mut g = Graph::default();
        g.process(GraphEvent::Upsert(observed(
            "ConfigMap",
            "own",
            "u-own",
            vec![],
        )));
        // A reference with the right uid but another name: the dependent is checked.
        let work = g.process(GraphEvent::Upsert(observed(
            "Secret",
            "dep",
            "u-dep",
            vec![owner("ConfigMap", "wrong-name", "u-own", None)],
        )));
        assert_eq!(work, vec![del("u-dep")]);
        // A namespaced owner in another namespace is also suspicious.
        let mut other_ns = observed(
            "Secret",
            "dep2",
            "u-dep2",
            vec![owner("ConfigMap", "own", "u-own", None)],
        );
        other_ns.identity.namespace = "elsewhere".into();
        assert_eq!(g.process(GraphEvent::Upsert(other_ns)), vec![del("u-dep2")]);
    }

    #[test]
    fn virtual_delete_of_one_identity_keeps_a_node_others_name_differently() {
        let mut g = Graph::default();
        g.process(GraphEvent::Upsert(observed(
            "Secret",
            "a",
            "u-a",
            vec![owner("ConfigMap", "own", "u-own", None)],
        )));
        g.process(GraphEvent::Upsert(observed(
            "Secret",
            "b",
            "u-b",
            vec![owner("ConfigMap", "own-other-name", "u-own", None)],
        )));
        let work = g.process(GraphEvent::VirtualDelete(ident(
            "ConfigMap",
            "ns",
            "own",
            "u-own",
        )));
        // "a" agrees with the verified-absent identity; "b" does not, so the node stays
        // under b's coordinates and is verified again.
        assert_eq!(work, vec![del("u-a"), del("u-own")]);
        assert_eq!(
            g.node("u-own").map(|n| n.identity.clone()),
            Some(ident("ConfigMap", "ns", "own-other-name", "u-own"))
        );
    }

    #[test]
    fn absent_owner_cache_is_bounded() {
        let mut c = AbsentOwners::new(2);
        for i in 0..3 {
            c.add(ident("ConfigMap", "ns", "x", &i.to_string()));
        }
        assert!(!c.has(&ident("ConfigMap", "ns", "x", "0")));
        assert!(c.has(&ident("ConfigMap", "ns", "x", "2")));
    }

    fn raw(name: &str, kind: &str, namespaced: bool, verbs: &[&str]) -> RawResource {
        RawResource {
            name: name.into(),
            kind: kind.into(),
            namespaced,
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
        }
    }

    const ALL: &[&str] = &[
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ];

    fn groups() -> Vec<DiscoveredGroup> {
        vec![
            DiscoveredGroup {
                name: "".into(),
                preferred_version: "v1".into(),
                versions: vec![DiscoveredVersion {
                    version: "v1".into(),
                    group_version: "v1".into(),
                    resources: vec![
                        raw("configmaps", "ConfigMap", true, ALL),
                        raw("events", "Event", true, ALL),
                        raw("namespaces", "Namespace", false, ALL),
                        raw("namespaces/finalize", "Namespace", false, &["update"]),
                        raw("bindings", "Binding", true, &["create"]),
                    ],
                }],
            },
            DiscoveredGroup {
                name: "example.com".into(),
                preferred_version: "v2".into(),
                versions: vec![
                    DiscoveredVersion {
                        version: "v1".into(),
                        group_version: "example.com/v1".into(),
                        resources: vec![
                            raw("widgets", "Widget", true, ALL),
                            raw("olds", "Old", true, ALL),
                        ],
                    },
                    DiscoveredVersion {
                        version: "v2".into(),
                        group_version: "example.com/v2".into(),
                        resources: vec![raw("widgets", "Widget", true, ALL)],
                    },
                ],
            },
        ]
    }

    #[test]
    fn preferred_resources_dedupe_by_group_and_resource() {
        let names: Vec<(String, String)> = preferred_resources(&groups())
            .into_iter()
            .map(|r| (r.api_version(), r.resource))
            .collect();
        assert_eq!(
            names,
            vec![
                ("v1".into(), "bindings".into()),
                ("v1".into(), "configmaps".into()),
                ("v1".into(), "events".into()),
                ("v1".into(), "namespaces".into()),
                ("example.com/v1".into(), "olds".into()),
                ("example.com/v2".into(), "widgets".into()),
            ]
        );
        let deletable: Vec<String> = deletable_resources(&groups())
            .into_iter()
            .map(|r| r.resource)
            .collect();
        assert_eq!(
            deletable,
            vec!["configmaps", "namespaces", "olds", "widgets"]
        );
    }

    #[test]
    fn kind_map_knows_every_version() {
        let kinds = KindMap::new(&groups());
        assert_eq!(
            kinds
                .get("example.com/v1", "Widget")
                .map(|r| r.version.as_str()),
            Some("v1")
        );
        assert_eq!(
            kinds
                .get("example.com/v2", "Widget")
                .map(|r| r.version.as_str()),
            Some("v2")
        );
        assert_eq!(
            kinds.get("v1", "Namespace").map(|r| r.namespaced),
            Some(false)
        );
        assert!(kinds.get("apps/v1", "Deployment").is_none());
    }
}
