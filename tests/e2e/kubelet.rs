//! `keelson server` with its kubelet running real containers on containerd (as root): pods
//! from `kubectl apply` run, answer on their IPs, complete, crash-loop, follow their probes,
//! hit memory limits, stop gracefully, and survive a restart of the server.
//!
//! `keelson server` binds fixed health ports and one bridge, so these tests run one at a
//! time (nextest test group `node`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde_json::Value;

use crate::harness::{wait_for_async, Server};

const IMAGE: &str = "keelson.test/busybox:1";
const KUBECTL: &str = "1.37";

/// A whole cluster on this host, with the busybox test image imported.
struct Node {
    // Dropped first: the cleanup needs the data dir the server's TempDir removes.
    _kubelet: KubeletDir,
    server: Server,
}

/// A kubelet's root dir. The kubelet's containerd outlives the kubelet on purpose (as a
/// node's does); on drop its containers and it are stopped and the pod network
/// namespaces freed.
struct KubeletDir(PathBuf);

impl KubeletDir {
    fn socket(&self) -> PathBuf {
        self.0.join("containerd/containerd.sock")
    }

    fn import_image(&self) -> Result<()> {
        let dir = self.0.join("images");
        std::fs::create_dir_all(&dir)?;
        let tarball = keelson_kubelet::runtime::image::build_busybox_image(&dir, IMAGE)?;
        // Without a socket, `image import` starts the kubelet's containerd under ROOT_DIR.
        let out = Command::new(env!("CARGO_BIN_EXE_keelson"))
            .args(["image", "import"])
            .arg(&tarball)
            .arg("--root-dir")
            .arg(&self.0)
            .output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !stdout.contains(IMAGE) {
            bail!(
                "keelson image import failed: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }
}

impl Node {
    async fn start() -> Result<Node> {
        let server = Server::start_all_in_one(&[
            "--pod-cidr".into(),
            "10.250.0.0/24".into(),
            "--cni-bridge".into(),
            "keelsone2e0".into(),
        ])?;
        let kubelet = KubeletDir(server.dir.path().join("kubelet"));
        let node = Node {
            _kubelet: kubelet,
            server,
        };
        let client = node.server.client().await?;
        let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client);
        wait_for_async(Duration::from_secs(60), || {
            let nodes = nodes.clone();
            async move {
                let list = nodes.list(&ListParams::default()).await.ok()?;
                list.items.into_iter().find(|n| {
                    n.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
                })
            }
        })
        .await
        .context("the kubelet registered no Ready node")?;
        node._kubelet.import_image()?;
        Ok(node)
    }

    fn data_dir(&self) -> &Path {
        self.server.dir.path()
    }

    fn apply(&self, yaml: &str) -> Result<String> {
        self.server
            .kubectl_stdin(KUBECTL, &["apply", "-f", "-"], yaml)
    }

    async fn pods(&self) -> Result<Api<Pod>> {
        Ok(Api::namespaced(self.server.client().await?, "default"))
    }

    /// Waits until the pod's status (as JSON) satisfies `check`.
    async fn wait_pod(
        &self,
        name: &str,
        timeout: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let pods = self.pods().await?;
        let last = std::sync::Mutex::new(Value::Null);
        let result = wait_for_async(timeout, || {
            let pods = pods.clone();
            let check = &check;
            let last = &last;
            async move {
                let pod = pods.get(name).await.ok()?;
                let v = serde_json::to_value(&pod).ok()?;
                if let Ok(mut l) = last.lock() {
                    *l = v["status"].clone();
                }
                check(&v).then_some(v)
            }
        })
        .await;
        result.with_context(|| {
            format!(
                "pod {name}: last status {}",
                last.lock().map(|l| l.to_string()).unwrap_or_default()
            )
        })
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.server.kill();
    }
}

impl Drop for KubeletDir {
    fn drop(&mut self) {
        let socket = self.socket();
        let ctr = |args: &[&str]| {
            Command::new("ctr")
                .arg("--address")
                .arg(&socket)
                .args(["--namespace", "keelson"])
                .args(args)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        let tasks = ctr(&["tasks", "list", "--quiet"]);
        for id in tasks.lines() {
            ctr(&["tasks", "kill", "--all", "--signal", "SIGKILL", id]);
        }
        std::thread::sleep(Duration::from_millis(300));
        for id in tasks.lines() {
            ctr(&["tasks", "delete", "--force", id]);
        }
        let _ = Command::new("pkill")
            .arg("-f")
            .arg(format!(
                "containerd-shim-runc-v2 .*-address {}",
                socket.display()
            ))
            .status();
        let containerd_dir = self.0.join("containerd");
        let _ = Command::new("pkill")
            .arg("-f")
            .arg(format!("containerd --config {}", containerd_dir.display()))
            .status();
        let records = self.0.join("cni/pods");
        for entry in std::fs::read_dir(records).into_iter().flatten().flatten() {
            let record: Value = std::fs::read(entry.path())
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or(Value::Null);
            if let Some(netns) = record["network"]["netns_path"].as_str() {
                let _ = Command::new("umount").arg(netns).status();
                let _ = std::fs::remove_file(netns);
            }
        }
    }
}

fn http_get(ip: &str, port: u16) -> Result<String> {
    let addr: std::net::SocketAddr = format!("{ip}:{port}").parse()?;
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET / HTTP/1.0\r\nHost: {ip}\r\nConnection: close\r\n\r\n"
    )?;
    let mut body = String::new();
    stream.read_to_string(&mut body)?;
    Ok(body)
}

/// A busybox pod running `script`, with the host folder `dir` mounted at /shared.
fn shared_dir_pod(name: &str, script: &str, dir: &Path) -> String {
    let pod = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "main",
                "image": IMAGE,
                "command": ["sh", "-c", script],
                "volumeMounts": [{"name": "shared", "mountPath": "/shared"}],
            }],
            "volumes": [{"name": "shared", "hostPath": {"path": dir}}],
        },
    });
    pod.to_string()
}

