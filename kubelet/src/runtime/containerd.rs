//! The containerd runtime: containerd's gRPC API (the `containerd-client` crate) over its
//! unix socket, containers through runc (`io.containerd.runc.v2`), root filesystems from
//! the overlayfs snapshotter.
//!
//! containerd 1.6 has no Transfer service, so [`Runtime::import_image`] does what
//! `ctr images import` does: blobs into the Content service, an image record through the
//! Images service, then unpacking layer by layer (chain ids) with the Snapshots and Diff
//! services. Everything written during an import or a start is held by a containerd lease
//! until the references that keep it (image → manifest → config → snapshot, container →
//! snapshot) exist, so containerd's garbage collector never takes it midway.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use containerd_client::services::v1::container::Runtime as ContainerRuntime;
use containerd_client::services::v1::snapshots::{
    CommitSnapshotRequest, MountsRequest, PrepareSnapshotRequest, RemoveSnapshotRequest,
    StatSnapshotRequest,
};
use containerd_client::services::v1::{
    ApplyRequest, Container, CreateContainerRequest, CreateImageRequest,
    CreateRequest as CreateLeaseRequest, CreateTaskRequest, DeleteContainerRequest,
    DeleteRequest as DeleteLeaseRequest, DeleteTaskRequest, GetContainerRequest, GetImageRequest,
    GetRequest, Image, KillRequest, ListContainersRequest, ListTasksRequest, ReadContentRequest,
    StartRequest, UpdateContainerRequest, UpdateImageRequest, WaitRequest, WriteAction,
    WriteContentRequest,
};
use containerd_client::tonic::metadata::{Ascii, MetadataValue};
use containerd_client::tonic::{Code, Request, Status};
use containerd_client::types::v1::Status as TaskStatus;
use containerd_client::types::{Descriptor, Mount};
use containerd_client::Client;
use sha2::{Digest, Sha256};

use super::{
    ContainerInfo, ContainerSpec, ContainerState, ExecOutput, RegistryAuth, Result, Runtime,
    RuntimeError,
};

/// The runc shim every container runs under.
pub const RUNC_RUNTIME: &str = "io.containerd.runc.v2";
/// The snapshotter images are unpacked into and containers' root filesystems come from.
pub const SNAPSHOTTER: &str = "overlayfs";

const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
const MEDIA_INDEX_OCI: &str = "application/vnd.oci.image.index.v1+json";
const MEDIA_INDEX_DOCKER: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const WRITE_CHUNK: usize = 1 << 20;
const SIGTERM: u32 = 15;
const SIGKILL: u32 = 9;
/// How long `stop` waits for the task to go after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// A [`Runtime`] backed by a containerd daemon, in one containerd namespace.
pub struct ContainerdRuntime {
    pub(super) client: Client,
    namespace: MetadataValue<Ascii>,
    pub(super) namespace_name: String,
    /// The binary containerd's shim runs as each container's logger; None: the raw
    /// output goes to the log file.
    logger: Option<PathBuf>,
}

pub(super) fn rpc_err(what: &str, status: Status) -> RuntimeError {
    if status.code() == Code::NotFound {
        RuntimeError::NotFound(format!("{what}: {}", status.message()))
    } else {
        RuntimeError::Runtime(format!("{what}: {:?}: {}", status.code(), status.message()))
    }
}

fn to_system_time(ts: Option<&prost_types::Timestamp>) -> SystemTime {
    match ts {
        Some(ts) if ts.seconds >= 0 => {
            UNIX_EPOCH + Duration::new(ts.seconds as u64, ts.nanos.clamp(0, 999_999_999) as u32)
        }
        _ => UNIX_EPOCH,
    }
}

/// A `file://` URI for `path`, percent-encoding what a URI parser would otherwise take apart.
pub(super) fn file_uri(path: &Path) -> String {
    let mut out = String::from("file://");
    for b in path.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}-{nanos}", std::process::id())
}

/// The chain ids of layers with these diff ids (the snapshot names of an unpacked image).
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match out.last() {
            None => diff_id.clone(),
            Some(parent) => format!(
                "sha256:{}",
                hex::encode(Sha256::digest(format!("{parent} {diff_id}").as_bytes()))
            ),
        };
        out.push(next);
    }
    out
}

fn json_str(v: &serde_json::Value, key: &str) -> Option<String> {
    v.get(key).and_then(|s| s.as_str()).map(str::to_string)
}

fn descriptor_from_json(v: &serde_json::Value) -> Result<Descriptor> {
    let media_type = json_str(v, "mediaType").unwrap_or_default();
    let digest = json_str(v, "digest")
        .ok_or_else(|| RuntimeError::Runtime(format!("descriptor without digest: {v}")))?;
    let size = v.get("size").and_then(|s| s.as_i64()).unwrap_or(0);
    Ok(Descriptor {
        media_type,
        digest,
        size,
        annotations: HashMap::new(),
    })
}

fn is_index(media_type: &str) -> bool {
    media_type == MEDIA_INDEX_OCI || media_type == MEDIA_INDEX_DOCKER
}

/// The linux/amd64 (or platform-less) manifest of an index: the one the kubelet pulls and
/// runs.
pub(super) fn platform_manifest(index: &serde_json::Value) -> Option<&serde_json::Value> {
    index
        .get("manifests")?
        .as_array()?
        .iter()
        .find(|m| match m.get("platform") {
            None => true,
            Some(p) => {
                p.get("os").and_then(|v| v.as_str()) == Some("linux")
                    && p.get("architecture").and_then(|v| v.as_str()) == Some("amd64")
            }
        })
}

