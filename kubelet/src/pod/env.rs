//! A container's environment: `env` and `envFrom` (ConfigMaps, Secrets, the downward API,
//! resource fields), `$(VAR)` expansion, and the service links, as upstream's
//! `makeEnvironmentVariables` builds them.
//!
//! Precedence, lowest first: service link variables, `envFrom` sources in order, `env` in
//! order. The result lists the container's own variables (`envFrom`, then `env` in
//! declaration order) and then the service variables they did not override.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::{
    ConfigMap, Container, ObjectFieldSelector, Pod, ResourceFieldSelector, Secret, Service,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;
use keelson_apimachinery::names::is_qualified_name;
use keelson_apimachinery::quantity::Quantity;
use keelson_apimachinery::validation::go_quote;

use super::source::ObjectSource;

/// What the node knows about a pod that its spec does not say.
#[derive(Clone, Debug)]
pub struct PodContext {
    pub node_name: String,
    pub pod_ip: Option<String>,
    /// All of the pod's IPs (dual stack); `pod_ip` when empty.
    pub pod_ips: Vec<String>,
    pub host_ip: Option<String>,
    /// The node's IPs, one per family; `host_ip` when empty.
    pub host_ips: Vec<String>,
    /// `node.status.allocatable`: resourceFieldRef limits and memory-backed emptyDir sizes
    /// default to it when a container sets no limit.
    pub node_allocatable: BTreeMap<String, ApiQuantity>,
    /// `cluster.local`: the pod's FQDN and its DNS search path.
    pub cluster_domain: String,
    /// The cluster DNS servers (kubelet `--cluster-dns`). Empty: ClusterFirst pods get the
    /// host's resolver configuration, as upstream falls back.
    pub cluster_dns: Vec<String>,
    /// The host's resolver configuration (kubelet `--resolv-conf`).
    pub resolv_conf: PathBuf,
    /// The host's hosts file, which hostNetwork pods see.
    pub hosts_file: PathBuf,
    /// Services that cannot be listed leave the service links out instead of failing the
    /// container: static pods start while the API server is away (as upstream before its
    /// service informer has synced).
    pub services_optional: bool,
}

impl Default for PodContext {
    fn default() -> Self {
        PodContext {
            node_name: String::new(),
            pod_ip: None,
            pod_ips: Vec::new(),
            host_ip: None,
            host_ips: Vec::new(),
            node_allocatable: BTreeMap::new(),
            cluster_domain: "cluster.local".into(),
            cluster_dns: Vec::new(),
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
            hosts_file: PathBuf::from("/etc/hosts"),
            services_optional: false,
        }
    }
}

impl PodContext {
    pub fn new(node_name: impl Into<String>) -> Self {
        PodContext {
            node_name: node_name.into(),
            ..PodContext::default()
        }
    }

    fn host_ip_list(&self) -> Vec<String> {
        if self.host_ips.is_empty() {
            self.host_ip.iter().cloned().collect()
        } else {
            self.host_ips.clone()
        }
    }

    /// The pod's IPs, at most one per family, the node's primary family first (upstream's
    /// `sortPodIPs`, so that `status.podIP` matches what the API reports).
    pub fn sorted_pod_ips(&self) -> Vec<String> {
        let ips: Vec<&String> = if self.pod_ips.is_empty() {
            self.pod_ip.iter().collect()
        } else {
            self.pod_ips.iter().collect()
        };
        let node_v6 = self
            .host_ip_list()
            .first()
            .and_then(|ip| ip.parse::<IpAddr>().ok())
            .is_some_and(|ip| ip.is_ipv6());
        let is_v6 = |ip: &str| ip.parse::<IpAddr>().map(|ip| ip.is_ipv6()).ok();
        let mut out = Vec::with_capacity(2);
        for want_v6 in [node_v6, !node_v6] {
            if let Some(ip) = ips.iter().find(|ip| is_v6(ip) == Some(want_v6)) {
                out.push((*ip).clone());
            }
        }
        out
    }
}

/// Why a container's environment cannot be built. The kubelet reports it as the
/// container's waiting reason [`EnvError::REASON`] with this message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvError {
    /// `configmap "x" not found`, `secret "x" not found`.
    NotFound {
        resource: &'static str,
        name: String,
    },
    /// `couldn't find key k in ConfigMap ns/x`.
    MissingKey {
        kind: &'static str,
        key: String,
        namespace: String,
        name: String,
    },
    /// Listing Services failed.
    Services,
    /// Any other failed read, with the server's message.
    Source(String),
    /// A fieldRef or resourceFieldRef that cannot be resolved.
    Field(String),
}

