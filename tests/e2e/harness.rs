//! Starts real `keelson` processes on private data dirs and drives them with the real
//! kubectl binaries, curl and kube-rs.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// The kubectl versions every kubectl test runs against: the machine's own v1.32 and the
/// v1.33 / v1.37 that scripts/setup.sh installs.
pub const KUBECTLS: &[(&str, &str)] = &[
    ("1.32", "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"),
    ("1.33", "/usr/local/bin/kubectl-1.33"),
    ("1.37", "/usr/local/bin/kubectl-1.37"),
];

pub fn kubectl_path(version: &str) -> &'static str {
    KUBECTLS
        .iter()
        .find(|(v, _)| *v == version)
        .map(|(_, p)| *p)
        .unwrap_or("/usr/bin/kubectl")
}

pub struct Server {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    pub kubeconfig: PathBuf,
    /// Time from spawn to the "ready" log line of the last start.
    pub ready_after: Duration,
    extra_args: Vec<String>,
    /// `apiserver`, or `server` for the whole cluster in one process.
    subcommand: &'static str,
    /// The server's own etcd when the suite runs on etcd (`KEELSON_E2E_STORE=etcd`).
    _etcd: Option<Etcd>,
}

impl Server {
    /// A fresh server on a free port.
    pub fn start() -> Result<Server> {
        Server::start_with(&[])
    }

    /// A fresh server with extra command-line flags. With `KEELSON_E2E_STORE=etcd` a server
    /// that was not given `--etcd-servers` gets an etcd of its own, so that the same API
    /// tests run on both storage backends.
    pub fn start_with(extra_args: &[String]) -> Result<Server> {
        Server::start_as("apiserver", extra_args)
    }

    /// `keelson server`: API server, controllers, scheduler and kubelet in one process.
    pub fn start_all_in_one(extra_args: &[String]) -> Result<Server> {
        Server::start_as("server", extra_args)
    }

    fn start_as(subcommand: &'static str, extra_args: &[String]) -> Result<Server> {
        let dir = tempfile::tempdir()?;
        let kubeconfig = dir.path().join("admin.kubeconfig");
        let mut extra_args = extra_args.to_vec();
        let wants_etcd = std::env::var("KEELSON_E2E_STORE").is_ok_and(|s| s == "etcd");
        let etcd = if wants_etcd && !extra_args.iter().any(|a| a == "--etcd-servers") {
            let etcd = Etcd::start()?;
            extra_args.extend(["--etcd-servers".to_string(), etcd.url.clone()]);
            Some(etcd)
        } else {
            None
        };
        let mut server = Server {
            dir,
            port: 0,
            child: None,
            kubeconfig,
            ready_after: Duration::ZERO,
            extra_args,
            subcommand,
            _etcd: etcd,
        };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> Result<()> {
        let _ = std::fs::remove_file(&self.kubeconfig);
        let started = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_keelson"))
            .arg(self.subcommand)
            .args([
                "--bind-address",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--data-dir",
            ])
            .arg(self.dir.path())
            .args(&self.extra_args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting keelson")?;
        let stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
        let (tx, rx) = mpsc::channel();
        // The server names its backend; a suite meant for etcd must not pass on SQLite.
        let backend = if self.extra_args.iter().any(|a| a == "--etcd-servers") {
            "storage: etcd"
        } else {
            "storage: embedded SQLite"
        };
        std::thread::spawn(move || {
            for line in BufReader::new(stderr)
                .lines()
                .map_while(std::result::Result::ok)
            {
                if line.contains("storage: ") && !line.contains(backend) {
                    let _ = tx.send(Err(format!("expected {backend}: {line}")));
                }
                if line.contains("API server ready") {
                    let _ = tx.send(Ok(()));
                }
                if line.contains("Error:") {
                    let _ = tx.send(Err(line.clone()));
                }
                eprintln!("[keelson] {line}");
            }
        });
        self.child = Some(child);
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(())) => {}
            Ok(Err(line)) => bail!("keelson failed to start: {line}"),
            Err(_) => bail!("keelson did not become ready within 30 s"),
        }
        self.ready_after = started.elapsed();
        if self.port == 0 {
            let text = std::fs::read_to_string(&self.kubeconfig)?;
            let server_line = text
                .lines()
                .find(|l| l.trim_start().starts_with("server:"))
                .ok_or_else(|| anyhow!("kubeconfig has no server"))?;
            self.port = server_line
                .rsplit(':')
                .next()
                .and_then(|p| p.trim().parse().ok())
                .ok_or_else(|| anyhow!("no port in {server_line}"))?;
        }
        Ok(())
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills and starts again on the same port and data dir.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.spawn()
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub async fn client(&self) -> Result<kube::Client> {
        Ok(kube::Client::try_from(self.client_config().await?)?)
    }

    /// A client that reports a 429/503/504 at once instead of retrying it as kube-rs does
    /// by default (for minutes).
    pub async fn client_without_retries(&self) -> Result<kube::Client> {
        let mut config = self.client_config().await?;
        config.default_retry = false;
        Ok(kube::Client::try_from(config)?)
    }

    async fn client_config(&self) -> Result<kube::Config> {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig)?;
        Ok(
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await?,
        )
    }

