//! Image pulls from OCI registries (the `oci-client` crate) into containerd.
//!
//! containerd 1.6 has no Transfer service, so a pull is done here the way `ctr images pull`
//! does it client-side: resolve the reference to a manifest (an index is resolved to its
//! linux/amd64 manifest), fetch the config and the layers, and hand everything to the same
//! import path as an OCI layout tarball (one synthesized index.json entry naming the image),
//! under a lease. The image record's target is what the reference resolved to (an index
//! stays an index), as with containerd's own pulls, so that the digest the kubelet reports
//! is the one a user sees in the registry.
//!
//! The whole image is held in memory while it is imported: the import path takes its blobs
//! that way.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth as OciAuth;
use oci_client::{Client, Reference};

use super::containerd::{layout_from_blobs, ContainerdRuntime};
use super::{RegistryAuth, Result, RuntimeError};

const MEDIA_INDEX_OCI: &str = "application/vnd.oci.image.index.v1+json";
const MEDIA_INDEX_DOCKER: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const MEDIA_MANIFEST_OCI: &str = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_MANIFEST_DOCKER: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// What a manifest request accepts: schema 1 manifests (long deprecated) are not.
const ACCEPTED_MANIFESTS: &[&str] = &[
    MEDIA_INDEX_OCI,
    MEDIA_INDEX_DOCKER,
    MEDIA_MANIFEST_OCI,
    MEDIA_MANIFEST_DOCKER,
];
/// Parallel blob downloads per pull (containerd's default `max_concurrent_downloads`).
const CONCURRENT_DOWNLOADS: usize = 3;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A registry that stops sending for this long fails the pull rather than hanging it.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";

/// The fully qualified name containerd (and so the kubelet) knows an image by, with the
/// rules of docker's `ParseDockerRef`: Docker Hub is the default registry
/// (`busybox` → `docker.io/library/busybox:latest`), `latest` the default tag, and a
/// reference with a digest keeps only the digest. The first path component names a
/// registry when it has a `.` or a `:` or is `localhost`.
///
/// The input is not validated: an invalid reference comes out (as invalid) and the pull of
/// it fails.
pub fn normalize_reference(image: &str) -> String {
    let image = image.trim();
    if image.is_empty() {
        return String::new();
    }
    let (name_tag, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    // A tag's colon comes after the last slash; an earlier one is a registry's port.
    let slash = name_tag.rfind('/');
    let (name, tag) = match name_tag.rfind(':') {
        Some(colon) if slash.is_none_or(|s| colon > s) => {
            (&name_tag[..colon], Some(&name_tag[colon + 1..]))
        }
        _ => (name_tag, None),
    };
    let (mut domain, mut path) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !path.contains('/') {
        path = format!("{OFFICIAL_REPO_PREFIX}{path}");
    }
    match digest {
        Some(digest) => format!("{domain}/{path}@{digest}"),
        None => format!("{domain}/{path}:{}", tag.unwrap_or("latest")),
    }
}

/// Whether a registry (`host[:port]`) is on this machine: such registries are spoken to in
/// plain HTTP, as containerd and docker do, since they rarely have a certificate.
fn is_loopback_registry(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => match registry.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => registry,
        },
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn is_index(media_type: &str) -> bool {
    media_type == MEDIA_INDEX_OCI || media_type == MEDIA_INDEX_DOCKER
}

/// A manifest's media type: its own `mediaType`, else what its shape says (OCI lets an
/// image manifest or index leave the field out).
fn manifest_media_type(manifest: &serde_json::Value) -> String {
    match manifest.get("mediaType").and_then(|m| m.as_str()) {
        Some(m) => m.to_string(),
        None if manifest.get("manifests").is_some() => MEDIA_INDEX_OCI.to_string(),
        None => MEDIA_MANIFEST_OCI.to_string(),
    }
}

/// A descriptor from a manifest's JSON; `what` names it in errors.
fn descriptor(v: &serde_json::Value, what: &str) -> std::result::Result<OciDescriptor, String> {
    let digest = v
        .get("digest")
        .and_then(|d| d.as_str())
        .ok_or_else(|| format!("{what} has no digest"))?;
    Ok(OciDescriptor {
        media_type: v
            .get("mediaType")
            .and_then(|m| m.as_str())
            .unwrap_or_default()
            .to_string(),
        digest: digest.to_string(),
        size: v.get("size").and_then(|s| s.as_i64()).unwrap_or(-1),
        ..Default::default()
    })
}

/// An error and its causes, one after the other: a transport error's own message
/// ("error sending request for url ...") says nothing of why.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// The registry said the manifest, tag or repository does not exist.
fn is_not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::ServerError { code, .. } => *code == 404,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown | OciErrorCode::NotFound
            )
        }),
        _ => false,
    }
}

