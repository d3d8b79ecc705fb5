//! PodTopologySpread (`plugins/podtopologyspread`): Filter enforces the pod's
//! `DoNotSchedule` constraints (`maxSkew`, `minDomains`, `nodeAffinityPolicy`,
//! `nodeTaintsPolicy`, `matchLabelKeys`); Score prefers the domains with fewer matching
//! pods for its `ScheduleAnyway` constraints. Only the pod's own constraints are used (no
//! cluster default constraints).

use std::collections::{HashMap, HashSet};

use k8s_openapi::api::core::v1::{Node, Pod, TopologySpreadConstraint};
use keelson_apimachinery::labels::Selector;

use crate::framework::{Code, FilterResult, NodeInfo, Snapshot, Status, MAX_NODE_SCORE};
use crate::plugins::node_affinity::RequiredNodeAffinity;
use crate::plugins::{
    find_untolerated_taint, is_do_not_schedule_taint, label_selector, node_labels, pod_labels,
    pod_namespace, taints, tolerations, LABEL_HOSTNAME,
};

pub(crate) const NAME: &str = "PodTopologySpread";
pub(crate) const WEIGHT: i64 = 2;

/// `ErrReasonConstraintsNotMatch`.
pub(crate) const ERR_REASON_CONSTRAINTS_NOT_MATCH: &str =
    "node(s) didn't match pod topology spread constraints";
/// `ErrReasonNodeLabelNotMatch`.
pub(crate) const ERR_REASON_NODE_LABEL_NOT_MATCH: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

/// A parsed `TopologySpreadConstraint`.
#[derive(Clone, Debug)]
pub(crate) struct Constraint {
    max_skew: i64,
    topology_key: String,
    selector: Selector,
    min_domains: i64,
    honor_node_affinity: bool,
    honor_node_taints: bool,
}

impl Constraint {
    /// `matchNodeInclusionPolicies`.
    fn includes_node(&self, pod: &Pod, node: &Node, required: &RequiredNodeAffinity) -> bool {
        if self.honor_node_affinity && !required.matches(node) {
            return false;
        }
        if self.honor_node_taints
            && find_untolerated_taint(taints(node), tolerations(pod), is_do_not_schedule_taint)
                .is_some()
        {
            return false;
        }
        true
    }
}

/// `filterTopologySpreadConstraints`: the constraints with `whenUnsatisfiable == action`,
/// the pod's values for `matchLabelKeys` merged into the selector.
fn constraints(pod: &Pod, action: &str) -> Result<Vec<Constraint>, String> {
    let list: &[TopologySpreadConstraint] = pod
        .spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_deref())
        .unwrap_or(&[]);
    let mut out = Vec::new();
    for c in list.iter().filter(|c| c.when_unsatisfiable == action) {
        let mut selector = label_selector(c.label_selector.as_ref())?;
        let labels = pod_labels(pod);
        let match_labels: Vec<(String, String)> = c
            .match_label_keys
            .iter()
            .flatten()
            .filter_map(|k| labels.get(k).map(|v| (k.clone(), v.clone())))
            .collect();
        if !match_labels.is_empty() && !selector.is_nothing() {
            selector = Selector::from_set(match_labels)
                .with_requirements(selector.requirements().to_vec());
        }
        out.push(Constraint {
            max_skew: i64::from(c.max_skew),
            topology_key: c.topology_key.clone(),
            selector,
            min_domains: i64::from(c.min_domains.unwrap_or(1)),
            honor_node_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
            honor_node_taints: c.node_taints_policy.as_deref() == Some("Honor"),
        });
    }
    Ok(out)
}

/// `nodeLabelsMatchSpreadConstraints`: the node has every topology key.
fn node_has_all_keys(node: &Node, constraints: &[Constraint]) -> bool {
    let labels = node_labels(node);
    constraints
        .iter()
        .all(|c| labels.contains_key(&c.topology_key))
}

/// `countPodsMatchSelector`: pods of `namespace` on the node, not terminating,
/// matching `selector`. An empty selector counts nothing.
fn count_pods_match_selector(node: &NodeInfo, selector: &Selector, namespace: &str) -> i64 {
    if selector.is_empty() {
        return 0;
    }
    node.count_matching(|ns| ns == namespace, selector, true)
}

/// The two domains with the fewest matching pods of one topology key; `paths[0]` holds
/// the minimum (`criticalPaths`).
#[derive(Clone, Debug)]
struct CriticalPaths([(String, i64); 2]);

