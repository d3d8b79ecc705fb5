//! A stand-in for kubelets until there are real ones, for tests and load generators that
//! need Ready pods without running containers.

/// Stands in for kubelets until there are real ones: every pod that `ready_if` accepts is
/// marked Running and Ready (a status patch, as a kubelet would write it), and a pod being
/// deleted is confirmed gone (grace period 0). Stops when dropped.
pub struct PodReadier {
    task: tokio::task::JoinHandle<()>,
}

impl PodReadier {
    pub fn start(
        client: kube::Client,
        ready_if: impl Fn(&k8s_openapi::api::core::v1::Pod) -> bool + Send + 'static,
    ) -> PodReadier {
        use futures::StreamExt;
        use k8s_openapi::api::core::v1::Pod;
        use kube::api::{Api, DeleteParams, Patch, PatchParams};
        use kube::runtime::watcher::{self, Event};
        use kube::ResourceExt;
        let task = tokio::spawn(async move {
            let all: Api<Pod> = Api::all(client.clone());
            let mut events = watcher::watcher(all, watcher::Config::default()).boxed();
            while let Some(event) = events.next().await {
                let pod = match event {
                    Ok(Event::Apply(pod) | Event::InitApply(pod)) => pod,
                    _ => continue,
                };
                let api: Api<Pod> =
                    Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
                if pod.metadata.deletion_timestamp.is_some() {
                    let _ = api
                        .delete(&pod.name_any(), &DeleteParams::default().grace_period(0))
                        .await;
                    continue;
                }
                let ready = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                if ready || !ready_if(&pod) {
                    continue;
                }
                let now = now();
                let patch = serde_json::json!({"status": {
                    "phase": "Running",
                    "startTime": now,
                    "conditions": [
                        {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                        {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
                        {"type": "Ready", "status": "True", "lastTransitionTime": now},
                    ],
                }});
                let _ = api
                    .patch_status(
                        &pod.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(patch),
                    )
                    .await;
            }
        });
        PodReadier { task }
    }
}

impl Drop for PodReadier {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Now in RFC 3339, as API timestamps are written.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