fn container_state<'a>(pod: &'a Value, name: &str) -> &'a Value {
    pod["status"]["containerStatuses"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or(&Value::Null)
}

fn condition(pod: &Value, type_: &str) -> String {
    pod["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .and_then(|c| c["status"].as_str())
        .unwrap_or("")
        .to_string()
}

const HTTPD_DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: httpd
        image: keelson.test/busybox:1
        command: ["sh", "-c", "mkdir -p /www && echo hello from $(hostname) > /www/index.html && exec httpd -f -p 8080 -h /www"]
        ports:
        - containerPort: 8080
        readinessProbe:
          httpGet:
            path: /
            port: 8080
          periodSeconds: 1
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_of_busybox_httpd_serves_on_its_pod_ips() -> Result<()> {
    let node = Node::start().await?;
    node.apply(HTTPD_DEPLOYMENT)?;
    node.server.kubectl_ok(
        KUBECTL,
        &["rollout", "status", "deployment/web", "--timeout=90s"],
    )?;
    let pods = node.pods().await?;
    let list = pods.list(&ListParams::default().labels("app=web")).await?;
    assert_eq!(list.items.len(), 3);
    let mut ips = Vec::new();
    for pod in &list.items {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let status = pod.status.clone().unwrap_or_default();
        assert_eq!(status.phase.as_deref(), Some("Running"), "{name}");
        let ip = status.pod_ip.clone().context("no pod IP")?;
        assert!(ip.starts_with("10.250.0."), "{ip}");
        let body = http_get(&ip, 8080)?;
        assert!(
            body.contains(&format!("hello from {name}")),
            "{name} answered {body}"
        );
        ips.push(ip);
    }
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 3, "each pod has its own IP");

    let wide = node
        .server
        .kubectl_ok(KUBECTL, &["get", "pods", "-o", "wide", "-l", "app=web"])?;
    let header = wide.lines().next().unwrap_or_default();
    for column in ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"] {
        assert!(header.contains(column), "{wide}");
    }
    for ip in &ips {
        assert!(wide.contains(ip.as_str()), "{wide}");
    }
    let node_name = std::fs::read_to_string("/proc/sys/kernel/hostname")?
        .trim()
        .to_lowercase();
    for line in wide.lines().skip(1) {
        assert!(line.contains("1/1") && line.contains("Running"), "{line}");
        assert!(line.contains(&node_name), "{line}");
    }
    Ok(())
}

