//! A test's own etcd: `/usr/bin/etcd` (Debian's etcd-server, installed by scripts/setup.sh)
//! on free loopback ports, with its data in a temporary directory, killed on drop.
//!
//! Set `KEELSON_ETCD_BIN` to use another binary. A missing binary fails the test (with a
//! message saying to run scripts/setup.sh); it is never skipped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keelson_storage::{EtcdOptions, EtcdStore, EtcdTls, Store};

/// Server-side TLS of a test etcd: files etcd reads, and what a client needs.
pub struct ServerTls {
    pub ca_pem: String,
    /// The client certificate the fixture's own readiness checks (and `options()`) use.
    pub client_cert_pem: String,
    pub client_key_pem: String,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub ca_file: PathBuf,
}

pub struct EtcdServer {
    dir: tempfile::TempDir,
    pub client_port: u16,
    peer_port: u16,
    child: Option<Child>,
    tls: Option<ServerTls>,
}

fn etcd_bin() -> PathBuf {
    let bin = std::env::var_os("KEELSON_ETCD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/etcd"));
    assert!(
        bin.exists(),
        "{} not found: the etcd tests need etcd 3.4+; run scripts/setup.sh (it installs \
         Debian's etcd-server), or point KEELSON_ETCD_BIN at an etcd binary",
        bin.display()
    );
    bin
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

impl EtcdServer {
    /// Starts a fresh etcd and waits until it serves.
    pub async fn start() -> EtcdServer {
        Self::start_inner(None).await
    }

    /// Starts a fresh etcd that serves clients over TLS only and requires client
    /// certificates signed by `tls`'s CA.
    pub async fn start_tls(tls: ServerTls) -> EtcdServer {
        Self::start_inner(Some(tls)).await
    }

    async fn start_inner(tls: Option<ServerTls>) -> EtcdServer {
        let bin = etcd_bin();
        let mut server = EtcdServer {
            dir: tempfile::tempdir().expect("temporary directory"),
            client_port: 0,
            peer_port: 0,
            child: None,
            tls,
        };
        // Another process may take a port between our probe and etcd's bind: retry with
        // new ports (the data directory is only created by a successful start).
        for attempt in 0.. {
            server.client_port = free_port();
            server.peer_port = free_port();
            if server.client_port == server.peer_port {
                continue;
            }
            server.spawn(&bin);
            match server.wait_ready().await {
                Ok(()) => return server,
                Err(why) if attempt < 3 => {
                    eprintln!("etcd did not start ({why}); retrying on other ports");
                    server.kill();
                    let _ = std::fs::remove_dir_all(server.data_dir());
                }
                Err(why) => panic!("etcd did not start: {why}\n{}", server.log_tail()),
            }
        }
        unreachable!()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The client URL.
    pub fn url(&self) -> String {
        self.url_on(self.client_port)
    }

    fn url_on(&self, port: u16) -> String {
        format!("{}://127.0.0.1:{port}", self.scheme())
    }

    /// Options for a store on this etcd: request timeout of 5 s, no key prefix, the
    /// fixture's client certificate if it has TLS.
    pub fn options(&self) -> EtcdOptions {
        let mut opts = EtcdOptions::new([self.url()]);
        opts.request_timeout = Duration::from_secs(5);
        opts.tls = self.client_tls();
        opts
    }

    pub async fn store(&self) -> Arc<EtcdStore> {
        EtcdStore::connect(self.options())
            .await
            .expect("connect to etcd")
    }

    fn spawn(&mut self, bin: &Path) {
        self.spawn_on(bin, self.client_port);
    }

    fn spawn_on(&mut self, bin: &Path, client_port: u16) {
        assert!(self.child.is_none(), "etcd is already running");
        let client = self.url_on(client_port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("etcd.log"))
            .expect("etcd log file");
        let mut cmd = Command::new(bin);
        cmd.arg("--name")
            .arg("default")
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--listen-client-urls")
            .arg(&client)
            .arg("--advertise-client-urls")
            .arg(&client)
            .arg("--listen-peer-urls")
            .arg(&peer)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer)
            .arg("--initial-cluster")
            .arg(format!("default={peer}"))
            .arg("--logger")
            .arg("zap")
            .arg("--log-outputs")
            .arg("stderr");
        if let Some(tls) = &self.tls {
            cmd.arg("--cert-file")
                .arg(&tls.cert_file)
                .arg("--key-file")
                .arg(&tls.key_file)
                .arg("--trusted-ca-file")
                .arg(&tls.ca_file)
                .arg("--client-cert-auth");
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("etcd log file"))
            .stderr(log);
        // If the test process dies without running our Drop (killed on a timeout), the
        // kernel kills etcd with it.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        self.child = Some(child);
    }

    /// Waits until etcd answers a linearizable read (so it has a leader), or fails.
    async fn wait_ready(&mut self) -> Result<(), String> {
        self.wait_ready_on(self.client_port).await
    }

    async fn wait_ready_on(&mut self, port: u16) -> Result<(), String> {
        let mut opts = self.options();
        opts.endpoints = vec![self.url_on(port)];
        opts.request_timeout = Duration::from_secs(1);
        let store = EtcdStore::connect(opts)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(format!("etcd exited: {status}"));
                }
            }
            match store.current_revision().await {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    return Err(format!("not serving after 30 s: {e}"))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// The client side of this etcd's TLS, when it has TLS.
    pub fn client_tls(&self) -> Option<EtcdTls> {
        let tls = self.tls.as_ref()?;
        Some(EtcdTls {
            ca_pem: Some(tls.ca_pem.clone().into_bytes()),
            client_cert_pem: Some(tls.client_cert_pem.clone().into_bytes()),
            client_key_pem: Some(tls.client_key_pem.clone().into_bytes()),
            domain_name: None,
        })
    }

    /// SIGKILLs etcd (as a crash would) and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) etcd: connections stay open, nothing answers.
    pub fn freeze(&self, frozen: bool) {
        let child = self.child.as_ref().expect("etcd is not running");
        let signal = if frozen { libc::SIGSTOP } else { libc::SIGCONT };
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "cannot signal etcd");
    }

    /// Starts etcd again on the same data directory and ports, and waits until it serves.
    pub async fn restart(&mut self) {
        self.restart_on(self.client_port).await;
    }

    /// Starts etcd again on the same data directory and peer port but serving clients on
    /// `client_port` (so that clients of the usual port cannot reach it meanwhile).
    pub async fn restart_on(&mut self, client_port: u16) {
        let bin = etcd_bin();
        // The old process's port may linger a moment; retry a few times.
        for attempt in 0.. {
            self.spawn_on(&bin, client_port);
            match self.wait_ready_on(client_port).await {
                Ok(()) => return,
                Err(why) if attempt < 5 => {
                    eprintln!("etcd did not restart ({why}); retrying");
                    self.kill();
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(why) => panic!("etcd did not restart: {why}\n{}", self.log_tail()),
            }
        }
    }

    /// Another free port, for [`Self::restart_on`].
    pub fn other_port(&self) -> u16 {
        loop {
            let p = free_port();
            if p != self.client_port && p != self.peer_port {
                return p;
            }
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_ref() {
            // A frozen etcd must be thawed to die promptly on some kernels; harmless otherwise.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGCONT) };
        }
        self.kill();
    }
}
