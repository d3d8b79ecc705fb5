//! NodeAffinity (`plugins/nodeaffinity` and component-helpers' `nodeaffinity`): Filter
//! requires `spec.nodeSelector` and the required node affinity terms (`In`, `NotIn`,
//! `Exists`, `DoesNotExist`, `Gt`, `Lt` on labels; `In`/`NotIn` on the `metadata.name`
//! field); PreFilter narrows the candidates to the node names a `matchFields` term
//! lists; Score sums the weights of the preferred terms a node matches.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{self as k8s, Node, Pod};
use keelson_apimachinery::labels::{Operator, Requirement, Selector};

use crate::framework::{Code, FilterResult, NodeInfo, Status, MAX_NODE_SCORE};
use crate::plugins::{default_normalize_score, node_labels, node_name};

pub(crate) const NAME: &str = "NodeAffinity";
pub(crate) const WEIGHT: i64 = 2;

/// `ErrReasonPod`.
pub(crate) const ERR_REASON_POD: &str = "node(s) didn't match Pod's node affinity/selector";
/// `errReasonConflict`.
pub(crate) const ERR_REASON_CONFLICT: &str = "pod affinity terms conflict";

/// `metav1.ObjectNameField`.
const OBJECT_NAME_FIELD: &str = "metadata.name";

/// A `metadata.name` requirement of `matchFields`: `In` (equals) or `NotIn`.
#[derive(Clone, Debug)]
struct FieldRequirement {
    equals: bool,
    value: String,
}

/// A parsed `NodeSelectorTerm`; a term that does not parse matches nothing.
#[derive(Clone, Debug)]
pub(crate) struct NodeSelectorTerm {
    labels: Option<Selector>,
    fields: Option<Vec<FieldRequirement>>,
    valid: bool,
}

fn is_empty_term(term: &k8s::NodeSelectorTerm) -> bool {
    term.match_expressions.as_ref().is_none_or(Vec::is_empty)
        && term.match_fields.as_ref().is_none_or(Vec::is_empty)
}

/// `nodeSelectorRequirementsAsSelector`.
fn label_requirements(exprs: &[k8s::NodeSelectorRequirement]) -> Option<Selector> {
    let mut requirements = Vec::with_capacity(exprs.len());
    for e in exprs {
        let op = match e.operator.as_str() {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            "Gt" => Operator::GreaterThan,
            "Lt" => Operator::LessThan,
            _ => return None,
        };
        requirements
            .push(Requirement::new(e.key.clone(), op, e.values.clone().unwrap_or_default()).ok()?);
    }
    Some(Selector::everything().with_requirements(requirements))
}

/// `fieldSelectorRequirementsAsSelector`: only `metadata.name`, `In`/`NotIn`, one value.
fn field_requirements(exprs: &[k8s::NodeSelectorRequirement]) -> Option<Vec<FieldRequirement>> {
    exprs
        .iter()
        .map(|e| {
            if e.key != OBJECT_NAME_FIELD {
                return None;
            }
            let equals = match e.operator.as_str() {
                "In" => true,
                "NotIn" => false,
                _ => return None,
            };
            match e.values.as_deref() {
                Some([value]) => Some(FieldRequirement {
                    equals,
                    value: value.clone(),
                }),
                _ => None,
            }
        })
        .collect()
}

impl NodeSelectorTerm {
    pub(crate) fn parse(term: &k8s::NodeSelectorTerm) -> NodeSelectorTerm {
        let mut valid = true;
        let labels = match term.match_expressions.as_deref() {
            Some(exprs) if !exprs.is_empty() => {
                let s = label_requirements(exprs);
                valid &= s.is_some();
                s
            }
            _ => None,
        };
        let fields = match term.match_fields.as_deref() {
            Some(exprs) if !exprs.is_empty() => {
                let f = field_requirements(exprs);
                valid &= f.is_some();
                f
            }
            _ => None,
        };
        NodeSelectorTerm {
            labels,
            fields,
            valid,
        }
    }

    pub(crate) fn matches(&self, node: &Node) -> bool {
        self.matches_parts(node_labels(node), node_name(node))
    }

    /// Matches a node by its labels and name; an empty name skips `matchFields`.
    fn matches_parts(&self, node_labels: &BTreeMap<String, String>, name: &str) -> bool {
        if !self.valid {
            return false;
        }
        if let Some(labels) = &self.labels {
            if !labels.matches(node_labels) {
                return false;
            }
        }
        if let (Some(fields), false) = (&self.fields, name.is_empty()) {
            if !fields.iter().all(|f| (f.value == name) == f.equals) {
                return false;
            }
        }
        true
    }
}

