//! The scheduler: pods whose `spec.schedulerName` is ours are taken from a priority queue,
//! filtered and scored over the nodes of a cache fed by watches (the kube-scheduler
//! framework's plugins, in Rust), assumed onto the best node and bound through
//! `pods/binding`.

pub mod framework;
pub mod plugins;
pub mod preemption;
pub mod queue;
pub mod scheduler;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use keelson_common::component::Started;
use prometheus_client::registry::Registry;

/// How `keelson scheduler` runs.
pub struct Config {
    pub kubeconfig: Option<PathBuf>,
    /// Take the `keelson-scheduler` Lease in kube-system before scheduling.
    pub leader_elect: bool,
    pub health_address: SocketAddr,
    /// Pods whose `spec.schedulerName` is this are ours.
    pub scheduler_name: String,
}

/// The Lease the scheduler's replicas compete for.
pub const LEASE_NAME: &str = "keelson-scheduler";

/// What can stop the scheduler.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Error(String);

/// Runs the scheduler until the process ends or leadership is lost.
pub async fn run(config: Config) -> Result<(), Error> {
    let started = Started::start(
        config.kubeconfig.as_deref(),
        config.leader_elect.then_some(LEASE_NAME),
        config.health_address,
        Registry::default(),
    )
    .await
    .map_err(|e| Error(e.to_string()))?;
    let scheduler = scheduler::Scheduler::new(started.client.clone(), &config.scheduler_name);
    started.ready.store(true, Ordering::Relaxed);
    tracing::info!(name = %config.scheduler_name, "scheduler started");
    tokio::select! {
        _ = scheduler.run() => Ok(()),
        error = started.lost() => Err(Error(error.to_string())),
    }
}