impl EnvError {
    pub const REASON: &'static str = "CreateContainerConfigError";
}

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvError::NotFound { resource, name } => {
                write!(f, "{resource} {} not found", go_quote(name))
            }
            EnvError::MissingKey {
                kind,
                key,
                namespace,
                name,
            } => write!(f, "couldn't find key {key} in {kind} {namespace}/{name}"),
            EnvError::Services => f.write_str("failed to list services when setting up env vars"),
            EnvError::Source(msg) | EnvError::Field(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for EnvError {}

/// The environment of `container` in `pod`, as name/value pairs without duplicates.
pub async fn container_env(
    pod: &Pod,
    container: &Container,
    ctx: &PodContext,
    source: &dyn ObjectSource,
) -> Result<Vec<(String, String)>, EnvError> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let enable_links = pod
        .spec
        .as_ref()
        .and_then(|s| s.enable_service_links)
        .unwrap_or(true);
    let service_env = match service_env(namespace, enable_links, source).await {
        Err(EnvError::Services) if ctx.services_optional => BTreeMap::new(),
        other => other?,
    };
    let mut objects = Objects::new(namespace, source);
    let mut env = OrderedEnv::default();

    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.as_deref().unwrap_or("");
        let (kind, name, optional, data) = if let Some(r) = &from.config_map_ref {
            let data = objects
                .config_map(&r.name)
                .await?
                .map(|cm| string_data(&cm));
            ("configMap", &r.name, r.optional, data)
        } else if let Some(r) = &from.secret_ref {
            let data = objects.secret(&r.name).await?.map(|s| secret_data(&s));
            ("secret", &r.name, r.optional, data)
        } else {
            continue;
        };
        let Some(data) = data else {
            if optional.unwrap_or(false) {
                continue;
            }
            return Err(not_found(kind, name));
        };
        let mut invalid = Vec::new();
        for (key, value) in data {
            let key = format!("{prefix}{key}");
            if is_env_var_name(&key) {
                env.set(key, value);
            } else {
                invalid.push(key);
            }
        }
        if !invalid.is_empty() {
            tracing::warn!(
                reason = "InvalidEnvironmentVariableNames",
                "Keys [{}] from the EnvFrom {kind} {namespace}/{name} were skipped since they are considered invalid environment variable names.",
                invalid.join(", ")
            );
        }
    }

    for var in container.env.iter().flatten() {
        let literal = var.value.as_deref().unwrap_or("");
        let value = if !literal.is_empty() {
            expand(literal, |name| {
                env.get(name)
                    .or_else(|| service_env.get(name).map(String::as_str))
                    .map(str::to_string)
            })
        } else if let Some(from) = &var.value_from {
            if let Some(field) = &from.field_ref {
                pod_field_value(field, pod, ctx).map_err(EnvError::Field)?
            } else if let Some(field) = &from.resource_field_ref {
                resource_field_value(field, pod, Some(container), &ctx.node_allocatable)
                    .map_err(EnvError::Field)?
            } else if let Some(r) = &from.config_map_key_ref {
                let optional = r.optional.unwrap_or(false);
                let Some(cm) = objects.config_map(&r.name).await? else {
                    if optional {
                        continue;
                    }
                    return Err(not_found("configMap", &r.name));
                };
                match cm.data.as_ref().and_then(|d| d.get(&r.key)) {
                    Some(v) => v.clone(),
                    None if optional => continue,
                    None => return Err(missing_key("ConfigMap", &r.key, namespace, &r.name)),
                }
            } else if let Some(r) = &from.secret_key_ref {
                let optional = r.optional.unwrap_or(false);
                let Some(secret) = objects.secret(&r.name).await? else {
                    if optional {
                        continue;
                    }
                    return Err(not_found("secret", &r.name));
                };
                match secret_data(&secret).remove(&r.key) {
                    Some(v) => v,
                    None if optional => continue,
                    None => return Err(missing_key("Secret", &r.key, namespace, &r.name)),
                }
            } else {
                // fileKeyRef: upstream ignores it while the EnvFiles gate is off (the default).
                String::new()
            }
        } else {
            String::new()
        };
        env.set(var.name.clone(), value);
    }

    let mut result = env.vars;
    let own: std::collections::HashSet<String> = result.iter().map(|(n, _)| n.clone()).collect();
    result.extend(service_env.into_iter().filter(|(n, _)| !own.contains(n)));
    Ok(result)
}

/// Insertion-ordered variables; setting one again moves it to the end, so the final order
/// follows the declaration that won.
#[derive(Default)]
struct OrderedEnv {
    vars: Vec<(String, String)>,
}

impl OrderedEnv {
    fn set(&mut self, name: String, value: String) {
        self.vars.retain(|(n, _)| *n != name);
        self.vars.push((name, value));
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The ConfigMaps and Secrets one container refers to, each read once.
struct Objects<'a> {
    namespace: &'a str,
    source: &'a dyn ObjectSource,
    config_maps: HashMap<String, Option<ConfigMap>>,
    secrets: HashMap<String, Option<Secret>>,
}

impl<'a> Objects<'a> {
    fn new(namespace: &'a str, source: &'a dyn ObjectSource) -> Self {
        Objects {
            namespace,
            source,
            config_maps: HashMap::new(),
            secrets: HashMap::new(),
        }
    }

    async fn config_map(&mut self, name: &str) -> Result<Option<ConfigMap>, EnvError> {
        if let Some(found) = self.config_maps.get(name) {
            return Ok(found.clone());
        }
        let found = self
            .source
            .config_map(self.namespace, name)
            .await
            .map_err(|e| EnvError::Source(e.0))?;
        self.config_maps.insert(name.to_string(), found.clone());
        Ok(found)
    }

    async fn secret(&mut self, name: &str) -> Result<Option<Secret>, EnvError> {
        if let Some(found) = self.secrets.get(name) {
            return Ok(found.clone());
        }
        let found = self
            .source
            .secret(self.namespace, name)
            .await
            .map_err(|e| EnvError::Source(e.0))?;
        self.secrets.insert(name.to_string(), found.clone());
        Ok(found)
    }
}

fn not_found(kind: &str, name: &str) -> EnvError {
    // The kubelet's object caches name the resource in the singular.
    let resource = if kind == "secret" {
        "secret"
    } else {
        "configmap"
    };
    EnvError::NotFound {
        resource,
        name: name.to_string(),
    }
}

fn missing_key(kind: &'static str, key: &str, namespace: &str, name: &str) -> EnvError {
    EnvError::MissingKey {
        kind,
        key: key.to_string(),
        namespace: namespace.to_string(),
        name: name.to_string(),
    }
}

fn string_data(cm: &ConfigMap) -> BTreeMap<String, String> {
    cm.data.clone().unwrap_or_default()
}

/// A Secret's values as text. `stringData` only appears on objects that never went
/// through the API server (it merges it into `data`), but honour it the same way.
pub(crate) fn secret_data(secret: &Secret) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    for (k, v) in secret.string_data.iter().flatten() {
        out.insert(k.clone(), v.clone());
    }
    out
}

