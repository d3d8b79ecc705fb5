//! The namespace controller's pure part, after upstream's
//! `pkg/controller/namespace/deletion`: which resources to empty, what a resource's
//! leftovers mean (`deleteAllContentForGroupVersionResource`), how long to wait
//! (`estimateGracefulTermination`), the status conditions (`status_condition_utils.go`)
//! and the finalizers left after `finalize`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{NamespaceCondition, NamespaceStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::gc::plan::{preferred_resources, DiscoveredGroup, ResourceType};

/// The finalizer this controller owns in `spec.finalizers`.
pub const FINALIZER: &str = "kubernetes";
/// Upstream `finalizerEstimateSeconds`: the wait assumed for objects held by finalizers.
pub const FINALIZER_ESTIMATE_SECONDS: i64 = 15;
/// The longest pause between two passes over a terminating namespace.
pub const MAX_REQUEUE: Duration = Duration::from_secs(2);

pub const DISCOVERY_FAILURE: &str = "NamespaceDeletionDiscoveryFailure";
pub const GV_PARSING_FAILURE: &str = "NamespaceDeletionGroupVersionParsingFailure";
pub const CONTENT_FAILURE: &str = "NamespaceDeletionContentFailure";
pub const CONTENT_REMAINING: &str = "NamespaceContentRemaining";
pub const FINALIZERS_REMAINING: &str = "NamespaceFinalizersRemaining";

/// The condition types the controller maintains, in upstream's order.
pub const CONDITION_TYPES: [&str; 5] = [
    DISCOVERY_FAILURE,
    GV_PARSING_FAILURE,
    CONTENT_FAILURE,
    CONTENT_REMAINING,
    FINALIZERS_REMAINING,
];

/// The reason and message of a condition type when nothing is wrong.
fn ok_variant(condition_type: &str) -> (&'static str, &'static str) {
    match condition_type {
        DISCOVERY_FAILURE => (
            "ResourcesDiscovered",
            "All resources successfully discovered",
        ),
        GV_PARSING_FAILURE => (
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed",
        ),
        CONTENT_FAILURE => (
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization",
        ),
        CONTENT_REMAINING => ("ContentRemoved", "All content successfully removed"),
        _ => (
            "ContentHasNoFinalizers",
            "All content-preserving finalizers finished",
        ),
    }
}

/// Whether the namespace waits for this controller.
pub fn has_finalizer(finalizers: &[String]) -> bool {
    finalizers.iter().any(|f| f == FINALIZER)
}

/// Upstream `finalizeNamespace`: the finalizers left once ours is removed, as a sorted set.
pub fn finalized_finalizers(finalizers: &[String]) -> Vec<String> {
    finalizers
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// client-go's `schema.ParseGroupVersion`.
pub fn parse_group_version(gv: &str) -> Result<(String, String), String> {
    if gv.is_empty() || gv == "/" {
        return Ok((String::new(), String::new()));
    }
    match gv.split('/').collect::<Vec<_>>().as_slice() {
        [version] => Ok((String::new(), version.to_string())),
        [group, version] => Ok((group.to_string(), version.to_string())),
        _ => Err(format!("unexpected GroupVersion string: {gv}")),
    }
}

/// Upstream `ServerPreferredNamespacedResources` filtered by the `delete` verb, then
/// `GroupVersionResources`: the resources to empty, or the group version that does not
/// parse.
pub fn deletable_namespaced(groups: &[DiscoveredGroup]) -> Result<Vec<ResourceType>, String> {
    for group in groups {
        for version in &group.versions {
            let parsed = parse_group_version(&version.group_version)?;
            if parsed != (group.name.clone(), version.version.clone()) {
                return Err(format!(
                    "unexpected GroupVersion string: {}",
                    version.group_version
                ));
            }
        }
    }
    Ok(preferred_resources(groups)
        .into_iter()
        .filter(|r| r.namespaced && r.supports("delete"))
        .collect())
}

/// A group version resource as Go prints it (`/v1, Resource=pods`).
pub fn gvr_display(r: &ResourceType) -> String {
    format!("{}/{}, Resource={}", r.group, r.version, r.resource)
}

/// What one pod says about the wait (`estimateGracefulTerminationForPods`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodGrace {
    pub phase: String,
    pub termination_grace_period_seconds: Option<i64>,
}

