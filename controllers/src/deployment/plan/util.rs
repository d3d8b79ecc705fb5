//! Pure helpers of the Deployment planner, after upstream's
//! `pkg/controller/deployment/util/deployment_util.go` and the ReplicaSet helpers of
//! `pkg/controller/controller_utils.go`.

use std::cmp::{Ordering, Reverse};
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use super::{
    DESIRED_REPLICAS_ANNOTATION, MAX_REPLICAS_ANNOTATION, POD_TEMPLATE_HASH_LABEL,
    REVISION_ANNOTATION, REVISION_HISTORY_ANNOTATION,
};

/// Upstream's `maxRevHistoryLengthInChars`.
const MAX_REV_HISTORY_LENGTH_IN_CHARS: usize = 2000;

/// Annotations never copied from a Deployment to its ReplicaSets (upstream `annotationsToSkip`).
const ANNOTATIONS_TO_SKIP: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
    DESIRED_REPLICAS_ANNOTATION,
    MAX_REPLICAS_ANNOTATION,
    "deprecated.deployment.rollback.to",
];

/// `rand.SafeEncodeString`'s alphabet: no vowels, no look-alike characters.
const SAFE_ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

// ---------------------------------------------------------------------------------------
// ReplicaSet accessors (missing fields read as their apps/v1 defaults).

/// `spec.replicas`, defaulted to 1 like the apps/v1 defaulter does.
pub(super) fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub(super) fn status_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map_or(0, |s| s.replicas)
}

pub(super) fn available_replicas(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

pub(super) fn ready_replicas(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

pub(super) fn annotation<'a>(rs: &'a ReplicaSet, key: &str) -> Option<&'a str> {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// The controller ownerReference of an object, if any (`metav1.GetControllerOf`).
pub(super) fn controller_ref(refs: Option<&Vec<OwnerReference>>) -> Option<&OwnerReference> {
    refs?.iter().find(|r| r.controller == Some(true))
}

/// `controller.ReplicaSetsByCreationTimestamp`: oldest first, then by name.
pub(super) fn cmp_by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    creation_key(a).cmp(&creation_key(b))
}

fn creation_key(rs: &ReplicaSet) -> (Option<Timestamp>, &str) {
    (
        rs.metadata.creation_timestamp.as_ref().map(|t| t.0),
        rs.metadata.name.as_deref().unwrap_or(""),
    )
}

/// `controller.ReplicaSetsBySizeNewer`: largest first; on ties the newer first.
pub(super) fn cmp_by_size_newer(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    (Reverse(spec_replicas(a)), Reverse(creation_key(a)))
        .cmp(&(Reverse(spec_replicas(b)), Reverse(creation_key(b))))
}

/// `controller.ReplicaSetsBySizeOlder`: largest first; on ties the older first.
pub(super) fn cmp_by_size_older(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    (Reverse(spec_replicas(a)), creation_key(a)).cmp(&(Reverse(spec_replicas(b)), creation_key(b)))
}

/// `ReplicaSetsByRevision`: lowest revision first, then by creation. An unparsable
/// revision counts as 0, which keeps the order total.
pub(super) fn cmp_by_revision(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    let rev = |rs: &ReplicaSet| revision(rs).unwrap_or(0);
    (rev(a), creation_key(a)).cmp(&(rev(b), creation_key(b)))
}

/// The `deployment.kubernetes.io/revision` annotation: 0 when absent, `None` when unparsable.
pub(super) fn revision(rs: &ReplicaSet) -> Option<i64> {
    match annotation(rs, REVISION_ANNOTATION) {
        None => Some(0),
        Some(v) => v.parse().ok(),
    }
}

/// `MaxRevision`: unparsable revisions are skipped.
pub(super) fn max_revision<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i64 {
    rss.into_iter().filter_map(revision).fold(0, i64::max)
}

/// `getNonNegativeInt32FromAnnotation`.
pub(super) fn non_negative_i32_annotation(rs: &ReplicaSet, key: &str) -> Option<i32> {
    let v: u32 = annotation(rs, key)?.parse().ok()?;
    i32::try_from(v).ok()
}