const LIFECYCLE_PODS: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
data:
  greeting: hello
---
apiVersion: v1
kind: Pod
metadata:
  name: done
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: keelson.test/busybox:1
    command: ["sh", "-c", "echo finished; echo oops >&2; exit 0"]
---
apiVersion: v1
kind: Pod
metadata:
  name: badimage
spec:
  containers:
  - name: main
    image: 127.0.0.1:9/missing:1
---
apiVersion: v1
kind: Pod
metadata:
  name: fails
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: keelson.test/busybox:1
    command: ["sh", "-c", "exit 3"]
---
apiVersion: v1
kind: Pod
metadata:
  name: crasher
spec:
  containers:
  - name: main
    image: keelson.test/busybox:1
    command: ["sh", "-c", "exit 1"]
---
apiVersion: v1
kind: Pod
metadata:
  name: liveness
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: keelson.test/busybox:1
    command: ["sh", "-c", "touch /tmp/healthy; sleep 3; rm /tmp/healthy; sleep 600"]
    livenessProbe:
      exec:
        command: ["cat", "/tmp/healthy"]
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: Pod
metadata:
  name: unready
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: keelson.test/busybox:1
    command: ["sleep", "600"]
    readinessProbe:
      exec:
        command: ["false"]
      periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata:
  name: initialized