/// Upstream `estimateGracefulTermination` for pods: the longest grace period of a pod
/// that has not finished, or 0 once the namespace has been terminating that long.
pub fn estimate_pods(
    pods: &[PodGrace],
    namespace_deleted_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> i64 {
    let estimate = pods
        .iter()
        .filter(|p| p.phase != "Succeeded" && p.phase != "Failed")
        .filter_map(|p| p.termination_grace_period_seconds)
        .fold(0, i64::max);
    let elapsed = now.signed_duration_since(namespace_deleted_at);
    if elapsed >= chrono::Duration::seconds(estimate) {
        0
    } else {
        estimate
    }
}

/// Upstream `gvrDeletionMetadata`: what is left of one resource in the namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GvrOutcome {
    /// Seconds to wait; 0 does not mean nothing is left.
    pub estimate: i64,
    pub remaining: usize,
    /// finalizer → objects still holding it.
    pub finalizers: BTreeMap<String, usize>,
}

/// The end of upstream `deleteAllContentForGroupVersionResource`: after the deletes, the
/// finalizers of each object the verifying list still shows. Leftovers without a wait
/// estimate and without finalizers are an error.
pub fn gvr_outcome(
    namespace: &str,
    resource: &ResourceType,
    estimate: i64,
    left: &[Vec<String>],
) -> (GvrOutcome, Option<String>) {
    if left.is_empty() {
        return (GvrOutcome::default(), None);
    }
    let mut finalizers = BTreeMap::new();
    for item in left {
        for f in item {
            *finalizers.entry(f.clone()).or_insert(0) += 1;
        }
    }
    if estimate != 0 {
        return (
            GvrOutcome {
                estimate,
                remaining: left.len(),
                finalizers,
            },
            None,
        );
    }
    if !finalizers.is_empty() {
        return (
            GvrOutcome {
                estimate: FINALIZER_ESTIMATE_SECONDS,
                remaining: left.len(),
                finalizers,
            },
            None,
        );
    }
    (
        GvrOutcome {
            estimate,
            remaining: left.len(),
            finalizers: BTreeMap::new(),
        },
        Some(format!(
            "unexpected items still remain in namespace: {namespace} for gvr: {}",
            gvr_display(resource)
        )),
    )
}

/// Upstream `allGVRDeletionMetadata`: leftovers over all resources.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContentTotals {
    /// (group, resource) → objects left.
    pub remaining: BTreeMap<(String, String), usize>,
    /// finalizer → objects still holding it.
    pub finalizers: BTreeMap<String, usize>,
}

impl ContentTotals {
    pub fn add(&mut self, resource: &ResourceType, outcome: &GvrOutcome) {
        if outcome.remaining == 0 {
            return;
        }
        self.remaining.insert(
            (resource.group.clone(), resource.resource.clone()),
            outcome.remaining,
        );
        for (f, n) in &outcome.finalizers {
            if *n > 0 {
                *self.finalizers.entry(f.clone()).or_insert(0) += n;
            }
        }
    }
}

/// Upstream `namespaceConditionUpdater`: collects failures during one pass, then turns
/// them into the namespace's status conditions.
#[derive(Clone, Debug, Default)]
pub struct ConditionUpdater {
    new_conditions: Vec<NamespaceCondition>,
    delete_content_errors: Vec<String>,
}

fn condition(
    condition_type: &str,
    status: &str,
    reason: &str,
    message: String,
    now: &Time,
) -> NamespaceCondition {
    NamespaceCondition {
        type_: condition_type.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message),
        last_transition_time: Some(now.clone()),
    }
}

impl ConditionUpdater {
    /// Discovery failed; `failing_groups` when only some group versions failed.
    pub fn discovery_failed(&mut self, message: &str, failing_groups: Option<usize>, now: &Time) {
        let message = match failing_groups {
            Some(n) => format!("Discovery failed for some groups, {n} failing: {message}"),
            None => message.to_string(),
        };
        self.new_conditions.push(condition(
            DISCOVERY_FAILURE,
            "True",
            "DiscoveryFailed",
            message,
            now,
        ));
    }

