//! The per-pod files every container gets: `/etc/hosts` (upstream kubelet's managed hosts
//! file), `/etc/hostname` and `/etc/resolv.conf` (which upstream's container runtime writes
//! from the kubelet's DNS configuration). They live in the pod directory and are bind
//! mounted; writing them again on every container start keeps them current.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, HostAlias, Pod, PodDNSConfig};
use keelson_apimachinery::names::is_dns1123_label;
use keelson_apimachinery::validation::go_quote;

use super::env::PodContext;

pub const HOSTS_FILE: &str = "etc-hosts";
pub const HOSTNAME_FILE: &str = "etc-hostname";
pub const RESOLV_CONF_FILE: &str = "etc-resolv.conf";

const MANAGED_HOSTS_HEADER: &str = "# Kubernetes-managed hosts file.\n";
const MANAGED_HOSTS_HEADER_HOST_NETWORK: &str = "# Kubernetes-managed hosts file (host network).\n";
/// Linux' nodename field: 64 bytes with the NUL, so a label or FQDN of 63/64 characters.
const HOSTNAME_MAX_LEN: usize = 63;
const FQDN_MAX_LEN: usize = 64;
/// Pod DNS limits (upstream `validation.MaxDNSNameservers` and friends).
const MAX_NAMESERVERS: usize = 3;
const MAX_SEARCH_PATHS: usize = 32;
const MAX_SEARCH_CHARS: usize = 2048;
const MAX_SEARCH_DOMAIN_LEN: usize = 253;

/// Why the files cannot be written; the kubelet reports it like a sandbox failure.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EtcError(pub String);

/// The files written for one pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcFiles {
    /// None while a pod on the pod network has no IP yet (upstream mounts none then).
    pub hosts: Option<PathBuf>,
    pub hostname: PathBuf,
    pub resolv_conf: PathBuf,
    /// The name the pod's UTS namespace should carry (what `/etc/hostname` holds).
    pub kernel_hostname: String,
}

impl EtcFiles {
    /// Mounts to add to `container`: each file unless the container mounts something at
    /// that path itself. `/etc/hosts` is writable (as upstream); the others follow the
    /// container's readOnlyRootFilesystem, as the container runtime does.
    pub fn mounts(&self, container: &Container) -> Vec<(PathBuf, String, bool)> {
        let taken = |path: &str| {
            container
                .volume_mounts
                .iter()
                .flatten()
                .any(|m| m.mount_path.trim_end_matches('/') == path)
        };
        let read_only_root = container
            .security_context
            .as_ref()
            .and_then(|s| s.read_only_root_filesystem)
            .unwrap_or(false);
        let mut out = Vec::new();
        if let Some(hosts) = &self.hosts {
            if !taken("/etc/hosts") {
                out.push((hosts.clone(), "/etc/hosts".to_string(), false));
            }
        }
        if !taken("/etc/hostname") {
            out.push((
                self.hostname.clone(),
                "/etc/hostname".into(),
                read_only_root,
            ));
        }
        if !taken("/etc/resolv.conf") {
            out.push((
                self.resolv_conf.clone(),
                "/etc/resolv.conf".into(),
                read_only_root,
            ));
        }
        out
    }
}