/// `IsEnvVarName` with relaxed validation (GA upstream): printable ASCII other than `=`.
fn is_env_var_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'=')
}

// --- service links -------------------------------------------------------------------

/// The service link variables a pod in `namespace` sees: the `kubernetes` Service of
/// `default` always, the Services of its own namespace when links are enabled (a Service
/// of that namespace named `kubernetes` wins, as upstream).
async fn service_env(
    namespace: &str,
    enable_links: bool,
    source: &dyn ObjectSource,
) -> Result<BTreeMap<String, String>, EnvError> {
    let defaults = source
        .services("default")
        .await
        .map_err(|_| EnvError::Services)?;
    let own = if enable_links && namespace != "default" {
        source
            .services(namespace)
            .await
            .map_err(|_| EnvError::Services)?
    } else {
        Vec::new()
    };
    let mut chosen: BTreeMap<String, &Service> = BTreeMap::new();
    for svc in defaults.iter().filter(|s| is_service_ip_set(s)) {
        let name = svc.metadata.name.clone().unwrap_or_default();
        if name == "kubernetes" || (enable_links && namespace == "default") {
            chosen.insert(name, svc);
        }
    }
    for svc in own.iter().filter(|s| is_service_ip_set(s)) {
        chosen.insert(svc.metadata.name.clone().unwrap_or_default(), svc);
    }
    Ok(chosen
        .values()
        .flat_map(|svc| service_link_vars(svc))
        .collect())
}

fn is_service_ip_set(svc: &Service) -> bool {
    let ip = svc
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .unwrap_or("");
    !ip.is_empty() && ip != "None"
}

/// upstream `envvars.FromServices` for one Service.
fn service_link_vars(svc: &Service) -> Vec<(String, String)> {
    let (Some(spec), Some(name)) = (svc.spec.as_ref(), svc.metadata.name.as_deref()) else {
        return Vec::new();
    };
    let ip = spec.cluster_ip.clone().unwrap_or_default();
    let ports = spec.ports.as_deref().unwrap_or_default();
    let Some(first) = ports.first() else {
        return Vec::new();
    };
    let prefix = env_var_name(name);
    let mut out = vec![
        (format!("{prefix}_SERVICE_HOST"), ip.clone()),
        (format!("{prefix}_SERVICE_PORT"), first.port.to_string()),
    ];
    for port in ports {
        if let Some(pn) = port.name.as_deref().filter(|n| !n.is_empty()) {
            out.push((
                format!("{prefix}_SERVICE_PORT_{}", env_var_name(pn)),
                port.port.to_string(),
            ));
        }
    }
    let host = |port: i32| match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(_)) => format!("[{ip}]:{port}"),
        _ => format!("{ip}:{port}"),
    };
    for (i, port) in ports.iter().enumerate() {
        let protocol = port
            .protocol
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or("TCP");
        let lower = protocol.to_lowercase();
        let url = format!("{lower}://{}", host(port.port));
        if i == 0 {
            out.push((format!("{prefix}_PORT"), url.clone()));
        }
        let port_prefix = format!("{prefix}_PORT_{}_{}", port.port, protocol.to_uppercase());
        out.push((port_prefix.clone(), url));
        out.push((format!("{port_prefix}_PROTO"), lower));
        out.push((format!("{port_prefix}_PORT"), port.port.to_string()));
        out.push((format!("{port_prefix}_ADDR"), ip.clone()));
    }
    out
}

fn env_var_name(name: &str) -> String {
    name.replace('-', "_").to_uppercase()
}

// --- expansion -----------------------------------------------------------------------

