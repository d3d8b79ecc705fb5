//! The ReplicaSet and ReplicationController controllers: one reconciler over
//! [`plan::ReplicaSetView`], which sees both kinds the same way.

pub mod plan;

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};

use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

use crate::informer::{resource_version, Informer};
use crate::ownership::{self, error_text, is_not_found};
use crate::{pods, Error, Result};
use keelson_common::events::{EventSink, EventType};
use plan::{ManageError, ReplicaSetView};

/// A kind the replica controller manages: ReplicaSet or ReplicationController.
pub trait Replicated:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + Debug
    + DeserializeOwned
    + Serialize
    + Send
    + Sync
    + 'static
{
    /// The name upstream gives the controller (the events' reporting controller).
    const CONTROLLER: &'static str;
    fn view(&self) -> Result<ReplicaSetView, String>;
    /// The stored status in ReplicaSet form (the fields are the same).
    fn current_status(&self) -> Option<ReplicaSetStatus>;
}

impl Replicated for ReplicaSet {
    const CONTROLLER: &'static str = "replicaset-controller";
    fn view(&self) -> Result<ReplicaSetView, String> {
        ReplicaSetView::from_replica_set(self)
    }
    fn current_status(&self) -> Option<ReplicaSetStatus> {
        self.status.clone()
    }
}

impl Replicated for ReplicationController {
    const CONTROLLER: &'static str = "replication-controller";
    fn view(&self) -> Result<ReplicaSetView, String> {
        ReplicaSetView::from_replication_controller(self)
    }
    fn current_status(&self) -> Option<ReplicaSetStatus> {
        self.status
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok())
            .and_then(|v| serde_json::from_value(v).ok())
    }
}

struct Context {
    client: kube::Client,
    pods: Informer<Pod>,
    events: EventSink,
}

/// Runs the controller for `K` until the process ends. `owners` is the shared watch of `K`
/// itself, `pod_events` a subscription to the shared pod watch.
pub async fn run<K: Replicated>(
    client: kube::Client,
    owners: (
        Informer<K>,
        impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
    ),
    pod_informer: Informer<Pod>,
    pod_events: impl Stream<Item = Result<Pod, watcher::Error>> + Send + 'static,
) {
    let (owner_informer, owner_events) = owners;
    let store = owner_informer.store().clone();
    let orphans_store = store.clone();
    let context = Arc::new(Context {
        events: EventSink::new(client.clone(), K::CONTROLLER),
        client,
        pods: pod_informer,
    });
    Controller::for_stream(owner_events, store)
        .watches_stream(pod_events, move |pod: Pod| owners_of(&orphans_store, &pod))
        .run(reconcile::<K>, error_policy::<K>, context)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(controller = K::CONTROLLER, error = %e, "reconcile failed");
            }
        })
        .await;
}

/// The controller of `pod` if it is a `K`; for an orphan, every `K` in its namespace whose
/// selector matches (one of them will adopt it).
fn owners_of<K: Replicated>(store: &Store<K>, pod: &Pod) -> Vec<ObjectRef<K>> {
    let namespace = pod.namespace().unwrap_or_default();
    if let Some(owner) = pods::controller_of(&pod.metadata) {
        if owner.kind == K::kind(&()) {
            return vec![ObjectRef::new(&owner.name).within(&namespace)];
        }
        return Vec::new();
    }
    store
        .state()
        .iter()
        .filter(|o| o.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|o| o.view().is_ok_and(|v| v.selector.matches(pod.labels())))
        .map(|o| ObjectRef::from_obj(o.as_ref()))
        .collect()
}

fn error_policy<K: Replicated>(_: Arc<K>, error: &Error, _: Arc<Context>) -> Action {
    tracing::warn!(controller = K::CONTROLLER, %error, "sync failed; retrying");
    Action::requeue(Duration::from_secs(2))
}

