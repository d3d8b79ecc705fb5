//! Commands run inside running containers (containerd's task exec).

use std::time::Duration;

use super::containerd::ContainerdRuntime;
use super::{ExecOutput, Result, RuntimeError};

pub(super) async fn exec(
    _runtime: &ContainerdRuntime,
    id: &str,
    _command: &[String],
    _timeout: Duration,
) -> Result<ExecOutput> {
    Err(RuntimeError::Runtime(format!(
        "exec in {id}: not built yet"
    )))
}
