//! Local OCI images: no registry is reachable on the machines Keelson runs its tests on, so
//! images are OCI image layout tarballs built here and imported into the runtime.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{Result, RuntimeError};

/// Where the static busybox comes from (Debian's `busybox-static`).
pub const BUSYBOX_PATH: &str = "/bin/busybox";

/// The applets the busybox image links to `/bin/busybox`.
pub const BUSYBOX_APPLETS: &[&str] = &[
    "sh", "echo", "sleep", "cat", "ls", "wget", "httpd", "nc", "env", "id", "ps", "true", "false",
    "mkdir", "rm", "touch", "hostname", "ip", "ifconfig",
];

const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RuntimeError + '_ {
    move |e| RuntimeError::Io(path.to_path_buf(), e)
}

/// Builds an OCI image layout tarball holding a busybox image named `name` (for example
/// `keelson.test/busybox:1`) and returns its path (in `dir`).
///
/// The single layer holds `/bin/busybox` (copied from [`BUSYBOX_PATH`]) with the
/// [`BUSYBOX_APPLETS`] symlinked to it, `/tmp`, and an `/etc/passwd` and `/etc/group` with
/// root. The image's config runs `sh` with a standard `PATH`.
pub fn build_busybox_image(dir: &Path, name: &str) -> Result<PathBuf> {
    let busybox_path = Path::new(BUSYBOX_PATH);
    let busybox = std::fs::read(busybox_path).map_err(|e| {
        RuntimeError::Io(
            busybox_path.to_path_buf(),
            std::io::Error::new(
                e.kind(),
                format!("{e} (install Debian's busybox-static to build test images)"),
            ),
        )
    })?;

    // The layer: an uncompressed tar (its digest is the diff id), then gzip.
    let layer_tar = {
        let mut b = tar::Builder::new(Vec::new());
        let dirs: &[(&str, u32)] = &[
            ("bin/", 0o755),
            ("etc/", 0o755),
            ("tmp/", 0o1777),
            ("proc/", 0o555),
            ("sys/", 0o555),
            ("dev/", 0o755),
            ("root/", 0o700),
        ];
        for (path, mode) in dirs {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(*mode);
            h.set_size(0);
            h.set_mtime(0);
            b.append_data(&mut h, path, std::io::empty())
                .map_err(io_err(dir))?;
        }
        let files: &[(&str, &[u8], u32)] = &[
            ("bin/busybox", &busybox, 0o755),
            (
                "etc/passwd",
                b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
                0o644,
            ),
            ("etc/group", b"root:x:0:\nnogroup:x:65534:\n", 0o644),
        ];
        for (path, data, mode) in files {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(*mode);
            h.set_size(data.len() as u64);
            h.set_mtime(0);
            b.append_data(&mut h, path, *data).map_err(io_err(dir))?;
        }
        for applet in BUSYBOX_APPLETS {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_mode(0o777);
            h.set_size(0);
            h.set_mtime(0);
            b.append_link(&mut h, format!("bin/{applet}"), "busybox")
                .map_err(io_err(dir))?;
        }
        b.into_inner().map_err(io_err(dir))?
    };
    let diff_id = sha256_digest(&layer_tar);
    let layer_gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&layer_tar).map_err(io_err(dir))?;
        e.finish().map_err(io_err(dir))?
    };

    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
            "WorkingDir": "/",
        },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "history": [{ "created_by": "keelson build_busybox_image" }],
    }))
    .map_err(|e| RuntimeError::Runtime(format!("image config: {e}")))?;

    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {
            "mediaType": MEDIA_CONFIG,
            "digest": sha256_digest(&config),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": MEDIA_LAYER_GZIP,
            "digest": sha256_digest(&layer_gz),
            "size": layer_gz.len(),
        }],
    }))
    .map_err(|e| RuntimeError::Runtime(format!("image manifest: {e}")))?;

    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [{
            "mediaType": MEDIA_MANIFEST,
            "digest": sha256_digest(&manifest),
            "size": manifest.len(),
            "platform": { "architecture": "amd64", "os": "linux" },
            "annotations": {
                "io.containerd.image.name": name,
                "org.opencontainers.image.ref.name": name,
            },
        }],
    }))
    .map_err(|e| RuntimeError::Runtime(format!("image index: {e}")))?;

    let file_name = format!(
        "{}.oci.tar",
        name.chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            })
            .collect::<String>()
    );
    let out = dir.join(file_name);
    let file = std::fs::File::create(&out).map_err(io_err(&out))?;
    let mut b = tar::Builder::new(file);
    let mut add = |path: String, data: &[u8]| -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        b.append_data(&mut h, path, data).map_err(io_err(&out))
    };
    add("oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    add("index.json".into(), &index)?;
    for blob in [&layer_gz, &config, &manifest] {
        let hex = Sha256::digest(blob);
        add(format!("blobs/sha256/{}", hex::encode(hex)), blob)?;
    }
    b.into_inner()
        .and_then(|mut f| f.flush())
        .map_err(io_err(&out))?;
    Ok(out)
}
