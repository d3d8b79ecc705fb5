//! A pod's volumes on the node's disk (emptyDir, configMap, secret, hostPath, projected,
//! downwardAPI) and the mounts each container gets, laid out as upstream's volume plugins
//! do: `<pod dir>/volumes/<plugin>/<volume name>`.
//!
//! configMap, secret, downwardAPI and projected volumes are written with upstream's
//! atomic writer ([`atomic`]): the visible names are symlinks through `..data`, which is
//! swapped in one rename, so a container never sees half an update. [`prepare`] is called
//! again while the pod runs to refresh them; emptyDir contents are never touched again.

use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::{
    ConfigMap, Container, DownwardAPIVolumeFile, EmptyDirVolumeSource, HostPathVolumeSource,
    KeyToPath, Pod, Secret, ServiceAccountTokenProjection, Volume,
};
use keelson_apimachinery::quantity::Quantity;
use keelson_apimachinery::validation::go_quote;
use serde::{Deserialize, Serialize};

use super::env::{expand, object_field_value, resource_field_value, PodContext};
use super::source::ObjectSource;

pub const EMPTY_DIR_PLUGIN: &str = "kubernetes.io~empty-dir";
pub const CONFIG_MAP_PLUGIN: &str = "kubernetes.io~configmap";
pub const SECRET_PLUGIN: &str = "kubernetes.io~secret";
pub const PROJECTED_PLUGIN: &str = "kubernetes.io~projected";
pub const DOWNWARD_API_PLUGIN: &str = "kubernetes.io~downward-api";

/// Mode of projected files when neither the volume nor the item says (the API default).
const DEFAULT_MODE: i32 = 0o644;
/// `ServiceAccountTokenProjection.expirationSeconds` default.
const DEFAULT_TOKEN_EXPIRATION: i64 = 3600;

/// Why a volume could not be set up, or a container's mounts not be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VolumeError {
    /// Upstream's FailedMount event message.
    #[error("MountVolume.SetUp failed for volume {} : {message}", go_quote(volume))]
    SetUp { volume: String, message: String },
    /// A volumeMount that cannot be honoured (the kubelet reports it like an env error,
    /// as `CreateContainerConfigError`).
    #[error("{0}")]
    Mount(String),
}

/// A volume ready on the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreparedVolume {
    pub host_path: PathBuf,
    /// Mounted read-only whatever the volumeMount says (configMap, secret, downwardAPI,
    /// projected).
    pub read_only: bool,
}

/// The pod's prepared volumes, by name.
#[derive(Clone, Debug, Default)]
pub struct PodVolumes {
    volumes: BTreeMap<String, PreparedVolume>,
}

impl PodVolumes {
    pub fn get(&self, name: &str) -> Option<&PreparedVolume> {
        self.volumes.get(name)
    }

    /// The bind mounts of `container`: (host path, container path, read-only), from its
    /// volumeMounts. `env` is the container's environment, for `subPathExpr`.
    pub fn mounts(
        &self,
        container: &Container,
        env: &[(String, String)],
    ) -> Result<Vec<(PathBuf, String, bool)>, VolumeError> {
        let mut out = Vec::new();
        for m in container.volume_mounts.iter().flatten() {
            let vol = self.volumes.get(&m.name).ok_or_else(|| {
                VolumeError::Mount(format!(
                    "cannot find volume {} to mount into container {}",
                    go_quote(&m.name),
                    go_quote(&container.name)
                ))
            })?;
            let sub_path = match m.sub_path_expr.as_deref().filter(|e| !e.is_empty()) {
                Some(expr) => expand_sub_path(expr, env)?,
                None => m.sub_path.clone().unwrap_or_default(),
            };
            let host = if sub_path.is_empty() {
                vol.host_path.clone()
            } else {
                if sub_path.starts_with('/') {
                    return Err(VolumeError::Mount(format!(
                        "error SubPath `{sub_path}` must not be an absolute path"
                    )));
                }
                if sub_path.split('/').any(|p| p == "..") {
                    return Err(VolumeError::Mount(format!(
                        "unable to provision SubPath `{sub_path}`: must not contain '..'"
                    )));
                }
                sub_path_on_host(&vol.host_path, &sub_path).map_err(|what| {
                    VolumeError::Mount(format!(
                        "{what} for volumeMount {} of container {}",
                        go_quote(&m.name),
                        go_quote(&container.name)
                    ))
                })?
            };
            match m.mount_propagation.as_deref() {
                None | Some("None" | "HostToContainer" | "Bidirectional") => {}
                Some(other) => {
                    return Err(VolumeError::Mount(format!(
                        "invalid MountPropagation mode: {}",
                        go_quote(other)
                    )))
                }
            }
            let container_path = if m.mount_path.starts_with('/') {
                m.mount_path.clone()
            } else {
                format!("/{}", m.mount_path)
            };
            out.push((
                host,
                container_path,
                m.read_only.unwrap_or(false) || vol.read_only,
            ));
        }
        Ok(out)
    }
}

/// upstream `ExpandContainerVolumeMounts`: every referenced variable must have a value.
fn expand_sub_path(expr: &str, env: &[(String, String)]) -> Result<String, VolumeError> {
    let missing = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let expanded = expand(expr, |name| {
        let value = env
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        if value.is_empty() {
            missing.borrow_mut().insert(name.to_string());
        }
        Some(value)
    });
    let missing = missing.into_inner();
    if !missing.is_empty() {
        let names: Vec<String> = missing.into_iter().collect();
        return Err(VolumeError::Mount(format!(
            "missing value for {}",
            names.join(", ")
        )));
    }
    Ok(expanded)
}

/// The host path of `sub_path` inside a volume, created as a directory (with the volume
/// root's mode) when missing. Neither creation nor the result may leave the volume through
/// a symlink. Err: what failed, without host details (users see it).
fn sub_path_on_host(volume: &Path, sub_path: &str) -> Result<PathBuf, &'static str> {
    use std::os::unix::fs::PermissionsExt;
    let root = volume
        .canonicalize()
        .map_err(|_| "failed to prepare subPath")?;
    let mode = std::fs::metadata(&root)
        .map(|m| m.permissions().mode() & 0o7777)
        .map_err(|_| "failed to prepare subPath")?;
    let mut current = root.clone();
    for part in Path::new(sub_path).components() {
        let Component::Normal(part) = part else {
            continue;
        };
        let next = current.join(part);
        match std::fs::symlink_metadata(&next) {
            Ok(_) => {
                current = next
                    .canonicalize()
                    .map_err(|_| "failed to prepare subPath")?;
                if !current.starts_with(&root) {
                    return Err("failed to prepare subPath");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir(&next)
                    .and_then(|()| {
                        std::fs::set_permissions(&next, std::fs::Permissions::from_mode(mode))
                    })
                    .map_err(|_| "failed to create subPath directory")?;
                current = next;
            }
            Err(_) => return Err("failed to prepare subPath"),
        }
    }
    Ok(current)
}

/// Sets up (or refreshes) every volume of `pod` under `pod_dir`. All volumes are tried;
/// the first failure is returned (the others are logged).
pub async fn prepare(
    pod: &Pod,
    pod_dir: &Path,
    ctx: &PodContext,
    source: &dyn ObjectSource,
) -> Result<PodVolumes, VolumeError> {
    let mut volumes = BTreeMap::new();
    let mut first_error = None;
    for vol in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        match prepare_one(pod, pod_dir, ctx, source, vol).await {
            Ok(prepared) => {
                volumes.insert(vol.name.clone(), prepared);
            }
            Err(message) => {
                let err = VolumeError::SetUp {
                    volume: vol.name.clone(),
                    message,
                };
                tracing::warn!(pod = ?pod.metadata.name, error = %err, "setting up a volume");
                first_error.get_or_insert(err);
            }
        }
    }
    match first_error {
        Some(err) => Err(err),
        None => Ok(PodVolumes { volumes }),
    }
}

/// Unmounts whatever is mounted under `pod_dir` (memory-backed volumes) and removes it.
/// When something stays mounted, the directory is kept, so that nothing is deleted through
/// a mount.
pub async fn cleanup(pod_dir: &Path) {
    let dir = pod_dir.to_path_buf();
    let result = tokio::task::spawn_blocking(move || mount::cleanup(&dir)).await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(dir = %pod_dir.display(), error = %e, "cleaning up pod volumes")
        }
        Err(e) => tracing::warn!(dir = %pod_dir.display(), error = %e, "cleaning up pod volumes"),
    }
}