impl CriticalPaths {
    fn new() -> CriticalPaths {
        let max = i64::from(i32::MAX);
        CriticalPaths([(String::new(), max), (String::new(), max)])
    }

    fn update(&mut self, value: &str, num: i64) {
        let p = &mut self.0;
        let i = if value == p[0].0 {
            Some(0)
        } else if value == p[1].0 {
            Some(1)
        } else {
            None
        };
        match i {
            Some(i) => {
                p[i].1 = num;
                if p[0].1 > p[1].1 {
                    p.swap(0, 1);
                }
            }
            None => {
                if num < p[0].1 {
                    p[1] = p[0].clone();
                    p[0] = (value.to_string(), num);
                } else if num < p[1].1 {
                    p[1] = (value.to_string(), num);
                }
            }
        }
    }
}

/// PreFilter's state: matching pods per domain.
#[derive(Clone, Debug)]
pub(crate) struct PreFilterState {
    constraints: Vec<Constraint>,
    required: RequiredNodeAffinity,
    critical_paths: HashMap<String, CriticalPaths>,
    domains: HashMap<String, i64>,
    match_num: HashMap<String, HashMap<String, i64>>,
}

/// PreFilter: `None` (Skip) without `DoNotSchedule` constraints.
pub(crate) fn pre_filter(pod: &Pod, snapshot: &Snapshot) -> Result<Option<PreFilterState>, Status> {
    let constraints = constraints(pod, "DoNotSchedule").map_err(|e| {
        Status::new(
            Code::UnschedulableAndUnresolvable,
            format!("obtaining pod's hard topology spread constraints: {e}"),
        )
    })?;
    if constraints.is_empty() {
        return Ok(None);
    }
    let required = RequiredNodeAffinity::of(pod);
    let namespace = pod_namespace(pod);
    let mut match_num: HashMap<String, HashMap<String, i64>> = HashMap::new();
    for info in snapshot.nodes() {
        let node = info.node();
        if !node_has_all_keys(node, &constraints) {
            continue;
        }
        for c in &constraints {
            if !c.includes_node(pod, node, &required) {
                continue;
            }
            let value = node_labels(node)
                .get(&c.topology_key)
                .map_or("", String::as_str);
            let count = count_pods_match_selector(info, &c.selector, namespace);
            if !match_num.contains_key(&c.topology_key) {
                match_num.insert(c.topology_key.clone(), HashMap::new());
            }
            if let Some(values) = match_num.get_mut(&c.topology_key) {
                match values.get_mut(value) {
                    Some(n) => *n += count,
                    None => {
                        values.insert(value.to_string(), count);
                    }
                }
            }
        }
    }
    let domains = match_num
        .iter()
        .map(|(k, values)| (k.clone(), values.len() as i64))
        .collect();
    let mut critical_paths: HashMap<String, CriticalPaths> = constraints
        .iter()
        .map(|c| (c.topology_key.clone(), CriticalPaths::new()))
        .collect();
    for (key, values) in &match_num {
        if let Some(paths) = critical_paths.get_mut(key) {
            for (value, &num) in values {
                paths.update(value, num);
            }
        }
    }
    Ok(Some(PreFilterState {
        constraints,
        required,
        critical_paths,
        domains,
        match_num,
    }))
}

impl PreFilterState {
    /// `updateWithPod`: `updated` added (`delta` 1) to or removed (-1) from `node`.
    pub(crate) fn update_with_pod(&mut self, pod: &Pod, updated: &Pod, node: &Node, delta: i64) {
        if pod_namespace(updated) != pod_namespace(pod)
            || !node_has_all_keys(node, &self.constraints)
        {
            return;
        }
        let labels = pod_labels(updated);
        for c in &self.constraints {
            if !c.selector.matches(labels) || !c.includes_node(pod, node, &self.required) {
                continue;
            }
            let value = node_labels(node)
                .get(&c.topology_key)
                .cloned()
                .unwrap_or_default();
            let num = self
                .match_num
                .entry(c.topology_key.clone())
                .or_default()
                .entry(value.clone())
                .or_insert(0);
            *num += delta;
            let num = *num;
            if let Some(paths) = self.critical_paths.get_mut(&c.topology_key) {
                paths.update(&value, num);
            }
        }
    }
}

