//! Pod networking through the standard CNI plugins (`loopback`, `bridge` with
//! `host-local` IPAM, as shipped by containernetworking-plugins).
//!
//! Every pod gets its own network namespace, bind-mounted at
//! `<netns_dir>/<id>` (the same layout as `ip netns add`), where `<id>` is derived from
//! the pod key and doubles as `CNI_CONTAINERID`. Inside it the `loopback` plugin brings
//! `lo` up and the `bridge` plugin adds `eth0`, one end of a veth pair whose other end is
//! a port of the node's bridge; `host-local` hands out the address from the configured
//! subnet and the bridge carries the gateway address, so the host routes to every pod.
//!
//! What a successful [`Cni::setup`] produced is recorded under
//! `<state_dir>/pods/<id>.json`, so that a restarted kubelet can adopt the pod's network
//! ([`Cni::status`]) and still tear it down cleanly ([`Cni::teardown`]).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// The CNI spec version of the configurations this module hands to the plugins
/// (containernetworking-plugins 1.1.1 accept 0.1.0 up to 1.0.0).
pub const CNI_VERSION: &str = "1.0.0";
/// The CNI network name; host-local keeps its allocations in `<state_dir>/<NETWORK_NAME>`.
pub const NETWORK_NAME: &str = "keelson";
/// The interface the pod sees.
pub const POD_IFNAME: &str = "eth0";
/// How long one plugin invocation may take.
const PLUGIN_TIMEOUT: Duration = Duration::from_secs(120);
/// Subdirectory of `state_dir` that holds the per-pod records (never a CNI network name).
const RECORDS_DIR: &str = "pods";

/// What can go wrong setting up or tearing down a pod's network.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("invalid network configuration: {0}")]
    Config(String),
    /// The plugin ran and reported a CNI error (its JSON `code`, `msg` and `details`).
    #[error("CNI plugin {plugin} {command} failed (code {code}): {msg}{}", details_suffix(.details))]
    Plugin {
        plugin: String,
        command: String,
        code: u64,
        msg: String,
        details: String,
    },
    /// The plugin could not be run, timed out, or answered something that is not CNI.
    #[error("CNI plugin {plugin} {command}: {message}")]
    Exec {
        plugin: String,
        command: String,
        message: String,
    },
    #[error("network namespace {0}: {1}")]
    Netns(PathBuf, String),
    #[error("{0}: {1}")]
    Io(PathBuf, #[source] std::io::Error),
}

fn details_suffix(details: &str) -> String {
    if details.is_empty() {
        String::new()
    } else {
        format!(" ({details})")
    }
}

pub type Result<T, E = NetworkError> = std::result::Result<T, E>;

/// How the node's pod network looks.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// The Linux bridge the pods are attached to (created by the bridge plugin), e.g.
    /// `keelson0`.
    pub bridge: String,
    /// The node's pod CIDR, e.g. `10.244.0.0/24`; the bridge gets its first address.
    pub subnet: String,
    /// Where the CNI plugin binaries are (`/usr/lib/cni`).
    pub plugin_dir: PathBuf,
    /// host-local's `dataDir`, and where the per-pod records are kept.
    pub state_dir: PathBuf,
    /// Where the pod network namespaces are bind-mounted.
    pub netns_dir: PathBuf,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            bridge: "keelson0".into(),
            subnet: "10.244.0.0/24".into(),
            plugin_dir: PathBuf::from("/usr/lib/cni"),
            state_dir: PathBuf::from("/var/lib/keelson/kubelet/cni"),
            netns_dir: PathBuf::from("/var/run/netns"),
        }
    }
}

/// A pod's network, as set up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodNetwork {
    /// The bind-mounted network namespace, to hand to the container runtime.
    pub netns_path: PathBuf,
    /// The pod IP, without prefix length.
    pub ip: String,
    pub gateway: Option<String>,
}

/// What setup leaves under `<state_dir>/pods/<id>.json`.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    pod_key: String,
    container_id: String,
    network: PodNetwork,
    /// The bridge plugin's ADD result, handed back as `prevResult` on DEL.
    result: Value,
}

