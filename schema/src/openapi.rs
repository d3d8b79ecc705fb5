//! OpenAPI v3 component schemas generated from the descriptors, in upstream's form.

use crate::gvk::openapi_name;
use crate::model::{model, value_message, FieldModel, MessageModel, Special};
use prost_reflect::{Kind, MessageDescriptor};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashSet, VecDeque};

/// A (group, version, kind) a root kind is served as.
pub type Gvk = (String, String, String);

/// `{"$ref": "#/components/schemas/<openapi name>"}` for a message.
pub fn schema_ref(msg: &MessageDescriptor) -> Value {
    json!({ "$ref": format!("#/components/schemas/{}", openapi_name(msg)) })
}

/// The component schemas of `roots` and of every message reachable from them, keyed by
/// upstream's OpenAPI name and sorted by it.
///
/// Each root is a kind with the group/version/kinds it is served as; its schema gets
/// `x-kubernetes-group-version-kind: [{group, kind, version}, ...]` (an array, as upstream).
/// Messages become `type: object` schemas with the doc comment as `description`, a property
/// per JSON field (inlined Go structs flattened), `required` as upstream lists it, and the
/// comment markers as `x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`,
/// `x-kubernetes-list-type`, `x-kubernetes-list-map-keys` and `x-kubernetes-map-type`.
/// Message-typed properties are `allOf: [{$ref}]`; `metadata` and required struct fields get
/// `default: {}` and required scalars their zero `default`, like upstream. The special types
/// get upstream's v3 forms: Time/MicroTime `string`/`date-time`, Duration `string`,
/// IntOrString `oneOf [integer, string]` with format `int-or-string`, Quantity
/// `oneOf [string, number]`, RawExtension/FieldsV1 `object`, apiextensions JSON and the
/// JSONSchemaPropsOr* types any value.
pub fn openapi_components(roots: &[(MessageDescriptor, Vec<Gvk>)]) -> Map<String, Value> {
    let mut gvks: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut queue = VecDeque::new();
    let mut seen = HashSet::new();
    for (msg, list) in roots {
        let entry = gvks.entry(msg.full_name().to_string()).or_default();
        for (group, version, kind) in list {
            let v = json!({"group": group, "kind": kind, "version": version});
            if !entry.contains(&v) {
                entry.push(v);
            }
        }
        if seen.insert(msg.full_name().to_string()) {
            queue.push_back(msg.clone());
        }
    }
    let mut out = BTreeMap::new();
    while let Some(msg) = queue.pop_front() {
        let schema = match (Special::of(&msg), model(&msg)) {
            (Some(special), m) => special_schema(special, m),
            (None, Some(m)) => {
                for f in &m.json_fields {
                    if let Some(v) = value_message(&f.desc) {
                        if Special::of(&v) != Some(Special::StringList)
                            && seen.insert(v.full_name().to_string())
                        {
                            queue.push_back(v);
                        }
                    }
                }
                message_schema(m, gvks.get(msg.full_name()))
            }
            (None, None) => continue,
        };
        out.insert(openapi_name(&msg), schema);
    }
    out.into_iter().collect()
}

fn sorted(map: Map<String, Value>) -> Value {
    let mut entries: Vec<(String, Value)> = map.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Object(entries.into_iter().collect())
}

fn with_description(mut m: Map<String, Value>, description: &str) -> Map<String, Value> {
    if !description.is_empty() {
        m.insert("description".into(), Value::String(description.to_string()));
    }
    m
}

fn special_schema(special: Special, model: Option<&MessageModel>) -> Value {
    let description = model.map(|m| m.description.as_str()).unwrap_or("");
    let body = match special {
        Special::Time | Special::MicroTime => json!({"type": "string", "format": "date-time"}),
        Special::Duration => json!({"type": "string"}),
        Special::IntOrString => json!({
            "format": "int-or-string",
            "oneOf": [{"type": "integer"}, {"type": "string"}]
        }),
        Special::Quantity => json!({"oneOf": [{"type": "string"}, {"type": "number"}]}),
        Special::RawExtension | Special::FieldsV1 => json!({"type": "object"}),
        Special::StringList => json!({"type": "array", "items": {"type": "string", "default": ""}}),
        Special::Json
        | Special::SchemaOrArray
        | Special::SchemaOrBool
        | Special::SchemaOrStringArray => json!({}),
    };
    let Value::Object(m) = body else {
        return body;
    };
    sorted(with_description(m, description))
}