/// Writes the pod's hosts, hostname and resolv.conf files into `pod_dir`.
pub async fn write(pod: &Pod, pod_dir: &Path, ctx: &PodContext) -> Result<EtcFiles, EtcError> {
    let spec = pod.spec.clone().unwrap_or_default();
    let host_network = spec.host_network.unwrap_or(false);
    let (hostname, domain) = hostname_and_domain(pod, &ctx.cluster_domain)?;
    let aliases = spec.host_aliases.as_deref().unwrap_or_default();
    let pod_ips = ctx.sorted_pod_ips();
    tokio::fs::create_dir_all(pod_dir)
        .await
        .map_err(|e| io_error(pod_dir, e))?;

    let hosts = if host_network || !pod_ips.is_empty() {
        let content = if host_network {
            let node = tokio::fs::read(&ctx.hosts_file)
                .await
                .map_err(|e| io_error(&ctx.hosts_file, e))?;
            host_network_hosts_content(&node, aliases)
        } else {
            managed_hosts_content(&pod_ips, &hostname, &domain, aliases).into_bytes()
        };
        let path = pod_dir.join(HOSTS_FILE);
        write_file(&path, &content).await?;
        Some(path)
    } else {
        None
    };

    let kernel_hostname = if host_network {
        node_hostname(ctx).await
    } else {
        kernel_hostname(
            &hostname,
            &domain,
            spec.set_hostname_as_fqdn.unwrap_or(false),
        )?
    };
    let hostname_path = pod_dir.join(HOSTNAME_FILE);
    write_file(&hostname_path, format!("{kernel_hostname}\n").as_bytes()).await?;

    let host_conf = if ctx.resolv_conf.as_os_str().is_empty() {
        None
    } else {
        let text = tokio::fs::read_to_string(&ctx.resolv_conf)
            .await
            .map_err(|e| {
                EtcError(format!(
                    "failed to open DNS resolver config file {}: {e}",
                    go_quote(&ctx.resolv_conf.to_string_lossy())
                ))
            })?;
        Some(text)
    };
    let resolv = pod_dns(pod, ctx, host_conf.as_deref())?.render();
    let resolv_path = pod_dir.join(RESOLV_CONF_FILE);
    write_file(&resolv_path, resolv.as_bytes()).await?;

    Ok(EtcFiles {
        hosts,
        hostname: hostname_path,
        resolv_conf: resolv_path,
        kernel_hostname,
    })
}

fn io_error(path: &Path, e: std::io::Error) -> EtcError {
    EtcError(format!("{}: {e}", path.display()))
}

/// Written through a temporary name, so a running container never reads half a file.
async fn write_file(path: &Path, content: &[u8]) -> Result<(), EtcError> {
    use std::os::unix::fs::PermissionsExt;
    let tmp = path.with_extension("tmp");
    tokio::fs::write(&tmp, content)
        .await
        .map_err(|e| io_error(&tmp, e))?;
    tokio::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))
        .await
        .map_err(|e| io_error(&tmp, e))?;
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(|e| io_error(path, e))
}

async fn node_hostname(ctx: &PodContext) -> String {
    match tokio::fs::read_to_string("/proc/sys/kernel/hostname").await {
        Ok(name) if !name.trim().is_empty() => name.trim().to_string(),
        _ => ctx.node_name.clone(),
    }
}

/// upstream `GeneratePodHostNameAndDomain`: (host name, domain). The domain is
/// `<subdomain>.<namespace>.svc.<cluster domain>` when the pod sets a subdomain.
pub fn hostname_and_domain(pod: &Pod, cluster_domain: &str) -> Result<(String, String), EtcError> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let spec = pod.spec.as_ref();
    if let Some(over) = spec.and_then(|s| s.hostname_override.as_deref()) {
        let errs = keelson_apimachinery::names::is_dns1123_subdomain(over);
        if !errs.is_empty() {
            return Err(EtcError(format!(
                "pod HostnameOverride {} is not a valid DNS subdomain: {}",
                go_quote(over),
                errs.join(";")
            )));
        }
        return Ok((truncate_hostname(&name, over)?, String::new()));
    }
    let mut hostname = name.clone();
    if let Some(h) = spec
        .and_then(|s| s.hostname.as_deref())
        .filter(|h| !h.is_empty())
    {
        let errs = is_dns1123_label(h);
        if !errs.is_empty() {
            return Err(EtcError(format!(
                "pod Hostname {} is not a valid DNS label: {}",
                go_quote(h),
                errs.join(";")
            )));
        }
        hostname = h.to_string();
    }
    let hostname = truncate_hostname(&name, &hostname)?;
    let mut domain = String::new();
    if let Some(sub) = spec
        .and_then(|s| s.subdomain.as_deref())
        .filter(|s| !s.is_empty())
    {
        let errs = is_dns1123_label(sub);
        if !errs.is_empty() {
            return Err(EtcError(format!(
                "pod Subdomain {} is not a valid DNS label: {}",
                go_quote(sub),
                errs.join(";")
            )));
        }
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        domain = format!("{sub}.{namespace}.svc.{cluster_domain}");
    }
    Ok((hostname, domain))
}