    pub fn group_version_parsing_failed(&mut self, message: &str, now: &Time) {
        self.new_conditions.push(condition(
            GV_PARSING_FAILURE,
            "True",
            "GroupVersionParsingFailed",
            message.to_string(),
            now,
        ));
    }

    pub fn delete_content_failed(&mut self, message: String) {
        self.delete_content_errors.push(message);
    }

    /// Upstream `ProcessContentTotals`.
    pub fn content_totals(&mut self, totals: &ContentTotals, now: &Time) {
        if !totals.remaining.is_empty() {
            let mut parts: Vec<String> = totals
                .remaining
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|((group, resource), n)| {
                    format!("{resource}.{group} has {n} resource instances")
                })
                .collect();
            parts.sort();
            self.new_conditions.push(condition(
                CONTENT_REMAINING,
                "True",
                "SomeResourcesRemain",
                format!("Some resources are remaining: {}", parts.join(", ")),
                now,
            ));
        }
        if !totals.finalizers.is_empty() {
            let mut parts: Vec<String> = totals
                .finalizers
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(f, n)| format!("{f} in {n} resource instances"))
                .collect();
            parts.sort();
            self.new_conditions.push(condition(
                FINALIZERS_REMAINING,
                "True",
                "SomeFinalizersRemain",
                format!(
                    "Some content in the namespace has finalizers remaining: {}",
                    parts.join(", ")
                ),
                now,
            ));
        }
    }

    /// Upstream `Update` + `updateConditions`: every maintained type gets its failure or
    /// its "ok" variant; returns whether `status` changed.
    pub fn update(mut self, status: &mut NamespaceStatus, now: &Time) -> bool {
        if !self
            .new_conditions
            .iter()
            .any(|c| c.type_ == CONTENT_FAILURE)
            && !self.delete_content_errors.is_empty()
        {
            let mut msgs = self.delete_content_errors.clone();
            msgs.sort();
            self.new_conditions.push(condition(
                CONTENT_FAILURE,
                "True",
                "ContentDeletionFailed",
                format!(
                    "Failed to delete all resource types, {} remaining: {}",
                    msgs.len(),
                    msgs.join(", ")
                ),
                now,
            ));
        }
        let conditions = status.conditions.get_or_insert_with(Vec::new);
        let mut changed = false;
        for condition_type in CONDITION_TYPES {
            let new = self
                .new_conditions
                .iter()
                .find(|c| c.type_ == condition_type)
                .cloned()
                .unwrap_or_else(|| {
                    let (reason, message) = ok_variant(condition_type);
                    condition(condition_type, "False", reason, message.to_string(), now)
                });
            match conditions.iter_mut().find(|c| c.type_ == condition_type) {
                None => {
                    conditions.push(new);
                    changed = true;
                }
                Some(old) => {
                    if old.status != new.status
                        || old.message != new.message
                        || old.reason != new.reason
                    {
                        if old.status != new.status {
                            old.last_transition_time = Some(now.clone());
                        }
                        old.status = new.status;
                        old.reason = new.reason;
                        old.message = new.message;
                        changed = true;
                    }
                }
            }
        }
        changed
    }
}

