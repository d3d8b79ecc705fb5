//! TaintToleration (`plugins/tainttoleration`): Filter rejects nodes with a `NoSchedule`
//! or `NoExecute` taint the pod does not tolerate; Score prefers nodes with fewer
//! untolerated `PreferNoSchedule` taints.

use k8s_openapi::api::core::v1::{Pod, Toleration};

use crate::framework::{Code, FilterResult, NodeInfo, Status, MAX_NODE_SCORE};
use crate::plugins::{
    default_normalize_score, find_untolerated_taint, is_do_not_schedule_taint, taints, tolerations,
    tolerations_tolerate_taint,
};

pub(crate) const NAME: &str = "TaintToleration";
pub(crate) const WEIGHT: i64 = 3;

pub(crate) fn filter(pod: &Pod, node: &NodeInfo) -> FilterResult {
    match find_untolerated_taint(
        taints(node.node()),
        tolerations(pod),
        is_do_not_schedule_taint,
    ) {
        None => Ok(()),
        Some(taint) => Err(Status::new(
            Code::UnschedulableAndUnresolvable,
            format!(
                "node(s) had untolerated taint {{{}: {}}}",
                taint.key,
                taint.value.as_deref().unwrap_or("")
            ),
        )),
    }
}

/// `getAllTolerationPreferNoSchedule`: the tolerations that can tolerate a
/// `PreferNoSchedule` taint (that effect, or any).
pub(crate) fn pre_score(pod: &Pod) -> Vec<Toleration> {
    tolerations(pod)
        .iter()
        .filter(|t| {
            matches!(
                t.effect.as_deref(),
                None | Some("") | Some("PreferNoSchedule")
            )
        })
        .cloned()
        .collect()
}

/// `countIntolerableTaintsPreferNoSchedule`.
pub(crate) fn score(tolerations: &[Toleration], node: &NodeInfo) -> i64 {
    taints(node.node())
        .iter()
        .filter(|t| t.effect == "PreferNoSchedule")
        .filter(|t| !tolerations_tolerate_taint(tolerations, t))
        .count() as i64
}

