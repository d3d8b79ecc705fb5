//! Shared by the kubelet's integration tests: a private containerd started as root, the
//! busybox test image's name, container specs and waits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use keelson_kubelet::runtime::containerd::ContainerdRuntime;
use keelson_kubelet::runtime::{ContainerSpec, ContainerState, Runtime};

pub(crate) const CONTAINERD: &str = "/usr/bin/containerd";
pub(crate) const IMAGE: &str = "keelson.test/busybox:1";
pub(crate) const NAMESPACE: &str = "keelson";

/// A private containerd; killed (with whatever containers it still runs) on drop.
pub(crate) struct Containerd {
    child: Child,
    /// A containerd namespace of this test's own: runc keeps container state under
    /// /run/containerd/runc/<namespace>/<id> whatever containerd's root, so tests that
    /// run at once must not share a namespace.
    pub(crate) namespace: String,
    pub(crate) socket: PathBuf,
    log: PathBuf,
}

impl Containerd {
    pub(crate) fn start(dir: &Path) -> Containerd {
        assert!(
            Path::new(CONTAINERD).exists(),
            "{CONTAINERD} is missing: install Debian's containerd and runc packages"
        );
        assert!(
            Path::new("/bin/busybox").exists(),
            "/bin/busybox is missing: install Debian's busybox-static package"
        );
        let socket = dir.join("containerd.sock");
        let log = dir.join("containerd.log");
        let child = keelson_kubelet::agent::containerd_command(dir)
            .expect("containerd command")
            .spawn()
            .expect("spawn containerd (the test must run as root)");
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let namespace = format!("{NAMESPACE}-test-{}-{n}", std::process::id());
        Containerd {
            child,
            namespace,
            socket,
            log,
        }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) async fn connect(&mut self) -> ContainerdRuntime {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("containerd status") {
                panic!("containerd exited ({status}):\n{}", self.log());
            }
            if self.socket.exists() {
                if let Ok(rt) = ContainerdRuntime::connect(&self.socket, &self.namespace).await {
                    if rt.version().await.is_ok() {
                        return rt;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "containerd did not serve {} within 30 s:\n{}",
                self.socket.display(),
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) fn ctr(&self, args: &[&str]) -> String {
        Command::new("ctr")
            .arg("--address")
            .arg(&self.socket)
            .args(["--namespace", &self.namespace])
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Tasks a failed test left: kill and delete them so no shim or container outlives
        // the test.
        for id in self.ctr(&["tasks", "list", "--quiet"]).lines() {
            self.ctr(&["tasks", "kill", "--all", "--signal", "SIGKILL", id]);
            std::thread::sleep(Duration::from_millis(200));
            self.ctr(&["tasks", "delete", "--force", id]);
        }
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        // runc's state folder of this namespace, empty once the tasks are gone.
        let _ = std::fs::remove_dir(Path::new("/run/containerd/runc").join(&self.namespace));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn spec(id: &str, args: &[&str], log_path: PathBuf) -> ContainerSpec {
    ContainerSpec {
        id: id.into(),
        image: IMAGE.into(),
        command: args.iter().map(|s| s.to_string()).collect(),
        log_path,
        labels: BTreeMap::from([("io.keelson.test".to_string(), id.to_string())]),
        ..Default::default()
    }
}

pub(crate) async fn wait_exited(
    rt: &ContainerdRuntime,
    id: &str,
    timeout: Duration,
) -> (i32, ContainerState) {
    let deadline = Instant::now() + timeout;
    loop {
        let state = rt.state(id).await.expect("state");
        if let ContainerState::Exited { exit_code, .. } = state {
            return (exit_code, state);
        }
        assert!(Instant::now() < deadline, "{id} did not exit: {state:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn wait_log(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        if log.contains(needle) || Instant::now() > deadline {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