async fn prepare_one(
    pod: &Pod,
    pod_dir: &Path,
    ctx: &PodContext,
    source: &dyn ObjectSource,
    vol: &Volume,
) -> Result<PreparedVolume, String> {
    let dir = |plugin: &str| pod_dir.join("volumes").join(plugin).join(&vol.name);
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    if let Some(ed) = &vol.empty_dir {
        let dir = dir(EMPTY_DIR_PLUGIN);
        let medium = ed.medium.clone().unwrap_or_default();
        let size = memory_volume_size(pod, ed, ctx);
        let host = dir.clone();
        blocking(move || setup_empty_dir(&host, &medium, size)).await?;
        return Ok(PreparedVolume {
            host_path: dir,
            read_only: false,
        });
    }
    if let Some(hp) = &vol.host_path {
        let hp = hp.clone();
        let path = PathBuf::from(&hp.path);
        blocking(move || check_host_path(&hp)).await?;
        return Ok(PreparedVolume {
            host_path: path,
            read_only: false,
        });
    }
    // Secrets and tokens stay in memory (upstream wraps these in a memory emptyDir).
    let (plugin, payload, in_memory) = if let Some(src) = &vol.config_map {
        let cm = fetch_config_map(source, namespace, &src.name, src.optional).await?;
        let mode = src.default_mode.unwrap_or(DEFAULT_MODE);
        let payload = config_map_payload(src.items.as_deref(), &cm, mode, src.optional)?;
        (CONFIG_MAP_PLUGIN, payload, false)
    } else if let Some(src) = &vol.secret {
        let name = src.secret_name.as_deref().unwrap_or("");
        let secret = fetch_secret(source, namespace, name, src.optional).await?;
        let mode = src.default_mode.unwrap_or(DEFAULT_MODE);
        let payload = secret_payload(src.items.as_deref(), &secret, mode, src.optional)?;
        (SECRET_PLUGIN, payload, true)
    } else if let Some(src) = &vol.downward_api {
        let mode = src.default_mode.unwrap_or(DEFAULT_MODE);
        let payload = downward_api_payload(src.items.as_deref(), pod, ctx, mode)
            .map_err(|errs| aggregate(&errs))?;
        (DOWNWARD_API_PLUGIN, payload, true)
    } else if let Some(src) = &vol.projected {
        let mode = src.default_mode.unwrap_or(DEFAULT_MODE);
        let cache = pod_dir
            .join("plugins")
            .join(PROJECTED_PLUGIN)
            .join(&vol.name)
            .join("token-cache.json");
        let sources = src.sources.as_deref().unwrap_or_default();
        let payload = projected_payload(sources, pod, ctx, source, mode, &cache).await?;
        (PROJECTED_PLUGIN, payload, true)
    } else {
        return Err(format!(
            "volume type {} is not supported by this kubelet",
            volume_type(vol)
        ));
    };
    let dir = dir(plugin);
    let host = dir.clone();
    blocking(move || {
        mount::setup_wrapped_dir(&host, in_memory)?;
        atomic::write(&host, payload)
    })
    .await?;
    Ok(PreparedVolume {
        host_path: dir,
        read_only: true,
    })
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| e.to_string())?
}

/// The volume source's field name (`persistentVolumeClaim`, ...), for messages.
fn volume_type(vol: &Volume) -> String {
    serde_json::to_value(vol)
        .ok()
        .and_then(|v| {
            v.as_object()
                .and_then(|o| o.keys().find(|k| *k != "name").cloned())
        })
        .map(|k| go_quote(&k))
        .unwrap_or_else(|| "(none)".into())
}

/// upstream `utilerrors.NewAggregate(...).Error()`: one message, or `[a, b]`, without
/// repeats.
fn aggregate(errors: &[String]) -> String {
    let mut seen: Vec<&String> = Vec::new();
    for e in errors {
        if !seen.contains(&e) {
            seen.push(e);
        }
    }
    match seen.as_slice() {
        [one] => (*one).clone(),
        many => format!(
            "[{}]",
            many.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

// --- emptyDir --------------------------------------------------------------------------

fn setup_empty_dir(dir: &Path, medium: &str, size: Option<u128>) -> Result<(), String> {
    match medium {
        "" => {
            if !dir.exists() {
                std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
                mount::make_world_writable(dir)?;
            }
            Ok(())
        }
        "Memory" => {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
            if !mount::is_mount_point(dir)? {
                mount::mount_tmpfs(dir, size).map_err(|e| format!("mounting tmpfs: {e}"))?;
                mount::make_world_writable(dir)?;
            }
            Ok(())
        }
        other => Err(format!(
            "emptyDir medium {} is not supported",
            go_quote(other)
        )),
    }
}

/// upstream `calculateEmptyDirMemorySize`: the smallest of node allocatable memory, the
/// pod's memory limit and the volume's sizeLimit (zero values ignored). None: no limit
/// known, the kernel's default applies.
fn memory_volume_size(pod: &Pod, ed: &EmptyDirVolumeSource, ctx: &PodContext) -> Option<u128> {
    if ed.medium.as_deref() != Some("Memory") {
        return None;
    }
    let bytes = |q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity| {
        Quantity::parse(&q.0)
            .ok()
            .and_then(|q| u128::try_from(q.value()).ok())
            .filter(|v| *v > 0)
    };
    let mut size = ctx.node_allocatable.get("memory").and_then(bytes);
    let mut shrink = |candidate: Option<u128>| {
        if let Some(c) = candidate {
            if size.is_none_or(|s| c <= s) {
                size = Some(c);
            }
        }
    };
    shrink(pod_memory_limit(pod));
    shrink(ed.size_limit.as_ref().and_then(bytes));
    size
}

/// The pod's memory limit as its cgroup gets it: the pod-level limit, or when every app
/// container has one, max(sum of app containers and sidecars, largest init container)
/// plus the pod overhead.
fn pod_memory_limit(pod: &Pod) -> Option<u128> {
    let spec = pod.spec.as_ref()?;
    let limit_of = |c: &Container| {
        c.resources
            .as_ref()
            .and_then(|r| r.limits.as_ref())
            .and_then(|l| l.get("memory"))
            .and_then(|q| Quantity::parse(&q.0).ok())
            .and_then(|q| u128::try_from(q.value()).ok())
            .filter(|v| *v > 0)
    };
    let pod_level = spec
        .resources
        .as_ref()
        .and_then(|r| r.limits.as_ref())
        .and_then(|l| l.get("memory"))
        .and_then(|q| Quantity::parse(&q.0).ok())
        .and_then(|q| u128::try_from(q.value()).ok())
        .filter(|v| *v > 0);
    if pod_level.is_some() {
        return pod_level;
    }
    let mut sum: u128 = 0;
    for c in &spec.containers {
        sum = sum.saturating_add(limit_of(c)?);
    }
    let mut init_max: u128 = 0;
    for c in spec.init_containers.iter().flatten() {
        let limit = limit_of(c).unwrap_or(0);
        if c.restart_policy.as_deref() == Some("Always") {
            sum = sum.saturating_add(limit);
        } else {
            init_max = init_max.max(limit);
        }
    }
    let overhead = spec
        .overhead
        .as_ref()
        .and_then(|o| o.get("memory"))
        .and_then(|q| Quantity::parse(&q.0).ok())
        .and_then(|q| u128::try_from(q.value()).ok())
        .unwrap_or(0);
    Some(sum.max(init_max).saturating_add(overhead))
}

// --- hostPath --------------------------------------------------------------------------

/// upstream `hostPathMounter.SetUp` / `checkType`, with its messages.
fn check_host_path(src: &HostPathVolumeSource) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = src.path.as_str();
    if path.split('/').any(|p| p == "..") {
        return Err(format!("invalid HostPath `{path}`: must not contain '..'"));
    }
    let exists = Path::new(path).exists();
    match src.type_.as_deref().unwrap_or("") {
        "" => Ok(()),
        "DirectoryOrCreate" => {
            if !exists {
                std::fs::create_dir_all(path).map_err(|e| format!("mkdir {path}: {e}"))?;
            }
            type_matched(path, "Directory", "directory")
        }
        "Directory" => type_matched(path, "Directory", "directory"),
        "FileOrCreate" => {
            if !exists {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o644)
                    .open(path)
                    .map_err(|e| format!("open {path}: {e}"))?;
            }
            type_matched(path, "File", "file")
        }
        "File" => type_matched(path, "File", "file"),
        "Socket" => type_matched(path, "Socket", "socket file"),
        "CharDevice" => type_matched(path, "CharDevice", "character device"),
        "BlockDevice" => type_matched(path, "BlockDevice", "block device"),
        other => Err(format!("{other} is an invalid volume type")),
    }
}

fn type_matched(path: &str, expected: &str, description: &str) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    if !Path::new(path).exists() {
        return Err(format!("hostPath {path} doesn't exist"));
    }
    let actual = std::fs::metadata(path)
        .map_err(|e| e.to_string())
        .and_then(|m| {
            let t = m.file_type();
            if t.is_dir() {
                Ok("Directory")
            } else if t.is_file() {
                Ok("File")
            } else if t.is_socket() {
                Ok("Socket")
            } else if t.is_char_device() {
                Ok("CharDevice")
            } else if t.is_block_device() {
                Ok("BlockDevice")
            } else {
                Err("only recognise file, directory, socket, block device and character device"
                    .to_string())
            }
        })
        .map_err(|e| {
            format!("hostPath type check failed, {path} is not a {description}, unable to determine its type: {e}")
        })?;
    if actual != expected {
        return Err(format!(
            "hostPath type check failed: {path} is not a {description}, it's a {actual}"
        ));
    }
    Ok(())
}

