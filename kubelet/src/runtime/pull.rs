//! Image pulls from OCI registries (the `oci-client` crate) into containerd.

use super::containerd::ContainerdRuntime;
use super::{RegistryAuth, Result, RuntimeError};

pub(super) async fn pull(
    _runtime: &ContainerdRuntime,
    reference: &str,
    _auth: Option<&RegistryAuth>,
) -> Result<()> {
    Err(RuntimeError::Runtime(format!(
        "pulling {reference}: registry pulls are not built yet"
    )))
}
