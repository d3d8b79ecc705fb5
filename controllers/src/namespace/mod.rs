//! The namespace controller, after upstream's `pkg/controller/namespace`.
//!
//! A namespace with a deletionTimestamp and the `kubernetes` finalizer is emptied: every
//! namespaced resource that discovery lists with the `delete` verb is deleted
//! (`deletecollection` where served, else list + delete each; pods first, as upstream's
//! ordered namespace deletion), the status conditions report what failed or remains, the
//! namespace is looked at again until nothing is left, and then `kubernetes` is removed
//! through the `finalize` subresource so that the API server deletes the namespace.

pub mod plan;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, NamespaceStatus, Pod};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams, PropagationPolicy};
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Client;

use crate::ownership::is_status;

use crate::gc::discovery;
use crate::gc::plan::ResourceType;
use crate::gc::queue::Queue;
use plan::{ConditionUpdater, ContentTotals, GvrOutcome, PodGrace};

/// Concurrent namespace syncs (upstream's `--concurrent-namespace-syncs` is 10).
const WORKERS: usize = 5;
/// Upstream's namespace resync period.
const RESYNC_PERIOD: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, thiserror::Error)]
enum NsError {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Other(String),
}

/// The outcome of one pass over a namespace.
enum Synced {
    /// Nothing (more) to do.
    Done,
    /// Content remains; look again after the estimate.
    Remaining(i64),
}

struct Controller {
    client: Client,
    queue: Queue<String>,
}

/// Runs the namespace controller until the process ends.
pub async fn run(client: kube::Client) -> crate::Result<()> {
    let ctl = Arc::new(Controller {
        client: client.clone(),
        queue: Queue::new(Duration::from_millis(5), Duration::from_secs(60)),
    });
    for _ in 0..WORKERS {
        tokio::spawn(ctl.clone().worker());
    }
    let api: Api<Namespace> = Api::all(client);
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut terminating: HashSet<String> = HashSet::new();
    let mut resync = tokio::time::interval(RESYNC_PERIOD);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    resync.tick().await;
    loop {
        tokio::select! {
            event = stream.next() => match event {
                Some(Ok(Event::Apply(ns) | Event::InitApply(ns))) => {
                    let name = ns.metadata.name.clone().unwrap_or_default();
                    if ns.metadata.deletion_timestamp.is_some() && !name.is_empty() {
                        terminating.insert(name.clone());
                        ctl.queue.add(name);
                    } else {
                        terminating.remove(&name);
                    }
                }
                Some(Ok(Event::Delete(ns))) => {
                    if let Some(name) = ns.metadata.name.as_ref() {
                        terminating.remove(name);
                    }
                }
                Some(Ok(Event::Init | Event::InitDone)) => {}
                Some(Err(e)) => tracing::warn!(error = %e, "namespace controller: watch failed"),
                None => {
                    return Err(crate::Error::Invalid("namespace watch ended".into()));
                }
            },
            _ = resync.tick() => {
                for name in &terminating {
                    ctl.queue.add(name.clone());
                }
            }
        }
    }
}

fn background() -> DeleteParams {
    DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    }
}

impl Controller {
    async fn worker(self: Arc<Self>) {
        loop {
            let name = self.queue.get().await;
            match self.sync(&name).await {
                Ok(Synced::Done) => self.queue.forget(&name),
                Ok(Synced::Remaining(estimate)) => {
                    let wait = plan::requeue_after(estimate);
                    tracing::debug!(namespace = %name, ?wait, "namespace controller: content remaining");
                    self.queue.forget(&name);
                    self.queue.add_after(name.clone(), wait);
                }
                Err(e) => {
                    tracing::warn!(namespace = %name, error = %e, "namespace controller: deletion of namespace failed, will retry");
                    self.queue.add_rate_limited(name.clone());
                }
            }
            self.queue.done(&name);
        }
    }