/// The manifest of an image already in the store: the platform one, else the first (an
/// imported layout may name no platform at all).
fn pick_platform_manifest(index: &serde_json::Value) -> Option<&serde_json::Value> {
    platform_manifest(index).or_else(|| index.get("manifests")?.as_array()?.first())
}

fn parse_json(what: &str, data: &[u8]) -> Result<serde_json::Value> {
    serde_json::from_slice(data).map_err(|e| RuntimeError::Runtime(format!("{what}: {e}")))
}

/// One image of an OCI layout, resolved to its platform manifest.
pub(super) struct LayoutImage {
    names: Vec<String>,
    target: Descriptor,
    layers: Vec<Descriptor>,
    diff_ids: Vec<String>,
}

/// The blobs of an OCI layout tarball and the images its index.json names.
pub(super) struct Layout {
    blobs: BTreeMap<String, Vec<u8>>,
    /// Labels each blob gets in the content store (garbage-collection references).
    labels: BTreeMap<String, HashMap<String, String>>,
    images: Vec<LayoutImage>,
}

fn read_layout(tarball: &Path) -> Result<Layout> {
    let io = |e| RuntimeError::Io(tarball.to_path_buf(), e);
    let file = std::fs::File::open(tarball).map_err(io)?;
    let mut archive = tar::Archive::new(file);
    let mut index_json = None;
    let mut blobs = BTreeMap::new();
    for entry in archive.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(io)?.to_string_lossy().into_owned();
        let path = path.trim_start_matches("./").to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).map_err(io)?;
        if path == "index.json" {
            index_json = Some(data);
        } else if let Some(rest) = path.strip_prefix("blobs/") {
            if let Some((alg, hex)) = rest.split_once('/') {
                let digest = format!("{alg}:{hex}");
                if alg == "sha256" && super::image::sha256_digest(&data) != digest {
                    return Err(RuntimeError::Runtime(format!(
                        "{}: blob {digest} does not match its digest",
                        tarball.display()
                    )));
                }
                blobs.insert(digest, data);
            }
        }
    }
    let index_json = index_json
        .ok_or_else(|| RuntimeError::Runtime(format!("{}: no index.json", tarball.display())))?;
    layout_from_blobs(&index_json, blobs, &tarball.display().to_string())
}

/// An image layout from its index.json and blobs (by digest), wherever they came from (a
/// tarball, a registry); `origin` names the source in errors.
pub(super) fn layout_from_blobs(
    index_json: &[u8],
    blobs: BTreeMap<String, Vec<u8>>,
    origin: &str,
) -> Result<Layout> {
    let index = parse_json("index.json", index_json)?;
    let blob = |digest: &str| -> Result<&Vec<u8>> {
        blobs
            .get(digest)
            .ok_or_else(|| RuntimeError::Runtime(format!("{origin}: missing blob {digest}")))
    };

    let mut labels: BTreeMap<String, HashMap<String, String>> = BTreeMap::new();
    let mut images = Vec::new();
    let entries = index
        .get("manifests")
        .and_then(|m| m.as_array())
        .cloned()
        .unwrap_or_default();
    for entry in &entries {
        let target = descriptor_from_json(entry)?;
        let annotations = entry.get("annotations");
        let mut names = Vec::new();
        if let Some(name) = annotations.and_then(|a| json_str(a, "io.containerd.image.name")) {
            names.push(name);
        } else if let Some(name) =
            annotations.and_then(|a| json_str(a, "org.opencontainers.image.ref.name"))
        {
            // A bare tag ("latest") names no image on its own.
            if name.contains('/') || name.contains(':') {
                names.push(name);
            }
        }
        // Resolve a nested index to its platform manifest.
        let mut manifest_desc = target.clone();
        if is_index(&manifest_desc.media_type) {
            let nested = parse_json("index", blob(&manifest_desc.digest)?)?;
            let mut gc = HashMap::new();
            if let Some(ms) = nested.get("manifests").and_then(|m| m.as_array()) {
                for (i, m) in ms.iter().enumerate() {
                    if let Some(d) = json_str(m, "digest") {
                        if blobs.contains_key(&d) {
                            gc.insert(format!("containerd.io/gc.ref.content.m.{i}"), d);
                        }
                    }
                }
            }
            labels.entry(target.digest.clone()).or_default().extend(gc);
            let picked = pick_platform_manifest(&nested).ok_or_else(|| {
                RuntimeError::Runtime(format!("index {} has no manifest", target.digest))
            })?;
            manifest_desc = descriptor_from_json(picked)?;
        }
        let manifest = parse_json("manifest", blob(&manifest_desc.digest)?)?;
        let config_desc = manifest
            .get("config")
            .ok_or_else(|| RuntimeError::Runtime("manifest without config".into()))
            .and_then(descriptor_from_json)?;
        let layers = manifest
            .get("layers")
            .and_then(|l| l.as_array())
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(descriptor_from_json)
            .collect::<Result<Vec<_>>>()?;
        let config = parse_json("image config", blob(&config_desc.digest)?)?;
        let diff_ids = diff_ids(&config);
        if diff_ids.len() != layers.len() {
            return Err(RuntimeError::Runtime(format!(
                "image {}: {} layers but {} diff ids",
                target.digest,
                layers.len(),
                diff_ids.len()
            )));
        }
        let manifest_labels = labels.entry(manifest_desc.digest.clone()).or_default();
        manifest_labels.insert(
            "containerd.io/gc.ref.content.config".into(),
            config_desc.digest.clone(),
        );
        for (i, l) in layers.iter().enumerate() {
            blob(&l.digest)?;
            manifest_labels.insert(
                format!("containerd.io/gc.ref.content.l.{i}"),
                l.digest.clone(),
            );
        }
        if let Some(top) = chain_ids(&diff_ids).last() {
            labels
                .entry(config_desc.digest.clone())
                .or_default()
                .insert(
                    format!("containerd.io/gc.ref.snapshot.{SNAPSHOTTER}"),
                    top.clone(),
                );
        }
        images.push(LayoutImage {
            names,
            target,
            layers,
            diff_ids,
        });
    }
    Ok(Layout {
        blobs,
        labels,
        images,
    })
}

