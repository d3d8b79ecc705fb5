//! The pure part of kube-scheduler's DefaultPreemption PostFilter plugin (upstream's
//! `defaultpreemption/default_preemption.go` and `framework/preemption/preemption.go`):
//! after a cycle failed with a [`FitError`], find the node where evicting the fewest and
//! least important lower-priority pods lets the pod fit.
//!
//! [`preempt`] checks that the pod may preempt ([`pod_eligible_to_preempt_others`]), dry
//! runs [`select_victims_on_node`] on every node the cycle rejected as `Unschedulable`
//! (not `UnschedulableAndUnresolvable`), and picks one candidate with upstream's
//! `pickOneNodeForPreemption` order. The caller then deletes the victims, sets
//! `status.nominatedNodeName` and records the error message otherwise.
//!
//! ```no_run
//! use keelson_scheduler::framework::{schedule, SchedulerConfig, Snapshot};
//! use keelson_scheduler::preemption::preempt;
//! # fn pending() -> k8s_openapi::api::core::v1::Pod { Default::default() }
//! let snapshot = Snapshot::new();
//! let pod = pending();
//! if let Err(mut fit_error) = schedule(&pod, &snapshot, &SchedulerConfig::default(), &mut 0) {
//!     match preempt(&pod, &snapshot, &fit_error) {
//!         Ok(p) => { /* delete p.victims, nominate p.node */ }
//!         Err(message) => fit_error.set_post_filter_message(message),
//!     }
//! }
//! ```
//!
//! Differences from upstream: PodDisruptionBudgets are not modelled (no victim violates
//! one), nor are extenders or nominated pods during Filter; the dry run starts at the
//! first candidate node instead of a random offset, and ties that remain after every
//! ordering rule go to the first candidate in node order (upstream: map order). A victim
//! without `status.startTime` counts as started now, that is after every victim that has
//! one.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use crate::framework::{Code, CycleState, FitError, NodeInfo, PodInfo, Snapshot, Status};

/// `DefaultPreemptionArgs.minCandidateNodesPercentage`'s default.
pub const MIN_CANDIDATE_NODES_PERCENTAGE: usize = 10;
/// `DefaultPreemptionArgs.minCandidateNodesAbsolute`'s default.
pub const MIN_CANDIDATE_NODES_ABSOLUTE: usize = 100;

/// The reason a node with no lower-priority pods gets.
pub const NO_VICTIMS_REASON: &str = "No preemption victims found for incoming pod";
/// The reason the nodes preemption did not look at get.
pub const NOT_HELPFUL_REASON: &str = "Preemption is not helpful for scheduling";

/// Where the pod goes once `victims` (most important first) are evicted.
#[derive(Clone, Debug, PartialEq)]
pub struct Preemption {
    /// The node to nominate.
    pub node: String,
    /// The pods to evict from it, by descending importance.
    pub victims: Vec<Arc<Pod>>,
}

/// `spec.priority`, 0 when unset (`corev1helpers.PodPriority`).
pub fn pod_priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

/// When a pod started; a pod without `status.startTime` started "now", after all others
/// (`util.GetPodStartTime`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum StartTime {
    At(Timestamp),
    Now,
}

fn start_time(pod: &Pod) -> StartTime {
    pod.status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map_or(StartTime::Now, |t| StartTime::At(t.0))
}

/// Whether `a` is more important than `b`: higher priority, or equal priority and
/// started earlier (`util.MoreImportantPod`).
pub fn more_important_pod(a: &Pod, b: &Pod) -> bool {
    let (pa, pb) = (pod_priority(a), pod_priority(b));
    if pa != pb {
        return pa > pb;
    }
    start_time(a) < start_time(b)
}