/// upstream's `expansion.Expand`: `$(NAME)` becomes the mapped value, or stays as written
/// when `mapping` has none; `$$` is an escaped `$`; anything else passes through.
pub fn expand(input: &str, mapping: impl Fn(&str) -> Option<String>) -> String {
    let bytes = input.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < bytes.len() {
        if bytes[cursor] == b'$' && cursor + 1 < bytes.len() {
            out.extend_from_slice(&bytes[checkpoint..cursor]);
            match read_variable_name(&bytes[cursor..]) {
                Read::Variable(name, advance) => {
                    // The name sits between ASCII delimiters, so it is valid UTF-8.
                    let name = String::from_utf8_lossy(name);
                    match mapping(&name) {
                        Some(value) => out.extend_from_slice(value.as_bytes()),
                        None => {
                            out.extend_from_slice(b"$(");
                            out.extend_from_slice(name.as_bytes());
                            out.push(b')');
                        }
                    }
                    cursor += advance;
                }
                Read::Literal(text, advance) => {
                    out.extend_from_slice(text);
                    cursor += advance;
                }
            }
            checkpoint = cursor + 1;
        }
        cursor += 1;
    }
    out.extend_from_slice(&bytes[checkpoint..]);
    // Only whole input slices split at ASCII bytes were copied: still UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

enum Read<'a> {
    Variable(&'a [u8], usize),
    Literal(&'a [u8], usize),
}

/// What a `$` at the start of `input` (at least two bytes long) introduces, and how many
/// bytes after the `$` it consumes.
fn read_variable_name(input: &[u8]) -> Read<'_> {
    match input[1] {
        b'$' => Read::Literal(&input[1..2], 1),
        b'(' => match input.iter().skip(2).position(|&b| b == b')') {
            Some(i) => Read::Variable(&input[2..i + 2], i + 2),
            None => Read::Literal(&input[..2], 1),
        },
        _ => Read::Literal(&input[..2], 1),
    }
}

// --- downward API --------------------------------------------------------------------

/// A `fieldRef` of an env var (upstream `podFieldSelectorRuntimeValue`).
fn pod_field_value(
    selector: &ObjectFieldSelector,
    pod: &Pod,
    ctx: &PodContext,
) -> Result<String, String> {
    let version = selector.api_version.as_deref().unwrap_or("v1");
    let version = if version.is_empty() { "v1" } else { version };
    if version != "v1" {
        return Err(format!("unsupported pod version: {version}"));
    }
    let path = selector.field_path.as_str();
    if let Some((base, _)) = split_subscript(path) {
        if base != "metadata.annotations" && base != "metadata.labels" {
            return Err(format!("field label does not support subscript: {path}"));
        }
        return object_field_value(pod, path);
    }
    let spec = pod.spec.as_ref();
    let pod_ips = ctx.sorted_pod_ips();
    let host_ips = || {
        let ips = ctx.host_ip_list();
        if ips.is_empty() {
            Err("host IP unknown; known addresses: []".to_string())
        } else {
            Ok(ips)
        }
    };
    match path {
        "spec.nodeName" | "spec.host" => Ok(spec
            .and_then(|s| s.node_name.clone())
            .unwrap_or_else(|| ctx.node_name.clone())),
        "spec.serviceAccountName" => Ok(spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default()),
        "status.hostIP" => Ok(host_ips()?.swap_remove(0)),
        "status.hostIPs" => Ok(host_ips()?.join(",")),
        "status.podIP" => Ok(pod_ips.first().cloned().unwrap_or_default()),
        "status.podIPs" => Ok(pod_ips.join(",")),
        "metadata.annotations"
        | "metadata.labels"
        | "metadata.name"
        | "metadata.namespace"
        | "metadata.uid"
        | "spec.restartPolicy"
        | "spec.schedulerName"
        | "status.phase" => object_field_value(pod, path),
        _ => Err(format!("field label not supported: {path}")),
    }
}

/// `fieldpath.ExtractFieldPathAsString`: the metadata fields a downwardAPI volume file may
/// hold.
pub(crate) fn object_field_value(pod: &Pod, path: &str) -> Result<String, String> {
    let meta = &pod.metadata;
    if let Some((base, key)) = split_subscript(path) {
        let (map, checked) = match base {
            "metadata.annotations" => (&meta.annotations, key.to_lowercase()),
            "metadata.labels" => (&meta.labels, key.to_string()),
            _ => {
                return Err(format!(
                    "fieldPath {} does not support subscript",
                    go_quote(path)
                ))
            }
        };
        let errs = is_qualified_name(&checked);
        if !errs.is_empty() {
            return Err(format!(
                "invalid key subscript in {path}: {}",
                errs.join(";")
            ));
        }
        return Ok(map
            .as_ref()
            .and_then(|m| m.get(key))
            .cloned()
            .unwrap_or_default());
    }
    match path {
        "metadata.annotations" => Ok(format_map(meta.annotations.as_ref())),
        "metadata.labels" => Ok(format_map(meta.labels.as_ref())),
        "metadata.name" => Ok(meta.name.clone().unwrap_or_default()),
        "metadata.namespace" => Ok(meta.namespace.clone().unwrap_or_default()),
        "metadata.uid" => Ok(meta.uid.clone().unwrap_or_default()),
        _ => Err(format!("unsupported fieldPath: {path}")),
    }
}

/// `metadata.labels['key']` → (`metadata.labels`, `key`).
fn split_subscript(path: &str) -> Option<(&str, &str)> {
    let inner = path.strip_suffix("']")?;
    let (base, key) = inner.split_once("['")?;
    (!base.is_empty()).then_some((base, key))
}

/// `fieldpath.FormatMap`: sorted `key="value"` lines.
fn format_map(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A `resourceFieldRef` (upstream `ExtractContainerResourceValue` on a pod whose unset
/// limits were defaulted to node allocatable). `container` is the one the env var belongs
/// to, used when the selector names none.
pub(crate) fn resource_field_value(
    selector: &ResourceFieldSelector,
    pod: &Pod,
    container: Option<&Container>,
    allocatable: &BTreeMap<String, ApiQuantity>,
) -> Result<String, String> {
    let container = match selector.container_name.as_deref().filter(|n| !n.is_empty()) {
        Some(name) => {
            find_container(pod, name).ok_or_else(|| format!("container {name} not found"))?
        }
        None => container.ok_or_else(|| "containerName is required".to_string())?,
    };
    let divisor = match &selector.divisor {
        Some(q) => parse_quantity(&q.0)?,
        None => Quantity::zero(),
    };
    let divisor = if divisor.is_zero() {
        Quantity::from_value(1, keelson_apimachinery::quantity::Format::DecimalSI)
    } else {
        divisor
    };
    let resource = selector.resource.as_str();
    let (kind, name) = resource
        .split_once('.')
        .filter(|(k, _)| *k == "limits" || *k == "requests")
        .ok_or_else(|| format!("unsupported container resource : {resource}"))?;
    let known =
        matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-");
    if !known {
        return Err(format!("unsupported container resource : {resource}"));
    }
    let value = if kind == "limits" {
        container_limit(pod, container, name, allocatable)?
    } else {
        container_quantity(
            container
                .resources
                .as_ref()
                .and_then(|r| r.requests.as_ref()),
            name,
        )?
    };
    let value = value.unwrap_or_default();
    let result = if name == "cpu" {
        ceil_div(value.milli_value(), divisor.milli_value())
    } else {
        ceil_div(value.value(), divisor.value())
    };
    result
        .map(|v| v.to_string())
        .ok_or_else(|| format!("invalid divisor for {resource}"))
}

fn find_container<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
}

fn parse_quantity(s: &str) -> Result<Quantity, String> {
    Quantity::parse(s).map_err(|e| format!("{s}: {e}"))
}

fn container_quantity(
    list: Option<&BTreeMap<String, ApiQuantity>>,
    name: &str,
) -> Result<Option<Quantity>, String> {
    list.and_then(|l| l.get(name))
        .map(|q| parse_quantity(&q.0))
        .transpose()
}

/// The container's limit, or when it has none (or zero) for cpu, memory or
/// ephemeral-storage: the pod-level limit (cpu, memory), else node allocatable.
/// Hugepages are never defaulted: they cannot be overcommitted.
fn container_limit(
    pod: &Pod,
    container: &Container,
    name: &str,
    allocatable: &BTreeMap<String, ApiQuantity>,
) -> Result<Option<Quantity>, String> {
    let own = container_quantity(
        container.resources.as_ref().and_then(|r| r.limits.as_ref()),
        name,
    )?;
    if own.as_ref().is_some_and(|q| !q.is_zero()) || name.starts_with("hugepages-") {
        return Ok(own);
    }
    if name == "cpu" || name == "memory" {
        let pod_level = pod
            .spec
            .as_ref()
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.limits.as_ref());
        if let Some(q) = container_quantity(pod_level, name)?.filter(|q| !q.is_zero()) {
            return Ok(Some(q));
        }
    }
    match container_quantity(Some(allocatable), name)? {
        Some(q) => Ok(Some(q)),
        None => Ok(own),
    }
}

/// `ceil(a / b)` in integers; `None` for a zero divisor.
fn ceil_div(a: i128, b: i128) -> Option<i128> {
    if b == 0 {
        return None;
    }
    let q = a / b;
    Some(if a % b != 0 && ((a > 0) == (b > 0)) {
        q + 1
    } else {
        q
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::source::fake::FakeSource;
    use k8s_openapi::api::core::v1::{PodSpec, ServicePort, ServiceSpec};
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        let mut pod: Pod = serde_json::from_value(json!({
            "metadata": {
                "name": "web-0", "namespace": "shop", "uid": "1234-abcd",
                "labels": {"app": "web", "tier": "front"},
                "annotations": {"note": "say \"hi\"", "example.com/team": "blue"}
            },
            "spec": {"containers": [{"name": "main", "image": "busybox"}]}
        }))
        .expect("pod");
        let extra: PodSpec = serde_json::from_value(spec).expect("spec");
        let base = pod.spec.get_or_insert_with(Default::default);
        if !extra.containers.is_empty() {
            base.containers = extra.containers;
        }
        base.init_containers = extra.init_containers;
        base.node_name = extra.node_name;
        base.service_account_name = extra.service_account_name;
        base.enable_service_links = extra.enable_service_links;
        base.resources = extra.resources;
        pod
    }

    fn container(value: serde_json::Value) -> Container {
        serde_json::from_value(value).expect("container")
    }

    fn service(name: &str, ip: &str, ports: &[(Option<&str>, i32, Option<&str>)]) -> Service {
        Service {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some(ip.into()),
                ports: Some(
                    ports
                        .iter()
                        .map(|(n, p, proto)| ServicePort {
                            name: n.map(str::to_string),
                            port: *p,
                            protocol: proto.map(str::to_string),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn ctx() -> PodContext {
        let mut ctx = PodContext::new("node-a");
        ctx.pod_ip = Some("10.1.0.7".into());
        ctx.host_ip = Some("192.168.1.5".into());
        ctx.node_allocatable = [
            ("cpu", "4"),
            ("memory", "8Gi"),
            ("ephemeral-storage", "100Gi"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), ApiQuantity(v.into())))
        .collect();
        ctx
    }

    async fn env_of(
        pod: &Pod,
        c: &Container,
        source: &FakeSource,
    ) -> Result<Vec<(String, String)>, EnvError> {
        container_env(pod, c, &ctx(), source).await
    }

    fn lookup<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
        let hits: Vec<&str> = env
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect();
        assert!(hits.len() <= 1, "{name} appears {} times", hits.len());
        hits.first().copied()
    }

    // Upstream third_party/forked/golang/expansion/expand_test.go, both mappings.
    #[test]
    fn expansion_cases_from_upstream() {
        let one: HashMap<&str, &str> = [
            ("VAR_A", "A"),
            ("VAR_B", "B"),
            ("VAR_C", "C"),
            ("VAR_REF", "$(VAR_A)"),
            ("VAR_EMPTY", ""),
        ]
        .into_iter()
        .collect();
        let first: HashMap<&str, &str> = [("VAR_A", "A"), ("VAR_EMPTY", "")].into_iter().collect();
        let second: HashMap<&str, &str> = [("VAR_B", "B"), ("VAR_C", "C"), ("VAR_REF", "$(VAR_A)")]
            .into_iter()
            .collect();
        let cases = [
            ("$(VAR_A)", "A"),
            ("$(VAR_A)-$(VAR_A)", "A-A"),
            ("$(VAR_A)-1", "A-1"),
            ("___$(VAR_B)___", "___B___"),
            ("___$(VAR_C)", "___C"),
            ("$(VAR_A)_$(VAR_B)_$(VAR_C)", "A_B_C"),
            ("$$(VAR_B)_$(VAR_A)", "$(VAR_B)_A"),
            ("$$(VAR_A)_$$(VAR_B)", "$(VAR_A)_$(VAR_B)"),
            ("f000-$$VAR_A", "f000-$VAR_A"),
            ("foo\\$(VAR_C)bar", "foo\\Cbar"),
            ("foo\\\\$(VAR_C)bar", "foo\\\\Cbar"),
            ("foo\\\\\\\\$(VAR_A)bar", "foo\\\\\\\\Abar"),
            ("$(VAR_A$(VAR_B))", "$(VAR_A$(VAR_B))"),
            ("$(VAR_A$(VAR_B)", "$(VAR_A$(VAR_B)"),
            ("$(VAR_REF)", "$(VAR_A)"),
            ("%%$(VAR_REF)--$(VAR_REF)%%", "%%$(VAR_A)--$(VAR_A)%%"),
            ("foo$(VAR_EMPTY)bar", "foobar"),
            ("foo$(VAR_Awhoops!", "foo$(VAR_Awhoops!"),
            ("f00__(VAR_A)__", "f00__(VAR_A)__"),
            ("$?_boo_$!", "$?_boo_$!"),
            ("$VAR_A", "$VAR_A"),
            ("$(VAR_DNE)", "$(VAR_DNE)"),
            ("$$$$$$(BIG_MONEY)", "$$$(BIG_MONEY)"),
            ("$$$$$$(VAR_A)", "$$$(VAR_A)"),
            ("$$$$$$$(GOOD_ODDS)", "$$$$(GOOD_ODDS)"),
            ("$$$$$$$(VAR_A)", "$$$A"),
            ("$VAR_A)", "$VAR_A)"),
            ("${VAR_A}", "${VAR_A}"),
            ("$(VAR_B)_______$(A", "B_______$(A"),
            ("$(VAR_C)_______$(", "C_______$("),
            ("$(VAR_A)foobarzab$", "Afoobarzab$"),
            ("foo-\\$(VAR_A", "foo-\\$(VAR_A"),
            ("--$($($($($--", "--$($($($($--"),
            ("$($($($($--foo$(", "$($($($($--foo$("),
            ("foo0--$($($($(", "foo0--$($($($("),
            ("$(foo$$var)", "$(foo$$var)"),
            ("\n", "\n"),
            ("héllo-$(VAR_A)-$é", "héllo-A-$é"),
        ];
        for (input, expected) in cases {
            let single = expand(input, |n| one.get(n).map(|v| v.to_string()));
            assert_eq!(single, expected, "single mapping, input {input:?}");
            let dual = expand(input, |n| {
                first
                    .get(n)
                    .or_else(|| second.get(n))
                    .map(|v| v.to_string())
            });
            assert_eq!(dual, expected, "dual mapping, input {input:?}");
        }
    }

    #[tokio::test]
    async fn env_references_earlier_variables_only() {
        let source = FakeSource::default();
        let c = container(json!({"name": "main", "env": [
            {"name": "FOO", "value": "bar"},
            {"name": "ZOO", "value": "$(FOO)-1"},
            {"name": "BLU", "value": "$(ZOO)-2"},
            {"name": "EARLY", "value": "$(LATE)"},
            {"name": "LATE", "value": "x"},
            {"name": "EMPTY"},
            {"name": "ESCAPED", "value": "$$(FOO)"},
        ]}));
        let env = env_of(&pod(json!({})), &c, &source).await.expect("env");
        let own: Vec<_> = env.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        assert_eq!(
            own,
            vec![
                ("FOO", "bar"),
                ("ZOO", "bar-1"),
                ("BLU", "bar-1-2"),
                ("EARLY", "$(LATE)"),
                ("LATE", "x"),
                ("EMPTY", ""),
                ("ESCAPED", "$(FOO)"),
            ]
        );
    }

    #[tokio::test]
    async fn service_links_for_namespace_and_kubernetes_service() {
        let source = FakeSource::default();
        source.put_service(
            "default",
            service("kubernetes", "10.96.0.1", &[(Some("https"), 443, None)]),
        );
        source.put_service(
            "default",
            service("other", "10.96.0.9", &[(None, 80, None)]),
        );
        source.put_service(
            "shop",
            service(
                "my-db",
                "10.96.3.4",
                &[
                    (None, 5432, None),
                    (Some("metrics-port"), 9187, Some("UDP")),
                ],
            ),
        );
        source.put_service("shop", service("headless", "None", &[(None, 80, None)]));
        source.put_service("shop", service("v6", "fd00::10", &[(None, 8080, None)]));
        let c = container(json!({"name": "main"}));
        let env = env_of(&pod(json!({})), &c, &source).await.expect("env");

        let expected = [
            ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
            ("KUBERNETES_SERVICE_PORT", "443"),
            ("KUBERNETES_SERVICE_PORT_HTTPS", "443"),
            ("KUBERNETES_PORT", "tcp://10.96.0.1:443"),
            ("KUBERNETES_PORT_443_TCP", "tcp://10.96.0.1:443"),
            ("KUBERNETES_PORT_443_TCP_PROTO", "tcp"),
            ("KUBERNETES_PORT_443_TCP_PORT", "443"),
            ("KUBERNETES_PORT_443_TCP_ADDR", "10.96.0.1"),
            ("MY_DB_SERVICE_HOST", "10.96.3.4"),
            ("MY_DB_SERVICE_PORT", "5432"),
            ("MY_DB_SERVICE_PORT_METRICS_PORT", "9187"),
            ("MY_DB_PORT", "tcp://10.96.3.4:5432"),
            ("MY_DB_PORT_5432_TCP_ADDR", "10.96.3.4"),
            ("MY_DB_PORT_9187_UDP", "udp://10.96.3.4:9187"),
            ("MY_DB_PORT_9187_UDP_PROTO", "udp"),
            ("V6_PORT", "tcp://[fd00::10]:8080"),
            ("V6_SERVICE_HOST", "fd00::10"),
        ];
        for (name, value) in expected {
            assert_eq!(lookup(&env, name), Some(value), "{name}");
        }
        assert_eq!(lookup(&env, "OTHER_SERVICE_HOST"), None, "other namespace");
        assert_eq!(lookup(&env, "HEADLESS_SERVICE_HOST"), None, "headless");

        let no_links = pod(json!({"containers": [], "enableServiceLinks": false}));
        let env = env_of(&no_links, &c, &source).await.expect("env");
        assert_eq!(lookup(&env, "KUBERNETES_SERVICE_HOST"), Some("10.96.0.1"));
        assert_eq!(lookup(&env, "MY_DB_SERVICE_HOST"), None);
    }

    #[tokio::test]
    async fn env_from_prefix_optional_and_precedence() {
        let source = FakeSource::default();
        source.put_service("shop", service("cache", "10.96.5.5", &[(None, 6379, None)]));
        source.put_config_map(
            "shop",
            "settings",
            &[("mode", "fast"), ("level", "3"), ("my.key", "dotted")],
        );
        source.put_secret(
            "shop",
            "creds",
            &[("password", b"s3cret"), ("mode", b"secret-mode")],
        );
        let c = container(json!({"name": "main",
            "envFrom": [
                {"configMapRef": {"name": "settings"}, "prefix": "CFG_"},
                {"configMapRef": {"name": "absent", "optional": true}},
                {"secretRef": {"name": "creds"}},
                {"configMapRef": {"name": "settings"}},
            ],
            "env": [
                {"name": "CACHE_SERVICE_HOST", "value": "overridden"},
                {"name": "mode", "value": "from-env:$(CFG_mode):$(CACHE_SERVICE_PORT)"},
            ]
        }));
        let env = env_of(&pod(json!({})), &c, &source).await.expect("env");
        assert_eq!(lookup(&env, "CFG_mode"), Some("fast"));
        assert_eq!(lookup(&env, "CFG_level"), Some("3"));
        assert_eq!(lookup(&env, "CFG_my.key"), Some("dotted"));
        assert_eq!(lookup(&env, "password"), Some("s3cret"));
        assert_eq!(lookup(&env, "level"), Some("3"));
        // env beats envFrom (configMap after secret), envFrom beats service links.
        assert_eq!(lookup(&env, "mode"), Some("from-env:fast:6379"));
        assert_eq!(lookup(&env, "CACHE_SERVICE_HOST"), Some("overridden"));
        assert_eq!(lookup(&env, "CACHE_PORT"), Some("tcp://10.96.5.5:6379"));
        // Own variables first, env in declaration order last among them.
        let names: Vec<&str> = env.iter().map(|(n, _)| n.as_str()).collect();
        let pos = |n: &str| names.iter().position(|x| *x == n).expect(n);
        assert!(pos("CFG_level") < pos("CACHE_SERVICE_HOST"));
        assert!(pos("CACHE_SERVICE_HOST") < pos("mode"));
        assert!(pos("mode") < pos("CACHE_PORT"));

        let missing =
            container(json!({"name": "main", "envFrom": [{"configMapRef": {"name": "absent"}}]}));
        let err = env_of(&pod(json!({})), &missing, &source)
            .await
            .expect_err("missing");
        assert_eq!(err.to_string(), "configmap \"absent\" not found");
        let missing =
            container(json!({"name": "main", "envFrom": [{"secretRef": {"name": "nope"}}]}));
        let err = env_of(&pod(json!({})), &missing, &source)
            .await
            .expect_err("missing");
        assert_eq!(err.to_string(), "secret \"nope\" not found");
        assert_eq!(EnvError::REASON, "CreateContainerConfigError");
    }

    #[test]
    fn env_var_names_follow_relaxed_validation() {
        assert!(is_env_var_name("my.key-1"));
        assert!(is_env_var_name("1abc"));
        assert!(!is_env_var_name("a=b"));
        assert!(!is_env_var_name(""));
        assert!(!is_env_var_name("tab\there"));
    }

    #[tokio::test]
    async fn key_refs_errors_and_optional() {
        let source = FakeSource::default();
        source.put_config_map("shop", "settings", &[("mode", "fast")]);
        source.put_secret("shop", "creds", &[("password", b"s3cret")]);
        let c = container(json!({"name": "main", "env": [
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
            {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
            {"name": "OPT_KEY", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "nope", "optional": true}}},
            {"name": "OPT_MAP", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "x", "optional": true}}},
        ]}));
        let env = env_of(&pod(json!({})), &c, &source).await.expect("env");
        assert_eq!(lookup(&env, "MODE"), Some("fast"));
        assert_eq!(lookup(&env, "PASS"), Some("s3cret"));
        assert_eq!(lookup(&env, "OPT_KEY"), None);
        assert_eq!(lookup(&env, "OPT_MAP"), None);

        let cases = [
            (
                json!({"configMapKeyRef": {"name": "settings", "key": "k"}}),
                "couldn't find key k in ConfigMap shop/settings",
            ),
            (
                json!({"secretKeyRef": {"name": "creds", "key": "k"}}),
                "couldn't find key k in Secret shop/creds",
            ),
            (
                json!({"configMapKeyRef": {"name": "x", "key": "k"}}),
                "configmap \"x\" not found",
            ),
            (
                json!({"secretKeyRef": {"name": "x", "key": "k"}}),
                "secret \"x\" not found",
            ),
            (
                json!({"fieldRef": {"fieldPath": "status.phase"}}),
                "unsupported fieldPath: status.phase",
            ),
            (
                json!({"fieldRef": {"fieldPath": "spec.bogus"}}),
                "field label not supported: spec.bogus",
            ),
            (
                json!({"fieldRef": {"apiVersion": "v2", "fieldPath": "metadata.name"}}),
                "unsupported pod version: v2",
            ),
            (
                json!({"resourceFieldRef": {"resource": "limits.gpu"}}),
                "unsupported container resource : limits.gpu",
            ),
            (
                json!({"resourceFieldRef": {"resource": "limits.cpu", "containerName": "ghost"}}),
                "container ghost not found",
            ),
        ];
        for (value_from, message) in cases {
            let c =
                container(json!({"name": "main", "env": [{"name": "X", "valueFrom": value_from}]}));
            let err = env_of(&pod(json!({})), &c, &source)
                .await
                .expect_err(message);
            assert_eq!(err.to_string(), message);
        }
    }

    #[tokio::test]
    async fn field_refs() {
        let source = FakeSource::default();
        let field = |name: &str, path: &str| json!({"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}});
        let c = container(json!({"name": "main", "env": [
            field("NAME", "metadata.name"),
            field("NS", "metadata.namespace"),
            field("UID", "metadata.uid"),
            field("APP", "metadata.labels['app']"),
            field("NOLABEL", "metadata.labels['missing']"),
            field("TEAM", "metadata.annotations['example.com/team']"),
            field("LABELS", "metadata.labels"),
            field("ANNOTATIONS", "metadata.annotations"),
            field("NODE", "spec.nodeName"),
            field("SA", "spec.serviceAccountName"),
            field("HOST_IP", "status.hostIP"),
            field("HOST_IPS", "status.hostIPs"),
            field("POD_IP", "status.podIP"),
            field("POD_IPS", "status.podIPs"),
        ]}));
        let p =
            pod(json!({"containers": [], "nodeName": "node-a", "serviceAccountName": "builder"}));
        let mut context = ctx();
        context.pod_ips = vec!["fd00::7".into(), "10.1.0.7".into()];
        let env = container_env(&p, &c, &context, &source).await.expect("env");
        let expected = [
            ("NAME", "web-0"),
            ("NS", "shop"),
            ("UID", "1234-abcd"),
            ("APP", "web"),
            ("NOLABEL", ""),
            ("TEAM", "blue"),
            ("LABELS", "app=\"web\"\ntier=\"front\""),
            (
                "ANNOTATIONS",
                "example.com/team=\"blue\"\nnote=\"say \\\"hi\\\"\"",
            ),
            ("NODE", "node-a"),
            ("SA", "builder"),
            ("HOST_IP", "192.168.1.5"),
            ("HOST_IPS", "192.168.1.5"),
            // The node is IPv4: its family first.
            ("POD_IP", "10.1.0.7"),
            ("POD_IPS", "10.1.0.7,fd00::7"),
        ];
        for (name, value) in expected {
            assert_eq!(lookup(&env, name), Some(value), "{name}");
        }
    }

    #[tokio::test]
    async fn resource_field_refs_with_divisors_and_defaults() {
        let source = FakeSource::default();
        let res = |name: &str, resource: &str, divisor: Option<&str>, container: Option<&str>| {
            let mut sel = json!({"resource": resource});
            if let Some(d) = divisor {
                sel["divisor"] = json!(d);
            }
            if let Some(c) = container {
                sel["containerName"] = json!(c);
            }
            json!({"name": name, "valueFrom": {"resourceFieldRef": sel}})
        };
        let main = json!({"name": "main",
        "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m", "memory": "64Mi"}},
        "env": [
            res("CPU_LIMIT", "limits.cpu", None, None),
            res("CPU_LIMIT_M", "limits.cpu", Some("1m"), None),
            res("CPU_REQ", "requests.cpu", None, None),
            res("MEM_LIMIT", "limits.memory", None, None),
            res("MEM_LIMIT_MI", "limits.memory", Some("1Mi"), None),
            res("MEM_REQ_MI", "requests.memory", Some("1Mi"), None),
            res("EPH_LIMIT_GI", "limits.ephemeral-storage", Some("1Gi"), None),
            res("EPH_REQ", "requests.ephemeral-storage", None, None),
            res("SIDE_CPU", "limits.cpu", None, Some("side")),
            res("SIDE_MEM_MI", "limits.memory", Some("1Mi"), Some("side")),
            res("ZERO_DIVISOR", "limits.cpu", Some("0"), None),
        ]});
        let side = json!({"name": "side", "resources": {"limits": {"memory": "1Gi"}}});
        let p = pod(json!({"containers": [main.clone(), side]}));
        let c = container(main);
        let env = env_of(&p, &c, &source).await.expect("env");
        let expected = [
            ("CPU_LIMIT", "1"),
            ("CPU_LIMIT_M", "500"),
            ("CPU_REQ", "1"),
            ("MEM_LIMIT", "134217728"),
            ("MEM_LIMIT_MI", "128"),
            ("MEM_REQ_MI", "64"),
            // No limit: node allocatable.
            ("EPH_LIMIT_GI", "100"),
            ("EPH_REQ", "0"),
            ("SIDE_CPU", "4"),
            ("SIDE_MEM_MI", "1024"),
            ("ZERO_DIVISOR", "1"),
        ];
        for (name, value) in expected {
            assert_eq!(lookup(&env, name), Some(value), "{name}");
        }

        // Pod-level limits come before node allocatable.
        let p = pod(
            json!({"containers": [{"name": "main", "env": [res("CPU", "limits.cpu", Some("1m"), None)]}],
            "resources": {"limits": {"cpu": "2"}}}),
        );
        let spec_container = p
            .spec
            .as_ref()
            .map(|s| s.containers[0].clone())
            .expect("container");
        let env = env_of(&p, &spec_container, &source).await.expect("env");
        assert_eq!(lookup(&env, "CPU"), Some("2000"));
    }

    #[test]
    fn ceil_division() {
        assert_eq!(ceil_div(250, 1000), Some(1));
        assert_eq!(ceil_div(2000, 1000), Some(2));
        assert_eq!(ceil_div(0, 1000), Some(0));
        assert_eq!(ceil_div(1, 0), None);
    }
}