/// `LazyErrorNodeSelector`: the ORed non-empty terms.
#[derive(Clone, Debug)]
pub(crate) struct NodeSelector {
    terms: Vec<NodeSelectorTerm>,
}

impl NodeSelector {
    pub(crate) fn parse(selector: &k8s::NodeSelector) -> NodeSelector {
        NodeSelector {
            terms: selector
                .node_selector_terms
                .iter()
                .filter(|t| !is_empty_term(t))
                .map(NodeSelectorTerm::parse)
                .collect(),
        }
    }

    pub(crate) fn matches(&self, node: &Node) -> bool {
        self.terms.iter().any(|t| t.matches(node))
    }

    /// Matches a node known only by its labels, so `matchFields` are ignored (as
    /// `volume.CheckNodeAffinity`, which builds a node with labels alone).
    pub(crate) fn matches_labels(&self, labels: &BTreeMap<String, String>) -> bool {
        self.terms.iter().any(|t| t.matches_parts(labels, ""))
    }
}

/// `nodeaffinity.RequiredNodeAffinity`: `spec.nodeSelector` and the required node
/// affinity, both of which must match.
#[derive(Clone, Debug, Default)]
pub(crate) struct RequiredNodeAffinity {
    label_selector: Option<Selector>,
    node_selector: Option<NodeSelector>,
}

impl RequiredNodeAffinity {
    /// `GetRequiredNodeAffinity`.
    pub(crate) fn of(pod: &Pod) -> RequiredNodeAffinity {
        let spec = pod.spec.as_ref();
        let label_selector = spec
            .and_then(|s| s.node_selector.as_ref())
            .filter(|m| !m.is_empty())
            .map(|m| Selector::from_set(m.iter().map(|(k, v)| (k.clone(), v.clone()))));
        let node_selector = required_terms(pod).map(NodeSelector::parse);
        RequiredNodeAffinity {
            label_selector,
            node_selector,
        }
    }

    pub(crate) fn matches(&self, node: &Node) -> bool {
        if let Some(selector) = &self.label_selector {
            if !selector.matches(node_labels(node)) {
                return false;
            }
        }
        self.node_selector.as_ref().is_none_or(|s| s.matches(node))
    }
}

fn required_terms(pod: &Pod) -> Option<&k8s::NodeSelector> {
    pod.spec
        .as_ref()?
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()
}

/// PreFilter: `None` (Skip) without a node selector or required node affinity;
/// otherwise the requirement, and the node names when every term pins `metadata.name`
/// with `In` (the union over terms of the intersection within each).
#[allow(clippy::type_complexity)]
pub(crate) fn pre_filter(
    pod: &Pod,
) -> Result<Option<(RequiredNodeAffinity, Option<BTreeSet<String>>)>, Status> {
    let required = required_terms(pod);
    let has_selector = pod.spec.as_ref().is_some_and(|s| s.node_selector.is_some());
    if required.is_none() && !has_selector {
        return Ok(None);
    }
    let affinity = RequiredNodeAffinity::of(pod);
    let Some(required) = required.filter(|r| !r.node_selector_terms.is_empty()) else {
        return Ok(Some((affinity, None)));
    };
    let mut node_names: BTreeSet<String> = BTreeSet::new();
    for term in &required.node_selector_terms {
        let mut term_names: Option<BTreeSet<String>> = None;
        for r in term.match_fields.iter().flatten() {
            if r.key == OBJECT_NAME_FIELD && r.operator == "In" {
                let s: BTreeSet<String> = r.values.iter().flatten().cloned().collect();
                term_names = Some(match term_names {
                    None => s,
                    Some(t) => t.intersection(&s).cloned().collect(),
                });
            }
        }
        match term_names {
            // A term without a node name: every node is a candidate.
            None => return Ok(Some((affinity, None))),
            Some(names) => node_names.extend(names),
        }
    }
    if node_names.is_empty() {
        return Err(Status::new(
            Code::UnschedulableAndUnresolvable,
            ERR_REASON_CONFLICT,
        ));
    }
    Ok(Some((affinity, Some(node_names))))
}

pub(crate) fn filter(required: &RequiredNodeAffinity, node: &NodeInfo) -> FilterResult {
    if required.matches(node.node()) {
        Ok(())
    } else {
        Err(Status::new(
            Code::UnschedulableAndUnresolvable,
            ERR_REASON_POD,
        ))
    }
}

