//! API semantics beyond the walkthrough: protobuf bodies, deletion with finalizers,
//! namespace lifecycle, subresources, Service allocation, generateName and dry runs.

use anyhow::{ensure, Result};
use serde_json::{json, Value};

use crate::harness::Server;

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or(Value::Null)
}

fn post(s: &Server, path: &str, body: &Value) -> Result<(u16, Value)> {
    let (code, text) = s.curl(
        "POST",
        path,
        "application/json",
        Some(body.to_string().as_bytes()),
        true,
    )?;
    Ok((code, parse(&text)))
}

fn send(
    s: &Server,
    method: &str,
    path: &str,
    content_type: &str,
    body: &Value,
) -> Result<(u16, Value)> {
    let (code, text) = s.curl(
        method,
        path,
        content_type,
        Some(body.to_string().as_bytes()),
        true,
    )?;
    Ok((code, parse(&text)))
}

fn get(s: &Server, path: &str) -> Result<(u16, Value)> {
    let (code, text) = s.curl("GET", path, "", None, true)?;
    Ok((code, parse(&text)))
}

/// The protobuf bodies real kubectl v1.37 sent, posted as they are.
#[test]
fn kubectl_protobuf_bodies_create_the_objects() -> Result<()> {
    let s = Server::start()?;
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/protobuf");
    ensure!(fixtures.is_dir(), "{} is missing", fixtures.display());
    post(
        &s,
        "/api/v1/namespaces",
        &json!({"metadata": {"name": "demo"}}),
    )?;
    let cases = [
        ("configmaps", "/api/v1/namespaces/demo/configmaps", "cfg"),
        ("secrets", "/api/v1/namespaces/demo/secrets", "s1"),
        (
            "deployments",
            "/apis/apps/v1/namespaces/demo/deployments",
            "web",
        ),
        ("services", "/api/v1/namespaces/demo/services", "svc1"),
        ("jobs", "/apis/batch/v1/namespaces/demo/jobs", "j1"),
        ("cronjobs", "/apis/batch/v1/namespaces/demo/cronjobs", "cj1"),
        (
            "serviceaccounts",
            "/api/v1/namespaces/demo/serviceaccounts",
            "robot",
        ),
    ];
    for (resource, path, name) in cases {
        let body = std::fs::read(fixtures.join(format!("kubectl-1.37-create-{resource}.pb")))?;
        let (code, text) = s.curl(
            "POST",
            &format!("{path}?fieldManager=kubectl-create&fieldValidation=Strict"),
            "application/vnd.kubernetes.protobuf",
            Some(&body),
            true,
        )?;
        ensure!(code == 201, "{resource}: {code} {text}");
        ensure!(
            parse(&text)["metadata"]["name"] == name,
            "{resource}: {text}"
        );
    }
    let (_, d) = get(&s, "/apis/apps/v1/namespaces/demo/deployments/web")?;
    ensure!(
        d["spec"]["replicas"] == 2 && d["spec"]["strategy"]["type"] == "RollingUpdate",
        "{d}"
    );
    let (_, svc) = get(&s, "/api/v1/namespaces/demo/services/svc1")?;
    ensure!(
        svc["spec"]["ports"][0]["targetPort"] == 8080 && svc["spec"]["type"] == "ClusterIP",
        "{svc}"
    );
    let (_, secret) = get(&s, "/api/v1/namespaces/demo/secrets/s1")?;
    ensure!(secret["data"]["password"] == "aHVudGVyMg==", "{secret}");
    let (_, ns) = get(&s, "/api/v1/namespaces/demo")?;
    ensure!(ns["status"]["phase"] == "Active", "{ns}");
    Ok(())
}