/// When to look at a namespace with content left again: upstream waits `estimate / 2 + 1`
/// seconds; Keelson checks at least every [`MAX_REQUEUE`].
pub fn requeue_after(estimate: i64) -> Duration {
    let secs = u64::try_from(estimate.max(0) / 2 + 1).unwrap_or(1);
    Duration::from_secs(secs).min(MAX_REQUEUE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gc::plan::{DiscoveredVersion, RawResource};

    fn now() -> Time {
        crate::pods::to_time(DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default())
    }

    fn rt(group: &str, resource: &str) -> ResourceType {
        ResourceType {
            group: group.into(),
            version: "v1".into(),
            resource: resource.into(),
            kind: "X".into(),
            namespaced: true,
            verbs: vec!["delete".into(), "list".into()],
        }
    }

    fn find<'a>(status: &'a NamespaceStatus, t: &str) -> &'a NamespaceCondition {
        status
            .conditions
            .as_ref()
            .and_then(|c| c.iter().find(|c| c.type_ == t))
            .expect("condition present")
    }

    #[test]
    fn remaining_content_and_finalizers_have_upstream_messages() {
        let mut totals = ContentTotals::default();
        totals.add(
            &rt("", "pods"),
            &GvrOutcome {
                estimate: 30,
                remaining: 2,
                finalizers: BTreeMap::new(),
            },
        );
        totals.add(
            &rt("apps", "deployments"),
            &GvrOutcome {
                estimate: 15,
                remaining: 1,
                finalizers: BTreeMap::from([("example.com/hold".to_string(), 1)]),
            },
        );
        totals.add(&rt("", "configmaps"), &GvrOutcome::default());
        let mut u = ConditionUpdater::default();
        u.content_totals(&totals, &now());
        let mut status = NamespaceStatus::default();
        assert!(u.update(&mut status, &now()));
        let c = find(&status, CONTENT_REMAINING);
        assert_eq!(c.status, "True");
        assert_eq!(c.reason.as_deref(), Some("SomeResourcesRemain"));
        assert_eq!(
            c.message.as_deref(),
            Some("Some resources are remaining: deployments.apps has 1 resource instances, pods. has 2 resource instances")
        );
        let f = find(&status, FINALIZERS_REMAINING);
        assert_eq!(f.reason.as_deref(), Some("SomeFinalizersRemain"));
        assert_eq!(
            f.message.as_deref(),
            Some("Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances")
        );
        // Every maintained type is present; the others in their "ok" variant.
        let types: Vec<&str> = status
            .conditions
            .iter()
            .flatten()
            .map(|c| c.type_.as_str())
            .collect();
        assert_eq!(types, CONDITION_TYPES.to_vec());
        let d = find(&status, DISCOVERY_FAILURE);
        assert_eq!(
            (d.status.as_str(), d.reason.as_deref(), d.message.as_deref()),
            (
                "False",
                Some("ResourcesDiscovered"),
                Some("All resources successfully discovered")
            )
        );
    }

    #[test]
    fn failures_become_true_conditions_and_clear_again() {
        let mut u = ConditionUpdater::default();
        u.discovery_failed(
            "unable to retrieve the complete list of server APIs: metrics.k8s.io/v1beta1: 503",
            Some(1),
            &now(),
        );
        u.group_version_parsing_failed("unexpected GroupVersion string: a/b/c", &now());
        u.delete_content_failed("b failed".into());
        u.delete_content_failed("a failed".into());
        let mut status = NamespaceStatus::default();
        assert!(u.update(&mut status, &now()));
        assert_eq!(
            find(&status, DISCOVERY_FAILURE).message.as_deref(),
            Some("Discovery failed for some groups, 1 failing: unable to retrieve the complete list of server APIs: metrics.k8s.io/v1beta1: 503")
        );
        assert_eq!(
            find(&status, GV_PARSING_FAILURE).reason.as_deref(),
            Some("GroupVersionParsingFailed")
        );
        let c = find(&status, CONTENT_FAILURE);
        assert_eq!(c.reason.as_deref(), Some("ContentDeletionFailed"));
        assert_eq!(
            c.message.as_deref(),
            Some("Failed to delete all resource types, 2 remaining: a failed, b failed")
        );

        // The next clean pass flips them to their ok variant; an unchanged pass changes nothing.
        let later =
            crate::pods::to_time(DateTime::from_timestamp(1_700_000_100, 0).unwrap_or_default());
        assert!(ConditionUpdater::default().update(&mut status, &later));
        let c = find(&status, CONTENT_FAILURE);
        assert_eq!(c.status, "False");
        assert_eq!(
            c.message.as_deref(),
            Some("All content successfully deleted, may be waiting on finalization")
        );
        assert_eq!(c.last_transition_time, Some(later.clone()));
        assert!(!ConditionUpdater::default().update(&mut status, &later));
    }

    #[test]
    fn leftovers_with_finalizers_wait_and_without_are_an_error() {
        let pods = rt("", "pods");
        assert_eq!(
            gvr_outcome("ns", &pods, 30, &[]),
            (GvrOutcome::default(), None)
        );
        let (o, err) = gvr_outcome(
            "ns",
            &pods,
            0,
            &[vec!["a".into()], vec!["a".into(), "b".into()]],
        );
        assert_eq!(err, None);
        assert_eq!(o.estimate, FINALIZER_ESTIMATE_SECONDS);
        assert_eq!(o.remaining, 2);
        assert_eq!(
            o.finalizers,
            BTreeMap::from([("a".into(), 2), ("b".into(), 1)])
        );
        let (o, err) = gvr_outcome("ns", &pods, 30, &[vec![]]);
        assert_eq!((o.estimate, o.remaining, err), (30, 1, None));
        let (o, err) = gvr_outcome("ns", &pods, 0, &[vec![]]);
        assert_eq!(o.remaining, 1);
        assert_eq!(
            err.as_deref(),
            Some("unexpected items still remain in namespace: ns for gvr: /v1, Resource=pods")
        );
    }

    #[test]
    fn pod_estimate_counts_running_pods_until_their_grace_has_passed() {
        let deleted = DateTime::from_timestamp(1_000, 0).unwrap_or_default();
        let pods = [
            PodGrace {
                phase: "Running".into(),
                termination_grace_period_seconds: Some(30),
            },
            PodGrace {
                phase: "Succeeded".into(),
                termination_grace_period_seconds: Some(600),
            },
            PodGrace {
                phase: "Pending".into(),
                termination_grace_period_seconds: None,
            },
        ];
        let at = |s: i64| DateTime::from_timestamp(1_000 + s, 0).unwrap_or_default();
        assert_eq!(estimate_pods(&pods, deleted, at(5)), 30);
        assert_eq!(estimate_pods(&pods, deleted, at(30)), 0);
        assert_eq!(estimate_pods(&[], deleted, at(0)), 0);
        assert_eq!(requeue_after(30), MAX_REQUEUE);
        assert_eq!(requeue_after(1), Duration::from_secs(1));
    }

    #[test]
    fn finalize_removes_only_our_finalizer() {
        let f = vec![
            "z.io/x".to_string(),
            "kubernetes".into(),
            "a.io/y".into(),
            "a.io/y".into(),
        ];
        assert!(has_finalizer(&f));
        assert_eq!(
            finalized_finalizers(&f),
            vec!["a.io/y".to_string(), "z.io/x".into()]
        );
        assert!(!has_finalizer(&finalized_finalizers(&f)));
    }

    #[test]
    fn deletable_namespaced_resources_and_group_version_parsing() {
        let raw = |name: &str, namespaced: bool, verbs: &[&str]| RawResource {
            name: name.into(),
            kind: "K".into(),
            namespaced,
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
        };
        let mut groups = vec![DiscoveredGroup {
            name: "".into(),
            preferred_version: "v1".into(),
            versions: vec![DiscoveredVersion {
                version: "v1".into(),
                group_version: "v1".into(),
                resources: vec![
                    raw("pods", true, &["delete", "list", "deletecollection"]),
                    raw("pods/status", true, &["get", "patch"]),
                    raw("bindings", true, &["create"]),
                    raw("nodes", false, &["delete", "list"]),
                ],
            }],
        }];
        let names: Vec<String> = deletable_namespaced(&groups)
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.resource)
            .collect();
        assert_eq!(names, vec!["pods"]);
        groups[0].versions[0].group_version = "a/b/c".into();
        assert_eq!(
            deletable_namespaced(&groups),
            Err("unexpected GroupVersion string: a/b/c".to_string())
        );
        assert_eq!(
            parse_group_version("apps/v1"),
            Ok(("apps".into(), "v1".into()))
        );
        assert_eq!(parse_group_version("v1"), Ok(("".into(), "v1".into())));
    }
}
