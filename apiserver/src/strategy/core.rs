//! core/v1 kinds other than pods.

use keelson_apimachinery::Cause;
use serde_json::{json, Value};

use super::pod::default_pod_spec;
use super::{arr_mut, invalid, not_supported, obj_mut, required, set_default, NameRule, Strategy};

pub struct Namespace;
impl Strategy for Namespace {
    fn name_rule(&self) -> NameRule {
        NameRule::DnsLabel
    }
    fn prepare_create(&self, obj: &mut Value) {
        if let Some(map) = obj.as_object_mut() {
            map.insert("status".into(), json!({"phase": "Active"}));
        }
        let spec = crate::object::ensure_object(obj, &["spec"]);
        spec.insert("finalizers".into(), json!(["kubernetes"]));
    }
    fn holds_deletion(&self, obj: &Value) -> bool {
        obj.pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty())
    }
    fn prepare_delete(&self, obj: &mut Value) {
        crate::object::ensure_object(obj, &["status"]).insert("phase".into(), json!("Terminating"));
    }
    fn default(&self, obj: &mut Value) {
        // The NamespaceDefaultLabelName feature: the name is always a label.
        let name = crate::object::name(obj).to_string();
        if !name.is_empty() {
            crate::object::ensure_object(obj, &["metadata", "labels"])
                .insert("kubernetes.io/metadata.name".into(), json!(name));
        }
    }
}

pub struct Service;
const SERVICE_TYPES: &[&str] = &["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"];
impl Strategy for Service {
    fn name_rule(&self) -> NameRule {
        NameRule::Dns1035Label
    }
    fn prepare_create(&self, obj: &mut Value) {
        if let Some(map) = obj.as_object_mut() {
            map.insert("status".into(), json!({"loadBalancer": {}}));
        }
    }
    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj_mut(obj, "spec") else {
            return;
        };
        set_default(spec, "type", json!("ClusterIP"));
        set_default(spec, "sessionAffinity", json!("None"));
        let kind = spec
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP")
            .to_string();
        if kind != "ExternalName" {
            set_default(spec, "internalTrafficPolicy", json!("Cluster"));
        }
        if kind == "NodePort" || kind == "LoadBalancer" {
            set_default(spec, "externalTrafficPolicy", json!("Cluster"));
        }
        if kind == "LoadBalancer" {
            set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
        }
        if let Some(ports) = arr_mut(spec, "ports") {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                set_default(p, "protocol", json!("TCP"));
                if let Some(port) = p.get("port").cloned() {
                    set_default(p, "targetPort", port);
                }
            }
        }
    }
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut causes = Vec::new();
        let kind = obj
            .pointer("/spec/type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP");
        if !SERVICE_TYPES.contains(&kind) {
            causes.push(not_supported("spec.type", &json!(kind), SERVICE_TYPES));
        }
        let ports = obj.pointer("/spec/ports").and_then(Value::as_array);
        let headless = obj.pointer("/spec/clusterIP").and_then(Value::as_str) == Some("None");
        if kind != "ExternalName" && !headless && ports.is_none_or(|p| p.is_empty()) {
            causes.push(required("spec.ports"));
        }
        if kind == "ExternalName"
            && obj
                .pointer("/spec/externalName")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        {
            causes.push(required("spec.externalName"));
        }
        let many = ports.is_some_and(|p| p.len() > 1);
        let mut names = std::collections::HashSet::new();
        for (i, p) in ports.into_iter().flatten().enumerate() {
            let at = format!("spec.ports[{i}]");
            match p.get("port").and_then(Value::as_i64) {
                Some(n) if (1..=65535).contains(&n) => {}
                Some(n) => causes.push(invalid(
                    &format!("{at}.port"),
                    &json!(n),
                    "must be between 1 and 65535, inclusive",
                )),
                None => causes.push(required(&format!("{at}.port"))),
            }
            let name = p.get("name").and_then(Value::as_str).unwrap_or("");
            if many && name.is_empty() {
                causes.push(required(&format!("{at}.name")));
            }
            if !name.is_empty() && !names.insert(name) {
                causes.push(Cause::new(
                    "FieldValueDuplicate",
                    format!("Duplicate value: {name:?}"),
                    format!("{at}.name"),
                ));
            }
            if let Some(np) = p.get("nodePort").and_then(Value::as_i64) {
                if np != 0 && !(30000..=32767).contains(&np) {
                    causes.push(invalid(&format!("{at}.nodePort"), &json!(np), "provided port is not in the valid range. The range of valid ports is 30000-32767"));
                }
            }
        }
        causes
    }
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut causes = self.validate(new);
        let old_ip = old
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("");
        let new_ip = new
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !old_ip.is_empty()
            && new_ip != old_ip
            && new.pointer("/spec/type").and_then(Value::as_str) != Some("ExternalName")
        {
            causes.push(super::immutable("spec.clusterIPs[0]", &json!(new_ip)));
        }
        causes
    }
}

