//! Pods and pod templates: `SetDefaults_PodSpec` / `SetDefaults_Container`, the admission
//! defaults a pod gets on create (service account, default tolerations, priority), and the
//! core of `ValidatePodSpec`.

use keelson_apimachinery::Cause;
use serde_json::{json, Map, Value};

use super::{
    arr_mut, invalid, is_empty_value, not_supported, obj_mut, required, set_default, Strategy,
};

pub struct Pod;

impl Strategy for Pod {
    fn tracks_generation(&self) -> bool {
        true
    }
    fn prepare_create(&self, obj: &mut Value) {
        let qos = qos_class(obj.get("spec"));
        if let Some(map) = obj.as_object_mut() {
            map.insert(
                "status".into(),
                json!({"phase": "Pending", "qosClass": qos}),
            );
        }
        if let Some(spec) = obj_mut(obj, "spec") {
            admission_defaults(spec);
        }
    }

    fn default(&self, obj: &mut Value) {
        if let Some(spec) = obj_mut(obj, "spec") {
            default_pod_spec(spec);
        }
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut causes = Vec::new();
        match obj.get("spec") {
            Some(spec) => validate_pod_spec(spec, "spec", &mut causes),
            None => causes.push(required("spec.containers")),
        }
        causes
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut causes = self.validate(new);
        // Only images, activeDeadlineSeconds, tolerations (additions) and
        // terminationGracePeriodSeconds may change on a running pod; the common case of a
        // changed command or port is refused as upstream does.
        let strip = |spec: Option<&Value>| -> Value {
            let mut spec = spec.cloned().unwrap_or(Value::Null);
            if let Some(map) = spec.as_object_mut() {
                for k in [
                    "activeDeadlineSeconds",
                    "tolerations",
                    "terminationGracePeriodSeconds",
                    "nodeName",
                    "schedulingGates",
                    "ephemeralContainers",
                ] {
                    map.remove(k);
                }
                for list in ["containers", "initContainers"] {
                    if let Some(cs) = map.get_mut(list).and_then(Value::as_array_mut) {
                        for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                            c.remove("image");
                        }
                    }
                }
            }
            spec
        };
        if strip(new.get("spec")) != strip(old.get("spec")) {
            causes.push(Cause::new(
                "FieldValueForbidden",
                "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
                "spec",
            ));
        }
        causes
    }
}

/// What the ServiceAccount, DefaultTolerationSeconds and Priority admission plugins add.
fn admission_defaults(spec: &mut Map<String, Value>) {
    let sa = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| {
            spec.get("serviceAccount")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        })
        .unwrap_or("default")
        .to_string();
    spec.insert("serviceAccountName".into(), json!(sa));
    spec.insert("serviceAccount".into(), json!(sa));
    let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
    if let Some(list) = tolerations.as_array_mut() {
        for key in [
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
        ] {
            let present = list.iter().any(|t| {
                t.get("key").and_then(Value::as_str) == Some(key)
                    || (t.get("operator").and_then(Value::as_str) == Some("Exists")
                        && t.get("key").is_none())
            });
            if !present {
                list.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
            }
        }
    }
    if spec
        .get("priorityClassName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        set_default(spec, "priority", json!(0));
    }
    set_default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
}

/// `SetDefaults_PodSpec` and the container defaults; used for pods and pod templates.
pub fn default_pod_spec(spec: &mut Map<String, Value>) {
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    let host_network = spec
        .get("hostNetwork")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    for list in ["containers", "initContainers"] {
        if let Some(containers) = arr_mut(spec, list) {
            for c in containers.iter_mut().filter_map(Value::as_object_mut) {
                default_container(c, host_network);
            }
        }
    }
    if let Some(volumes) = arr_mut(spec, "volumes") {
        for v in volumes.iter_mut().filter_map(Value::as_object_mut) {
            default_volume(v);
        }
    }
}

