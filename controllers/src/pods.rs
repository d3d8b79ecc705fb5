//! Facts about pods that several controllers read (activity, readiness, availability),
//! after upstream's `pkg/api/v1/pod` helpers and `pkg/controller/controller_utils.go`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};

/// The annotation that ranks pods of one controller for deletion: lower cost goes first.
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// `status.phase`, or `""` when unset.
pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Whether the pod reached a terminal phase (`Succeeded` or `Failed`).
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// Whether `metadata.deletionTimestamp` is set.
pub fn is_being_deleted(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// Upstream `IsPodActive`: not terminal and not being deleted.
pub fn is_active(pod: &Pod) -> bool {
    !is_terminal(pod) && !is_being_deleted(pod)
}

/// Upstream `IsPodTerminating`: being deleted but not terminal yet.
pub fn is_terminating(pod: &Pod) -> bool {
    !is_terminal(pod) && is_being_deleted(pod)
}

/// The pod's first `Ready` condition, if any (`GetPodReadyCondition`).
pub fn ready_condition(pod: &Pod) -> Option<&PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// Upstream `IsPodReady`: the `Ready` condition is `True`.
pub fn is_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

/// When the pod became ready: the `lastTransitionTime` of a `True` `Ready` condition.
/// `None` when the pod is not ready or the time is missing.
pub fn ready_since(pod: &Pod) -> Option<DateTime<Utc>> {
    let condition = ready_condition(pod).filter(|c| c.status == "True")?;
    condition.last_transition_time.as_ref().and_then(to_chrono)
}

/// Upstream `podutil.IsPodAvailable`: ready, and either `min_ready_seconds` is 0 or the
/// `Ready` condition turned true more than `min_ready_seconds` before `now`.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: DateTime<Utc>) -> bool {
    if !is_ready(pod) {
        return false;
    }
    if min_ready_seconds == 0 {
        return true;
    }
    match ready_since(pod) {
        Some(since) => since + chrono::Duration::seconds(i64::from(min_ready_seconds)) < now,
        None => false,
    }
}

/// Upstream `nextPodAvailabilityCheck`: for a ready pod that is not available yet, how long
/// until it becomes available. `None` when the pod is not ready, `min_ready_seconds` is not
/// positive, the ready time is unknown or the pod is already due.
pub fn next_availability_check(
    pod: &Pod,
    min_ready_seconds: i32,
    now: DateTime<Utc>,
) -> Option<Duration> {
    if min_ready_seconds <= 0 || !is_ready(pod) {
        return None;
    }
    let since = ready_since(pod)?;
    let due = since + chrono::Duration::seconds(i64::from(min_ready_seconds));
    let wait = due - now;
    if wait > chrono::Duration::zero() {
        wait.to_std().ok()
    } else {
        None
    }
}

/// Upstream `metav1.GetControllerOf`: the owner reference with `controller: true`.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// Whether the controller reference of `meta` points at the object with this `uid`.
pub fn is_controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    controller_of(meta).is_some_and(|r| r.uid == uid)
}

/// Upstream `GetDeletionCostFromPodAnnotations`: the `controller.kubernetes.io/pod-deletion-cost`
/// annotation as an int32; 0 when absent or invalid (a leading `+` or leading zeros are invalid).
pub fn deletion_cost(pod: &Pod) -> i32 {
    let Some(value) = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(POD_DELETION_COST))
    else {
        return 0;
    };
    let valid_first = match value.as_bytes().first() {
        Some(b'-') => true,
        Some(b'0') => value == "0",
        Some(b'1'..=b'9') => true,
        _ => false,
    };
    if !valid_first {
        return 0;
    }
    value.parse::<i32>().unwrap_or(0)
}

/// Upstream `maxContainerRestarts`: the highest restart count among regular containers, and
/// the highest among sidecars (init containers with `restartPolicy: Always`).
pub fn max_container_restarts(pod: &Pod) -> (i32, i32) {
    let Some(status) = pod.status.as_ref() else {
        return (0, 0);
    };
    let regular = status
        .container_statuses
        .iter()
        .flatten()
        .map(|c| c.restart_count)
        .fold(0, i32::max);
    let sidecars: Vec<&str> = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"))
        .map(|c| c.name.as_str())
        .collect();
    let sidecar = status
        .init_container_statuses
        .iter()
        .flatten()
        .filter(|c| sidecars.contains(&c.name.as_str()))
        .map(|c| c.restart_count)
        .fold(0, i32::max);
    (regular, sidecar)
}

/// `metadata.creationTimestamp` as a chrono time.
pub fn creation_time(meta: &ObjectMeta) -> Option<DateTime<Utc>> {
    meta.creation_timestamp.as_ref().and_then(to_chrono)
}

/// A meta/v1 `Time` as a chrono time (`None` outside chrono's range).
pub fn to_chrono(time: &Time) -> Option<DateTime<Utc>> {
    let nanos = time.0.as_nanosecond();
    let seconds = i64::try_from(nanos.div_euclid(1_000_000_000)).ok()?;
    let subsec = u32::try_from(nanos.rem_euclid(1_000_000_000)).ok()?;
    DateTime::from_timestamp(seconds, subsec)
}