/// `ReplicasAnnotationsNeedUpdate` / `SetReplicasAnnotations`: the annotation changes that
/// record `desired` and `max` on a ReplicaSet (empty when already recorded).
pub(super) fn replicas_annotation_changes(
    rs: &ReplicaSet,
    desired: i32,
    max: i32,
) -> BTreeMap<String, Option<String>> {
    let mut changes = BTreeMap::new();
    for (key, value) in [
        (DESIRED_REPLICAS_ANNOTATION, desired),
        (MAX_REPLICAS_ANNOTATION, max),
    ] {
        let value = value.to_string();
        if annotation(rs, key) != Some(value.as_str()) {
            changes.insert(key.to_string(), Some(value));
        }
    }
    changes
}

/// `SetNewReplicaSetAnnotations` on an annotation map: copies the Deployment's annotations
/// (except the skipped ones), raises the revision to `new_revision` keeping the previous one
/// in `revision-history`, and for a ReplicaSet about to be created records the replica
/// annotations. Returns whether anything changed.
pub(super) fn set_new_rs_annotations(
    deployment_annotations: &BTreeMap<String, String>,
    rs_annotations: &mut BTreeMap<String, String>,
    new_revision: i64,
    replicas_annotations: Option<(i32, i32)>,
) -> bool {
    let mut changed = false;
    for (k, v) in deployment_annotations {
        if ANNOTATIONS_TO_SKIP.contains(&k.as_str()) || rs_annotations.get(k) == Some(v) {
            continue;
        }
        rs_annotations.insert(k.clone(), v.clone());
        changed = true;
    }
    let old_revision = rs_annotations.get(REVISION_ANNOTATION).cloned();
    let old_revision_int = match old_revision.as_deref() {
        None | Some("") => 0,
        Some(v) => match v.parse::<i64>() {
            Ok(n) => n,
            // Upstream gives up on a ReplicaSet whose revision is not a number.
            Err(_) => return false,
        },
    };
    if old_revision_int < new_revision {
        rs_annotations.insert(REVISION_ANNOTATION.to_string(), new_revision.to_string());
        changed = true;
        if let Some(old) = old_revision {
            // Rolling back to this ReplicaSet: keep its former revisions.
            let history = rs_annotations
                .get(REVISION_HISTORY_ANNOTATION)
                .cloned()
                .unwrap_or_default();
            if history.is_empty() {
                rs_annotations.insert(REVISION_HISTORY_ANNOTATION.to_string(), old);
            } else {
                let parts: Vec<&str> = history.split(',').collect();
                let mut total = history.len() + old.len() + 1;
                let mut start = 0;
                while total > MAX_REV_HISTORY_LENGTH_IN_CHARS && start < parts.len() {
                    total -= parts[start].len() + 1;
                    start += 1;
                }
                if total <= MAX_REV_HISTORY_LENGTH_IN_CHARS {
                    let mut kept: Vec<&str> = parts[start..].to_vec();
                    kept.push(&old);
                    rs_annotations.insert(REVISION_HISTORY_ANNOTATION.to_string(), kept.join(","));
                }
            }
        }
    }
    if let Some((desired, max)) = replicas_annotations {
        for (key, value) in [
            (DESIRED_REPLICAS_ANNOTATION, desired),
            (MAX_REPLICAS_ANNOTATION, max),
        ] {
            let value = value.to_string();
            if rs_annotations.get(key) != Some(&value) {
                rs_annotations.insert(key.to_string(), value);
                changed = true;
            }
        }
    }
    changed
}