pub(crate) fn filter(state: &PreFilterState, pod: &Pod, node: &NodeInfo) -> FilterResult {
    let labels = node_labels(node.node());
    let pod_labels = pod_labels(pod);
    for c in &state.constraints {
        let Some(value) = labels.get(&c.topology_key) else {
            return Err(Status::new(
                Code::UnschedulableAndUnresolvable,
                ERR_REASON_NODE_LABEL_NOT_MATCH,
            ));
        };
        // minMatchNum: the global minimum, 0 while there are fewer domains than minDomains.
        let (Some(paths), Some(&domains)) = (
            state.critical_paths.get(&c.topology_key),
            state.domains.get(&c.topology_key),
        ) else {
            continue;
        };
        let min_match = if domains < c.min_domains {
            0
        } else {
            paths.0[0].1
        };
        let self_match = i64::from(c.selector.matches(pod_labels));
        let match_num = state
            .match_num
            .get(&c.topology_key)
            .and_then(|m| m.get(value))
            .copied()
            .unwrap_or(0);
        if match_num + self_match - min_match > c.max_skew {
            return Err(Status::new(
                Code::Unschedulable,
                ERR_REASON_CONSTRAINTS_NOT_MATCH,
            ));
        }
    }
    Ok(())
}

/// PreScore's state.
pub(crate) struct PreScoreState {
    constraints: Vec<Constraint>,
    ignored_nodes: HashSet<String>,
    /// Per constraint: matching pods per topology value of the candidate nodes (not used
    /// for hostname constraints, counted per node).
    counts: Vec<HashMap<String, i64>>,
    weights: Vec<f64>,
}

/// `topologyNormalizingWeight`: `ln(size + 2)`.
fn topology_normalizing_weight(size: usize) -> f64 {
    ((size + 2) as f64).ln()
}

/// PreScore: `None` (Skip) without `ScheduleAnyway` constraints.
pub(crate) fn pre_score(
    pod: &Pod,
    snapshot: &Snapshot,
    nodes: &[&NodeInfo],
) -> Option<PreScoreState> {
    // A constraint that does not parse was rejected at PreFilter already if hard; soft
    // ones that do not parse leave the plugin out.
    let constraints = constraints(pod, "ScheduleAnyway").ok()?;
    if constraints.is_empty() || snapshot.is_empty() {
        return None;
    }
    let mut ignored_nodes = HashSet::new();
    let mut counts: Vec<HashMap<String, i64>> = vec![HashMap::new(); constraints.len()];
    for info in nodes {
        let node = info.node();
        if !node_has_all_keys(node, &constraints) {
            ignored_nodes.insert(info.name().to_string());
            continue;
        }
        for (i, c) in constraints.iter().enumerate() {
            if c.topology_key == LABEL_HOSTNAME {
                continue;
            }
            let value = node_labels(node)
                .get(&c.topology_key)
                .cloned()
                .unwrap_or_default();
            counts[i].entry(value).or_insert(0);
        }
    }
    let weights = constraints
        .iter()
        .zip(&counts)
        .map(|(c, values)| {
            let size = if c.topology_key == LABEL_HOSTNAME {
                nodes.len() - ignored_nodes.len()
            } else {
                values.len()
            };
            topology_normalizing_weight(size)
        })
        .collect();

    let required = RequiredNodeAffinity::of(pod);
    let namespace = pod_namespace(pod);
    for info in snapshot.nodes() {
        let node = info.node();
        if !node_has_all_keys(node, &constraints) {
            continue;
        }
        for (i, c) in constraints.iter().enumerate() {
            if !c.includes_node(pod, node, &required) {
                continue;
            }
            let value = node_labels(node)
                .get(&c.topology_key)
                .map_or("", String::as_str);
            if let Some(count) = counts[i].get_mut(value) {
                *count += count_pods_match_selector(info, &c.selector, namespace);
            }
        }
    }
    Some(PreScoreState {
        constraints,
        ignored_nodes,
        counts,
        weights,
    })
}

/// The matching pods of the node's domains, weighted; normalized (inverted) later.
pub(crate) fn score(state: &PreScoreState, pod: &Pod, node: &NodeInfo) -> i64 {
    if state.ignored_nodes.contains(node.name()) {
        return 0;
    }
    let labels = node_labels(node.node());
    let mut score = 0.0;
    for (i, c) in state.constraints.iter().enumerate() {
        let Some(value) = labels.get(&c.topology_key) else {
            continue;
        };
        let count = if c.topology_key == LABEL_HOSTNAME {
            count_pods_match_selector(node, &c.selector, pod_namespace(pod))
        } else {
            state.counts[i].get(value).copied().unwrap_or(0)
        };
        // scoreForCount: maxSkew - 1 waters differences down.
        score += count as f64 * state.weights[i] + (c.max_skew - 1) as f64;
    }
    score.round() as i64
}

