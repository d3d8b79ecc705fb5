//! What every API client component (controller-manager, scheduler, kubelet, proxy) needs
//! around its work: a client from a kubeconfig, Lease-based leader election, and the
//! `/healthz`, `/livez`, `/readyz` and `/metrics` endpoints.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;

use crate::{Error, Result};

/// A client for the cluster named by `kubeconfig`, or by the usual discovery (in-cluster
/// service account, `$KUBECONFIG`, `~/.kube/config`) when none is given.
pub async fn client(kubeconfig: Option<&Path>) -> Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| Error::Invalid(format!("no cluster configuration: {e}")))?,
    };
    kube::Client::try_from(config).map_err(|e| Error::Invalid(format!("client: {e}")))
}

/// The identity this process holds a Lease under: host name and process id, so that two
/// replicas on one machine differ.
pub fn identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string());
    format!("{host}_{}", std::process::id())
}

/// Lease-based leader election (coordination.k8s.io/v1 Lease), as kube-controller-manager
/// and kube-scheduler do it.
pub struct LeaderElection {
    pub lease_name: String,
    pub namespace: String,
    /// How long a Lease is valid without renewal; another replica takes over after it.
    pub lease_duration: Duration,
}

impl LeaderElection {
    pub fn new(lease_name: &str) -> LeaderElection {
        LeaderElection {
            lease_name: lease_name.to_string(),
            namespace: "kube-system".to_string(),
            lease_duration: Duration::from_secs(10),
        }
    }

    /// Waits until this process holds the Lease. The returned receiver turns `false` if
    /// the Lease is lost; a component should then stop acting (upstream exits).
    pub async fn acquire(
        &self,
        client: kube::Client,
    ) -> Result<tokio::sync::watch::Receiver<bool>> {
        let identity = identity();
        let duration = self.lease_duration.as_secs().max(2);
        let manager = kube_lease_manager::LeaseManagerBuilder::new(client, self.lease_name.clone())
            .with_namespace(self.namespace.clone())
            .with_identity(identity.clone())
            .with_duration(duration)
            .with_grace((duration / 4).max(1))
            .build()
            .await
            .map_err(|e| Error::Invalid(format!("leader election: {e}")))?;
        let (mut leading, _task) = manager.watch().await;
        tracing::info!(lease = %self.lease_name, %identity, "waiting to become the leader");
        while !*leading.borrow_and_update() {
            leading
                .changed()
                .await
                .map_err(|_| Error::Invalid("leader election stopped".into()))?;
        }
        tracing::info!(lease = %self.lease_name, %identity, "became the leader");
        Ok(leading)
    }
}

/// Serves `/healthz`, `/livez`, `/readyz` (200 once `ready` is set) and `/metrics` from
/// `registry` on `address` until the process ends.
pub async fn serve_health(
    address: SocketAddr,
    ready: Arc<AtomicBool>,
    registry: Arc<Registry>,
) -> Result<()> {
    use axum::http::StatusCode;
    use axum::routing::get;
    let ok = || async { "ok" };
    let app = axum::Router::new()
        .route("/healthz", get(ok))
        .route("/livez", get(ok))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.clone();
                async move {
                    if ready.load(Ordering::Relaxed) {
                        (StatusCode::OK, "ok")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let registry = registry.clone();
                async move {
                    let mut text = String::new();
                    match prometheus_client::encoding::text::encode(&mut text, &registry) {
                        Ok(()) => (StatusCode::OK, text),
                        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| Error::Invalid(format!("binding {address}: {e}")))?;
    tracing::info!(%address, "serving /healthz, /readyz and /metrics");
    axum::serve(listener, app)
        .await
        .map_err(|e| Error::Invalid(format!("health server: {e}")))
}