pub struct Configmap;
impl Strategy for Configmap {
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        validate_data_keys(obj, &["data", "binaryData"])
    }
}

pub struct Secret;
impl Strategy for Secret {
    fn default(&self, obj: &mut Value) {
        if let Some(map) = obj.as_object_mut() {
            set_default(map, "type", json!("Opaque"));
        }
    }
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut causes = validate_data_keys(obj, &["data", "stringData"]);
        for (k, v) in obj
            .get("data")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let ok = v.as_str().is_some_and(|s| {
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, s).is_ok()
            });
            if !ok && !v.is_null() {
                causes.push(invalid(&format!("data[{k}]"), v, "must be base64-encoded"));
            }
        }
        causes
    }
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut causes = self.validate(new);
        if new.get("type") != old.get("type") {
            causes.push(super::immutable(
                "type",
                new.get("type").unwrap_or(&Value::Null),
            ));
        }
        if old.get("immutable").and_then(Value::as_bool) == Some(true)
            && (new.get("data") != old.get("data"))
        {
            causes.push(Cause::new(
                "FieldValueForbidden",
                "Forbidden: field is immutable when `immutable` is set",
                "data",
            ));
        }
        causes
    }
}

/// ConfigMap and Secret keys: `[-._a-zA-Z0-9]+`, at most 253 characters.
fn validate_data_keys(obj: &Value, fields: &[&str]) -> Vec<Cause> {
    let mut causes = Vec::new();
    for field in fields {
        for key in obj
            .get(*field)
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|m| m.keys())
        {
            let ok = !key.is_empty()
                && key.len() <= 253
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
                && key != "."
                && key != "..";
            if !ok {
                causes.push(invalid(
                    &format!("{field}[{key}]"),
                    &json!(key),
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                ));
            }
        }
    }
    causes
}

pub struct Node;
impl Strategy for Node {
    fn prepare_create(&self, _obj: &mut Value) {}
}

pub struct Event;
impl Strategy for Event {
    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }
}

pub struct ReplicationController;
impl Strategy for ReplicationController {
    fn tracks_generation(&self) -> bool {
        true
    }
    fn default(&self, obj: &mut Value) {
        let template_labels = obj.pointer("/spec/template/metadata/labels").cloned();
        if let Some(spec) = obj_mut(obj, "spec") {
            set_default(spec, "replicas", json!(1));
            if let Some(labels) = template_labels.clone() {
                set_default(spec, "selector", labels);
            }
            if let Some(spec) = spec
                .get_mut("template")
                .and_then(|t| t.get_mut("spec"))
                .and_then(Value::as_object_mut)
            {
                default_pod_spec(spec);
            }
        }
        if let Some(labels) = template_labels {
            let meta = crate::object::meta_mut(obj);
            set_default(meta, "labels", labels);
        }
    }
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut causes = Vec::new();
        let selector = obj.pointer("/spec/selector").and_then(Value::as_object);
        if selector.is_none_or(|s| s.is_empty()) {
            causes.push(required("spec.selector"));
        }
        match obj.pointer("/spec/template/spec") {
            Some(spec) => super::pod::validate_pod_spec(spec, "spec.template.spec", &mut causes),
            None => causes.push(required("spec.template")),
        }
        if let (Some(selector), Some(labels)) = (
            selector,
            obj.pointer("/spec/template/metadata/labels")
                .and_then(Value::as_object),
        ) {
            if selector.iter().any(|(k, v)| labels.get(k) != Some(v)) {
                causes.push(invalid(
                    "spec.template.metadata.labels",
                    &Value::Object(labels.clone()),
                    "`selector` does not match template `labels`",
                ));
            }
        }
        causes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_ports_default_target_port_and_protocol() {
        let mut svc = json!({"spec": {"ports": [{"port": 80}]}});
        Service.default(&mut svc);
        assert_eq!(
            svc["spec"]["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        assert_eq!(svc["spec"]["type"], "ClusterIP");
        assert!(Service.validate(&svc).is_empty());
        assert_eq!(
            Service.validate(&json!({"spec": {}}))[0].field,
            "spec.ports"
        );
    }

    #[test]
    fn config_keys_are_checked() {
        let causes = Configmap.validate(&json!({"data": {"ok.key": "1", "bad key": "2"}}));
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "data[bad key]");
    }

    #[test]
    fn namespace_gets_phase_finalizer_and_name_label() {
        let mut ns = json!({"metadata": {"name": "demo"}});
        Namespace.prepare_create(&mut ns);
        Namespace.default(&mut ns);
        assert_eq!(ns["status"]["phase"], "Active");
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "demo"
        );
    }
}
