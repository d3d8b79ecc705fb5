//! NodeResourcesBalancedAllocation (`plugins/noderesources/balanced_allocation.go`):
//! prefers nodes whose cpu and memory would be used in equal shares once the pod is
//! placed: `(1 - std) * 100` over the requested/allocatable fractions.

use k8s_openapi::api::core::v1::Pod;

use crate::framework::{pod_scoring_requests, NodeInfo, MAX_NODE_SCORE};

pub(crate) const NAME: &str = "NodeResourcesBalancedAllocation";
pub(crate) const WEIGHT: i64 = 1;

/// The pod's `[cpu millicores, memory bytes]` as requested; `None` (Skip) for a
/// best-effort pod, which would otherwise pile onto one node (kubernetes#129138).
pub(crate) fn pre_score(pod: &Pod) -> Option<[i64; 2]> {
    let requests = pod_scoring_requests(pod, true);
    (requests != [0, 0]).then_some(requests)
}

pub(crate) fn score(pod: &[i64; 2], node: &NodeInfo) -> i64 {
    let allocatable = [node.allocatable().milli_cpu, node.allocatable().memory];
    let requested = [
        node.requested().milli_cpu + pod[0],
        node.requested().memory + pod[1],
    ];
    balanced_resource_scorer(&requested, &allocatable)
}

/// `balancedResourceScorer`.
fn balanced_resource_scorer(requested: &[i64], allocatable: &[i64]) -> i64 {
    let mut fractions = Vec::with_capacity(requested.len());
    let mut total = 0.0;
    for (&r, &a) in requested.iter().zip(allocatable) {
        if a == 0 {
            continue;
        }
        let fraction = (r as f64 / a as f64).min(1.0);
        total += fraction;
        fractions.push(fraction);
    }
    let std = match fractions.len() {
        2 => ((fractions[0] - fractions[1]) / 2.0).abs(),
        n if n > 2 => {
            let mean = total / n as f64;
            let sum: f64 = fractions.iter().map(|f| (f - mean) * (f - mean)).sum();
            (sum / n as f64).sqrt()
        }
        _ => 0.0,
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::*;
    use k8s_openapi::api::core::v1::{Node, Pod};

    fn cap(name: &str, cpu: &str, mem: &str) -> Node {
        node(name, &[("cpu", cpu), ("memory", mem)], &[])
    }

    fn cpu_and_memory(name: &str, on: &str) -> Pod {
        on_node(
            pod(
                name,
                &[
                    &[("cpu", "1000m"), ("memory", "2000")],
                    &[("cpu", "2000m"), ("memory", "3000")],
                ],
            ),
            on,
        )
    }

    fn cpu_only(name: &str, on: &str) -> Pod {
        on_node(
            pod(
                name,
                &[
                    &[("cpu", "1000m"), ("memory", "0")],
                    &[("cpu", "2000m"), ("memory", "0")],
                ],
            ),
            on,
        )
    }

    fn scores(p: &Pod, nodes: Vec<Node>, existing: Vec<Pod>) -> Option<Vec<i64>> {
        let s = snapshot(nodes, existing);
        let req = pre_score(p)?;
        Some(s.nodes().iter().map(|n| score(&req, n)).collect())
    }

    // TestNodeResourcesBalancedAllocation
    #[test]
    fn best_effort_pods_are_skipped() {
        let mut p = pod("p", &[]);
        spec(&mut p).containers.clear();
        assert_eq!(
            scores(&p, vec![cap("machine1", "4000m", "10000")], vec![]),
            None
        );
        assert_eq!(pre_score(&pod("p", &[&[]])), None);
    }

    #[test]
    fn nothing_scheduled_resources_requested_differently_sized_machines() {
        // cpu 3000/4000, memory 5000/10000 -> 100 - 12.5 = 87; 3000/6000 vs 0.5 -> 100
        assert_eq!(
            scores(
                &cpu_and_memory("p", ""),
                vec![
                    cap("machine1", "4000m", "10000"),
                    cap("machine2", "6000m", "10000")
                ],
                vec![]
            ),
            Some(vec![87, 100])
        );
    }

    #[test]
    fn resources_requested_pods_scheduled_with_resources() {
        // machine1: cpu 6000/10000 = 0.6, memory 5000/20000 = 0.25 -> 82
        // machine2: cpu 6000/10000 = 0.6, memory 10000/20000 = 0.5 -> 95
        let existing = vec![cpu_only("a", "machine1"), cpu_and_memory("b", "machine2")];
        assert_eq!(
            scores(
                &cpu_and_memory("p", ""),
                vec![
                    cap("machine1", "10000m", "20000"),
                    cap("machine2", "10000m", "20000")
                ],
                existing
            ),
            Some(vec![82, 95])
        );
    }

    #[test]
    fn resources_requested_differently_sized_machines() {
        // machine2: memory 10000/50000 = 0.2 -> 100 - 20 = 80
        let existing = vec![cpu_only("a", "machine1"), cpu_and_memory("b", "machine2")];
        assert_eq!(
            scores(
                &cpu_and_memory("p", ""),
                vec![
                    cap("machine1", "10000m", "20000"),
                    cap("machine2", "10000m", "50000")
                ],
                existing
            ),
            Some(vec![82, 80])
        );
    }

    #[test]
    fn requested_resources_exceed_node_capacity() {
        // cpu capped at 1: machine1 (1 - 0)/2 -> 50; machine2 (1 - 0.5)/2 -> 75
        let existing = vec![cpu_only("a", "machine1"), cpu_and_memory("b", "machine2")];
        assert_eq!(
            scores(
                &cpu_only("p", ""),
                vec![
                    cap("machine1", "4000m", "10000"),
                    cap("machine2", "4000m", "10000")
                ],
                existing
            ),
            Some(vec![50, 75])
        );
    }

    #[test]
    fn zero_node_resources() {
        let existing = vec![cpu_only("a", "machine1"), cpu_and_memory("b", "machine2")];
        assert_eq!(
            scores(
                &cpu_and_memory("p", ""),
                vec![node("machine1", &[], &[]), node("machine2", &[], &[])],
                existing
            ),
            Some(vec![100, 100])
        );
    }

    #[test]
    fn scorer_uses_the_standard_deviation_beyond_two_resources() {
        // fractions 0.2, 0.4, 0.6: std = sqrt(0.08/3) = 0.163 -> 83
        assert_eq!(balanced_resource_scorer(&[2, 4, 6], &[10, 10, 10]), 83);
        assert_eq!(balanced_resource_scorer(&[2], &[10]), 100);
    }
}
