//! The scheduling loop: watches keep the [`Snapshot`] and the [`SchedulingQueue`] current;
//! one task pops a pod, runs [`framework::schedule`] against the snapshot, assumes the pod
//! onto the chosen node (so the next cycle already counts it) and binds it through
//! `pods/binding` in the background; a pod that fits nowhere gets `PodScheduled=False`
//! with upstream's message and a FailedScheduling event, and waits in the queue until a
//! cluster event may help.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::ResourceExt;
use serde_json::json;

use keelson_common::events::{to_time, EventSink, EventType};

use crate::framework::{self, pod_key, SchedulerConfig, Snapshot};
use crate::preemption;
use crate::queue::{QueueConfig, QueuedPod, SchedulingQueue};

/// Follows every object of `api`'s kind, handing each event to `handle`; watch errors
/// are logged and the watch resumes with back-off.
async fn watch_all<K>(api: Api<K>, mut handle: impl FnMut(Event<K>))
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    let mut events = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(event) => handle(event.modify(strip_managed_fields)),
            Err(e) => tracing::warn!(kind = %K::kind(&()), error = %e, "watch failed; retrying"),
        }
    }
}

/// managedFields are half of a typical object and the scheduler never reads them; upstream
/// informers drop them too (TransformStripManagedFields).
fn strip_managed_fields<K: kube::Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}

/// The scheduler's state, shared by the watch handlers, the loop and the binders.
pub struct Scheduler {
    client: kube::Client,
    name: String,
    snapshot: Mutex<Snapshot>,
    queue: Arc<SchedulingQueue<Arc<Pod>>>,
    /// Pods assumed onto a node whose binding has not been seen back yet: key → node.
    assumed: Mutex<HashMap<String, String>>,
    events: EventSink,
    config: SchedulerConfig,
}

fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Scheduler {
    /// A scheduler for pods whose `spec.schedulerName` is `name`.
    pub fn new(client: kube::Client, name: &str) -> Arc<Scheduler> {
        Arc::new(Scheduler {
            events: EventSink::new(client.clone(), name),
            client,
            name: name.to_string(),
            snapshot: Mutex::new(Snapshot::new()),
            queue: Arc::new(SchedulingQueue::new(QueueConfig::default())),
            assumed: Mutex::new(HashMap::new()),
            config: SchedulerConfig::default(),
        })
    }

    /// Runs the watches and the scheduling loop until the process ends.
    pub async fn run(self: Arc<Self>) {
        let _flusher = self.queue.spawn_flusher();
        let nodes = tokio::spawn(self.clone().watch_nodes());
        let pods = tokio::spawn(self.clone().watch_pods());
        let volumes = tokio::spawn(self.clone().watch_volumes());
        let loop_ = tokio::spawn(self.clone().schedule_loop());
        let _ = tokio::join!(nodes, pods, volumes, loop_);
    }

    /// (active, backoff, unschedulable) pods, for metrics and tests.
    pub fn queue_len(&self) -> (usize, usize, usize) {
        self.queue.len()
    }

    async fn watch_nodes(self: Arc<Self>) {
        watch_all(Api::<Node>::all(self.client.clone()), |event| match event {
            Event::Apply(node) | Event::InitApply(node) => {
                lock(&self.snapshot).upsert_node(node);
                self.queue.move_all_to_active_or_backoff("NodeChange", None);
            }
            Event::Delete(node) => {
                lock(&self.snapshot).remove_node(&node.name_any());
            }
            Event::Init | Event::InitDone => {}
        })
        .await;
    }

    /// Claims and volumes, for VolumeBinding; a change may make a waiting pod fit.
    async fn watch_volumes(self: Arc<Self>) {
        let claims = watch_all(
            Api::<PersistentVolumeClaim>::all(self.client.clone()),
            |event| match event {
                Event::Apply(pvc) | Event::InitApply(pvc) => {
                    lock(&self.snapshot).upsert_pvc(pvc);
                    self.queue.move_all_to_active_or_backoff("PvcChange", None);
                }
                Event::Delete(pvc) => {
                    let namespace = pvc.namespace().unwrap_or_default();
                    lock(&self.snapshot).remove_pvc(&namespace, &pvc.name_any());
                }
                Event::Init | Event::InitDone => {}
            },
        );
        let volumes =
            watch_all(
                Api::<PersistentVolume>::all(self.client.clone()),
                |event| match event {
                    Event::Apply(pv) | Event::InitApply(pv) => {
                        lock(&self.snapshot).upsert_pv(pv);
                        self.queue.move_all_to_active_or_backoff("PvChange", None);
                    }
                    Event::Delete(pv) => {
                        lock(&self.snapshot).remove_pv(&pv.name_any());
                    }
                    Event::Init | Event::InitDone => {}
                },
            );
        tokio::join!(claims, volumes);
    }

    async fn watch_pods(self: Arc<Self>) {
        watch_all(Api::<Pod>::all(self.client.clone()), |event| match event {
            Event::Apply(pod) | Event::InitApply(pod) => self.pod_changed(pod),
            Event::Delete(pod) => self.pod_deleted(&pod),
            Event::Init | Event::InitDone => {}
        })
        .await;
    }

    fn pod_changed(&self, pod: Pod) {
        let key = pod_key(&pod);
        if node_name(&pod).is_some() {
            // Bound (by us or anyone): account it where it runs.
            lock(&self.assumed).remove(&key);
            self.queue.delete(&key);
            let terminal = is_terminal(&pod);
            lock(&self.snapshot).add_pod(pod);
            if terminal {
                self.queue
                    .move_all_to_active_or_backoff("AssignedPodDelete", None);
            }
            return;
        }
        if lock(&self.assumed).contains_key(&key) {
            // Ours, on its way to its node: a stale unbound copy must not requeue it.
            return;
        }
        let ours = pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduler_name.as_deref())
            .unwrap_or("default-scheduler")
            == self.name;
        if !ours || pod.metadata.deletion_timestamp.is_some() || is_terminal(&pod) {
            self.queue.delete(&key);
            return;
        }
        let uid = pod.uid().unwrap_or_default();
        let priority = pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0);
        self.queue.add(&key, &uid, priority, Arc::new(pod));
    }

    fn pod_deleted(&self, pod: &Pod) {
        let key = pod_key(pod);
        self.queue.delete(&key);
        lock(&self.assumed).remove(&key);
        if lock(&self.snapshot).remove_pod(pod) {
            self.queue
                .move_all_to_active_or_backoff("AssignedPodDelete", None);
        }
    }

    async fn schedule_loop(self: Arc<Self>) {
        let mut next_start = 0usize;
        loop {
            let queued = self.queue.pop().await;
            let pod = queued.item.clone();
            let key = queued.key.clone();
            let (result, preemption) = {
                let snapshot = lock(&self.snapshot);
                match framework::schedule(&pod, &snapshot, &self.config, &mut next_start) {
                    Ok(decision) => (Ok(decision), None),
                    // No nodes at all: upstream says only that.
                    Err(fit) if fit.num_all_nodes() == 0 => (Err(fit), None),
                    Err(mut fit) => match preemption::preempt(&pod, &snapshot, &fit) {
                        Ok(preemption) => (Err(fit), Some(preemption)),
                        Err(message) => {
                            fit.set_post_filter_message(message);
                            (Err(fit), None)
                        }
                    },
                }
            };
            match result {
                Ok(decision) => {
                    let mut assumed = (*pod).clone();
                    assumed.spec.get_or_insert_with(Default::default).node_name =
                        Some(decision.node.clone());
                    lock(&self.assumed).insert(key.clone(), decision.node.clone());
                    lock(&self.snapshot).add_pod(assumed);
                    self.queue.done(&key);
                    tokio::spawn(self.clone().bind(queued, decision.node));
                }
                Err(fit) => {
                    let message = fit.to_string();
                    let plugins: BTreeSet<String> = fit
                        .unschedulable_plugins()
                        .iter()
                        .map(|p| p.to_string())
                        .collect();
                    self.queue.add_unschedulable(queued, plugins);
                    if let Some(preemption) = preemption {
                        tokio::spawn(self.clone().preempt(pod.clone(), preemption));
                    }
                    tokio::spawn(self.clone().report_unschedulable(pod, message));
                }
            }
        }
    }

    async fn bind(self: Arc<Self>, queued: QueuedPod<Arc<Pod>>, node: String) {
        let pod = queued.item.clone();
        let namespace = pod.namespace().unwrap_or_default();
        let name = pod.name_any();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let binding = json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace, "uid": pod.uid()},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        });
        let result: Result<serde_json::Value, kube::Error> = api
            .create_subresource("binding", &name, &PostParams::default(), &binding)
            .await;
        match result {
            Ok(_) => {
                let message = format!("Successfully assigned {namespace}/{name} to {node}");
                self.events
                    .publish(pod.as_ref(), EventType::Normal, "Scheduled", &message)
                    .await;
            }
            Err(e) => {
                // Forget the assumption; the pod is tried again unless it is gone or
                // someone else bound it (the watch then shows it bound).
                lock(&self.assumed).remove(&queued.key);
                lock(&self.snapshot).remove_pod(&pod);
                let gone = matches!(&e, kube::Error::Api(s) if s.code == 404 || s.code == 409);
                tracing::warn!(pod = %queued.key, %node, error = %e, "binding failed");
                if !gone {
                    self.queue.add_backoff(queued);
                }
            }
        }
    }

    /// Upstream's preemption: the pod is nominated to the node, the victims are marked
    /// with the DisruptionTarget condition and deleted; their deletion moves the pod back
    /// to the active queue, and the next cycle prefers the nominated node.
    async fn preempt(self: Arc<Self>, pod: Arc<Pod>, preemption: preemption::Preemption) {
        let namespace = pod.namespace().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let nominate = json!({"status": {"nominatedNodeName": preemption.node}});
        if let Err(e) = api
            .patch_status(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Merge(nominate),
            )
            .await
        {
            tracing::debug!(error = %e, "nominating a node failed");
        }
        for victim in preemption.victims {
            let victim_api: Api<Pod> =
                Api::namespaced(self.client.clone(), &victim.namespace().unwrap_or_default());
            let condition = json!({"status": {"conditions": [{
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "PreemptionByScheduler",
                "message": format!("{}: preempting to accommodate a higher priority pod", self.name),
                "lastTransitionTime": to_time(chrono::Utc::now()),
            }]}});
            let _ = victim_api
                .patch_status(
                    &victim.name_any(),
                    &PatchParams::default(),
                    &Patch::Strategic(condition),
                )
                .await;
            match victim_api
                .delete(&victim.name_any(), &kube::api::DeleteParams::default())
                .await
            {
                Ok(_) => {
                    let message = format!(
                        "Preempted by pod {} on node {}",
                        pod.uid().unwrap_or_default(),
                        preemption.node
                    );
                    self.events
                        .publish(victim.as_ref(), EventType::Normal, "Preempted", &message)
                        .await;
                }
                Err(e) => {
                    tracing::warn!(victim = %victim.name_any(), error = %e, "preempting failed")
                }
            }
        }
    }

    async fn report_unschedulable(self: Arc<Self>, pod: Arc<Pod>, message: String) {
        let namespace = pod.namespace().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let already = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| {
                c.iter().any(|c| {
                    c.type_ == "PodScheduled"
                        && c.status == "False"
                        && c.message.as_deref() == Some(message.as_str())
                })
            });
        if !already {
            let patch = json!({"status": {"conditions": [{
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
                "lastProbeTime": null,
                "lastTransitionTime": to_time(chrono::Utc::now()),
            }]}});
            if let Err(e) = api
                .patch_status(
                    &pod.name_any(),
                    &PatchParams::default(),
                    &Patch::Strategic(patch),
                )
                .await
            {
                tracing::debug!(error = %e, "recording PodScheduled=False failed");
            }
        }
        self.events
            .publish(
                pod.as_ref(),
                EventType::Warning,
                "FailedScheduling",
                &message,
            )
            .await;
    }
}
