//! Unknown-field detection for JSON bodies, driven by the same descriptors as the decoder.

use crate::model::{model, value_message, Special};
use prost_reflect::MessageDescriptor;
use serde_json::Value;

/// Finds the JSON keys that the type does not have, as upstream's strict decoding reports
/// them (`spec.foo`, `spec.template.spec.containers[0].imagePullPolicyy`), and removes them
/// from `value` when `prune` is set.
///
/// Top-level `apiVersion`/`kind` are always allowed (and so are they inside nested kinds such
/// as an Eviction's DeleteOptions). Values of the special apimachinery types (Time, Quantity,
/// IntOrString, ...) are never descended into; RawExtension, FieldsV1 and apiextensions JSON
/// accept anything. Map values are checked only when they are messages. Only unknown fields
/// are reported: a value of the wrong JSON type is left for the typed decoder to reject.
pub fn find_unknown_fields(msg: &MessageDescriptor, value: &mut Value, prune: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut path = String::new();
    walk_message(msg, value, prune, &mut path, true, &mut out, 0);
    out
}

/// JSON nesting deeper than this is not inspected (serde_json itself stops at 128).
const MAX_DEPTH: usize = 200;

fn push_seg(path: &mut String, seg: &str) -> usize {
    let len = path.len();
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(seg);
    len
}

fn walk_message(
    msg: &MessageDescriptor,
    value: &mut Value,
    prune: bool,
    path: &mut String,
    top: bool,
    out: &mut Vec<String>,
    depth: usize,
) {
    if depth > MAX_DEPTH {
        return;
    }
    if let Some(special) = Special::of(msg) {
        walk_special(special, msg, value, prune, path, out, depth);
        return;
    }
    let Some(model) = model(msg) else {
        return;
    };
    let Value::Object(obj) = value else {
        return;
    };
    let mut unknown = Vec::new();
    for (key, child) in obj.iter_mut() {
        let Some(&idx) = model.by_json.get(key.as_str()) else {
            if (top || model.has_type_meta) && (key == "apiVersion" || key == "kind") {
                continue;
            }
            let len = push_seg(path, key);
            out.push(path.clone());
            path.truncate(len);
            unknown.push(key.clone());
            continue;
        };
        let Some(field) = model.json_fields.get(idx).map(|f| &f.desc) else {
            continue;
        };
        let Some(child_msg) = value_message(field) else {
            continue;
        };
        let len = push_seg(path, key);
        if field.is_map() {
            if let Value::Object(entries) = child {
                for (k, v) in entries.iter_mut() {
                    let l = push_seg(path, k);
                    walk_message(&child_msg, v, prune, path, false, out, depth + 1);
                    path.truncate(l);
                }
            }
        } else if field.is_list() {
            walk_list(&child_msg, child, prune, path, out, depth);
        } else {
            walk_message(&child_msg, child, prune, path, false, out, depth + 1);
        }
        path.truncate(len);
    }
    if prune {
        for key in unknown {
            obj.shift_remove(&key);
        }
    }
}

fn walk_list(
    elem: &MessageDescriptor,
    value: &mut Value,
    prune: bool,
    path: &mut String,
    out: &mut Vec<String>,
    depth: usize,
) {
    if let Value::Array(items) = value {
        for (i, item) in items.iter_mut().enumerate() {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            walk_message(elem, item, prune, path, false, out, depth + 1);
            path.truncate(len);
        }
    }
}

