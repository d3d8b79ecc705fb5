//! Commands run inside running containers (containerd's task exec), as `kubectl exec` without
//! a terminal and exec probes need them: the container's own process settings (env, cwd,
//! user, capabilities) with another command line, output captured through a file.
//!
//! The runc shim writes an exec process's stdout and stderr to a `file://` URI itself (both
//! into the same file, in the order written), so no FIFOs have to be served while the command
//! runs. The shim only closes that file once the process is deleted, so the file is read
//! after DeleteProcess.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use containerd_client::services::v1::{
    DeleteProcessRequest, ExecProcessRequest, GetContainerRequest, GetRequest, KillRequest,
    StartRequest, WaitRequest,
};
use containerd_client::tonic::Code;
use containerd_client::types::v1::Status as TaskStatus;
use tokio::io::AsyncReadExt;

use super::containerd::{file_uri, rpc_err, ContainerdRuntime};
use super::{ExecOutput, Result, RuntimeError};

/// What the kubelet keeps of an exec's output: upstream's exec prober reads at most 10 KiB
/// (`maxReadLength` in pkg/probe/exec), and a probe message has no use for more.
pub const MAX_EXEC_OUTPUT: usize = 10 * 1024;

const PROCESS_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";
const SIGKILL: u32 = 9;
/// How long a killed exec process may take to be reaped before it is deleted anyway.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// An exec id unique in this process and across restarts of it (containerd keeps exec ids
/// per task, and a kubelet restarted within a running task must not collide with its
/// predecessor's leftovers).
fn exec_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "exec-{:x}-{:x}-{}",
        std::process::id(),
        nanos,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The process an exec runs: the container's `process` with `args` replaced. Kept as JSON so
/// that fields this code does not know (rlimits, apparmor, selinux, oomScoreAdj) carry over.
fn exec_process(container_spec: &[u8], command: &[String]) -> std::result::Result<Vec<u8>, String> {
    let spec: serde_json::Value =
        serde_json::from_slice(container_spec).map_err(|e| format!("runtime spec: {e}"))?;
    let mut process = spec
        .get("process")
        .cloned()
        .filter(|p| p.is_object())
        .ok_or("runtime spec has no process")?;
    if let Some(p) = process.as_object_mut() {
        p.insert("args".into(), serde_json::json!(command));
        p.insert("terminal".into(), serde_json::Value::Bool(false));
        p.remove("consoleSize");
        p.remove("commandLine");
    }
    serde_json::to_vec(&process).map_err(|e| format!("process spec: {e}"))
}

pub(super) async fn exec(
    runtime: &ContainerdRuntime,
    id: &str,
    command: &[String],
    timeout: Duration,
) -> Result<ExecOutput> {
    if command.is_empty() {
        return Err(RuntimeError::Runtime(format!(
            "exec in {id}: empty command"
        )));
    }
    let container = runtime
        .client
        .containers()
        .get(runtime.req(GetContainerRequest { id: id.into() }))
        .await
        .map_err(|e| rpc_err(&format!("container {id}"), e))?
        .into_inner()
        .container
        .ok_or_else(|| RuntimeError::NotFound(format!("container {id}")))?;
    let spec = container
        .spec
        .ok_or_else(|| RuntimeError::Runtime(format!("container {id} has no runtime spec")))?;
    let process = exec_process(&spec.value, command)
        .map_err(|e| RuntimeError::Runtime(format!("exec in {id}: {e}")))?;

    // containerd itself refuses an exec into a stopped task, but with a less clear error, and
    // a container without a task would fail as "not found" although it exists.
    let running = match runtime
        .client
        .tasks()
        .get(runtime.req(GetRequest {
            container_id: id.into(),
            exec_id: String::new(),
        }))
        .await
    {
        Ok(r) => r.into_inner().process.is_some_and(|p| {
            matches!(
                TaskStatus::try_from(p.status),
                Ok(TaskStatus::Running | TaskStatus::Paused | TaskStatus::Pausing)
            )
        }),
        Err(e) if e.code() == Code::NotFound => false,
        Err(e) => return Err(rpc_err(&format!("task {id}"), e)),
    };
    if !running {
        return Err(RuntimeError::Runtime(format!(
            "cannot exec in container {id}: it is not running"
        )));
    }

    // Private (0700) and removed on every path when `dir` drops: the output may hold secrets.
    let dir = tempfile::Builder::new()
        .prefix("keelson-exec-")
        .tempdir()
        .map_err(|e| RuntimeError::Io(std::env::temp_dir(), e))?;
    let output_path = dir.path().join("output");
    let uri = file_uri(&output_path);
    let exec_id = exec_id();
    runtime
        .client
        .tasks()
        .exec(runtime.req(ExecProcessRequest {
            container_id: id.into(),
            stdin: String::new(),
            stdout: uri.clone(),
            stderr: uri,
            terminal: false,
            spec: Some(prost_types::Any {
                type_url: PROCESS_TYPE_URL.into(),
                value: process,
            }),
            exec_id: exec_id.clone(),
        }))
        .await
        .map_err(|e| rpc_err(&format!("exec in {id}"), e))?;

    let outcome = run(runtime, id, &exec_id, timeout).await;
    delete_process(runtime, id, &exec_id).await;
    let (exit_code, timed_out) = outcome?;
    let output = read_capped(&output_path).await?;
    Ok(ExecOutput {
        exit_code,
        output,
        timed_out,
    })
}