impl ContainerdRuntime {
    /// Connects to containerd's socket; every call then works in `namespace`.
    pub async fn connect(socket: &Path, namespace: &str) -> Result<Self> {
        let namespace_name = namespace.to_string();
        let namespace = MetadataValue::try_from(namespace).map_err(|e| {
            RuntimeError::Runtime(format!("invalid containerd namespace {namespace:?}: {e}"))
        })?;
        let client = Client::from_path(socket).await.map_err(|e| {
            RuntimeError::Runtime(format!(
                "connecting to containerd at {}: {e}",
                socket.display()
            ))
        })?;
        Ok(ContainerdRuntime {
            client,
            namespace,
            namespace_name,
            logger: None,
        })
    }

    /// Has containerd's shim start `binary` as every new container's logger (see
    /// [`crate::logs`]).
    pub fn set_logger(&mut self, binary: PathBuf) {
        self.logger = Some(binary);
    }

    pub(super) fn req<T>(&self, msg: T) -> Request<T> {
        let mut req = Request::new(msg);
        req.metadata_mut()
            .insert("containerd-namespace", self.namespace.clone());
        req
    }

    pub(super) fn req_leased<T>(&self, msg: T, lease: &MetadataValue<Ascii>) -> Request<T> {
        let mut req = self.req(msg);
        req.metadata_mut().insert("containerd-lease", lease.clone());
        req
    }

    pub(super) async fn create_lease(&self) -> Result<(String, MetadataValue<Ascii>)> {
        let id = format!("keelson-{}", unique_suffix());
        self.client
            .leases()
            .create(self.req(CreateLeaseRequest {
                id: id.clone(),
                labels: HashMap::new(),
            }))
            .await
            .map_err(|e| rpc_err("create lease", e))?;
        let value = MetadataValue::try_from(id.as_str())
            .map_err(|e| RuntimeError::Runtime(format!("lease id {id}: {e}")))?;
        Ok((id, value))
    }

    /// Deletes a lease; with `sync`, containerd collects garbage before answering, so what
    /// the lease held and nothing else references is gone when this returns.
    pub(super) async fn delete_lease(&self, id: String, sync: bool) {
        if let Err(e) = self
            .client
            .leases()
            .delete(self.req(DeleteLeaseRequest { id, sync }))
            .await
        {
            tracing::warn!(error = %e, "deleting containerd lease");
        }
    }

    /// Writes one blob into the content store (or only sets its labels if it is there).
    async fn write_blob(
        &self,
        digest: &str,
        data: &[u8],
        labels: HashMap<String, String>,
        lease: &MetadataValue<Ascii>,
    ) -> Result<()> {
        let total = data.len() as i64;
        let reference = format!("keelson-import-{digest}");
        let mut msgs = Vec::new();
        let mut offset = 0usize;
        for chunk in data.chunks(WRITE_CHUNK) {
            msgs.push(WriteContentRequest {
                action: WriteAction::Write as i32,
                r#ref: reference.clone(),
                total,
                expected: digest.to_string(),
                offset: offset as i64,
                data: chunk.to_vec(),
                labels: HashMap::new(),
            });
            offset += chunk.len();
        }
        msgs.push(WriteContentRequest {
            action: WriteAction::Commit as i32,
            r#ref: reference,
            total,
            expected: digest.to_string(),
            offset: offset as i64,
            data: Vec::new(),
            labels: labels.clone(),
        });
        let result = async {
            let mut responses = self
                .client
                .content()
                .write(self.req_leased(tokio_stream::iter(msgs), lease))
                .await?
                .into_inner();
            while responses.message().await?.is_some() {}
            Ok::<_, Status>(())
        }
        .await;
        match result {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Code::AlreadyExists => {
                if labels.is_empty() {
                    return Ok(());
                }
                let paths = labels.keys().map(|k| format!("labels.{k}")).collect();
                self.client
                    .content()
                    .update(self.req(containerd_client::services::v1::UpdateRequest {
                        info: Some(containerd_client::services::v1::Info {
                            digest: digest.to_string(),
                            labels,
                            ..Default::default()
                        }),
                        update_mask: Some(prost_types::FieldMask { paths }),
                    }))
                    .await
                    .map_err(|e| rpc_err(&format!("label content {digest}"), e))?;
                Ok(())
            }
            Err(e) => Err(rpc_err(&format!("write content {digest}"), e)),
        }
    }

