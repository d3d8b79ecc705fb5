//! Workloads: apps/v1 and batch/v1 defaulting and validation.

use keelson_apimachinery::Cause;
use serde_json::{json, Map, Value};

use super::pod::{default_pod_spec, validate_pod_spec};
use super::{check_non_negative, invalid, not_supported, obj_mut, required, set_default, Strategy};

/// Defaults the pod template at `path` (e.g. `spec.template`).
fn default_template(obj: &mut Value, path: &[&str]) {
    let mut cur = obj;
    for p in path {
        match cur.get_mut(*p) {
            Some(v) => cur = v,
            None => return,
        }
    }
    if let Some(spec) = obj_mut(cur, "spec") {
        default_pod_spec(spec);
    }
}

fn validate_template(obj: &Value, path: &[&str], causes: &mut Vec<Cause>) {
    let field = path.join(".");
    let mut cur = obj;
    for p in path {
        match cur.get(*p) {
            Some(v) => cur = v,
            None => {
                causes.push(required(&field));
                return;
            }
        }
    }
    match cur.get("spec") {
        Some(spec) => validate_pod_spec(spec, &format!("{field}.spec"), causes),
        None => causes.push(required(&format!("{field}.spec.containers"))),
    }
}

/// `spec.selector` is required, non-empty and must select the template's labels.
fn validate_selector(obj: &Value, template_path: &str, causes: &mut Vec<Cause>) {
    let Some(selector) = obj.pointer("/spec/selector").filter(|s| !s.is_null()) else {
        causes.push(required("spec.selector"));
        return;
    };
    let parsed = match keelson_apimachinery::labels::Selector::from_label_selector_json(selector) {
        Ok(s) => s,
        Err(msg) => {
            causes.push(invalid("spec.selector", selector, &msg));
            return;
        }
    };
    if parsed.is_empty() {
        causes.push(invalid(
            "spec.selector",
            selector,
            "empty selector is invalid for deployment",
        ));
        return;
    }
    let labels: std::collections::BTreeMap<String, String> = obj
        .pointer(&format!(
            "/{}/metadata/labels",
            template_path.replace('.', "/")
        ))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    if !parsed.matches(&labels) {
        causes.push(invalid(
            &format!("{template_path}.metadata.labels"),
            &json!(labels),
            "`selector` does not match template `labels`",
        ));
    }
}

/// What every workload with a selector and a pod template must satisfy.
fn validate_replicated(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    validate_selector(obj, "spec.template", &mut causes);
    validate_template(obj, &["spec", "template"], &mut causes);
    check_non_negative(obj, &["spec", "replicas"], "spec.replicas", &mut causes);
    causes
}

fn spec_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    obj_mut(obj, "spec")
}

fn selector_immutable(new: &Value, old: &Value, causes: &mut Vec<Cause>) {
    let (n, o) = (new.pointer("/spec/selector"), old.pointer("/spec/selector"));
    if n != o {
        causes.push(super::immutable("spec.selector", n.unwrap_or(&Value::Null)));
    }
}

pub struct Deployment;
impl Strategy for Deployment {
    fn tracks_generation(&self) -> bool {
        true
    }
    fn default(&self, obj: &mut Value) {
        if let Some(spec) = spec_mut(obj) {
            set_default(spec, "replicas", json!(1));
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(spec, "progressDeadlineSeconds", json!(600));
            let strategy = spec.entry("strategy").or_insert_with(|| json!({}));
            if let Some(strategy) = strategy.as_object_mut() {
                set_default(strategy, "type", json!("RollingUpdate"));
                if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
                    let ru = strategy.entry("rollingUpdate").or_insert_with(|| json!({}));
                    if let Some(ru) = ru.as_object_mut() {
                        set_default(ru, "maxUnavailable", json!("25%"));
                        set_default(ru, "maxSurge", json!("25%"));
                    }
                }
            }
        }
        default_template(obj, &["spec", "template"]);
    }
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut causes = validate_replicated(obj);
        if let Some(t) = obj.pointer("/spec/strategy/type").filter(|v| !v.is_null()) {
            const TYPES: &[&str] = &["Recreate", "RollingUpdate"];
            if !t.as_str().is_some_and(|t| TYPES.contains(&t)) {
                causes.push(not_supported("spec.strategy.type", t, TYPES));
            }
        }
        if let Some(p) = obj
            .pointer("/spec/template/spec/restartPolicy")
            .and_then(Value::as_str)
        {
            if p != "Always" {
                causes.push(not_supported(
                    "spec.template.spec.restartPolicy",
                    &json!(p),
                    &["Always"],
                ));
            }
        }
        causes
    }
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut causes = self.validate(new);
        selector_immutable(new, old, &mut causes);
        causes
    }
}

