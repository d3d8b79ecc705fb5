//! The kubectl commands a user starts with, for each kubectl version, with no flags beyond
//! `--kubeconfig` (and a private cache dir).

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{anyhow, ensure, Result};
use serde_json::Value;

use crate::harness::{wait_for, Server};

/// The nginx Deployment of the Kubernetes docs, unchanged.
pub const NGINX_DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
  labels:
    app: nginx
spec:
  replicas: 1
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.7.9
";

fn json(s: &str) -> Result<Value> {
    Ok(serde_json::from_str(s)?)
}

fn discovery_and_info(s: &Server, v: &str) -> Result<()> {
    let version = json(&s.kubectl_ok(v, &["version", "-o", "json"])?)?;
    ensure!(
        version["serverVersion"]["gitVersion"] == "v1.34.0+keelson",
        "version: {version}"
    );
    let info = s.kubectl_ok(v, &["cluster-info"])?;
    ensure!(
        info.contains(&format!("is running at https://127.0.0.1:{}", s.port)),
        "cluster-info: {info}"
    );
    let versions = s.kubectl_ok(v, &["api-versions"])?;
    for gv in [
        "v1",
        "apps/v1",
        "batch/v1",
        "autoscaling/v2",
        "rbac.authorization.k8s.io/v1",
        "apiextensions.k8s.io/v1",
    ] {
        ensure!(
            versions.lines().any(|l| l == gv),
            "api-versions lacks {gv}: {versions}"
        );
    }
    let resources = s.kubectl_ok(v, &["api-resources"])?;
    let deploy = resources
        .lines()
        .find(|l| l.starts_with("deployments "))
        .ok_or_else(|| anyhow!("no deployments in {resources}"))?;
    let cols: Vec<&str> = deploy.split_whitespace().collect();
    ensure!(
        cols == ["deployments", "deploy", "apps/v1", "true", "Deployment"],
        "{deploy}"
    );
    let ns = s.kubectl_ok(v, &["get", "ns", "-o", "name"])?;
    for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        ensure!(
            ns.lines().any(|l| l == format!("namespace/{n}")),
            "get ns: {ns}"
        );
    }
    Ok(())
}

/// OpenAPI v3 serves `kubectl explain` and server-side field validation.
fn explain_and_strict_validation(s: &Server, v: &str) -> Result<()> {
    let explained = s.kubectl_ok(v, &["explain", "deployment.spec.strategy"])?;
    ensure!(
        explained.contains("rollingUpdate") && explained.contains("DeploymentStrategy"),
        "{explained}"
    );
    let typo = NGINX_DEPLOYMENT.replace("replicas: 1", "replicas: 1\n  replicaz: 2");
    let err = s
        .kubectl_stdin(v, &["apply", "-n", "default", "-f", "-"], &typo)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    ensure!(err.contains("unknown field \"spec.replicaz\""), "{err}");
    Ok(())
}