    async fn snapshot_exists(&self, key: &str) -> Result<bool> {
        match self
            .client
            .snapshots()
            .stat(self.req(StatSnapshotRequest {
                snapshotter: SNAPSHOTTER.into(),
                key: key.into(),
            }))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Code::NotFound => Ok(false),
            Err(e) => Err(rpc_err(&format!("stat snapshot {key}"), e)),
        }
    }

    async fn remove_snapshot(&self, key: &str) -> Result<()> {
        match self
            .client
            .snapshots()
            .remove(self.req(RemoveSnapshotRequest {
                snapshotter: SNAPSHOTTER.into(),
                key: key.into(),
            }))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Code::NotFound => Ok(()),
            Err(e) => Err(rpc_err(&format!("remove snapshot {key}"), e)),
        }
    }

    /// Unpacks an image's layers into the snapshotter, one committed snapshot per chain id.
    async fn unpack(
        &self,
        layers: &[Descriptor],
        diff_ids: &[String],
        lease: &MetadataValue<Ascii>,
    ) -> Result<()> {
        let chain = chain_ids(diff_ids);
        for (i, layer) in layers.iter().enumerate() {
            let chain_id = &chain[i];
            if self.snapshot_exists(chain_id).await? {
                continue;
            }
            let parent = if i == 0 {
                String::new()
            } else {
                chain[i - 1].clone()
            };
            let key = format!("keelson-extract-{}-{chain_id}", unique_suffix());
            let mounts = self
                .client
                .snapshots()
                .prepare(self.req_leased(
                    PrepareSnapshotRequest {
                        snapshotter: SNAPSHOTTER.into(),
                        key: key.clone(),
                        parent,
                        labels: HashMap::new(),
                    },
                    lease,
                ))
                .await
                .map_err(|e| rpc_err(&format!("prepare snapshot {key}"), e))?
                .into_inner()
                .mounts;
            let applied = async {
                let applied = self
                    .client
                    .diff()
                    .apply(self.req_leased(
                        ApplyRequest {
                            diff: Some(layer.clone()),
                            mounts,
                            payloads: HashMap::new(),
                            sync_fs: false,
                        },
                        lease,
                    ))
                    .await
                    .map_err(|e| rpc_err(&format!("apply layer {}", layer.digest), e))?
                    .into_inner()
                    .applied;
                let applied_digest = applied.map(|d| d.digest).unwrap_or_default();
                if applied_digest != diff_ids[i] {
                    return Err(RuntimeError::Runtime(format!(
                        "layer {}: unpacked to {applied_digest}, the image config says {}",
                        layer.digest, diff_ids[i]
                    )));
                }
                self.client
                    .snapshots()
                    .commit(self.req_leased(
                        CommitSnapshotRequest {
                            snapshotter: SNAPSHOTTER.into(),
                            name: chain_id.clone(),
                            key: key.clone(),
                            labels: HashMap::new(),
                        },
                        lease,
                    ))
                    .await
                    .map_err(|e| rpc_err(&format!("commit snapshot {chain_id}"), e))?;
                Ok(())
            }
            .await;
            if let Err(e) = applied {
                let _ = self.remove_snapshot(&key).await;
                return Err(e);
            }
        }
        Ok(())
    }

    pub(super) async fn import_leased(
        &self,
        layout: Layout,
        lease: &MetadataValue<Ascii>,
    ) -> Result<Vec<String>> {
        for (digest, data) in &layout.blobs {
            let labels = layout.labels.get(digest).cloned().unwrap_or_default();
            self.write_blob(digest, data, labels, lease).await?;
        }
        let mut names = Vec::new();
        for image in &layout.images {
            self.unpack(&image.layers, &image.diff_ids, lease).await?;
            for name in &image.names {
                let record = Image {
                    name: name.clone(),
                    labels: HashMap::new(),
                    target: Some(image.target.clone()),
                    created_at: None,
                    updated_at: None,
                };
                let created = self
                    .client
                    .images()
                    .create(self.req(CreateImageRequest {
                        image: Some(record.clone()),
                        source_date_epoch: None,
                    }))
                    .await;
                match created {
                    Ok(_) => {}
                    Err(e) if e.code() == Code::AlreadyExists => {
                        self.client
                            .images()
                            .update(self.req(UpdateImageRequest {
                                image: Some(record),
                                update_mask: None,
                                source_date_epoch: None,
                            }))
                            .await
                            .map_err(|e| rpc_err(&format!("update image {name}"), e))?;
                    }
                    Err(e) => return Err(rpc_err(&format!("create image {name}"), e)),
                }
                names.push(name.clone());
            }
        }
        Ok(names)
    }

    async fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let mut stream = self
            .client
            .content()
            .read(self.req(ReadContentRequest {
                digest: digest.into(),
                offset: 0,
                size: 0,
            }))
            .await
            .map_err(|e| rpc_err(&format!("read content {digest}"), e))?
            .into_inner();
        let mut data = Vec::new();
        while let Some(msg) = stream
            .message()
            .await
            .map_err(|e| rpc_err(&format!("read content {digest}"), e))?
        {
            data.extend_from_slice(&msg.data);
        }
        Ok(data)
    }

    /// The image's config (as JSON) and the chain id of its top layer.
    async fn image_config(&self, name: &str) -> Result<(serde_json::Value, String)> {
        let image = self
            .client
            .images()
            .get(self.req(GetImageRequest { name: name.into() }))
            .await
            .map_err(|e| rpc_err(&format!("image {name}"), e))?
            .into_inner()
            .image
            .and_then(|i| i.target)
            .ok_or_else(|| RuntimeError::Runtime(format!("image {name} has no target")))?;
        let mut manifest_digest = image.digest;
        let mut data = self.read_blob(&manifest_digest).await?;
        if is_index(&image.media_type) {
            let index = parse_json("index", &data)?;
            manifest_digest = pick_platform_manifest(&index)
                .and_then(|m| json_str(m, "digest"))
                .ok_or_else(|| RuntimeError::Runtime(format!("image {name}: empty index")))?;
            data = self.read_blob(&manifest_digest).await?;
        }
        let manifest = parse_json("manifest", &data)?;
        let config_digest = manifest
            .pointer("/config/digest")
            .and_then(|d| d.as_str())
            .ok_or_else(|| RuntimeError::Runtime(format!("image {name}: no config")))?;
        let config = parse_json("image config", &self.read_blob(config_digest).await?)?;
        let diff_ids = diff_ids(&config);
        let top = chain_ids(&diff_ids)
            .pop()
            .ok_or_else(|| RuntimeError::Runtime(format!("image {name} has no layers")))?;
        Ok((config, top))
    }

    async fn start_leased(&self, spec: &ContainerSpec, lease: &MetadataValue<Ascii>) -> Result<()> {
        let (image_config, top) = self.image_config(&spec.image).await?;
        if !self.snapshot_exists(&top).await? {
            return Err(RuntimeError::Runtime(format!(
                "image {} is not unpacked into {SNAPSHOTTER}",
                spec.image
            )));
        }
        let prepared = self
            .client
            .snapshots()
            .prepare(self.req_leased(
                PrepareSnapshotRequest {
                    snapshotter: SNAPSHOTTER.into(),
                    key: spec.id.clone(),
                    parent: top,
                    labels: HashMap::new(),
                },
                lease,
            ))
            .await;
        let mounts: Vec<Mount> = match prepared {
            Ok(r) => r.into_inner().mounts,
            // Left over from an earlier attempt with this id.
            Err(e) if e.code() == Code::AlreadyExists => {
                self.client
                    .snapshots()
                    .mounts(self.req(MountsRequest {
                        snapshotter: SNAPSHOTTER.into(),
                        key: spec.id.clone(),
                    }))
                    .await
                    .map_err(|e| rpc_err(&format!("snapshot mounts {}", spec.id), e))?
                    .into_inner()
                    .mounts
            }
            Err(e) => return Err(rpc_err(&format!("prepare snapshot {}", spec.id), e)),
        };

        let oci = oci_spec(spec, &image_config, &self.namespace_name)?;
        let oci_json = serde_json::to_vec(&oci)
            .map_err(|e| RuntimeError::Runtime(format!("runtime spec: {e}")))?;
        self.client
            .containers()
            .create(self.req_leased(
                CreateContainerRequest {
                    container: Some(Container {
                        id: spec.id.clone(),
                        labels: spec.labels.clone().into_iter().collect(),
                        image: spec.image.clone(),
                        runtime: Some(ContainerRuntime {
                            name: RUNC_RUNTIME.into(),
                            options: None,
                        }),
                        spec: Some(prost_types::Any {
                            type_url: SPEC_TYPE_URL.into(),
                            value: oci_json,
                        }),
                        snapshotter: SNAPSHOTTER.into(),
                        snapshot_key: spec.id.clone(),
                        ..Default::default()
                    }),
                },
                lease,
            ))
            .await
            .map_err(|e| rpc_err(&format!("create container {}", spec.id), e))?;

        if let Some(dir) = spec.log_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| RuntimeError::Io(dir.to_path_buf(), e))?;
        }
        let log = match &self.logger {
            Some(binary) => crate::logs::logger_uri(binary, &spec.log_path),
            None => file_uri(&spec.log_path),
        };
        self.client
            .tasks()
            .create(self.req(CreateTaskRequest {
                container_id: spec.id.clone(),
                rootfs: mounts,
                stdout: log.clone(),
                stderr: log,
                ..Default::default()
            }))
            .await
            .map_err(|e| rpc_err(&format!("create task {}", spec.id), e))?;
        self.client
            .tasks()
            .start(self.req(StartRequest {
                container_id: spec.id.clone(),
                exec_id: String::new(),
            }))
            .await
            .map_err(|e| rpc_err(&format!("start task {}", spec.id), e))?;
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        self.client
            .containers()
            .update(self.req(UpdateContainerRequest {
                container: Some(Container {
                    id: spec.id.clone(),
                    labels: HashMap::from([(STARTED_AT_LABEL.to_string(), started.to_string())]),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec![format!("labels.{STARTED_AT_LABEL}")],
                }),
            }))
            .await
            .map_err(|e| rpc_err(&format!("label container {}", spec.id), e))?;
        Ok(())
    }

    /// Best-effort removal of whatever a failed start left.
    async fn cleanup(&self, id: &str) {
        let _ = self
            .client
            .tasks()
            .kill(self.req(KillRequest {
                container_id: id.into(),
                exec_id: String::new(),
                signal: SIGKILL,
                all: true,
            }))
            .await;
        let _ = self
            .client
            .tasks()
            .delete(self.req(DeleteTaskRequest {
                container_id: id.into(),
            }))
            .await;
        let _ = self
            .client
            .containers()
            .delete(self.req(DeleteContainerRequest { id: id.into() }))
            .await;
        let _ = self.remove_snapshot(id).await;
    }

    async fn container(&self, id: &str) -> Result<Container> {
        self.client
            .containers()
            .get(self.req(GetContainerRequest { id: id.into() }))
            .await
            .map_err(|e| rpc_err(&format!("container {id}"), e))?
            .into_inner()
            .container
            .ok_or_else(|| RuntimeError::NotFound(format!("container {id}")))
    }

    async fn wait_exit(&self, id: &str, timeout: Duration) -> Result<bool> {
        let mut tasks = self.client.tasks();
        let wait = tasks.wait(self.req(WaitRequest {
            container_id: id.into(),
            exec_id: String::new(),
        }));
        match tokio::time::timeout(timeout, wait).await {
            Err(_) => Ok(false),
            Ok(Ok(_)) => Ok(true),
            Ok(Err(e)) if e.code() == Code::NotFound => Ok(true),
            Ok(Err(e)) => Err(rpc_err(&format!("wait task {id}"), e)),
        }
    }

    async fn kill(&self, id: &str, signal: u32, all: bool) -> Result<()> {
        match self
            .client
            .tasks()
            .kill(self.req(KillRequest {
                container_id: id.into(),
                exec_id: String::new(),
                signal,
                all,
            }))
            .await
        {
            Ok(_) => Ok(()),
            // The task is gone or has already exited.
            Err(e) if matches!(e.code(), Code::NotFound | Code::FailedPrecondition) => Ok(()),
            Err(e) => Err(rpc_err(&format!("kill task {id}"), e)),
        }
    }
}