pub struct ReplicaSet;
impl Strategy for ReplicaSet {
    fn tracks_generation(&self) -> bool {
        true
    }
    fn default(&self, obj: &mut Value) {
        if let Some(spec) = spec_mut(obj) {
            set_default(spec, "replicas", json!(1));
        }
        default_template(obj, &["spec", "template"]);
    }
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        validate_replicated(obj)
    }
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut causes = self.validate(new);
        selector_immutable(new, old, &mut causes);
        causes
    }
}

pub struct StatefulSet;
impl Strategy for StatefulSet {
    fn tracks_generation(&self) -> bool {
        true
    }
    fn default(&self, obj: &mut Value) {
        if let Some(spec) = spec_mut(obj) {
            set_default(spec, "replicas", json!(1));
            set_default(spec, "podManagementPolicy", json!("OrderedReady"));
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
            );
            set_default(
                spec,
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
        }
        default_template(obj, &["spec", "template"]);
    }
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        validate_replicated(obj)
    }
}

pub struct DaemonSet;
impl Strategy for DaemonSet {
    fn tracks_generation(&self) -> bool {
        true
    }
    fn default(&self, obj: &mut Value) {
        if let Some(spec) = spec_mut(obj) {
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
            );
        }
        default_template(obj, &["spec", "template"]);
    }
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        validate_replicated(obj)
    }
}

pub struct Job;
impl Strategy for Job {
    fn tracks_generation(&self) -> bool {
        true
    }
    fn prepare_create(&self, obj: &mut Value) {
        // The Job strategy generates a selector on the job's uid unless manualSelector is set.
        let manual = obj
            .pointer("/spec/manualSelector")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let uid = crate::object::uid(obj).to_string();
        let name = crate::object::name(obj).to_string();
        if manual || uid.is_empty() {
            return;
        }
        if let Some(spec) = spec_mut(obj) {
            spec.insert(
                "selector".into(),
                json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
            );
            let labels = crate::object::ensure_object(
                spec.entry("template").or_insert_with(|| json!({})),
                &["metadata", "labels"],
            );
            for (k, v) in [
                ("batch.kubernetes.io/controller-uid", &uid),
                ("batch.kubernetes.io/job-name", &name),
                ("controller-uid", &uid),
                ("job-name", &name),
            ] {
                labels.entry(k).or_insert_with(|| json!(v));
            }
        }
    }
    fn default(&self, obj: &mut Value) {
        if let Some(spec) = spec_mut(obj) {
            let indexed = spec.get("completionMode").and_then(Value::as_str) == Some("Indexed");
            if spec.get("completions").is_none_or(Value::is_null)
                && spec.get("parallelism").is_none_or(Value::is_null)
            {
                spec.insert("completions".into(), json!(1));
            }
            set_default(spec, "parallelism", json!(1));
            set_default(
                spec,
                "backoffLimit",
                json!(if indexed { 2147483647 } else { 6 }),
            );
            set_default(spec, "completionMode", json!("NonIndexed"));
            set_default(spec, "suspend", json!(false));
            set_default(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
        }
        default_template(obj, &["spec", "template"]);
    }
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut causes = Vec::new();
        validate_template(obj, &["spec", "template"], &mut causes);
        match obj
            .pointer("/spec/template/spec/restartPolicy")
            .and_then(Value::as_str)
        {
            Some("OnFailure" | "Never") => {}
            Some(other) => causes.push(not_supported(
                "spec.template.spec.restartPolicy",
                &json!(other),
                &["OnFailure", "Never"],
            )),
            None => causes.push(required("spec.template.spec.restartPolicy")),
        }
        check_non_negative(
            obj,
            &["spec", "parallelism"],
            "spec.parallelism",
            &mut causes,
        );
        check_non_negative(
            obj,
            &["spec", "completions"],
            "spec.completions",
            &mut causes,
        );
        check_non_negative(
            obj,
            &["spec", "backoffLimit"],
            "spec.backoffLimit",
            &mut causes,
        );
        causes
    }
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut causes = self.validate(new);
        selector_immutable(new, old, &mut causes);
        causes
    }
}