fn importance_order(a: &Pod, b: &Pod) -> Ordering {
    if more_important_pod(a, b) {
        Ordering::Less
    } else if more_important_pod(b, a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

/// Whether the pod is being deleted because the scheduler preempted it: a deletion
/// timestamp and a `DisruptionTarget=True` condition with reason `PreemptionByScheduler`.
fn terminating_by_preemption(pod: &Pod) -> bool {
    if pod.metadata.deletion_timestamp.is_none() {
        return false;
    }
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "DisruptionTarget")
        .is_some_and(|c| c.status == "True" && c.reason.as_deref() == Some("PreemptionByScheduler"))
}

/// `PodEligibleToPreemptOthers`: `Err` with upstream's reason when the pod has
/// `preemptionPolicy: Never`, or when its nominated node (unless the cycle found it
/// `UnschedulableAndUnresolvable`) still has lower-priority pods terminating because of
/// an earlier preemption.
pub fn pod_eligible_to_preempt_others(
    pod: &Pod,
    snapshot: &Snapshot,
    fit: &FitError,
) -> Result<(), &'static str> {
    let policy = pod
        .spec
        .as_ref()
        .and_then(|s| s.preemption_policy.as_deref());
    if policy == Some("Never") {
        return Err("not eligible due to preemptionPolicy=Never.");
    }
    let nominated = pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .unwrap_or("");
    if nominated.is_empty() {
        return Ok(());
    }
    // A node without a status counts as UnschedulableAndUnresolvable, as upstream's
    // default absent-nodes status.
    let unresolvable = fit
        .node_status(nominated)
        .is_none_or(|s| s.code() == Code::UnschedulableAndUnresolvable);
    if unresolvable {
        return Ok(());
    }
    if let Some(node) = snapshot.node(nominated) {
        let priority = pod_priority(pod);
        let terminating = node
            .pods()
            .iter()
            .any(|p| pod_priority(p.pod()) < priority && terminating_by_preemption(p.pod()));
        if terminating {
            return Err("not eligible due to a terminating pod on the nominated node.");
        }
    }
    Ok(())
}

/// `SelectVictimsOnNode` without PodDisruptionBudgets: removes every pod of lower
/// priority than the pod from a copy of `node`, checks that the pod then fits, and adds
/// them back from the most important down while it still fits. Returns the pods left
/// evicted, most important first, or the status of the node: [`NO_VICTIMS_REASON`]
/// when it has no lower-priority pod, the Filter rejection when evicting them all does
/// not help. `state` is the pod's PreFilter state; it is copied, not changed.
pub fn select_victims_on_node(
    state: &CycleState<'_>,
    node: &NodeInfo,
) -> Result<Vec<Arc<Pod>>, Status> {
    let priority = pod_priority(state.pod());
    let mut state = state.clone();
    let mut info = node.clone();
    let node_obj = Arc::clone(node.node());

    let mut potential: Vec<PodInfo> = node
        .pods()
        .iter()
        .filter(|p| pod_priority(p.pod()) < priority)
        .cloned()
        .collect();
    for p in &potential {
        info.remove_pod(p.pod());
        state.remove_pod(p, &node_obj);
    }
    if potential.is_empty() {
        return Err(Status::new(
            Code::UnschedulableAndUnresolvable,
            NO_VICTIMS_REASON,
        ));
    }
    state.filter(&info)?;

    potential.sort_by(|a, b| importance_order(a.pod(), b.pod()));
    let mut victims = Vec::new();
    for p in potential {
        info.add_pod_info(p.clone());
        state.add_pod(&p, &node_obj);
        if state.filter(&info).is_err() {
            info.remove_pod(p.pod());
            state.remove_pod(&p, &node_obj);
            victims.push(Arc::clone(p.pod()));
        }
    }
    Ok(victims)
}

/// How many candidates the dry run looks for among `num_nodes` potential nodes
/// (`calculateNumCandidates` with the default arguments).
pub fn num_candidates(num_nodes: usize) -> usize {
    (num_nodes * MIN_CANDIDATE_NODES_PERCENTAGE / 100)
        .max(MIN_CANDIDATE_NODES_ABSOLUTE)
        .min(num_nodes)
}

