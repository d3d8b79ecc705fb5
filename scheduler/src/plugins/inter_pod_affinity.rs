//! InterPodAffinity (`plugins/interpodaffinity`): Filter enforces the incoming pod's
//! required pod affinity and anti-affinity and the required anti-affinity of the pods
//! already running (symmetry); Score adds the weights of preferred terms, both ways,
//! and of existing pods' required affinity terms the incoming pod matches
//! (`hardPodAffinityWeight`), per topology domain.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Node, Pod, PodAffinityTerm, WeightedPodAffinityTerm};
use keelson_apimachinery::labels::Selector;

use crate::framework::{Code, FilterResult, NodeInfo, PodInfo, Snapshot, Status, MAX_NODE_SCORE};
use crate::plugins::{label_selector, node_labels, pod_labels, pod_namespace, EMPTY_LABELS};

pub(crate) const NAME: &str = "InterPodAffinity";
pub(crate) const WEIGHT: i64 = 2;

/// `ErrReasonExistingAntiAffinityRulesNotMatch`.
pub(crate) const ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";
/// `ErrReasonAffinityRulesNotMatch`.
pub(crate) const ERR_REASON_AFFINITY_RULES_NOT_MATCH: &str =
    "node(s) didn't match pod affinity rules";
/// `ErrReasonAntiAffinityRulesNotMatch`.
pub(crate) const ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH: &str =
    "node(s) didn't match pod anti-affinity rules";

/// A parsed `PodAffinityTerm` (`framework.AffinityTerm`).
#[derive(Clone, Debug)]
pub(crate) struct AffinityTerm {
    namespaces: Vec<String>,
    selector: Selector,
    topology_key: String,
    namespace_selector: Selector,
}

impl AffinityTerm {
    /// `newAffinityTerm`: no namespaces and no namespace selector mean the pod's own
    /// namespace.
    fn parse(pod: &Pod, term: &PodAffinityTerm) -> Result<AffinityTerm, String> {
        let selector = label_selector(term.label_selector.as_ref())?;
        let namespaces = match (&term.namespaces, &term.namespace_selector) {
            (None, None) => vec![pod_namespace(pod).to_string()],
            (Some(list), None) if list.is_empty() => vec![pod_namespace(pod).to_string()],
            (list, _) => list.clone().unwrap_or_default(),
        };
        let namespace_selector = label_selector(term.namespace_selector.as_ref())?;
        Ok(AffinityTerm {
            namespaces,
            selector,
            topology_key: term.topology_key.clone(),
            namespace_selector,
        })
    }

    /// `AffinityTerm.Matches`: the pod is in one of the namespaces (or in a namespace whose
    /// labels `ns_labels` match the namespace selector) and its labels match.
    pub(crate) fn matches(&self, pod: &Pod, ns_labels: Option<&BTreeMap<String, String>>) -> bool {
        self.namespace_matches(pod_namespace(pod), ns_labels)
            && self.selector.matches(pod_labels(pod))
    }

    fn namespace_matches(&self, ns: &str, ns_labels: Option<&BTreeMap<String, String>>) -> bool {
        self.namespaces.iter().any(|n| n == ns)
            || self
                .namespace_selector
                .matches(ns_labels.unwrap_or(&EMPTY_LABELS))
    }

    /// The pods on `node` this term (of the incoming pod, namespaces merged) matches.
    fn count_on(&self, node: &NodeInfo) -> i64 {
        node.count_matching(|ns| self.namespace_matches(ns, None), &self.selector, false)
    }

    /// `mergeAffinityTermNamespacesIfNotEmpty`: a namespace selector that is not
    /// "everything" is resolved to the namespaces it selects now.
    fn merge_namespaces(&mut self, snapshot: &Snapshot) {
        if self.namespace_selector.is_empty() {
            return;
        }
        for (name, labels) in snapshot.namespaces() {
            if self.namespace_selector.matches(labels) && !self.namespaces.contains(name) {
                self.namespaces.push(name.clone());
            }
        }
        self.namespace_selector = Selector::nothing();
    }
}

#[derive(Clone, Debug)]
pub(crate) struct WeightedAffinityTerm {
    term: AffinityTerm,
    weight: i64,
}

/// A pod's parsed (anti-)affinity terms (`PodInfo`'s term fields). A category that does
/// not parse is empty and its error kept.
#[derive(Clone, Debug, Default)]
pub(crate) struct PodAffinityTerms {
    pub(crate) required_affinity: Vec<AffinityTerm>,
    pub(crate) required_anti_affinity: Vec<AffinityTerm>,
    pub(crate) preferred_affinity: Vec<WeightedAffinityTerm>,
    pub(crate) preferred_anti_affinity: Vec<WeightedAffinityTerm>,
    errors: Vec<String>,
}

/// `podWithAffinity`: a pod with `podAffinity` or `podAntiAffinity`.
pub(crate) fn has_affinity(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .is_some_and(|a| a.pod_affinity.is_some() || a.pod_anti_affinity.is_some())
}

fn parse_terms(
    pod: &Pod,
    terms: Option<&Vec<PodAffinityTerm>>,
) -> Result<Vec<AffinityTerm>, String> {
    terms
        .into_iter()
        .flatten()
        .map(|t| AffinityTerm::parse(pod, t))
        .collect()
}

