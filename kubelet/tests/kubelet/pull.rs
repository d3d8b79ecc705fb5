//! Registry pulls: Debian's docker registry (distribution) started by the test on 127.0.0.1
//! with its storage in a tempdir, the locally built busybox image pushed to it, then pulled
//! into a private containerd and run. Nothing but loopback addresses is ever contacted.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use keelson_kubelet::runtime::containerd::ContainerdRuntime;
use keelson_kubelet::runtime::image::{build_busybox_image, sha256_digest};
use keelson_kubelet::runtime::{normalize_reference, Runtime, RuntimeError};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::{Client, Reference};

use crate::fixture::{spec, wait_exited, wait_log, Containerd, IMAGE};

const REGISTRY: &str = "/usr/bin/docker-registry";
const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A docker registry on 127.0.0.1; killed on drop.
struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`, the registry part of image references.
    addr: String,
    log: PathBuf,
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// `GET /v2/` answers 200: the registry serves (anonymously).
fn v2_ready(addr: &str) -> bool {
    let Ok(sock) = addr.parse::<SocketAddr>() else {
        return false;
    };
    let Ok(mut stream) = TcpStream::connect_timeout(&sock, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if write!(stream, "GET /v2/ HTTP/1.0\r\nHost: {addr}\r\n\r\n").is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200")
}

impl Registry {
    fn start(dir: &Path) -> Registry {
        assert!(
            Path::new(REGISTRY).exists(),
            "{REGISTRY} is missing: install Debian's docker-registry package (scripts/setup.sh)"
        );
        // The port is free when picked but could be taken before the registry binds it:
        // a registry that exits at once gets another port.
        for attempt in 0..3 {
            let addr = format!("127.0.0.1:{}", free_port());
            let config = dir.join(format!("registry-{attempt}.yml"));
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\n\
                     log:\n  level: info\n\
                     storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                     http:\n  addr: {addr}\n",
                    dir.join("storage").display()
                ),
            )
            .expect("write registry config");
            let log = dir.join(format!("registry-{attempt}.log"));
            let log_file = std::fs::File::create(&log).expect("create registry log");
            let child = Command::new(REGISTRY)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("log fd"))
                .stderr(log_file)
                .spawn()
                .expect("spawn docker-registry");
            let mut registry = Registry { child, addr, log };
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if v2_ready(&registry.addr) {
                    return registry;
                }
                if let Some(status) = registry.child.try_wait().expect("registry status") {
                    eprintln!(
                        "docker-registry exited ({status}) on {}:\n{}",
                        registry.addr,
                        registry.log()
                    );
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "docker-registry did not serve {} within 30 s:\n{}",
                    registry.addr,
                    registry.log()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        panic!("docker-registry did not start on 127.0.0.1 in 3 attempts");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The blobs (by digest) and the index.json of an OCI layout tarball.
struct Layout {
    index: serde_json::Value,
    blobs: BTreeMap<String, Vec<u8>>,
}

impl Layout {
    fn read(tarball: &Path) -> Layout {
        let mut archive = tar::Archive::new(std::fs::File::open(tarball).expect("open layout"));
        let mut index = None;
        let mut blobs = BTreeMap::new();
        for entry in archive.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let path = entry.path().expect("path").to_string_lossy().into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).expect("read entry");
            if path == "index.json" {
                index = Some(serde_json::from_slice(&data).expect("index.json"));
            } else if let Some(hex) = path.strip_prefix("blobs/sha256/") {
                blobs.insert(format!("sha256:{hex}"), data);
            }
        }
        Layout {
            index: index.expect("layout has an index.json"),
            blobs,
        }
    }

    fn manifest_digest(&self) -> String {
        self.index["manifests"][0]["digest"]
            .as_str()
            .expect("manifest digest")
            .to_string()
    }

    fn manifest(&self) -> serde_json::Value {
        serde_json::from_slice(&self.blobs[&self.manifest_digest()]).expect("manifest")
    }
}

fn push_client() -> Client {
    // reqwest builds its TLS setup even for a plain-HTTP client, and rustls needs a provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::try_from(ClientConfig {
        protocol: ClientProtocol::Http,
        ..Default::default()
    })
    .expect("oci client")
}

fn reference(image: &str) -> Reference {
    Reference::try_from(image).expect("reference")
}

/// Pushes the layout's config and layers to `image`'s repository.
async fn push_blobs(client: &Client, image: &str, layout: &Layout) {
    let manifest = layout.manifest();
    let mut digests = vec![manifest["config"]["digest"].clone()];
    digests.extend(
        manifest["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|l| l["digest"].clone()),
    );
    for digest in digests {
        let digest = digest.as_str().expect("digest");
        client
            .push_blob(&reference(image), layout.blobs[digest].clone(), digest)
            .await
            .expect("push blob");
    }
}

/// Pushes a manifest (or index) under `image` (a tag or a digest); returns its digest.
async fn push_manifest(client: &Client, image: &str, body: &[u8], media_type: &str) -> String {
    client
        .push_manifest_raw(
            &reference(image),
            body.to_vec(),
            media_type.parse().expect("content type"),
        )
        .await
        .expect("push manifest");
    sha256_digest(body)
}

/// Starts a container from `image` that echoes `word`, and checks that it printed it and
/// exited 0.
async fn run_echo(rt: &ContainerdRuntime, image: &str, id: &str, word: &str, logs: &Path) {
    let echo = format!("echo {word}");
    let mut s = spec(id, &["sh", "-c", &echo], logs.join(format!("{id}.log")));
    s.image = image.to_string();
    rt.start(&s)
        .await
        .expect("start a container from the pulled image");
    let (code, state) = wait_exited(rt, id, Duration::from_secs(20)).await;
    let log = wait_log(&s.log_path, word).await;
    assert!(log.contains(word), "log: {log:?}");
    assert_eq!(code, 0, "{state:?}");
    rt.remove(id).await.expect("remove");
}

fn tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("tempdir")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_an_image_from_a_registry_and_runs_it() {
    let dir = tempdir("keelson-pull");
    let registry = Registry::start(dir.path());
    let mut containerd = Containerd::start(dir.path());
    let rt = containerd.connect().await;
    let logs = dir.path().join("logs");

    let layout = Layout::read(&build_busybox_image(dir.path(), IMAGE).expect("build image"));
    let client = push_client();
    let repo = format!("{}/test/busybox", registry.addr);
    let tagged = format!("{repo}:1");
    push_blobs(&client, &tagged, &layout).await;
    let manifest = &layout.blobs[&layout.manifest_digest()];
    let digest = push_manifest(&client, &tagged, manifest, MEDIA_MANIFEST).await;
    assert_eq!(digest, layout.manifest_digest());
    push_manifest(&client, &format!("{repo}:latest"), manifest, MEDIA_MANIFEST).await;

    // By tag: stored under exactly the name the reference normalizes to.
    assert_eq!(normalize_reference(&tagged), tagged);
    assert!(!rt.has_image(&tagged).await.expect("has_image"));
    rt.pull_image(&tagged, None).await.expect("pull by tag");
    assert!(rt.has_image(&tagged).await.expect("has_image"));
    // The image is stored under its registry name only, not under the name it was built as.
    assert!(!rt.has_image(IMAGE).await.expect("has_image"));
    run_echo(&rt, &tagged, "pulled", "pulled", &logs).await;
    // Pulling again (the kubelet's Always policy) is harmless.
    rt.pull_image(&tagged, None).await.expect("second pull");
    run_echo(&rt, &tagged, "pulled-again", "again", &logs).await;

    // No tag means latest; a digest stays a digest.
    rt.pull_image(&repo, None)
        .await
        .expect("pull without a tag");
    assert!(rt
        .has_image(&format!("{repo}:latest"))
        .await
        .expect("has_image"));
    let by_digest = format!("{repo}@{digest}");
    rt.pull_image(&by_digest, None)
        .await
        .expect("pull by digest");
    assert!(rt.has_image(&by_digest).await.expect("has_image"));
    run_echo(&rt, &by_digest, "by-digest", "digested", &logs).await;

    // An index: the linux/amd64 manifest is the one unpacked and run, whichever comes first,
    // and the image record keeps the index as its target (as containerd's own pulls do).
    let mut arm = layout.manifest();
    arm["annotations"] = serde_json::json!({ "io.keelson.test.variant": "arm64" });
    let arm = serde_json::to_vec(&arm).expect("arm manifest");
    let arm_digest = sha256_digest(&arm);
    push_manifest(
        &client,
        &format!("{repo}@{arm_digest}"),
        &arm,
        MEDIA_MANIFEST,
    )
    .await;
    let entry = |digest: &str, size: usize, arch: &str| {
        serde_json::json!({
            "mediaType": MEDIA_MANIFEST,
            "digest": digest,
            "size": size,
            "platform": { "os": "linux", "architecture": arch },
        })
    };
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [entry(&arm_digest, arm.len(), "arm64"), entry(&digest, manifest.len(), "amd64")],
    }))
    .expect("index");
    let multi = format!("{repo}:multi");
    let index_digest = push_manifest(&client, &multi, &index, MEDIA_INDEX).await;
    rt.pull_image(&multi, None).await.expect("pull an index");
    assert!(rt.has_image(&multi).await.expect("has_image"));
    let images = containerd.ctr(&["images", "ls"]);
    let line = images
        .lines()
        .find(|l| l.starts_with(&format!("{multi} ")))
        .unwrap_or_else(|| {
            panic!(
                "{multi} not in ctr images ls (namespace {}):\n{images}",
                containerd.namespace
            )
        });
    assert!(line.contains(&index_digest), "{line}");
    assert!(line.contains(MEDIA_INDEX), "{line}");
    run_echo(&rt, &multi, "multi", "multi-arch", &logs).await;

    drop(registry);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_of_a_missing_image_is_not_found() {
    let dir = tempdir("keelson-pull404");
    let registry = Registry::start(dir.path());
    let mut containerd = Containerd::start(dir.path());
    let rt = containerd.connect().await;

    let layout = Layout::read(&build_busybox_image(dir.path(), IMAGE).expect("build image"));
    let client = push_client();
    let repo = format!("{}/test/busybox", registry.addr);
    push_blobs(&client, &format!("{repo}:1"), &layout).await;
    let manifest = &layout.blobs[&layout.manifest_digest()];
    push_manifest(&client, &format!("{repo}:1"), manifest, MEDIA_MANIFEST).await;

    // A tag the repository does not have, and a repository the registry does not have.
    for image in [
        format!("{repo}:nope"),
        format!("{}/nope/nothing:1", registry.addr),
    ] {
        match rt.pull_image(&image, None).await {
            Err(RuntimeError::NotFound(msg)) => {
                assert!(msg.contains(&format!("{image}: not found")), "{msg}");
                assert!(msg.starts_with("failed to pull and unpack image"), "{msg}");
            }
            other => panic!("pull of {image}: want NotFound, got {other:?}"),
        }
        assert!(!rt.has_image(&image).await.expect("has_image"));
    }

    // An index with no linux/amd64 manifest has nothing this node can run.
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [{
            "mediaType": MEDIA_MANIFEST,
            "digest": layout.manifest_digest(),
            "size": manifest.len(),
            "platform": { "os": "linux", "architecture": "arm64" },
        }],
    }))
    .expect("index");
    let arm_only = format!("{repo}:arm-only");
    push_manifest(&client, &arm_only, &index, MEDIA_INDEX).await;
    match rt.pull_image(&arm_only, None).await {
        Err(RuntimeError::NotFound(msg)) => assert!(msg.contains("no match for platform"), "{msg}"),
        other => panic!("pull of {arm_only}: want NotFound, got {other:?}"),
    }
    assert!(!rt.has_image(&arm_only).await.expect("has_image"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_from_a_registry_that_is_not_listening_fails_fast() {
    let dir = tempdir("keelson-pulldown");
    let mut containerd = Containerd::start(dir.path());
    let rt = containerd.connect().await;

    let image = format!("127.0.0.1:{}/test/busybox:1", free_port());
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(20), rt.pull_image(&image, None))
        .await
        .expect("a refused connection must fail the pull, not hang it");
    match result {
        Err(RuntimeError::Runtime(msg)) => {
            assert!(msg.contains(&image), "{msg}");
            assert!(msg.to_lowercase().contains("refused"), "{msg}");
        }
        other => panic!("pull from a closed port: want a Runtime error, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(!rt.has_image(&image).await.expect("has_image"));
}