/// `pickOneNodeForPreemption` without PDB violations: the candidate whose most
/// important victim has the lowest priority, then the lowest sum of victim priorities,
/// then the fewest victims, then the latest start of its highest-priority victims, then
/// the first. `None` when `candidates` is empty.
pub fn pick_one_node_for_preemption(candidates: &[Preemption]) -> Option<usize> {
    fn highest_priority(c: &Preemption) -> i64 {
        c.victims.first().map_or(0, |p| i64::from(pod_priority(p)))
    }
    fn sum_priorities(c: &Preemption) -> i64 {
        c.victims
            .iter()
            .map(|p| i64::from(pod_priority(p)) + i64::from(i32::MAX) + 1)
            .sum()
    }
    // The earliest start among the victims of the highest priority.
    fn earliest_start(c: &Preemption) -> Option<StartTime> {
        let top = c.victims.iter().map(|p| pod_priority(p)).max()?;
        c.victims
            .iter()
            .filter(|p| pod_priority(p) == top)
            .map(|p| start_time(p))
            .min()
    }
    // Higher is better; each rule only breaks the ties the previous ones left.
    type Score = fn(&Preemption) -> (i64, Option<StartTime>);
    let scores: [Score; 4] = [
        |c| (-highest_priority(c), None),
        |c| (-sum_priorities(c), None),
        |c| (-(c.victims.len() as i64), None),
        // None (no victims) sorts before every start time, as upstream's MinInt64.
        |c| (0, earliest_start(c)),
    ];
    let mut remaining: Vec<usize> = (0..candidates.len()).collect();
    for score in scores {
        let best = remaining.iter().map(|&i| score(&candidates[i])).max()?;
        remaining.retain(|&i| score(&candidates[i]) == best);
        if remaining.len() == 1 {
            break;
        }
    }
    remaining.first().copied()
}

/// DefaultPreemption's PostFilter, without its side effects: the node to nominate and
/// the victims to evict there, or the message upstream's PostFilter returns (already
/// prefixed with `preemption: `), for [`FitError::set_post_filter_message`].
pub fn preempt(pod: &Pod, snapshot: &Snapshot, fit: &FitError) -> Result<Preemption, String> {
    pod_eligible_to_preempt_others(pod, snapshot, fit).map_err(|m| format!("preemption: {m}"))?;

    let num_all_nodes = snapshot.len();
    if num_all_nodes == 0 {
        return Err("preemption: no nodes available".to_string());
    }
    let potential: Vec<&NodeInfo> = snapshot
        .nodes()
        .iter()
        .filter(|n| {
            fit.node_status(n.name())
                .is_some_and(|s| s.code() == Code::Unschedulable)
        })
        .collect();

    let mut candidates: Vec<Preemption> = Vec::new();
    let mut statuses: Vec<Status> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    if !potential.is_empty() {
        let wanted = num_candidates(potential.len());
        let state = CycleState::new(pod, snapshot);
        for node in potential {
            let result = match &state {
                Ok(state) => select_victims_on_node(state, node),
                Err(status) => Err(status.clone()),
            };
            match result {
                Ok(victims) if !victims.is_empty() => {
                    candidates.push(Preemption {
                        node: node.name().to_string(),
                        victims,
                    });
                    if candidates.len() >= wanted {
                        break;
                    }
                }
                Ok(_) => errors.push(format!(
                    "expected at least one victim pod on node {:?}",
                    node.name()
                )),
                Err(status) => statuses.push(status),
            }
        }
    }

    if candidates.is_empty() {
        if !errors.is_empty() {
            let message = if errors.len() == 1 {
                errors.remove(0)
            } else {
                format!("[{}]", errors.join(", "))
            };
            return Err(format!("preemption: {message}"));
        }
        return Err(no_candidates_message(num_all_nodes, &statuses));
    }
    let best = pick_one_node_for_preemption(&candidates).unwrap_or(0);
    Ok(candidates.swap_remove(best))
}