// --- configMap, secret, downwardAPI, projected payloads ---------------------------------

type Payload = BTreeMap<String, atomic::FileProjection>;

async fn fetch_config_map(
    source: &dyn ObjectSource,
    namespace: &str,
    name: &str,
    optional: Option<bool>,
) -> Result<ConfigMap, String> {
    match source.config_map(namespace, name).await.map_err(|e| e.0)? {
        Some(cm) => Ok(cm),
        None if optional.unwrap_or(false) => Ok(ConfigMap::default()),
        None => Err(format!("configmap {} not found", go_quote(name))),
    }
}

async fn fetch_secret(
    source: &dyn ObjectSource,
    namespace: &str,
    name: &str,
    optional: Option<bool>,
) -> Result<Secret, String> {
    match source.secret(namespace, name).await.map_err(|e| e.0)? {
        Some(s) => Ok(s),
        None if optional.unwrap_or(false) => Ok(Secret::default()),
        None => Err(format!("secret {} not found", go_quote(name))),
    }
}

/// upstream `configmap.MakePayload`: all keys (data and binaryData), or the listed items.
fn config_map_payload(
    items: Option<&[KeyToPath]>,
    cm: &ConfigMap,
    default_mode: i32,
    optional: Option<bool>,
) -> Result<Payload, String> {
    let mut data: BTreeMap<String, Vec<u8>> = cm
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    for (k, v) in cm.binary_data.iter().flatten() {
        data.entry(k.clone()).or_insert_with(|| v.0.clone());
    }
    key_payload(
        items,
        data,
        default_mode,
        optional,
        "configmap references non-existent config key",
    )
}

/// upstream `secret.MakePayload`.
fn secret_payload(
    items: Option<&[KeyToPath]>,
    secret: &Secret,
    default_mode: i32,
    optional: Option<bool>,
) -> Result<Payload, String> {
    let mut data: BTreeMap<String, Vec<u8>> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in secret.string_data.iter().flatten() {
        data.insert(k.clone(), v.clone().into_bytes());
    }
    key_payload(
        items,
        data,
        default_mode,
        optional,
        "references non-existent secret key",
    )
}

fn key_payload(
    items: Option<&[KeyToPath]>,
    data: BTreeMap<String, Vec<u8>>,
    default_mode: i32,
    optional: Option<bool>,
    missing: &str,
) -> Result<Payload, String> {
    let items = items.unwrap_or_default();
    if items.is_empty() {
        return Ok(data
            .into_iter()
            .map(|(k, v)| (k, atomic::FileProjection::new(v, default_mode)))
            .collect());
    }
    let mut payload = Payload::new();
    for item in items {
        let Some(bytes) = data.get(&item.key).cloned() else {
            if optional.unwrap_or(false) {
                continue;
            }
            return Err(format!("{missing}: {}", item.key));
        };
        let mode = item.mode.unwrap_or(default_mode);
        payload.insert(item.path.clone(), atomic::FileProjection::new(bytes, mode));
    }
    Ok(payload)
}