fn create_commands(s: &Server, v: &str) -> Result<()> {
    ensure!(s.kubectl_ok(v, &["create", "ns", "demo"])?.trim() == "namespace/demo created");
    let out = s.kubectl_ok(
        v,
        &[
            "create",
            "configmap",
            "cfg",
            "-n",
            "demo",
            "--from-literal=a=b",
            "--from-literal=c=d",
        ],
    )?;
    ensure!(out.trim() == "configmap/cfg created", "{out}");
    ensure!(
        s.kubectl_ok(
            v,
            &[
                "get",
                "cm",
                "cfg",
                "-n",
                "demo",
                "-o",
                "jsonpath={.data.a}{.data.c}"
            ]
        )? == "bd"
    );
    let out = s.kubectl_ok(
        v,
        &[
            "create",
            "deployment",
            "web",
            "-n",
            "demo",
            "--image=nginx:1.25",
            "--replicas=2",
            "--port=80",
        ],
    )?;
    ensure!(out.trim() == "deployment.apps/web created", "{out}");
    let web = json(&s.kubectl_ok(v, &["get", "deploy", "web", "-n", "demo", "-o", "json"])?)?;
    ensure!(web["spec"]["replicas"] == 2);
    ensure!(web["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == 80);
    ensure!(
        web["spec"]["strategy"]["type"] == "RollingUpdate",
        "protobuf zero values must not suppress defaults: {}",
        web["spec"]
    );
    Ok(())
}

fn apply_docs_manifest(s: &Server, v: &str) -> Result<()> {
    let out = s.kubectl_stdin(v, &["apply", "-n", "demo", "-f", "-"], NGINX_DEPLOYMENT)?;
    ensure!(
        out.trim() == "deployment.apps/nginx-deployment created",
        "{out}"
    );
    let yaml = s.kubectl_ok(
        v,
        &[
            "get",
            "deploy",
            "nginx-deployment",
            "-n",
            "demo",
            "-o",
            "yaml",
        ],
    )?;
    let d: Value = serde_yaml::from_str(&yaml)?;
    let spec = &d["spec"];
    ensure!(
        spec["progressDeadlineSeconds"] == 600 && spec["revisionHistoryLimit"] == 10,
        "{yaml}"
    );
    ensure!(
        spec["strategy"]["rollingUpdate"]["maxSurge"] == "25%"
            && spec["strategy"]["rollingUpdate"]["maxUnavailable"] == "25%",
        "{yaml}"
    );
    let c = &spec["template"]["spec"]["containers"][0];
    ensure!(
        c["imagePullPolicy"] == "IfNotPresent"
            && c["terminationMessagePath"] == "/dev/termination-log",
        "{yaml}"
    );
    ensure!(
        spec["template"]["spec"]["restartPolicy"] == "Always"
            && spec["template"]["spec"]["dnsPolicy"] == "ClusterFirst",
        "{yaml}"
    );
    let annotations = &d["metadata"]["annotations"];
    ensure!(
        annotations["kubectl.kubernetes.io/last-applied-configuration"].is_string(),
        "{yaml}"
    );
    ensure!(
        d["metadata"]["generation"] == 1 && d["metadata"]["uid"].is_string(),
        "{yaml}"
    );
    Ok(())
}

/// A second `kubectl apply` sends a three-way strategic merge patch: the live object ends
/// as the file says, and what another writer set stays.
fn reapply_changed_manifest(s: &Server, v: &str) -> Result<()> {
    let first = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  labels: {app: shop, stage: beta}
spec:
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec:
      containers:
      - name: shop
        image: nginx:1.24
        env: [{name: A, value: \"1\"}]
        ports: [{containerPort: 80}, {containerPort: 443}]
---
apiVersion: v1
kind: Service
metadata: {name: shop, labels: {app: shop, stage: beta}}
spec:
  selector: {app: shop}
  ports: [{name: http, port: 80}, {name: https, port: 443}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: shop}
data: {a: \"1\", b: \"2\"}
";
    s.kubectl_stdin(v, &["apply", "-n", "demo", "-f", "-"], first)?;
    // Someone else adds an annotation; apply must keep it.
    s.kubectl_ok(
        v,
        &["annotate", "deploy", "shop", "-n", "demo", "team=checkout"],
    )?;
    let second = first
        .replace("nginx:1.24", "nginx:1.25")
        .replace(
            "env: [{name: A, value: \"1\"}]",
            "env: [{name: A, value: \"1\"}, {name: B, value: \"2\"}]",
        )
        .replace(", {containerPort: 443}", "")
        .replace(", {name: https, port: 443}", "")
        .replace("b: \"2\"", "c: \"3\"")
        .replace(", stage: beta", "");
    let out = s.kubectl_stdin(v, &["apply", "-n", "demo", "-f", "-"], &second)?;
    ensure!(
        out.trim() == "deployment.apps/shop configured\nservice/shop configured\nconfigmap/shop configured",
        "{out}"
    );
    let svc = json(&s.kubectl_ok(v, &["get", "svc", "shop", "-n", "demo", "-o", "json"])?)?;
    let ports: Vec<&str> = svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .collect();
    ensure!(
        ports == ["http"] && svc["metadata"]["labels"] == serde_json::json!({"app": "shop"}),
        "{svc}"
    );
    ensure!(
        svc["spec"]["clusterIP"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("10.")),
        "the allocated IP is kept: {svc}"
    );
    let cm = json(&s.kubectl_ok(v, &["get", "cm", "shop", "-n", "demo", "-o", "json"])?)?;
    ensure!(
        cm["data"] == serde_json::json!({"a": "1", "c": "3"}),
        "{cm}"
    );
    let d = json(&s.kubectl_ok(v, &["get", "deploy", "shop", "-n", "demo", "-o", "json"])?)?;
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    ensure!(c["image"] == "nginx:1.25", "{c}");
    ensure!(
        c["env"] == serde_json::json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]),
        "{c}"
    );
    ensure!(
        c["ports"].as_array().map(Vec::len) == Some(1) && c["ports"][0]["containerPort"] == 80,
        "{c}"
    );
    ensure!(
        d["metadata"]["labels"] == serde_json::json!({"app": "shop"}),
        "{}",
        d["metadata"]
    );
    ensure!(
        d["metadata"]["annotations"]["team"] == "checkout",
        "{}",
        d["metadata"]
    );
    Ok(())
}

fn label_annotate_scale(s: &Server, v: &str) -> Result<()> {
    let out = s.kubectl_ok(
        v,
        &[
            "label",
            "deploy",
            "nginx-deployment",
            "-n",
            "demo",
            "tier=frontend",
        ],
    )?;
    ensure!(
        out.trim() == "deployment.apps/nginx-deployment labeled",
        "{out}"
    );
    let out = s.kubectl_ok(
        v,
        &[
            "annotate",
            "deploy",
            "nginx-deployment",
            "-n",
            "demo",
            "owner=team-a",
        ],
    )?;
    ensure!(
        out.trim() == "deployment.apps/nginx-deployment annotated",
        "{out}"
    );
    let out = s.kubectl_ok(
        v,
        &[
            "scale",
            "deploy",
            "nginx-deployment",
            "-n",
            "demo",
            "--replicas=3",
        ],
    )?;
    ensure!(
        out.trim() == "deployment.apps/nginx-deployment scaled",
        "{out}"
    );
    let d = json(&s.kubectl_ok(
        v,
        &[
            "get",
            "deploy",
            "nginx-deployment",
            "-n",
            "demo",
            "-o",
            "json",
        ],
    )?)?;
    ensure!(
        d["spec"]["replicas"] == 3
            && d["metadata"]["labels"]["tier"] == "frontend"
            && d["metadata"]["annotations"]["owner"] == "team-a",
        "{d}"
    );
    ensure!(
        d["metadata"]["generation"] == 2,
        "scale is a spec change: {}",
        d["metadata"]
    );
    let selected = s.kubectl_ok(
        v,
        &[
            "get",
            "deploy",
            "-n",
            "demo",
            "-l",
            "tier=frontend",
            "-o",
            "name",
        ],
    )?;
    ensure!(
        selected.trim() == "deployment.apps/nginx-deployment",
        "{selected}"
    );
    // `notin` also selects objects without the label, as upstream.
    let selected = s.kubectl_ok(
        v,
        &[
            "get",
            "deploy",
            "-n",
            "demo",
            "-l",
            "tier notin (frontend),app",
            "-o",
            "name",
        ],
    )?;
    ensure!(
        selected.trim() == "deployment.apps/shop\ndeployment.apps/web",
        "{selected}"
    );
    Ok(())
}

/// `kubectl get -w`, printing names or the server's Table rows (columnDefinitions come
/// with the first event only).
fn watch_sees_a_change(s: &Server, v: &str, table: bool) -> Result<()> {
    let mut args = vec!["get", "configmaps", "-n", "demo", "-w"];
    if !table {
        args.extend(["-o", "name"]);
    }
    let mut child = s
        .kubectl_command(v, &args)?
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout)
            .lines()
            .map_while(std::result::Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    // The initial list comes first; then a change made by someone else.
    let first = rx.recv_timeout(Duration::from_secs(30))?;
    let name = if table { "watched-table" } else { "watched" };
    if table {
        ensure!(
            first.split_whitespace().collect::<Vec<_>>() == ["NAME", "DATA", "AGE"],
            "{first}"
        );
    } else {
        ensure!(first.starts_with("configmap/"), "{first}");
    }
    s.kubectl_ok(
        v,
        &[
            "create",
            "configmap",
            name,
            "-n",
            "demo",
            "--from-literal=k=v",
        ],
    )?;
    let seen = wait_for(Duration::from_secs(30), || {
        rx.try_recv().ok().filter(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            if table {
                cols.first() == Some(&name) && cols.get(1) == Some(&"1")
            } else {
                l == "configmap/watched"
            }
        })
    });
    let _ = child.kill();
    let _ = child.wait();
    seen?;
    Ok(())
}

fn delete_waits_for_the_object(s: &Server, v: &str) -> Result<()> {
    let out = s.kubectl_ok(v, &["delete", "deploy", "web", "-n", "demo"])?;
    // kubectl 1.37 adds "from demo namespace".
    ensure!(
        out.trim().starts_with("deployment.apps \"web\" deleted"),
        "{out}"
    );
    let gone = s.kubectl(v, &["get", "deploy", "web", "-n", "demo"])?;
    ensure!(!gone.status.success());
    let err = String::from_utf8_lossy(&gone.stderr);
    ensure!(err.contains("deployments.apps \"web\" not found"), "{err}");
    Ok(())
}

fn pod_selectors(s: &Server, v: &str) -> Result<()> {
    for name in ["p1", "p2"] {
        s.kubectl_ok(
            v,
            &[
                "run",
                name,
                "-n",
                "demo",
                "--image=busybox",
                "--restart=Never",
                "--labels",
                &format!("app={name},tier=test"),
            ],
        )?;
    }
    let by_name = s.kubectl_ok(
        v,
        &[
            "get",
            "pods",
            "-n",
            "demo",
            "--field-selector",
            "metadata.name=p1",
            "-o",
            "name",
        ],
    )?;
    ensure!(by_name.trim() == "pod/p1", "{by_name}");
    let pending = s.kubectl_ok(
        v,
        &[
            "get",
            "pods",
            "-n",
            "demo",
            "--field-selector",
            "status.phase=Pending,spec.nodeName=",
            "-o",
            "name",
        ],
    )?;
    ensure!(pending.lines().count() == 2, "{pending}");
    let running = s.kubectl(
        v,
        &[
            "get",
            "pods",
            "-n",
            "demo",
            "--field-selector",
            "status.phase=Running",
        ],
    )?;
    ensure!(
        running.status.success()
            && String::from_utf8_lossy(&running.stderr).contains("No resources found")
    );
    let set_based = s.kubectl_ok(
        v,
        &[
            "get",
            "pods",
            "-n",
            "demo",
            "-l",
            "app in (p2,p3),tier",
            "-o",
            "name",
        ],
    )?;
    ensure!(set_based.trim() == "pod/p2", "{set_based}");
    let bad = s.kubectl(
        v,
        &[
            "get",
            "pods",
            "-n",
            "demo",
            "--field-selector",
            "spec.unknown=x",
        ],
    )?;
    ensure!(
        !bad.status.success()
            && String::from_utf8_lossy(&bad.stderr)
                .contains("field label not supported: spec.unknown")
    );
    Ok(())
}

/// `kubectl get` prints the server's Tables: upstream's columns per kind.
fn tables(s: &Server, v: &str) -> Result<()> {
    let pods = s.kubectl_ok(v, &["get", "pods", "-n", "demo"])?;
    let mut lines = pods.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    ensure!(
        header == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "{pods}"
    );
    let p1: Vec<&str> = lines
        .find(|l| l.starts_with("p1 "))
        .unwrap_or("")
        .split_whitespace()
        .collect();
    ensure!(p1.get(1..4) == Some(&["0/1", "Pending", "0"][..]), "{pods}");
    let deploy = s.kubectl_ok(
        v,
        &[
            "get",
            "deploy",
            "nginx-deployment",
            "-n",
            "demo",
            "-o",
            "wide",
        ],
    )?;
    let header: Vec<&str> = deploy
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    ensure!(
        header
            == [
                "NAME",
                "READY",
                "UP-TO-DATE",
                "AVAILABLE",
                "AGE",
                "CONTAINERS",
                "IMAGES",
                "SELECTOR"
            ],
        "{deploy}"
    );
    ensure!(
        deploy.contains("0/3") && deploy.contains("nginx:1.7.9") && deploy.contains("app=nginx"),
        "{deploy}"
    );
    let svc = s.kubectl_ok(v, &["get", "svc", "kubernetes", "-n", "default"])?;
    let row: Vec<&str> = svc
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    ensure!(
        row.get(..5) == Some(&["kubernetes", "ClusterIP", "10.96.0.1", "<none>", "443/TCP"][..]),
        "{svc}"
    );
    let ns = s.kubectl_ok(v, &["get", "ns", "demo"])?;
    ensure!(
        ns.lines().nth(1).unwrap_or("").split_whitespace().nth(1) == Some("Active"),
        "{ns}"
    );
    Ok(())
}

/// The whole walkthrough of the core issue, in order, against one server.
fn walkthrough(v: &str) -> Result<()> {
    let s = Server::start()?;
    discovery_and_info(&s, v)?;
    explain_and_strict_validation(&s, v)?;
    create_commands(&s, v)?;
    apply_docs_manifest(&s, v)?;
    reapply_changed_manifest(&s, v)?;
    label_annotate_scale(&s, v)?;
    watch_sees_a_change(&s, v, false)?;
    watch_sees_a_change(&s, v, true)?;
    delete_waits_for_the_object(&s, v)?;
    pod_selectors(&s, v)?;
    tables(&s, v)?;
    Ok(())
}

#[test]
fn kubectl_1_32_walkthrough() -> Result<()> {
    walkthrough("1.32")
}

#[test]
fn kubectl_1_33_walkthrough() -> Result<()> {
    walkthrough("1.33")
}

#[test]
fn kubectl_1_37_walkthrough() -> Result<()> {
    walkthrough("1.37")
}

/// An events.k8s.io/v1 Event (what kube-rs' recorder writes) shows up in `kubectl describe`,
/// which lists core/v1 events by involvedObject field selectors.
#[test]
fn describe_shows_events_of_both_apis() -> Result<()> {
    let s = Server::start()?;
    s.kubectl_ok("1.37", &["run", "p", "--image=busybox", "--restart=Never"])?;
    let pod = json(&s.kubectl_ok("1.37", &["get", "pod", "p", "-o", "json"])?)?;
    let uid = pod["metadata"]["uid"].as_str().unwrap_or("");
    let event = serde_json::json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "p.recorded", "namespace": "default"},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "regarding": {"apiVersion": "v1", "kind": "Pod", "name": "p", "namespace": "default", "uid": uid},
        "reason": "Recorded", "note": "written through events.k8s.io", "type": "Normal",
        "action": "Testing", "reportingController": "keelson-test", "reportingInstance": "keelson-test-1",
    });
    s.kubectl_stdin("1.37", &["create", "-f", "-"], &event.to_string())?;
    let core = serde_json::json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "p.core", "namespace": "default"},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": "p", "namespace": "default", "uid": uid},
        "reason": "CoreReason", "message": "written through core/v1", "type": "Warning",
        "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z", "count": 1,
        "source": {"component": "keelson-test"},
    });
    s.kubectl_stdin("1.37", &["create", "-f", "-"], &core.to_string())?;
    let described = s.kubectl_ok("1.37", &["describe", "pod", "p"])?;
    let events = described.split("Events:").nth(1).unwrap_or("");
    ensure!(
        events.contains("Recorded") && events.contains("written through events.k8s.io"),
        "{described}"
    );
    ensure!(
        events.contains("CoreReason") && events.contains("written through core/v1"),
        "{described}"
    );
    // And the other way round: the core event is listed through events.k8s.io with `regarding`.
    let listed = json(&s.kubectl_ok(
        "1.37",
        &[
            "get",
            "events.v1.events.k8s.io",
            "--field-selector",
            "regarding.name=p",
            "-o",
            "json",
        ],
    )?)?;
    let notes: Vec<&str> = listed["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["note"].as_str())
        .collect();
    ensure!(
        notes.len() == 2 && notes.contains(&"written through core/v1"),
        "{listed}"
    );
    Ok(())
}

