//! The filter and score plugins of kube-scheduler's default profile, one module each,
//! named like upstream's (`pkg/scheduler/framework/plugins/*`). They are plain functions
//! over [`crate::framework`] types; [`crate::framework::CycleState`] runs them in
//! upstream's order:
//!
//! - PreFilter: NodeAffinity, NodePorts, NodeResourcesFit, VolumeBinding,
//!   PodTopologySpread, InterPodAffinity.
//! - Filter: NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, NodePorts,
//!   NodeResourcesFit, VolumeBinding, PodTopologySpread, InterPodAffinity.
//! - Score (weight): TaintToleration (3), NodeAffinity (2), NodeResourcesFit (1),
//!   PodTopologySpread (2), InterPodAffinity (2), NodeResourcesBalancedAllocation (1),
//!   ImageLocality (1).
//!
//! VolumeBinding checks claims and bound volumes only (see `volume_binding.rs`).
//!
//! Not implemented: the other volume plugins (VolumeRestrictions, NodeVolumeLimits,
//! VolumeZone), DynamicResources and PodTopologySpread's system default
//! constraints.

pub(crate) mod balanced_allocation;
pub(crate) mod image_locality;
pub(crate) mod inter_pod_affinity;
pub(crate) mod node_affinity;
pub(crate) mod node_name;
pub(crate) mod node_ports;
pub(crate) mod node_resources_fit;
pub(crate) mod node_unschedulable;
pub(crate) mod pod_topology_spread;
pub(crate) mod taint_toleration;
pub(crate) mod volume_binding;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Node, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use keelson_apimachinery::labels::{Operator, Requirement, Selector};

/// The Filter plugins of the default profile, in the order they run.
pub const FILTER_PLUGINS: [&str; 9] = [
    node_unschedulable::NAME,
    node_name::NAME,
    taint_toleration::NAME,
    node_affinity::NAME,
    node_ports::NAME,
    node_resources_fit::NAME,
    volume_binding::NAME,
    pod_topology_spread::NAME,
    inter_pod_affinity::NAME,
];

/// The Score plugins of the default profile with their weights, in the order they run.
pub const SCORE_PLUGINS: [(&str, i64); 7] = [
    (taint_toleration::NAME, taint_toleration::WEIGHT),
    (node_affinity::NAME, node_affinity::WEIGHT),
    (node_resources_fit::NAME, node_resources_fit::WEIGHT),
    (pod_topology_spread::NAME, pod_topology_spread::WEIGHT),
    (inter_pod_affinity::NAME, inter_pod_affinity::WEIGHT),
    (balanced_allocation::NAME, balanced_allocation::WEIGHT),
    (image_locality::NAME, image_locality::WEIGHT),
];

/// The label set of an object without labels.
pub(crate) static EMPTY_LABELS: BTreeMap<String, String> = BTreeMap::new();

/// `kubernetes.io/hostname`.
pub(crate) const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";

pub(crate) fn pod_namespace(pod: &Pod) -> &str {
    pod.metadata.namespace.as_deref().unwrap_or("")
}

pub(crate) fn pod_name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or("")
}

pub(crate) fn pod_labels(pod: &Pod) -> &BTreeMap<String, String> {
    pod.metadata.labels.as_ref().unwrap_or(&EMPTY_LABELS)
}

pub(crate) fn node_name(node: &Node) -> &str {
    node.metadata.name.as_deref().unwrap_or("")
}

pub(crate) fn node_labels(node: &Node) -> &BTreeMap<String, String> {
    node.metadata.labels.as_ref().unwrap_or(&EMPTY_LABELS)
}

pub(crate) fn containers(pod: &Pod) -> &[Container] {
    pod.spec.as_ref().map_or(&[], |s| s.containers.as_slice())
}

pub(crate) fn init_containers(pod: &Pod) -> &[Container] {
    pod.spec
        .as_ref()
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or(&[])
}

pub(crate) fn tolerations(pod: &Pod) -> &[Toleration] {
    pod.spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[])
}

pub(crate) fn taints(node: &Node) -> &[Taint] {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[])
}

/// Whether an init container is a restartable (sidecar) one: `restartPolicy: Always`.
pub(crate) fn is_restartable_init_container(container: &Container) -> bool {
    container.restart_policy.as_deref() == Some("Always")
}