/// `PreferredSchedulingTerms`: weighted terms; terms of weight 0, empty or not parsing are
/// left out.
pub(crate) struct PreferredTerms {
    terms: Vec<(NodeSelectorTerm, i64)>,
}

/// PreScore: `None` (Skip) without preferred terms.
pub(crate) fn pre_score(pod: &Pod) -> Option<PreferredTerms> {
    let preferred = pod
        .spec
        .as_ref()?
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .preferred_during_scheduling_ignored_during_execution
        .as_ref()?;
    let terms = preferred
        .iter()
        .filter(|t| t.weight != 0 && !is_empty_term(&t.preference))
        .map(|t| (NodeSelectorTerm::parse(&t.preference), i64::from(t.weight)))
        .filter(|(t, _)| t.valid)
        .collect();
    Some(PreferredTerms { terms })
}

pub(crate) fn score(preferred: &PreferredTerms, node: &NodeInfo) -> i64 {
    preferred
        .terms
        .iter()
        .filter(|(t, _)| t.matches(node.node()))
        .map(|(_, w)| w)
        .sum()
}

pub(crate) fn normalize(scores: &mut [i64]) {
    default_normalize_score(MAX_NODE_SCORE, false, scores);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::*;
    use serde_json::json;

    fn pod_with(
        node_selector: Option<&[(&str, &str)]>,
        affinity: Option<serde_json::Value>,
    ) -> Pod {
        let mut p = pod("p", &[]);
        spec(&mut p).node_selector = node_selector.map(labels);
        spec(&mut p).affinity = affinity.map(|a| from_json(json!({"nodeAffinity": a})));
        p
    }

    fn required(terms: serde_json::Value) -> serde_json::Value {
        json!({"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}})
    }

    /// Runs PreFilter and Filter like the framework: a skipped PreFilter passes.
    fn run(p: &Pod, n: Node) -> FilterResult {
        match pre_filter(p)? {
            None => Ok(()),
            Some((req, _)) => filter(&req, &node_info(n, vec![])),
        }
    }

    fn rejected() -> FilterResult {
        Err(Status::new(
            Code::UnschedulableAndUnresolvable,
            ERR_REASON_POD,
        ))
    }

    fn labeled(l: &[(&str, &str)]) -> Node {
        node("node1", &[], l)
    }

    // TestNodeAffinity
    #[test]
    fn node_selector() {
        let p = pod_with(Some(&[("foo", "bar")]), None);
        assert_eq!(run(&p, labeled(&[])), rejected(), "missing labels");
        assert_eq!(run(&p, labeled(&[("foo", "bar")])), Ok(()), "same labels");
        assert_eq!(
            run(&p, labeled(&[("foo", "bar"), ("baz", "blah")])),
            Ok(()),
            "node labels are superset"
        );
        let p = pod_with(Some(&[("foo", "bar"), ("baz", "blah")]), None);
        assert_eq!(
            run(&p, labeled(&[("foo", "bar")])),
            rejected(),
            "node labels are subset"
        );
    }

    #[test]
    fn match_expressions_operators() {
        let expr = |key: &str, op: &str, values: serde_json::Value| {
            pod_with(
                None,
                Some(required(json!([{"matchExpressions": [
                {"key": key, "operator": op, "values": values}]}]))),
            )
        };
        assert_eq!(
            run(
                &expr("foo", "In", json!(["bar", "value2"])),
                labeled(&[("foo", "bar")])
            ),
            Ok(())
        );
        assert_eq!(
            run(
                &expr("kernel-version", "Gt", json!(["0204"])),
                labeled(&[("kernel-version", "0206")])
            ),
            Ok(())
        );
        assert_eq!(
            run(
                &expr("kernel-version", "Lt", json!(["0204"])),
                labeled(&[("kernel-version", "0206")])
            ),
            rejected()
        );
        assert_eq!(
            run(
                &expr("mem-type", "NotIn", json!(["DDR", "DDR2"])),
                labeled(&[("mem-type", "DDR3")])
            ),
            Ok(())
        );
        assert_eq!(
            run(
                &expr("GPU", "Exists", json!(null)),
                labeled(&[("GPU", "NVIDIA-GRID-K1")])
            ),
            Ok(())
        );
        assert_eq!(
            run(
                &expr("GPU", "DoesNotExist", json!(null)),
                labeled(&[("GPU", "NVIDIA-GRID-K1")])
            ),
            rejected()
        );
        assert_eq!(
            run(
                &expr("foo", "In", json!(["value1", "value2"])),
                labeled(&[("foo", "bar")])
            ),
            rejected(),
            "affinity that doesn't match node's labels"
        );
        assert_eq!(
            run(
                &expr("kernel-version", "Gt", json!(["invalid value: ___@#$%^"])),
                labeled(&[("kernel-version", "0206")])
            ),
            rejected(),
            "invalid value in affinity term"
        );
    }

    #[test]
    fn empty_or_missing_terms_match_nothing() {
        let p = pod_with(
            None,
            Some(json!({"requiredDuringSchedulingIgnoredDuringExecution": {}})),
        );
        assert_eq!(run(&p, labeled(&[("foo", "bar")])), rejected(), "nil terms");
        let p = pod_with(None, Some(required(json!([]))));
        assert_eq!(
            run(&p, labeled(&[("foo", "bar")])),
            rejected(),
            "empty terms"
        );
        let p = pod_with(None, Some(required(json!([{"matchExpressions": []}]))));
        assert_eq!(
            run(&p, labeled(&[("foo", "bar")])),
            rejected(),
            "empty matchExpressions"
        );
    }

    #[test]
    fn no_affinity_or_nil_required_schedules() {
        assert_eq!(
            pre_filter(&pod_with(None, None)).map(|r| r.is_none()),
            Ok(true)
        );
        let p = pod_with(None, Some(json!({})));
        assert_eq!(run(&p, labeled(&[("foo", "bar")])), Ok(()));
    }

    #[test]
    fn and_within_a_term_or_across_terms() {
        let p = pod_with(
            None,
            Some(required(json!([{"matchExpressions": [
            {"key": "GPU", "operator": "Exists"},
            {"key": "GPU", "operator": "NotIn", "values": ["AMD", "INTER"]}]}]))),
        );
        assert_eq!(run(&p, labeled(&[("GPU", "NVIDIA-GRID-K1")])), Ok(()));
        let p = pod_with(
            None,
            Some(required(json!([{"matchExpressions": [
            {"key": "GPU", "operator": "Exists"},
            {"key": "GPU", "operator": "In", "values": ["AMD", "INTER"]}]}]))),
        );
        assert_eq!(run(&p, labeled(&[("GPU", "NVIDIA-GRID-K1")])), rejected());
        let p = pod_with(
            None,
            Some(required(json!([
            {"matchExpressions": [{"key": "foo", "operator": "In", "values": ["bar", "value2"]}]},
            {"matchExpressions": [{"key": "diffkey", "operator": "In", "values": ["wrong", "value2"]}]}]))),
        );
        assert_eq!(run(&p, labeled(&[("foo", "bar")])), Ok(()));
    }

    #[test]
    fn node_selector_and_affinity_both_apply() {
        let affinity =
            required(json!([{"matchExpressions": [{"key": "foo", "operator": "Exists"}]}]));
        let p = pod_with(Some(&[("foo", "bar")]), Some(affinity));
        assert_eq!(run(&p, labeled(&[("foo", "bar")])), Ok(()));
        assert_eq!(run(&p, labeled(&[("foo", "barrrrrr")])), rejected());
    }

    fn names(list: &[&str]) -> Option<BTreeSet<String>> {
        Some(list.iter().map(|s| s.to_string()).collect())
    }

    fn pre_filter_names(p: &Pod) -> Option<BTreeSet<String>> {
        pre_filter(p).ok().flatten().and_then(|(_, n)| n)
    }

    #[test]
    fn match_fields() {
        let name_in = |n: &str| json!({"key": "metadata.name", "operator": "In", "values": [n]});
        let foo_in = |v: &str| json!({"key": "foo", "operator": "In", "values": [v]});

        let p = pod_with(
            None,
            Some(required(json!([{"matchFields": [name_in("node1")]}]))),
        );
        assert_eq!(run(&p, node("node1", &[], &[])), Ok(()));
        assert_eq!(run(&p, node("node2", &[], &[])), rejected());
        assert_eq!(pre_filter_names(&p), names(&["node1"]));

        // Two terms: matchFields does not match, but matchExpressions does.
        let p = pod_with(
            None,
            Some(required(json!([
            {"matchFields": [name_in("node1")]},
            {"matchExpressions": [foo_in("bar")]}]))),
        );
        assert_eq!(run(&p, node("node2", &[], &[("foo", "bar")])), Ok(()));
        assert_eq!(pre_filter_names(&p), None);

        // One term: matchFields does not match, matchExpressions does.
        let p = pod_with(
            None,
            Some(required(json!([
            {"matchFields": [name_in("node1")], "matchExpressions": [foo_in("bar")]}]))),
        );
        assert_eq!(run(&p, node("node2", &[], &[("foo", "bar")])), rejected());
        assert_eq!(run(&p, node("node1", &[], &[("foo", "bar")])), Ok(()));
        assert_eq!(pre_filter_names(&p), names(&["node1"]));

        // Two terms that do not match.
        let p = pod_with(
            None,
            Some(required(json!([
            {"matchFields": [name_in("node1")]},
            {"matchExpressions": [foo_in("not-match-to-bar")]}]))),
        );
        assert_eq!(run(&p, node("node2", &[], &[("foo", "bar")])), rejected());

        // Two terms of node names.
        let p = pod_with(
            None,
            Some(required(json!([
            {"matchFields": [name_in("node1")]},
            {"matchFields": [name_in("node2")]}]))),
        );
        assert_eq!(run(&p, node("node2", &[], &[])), Ok(()));
        assert_eq!(pre_filter_names(&p), names(&["node1", "node2"]));

        // NotIn.
        let p = pod_with(
            None,
            Some(required(json!([{"matchFields": [
            {"key": "metadata.name", "operator": "NotIn", "values": ["node1"]}]}]))),
        );
        assert_eq!(run(&p, node("node1", &[], &[])), rejected());
        assert_eq!(run(&p, node("node2", &[], &[])), Ok(()));
        assert_eq!(pre_filter_names(&p), None);
    }

    #[test]
    fn conflicting_match_fields() {
        let p = pod_with(
            None,
            Some(required(json!([{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": ["node1"]},
            {"key": "metadata.name", "operator": "In", "values": ["node2"]}]}]))),
        );
        assert_eq!(
            pre_filter(&p).map(|_| ()),
            Err(Status::new(
                Code::UnschedulableAndUnresolvable,
                ERR_REASON_CONFLICT
            ))
        );
    }

    // TestNodeAffinityPriority
    fn affinity1() -> serde_json::Value {
        json!({"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 2, "preference": {"matchExpressions": [
                {"key": "foo", "operator": "In", "values": ["bar"]}]}}]})
    }

    fn affinity2() -> serde_json::Value {
        json!({"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 2, "preference": {"matchExpressions": [
                {"key": "foo", "operator": "In", "values": ["bar"]}]}},
            {"weight": 4, "preference": {"matchExpressions": [
                {"key": "key", "operator": "In", "values": ["value"]}]}},
            {"weight": 5, "preference": {"matchExpressions": [
                {"key": "foo", "operator": "In", "values": ["bar"]},
                {"key": "key", "operator": "In", "values": ["value"]},
                {"key": "az", "operator": "In", "values": ["az1"]}]}}]})
    }

    fn priority(p: &Pod, node_labels: &[&[(&str, &str)]]) -> Option<Vec<i64>> {
        let preferred = pre_score(p)?;
        let mut scores: Vec<i64> = node_labels
            .iter()
            .enumerate()
            .map(|(i, l)| {
                score(
                    &preferred,
                    &node_info(node(&format!("node{i}"), &[], l), vec![]),
                )
            })
            .collect();
        normalize(&mut scores);
        Some(scores)
    }

    #[test]
    fn priority_all_same_without_node_affinity() {
        assert_eq!(priority(&pod_with(None, None), &[&[("foo", "bar")]]), None);
    }

    #[test]
    fn priority_no_node_matches() {
        let p = pod_with(None, Some(affinity1()));
        let l = [
            &[("abc", "az11"), ("def", "az22")][..],
            &[("key", "value")][..],
            &[("az", "az1")][..],
        ];
        assert_eq!(priority(&p, &l), Some(vec![0, 0, 0]));
    }

    #[test]
    fn priority_only_node1_matches() {
        let p = pod_with(None, Some(affinity1()));
        let l = [
            &[("foo", "bar")][..],
            &[("key", "value")][..],
            &[("az", "az1")][..],
        ];
        assert_eq!(priority(&p, &l), Some(vec![100, 0, 0]));
    }

    #[test]
    fn priority_different_weights() {
        let p = pod_with(None, Some(affinity2()));
        let l = [
            &[("foo", "bar")][..],
            &[("foo", "bar"), ("key", "value"), ("az", "az1")][..],
            &[("key", "value")][..],
        ];
        assert_eq!(priority(&p, &l), Some(vec![18, 100, 36]));
    }
}