fn parse_weighted(
    pod: &Pod,
    terms: Option<&Vec<WeightedPodAffinityTerm>>,
) -> Result<Vec<WeightedAffinityTerm>, String> {
    terms
        .into_iter()
        .flatten()
        .map(|t| {
            Ok(WeightedAffinityTerm {
                term: AffinityTerm::parse(pod, &t.pod_affinity_term)?,
                weight: i64::from(t.weight),
            })
        })
        .collect()
}

fn keep<T>(category: &str, errors: &mut Vec<String>, parsed: Result<Vec<T>, String>) -> Vec<T> {
    parsed.unwrap_or_else(|e| {
        errors.push(format!("{category}: {e}"));
        Vec::new()
    })
}

impl PodAffinityTerms {
    /// `NewPodInfo`'s term parsing.
    pub(crate) fn parse(pod: &Pod) -> PodAffinityTerms {
        let affinity = pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
        let pa = affinity.and_then(|a| a.pod_affinity.as_ref());
        let paa = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        let mut errors = Vec::new();
        let required_affinity = keep(
            "requiredAffinityTerms",
            &mut errors,
            parse_terms(
                pod,
                pa.and_then(|a| {
                    a.required_during_scheduling_ignored_during_execution
                        .as_ref()
                }),
            ),
        );
        let required_anti_affinity = keep(
            "requiredAntiAffinityTerms",
            &mut errors,
            parse_terms(
                pod,
                paa.and_then(|a| {
                    a.required_during_scheduling_ignored_during_execution
                        .as_ref()
                }),
            ),
        );
        let preferred_affinity = keep(
            "preferredAffinityTerms",
            &mut errors,
            parse_weighted(
                pod,
                pa.and_then(|a| {
                    a.preferred_during_scheduling_ignored_during_execution
                        .as_ref()
                }),
            ),
        );
        let preferred_anti_affinity = keep(
            "preferredAntiAffinityTerms",
            &mut errors,
            parse_weighted(
                pod,
                paa.and_then(|a| {
                    a.preferred_during_scheduling_ignored_during_execution
                        .as_ref()
                }),
            ),
        );
        PodAffinityTerms {
            required_affinity,
            required_anti_affinity,
            preferred_affinity,
            preferred_anti_affinity,
            errors,
        }
    }
}

/// Counts per topology key, then value.
#[derive(Clone, Debug, Default)]
struct TopologyCounts(HashMap<String, HashMap<String, i64>>);

impl TopologyCounts {
    fn update(&mut self, node: &Node, key: &str, value: i64) {
        let Some(tv) = node_labels(node).get(key) else {
            return;
        };
        if !self.0.contains_key(key) {
            self.0.insert(key.to_string(), HashMap::new());
        }
        let Some(values) = self.0.get_mut(key) else {
            return;
        };
        let count = match values.get_mut(tv.as_str()) {
            Some(count) => {
                *count += value;
                *count
            }
            None => {
                values.insert(tv.clone(), value);
                value
            }
        };
        if count == 0 {
            values.remove(tv.as_str());
            if values.is_empty() {
                self.0.remove(key);
            }
        }
    }