fn walk_special(
    special: Special,
    msg: &MessageDescriptor,
    value: &mut Value,
    prune: bool,
    path: &mut String,
    out: &mut Vec<String>,
    depth: usize,
) {
    let schema = || {
        msg.get_field_by_name("schema")
            .and_then(|f| value_message(&f))
    };
    match (special, &value) {
        (Special::SchemaOrArray, Value::Array(_)) => {
            if let Some(s) = schema() {
                walk_list(&s, value, prune, path, out, depth);
            }
        }
        (
            Special::SchemaOrArray | Special::SchemaOrBool | Special::SchemaOrStringArray,
            Value::Object(_),
        ) => {
            if let Some(s) = schema() {
                walk_message(&s, value, prune, path, false, out, depth + 1);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gvk::message_for;
    use serde_json::json;

    #[test]
    fn deployment_unknown_fields() {
        let d = message_for("apps", "v1", "Deployment").unwrap();
        let mut v = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "labels": {"anything": "goes"},
                "creationTimestamp": null,
                "bogus": 1
            },
            "spec": {
                "replicas": 2,
                "foo": true,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {"name": "a", "image": "x", "resources": {"limits": {"cpu": "1"}}},
                            {"name": "b", "image": "y", "imagePullPolicyy": "Always",
                             "ports": [{"containerPort": 80, "protocl": "TCP"}]}
                        ],
                        "volumes": [{"name": "v", "emptyDir": {}, "configMap": {"name": "c", "nam": 1}}]
                    }
                }
            },
            "status": {}
        });
        let found = find_unknown_fields(&d, &mut v, false);
        assert_eq!(
            found,
            vec![
                "metadata.bogus",
                "spec.foo",
                "spec.template.spec.containers[1].imagePullPolicyy",
                "spec.template.spec.containers[1].ports[0].protocl",
                "spec.template.spec.volumes[0].configMap.nam",
            ]
        );
        assert!(v["spec"].get("foo").is_some(), "not pruned without prune");
        let again = find_unknown_fields(&d, &mut v, true);
        assert_eq!(again, found);
        assert!(v["spec"].get("foo").is_none());
        assert!(v["metadata"].get("bogus").is_none());
        assert!(v["spec"]["template"]["spec"]["containers"][1]
            .get("imagePullPolicyy")
            .is_none());
        assert_eq!(v["spec"]["template"]["spec"]["containers"][1]["image"], "y");
        assert!(find_unknown_fields(&d, &mut v, false).is_empty());
    }

    #[test]
    fn special_types_are_leaves() {
        let cm = message_for("apps", "v1", "ControllerRevision").unwrap();
        let mut v = json!({
            "metadata": {"managedFields": [{"fieldsV1": {"f:spec": {}}, "time": "2024-01-01T00:00:00Z"}]},
            "data": {"whatever": {"nested": [1, 2]}},
            "revision": 3
        });
        assert!(find_unknown_fields(&cm, &mut v, false).is_empty());
    }

    #[test]
    fn nested_kinds_allow_type_meta() {
        let ev = message_for("policy", "v1", "Eviction").unwrap();
        let mut v = json!({
            "apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": "p"},
            "deleteOptions": {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0, "x": 1}
        });
        assert_eq!(
            find_unknown_fields(&ev, &mut v, false),
            vec!["deleteOptions.x"]
        );
        let pod = message_for("", "v1", "Pod").unwrap();
        let mut v = json!({"spec": {"kind": "x"}});
        assert_eq!(find_unknown_fields(&pod, &mut v, false), vec!["spec.kind"]);
    }

    #[test]
    fn crd_schemas() {
        let crd = message_for("apiextensions.k8s.io", "v1", "CustomResourceDefinition").unwrap();
        let mut v = json!({
            "spec": {
                "group": "example.com",
                "names": {"kind": "W", "plural": "ws"},
                "scope": "Namespaced",
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": true,
                        "properties": {
                            "spec": {"type": "object", "typo": 1,
                                     "items": [{"type": "string", "bad": 2}],
                                     "additionalProperties": {"type": "string", "worse": 3},
                                     "default": {"free": {"form": true}}},
                            "list": {"type": "array", "items": {"type": "string"},
                                     "x-kubernetes-list-type": "map",
                                     "x-kubernetes-list-map-keys": ["a"]}
                        }
                    }}
                }]
            }
        });
        assert_eq!(
            find_unknown_fields(&crd, &mut v, false),
            vec![
                "spec.versions[0].schema.openAPIV3Schema.properties.spec.typo",
                "spec.versions[0].schema.openAPIV3Schema.properties.spec.items[0].bad",
                "spec.versions[0].schema.openAPIV3Schema.properties.spec.additionalProperties.worse",
            ]
        );
    }

    #[test]
    fn inline_fields_and_non_objects() {
        let pod = message_for("", "v1", "Pod").unwrap();
        let mut v = json!({"spec": {"containers": [{"name": "c",
            "livenessProbe": {"httpGet": {"port": "http"}, "periodSeconds": 3, "handler": {}}}],
            "volumes": "not-a-list"}});
        assert_eq!(
            find_unknown_fields(&pod, &mut v, false),
            vec!["spec.containers[0].livenessProbe.handler"]
        );
        let mut s = json!("string");
        assert!(find_unknown_fields(&pod, &mut s, true).is_empty());
    }
}
