//! The garbage collector, after upstream's `pkg/controller/garbagecollector`.
//!
//! Discovery picks every resource that supports list, watch and delete; one metadata-only
//! watch per resource feeds the ownerReferences graph ([`plan::Graph`]); the graph hands
//! uids to two work queues: *attempt to delete* (an object whose owners may be gone, an
//! owner deleted in the foreground) and *attempt to orphan* (an owner deleted with the
//! `orphan` finalizer). Workers verify with live GETs before acting, as upstream does, and
//! failed items come back with an exponential back-off. Discovery runs again every 30 s so
//! that new resource types get a watch.

pub(crate) mod discovery;
pub mod plan;
pub(crate) mod queue;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::join_all;
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy,
};
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Client;

use crate::ownership::is_status;
use tokio::task::JoinHandle;

use plan::{
    Decision, ForegroundStep, Graph, GraphEvent, Identity, KindMap, Observed, Propagation,
    RefClass, ResourceType, Work, FOREGROUND_FINALIZER, ORPHAN_FINALIZER,
};
use queue::Queue;

/// How often discovery runs again to pick up new resource types.
const RESYNC_PERIOD: Duration = Duration::from_secs(30);
/// How long the workers wait for the first full graph before starting anyway.
const INITIAL_SYNC_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a periodic resync holds the workers for new watches to list.
const RESYNC_SYNC_TIMEOUT: Duration = Duration::from_secs(30);
/// Workers per queue (upstream's `--concurrent-gc-syncs` is 20).
const WORKERS: usize = 10;

type Meta = PartialObjectMeta<DynamicObject>;

/// Why one item could not be processed.
#[derive(Debug, thiserror::Error)]
enum GcError {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    /// The kind is not (yet) known to discovery; retried, a later discovery may know it.
    #[error("unable to get REST mapping for {0}")]
    RestMapping(String),
    /// A cluster-scoped object names a namespaced owner: never retried.
    #[error("cluster-scoped objects cannot refer to namespaced owners")]
    NamespacedOwnerOfClusterScopedObject,
    #[error("{0}")]
    Other(String),
}

/// What a worker does with the item afterwards.
enum Outcome {
    Forget,
    Requeue,
}

fn is_not_found(err: &GcError) -> bool {
    matches!(err, GcError::Kube(e) if is_status(e, 404))
}

struct Monitor {
    task: JoinHandle<()>,
    synced: Arc<AtomicBool>,
}

struct Gc {
    client: Client,
    graph: Mutex<Graph>,
    kinds: Mutex<KindMap>,
    monitors: Mutex<HashMap<String, Monitor>>,
    /// Held for reading while an item is processed; for writing while new watches sync.
    workers: tokio::sync::RwLock<()>,
    attempt_to_delete: Queue<String>,
    attempt_to_orphan: Queue<String>,
}

