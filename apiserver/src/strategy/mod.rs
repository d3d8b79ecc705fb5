//! Per-kind behaviour on writes, as kube-apiserver's registry strategies and defaulters have
//! it: what a create resets, which defaults are filled in, what is invalid.

mod apps;
mod core;
mod pod;

use keelson_apimachinery::Cause;
use serde_json::{Map, Value};

pub use apps::{
    CronJob, DaemonSet, Deployment, HorizontalPodAutoscaler, Job, ReplicaSet, StatefulSet,
};
pub use core::{Configmap, Event, Namespace, Node, ReplicationController, Secret, Service};
pub use pod::Pod;

pub use keelson_apimachinery::names::NameRule;

pub trait Strategy: Sync + Send {
    fn name_rule(&self) -> NameRule {
        NameRule::DnsSubdomain
    }
    /// Whether `metadata.generation` counts spec changes (workloads do, config objects don't).
    fn tracks_generation(&self) -> bool {
        false
    }
    /// Resets what a client may not set on create (beyond the generic status reset).
    fn prepare_create(&self, _obj: &mut Value) {}
    /// Whether something other than metadata.finalizers keeps a deleted object (a
    /// Namespace's `spec.finalizers`).
    fn holds_deletion(&self, _obj: &Value) -> bool {
        false
    }
    /// Marks an object whose deletion has begun (finalizers still hold it).
    fn prepare_delete(&self, _obj: &mut Value) {}
    /// Fills in defaults, on create and on every update, as the defaulting functions do.
    fn default(&self, _obj: &mut Value) {}
    /// Kind-specific validation of a whole object.
    fn validate(&self, _obj: &Value) -> Vec<Cause> {
        Vec::new()
    }
    /// Validation of an update; immutable fields are checked here.
    fn validate_update(&self, new: &Value, _old: &Value) -> Vec<Cause> {
        self.validate(new)
    }
}

/// Kinds with no behaviour of their own.
pub struct Generic;
impl Strategy for Generic {}

// --- helpers shared by the kind modules ---

pub(crate) fn obj_mut<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    v.get_mut(key).and_then(Value::as_object_mut)
}

pub(crate) fn arr_mut<'a>(v: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Vec<Value>> {
    v.get_mut(key).and_then(Value::as_array_mut)
}

pub(crate) fn set_default(map: &mut Map<String, Value>, key: &str, value: Value) {
    crate::object::default_field(map, key, value)
}

pub(crate) fn required(field: &str) -> Cause {
    Cause::new("FieldValueRequired", "Required value", field)
}

pub(crate) fn invalid(field: &str, value: &Value, why: &str) -> Cause {
    let shown = match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    Cause::new(
        "FieldValueInvalid",
        format!("Invalid value: {shown}: {why}"),
        field,
    )
}

pub(crate) fn not_supported(field: &str, value: &Value, supported: &[&str]) -> Cause {
    let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
    Cause::new(
        "FieldValueNotSupported",
        format!(
            "Unsupported value: {value}: supported values: {}",
            list.join(", ")
        ),
        field,
    )
}

pub(crate) fn immutable(field: &str, value: &Value) -> Cause {
    invalid(field, value, "field is immutable")
}

pub(crate) fn is_empty_value(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        _ => false,
    }
}

/// A non-negative integer field, if present.
pub(crate) fn check_non_negative(obj: &Value, path: &[&str], field: &str, causes: &mut Vec<Cause>) {
    let mut cur = obj;
    for p in path {
        match cur.get(p) {
            Some(v) => cur = v,
            None => return,
        }
    }
    if let Some(n) = cur.as_i64() {
        if n < 0 {
            causes.push(invalid(field, cur, "must be greater than or equal to 0"));
        }
    }
}
