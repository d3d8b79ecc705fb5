//! Pieces every Keelson component shares.
//!
//! - [`pki`]: the cluster's certificate authority and the certificates it issues
//!   (API server serving certificate, admin and component client certificates).
//! - [`tls`]: rustls server/client configurations built from that PKI, and the
//!   identity (user, groups) carried by a client certificate.
//! - [`kubeconfig`]: reading and writing kubeconfig files that stock kubectl uses.
//! - [`tokens`]: kube-apiserver compatible static token files (`--token-auth-file`).
//! - [`logging`]: the `tracing` subscriber every binary installs.
//! - [`component`]: client, leader election and health endpoints of the API clients.
//! - [`events`]: core/v1 Events about the objects a component acts on.

pub mod component;
pub mod events;
pub mod kubeconfig;
pub mod logging;
pub mod pki;
pub mod tls;
pub mod tokens;

pub use pki::Pki;
pub use tls::Identity;
pub use tokens::TokenAuthenticator;

use std::path::PathBuf;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Generating or signing a certificate failed.
    #[error("certificate generation: {0}")]
    Certificate(#[from] rcgen::Error),
    /// Building a TLS configuration failed.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// A certificate, key or other input is malformed or unusable.
    #[error("{0}")]
    Invalid(String),
    /// A kubeconfig could not be encoded or decoded.
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: serde_yaml::Error,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}

/// Small file helpers shared by the modules: atomic writes with a given mode.
pub(crate) mod fsutil {
    use super::{io_err, Result};
    use std::fs::{self, OpenOptions};
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    use std::path::Path;

    /// Writes `contents` to `path` atomically (temporary file in the same
    /// directory, then rename) with the given permission bits.
    pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".to_string());
        let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
        let result = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(mode)
                .open(&tmp)
                .map_err(io_err(&tmp))?;
            // The mode given to open() is filtered by the umask and ignored for
            // an existing file: set it explicitly.
            f.set_permissions(fs::Permissions::from_mode(mode))
                .map_err(io_err(&tmp))?;
            f.write_all(contents).map_err(io_err(&tmp))?;
            f.sync_all().map_err(io_err(&tmp))?;
            fs::rename(&tmp, path).map_err(io_err(path))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Creates `dir` (and parents) and sets its mode.
    pub fn ensure_dir(dir: &Path, mode: u32) -> Result<()> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(mode)).map_err(io_err(dir))
    }
}