/// The label that records when a container's task was started (containerd keeps no
/// start time of its own).
const STARTED_AT_LABEL: &str = "keelson.dev/started-at";

/// When the container's task started: the label written after start, else its creation.
fn started_at(container: &Container) -> SystemTime {
    container
        .labels
        .get(STARTED_AT_LABEL)
        .and_then(|v| v.parse::<u128>().ok())
        .map(|nanos| UNIX_EPOCH + Duration::from_nanos(nanos.min(u64::MAX as u128) as u64))
        .unwrap_or_else(|| to_system_time(container.created_at.as_ref()))
}

/// Whether the memory cgroup of a container counted an OOM kill (cgroup v1
/// `memory.oom_control`, or v2 `memory.events`); the cgroup lives until the task is deleted.
fn oom_killed(namespace: &str, id: &str) -> bool {
    let v1 = format!("/sys/fs/cgroup/memory/{namespace}/{id}/memory.oom_control");
    let v2 = format!("/sys/fs/cgroup/{namespace}/{id}/memory.events");
    [v1, v2].iter().any(|path| {
        std::fs::read_to_string(path).is_ok_and(|text| {
            text.lines().any(|l| {
                l.strip_prefix("oom_kill ")
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .is_some_and(|n| n > 0)
            })
        })
    })
}