/// Fewer matching pods score higher: `100 * (max + min - score) / max`; ignored nodes 0.
pub(crate) fn normalize(state: &PreScoreState, nodes: &[&NodeInfo], scores: &mut [i64]) {
    let ignored = |i: usize| state.ignored_nodes.contains(nodes[i].name());
    let mut min = i64::MAX;
    let mut max = 0;
    for (i, &s) in scores.iter().enumerate() {
        if ignored(i) {
            continue;
        }
        min = min.min(s);
        max = max.max(s);
    }
    for (i, s) in scores.iter_mut().enumerate() {
        *s = if ignored(i) {
            0
        } else if max == 0 {
            MAX_NODE_SCORE
        } else {
            MAX_NODE_SCORE * (max + min - *s) / max
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::*;
    use k8s_openapi::api::core::v1::Node;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use serde_json::{json, Value};

    fn exists(key: &str) -> Value {
        json!({"matchExpressions": [{"key": key, "operator": "Exists"}]})
    }

    /// `SpreadConstraint(maxSkew, key, action, selector, minDomains, affinityPolicy,
    /// taintsPolicy)` of upstream's pod wrapper.
    fn constraint(max_skew: i32, key: &str, action: &str, selector: Value) -> Value {
        json!({"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": action,
               "labelSelector": selector})
    }

    fn spread_pod(labels_: &[(&str, &str)], constraints: Vec<Value>) -> Pod {
        let mut p = with_labels(pod("p", &[]), labels_);
        spec(&mut p).topology_spread_constraints = Some(from_json(json!(constraints)));
        p
    }

    fn existing(name: &str, node: &str, labels_: &[(&str, &str)]) -> Pod {
        on_node(with_labels(pod(name, &[]), labels_), node)
    }

    fn znode(name: &str, zone: &str) -> Node {
        node(name, &[], &[("zone", zone), ("node", name)])
    }

    fn four_nodes() -> Vec<Node> {
        vec![
            znode("node-a", "zone1"),
            znode("node-b", "zone1"),
            znode("node-x", "zone2"),
            znode("node-y", "zone2"),
        ]
    }

    const FOO: (&str, &str) = ("foo", "");

    fn run(p: &Pod, nodes: Vec<Node>, pods: Vec<Pod>) -> Vec<Option<Code>> {
        let s = snapshot(nodes, pods);
        let state = pre_filter(p, &s).expect("pre-filter").expect("not skipped");
        s.nodes()
            .iter()
            .map(|n| filter(&state, p, n).err().map(|e| e.code()))
            .collect()
    }

    const OK: Option<Code> = None;
    const NO: Option<Code> = Some(Code::Unschedulable);
    const NEVER: Option<Code> = Some(Code::UnschedulableAndUnresolvable);

    fn spread_2_1_0_3() -> Vec<Pod> {
        vec![
            existing("p-a1", "node-a", &[FOO]),
            existing("p-a2", "node-a", &[FOO]),
            existing("p-b1", "node-b", &[FOO]),
            existing("p-y1", "node-y", &[FOO]),
            existing("p-y2", "node-y", &[FOO]),
            existing("p-y3", "node-y", &[FOO]),
        ]
    }

    // TestSingleConstraint
    #[test]
    fn no_constraints_skip() {
        let s = snapshot(four_nodes(), vec![]);
        assert!(pre_filter(&pod("p", &[]), &s).unwrap().is_none());
        let p = spread_pod(
            &[FOO],
            vec![constraint(1, "zone", "ScheduleAnyway", exists("foo"))],
        );
        assert!(pre_filter(&p, &s).unwrap().is_none());
    }

    #[test]
    fn no_existing_pods() {
        let p = spread_pod(
            &[FOO],
            vec![constraint(1, "zone", "DoNotSchedule", exists("foo"))],
        );
        assert_eq!(run(&p, four_nodes(), vec![]), vec![OK, OK, OK, OK]);
        let p = spread_pod(
            &[FOO],
            vec![constraint(1, "zone", "DoNotSchedule", exists("bar"))],
        );
        assert_eq!(run(&p, four_nodes(), vec![]), vec![OK, OK, OK, OK]);
    }

    #[test]
    fn existing_pods_in_a_different_namespace_do_not_count() {
        let p = spread_pod(
            &[FOO],
            vec![constraint(1, "zone", "DoNotSchedule", exists("foo"))],
        );
        let mut a1 = existing("p-a1", "node-a", &[FOO]);
        a1.metadata.namespace = Some("ns1".to_string());
        let mut b1 = existing("p-b1", "node-b", &[FOO]);
        b1.metadata.namespace = Some("ns2".to_string());
        let pods = vec![
            a1,
            b1,
            existing("p-x1", "node-x", &[FOO]),
            existing("p-y1", "node-y", &[FOO]),
            existing("p-y2", "node-y", &[FOO]),
        ];
        assert_eq!(run(&p, four_nodes(), pods), vec![OK, OK, NO, NO]);
    }

    #[test]
    fn missing_zone_label_is_unresolvable() {
        let p = spread_pod(
            &[FOO],
            vec![constraint(1, "zone", "DoNotSchedule", exists("foo"))],
        );
        let nodes = vec![
            znode("node-a", "zone1"),
            node("node-b", &[], &[("zon", "zone1"), ("node", "node-b")]),
            znode("node-x", "zone2"),
            znode("node-y", "zone2"),
        ];
        let pods = vec![
            existing("p-a1", "node-a", &[FOO]),
            existing("p-b1", "node-b", &[FOO]),
            existing("p-x1", "node-x", &[FOO]),
            existing("p-y1", "node-y", &[FOO]),
        ];
        // zone1: 1 (node-b is not counted), zone2: 2.
        assert_eq!(run(&p, nodes, pods), vec![OK, NEVER, NO, NO]);
        let p = spread_pod(
            &[FOO],
            vec![constraint(1, "rack", "DoNotSchedule", exists("foo"))],
        );
        assert_eq!(run(&p, four_nodes(), vec![]), vec![NEVER; 4]);
    }

    #[test]
    fn spread_across_nodes() {
        let p = spread_pod(
            &[FOO],
            vec![constraint(1, "node", "DoNotSchedule", exists("foo"))],
        );
        assert_eq!(
            run(&p, four_nodes(), spread_2_1_0_3()),
            vec![NO, NO, OK, NO]
        );
        let p = spread_pod(
            &[FOO],
            vec![constraint(2, "node", "DoNotSchedule", exists("foo"))],
        );
        assert_eq!(
            run(&p, four_nodes(), spread_2_1_0_3()),
            vec![NO, OK, OK, NO]
        );
        // The pod does not match itself.
        let p = spread_pod(
            &[("bar", "")],
            vec![constraint(1, "node", "DoNotSchedule", exists("foo"))],
        );
        assert_eq!(
            run(&p, four_nodes(), spread_2_1_0_3()),
            vec![NO, OK, OK, NO]
        );
    }

    #[test]
    fn node_affinity_restricts_the_domains() {
        let mut p = spread_pod(
            &[FOO],
            vec![constraint(1, "node", "DoNotSchedule", exists("foo"))],
        );
        spec(&mut p).affinity = Some(from_json(json!({"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "node", "operator": "In", "values": ["node-a", "node-y"]}]}
        ]}}})));
        // Only node-a (2) and node-y (3) count: the minimum is 2.
        assert_eq!(
            run(&p, four_nodes(), spread_2_1_0_3()),
            vec![OK, OK, OK, NO]
        );
    }

    #[test]
    fn terminating_pods_are_excluded() {
        let p = spread_pod(
            &[FOO],
            vec![constraint(1, "node", "DoNotSchedule", exists("foo"))],
        );
        let mut terminating = existing("p-a", "node-a", &[FOO]);
        terminating.metadata.deletion_timestamp = Some(Time(Default::default()));
        let pods = vec![terminating, existing("p-b", "node-b", &[FOO])];
        let nodes = vec![znode("node-a", "zone1"), znode("node-b", "zone1")];
        assert_eq!(run(&p, nodes, pods), vec![OK, NO]);
    }

    #[test]
    fn min_domains() {
        let pods = || {
            vec![
                existing("p-a1", "node-a", &[FOO]),
                existing("p-b1", "node-b", &[FOO]),
                existing("p-x1", "node-x", &[FOO]),
            ]
        };
        let mut c = constraint(1, "zone", "DoNotSchedule", exists("foo"));
        // Two domains (2/1): the minimum is 1.
        assert_eq!(
            run(&spread_pod(&[FOO], vec![c.clone()]), four_nodes(), pods()),
            vec![NO, NO, OK, OK]
        );
        c["minDomains"] = json!(2);
        assert_eq!(
            run(&spread_pod(&[FOO], vec![c.clone()]), four_nodes(), pods()),
            vec![NO, NO, OK, OK]
        );
        // Fewer domains than minDomains: the minimum counts as 0.
        c["minDomains"] = json!(3);
        assert_eq!(
            run(&spread_pod(&[FOO], vec![c]), four_nodes(), pods()),
            vec![NO, NO, NO, NO]
        );
    }

    #[test]
    fn multiple_constraints_all_apply() {
        let p = spread_pod(
            &[FOO],
            vec![
                constraint(1, "zone", "DoNotSchedule", exists("foo")),
                constraint(1, "node", "DoNotSchedule", exists("foo")),
            ],
        );
        let pods = vec![
            existing("p-a1", "node-a", &[FOO]),
            existing("p-y1", "node-y", &[FOO]),
            existing("p-y2", "node-y", &[FOO]),
        ];
        // zone1: 1, zone2: 2; nodes 1/0/0/2: only node-b fits both.
        assert_eq!(run(&p, four_nodes(), pods), vec![NO, OK, NO, NO]);
    }

    #[test]
    fn node_inclusion_policies() {
        let nodes = || {
            vec![
                node("node-a", &[], &[("zone", "zone1"), ("foo", "")]),
                node("node-b", &[], &[("zone", "zone1"), ("foo", "")]),
                node("node-x", &[], &[("zone", "zone2")]),
                node("node-y", &[], &[("zone", "zone2"), ("foo", "")]),
            ]
        };
        let pods = || {
            vec![
                existing("p-a", "node-a", &[FOO]),
                existing("p-b", "node-b", &[FOO]),
                existing("p-x", "node-x", &[FOO]),
            ]
        };
        let with_selector = |policy: Option<&str>| {
            let mut c = constraint(1, "zone", "DoNotSchedule", exists("foo"));
            if let Some(policy) = policy {
                c["nodeAffinityPolicy"] = json!(policy);
            }
            let mut p = spread_pod(&[FOO], vec![c]);
            spec(&mut p).node_selector = Some(labels(&[("foo", "")]));
            p
        };
        // Honor (default): node-x does not count, zone2 has 0.
        assert_eq!(
            run(&with_selector(None), nodes(), pods()),
            vec![NO, NO, OK, OK]
        );
        assert_eq!(
            run(&with_selector(Some("Ignore")), nodes(), pods()),
            vec![NO, NO, OK, OK]
        );

        // Taints: honored, node-x (tainted) does not count.
        let tainted = || {
            let mut n = nodes();
            n[2] = with_taints(n[2].clone(), vec![taint("foo", "", "NoSchedule")]);
            n
        };
        let pods = || {
            vec![
                existing("p-a", "node-a", &[FOO]),
                existing("p-x1", "node-x", &[FOO]),
                existing("p-x2", "node-x", &[FOO]),
            ]
        };
        let mut c = constraint(1, "zone", "DoNotSchedule", exists("foo"));
        assert_eq!(
            run(&spread_pod(&[FOO], vec![c.clone()]), tainted(), pods()),
            vec![OK, OK, NO, NO]
        );
        c["nodeTaintsPolicy"] = json!("Honor");
        assert_eq!(
            run(&spread_pod(&[FOO], vec![c]), tainted(), pods()),
            vec![NO, NO, OK, OK]
        );
    }

    #[test]
    fn match_label_keys_narrow_the_selector() {
        let mut c = constraint(1, "node", "DoNotSchedule", exists("foo"));
        c["matchLabelKeys"] = json!(["rev"]);
        let p = spread_pod(&[FOO, ("rev", "2")], vec![c]);
        let pods = vec![
            existing("p-a1", "node-a", &[FOO, ("rev", "1")]),
            existing("p-a2", "node-a", &[FOO, ("rev", "1")]),
            existing("p-b1", "node-b", &[FOO, ("rev", "2")]),
        ];
        // Only rev=2 counts: 0/1/0/0.
        assert_eq!(run(&p, four_nodes(), pods), vec![OK, NO, OK, OK]);
    }

    #[test]
    fn removing_a_victim_updates_the_counts() {
        let p = spread_pod(
            &[FOO],
            vec![constraint(1, "node", "DoNotSchedule", exists("foo"))],
        );
        let nodes = vec![znode("node-a", "zone1"), znode("node-b", "zone1")];
        let pods = vec![
            existing("p-a1", "node-a", &[FOO]),
            existing("p-a2", "node-a", &[FOO]),
        ];
        let s = snapshot(nodes, pods.clone());
        let mut state = pre_filter(&p, &s).unwrap().unwrap();
        let a = &s.nodes()[0];
        assert!(filter(&state, &p, a).is_err());
        state.update_with_pod(&p, &pods[0], a.node(), -1);
        state.update_with_pod(&p, &pods[1], a.node(), -1);
        assert_eq!(filter(&state, &p, a), Ok(()));
    }

    fn hnode(name: &str) -> Node {
        node(name, &[], &[(LABEL_HOSTNAME, name)])
    }

    fn hzone(name: &str, zone: &str) -> Node {
        node(name, &[], &[(LABEL_HOSTNAME, name), ("zone", zone)])
    }

    /// Scores of the `candidates` (the first ones of `nodes`).
    fn scores(p: &Pod, nodes: Vec<Node>, candidates: usize, pods: Vec<Pod>) -> Option<Vec<i64>> {
        let s = snapshot(nodes, pods);
        let feasible: Vec<&NodeInfo> = s.nodes().iter().take(candidates).collect();
        let state = pre_score(p, &s, &feasible)?;
        let mut v: Vec<i64> = feasible.iter().map(|n| score(&state, p, n)).collect();
        normalize(&state, &feasible, &mut v);
        Some(v)
    }

    fn pods_on(spec: &[(&str, usize)], l: &[(&str, &str)]) -> Vec<Pod> {
        let mut out = Vec::new();
        for (node, n) in spec {
            for i in 0..*n {
                out.push(existing(&format!("{node}-{i}"), node, l));
            }
        }
        out
    }

    fn soft(max_skew: i32, key: &str, selector: Value) -> Value {
        constraint(max_skew, key, "ScheduleAnyway", selector)
    }

    // TestPodTopologySpreadScore
    #[test]
    fn score_one_constraint_on_node() {
        let p = spread_pod(&[FOO], vec![soft(1, LABEL_HOSTNAME, exists("foo"))]);
        let two = || vec![hnode("node-a"), hnode("node-b")];
        assert_eq!(scores(&p, two(), 2, vec![]), Some(vec![100, 100]));
        assert_eq!(
            scores(
                &p,
                two(),
                1,
                pods_on(&[("node-a", 2), ("node-b", 1)], &[FOO])
            ),
            Some(vec![100])
        );
        assert_eq!(
            scores(
                &p,
                two(),
                2,
                pods_on(&[("node-a", 1), ("node-b", 1)], &[FOO])
            ),
            Some(vec![100, 100])
        );
        let four = || {
            vec![
                hnode("node-a"),
                hnode("node-b"),
                hnode("node-c"),
                hnode("node-d"),
            ]
        };
        let spread = || pods_on(&[("node-a", 2), ("node-b", 1), ("node-d", 3)], &[FOO]);
        assert_eq!(scores(&p, four(), 4, spread()), Some(vec![20, 60, 100, 0]));
        let null = spread_pod(
            &[FOO],
            vec![json!({"maxSkew": 1, "topologyKey": LABEL_HOSTNAME,
            "whenUnsatisfiable": "ScheduleAnyway"})],
        );
        assert_eq!(
            scores(&null, four(), 4, spread()),
            Some(vec![100, 100, 100, 100])
        );
        let skew2 = spread_pod(&[FOO], vec![soft(2, LABEL_HOSTNAME, exists("foo"))]);
        assert_eq!(
            scores(&skew2, four(), 4, spread()),
            Some(vec![33, 66, 100, 16])
        );
        let skew3 = spread_pod(&[FOO], vec![soft(3, LABEL_HOSTNAME, exists("foo"))]);
        let spread = pods_on(
            &[("node-a", 4), ("node-b", 3), ("node-c", 2), ("node-d", 1)],
            &[FOO],
        );
        assert_eq!(
            scores(&skew3, four(), 4, spread),
            Some(vec![44, 66, 77, 100])
        );
    }

    #[test]
    fn score_three_of_four_candidates() {
        let p = spread_pod(&[FOO], vec![soft(1, LABEL_HOSTNAME, exists("foo"))]);
        let pods = || {
            pods_on(
                &[("node-a", 4), ("node-b", 2), ("node-x", 1), ("node-y", 3)],
                &[FOO],
            )
        };
        let nodes = vec![
            hnode("node-a"),
            hnode("node-b"),
            hnode("node-x"),
            hnode("node-y"),
        ];
        assert_eq!(scores(&p, nodes, 3, pods()), Some(vec![33, 83, 100]));
        // node-b lacks the topology key.
        let nodes = vec![
            hnode("node-a"),
            node("node-b", &[], &[("n", "node-b")]),
            hnode("node-x"),
            hnode("node-y"),
        ];
        assert_eq!(scores(&p, nodes, 3, pods()), Some(vec![16, 0, 100]));
        // On zones.
        let p = spread_pod(&[FOO], vec![soft(1, "zone", exists("foo"))]);
        let nodes = vec![
            hzone("node-a", "zone1"),
            hzone("node-b", "zone1"),
            hzone("node-x", "zone2"),
            hzone("node-y", "zone2"),
        ];
        assert_eq!(scores(&p, nodes, 3, pods()), Some(vec![75, 75, 100]));
    }

    #[test]
    fn score_two_constraints() {
        let p = spread_pod(
            &[FOO],
            vec![
                soft(1, "zone", exists("foo")),
                soft(1, LABEL_HOSTNAME, exists("foo")),
            ],
        );
        let nodes = vec![
            hzone("node-a", "zone1"),
            hzone("node-x", "zone2"),
            hzone("node-b", "zone1"),
            hzone("node-y", "zone2"),
        ];
        let pods = pods_on(
            &[("node-a", 2), ("node-b", 1), ("node-x", 2), ("node-y", 4)],
            &[FOO],
        );
        assert_eq!(scores(&p, nodes, 2, pods), Some(vec![100, 63]));

        let p = spread_pod(
            &[FOO, ("bar", "")],
            vec![
                soft(1, "zone", exists("foo")),
                soft(1, LABEL_HOSTNAME, exists("bar")),
            ],
        );
        let nodes = || {
            vec![
                hzone("node-a", "zone1"),
                hzone("node-b", "zone1"),
                hzone("node-x", "zone2"),
                hzone("node-y", "zone2"),
            ]
        };
        let pods = || {
            vec![
                existing("p-a1", "node-a", &[FOO]),
                existing("p-b1", "node-b", &[FOO, ("bar", "")]),
                existing("p-y1", "node-y", &[FOO]),
                existing("p-y2", "node-y", &[("bar", "")]),
            ]
        };
        assert_eq!(scores(&p, nodes(), 4, pods()), Some(vec![60, 20, 100, 60]));
        assert_eq!(scores(&p, nodes(), 3, pods()), Some(vec![50, 25, 100]));
        let pods = vec![
            existing("p-b1", "node-b", &[("bar", "")]),
            existing("p-x1", "node-x", &[FOO]),
            existing("p-y1", "node-y", &[FOO, ("bar", "")]),
        ];
        assert_eq!(scores(&p, nodes(), 4, pods), Some(vec![100, 60, 40, 0]));
    }

    #[test]
    fn score_ignores_other_namespaces() {
        let p = spread_pod(&[FOO], vec![soft(1, LABEL_HOSTNAME, exists("foo"))]);
        let mut pods = pods_on(&[("node-a", 2), ("node-b", 2)], &[FOO]);
        pods[0].metadata.namespace = Some("ns1".to_string());
        assert_eq!(
            scores(&p, vec![hnode("node-a"), hnode("node-b")], 2, pods),
            Some(vec![100, 33])
        );
    }

    #[test]
    fn critical_paths_track_the_two_smallest_domains() {
        let mut paths = CriticalPaths::new();
        paths.update("a", 3);
        paths.update("b", 1);
        paths.update("c", 2);
        assert_eq!((paths.0[0].0.as_str(), paths.0[0].1), ("b", 1));
        assert_eq!((paths.0[1].0.as_str(), paths.0[1].1), ("c", 2));
        paths.update("b", 4);
        assert_eq!((paths.0[0].0.as_str(), paths.0[0].1), ("c", 2));
    }
}
