//! Static pods: Pod manifests in a folder (`--pod-manifest-path`) that the kubelet runs on
//! its own, API server or not (how kubeadm starts the control plane), and the mirror pods
//! that show them in the API once it is reachable. As upstream: the pod is named
//! `<name>-<node>`, its uid is a hash of the manifest and the node, and the mirror pod
//! carries that hash in `kubernetes.io/config.mirror` and is owned by the Node.

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::core::v1::Pod;
use sha2::{Digest, Sha256};

pub const CONFIG_HASH: &str = "kubernetes.io/config.hash";
pub const CONFIG_SOURCE: &str = "kubernetes.io/config.source";
pub const CONFIG_MIRROR: &str = "kubernetes.io/config.mirror";

/// Whether an API pod is the mirror of a static pod (the kubelet does not run those).
pub fn is_mirror(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(CONFIG_MIRROR))
}

/// The static pods of `dir`: one per manifest file (`.yaml`, `.yml`, `.json`; hidden files
/// are skipped, as upstream). A manifest that does not parse is logged and skipped.
pub fn load(dir: &Path, node_name: &str) -> Vec<Pod> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    files.sort();
    let mut pods = Vec::new();
    for path in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let manifest = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        );
        if name.starts_with('.') || !manifest || !path.is_file() {
            continue;
        }
        match std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| static_pod(&bytes, node_name))
        {
            Ok(pod) => pods.push(pod),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "skipping a static pod manifest")
            }
        }
    }
    pods
}

/// Reads one manifest as the static pod the kubelet runs.
pub fn static_pod(manifest: &[u8], node_name: &str) -> Result<Pod, String> {
    let value: serde_json::Value =
        serde_yaml::from_slice(manifest).map_err(|e| format!("invalid manifest: {e}"))?;
    if value["kind"] != "Pod" {
        return Err(format!("kind {} is not Pod", value["kind"]));
    }
    let mut pod: Pod =
        serde_json::from_value(value).map_err(|e| format!("invalid manifest: {e}"))?;
    let name = pod
        .metadata
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or("the manifest names no pod")?;
    let hash = hex::encode(&Sha256::digest([manifest, node_name.as_bytes()].concat())[..16]);
    pod.metadata.name = Some(format!("{name}-{node_name}"));
    pod.metadata.namespace = Some(
        pod.metadata
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into()),
    );
    pod.metadata.uid = Some(hash.clone());
    let annotations = pod.metadata.annotations.get_or_insert_with(BTreeMap::new);
    annotations.insert(CONFIG_HASH.into(), hash);
    annotations.insert(CONFIG_SOURCE.into(), "file".into());
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.node_name = Some(node_name.to_string());
    spec.restart_policy.get_or_insert_with(|| "Always".into());
    spec.termination_grace_period_seconds.get_or_insert(30);
    Ok(pod)
}

/// The mirror pod to create for a static pod, owned by the node (`node_uid`).
pub fn mirror(pod: &Pod, node_name: &str, node_uid: &str) -> Pod {
    let mut mirror = pod.clone();
    let hash = pod.metadata.uid.clone().unwrap_or_default();
    mirror.metadata.uid = None;
    mirror.metadata.resource_version = None;
    mirror
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(CONFIG_MIRROR.into(), hash);
    mirror.metadata.owner_references = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "v1".into(),
            kind: "Node".into(),
            name: node_name.into(),
            uid: node_uid.into(),
            controller: Some(true),
            ..Default::default()
        },
    ]);
    mirror.status = None;
    mirror
}

/// Whether an existing mirror pod still mirrors this static pod (same manifest hash).
pub fn mirrors(mirror: &Pod, pod: &Pod) -> bool {
    mirror
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CONFIG_MIRROR))
        == pod.metadata.uid.as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: c\n    image: busybox\n";

    #[test]
    fn manifests_become_node_named_pods_with_a_content_hash_uid() {
        let pod = static_pod(MANIFEST.as_bytes(), "node1").expect("pod");
        assert_eq!(pod.metadata.name.as_deref(), Some("web-node1"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("default"));
        let uid = pod.metadata.uid.clone().expect("uid");
        assert_eq!(uid.len(), 32);
        let spec = pod.spec.clone().expect("spec");
        assert_eq!(spec.node_name.as_deref(), Some("node1"));
        assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
        // Same manifest, same uid; another node or content, another one.
        let again = static_pod(MANIFEST.as_bytes(), "node1").expect("pod");
        assert_eq!(again.metadata.uid, pod.metadata.uid);
        let other = static_pod(MANIFEST.as_bytes(), "node2").expect("pod");
        assert_ne!(other.metadata.uid, pod.metadata.uid);

        let m = mirror(&pod, "node1", "node-uid");
        assert!(is_mirror(&m));
        assert!(mirrors(&m, &pod));
        assert!(!mirrors(&m, &other));
        assert_eq!(m.metadata.uid, None);
        let owner = &m.metadata.owner_references.clone().unwrap_or_default()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("Node", "node-uid")
        );
    }

    #[test]
    fn the_folder_is_read_skipping_hidden_and_broken_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("web.yaml"), MANIFEST).expect("write");
        std::fs::write(dir.path().join(".hidden.yaml"), MANIFEST).expect("write");
        std::fs::write(dir.path().join("broken.yaml"), "kind: [").expect("write");
        std::fs::write(dir.path().join("notes.txt"), "hello").expect("write");
        std::fs::write(
            dir.path().join("svc.json"),
            r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"}}"#,
        )
        .expect("write");
        let pods = load(dir.path(), "n");
        assert_eq!(pods.len(), 1);
        assert_eq!(pods[0].metadata.name.as_deref(), Some("web-n"));
        assert!(load(&dir.path().join("missing"), "n").is_empty());
    }
}
