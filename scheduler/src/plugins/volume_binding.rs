//! VolumeBinding (`plugins/volumebinding`, the checks of `binder.go`), without binding:
//! PreFilter requires every PersistentVolumeClaim the pod uses (`persistentVolumeClaim`
//! and generic `ephemeral` volumes) to exist, not to be lost or being deleted, and to be
//! bound; Filter requires the PersistentVolume of each bound claim to exist and its
//! `spec.nodeAffinity.required` to match the node's labels.
//!
//! Differences from upstream: there is no StorageClass data, so every unbound claim is
//! treated as `Immediate` (never `WaitForFirstConsumer`), and a claim counts as bound
//! when `spec.volumeName` is set (upstream also wants the `pv.kubernetes.io/bind-completed`
//! annotation of the PV controller). No dynamic provisioning, no PreBind/Reserve, no
//! scoring, no CSI translation, and PreFilter does not narrow the candidate nodes to a
//! local PV's hostnames (`GetEligibleNodes`).

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};

use crate::framework::{Code, FilterResult, NodeInfo, Snapshot, Status};
use crate::plugins::node_affinity::NodeSelector;
use crate::plugins::{node_labels, pod_name, pod_namespace};

pub(crate) const NAME: &str = "VolumeBinding";

/// The PreFilter reason for claims that are not bound.
pub(crate) const ERR_REASON_UNBOUND_IMMEDIATE: &str =
    "pod has unbound immediate PersistentVolumeClaims";
/// `ErrReasonNodeConflict`.
pub(crate) const ERR_REASON_NODE_CONFLICT: &str = "node(s) had volume node affinity conflict";
/// `ErrReasonPVNotExist`.
pub(crate) const ERR_REASON_PV_NOT_EXIST: &str =
    "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)";

/// A bound claim's volume as Filter checks it.
#[derive(Clone, Debug)]
enum BoundVolume {
    /// `spec.volumeName` names no known PersistentVolume.
    Missing,
    /// The PV's required node affinity.
    Affinity(NodeSelector),
}

/// What PreFilter found: the bound claims' volumes that constrain nodes, in the order of
/// the pod's volumes (the first failing one gives the reason, as in `checkBoundClaims`).
#[derive(Clone, Debug)]
pub(crate) struct PreFilterState {
    bound: Vec<BoundVolume>,
}

/// The controller owner reference's UID, if any (`metav1.GetControllerOf`).
fn controller_uid(pvc: &PersistentVolumeClaim) -> Option<&str> {
    pvc.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
        .map(|r| r.uid.as_str())
}

/// The claims of the pod's volumes (`podHasPVCs` + `GetPodVolumeClaims`), looked up in
/// the snapshot.
fn claims<'s>(pod: &Pod, snapshot: &'s Snapshot) -> Result<Vec<&'s PersistentVolumeClaim>, Status> {
    let unresolvable = |msg: String| Status::new(Code::UnschedulableAndUnresolvable, msg);
    let namespace = pod_namespace(pod);
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or(&[]);
    let mut found = Vec::new();
    for vol in volumes {
        let (claim_name, ephemeral) = if let Some(source) = &vol.persistent_volume_claim {
            (source.claim_name.clone(), false)
        } else if vol.ephemeral.is_some() {
            // ephemeral.VolumeClaimName
            (format!("{}-{}", pod_name(pod), vol.name), true)
        } else {
            continue;
        };
        let Some(pvc) = snapshot.persistent_volume_claim(namespace, &claim_name) else {
            return Err(unresolvable(if ephemeral {
                format!(
                    "waiting for ephemeral volume controller to create the persistentvolumeclaim {claim_name:?}"
                )
            } else {
                format!("persistentvolumeclaim {claim_name:?} not found")
            }));
        };
        if pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Lost") {
            return Err(unresolvable(format!(
                "persistentvolumeclaim {claim_name:?} bound to non-existent persistentvolume {:?}",
                volume_name(pvc)
            )));
        }
        if pvc.metadata.deletion_timestamp.is_some() {
            return Err(unresolvable(format!(
                "persistentvolumeclaim {claim_name:?} is being deleted"
            )));
        }
        // ephemeral.VolumeIsForPod
        if ephemeral && controller_uid(pvc) != Some(pod.metadata.uid.as_deref().unwrap_or_default())
        {
            return Err(unresolvable(format!(
                "PVC {namespace}/{claim_name} was not created for pod {namespace}/{} (pod is not owner)",
                pod_name(pod)
            )));
        }
        found.push(pvc);
    }
    Ok(found)
}