/// Pod networking through the CNI plugin binaries.
pub struct Cni {
    config: NetworkConfig,
    /// One lock per pod, so that setup and teardown of the same pod never interleave.
    locks: StdMutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl Cni {
    pub fn new(config: NetworkConfig) -> Self {
        Cni {
            config,
            locks: StdMutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// The CNI container ID (and network namespace name) used for a pod key.
    pub fn container_id(pod_key: &str) -> Result<String> {
        container_id(pod_key)
    }

    /// Where the network namespace of a pod is (or would be) mounted.
    pub fn netns_path(&self, pod_key: &str) -> Result<PathBuf> {
        Ok(self.config.netns_dir.join(container_id(pod_key)?))
    }

    /// Gives the pod a network namespace with `lo` up and `eth0` on the bridge. If the
    /// pod's network is already set up (and its namespace still there), returns it as is.
    pub async fn setup(&self, pod_key: &str) -> Result<PodNetwork> {
        self.validate()?;
        let id = container_id(pod_key)?;
        let _guard = self.lock(&id).await;
        if let Some(existing) = self.status_of(pod_key, &id).await {
            return Ok(existing);
        }
        // Whatever a crashed or half-finished earlier attempt left behind (an IP still
        // allocated to this container ID, a namespace without a record) goes first.
        if let Err(e) = self.teardown_locked(&id).await {
            tracing::warn!(pod = pod_key, error = %e, "cleaning up before CNI setup");
        }
        let netns = self.config.netns_dir.join(&id);
        create_netns(&self.config.netns_dir, &netns).await?;
        match self.add(pod_key, &id, &netns).await {
            Ok(network) => Ok(network),
            Err(e) => {
                if let Err(cleanup) = self.teardown_locked(&id).await {
                    tracing::warn!(pod = pod_key, error = %cleanup, "rolling back CNI setup");
                }
                Err(e)
            }
        }
    }

    /// Removes the pod's interfaces, releases its IP and deletes its network namespace.
    /// Doing it again, or for a pod that never had a network, is fine.
    pub async fn teardown(&self, pod_key: &str) -> Result<()> {
        let id = container_id(pod_key)?;
        let _guard = self.lock(&id).await;
        self.teardown_locked(&id).await
    }

    /// The pod's network as setup recorded it, if its namespace is still mounted (for
    /// adopting running pods after a kubelet restart).
    pub async fn status(&self, pod_key: &str) -> Option<PodNetwork> {
        let id = container_id(pod_key).ok()?;
        self.status_of(pod_key, &id).await
    }

    /// The pod keys that have a recorded network, e.g. to tear down those of pods that
    /// went away while the kubelet was down.
    pub async fn recorded_pods(&self) -> Vec<String> {
        let dir = self.config.state_dir.join(RECORDS_DIR);
        let mut keys = Vec::new();
        let Ok(mut entries) = tokio::fs::read_dir(&dir).await else {
            return keys;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            if let Some(record) = read_record(&path).await {
                keys.push(record.pod_key);
            }
        }
        keys.sort();
        keys
    }

    fn validate(&self) -> Result<()> {
        let bridge = &self.config.bridge;
        if bridge.is_empty()
            || bridge.len() > 15
            || bridge
                .chars()
                .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
        {
            return Err(NetworkError::Config(format!(
                "bridge name {bridge:?} is not a valid interface name"
            )));
        }
        let subnet = &self.config.subnet;
        let valid = subnet.split_once('/').is_some_and(|(addr, prefix)| {
            match (addr.parse::<std::net::IpAddr>(), prefix.parse::<u8>()) {
                (Ok(std::net::IpAddr::V4(_)), Ok(p)) => p <= 32,
                (Ok(std::net::IpAddr::V6(_)), Ok(p)) => p <= 128,
                _ => false,
            }
        });
        if !valid {
            return Err(NetworkError::Config(format!(
                "subnet {subnet:?} is not a CIDR"
            )));
        }
        Ok(())
    }

    async fn lock(&self, id: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self
                .locks
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            // Forget the locks nobody holds or waits for.
            locks.retain(|_, l| Arc::strong_count(l) > 1);
            locks.entry(id.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }

    fn record_path(&self, id: &str) -> PathBuf {
        self.config
            .state_dir
            .join(RECORDS_DIR)
            .join(format!("{id}.json"))
    }

    async fn status_of(&self, pod_key: &str, id: &str) -> Option<PodNetwork> {
        let record = read_record(&self.record_path(id)).await?;
        if record.pod_key != pod_key || record.container_id != id {
            return None;
        }
        let netns = &record.network.netns_path;
        if !is_mount_point(netns).await {
            return None;
        }
        Some(record.network)
    }

    fn loopback_config(&self) -> Value {
        json!({
            "cniVersion": CNI_VERSION,
            "name": format!("{NETWORK_NAME}-lo"),
            "type": "loopback",
        })
    }

    fn bridge_config(&self, prev_result: Option<&Value>) -> Value {
        let mut config = json!({
            "cniVersion": CNI_VERSION,
            "name": NETWORK_NAME,
            "type": "bridge",
            "bridge": self.config.bridge,
            "isGateway": true,
            "ipMasq": false,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "ranges": [[{ "subnet": self.config.subnet }]],
                "routes": [{ "dst": if self.config.subnet.contains(':') { "::/0" } else { "0.0.0.0/0" } }],
                "dataDir": self.config.state_dir.to_string_lossy(),
            },
        });
        if let (Some(prev), Some(obj)) = (prev_result, config.as_object_mut()) {
            obj.insert("prevResult".into(), prev.clone());
        }
        config
    }

    async fn add(&self, pod_key: &str, id: &str, netns: &Path) -> Result<PodNetwork> {
        self.exec_plugin(
            "loopback",
            "ADD",
            id,
            Some(netns),
            "lo",
            &self.loopback_config(),
        )
        .await?;
        let result = self
            .exec_plugin(
                "bridge",
                "ADD",
                id,
                Some(netns),
                POD_IFNAME,
                &self.bridge_config(None),
            )
            .await?
            .ok_or_else(|| NetworkError::Exec {
                plugin: "bridge".into(),
                command: "ADD".into(),
                message: "returned no result".into(),
            })?;
        let (ip, gateway) = parse_add_result(&result).ok_or_else(|| NetworkError::Exec {
            plugin: "bridge".into(),
            command: "ADD".into(),
            message: format!("result without an IP address: {result}"),
        })?;
        let network = PodNetwork {
            netns_path: netns.to_path_buf(),
            ip,
            gateway,
        };
        let record = Record {
            pod_key: pod_key.to_string(),
            container_id: id.to_string(),
            network: network.clone(),
            result,
        };
        write_record(&self.record_path(id), &record).await?;
        tracing::info!(pod = pod_key, ip = %network.ip, netns = %netns.display(), "pod network set up");
        Ok(network)
    }

    async fn teardown_locked(&self, id: &str) -> Result<()> {
        let record_path = self.record_path(id);
        let record = read_record(&record_path).await;
        let netns = self.config.netns_dir.join(id);
        let mounted = is_mount_point(&netns).await;
        let netns_arg = mounted.then_some(netns.as_path());
        let mut first_error = None;

        let bridge = self
            .exec_plugin(
                "bridge",
                "DEL",
                id,
                netns_arg,
                POD_IFNAME,
                &self.bridge_config(record.as_ref().map(|r| &r.result)),
            )
            .await;
        let bridge_ok = bridge.is_ok();
        if let Err(e) = bridge {
            first_error.get_or_insert(e);
        }
        if mounted {
            if let Err(e) = self
                .exec_plugin(
                    "loopback",
                    "DEL",
                    id,
                    netns_arg,
                    "lo",
                    &self.loopback_config(),
                )
                .await
            {
                first_error.get_or_insert(e);
            }
        }
        if let Err(e) = delete_netns(&netns, mounted).await {
            first_error.get_or_insert(e);
        }
        // Keep the record (and its prevResult) for a retry when DEL failed.
        if bridge_ok {
            match tokio::fs::remove_file(&record_path).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    first_error.get_or_insert(NetworkError::Io(record_path, e));
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Runs one plugin binary the CNI way: parameters in the environment, the network
    /// configuration on stdin, the result (or error) as JSON on stdout.
    async fn exec_plugin(
        &self,
        plugin: &str,
        command: &str,
        id: &str,
        netns: Option<&Path>,
        ifname: &str,
        config: &Value,
    ) -> Result<Option<Value>> {
        let exec_err = |message: String| NetworkError::Exec {
            plugin: plugin.to_string(),
            command: command.to_string(),
            message,
        };
        let binary = self.config.plugin_dir.join(plugin);
        let stdin_bytes =
            serde_json::to_vec(config).map_err(|e| exec_err(format!("encoding config: {e}")))?;
        let mut child = Command::new(&binary)
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", id)
            .env("CNI_NETNS", netns.map(Path::as_os_str).unwrap_or_default())
            .env("CNI_IFNAME", ifname)
            .env("CNI_PATH", &self.config.plugin_dir)
            .env_remove("CNI_ARGS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| exec_err(format!("running {}: {e}", binary.display())))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(&stdin_bytes)
                .await
                .map_err(|e| exec_err(format!("writing config: {e}")))?;
            // Dropping stdin closes it: the plugin reads until EOF.
        }
        let output = tokio::time::timeout(PLUGIN_TIMEOUT, child.wait_with_output())
            .await
            .map_err(|_| exec_err(format!("timed out after {PLUGIN_TIMEOUT:?}")))?
            .map_err(|e| exec_err(format!("waiting: {e}")))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            if let Ok(err) = serde_json::from_slice::<CniError>(&output.stdout) {
                return Err(NetworkError::Plugin {
                    plugin: plugin.to_string(),
                    command: command.to_string(),
                    code: err.code,
                    msg: err.msg,
                    details: err.details,
                });
            }
            return Err(exec_err(format!(
                "{}: {} {}",
                output.status,
                stdout.trim(),
                stderr.trim()
            )));
        }
        if stdout.trim().is_empty() {
            return Ok(None);
        }
        serde_json::from_str(&stdout)
            .map(Some)
            .map_err(|e| exec_err(format!("result is not JSON ({e}): {}", stdout.trim())))
    }
}

/// The error a plugin prints on stdout when it fails.
#[derive(Deserialize)]
struct CniError {
    #[serde(default)]
    code: u64,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    details: String,
}

/// A CNI container ID (`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`), also usable as a file name:
/// `keelson-<sanitized pod key>-<hash of the pod key>`, so that two keys that sanitize
/// alike still differ.
fn container_id(pod_key: &str) -> Result<String> {
    if pod_key.is_empty() {
        return Err(NetworkError::Config("empty pod key".into()));
    }
    let sanitized: String = pod_key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    // FNV-1a: stable across Rust releases, unlike std's DefaultHasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in pod_key.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    Ok(format!("keelson-{sanitized}-{:08x}", hash as u32))
}

/// The pod's address (on `eth0` in the sandbox if the result says so) and its gateway.
fn parse_add_result(result: &Value) -> Option<(String, Option<String>)> {
    let ips = result.get("ips")?.as_array()?;
    let interfaces = result.get("interfaces").and_then(Value::as_array);
    let on_pod_if = |ip: &&Value| {
        let idx = ip.get("interface").and_then(Value::as_u64)?;
        let iface = interfaces?.get(usize::try_from(idx).ok()?)?;
        Some(iface.get("name")?.as_str()? == POD_IFNAME)
    };
    let chosen = ips
        .iter()
        .find(|ip| on_pod_if(ip) == Some(true))
        .or_else(|| ips.first())?;
    let address = chosen.get("address")?.as_str()?;
    let ip = address.split('/').next()?.to_string();
    if ip.parse::<std::net::IpAddr>().is_err() {
        return None;
    }
    let gateway = chosen
        .get("gateway")
        .and_then(Value::as_str)
        .map(str::to_string);
    Some((ip, gateway))
}

async fn read_record(path: &Path) -> Option<Record> {
    let bytes = tokio::fs::read(path).await.ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(record) => Some(record),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "unreadable CNI record");
            None
        }
    }
}

async fn write_record(path: &Path, record: &Record) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| NetworkError::Io(dir.to_path_buf(), e))?;
    let bytes = serde_json::to_vec_pretty(record).map_err(|e| {
        NetworkError::Io(
            path.to_path_buf(),
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })?;
    let tmp = path.with_extension("json.tmp");
    tokio::fs::write(&tmp, &bytes)
        .await
        .map_err(|e| NetworkError::Io(tmp.clone(), e))?;
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(|e| NetworkError::Io(path.to_path_buf(), e))
}