    /// Upstream `namespacedResourcesDeleter.Delete`.
    async fn sync(&self, name: &str) -> Result<Synced, NsError> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let Some(ns) = api.get_opt(name).await? else {
            return Ok(Synced::Done);
        };
        if ns.metadata.deletion_timestamp.is_none() {
            return Ok(Synced::Done);
        }
        let Some(mut ns) = self.ensure_terminating(&api, ns).await? else {
            return Ok(Synced::Done);
        };
        let finalizers = ns
            .spec
            .as_ref()
            .and_then(|s| s.finalizers.clone())
            .unwrap_or_default();
        if !plan::has_finalizer(&finalizers) {
            return Ok(Synced::Done);
        }
        let estimate = self.delete_all_content(&api, &mut ns).await?;
        if estimate > 0 {
            return Ok(Synced::Remaining(estimate));
        }
        self.finalize(&api, ns).await?;
        Ok(Synced::Done)
    }

    /// Upstream `updateNamespaceStatusFunc`: phase Terminating. `None` when the namespace
    /// is gone.
    async fn ensure_terminating(
        &self,
        api: &Api<Namespace>,
        mut ns: Namespace,
    ) -> Result<Option<Namespace>, NsError> {
        let uid = ns.metadata.uid.clone();
        for _ in 0..5 {
            if ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating") {
                return Ok(Some(ns));
            }
            let name = ns.metadata.name.clone().unwrap_or_default();
            let mut updated = ns.clone();
            updated
                .status
                .get_or_insert_with(NamespaceStatus::default)
                .phase = Some("Terminating".into());
            match api
                .replace_status(&name, &PostParams::default(), &updated)
                .await
            {
                Ok(ns) => return Ok(Some(ns)),
                Err(e) if is_status(&e, 404) => return Ok(None),
                Err(e) if is_status(&e, 409) => match api.get_opt(&name).await? {
                    None => return Ok(None),
                    Some(latest) if latest.metadata.uid != uid => {
                        return Err(NsError::Other(
                            "namespace uid has changed across retries".into(),
                        ));
                    }
                    Some(latest) => ns = latest,
                },
                Err(e) => return Err(e.into()),
            }
        }
        Err(NsError::Other(
            "updating the namespace phase kept conflicting".into(),
        ))
    }

    /// Upstream `finalizeNamespace` under `retryOnConflictError`.
    async fn finalize(&self, api: &Api<Namespace>, mut ns: Namespace) -> Result<(), NsError> {
        let uid = ns.metadata.uid.clone();
        let name = ns.metadata.name.clone().unwrap_or_default();
        for _ in 0..5 {
            let mut finalize = ns.clone();
            let spec = finalize.spec.get_or_insert_with(Default::default);
            spec.finalizers = Some(plan::finalized_finalizers(
                &spec.finalizers.clone().unwrap_or_default(),
            ));
            match api
                .replace_subresource("finalize", &name, &PostParams::default(), &finalize)
                .await
            {
                Ok(_) => {
                    tracing::info!(namespace = %name, "namespace controller: namespace emptied and finalized");
                    return Ok(());
                }
                Err(e) if is_status(&e, 404) => return Ok(()),
                Err(e) if is_status(&e, 409) => match api.get_opt(&name).await? {
                    None => return Ok(()),
                    Some(latest) if latest.metadata.uid != uid => {
                        return Err(NsError::Other(
                            "namespace uid has changed across retries".into(),
                        ));
                    }
                    Some(latest) => ns = latest,
                },
                Err(e) => return Err(e.into()),
            }
        }
        Err(NsError::Other(
            "finalizing the namespace kept conflicting".into(),
        ))
    }

    /// Upstream `deleteAllContent`: returns the estimate of seconds until the content is
    /// gone (0: nothing left), updating the status conditions on the way.
    async fn delete_all_content(
        &self,
        api: &Api<Namespace>,
        ns: &mut Namespace,
    ) -> Result<i64, NsError> {
        let namespace = ns.metadata.name.clone().unwrap_or_default();
        let deleted_at = ns
            .metadata
            .deletion_timestamp
            .as_ref()
            .and_then(crate::pods::to_chrono)
            .unwrap_or_else(Utc::now);
        let now = crate::pods::to_time(Utc::now());
        let mut errors: Vec<String> = Vec::new();
        let mut conditions = ConditionUpdater::default();
        let mut estimate = 0i64;

        let resources = match discovery::discover(&self.client).await {
            Ok(found) => {
                if let Some(failure) = found.failure() {
                    conditions.discovery_failed(&failure, Some(found.failed.len()), &now);
                    errors.push(failure);
                }
                match plan::deletable_namespaced(&found.groups) {
                    Ok(resources) => resources,
                    Err(e) => {
                        conditions.group_version_parsing_failed(&e, &now);
                        errors.push(e);
                        Vec::new()
                    }
                }
            }
            Err(e) => {
                let message = e.to_string();
                conditions.discovery_failed(&message, None, &now);
                errors.push(message);
                Vec::new()
            }
        };

        let mut totals = ContentTotals::default();
        let (pods, rest): (Vec<ResourceType>, Vec<ResourceType>) = resources
            .into_iter()
            .partition(|r| r.group.is_empty() && r.resource == "pods");
        // Ordered namespace deletion: pods go first, the rest only once they are gone.
        let mut pods_remain = false;
        for rt in &pods {
            let (outcome, err) = self.delete_resource(rt, &namespace, deleted_at).await;
            if let Some(e) = err {
                conditions.delete_content_failed(e.clone());
                errors.push(format!(
                    "failed to delete pods for namespace: {namespace}, err: {e}"
                ));
            }
            estimate = estimate.max(outcome.estimate);
            pods_remain |= outcome.remaining > 0;
            totals.add(rt, &outcome);
        }
        if !pods_remain {
            for rt in &rest {
                let (outcome, err) = self.delete_resource(rt, &namespace, deleted_at).await;
                if let Some(e) = err {
                    conditions.delete_content_failed(e.clone());
                    errors.push(e);
                }
                estimate = estimate.max(outcome.estimate);
                totals.add(rt, &outcome);
            }
        } else {
            tracing::debug!(%namespace, "namespace controller: pods still remain, delaying deletion of other resources");
        }
        conditions.content_totals(&totals, &now);

        let status = ns.status.get_or_insert_with(NamespaceStatus::default);
        if conditions.update(status, &now) {
            match api
                .replace_status(&namespace, &PostParams::default(), ns)
                .await
            {
                Ok(updated) => *ns = updated,
                Err(e) => {
                    tracing::warn!(%namespace, error = %e, "namespace controller: couldn't update status conditions");
                }
            }
        }
        tracing::debug!(%namespace, estimate, ?errors, "namespace controller: deleteAllContent");
        if !errors.is_empty() {
            return Err(NsError::Other(if errors.len() == 1 {
                errors.remove(0)
            } else {
                format!("[{}]", errors.join(", "))
            }));
        }
        Ok(estimate)
    }

    /// Upstream `deleteAllContentForGroupVersionResource`: deletes everything of `rt` in
    /// `namespace` and reports what is left.
    async fn delete_resource(
        &self,
        rt: &ResourceType,
        namespace: &str,
        deleted_at: chrono::DateTime<Utc>,
    ) -> (GvrOutcome, Option<String>) {
        let gvr = plan::gvr_display(rt);
        let estimate = if rt.group.is_empty() && rt.resource == "pods" {
            let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
            match pods.list(&ListParams::default()).await {
                Ok(list) => {
                    let grace: Vec<PodGrace> = list
                        .items
                        .iter()
                        .map(|p| PodGrace {
                            phase: crate::pods::phase(p).to_string(),
                            termination_grace_period_seconds: p
                                .spec
                                .as_ref()
                                .and_then(|s| s.termination_grace_period_seconds),
                        })
                        .collect();
                    plan::estimate_pods(&grace, deleted_at, Utc::now())
                }
                Err(e) => return (GvrOutcome::default(), Some(e.to_string())),
            }
        } else {
            0
        };
        let with_estimate = |err: Option<String>| {
            (
                GvrOutcome {
                    estimate,
                    ..GvrOutcome::default()
                },
                err,
            )
        };
        let ar = rt.api_resource();
        let objects: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), namespace, &ar);
        let metas: Api<PartialObjectMeta<DynamicObject>> =
            Api::namespaced_with(self.client.clone(), namespace, &ar);

        let mut collection_deleted = false;
        if rt.supports("deletecollection") {
            match objects
                .delete_collection(&background(), &ListParams::default())
                .await
            {
                Ok(_) => collection_deleted = true,
                Err(e) if is_status(&e, 405) || is_status(&e, 404) => {
                    tracing::debug!(%namespace, %gvr, "namespace controller: deletecollection not supported");
                }
                Err(e) => return with_estimate(Some(e.to_string())),
            }
        }
        if !collection_deleted && rt.supports("list") {
            match metas.list(&ListParams::default()).await {
                Ok(list) => {
                    for item in list.items {
                        let name = item.metadata.name.unwrap_or_default();
                        match objects.delete(&name, &background()).await {
                            Ok(_) => {}
                            Err(e) if is_status(&e, 404) || is_status(&e, 405) => {}
                            Err(e) => return with_estimate(Some(e.to_string())),
                        }
                    }
                }
                Err(e) if is_status(&e, 405) || is_status(&e, 404) => {}
                Err(e) => return with_estimate(Some(e.to_string())),
            }
        }
        if !rt.supports("list") {
            return with_estimate(None);
        }
        match metas.list(&ListParams::default()).await {
            Ok(list) => {
                let left: Vec<Vec<String>> = list
                    .items
                    .into_iter()
                    .map(|i| i.metadata.finalizers.unwrap_or_default())
                    .collect();
                plan::gvr_outcome(namespace, rt, estimate, &left)
            }
            Err(e) if is_status(&e, 405) || is_status(&e, 404) => with_estimate(None),
            Err(e) => with_estimate(Some(e.to_string())),
        }
    }
}