/// upstream `downwardapi.CollectData`. Err: every failure, for [`aggregate`].
fn downward_api_payload(
    items: Option<&[DownwardAPIVolumeFile]>,
    pod: &Pod,
    ctx: &PodContext,
    default_mode: i32,
) -> Result<Payload, Vec<String>> {
    let mut payload = Payload::new();
    let mut errors = Vec::new();
    for item in items.unwrap_or_default() {
        let mode = item.mode.unwrap_or(default_mode);
        let value = if let Some(field) = &item.field_ref {
            object_field_value(pod, &field.field_path)
        } else if let Some(field) = &item.resource_field_ref {
            resource_field_value(field, pod, None, &ctx.node_allocatable)
        } else {
            Ok(String::new())
        };
        match value {
            Ok(v) => {
                payload.insert(
                    atomic::clean(&item.path),
                    atomic::FileProjection::new(v.into_bytes(), mode),
                );
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(payload)
    } else {
        Err(errors)
    }
}

/// upstream `projectedVolumeMounter.collectData`: every source is tried, all failures are
/// reported together and nothing is written then.
async fn projected_payload(
    sources: &[k8s_openapi::api::core::v1::VolumeProjection],
    pod: &Pod,
    ctx: &PodContext,
    source: &dyn ObjectSource,
    default_mode: i32,
    token_cache: &Path,
) -> Result<Payload, String> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut payload = Payload::new();
    let mut errors = Vec::new();
    let mut tokens = tokens::Cache::load(token_cache);
    for projection in sources {
        let part = if let Some(src) = &projection.secret {
            match fetch_secret(source, namespace, &src.name, src.optional).await {
                Ok(secret) => {
                    secret_payload(src.items.as_deref(), &secret, default_mode, src.optional)
                }
                Err(e) => Err(e),
            }
        } else if let Some(src) = &projection.config_map {
            match fetch_config_map(source, namespace, &src.name, src.optional).await {
                Ok(cm) => config_map_payload(src.items.as_deref(), &cm, default_mode, src.optional),
                Err(e) => Err(e),
            }
        } else if let Some(src) = &projection.downward_api {
            match downward_api_payload(src.items.as_deref(), pod, ctx, default_mode) {
                Ok(part) => payload.extend(part),
                Err(errs) => errors.extend(errs),
            }
            continue;
        } else if let Some(src) = &projection.service_account_token {
            tokens.get(pod, src, source).await.map(|token| {
                let file = atomic::FileProjection::new(token.into_bytes(), default_mode);
                Payload::from([(src.path.clone(), file)])
            })
        } else if projection.cluster_trust_bundle.is_some() {
            Err("clusterTrustBundle projections are not supported by this kubelet".into())
        } else if projection.pod_certificate.is_some() {
            Err("podCertificate projections are not supported by this kubelet".into())
        } else {
            Ok(Payload::new())
        };
        match part {
            Ok(part) => payload.extend(part),
            Err(e) => errors.push(e),
        }
    }
    tokens.save();
    if errors.is_empty() {
        Ok(payload)
    } else {
        Err(aggregate(&errors))
    }
}

/// Service account tokens of projected volumes, reused until upstream's token manager
/// would refresh them (80% of their lifetime, or 24 hours), so that periodic refreshes
/// do not mint a token each time. Kept next to the volume, in the pod's plugin dir.
mod tokens {
    use super::*;
    use base64::Engine;

    /// Upstream `maxTTL`: a token older than this is replaced whatever its expiry.
    const MAX_TTL: u64 = 24 * 3600;

    #[derive(Clone, Debug, Default, Serialize, Deserialize)]
    struct Entry {
        token: String,
        audience: Option<String>,
        expiration_seconds: i64,
        /// Unix seconds.
        expires_at: u64,
    }

    pub(super) struct Cache {
        path: PathBuf,
        entries: BTreeMap<String, Entry>,
        dirty: bool,
    }

    impl Cache {
        pub(super) fn load(path: &Path) -> Cache {
            let entries = std::fs::read(path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            Cache {
                path: path.to_path_buf(),
                entries,
                dirty: false,
            }
        }

        pub(super) async fn get(
            &mut self,
            pod: &Pod,
            src: &ServiceAccountTokenProjection,
            source: &dyn ObjectSource,
        ) -> Result<String, String> {
            let audience = src.audience.clone().filter(|a| !a.is_empty());
            let expiration = src.expiration_seconds.unwrap_or(DEFAULT_TOKEN_EXPIRATION);
            let now = unix_now();
            if let Some(entry) = self.entries.get(&src.path) {
                let same = entry.audience == audience && entry.expiration_seconds == expiration;
                if same && !requires_refresh(entry, now) {
                    return Ok(entry.token.clone());
                }
            }
            let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
            let spec = pod.spec.as_ref();
            let account = spec
                .and_then(|s| s.service_account_name.as_deref())
                .filter(|s| !s.is_empty())
                .unwrap_or("default");
            let token = source
                .service_account_token(
                    namespace,
                    account,
                    audience.as_deref(),
                    expiration,
                    pod.metadata.name.as_deref().unwrap_or_default(),
                    pod.metadata.uid.as_deref().unwrap_or_default(),
                )
                .await
                .map_err(|e| format!("failed to fetch token: {e}"))?
                .ok_or_else(|| {
                    "failed to fetch token: the API server does not serve serviceaccounts/token"
                        .to_string()
                })?;
            let expires_at = jwt_expiry(&token)
                .unwrap_or_else(|| now.saturating_add(u64::try_from(expiration).unwrap_or(0)));
            self.entries.insert(
                src.path.clone(),
                Entry {
                    token: token.clone(),
                    audience,
                    expiration_seconds: expiration,
                    expires_at,
                },
            );
            self.dirty = true;
            Ok(token)
        }

        pub(super) fn save(&self) {
            if !self.dirty {
                return;
            }
            let write = || -> io::Result<()> {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                if let Some(dir) = self.path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let tmp = self.path.with_extension("tmp");
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .write(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)?;
                f.write_all(&serde_json::to_vec(&self.entries).map_err(io::Error::other)?)?;
                std::fs::rename(&tmp, &self.path)
            };
            if let Err(e) = write() {
                tracing::warn!(path = %self.path.display(), error = %e, "saving service account tokens");
            }
        }
    }

    /// upstream token manager `requiresRefresh` (without its jitter).
    fn requires_refresh(entry: &Entry, now: u64) -> bool {
        let lifetime = u64::try_from(entry.expiration_seconds).unwrap_or(0);
        let issued = entry.expires_at.saturating_sub(lifetime);
        now > issued.saturating_add(MAX_TTL) || now > entry.expires_at.saturating_sub(lifetime / 5)
    }

    /// The `exp` claim of a JWT (the server may shorten or extend what was asked).
    fn jwt_expiry(token: &str) -> Option<u64> {
        let claims = token.split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims.trim_end_matches('='))
            .ok()?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        value.get("exp")?.as_u64()
    }

    pub(super) fn unix_now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    #[cfg(test)]
    pub(super) fn jwt_expiry_for_test(token: &str) -> Option<u64> {
        jwt_expiry(token)
    }
}

/// upstream `pkg/volume/util/atomic_writer.go`.
pub(crate) mod atomic {
    use std::collections::BTreeSet;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const MAX_FILE_NAME_LENGTH: usize = 255;
    const MAX_PATH_LENGTH: usize = 4096;
    const DATA_DIR: &str = "..data";
    const NEW_DATA_DIR: &str = "..data_tmp";

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct FileProjection {
        pub data: Vec<u8>,
        pub mode: u32,
    }

    impl FileProjection {
        pub fn new(data: Vec<u8>, mode: i32) -> Self {
            FileProjection {
                data,
                mode: u32::try_from(mode).unwrap_or(0o644) & 0o777,
            }
        }
    }

    /// Projects `payload` into `target` (which must exist): files go to a new timestamped
    /// directory, `..data` is switched to it with one rename, then names that left the
    /// payload and the old directory are removed. Nothing is written when nothing changed.
    pub fn write(target: &Path, payload: BTreeMap<String, FileProjection>) -> Result<(), String> {
        let mut clean_payload = BTreeMap::new();
        for (path, file) in payload {
            validate_path(&path)?;
            clean_payload.insert(clean(&path), file);
        }
        let payload = clean_payload;
        let data_dir = target.join(DATA_DIR);
        let old_ts = match std::fs::read_link(&data_dir) {
            Ok(p) => Some(p),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("error reading link for data directory: {e}")),
        };
        let old_ts_path = old_ts.as_ref().map(|p| target.join(p));
        let mut to_remove = BTreeSet::new();
        if let Some(old) = &old_ts_path {
            to_remove = paths_to_remove(&payload, old)?;
            if !should_write(&payload, old)? && to_remove.is_empty() {
                return Ok(());
            }
        }
        let ts_dir = new_timestamp_dir(target)?;
        let ts_name = ts_dir
            .file_name()
            .map(PathBuf::from)
            .ok_or("bad timestamp directory")?;
        if let Err(e) = write_payload(&payload, &ts_dir) {
            let _ = std::fs::remove_dir_all(&ts_dir);
            return Err(e);
        }
        create_user_visible_files(target, &payload)?;
        let new_data_dir = target.join(NEW_DATA_DIR);
        let _ = std::fs::remove_file(&new_data_dir);
        if let Err(e) = std::os::unix::fs::symlink(&ts_name, &new_data_dir) {
            let _ = std::fs::remove_dir_all(&ts_dir);
            return Err(format!(
                "error creating symbolic link for atomic update: {e}"
            ));
        }
        if let Err(e) = std::fs::rename(&new_data_dir, &data_dir) {
            let _ = std::fs::remove_file(&new_data_dir);
            let _ = std::fs::remove_dir_all(&ts_dir);
            return Err(format!(
                "error renaming symbolic link for data directory: {e}"
            ));
        }
        for path in to_remove.iter().filter(|p| !p.contains('/')) {
            if let Err(e) = std::fs::remove_file(target.join(path)) {
                tracing::warn!(path, error = %e, "pruning an old user-visible path");
            }
        }
        remove_stale_timestamp_dirs(target, &ts_name);
        Ok(())
    }

    fn validate_path(path: &str) -> Result<(), String> {
        if path.is_empty() {
            return Err(format!(
                "invalid path: must not be empty: {}",
                go_quote(path)
            ));
        }
        if path.starts_with('/') {
            return Err(format!("invalid path: must be relative path: {path}"));
        }
        if path.len() > MAX_PATH_LENGTH {
            return Err(format!(
                "invalid path: must be less than or equal to {MAX_PATH_LENGTH} characters"
            ));
        }
        let items: Vec<&str> = path.split('/').collect();
        for item in &items {
            if *item == ".." {
                return Err(format!("invalid path: must not contain '..': {path}"));
            }
            if item.len() > MAX_FILE_NAME_LENGTH {
                return Err(format!(
                    "invalid path: filenames must be less than or equal to {MAX_FILE_NAME_LENGTH} characters"
                ));
            }
        }
        if items[0].starts_with("..") && items[0].len() > 2 {
            return Err(format!("invalid path: must not start with '..': {path}"));
        }
        Ok(())
    }

    /// Go's `filepath.Clean` for the relative paths the payload holds.
    pub fn clean(path: &str) -> String {
        let parts: Vec<&str> = path
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        if parts.is_empty() {
            ".".into()
        } else {
            parts.join("/")
        }
    }

    fn should_write(
        payload: &BTreeMap<String, FileProjection>,
        old_ts: &Path,
    ) -> Result<bool, String> {
        for (path, file) in payload {
            let full = old_ts.join(path);
            let meta = match std::fs::symlink_metadata(&full) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
                Err(e) => return Err(e.to_string()),
            };
            if meta.permissions().mode() & 0o777 != file.mode {
                return Ok(true);
            }
            let on_disk = std::fs::read(&full).map_err(|e| e.to_string())?;
            if on_disk != file.data {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Paths in the old data directory that the payload no longer has (its files and
    /// their parent directories count as present).
    fn paths_to_remove(
        payload: &BTreeMap<String, FileProjection>,
        old_ts: &Path,
    ) -> Result<BTreeSet<String>, String> {
        let mut old = BTreeSet::new();
        if let Err(e) = walk(old_ts, "", &mut old) {
            if e.kind() != io::ErrorKind::NotFound {
                return Err(e.to_string());
            }
        }
        let mut new = BTreeSet::new();
        for path in payload.keys() {
            let mut p = path.as_str();
            loop {
                new.insert(p.to_string());
                match p.rfind('/') {
                    Some(i) => p = &p[..i],
                    None => break,
                }
            }
        }
        Ok(old.difference(&new).cloned().collect())
    }

    fn walk(dir: &Path, prefix: &str, out: &mut BTreeSet<String>) -> io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            if entry.file_type()?.is_dir() {
                walk(&entry.path(), &rel, out)?;
            }
            out.insert(rel);
        }
        Ok(())
    }

    fn new_timestamp_dir(target: &Path) -> Result<PathBuf, String> {
        let stamp = chrono::Utc::now()
            .format("..%Y_%m_%d_%H_%M_%S.")
            .to_string();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        for attempt in 0..100u32 {
            let dir = target.join(format!("{stamp}{}", nanos.wrapping_add(attempt)));
            match std::fs::create_dir(&dir) {
                Ok(()) => {
                    // Group and others must be able to traverse it, whatever the umask.
                    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
                        .map_err(|e| format!("unable to set mode on new temp directory: {e}"))?;
                    return Ok(dir);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(format!("unable to create new temp directory: {e}")),
            }
        }
        Err("unable to create new temp directory".into())
    }

    fn write_payload(payload: &BTreeMap<String, FileProjection>, dir: &Path) -> Result<(), String> {
        for (path, file) in payload {
            let full = dir.join(path);
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("unable to create directory {}: {e}", parent.display()))?;
            }
            std::fs::write(&full, &file.data)
                .and_then(|()| {
                    std::fs::set_permissions(&full, std::fs::Permissions::from_mode(file.mode))
                })
                .map_err(|e| {
                    format!(
                        "unable to write file {} with mode {:o}: {e}",
                        full.display(),
                        file.mode
                    )
                })?;
        }
        Ok(())
    }

    /// `name -> ..data/name` for each top-level name of the payload.
    fn create_user_visible_files(
        target: &Path,
        payload: &BTreeMap<String, FileProjection>,
    ) -> Result<(), String> {
        for path in payload.keys() {
            let top = path.split('/').next().unwrap_or(path);
            let visible = target.join(top);
            if let Err(e) = std::fs::read_link(&visible) {
                if e.kind() == io::ErrorKind::NotFound {
                    std::os::unix::fs::symlink(Path::new(DATA_DIR).join(top), &visible)
                        .map_err(|e| format!("error creating visible symlinks: {e}"))?;
                }
            }
        }
        Ok(())
    }

    /// Timestamped directories left by an interrupted write.
    fn remove_stale_timestamp_dirs(target: &Path, current: &Path) {
        let Ok(entries) = std::fs::read_dir(target) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name_str = name.to_string_lossy();
            let is_ts = name_str.starts_with("..")
                && name_str.as_bytes().get(2).is_some_and(u8::is_ascii_digit);
            if is_ts && Path::new(&name) != current {
                if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                    tracing::warn!(dir = %entry.path().display(), error = %e, "removing an old data directory");
                }
            }
        }
    }
}

