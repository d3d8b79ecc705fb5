//! The controller-manager. Each controller is a pure planning function (observed state →
//! actions, unit-tested without a server) and a thin kube-runtime reconciler that applies
//! the actions through the public API.

pub mod deployment;
pub mod gc;
pub mod informer;
pub mod namespace;
pub mod ownership;
pub mod pods;
pub mod replicaset;

/// What a controller's reconcile or run loop can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("API request failed: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::api::Api;
use kube::runtime::watcher;
use prometheus_client::registry::Registry;

use informer::InformerBuilder;
use keelson_common::component::Started;

/// How `keelson controller-manager` runs.
pub struct Config {
    /// The cluster to manage; None: in-cluster or `$KUBECONFIG` / `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// Take the `keelson-controller-manager` Lease in kube-system before acting, so that
    /// several replicas can run and only one acts.
    pub leader_elect: bool,
    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    pub health_address: SocketAddr,
}

/// The Lease the replicas of the controller-manager compete for.
pub const LEASE_NAME: &str = "keelson-controller-manager";

/// Runs every controller until the process ends or leadership is lost (an error: the
/// process should exit so that it restarts as a follower, as upstream does).
pub async fn run(config: Config) -> Result<()> {
    let started = Started::start(
        config.kubeconfig.as_deref(),
        config.leader_elect.then_some(LEASE_NAME),
        config.health_address,
        Registry::default(),
    )
    .await
    .map_err(|e| Error::Invalid(e.to_string()))?;
    let client = started.client.clone();
    let ready = started.ready.clone();

    // One watch per resource type, shared by the controllers that read it.
    let mut pods =
        InformerBuilder::new(Api::<Pod>::all(client.clone()), watcher::Config::default());
    let pods_for_rs = pods.subscribe();
    let pods_for_rc = pods.subscribe();
    let pods_for_deployments = pods.subscribe();
    let mut replica_sets = InformerBuilder::new(
        Api::<ReplicaSet>::all(client.clone()),
        watcher::Config::default(),
    );
    let rs_for_rs = replica_sets.subscribe();
    let rs_for_deployments = replica_sets.subscribe();
    let mut rcs = InformerBuilder::new(
        Api::<ReplicationController>::all(client.clone()),
        watcher::Config::default(),
    );
    let rc_events = rcs.subscribe();
    let pods = pods.start();
    let replica_sets = replica_sets.start();
    let rcs = rcs.start();
    pods.ready().await;
    replica_sets.ready().await;
    rcs.ready().await;
    ready.store(true, Ordering::Relaxed);
    tracing::info!("controllers started");

    tokio::select! {
        _ = replicaset::run::<ReplicaSet>(client.clone(), (replica_sets.clone(), rs_for_rs), pods.clone(), pods_for_rs) => Ok(()),
        _ = replicaset::run::<ReplicationController>(client.clone(), (rcs, rc_events), pods.clone(), pods_for_rc) => Ok(()),
        _ = deployment::run(client.clone(), (replica_sets, rs_for_deployments), (pods, pods_for_deployments)) => Ok(()),
        result = gc::run(client.clone()) => result,
        result = namespace::run(client.clone()) => result,
        error = started.lost() => Err(Error::Invalid(error.to_string())),
    }
}