/// The merge-patch form of the difference between two annotation maps.
pub(super) fn annotation_diff(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> BTreeMap<String, Option<String>> {
    let mut diff = BTreeMap::new();
    for (k, v) in after {
        if before.get(k) != Some(v) {
            diff.insert(k.clone(), Some(v.clone()));
        }
    }
    for k in before.keys() {
        if !after.contains_key(k) {
            diff.insert(k.clone(), None);
        }
    }
    diff
}

// ---------------------------------------------------------------------------------------
// maxSurge / maxUnavailable.

/// `intstr.GetScaledValueFromIntOrPercent`: an int as is, `"N%"` of `total` rounded up or
/// down; anything else is invalid.
pub(super) fn scaled_value(value: &IntOrString, total: i32, round_up: bool) -> Option<i32> {
    match value {
        IntOrString::Int(v) => Some(*v),
        IntOrString::String(s) => {
            let percent: i64 = s.strip_suffix('%')?.parse().ok()?;
            let scaled = percent as f64 * f64::from(total) / 100.0;
            let rounded = if round_up {
                scaled.ceil()
            } else {
                scaled.floor()
            };
            Some(rounded as i32)
        }
    }
}

/// `ResolveFenceposts`: (maxSurge, maxUnavailable) for `desired` replicas; when both resolve
/// to zero, maxUnavailable becomes 1. Invalid values resolve to (0, 0) like upstream's error
/// path.
pub(super) fn resolve_fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> (i32, i32) {
    let zero = IntOrString::Int(0);
    let Some(surge) = scaled_value(max_surge.unwrap_or(&zero), desired, true) else {
        return (0, 0);
    };
    let Some(mut unavailable) = scaled_value(max_unavailable.unwrap_or(&zero), desired, false)
    else {
        return (0, 0);
    };
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable)
}

// ---------------------------------------------------------------------------------------
// Templates: equality ignoring the hash label, and the hash itself.

/// A pod template as JSON without the `pod-template-hash` label, with nulls and empty
/// maps/lists removed so that "absent" and "empty" compare equal (apimachinery's semantic
/// equality treats nil and empty maps and slices alike).
pub(super) fn normalized_template(template: Option<&PodTemplateSpec>) -> Value {
    let mut value = template
        .and_then(|t| serde_json::to_value(t).ok())
        .unwrap_or(Value::Null);
    if let Some(labels) = value
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(POD_TEMPLATE_HASH_LABEL);
    }
    if prune(&mut value) {
        Value::Object(serde_json::Map::new())
    } else {
        value
    }
}

/// Removes nulls and empty objects/arrays below `value`; returns whether `value` itself is
/// empty. Array elements stay in place (their position carries meaning).
fn prune(value: &mut Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => {
            map.retain(|_, v| !prune(v));
            map.is_empty()
        }
        Value::Array(items) => {
            for item in items.iter_mut() {
                prune(item);
            }
            items.is_empty()
        }
        _ => false,
    }
}

/// `EqualIgnoreHash`.
pub(super) fn equal_ignore_hash(a: Option<&PodTemplateSpec>, b: Option<&PodTemplateSpec>) -> bool {
    normalized_template(a) == normalized_template(b)
}

/// The `pod-template-hash` of a template (upstream `controller.ComputeHash`): FNV-1a 32 over
/// a canonical serialization of the template, then the collision count as 8 little-endian
/// bytes, printed in decimal and mapped through `rand.SafeEncodeString`.
pub fn pod_template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut canonical = String::new();
    write_canonical(&normalized_template(Some(template)), &mut canonical);
    let mut hash = fnv1a32(canonical.as_bytes(), 0x811c_9dc5);
    if let Some(count) = collision_count {
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&(count as u32).to_le_bytes());
        hash = fnv1a32(&bytes, hash);
    }
    safe_encode_string(&hash.to_string())
}

