//! Every real kubectl protobuf body in shared/fixtures/protobuf decodes to the object its
//! command describes.

use keelson_schema::{decode_protobuf, find_unknown_fields, kind_message};
use serde_json::{json, Value};
use std::path::PathBuf;

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/protobuf")
}

fn expected(name: &str) -> Option<Value> {
    Some(match name {
        "kubectl-1.37-create-namespaces.pb" => json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "demo"}
        }),
        "kubectl-1.37-create-configmaps.pb" => json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "demo"},
            "data": {"a": "b", "c": "d"}
        }),
        "kubectl-1.37-create-secrets.pb" => json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s1", "namespace": "demo"},
            "data": {"password": "aHVudGVyMg=="}
        }),
        "kubectl-1.37-create-deployments.pb" => json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "demo", "labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{
                        "name": "nginx", "image": "nginx:1.25",
                        "ports": [{"containerPort": 80}]
                    }]}
                }
            }
        }),
        "kubectl-1.37-create-services.pb" => json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "svc1", "namespace": "demo", "labels": {"app": "svc1"}},
            "spec": {
                "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
                "selector": {"app": "svc1"},
                "type": "ClusterIP"
            }
        }),
        "kubectl-1.37-create-jobs.pb" => json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "j1", "namespace": "demo"},
            "spec": {"template": {"spec": {
                "containers": [{"name": "j1", "image": "busybox", "command": ["echo", "hi"]}],
                "restartPolicy": "Never"
            }}}
        }),
        "kubectl-1.37-create-cronjobs.pb" => json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "cj1", "namespace": "demo"},
            "spec": {
                "schedule": "*/5 * * * *",
                "jobTemplate": {
                    "metadata": {"name": "cj1"},
                    "spec": {"template": {"spec": {
                        "containers": [{"name": "cj1", "image": "busybox", "command": ["date"]}],
                        "restartPolicy": "OnFailure"
                    }}}
                }
            }
        }),
        "kubectl-1.37-create-serviceaccounts.pb" => json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "robot", "namespace": "demo"}
        }),
        _ => return None,
    })
}

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = fixtures_dir();
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fixtures folder {} is missing: {e}", dir.display()));
    let mut out: Vec<(String, Vec<u8>)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pb"))
        .map(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            (name, bytes)
        })
        .collect();
    out.sort();
    assert!(
        out.len() >= 8,
        "expected the 8 kubectl fixtures in {}, found {}",
        dir.display(),
        out.len()
    );
    out
}

#[test]
fn every_fixture_decodes_to_its_object() {
    for (name, body) in fixtures() {
        let want =
            expected(&name).unwrap_or_else(|| panic!("no expectation written for fixture {name}"));
        let got = decode_protobuf(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got.object, want, "{name}");
        assert_eq!(got.api_version, want["apiVersion"], "{name}");
        assert_eq!(got.kind, want["kind"], "{name}");
        // the decoded JSON passes strict field validation against the same type
        let msg = kind_message(&got.api_version, &got.kind).expect("kind");
        let mut obj = got.object.clone();
        assert!(
            find_unknown_fields(&msg, &mut obj, false).is_empty(),
            "{name}"
        );
    }
}

#[test]
fn deployment_details() {
    let body = std::fs::read(fixtures_dir().join("kubectl-1.37-create-deployments.pb")).unwrap();
    let d = decode_protobuf(&body).unwrap().object;
    // Go wrote `strategy {}` and an empty creationTimestamp: both are unset
    assert!(d["spec"].get("strategy").is_none());
    assert!(d["metadata"].get("creationTimestamp").is_none());
    assert!(d["spec"]["template"]["metadata"]
        .get("creationTimestamp")
        .is_none());
    assert_eq!(d["spec"]["replicas"], 2);
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "nginx:1.25");
    assert_eq!(c["ports"][0]["containerPort"], 80);
    assert_eq!(d["metadata"]["labels"]["app"], "web");
    // the keys come out in order: apiVersion and kind first
    let keys: Vec<&String> = d.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["apiVersion", "kind", "metadata", "spec"]);
}

#[test]
fn service_target_port_is_an_integer_and_secret_is_base64() {
    let svc = std::fs::read(fixtures_dir().join("kubectl-1.37-create-services.pb")).unwrap();
    let svc = decode_protobuf(&svc).unwrap().object;
    assert!(svc["spec"]["ports"][0]["targetPort"].is_u64());
    assert_eq!(svc["spec"]["ports"][0]["port"], 80);
    let secret = std::fs::read(fixtures_dir().join("kubectl-1.37-create-secrets.pb")).unwrap();
    let secret = decode_protobuf(&secret).unwrap().object;
    use base64::Engine as _;
    let pw = base64::engine::general_purpose::STANDARD
        .decode(secret["data"]["password"].as_str().unwrap())
        .unwrap();
    assert_eq!(pw, b"hunter2");
}

#[test]
fn truncated_and_corrupted_fixtures_never_panic() {
    for (name, body) in fixtures() {
        for len in 0..body.len() {
            let _ = decode_protobuf(&body[..len]);
        }
        // flip every bit of every byte after the magic, one at a time
        for i in 4..body.len() {
            for bit in 0..8 {
                let mut b = body.clone();
                b[i] ^= 1 << bit;
                let _ = decode_protobuf(&b);
            }
        }
        assert!(decode_protobuf(&body[..3]).is_err(), "{name}");
    }
}