/// Maps a task's process record to a state.
fn task_state(
    process: &containerd_client::types::v1::Process,
    started: SystemTime,
    namespace: &str,
) -> ContainerState {
    match TaskStatus::try_from(process.status).unwrap_or(TaskStatus::Unknown) {
        TaskStatus::Created => ContainerState::Created,
        TaskStatus::Running | TaskStatus::Paused | TaskStatus::Pausing => ContainerState::Running {
            pid: process.pid,
            started_at: started,
        },
        TaskStatus::Stopped => ContainerState::Exited {
            exit_code: process.exit_status as i32,
            started_at: started,
            finished_at: to_system_time(process.exited_at.as_ref()),
            oom_killed: oom_killed(namespace, &process.id),
        },
        TaskStatus::Unknown => ContainerState::Unknown,
    }
}

/// Every capability, for privileged containers.
const ALL_CAPABILITIES: &[&str] = &[
    "CAP_AUDIT_CONTROL",
    "CAP_AUDIT_READ",
    "CAP_AUDIT_WRITE",
    "CAP_BLOCK_SUSPEND",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_KILL",
    "CAP_LEASE",
    "CAP_LINUX_IMMUTABLE",
    "CAP_MAC_ADMIN",
    "CAP_MAC_OVERRIDE",
    "CAP_MKNOD",
    "CAP_NET_ADMIN",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_RAW",
    "CAP_PERFMON",
    "CAP_SETGID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_CHROOT",
    "CAP_SYS_MODULE",
    "CAP_SYS_NICE",
    "CAP_SYS_PACCT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
];

/// Docker's default capability set, which Kubernetes containers get.
const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

fn capabilities(names: &[&str]) -> oci_spec::runtime::Capabilities {
    names
        .iter()
        .filter_map(|n| oci_spec::runtime::Capability::from_str(n.trim_start_matches("CAP_")).ok())
        .collect()
}

fn spec_err(e: oci_spec::OciSpecError) -> RuntimeError {
    RuntimeError::Runtime(format!("runtime spec: {e}"))
}