/// Runs the garbage collector until the process ends.
pub async fn run(client: kube::Client) -> crate::Result<()> {
    let gc = Arc::new(Gc {
        client,
        graph: Mutex::new(Graph::default()),
        kinds: Mutex::new(KindMap::default()),
        monitors: Mutex::new(HashMap::new()),
        workers: tokio::sync::RwLock::new(()),
        attempt_to_delete: Queue::new(Duration::from_millis(5), Duration::from_secs(60)),
        attempt_to_orphan: Queue::new(Duration::from_millis(5), Duration::from_secs(60)),
    });
    while let Err(e) = gc.sync_resources(false).await {
        tracing::warn!(error = %e, "garbage collector: discovery failed, retrying");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    gc.wait_for_sync(INITIAL_SYNC_TIMEOUT).await;
    tracing::info!(
        objects = gc.graph().len(),
        "garbage collector: graph synced, starting workers"
    );
    for _ in 0..WORKERS {
        tokio::spawn(gc.clone().delete_worker());
        tokio::spawn(gc.clone().orphan_worker());
    }
    let mut tick = tokio::time::interval(RESYNC_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = gc.sync_resources(true).await {
            tracing::warn!(error = %e, "garbage collector: discovery failed; keeping the current watches");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn observed_from(rt: &ResourceType, meta: &Meta) -> Option<Observed> {
    let m = &meta.metadata;
    let uid = m.uid.clone().filter(|u| !u.is_empty())?;
    Some(Observed {
        identity: Identity {
            kind: rt.kind.clone(),
            api_version: rt.api_version(),
            namespace: m.namespace.clone().unwrap_or_default(),
            name: m.name.clone().unwrap_or_default(),
            uid,
        },
        source: rt.key(),
        owners: m.owner_references.clone().unwrap_or_default(),
        deleting: m.deletion_timestamp.is_some(),
        finalizers: m.finalizers.clone().unwrap_or_default(),
    })
}

fn propagation(p: Propagation) -> PropagationPolicy {
    match p {
        Propagation::Background => PropagationPolicy::Background,
        Propagation::Foreground => PropagationPolicy::Foreground,
        Propagation::Orphan => PropagationPolicy::Orphan,
    }
}

impl Gc {
    fn graph(&self) -> MutexGuard<'_, Graph> {
        lock(&self.graph)
    }

    /// Applies one graph change and queues the work it causes.
    fn process(&self, event: GraphEvent) {
        let work = self.graph().process(event);
        self.enqueue(work);
    }

    fn enqueue(&self, work: Vec<Work>) {
        for w in work {
            match w {
                Work::AttemptToDelete(uid) => self.attempt_to_delete.add(uid),
                Work::AttemptToOrphan(uid) => self.attempt_to_orphan.add(uid),
            }
        }
    }

    /// Discovery → watches: starts a watch for every new deletable resource, stops the
    /// watches of resources that are gone, refreshes the kind mapping.
    ///
    /// With `pause_workers`, new watches are started while the workers are held, and the
    /// workers resume once the new watches have listed (at most [`RESYNC_SYNC_TIMEOUT`]),
    /// so that no decision is taken on a graph that misses a whole resource type.
    async fn sync_resources(self: &Arc<Self>, pause_workers: bool) -> Result<(), GcError> {
        let found = discovery::discover(&self.client).await?;
        if let Some(failure) = found.failure() {
            tracing::warn!(%failure, "garbage collector: failed to discover some groups");
        }
        let deletable = plan::deletable_resources(&found.groups);
        if deletable.is_empty() {
            return Err(GcError::Other("no resources reported by discovery".into()));
        }
        *lock(&self.kinds) = KindMap::new(&found.groups);
        let wanted: HashMap<String, ResourceType> =
            deletable.into_iter().map(|r| (r.key(), r)).collect();
        let adds = {
            let monitors = lock(&self.monitors);
            wanted.keys().any(|k| !monitors.contains_key(k))
        };
        let paused = if pause_workers && adds {
            Some(self.workers.write().await)
        } else {
            None
        };
        self.resync_monitors(&wanted, &found.failed);
        if paused.is_some() {
            self.wait_for_sync(RESYNC_SYNC_TIMEOUT).await;
        }
        Ok(())
    }

    /// Stops the watches of resources that are gone (unless their group version merely
    /// failed discovery) and starts those of new ones.
    fn resync_monitors(
        self: &Arc<Self>,
        wanted: &HashMap<String, ResourceType>,
        failed: &std::collections::BTreeMap<String, String>,
    ) {
        let mut monitors = lock(&self.monitors);
        let stale: Vec<String> = monitors
            .keys()
            .filter(|k| {
                !wanted.contains_key(*k) && !failed.keys().any(|gv| k.ends_with(&gv_suffix(gv)))
            })
            .cloned()
            .collect();
        for key in stale {
            if let Some(m) = monitors.remove(&key) {
                tracing::info!(resource = %key, "garbage collector: resource gone, stopping its watch");
                m.task.abort();
            }
        }
        for (key, rt) in wanted {
            if monitors.contains_key(key) {
                continue;
            }
            tracing::info!(resource = %key, "garbage collector: watching");
            let synced = Arc::new(AtomicBool::new(false));
            let task = tokio::spawn(self.clone().monitor(rt.clone(), synced.clone()));
            monitors.insert(key.clone(), Monitor { task, synced });
        }
    }

    async fn wait_for_sync(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let pending: Vec<String> = lock(&self.monitors)
                .iter()
                .filter(|(_, m)| !m.synced.load(Ordering::Relaxed))
                .map(|(k, _)| k.clone())
                .collect();
            if pending.is_empty() {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    ?pending,
                    "garbage collector: timed out waiting for watches to sync"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// One metadata-only watch, feeding the graph. A relist that no longer shows an object
    /// counts as its deletion.
    async fn monitor(self: Arc<Self>, rt: ResourceType, synced: Arc<AtomicBool>) {
        let api: Api<Meta> = Api::all_with(self.client.clone(), &rt.api_resource());
        let source = rt.key();
        let mut stream = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut listed: Option<HashSet<String>> = None;
        while let Some(event) = stream.next().await {
            match event {
                Ok(Event::Init) => listed = Some(HashSet::new()),
                Ok(Event::InitApply(meta)) => {
                    if let Some(o) = observed_from(&rt, &meta) {
                        if let Some(seen) = listed.as_mut() {
                            seen.insert(o.identity.uid.clone());
                        }
                        self.process(GraphEvent::Upsert(o));
                    }
                }
                Ok(Event::InitDone) => {
                    let seen = listed.take().unwrap_or_default();
                    let gone: Vec<Identity> = self
                        .graph()
                        .observed_from(&source)
                        .into_iter()
                        .filter(|i| !seen.contains(&i.uid))
                        .collect();
                    for identity in gone {
                        self.process(GraphEvent::Delete(Observed {
                            identity,
                            source: source.clone(),
                            ..Observed::default()
                        }));
                    }
                    if !synced.swap(true, Ordering::Relaxed) {
                        tracing::debug!(resource = %source, "garbage collector: watch synced");
                    }
                }
                Ok(Event::Apply(meta)) => {
                    if let Some(o) = observed_from(&rt, &meta) {
                        self.process(GraphEvent::Upsert(o));
                    }
                }
                Ok(Event::Delete(meta)) => {
                    if let Some(o) = observed_from(&rt, &meta) {
                        self.process(GraphEvent::Delete(o));
                    }
                }
                Err(e) => {
                    tracing::warn!(resource = %source, error = %e, "garbage collector: watch failed");
                }
            }
        }
    }

    async fn delete_worker(self: Arc<Self>) {
        loop {
            let uid = self.attempt_to_delete.get().await;
            let _running = self.workers.read().await;
            match self.attempt_to_delete_item(&uid).await {
                Ok(Outcome::Forget) => self.attempt_to_delete.forget(&uid),
                Ok(Outcome::Requeue) => self.attempt_to_delete.add_rate_limited(uid.clone()),
                Err(GcError::NamespacedOwnerOfClusterScopedObject) => {
                    tracing::info!(uid, "garbage collector: cluster-scoped object refers to a namespaced owner; ignored");
                    self.attempt_to_delete.forget(&uid);
                }
                Err(e) => {
                    let item = self.graph().node(&uid).map(|n| n.identity.to_string());
                    tracing::warn!(item = item.as_deref().unwrap_or(&uid), error = %e, "garbage collector: error syncing item, will retry");
                    self.attempt_to_delete.add_rate_limited(uid.clone());
                }
            }
            self.attempt_to_delete.done(&uid);
        }
    }

    async fn orphan_worker(self: Arc<Self>) {
        loop {
            let uid = self.attempt_to_orphan.get().await;
            let _running = self.workers.read().await;
            match self.attempt_to_orphan_item(&uid).await {
                Ok(()) => self.attempt_to_orphan.forget(&uid),
                Err(e) => {
                    tracing::warn!(uid, error = %e, "garbage collector: orphaning dependents failed, will retry");
                    self.attempt_to_orphan.add_rate_limited(uid.clone());
                }
            }
            self.attempt_to_orphan.done(&uid);
        }
    }

    fn mapping(&self, api_version: &str, kind: &str) -> Result<ResourceType, GcError> {
        lock(&self.kinds)
            .get(api_version, kind)
            .cloned()
            .ok_or_else(|| GcError::RestMapping(format!("{api_version}, Kind={kind}")))
    }

    /// A metadata client for `rt` in `namespace` (ignored for cluster-scoped kinds).
    fn meta_api(&self, rt: &ResourceType, namespace: &str) -> Api<Meta> {
        let ar = rt.api_resource();
        if rt.namespaced {
            Api::namespaced_with(self.client.clone(), namespace, &ar)
        } else {
            Api::all_with(self.client.clone(), &ar)
        }
    }

    fn dynamic_api(&self, rt: &ResourceType, namespace: &str) -> Api<DynamicObject> {
        let ar = rt.api_resource();
        if rt.namespaced {
            Api::namespaced_with(self.client.clone(), namespace, &ar)
        } else {
            Api::all_with(self.client.clone(), &ar)
        }
    }

    /// Upstream `getObject`: the live metadata of `identity`.
    async fn get_object(&self, identity: &Identity) -> Result<Meta, GcError> {
        let rt = self.mapping(&identity.api_version, &identity.kind)?;
        if rt.namespaced && identity.namespace.is_empty() {
            return Err(GcError::NamespacedOwnerOfClusterScopedObject);
        }
        Ok(self
            .meta_api(&rt, &identity.namespace)
            .get(&identity.name)
            .await?)
    }

    /// Upstream `attemptToDeleteWorker` + `attemptToDeleteItem`.
    async fn attempt_to_delete_item(&self, uid: &str) -> Result<Outcome, GcError> {
        let (
            identity,
            observed,
            being_deleted,
            deleting_dependents,
            has_dependents,
            a_dependent_deletes,
        ) = {
            let graph = self.graph();
            let Some(node) = graph.node(uid) else {
                return Ok(Outcome::Forget);
            };
            (
                node.identity.clone(),
                node.observed,
                node.being_deleted,
                node.deleting_dependents,
                !node.dependents.is_empty(),
                graph.a_dependent_deletes_dependents(uid),
            )
        };
        // Requeue a node that no watch has shown yet: it may have been added and removed
        // while a watch was re-established.
        let done = if observed {
            Outcome::Forget
        } else {
            Outcome::Requeue
        };
        tracing::debug!(item = %identity, virtual_node = !observed, "garbage collector: processing item");
        if being_deleted && !deleting_dependents {
            return Ok(done);
        }
        let latest = match self.get_object(&identity).await {
            Ok(latest) if latest.metadata.uid.as_deref() == Some(identity.uid.as_str()) => latest,
            Ok(_) => {
                tracing::debug!(item = %identity, "garbage collector: uid differs, item not found; virtual delete");
                self.process(GraphEvent::VirtualDelete(identity));
                return Ok(Outcome::Forget);
            }
            Err(e) if is_not_found(&e) => {
                tracing::debug!(item = %identity, "garbage collector: item not found; virtual delete");
                self.process(GraphEvent::VirtualDelete(identity));
                return Ok(Outcome::Forget);
            }
            Err(e) => return Err(e),
        };
        if deleting_dependents {
            let step = self.graph().foreground_step(uid);
            match step {
                ForegroundStep::RemoveFinalizer => {
                    tracing::info!(item = %identity, "garbage collector: no blocking dependents left, removing the foregroundDeletion finalizer");
                    self.remove_finalizer(&identity, FOREGROUND_FINALIZER)
                        .await?;
                }
                ForegroundStep::Wait { attempt_to_delete } => {
                    for dep in attempt_to_delete {
                        self.attempt_to_delete.add(dep);
                    }
                }
            }
            return Ok(done);
        }
        let owners = latest.metadata.owner_references.clone().unwrap_or_default();
        if owners.is_empty() {
            return Ok(done);
        }
        let mut classified = Vec::with_capacity(owners.len());
        for owner in &owners {
            let class = self.classify(owner, &identity).await?;
            classified.push((owner.clone(), class));
        }
        let finalizers = latest.metadata.finalizers.clone().unwrap_or_default();
        match plan::decide(
            &classified,
            &finalizers,
            has_dependents,
            a_dependent_deletes,
        ) {
            Decision::Keep => {}
            Decision::RemoveOwnerRefs(uids) => {
                tracing::info!(item = %identity, owners = ?uids, "garbage collector: removing dangling and waiting owner references");
                self.patch_with_fallback(
                    &identity,
                    plan::delete_owner_refs_smp(&identity.uid, &uids),
                    |refs, rv| plan::delete_owner_refs_merge(refs, rv, &uids),
                )
                .await?;
            }
            Decision::Delete {
                policy,
                unblock_first,
            } => {
                if unblock_first {
                    tracing::info!(item = %identity, "garbage collector: owner and dependent both wait for dependents; making the item's owner references non-blocking");
                    self.patch_with_fallback(
                        &identity,
                        plan::unblock_owner_refs_smp(&identity.uid, &owners),
                        plan::unblock_owner_refs_merge,
                    )
                    .await?;
                }
                tracing::info!(item = %identity, ?policy, "garbage collector: deleting object");
                self.delete_object(&identity, policy).await?;
            }
        }
        Ok(done)
    }

    /// Upstream `isDangling` + `classifyReferences` for one reference of `item`.
    async fn classify(&self, owner: &OwnerReference, item: &Identity) -> Result<RefClass, GcError> {
        let cluster_key = Identity::from_owner(owner, "");
        let namespaced_key = Identity::from_owner(owner, &item.namespace);
        {
            let graph = self.graph();
            if graph.absent.has(&cluster_key) || graph.absent.has(&namespaced_key) {
                return Ok(RefClass::Dangling);
            }
        }
        let rt = self.mapping(&owner.api_version, &owner.kind)?;
        if item.namespace.is_empty() && rt.namespaced {
            return Err(GcError::NamespacedOwnerOfClusterScopedObject);
        }
        let key = if rt.namespaced {
            namespaced_key
        } else {
            cluster_key
        };
        match self.meta_api(&rt, &item.namespace).get(&owner.name).await {
            Err(e) if is_status(&e, 404) => {
                self.graph().absent.add(key);
                Ok(RefClass::Dangling)
            }
            Err(e) => Err(e.into()),
            Ok(live) if live.metadata.uid.as_deref() != Some(owner.uid.as_str()) => {
                self.graph().absent.add(key);
                Ok(RefClass::Dangling)
            }
            Ok(live) => {
                let finalizers = live.metadata.finalizers.unwrap_or_default();
                if plan::waits_for_dependents(
                    live.metadata.deletion_timestamp.is_some(),
                    &finalizers,
                ) {
                    Ok(RefClass::WaitingForDependentsDeletion)
                } else {
                    Ok(RefClass::Solid)
                }
            }
        }
    }

    async fn delete_object(&self, identity: &Identity, policy: Propagation) -> Result<(), GcError> {
        let rt = self.mapping(&identity.api_version, &identity.kind)?;
        let params = DeleteParams {
            propagation_policy: Some(propagation(policy)),
            preconditions: Some(Preconditions {
                uid: Some(identity.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        self.dynamic_api(&rt, &identity.namespace)
            .delete(&identity.name, &params)
            .await?;
        Ok(())
    }

    /// Upstream `patch`: a strategic merge patch, or when the kind does not support it
    /// (415) a JSON merge patch built from the live object.
    async fn patch_with_fallback(
        &self,
        identity: &Identity,
        smp: serde_json::Value,
        merge: impl FnOnce(&[OwnerReference], &str) -> serde_json::Value,
    ) -> Result<(), GcError> {
        let rt = self.mapping(&identity.api_version, &identity.kind)?;
        let api = self.meta_api(&rt, &identity.namespace);
        match api
            .patch(
                &identity.name,
                &PatchParams::default(),
                &Patch::Strategic(smp),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 415) => {
                let latest = api.get(&identity.name).await?;
                let refs = latest.metadata.owner_references.unwrap_or_default();
                let rv = latest.metadata.resource_version.unwrap_or_default();
                api.patch(
                    &identity.name,
                    &PatchParams::default(),
                    &Patch::Merge(merge(&refs, &rv)),
                )
                .await?;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Upstream `removeFinalizer`: merge patch pinned to the resourceVersion read, retried
    /// on conflicts.
    async fn remove_finalizer(&self, identity: &Identity, finalizer: &str) -> Result<(), GcError> {
        let rt = self.mapping(&identity.api_version, &identity.kind)?;
        let api = self.meta_api(&rt, &identity.namespace);
        let mut delay = Duration::from_millis(10);
        for _ in 0..4 {
            let latest = match api.get(&identity.name).await {
                Ok(latest) => latest,
                Err(e) if is_status(&e, 404) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            if latest.metadata.uid.as_deref() != Some(identity.uid.as_str()) {
                return Ok(());
            }
            let finalizers = latest.metadata.finalizers.unwrap_or_default();
            let rv = latest.metadata.resource_version.unwrap_or_default();
            let Some(patch) = plan::remove_finalizer_patch(&finalizers, finalizer, &rv) else {
                return Ok(());
            };
            match api
                .patch(
                    &identity.name,
                    &PatchParams::default(),
                    &Patch::Merge(patch),
                )
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if is_status(&e, 404) => return Ok(()),
                Err(e) if is_status(&e, 409) => {
                    tokio::time::sleep(delay).await;
                    delay *= 5;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(GcError::Other(format!(
            "removing the {finalizer} finalizer from {identity} kept conflicting; will retry"
        )))
    }

    /// Upstream `attemptToOrphanWorker`: every dependent loses its reference to the
    /// owner, then the owner loses the `orphan` finalizer.
    async fn attempt_to_orphan_item(&self, uid: &str) -> Result<(), GcError> {
        let (owner, dependents) = {
            let graph = self.graph();
            let Some(node) = graph.node(uid) else {
                return Ok(());
            };
            (node.identity.clone(), graph.dependents(uid))
        };
        let owner_uid = vec![owner.uid.clone()];
        let results = join_all(dependents.iter().map(|dep| {
            let owner_uid = owner_uid.clone();
            async move {
                let r = self
                    .patch_with_fallback(
                        dep,
                        plan::delete_owner_refs_smp(&dep.uid, &owner_uid),
                        |refs, rv| plan::delete_owner_refs_merge(refs, rv, &owner_uid),
                    )
                    .await;
                match r {
                    Err(e) if !is_not_found(&e) => Err(format!("orphaning {dep} failed, {e}")),
                    _ => Ok(()),
                }
            }
        }))
        .await;
        let errors: Vec<String> = results.into_iter().filter_map(Result::err).collect();
        if !errors.is_empty() {
            return Err(GcError::Other(format!(
                "failed to orphan dependents of owner {owner}, got errors: {}",
                errors.join(", ")
            )));
        }
        tracing::info!(owner = %owner, dependents = dependents.len(), "garbage collector: dependents orphaned, removing the orphan finalizer");
        self.remove_finalizer(&owner, ORPHAN_FINALIZER).await
    }
}

/// The `.version.group` end of a monitor key for the group version `gv`.
fn gv_suffix(gv: &str) -> String {
    match gv.split_once('/') {
        Some((group, version)) => format!(".{version}.{group}"),
        None => format!(".{gv}."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_keys_of_failed_group_versions_are_recognised() {
        let rt = ResourceType {
            group: "apps".into(),
            version: "v1".into(),
            resource: "deployments".into(),
            ..ResourceType::default()
        };
        assert!(rt.key().ends_with(&gv_suffix("apps/v1")));
        let core = ResourceType {
            version: "v1".into(),
            resource: "pods".into(),
            ..ResourceType::default()
        };
        assert!(core.key().ends_with(&gv_suffix("v1")));
        assert!(!core.key().ends_with(&gv_suffix("apps/v1")));
    }
}