fn message_schema(model: &MessageModel, gvks: Option<&Vec<Value>>) -> Value {
    let mut props = Map::new();
    let mut required = Vec::new();
    for f in &model.json_fields {
        props.insert(f.json_name.clone(), property_schema(f));
        if f.required {
            required.push(Value::String(f.json_name.clone()));
        }
    }
    let mut m = with_description(Map::new(), &model.description);
    m.insert("type".into(), json!("object"));
    if !props.is_empty() {
        m.insert("properties".into(), Value::Object(props));
    }
    if !required.is_empty() {
        m.insert("required".into(), Value::Array(required));
    }
    if let Some(gvks) = gvks.filter(|g| !g.is_empty()) {
        m.insert(
            "x-kubernetes-group-version-kind".into(),
            Value::Array(gvks.clone()),
        );
    }
    if let Some(t) = &model.markers.struct_type {
        m.insert("x-kubernetes-map-type".into(), json!(t));
    }
    sorted(m)
}

/// (type, format, zero default) of a scalar kind.
fn scalar(kind: &Kind) -> (&'static str, Option<&'static str>, Value) {
    match kind {
        Kind::Bool => ("boolean", None, json!(false)),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 | Kind::Uint32 | Kind::Fixed32 => {
            ("integer", Some("int32"), json!(0))
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64 => {
            ("integer", Some("int64"), json!(0))
        }
        Kind::Double | Kind::Float => ("number", Some("double"), json!(0)),
        Kind::Bytes => ("string", Some("byte"), json!("")),
        _ => ("string", None, json!("")),
    }
}

/// The schema of one value (a singular field, a list element or a map value).
fn value_schema(kind: &Kind, with_default: bool) -> Map<String, Value> {
    let mut m = Map::new();
    match kind {
        Kind::Message(msg) => {
            if Special::of(msg) == Some(Special::StringList) {
                m.insert("type".into(), json!("array"));
                m.insert("items".into(), json!({"default": "", "type": "string"}));
                return m;
            }
            m.insert("allOf".into(), json!([schema_ref(msg)]));
            if with_default && Special::of(msg).is_none() {
                m.insert("default".into(), json!({}));
            }
        }
        other => {
            let (t, format, zero) = scalar(other);
            m.insert("type".into(), json!(t));
            if let Some(f) = format {
                m.insert("format".into(), json!(f));
            }
            if with_default {
                m.insert("default".into(), zero);
            }
        }
    }
    m
}

fn property_schema(f: &FieldModel) -> Value {
    let desc = &f.desc;
    let mut m = if desc.is_map() {
        let value_kind = match desc.kind() {
            Kind::Message(entry) => entry.map_entry_value_field().kind(),
            k => k,
        };
        let mut m = Map::new();
        m.insert("type".into(), json!("object"));
        m.insert(
            "additionalProperties".into(),
            sorted(value_schema(&value_kind, true)),
        );
        m
    } else if desc.is_list() {
        let mut m = Map::new();
        m.insert("type".into(), json!("array"));
        m.insert("items".into(), sorted(value_schema(&desc.kind(), true)));
        m
    } else {
        value_schema(&desc.kind(), f.required || f.json_name == "metadata")
    };
    if !f.description.is_empty() {
        m.insert("description".into(), json!(f.description));
    }
    let mk = &f.markers;
    if let Some(v) = &mk.patch_merge_key {
        m.insert("x-kubernetes-patch-merge-key".into(), json!(v));
    }
    if let Some(v) = &mk.patch_strategy {
        m.insert("x-kubernetes-patch-strategy".into(), json!(v));
    }
    if let Some(v) = &mk.list_type {
        m.insert("x-kubernetes-list-type".into(), json!(v));
    }
    if !mk.list_map_keys.is_empty() {
        m.insert("x-kubernetes-list-map-keys".into(), json!(mk.list_map_keys));
    }
    if let Some(v) = &mk.map_type {
        m.insert("x-kubernetes-map-type".into(), json!(v));
    }
    sorted(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gvk::message_for;

    fn deployment_components() -> Map<String, Value> {
        let d = message_for("apps", "v1", "Deployment").unwrap();
        openapi_components(&[(d, vec![("apps".into(), "v1".into(), "Deployment".into())])])
    }

    #[test]
    fn deployment_reaches_pod_spec() {
        let c = deployment_components();
        let dep = &c["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(dep["type"], "object");
        assert_eq!(
            dep["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
        );
        assert_eq!(
            dep["properties"]["metadata"],
            json!({
                "allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}],
                "default": {},
                "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
            })
        );
        assert!(dep.get("required").is_none());
        assert!(dep["description"]
            .as_str()
            .unwrap()
            .starts_with("Deployment enables"));
        let spec = &c["io.k8s.api.apps.v1.DeploymentSpec"];
        assert_eq!(spec["required"], json!(["selector", "template"]));
        assert_eq!(spec["properties"]["replicas"]["type"], "integer");
        assert_eq!(spec["properties"]["replicas"]["format"], "int32");
        let pod = &c["io.k8s.api.core.v1.PodSpec"];
        let containers = &pod["properties"]["containers"];
        assert_eq!(containers["type"], "array");
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(containers["x-kubernetes-list-type"], "map");
        assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
        assert_eq!(
            containers["items"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.Container"
        );
        assert_eq!(pod["properties"]["nodeSelector"]["type"], "object");
        assert_eq!(
            pod["properties"]["nodeSelector"]["additionalProperties"]["type"],
            "string"
        );
        assert_eq!(
            pod["properties"]["nodeSelector"]["x-kubernetes-map-type"],
            "atomic"
        );
        let ports = &c["io.k8s.api.core.v1.Container"]["properties"]["ports"];
        assert_eq!(
            ports["x-kubernetes-list-map-keys"],
            json!(["containerPort", "protocol"])
        );
        // inlined Go structs are flattened
        let vol = &c["io.k8s.api.core.v1.Volume"]["properties"];
        assert!(vol.get("emptyDir").is_some() && vol.get("volumeSource").is_none());
        let probe = &c["io.k8s.api.core.v1.Probe"]["properties"];
        assert!(probe.get("httpGet").is_some() && probe.get("handler").is_none());
        // no map-entry (nested) messages or inlined-only messages
        assert!(c.contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry"));
        for k in c.keys() {
            let segs: Vec<&str> = k.split('.').collect();
            let parent = segs[segs.len() - 2];
            assert!(
                parent.starts_with(|ch: char| ch.is_ascii_lowercase()),
                "{k}"
            );
        }
        assert!(!c.contains_key("io.k8s.api.core.v1.VolumeSource"));
        assert_eq!(
            c["io.k8s.api.core.v1.LocalObjectReference"]["x-kubernetes-map-type"],
            "atomic"
        );
    }

    #[test]
    fn special_types() {
        let c = deployment_components();
        let t = &c["io.k8s.apimachinery.pkg.apis.meta.v1.Time"];
        assert_eq!(t["type"], "string");
        assert_eq!(t["format"], "date-time");
        let ios = &c["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
        assert_eq!(
            ios["oneOf"],
            json!([{"type": "integer"}, {"type": "string"}])
        );
        assert_eq!(ios["format"], "int-or-string");
        assert!(ios.get("type").is_none());
        let q = &c["io.k8s.apimachinery.pkg.api.resource.Quantity"];
        assert_eq!(q["oneOf"], json!([{"type": "string"}, {"type": "number"}]));
        assert_eq!(
            c["io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1"]["type"],
            "object"
        );
        let rc = message_for("apps", "v1", "ControllerRevision").unwrap();
        let c2 = openapi_components(&[(rc, vec![])]);
        assert_eq!(
            c2["io.k8s.apimachinery.pkg.runtime.RawExtension"]["type"],
            "object"
        );
        assert!(c2["io.k8s.api.apps.v1.ControllerRevision"]
            .get("x-kubernetes-group-version-kind")
            .is_none());
        assert_eq!(
            c2["io.k8s.api.apps.v1.ControllerRevision"]["properties"]["revision"],
            json!({"default": 0, "description": "Revision indicates the revision of the state represented by Data.", "format": "int64", "type": "integer"})
        );
    }

    #[test]
    fn secrets_crds_and_multiple_gvks() {
        let s = message_for("", "v1", "Secret").unwrap();
        let del = message_for("", "v1", "DeleteOptions").unwrap();
        let c = openapi_components(&[
            (s, vec![("".into(), "v1".into(), "Secret".into())]),
            (
                del,
                vec![
                    ("".into(), "v1".into(), "DeleteOptions".into()),
                    ("apps".into(), "v1".into(), "DeleteOptions".into()),
                ],
            ),
        ]);
        let data = &c["io.k8s.api.core.v1.Secret"]["properties"]["data"];
        assert_eq!(
            data["additionalProperties"],
            json!({"format": "byte", "type": "string"})
                .as_object()
                .map(|o| {
                    let mut o = o.clone();
                    o.insert("default".into(), json!(""));
                    sorted(o)
                })
                .unwrap()
        );
        assert_eq!(
            c["io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"]
                ["x-kubernetes-group-version-kind"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
        let crd = message_for("apiextensions.k8s.io", "v1", "CustomResourceDefinition").unwrap();
        let c = openapi_components(&[(crd, vec![])]);
        let props = &c["io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps"]
            ["properties"];
        assert!(props.get("$ref").is_some());
        assert!(props.get("x-kubernetes-preserve-unknown-fields").is_some());
        assert_eq!(
            props["items"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray"
        );
        let user = message_for("authentication.k8s.io", "v1", "TokenReview").unwrap();
        let c = openapi_components(&[(user, vec![])]);
        assert_eq!(
            c["io.k8s.api.authentication.v1.UserInfo"]["properties"]["extra"]
                ["additionalProperties"],
            json!({"items": {"default": "", "type": "string"}, "type": "array"})
        );
        assert!(!c.contains_key("io.k8s.api.authentication.v1.ExtraValue"));
    }
}