fn truncate_hostname(pod_name: &str, hostname: &str) -> Result<String, EtcError> {
    if hostname.len() <= HOSTNAME_MAX_LEN {
        return Ok(hostname.to_string());
    }
    // Validated names are ASCII, so a byte cut is a character cut.
    let cut = hostname.get(..HOSTNAME_MAX_LEN).unwrap_or(hostname);
    let truncated = cut.trim_end_matches(['-', '.']);
    if truncated.is_empty() {
        return Err(EtcError(format!(
            "hostname for pod {} was invalid: {}",
            go_quote(pod_name),
            go_quote(hostname)
        )));
    }
    Ok(truncated.to_string())
}

/// upstream `GetNodenameForKernel`.
fn kernel_hostname(hostname: &str, domain: &str, as_fqdn: bool) -> Result<String, EtcError> {
    if domain.is_empty() || !as_fqdn {
        return Ok(hostname.to_string());
    }
    let fqdn = format!("{hostname}.{domain}");
    if fqdn.len() > FQDN_MAX_LEN {
        return Err(EtcError(format!(
            "failed to construct FQDN from pod hostname and cluster domain, FQDN {fqdn} is too long ({FQDN_MAX_LEN} characters is the max, {} characters requested)",
            fqdn.len()
        )));
    }
    Ok(fqdn)
}

/// upstream `managedHostsFileContent`.
pub fn managed_hosts_content(
    pod_ips: &[String],
    hostname: &str,
    domain: &str,
    aliases: &[HostAlias],
) -> String {
    let mut out = String::from(MANAGED_HOSTS_HEADER);
    out.push_str("127.0.0.1\tlocalhost\n");
    out.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
    out.push_str("fe00::0\tip6-localnet\n");
    out.push_str("fe00::0\tip6-mcastprefix\n");
    out.push_str("fe00::1\tip6-allnodes\n");
    out.push_str("fe00::2\tip6-allrouters\n");
    for ip in pod_ips {
        if domain.is_empty() {
            out.push_str(&format!("{ip}\t{hostname}\n"));
        } else {
            out.push_str(&format!("{ip}\t{hostname}.{domain}\t{hostname}\n"));
        }
    }
    out.push_str(&alias_entries(aliases));
    out
}

/// upstream `nodeHostsFileContent`: the node's own file, marked, plus the aliases.
pub fn host_network_hosts_content(node_hosts: &[u8], aliases: &[HostAlias]) -> Vec<u8> {
    let mut out = MANAGED_HOSTS_HEADER_HOST_NETWORK.as_bytes().to_vec();
    out.extend_from_slice(node_hosts);
    out.extend_from_slice(alias_entries(aliases).as_bytes());
    out
}

fn alias_entries(aliases: &[HostAlias]) -> String {
    if aliases.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n# Entries added by HostAliases.\n");
    for alias in aliases {
        let names = alias.hostnames.as_deref().unwrap_or_default().join("\t");
        out.push_str(&format!("{}\t{names}\n", alias.ip));
    }
    out
}

/// A resolver configuration: what `/etc/resolv.conf` says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsConfig {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

impl DnsConfig {
    /// In the container runtime's layout: search, nameservers, options.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if !self.searches.is_empty() {
            out.push_str(&format!("search {}\n", self.searches.join(" ")));
        }
        for server in &self.servers {
            out.push_str(&format!("nameserver {server}\n"));
        }
        if !self.options.is_empty() {
            out.push_str(&format!("options {}\n", self.options.join(" ")));
        }
        out
    }
}

/// upstream `parseResolvConf`: nameservers accumulate, the last `search` and each
/// option's last value win.
pub fn parse_resolv_conf(text: &str) -> DnsConfig {
    let mut config = DnsConfig::default();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["nameserver", server, ..] => config.servers.push(server.to_string()),
            ["search", domains @ ..] => {
                config.searches = domains
                    .iter()
                    .filter(|d| **d != ".")
                    .map(|d| d.trim_end_matches('.').to_string())
                    .collect();
            }
            ["options", options @ ..] => {
                for option in options {
                    set_option(&mut config.options, option);
                }
            }
            _ => {}
        }
    }
    config
}