/// Fewer untolerated taints score higher.
pub(crate) fn normalize(scores: &mut [i64]) {
    default_normalize_score(MAX_NODE_SCORE, true, scores);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::*;
    use k8s_openapi::api::core::v1::{Pod, Taint};

    fn pod_tolerating(list: Vec<Toleration>) -> Pod {
        let mut p = pod("p", &[]);
        spec(&mut p).tolerations = Some(list);
        p
    }

    fn tainted(name: &str, list: Vec<Taint>) -> NodeInfo {
        node_info(with_taints(node(name, &[], &[]), list), vec![])
    }

    fn scores(p: &Pod, nodes: &[NodeInfo]) -> Vec<i64> {
        let prefer = pre_score(p);
        let mut s: Vec<i64> = nodes.iter().map(|n| score(&prefer, n)).collect();
        normalize(&mut s);
        s
    }

    // TestTaintTolerationScore
    #[test]
    fn tolerated_taints_score_higher_than_intolerable() {
        let p = pod_tolerating(vec![toleration("foo", "Equal", "bar", "PreferNoSchedule")]);
        let nodes = [
            tainted("a", vec![taint("foo", "bar", "PreferNoSchedule")]),
            tainted("b", vec![taint("foo", "blah", "PreferNoSchedule")]),
        ];
        assert_eq!(scores(&p, &nodes), vec![100, 0]);
    }

    #[test]
    fn all_tolerated_nodes_score_the_same() {
        let p = pod_tolerating(vec![
            toleration("cpu-type", "Equal", "arm64", "PreferNoSchedule"),
            toleration("disk-type", "Equal", "ssd", "PreferNoSchedule"),
        ]);
        let nodes = [
            tainted("a", vec![]),
            tainted("b", vec![taint("cpu-type", "arm64", "PreferNoSchedule")]),
            tainted(
                "c",
                vec![
                    taint("cpu-type", "arm64", "PreferNoSchedule"),
                    taint("disk-type", "ssd", "PreferNoSchedule"),
                ],
            ),
        ];
        assert_eq!(scores(&p, &nodes), vec![100, 100, 100]);
    }

    #[test]
    fn more_intolerable_taints_score_lower() {
        let p = pod_tolerating(vec![toleration("foo", "Equal", "bar", "PreferNoSchedule")]);
        let nodes = [
            tainted("a", vec![]),
            tainted("b", vec![taint("cpu-type", "arm64", "PreferNoSchedule")]),
            tainted(
                "c",
                vec![
                    taint("cpu-type", "arm64", "PreferNoSchedule"),
                    taint("disk-type", "ssd", "PreferNoSchedule"),
                ],
            ),
        ];
        assert_eq!(scores(&p, &nodes), vec![100, 50, 0]);
    }

    #[test]
    fn only_prefer_no_schedule_is_scored() {
        let p = pod_tolerating(vec![
            toleration("cpu-type", "Equal", "arm64", "NoSchedule"),
            toleration("disk-type", "Equal", "ssd", "NoSchedule"),
        ]);
        let nodes = [
            tainted("a", vec![]),
            tainted("b", vec![taint("cpu-type", "arm64", "NoSchedule")]),
            tainted(
                "c",
                vec![
                    taint("cpu-type", "arm64", "PreferNoSchedule"),
                    taint("disk-type", "ssd", "PreferNoSchedule"),
                ],
            ),
        ];
        assert_eq!(scores(&p, &nodes), vec![100, 100, 0]);
    }

    #[test]
    fn no_taints_and_no_tolerations() {
        let p = pod("p", &[]);
        let nodes = [
            tainted("a", vec![]),
            tainted("b", vec![taint("cpu-type", "arm64", "PreferNoSchedule")]),
        ];
        assert_eq!(scores(&p, &nodes), vec![100, 0]);
    }

    fn untolerated(reason: &str) -> FilterResult {
        Err(Status::new(
            Code::UnschedulableAndUnresolvable,
            reason.to_string(),
        ))
    }

    // TestTaintTolerationFilter
    #[test]
    fn pod_without_tolerations_rejected_by_taint() {
        let info = tainted("n", vec![taint("dedicated", "user1", "NoSchedule")]);
        assert_eq!(
            filter(&pod("p", &[]), &info),
            untolerated("node(s) had untolerated taint {dedicated: user1}")
        );
    }

    #[test]
    fn pod_tolerating_the_dedicated_taint() {
        let info = tainted("n", vec![taint("dedicated", "user1", "NoSchedule")]);
        let p = pod_tolerating(vec![toleration(
            "dedicated",
            "Equal",
            "user1",
            "NoSchedule",
        )]);
        assert_eq!(filter(&p, &info), Ok(()));
        let p = pod_tolerating(vec![toleration(
            "dedicated",
            "Equal",
            "user2",
            "NoSchedule",
        )]);
        assert_eq!(
            filter(&p, &info),
            untolerated("node(s) had untolerated taint {dedicated: user1}")
        );
    }

    #[test]
    fn exists_operator_tolerates() {
        let info = tainted("n", vec![taint("foo", "bar", "NoSchedule")]);
        let p = pod_tolerating(vec![toleration("foo", "Exists", "", "NoSchedule")]);
        assert_eq!(filter(&p, &info), Ok(()));
    }

    #[test]
    fn multiple_tolerations_tolerate_multiple_taints() {
        let info = tainted(
            "n",
            vec![
                taint("dedicated", "user2", "NoSchedule"),
                taint("foo", "bar", "NoSchedule"),
            ],
        );
        let p = pod_tolerating(vec![
            toleration("dedicated", "Equal", "user2", "NoSchedule"),
            toleration("foo", "Exists", "", "NoSchedule"),
        ]);
        assert_eq!(filter(&p, &info), Ok(()));
    }

    #[test]
    fn effect_must_match_when_set() {
        let info = tainted("n", vec![taint("foo", "bar", "NoSchedule")]);
        let p = pod_tolerating(vec![toleration("foo", "Equal", "bar", "PreferNoSchedule")]);
        assert_eq!(
            filter(&p, &info),
            untolerated("node(s) had untolerated taint {foo: bar}")
        );
        let p = pod_tolerating(vec![toleration("foo", "Equal", "bar", "")]);
        assert_eq!(filter(&p, &info), Ok(()));
    }

    #[test]
    fn prefer_no_schedule_taints_do_not_filter() {
        let info = tainted("n", vec![taint("dedicated", "user1", "PreferNoSchedule")]);
        let p = pod_tolerating(vec![toleration(
            "dedicated",
            "Equal",
            "user2",
            "NoSchedule",
        )]);
        assert_eq!(filter(&p, &info), Ok(()));
        assert_eq!(filter(&pod("p", &[]), &info), Ok(()));
    }

    #[test]
    fn no_execute_taints_filter() {
        let info = tainted(
            "n",
            vec![taint("node.kubernetes.io/not-ready", "", "NoExecute")],
        );
        assert_eq!(
            filter(&pod("p", &[]), &info),
            untolerated("node(s) had untolerated taint {node.kubernetes.io/not-ready: }")
        );
    }
}
