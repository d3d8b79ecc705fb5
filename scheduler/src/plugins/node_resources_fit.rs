//! NodeResourcesFit (`plugins/noderesources/fit.go`): Filter checks that the node has
//! room for the pod's requests (cpu, memory, ephemeral storage, pod count, extended
//! resources); Score is the default `LeastAllocated` strategy over cpu and memory
//! (weights 1 and 1).

use std::borrow::Cow;

use k8s_openapi::api::core::v1::Pod;

use crate::framework::{
    pod_requests, Code, FilterResult, NodeInfo, Resources, Status, MAX_NODE_SCORE,
};

pub(crate) const NAME: &str = "NodeResourcesFit";
pub(crate) const WEIGHT: i64 = 1;

/// The scored resources and their weights (`ScoringStrategy.Resources` defaults).
const SCORED: [i64; 2] = [1, 1];

/// `computePodResourceRequest`.
pub(crate) fn pre_filter(pod: &Pod) -> Resources {
    pod_requests(pod)
}

/// `fitsRequest`: every insufficient resource is a reason.
pub(crate) fn filter(request: &Resources, node: &NodeInfo) -> FilterResult {
    let mut reasons: Vec<Cow<'static, str>> = Vec::new();
    let allocatable = node.allocatable();
    let requested = node.requested();
    if node.pod_count() as i64 + 1 > allocatable.allowed_pod_number {
        reasons.push(Cow::Borrowed("Too many pods"));
    }
    if !request.is_zero() {
        if request.milli_cpu > 0 && request.milli_cpu > allocatable.milli_cpu - requested.milli_cpu
        {
            reasons.push(Cow::Borrowed("Insufficient cpu"));
        }
        if request.memory > 0 && request.memory > allocatable.memory - requested.memory {
            reasons.push(Cow::Borrowed("Insufficient memory"));
        }
        if request.ephemeral_storage > 0
            && request.ephemeral_storage
                > allocatable.ephemeral_storage - requested.ephemeral_storage
        {
            reasons.push(Cow::Borrowed("Insufficient ephemeral-storage"));
        }
        for (name, &quantity) in &request.scalar {
            if quantity == 0 {
                continue;
            }
            let free = allocatable.scalar.get(name).copied().unwrap_or(0)
                - requested.scalar.get(name).copied().unwrap_or(0);
            if quantity > free {
                reasons.push(Cow::Owned(format!("Insufficient {name}")));
            }
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(Status::with_reasons(Code::Unschedulable, reasons))
    }
}

/// `leastRequestedScore`: the free share of `capacity`, 0..=100.
fn least_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

/// LeastAllocated: the weighted mean of the free cpu and memory shares once the pod is
/// placed. `pod` is `[cpu millicores, memory bytes]` with the 100m / 200Mi defaults for
/// containers that request none; the node's side uses the same defaults
/// ([`NodeInfo::non_zero_requested`]). Resources the node has none of are left out.
pub(crate) fn score(pod: &[i64; 2], node: &NodeInfo) -> i64 {
    let allocatable = [node.allocatable().milli_cpu, node.allocatable().memory];
    let requested = [
        node.non_zero_requested().milli_cpu + pod[0],
        node.non_zero_requested().memory + pod[1],
    ];
    let (mut node_score, mut weight_sum) = (0, 0);
    for i in 0..2 {
        if allocatable[i] == 0 {
            continue;
        }
        node_score += least_requested_score(requested[i], allocatable[i]) * SCORED[i];
        weight_sum += SCORED[i];
    }
    if weight_sum == 0 {
        0
    } else {
        node_score / weight_sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::pod_scoring_requests;
    use crate::plugins::testing::*;
    use k8s_openapi::api::core::v1::Pod;

    // makeResources(10, 20, 32, 5, 20, 5) of fit_test.go
    fn alloc() -> Vec<(&'static str, &'static str)> {
        vec![
            ("cpu", "10m"),
            ("memory", "20"),
            ("pods", "32"),
            ("example.com/aaa", "5"),
            ("ephemeral-storage", "20"),
            ("hugepages-2Mi", "5"),
        ]
    }

    fn res(cpu: i64, mem: i64) -> Vec<(&'static str, String)> {
        vec![("cpu", format!("{cpu}m")), ("memory", mem.to_string())]
    }

    fn resource_pod(list: &[(&str, String)]) -> Pod {
        let list: Vec<(&str, &str)> = list.iter().map(|(k, v)| (*k, v.as_str())).collect();
        pod("p", &[&list])
    }

    fn with_init(mut p: Pod, inits: &[Vec<(&'static str, String)>]) -> Pod {
        spec(&mut p).init_containers = Some(
            inits
                .iter()
                .map(|l| {
                    let l: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
                    container(&l)
                })
                .collect(),
        );
        p
    }

    fn check(p: &Pod, existing: &[(&str, String)]) -> FilterResult {
        check_on(p, existing, &alloc())
    }

    fn check_on(
        p: &Pod,
        existing: &[(&str, String)],
        allocatable: &[(&str, &str)],
    ) -> FilterResult {
        let info = node_info(node("n", allocatable, &[]), vec![resource_pod(existing)]);
        filter(&pre_filter(p), &info)
    }

    fn insufficient(reasons: &[&'static str]) -> FilterResult {
        Err(Status::with_reasons(
            Code::Unschedulable,
            reasons.iter().map(|r| Cow::Borrowed(*r)).collect(),
        ))
    }

    // TestEnoughRequests
    #[test]
    fn no_resources_requested_always_fits() {
        assert_eq!(check(&pod("p", &[]), &res(10, 20)), Ok(()));
    }

    #[test]
    fn too_many_resources_fails() {
        assert_eq!(
            check(&resource_pod(&res(1, 1)), &res(10, 20)),
            insufficient(&["Insufficient cpu", "Insufficient memory"])
        );
    }

    #[test]
    fn too_many_resources_fails_due_to_init_container_cpu() {
        let p = with_init(resource_pod(&res(1, 1)), &[res(3, 1)]);
        assert_eq!(check(&p, &res(8, 19)), insufficient(&["Insufficient cpu"]));
        let p = with_init(resource_pod(&res(1, 1)), &[res(3, 1), res(2, 1)]);
        assert_eq!(check(&p, &res(8, 19)), insufficient(&["Insufficient cpu"]));
    }

    #[test]
    fn too_many_resources_fails_due_to_init_container_memory() {
        let p = with_init(resource_pod(&res(1, 1)), &[res(1, 3)]);
        assert_eq!(
            check(&p, &res(9, 19)),
            insufficient(&["Insufficient memory"])
        );
        let p = with_init(resource_pod(&res(1, 1)), &[res(1, 3), res(1, 2)]);
        assert_eq!(
            check(&p, &res(9, 19)),
            insufficient(&["Insufficient memory"])
        );
    }

    #[test]
    fn init_containers_fit_because_it_is_the_max_not_the_sum() {
        let p = with_init(resource_pod(&res(1, 1)), &[res(1, 1)]);
        assert_eq!(check(&p, &res(9, 19)), Ok(()));
        let p = with_init(resource_pod(&res(1, 1)), &[res(1, 1), res(1, 1)]);
        assert_eq!(check(&p, &res(9, 19)), Ok(()));
    }

    #[test]
    fn one_or_both_resources_fit() {
        assert_eq!(check(&resource_pod(&res(1, 1)), &res(5, 5)), Ok(()));
        assert_eq!(
            check(&resource_pod(&res(2, 1)), &res(9, 5)),
            insufficient(&["Insufficient cpu"])
        );
        assert_eq!(
            check(&resource_pod(&res(1, 2)), &res(5, 19)),
            insufficient(&["Insufficient memory"])
        );
    }

    #[test]
    fn equal_edge_cases_fit() {
        assert_eq!(check(&resource_pod(&res(5, 1)), &res(5, 19)), Ok(()));
        let p = with_init(resource_pod(&res(4, 1)), &[res(5, 1)]);
        assert_eq!(check(&p, &res(5, 19)), Ok(()));
    }

    fn with_scalar(
        mut list: Vec<(&'static str, String)>,
        name: &'static str,
        v: i64,
    ) -> Vec<(&'static str, String)> {
        list.push((name, v.to_string()));
        list
    }

    #[test]
    fn extended_resources() {
        let p = resource_pod(&with_scalar(res(1, 1), "example.com/aaa", 1));
        assert_eq!(check(&p, &res(0, 0)), Ok(()), "extended resource fits");
        let p = with_init(
            resource_pod(&res(0, 0)),
            &[with_scalar(res(0, 0), "example.com/aaa", 1)],
        );
        assert_eq!(check(&p, &res(0, 0)), Ok(()), "fits for init container");
        let p = resource_pod(&with_scalar(res(1, 1), "example.com/aaa", 10));
        assert_eq!(
            check(&p, &res(0, 0)),
            insufficient(&["Insufficient example.com/aaa"]),
            "capacity enforced"
        );
        let p = resource_pod(&with_scalar(res(1, 1), "example.com/aaa", 1));
        assert_eq!(
            check(&p, &with_scalar(res(0, 0), "example.com/aaa", 5)),
            insufficient(&["Insufficient example.com/aaa"]),
            "allocatable enforced"
        );
        let p = resource_pod(&with_scalar(res(1, 1), "example.com/bbb", 1));
        assert_eq!(
            check(&p, &res(0, 0)),
            insufficient(&["Insufficient example.com/bbb"]),
            "allocatable enforced for unknown resource"
        );
        let p = resource_pod(&with_scalar(res(1, 1), "hugepages-2Mi", 10));
        assert_eq!(
            check(&p, &res(0, 0)),
            insufficient(&["Insufficient hugepages-2Mi"]),
            "hugepages capacity enforced"
        );
        let p = resource_pod(&with_scalar(res(1, 1), "hugepages-2Mi", 3));
        assert_eq!(
            check(&p, &with_scalar(res(0, 0), "hugepages-2Mi", 2)),
            Ok(()),
            "hugepages fit"
        );
    }

    #[test]
    fn pod_overhead() {
        let mut p = resource_pod(&res(1, 1));
        spec(&mut p).overhead = Some(quantities(&[("cpu", "3m"), ("memory", "13")]));
        assert_eq!(
            check(&p, &res(5, 5)),
            Ok(()),
            "resources + pod overhead fits"
        );
        spec(&mut p).overhead = Some(quantities(&[("cpu", "1m"), ("memory", "15")]));
        assert_eq!(
            check(&p, &res(5, 5)),
            insufficient(&["Insufficient memory"]),
            "requests + overhead does not fit for memory"
        );
    }

    // TestPredicateWithNotEnoughPods (allocatable pods: 1)
    #[test]
    fn too_many_pods() {
        let allocatable = [("cpu", "10m"), ("memory", "20"), ("pods", "1")];
        assert_eq!(
            check_on(&pod("p", &[]), &res(10, 20), &allocatable),
            insufficient(&["Too many pods"])
        );
        assert_eq!(
            check_on(&resource_pod(&res(1, 1)), &res(5, 5), &allocatable),
            insufficient(&["Too many pods"])
        );
        assert_eq!(
            check_on(&resource_pod(&res(1, 1)), &res(10, 20), &allocatable),
            insufficient(&["Too many pods", "Insufficient cpu", "Insufficient memory"])
        );
    }

    // TestStorageRequests
    #[test]
    fn ephemeral_storage() {
        let p = resource_pod(&[("cpu", "1m".into()), ("ephemeral-storage", "25".into())]);
        assert_eq!(
            check(&p, &res(2, 10)),
            insufficient(&["Insufficient ephemeral-storage"]),
            "storage ephemeral local storage request exceeds allocatable"
        );
        let p = resource_pod(&[("cpu", "1m".into()), ("ephemeral-storage", "10".into())]);
        assert_eq!(
            check(&p, &res(2, 10)),
            Ok(()),
            "ephemeral local storage is sufficient"
        );
    }

    fn scores(
        p: &Pod,
        nodes: Vec<k8s_openapi::api::core::v1::Node>,
        existing: Vec<Pod>,
    ) -> Vec<i64> {
        let s = snapshot(nodes, existing);
        let req = pod_scoring_requests(p, false);
        s.nodes().iter().map(|n| score(&req, n)).collect()
    }

    fn cap(name: &str, cpu: &str, mem: &str) -> k8s_openapi::api::core::v1::Node {
        node(name, &[("cpu", cpu), ("memory", mem)], &[])
    }

    fn requesting(name: &str, reqs: &[&[(&str, &str)]], on: &str) -> Pod {
        on_node(pod(name, reqs), on)
    }

    // TestLeastAllocatedScoringStrategy
    #[test]
    fn least_allocated_nothing_scheduled_nothing_requested() {
        let mut p = pod("p", &[]);
        spec(&mut p).containers.clear();
        assert_eq!(
            scores(
                &p,
                vec![cap("node1", "4000", "10000"), cap("node2", "4000", "10000")],
                vec![]
            ),
            vec![100, 100]
        );
    }

    #[test]
    fn least_allocated_differently_sized_nodes() {
        let p = pod(
            "p",
            &[
                &[("cpu", "1000"), ("memory", "2000")],
                &[("cpu", "2000"), ("memory", "3000")],
            ],
        );
        assert_eq!(
            scores(
                &p,
                vec![cap("node1", "4000", "10000"), cap("node2", "6000", "10000")],
                vec![]
            ),
            vec![37, 50]
        );
    }

    #[test]
    fn least_allocated_no_resources_requested_pods_scheduled_with_resources() {
        let mut p = pod("p", &[]);
        spec(&mut p).containers.clear();
        let existing = vec![
            requesting("a", &[&[("cpu", "3000"), ("memory", "0")]], "node1"),
            requesting("b", &[&[("cpu", "3000"), ("memory", "0")]], "node1"),
            requesting("c", &[&[("cpu", "3000"), ("memory", "0")]], "node2"),
            requesting("d", &[&[("cpu", "3000"), ("memory", "5000")]], "node2"),
        ];
        assert_eq!(
            scores(
                &p,
                vec![
                    cap("node1", "10000", "20000"),
                    cap("node2", "10000", "20000")
                ],
                existing
            ),
            vec![70, 57]
        );
    }

    #[test]
    fn least_allocated_resources_requested_pods_scheduled_with_resources() {
        let p = pod(
            "p",
            &[
                &[("cpu", "1000"), ("memory", "2000")],
                &[("cpu", "2000"), ("memory", "3000")],
            ],
        );
        let existing = || {
            vec![
                requesting("a", &[&[("cpu", "3000"), ("memory", "0")]], "node1"),
                requesting("b", &[&[("cpu", "3000"), ("memory", "5000")]], "node2"),
            ]
        };
        assert_eq!(
            scores(
                &p,
                vec![
                    cap("node1", "10000", "20000"),
                    cap("node2", "10000", "20000")
                ],
                existing()
            ),
            vec![57, 45]
        );
        assert_eq!(
            scores(
                &p,
                vec![
                    cap("node1", "10000", "20000"),
                    cap("node2", "10000", "50000")
                ],
                existing()
            ),
            vec![57, 60]
        );
    }

    #[test]
    fn least_allocated_requested_resources_exceed_node_capacity() {
        let p = pod("p", &[&[("cpu", "3000"), ("memory", "0")]]);
        let existing = vec![
            requesting("a", &[&[("cpu", "3000"), ("memory", "0")]], "node1"),
            requesting("b", &[&[("cpu", "3000"), ("memory", "5000")]], "node2"),
        ];
        assert_eq!(
            scores(
                &p,
                vec![cap("node1", "4000", "10000"), cap("node2", "4000", "10000")],
                existing
            ),
            vec![50, 25]
        );
    }

    #[test]
    fn least_allocated_zero_node_resources() {
        let mut p = pod("p", &[]);
        spec(&mut p).containers.clear();
        let existing = vec![
            requesting("a", &[&[("cpu", "3000"), ("memory", "0")]], "node1"),
            requesting("b", &[&[("cpu", "3000"), ("memory", "5000")]], "node2"),
        ];
        assert_eq!(
            scores(
                &p,
                vec![node("node1", &[], &[]), node("node2", &[], &[])],
                existing
            ),
            vec![0, 0]
        );
    }

    #[test]
    fn least_allocated_counts_defaults_for_containers_without_requests() {
        // One best-effort container: 100m and 200Mi are counted.
        let p = pod("p", &[&[]]);
        let node1 = node("node1", &[("cpu", "1"), ("memory", "1000Mi")], &[]);
        // cpu (1000-100)*100/1000 = 90, memory (1000-200)*100/1000 = 80 -> 85
        assert_eq!(scores(&p, vec![node1], vec![]), vec![85]);
    }
}
