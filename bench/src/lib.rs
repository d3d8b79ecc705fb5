//! Pieces the load generators share with each other and with the end-to-end tests.

pub mod readier;

use anyhow::Context;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};

/// The `p` quantile (0.0–1.0) of sorted latencies.
pub fn percentile(sorted: &[std::time::Duration], p: f64) -> std::time::Duration {
    if sorted.is_empty() {
        return std::time::Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// When each pod was created, by name (filled by the creating clients).
pub type CreatedAt =
    std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>>;

/// Watches `api` until `total` pods have reached the state `reached` tests, recording for
/// each the time from its create (in `created`) to the watch event that showed it. Returns
/// when the last one was seen, and the latencies.
pub fn watch_latencies(
    api: Api<k8s_openapi::api::core::v1::Pod>,
    total: usize,
    created: CreatedAt,
    reached: fn(&k8s_openapi::api::core::v1::Pod) -> bool,
) -> tokio::task::JoinHandle<(std::time::Instant, Vec<std::time::Duration>)> {
    use futures::StreamExt;
    use kube::runtime::watcher::{self, Event};
    use kube::ResourceExt;
    tokio::spawn(async move {
        let mut latencies = Vec::with_capacity(total);
        let mut seen = std::collections::HashSet::new();
        let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
        while let Some(event) = events.next().await {
            let Ok(Event::Apply(p) | Event::InitApply(p)) = event else {
                continue;
            };
            if reached(&p) && seen.insert(p.name_any()) {
                let at = std::time::Instant::now();
                if let Some(t) = created
                    .lock()
                    .ok()
                    .and_then(|c| c.get(&p.name_any()).copied())
                {
                    latencies.push(at - t);
                }
                if seen.len() == total {
                    return (at, latencies);
                }
            }
        }
        (std::time::Instant::now(), latencies)
    })
}

/// The client configuration a kubeconfig file describes.
pub async fn config(kubeconfig: &std::path::Path) -> anyhow::Result<kube::Config> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).context("reading the kubeconfig")?;
    Ok(kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?)
}

/// Creates namespace `name` unless it exists.
pub async fn ensure_namespace(client: &kube::Client, name: &str) -> anyhow::Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))?;
    match namespaces.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
