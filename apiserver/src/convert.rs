//! Conversion between versions of a kind that share storage. Objects are stored in the
//! storage version (the group's preferred one) and converted at the edges: a body written
//! through another version is converted before it is stored, and objects are converted to
//! the version of the request before they are returned.
//!
//! Two kinds do this today, as upstream:
//! - HorizontalPodAutoscaler: autoscaling/v2 stored, v1 served. What v1 cannot express
//!   (metrics other than the CPU target, conditions) travels in annotations so that a v1
//!   round trip loses nothing.
//! - Event: core/v1 stored, events.k8s.io/v1 served too, so that `kubectl describe` (core
//!   events) shows what kube-rs' recorder writes (events.k8s.io events).

use serde_json::{json, Map, Value};

use crate::registry::ResourceDef;

const METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";
const CURRENT_METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
const CONDITIONS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/conditions";
const BEHAVIOR_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/behavior";

/// The group and version objects of `def`'s kind are stored in.
pub fn storage_group_version(def: &ResourceDef) -> (&'static str, &'static str) {
    match (def.group, def.kind) {
        ("autoscaling", "HorizontalPodAutoscaler") => ("autoscaling", "v2"),
        ("events.k8s.io", "Event") => ("", "v1"),
        _ => (def.group, def.version),
    }
}

/// Converts a stored object to `def`'s version (a no-op for kinds with one version).
pub fn to_version(def: &ResourceDef, obj: Value) -> Value {
    let from = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    match (def.group, def.kind, from.as_str(), def.version) {
        ("autoscaling", "HorizontalPodAutoscaler", "autoscaling/v2", "v1") => hpa_v2_to_v1(obj),
        ("autoscaling", "HorizontalPodAutoscaler", "autoscaling/v1", "v2") => hpa_v1_to_v2(obj),
        ("events.k8s.io", "Event", "v1", _) => event_core_to_events(obj),
        _ => obj,
    }
}

/// Converts an object written through `def`'s version to the storage version.
pub fn to_storage(def: &ResourceDef, obj: Value) -> Value {
    match (def.group, def.kind, def.version) {
        ("autoscaling", "HorizontalPodAutoscaler", "v1") => hpa_v1_to_v2(obj),
        ("events.k8s.io", "Event", _) => event_events_to_core(obj),
        _ => obj,
    }
}

/// events.k8s.io/v1 field ↔ core/v1 field (pkg/apis/events/v1 conversion).
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn rename_fields(
    mut obj: Value,
    pairs: impl Iterator<Item = (&'static str, &'static str)>,
    api_version: &str,
) -> Value {
    if let Some(map) = obj.as_object_mut() {
        for (from, to) in pairs {
            if let Some(v) = map.remove(from) {
                map.insert(to.to_string(), v);
            }
        }
        map.insert("apiVersion".into(), json!(api_version));
    }
    obj
}

fn event_events_to_core(obj: Value) -> Value {
    rename_fields(obj, EVENT_FIELDS.iter().copied(), "v1")
}

fn event_core_to_events(obj: Value) -> Value {
    rename_fields(
        obj,
        EVENT_FIELDS.iter().map(|(a, b)| (*b, *a)),
        "events.k8s.io/v1",
    )
}

fn annotations(obj: &mut Value) -> &mut Map<String, Value> {
    crate::object::ensure_object(obj, &["metadata", "annotations"])
}

fn take_annotation(obj: &mut Value, key: &str) -> Option<Value> {
    let raw = annotations(obj).remove(key)?;
    raw.as_str().and_then(|s| serde_json::from_str(s).ok())
}

fn drop_empty_annotations(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if meta
            .get("annotations")
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty)
        {
            meta.remove("annotations");
        }
    }
}

fn is_cpu_utilization(metric: &Value) -> bool {
    metric.get("type").and_then(Value::as_str) == Some("Resource")
        && metric.pointer("/resource/name").and_then(Value::as_str) == Some("cpu")
        && metric
            .pointer("/resource/target/type")
            .and_then(Value::as_str)
            == Some("Utilization")
}