/// `Toleration.ToleratesTaint`: an empty effect or key matches any; operator `Exists`
/// ignores the value, `Equal` (or empty) compares it.
pub(crate) fn toleration_tolerates_taint(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("") {
        "" | "Equal" => {
            toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        "Exists" => true,
        _ => false,
    }
}

/// `TolerationsTolerateTaint`: whether any toleration tolerates `taint`.
pub(crate) fn tolerations_tolerate_taint(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations
        .iter()
        .any(|t| toleration_tolerates_taint(t, taint))
}

/// `DoNotScheduleTaintsFilterFunc`: taints with effect `NoSchedule` or `NoExecute`.
pub(crate) fn is_do_not_schedule_taint(taint: &Taint) -> bool {
    taint.effect == "NoSchedule" || taint.effect == "NoExecute"
}

/// `FindMatchingUntoleratedTaint`: the first taint passing `filter` that no toleration
/// tolerates.
pub(crate) fn find_untolerated_taint<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    filter: impl Fn(&Taint) -> bool,
) -> Option<&'a Taint> {
    taints
        .iter()
        .filter(|t| filter(t))
        .find(|t| !tolerations_tolerate_taint(tolerations, t))
}

/// `helper.DefaultNormalizeScore`: scales scores to `0..=max_priority` by the highest
/// one; `reverse` flips them. All-zero scores stay zero (or become `max_priority` when
/// reversed).
pub(crate) fn default_normalize_score(max_priority: i64, reverse: bool, scores: &mut [i64]) {
    let max_count = scores.iter().copied().fold(0, i64::max);
    if max_count == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = max_priority);
        }
        return;
    }
    for score in scores.iter_mut() {
        let mut s = max_priority * *score / max_count;
        if reverse {
            s = max_priority - s;
        }
        *score = s;
    }
}

/// `metav1.LabelSelectorAsSelector`: a missing selector matches nothing, an empty one
/// everything. Errors carry the requirement's validation message.
pub(crate) fn label_selector(selector: Option<&LabelSelector>) -> Result<Selector, String> {
    let Some(selector) = selector else {
        return Ok(Selector::nothing());
    };
    let mut requirements = Vec::new();
    for (key, value) in selector.match_labels.iter().flatten() {
        requirements.push(Requirement::new(
            key.clone(),
            Operator::Equals,
            vec![value.clone()],
        )?);
    }
    for expr in selector.match_expressions.iter().flatten() {
        let operator = match expr.operator.as_str() {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            other => return Err(format!("{other:?} is not a valid label selector operator")),
        };
        requirements.push(Requirement::new(
            expr.key.clone(),
            operator,
            expr.values.clone().unwrap_or_default(),
        )?);
    }
    Ok(Selector::everything().with_requirements(requirements))
}

#[cfg(test)]
pub(crate) mod testing {
    //! Builders for the objects plugin tests use, in the spirit of upstream's
    //! `st.MakePod()` / `st.MakeNode()`.

    use std::collections::BTreeMap;
    use std::sync::Arc;

