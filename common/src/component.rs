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

/// A component that has started: its client, and — when it elected to — the leadership
/// it holds. Shared start-up of every API-client component.
pub struct Started {
    pub client: kube::Client,
    /// Set once the component has synced its caches; `/readyz` answers 200 after.
    pub ready: Arc<AtomicBool>,
    leadership: Option<tokio::sync::watch::Receiver<bool>>,
    health: tokio::task::JoinHandle<Result<()>>,
}

impl Started {
    /// Builds the client, serves the health endpoints and, with `lease`, waits until this
    /// process holds that Lease in kube-system.
    pub async fn start(
        kubeconfig: Option<&Path>,
        lease: Option<&str>,
        health_address: SocketAddr,
        mut registry: Registry,
    ) -> Result<Started> {
        let client = client(kubeconfig).await?;
        let ready = Arc::new(AtomicBool::new(false));
        let leading_gauge = prometheus_client::metrics::gauge::Gauge::<i64>::default();
        registry.register(
            "leader_election_master_status",
            "1 while this process is the leader",
            leading_gauge.clone(),
        );
        let health = tokio::spawn(serve_health(
            health_address,
            ready.clone(),
            Arc::new(registry),
        ));
        let leadership = match lease {
            Some(name) => Some(LeaderElection::new(name).acquire(client.clone()).await?),
            None => None,
        };
        leading_gauge.set(1);
        Ok(Started {
            client,
            ready,
            leadership,
            health,
        })
    }

    /// Resolves with an error when leadership is lost or the health server fails; never
    /// without leader election and a healthy health server. The component should then
    /// stop (upstream components exit, to restart as followers).
    pub async fn lost(self) -> Error {
        let leadership = async move {
            match self.leadership {
                Some(mut leading) => {
                    while *leading.borrow_and_update() {
                        if leading.changed().await.is_err() {
                            break;
                        }
                    }
                    Error::Invalid("leader election lost".into())
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            e = leadership => e,
            result = self.health => match result {
                Ok(Ok(())) => Error::Invalid("the health server stopped".into()),
                Ok(Err(e)) => e,
                Err(e) => Error::Invalid(format!("the health server failed: {e}")),
            },
        }
    }
}