fn is_denied(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => true,
        OciDistributionError::ServerError { code, .. } => *code == 401 || *code == 403,
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| matches!(e.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)),
        _ => false,
    }
}

/// A pull that failed, with the messages containerd gives (the kubelet shows them in
/// ErrImagePull events).
struct Failure<'a> {
    name: &'a str,
}

impl Failure<'_> {
    fn wrap(&self, detail: impl std::fmt::Display) -> String {
        format!("failed to pull and unpack image {:?}: {detail}", self.name)
    }

    fn not_found(&self, detail: impl std::fmt::Display) -> RuntimeError {
        RuntimeError::NotFound(self.wrap(detail))
    }

    fn other(&self, detail: impl std::fmt::Display) -> RuntimeError {
        RuntimeError::Runtime(self.wrap(detail))
    }

    /// Resolving the reference (fetching its manifests) failed.
    fn resolve(&self, e: &OciDistributionError) -> RuntimeError {
        let name = self.name;
        if is_not_found(e) {
            self.not_found(format_args!(
                "failed to resolve reference {name:?}: {name}: not found"
            ))
        } else if is_denied(e) {
            self.other(format_args!(
                "failed to resolve reference {name:?}: pull access denied, repository does not \
                 exist or may require authorization: {}",
                error_chain(e)
            ))
        } else {
            self.other(format_args!(
                "failed to resolve reference {name:?}: {}",
                error_chain(e)
            ))
        }
    }
}

/// rustls needs a process-wide crypto provider for the HTTP client's TLS: ring, as
/// everywhere else in Keelson.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another thread's install is fine: any installed provider serves.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

fn client_for(registry: &str) -> std::result::Result<Client, OciDistributionError> {
    ensure_crypto_provider();
    let protocol = if is_loopback_registry(registry) {
        ClientProtocol::Http
    } else {
        ClientProtocol::Https
    };
    Client::try_from(ClientConfig {
        protocol,
        // Manifests are fetched raw and resolved here; never by the client's own guess.
        platform_resolver: None,
        max_concurrent_download: CONCURRENT_DOWNLOADS,
        connect_timeout: Some(CONNECT_TIMEOUT),
        read_timeout: Some(READ_TIMEOUT),
        ..Default::default()
    })
}

/// Fetches one manifest (raw, its digest verified by the client) and its parsed JSON.
async fn fetch_manifest(
    client: &Client,
    reference: &Reference,
    auth: &OciAuth,
) -> std::result::Result<(Vec<u8>, String, serde_json::Value), OciDistributionError> {
    let (body, digest) = client
        .pull_manifest_raw(reference, auth, ACCEPTED_MANIFESTS)
        .await?;
    let json = serde_json::from_slice(&body)?;
    Ok((body.to_vec(), digest, json))
}

async fn fetch_blob(
    client: &Client,
    reference: &Reference,
    desc: &OciDescriptor,
) -> std::result::Result<Vec<u8>, String> {
    let mut data = Vec::new();
    // The client checks the content against the descriptor's digest as it reads.
    client
        .pull_blob(reference, desc, &mut data)
        .await
        .map_err(|e| format!("failed to copy {}: {}", desc.digest, error_chain(&e)))?;
    if desc.size >= 0 && data.len() as i64 != desc.size {
        return Err(format!(
            "blob {}: {} bytes, but its descriptor says {}",
            desc.digest,
            data.len(),
            desc.size
        ));
    }
    Ok(data)
}