spec:
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: first
    image: keelson.test/busybox:1
    command: ["sh", "-c", "echo init-ran > /work/order"]
    volumeMounts:
    - name: work
      mountPath: /work
  containers:
  - name: main
    image: keelson.test/busybox:1
    command: ["sleep", "600"]
    env:
    - name: GREETING
      valueFrom:
        configMapKeyRef:
          name: cfg
          key: greeting
    volumeMounts:
    - name: work
      mountPath: /work
    - name: cfg
      mountPath: /etc/cfg
    readinessProbe:
      exec:
        command: ["sh", "-c", "grep -q init-ran /work/order && test \"$GREETING\" = hello && grep -q hello /etc/cfg/greeting"]
      periodSeconds: 1
  volumes:
  - name: work
    emptyDir: {}
  - name: cfg
    configMap:
      name: cfg
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_complete_fail_crash_loop_and_follow_their_probes() -> Result<()> {
    let node = Node::start().await?;
    node.apply(LIFECYCLE_PODS)?;
    let minute = Duration::from_secs(60);

    let done = node
        .wait_pod("done", minute, |p| p["status"]["phase"] == "Succeeded")
        .await?;
    let term = &container_state(&done, "main")["state"]["terminated"];
    assert_eq!(term["reason"], "Completed");
    assert_eq!(term["exitCode"], 0);
    // The container's output is in its log file, in the CRI format.
    let uid = done["metadata"]["uid"].as_str().unwrap_or_default();
    let log = node
        .data_dir()
        .join(format!("kubelet/logs/default_done_{uid}/main/0.log"));
    // The logger process writes on its own schedule: give it a moment after the exit.
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.lines().count() >= 2 || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(text.lines().count(), 2, "{text}");
    // stdout and stderr are two pipes: their lines may land in either order.
    let mut records: Vec<Vec<&str>> = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(4, ' ');
        let time = parts.next().unwrap_or_default();
        assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{line}");
        records.push(parts.collect());
    }
    records.sort();
    assert_eq!(
        records,
        vec![vec!["stderr", "F", "oops"], vec!["stdout", "F", "finished"]],
        "{text}"
    );

    // An image no registry serves: ErrImagePull, then ImagePullBackOff.
    node.wait_pod("badimage", minute, |p| {
        let reason = &container_state(p, "main")["state"]["waiting"]["reason"];
        reason == "ErrImagePull" || reason == "ImagePullBackOff"
    })
    .await?;

    let fails = node
        .wait_pod("fails", minute, |p| p["status"]["phase"] == "Failed")
        .await?;
    let term = &container_state(&fails, "main")["state"]["terminated"];
    assert_eq!(term["reason"], "Error");
    assert_eq!(term["exitCode"], 3);

    // Crash loop: CrashLoopBackOff is shown while restarts keep coming.
    let crasher = node
        .wait_pod("crasher", minute, |p| {
            container_state(p, "main")["state"]["waiting"]["reason"] == "CrashLoopBackOff"
                && container_state(p, "main")["restartCount"].as_i64() >= Some(1)
        })
        .await?;
    let first = container_state(&crasher, "main")["restartCount"]
        .as_i64()
        .unwrap_or(0);
    assert_eq!(
        container_state(&crasher, "main")["lastState"]["terminated"]["exitCode"],
        1
    );
    node.wait_pod("crasher", minute, |p| {
        container_state(p, "main")["restartCount"].as_i64() > Some(first)
    })
    .await?;

    // A failing liveness probe restarts the container.
    node.wait_pod("liveness", minute, |p| {
        container_state(p, "main")["restartCount"].as_i64() >= Some(1)
    })
    .await?;

    // A failing readiness probe: Running, never Ready.
    let unready = node
        .wait_pod("unready", minute, |p| {
            p["status"]["phase"] == "Running"
                && container_state(p, "main")["state"]["running"].is_object()
        })
        .await?;
    assert_eq!(condition(&unready, "Ready"), "False");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pods = node.pods().await?;
    let unready = serde_json::to_value(pods.get("unready").await?)?;
    assert_eq!(condition(&unready, "Ready"), "False");
    assert_eq!(container_state(&unready, "main")["ready"], false);

    // The init container ran first; the ConfigMap is visible as env and as a file
    // (the readiness probe checks all three inside the container).
    let init = node
        .wait_pod("initialized", minute, |p| condition(p, "Ready") == "True")
        .await?;
    assert_eq!(condition(&init, "Initialized"), "True");
    assert_eq!(
        init["status"]["initContainerStatuses"][0]["state"]["terminated"]["reason"],
        "Completed"
    );

    let events = node
        .server
        .kubectl_ok(KUBECTL, &["get", "events", "-o", "json"])?;
    let events: Value = serde_json::from_str(&events)?;
    let reasons: Vec<String> = events["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["reason"].as_str().map(str::to_string))
        .collect();
    for reason in [
        "Pulled",
        "Created",
        "Started",
        "BackOff",
        "Unhealthy",
        "Killing",
    ] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "no {reason} event in {reasons:?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_limit_is_enforced_and_reported_as_oom_killed() -> Result<()> {
    let node = Node::start().await?;
    node.apply(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: hog
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: keelson.test/busybox:1
    command: ["sh", "-c", "x=0123456789; while true; do x=$x$x; done"]
    resources:
      limits:
        memory: 32Mi
"#,
    )?;
    let hog = node
        .wait_pod("hog", Duration::from_secs(60), |p| {
            p["status"]["phase"] == "Failed"
        })
        .await?;
    let term = &container_state(&hog, "main")["state"]["terminated"];
    assert_eq!(term["reason"], "OOMKilled", "{term}");
    assert_eq!(term["exitCode"], 137);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_delete_stops_a_pod_with_sigterm_within_its_grace_period() -> Result<()> {
    let node = Node::start().await?;
    let shared = node.data_dir().join("shared");
    std::fs::create_dir_all(&shared)?;
    node.apply(&shared_dir_pod(
        "graceful",
        "trap 'echo TERM > /shared/signal; exit 0' TERM; echo up > /shared/up; while true; do sleep 0.2; done",
        &shared,
    ))?;
    node.wait_pod("graceful", Duration::from_secs(60), |p| {
        p["status"]["phase"] == "Running"
    })
    .await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !shared.join("up").exists() {
        assert!(
            Instant::now() < deadline,
            "the container never wrote /shared/up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let started = Instant::now();
    node.server
        .kubectl_ok(KUBECTL, &["delete", "pod", "graceful", "--grace-period=5"])?;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(6), "deletion took {took:?}");
    let signal = std::fs::read_to_string(shared.join("signal")).unwrap_or_default();
    assert_eq!(signal.trim(), "TERM", "the container did not get SIGTERM");
    let pods = node.pods().await?;
    assert!(pods.get_opt("graceful").await?.is_none());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_adopts_the_running_containers() -> Result<()> {
    let mut node = Node::start().await?;
    node.apply(HTTPD_DEPLOYMENT)?;
    node.server.kubectl_ok(
        KUBECTL,
        &["rollout", "status", "deployment/web", "--timeout=90s"],
    )?;
    let ids = |pods: &[Pod]| -> Vec<String> {
        let mut ids: Vec<String> = pods
            .iter()
            .filter_map(|p| {
                p.status.as_ref()?.container_statuses.as_ref()?[0]
                    .container_id
                    .clone()
            })
            .collect();
        ids.sort();
        ids
    };
    let before = node
        .pods()
        .await?
        .list(&ListParams::default().labels("app=web"))
        .await?
        .items;
    let before_ids = ids(&before);
    assert_eq!(before_ids.len(), 3);

    node.server.restart()?;
    // Give the restarted kubelet a few relists to (wrongly) restart anything.
    tokio::time::sleep(Duration::from_secs(5)).await;
    node.server.kubectl_ok(
        KUBECTL,
        &["rollout", "status", "deployment/web", "--timeout=60s"],
    )?;
    let after = node
        .pods()
        .await?
        .list(&ListParams::default().labels("app=web"))
        .await?
        .items;
    assert_eq!(ids(&after), before_ids);
    for pod in &after {
        let status = pod.status.clone().unwrap_or_default();
        let c = &status.container_statuses.unwrap_or_default()[0];
        assert_eq!(c.restart_count, 0);
        assert!(c.ready);
        let ip = status.pod_ip.clone().unwrap_or_default();
        assert!(http_get(&ip, 8080)?.contains("hello from"));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_pod_runs_without_the_api_server_and_is_mirrored_when_it_comes() -> Result<()> {
    let mut server = Server::start_with(&[])?;
    server.kill();
    let kubelet_dir = KubeletDir(server.dir.path().join("kubelet"));
    kubelet_dir.import_image()?;
    let manifests = server.dir.path().join("manifests");
    let shared = server.dir.path().join("static-shared");
    std::fs::create_dir_all(&manifests)?;
    std::fs::create_dir_all(&shared)?;
    std::fs::write(
        manifests.join("web.yaml"),
        shared_dir_pod(
            "static-web",
            "echo ran > /shared/ran; exec sleep 600",
            &shared,
        ),
    )?;
    let root = kubelet_dir.0.display().to_string();
    let manifest_path = manifests.display().to_string();
    let _kubelet = server.start_component(
        "kubelet",
        "kubelet",
        &[
            "--node-name",
            "static-node",
            "--root-dir",
            &root,
            "--pod-manifest-path",
            &manifest_path,
            "--pod-cidr",
            "10.250.0.0/24",
            "--cni-bridge",
            "keelsone2e0",
        ],
    )?;
    // No API server: the static pod runs anyway.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !shared.join("ran").exists() {
        assert!(
            Instant::now() < deadline,
            "the static pod did not run without the API server"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    server.restart()?;
    let pods: Api<Pod> = Api::namespaced(server.client().await?, "default");
    let mirror = wait_for_async(Duration::from_secs(60), || {
        let pods = pods.clone();
        async move {
            let pod = pods.get("static-web-static-node").await.ok()?;
            let running = pod.status.as_ref()?.phase.as_deref() == Some("Running");
            running.then_some(pod)
        }
    })
    .await
    .context("no Running mirror pod")?;
    let annotations = mirror.metadata.annotations.clone().unwrap_or_default();
    assert!(annotations.contains_key("kubernetes.io/config.mirror"));
    let owner = &mirror.metadata.owner_references.clone().unwrap_or_default()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Node", "static-node")
    );
    let out = server.kubectl_ok(KUBECTL, &["get", "pods", "-o", "wide"])?;
    assert!(
        out.lines()
            .any(|l| l.contains("static-web-static-node") && l.contains("Running")),
        "{out}"
    );
    // Deleting the mirror pod does not stop the static pod: the kubelet mirrors it again.
    server.kubectl_ok(
        KUBECTL,
        &["delete", "pod", "static-web-static-node", "--wait=false"],
    )?;
    let first_uid = mirror.metadata.uid.clone();
    wait_for_async(Duration::from_secs(30), || {
        let pods = pods.clone();
        let first_uid = first_uid.clone();
        async move {
            let pod = pods.get("static-web-static-node").await.ok()?;
            (pod.metadata.uid != first_uid && pod.metadata.deletion_timestamp.is_none())
                .then_some(())
        }
    })
    .await
    .context("the mirror pod was not created again")?;
    Ok(())
}

const SECURE_POD: &str = r#"
apiVersion: v1
kind: Secret
metadata:
  name: creds
data:
  password: czNjcmV0
---
apiVersion: v1
kind: Pod
metadata:
  name: secure
  labels:
    tier: backend
spec:
  terminationGracePeriodSeconds: 5
  securityContext:
    runAsUser: 1000
    runAsGroup: 3000
  containers:
  - name: main
    image: keelson.test/busybox:1
    command: ["sleep", "600"]
    securityContext:
      readOnlyRootFilesystem: true
    env:
    - name: POD_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    - name: TIER
      valueFrom:
        fieldRef:
          fieldPath: metadata.labels['tier']
    - name: POD_IP
      valueFrom:
        fieldRef:
          fieldPath: status.podIP
    volumeMounts:
    - name: creds
      mountPath: /creds
    - name: info
      mountPath: /info
    - name: scratch
      mountPath: /scratch
    - name: shared
      mountPath: /shared
    lifecycle:
      postStart:
        exec:
          command: ["sh", "-c", "echo started > /scratch/poststart"]
      preStop:
        exec:
          command: ["sh", "-c", "echo stopping > /shared/prestop"]
    startupProbe:
      exec:
        command: ["sh", "-c", "test -f /scratch/poststart"]
      periodSeconds: 1
    readinessProbe:
      exec:
        command:
        - sh
        - -c
        - >-
          test "$(id -u)" = 1000 && test "$(id -g)" = 3000 && ! touch /written 2>/dev/null &&
          test "$POD_NAME" = secure && test "$TIER" = backend && test -n "$POD_IP" &&
          grep -q s3cret /creds/password && grep -q 'tier="backend"' /info/labels &&
          test "$(hostname)" = secure
      periodSeconds: 1
  volumes:
  - name: creds
    secret:
      secretName: creds
  - name: info
    downwardAPI:
      items:
      - path: labels
        fieldRef:
          fieldPath: metadata.labels
  - name: scratch
    emptyDir: {}
  - name: shared
    hostPath:
      path: SHARED
"#;

/// The oldest kubectl drives a pod that checks from inside what the kubelet set up: user and
/// group, a read-only root, downward API env and files, a Secret volume, the host name, the
/// postStart hook (gating the startup probe); its preStop hook runs on deletion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_context_downward_api_secrets_and_hooks_with_kubectl_1_32() -> Result<()> {
    let node = Node::start().await?;
    let shared = node.data_dir().join("secure-shared");
    std::fs::create_dir_all(&shared)?;
    // The container runs as uid 1000 and writes here.
    std::fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o777))?;
    let yaml = SECURE_POD.replace("SHARED", &shared.display().to_string());
    node.server
        .kubectl_stdin("1.32", &["apply", "-f", "-"], &yaml)?;
    node.server.kubectl_ok(
        "1.32",
        &[
            "wait",
            "--for=condition=Ready",
            "pod/secure",
            "--timeout=60s",
        ],
    )?;
    let pods = node.pods().await?;
    let pod = serde_json::to_value(pods.get("secure").await?)?;
    assert_eq!(container_state(&pod, "main")["started"], true);
    assert_eq!(container_state(&pod, "main")["restartCount"], 0);
    let out = node.server.kubectl_ok("1.32", &["get", "pod", "secure"])?;
    assert!(
        out.lines()
            .any(|l| l.starts_with("secure") && l.contains("1/1") && l.contains("Running")),
        "{out}"
    );
    node.server
        .kubectl_ok("1.32", &["delete", "pod", "secure"])?;
    let prestop = std::fs::read_to_string(shared.join("prestop")).unwrap_or_default();
    assert_eq!(prestop.trim(), "stopping", "the preStop hook did not run");
    Ok(())
}
