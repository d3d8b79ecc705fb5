//! kubeconfig files, in the format client-go (kubectl, Helm) and kube-rs read.

use crate::{fsutil, io_err, Error, Result};
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A kubeconfig (`apiVersion: v1`, `kind: Config`). Only the fields Keelson
/// reads or writes are modelled; unknown fields are ignored when reading.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Kubeconfig {
    #[serde(rename = "apiVersion", default = "v1")]
    pub api_version: String,
    #[serde(default = "config_kind")]
    pub kind: String,
    #[serde(default)]
    pub clusters: Vec<NamedCluster>,
    #[serde(default)]
    pub users: Vec<NamedUser>,
    #[serde(default)]
    pub contexts: Vec<NamedContext>,
    #[serde(default)]
    pub current_context: String,
    #[serde(default)]
    pub preferences: Preferences,
}

fn v1() -> String {
    "v1".to_string()
}

fn config_kind() -> String {
    "Config".to_string()
}

/// The (empty) `preferences` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Preferences {}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NamedCluster {
    pub name: String,
    pub cluster: Cluster,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Cluster {
    pub server: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_authority: Option<String>,
    /// Base64 of the CA certificate(s) PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_authority_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_tls_verify: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NamedUser {
    pub name: String,
    pub user: AuthInfo,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AuthInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<String>,
    /// Base64 of the client certificate PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
    /// Base64 of the client key PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(rename = "tokenFile", default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NamedContext {
    pub name: String,
    pub context: Context,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Context {
    pub cluster: String,
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

fn b64(data: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(data.as_bytes())
}

/// Decodes a `*-data` field (base64 of PEM).
pub fn decode_data(field: &str) -> Result<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(field.trim())
        .map_err(|e| Error::Invalid(format!("kubeconfig data is not base64: {e}")))?;
    String::from_utf8(bytes).map_err(|_| Error::Invalid("kubeconfig data is not UTF-8".into()))
}

impl Kubeconfig {
    /// A kubeconfig with one cluster, one user authenticating with a client
    /// certificate, and one context (named like the cluster) made current.
    pub fn with_client_cert(
        server_url: &str,
        cluster_name: &str,
        user_name: &str,
        ca_pem: &str,
        client_cert_pem: &str,
        client_key_pem: &str,
    ) -> Kubeconfig {
        Kubeconfig {
            api_version: v1(),
            kind: config_kind(),
            clusters: vec![NamedCluster {
                name: cluster_name.to_string(),
                cluster: Cluster {
                    server: server_url.to_string(),
                    certificate_authority_data: Some(b64(ca_pem)),
                    ..Cluster::default()
                },
            }],
            users: vec![NamedUser {
                name: user_name.to_string(),
                user: AuthInfo {
                    client_certificate_data: Some(b64(client_cert_pem)),
                    client_key_data: Some(b64(client_key_pem)),
                    ..AuthInfo::default()
                },
            }],
            contexts: vec![NamedContext {
                name: cluster_name.to_string(),
                context: Context {
                    cluster: cluster_name.to_string(),
                    user: user_name.to_string(),
                    namespace: None,
                },
            }],
            current_context: cluster_name.to_string(),
            preferences: Preferences {},
        }
    }

    /// Reads a kubeconfig file.
    pub fn read(path: &Path) -> Result<Kubeconfig> {
        let text = std::fs::read_to_string(path).map_err(io_err(path))?;
        serde_yaml::from_str(&text).map_err(|source| Error::Kubeconfig {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Writes the kubeconfig to `path` (atomically, mode 0600, creating the
    /// parent directory if needed).
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_yaml::to_string(self).map_err(|source| Error::Kubeconfig {
            path: path.to_path_buf(),
            source,
        })?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        fsutil::write_atomic(path, text.as_bytes(), 0o600)
    }

    /// The current context with its cluster and user.
    pub fn current(&self) -> Result<(&Context, &Cluster, &AuthInfo)> {
        let missing = |what: &str, name: &str| {
            Error::Invalid(format!("kubeconfig: {what} {name:?} not found"))
        };
        let ctx = &self
            .contexts
            .iter()
            .find(|c| c.name == self.current_context)
            .ok_or_else(|| missing("context", &self.current_context))?
            .context;
        let cluster = &self
            .clusters
            .iter()
            .find(|c| c.name == ctx.cluster)
            .ok_or_else(|| missing("cluster", &ctx.cluster))?
            .cluster;
        let user = &self
            .users
            .iter()
            .find(|u| u.name == ctx.user)
            .ok_or_else(|| missing("user", &ctx.user))?
            .user;
        Ok((ctx, cluster, user))
    }
}

/// Writes the admin kubeconfig: cluster `cluster_name` at `server_url`
/// trusting `ca_pem`, user `<cluster_name>-admin` with the admin client
/// certificate, context `cluster_name` made current. Stock kubectl uses it
/// with no extra flags (`kubectl --kubeconfig PATH get pods`, or
/// `KUBECONFIG=PATH`). The file is written with mode 0600.
pub fn write_admin_kubeconfig(
    path: &Path,
    server_url: &str,
    cluster_name: &str,
    ca_pem: &str,
    client_cert_pem: &str,
    client_key_pem: &str,
) -> Result<()> {
    Kubeconfig::with_client_cert(
        server_url,
        cluster_name,
        &format!("{cluster_name}-admin"),
        ca_pem,
        client_cert_pem,
        client_key_pem,
    )
    .write(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{identity_from_cert_der, server_config, Identity};
    use crate::Pki;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[test]
    fn writes_and_reads_back() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("sub/admin.kubeconfig");
        write_admin_kubeconfig(
            &path,
            "https://127.0.0.1:6443",
            "keelson",
            "CA PEM\n",
            "CERT PEM\n",
            "KEY PEM\n",
        )
        .expect("write");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains("current-context: keelson"), "{text}");
        assert!(text.contains("certificate-authority-data:"), "{text}");
        assert!(text.contains("client-certificate-data:"), "{text}");
        assert!(text.contains("client-key-data:"), "{text}");
        assert!(text.contains("kind: Config"), "{text}");
        assert!(text.contains("apiVersion: v1"), "{text}");

        let kc = Kubeconfig::read(&path).expect("parse");
        let (ctx, cluster, user) = kc.current().expect("current");
        assert_eq!(ctx.user, "keelson-admin");
        assert_eq!(cluster.server, "https://127.0.0.1:6443");
        let ca = cluster.certificate_authority_data.as_deref().expect("ca");
        assert_eq!(decode_data(ca).expect("decode"), "CA PEM\n");
        let key = user.client_key_data.as_deref().expect("key");
        assert_eq!(decode_data(key).expect("decode"), "KEY PEM\n");
    }

    #[test]
    fn reads_a_kubectl_style_file_with_unknown_fields() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("config");
        std::fs::write(
            &path,
            r#"apiVersion: v1
kind: Config
clusters:
- cluster:
    server: https://10.0.0.1:6443
    insecure-skip-tls-verify: true
    extensions: []
  name: c
contexts:
- context: {cluster: c, user: u, namespace: team}
  name: ctx
current-context: ctx
users:
- name: u
  user:
    token: abc
"#,
        )
        .expect("write");
        let kc = Kubeconfig::read(&path).expect("read");
        let (ctx, cluster, user) = kc.current().expect("current");
        assert_eq!(ctx.namespace.as_deref(), Some("team"));
        assert_eq!(cluster.insecure_skip_tls_verify, Some(true));
        assert_eq!(user.token.as_deref(), Some("abc"));

        let mut broken = kc.clone();
        broken.current_context = "nope".into();
        assert!(broken.current().is_err());
        assert!(decode_data("%%%").is_err());
    }

    fn find_kubectl() -> Option<String> {
        if let Some(k) = std::env::var("KEELSON_TEST_KUBECTL")
            .ok()
            .filter(|k| !k.is_empty())
        {
            return Some(k);
        }
        let path = std::env::var_os("PATH")?;
        for name in ["kubectl-1.37", "kubectl-1.33", "kubectl"] {
            for dir in std::env::split_paths(&path) {
                if dir.join(name).is_file() {
                    return Some(dir.join(name).display().to_string());
                }
            }
        }
        None
    }

    /// The admin kubeconfig works with real kubectl: it trusts our serving
    /// certificate on 127.0.0.1 and authenticates with the admin certificate.
    #[tokio::test]
    async fn real_kubectl_uses_the_admin_kubeconfig() {
        let Some(kubectl) = find_kubectl() else {
            eprintln!("no kubectl on PATH: skipping");
            return;
        };
        let tmp = tempfile::tempdir().expect("tempdir");
        let pki = Pki::load_or_create(&tmp.path().join("tls"), &[]).expect("pki");
        let mut config = (*server_config(&pki).expect("server config")).clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()]; // plain HTTP/1.1 below
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");

        // Requests the server saw: (request line, client identity). It serves
        // until kubectl is done (a kubectl wrapper may connect more than once).
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen_by_server = seen.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    break;
                };
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    continue;
                };
                let identity = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first().and_then(|c| identity_from_cert_der(c)));
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&request)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let body = r#"{"major":"1","minor":"33","gitVersion":"v1.33.0","gitCommit":"0","gitTreeState":"clean","buildDate":"2025-01-01T00:00:00Z","goVersion":"go1.24","compiler":"gc","platform":"linux/amd64"}"#;
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
                seen_by_server.lock().expect("lock").push((line, identity));
            }
        });

        let kubeconfig = tmp.path().join("admin.kubeconfig");
        write_admin_kubeconfig(
            &kubeconfig,
            &format!("https://127.0.0.1:{}", addr.port()),
            "keelson",
            pki.ca_cert_pem(),
            pki.admin_cert_pem(),
            pki.admin_key_pem(),
        )
        .expect("kubeconfig");
        let output = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            tokio::process::Command::new(&kubectl)
                .arg("version")
                .arg("--request-timeout=20s")
                .env("KUBECONFIG", &kubeconfig)
                .env("HOME", tmp.path())
                .output(),
        )
        .await
        .expect("kubectl timed out")
        .expect("run kubectl");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{kubectl} failed: {stdout}\n{stderr}"
        );
        assert!(
            stdout.contains("Server Version: v1.33.0"),
            "{stdout}\n{stderr}"
        );
        eprintln!("{kubectl} version against the test server:\n{stdout}");

        server.abort();
        let seen = seen.lock().expect("lock").clone();
        let (_, identity) = seen
            .iter()
            .find(|(l, _)| l.starts_with("GET /version"))
            .expect("kubectl asked for /version");
        assert_eq!(
            identity.as_ref(),
            Some(&Identity {
                user: "admin".into(),
                groups: vec!["system:masters".into()],
            })
        );
    }
}
