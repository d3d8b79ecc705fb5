//! The Deployment controller: [`plan::plan`] decides, this module applies its actions in
//! order and records the events.

pub mod plan;

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::{Action as Requeue, Controller};

use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::ResourceExt;
use serde_json::json;

use crate::informer::{resource_version, Informer};
use crate::ownership::{self, is_not_found};
use crate::{pods, Error, Result};
use keelson_common::events::{EventSink, EventType};
use plan::Action;

struct Context {
    client: kube::Client,
    replica_sets: Informer<ReplicaSet>,
    pods: Informer<Pod>,
    events: EventSink,
}

/// Runs the Deployment controller until the process ends.
pub async fn run(
    client: kube::Client,
    replica_sets: (
        Informer<ReplicaSet>,
        impl Stream<Item = Result<ReplicaSet, watcher::Error>> + Send + 'static,
    ),
    pods: (
        Informer<Pod>,
        impl Stream<Item = Result<Pod, watcher::Error>> + Send + 'static,
    ),
) {
    let (rs_informer, rs_events) = replica_sets;
    let (pod_informer, pod_events) = pods;
    let controller = Controller::new(
        Api::<Deployment>::all(client.clone()),
        watcher::Config::default(),
    );
    let deployments = controller.store();
    let for_rs = deployments.clone();
    let for_pods = (deployments, rs_informer.store().clone());
    let context = Arc::new(Context {
        events: EventSink::new(client.clone(), "deployment-controller"),
        client,
        replica_sets: rs_informer,
        pods: pod_informer,
    });
    controller
        .watches_stream(rs_events, move |rs: ReplicaSet| owners_of(&for_rs, &rs))
        .watches_stream(pod_events, move |pod: Pod| {
            // A pod matters through its ReplicaSet (Recreate waits for old pods to go).
            let (deployments, replica_sets) = &for_pods;
            let Some(owner) = pods::controller_of(&pod.metadata) else {
                return Vec::new();
            };
            if owner.kind != "ReplicaSet" {
                return Vec::new();
            }
            let rs_ref = ObjectRef::new(&owner.name).within(&pod.namespace().unwrap_or_default());
            match replica_sets.get(&rs_ref) {
                Some(rs) => owners_of(deployments, &rs),
                None => Vec::new(),
            }
        })
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "deployment reconcile failed");
            }
        })
        .await;
}

/// The Deployment controlling `rs`, or for an orphan every Deployment in its namespace
/// whose selector matches it.
fn owners_of(deployments: &Store<Deployment>, rs: &ReplicaSet) -> Vec<ObjectRef<Deployment>> {
    let namespace = rs.namespace().unwrap_or_default();
    if let Some(owner) = pods::controller_of(&rs.metadata) {
        if owner.kind == "Deployment" {
            return vec![ObjectRef::new(&owner.name).within(&namespace)];
        }
        return Vec::new();
    }
    deployments
        .state()
        .iter()
        .filter(|d| d.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|d| {
            let selector = d.spec.as_ref().map(|s| &s.selector);
            serde_json::to_value(selector)
                .ok()
                .and_then(|v| {
                    keelson_apimachinery::labels::Selector::from_label_selector_json(&v).ok()
                })
                .is_some_and(|s| !s.is_empty() && s.matches(rs.labels()))
        })
        .map(|d| ObjectRef::from_obj(d.as_ref()))
        .collect()
}

fn error_policy(_: Arc<Deployment>, error: &Error, _: Arc<Context>) -> Requeue {
    tracing::warn!(%error, "deployment sync failed; retrying");
    Requeue::requeue(Duration::from_secs(2))
}

async fn reconcile(deployment: Arc<Deployment>, ctx: Arc<Context>) -> Result<Requeue> {
    let namespace = deployment.namespace().unwrap_or_default();
    let name = deployment.name_any();
    let replica_sets = ctx.replica_sets.in_namespace(&namespace);
    let pods_here = ctx.pods.in_namespace(&namespace);
    let plan = plan::plan(&deployment, &replica_sets, &pods_here, chrono::Utc::now());
    let rs_api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &namespace);
    let api: Api<Deployment> = Api::namespaced(ctx.client.clone(), &namespace);
    let controller_ref = ownership::controller_ref(deployment.as_ref());
    // The newest ReplicaSet write, which the next sync must be able to see.
    let mut last_write = 0u64;
    let mut note = |rv: Option<u64>| last_write = last_write.max(rv.unwrap_or(0));

    for action in plan.actions {
        match action {
            Action::AdoptReplicaSet { name } => {
                note(ownership::adopt(&rs_api, &name, &controller_ref).await?);
            }
            Action::ReleaseReplicaSet { name } => {
                note(ownership::release(&rs_api, &name, &controller_ref.uid).await?);
            }
            Action::CreateReplicaSet(rs) => {
                match rs_api.create(&PostParams::default(), &rs).await {
                    Ok(created) => note(Some(resource_version(&created.metadata))),
                    // Our watch has not shown it yet: plan again once it has.
                    Err(kube::Error::Api(s)) if s.code == 409 => {
                        return Ok(Requeue::requeue(Duration::from_millis(500)))
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Action::UpdateReplicaSet {
                name,
                replicas,
                annotations,
            } => {
                let mut patch = json!({"metadata": {"annotations": annotations}});
                if let Some(replicas) = replicas {
                    patch["spec"] = json!({ "replicas": replicas });
                }
                match rs_api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                {
                    Ok(rs) => note(Some(resource_version(&rs.metadata))),
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Action::DeleteReplicaSet { name, uid } => {
                let params = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: Some(uid),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                match rs_api.delete(&name, &params).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Action::UpdateDeploymentAnnotations(annotations) => {
                let patch = json!({"metadata": {"annotations": annotations}});
                match api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                {
                    Ok(_) => {}
                    Err(e) if is_not_found(&e) => return Ok(Requeue::await_change()),
                    Err(e) => return Err(e.into()),
                }
            }
            Action::UpdateStatus(status) => {
                let mut body =
                    serde_json::to_value(&status).map_err(|e| Error::Invalid(e.to_string()))?;
                if let Some(fields) = body.as_object_mut() {
                    fields
                        .entry("conditions")
                        .or_insert(serde_json::Value::Null);
                }
                let patch = json!({ "status": body });
                match api
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                {
                    Ok(_) => {}
                    Err(e) if is_not_found(&e) => return Ok(Requeue::await_change()),
                    Err(e) => return Err(e.into()),
                }
            }
            Action::Event {
                type_,
                reason,
                message,
            } => {
                let type_ = if type_ == "Warning" {
                    EventType::Warning
                } else {
                    EventType::Normal
                };
                ctx.events
                    .publish(deployment.as_ref(), type_, &reason, &message)
                    .await;
            }
        }
    }

    if last_write > 0
        && !ctx
            .replica_sets
            .caught_up(last_write, Duration::from_secs(5))
            .await
    {
        tracing::warn!(deployment = %name, "replica set watch lags behind our writes");
    }
    Ok(match plan.requeue_after {
        Some(after) => Requeue::requeue(after),
        None => Requeue::await_change(),
    })
}