#[test]
fn finalizers_hold_a_deleted_object_until_removed() -> Result<()> {
    let s = Server::start()?;
    let path = "/api/v1/namespaces/default/configmaps";
    let (code, _) = post(
        &s,
        path,
        &json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
    )?;
    ensure!(code == 201);
    let (code, obj) = send(
        &s,
        "DELETE",
        &format!("{path}/held"),
        "application/json",
        &json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"}),
    )?;
    ensure!(
        code == 200 && obj["metadata"]["deletionTimestamp"].is_string(),
        "{obj}"
    );
    ensure!(
        obj["metadata"]["finalizers"] == json!(["example.com/hold", "foregroundDeletion"]),
        "{obj}"
    );
    let (code, _) = get(&s, &format!("{path}/held"))?;
    ensure!(code == 200, "still there while finalizers remain");
    let (code, obj) = send(
        &s,
        "PATCH",
        &format!("{path}/held"),
        "application/merge-patch+json",
        &json!({"metadata": {"finalizers": null}}),
    )?;
    ensure!(code == 200, "{obj}");
    let (code, _) = get(&s, &format!("{path}/held"))?;
    ensure!(code == 404, "gone once the last finalizer is removed");
    // Preconditions.
    post(&s, path, &json!({"metadata": {"name": "pre"}}))?;
    let (code, st) = send(
        &s,
        "DELETE",
        &format!("{path}/pre"),
        "application/json",
        &json!({"preconditions": {"uid": "not-the-uid"}}),
    )?;
    ensure!(code == 409 && st["reason"] == "Conflict", "{st}");
    Ok(())
}

#[test]
fn namespace_lifecycle() -> Result<()> {
    let s = Server::start()?;
    post(
        &s,
        "/api/v1/namespaces",
        &json!({"metadata": {"name": "doomed"}}),
    )?;
    post(
        &s,
        "/api/v1/namespaces/doomed/configmaps",
        &json!({"metadata": {"name": "c"}}),
    )?;
    let (code, ns) = send(
        &s,
        "DELETE",
        "/api/v1/namespaces/doomed",
        "application/json",
        &json!({}),
    )?;
    ensure!(
        code == 200 && ns["status"]["phase"] == "Terminating",
        "{ns}"
    );
    let (code, st) = post(
        &s,
        "/api/v1/namespaces/doomed/configmaps",
        &json!({"metadata": {"name": "late"}}),
    )?;
    ensure!(
        code == 403
            && st["message"]
                .as_str()
                .is_some_and(|m| m.contains("because it is being terminated")),
        "{st}"
    );
    // What the namespace controller does once the namespace is empty.
    let mut finalized = ns.clone();
    finalized["spec"]["finalizers"] = json!([]);
    let (code, _) = send(
        &s,
        "PUT",
        "/api/v1/namespaces/doomed/finalize",
        "application/json",
        &finalized,
    )?;
    ensure!(code == 200);
    let (code, _) = get(&s, "/api/v1/namespaces/doomed")?;
    ensure!(code == 404, "namespace removed after finalize");
    Ok(())
}

#[test]
fn services_get_cluster_ips_and_node_ports() -> Result<()> {
    let s = Server::start()?;
    let path = "/api/v1/namespaces/default/services";
    let (code, a) = post(
        &s,
        path,
        &json!({"metadata": {"name": "a"}, "spec": {"type": "NodePort", "selector": {"app": "a"}, "ports": [{"port": 80}]}}),
    )?;
    ensure!(code == 201, "{a}");
    let ip: std::net::Ipv4Addr = a["spec"]["clusterIP"].as_str().unwrap_or("").parse()?;
    ensure!(
        ip.octets()[0] == 10 && (96..112).contains(&ip.octets()[1]),
        "{ip}"
    );
    let node_port = a["spec"]["ports"][0]["nodePort"].as_i64().unwrap_or(0);
    ensure!((30000..=32767).contains(&node_port), "{a}");
    let (code, st) = post(
        &s,
        path,
        &json!({"metadata": {"name": "b"}, "spec": {"clusterIP": ip.to_string(), "ports": [{"port": 80}]}}),
    )?;
    ensure!(
        code == 422
            && st["message"]
                .as_str()
                .is_some_and(|m| m.contains("provided IP is already allocated")),
        "{st}"
    );
    let (code, headless) = post(
        &s,
        path,
        &json!({"metadata": {"name": "h"}, "spec": {"clusterIP": "None", "selector": {"app": "h"}}}),
    )?;
    ensure!(
        code == 201 && headless["spec"]["clusterIP"] == "None",
        "{headless}"
    );
    let (_, k) = get(&s, "/api/v1/namespaces/default/services/kubernetes")?;
    ensure!(k["spec"]["clusterIP"] == "10.96.0.1", "{k}");
    Ok(())
}

