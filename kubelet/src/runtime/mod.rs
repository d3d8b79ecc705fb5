//! The container runtime the kubelet drives.

pub mod containerd;
mod exec;
pub mod image;
mod pull;
pub mod simulated;
pub use pull::normalize_reference;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What can go wrong talking to the runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("runtime: {0}")]
    Runtime(String),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// One container to start: what a pod's container spec becomes once volumes, env and the
/// network namespace are resolved.
#[derive(Clone, Debug, Default)]
pub struct ContainerSpec {
    /// Unique in the runtime namespace (the kubelet derives it from pod uid, name, attempt).
    pub id: String,
    pub image: String,
    /// The container's `command` and `args`, with Kubernetes' rules against the image's
    /// Entrypoint and Cmd: a command replaces both (args then follow it); args alone
    /// replace only Cmd.
    pub command: Vec<String>,
    pub args: Vec<String>,
    /// The container's host name (the pod's name, or spec.hostname).
    pub hostname: Option<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    /// Labels kept on the container, so that a restarted kubelet can adopt it.
    pub labels: BTreeMap<String, String>,
    /// Bind mounts: (host path, container path, read-only).
    pub mounts: Vec<(PathBuf, String, bool)>,
    /// The pod's network namespace (`/var/run/netns/NAME`); None: the host's.
    pub network_namespace: Option<PathBuf>,
    /// stdout and stderr go to this file (the kubelet's container log).
    pub log_path: PathBuf,
    pub user: Option<(u32, u32)>,
    pub read_only_rootfs: bool,
    pub privileged: bool,
    /// cgroup limits: cpu in millicores, memory in bytes.
    pub cpu_limit_milli: Option<i64>,
    pub memory_limit_bytes: Option<i64>,
}

/// A container's state as the runtime reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running {
        pid: u32,
        started_at: std::time::SystemTime,
    },
    Exited {
        exit_code: i32,
        started_at: std::time::SystemTime,
        finished_at: std::time::SystemTime,
        /// The kernel's OOM killer ended it (its memory cgroup counted an OOM kill).
        oom_killed: bool,
    },
    Unknown,
}

/// A container the runtime knows, with the labels it was created with.
#[derive(Clone, Debug)]
pub struct ContainerInfo {
    pub id: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    pub state: ContainerState,
}

/// The container runtime: containerd for real pods; later a simulated one for scale tests.
#[async_trait::async_trait]
pub trait Runtime: Send + Sync {
    /// "containerd://1.6.20", as node.status.nodeInfo.containerRuntimeVersion shows it.
    async fn version(&self) -> Result<String>;
    /// Imports an OCI image layout tarball; returns the image names it holds.
    async fn import_image(&self, tarball: &Path) -> Result<Vec<String>>;
    async fn has_image(&self, name: &str) -> Result<bool>;
    /// Creates and starts a container.
    async fn start(&self, spec: &ContainerSpec) -> Result<()>;
    async fn state(&self, id: &str) -> Result<ContainerState>;
    /// SIGTERM, then SIGKILL after `grace`.
    async fn stop(&self, id: &str, grace: Duration) -> Result<()>;
    /// Removes a stopped container and its task.
    async fn remove(&self, id: &str) -> Result<()>;
    async fn list(&self) -> Result<Vec<ContainerInfo>>;
    /// Pulls an image from an OCI registry (`registry/repo:tag` or `...@sha256:...`) and
    /// unpacks it, so that containers can start from it.
    async fn pull_image(&self, reference: &str, auth: Option<&RegistryAuth>) -> Result<()>;
    /// Runs a command in a running container and waits for it (at most `timeout`).
    async fn exec(&self, id: &str, command: &[String], timeout: Duration) -> Result<ExecOutput>;
    /// No real processes: there is nothing for network probes to reach.
    fn simulated(&self) -> bool {
        false
    }
}

/// Credentials for a registry (from an imagePullSecret).
#[derive(Clone, Debug)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
}

/// What a finished exec printed and how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: i32,
    /// stdout and stderr, interleaved as written (probes report this as their message).
    pub output: Vec<u8>,
    /// The command did not finish within the timeout (it was killed).
    pub timed_out: bool,
}
