//! What exists from the first start: the system namespaces, the system PriorityClasses and
//! the `kubernetes` Service with its Endpoints and EndpointSlice pointing at this API server.

use keelson_apimachinery::Status;
use serde_json::{json, Value};

use crate::alloc::KUBERNETES_SERVICE_IP;
use crate::rest::{Api, WriteOptions};

const NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

async fn ensure(
    api: &Api,
    group: &str,
    version: &str,
    resource: &str,
    namespace: Option<&str>,
    obj: Value,
) -> anyhow::Result<()> {
    let def = api
        .def(group, version, resource)
        .ok_or_else(|| anyhow::anyhow!("{resource} is not registered"))?;
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    match api.get(def, namespace, &name).await {
        Ok(_) => return Ok(()),
        Err(Status { code: 404, .. }) => {}
        Err(status) => return Err(anyhow::anyhow!("reading {resource} {name}: {status}")),
    }
    let opts = WriteOptions {
        field_manager: "kube-apiserver".into(),
        ..Default::default()
    };
    match api.create(def, namespace, obj, &opts).await {
        Ok(_) => Ok(()),
        Err(Status { code: 409, .. }) => Ok(()),
        Err(status) => Err(anyhow::anyhow!("creating {resource}: {status}")),
    }
}

pub async fn run(api: &Api, host: &str, port: u16) -> anyhow::Result<()> {
    for ns in NAMESPACES {
        ensure(
            api,
            "",
            "v1",
            "namespaces",
            None,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await?;
    }
    for pc in crate::priority::system_priority_classes() {
        ensure(api, "scheduling.k8s.io", "v1", "priorityclasses", None, pc).await?;
    }
    let labels = json!({"component": "apiserver", "provider": "kubernetes"});
    ensure(
        api,
        "",
        "v1",
        "services",
        Some("default"),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": labels},
            "spec": {"clusterIP": KUBERNETES_SERVICE_IP, "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}], "sessionAffinity": "None", "type": "ClusterIP"},
        }),
    )
    .await?;
    let ip = if host.parse::<std::net::IpAddr>().is_ok() {
        host.to_string()
    } else {
        "127.0.0.1".to_string()
    };
    ensure(
        api,
        "",
        "v1",
        "endpoints",
        Some("default"),
        json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": ip}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
        }),
    )
    .await?;
    ensure(
        api,
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        Some("default"),
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"kubernetes.io/service-name": "kubernetes"}},
            "addressType": if ip.contains(':') { "IPv6" } else { "IPv4" },
            "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        }),
    )
    .await?;
    Ok(())
}