#[test]
fn subresources_scale_status_and_binding() -> Result<()> {
    let s = Server::start()?;
    let deploy = json!({"metadata": {"name": "d"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}}, "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}});
    let base = "/apis/apps/v1/namespaces/default/deployments";
    post(&s, base, &deploy)?;
    let (code, scale) = get(&s, &format!("{base}/d/scale"))?;
    ensure!(
        code == 200 && scale["kind"] == "Scale" && scale["apiVersion"] == "autoscaling/v1",
        "{scale}"
    );
    ensure!(
        scale["spec"]["replicas"] == 2 && scale["status"]["selector"] == "app=d",
        "{scale}"
    );
    // The main resource ignores status; /status ignores the spec.
    let (_, mut current) = get(&s, &format!("{base}/d"))?;
    current["status"] = json!({"replicas": 7});
    current["spec"]["replicas"] = json!(3);
    let (_, updated) = send(
        &s,
        "PUT",
        &format!("{base}/d"),
        "application/json",
        &current,
    )?;
    ensure!(
        updated["spec"]["replicas"] == 3 && updated["status"].get("replicas").is_none(),
        "{updated}"
    );
    let mut with_status = updated.clone();
    with_status["status"] = json!({"replicas": 3, "observedGeneration": 2});
    with_status["spec"]["replicas"] = json!(10);
    let (_, after) = send(
        &s,
        "PUT",
        &format!("{base}/d/status"),
        "application/json",
        &with_status,
    )?;
    ensure!(
        after["status"]["replicas"] == 3 && after["spec"]["replicas"] == 3,
        "{after}"
    );
    ensure!(
        after["metadata"]["generation"] == 2,
        "status writes do not bump generation: {after}"
    );
    // pods/binding
    let pods = "/api/v1/namespaces/default/pods";
    post(
        &s,
        pods,
        &json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
    )?;
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "node-1"}});
    let (code, st) = post(&s, &format!("{pods}/p/binding"), &binding)?;
    ensure!(code == 201 && st["status"] == "Success", "{st}");
    let (_, pod) = get(&s, &format!("{pods}/p"))?;
    ensure!(pod["spec"]["nodeName"] == "node-1", "{pod}");
    let scheduled = pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "PodScheduled" && c["status"] == "True");
    ensure!(scheduled, "binding records PodScheduled: {pod}");
    let (code, _) = post(&s, &format!("{pods}/p/binding"), &binding)?;
    ensure!(code == 409, "a bound pod cannot be bound again");
    Ok(())
}

#[test]
fn generate_name_dry_run_and_delete_collection() -> Result<()> {
    let s = Server::start()?;
    let path = "/api/v1/namespaces/default/configmaps";
    let (code, cm) = post(&s, path, &json!({"metadata": {"generateName": "gen-"}}))?;
    let name = cm["metadata"]["name"].as_str().unwrap_or("").to_string();
    ensure!(
        code == 201 && name.starts_with("gen-") && name.len() == 9,
        "{cm}"
    );
    let (code, dry) = post(
        &s,
        &format!("{path}?dryRun=All"),
        &json!({"metadata": {"name": "dry"}}),
    )?;
    ensure!(code == 201 && dry["metadata"]["uid"].is_string(), "{dry}");
    let (code, _) = get(&s, &format!("{path}/dry"))?;
    ensure!(code == 404, "a dry run stores nothing");
    for n in ["x1", "x2", "y1"] {
        let group = &n[..1];
        post(
            &s,
            path,
            &json!({"metadata": {"name": n, "labels": {"group": group}}}),
        )?;
    }
    let (code, text) = s.curl(
        "DELETE",
        &format!("{path}?labelSelector=group%3Dx"),
        "",
        None,
        true,
    )?;
    ensure!(code == 200, "{text}");
    let (_, list) = get(&s, path)?;
    let left: Vec<&str> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    ensure!(
        left.contains(&"y1") && !left.contains(&"x1") && !left.contains(&"x2"),
        "{left:?}"
    );
    Ok(())
}

#[test]
fn watch_from_a_too_old_revision_is_an_error_event() -> Result<()> {
    let mut s = Server::start()?;
    post(
        &s,
        "/api/v1/namespaces/default/configmaps",
        &json!({"metadata": {"name": "a"}}),
    )?;
    s.restart()?;
    post(
        &s,
        "/api/v1/namespaces/default/configmaps",
        &json!({"metadata": {"name": "b"}}),
    )?;
    let (code, text) = s.curl(
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1&timeoutSeconds=2",
        "",
        None,
        true,
    )?;
    ensure!(code == 200, "{code} {text}");
    let first = text.lines().next().map(parse).unwrap_or(Value::Null);
    ensure!(
        first["type"] == "ERROR"
            && first["object"]["code"] == 410
            && first["object"]["reason"] == "Expired",
        "{text}"
    );
    Ok(())
}