fn volume_name(pvc: &PersistentVolumeClaim) -> &str {
    pvc.spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .unwrap_or("")
}

fn required_affinity(pv: &PersistentVolume) -> Option<NodeSelector> {
    let required = pv
        .spec
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required
        .as_ref()?;
    Some(NodeSelector::parse(required))
}

/// PreFilter: `Ok(None)` (Skip) for a pod without claims or whose bound volumes do not
/// constrain nodes; a rejection for missing, lost, deleted or unbound claims.
pub(crate) fn pre_filter(pod: &Pod, snapshot: &Snapshot) -> Result<Option<PreFilterState>, Status> {
    let has_claim_volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .is_some_and(|v| {
            v.iter()
                .any(|v| v.persistent_volume_claim.is_some() || v.ephemeral.is_some())
        });
    if !has_claim_volumes {
        return Ok(None);
    }
    let claims = claims(pod, snapshot)?;
    if claims.iter().any(|c| volume_name(c).is_empty()) {
        return Err(Status::new(
            Code::UnschedulableAndUnresolvable,
            ERR_REASON_UNBOUND_IMMEDIATE,
        ));
    }
    let bound: Vec<BoundVolume> = claims
        .iter()
        .filter_map(|c| {
            match snapshot
                .persistent_volume(volume_name(c))
                .map(required_affinity)
            {
                None => Some(BoundVolume::Missing),
                Some(affinity) => affinity.map(BoundVolume::Affinity),
            }
        })
        .collect();
    Ok((!bound.is_empty()).then_some(PreFilterState { bound }))
}