/// Whether something (the namespace's nsfs) is mounted on `path`: it then lives on
/// another device than its directory.
async fn is_mount_point(path: &Path) -> bool {
    let Some(parent) = path.parent() else {
        return false;
    };
    match (
        tokio::fs::metadata(path).await,
        tokio::fs::metadata(parent).await,
    ) {
        (Ok(file), Ok(dir)) => file.dev() != dir.dev(),
        _ => false,
    }
}

/// A tool from util-linux, by absolute path when it is in the usual places.
fn tool(name: &str) -> PathBuf {
    ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

async fn run_tool(name: &str, args: &[&std::ffi::OsStr]) -> std::result::Result<(), String> {
    let output = Command::new(tool(name))
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("running {name}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{name}: {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Creates a new network namespace and bind-mounts it at `path`, like `ip netns add`
/// (which only knows `/var/run/netns`).
async fn create_netns(dir: &Path, path: &Path) -> Result<()> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| NetworkError::Io(dir.to_path_buf(), e))?;
    tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .await
        .map_err(|e| NetworkError::Io(path.to_path_buf(), e))?;
    let mut net_arg = std::ffi::OsString::from("--net=");
    net_arg.push(path.as_os_str());
    if let Err(message) = run_tool("unshare", &[&net_arg, "true".as_ref()]).await {
        let _ = tokio::fs::remove_file(path).await;
        return Err(NetworkError::Netns(path.to_path_buf(), message));
    }
    if !is_mount_point(path).await {
        let _ = tokio::fs::remove_file(path).await;
        return Err(NetworkError::Netns(
            path.to_path_buf(),
            "not mounted after unshare".into(),
        ));
    }
    Ok(())
}

/// Unmounts (lazily, like `ip netns delete`) and removes a pod's namespace file.
async fn delete_netns(path: &Path, mounted: bool) -> Result<()> {
    if mounted {
        run_tool("umount", &["-l".as_ref(), path.as_os_str()])
            .await
            .map_err(|message| NetworkError::Netns(path.to_path_buf(), message))?;
    }
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(NetworkError::Io(path.to_path_buf(), e)),
    }
}