/// `preemption: ` and the FitError upstream builds when no node is a candidate: the
/// statuses of the nodes tried, `Preemption is not helpful for scheduling` for the rest.
fn no_candidates_message(num_all_nodes: usize, statuses: &[Status]) -> String {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for status in statuses {
        for reason in status.reasons() {
            *counts.entry(reason).or_insert(0) += 1;
        }
    }
    let absent = num_all_nodes.saturating_sub(statuses.len());
    if absent > 0 {
        *counts.entry(NOT_HELPFUL_REASON).or_insert(0) += absent;
    }
    let mut histogram: Vec<String> = counts
        .into_iter()
        .map(|(reason, n)| format!("{n} {reason}"))
        .collect();
    histogram.sort();
    format!(
        "preemption: 0/{num_all_nodes} nodes are available: {}.",
        histogram.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::{schedule, SchedulerConfig};
    use crate::plugins::testing::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn prio(mut p: Pod, priority: i32) -> Pod {
        spec(&mut p).priority = Some(priority);
        p
    }

    fn started(mut p: Pod, second: i64) -> Pod {
        p.status.get_or_insert_with(PodStatus::default).start_time = Some(Time(
            Timestamp::from_second(second).expect("valid timestamp"),
        ));
        p
    }

    fn cpu_pod(name: &str, cpu: &str, priority: i32) -> Pod {
        prio(pod(name, &[&[("cpu", cpu)]]), priority)
    }

    fn cpu_node(name: &str, cpu: &str) -> k8s_openapi::api::core::v1::Node {
        node(
            name,
            &[("cpu", cpu), ("memory", "8Gi"), ("pods", "110")],
            &[],
        )
    }

    fn fit_error(p: &Pod, s: &Snapshot) -> FitError {
        schedule(p, s, &SchedulerConfig::default(), &mut 0).expect_err("pod must not fit")
    }

    fn names(victims: &[Arc<Pod>]) -> Vec<&str> {
        victims
            .iter()
            .map(|p| p.metadata.name.as_deref().unwrap_or(""))
            .collect()
    }

    #[test]
    fn lower_priority_pod_is_evicted_for_higher_priority_one() {
        let s = snapshot(
            vec![cpu_node("n1", "2")],
            vec![on_node(cpu_pod("low", "2", 10), "n1")],
        );
        let incoming = cpu_pod("high", "1", 100);
        let fit = fit_error(&incoming, &s);
        let p = preempt(&incoming, &s, &fit).expect("preemption must succeed");
        assert_eq!(p.node, "n1");
        assert_eq!(names(&p.victims), ["low"]);
    }

    #[test]
    fn equal_or_higher_priority_pods_are_never_preempted() {
        let s = snapshot(
            vec![
                cpu_node("n1", "2"),
                cpu_node("n2", "2"),
                cpu_node("n3", "1"),
            ],
            vec![
                on_node(cpu_pod("same", "2", 100), "n1"),
                on_node(cpu_pod("higher", "2", 200), "n2"),
                // A lower-priority pod whose eviction is not enough.
                on_node(cpu_pod("small", "500m", 1), "n3"),
            ],
        );
        let incoming = cpu_pod("p", "2", 100);
        let fit = fit_error(&incoming, &s);
        assert_eq!(
            preempt(&incoming, &s, &fit),
            Err("preemption: 0/3 nodes are available: 1 Insufficient cpu, \
                 2 No preemption victims found for incoming pod."
                .to_string())
        );
    }

    #[test]
    fn unresolvable_nodes_are_not_candidates() {
        let mut tainted = cpu_node("n2", "2");
        tainted.spec.get_or_insert_with(Default::default).taints =
            Some(vec![taint("dedicated", "x", "NoSchedule")]);
        let s = snapshot(
            vec![cpu_node("n1", "2"), tainted],
            vec![
                on_node(cpu_pod("same", "2", 5), "n1"),
                on_node(cpu_pod("low", "2", 0), "n2"),
            ],
        );
        let incoming = cpu_pod("p", "1", 5);
        let fit = fit_error(&incoming, &s);
        assert_eq!(
            preempt(&incoming, &s, &fit),
            Err("preemption: 0/2 nodes are available: \
                 1 No preemption victims found for incoming pod, \
                 1 Preemption is not helpful for scheduling."
                .to_string())
        );
    }

    #[test]
    fn never_policy_and_terminating_victims_make_pod_ineligible() {
        let s = snapshot(
            vec![cpu_node("n1", "2")],
            vec![on_node(cpu_pod("low", "2", 0), "n1")],
        );
        let mut incoming = cpu_pod("p", "1", 10);
        spec(&mut incoming).preemption_policy = Some("Never".to_string());
        let fit = fit_error(&incoming, &s);
        assert_eq!(
            preempt(&incoming, &s, &fit),
            Err("preemption: not eligible due to preemptionPolicy=Never.".to_string())
        );

        // Nominated to n1, where the victim of an earlier preemption is terminating.
        let mut victim = cpu_pod("low", "2", 0);
        victim.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        victim.status = Some(PodStatus {
            conditions: Some(vec![PodCondition {
                type_: "DisruptionTarget".to_string(),
                status: "True".to_string(),
                reason: Some("PreemptionByScheduler".to_string()),
                ..Default::default()
            }]),
            ..Default::default()
        });
        let s = snapshot(vec![cpu_node("n1", "2")], vec![on_node(victim, "n1")]);
        let mut incoming = cpu_pod("p", "1", 10);
        incoming.status = Some(PodStatus {
            nominated_node_name: Some("n1".to_string()),
            ..Default::default()
        });
        let fit = fit_error(&incoming, &s);
        assert_eq!(
            preempt(&incoming, &s, &fit),
            Err(
                "preemption: not eligible due to a terminating pod on the nominated node."
                    .to_string()
            )
        );
    }

    #[test]
    fn reprieve_keeps_victims_that_need_not_go() {
        // 4 cpu: the pod needs 2; evicting "mid" (2) alone is enough, "a" and "b" stay.
        let s = snapshot(
            vec![cpu_node("n1", "4")],
            vec![
                on_node(cpu_pod("a", "1", 5), "n1"),
                on_node(cpu_pod("b", "1", 1), "n1"),
                on_node(cpu_pod("mid", "2", 3), "n1"),
            ],
        );
        let incoming = cpu_pod("p", "2", 10);
        let fit = fit_error(&incoming, &s);
        let p = preempt(&incoming, &s, &fit).expect("preemption must succeed");
        // Reprieved from the most important down: a (fits), mid (does not), b (fits).
        assert_eq!(names(&p.victims), ["mid"]);

        // Needing 3 cpu: a is reprieved, mid and b go, most important first.
        let incoming = cpu_pod("p", "3", 10);
        let fit = fit_error(&incoming, &s);
        let p = preempt(&incoming, &s, &fit).expect("preemption must succeed");
        assert_eq!(names(&p.victims), ["mid", "b"]);
    }

    #[test]
    fn node_with_lowest_highest_victim_priority_wins() {
        let s = snapshot(
            vec![cpu_node("n1", "2"), cpu_node("n2", "2")],
            vec![
                on_node(cpu_pod("n1-a", "2", 5), "n1"),
                on_node(cpu_pod("n2-a", "1", 3), "n2"),
                on_node(cpu_pod("n2-b", "1", 3), "n2"),
            ],
        );
        let incoming = cpu_pod("p", "2", 10);
        let fit = fit_error(&incoming, &s);
        let p = preempt(&incoming, &s, &fit).expect("preemption must succeed");
        // n2 has more victims but their highest priority (3) is below n1's (5).
        assert_eq!(p.node, "n2");
        assert_eq!(names(&p.victims).len(), 2);
    }

    #[test]
    fn ordering_rules_break_ties_in_turn() {
        let v = |name: &str, priority: i32, start: Option<i64>| {
            let p = cpu_pod(name, "1", priority);
            Arc::new(match start {
                Some(s) => started(p, s),
                None => p,
            })
        };
        let c = |node: &str, victims: Vec<Arc<Pod>>| Preemption {
            node: node.to_string(),
            victims,
        };
        // Same highest priority: the lower sum wins.
        let cands = [
            c("a", vec![v("x", 5, None), v("y", 4, None)]),
            c("b", vec![v("x", 5, None), v("y", 1, None)]),
        ];
        assert_eq!(pick_one_node_for_preemption(&cands), Some(1));
        // Negative priorities: one victim at -10 beats two at -10 (sum offsets by 2^31).
        let cands = [
            c("a", vec![v("x", -10, None), v("y", -10, None)]),
            c("b", vec![v("x", -10, None)]),
        ];
        assert_eq!(pick_one_node_for_preemption(&cands), Some(1));
        // Same sums: fewer victims win.
        let cands = [
            c("a", vec![v("x", 2, None), v("y", 0, None)]),
            c("b", vec![v("x", 2, None)]),
        ];
        assert_eq!(pick_one_node_for_preemption(&cands), Some(1));
        // Same everything but start times: the latest earliest-start wins; no start time
        // counts as now.
        let cands = [
            c("a", vec![v("x", 2, Some(100))]),
            c("b", vec![v("x", 2, Some(200))]),
            c("c", vec![v("x", 2, Some(50))]),
        ];
        assert_eq!(pick_one_node_for_preemption(&cands), Some(1));
        let cands = [
            c("a", vec![v("x", 2, Some(100))]),
            c("b", vec![v("x", 2, None)]),
        ];
        assert_eq!(pick_one_node_for_preemption(&cands), Some(1));
        // Full tie: the first.
        let cands = [c("a", vec![v("x", 2, None)]), c("b", vec![v("x", 2, None)])];
        assert_eq!(pick_one_node_for_preemption(&cands), Some(0));
        assert_eq!(pick_one_node_for_preemption(&[]), None);
    }

    #[test]
    fn victims_are_sorted_by_priority_then_start_time() {
        let early = started(cpu_pod("early", "1", 1), 10);
        let late = started(cpu_pod("late", "1", 1), 20);
        let top = cpu_pod("top", "1", 2);
        assert!(more_important_pod(&top, &early));
        assert!(more_important_pod(&early, &late));
        assert!(!more_important_pod(&late, &early));
        assert!(more_important_pod(&late, &cpu_pod("unstarted", "1", 1)));
    }

    #[test]
    fn num_candidates_matches_upstream_defaults() {
        assert_eq!(num_candidates(5), 5);
        assert_eq!(num_candidates(100), 100);
        assert_eq!(num_candidates(500), 100);
        assert_eq!(num_candidates(5000), 500);
    }

    #[test]
    fn nothing_preemptible_anywhere_says_not_helpful() {
        let mut tainted = cpu_node("n1", "2");
        tainted.spec.get_or_insert_with(Default::default).taints =
            Some(vec![taint("dedicated", "x", "NoSchedule")]);
        let s = snapshot(vec![tainted], vec![]);
        let incoming = cpu_pod("p", "1", 10);
        let fit = fit_error(&incoming, &s);
        assert_eq!(
            preempt(&incoming, &s, &fit),
            Err("preemption: 0/1 nodes are available: \
                 1 Preemption is not helpful for scheduling."
                .to_string())
        );
    }
}