/// The OCI runtime spec of a container: oci-spec's defaults (the runc defaults: proc, dev,
/// devpts, shm, mqueue, sysfs mounts; pid, ipc, uts, mount, network namespaces; masked and
/// read-only /proc paths) with the container's process, mounts, namespaces and limits.
pub fn oci_spec(
    spec: &ContainerSpec,
    image_config: &serde_json::Value,
    namespace: &str,
) -> Result<oci_spec::runtime::Spec> {
    use oci_spec::runtime::{
        LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder,
        LinuxMemoryBuilder, LinuxNamespace, LinuxNamespaceType, LinuxResourcesBuilder,
        MountBuilder, ProcessBuilder, RootBuilder, Spec, UserBuilder,
    };
    let image = image_config.get("config");
    let strings = |key: &str| -> Vec<String> {
        image
            .and_then(|c| c.get(key))
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };

    // Kubernetes' rules: command replaces Entrypoint and drops Cmd; args replace Cmd.
    let mut args = if spec.command.is_empty() {
        strings("Entrypoint")
    } else {
        spec.command.clone()
    };
    if !spec.args.is_empty() {
        args.extend(spec.args.iter().cloned());
    } else if spec.command.is_empty() {
        args.extend(strings("Cmd"));
    }
    if args.is_empty() {
        return Err(RuntimeError::Runtime(format!(
            "container {}: no command and the image has none",
            spec.id
        )));
    }
    // The image's environment, overridden by the container's.
    let mut env: Vec<(String, String)> = strings("Env")
        .into_iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    for (k, v) in &spec.env {
        env.retain(|(ek, _)| ek != k);
        env.push((k.clone(), v.clone()));
    }
    let cwd = spec
        .working_dir
        .clone()
        .filter(|d| !d.is_empty())
        .or_else(|| {
            image
                .and_then(|c| json_str(c, "WorkingDir"))
                .filter(|d| !d.is_empty())
        })
        .unwrap_or_else(|| "/".into());
    let (uid, gid) = spec.user.unwrap_or((0, 0));

    let caps = if spec.privileged {
        capabilities(ALL_CAPABILITIES)
    } else {
        capabilities(DEFAULT_CAPABILITIES)
    };
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(
            UserBuilder::default()
                .uid(uid)
                .gid(gid)
                .build()
                .map_err(spec_err)?,
        )
        .args(args)
        .env(
            env.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>(),
        )
        .cwd(cwd)
        .no_new_privileges(!spec.privileged)
        .capabilities(
            LinuxCapabilitiesBuilder::default()
                .bounding(caps.clone())
                .effective(caps.clone())
                .permitted(caps)
                .build()
                .map_err(spec_err)?,
        )
        .build()
        .map_err(spec_err)?;

    let mut mounts = oci_spec::runtime::get_default_mounts();
    if spec.privileged {
        // Writable /sys for privileged containers.
        for m in &mut mounts {
            if m.destination() == Path::new("/sys") {
                m.set_options(Some(
                    ["nosuid", "noexec", "nodev", "rw"]
                        .map(String::from)
                        .to_vec(),
                ));
            }
        }
    }
    for (host, container, read_only) in &spec.mounts {
        mounts.push(
            MountBuilder::default()
                .destination(PathBuf::from(container))
                .typ("bind")
                .source(host.clone())
                .options(vec![
                    "rbind".to_string(),
                    "rprivate".to_string(),
                    if *read_only { "ro" } else { "rw" }.to_string(),
                ])
                .build()
                .map_err(spec_err)?,
        );
    }

    let mut namespaces: Vec<LinuxNamespace> = oci_spec::runtime::get_default_namespaces();
    match &spec.network_namespace {
        Some(path) => {
            for ns in &mut namespaces {
                if ns.typ() == LinuxNamespaceType::Network {
                    ns.set_path(Some(path.clone()));
                }
            }
        }
        None => namespaces.retain(|ns| ns.typ() != LinuxNamespaceType::Network),
    }

    let mut resources = LinuxResourcesBuilder::default();
    if spec.privileged {
        resources = resources.devices(vec![LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .access("rwm")
            .build()
            .map_err(spec_err)?]);
    }
    if let Some(milli) = spec.cpu_limit_milli.filter(|m| *m > 0) {
        let period: u64 = 100_000;
        resources = resources.cpu(
            LinuxCpuBuilder::default()
                .period(period)
                .quota((milli * period as i64 / 1000).max(1000))
                .build()
                .map_err(spec_err)?,
        );
    }
    if let Some(bytes) = spec.memory_limit_bytes.filter(|b| *b > 0) {
        resources = resources.memory(
            LinuxMemoryBuilder::default()
                .limit(bytes)
                .build()
                .map_err(spec_err)?,
        );
    }
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(resources.build().map_err(spec_err)?)
        .cgroups_path(PathBuf::from(format!("/{namespace}/{}", spec.id)));
    if !spec.privileged {
        linux = linux
            .masked_paths(oci_spec::runtime::get_default_maskedpaths())
            .readonly_paths(oci_spec::runtime::get_default_readonly_paths());
    }

    let mut oci = Spec::default();
    oci.set_process(Some(process))
        .set_root(Some(
            RootBuilder::default()
                .path("rootfs")
                .readonly(spec.read_only_rootfs)
                .build()
                .map_err(spec_err)?,
        ))
        .set_hostname(spec.hostname.clone())
        .set_mounts(Some(mounts))
        .set_annotations(None)
        .set_linux(Some(linux.build().map_err(spec_err)?));
    Ok(oci)
}

#[async_trait::async_trait]
impl Runtime for ContainerdRuntime {
    async fn version(&self) -> Result<String> {
        let v = self
            .client
            .version()
            .version(Request::new(()))
            .await
            .map_err(|e| rpc_err("version", e))?
            .into_inner();
        Ok(format!("containerd://{}", v.version))
    }