/// A chrono time as a meta/v1 `Time`, clamped to the representable range.
pub use keelson_common::events::to_time;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn activity_and_termination() {
        let running = pod(json!({"metadata": {"name": "a"}, "status": {"phase": "Running"}}));
        let pending = pod(json!({"metadata": {"name": "a"}}));
        let done = pod(json!({"metadata": {"name": "a"}, "status": {"phase": "Succeeded"}}));
        let failed = pod(json!({"metadata": {"name": "a"}, "status": {"phase": "Failed"}}));
        let deleting = pod(json!({
            "metadata": {"name": "a", "deletionTimestamp": "2024-01-01T00:00:00Z"},
            "status": {"phase": "Running"}
        }));
        let deleted_done = pod(json!({
            "metadata": {"name": "a", "deletionTimestamp": "2024-01-01T00:00:00Z"},
            "status": {"phase": "Failed"}
        }));
        assert!(is_active(&running) && is_active(&pending));
        assert!(!is_active(&done) && !is_active(&failed) && !is_active(&deleting));
        assert!(is_terminating(&deleting));
        assert!(!is_terminating(&deleted_done) && !is_terminating(&running));
    }

    #[test]
    fn readiness_and_availability() {
        let now = at("2024-01-01T00:01:00Z");
        let ready = pod(json!({"metadata": {"name": "a"}, "status": {"conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}
        ]}}));
        let not_ready = pod(json!({"metadata": {"name": "a"}, "status": {"conditions": [
            {"type": "Ready", "status": "False", "lastTransitionTime": "2024-01-01T00:00:00Z"}
        ]}}));
        let no_time = pod(json!({"metadata": {"name": "a"}, "status": {"conditions": [
            {"type": "Ready", "status": "True"}
        ]}}));
        assert!(is_ready(&ready) && !is_ready(&not_ready) && is_ready(&no_time));
        assert!(is_available(&ready, 0, now));
        assert!(is_available(&ready, 59, now));
        // Exactly minReadySeconds ago is not yet available (strictly before now).
        assert!(!is_available(&ready, 60, now));
        assert!(!is_available(&ready, 61, now));
        assert!(!is_available(&not_ready, 0, now));
        assert!(is_available(&no_time, 0, now));
        assert!(!is_available(&no_time, 1, now));
        assert_eq!(
            next_availability_check(&ready, 90, now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(next_availability_check(&ready, 60, now), None);
        assert_eq!(next_availability_check(&ready, 0, now), None);
        assert_eq!(next_availability_check(&not_ready, 90, now), None);
    }

    #[test]
    fn controller_reference() {
        let p = pod(json!({"metadata": {"name": "a", "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "1"},
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "2", "controller": true}
        ]}}));
        assert_eq!(
            controller_of(&p.metadata).map(|r| r.uid.as_str()),
            Some("2")
        );
        assert!(is_controlled_by(&p.metadata, "2"));
        assert!(!is_controlled_by(&p.metadata, "1"));
        let orphan = pod(json!({"metadata": {"name": "a", "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "1", "controller": false}
        ]}}));
        assert!(controller_of(&orphan.metadata).is_none());
    }

    #[test]
    fn deletion_cost_parsing() {
        let cost = |v: &str| {
            deletion_cost(&pod(
                json!({"metadata": {"name": "a", "annotations": {POD_DELETION_COST: v}}}),
            ))
        };
        assert_eq!(cost("10"), 10);
        assert_eq!(cost("-5"), -5);
        assert_eq!(cost("0"), 0);
        assert_eq!(cost("+10"), 0);
        assert_eq!(cost("008"), 0);
        assert_eq!(cost("abc"), 0);
        assert_eq!(cost("99999999999"), 0);
        assert_eq!(deletion_cost(&pod(json!({"metadata": {"name": "a"}}))), 0);
    }

    #[test]
    fn restarts_count_regular_and_sidecar_containers() {
        let p = pod(json!({
            "metadata": {"name": "a"},
            "spec": {"containers": [{"name": "c"}], "initContainers": [
                {"name": "side", "restartPolicy": "Always"}, {"name": "init"}
            ]},
            "status": {
                "containerStatuses": [
                    {"name": "c", "restartCount": 3, "ready": true, "image": "i", "imageID": ""},
                    {"name": "d", "restartCount": 7, "ready": true, "image": "i", "imageID": ""}
                ],
                "initContainerStatuses": [
                    {"name": "side", "restartCount": 2, "ready": true, "image": "i", "imageID": ""},
                    {"name": "init", "restartCount": 9, "ready": true, "image": "i", "imageID": ""}
                ]
            }
        }));
        assert_eq!(max_container_restarts(&p), (7, 2));
    }

    #[test]
    fn time_conversions_round_trip() {
        let t = at("2024-05-06T07:08:09.123456789Z");
        assert_eq!(to_chrono(&to_time(t)), Some(t));
        let before_epoch = at("1960-01-01T00:00:00.5Z");
        assert_eq!(to_chrono(&to_time(before_epoch)), Some(before_epoch));
    }
}