fn default_container(c: &mut Map<String, Value>, host_network: bool) {
    set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(c, "terminationMessagePolicy", json!("File"));
    let image = c.get("image").and_then(Value::as_str).unwrap_or("");
    set_default(c, "imagePullPolicy", json!(default_pull_policy(image)));
    set_default(c, "resources", json!({}));
    if let Some(ports) = arr_mut(c, "ports") {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_default(p, "protocol", json!("TCP"));
            if host_network {
                if let Some(cp) = p.get("containerPort").cloned() {
                    set_default(p, "hostPort", cp);
                }
            }
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).and_then(Value::as_object_mut) {
            set_default(p, "timeoutSeconds", json!(1));
            set_default(p, "periodSeconds", json!(10));
            set_default(p, "successThreshold", json!(1));
            set_default(p, "failureThreshold", json!(3));
            if let Some(get) = p.get_mut("httpGet").and_then(Value::as_object_mut) {
                set_default(get, "path", json!("/"));
                set_default(get, "scheme", json!("HTTP"));
            }
        }
    }
    if let Some(env) = arr_mut(c, "env") {
        for e in env.iter_mut() {
            if let Some(field_ref) = e
                .pointer_mut("/valueFrom/fieldRef")
                .and_then(Value::as_object_mut)
            {
                set_default(field_ref, "apiVersion", json!("v1"));
            }
        }
    }
}

fn default_volume(v: &mut Map<String, Value>) {
    for source in ["configMap", "secret", "downwardAPI", "projected"] {
        if let Some(s) = v.get_mut(source).and_then(Value::as_object_mut) {
            set_default(s, "defaultMode", json!(420));
        }
    }
    if let Some(e) = v.get_mut("emptyDir") {
        if e.is_null() {
            *e = json!({});
        }
    }
    if let Some(h) = v.get_mut("hostPath").and_then(Value::as_object_mut) {
        set_default(h, "type", json!(""));
    }
}

/// `Always` for `:latest` or untagged images, `IfNotPresent` otherwise.
pub fn default_pull_policy(image: &str) -> &'static str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last_segment = without_digest.rsplit('/').next().unwrap_or(without_digest);
    if image.contains('@') {
        return "IfNotPresent";
    }
    match last_segment.split_once(':') {
        Some((_, tag)) if tag != "latest" => "IfNotPresent",
        _ => "Always",
    }
}