    /// Runs kubectl of `version` against this server.
    pub fn kubectl(&self, version: &str, args: &[&str]) -> Result<Output> {
        Ok(self.kubectl_command(version, args)?.output()?)
    }

    /// kubectl of `version` against this server (its kubeconfig and a private cache dir),
    /// not yet started.
    pub fn kubectl_command(&self, version: &str, args: &[&str]) -> Result<Command> {
        let path = kubectl_path(version);
        if !Path::new(path).exists() {
            bail!("{path} is missing: run scripts/setup.sh");
        }
        let mut cmd = Command::new(path);
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join(format!("kubectl-cache-{version}")))
            .args(args);
        Ok(cmd)
    }

    /// kubectl with `input` on its stdin, whatever its exit status.
    pub fn kubectl_input(&self, version: &str, args: &[&str], input: &str) -> Result<Output> {
        use std::io::Write;
        let mut child = self
            .kubectl_command(version, args)?
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        child
            .stdin
            .take()
            .ok_or_else(|| anyhow!("no stdin"))?
            .write_all(input.as_bytes())?;
        Ok(child.wait_with_output()?)
    }

    /// kubectl that must succeed; returns stdout.
    pub fn kubectl_ok(&self, version: &str, args: &[&str]) -> Result<String> {
        let out = self.kubectl(version, args)?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() {
            bail!(
                "kubectl {version} {args:?} failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
                out.status
            );
        }
        Ok(stdout)
    }

    /// kubectl with stdin, which must succeed; returns stdout.
    pub fn kubectl_stdin(&self, version: &str, args: &[&str], input: &str) -> Result<String> {
        let out = self.kubectl_input(version, args, input)?;
        if !out.status.success() {
            bail!(
                "kubectl {version} {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A raw HTTPS request with curl: (status code, body). `auth` picks the admin client
    /// certificate or none (anonymous).
    pub fn curl(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Option<&[u8]>,
        auth: bool,
    ) -> Result<(u16, String)> {
        let auth = if auth {
            Auth::AdminCert
        } else {
            Auth::Anonymous
        };
        self.curl_as(method, path, content_type, body, auth)
    }

    /// A raw HTTPS request as the given client.
    pub fn curl_as(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Option<&[u8]>,
        auth: Auth,
    ) -> Result<(u16, String)> {
        use std::io::Write;
        let tls = self.dir.path().join("tls");
        let mut cmd = Command::new("curl");
        cmd.args([
            "-sS",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-X",
            method,
            "--cacert",
        ])
        .arg(tls.join("ca.crt"));
        match auth {
            Auth::AdminCert => {
                cmd.arg("--cert")
                    .arg(tls.join("admin.crt"))
                    .arg("--key")
                    .arg(tls.join("admin.key"));
            }
            Auth::Bearer(token) => {
                cmd.args(["-H", &format!("Authorization: Bearer {token}")]);
            }
            Auth::Anonymous => {}
        }
        if !content_type.is_empty() {
            cmd.args(["-H", &format!("Content-Type: {content_type}")]);
        }
        if body.is_some() {
            cmd.args(["--data-binary", "@-"]);
        }
        cmd.arg(format!("{}{path}", self.url()));
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running curl")?;
        let mut stdin = child.stdin.take().ok_or_else(|| anyhow!("no stdin"))?;
        if let Some(b) = body {
            stdin.write_all(b)?;
        }
        drop(stdin);
        let out = child.wait_with_output()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').ok_or_else(|| {
            anyhow!(
                "curl printed no status: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        let code: u16 = code.trim().parse().context("status code")?;
        if code == 0 {
            bail!(
                "curl {method} {path} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok((code, body.to_string()))
    }
}

impl Server {
    /// `keelson SUBCOMMAND --kubeconfig ...` (controller-manager, scheduler) against this
    /// server, logging to the test's stderr with `tag`; killed on drop.
    pub fn start_component(
        &self,
        subcommand: &str,
        tag: &str,
        extra_args: &[&str],
    ) -> Result<Component> {
        Component::spawn(
            tag,
            Command::new(env!("CARGO_BIN_EXE_keelson"))
                .arg(subcommand)
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .args(["--health-address", "127.0.0.1:0"])
                .args(extra_args),
        )
    }

    pub fn start_controller_manager(&self, tag: &str, extra_args: &[&str]) -> Result<Component> {
        self.start_component("controller-manager", tag, extra_args)
    }

    pub fn start_scheduler(&self, tag: &str, extra_args: &[&str]) -> Result<Component> {
        self.start_component("scheduler", tag, extra_args)
    }
}

/// A Keelson component other than the API server, running as its own process.
pub struct Component {
    child: Child,
}

impl Component {
    pub fn spawn(tag: &str, command: &mut Command) -> Result<Component> {
        let mut child = command
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {tag}"))?;
        let stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
        let tag = tag.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr)
                .lines()
                .map_while(std::result::Result::ok)
            {
                eprintln!("[{tag}] {line}");
            }
        });
        Ok(Component { child })
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Component {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Who a raw request is made as.
pub enum Auth<'a> {
    AdminCert,
    Bearer(&'a str),
    Anonymous,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `f` until it returns Some, or fails after `timeout`.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("condition not met within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One member of a test's own etcd (Debian's etcd-server, installed by scripts/setup.sh) on
/// free loopback ports, killed on drop. A missing binary fails the test.
pub struct Etcd {
    dir: tempfile::TempDir,
    child: Option<Child>,
    name: String,
    pub url: String,
    client_port: u16,
    peer_url: String,
    initial_cluster: String,
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

const ETCD: &str = "/usr/bin/etcd";

impl Etcd {
    /// A one-member etcd, answering.
    pub fn start() -> Result<Etcd> {
        let mut cluster = EtcdCluster::start(1)?;
        Ok(cluster.members.remove(0))
    }

    fn new(name: &str) -> Result<Etcd> {
        if !Path::new(ETCD).exists() {
            bail!("{ETCD} is missing: run scripts/setup.sh");
        }
        let (client_port, peer_port) = (free_port()?, free_port()?);
        Ok(Etcd {
            dir: tempfile::tempdir()?,
            child: None,
            name: name.to_string(),
            url: format!("http://127.0.0.1:{client_port}"),
            client_port,
            peer_url: format!("http://127.0.0.1:{peer_port}"),
            initial_cluster: String::new(),
        })
    }

    fn spawn(&mut self) -> Result<()> {
        let child = Command::new(ETCD)
            .args(["--name", &self.name, "--data-dir"])
            .arg(self.dir.path().join("etcd"))
            .args(["--listen-client-urls", &self.url])
            .args(["--advertise-client-urls", &self.url])
            .args(["--listen-peer-urls", &self.peer_url])
            .args(["--initial-advertise-peer-urls", &self.peer_url])
            .args(["--initial-cluster", &self.initial_cluster])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        Ok(())
    }

    fn wait_listening(&self) -> Result<()> {
        wait_for(Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", self.client_port)).ok()
        })?;
        Ok(())
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same ports and data.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.spawn()?;
        self.wait_listening()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An etcd cluster of several members on loopback.
pub struct EtcdCluster {
    pub members: Vec<Etcd>,
}

impl EtcdCluster {
    pub fn start(size: usize) -> Result<EtcdCluster> {
        let mut members = (0..size)
            .map(|i| Etcd::new(&format!("member{i}")))
            .collect::<Result<Vec<_>>>()?;
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url))
            .collect::<Vec<_>>()
            .join(",");
        for member in &mut members {
            member.initial_cluster = initial_cluster.clone();
            member.spawn()?;
        }
        for member in &members {
            member.wait_listening()?;
        }
        Ok(EtcdCluster { members })
    }

    /// The client URLs, as `--etcd-servers` takes them.
    pub fn urls(&self) -> String {
        self.members
            .iter()
            .map(|m| m.url.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The index of the member that is the raft leader now, asked of etcd itself.
    pub fn leader(&self) -> Result<usize> {
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args([
                "--endpoints",
                &self.urls(),
                "endpoint",
                "status",
                "-w",
                "json",
            ])
            .output()
            .context("running etcdctl (scripts/setup.sh installs etcd-client)")?;
        let statuses: serde_json::Value = serde_json::from_slice(&out.stdout)
            .with_context(|| String::from_utf8_lossy(&out.stderr).into_owned())?;
        let statuses = statuses.as_array().ok_or_else(|| anyhow!("{statuses}"))?;
        for s in statuses {
            let member = &s["Status"]["header"]["member_id"];
            if !member.is_null() && *member == s["Status"]["leader"] {
                let endpoint = s["Endpoint"].as_str().unwrap_or_default();
                return self
                    .members
                    .iter()
                    .position(|m| m.url == endpoint)
                    .ok_or_else(|| anyhow!("unknown endpoint {endpoint}"));
            }
        }
        bail!("no leader among {statuses:?}")
    }
}

/// Polls the async `f` until it returns Some, or fails after `timeout`.
pub async fn wait_for_async<T, F, Fut>(timeout: Duration, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("condition not met within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