fn hpa_v2_to_v1(mut obj: Value) -> Value {
    let spec = obj.get("spec").cloned().unwrap_or_else(|| json!({}));
    let status = obj.get("status").cloned();
    let metrics = spec
        .get("metrics")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let cpu = metrics
        .iter()
        .find(|m| is_cpu_utilization(m))
        .and_then(|m| m.pointer("/resource/target/averageUtilization"))
        .cloned();
    let others: Vec<Value> = metrics
        .iter()
        .filter(|m| !is_cpu_utilization(m))
        .cloned()
        .collect();
    let mut v1_spec = json!({
        "scaleTargetRef": spec.get("scaleTargetRef").cloned().unwrap_or_else(|| json!({})),
        "maxReplicas": spec.get("maxReplicas").cloned().unwrap_or(json!(0)),
    });
    if let Some(min) = spec.get("minReplicas") {
        v1_spec["minReplicas"] = min.clone();
    }
    if let Some(cpu) = cpu {
        v1_spec["targetCPUUtilizationPercentage"] = cpu;
    }
    if !others.is_empty() {
        annotations(&mut obj).insert(
            METRICS_ANNOTATION.into(),
            json!(Value::Array(others).to_string()),
        );
    }
    if let Some(behavior) = spec.get("behavior") {
        annotations(&mut obj).insert(BEHAVIOR_ANNOTATION.into(), json!(behavior.to_string()));
    }
    if let Some(status) = status {
        let current = status
            .get("currentMetrics")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut v1_status = json!({
            "currentReplicas": status.get("currentReplicas").cloned().unwrap_or(json!(0)),
            "desiredReplicas": status.get("desiredReplicas").cloned().unwrap_or(json!(0)),
        });
        for key in ["observedGeneration", "lastScaleTime"] {
            if let Some(v) = status.get(key) {
                v1_status[key] = v.clone();
            }
        }
        if let Some(cpu) = current
            .iter()
            .find(|m| m.pointer("/resource/name").and_then(Value::as_str) == Some("cpu"))
            .and_then(|m| m.pointer("/resource/current/averageUtilization"))
        {
            v1_status["currentCPUUtilizationPercentage"] = cpu.clone();
        }
        if !current.is_empty() {
            annotations(&mut obj).insert(
                CURRENT_METRICS_ANNOTATION.into(),
                json!(Value::Array(current).to_string()),
            );
        }
        if let Some(conditions) = status.get("conditions") {
            annotations(&mut obj)
                .insert(CONDITIONS_ANNOTATION.into(), json!(conditions.to_string()));
        }
        obj["status"] = v1_status;
    }
    obj["spec"] = v1_spec;
    obj["apiVersion"] = json!("autoscaling/v1");
    obj
}

fn hpa_v1_to_v2(mut obj: Value) -> Value {
    let spec = obj.get("spec").cloned().unwrap_or_else(|| json!({}));
    let mut metrics: Vec<Value> = Vec::new();
    if let Some(cpu) = spec.get("targetCPUUtilizationPercentage") {
        metrics.push(json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu}}}));
    }
    if let Some(Value::Array(others)) = take_annotation(&mut obj, METRICS_ANNOTATION) {
        metrics.extend(others);
    }
    let mut v2_spec = json!({
        "scaleTargetRef": spec.get("scaleTargetRef").cloned().unwrap_or_else(|| json!({})),
        "maxReplicas": spec.get("maxReplicas").cloned().unwrap_or(json!(0)),
    });
    if let Some(min) = spec.get("minReplicas") {
        v2_spec["minReplicas"] = min.clone();
    }
    if !metrics.is_empty() {
        v2_spec["metrics"] = Value::Array(metrics);
    }
    if let Some(behavior) = take_annotation(&mut obj, BEHAVIOR_ANNOTATION) {
        v2_spec["behavior"] = behavior;
    }
    let current = take_annotation(&mut obj, CURRENT_METRICS_ANNOTATION);
    let conditions = take_annotation(&mut obj, CONDITIONS_ANNOTATION);
    if let Some(status) = obj.get("status").cloned() {
        let mut v2_status = json!({
            "currentReplicas": status.get("currentReplicas").cloned().unwrap_or(json!(0)),
            "desiredReplicas": status.get("desiredReplicas").cloned().unwrap_or(json!(0)),
        });
        for key in ["observedGeneration", "lastScaleTime"] {
            if let Some(v) = status.get(key) {
                v2_status[key] = v.clone();
            }
        }
        match (current, status.get("currentCPUUtilizationPercentage")) {
            (Some(current), _) => v2_status["currentMetrics"] = current,
            (None, Some(cpu)) => {
                v2_status["currentMetrics"] = json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": cpu}}}])
            }
            (None, None) => {}
        }
        if let Some(conditions) = conditions {
            v2_status["conditions"] = conditions;
        }
        obj["status"] = v2_status;
    }
    drop_empty_annotations(&mut obj);
    obj["spec"] = v2_spec;
    obj["apiVersion"] = json!("autoscaling/v2");
    obj
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::registry;

    #[test]
    fn events_k8s_io_events_are_core_events_in_storage() {
        let def = registry()
            .lookup("events.k8s.io", "v1", "events")
            .expect("events");
        let e = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
                        "regarding": {"kind": "Pod", "name": "p"}, "note": "pulled", "reason": "Pulled",
                        "reportingController": "kubelet", "deprecatedCount": 2});
        let stored = to_storage(def, e.clone());
        assert_eq!(stored["involvedObject"]["name"], "p");
        assert_eq!(stored["message"], "pulled");
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(to_version(def, stored), e);
        let core = registry().lookup("", "v1", "events").expect("core events");
        assert_eq!(core.storage_prefix(), def.storage_prefix());
    }

    #[test]
    fn hpa_round_trips_through_v1_without_losing_metrics() {
        let v2 = json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 5,
                     "metrics": [
                        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}},
                        {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}}]}
        });
        let v1_def = registry()
            .lookup("autoscaling", "v1", "horizontalpodautoscalers")
            .expect("v1");
        let v1 = to_version(v1_def, v2.clone());
        assert_eq!(v1["apiVersion"], "autoscaling/v1");
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 70);
        assert!(v1["spec"].get("metrics").is_none());
        let back = to_storage(v1_def, v1);
        assert_eq!(back, v2);
    }
}