fn qos_class(spec: Option<&Value>) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| spec.and_then(|s| s.get(k)).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in &containers {
        let requests = c.pointer("/resources/requests").and_then(Value::as_object);
        let limits = c.pointer("/resources/limits").and_then(Value::as_object);
        for res in ["cpu", "memory"] {
            let req = requests.and_then(|r| r.get(res));
            let lim = limits.and_then(|l| l.get(res));
            if req.is_some() || lim.is_some() {
                any = true;
            }
            match (req, lim) {
                (_, None) => guaranteed = false,
                (Some(r), Some(l)) if r != l => guaranteed = false,
                _ => {}
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];

/// The part of `ValidatePodSpec` that catches what users get wrong by hand.
pub fn validate_pod_spec(spec: &Value, path: &str, causes: &mut Vec<Cause>) {
    let containers = spec.get("containers").and_then(Value::as_array);
    if containers.is_none_or(|c| c.is_empty()) {
        causes.push(required(&format!("{path}.containers")));
    }
    let mut names = std::collections::HashSet::new();
    for list in ["initContainers", "containers"] {
        for (i, c) in spec
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let at = format!("{path}.{list}[{i}]");
            let name = c.get("name").and_then(Value::as_str).unwrap_or("");
            if name.is_empty() {
                causes.push(required(&format!("{at}.name")));
            } else {
                for msg in keelson_apimachinery::names::is_dns1123_label(name) {
                    causes.push(invalid(&format!("{at}.name"), &json!(name), &msg));
                }
                if !names.insert(name.to_string()) {
                    causes.push(Cause::new(
                        "FieldValueDuplicate",
                        format!("Duplicate value: {name:?}"),
                        format!("{at}.name"),
                    ));
                }
            }
            if is_empty_value(c.get("image")) {
                causes.push(required(&format!("{at}.image")));
            }
            if let Some(p) = c.get("imagePullPolicy").filter(|v| !v.is_null()) {
                if !p.as_str().is_some_and(|p| PULL_POLICIES.contains(&p)) {
                    causes.push(not_supported(
                        &format!("{at}.imagePullPolicy"),
                        p,
                        PULL_POLICIES,
                    ));
                }
            }
            for (j, port) in c
                .get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let pat = format!("{at}.ports[{j}]");
                match port.get("containerPort").and_then(Value::as_i64) {
                    Some(n) if (1..=65535).contains(&n) => {}
                    Some(n) => causes.push(invalid(
                        &format!("{pat}.containerPort"),
                        &json!(n),
                        "must be between 1 and 65535, inclusive",
                    )),
                    None => causes.push(required(&format!("{pat}.containerPort"))),
                }
                if let Some(proto) = port.get("protocol").filter(|v| !v.is_null()) {
                    if !proto.as_str().is_some_and(|p| PROTOCOLS.contains(&p)) {
                        causes.push(not_supported(&format!("{pat}.protocol"), proto, PROTOCOLS));
                    }
                }
            }
            for (j, env) in c
                .get("env")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                if is_empty_value(env.get("name")) {
                    causes.push(required(&format!("{at}.env[{j}].name")));
                }
            }
        }
    }
    if let Some(p) = spec.get("restartPolicy").filter(|v| !v.is_null()) {
        if !p.as_str().is_some_and(|p| RESTART_POLICIES.contains(&p)) {
            causes.push(not_supported(
                &format!("{path}.restartPolicy"),
                p,
                RESTART_POLICIES,
            ));
        }
    }
    if let Some(p) = spec.get("dnsPolicy").filter(|v| !v.is_null()) {
        if !p.as_str().is_some_and(|p| DNS_POLICIES.contains(&p)) {
            causes.push(not_supported(&format!("{path}.dnsPolicy"), p, DNS_POLICIES));
        }
    }
    let mut volume_names = std::collections::HashSet::new();
    for (i, v) in spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = v.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            causes.push(required(&format!("{path}.volumes[{i}].name")));
        } else if !volume_names.insert(name) {
            causes.push(Cause::new(
                "FieldValueDuplicate",
                format!("Duplicate value: {name:?}"),
                format!("{path}.volumes[{i}].name"),
            ));
        }
    }
    super::check_non_negative(
        spec,
        &["terminationGracePeriodSeconds"],
        &format!("{path}.terminationGracePeriodSeconds"),
        causes,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_follows_the_tag() {
        assert_eq!(default_pull_policy("nginx"), "Always");
        assert_eq!(default_pull_policy("nginx:latest"), "Always");
        assert_eq!(default_pull_policy("nginx:1.7.9"), "IfNotPresent");
        assert_eq!(default_pull_policy("registry:5000/nginx"), "Always");
        assert_eq!(default_pull_policy("registry:5000/nginx:1"), "IfNotPresent");
        assert_eq!(default_pull_policy("nginx@sha256:abc"), "IfNotPresent");
    }

    #[test]
    fn pod_create_gets_admission_and_spec_defaults() {
        let mut pod = json!({"spec": {"containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80}]}]}});
        Pod.prepare_create(&mut pod);
        Pod.default(&mut pod);
        assert_eq!(pod["spec"]["serviceAccountName"], "default");
        assert_eq!(pod["spec"]["tolerations"].as_array().map(Vec::len), Some(2));
        assert_eq!(pod["spec"]["containers"][0]["ports"][0]["protocol"], "TCP");
        assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(pod["status"]["phase"], "Pending");
        assert_eq!(pod["status"]["qosClass"], "BestEffort");
    }

    #[test]
    fn missing_image_and_containers_are_required() {
        let causes = Pod.validate(&json!({"spec": {"containers": [{"name": "c"}]}}));
        assert_eq!(
            causes.iter().map(|c| c.field.as_str()).collect::<Vec<_>>(),
            vec!["spec.containers[0].image"]
        );
        let causes = Pod.validate(&json!({"spec": {}}));
        assert_eq!(causes[0].field, "spec.containers");
    }

    #[test]
    fn qos_classes() {
        let g = json!({"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}}]});
        assert_eq!(qos_class(Some(&g)), "Guaranteed");
        let b = json!({"containers": [{"resources": {"requests": {"cpu": "1"}}}]});
        assert_eq!(qos_class(Some(&b)), "Burstable");
    }
}