    fn get(&self, key: &str, value: &str) -> i64 {
        self.0
            .get(key)
            .and_then(|m| m.get(value))
            .copied()
            .unwrap_or(0)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `updateWithAntiAffinityTerms`: every term matching `pod` counts.
    fn update_with_anti_affinity_terms(
        &mut self,
        terms: &[AffinityTerm],
        pod: &Pod,
        ns_labels: Option<&BTreeMap<String, String>>,
        node: &Node,
        value: i64,
    ) {
        for t in terms {
            if t.matches(pod, ns_labels) {
                self.update(node, &t.topology_key, value);
            }
        }
    }

    /// `updateWithAffinityTerms`: counts only when `pod` matches all the terms.
    fn update_with_affinity_terms(
        &mut self,
        terms: &[AffinityTerm],
        pod: &Pod,
        node: &Node,
        value: i64,
    ) {
        if pod_matches_all_affinity_terms(terms, pod) {
            for t in terms {
                self.update(node, &t.topology_key, value);
            }
        }
    }
}

/// The pods on `node` matching every term.
fn count_matching_all(terms: &[AffinityTerm], node: &NodeInfo) -> i64 {
    match terms {
        [] => 0,
        [term] => term.count_on(node),
        _ => {
            if terms.iter().any(|t| t.count_on(node) == 0) {
                return 0;
            }
            node.pods()
                .iter()
                .filter(|p| pod_matches_all_affinity_terms(terms, p.pod()))
                .count() as i64
        }
    }
}

fn pod_matches_all_affinity_terms(terms: &[AffinityTerm], pod: &Pod) -> bool {
    !terms.is_empty() && terms.iter().all(|t| t.matches(pod, None))
}

/// PreFilter's state.
#[derive(Clone, Debug)]
pub(crate) struct PreFilterState {
    terms: PodAffinityTerms,
    namespace_labels: Option<BTreeMap<String, String>>,
    existing_anti_affinity_counts: TopologyCounts,
    affinity_counts: TopologyCounts,
    anti_affinity_counts: TopologyCounts,
}

/// PreFilter: `None` (Skip) when neither the pod nor any running pod has required
/// (anti-)affinity that concerns it.
pub(crate) fn pre_filter(pod: &Pod, snapshot: &Snapshot) -> Result<Option<PreFilterState>, Status> {
    let mut terms = if has_affinity(pod) {
        PodAffinityTerms::parse(pod)
    } else {
        PodAffinityTerms::default()
    };
    if !terms.errors.is_empty() {
        return Err(Status::new(
            Code::UnschedulableAndUnresolvable,
            format!("parsing pod: {}", terms.errors.join(", ")),
        ));
    }
    for t in terms
        .required_affinity
        .iter_mut()
        .chain(terms.required_anti_affinity.iter_mut())
    {
        t.merge_namespaces(snapshot);
    }
    let namespace_labels = snapshot.namespace_labels(pod_namespace(pod)).cloned();

    let mut existing = TopologyCounts::default();
    for info in snapshot
        .nodes()
        .iter()
        .filter(|n| n.has_pods_with_required_anti_affinity())
    {
        for p in info.pods() {
            if let Some(a) = p.affinity() {
                existing.update_with_anti_affinity_terms(
                    &a.required_anti_affinity,
                    pod,
                    namespace_labels.as_ref(),
                    info.node(),
                    1,
                );
            }
        }
    }

    let mut affinity_counts = TopologyCounts::default();
    let mut anti_affinity_counts = TopologyCounts::default();
    if !terms.required_affinity.is_empty() || !terms.required_anti_affinity.is_empty() {
        for info in snapshot.nodes().iter().filter(|n| n.pod_count() > 0) {
            let node = info.node();
            let labels = node_labels(node);
            // Counts only go to domains of topology keys the node has.
            if terms
                .required_affinity
                .iter()
                .any(|t| labels.contains_key(&t.topology_key))
            {
                let matching = count_matching_all(&terms.required_affinity, info);
                if matching != 0 {
                    for t in &terms.required_affinity {
                        affinity_counts.update(node, &t.topology_key, matching);
                    }
                }
            }
            for t in &terms.required_anti_affinity {
                if !labels.contains_key(&t.topology_key) {
                    continue;
                }
                let matching = t.count_on(info);
                if matching != 0 {
                    anti_affinity_counts.update(node, &t.topology_key, matching);
                }
            }
        }
    }

    if existing.is_empty()
        && terms.required_affinity.is_empty()
        && terms.required_anti_affinity.is_empty()
    {
        return Ok(None);
    }
    Ok(Some(PreFilterState {
        terms,
        namespace_labels,
        existing_anti_affinity_counts: existing,
        affinity_counts,
        anti_affinity_counts,
    }))
}

impl PreFilterState {
    /// `updateWithPod`: `other` added (`delta` 1) to or removed (-1) from `node`.
    pub(crate) fn update_with_pod(&mut self, pod: &Pod, other: &PodInfo, node: &Node, delta: i64) {
        if let Some(a) = other.affinity() {
            self.existing_anti_affinity_counts
                .update_with_anti_affinity_terms(
                    &a.required_anti_affinity,
                    pod,
                    self.namespace_labels.as_ref(),
                    node,
                    delta,
                );
        }
        self.affinity_counts.update_with_affinity_terms(
            &self.terms.required_affinity,
            other.pod(),
            node,
            delta,
        );
        self.anti_affinity_counts.update_with_anti_affinity_terms(
            &self.terms.required_anti_affinity,
            other.pod(),
            None,
            node,
            delta,
        );
    }
}

fn satisfy_existing_pods_anti_affinity(state: &PreFilterState, node: &Node) -> bool {
    state.existing_anti_affinity_counts.is_empty()
        || node_labels(node)
            .iter()
            .all(|(k, v)| state.existing_anti_affinity_counts.get(k, v) <= 0)
}

fn satisfy_pod_anti_affinity(state: &PreFilterState, node: &Node) -> bool {
    if state.anti_affinity_counts.is_empty() {
        return true;
    }
    let labels = node_labels(node);
    state.terms.required_anti_affinity.iter().all(|t| {
        labels
            .get(&t.topology_key)
            .is_none_or(|v| state.anti_affinity_counts.get(&t.topology_key, v) <= 0)
    })
}

fn satisfy_pod_affinity(state: &PreFilterState, pod: &Pod, node: &Node) -> bool {
    let labels = node_labels(node);
    let mut pods_exist = true;
    for t in &state.terms.required_affinity {
        match labels.get(&t.topology_key) {
            // All topology labels must exist on the node.
            None => return false,
            Some(v) => {
                if state.affinity_counts.get(&t.topology_key, v) <= 0 {
                    pods_exist = false;
                }
            }
        }
    }
    if pods_exist {
        return true;
    }
    // The first pod of a group with affinity to itself: allowed when no pod matches yet
    // and the pod matches its own terms.
    state.affinity_counts.is_empty()
        && pod_matches_all_affinity_terms(&state.terms.required_affinity, pod)
}

pub(crate) fn filter(state: &PreFilterState, pod: &Pod, node: &NodeInfo) -> FilterResult {
    let node = node.node();
    if !satisfy_pod_affinity(state, pod, node) {
        return Err(Status::new(
            Code::UnschedulableAndUnresolvable,
            ERR_REASON_AFFINITY_RULES_NOT_MATCH,
        ));
    }
    if !satisfy_pod_anti_affinity(state, node) {
        return Err(Status::new(
            Code::Unschedulable,
            ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH,
        ));
    }
    if !satisfy_existing_pods_anti_affinity(state, node) {
        return Err(Status::new(
            Code::Unschedulable,
            ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH,
        ));
    }
    Ok(())
}

/// PreScore's state: a score per topology key and value.
pub(crate) struct PreScoreState {
    topology_score: TopologyCounts,
}

fn process_term(
    scores: &mut TopologyCounts,
    term: &AffinityTerm,
    weight: i64,
    pod: &Pod,
    ns_labels: Option<&BTreeMap<String, String>>,
    node: &Node,
    multiplier: i64,
) {
    if term.matches(pod, ns_labels) {
        scores.update(node, &term.topology_key, weight * multiplier);
    }
}

/// PreScore: `None` (Skip) when no preferred or required term, of the pod or of a running
/// pod, applies.
pub(crate) fn pre_score(
    pod: &Pod,
    snapshot: &Snapshot,
    hard_pod_affinity_weight: i64,
) -> Option<PreScoreState> {
    let mut terms = if has_affinity(pod) {
        PodAffinityTerms::parse(pod)
    } else {
        PodAffinityTerms::default()
    };
    for t in terms
        .preferred_affinity
        .iter_mut()
        .chain(terms.preferred_anti_affinity.iter_mut())
    {
        t.term.merge_namespaces(snapshot);
    }
    let ns_labels = snapshot.namespace_labels(pod_namespace(pod));

    let mut scores = TopologyCounts::default();
    for info in snapshot.nodes() {
        let node = info.node();
        if node_labels(node).is_empty() || info.pod_count() == 0 {
            continue;
        }
        // The incoming pod's preferred terms against the pods here.
        let labels = node_labels(node);
        for t in &terms.preferred_affinity {
            if !labels.contains_key(&t.term.topology_key) {
                continue;
            }
            let n = t.term.count_on(info);
            if n != 0 {
                scores.update(node, &t.term.topology_key, n * t.weight);
            }
        }
        for t in &terms.preferred_anti_affinity {
            if !labels.contains_key(&t.term.topology_key) {
                continue;
            }
            let n = t.term.count_on(info);
            if n != 0 {
                scores.update(node, &t.term.topology_key, -n * t.weight);
            }
        }
        if !info.has_pods_with_affinity() {
            continue;
        }
        // The terms of the pods here against the incoming pod.
        for e in info.pods().iter().filter_map(PodInfo::affinity) {
            if hard_pod_affinity_weight > 0 {
                for t in &e.required_affinity {
                    process_term(
                        &mut scores,
                        t,
                        hard_pod_affinity_weight,
                        pod,
                        ns_labels,
                        node,
                        1,
                    );
                }
            }
            for t in &e.preferred_affinity {
                process_term(&mut scores, &t.term, t.weight, pod, ns_labels, node, 1);
            }
            for t in &e.preferred_anti_affinity {
                process_term(&mut scores, &t.term, t.weight, pod, ns_labels, node, -1);
            }
        }
    }
    if scores.is_empty() {
        return None;
    }
    Some(PreScoreState {
        topology_score: scores,
    })
}

pub(crate) fn score(state: &PreScoreState, node: &NodeInfo) -> i64 {
    let labels = node_labels(node.node());
    state
        .topology_score
        .0
        .iter()
        .filter_map(|(key, values)| labels.get(key).and_then(|v| values.get(v)))
        .sum()
}

/// Min-max scaling to `0..=100`; all equal scores become 0.
pub(crate) fn normalize(scores: &mut [i64]) {
    let (Some(&min), Some(&max)) = (scores.iter().min(), scores.iter().max()) else {
        return;
    };
    let diff = max - min;
    for s in scores.iter_mut() {
        *s = if diff > 0 {
            (MAX_NODE_SCORE as f64 * ((*s - min) as f64 / diff as f64)) as i64
        } else {
            0
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::*;
    use k8s_openapi::api::core::v1::Node;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use serde_json::{json, Value};

    /// A pod in `ns` with labels, an optional node and `spec.affinity` from JSON.
    fn apod(name: &str, ns: &str, labels_: &[(&str, &str)], node: &str, affinity: Value) -> Pod {
        let mut p = pod(name, &[]);
        p.metadata = ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(ns.to_string()),
            labels: Some(labels(labels_)),
            ..ObjectMeta::default()
        };
        if !node.is_empty() {
            spec(&mut p).node_name = Some(node.to_string());
        }
        if !affinity.is_null() {
            spec(&mut p).affinity = Some(from_json(affinity));
        }
        p
    }

    fn term(key: &str, op: &str, values: &[&str], topology: &str) -> Value {
        let mut expr = json!({"key": key, "operator": op});
        if !values.is_empty() {
            expr["values"] = json!(values);
        }
        json!({"labelSelector": {"matchExpressions": [expr]}, "topologyKey": topology})
    }

    fn required(affinity: Vec<Value>, anti: Vec<Value>) -> Value {
        let mut a = json!({});
        if !affinity.is_empty() {
            a["podAffinity"] = json!({"requiredDuringSchedulingIgnoredDuringExecution": affinity});
        }
        if !anti.is_empty() {
            a["podAntiAffinity"] = json!({"requiredDuringSchedulingIgnoredDuringExecution": anti});
        }
        a
    }

    fn lnode(name: &str, l: &[(&str, &str)]) -> Node {
        node(name, &[], l)
    }

    fn with_namespaces(mut s: Snapshot) -> Snapshot {
        s.set_namespace_labels("subteam1.team1", labels(&[("team", "team1")]));
        s.set_namespace_labels("subteam2.team1", labels(&[("team", "team1")]));
        s.set_namespace_labels("subteam1.team2", labels(&[("team", "team2")]));
        s.set_namespace_labels("subteam2.team2", labels(&[("team", "team2")]));
        s
    }

    /// PreFilter then Filter on every node; `Ok(None)` when PreFilter skips.
    fn run(p: &Pod, nodes: Vec<Node>, pods: Vec<Pod>) -> Result<Option<Vec<FilterResult>>, Status> {
        let s = with_namespaces(snapshot(nodes, pods));
        let Some(state) = pre_filter(p, &s)? else {
            return Ok(None);
        };
        Ok(Some(
            s.nodes().iter().map(|n| filter(&state, p, n)).collect(),
        ))
    }

    fn single(p: &Pod, pods: Vec<Pod>) -> Result<Option<FilterResult>, Status> {
        let node1 = lnode("node1", &[("region", "r1"), ("zone", "z11")]);
        Ok(run(p, vec![node1], pods)?.map(|mut v| v.remove(0)))
    }

    fn affinity_fail() -> FilterResult {
        Err(Status::new(
            Code::UnschedulableAndUnresolvable,
            ERR_REASON_AFFINITY_RULES_NOT_MATCH,
        ))
    }

    fn anti_fail() -> FilterResult {
        Err(Status::new(
            Code::Unschedulable,
            ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH,
        ))
    }

    fn existing_fail() -> FilterResult {
        Err(Status::new(
            Code::Unschedulable,
            ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH,
        ))
    }

    const SCAN: (&str, &str) = ("service", "securityscan");
    const S1: (&str, &str) = ("security", "S1");

    fn scan_pod() -> Pod {
        apod("existing", "", &[SCAN], "node1", Value::Null)
    }

    // TestRequiredAffinitySingleNode
    #[test]
    fn no_required_affinity_skips() {
        assert_eq!(
            single(&apod("p", "", &[], "", Value::Null), vec![]),
            Ok(None)
        );
    }

    #[test]
    fn affinity_in_and_not_in_match_the_existing_pod() {
        let p = apod(
            "p",
            "",
            &[S1],
            "",
            required(
                vec![term("service", "In", &["securityscan", "value2"], "region")],
                vec![],
            ),
        );
        assert_eq!(single(&p, vec![scan_pod()]), Ok(Some(Ok(()))));
        let p = apod(
            "p",
            "",
            &[S1],
            "",
            required(
                vec![term(
                    "service",
                    "NotIn",
                    &["securityscan3", "value3"],
                    "region",
                )],
                vec![],
            ),
        );
        assert_eq!(single(&p, vec![scan_pod()]), Ok(Some(Ok(()))));
    }

    #[test]
    fn affinity_in_another_namespace_does_not_match() {
        let mut t = term("service", "In", &["securityscan", "value2"], "");
        t["namespaces"] = json!(["DiffNameSpace"]);
        let p = apod("p", "", &[S1], "", required(vec![t], vec![]));
        let existing = apod("e", "ns", &[SCAN], "node1", Value::Null);
        assert_eq!(single(&p, vec![existing]), Ok(Some(affinity_fail())));
    }

    #[test]
    fn affinity_with_unmatching_selector() {
        let p = apod(
            "p",
            "",
            &[SCAN],
            "",
            required(
                vec![term("service", "In", &["antivirusscan", "value2"], "")],
                vec![],
            ),
        );
        assert_eq!(single(&p, vec![scan_pod()]), Ok(Some(affinity_fail())));
    }

    #[test]
    fn affinity_terms_and_requirements_are_anded() {
        let t1 = json!({"labelSelector": {"matchExpressions": [
            {"key": "service", "operator": "Exists"}, {"key": "wrongkey", "operator": "DoesNotExist"}]},
            "topologyKey": "region"});
        let t2 = json!({"labelSelector": {"matchExpressions": [
            {"key": "service", "operator": "In", "values": ["securityscan"]},
            {"key": "service", "operator": "NotIn", "values": ["WrongValue"]}]},
            "topologyKey": "region"});
        let p = apod("p", "", &[S1], "", required(vec![t1.clone(), t2], vec![]));
        assert_eq!(single(&p, vec![scan_pod()]), Ok(Some(Ok(()))));
        let t2 = json!({"labelSelector": {"matchExpressions": [
            {"key": "service", "operator": "In", "values": ["securityscan2"]},
            {"key": "service", "operator": "NotIn", "values": ["WrongValue"]}]},
            "topologyKey": "region"});
        let p = apod("p", "", &[S1], "", required(vec![t1, t2], vec![]));
        assert_eq!(single(&p, vec![scan_pod()]), Ok(Some(affinity_fail())));
    }

    #[test]
    fn affinity_and_anti_affinity() {
        let affinity = || term("service", "In", &["securityscan", "value2"], "region");
        let p = apod(
            "p",
            "",
            &[S1],
            "",
            required(
                vec![affinity()],
                vec![term("service", "In", &["antivirusscan", "value2"], "node")],
            ),
        );
        assert_eq!(single(&p, vec![scan_pod()]), Ok(Some(Ok(()))));
        // ... and the existing pod's own anti-affinity does not match the incoming pod.
        let existing = apod(
            "e",
            "",
            &[SCAN],
            "node1",
            required(
                vec![],
                vec![term("service", "In", &["antivirusscan", "value2"], "node")],
            ),
        );
        assert_eq!(single(&p, vec![existing]), Ok(Some(Ok(()))));
        // Anti-affinity in the zone of the existing pod.
        let p = apod(
            "p",
            "",
            &[S1],
            "",
            required(
                vec![affinity()],
                vec![term("service", "In", &["securityscan", "value2"], "zone")],
            ),
        );
        assert_eq!(single(&p, vec![scan_pod()]), Ok(Some(anti_fail())));
    }

    #[test]
    fn existing_pods_anti_affinity_is_respected() {
        let p = apod(
            "p",
            "",
            &[SCAN],
            "",
            required(
                vec![term("service", "In", &["securityscan", "value2"], "region")],
                vec![term("service", "In", &["antivirusscan", "value2"], "node")],
            ),
        );
        let existing = apod(
            "e",
            "",
            &[SCAN],
            "node1",
            required(
                vec![],
                vec![term("service", "In", &["securityscan", "value2"], "zone")],
            ),
        );
        assert_eq!(
            single(&p, vec![existing.clone()]),
            Ok(Some(existing_fail()))
        );
        // Even when the incoming pod has no affinity at all.
        let plain = apod("p", "", &[SCAN], "", Value::Null);
        assert_eq!(single(&plain, vec![existing]), Ok(Some(existing_fail())));
        let not_in = apod(
            "e",
            "",
            &[SCAN],
            "node1",
            required(
                vec![],
                vec![term(
                    "service",
                    "NotIn",
                    &["securityscan", "value2"],
                    "zone",
                )],
            ),
        );
        assert_eq!(single(&plain, vec![not_in]), Ok(None));
    }

    #[test]
    fn pod_matching_its_own_label_but_not_its_affinity() {
        let p = apod(
            "p",
            "",
            &[SCAN],
            "",
            required(
                vec![term(
                    "service",
                    "NotIn",
                    &["securityscan", "value2"],
                    "region",
                )],
                vec![],
            ),
        );
        let elsewhere = apod("e", "", &[SCAN], "node2", Value::Null);
        assert_eq!(single(&p, vec![elsewhere]), Ok(Some(affinity_fail())));
    }

    #[test]
    fn anti_affinity_symmetry() {
        // a1
        let p = apod(
            "p",
            "",
            &[SCAN],
            "",
            required(
                vec![],
                vec![
                    term("service", "Exists", &[], "zone"),
                    term("security", "Exists", &[], "zone"),
                ],
            ),
        );
        let e = apod(
            "e",
            "",
            &[S1],
            "node1",
            required(vec![], vec![term("security", "Exists", &[], "zone")]),
        );
        assert_eq!(single(&p, vec![e]), Ok(Some(anti_fail())));
        // a2
        let p = apod(
            "p",
            "",
            &[S1],
            "",
            required(vec![], vec![term("security", "Exists", &[], "zone")]),
        );
        let e = apod(
            "e",
            "",
            &[SCAN],
            "node1",
            required(
                vec![],
                vec![
                    term("service", "Exists", &[], "zone"),
                    term("security", "Exists", &[], "zone"),
                ],
            ),
        );
        assert_eq!(single(&p, vec![e]), Ok(Some(existing_fail())));
    }

    #[test]
    fn invalid_label_value_fails_pre_filter() {
        let p = apod(
            "p",
            "",
            &[SCAN],
            "",
            required(
                vec![
                    term("service", "In", &["{{.bad-value.}}"], "region"),
                    term("service", "In", &["antivirusscan", "value2"], "node"),
                ],
                vec![],
            ),
        );
        let err = single(&p, vec![]).unwrap_err();
        assert_eq!(err.code(), Code::UnschedulableAndUnresolvable);
        assert_eq!(
            err.message(),
            "parsing pod: requiredAffinityTerms: values[0][service]: Invalid value: \
             \"{{.bad-value.}}\": a valid label must be an empty string or consist of \
             alphanumeric characters, '-', '_' or '.', and must start and end with an \
             alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used \
             for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        );
    }

    fn ns_term(ns_selector: Value, topology: &str) -> Value {
        let mut t = term("service", "In", &["securityscan", "value2"], topology);
        t["namespaceSelector"] = ns_selector;
        t
    }

    fn team1() -> Value {
        json!({"matchExpressions": [{"key": "team", "operator": "In", "values": ["team1"]}]})
    }

    #[test]
    fn namespace_selectors() {
        let p = apod(
            "p",
            "",
            &[S1],
            "",
            required(vec![ns_term(team1(), "region")], vec![]),
        );
        let e = |ns: &str| apod("e", ns, &[SCAN], "node1", Value::Null);
        assert_eq!(single(&p, vec![e("subteam1.team1")]), Ok(Some(Ok(()))));
        assert_eq!(
            single(&p, vec![e("subteam1.team2")]),
            Ok(Some(affinity_fail()))
        );

        let anti = apod(
            "p",
            "subteam1.team1",
            &[S1],
            "",
            required(vec![], vec![ns_term(team1(), "zone")]),
        );
        assert_eq!(
            single(&anti, vec![e("subteam2.team1")]),
            Ok(Some(anti_fail()))
        );
        assert_eq!(single(&anti, vec![e("subteam1.team2")]), Ok(Some(Ok(()))));
        let all = apod(
            "p",
            "subteam1.team1",
            &[S1],
            "",
            required(vec![], vec![ns_term(json!({}), "zone")]),
        );
        assert_eq!(
            single(&all, vec![e("subteam2.team1")]),
            Ok(Some(anti_fail()))
        );
    }

    // TestRequiredAffinityMultipleNodes
    fn china() -> Node {
        lnode("node1", &[("region", "China")])
    }
    fn china_az1() -> Node {
        lnode("node2", &[("region", "China"), ("az", "az1")])
    }
    fn india() -> Node {
        lnode("node3", &[("region", "India")])
    }

    #[test]
    fn affinity_spreads_to_the_whole_topology_domain() {
        let p = apod(
            "p",
            "",
            &[],
            "",
            required(vec![term("foo", "In", &["bar"], "region")], vec![]),
        );
        let existing = apod("p1", "", &[("foo", "bar")], "node1", Value::Null);
        assert_eq!(
            run(&p, vec![china(), china_az1(), india()], vec![existing]),
            Ok(Some(vec![Ok(()), Ok(()), affinity_fail()]))
        );
    }

    #[test]
    fn first_pod_of_a_collection() {
        let p = apod(
            "p",
            "",
            &[("foo", "bar"), SCAN],
            "",
            required(
                vec![
                    term("foo", "In", &["bar"], "zone"),
                    term("service", "In", &["securityscan"], "zone"),
                ],
                vec![],
            ),
        );
        let existing = apod("p1", "", &[("foo", "bar")], "nodeA", Value::Null);
        let nodes = vec![
            lnode("nodeA", &[("zone", "az1"), ("hostname", "h1")]),
            lnode("nodeB", &[("zone", "az2"), ("hostname", "h2")]),
        ];
        assert_eq!(
            run(&p, nodes, vec![existing.clone()]),
            Ok(Some(vec![Ok(()), Ok(())]))
        );
        // Only on nodes carrying the topology key.
        let nodes = vec![
            lnode("nodeA", &[("zoneLabel", "az1"), ("hostname", "h1")]),
            lnode("nodeB", &[("zoneLabel", "az2"), ("hostname", "h2")]),
        ];
        assert_eq!(
            run(&p, nodes, vec![existing]),
            Ok(Some(vec![affinity_fail(), affinity_fail()]))
        );
    }

    #[test]
    fn anti_affinity_across_nodes_and_namespaces() {
        let p = apod(
            "p",
            "NS1",
            &[("foo", "123")],
            "",
            required(vec![], vec![term("foo", "In", &["bar"], "region")]),
        );
        let pods = vec![
            apod("a", "NS1", &[("foo", "bar")], "node1", Value::Null),
            apod(
                "c",
                "NS2",
                &[],
                "node3",
                required(vec![], vec![term("foo", "In", &["123"], "region")]),
            ),
        ];
        assert_eq!(
            run(&p, vec![china(), china_az1(), india()], pods),
            Ok(Some(vec![anti_fail(), anti_fail(), Ok(())]))
        );
    }

    #[test]
    fn existing_anti_affinity_with_missing_topology_key() {
        let p = apod("p", "", &[("foo", "")], "", Value::Null);
        let e = apod(
            "e",
            "",
            &[],
            "nodeA",
            required(
                vec![],
                vec![term("foo", "Exists", &[], "invalid-node-label")],
            ),
        );
        let nodes = vec![
            lnode(
                "nodeA",
                &[("region", "r1"), ("zone", "z1"), ("hostname", "nodeA")],
            ),
            lnode(
                "nodeB",
                &[("region", "r1"), ("zone", "z1"), ("hostname", "nodeB")],
            ),
        ];
        assert_eq!(run(&p, nodes, vec![e]), Ok(None));
    }

    #[test]
    fn removing_a_victim_updates_the_counts() {
        let p = apod("p", "", &[SCAN], "", Value::Null);
        let e = apod(
            "e",
            "",
            &[SCAN],
            "node1",
            required(
                vec![],
                vec![term("service", "In", &["securityscan"], "zone")],
            ),
        );
        let s = snapshot(vec![lnode("node1", &[("zone", "z1")])], vec![e.clone()]);
        let mut state = pre_filter(&p, &s).unwrap().unwrap();
        let node = &s.nodes()[0];
        assert_eq!(filter(&state, &p, node), existing_fail());
        let info = PodInfo::new(std::sync::Arc::new(e));
        state.update_with_pod(&p, &info, node.node(), -1);
        assert_eq!(filter(&state, &p, node), Ok(()));
        state.update_with_pod(&p, &info, node.node(), 1);
        assert_eq!(filter(&state, &p, node), existing_fail());
    }

    // TestPreferredAffinity
    fn preferred(weight: i64, t: Value) -> Value {
        json!([{"weight": weight, "podAffinityTerm": t}])
    }

    fn stay_with(security: &str, weight: i64) -> Value {
        json!({"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution":
            preferred(weight, term("security", "In", &[security], "region"))}})
    }

    fn scores(p: &Pod, nodes: Vec<Node>, pods: Vec<Pod>) -> Option<Vec<i64>> {
        let s = with_namespaces(snapshot(nodes, pods));
        let state = pre_score(p, &s, 1)?;
        let mut v: Vec<i64> = s.nodes().iter().map(|n| score(&state, n)).collect();
        normalize(&mut v);
        Some(v)
    }

    fn rnodes() -> Vec<Node> {
        vec![
            lnode("node1", &[("region", "China")]),
            lnode("node2", &[("region", "India")]),
            lnode("node3", &[("az", "az1")]),
        ]
    }

    const S2: (&str, &str) = ("security", "S2");

    fn on(name: &str, node: &str, l: (&str, &str), affinity: Value) -> Pod {
        apod(name, "", &[l], node, affinity)
    }

    #[test]
    fn preferred_nil_affinity_skips() {
        assert_eq!(
            scores(&apod("p", "", &[S1], "", Value::Null), rnodes(), vec![]),
            None
        );
    }

    #[test]
    fn preferred_affinity_matches_topology_and_pods() {
        let p = apod("p", "", &[S1], "", stay_with("S1", 5));
        let pods = vec![
            on("a", "node1", S1, Value::Null),
            on("b", "node2", S2, Value::Null),
            on("c", "node3", S1, Value::Null),
        ];
        assert_eq!(scores(&p, rnodes(), pods), Some(vec![100, 0, 0]));
    }

    #[test]
    fn preferred_affinity_same_domain_same_score() {
        let p = apod("p", "", &[], "", stay_with("S1", 5));
        let nodes = vec![
            lnode("node1", &[("region", "China")]),
            lnode("node2", &[("region", "China"), ("az", "az1")]),
            lnode("node3", &[("region", "India")]),
        ];
        assert_eq!(
            scores(&p, nodes, vec![on("a", "node1", S1, Value::Null)]),
            Some(vec![100, 100, 0])
        );
    }

    #[test]
    fn preferred_affinity_region_with_more_matches_wins() {
        let p = apod("p", "", &[S1], "", stay_with("S2", 6));
        let pods = ["node1", "node1", "node2", "node3", "node4", "node5"]
            .iter()
            .enumerate()
            .map(|(i, n)| on(&format!("p{i}"), n, S2, Value::Null))
            .collect();
        let nodes = vec![
            lnode("node1", &[("region", "China")]),
            lnode("node2", &[("region", "India")]),
            lnode("node3", &[("region", "China")]),
            lnode("node4", &[("region", "China")]),
            lnode("node5", &[("region", "India")]),
        ];
        assert_eq!(scores(&p, nodes, pods), Some(vec![100, 0, 100, 100, 0]));
    }

    #[test]
    fn preferred_affinity_operators() {
        let t1 = json!({"labelSelector": {"matchExpressions": [
            {"key": "security", "operator": "NotIn", "values": ["S1"]},
            {"key": "security", "operator": "In", "values": ["S2"]}]}, "topologyKey": "region"});
        let t2 = json!({"labelSelector": {"matchExpressions": [
            {"key": "security", "operator": "Exists"},
            {"key": "wrongkey", "operator": "DoesNotExist"}]}, "topologyKey": "region"});
        let affinity3 = json!({"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 8, "podAffinityTerm": t1}, {"weight": 2, "podAffinityTerm": t2}]}});
        let p = apod("p", "", &[S1], "", affinity3);
        let pods = vec![
            on("a", "node1", S1, Value::Null),
            on("b", "node2", S2, Value::Null),
            on("c", "node3", S1, Value::Null),
        ];
        assert_eq!(scores(&p, rnodes(), pods), Some(vec![20, 100, 0]));
    }

    #[test]
    fn preferred_affinity_symmetry() {
        let p = apod("p", "", &[S2], "", Value::Null);
        let pods = vec![
            on("a", "node1", S1, stay_with("S1", 5)),
            on("b", "node2", S2, stay_with("S2", 6)),
        ];
        assert_eq!(scores(&p, rnodes(), pods), Some(vec![0, 100, 0]));
    }

    #[test]
    fn preferred_symmetry_with_namespace_selectors() {
        let mut t = term("security", "In", &["S1"], "region");
        t["namespaces"] = json!(["subteam2.team2"]);
        t["namespaceSelector"] = team1();
        let affinity = json!({"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": preferred(5, t.clone())}});
        let anti = json!({"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": preferred(5, t)}});
        let p = apod("p", "subteam1.team1", &[S1], "", Value::Null);
        let pods = vec![
            on("a", "node1", S1, affinity),
            on("b", "node2", S2, stay_with("S2", 6)),
        ];
        assert_eq!(scores(&p, rnodes(), pods), Some(vec![100, 0, 0]));
        let pods = vec![
            on("a", "node1", S1, anti),
            on("b", "node2", S2, stay_with("S2", 6)),
        ];
        assert_eq!(scores(&p, rnodes(), pods), Some(vec![0, 100, 100]));
    }

    #[test]
    fn required_affinity_of_existing_pods_counts_with_the_hard_weight() {
        let hard = required(
            vec![
                term("security", "In", &["S1", "value2"], "region"),
                json!({"labelSelector": {"matchExpressions": [
                {"key": "security", "operator": "Exists"},
                {"key": "wrongkey", "operator": "DoesNotExist"}]}, "topologyKey": "region"}),
            ],
            vec![],
        );
        let p = apod("p", "", &[S1], "", Value::Null);
        let pods = vec![
            on("a", "node1", S1, hard.clone()),
            on("b", "node2", S2, hard),
        ];
        assert_eq!(scores(&p, rnodes(), pods), Some(vec![100, 100, 0]));
    }

    #[test]
    fn preferred_anti_affinity_in_az() {
        let away = json!({"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution":
            preferred(5, term("security", "In", &["S1"], "az"))}});
        let p = apod("p", "", &[S1], "", away);
        let nodes = vec![
            lnode("node1", &[("az", "az1")]),
            lnode("node2", &[("az", "az2")]),
        ];
        let pods = vec![
            on("a", "node1", S1, Value::Null),
            on("b", "node2", S2, Value::Null),
        ];
        assert_eq!(scores(&p, nodes, pods), Some(vec![0, 100]));
    }
}