/// Filter (`FindPodVolumes` for bound claims): every bound PV must exist and its node
/// affinity match the node's labels (`volume.CheckNodeAffinity`, which ignores
/// `matchFields`).
pub(crate) fn filter(state: &PreFilterState, node: &NodeInfo) -> FilterResult {
    let labels = node_labels(node.node());
    for volume in &state.bound {
        let reason = match volume {
            BoundVolume::Missing => ERR_REASON_PV_NOT_EXIST,
            BoundVolume::Affinity(selector) if !selector.matches_labels(labels) => {
                ERR_REASON_NODE_CONFLICT
            }
            BoundVolume::Affinity(_) => continue,
        };
        return Err(Status::new(Code::UnschedulableAndUnresolvable, reason));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
    use serde_json::json;

    use super::*;
    use crate::framework::{schedule, SchedulerConfig, Snapshot};
    use crate::plugins::testing::{from_json, node, pod, snapshot, spec};

    fn with_volumes(mut p: Pod, volumes: serde_json::Value) -> Pod {
        spec(&mut p).volumes = Some(from_json(volumes));
        p
    }

    fn claim_pod(claims: &[&str]) -> Pod {
        let volumes: Vec<serde_json::Value> = claims
            .iter()
            .enumerate()
            .map(|(i, c)| json!({"name": format!("v{i}"), "persistentVolumeClaim": {"claimName": c}}))
            .collect();
        with_volumes(pod("p", &[&[]]), json!(volumes))
    }

    fn pvc(name: &str, volume_name: &str) -> PersistentVolumeClaim {
        let mut spec = json!({});
        if !volume_name.is_empty() {
            spec = json!({"volumeName": volume_name});
        }
        from_json(json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": spec,
        }))
    }

    /// A PV whose node affinity requires `zone` in `zones` (no affinity when `None`).
    fn pv(name: &str, zones: Option<&[&str]>) -> PersistentVolume {
        let mut value = json!({"metadata": {"name": name}, "spec": {}});
        if let Some(zones) = zones {
            value["spec"]["nodeAffinity"] = json!({"required": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": zones}]}
            ]}});
        }
        from_json(value)
    }

    fn zoned(name: &str, zone: &str) -> Node {
        node(name, &[("cpu", "4"), ("pods", "10")], &[("zone", zone)])
    }

    fn cluster(pvcs: Vec<PersistentVolumeClaim>, pvs: Vec<PersistentVolume>) -> Snapshot {
        let mut s = snapshot(vec![zoned("node-a", "a"), zoned("node-b", "b")], vec![]);
        for c in pvcs {
            s.upsert_pvc(c);
        }
        for v in pvs {
            s.upsert_pv(v);
        }
        s
    }

    fn pre_filter_err(p: &Pod, s: &Snapshot) -> Status {
        match pre_filter(p, s) {
            Err(status) => status,
            Ok(state) => panic!("expected a PreFilter rejection, got {state:?}"),
        }
    }

    fn unresolvable(reason: &str) -> Status {
        Status::new(Code::UnschedulableAndUnresolvable, reason.to_string())
    }

    /// Filter results for node-a and node-b.
    fn filter_both(p: &Pod, s: &Snapshot) -> Vec<FilterResult> {
        let state = pre_filter(p, s).expect("PreFilter passes");
        ["node-a", "node-b"]
            .iter()
            .map(|n| {
                let info = s.node(n).expect("node exists");
                state.as_ref().map_or(Ok(()), |st| filter(st, info))
            })
            .collect()
    }

    #[test]
    fn pod_without_claims_skips() {
        let s = cluster(vec![], vec![]);
        assert!(pre_filter(&pod("p", &[&[]]), &s).unwrap().is_none());
        let p = with_volumes(pod("p", &[&[]]), json!([{"name": "tmp", "emptyDir": {}}]));
        assert!(pre_filter(&p, &s).unwrap().is_none());
        let result = schedule(&p, &s, &SchedulerConfig::default(), &mut 0);
        assert!(result.is_ok());
    }

    #[test]
    fn missing_claim_is_unresolvable() {
        let s = cluster(vec![], vec![]);
        assert_eq!(
            pre_filter_err(&claim_pod(&["data"]), &s),
            unresolvable("persistentvolumeclaim \"data\" not found")
        );
    }

    #[test]
    fn claim_being_deleted_or_lost() {
        let mut deleting = pvc("data", "pv-1");
        deleting.metadata.deletion_timestamp = Some(from_json(json!("2024-01-01T00:00:00Z")));
        let s = cluster(vec![deleting], vec![pv("pv-1", None)]);
        assert_eq!(
            pre_filter_err(&claim_pod(&["data"]), &s),
            unresolvable("persistentvolumeclaim \"data\" is being deleted")
        );

        let mut lost = pvc("data", "pv-1");
        lost.status = Some(from_json(json!({"phase": "Lost"})));
        let s = cluster(vec![lost], vec![]);
        assert_eq!(
            pre_filter_err(&claim_pod(&["data"]), &s),
            unresolvable(
                "persistentvolumeclaim \"data\" bound to non-existent persistentvolume \"pv-1\""
            )
        );
    }

    #[test]
    fn unbound_claim_is_immediate_and_unresolvable() {
        let s = cluster(vec![pvc("data", "")], vec![]);
        assert_eq!(
            pre_filter_err(&claim_pod(&["data"]), &s),
            unresolvable(ERR_REASON_UNBOUND_IMMEDIATE)
        );
        // Every claim is looked up before unbound ones are reported (as upstream's
        // podHasPVCs runs before GetPodVolumeClaims).
        assert_eq!(
            pre_filter_err(&claim_pod(&["data", "other"]), &s),
            unresolvable("persistentvolumeclaim \"other\" not found")
        );
    }

    #[test]
    fn ephemeral_volumes_use_the_pod_named_claim() {
        let p = with_volumes(
            pod("p", &[&[]]),
            json!([{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}}]),
        );
        let s = cluster(vec![], vec![]);
        assert_eq!(
            pre_filter_err(&p, &s),
            unresolvable(
                "waiting for ephemeral volume controller to create the persistentvolumeclaim \"p-scratch\""
            )
        );
        let s = cluster(
            vec![pvc("p-scratch", "pv-1")],
            vec![pv("pv-1", Some(&["a"]))],
        );
        assert_eq!(
            pre_filter_err(&p, &s),
            unresolvable(
                "PVC default/p-scratch was not created for pod default/p (pod is not owner)"
            )
        );
        let mut owned = pvc("p-scratch", "pv-1");
        owned.metadata.owner_references = Some(from_json(json!([{
            "apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "uid-p", "controller": true
        }])));
        let s = cluster(vec![owned], vec![pv("pv-1", Some(&["a"]))]);
        let results = filter_both(&p, &s);
        assert_eq!(results[0], Ok(()));
        assert_eq!(results[1], Err(unresolvable(ERR_REASON_NODE_CONFLICT)));
    }

    #[test]
    fn bound_pv_node_affinity_match_and_mismatch() {
        let s = cluster(vec![pvc("data", "pv-1")], vec![pv("pv-1", Some(&["a"]))]);
        let results = filter_both(&claim_pod(&["data"]), &s);
        assert_eq!(results[0], Ok(()));
        assert_eq!(results[1], Err(unresolvable(ERR_REASON_NODE_CONFLICT)));

        // A PV without node affinity fits everywhere, and PreFilter skips Filter.
        let s = cluster(vec![pvc("data", "pv-1")], vec![pv("pv-1", None)]);
        assert!(pre_filter(&claim_pod(&["data"]), &s).unwrap().is_none());
    }

    #[test]
    fn pv_affinity_ignores_match_fields_like_check_node_affinity() {
        let mut volume = pv("pv-1", None);
        volume
            .spec
            .get_or_insert_with(Default::default)
            .node_affinity = Some(from_json(json!({
            "required": {"nodeSelectorTerms": [{
                "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-b"]}],
                "matchExpressions": [{"key": "zone", "operator": "Exists"}]
            }]}
        })));
        let s = cluster(vec![pvc("data", "pv-1")], vec![volume]);
        assert_eq!(filter_both(&claim_pod(&["data"]), &s), vec![Ok(()), Ok(())]);
    }

    #[test]
    fn missing_pv_rejects_every_node() {
        let s = cluster(vec![pvc("data", "pv-1")], vec![]);
        let results = filter_both(&claim_pod(&["data"]), &s);
        assert_eq!(results, vec![Err(unresolvable(ERR_REASON_PV_NOT_EXIST)); 2]);
        // The first failing claim gives the reason.
        let s = cluster(
            vec![pvc("data", "pv-1"), pvc("logs", "pv-2")],
            vec![pv("pv-2", Some(&["a"]))],
        );
        let results = filter_both(&claim_pod(&["logs", "data"]), &s);
        assert_eq!(results[0], Err(unresolvable(ERR_REASON_PV_NOT_EXIST)));
        assert_eq!(results[1], Err(unresolvable(ERR_REASON_NODE_CONFLICT)));
    }

    #[test]
    fn snapshot_tracks_claims_and_volumes() {
        let mut s = cluster(vec![pvc("data", "")], vec![pv("pv-1", Some(&["a"]))]);
        assert!(s.persistent_volume_claim("default", "data").is_some());
        assert!(s.persistent_volume_claim("other", "data").is_none());
        s.upsert_pvc(pvc("data", "pv-1"));
        assert_eq!(
            s.persistent_volume_claim("default", "data")
                .map(volume_name),
            Some("pv-1")
        );
        let p = claim_pod(&["data"]);
        let result = schedule(&p, &s, &SchedulerConfig::default(), &mut 0);
        assert_eq!(result.map(|r| r.node), Ok("node-a".to_string()));

        assert!(s.remove_pv("pv-1"));
        assert!(!s.remove_pv("pv-1"));
        assert!(s.persistent_volume("pv-1").is_none());
        assert_eq!(
            filter_both(&p, &s),
            vec![Err(unresolvable(ERR_REASON_PV_NOT_EXIST)); 2]
        );
        assert!(s.remove_pvc("default", "data"));
        assert!(!s.remove_pvc("default", "data"));
        assert_eq!(
            pre_filter_err(&p, &s),
            unresolvable("persistentvolumeclaim \"data\" not found")
        );
    }

    fn fit_error_message(p: &Pod, s: &Snapshot) -> (String, bool) {
        let mut fit = match schedule(p, s, &SchedulerConfig::default(), &mut 0) {
            Err(fit) => fit,
            Ok(result) => panic!("expected a FitError, got {result:?}"),
        };
        assert!(fit.unschedulable_plugins().contains(NAME));
        let may_help = fit.preemption_may_help();
        match crate::preemption::preempt(p, s, &fit) {
            Err(message) => fit.set_post_filter_message(message),
            Ok(p) => panic!("unexpected preemption {p:?}"),
        }
        (fit.to_string(), may_help)
    }

    #[test]
    fn fit_error_messages() {
        let s = cluster(vec![pvc("data", "pv-1")], vec![pv("pv-1", Some(&["c"]))]);
        assert_eq!(
            fit_error_message(&claim_pod(&["data"]), &s),
            (
                "0/2 nodes are available: 2 node(s) had volume node affinity conflict. \
                 preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
                    .to_string(),
                false
            )
        );
        let s = cluster(vec![pvc("data", "")], vec![]);
        assert_eq!(
            fit_error_message(&claim_pod(&["data"]), &s),
            (
                "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims. \
                 preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
                    .to_string(),
                false
            )
        );
        let s = cluster(vec![], vec![]);
        assert_eq!(
            fit_error_message(&claim_pod(&["data"]), &s).0,
            "0/2 nodes are available: persistentvolumeclaim \"data\" not found. \
             preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
        );
    }
}