pub(super) async fn pull(
    runtime: &ContainerdRuntime,
    reference: &str,
    auth: Option<&RegistryAuth>,
) -> Result<()> {
    let name = normalize_reference(reference);
    let failure = Failure { name: &name };
    let parsed = Reference::try_from(name.as_str()).map_err(|e| {
        RuntimeError::Runtime(format!(
            "failed to parse image reference {reference:?}: {e}"
        ))
    })?;
    let auth = match auth {
        Some(a) => OciAuth::Basic(a.username.clone(), a.password.clone()),
        None => OciAuth::Anonymous,
    };
    let client = client_for(parsed.registry())
        .map_err(|e| failure.other(format_args!("HTTP client: {}", error_chain(&e))))?;

    let mut blobs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let (top_body, top_digest, top_json) = fetch_manifest(&client, &parsed, &auth)
        .await
        .map_err(|e| failure.resolve(&e))?;
    let top_media_type = manifest_media_type(&top_json);
    let top_size = top_body.len();
    blobs.insert(top_digest.clone(), top_body);

    let manifest = if is_index(&top_media_type) {
        let entry = super::containerd::platform_manifest(&top_json).ok_or_else(|| {
            failure.not_found("no match for platform in manifest: not found (want linux/amd64)")
        })?;
        let desc = descriptor(entry, "index entry").map_err(|e| failure.other(e))?;
        if is_index(&desc.media_type) {
            return Err(failure.other(format_args!(
                "index {top_digest}: nested index {} is not supported",
                desc.digest
            )));
        }
        let (body, digest, json) = fetch_manifest(
            &client,
            &parsed.clone_with_digest(desc.digest.clone()),
            &auth,
        )
        .await
        .map_err(|e| failure.resolve(&e))?;
        blobs.insert(digest, body);
        json
    } else if top_media_type == MEDIA_MANIFEST_OCI || top_media_type == MEDIA_MANIFEST_DOCKER {
        top_json
    } else {
        return Err(failure.other(format_args!(
            "unsupported manifest media type {top_media_type:?}"
        )));
    };

    let mut wanted = vec![manifest
        .get("config")
        .ok_or_else(|| "manifest has no config".to_string())
        .and_then(|c| descriptor(c, "config"))
        .map_err(|e| failure.other(e))?];
    for layer in manifest
        .get("layers")
        .and_then(|l| l.as_array())
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let desc = descriptor(layer, "layer").map_err(|e| failure.other(e))?;
        if !wanted.iter().any(|w| w.digest == desc.digest) {
            wanted.push(desc);
        }
    }
    let fetched: Vec<(String, Vec<u8>)> = futures::stream::iter(wanted)
        .map(|desc| {
            let client = &client;
            let parsed = &parsed;
            async move {
                let data = fetch_blob(client, parsed, &desc).await?;
                Ok::<_, String>((desc.digest, data))
            }
        })
        .buffer_unordered(CONCURRENT_DOWNLOADS)
        .try_collect()
        .await
        .map_err(|e| failure.other(e))?;
    blobs.extend(fetched);

    let index_json = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX_OCI,
        "manifests": [{
            "mediaType": top_media_type,
            "digest": top_digest,
            "size": top_size,
            "annotations": { "io.containerd.image.name": name },
        }],
    });
    let index_json = serde_json::to_vec(&index_json)
        .map_err(|e| failure.other(format_args!("index.json: {e}")))?;
    let layout = layout_from_blobs(
        &index_json,
        blobs,
        &format!("registry {}", parsed.registry()),
    )
    .map_err(|e| failure.other(e))?;

    let (lease_id, lease) = runtime.create_lease().await?;
    let result = runtime.import_leased(layout, &lease).await;
    // Synchronous, as for imports: what a failed import wrote goes now.
    runtime.delete_lease(lease_id, true).await;
    result.map_err(|e| failure.other(format_args!("failed to unpack: {e}")))?;
    tracing::info!(image = %name, digest = %top_digest, "pulled image");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_follows_docker_rules() {
        let cases = [
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("library/busybox", "docker.io/library/busybox:latest"),
            ("foo/bar:1", "docker.io/foo/bar:1"),
            ("foo/bar/baz", "docker.io/foo/bar/baz:latest"),
            ("docker.io/busybox", "docker.io/library/busybox:latest"),
            ("index.docker.io/busybox:2", "docker.io/library/busybox:2"),
            (
                "docker.io/library/busybox:latest",
                "docker.io/library/busybox:latest",
            ),
            ("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9"),
            ("quay.io/a/b/c", "quay.io/a/b/c:latest"),
            ("127.0.0.1:5000/x", "127.0.0.1:5000/x:latest"),
            (
                "127.0.0.1:5000/test/busybox:1",
                "127.0.0.1:5000/test/busybox:1",
            ),
            ("localhost/x", "localhost/x:latest"),
            ("localhost:5000/x:y", "localhost:5000/x:y"),
            ("[::1]:5000/x", "[::1]:5000/x:latest"),
            // Neither a dot nor a colon nor localhost: a Docker Hub user.
            ("myregistry/x", "docker.io/myregistry/x:latest"),
            // No slash: a name and a tag, not a registry and a port.
            ("localhost:5000", "docker.io/library/localhost:5000"),
            ("  busybox  ", "docker.io/library/busybox:latest"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_reference(input), want, "{input}");
        }
    }

    #[test]
    fn normalize_keeps_digests_and_drops_a_tag_beside_one() {
        let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(
            normalize_reference(&format!("busybox@{d}")),
            format!("docker.io/library/busybox@{d}")
        );
        assert_eq!(
            normalize_reference(&format!("busybox:1.36@{d}")),
            format!("docker.io/library/busybox@{d}")
        );
        assert_eq!(
            normalize_reference(&format!("127.0.0.1:5000/x/y:2@{d}")),
            format!("127.0.0.1:5000/x/y@{d}")
        );
    }

    #[test]
    fn normalize_is_idempotent_and_parses() {
        for input in [
            "busybox",
            "foo/bar:1",
            "127.0.0.1:5000/x",
            "quay.io/a/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            let once = normalize_reference(input);
            assert_eq!(normalize_reference(&once), once);
            let parsed = Reference::try_from(once.as_str()).expect("parses");
            assert_eq!(parsed.whole(), once);
        }
        assert_eq!(normalize_reference(""), "");
    }

    #[test]
    fn loopback_registries_are_plain_http() {
        for r in [
            "localhost",
            "localhost:5000",
            "LOCALHOST:1",
            "127.0.0.1",
            "127.0.0.1:5000",
            "127.1.2.3:80",
            "[::1]:5000",
            "[::1]",
        ] {
            assert!(is_loopback_registry(r), "{r}");
        }
        for r in [
            "docker.io",
            "registry.k8s.io",
            "10.0.0.1:5000",
            "192.168.1.1",
            "[2001:db8::1]:5000",
            "localhost.example.com:5000",
            "128.0.0.1",
        ] {
            assert!(!is_loopback_registry(r), "{r}");
        }
    }

    #[test]
    fn clients_build_for_http_and_https_registries() {
        // Building contacts nothing; it fails (or panics) without a rustls crypto provider.
        client_for("127.0.0.1:5000").expect("plain HTTP client");
        client_for("registry.example.com").expect("HTTPS client");
    }

    #[test]
    fn index_resolves_to_linux_amd64() {
        let index = serde_json::json!({
            "manifests": [
                {"digest": "sha256:arm", "platform": {"os": "linux", "architecture": "arm64"}},
                {"digest": "sha256:att", "platform": {"os": "unknown", "architecture": "unknown"}},
                {"digest": "sha256:amd", "platform": {"os": "linux", "architecture": "amd64"}},
            ]
        });
        assert_eq!(
            crate::runtime::containerd::platform_manifest(&index).expect("picked")["digest"],
            "sha256:amd"
        );
        let arm_only = serde_json::json!({
            "manifests": [{"digest": "sha256:arm", "platform": {"os": "linux", "architecture": "arm64"}}]
        });
        assert!(crate::runtime::containerd::platform_manifest(&arm_only).is_none());
        let no_platform = serde_json::json!({"manifests": [{"digest": "sha256:any"}]});
        assert_eq!(
            crate::runtime::containerd::platform_manifest(&no_platform).expect("picked")["digest"],
            "sha256:any"
        );
    }

    #[test]
    fn media_type_from_shape_when_missing() {
        assert_eq!(
            manifest_media_type(&serde_json::json!({"manifests": []})),
            MEDIA_INDEX_OCI
        );
        assert_eq!(
            manifest_media_type(&serde_json::json!({"config": {}})),
            MEDIA_MANIFEST_OCI
        );
        assert_eq!(
            manifest_media_type(&serde_json::json!({"mediaType": MEDIA_MANIFEST_DOCKER})),
            MEDIA_MANIFEST_DOCKER
        );
    }

    fn registry_error(code: &str) -> OciDistributionError {
        let envelope = serde_json::from_value(serde_json::json!({
            "errors": [{"code": code, "message": "m"}]
        }))
        .expect("envelope");
        OciDistributionError::RegistryError {
            envelope,
            url: "http://127.0.0.1:1/v2/x/manifests/y".into(),
        }
    }

    #[test]
    fn registry_errors_are_classified() {
        for code in ["MANIFEST_UNKNOWN", "NAME_UNKNOWN", "NOT_FOUND"] {
            assert!(is_not_found(&registry_error(code)), "{code}");
        }
        assert!(is_not_found(&OciDistributionError::ServerError {
            code: 404,
            url: String::new(),
            message: String::new(),
        }));
        for code in ["UNAUTHORIZED", "DENIED", "TOOMANYREQUESTS"] {
            assert!(!is_not_found(&registry_error(code)), "{code}");
        }
        assert!(is_denied(&registry_error("DENIED")));
        assert!(is_denied(&OciDistributionError::UnauthorizedError {
            url: String::new()
        }));

        let failure = Failure {
            name: "127.0.0.1:1/x:y",
        };
        match failure.resolve(&registry_error("MANIFEST_UNKNOWN")) {
            RuntimeError::NotFound(msg) => assert_eq!(
                msg,
                "failed to pull and unpack image \"127.0.0.1:1/x:y\": failed to resolve \
                 reference \"127.0.0.1:1/x:y\": 127.0.0.1:1/x:y: not found"
            ),
            other => panic!("not NotFound: {other:?}"),
        }
        match failure.resolve(&registry_error("UNAUTHORIZED")) {
            RuntimeError::Runtime(msg) => assert!(msg.contains("pull access denied"), "{msg}"),
            other => panic!("not Runtime: {other:?}"),
        }
    }
}