fn set_option(options: &mut Vec<String>, option: &str) {
    let name = option.split(':').next().unwrap_or(option);
    match options
        .iter_mut()
        .find(|o| o.split(':').next().unwrap_or(o) == name)
    {
        Some(existing) => *existing = option.to_string(),
        None => options.push(option.to_string()),
    }
}

/// upstream `Configurer.GetPodDNS`. `host_conf`: the node's resolv.conf text, None when
/// the kubelet has none configured.
pub fn pod_dns(
    pod: &Pod,
    ctx: &PodContext,
    host_conf: Option<&str>,
) -> Result<DnsConfig, EtcError> {
    let spec = pod.spec.clone().unwrap_or_default();
    let host_network = spec.host_network.unwrap_or(false);
    let mut config = match host_conf {
        Some(text) => parse_resolv_conf(text),
        None => DnsConfig::default(),
    };
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let cluster = match policy {
        "None" => {
            config = DnsConfig::default();
            false
        }
        "ClusterFirstWithHostNet" => true,
        "ClusterFirst" | "" => !host_network,
        "Default" => false,
        other => return Err(EtcError(format!("invalid DNSPolicy={other}"))),
    };
    let use_cluster = policy != "None" && cluster && !ctx.cluster_dns.is_empty();
    if use_cluster {
        config.servers = ctx.cluster_dns.clone();
        if !ctx.cluster_domain.is_empty() {
            let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
            let domain = &ctx.cluster_domain;
            let mut searches = vec![
                format!("{namespace}.svc.{domain}"),
                format!("svc.{domain}"),
                domain.clone(),
            ];
            searches.append(&mut config.searches);
            config.searches = dedup(searches);
        }
        config.options = vec!["ndots:5".into()];
    } else if policy != "None" {
        if cluster {
            tracing::warn!(
                reason = "MissingClusterDNS",
                "kubelet does not have ClusterDNS IP configured and cannot create Pod using \"ClusterFirst\" policy. Falling back to \"Default\" policy."
            );
        }
        if host_conf.is_none() {
            // No resolver file: point at the local machine, as glibc does without one.
            let v6 = ctx
                .host_ips
                .first()
                .or(ctx.host_ip.as_ref())
                .is_some_and(|ip| ip.contains(':'));
            config.servers = vec![if v6 { "::1" } else { "127.0.0.1" }.to_string()];
            config.searches = vec![".".into()];
        }
    }
    if let Some(dns) = &spec.dns_config {
        append_dns_config(&mut config, dns);
    }
    fit_limits(&mut config);
    Ok(config)
}

fn append_dns_config(config: &mut DnsConfig, dns: &PodDNSConfig) {
    let mut servers = std::mem::take(&mut config.servers);
    servers.extend(dns.nameservers.iter().flatten().cloned());
    config.servers = dedup(servers);
    let mut searches = std::mem::take(&mut config.searches);
    searches.extend(dns.searches.iter().flatten().cloned());
    config.searches = dedup(searches);
    for option in dns.options.iter().flatten() {
        let Some(name) = option.name.as_deref() else {
            continue;
        };
        let value = option.value.as_deref().filter(|v| !v.is_empty());
        let rendered = match value {
            Some(v) => format!("{name}:{v}"),
            None => name.to_string(),
        };
        set_option(&mut config.options, &rendered);
    }
}