pub struct CronJob;
impl Strategy for CronJob {
    fn tracks_generation(&self) -> bool {
        true
    }
    fn default(&self, obj: &mut Value) {
        if let Some(spec) = spec_mut(obj) {
            set_default(spec, "concurrencyPolicy", json!("Allow"));
            set_default(spec, "suspend", json!(false));
            set_default(spec, "successfulJobsHistoryLimit", json!(3));
            set_default(spec, "failedJobsHistoryLimit", json!(1));
        }
        default_template(obj, &["spec", "jobTemplate", "spec", "template"]);
    }
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut causes = Vec::new();
        match obj.pointer("/spec/schedule").and_then(Value::as_str) {
            None | Some("") => causes.push(required("spec.schedule")),
            Some(s) => {
                let fields = s.split_whitespace().count();
                if !(s.starts_with('@') || fields == 5) {
                    causes.push(invalid(
                        "spec.schedule",
                        &json!(s),
                        &format!("expected exactly 5 fields, found {fields}: {s}"),
                    ));
                }
            }
        }
        validate_template(
            obj,
            &["spec", "jobTemplate", "spec", "template"],
            &mut causes,
        );
        causes
    }
}

/// autoscaling/v2 (the storage version; v1 bodies are converted before defaulting).
pub struct HorizontalPodAutoscaler;
impl Strategy for HorizontalPodAutoscaler {
    fn tracks_generation(&self) -> bool {
        true
    }
    fn default(&self, obj: &mut Value) {
        let Some(spec) = spec_mut(obj) else { return };
        set_default(spec, "minReplicas", json!(1));
        if spec
            .get("metrics")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        {
            spec.insert(
                "metrics".into(),
                json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]),
            );
        }
        let behavior = spec.entry("behavior").or_insert_with(|| json!({}));
        if let Some(behavior) = behavior.as_object_mut() {
            set_default(
                behavior,
                "scaleUp",
                json!({"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                       "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]}),
            );
            set_default(
                behavior,
                "scaleDown",
                json!({"stabilizationWindowSeconds": 300, "selectPolicy": "Max",
                       "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}),
            );
        }
    }
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut causes = Vec::new();
        let min = obj
            .pointer("/spec/minReplicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        match obj.pointer("/spec/maxReplicas").and_then(Value::as_i64) {
            None => causes.push(required("spec.maxReplicas")),
            Some(max) if max < min => causes.push(invalid(
                "spec.maxReplicas",
                &json!(max),
                "must be greater than or equal to `minReplicas`",
            )),
            Some(_) => {}
        }
        if obj
            .pointer("/spec/scaleTargetRef/name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            causes.push(required("spec.scaleTargetRef.name"));
        }
        causes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nginx() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "nginx-deployment", "labels": {"app": "nginx"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "nginx"}},
                     "template": {"metadata": {"labels": {"app": "nginx"}},
                                  "spec": {"containers": [{"name": "nginx", "image": "nginx:1.7.9"}]}}}
        })
    }

    #[test]
    fn deployment_defaults_match_upstream() {
        let mut d = nginx();
        Deployment.default(&mut d);
        assert_eq!(
            d["spec"]["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(
            d["spec"]["template"]["spec"]["schedulerName"],
            "default-scheduler"
        );
        assert!(Deployment.validate(&d).is_empty());
    }

    #[test]
    fn selector_must_match_template() {
        let mut d = nginx();
        d["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"});
        let causes = Deployment.validate(&d);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "spec.template.metadata.labels");
        let mut d = nginx();
        if let Some(spec) = d["spec"].as_object_mut() {
            spec.remove("selector");
        }
        assert_eq!(Deployment.validate(&d)[0].field, "spec.selector");
    }

    #[test]
    fn job_gets_a_generated_selector() {
        let mut j = json!({"metadata": {"name": "j", "uid": "u1"}, "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}});
        Job.prepare_create(&mut j);
        Job.default(&mut j);
        assert_eq!(
            j["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
            "u1"
        );
        assert_eq!(j["spec"]["template"]["metadata"]["labels"]["job-name"], "j");
        assert_eq!(j["spec"]["backoffLimit"], 6);
        assert!(Job.validate(&j).is_empty());
    }
}