/// A pod network provider: the CNI plugins, or addresses handed out without any
/// interfaces for simulated nodes.
#[async_trait::async_trait]
pub trait Network: Send + Sync {
    async fn setup(&self, pod_key: &str) -> Result<PodNetwork>;
    async fn teardown(&self, pod_key: &str) -> Result<()>;
    async fn recorded_pods(&self) -> Vec<String>;
}

#[async_trait::async_trait]
impl Network for Cni {
    async fn setup(&self, pod_key: &str) -> Result<PodNetwork> {
        Cni::setup(self, pod_key).await
    }

    async fn teardown(&self, pod_key: &str) -> Result<()> {
        Cni::teardown(self, pod_key).await
    }

    async fn recorded_pods(&self) -> Vec<String> {
        Cni::recorded_pods(self).await
    }
}

/// Addresses for simulated pods: the next free host of a /16, no namespace, no interface.
pub struct SimulatedNetwork {
    prefix: [u8; 2],
    pods: StdMutex<HashMap<String, u16>>,
}

impl SimulatedNetwork {
    /// Pods get `A.B.x.y` addresses.
    pub fn new(prefix: [u8; 2]) -> SimulatedNetwork {
        SimulatedNetwork {
            prefix,
            pods: StdMutex::new(HashMap::new()),
        }
    }
}

