//! Pod networking through the real CNI plugins (containernetworking-plugins in
//! /usr/lib/cni). Needs root. Every test uses its own bridge and a private /24 of
//! 10.213.0.0/16 that no route on the host touches yet, and only talks to addresses in
//! that subnet (inside network namespaces the test created, or the bridge's gateway).

use std::collections::HashSet;
use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use keelson_kubelet::network::{Cni, NetworkConfig, NetworkError};

const PLUGIN_DIR: &str = "/usr/lib/cni";

static TAKEN: Mutex<Option<HashSet<u8>>> = Mutex::new(None);

fn runnable() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let plugins = ["bridge", "host-local", "loopback"]
        .iter()
        .all(|p| Path::new(PLUGIN_DIR).join(p).exists());
    // The set-up script installs the plugins and CI runs as root: a missing one is a
    // failure, not a skip.
    assert!(root, "the network tests must run as root");
    assert!(
        plugins,
        "the CNI plugins are missing from {PLUGIN_DIR}: run scripts/setup.sh"
    );
    true
}

fn ip_cmd() -> &'static str {
    if Path::new("/usr/sbin/ip").exists() {
        "/usr/sbin/ip"
    } else {
        "/sbin/ip"
    }
}

/// A third octet X such that nothing on the host uses 10.213.X.0/24 yet.
fn free_block() -> u8 {
    let out = |args: &[&str]| {
        let o = Command::new(ip_cmd()).args(args).output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let used = out(&["-4", "route", "show", "table", "all"]) + &out(&["-4", "addr"]);
    let seed = std::process::id()
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
    let mut taken = TAKEN.lock().unwrap();
    let taken = taken.get_or_insert_with(HashSet::new);
    for i in 0..256u32 {
        let x = ((seed + i) % 256) as u8;
        if !taken.contains(&x) && !used.contains(&format!("10.213.{x}.")) {
            taken.insert(x);
            return x;
        }
    }
    panic!("no free 10.213.X.0/24 on this host");
}

/// One test's network: its own bridge, subnet and state; cleaned up on drop, even when
/// the test fails.
struct TestNet {
    cni: Cni,
    config: NetworkConfig,
    block: String,
    _state: tempfile::TempDir,
    _netns: tempfile::TempDir,
}

impl TestNet {
    fn new(prefix_len: u8) -> TestNet {
        let x = free_block();
        let state = tempfile::tempdir().unwrap();
        let netns = tempfile::tempdir().unwrap();
        let config = NetworkConfig {
            bridge: format!("kt{:04x}{x:02x}", std::process::id() & 0xffff),
            subnet: format!("10.213.{x}.0/{prefix_len}"),
            plugin_dir: PathBuf::from(PLUGIN_DIR),
            state_dir: state.path().join("cni"),
            netns_dir: netns.path().join("netns"),
        };
        TestNet {
            cni: Cni::new(config.clone()),
            config,
            block: format!("10.213.{x}."),
            _state: state,
            _netns: netns,
        }
    }

    /// The addresses host-local has handed out (its reservation files).
    fn reserved(&self) -> Vec<String> {
        let dir = self.config.state_dir.join("keelson");
        let mut ips: Vec<String> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|name| name.starts_with(&self.block))
                    .collect()
            })
            .unwrap_or_default();
        ips.sort();
        ips
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(&self.config.netns_dir) {
            for entry in entries.flatten() {
                let _ = Command::new("umount").arg("-l").arg(entry.path()).status();
            }
        }
        let _ = Command::new(ip_cmd())
            .args(["link", "del", &self.config.bridge])
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs a command inside a network namespace (by its mounted path).
fn in_netns(netns: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net={}", netns.display())).args(args);
    cmd
}