async fn reconcile<K: Replicated>(owner: Arc<K>, ctx: Arc<Context>) -> Result<Action> {
    let view = owner.view().map_err(Error::Invalid)?;
    let now = chrono::Utc::now();
    let pods_here = ctx.pods.in_namespace(&view.namespace);
    let plan = plan::plan(&view, &pods_here, now);
    let pod_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &view.namespace);
    let mut last_write = 0u64;

    let controller_ref = view.controller_ref();
    for name in &plan.adopt {
        if let Some(rv) = ownership::adopt(&pod_api, name, &controller_ref).await? {
            last_write = last_write.max(rv);
        }
    }
    for name in &plan.release {
        if let Some(rv) = ownership::release(&pod_api, name, &view.uid).await? {
            last_write = last_write.max(rv);
        }
    }

    let mut manage_error = None;
    if !view.deleting && plan.create > 0 {
        let template = plan::pod_from_template(&view).map_err(Error::Invalid)?;
        'batches: for batch in
            plan::slow_start_batches(plan.create, plan::SLOW_START_INITIAL_BATCH_SIZE)
        {
            let params = PostParams::default();
            let results = join_all((0..batch).map(|_| pod_api.create(&params, &template))).await;
            let mut failed = false;
            for result in results {
                match result {
                    Ok(pod) => {
                        last_write = last_write.max(resource_version(&pod.metadata));
                        let message = format!("Created pod: {}", pod.name_any());
                        ctx.events
                            .publish(
                                owner.as_ref(),
                                EventType::Normal,
                                "SuccessfulCreate",
                                &message,
                            )
                            .await;
                    }
                    Err(e) => {
                        failed = true;
                        let message = format!("Error creating: {}", error_text(&e));
                        ctx.events
                            .publish(owner.as_ref(), EventType::Warning, "FailedCreate", &message)
                            .await;
                        manage_error = Some(ManageError {
                            creating: true,
                            message,
                        });
                    }
                }
            }
            if failed {
                break 'batches;
            }
        }
    }
    if !view.deleting && !plan.delete.is_empty() {
        let results = join_all(plan.delete.iter().map(|name| {
            let pod_api = &pod_api;
            async move { (name, pod_api.delete(name, &DeleteParams::default()).await) }
        }))
        .await;
        for (name, result) in results {
            match result {
                Ok(deleted) => {
                    if let Some(pod) = deleted.left() {
                        last_write = last_write.max(resource_version(&pod.metadata));
                    }
                    let message = format!("Deleted pod: {name}");
                    ctx.events
                        .publish(
                            owner.as_ref(),
                            EventType::Normal,
                            "SuccessfulDelete",
                            &message,
                        )
                        .await;
                }
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    let message = format!("Error deleting: {}", error_text(&e));
                    ctx.events
                        .publish(owner.as_ref(), EventType::Warning, "FailedDelete", &message)
                        .await;
                    manage_error = Some(ManageError {
                        creating: false,
                        message,
                    });
                }
            }
        }
    }

    // Status from what was observed before acting, as upstream: the writes above come
    // back through the pod watch and trigger the next sync.
    let claimed = plan::claimed(&view, &pods_here);
    let status = plan::status(&view, &claimed, manage_error, now);
    if plan::status_changed(owner.current_status().as_ref(), &status) {
        write_status::<K>(&ctx.client, &view, &status).await?;
    }

    if last_write > 0 && !ctx.pods.caught_up(last_write, Duration::from_secs(5)).await {
        tracing::warn!(controller = K::CONTROLLER, name = %view.name, "pod watch lags behind our writes");
    }
    Ok(match plan.requeue_after {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

/// A merge patch of the status subresource with every field spelled out, so that counts
/// that fell to zero and conditions that went away are cleared too.
async fn write_status<K: Replicated>(
    client: &kube::Client,
    view: &ReplicaSetView,
    status: &ReplicaSetStatus,
) -> Result<()> {
    let mut body = serde_json::to_value(status).map_err(|e| Error::Invalid(e.to_string()))?;
    if let Some(fields) = body.as_object_mut() {
        for key in [
            "fullyLabeledReplicas",
            "readyReplicas",
            "availableReplicas",
            "conditions",
        ] {
            fields.entry(key).or_insert(serde_json::Value::Null);
        }
    }
    let api: Api<K> = Api::namespaced(client.clone(), &view.namespace);
    match api
        .patch_status(
            &view.name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": body })),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