#[async_trait::async_trait]
impl Network for SimulatedNetwork {
    async fn setup(&self, pod_key: &str) -> Result<PodNetwork> {
        let mut pods = self
            .pods
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let host = match pods.get(pod_key) {
            Some(h) => *h,
            None => {
                let used: std::collections::HashSet<u16> = pods.values().copied().collect();
                let host = (2..u16::MAX)
                    .find(|h| !used.contains(h))
                    .ok_or_else(|| NetworkError::Config("no free simulated address".into()))?;
                pods.insert(pod_key.to_string(), host);
                host
            }
        };
        let [a, b] = self.prefix;
        Ok(PodNetwork {
            netns_path: PathBuf::new(),
            ip: format!("{a}.{b}.{}.{}", host >> 8, host & 0xff),
            gateway: None,
        })
    }

    async fn teardown(&self, pod_key: &str) -> Result<()> {
        self.pods
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(pod_key);
        Ok(())
    }

    async fn recorded_pods(&self) -> Vec<String> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids_are_valid_and_distinct() {
        let a = container_id("default/web-0").unwrap();
        let b = container_id("default_web-0").unwrap();
        assert_ne!(a, b);
        for id in [&a, &b] {
            assert!(id.starts_with("keelson-"));
            assert!(id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
        }
        assert_eq!(a, container_id("default/web-0").unwrap());
        assert!(container_id("").is_err());
        assert!(container_id(&"x".repeat(500)).unwrap().len() < 100);
    }

    #[test]
    fn parses_the_pod_address_from_a_1_0_0_result() {
        let result = json!({
            "cniVersion": "1.0.0",
            "interfaces": [
                {"name": "br0", "mac": "aa"},
                {"name": "veth1", "mac": "bb"},
                {"name": "eth0", "mac": "cc", "sandbox": "/var/run/netns/x"}
            ],
            "ips": [{"interface": 2, "address": "10.1.2.3/24", "gateway": "10.1.2.1"}]
        });
        assert_eq!(
            parse_add_result(&result),
            Some(("10.1.2.3".into(), Some("10.1.2.1".into())))
        );
        assert_eq!(parse_add_result(&json!({"ips": []})), None);
        assert_eq!(
            parse_add_result(&json!({"ips": [{"address": "garbage"}]})),
            None
        );
    }
}