/// Starts the exec process and waits for it; on timeout kills it. Returns (exit code,
/// timed out).
async fn run(
    runtime: &ContainerdRuntime,
    id: &str,
    exec_id: &str,
    timeout: Duration,
) -> Result<(i32, bool)> {
    let deadline = tokio::time::Instant::now() + timeout;
    runtime
        .client
        .tasks()
        .start(runtime.req(StartRequest {
            container_id: id.into(),
            exec_id: exec_id.into(),
        }))
        .await
        .map_err(|e| rpc_err(&format!("exec in {id}"), e))?;
    let wait = |limit| async move {
        let mut tasks = runtime.client.tasks();
        let wait = tasks.wait(runtime.req(WaitRequest {
            container_id: id.into(),
            exec_id: exec_id.into(),
        }));
        match tokio::time::timeout_at(limit, wait).await {
            Err(_) => Ok(None),
            Ok(Ok(r)) => Ok(Some(r.into_inner().exit_status as i32)),
            Ok(Err(e)) => Err(rpc_err(&format!("wait for exec in {id}"), e)),
        }
    };
    if let Some(code) = wait(deadline).await? {
        return Ok((code, false));
    }
    match runtime
        .client
        .tasks()
        .kill(runtime.req(KillRequest {
            container_id: id.into(),
            exec_id: exec_id.into(),
            signal: SIGKILL,
            all: false,
        }))
        .await
    {
        Ok(_) => {}
        // It exited between the timeout and the kill.
        Err(e) if matches!(e.code(), Code::NotFound | Code::FailedPrecondition) => {}
        Err(e) => return Err(rpc_err(&format!("kill exec in {id}"), e)),
    }
    let code = wait(tokio::time::Instant::now() + KILL_WAIT).await?;
    Ok((code.unwrap_or(128 + SIGKILL as i32), true))
}

async fn delete_process(runtime: &ContainerdRuntime, id: &str, exec_id: &str) {
    match runtime
        .client
        .tasks()
        .delete_process(runtime.req(DeleteProcessRequest {
            container_id: id.into(),
            exec_id: exec_id.into(),
        }))
        .await
    {
        Ok(_) => {}
        Err(e) if e.code() == Code::NotFound => {}
        Err(e) => tracing::warn!(container = id, exec_id, error = %e, "deleting exec process"),
    }
}

/// The first [`MAX_EXEC_OUTPUT`] bytes of the output file (absent when the shim never
/// created it, e.g. the process failed to start: no output).
async fn read_capped(path: &std::path::Path) -> Result<Vec<u8>> {
    let file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RuntimeError::Io(path.to_path_buf(), e)),
    };
    let mut out = Vec::new();
    file.take(MAX_EXEC_OUTPUT as u64)
        .read_to_end(&mut out)
        .await
        .map_err(|e| RuntimeError::Io(path.to_path_buf(), e))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exec_process_is_the_containers_with_the_command() {
        let spec = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": true,
                "consoleSize": { "height": 10, "width": 80 },
                "user": { "uid": 1000, "gid": 1000 },
                "args": ["sleep", "1000"],
                "env": ["PATH=/bin", "FOO=bar"],
                "cwd": "/work",
                "capabilities": { "bounding": ["CAP_KILL"] },
                "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
                "noNewPrivileges": true
            },
            "root": { "path": "rootfs" }
        });
        let bytes = serde_json::to_vec(&spec).expect("json");
        let command = vec!["sh".to_string(), "-c".into(), "echo hi".into()];
        let process: serde_json::Value =
            serde_json::from_slice(&exec_process(&bytes, &command).expect("process"))
                .expect("json");
        assert_eq!(process["args"], serde_json::json!(["sh", "-c", "echo hi"]));
        assert_eq!(process["terminal"], false);
        assert!(process.get("consoleSize").is_none());
        assert_eq!(process["env"], spec["process"]["env"]);
        assert_eq!(process["cwd"], "/work");
        assert_eq!(process["user"]["uid"], 1000);
        assert_eq!(process["capabilities"], spec["process"]["capabilities"]);
        assert_eq!(process["rlimits"], spec["process"]["rlimits"]);
        assert_eq!(process["noNewPrivileges"], true);

        assert!(exec_process(b"{\"root\":{}}", &command).is_err());
        assert!(exec_process(b"not json", &command).is_err());
    }

    #[test]
    fn exec_ids_are_unique_containerd_identifiers() {
        let a = exec_id();
        let b = exec_id();
        assert_ne!(a, b);
        for id in [a, b] {
            assert!(id.len() <= 76, "{id}");
            assert!(
                id.split(['-', '.', '_'])
                    .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric())),
                "{id}"
            );
        }
    }
}