fn fnv1a32(data: &[u8], mut hash: u32) -> u32 {
    for byte in data {
        hash ^= u32::from(*byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// `rand.SafeEncodeString`.
pub(super) fn safe_encode_string(s: &str) -> String {
    s.chars()
        .map(|c| char::from(SAFE_ALPHANUMS[(c as usize) % SAFE_ALPHANUMS.len()]))
        .collect()
}

/// JSON with object keys sorted, so the hash does not depend on key order.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(k) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

// ---------------------------------------------------------------------------------------
// Conditions.

pub(super) fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

pub(super) fn get_condition<'a>(
    status: &'a DeploymentStatus,
    type_: &str,
) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// `SetDeploymentCondition`: no change when a condition of that type already has the same
/// status and reason; keeps lastTransitionTime when only the reason changes; the new
/// condition goes last.
pub(super) fn set_condition(status: &mut DeploymentStatus, mut condition: DeploymentCondition) {
    if let Some(current) = get_condition(status, &condition.type_) {
        if current.status == condition.status && current.reason == condition.reason {
            return;
        }
        if current.status == condition.status {
            condition
                .last_transition_time
                .clone_from(&current.last_transition_time);
        }
    }
    remove_condition(status, &condition.type_);
    status
        .conditions
        .get_or_insert_with(Vec::new)
        .push(condition);
}

pub(super) fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(conditions) = status.conditions.as_mut() {
        conditions.retain(|c| c.type_ != type_);
    }
}

/// A status with Go's zero values made explicit-absent, for the "did it change" test
/// (the API server omits zero counters and empty condition lists).
pub(super) fn normalized_status(s: &DeploymentStatus) -> DeploymentStatus {
    let nz = |v: Option<i32>| v.filter(|x| *x != 0);
    DeploymentStatus {
        available_replicas: nz(s.available_replicas),
        collision_count: s.collision_count,
        conditions: s.conditions.clone().filter(|c| !c.is_empty()),
        observed_generation: s.observed_generation.filter(|g| *g != 0),
        ready_replicas: nz(s.ready_replicas),
        replicas: nz(s.replicas),
        terminating_replicas: s.terminating_replicas,
        unavailable_replicas: nz(s.unavailable_replicas),
        updated_replicas: nz(s.updated_replicas),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn safe_encode_maps_digits_into_the_alphabet() {
        // '0' is 48 → 48 % 27 = 21 → '4'; '9' is 57 → 3 → 'f'.
        assert_eq!(safe_encode_string("0123456789"), "456789bcdf");
    }

    #[test]
    fn percentages_round_surge_up_and_unavailable_down() {
        let pct = |s: &str| IntOrString::String(s.to_string());
        assert_eq!(
            resolve_fenceposts(Some(&pct("25%")), Some(&pct("25%")), 10),
            (3, 2)
        );
        assert_eq!(
            resolve_fenceposts(Some(&IntOrString::Int(0)), Some(&pct("25%")), 3),
            (0, 1),
            "both zero → maxUnavailable 1"
        );
        assert_eq!(
            resolve_fenceposts(Some(&pct("50%")), Some(&IntOrString::Int(2)), 5),
            (3, 2)
        );
        assert_eq!(scaled_value(&pct("abc"), 10, true), None);
        assert_eq!(scaled_value(&pct("10"), 10, true), None);
    }

    #[test]
    fn template_equality_ignores_hash_label_and_empty_fields() {
        let a: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}},
            "spec": {"containers": [{"name": "c", "image": "nginx", "resources": {}}]}
        }))
        .expect("template");
        let b: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}
        }))
        .expect("template");
        let c: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}
        }))
        .expect("template");
        assert!(equal_ignore_hash(Some(&a), Some(&b)));
        assert!(!equal_ignore_hash(Some(&a), Some(&c)));
        assert_eq!(pod_template_hash(&a, None), pod_template_hash(&b, None));
        assert_ne!(pod_template_hash(&b, None), pod_template_hash(&c, None));
        assert_ne!(pod_template_hash(&b, None), pod_template_hash(&b, Some(1)));
        assert!(pod_template_hash(&b, Some(3))
            .bytes()
            .all(|ch| SAFE_ALPHANUMS.contains(&ch)));
    }

    #[test]
    fn revision_history_is_kept_when_rolling_back() {
        let mut ann = BTreeMap::from([(REVISION_ANNOTATION.to_string(), "1".to_string())]);
        let d = BTreeMap::from([
            ("kubernetes.io/change-cause".to_string(), "v1".to_string()),
            (REVISION_ANNOTATION.to_string(), "9".to_string()),
        ]);
        assert!(set_new_rs_annotations(&d, &mut ann, 3, None));
        assert_eq!(ann[REVISION_ANNOTATION], "3");
        assert_eq!(ann[REVISION_HISTORY_ANNOTATION], "1");
        assert_eq!(ann["kubernetes.io/change-cause"], "v1");
        assert!(set_new_rs_annotations(&d, &mut ann, 5, None));
        assert_eq!(ann[REVISION_HISTORY_ANNOTATION], "1,3");
        // Nothing more to do once up to date.
        assert!(!set_new_rs_annotations(&d, &mut ann, 5, None));
        assert!(!set_new_rs_annotations(&d, &mut ann, 4, None));
    }
}
