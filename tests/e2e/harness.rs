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
}

impl Server {
    /// A fresh server on a free port.
    pub fn start() -> Result<Server> {
        Server::start_with(&[])
    }

    /// A fresh server with extra command-line flags.
    pub fn start_with(extra_args: &[String]) -> Result<Server> {
        let dir = tempfile::tempdir()?;
        let kubeconfig = dir.path().join("admin.kubeconfig");
        let mut server = Server {
            dir,
            port: 0,
            child: None,
            kubeconfig,
            ready_after: Duration::ZERO,
            extra_args: extra_args.to_vec(),
        };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> Result<()> {
        let _ = std::fs::remove_file(&self.kubeconfig);
        let started = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_keelson"))
            .args([
                "apiserver",
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
        std::thread::spawn(move || {
            for line in BufReader::new(stderr)
                .lines()
                .map_while(std::result::Result::ok)
            {
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
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig)?;
        let config =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await?;
        Ok(kube::Client::try_from(config)?)
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

/// A test's own etcd (Debian's etcd-server, installed by scripts/setup.sh) on free loopback
/// ports, killed on drop. A missing binary fails the test.
pub struct Etcd {
    _dir: tempfile::TempDir,
    child: Child,
    pub url: String,
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Etcd {
    pub fn start() -> Result<Etcd> {
        let bin = Path::new("/usr/bin/etcd");
        if !bin.exists() {
            bail!("/usr/bin/etcd is missing: run scripts/setup.sh");
        }
        let dir = tempfile::tempdir()?;
        let (client, peer) = (free_port()?, free_port()?);
        let url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let child = Command::new(bin)
            .arg("--data-dir")
            .arg(dir.path().join("etcd"))
            .args([
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
            ])
            .args([
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
            ])
            .args(["--initial-cluster", &format!("default={peer_url}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let etcd = Etcd {
            _dir: dir,
            child,
            url,
        };
        wait_for(Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", client)).ok()
        })?;
        Ok(etcd)
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