/// `kubectl edit` (with an EDITOR script), `kubectl diff` (a dry-run patch) and `kubectl
/// patch` of each patch type.
fn edit_diff_patch(v: &str) -> Result<()> {
    let s = Server::start()?;
    s.kubectl_stdin(v, &["apply", "-f", "-"], NGINX_DEPLOYMENT)?;
    let editor = "sed -i s/nginx:1.7.9/nginx:1.8/";
    let out = s
        .kubectl_command(v, &["edit", "deploy", "nginx-deployment"])?
        .env("KUBE_EDITOR", editor)
        .output()?;
    ensure!(
        out.status.success(),
        "edit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let image = s.kubectl_ok(
        v,
        &[
            "get",
            "deploy",
            "nginx-deployment",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ],
    )?;
    ensure!(image == "nginx:1.8", "{image}");
    // diff exits 1 when there are differences, and changes nothing.
    let changed = NGINX_DEPLOYMENT.replace("replicas: 1", "replicas: 4");
    let diff = s.kubectl_input(v, &["diff", "-f", "-"], &changed)?;
    let text = String::from_utf8_lossy(&diff.stdout);
    ensure!(
        diff.status.code() == Some(1)
            && text.contains("-  replicas: 1")
            && text.contains("+  replicas: 4"),
        "{text}"
    );
    ensure!(
        s.kubectl_ok(
            v,
            &[
                "get",
                "deploy",
                "nginx-deployment",
                "-o",
                "jsonpath={.spec.replicas}"
            ]
        )? == "1"
    );
    s.kubectl_ok(
        v,
        &[
            "patch",
            "deploy",
            "nginx-deployment",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/replicas","value":2}]"#,
        ],
    )?;
    s.kubectl_ok(
        v,
        &[
            "patch",
            "deploy",
            "nginx-deployment",
            "--type=merge",
            "-p",
            r#"{"metadata":{"labels":{"m":"1"}}}"#,
        ],
    )?;
    s.kubectl_ok(v, &["patch", "deploy", "nginx-deployment", "-p", r#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","env":[{"name":"X","value":"1"}]}]}}}}"#])?;
    let d = json(&s.kubectl_ok(v, &["get", "deploy", "nginx-deployment", "-o", "json"])?)?;
    ensure!(
        d["spec"]["replicas"] == 2 && d["metadata"]["labels"]["m"] == "1",
        "{d}"
    );
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    ensure!(
        c["image"] == "nginx:1.8" && c["env"][0]["name"] == "X",
        "strategic patch merged into the container: {c}"
    );
    Ok(())
}

#[test]
fn kubectl_1_32_edit_diff_patch() -> Result<()> {
    edit_diff_patch("1.32")
}

#[test]
fn kubectl_1_37_edit_diff_patch() -> Result<()> {
    edit_diff_patch("1.37")
}

/// `kubectl apply --server-side`: managedFields record the applier, a second manager with
/// a different value gets upstream's conflict, `--force-conflicts` takes the field over.
fn server_side_apply(v: &str) -> Result<()> {
    let s = Server::start()?;
    let out = s.kubectl_stdin(v, &["apply", "--server-side", "-f", "-"], NGINX_DEPLOYMENT)?;
    ensure!(
        out.trim() == "deployment.apps/nginx-deployment serverside-applied",
        "{out}"
    );
    let d = json(&s.kubectl_ok(
        v,
        &[
            "get",
            "deploy",
            "nginx-deployment",
            "-o",
            "json",
            "--show-managed-fields",
        ],
    )?)?;
    let mf = &d["metadata"]["managedFields"][0];
    ensure!(
        mf["manager"] == "kubectl" && mf["operation"] == "Apply",
        "{mf}"
    );
    ensure!(
        mf["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"]
            ["f:image"]
            .is_object(),
        "{mf}"
    );
    let five = NGINX_DEPLOYMENT.replace("replicas: 1", "replicas: 5");
    let err = s
        .kubectl_stdin(
            v,
            &["apply", "--server-side", "--field-manager=other", "-f", "-"],
            &five,
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    ensure!(
        err.contains("Apply failed with 1 conflict: conflict with \"kubectl\": .spec.replicas"),
        "{err}"
    );
    s.kubectl_stdin(
        v,
        &[
            "apply",
            "--server-side",
            "--field-manager=other",
            "--force-conflicts",
            "-f",
            "-",
        ],
        &five,
    )?;
    let d = json(&s.kubectl_ok(
        v,
        &[
            "get",
            "deploy",
            "nginx-deployment",
            "-o",
            "json",
            "--show-managed-fields",
        ],
    )?)?;
    ensure!(d["spec"]["replicas"] == 5, "{}", d["spec"]);
    let owners: Vec<&str> = d["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["fieldsV1"]["f:spec"].get("f:replicas").is_some())
        .filter_map(|m| m["manager"].as_str())
        .collect();
    ensure!(owners == ["other"], "{owners:?}");
    // The first manager gives up replicas, adds an env var, then drops it again: pruned,
    // while the replicas the other manager owns stay.
    let without_replicas = NGINX_DEPLOYMENT.replace("  replicas: 1\n", "");
    let with_env = without_replicas.replace(
        "image: nginx:1.7.9",
        "image: nginx:1.7.9\n        env: [{name: A, value: \"1\"}]",
    );
    s.kubectl_stdin(v, &["apply", "--server-side", "-f", "-"], &with_env)?;
    let d = json(&s.kubectl_ok(v, &["get", "deploy", "nginx-deployment", "-o", "json"])?)?;
    ensure!(
        d["spec"]["template"]["spec"]["containers"][0]["env"][0]["name"] == "A",
        "{}",
        d["spec"]
    );
    s.kubectl_stdin(v, &["apply", "--server-side", "-f", "-"], &without_replicas)?;
    let d = json(&s.kubectl_ok(v, &["get", "deploy", "nginx-deployment", "-o", "json"])?)?;
    ensure!(
        d["spec"]["template"]["spec"]["containers"][0]
            .get("env")
            .is_none(),
        "{}",
        d["spec"]
    );
    ensure!(d["spec"]["replicas"] == 5, "{}", d["spec"]);
    Ok(())
}

#[test]
fn kubectl_1_33_server_side_apply() -> Result<()> {
    server_side_apply("1.33")
}

#[test]
fn kubectl_1_37_server_side_apply() -> Result<()> {
    server_side_apply("1.37")
}

/// The typed `kubectl create` commands (protobuf bodies) and `kubectl get`'s printing
/// options over the server's Tables.
fn typed_creates_and_printing(v: &str) -> Result<()> {
    let s = Server::start()?;
    let dir = tempfile::tempdir()?;
    let env_file = dir.path().join("app.env");
    std::fs::write(&env_file, "MODE=prod\nLEVEL=3\n")?;
    let env_arg = format!("--from-env-file={}", env_file.display());
    s.kubectl_ok(v, &["create", "ns", "shop"])?;
    for args in [
        vec![
            "create",
            "configmap",
            "envcfg",
            "-n",
            "shop",
            env_arg.as_str(),
        ],
        vec![
            "create",
            "secret",
            "generic",
            "creds",
            "-n",
            "shop",
            "--from-literal=password=hunter2",
        ],
        vec![
            "create",
            "deployment",
            "web",
            "-n",
            "shop",
            "--image=nginx:1.25",
            "--replicas=2",
        ],
        vec![
            "create",
            "service",
            "clusterip",
            "web",
            "-n",
            "shop",
            "--tcp=80:8080",
        ],
        vec![
            "create",
            "job",
            "once",
            "-n",
            "shop",
            "--image=busybox",
            "--",
            "echo",
            "hi",
        ],
        vec![
            "run",
            "solo",
            "-n",
            "shop",
            "--image=busybox",
            "--labels=tier=debug",
            "--restart=Never",
        ],
    ] {
        s.kubectl_ok(v, &args)?;
    }
    let cfg = json(&s.kubectl_ok(v, &["get", "cm", "envcfg", "-n", "shop", "-o", "json"])?)?;
    ensure!(
        cfg["data"] == serde_json::json!({"LEVEL": "3", "MODE": "prod"}),
        "{cfg}"
    );
    let secret = json(&s.kubectl_ok(v, &["get", "secret", "creds", "-n", "shop", "-o", "json"])?)?;
    ensure!(
        secret["data"]["password"] == "aHVudGVyMg==" && secret["type"] == "Opaque",
        "{secret}"
    );
    let job = json(&s.kubectl_ok(v, &["get", "job", "once", "-n", "shop", "-o", "json"])?)?;
    ensure!(
        job["spec"]["template"]["spec"]["containers"][0]["command"]
            == serde_json::json!(["echo", "hi"]),
        "{job}"
    );

    let header = |out: &str| {
        out.lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let all = s.kubectl_ok(v, &["get", "pods", "-A", "--show-labels"])?;
    ensure!(
        header(&all)
            == [
                "NAMESPACE",
                "NAME",
                "READY",
                "STATUS",
                "RESTARTS",
                "AGE",
                "LABELS"
            ],
        "{all}"
    );
    ensure!(
        all.lines()
            .any(|l| l.starts_with("shop") && l.contains("solo") && l.contains("tier=debug")),
        "{all}"
    );
    let svc = s.kubectl_ok(v, &["get", "svc", "-n", "shop", "-o", "wide"])?;
    ensure!(
        header(&svc)
            == [
                "NAME",
                "TYPE",
                "CLUSTER-IP",
                "EXTERNAL-IP",
                "PORT(S)",
                "AGE",
                "SELECTOR"
            ],
        "{svc}"
    );
    ensure!(svc.contains("80/TCP") && svc.contains("app=web"), "{svc}");
    let jobs = s.kubectl_ok(v, &["get", "jobs", "-n", "shop"])?;
    ensure!(
        header(&jobs).first().map(String::as_str) == Some("NAME") && jobs.contains("0/1"),
        "{jobs}"
    );
    let cms = s.kubectl_ok(v, &["get", "cm", "-n", "shop"])?;
    ensure!(header(&cms) == ["NAME", "DATA", "AGE"], "{cms}");
    let secrets = s.kubectl_ok(v, &["get", "secrets", "-n", "shop"])?;
    ensure!(
        header(&secrets) == ["NAME", "TYPE", "DATA", "AGE"],
        "{secrets}"
    );
    let sorted = s.kubectl_ok(
        v,
        &["get", "cm", "-A", "--sort-by=.metadata.name", "-o", "name"],
    )?;
    let names: Vec<&str> = sorted.lines().collect();
    let mut expected = names.clone();
    expected.sort();
    ensure!(names == expected && !names.is_empty(), "{sorted}");
    let rs = s.kubectl_ok(
        v,
        &["get", "deploy", "-n", "shop", "--sort-by=.spec.replicas"],
    )?;
    ensure!(
        header(&rs) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"] && rs.contains("0/2"),
        "{rs}"
    );
    Ok(())
}

#[test]
fn kubectl_1_32_typed_creates_and_printing() -> Result<()> {
    typed_creates_and_printing("1.32")
}

#[test]
fn kubectl_1_33_typed_creates_and_printing() -> Result<()> {
    typed_creates_and_printing("1.33")
}

#[test]
fn kubectl_1_37_typed_creates_and_printing() -> Result<()> {
    typed_creates_and_printing("1.37")
}

/// A misspelled field: refused by server-side strict validation, accepted and dropped with
/// `--validate=false`.
#[test]
fn validate_false_drops_unknown_fields() -> Result<()> {
    let s = Server::start()?;
    let typo = NGINX_DEPLOYMENT.replace("replicas: 1", "replicas: 1\n  replicaz: 2");
    let err = s
        .kubectl_stdin("1.33", &["apply", "-f", "-"], &typo)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    ensure!(err.contains("unknown field \"spec.replicaz\""), "{err}");
    s.kubectl_stdin("1.33", &["apply", "--validate=false", "-f", "-"], &typo)?;
    let d = json(&s.kubectl_ok("1.33", &["get", "deploy", "nginx-deployment", "-o", "json"])?)?;
    ensure!(
        d["spec"].get("replicaz").is_none() && d["spec"]["replicas"] == 1,
        "{}",
        d["spec"]
    );
    Ok(())
}