    async fn import_image(&self, tarball: &Path) -> Result<Vec<String>> {
        let path = tarball.to_path_buf();
        let layout = tokio::task::spawn_blocking(move || read_layout(&path))
            .await
            .map_err(|e| RuntimeError::Runtime(format!("reading image layout: {e}")))??;
        if layout.images.iter().all(|i| i.names.is_empty()) {
            return Err(RuntimeError::Runtime(format!(
                "{}: index.json names no image (io.containerd.image.name or \
                 org.opencontainers.image.ref.name)",
                tarball.display()
            )));
        }
        let (lease_id, lease) = self.create_lease().await?;
        let result = self.import_leased(layout, &lease).await;
        // Synchronous: an image whose references were wrong loses its content and
        // snapshots now, not at some later garbage collection.
        self.delete_lease(lease_id, true).await;
        result
    }

    async fn has_image(&self, name: &str) -> Result<bool> {
        match self
            .client
            .images()
            .get(self.req(GetImageRequest { name: name.into() }))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Code::NotFound => Ok(false),
            Err(e) => Err(rpc_err(&format!("image {name}"), e)),
        }
    }

    async fn start(&self, spec: &ContainerSpec) -> Result<()> {
        let (lease_id, lease) = self.create_lease().await?;
        let result = self.start_leased(spec, &lease).await;
        if result.is_err() {
            self.cleanup(&spec.id).await;
        }
        self.delete_lease(lease_id, false).await;
        result
    }

    async fn state(&self, id: &str) -> Result<ContainerState> {
        let container = self.container(id).await?;
        let started = started_at(&container);
        match self
            .client
            .tasks()
            .get(self.req(GetRequest {
                container_id: id.into(),
                exec_id: String::new(),
            }))
            .await
        {
            Ok(r) => Ok(r
                .into_inner()
                .process
                .map(|p| task_state(&p, started, &self.namespace_name))
                .unwrap_or(ContainerState::Unknown)),
            // A container whose task is not (or no longer) there.
            Err(e) if e.code() == Code::NotFound => Ok(ContainerState::Created),
            Err(e) => Err(rpc_err(&format!("task {id}"), e)),
        }
    }

    async fn stop(&self, id: &str, grace: Duration) -> Result<()> {
        match self.state(id).await? {
            ContainerState::Exited { .. } => return Ok(()),
            ContainerState::Created => {
                // A task that was created but never started has nothing to wait for.
                self.kill(id, SIGKILL, true).await?;
                return Ok(());
            }
            _ => {}
        }
        self.kill(id, SIGTERM, false).await?;
        if self.wait_exit(id, grace).await? {
            return Ok(());
        }
        self.kill(id, SIGKILL, true).await?;
        if self.wait_exit(id, KILL_WAIT).await? {
            Ok(())
        } else {
            Err(RuntimeError::Runtime(format!(
                "container {id} still running {KILL_WAIT:?} after SIGKILL"
            )))
        }
    }

    async fn remove(&self, id: &str) -> Result<()> {
        match self
            .client
            .tasks()
            .delete(self.req(DeleteTaskRequest {
                container_id: id.into(),
            }))
            .await
        {
            Ok(_) => {}
            Err(e) if e.code() == Code::NotFound => {}
            Err(e) => return Err(rpc_err(&format!("delete task {id}"), e)),
        }
        self.client
            .containers()
            .delete(self.req(DeleteContainerRequest { id: id.into() }))
            .await
            .map_err(|e| rpc_err(&format!("delete container {id}"), e))?;
        self.remove_snapshot(id).await
    }

    async fn pull_image(&self, reference: &str, auth: Option<&RegistryAuth>) -> Result<()> {
        super::pull::pull(self, reference, auth).await
    }

    async fn exec(&self, id: &str, command: &[String], timeout: Duration) -> Result<ExecOutput> {
        super::exec::exec(self, id, command, timeout).await
    }

    async fn list(&self) -> Result<Vec<ContainerInfo>> {
        let containers = self
            .client
            .containers()
            .list(self.req(ListContainersRequest { filters: vec![] }))
            .await
            .map_err(|e| rpc_err("list containers", e))?
            .into_inner()
            .containers;
        let tasks = self
            .client
            .tasks()
            .list(self.req(ListTasksRequest {
                filter: String::new(),
            }))
            .await
            .map_err(|e| rpc_err("list tasks", e))?
            .into_inner()
            .tasks;
        let tasks: HashMap<&str, &containerd_client::types::v1::Process> =
            tasks.iter().map(|t| (t.id.as_str(), t)).collect();
        Ok(containers
            .into_iter()
            .map(|c| {
                let started = started_at(&c);
                let state = tasks
                    .get(c.id.as_str())
                    .map(|p| task_state(p, started, &self.namespace_name))
                    .unwrap_or(ContainerState::Created);
                ContainerInfo {
                    id: c.id,
                    image: c.image,
                    labels: c.labels.into_iter().collect(),
                    state,
                }
            })
            .collect())
    }
}

/// The uncompressed layer digests an image config lists (`rootfs.diff_ids`).
fn diff_ids(config: &serde_json::Value) -> Vec<String> {
    config
        .pointer("/rootfs/diff_ids")
        .and_then(|d| d.as_array())
        .map(|d| {
            d.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