fn dedup(items: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// upstream `formDNSConfigFitsLimits`.
fn fit_limits(config: &mut DnsConfig) {
    config.servers.truncate(MAX_NAMESERVERS);
    config.searches.truncate(MAX_SEARCH_PATHS);
    config.searches.retain(|s| s.len() <= MAX_SEARCH_DOMAIN_LEN);
    while !config.searches.is_empty() && config.searches.join(" ").len() > MAX_SEARCH_CHARS {
        config.searches.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        let mut value = json!({
            "metadata": {"name": "web-0", "namespace": "shop", "uid": "u1"},
            "spec": {"containers": [{"name": "main"}]}
        });
        if let (Some(base), Some(extra)) = (value["spec"].as_object_mut(), spec.as_object()) {
            for (k, v) in extra {
                base.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(value).expect("pod")
    }

    fn ctx(dir: &Path) -> PodContext {
        let resolv = dir.join("host-resolv.conf");
        std::fs::write(
            &resolv,
            "# host\nnameserver 192.168.1.1\nnameserver 192.168.1.2\nsearch corp.example. lab.example\noptions timeout:2 ndots:1\n",
        )
        .expect("resolv");
        let hosts = dir.join("host-hosts");
        std::fs::write(&hosts, "127.0.0.1 localhost\n10.0.0.5 build-box\n").expect("hosts");
        let mut ctx = PodContext::new("node-a");
        ctx.pod_ip = Some("10.1.0.7".into());
        ctx.host_ip = Some("192.168.1.5".into());
        ctx.resolv_conf = resolv;
        ctx.hosts_file = hosts;
        ctx
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).expect("read")
    }

    #[tokio::test]
    async fn managed_hosts_with_subdomain_and_aliases() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = pod(json!({
            "hostname": "db", "subdomain": "backend",
            "hostAliases": [{"ip": "10.9.9.9", "hostnames": ["foo.local", "bar.local"]}]
        }));
        let files = write(&p, &dir.path().join("pod"), &ctx(dir.path()))
            .await
            .expect("write");
        let hosts = files.hosts.as_deref().expect("hosts");
        assert_eq!(
            read(hosts),
            "# Kubernetes-managed hosts file.\n\
             127.0.0.1\tlocalhost\n\
             ::1\tlocalhost ip6-localhost ip6-loopback\n\
             fe00::0\tip6-localnet\n\
             fe00::0\tip6-mcastprefix\n\
             fe00::1\tip6-allnodes\n\
             fe00::2\tip6-allrouters\n\
             10.1.0.7\tdb.backend.shop.svc.cluster.local\tdb\n\
             \n\
             # Entries added by HostAliases.\n\
             10.9.9.9\tfoo.local\tbar.local\n"
        );
        assert_eq!(read(&files.hostname), "db\n");
        assert_eq!(files.kernel_hostname, "db");
    }

    #[tokio::test]
    async fn hosts_uses_pod_name_and_all_pod_ips() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut c = ctx(dir.path());
        c.pod_ips = vec!["10.1.0.7".into(), "fd00::7".into()];
        let files = write(&pod(json!({})), &dir.path().join("pod"), &c)
            .await
            .expect("write");
        let hosts = read(files.hosts.as_deref().expect("hosts"));
        assert!(
            hosts.ends_with("10.1.0.7\tweb-0\nfd00::7\tweb-0\n"),
            "{hosts}"
        );
        assert_eq!(read(&files.hostname), "web-0\n");
    }

    #[tokio::test]
    async fn host_network_pods_see_the_node_hosts_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = pod(
            json!({"hostNetwork": true, "hostAliases": [{"ip": "1.2.3.4", "hostnames": ["x"]}]}),
        );
        let mut c = ctx(dir.path());
        c.pod_ip = None;
        let files = write(&p, &dir.path().join("pod"), &c).await.expect("write");
        assert_eq!(
            read(files.hosts.as_deref().expect("hosts")),
            "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n10.0.0.5 build-box\n\n# Entries added by HostAliases.\n1.2.3.4\tx\n"
        );
        assert_ne!(files.kernel_hostname, "web-0");
    }

    #[tokio::test]
    async fn no_hosts_file_before_the_pod_has_an_ip() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut c = ctx(dir.path());
        c.pod_ip = None;
        let files = write(&pod(json!({})), &dir.path().join("pod"), &c)
            .await
            .expect("write");
        assert_eq!(files.hosts, None);
        let container: Container = serde_json::from_value(json!({"name": "main"})).expect("c");
        let paths: Vec<String> = files.mounts(&container).into_iter().map(|m| m.1).collect();
        assert_eq!(paths, vec!["/etc/hostname", "/etc/resolv.conf"]);
    }

    #[tokio::test]
    async fn mounts_skip_paths_the_container_mounts() {
        let dir = tempfile::tempdir().expect("tmp");
        let files = write(&pod(json!({})), &dir.path().join("pod"), &ctx(dir.path()))
            .await
            .expect("write");
        let plain: Container = serde_json::from_value(json!({"name": "main"})).expect("c");
        assert_eq!(
            files.mounts(&plain),
            vec![
                (
                    dir.path().join("pod/etc-hosts"),
                    "/etc/hosts".to_string(),
                    false
                ),
                (
                    dir.path().join("pod/etc-hostname"),
                    "/etc/hostname".to_string(),
                    false
                ),
                (
                    dir.path().join("pod/etc-resolv.conf"),
                    "/etc/resolv.conf".to_string(),
                    false
                ),
            ]
        );
        let own: Container = serde_json::from_value(json!({"name": "main",
            "securityContext": {"readOnlyRootFilesystem": true},
            "volumeMounts": [{"name": "h", "mountPath": "/etc/hosts"}]}))
        .expect("c");
        let mounts = files.mounts(&own);
        assert_eq!(mounts.len(), 2);
        assert!(mounts.iter().all(|(_, p, ro)| p != "/etc/hosts" && *ro));
    }

    #[tokio::test]
    async fn resolv_conf_follows_dns_policy() {
        let dir = tempfile::tempdir().expect("tmp");
        let c = ctx(dir.path());
        // No cluster DNS configured: ClusterFirst falls back to the host's configuration.
        let files = write(&pod(json!({})), &dir.path().join("a"), &c)
            .await
            .expect("write");
        assert_eq!(
            read(&files.resolv_conf),
            "search corp.example lab.example\nnameserver 192.168.1.1\nnameserver 192.168.1.2\noptions timeout:2 ndots:1\n"
        );

        let none = pod(json!({"dnsPolicy": "None", "dnsConfig": {
            "nameservers": ["1.1.1.1", "8.8.8.8"], "searches": ["my.dns.search.suffix"],
            "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}}));
        let files = write(&none, &dir.path().join("b"), &c)
            .await
            .expect("write");
        assert_eq!(
            read(&files.resolv_conf),
            "search my.dns.search.suffix\nnameserver 1.1.1.1\nnameserver 8.8.8.8\noptions ndots:2 edns0\n"
        );

        let mut clustered = c.clone();
        clustered.cluster_dns = vec!["10.96.0.10".into()];
        let with_extra = pod(json!({"dnsConfig": {"options": [{"name": "ndots", "value": "3"}]}}));
        let files = write(&with_extra, &dir.path().join("c"), &clustered)
            .await
            .expect("write");
        assert_eq!(
            read(&files.resolv_conf),
            "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example lab.example\nnameserver 10.96.0.10\noptions ndots:3\n"
        );
    }

    #[test]
    fn dns_limits() {
        let mut config = DnsConfig {
            servers: (1..6).map(|i| format!("10.0.0.{i}")).collect(),
            searches: (0..40).map(|i| format!("d{i}.example")).collect(),
            options: vec![],
        };
        config.searches.insert(0, "x".repeat(300));
        fit_limits(&mut config);
        assert_eq!(config.servers.len(), 3);
        assert_eq!(config.searches.len(), 31);
        assert_eq!(config.searches[0], "d0.example");
    }

    #[test]
    fn hostnames_and_fqdn() {
        let long = "a".repeat(62) + "-b";
        let p = pod(json!({"hostname": "x"}));
        assert_eq!(
            hostname_and_domain(&p, "cluster.local").expect("h"),
            ("x".into(), String::new())
        );
        let mut p = pod(json!({}));
        p.metadata.name = Some(long);
        let (h, _) = hostname_and_domain(&p, "cluster.local").expect("h");
        assert_eq!(h, "a".repeat(62));
        let bad = pod(json!({"hostname": "Not_Valid"}));
        let err = hostname_and_domain(&bad, "cluster.local").expect_err("bad");
        assert!(
            err.0
                .starts_with("pod Hostname \"Not_Valid\" is not a valid DNS label: "),
            "{err}"
        );
        assert_eq!(
            kernel_hostname("web-0", "sub.shop.svc.cluster.local", true).expect("fqdn"),
            "web-0.sub.shop.svc.cluster.local"
        );
        assert_eq!(kernel_hostname("web-0", "", true).expect("plain"), "web-0");
        let err =
            kernel_hostname(&"h".repeat(40), "sub.shop.svc.cluster.local", true).expect_err("long");
        assert!(
            err.0
                .contains("is too long (64 characters is the max, 67 characters requested)"),
            "{err}"
        );
    }
}