    use k8s_openapi::api::core::v1::{
        Container, ContainerImage, Node, NodeSpec, NodeStatus, Pod, PodSpec, ResourceRequirements,
        Taint, Toleration,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use crate::framework::{NodeInfo, Snapshot};

    pub(crate) fn quantities(list: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
        list.iter()
            .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
            .collect()
    }

    pub(crate) fn labels(list: &[(&str, &str)]) -> BTreeMap<String, String> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A node with `allocatable` (`cpu`, `memory`, `pods`, ...) and labels.
    pub(crate) fn node(name: &str, allocatable: &[(&str, &str)], labels_: &[(&str, &str)]) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                labels: if labels_.is_empty() {
                    None
                } else {
                    Some(labels(labels_))
                },
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus {
                allocatable: Some(quantities(allocatable)),
                ..NodeStatus::default()
            }),
        }
    }

    pub(crate) fn with_taints(mut node: Node, taints: Vec<Taint>) -> Node {
        node.spec.get_or_insert_with(NodeSpec::default).taints = Some(taints);
        node
    }

    pub(crate) fn with_images(mut node: Node, images: &[(&[&str], i64)]) -> Node {
        node.status.get_or_insert_with(NodeStatus::default).images = Some(
            images
                .iter()
                .map(|(names, size)| ContainerImage {
                    names: Some(names.iter().map(|n| n.to_string()).collect()),
                    size_bytes: Some(*size),
                })
                .collect(),
        );
        node
    }

    pub(crate) fn taint(key: &str, value: &str, effect: &str) -> Taint {
        Taint {
            key: key.to_string(),
            value: if value.is_empty() {
                None
            } else {
                Some(value.to_string())
            },
            effect: effect.to_string(),
            time_added: None,
        }
    }

    pub(crate) fn toleration(key: &str, operator: &str, value: &str, effect: &str) -> Toleration {
        let opt = |s: &str| {
            if s.is_empty() {
                None
            } else {
                Some(s.to_string())
            }
        };
        Toleration {
            key: opt(key),
            operator: opt(operator),
            value: opt(value),
            effect: opt(effect),
            toleration_seconds: None,
        }
    }

    pub(crate) fn container(requests: &[(&str, &str)]) -> Container {
        Container {
            name: "c".to_string(),
            resources: if requests.is_empty() {
                None
            } else {
                Some(ResourceRequirements {
                    requests: Some(quantities(requests)),
                    ..ResourceRequirements::default()
                })
            },
            ..Container::default()
        }
    }

    /// A pod in namespace `default` with one container per entry of `requests`.
    pub(crate) fn pod(name: &str, requests: &[&[(&str, &str)]]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some("default".to_string()),
                uid: Some(format!("uid-{name}")),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                containers: requests.iter().map(|r| container(r)).collect(),
                ..PodSpec::default()
            }),
            status: None,
        }
    }

    pub(crate) fn spec(pod: &mut Pod) -> &mut PodSpec {
        pod.spec.get_or_insert_with(PodSpec::default)
    }

    pub(crate) fn with_labels(mut pod: Pod, list: &[(&str, &str)]) -> Pod {
        pod.metadata.labels = Some(labels(list));
        pod
    }

    pub(crate) fn on_node(mut pod: Pod, node: &str) -> Pod {
        spec(&mut pod).node_name = Some(node.to_string());
        pod
    }

    pub(crate) fn node_info(node: Node, pods: Vec<Pod>) -> NodeInfo {
        let mut info = NodeInfo::new(node);
        for p in pods {
            info.add_pod(&Arc::new(p));
        }
        info
    }

    /// A snapshot of `nodes` and the `pods` bound to them through `spec.nodeName`.
    pub(crate) fn snapshot(nodes: Vec<Node>, pods: Vec<Pod>) -> Snapshot {
        let mut snapshot = Snapshot::new();
        for n in nodes {
            snapshot.upsert_node(n);
        }
        for p in pods {
            snapshot.add_pod(p);
        }
        snapshot
    }

    /// A JSON document deserialized into `T` (for affinity terms and selectors).
    pub(crate) fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
        serde_json::from_value(value).expect("test JSON must deserialize")
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{taint, toleration};
    use super::*;

    #[test]
    fn tolerations_match_like_upstream() {
        let t = taint("foo", "bar", "NoSchedule");
        assert!(toleration_tolerates_taint(
            &toleration("foo", "Equal", "bar", "NoSchedule"),
            &t
        ));
        assert!(toleration_tolerates_taint(
            &toleration("foo", "", "bar", ""),
            &t
        ));
        assert!(toleration_tolerates_taint(
            &toleration("", "Exists", "", ""),
            &t
        ));
        assert!(toleration_tolerates_taint(
            &toleration("foo", "Exists", "", "NoSchedule"),
            &t
        ));
        assert!(!toleration_tolerates_taint(
            &toleration("foo", "Equal", "baz", "NoSchedule"),
            &t
        ));
        assert!(!toleration_tolerates_taint(
            &toleration("foo", "Equal", "bar", "NoExecute"),
            &t
        ));
        assert!(!toleration_tolerates_taint(
            &toleration("other", "Exists", "", ""),
            &t
        ));
    }

    #[test]
    fn default_normalize_score_scales_and_reverses() {
        let mut scores = [10, 20, 0];
        default_normalize_score(100, false, &mut scores);
        assert_eq!(scores, [50, 100, 0]);
        let mut scores = [10, 20, 0];
        default_normalize_score(100, true, &mut scores);
        assert_eq!(scores, [50, 0, 100]);
        let mut scores = [0, 0];
        default_normalize_score(100, true, &mut scores);
        assert_eq!(scores, [100, 100]);
        let mut scores = [0, 0];
        default_normalize_score(100, false, &mut scores);
        assert_eq!(scores, [0, 0]);
    }

    #[test]
    fn label_selector_nil_matches_nothing_and_empty_everything() {
        let labels = testing::labels(&[("app", "web")]);
        assert!(!label_selector(None).unwrap().matches(&labels));
        assert!(label_selector(Some(&LabelSelector::default()))
            .unwrap()
            .matches(&labels));
        let sel: LabelSelector = testing::from_json(serde_json::json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]
        }));
        assert!(label_selector(Some(&sel)).unwrap().matches(&labels));
        let bad: LabelSelector = testing::from_json(serde_json::json!({
            "matchExpressions": [{"key": "tier", "operator": "Gt", "values": ["1"]}]
        }));
        assert!(label_selector(Some(&bad)).is_err());
    }
}