fn ping_ok(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[tokio::test]
async fn pods_get_addresses_reach_each_other_and_are_torn_down() {
    if !runnable() {
        return;
    }
    let net = TestNet::new(24);
    let cni = &net.cni;

    let a = cni.setup("default/pod-a").await.expect("setup a");
    let b = cni.setup("default/pod-b").await.expect("setup b");
    assert_ne!(a.ip, b.ip);
    for pod in [&a, &b] {
        assert!(pod.ip.starts_with(&net.block), "{} outside subnet", pod.ip);
        assert_eq!(pod.gateway.as_deref(), Some(&*format!("{}1", net.block)));
        assert!(pod.netns_path.starts_with(&net.config.netns_dir));
        assert!(pod.netns_path.exists());
    }
    assert_ne!(a.netns_path, b.netns_path);
    assert_eq!(net.reserved().len(), 2);

    // The pod sees its address on eth0, and lo is up.
    let addr = in_netns(&a.netns_path, &[ip_cmd(), "-4", "addr", "show"])
        .output()
        .unwrap();
    let addr = String::from_utf8_lossy(&addr.stdout);
    assert!(addr.contains(&format!("inet {}/24", a.ip)), "{addr}");
    assert!(addr.contains("eth0"), "{addr}");
    assert!(addr.contains("inet 127.0.0.1/8"), "{addr}");

    // Pod A reaches pod B, and the host reaches both through the bridge.
    assert!(
        ping_ok(&mut in_netns(
            &a.netns_path,
            &["busybox", "ping", "-c1", "-W2", &b.ip]
        )),
        "pod a cannot ping pod b"
    );
    assert!(
        ping_ok(Command::new("busybox").args(["ping", "-c1", "-W2", &a.ip])),
        "host cannot ping pod a"
    );

    // TCP from the host to a listener in pod B's namespace.
    let mut listener = in_netns(
        &b.netns_path,
        &["sh", "-c", "echo pong | busybox nc -l -p 7070"],
    )
    .stdout(Stdio::null())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let reply = loop {
        match TcpStream::connect_timeout(
            &format!("{}:7070", b.ip).parse().unwrap(),
            Duration::from_secs(1),
        ) {
            Ok(mut stream) => {
                let mut s = String::new();
                stream
                    .set_read_timeout(Some(Duration::from_secs(2)))
                    .unwrap();
                let _ = stream.read_to_string(&mut s);
                break s;
            }
            Err(e) if Instant::now() > deadline => panic!("connect to pod b: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let _ = listener.kill();
    let _ = listener.wait();
    assert_eq!(reply.trim(), "pong");

    // Setting up again returns the same network; a restarted kubelet adopts it.
    assert_eq!(cni.setup("default/pod-a").await.unwrap(), a);
    let restarted = Cni::new(net.config.clone());
    assert_eq!(restarted.status("default/pod-a").await, Some(a.clone()));
    assert_eq!(restarted.status("default/pod-b").await, Some(b.clone()));
    assert_eq!(restarted.status("default/never").await, None);
    assert_eq!(
        restarted.recorded_pods().await,
        vec!["default/pod-a".to_string(), "default/pod-b".to_string()]
    );

    // Teardown (by the restarted instance) removes the namespace and frees the address.
    restarted
        .teardown("default/pod-a")
        .await
        .expect("teardown a");
    assert!(!a.netns_path.exists());
    assert_eq!(cni.status("default/pod-a").await, None);
    assert_eq!(net.reserved(), vec![b.ip.clone()]);
    assert!(
        !ping_ok(Command::new("busybox").args(["ping", "-c1", "-W1", &a.ip])),
        "pod a still answers after teardown"
    );
    restarted
        .teardown("default/pod-a")
        .await
        .expect("teardown twice");
    cni.teardown("default/never-set-up")
        .await
        .expect("teardown of an unknown pod");

    // B is untouched.
    assert!(ping_ok(
        Command::new("busybox").args(["ping", "-c1", "-W2", &b.ip])
    ));

    cni.teardown("default/pod-b").await.unwrap();
    assert!(!b.netns_path.exists());
    assert!(net.reserved().is_empty());
    assert!(cni.recorded_pods().await.is_empty());
}

#[tokio::test]
async fn exhausted_range_fails_with_the_plugin_error_and_freed_addresses_are_reused() {
    if !runnable() {
        return;
    }
    // A /30 leaves host-local exactly one address for pods (.1 is the gateway).
    let net = TestNet::new(30);
    let cni = &net.cni;
    let first = cni.setup("ns/first").await.expect("setup first");
    assert_eq!(first.ip, format!("{}2", net.block));

    let err = cni
        .setup("ns/second")
        .await
        .expect_err("range is exhausted");
    match &err {
        NetworkError::Plugin {
            plugin,
            command,
            code,
            msg,
            ..
        } => {
            assert_eq!((plugin.as_str(), command.as_str()), ("bridge", "ADD"));
            assert_ne!(*code, 0);
            assert!(msg.contains("no IP addresses available"), "{msg}");
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(err.to_string().contains("no IP addresses available"));
    // The failed setup left nothing behind.
    assert_eq!(cni.status("ns/second").await, None);
    assert!(!cni.netns_path("ns/second").unwrap().exists());
    assert_eq!(net.reserved(), vec![first.ip.clone()]);

    cni.teardown("ns/first").await.unwrap();
    let second = cni.setup("ns/second").await.expect("setup after release");
    assert_eq!(second.ip, first.ip, "the freed address is reused");
    assert!(ping_ok(
        Command::new("busybox").args(["ping", "-c1", "-W2", &second.ip])
    ));
    cni.teardown("ns/second").await.unwrap();
    cni.teardown("ns/second").await.unwrap();
    assert!(net.reserved().is_empty());
}

#[tokio::test]
async fn bad_configuration_is_reported_without_leaving_a_namespace() {
    let netns = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let config = NetworkConfig {
        bridge: "kt-invalid".into(),
        subnet: "not-a-cidr".into(),
        plugin_dir: PathBuf::from(PLUGIN_DIR),
        state_dir: state.path().to_path_buf(),
        netns_dir: netns.path().join("netns"),
    };
    let err = Cni::new(config.clone()).setup("ns/p").await.unwrap_err();
    assert!(matches!(err, NetworkError::Config(_)), "{err}");
    let err = Cni::new(NetworkConfig {
        bridge: "a-name-longer-than-15".into(),
        subnet: "10.213.0.0/24".into(),
        ..config.clone()
    })
    .setup("ns/p")
    .await
    .unwrap_err();
    assert!(matches!(err, NetworkError::Config(_)), "{err}");
    assert!(Cni::new(config.clone()).setup("").await.is_err());

    // Missing plugins: the namespace that was created for the pod is removed again.
    if !runnable() {
        return;
    }
    let empty = tempfile::tempdir().unwrap();
    let cni = Cni::new(NetworkConfig {
        subnet: "10.213.0.0/24".into(),
        plugin_dir: empty.path().to_path_buf(),
        ..config
    });
    let err = cni.setup("ns/p").await.unwrap_err();
    assert!(
        matches!(&err, NetworkError::Exec { plugin, .. } if plugin == "loopback"),
        "{err}"
    );
    assert!(!cni.netns_path("ns/p").unwrap().exists());
    assert_eq!(cni.status("ns/p").await, None);
}