/// tmpfs mounts for memory-backed volumes, and finding them again at cleanup.
mod mount {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    /// upstream `IsLikelyNotMountPoint`: a mount point is on another device than its
    /// parent (true of every tmpfs).
    pub fn is_mount_point(dir: &Path) -> Result<bool, String> {
        let own = std::fs::metadata(dir).map_err(|e| e.to_string())?;
        let parent = dir.parent().unwrap_or(Path::new("/"));
        let up = std::fs::metadata(parent).map_err(|e| e.to_string())?;
        Ok(own.dev() != up.dev())
    }

    pub fn mount_tmpfs(dir: &Path, size: Option<u128>) -> io::Result<()> {
        let target = CString::new(dir.as_os_str().as_bytes()).map_err(io::Error::other)?;
        let options = CString::new(size.map(|s| format!("size={s}")).unwrap_or_default())
            .map_err(io::Error::other)?;
        // SAFETY: all pointers are NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                options.as_ptr().cast(),
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn unmount(dir: &Path) -> io::Result<()> {
        let target = CString::new(dir.as_os_str().as_bytes()).map_err(io::Error::other)?;
        // Detach: a container may still hold it; its own copy stays valid.
        // SAFETY: `target` is a NUL-terminated string that outlives the call.
        let rc = unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// emptyDir directories are 0777 so that any user in the pod can write them
    /// (a tmpfs root's sticky bit is kept).
    pub fn make_world_writable(dir: &Path) -> Result<(), String> {
        let meta = std::fs::metadata(dir).map_err(|e| e.to_string())?;
        let mode = meta.permissions().mode();
        if mode & 0o777 != 0o777 {
            std::fs::set_permissions(
                dir,
                std::fs::Permissions::from_mode((mode & 0o7000) | 0o777),
            )
            .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The directory of a configMap/secret/downwardAPI/projected volume; memory-backed
    /// ones get a tmpfs. Without the privilege to mount, they stay on disk.
    pub fn setup_wrapped_dir(dir: &Path, in_memory: bool) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        if in_memory && !is_mount_point(dir)? {
            match mount_tmpfs(dir, None) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                    tracing::debug!(dir = %dir.display(), "no privilege to mount tmpfs; volume stays on disk");
                }
                Err(e) => return Err(format!("mounting tmpfs: {e}")),
            }
        }
        make_world_writable(dir)
    }

    /// Mount points at or under `dir`, from `/proc/self/mountinfo`.
    pub fn mounts_under(dir: &Path) -> io::Result<Vec<PathBuf>> {
        let info = std::fs::read_to_string("/proc/self/mountinfo")?;
        Ok(info
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .map(|p| PathBuf::from(unescape(p)))
            .filter(|p| p.starts_with(dir))
            .collect())
    }

    /// mountinfo writes space, tab, newline and backslash as octal escapes.
    fn unescape(field: &str) -> String {
        let bytes = field.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let octal = bytes
                .get(i + 1..i + 4)
                .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
            match (bytes[i], octal) {
                (b'\\', Some(d)) => {
                    out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                    i += 4;
                }
                (b, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    pub fn cleanup(pod_dir: &Path) -> Result<(), String> {
        let dir = match pod_dir.canonicalize() {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.to_string()),
        };
        let mut mounted = mounts_under(&dir).map_err(|e| e.to_string())?;
        // Deepest first; one path can be mounted over more than once.
        mounted.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
        for m in &mounted {
            if let Err(e) = unmount(m) {
                tracing::warn!(path = %m.display(), error = %e, "unmounting");
            }
        }
        let left = mounts_under(&dir).map_err(|e| e.to_string())?;
        if let Some(first) = left.first() {
            return Err(format!("{} is still mounted", first.display()));
        }
        std::fs::remove_dir_all(&dir).map_err(|e| e.to_string())
    }

    #[cfg(test)]
    pub fn unescape_for_test(field: &str) -> String {
        unescape(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::source::fake::FakeSource;
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt;

    fn pod(spec: serde_json::Value) -> Pod {
        let mut value = json!({
            "metadata": {"name": "web-0", "namespace": "shop", "uid": "uid-1",
                         "labels": {"app": "web"}, "annotations": {"build": "42"}},
            "spec": {"containers": [{"name": "main",
                "resources": {"limits": {"memory": "64Mi"}}}]}
        });
        if let (Some(base), Some(extra)) = (value["spec"].as_object_mut(), spec.as_object()) {
            for (k, v) in extra {
                base.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(value).expect("pod")
    }

    fn ctx() -> PodContext {
        let mut ctx = PodContext::new("node-a");
        ctx.node_allocatable = [("memory", "8Gi"), ("cpu", "4")]
            .into_iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    k8s_openapi::apimachinery::pkg::api::resource::Quantity(v.into()),
                )
            })
            .collect();
        ctx
    }

    fn container(value: serde_json::Value) -> Container {
        serde_json::from_value(value).expect("container")
    }

    fn is_root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o7777
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn link(path: &Path) -> PathBuf {
        std::fs::read_link(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Mount points listed in /proc/mounts under `dir`, with their options.
    fn proc_mounts(dir: &Path) -> Vec<(PathBuf, String)> {
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        read(Path::new("/proc/mounts"))
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                let p = PathBuf::from(mount::unescape_for_test(f.get(1)?));
                p.starts_with(&dir)
                    .then(|| (p, f.get(3).map(|s| s.to_string()).unwrap_or_default()))
            })
            .collect()
    }

    /// Unmounts leftovers when a test fails half-way.
    struct PodDir(tempfile::TempDir);

    impl PodDir {
        fn new() -> Self {
            PodDir(tempfile::tempdir().expect("tempdir"))
        }
        fn path(&self) -> &Path {
            self.0.path()
        }
    }

    impl Drop for PodDir {
        fn drop(&mut self) {
            let _ = mount::cleanup(self.0.path());
        }
    }

    async fn prepare_ok(pod: &Pod, dir: &Path, source: &FakeSource) -> PodVolumes {
        prepare(pod, dir, &ctx(), source).await.expect("prepare")
    }

    #[tokio::test]
    async fn config_map_volume_files_modes_and_layout() {
        let dir = PodDir::new();
        let source = FakeSource::default();
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some("settings".into());
        cm.data = Some(
            [
                ("mode".to_string(), "fast".to_string()),
                ("level".into(), "3".into()),
            ]
            .into(),
        );
        cm.binary_data = Some(
            [(
                "blob".to_string(),
                k8s_openapi::ByteString(vec![0, 159, 146, 150]),
            )]
            .into(),
        );
        source.put_config_map_object("shop", cm);
        let p = pod(json!({"volumes": [
            {"name": "all", "configMap": {"name": "settings"}},
            {"name": "picked", "configMap": {"name": "settings", "defaultMode": 0o400, "items": [
                {"key": "mode", "path": "conf/mode.txt"},
                {"key": "level", "path": "level", "mode": 0o600}]}},
        ]}));
        let vols = prepare_ok(&p, dir.path(), &source).await;
        let all = dir.path().join("volumes/kubernetes.io~configmap/all");
        assert_eq!(
            vols.get("all").map(|v| v.host_path.clone()),
            Some(all.clone())
        );
        assert_eq!(read(&all.join("mode")), "fast");
        assert_eq!(
            std::fs::read(all.join("blob")).expect("blob"),
            vec![0, 159, 146, 150]
        );
        assert_eq!(mode(&all.join("mode")), 0o644);
        assert_eq!(link(&all.join("mode")), Path::new("..data/mode"));
        let ts = link(&all.join("..data"));
        assert!(ts.to_string_lossy().starts_with("..20"), "{}", ts.display());
        assert_eq!(mode(&all.join(&ts)), 0o755);

        let picked = dir.path().join("volumes/kubernetes.io~configmap/picked");
        assert_eq!(read(&picked.join("conf/mode.txt")), "fast");
        assert_eq!(mode(&picked.join("conf/mode.txt")), 0o400);
        assert_eq!(mode(&picked.join("level")), 0o600);
        assert_eq!(link(&picked.join("conf")), Path::new("..data/conf"));
        assert!(!picked.join("blob").exists());
        let mut names: Vec<String> = std::fs::read_dir(&picked)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with(".."))
            .collect();
        names.sort();
        assert_eq!(names, vec!["conf", "level"]);
    }

    #[tokio::test]
    async fn missing_objects_and_keys() {
        let dir = PodDir::new();
        let source = FakeSource::default();
        source.put_config_map("shop", "settings", &[("mode", "fast")]);
        source.put_secret("shop", "creds", &[("user", b"admin")]);
        let cases = [
            (
                json!({"name": "v", "configMap": {"name": "absent"}}),
                "configmap \"absent\" not found",
            ),
            (
                json!({"name": "v", "secret": {"secretName": "absent"}}),
                "secret \"absent\" not found",
            ),
            (
                json!({"name": "v", "configMap": {"name": "settings", "items": [{"key": "nope", "path": "x"}]}}),
                "configmap references non-existent config key: nope",
            ),
            (
                json!({"name": "v", "secret": {"secretName": "creds", "items": [{"key": "nope", "path": "x"}]}}),
                "references non-existent secret key: nope",
            ),
            (
                json!({"name": "v", "configMap": {"name": "settings", "items": [{"key": "mode", "path": "../x"}]}}),
                "invalid path: must not contain '..': ../x",
            ),
            (
                json!({"name": "v", "configMap": {"name": "settings", "items": [{"key": "mode", "path": "..x"}]}}),
                "invalid path: must not start with '..': ..x",
            ),
            (
                json!({"name": "v", "persistentVolumeClaim": {"claimName": "data"}}),
                "volume type \"persistentVolumeClaim\" is not supported by this kubelet",
            ),
            (
                json!({"name": "v", "emptyDir": {"medium": "HugePages"}}),
                "emptyDir medium \"HugePages\" is not supported",
            ),
        ];
        for (volume, message) in cases {
            let p = pod(json!({"volumes": [volume]}));
            let err = prepare(&p, dir.path(), &ctx(), &source)
                .await
                .expect_err(message);
            assert_eq!(
                err,
                VolumeError::SetUp {
                    volume: "v".into(),
                    message: message.into()
                }
            );
            assert_eq!(
                err.to_string(),
                format!("MountVolume.SetUp failed for volume \"v\" : {message}")
            );
        }
        // Optional: an empty volume, or the missing item left out.
        let p = pod(json!({"volumes": [
            {"name": "a", "configMap": {"name": "absent", "optional": true}},
            {"name": "b", "secret": {"secretName": "absent", "optional": true}},
            {"name": "c", "configMap": {"name": "settings", "optional": true,
                "items": [{"key": "nope", "path": "x"}, {"key": "mode", "path": "m"}]}},
        ]}));
        prepare_ok(&p, dir.path(), &source).await;
        let a = dir.path().join("volumes/kubernetes.io~configmap/a");
        assert!(a.join("..data").exists());
        assert_eq!(std::fs::read_dir(a.join("..data")).expect("dir").count(), 0);
        let c = dir.path().join("volumes/kubernetes.io~configmap/c");
        assert_eq!(read(&c.join("m")), "fast");
        assert!(!c.join("x").exists());
    }

    #[tokio::test]
    async fn refresh_swaps_data_atomically_and_prunes_stale_keys() {
        let dir = PodDir::new();
        let source = FakeSource::default();
        source.put_config_map("shop", "settings", &[("a", "1"), ("b", "1"), ("gone", "x")]);
        let p = pod(json!({"volumes": [{"name": "cfg", "configMap": {"name": "settings"}}]}));
        prepare_ok(&p, dir.path(), &source).await;
        let vol = dir.path().join("volumes/kubernetes.io~configmap/cfg");
        let first = link(&vol.join("..data"));

        // Unchanged: nothing is rewritten.
        prepare_ok(&p, dir.path(), &source).await;
        assert_eq!(link(&vol.join("..data")), first);

        source.put_config_map("shop", "settings", &[("a", "2"), ("b", "2"), ("new", "n")]);
        prepare_ok(&p, dir.path(), &source).await;
        let second = link(&vol.join("..data"));
        assert_ne!(second, first);
        assert!(!vol.join(&first).exists(), "old data directory removed");
        assert!(!vol.join("..data_tmp").exists());
        assert_eq!(read(&vol.join("a")), "2");
        assert_eq!(read(&vol.join("new")), "n");
        assert!(
            std::fs::symlink_metadata(vol.join("gone")).is_err(),
            "stale key removed"
        );
        let mut entries: Vec<String> = std::fs::read_dir(&vol)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        entries.sort();
        assert_eq!(
            entries,
            vec![
                second.to_string_lossy().into_owned(),
                "..data".into(),
                "a".into(),
                "b".into(),
                "new".into()
            ]
        );

        // Deleted meanwhile: the refresh fails and the container keeps the last contents.
        source.remove_config_map("shop", "settings");
        let err = prepare(&p, dir.path(), &ctx(), &source)
            .await
            .expect_err("deleted");
        assert_eq!(
            err.to_string(),
            "MountVolume.SetUp failed for volume \"cfg\" : configmap \"settings\" not found"
        );
        assert_eq!(link(&vol.join("..data")), second);
        assert_eq!(read(&vol.join("a")), "2");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readers_never_see_a_partial_update() {
        let dir = PodDir::new();
        let source = FakeSource::default();
        let version = |i: usize| (format!("{i}:").repeat(20_000), i.to_string());
        let (big, small) = version(0);
        source.put_config_map("shop", "settings", &[("big", &big), ("small", &small)]);
        let p = pod(json!({"volumes": [{"name": "cfg", "configMap": {"name": "settings"}}]}));
        prepare_ok(&p, dir.path(), &source).await;
        let vol = dir.path().join("volumes/kubernetes.io~configmap/cfg");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let vol = vol.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut reads = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // Resolve ..data once, then read both keys from that one version.
                    let Ok(data) = vol.join("..data").canonicalize() else {
                        continue;
                    };
                    let (Ok(big), Ok(small)) = (
                        std::fs::read_to_string(data.join("big")),
                        std::fs::read_to_string(data.join("small")),
                    ) else {
                        continue; // that version was removed meanwhile
                    };
                    let expected = format!("{small}:").repeat(20_000);
                    assert_eq!(big, expected, "a version holds one consistent payload");
                    // Through the visible name, a file is one whole version. (Opening it
                    // can race with the removal of the version it resolved to, as upstream.)
                    if let Ok(big) = std::fs::read_to_string(vol.join("big")) {
                        let version = big.split(':').next().unwrap_or_default();
                        assert_eq!(big, format!("{version}:").repeat(20_000));
                    }
                    reads += 1;
                }
                reads
            })
        };
        for i in 1..40 {
            let (big, small) = version(i);
            source.put_config_map("shop", "settings", &[("big", &big), ("small", &small)]);
            prepare_ok(&p, dir.path(), &source).await;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let reads = reader.join().expect("reader");
        assert!(reads > 0);
        assert_eq!(read(&vol.join("small")), "39");
    }

    #[tokio::test]
    async fn secret_volume_in_memory_with_modes() {
        let dir = PodDir::new();
        let source = FakeSource::default();
        source.put_secret(
            "shop",
            "creds",
            &[("user", b"admin"), ("key.bin", &[1, 2, 255])],
        );
        let p = pod(json!({"volumes": [
            {"name": "creds", "secret": {"secretName": "creds", "defaultMode": 0o440}},
            {"name": "one", "secret": {"secretName": "creds", "items": [{"key": "user", "path": "u/name", "mode": 0o400}]}},
        ]}));
        let vols = prepare_ok(&p, dir.path(), &source).await;
        let vol = dir.path().join("volumes/kubernetes.io~secret/creds");
        assert_eq!(read(&vol.join("user")), "admin");
        assert_eq!(
            std::fs::read(vol.join("key.bin")).expect("bin"),
            vec![1, 2, 255]
        );
        assert_eq!(mode(&vol.join("user")), 0o440);
        assert_eq!(
            mode(&dir.path().join("volumes/kubernetes.io~secret/one/u/name")),
            0o400
        );
        assert_eq!(vols.get("creds").map(|v| v.read_only), Some(true));
        if is_root() {
            let mounts = proc_mounts(dir.path());
            let canonical = vol.canonicalize().expect("canonical");
            assert!(
                mounts.iter().any(|(p, _)| *p == canonical),
                "secret on tmpfs: {mounts:?}"
            );
            cleanup(dir.path()).await;
            assert!(proc_mounts(dir.path()).is_empty());
            assert!(!dir.path().exists());
        }
    }

    #[tokio::test]
    async fn downward_api_volume_and_refresh() {
        let dir = PodDir::new();
        let source = FakeSource::default();
        let p = pod(
            json!({"volumes": [{"name": "info", "downwardAPI": {"items": [
                {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                {"path": "meta/annotations", "fieldRef": {"fieldPath": "metadata.annotations"}, "mode": 0o600},
                {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                {"path": "app", "fieldRef": {"fieldPath": "metadata.labels['app']"}},
                {"path": "mem", "resourceFieldRef": {"containerName": "main", "resource": "limits.memory", "divisor": "1Mi"}},
                {"path": "cpu", "resourceFieldRef": {"containerName": "main", "resource": "limits.cpu", "divisor": "1m"}},
            ]}}]}),
        );
        prepare_ok(&p, dir.path(), &source).await;
        let vol = dir.path().join("volumes/kubernetes.io~downward-api/info");
        assert_eq!(read(&vol.join("labels")), "app=\"web\"");
        assert_eq!(read(&vol.join("meta/annotations")), "build=\"42\"");
        assert_eq!(mode(&vol.join("meta/annotations")), 0o600);
        assert_eq!(read(&vol.join("name")), "web-0");
        assert_eq!(read(&vol.join("app")), "web");
        assert_eq!(read(&vol.join("mem")), "64");
        assert_eq!(
            read(&vol.join("cpu")),
            "4000",
            "no cpu limit: node allocatable"
        );

        let mut relabelled = p.clone();
        relabelled.metadata.labels = Some(
            [
                ("app".to_string(), "web".to_string()),
                ("tier".into(), "front".into()),
            ]
            .into(),
        );
        prepare_ok(&relabelled, dir.path(), &source).await;
        assert_eq!(read(&vol.join("labels")), "app=\"web\"\ntier=\"front\"");

        let bad = pod(
            json!({"volumes": [{"name": "info", "downwardAPI": {"items": [
                {"path": "a", "fieldRef": {"fieldPath": "spec.nodeName"}},
                {"path": "b", "fieldRef": {"fieldPath": "status.podIP"}},
            ]}}]}),
        );
        let err = prepare(&bad, dir.path(), &ctx(), &source)
            .await
            .expect_err("bad fields");
        assert_eq!(err.to_string(), "MountVolume.SetUp failed for volume \"info\" : [unsupported fieldPath: spec.nodeName, unsupported fieldPath: status.podIP]");
    }

    #[tokio::test]
    async fn projected_sources_and_token_reuse() {
        let dir = PodDir::new();
        let source = FakeSource {
            tokens: true,
            ..Default::default()
        };
        source.put_config_map("shop", "kube-root-ca.crt", &[("ca.crt", "CERT")]);
        source.put_secret("shop", "creds", &[("user", b"admin")]);
        let p = pod(
            json!({"serviceAccountName": "builder", "volumes": [{"name": "kube-api-access", "projected": {
            "defaultMode": 0o444,
            "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607, "audience": "vault"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
                {"secret": {"name": "creds", "items": [{"key": "user", "path": "creds/user", "mode": 0o400}]}},
            ]}}]}),
        );
        prepare_ok(&p, dir.path(), &source).await;
        let vol = dir
            .path()
            .join("volumes/kubernetes.io~projected/kube-api-access");
        assert_eq!(read(&vol.join("token")), "token-1");
        assert_eq!(mode(&vol.join("token")), 0o444);
        assert_eq!(read(&vol.join("ca.crt")), "CERT");
        assert_eq!(read(&vol.join("namespace")), "shop");
        assert_eq!(read(&vol.join("creds/user")), "admin");
        assert_eq!(mode(&vol.join("creds/user")), 0o400);
        let requests = source.token_requests.lock().expect("lock").clone();
        assert_eq!(
            requests,
            vec![(
                "shop".into(),
                "builder".into(),
                Some("vault".into()),
                3607,
                "web-0".into(),
                "uid-1".into()
            )]
        );

        // A refresh reuses the token while it is young.
        let data = link(&vol.join("..data"));
        prepare_ok(&p, dir.path(), &source).await;
        assert_eq!(source.token_request_count(), 1);
        assert_eq!(link(&vol.join("..data")), data);
        assert_eq!(
            mode(
                &dir.path()
                    .join("plugins/kubernetes.io~projected/kube-api-access/token-cache.json")
            ),
            0o600
        );
    }

    #[tokio::test]
    async fn projected_token_refreshed_near_expiry() {
        let dir = PodDir::new();
        let source = FakeSource {
            tokens: true,
            ..Default::default()
        };
        let p = pod(json!({"volumes": [{"name": "t", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 1}}]}}]}));
        prepare_ok(&p, dir.path(), &source).await;
        let vol = dir.path().join("volumes/kubernetes.io~projected/t");
        assert_eq!(read(&vol.join("token")), "token-1");
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        prepare_ok(&p, dir.path(), &source).await;
        assert_eq!(read(&vol.join("token")), "token-2");
        let requests = source.token_requests.lock().expect("lock").clone();
        assert_eq!(requests[0].1, "default", "no serviceAccountName: default");
        assert_eq!(requests[0].2, None);
    }

    #[test]
    fn jwt_expiry_is_read_from_the_claims() {
        use base64::Engine;
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"exp":1900000000,"iat":1800000000}"#);
        assert_eq!(
            tokens::jwt_expiry_for_test(&format!("e30.{claims}.sig")),
            Some(1_900_000_000)
        );
        assert_eq!(tokens::jwt_expiry_for_test("opaque"), None);
    }

    #[tokio::test]
    async fn projected_errors_are_aggregated() {
        let dir = PodDir::new();
        let source = FakeSource::default();
        let p = pod(json!({"volumes": [{"name": "p", "projected": {"sources": [
            {"configMap": {"name": "a"}},
            {"secret": {"name": "b"}},
            {"secret": {"name": "c", "optional": true}},
            {"serviceAccountToken": {"path": "token"}},
        ]}}]}));
        let err = prepare(&p, dir.path(), &ctx(), &source)
            .await
            .expect_err("errors");
        assert_eq!(
            err.to_string(),
            "MountVolume.SetUp failed for volume \"p\" : [configmap \"a\" not found, secret \"b\" not found, failed to fetch token: the API server does not serve serviceaccounts/token]"
        );
        assert!(
            !dir.path()
                .join("volumes/kubernetes.io~projected/p/..data")
                .exists(),
            "nothing written"
        );
    }

    #[tokio::test]
    async fn empty_dir_on_disk_keeps_contents() {
        let dir = PodDir::new();
        let source = FakeSource::default();
        let p = pod(json!({"volumes": [{"name": "scratch", "emptyDir": {}}]}));
        let vols = prepare_ok(&p, dir.path(), &source).await;
        let vol = dir.path().join("volumes/kubernetes.io~empty-dir/scratch");
        assert_eq!(
            vols.get("scratch")
                .map(|v| (v.host_path.clone(), v.read_only)),
            Some((vol.clone(), false))
        );
        assert_eq!(mode(&vol), 0o777);
        std::fs::write(vol.join("data"), "kept").expect("write");
        std::fs::set_permissions(&vol, std::fs::Permissions::from_mode(0o750)).expect("chmod");
        prepare_ok(&p, dir.path(), &source).await;
        assert_eq!(read(&vol.join("data")), "kept");
        assert_eq!(mode(&vol), 0o750, "an existing emptyDir is left alone");
    }

    #[tokio::test]
    async fn memory_empty_dir_is_a_sized_tmpfs_until_cleanup() {
        if !is_root() {
            eprintln!("skipped: mounting tmpfs needs root");
            return;
        }
        let dir = PodDir::new();
        let source = FakeSource::default();
        let p = pod(json!({"volumes": [
            {"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
            {"name": "pod-sized", "emptyDir": {"medium": "Memory"}},
        ]}));
        prepare_ok(&p, dir.path(), &source).await;
        let vol = dir.path().join("volumes/kubernetes.io~empty-dir/cache");
        let canonical = vol.canonicalize().expect("canonical");
        let mounts = proc_mounts(dir.path());
        let options = |path: &Path| {
            mounts
                .iter()
                .find(|(p, _)| p == path)
                .map(|(_, o)| o.clone())
                .unwrap_or_default()
        };
        assert!(options(&canonical).contains("size=1024k"), "{mounts:?}");
        let pod_sized = dir
            .path()
            .join("volumes/kubernetes.io~empty-dir/pod-sized")
            .canonicalize()
            .expect("c");
        assert!(
            options(&pod_sized).contains("size=65536k"),
            "limited by the pod's memory limit: {mounts:?}"
        );
        assert_eq!(mode(&vol) & 0o777, 0o777);
        std::fs::write(vol.join("data"), "in memory").expect("write");

        // Preparing again neither remounts nor clears it.
        prepare_ok(&p, dir.path(), &source).await;
        assert_eq!(read(&vol.join("data")), "in memory");
        assert_eq!(proc_mounts(dir.path()).len(), 2);

        cleanup(dir.path()).await;
        assert!(proc_mounts(dir.path()).is_empty(), "unmounted");
        assert!(!dir.path().exists(), "removed");
    }

    #[tokio::test]
    async fn host_path_types() {
        let tmp = tempfile::tempdir().expect("tmp");
        let base = tmp.path();
        let file = base.join("file");
        std::fs::write(&file, "x").expect("file");
        let socket = base.join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).expect("socket");
        let dir = PodDir::new();
        let source = FakeSource::default();
        let check =
            |path: &Path, t: &str| json!({"name": "h", "hostPath": {"path": path, "type": t}});
        let b = base.display();
        let ok = [
            check(base, ""),
            check(&base.join("absent"), ""),
            check(base, "Directory"),
            check(&base.join("made/deep"), "DirectoryOrCreate"),
            check(&file, "File"),
            check(&base.join("new-file"), "FileOrCreate"),
            check(&file, "FileOrCreate"),
            check(&socket, "Socket"),
            check(Path::new("/dev/null"), "CharDevice"),
        ];
        for volume in ok {
            let p = pod(json!({"volumes": [volume.clone()]}));
            let vols = prepare(&p, dir.path(), &ctx(), &source)
                .await
                .unwrap_or_else(|e| panic!("{volume}: {e}"));
            let h = vols.get("h").expect("prepared");
            assert_eq!(
                h.host_path,
                PathBuf::from(volume["hostPath"]["path"].as_str().expect("path"))
            );
            assert!(!h.read_only);
        }
        assert!(base.join("made/deep").is_dir());
        assert!(base.join("new-file").is_file());
        assert_eq!(
            read(&file),
            "x",
            "FileOrCreate leaves an existing file alone"
        );

        let errors = [
            (
                check(&base.join("absent"), "Directory"),
                format!("hostPath {b}/absent doesn't exist"),
            ),
            (
                check(&file, "Directory"),
                format!("hostPath type check failed: {b}/file is not a directory, it's a File"),
            ),
            (
                check(base, "File"),
                format!("hostPath type check failed: {b} is not a file, it's a Directory"),
            ),
            (
                check(base, "FileOrCreate"),
                format!("hostPath type check failed: {b} is not a file, it's a Directory"),
            ),
            (
                check(&file, "DirectoryOrCreate"),
                format!("hostPath type check failed: {b}/file is not a directory, it's a File"),
            ),
            (
                check(&file, "Socket"),
                format!("hostPath type check failed: {b}/file is not a socket file, it's a File"),
            ),
            (
                check(&file, "CharDevice"),
                format!(
                    "hostPath type check failed: {b}/file is not a character device, it's a File"
                ),
            ),
            (
                check(Path::new("/dev/null"), "BlockDevice"),
                "hostPath type check failed: /dev/null is not a block device, it's a CharDevice"
                    .to_string(),
            ),
            (
                check(base, "Weird"),
                "Weird is an invalid volume type".to_string(),
            ),
            (
                check(&base.join("a/../b"), ""),
                format!("invalid HostPath `{b}/a/../b`: must not contain '..'"),
            ),
        ];
        for (volume, message) in errors {
            let p = pod(json!({"volumes": [volume]}));
            let err = prepare(&p, dir.path(), &ctx(), &source)
                .await
                .expect_err(&message);
            assert_eq!(
                err,
                VolumeError::SetUp {
                    volume: "h".into(),
                    message
                }
            );
        }
    }

    #[tokio::test]
    async fn container_mounts_with_sub_paths() {
        let dir = PodDir::new();
        let source = FakeSource::default();
        source.put_config_map("shop", "settings", &[("app.conf", "x=1")]);
        let p = pod(json!({"volumes": [
            {"name": "scratch", "emptyDir": {}},
            {"name": "cfg", "configMap": {"name": "settings"}},
        ]}));
        let vols = prepare_ok(&p, dir.path(), &source).await;
        let scratch = dir.path().join("volumes/kubernetes.io~empty-dir/scratch");
        let cfg = dir.path().join("volumes/kubernetes.io~configmap/cfg");
        let c = container(json!({"name": "main", "volumeMounts": [
            {"name": "scratch", "mountPath": "/data"},
            {"name": "scratch", "mountPath": "/logs", "subPath": "logs/main", "readOnly": true},
            {"name": "scratch", "mountPath": "/per-pod", "subPathExpr": "pods/$(POD_NAME)"},
            {"name": "cfg", "mountPath": "/etc/app"},
            {"name": "cfg", "mountPath": "/etc/app.conf", "subPath": "app.conf"},
            {"name": "scratch", "mountPath": "relative"},
        ]}));
        let env = vec![("POD_NAME".to_string(), "web-0".to_string())];
        let mounts = vols.mounts(&c, &env).expect("mounts");
        let canonical = scratch.canonicalize().expect("canonical");
        let conf = cfg
            .join(link(&cfg.join("..data")))
            .join("app.conf")
            .canonicalize()
            .expect("conf");
        assert_eq!(
            mounts,
            vec![
                (scratch.clone(), "/data".to_string(), false),
                (canonical.join("logs/main"), "/logs".to_string(), true),
                (canonical.join("pods/web-0"), "/per-pod".to_string(), false),
                (cfg.clone(), "/etc/app".to_string(), true),
                (conf, "/etc/app.conf".to_string(), true),
                (scratch.clone(), "/relative".to_string(), false),
            ]
        );
        assert!(scratch.join("logs/main").is_dir(), "subPath created");
        assert_eq!(
            mode(&scratch.join("logs/main")),
            0o777,
            "with the volume's mode"
        );

        std::os::unix::fs::symlink("/etc", scratch.join("escape")).expect("symlink");
        let errors = [
            (
                json!({"name": "ghost", "mountPath": "/x"}),
                "cannot find volume \"ghost\" to mount into container \"main\"",
            ),
            (
                json!({"name": "scratch", "mountPath": "/x", "subPath": "/abs"}),
                "error SubPath `/abs` must not be an absolute path",
            ),
            (
                json!({"name": "scratch", "mountPath": "/x", "subPath": "a/../../b"}),
                "unable to provision SubPath `a/../../b`: must not contain '..'",
            ),
            (
                json!({"name": "scratch", "mountPath": "/x", "subPathExpr": "$(NOPE)/$(ALSO_NOPE)"}),
                "missing value for ALSO_NOPE, NOPE",
            ),
            (
                json!({"name": "scratch", "mountPath": "/x", "subPath": "escape/passwd"}),
                "failed to prepare subPath for volumeMount \"scratch\" of container \"main\"",
            ),
            (
                json!({"name": "scratch", "mountPath": "/x", "mountPropagation": "Sideways"}),
                "invalid MountPropagation mode: \"Sideways\"",
            ),
        ];
        for (mount, message) in errors {
            let c = container(json!({"name": "main", "volumeMounts": [mount]}));
            let err = vols.mounts(&c, &env).expect_err(message);
            assert_eq!(err, VolumeError::Mount(message.into()));
        }
    }

    #[test]
    fn atomic_writer_paths() {
        let cases = [
            ("a/b", Ok("a/b")),
            ("./a//b/", Ok("a/b")),
            ("..", Err("invalid path: must not contain '..': ..")),
            (
                "..data",
                Err("invalid path: must not start with '..': ..data"),
            ),
            (
                "/etc/passwd",
                Err("invalid path: must be relative path: /etc/passwd"),
            ),
            ("", Err("invalid path: must not be empty: \"\"")),
        ];
        for (path, expected) in cases {
            let dir = tempfile::tempdir().expect("tmp");
            let payload = BTreeMap::from([(
                path.to_string(),
                atomic::FileProjection::new(b"x".to_vec(), 0o644),
            )]);
            let result = atomic::write(dir.path(), payload);
            match expected {
                Ok(clean) => {
                    assert_eq!(result, Ok(()));
                    assert_eq!(read(&dir.path().join(clean)), "x");
                }
                Err(message) => assert_eq!(result, Err(message.to_string())),
            }
        }
        let long = "f".repeat(256);
        let payload = BTreeMap::from([(long, atomic::FileProjection::new(vec![], 0o644))]);
        let dir = tempfile::tempdir().expect("tmp");
        assert_eq!(
            atomic::write(dir.path(), payload),
            Err("invalid path: filenames must be less than or equal to 255 characters".to_string())
        );
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(mount::unescape_for_test("/a\\040b\\134c"), "/a b\\c");
        assert_eq!(mount::unescape_for_test("/plain\\x"), "/plain\\x");
    }

    #[test]
    fn memory_sizes() {
        let ed = |limit: Option<&str>| EmptyDirVolumeSource {
            medium: Some("Memory".into()),
            size_limit: limit
                .map(|l| k8s_openapi::apimachinery::pkg::api::resource::Quantity(l.into())),
        };
        let p = pod(json!({}));
        assert_eq!(memory_volume_size(&p, &ed(None), &ctx()), Some(64 << 20));
        assert_eq!(
            memory_volume_size(&p, &ed(Some("1Gi")), &ctx()),
            Some(64 << 20)
        );
        assert_eq!(
            memory_volume_size(&p, &ed(Some("1Mi")), &ctx()),
            Some(1 << 20)
        );
        let unlimited = pod(
            json!({"containers": [{"name": "a"}, {"name": "b", "resources": {"limits": {"memory": "1Gi"}}}]}),
        );
        assert_eq!(
            memory_volume_size(&unlimited, &ed(None), &ctx()),
            Some(8 << 30)
        );
        assert_eq!(
            memory_volume_size(&unlimited, &ed(None), &PodContext::default()),
            None
        );
        let disk = EmptyDirVolumeSource::default();
        assert_eq!(memory_volume_size(&p, &disk, &ctx()), None);
    }
}
