//! Behaviour tests of the Deployment planner, on upstream's cases
//! (`deployment_controller_test.go`, `sync_test.go`, `rolling_test.go`, `recreate_test.go`,
//! `progress_test.go`).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};

use super::util::{available_replicas, spec_replicas, status_replicas};
use super::*;

const NOW: &str = "2025-03-01T12:00:00Z";

fn time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test time")
        .with_timezone(&Utc)
}

fn template(image: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": image}]}
    })
}

/// A Deployment `web` (uid `d-uid`, generation 1) running `image`.
fn deployment(replicas: i32, strategy: Value, image: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "uid": "d-uid", "generation": 1},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": template(image),
            "strategy": strategy,
        }
    }))
    .expect("deployment")
}

fn rolling(max_surge: Value, max_unavailable: Value) -> Value {
    json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": max_surge, "maxUnavailable": max_unavailable}})
}

/// A ReplicaSet owned by `web`, running `image`, with `replicas` pods of which `available`
/// are available.
fn owned_rs(name: &str, image: &str, replicas: i32, available: i32, created: &str) -> ReplicaSet {
    let mut tpl = template(image);
    tpl["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL] = json!(name);
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": format!("{name}-uid"),
            "generation": 1,
            "creationTimestamp": created,
            "labels": {"app": "web", POD_TEMPLATE_HASH_LABEL: name},
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "d-uid",
                "controller": true, "blockOwnerDeletion": true
            }]
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web", POD_TEMPLATE_HASH_LABEL: name}},
            "template": tpl
        },
        "status": {
            "replicas": replicas,
            "readyReplicas": available,
            "availableReplicas": available,
            "observedGeneration": 1,
            "terminatingReplicas": 0
        }
    }))
    .expect("replica set")
}

fn annotate(mut rs: ReplicaSet, pairs: &[(&str, &str)]) -> ReplicaSet {
    let map = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    for (k, v) in pairs {
        map.insert((*k).to_string(), (*v).to_string());
    }
    rs
}

/// The annotations a ReplicaSet scaled by a Deployment of `desired` replicas carries.
fn scaled_for(rs: ReplicaSet, revision: &str, desired: i32, max: i32) -> ReplicaSet {
    annotate(
        rs,
        &[
            (REVISION_ANNOTATION, revision),
            (DESIRED_REPLICAS_ANNOTATION, &desired.to_string()),
            (MAX_REPLICAS_ANNOTATION, &max.to_string()),
        ],
    )
}

fn pod(name: &str, owner: &str, phase: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {
            "name": name, "namespace": "default", "labels": {"app": "web"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner,
                "uid": format!("{owner}-uid"), "controller": true}]
        },
        "status": {"phase": phase}
    }))
    .expect("pod")
}

fn replica_updates(plan: &DeploymentPlan, rs: &str) -> Vec<i32> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::UpdateReplicaSet {
                name,
                replicas: Some(r),
                ..
            } if name == rs => Some(*r),
            _ => None,
        })
        .collect()
}

fn created(plan: &DeploymentPlan) -> Vec<&ReplicaSet> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::CreateReplicaSet(rs) => Some(rs),
            _ => None,
        })
        .collect()
}

fn new_status(plan: &DeploymentPlan) -> Option<&DeploymentStatus> {
    plan.actions.iter().find_map(|a| match a {
        Action::UpdateStatus(s) => Some(s),
        _ => None,
    })
}

fn events(plan: &DeploymentPlan) -> Vec<String> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Event {
                type_,
                reason,
                message,
            } => Some(format!("{type_} {reason} {message}")),
            _ => None,
        })
        .collect()
}

fn condition<'a>(status: &'a DeploymentStatus, type_: &str) -> &'a DeploymentCondition {
    status
        .conditions
        .as_ref()
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {status:?}"))
}

fn at(s: &str) -> Option<Time> {
    Some(Time(s.parse::<Timestamp>().expect("timestamp")))
}

/// An in-memory cluster: applies plans like the reconciler would and plays the ReplicaSet
/// controller, whose pods become available one step after they are created.
struct Cluster {
    d: Deployment,
    rss: Vec<ReplicaSet>,
    pods: Vec<Pod>,
    now: DateTime<Utc>,
    next_uid: u32,
    events: Vec<String>,
}

impl Cluster {
    fn new(d: Deployment) -> Self {
        Cluster {
            d,
            rss: Vec::new(),
            pods: Vec::new(),
            now: time(NOW),
            next_uid: 0,
            events: Vec::new(),
        }
    }

    fn plan(&self) -> DeploymentPlan {
        plan(&self.d, &self.rss, &self.pods, self.now)
    }

    fn rs(&self, name: &str) -> &ReplicaSet {
        self.rss
            .iter()
            .find(|rs| rs.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no replica set {name}"))
    }

    fn apply(&mut self, plan: &DeploymentPlan) {
        for action in &plan.actions {
            match action {
                Action::AdoptReplicaSet { name } => {
                    let owner: OwnerReference = serde_json::from_value(json!({
                        "apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                        "uid": "d-uid", "controller": true, "blockOwnerDeletion": true
                    }))
                    .expect("owner");
                    let rs = self.rs_mut(name);
                    rs.metadata
                        .owner_references
                        .get_or_insert_with(Vec::new)
                        .push(owner);
                }
                Action::ReleaseReplicaSet { name } => {
                    let rs = self.rs_mut(name);
                    if let Some(refs) = rs.metadata.owner_references.as_mut() {
                        refs.retain(|r| r.uid != "d-uid");
                    }
                }
                Action::CreateReplicaSet(rs) => {
                    let mut rs = rs.clone();
                    assert!(
                        self.rss.iter().all(|o| o.metadata.name != rs.metadata.name),
                        "AlreadyExists: {:?}",
                        rs.metadata.name
                    );
                    self.next_uid += 1;
                    rs.metadata.uid = Some(format!("uid-{}", self.next_uid));
                    rs.metadata.generation = Some(1);
                    rs.metadata.creation_timestamp = Some(Time(
                        Timestamp::from_second(self.now.timestamp()).expect("ts"),
                    ));
                    self.rss.push(rs);
                }
                Action::UpdateReplicaSet {
                    name,
                    replicas,
                    annotations,
                } => {
                    let rs = self.rs_mut(name);
                    if let Some(r) = replicas {
                        rs.spec.as_mut().expect("spec").replicas = Some(*r);
                        rs.metadata.generation = Some(rs.metadata.generation.unwrap_or(0) + 1);
                    }
                    let map = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
                    for (k, v) in annotations {
                        match v {
                            Some(v) => map.insert(k.clone(), v.clone()),
                            None => map.remove(k),
                        };
                    }
                }
                Action::DeleteReplicaSet { name, uid } => {
                    assert_eq!(self.rs(name).metadata.uid.as_deref(), Some(uid.as_str()));
                    self.rss
                        .retain(|rs| rs.metadata.name.as_deref() != Some(name.as_str()));
                }
                Action::UpdateDeploymentAnnotations(changes) => {
                    let map = self
                        .d
                        .metadata
                        .annotations
                        .get_or_insert_with(BTreeMap::new);
                    for (k, v) in changes {
                        match v {
                            Some(v) => map.insert(k.clone(), v.clone()),
                            None => map.remove(k),
                        };
                    }
                }
                Action::UpdateStatus(status) => self.d.status = Some(status.clone()),
                Action::Event { message, .. } => self.events.push(message.clone()),
            }
        }
    }

    fn rs_mut(&mut self, name: &str) -> &mut ReplicaSet {
        self.rss
            .iter_mut()
            .find(|rs| rs.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no replica set {name}"))
    }

    /// The ReplicaSet controller: pods follow spec.replicas; pods that existed at the
    /// previous step are available now (scale-down removes unavailable pods first).
    fn tick(&mut self) {
        for rs in &mut self.rss {
            let spec = spec_replicas(rs);
            let generation = rs.metadata.generation;
            let status = rs.status.get_or_insert_with(Default::default);
            let available = status.replicas.min(spec);
            status.replicas = spec;
            status.available_replicas = Some(available);
            status.ready_replicas = Some(available);
            status.observed_generation = generation;
            status.terminating_replicas = Some(0);
        }
        self.now += chrono::Duration::seconds(5);
    }

    fn step(&mut self) -> DeploymentPlan {
        let plan = self.plan();
        self.apply(&plan);
        plan
    }

    fn change_image(&mut self, image: &str) {
        let spec = self.d.spec.as_mut().expect("spec");
        spec.template = serde_json::from_value(template(image)).expect("template");
        self.d.metadata.generation = Some(self.d.metadata.generation.unwrap_or(0) + 1);
    }

    /// Plans, applies and lets pods come up until nothing changes any more.
    fn converge(&mut self) {
        for _ in 0..100 {
            let plan = self.step();
            self.tick();
            if plan.actions.is_empty() {
                return;
            }
        }
        panic!("no convergence: {:?}", self.plan());
    }

    fn total(&self, f: impl Fn(&ReplicaSet) -> i32) -> i32 {
        self.rss.iter().map(f).sum()
    }
}

// -----------------------------------------------------------------------------------------

#[test]
fn first_sync_creates_the_replica_set_with_full_size_and_revision_1() {
    let d = deployment(10, json!({}), "nginx:1");
    let plan = plan(&d, &[], &[], time(NOW));

    let created = created(&plan);
    assert_eq!(created.len(), 1);
    let rs = created[0];
    let hash = pod_template_hash(&d.spec.as_ref().expect("spec").template, None);
    assert_eq!(
        rs.metadata.name.as_deref(),
        Some(format!("web-{hash}").as_str())
    );
    assert_eq!(rs.metadata.namespace.as_deref(), Some("default"));
    let spec = rs.spec.as_ref().expect("spec");
    assert_eq!(spec.replicas, Some(10));
    let labels = BTreeMap::from([
        ("app".to_string(), "web".to_string()),
        (POD_TEMPLATE_HASH_LABEL.to_string(), hash.clone()),
    ]);
    assert_eq!(rs.metadata.labels.as_ref(), Some(&labels));
    assert_eq!(spec.selector.match_labels.as_ref(), Some(&labels));
    let template_labels = spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.as_ref());
    assert_eq!(template_labels, Some(&labels));
    let annotations = rs.metadata.annotations.as_ref().expect("annotations");
    assert_eq!(annotations[REVISION_ANNOTATION], "1");
    assert_eq!(annotations[DESIRED_REPLICAS_ANNOTATION], "10");
    // 25% surge of 10 rounds up to 3.
    assert_eq!(annotations[MAX_REPLICAS_ANNOTATION], "13");
    let owner = &rs.metadata.owner_references.as_ref().expect("owners")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
        ("Deployment", "web", "d-uid")
    );
    assert_eq!(owner.controller, Some(true));
    assert_eq!(owner.block_owner_deletion, Some(true));

    assert!(plan
        .actions
        .contains(&Action::UpdateDeploymentAnnotations(BTreeMap::from([(
            REVISION_ANNOTATION.to_string(),
            Some("1".to_string())
        )]))));
    assert_eq!(
        events(&plan),
        vec![format!(
            "Normal ScalingReplicaSet Scaled up replica set web-{hash} from 0 to 10"
        )]
    );

    // The status comes last, with upstream's condition texts.
    let Some(Action::UpdateStatus(status)) = plan.actions.last() else {
        panic!("status update last: {plan:?}");
    };
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(status.replicas, Some(0));
    assert_eq!(status.unavailable_replicas, Some(10));
    let progressing = condition(status, CONDITION_PROGRESSING);
    assert_eq!(progressing.status, "True");
    assert_eq!(
        progressing.reason.as_deref(),
        Some(REASON_NEW_REPLICA_SET_CREATED)
    );
    assert_eq!(
        progressing.message.as_deref(),
        Some(format!("Created new replica set \"web-{hash}\"").as_str())
    );
    assert_eq!(progressing.last_update_time, at(NOW));
    let available = condition(status, CONDITION_AVAILABLE);
    assert_eq!(available.status, "False");
    assert_eq!(
        available.reason.as_deref(),
        Some(REASON_MINIMUM_REPLICAS_UNAVAILABLE)
    );
    assert_eq!(
        available.message.as_deref(),
        Some("Deployment does not have minimum availability.")
    );
    // Rollout in progress: look again when the 600s deadline runs out.
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(601)));
}

#[test]
fn change_cause_is_copied_but_not_the_last_applied_configuration() {
    let mut d = deployment(1, json!({}), "nginx:1");
    d.metadata.annotations = Some(BTreeMap::from([
        (
            "kubernetes.io/change-cause".to_string(),
            "first".to_string(),
        ),
        (
            "kubectl.kubernetes.io/last-applied-configuration".to_string(),
            "{}".to_string(),
        ),
        (REVISION_ANNOTATION.to_string(), "7".to_string()),
    ]));
    let plan = plan(&d, &[], &[], time(NOW));
    let annotations = created(&plan)[0]
        .metadata
        .annotations
        .clone()
        .expect("annotations");
    assert_eq!(annotations["kubernetes.io/change-cause"], "first");
    assert!(!annotations.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
    assert_eq!(annotations[REVISION_ANNOTATION], "1");
}

#[test]
fn template_change_creates_revision_2_within_surge_and_unavailable_limits() {
    // replicas 10, maxSurge 25% (→3), maxUnavailable 25% (→2).
    let mut d = deployment(10, rolling(json!("25%"), json!("25%")), "nginx:2");
    d.metadata.annotations = Some(BTreeMap::from([(
        REVISION_ANNOTATION.to_string(),
        "1".to_string(),
    )]));
    let old = scaled_for(
        owned_rs("web-old", "nginx:1", 10, 10, "2025-01-01T00:00:00Z"),
        "1",
        10,
        13,
    );
    let plan = plan(&d, &[old], &[], time(NOW));

    let created = created(&plan);
    assert_eq!(created.len(), 1);
    let new_name = created[0].metadata.name.clone().expect("name");
    assert_eq!(created[0].spec.as_ref().and_then(|s| s.replicas), Some(3));
    assert_eq!(
        created[0].metadata.annotations.as_ref().expect("a")[REVISION_ANNOTATION],
        "2"
    );
    // 10 old + 3 new = 13 pods; of the 10 available, 2 may go.
    assert_eq!(replica_updates(&plan, "web-old"), vec![8]);
    assert!(plan
        .actions
        .contains(&Action::UpdateDeploymentAnnotations(BTreeMap::from([(
            REVISION_ANNOTATION.to_string(),
            Some("2".to_string())
        )]))));
    assert_eq!(
        events(&plan),
        vec![
            format!("Normal ScalingReplicaSet Scaled up replica set {new_name} from 0 to 3"),
            "Normal ScalingReplicaSet Scaled down replica set web-old from 10 to 8".to_string(),
        ]
    );
}

#[test]
fn a_whole_rolling_update_respects_max_surge_and_max_unavailable() {
    let mut c = Cluster::new(deployment(
        10,
        rolling(json!("25%"), json!("25%")),
        "nginx:1",
    ));
    c.converge();
    assert_eq!(c.rss.len(), 1);
    let first = c.rss[0].metadata.name.clone().expect("name");
    assert_eq!(c.total(available_replicas), 10);

    c.change_image("nginx:2");
    let mut saw_requeue = false;
    for _ in 0..100 {
        let plan = c.step();
        saw_requeue |= plan.requeue_after.is_some();
        assert!(
            c.total(spec_replicas) <= 13,
            "more than replicas+maxSurge: {:?}",
            c.rss
        );
        c.tick();
        assert!(c.total(status_replicas) <= 13);
        assert!(
            c.total(available_replicas) >= 8,
            "fewer than replicas-maxUnavailable available: {:?}",
            c.rss
        );
        if plan.actions.is_empty() {
            break;
        }
    }
    assert!(
        saw_requeue,
        "a rollout in progress requeues for its deadline"
    );
    assert_eq!(c.rss.len(), 2);
    assert_eq!(spec_replicas(c.rs(&first)), 0);
    let new = c
        .rss
        .iter()
        .find(|rs| rs.metadata.name.as_deref() != Some(first.as_str()))
        .expect("new");
    let new_name = new.metadata.name.clone().expect("name");
    assert_eq!(spec_replicas(new), 10);
    assert_eq!(available_replicas(new), 10);
    assert_eq!(
        new.metadata.annotations.as_ref().expect("a")[REVISION_ANNOTATION],
        "2"
    );
    assert_eq!(
        c.rs(&first).metadata.annotations.as_ref().expect("a")[REVISION_ANNOTATION],
        "1"
    );
    assert_eq!(
        c.d.metadata.annotations.as_ref().expect("a")[REVISION_ANNOTATION],
        "2"
    );

    // What `kubectl rollout status` reads.
    let status = c.d.status.clone().expect("status");
    assert_eq!(status.observed_generation, Some(2));
    assert_eq!(status.replicas, Some(10));
    assert_eq!(status.updated_replicas, Some(10));
    assert_eq!(status.available_replicas, Some(10));
    assert_eq!(status.ready_replicas, Some(10));
    assert_eq!(status.unavailable_replicas, Some(0));
    assert_eq!(status.terminating_replicas, Some(0));
    let progressing = condition(&status, CONDITION_PROGRESSING);
    assert_eq!(
        (progressing.status.as_str(), progressing.reason.as_deref()),
        ("True", Some(REASON_NEW_REPLICA_SET_AVAILABLE))
    );
    assert_eq!(
        progressing.message.as_deref(),
        Some(format!("ReplicaSet \"{new_name}\" has successfully progressed.").as_str())
    );
    let available = condition(&status, CONDITION_AVAILABLE);
    assert_eq!(
        (available.status.as_str(), available.reason.as_deref()),
        ("True", Some(REASON_MINIMUM_REPLICAS_AVAILABLE))
    );
    assert_eq!(
        available.message.as_deref(),
        Some("Deployment has minimum availability.")
    );

    // Converged: nothing to do, nothing to wait for.
    let again = c.plan();
    assert_eq!(again, DeploymentPlan::default());
    // The old ReplicaSet went 10 → 8 → 5 → 3 → 0 while the new one went 0 → 3 → 5 → 8 → 10.
    let scaled_down: Vec<&String> = c
        .events
        .iter()
        .filter(|e| e.starts_with(&format!("Scaled down replica set {first} ")))
        .collect();
    assert_eq!(
        scaled_down,
        [
            &format!("Scaled down replica set {first} from 10 to 8"),
            &format!("Scaled down replica set {first} from 8 to 5"),
            &format!("Scaled down replica set {first} from 5 to 3"),
            &format!("Scaled down replica set {first} from 3 to 0"),
        ]
    );
    assert!(c
        .events
        .contains(&format!("Scaled up replica set {new_name} from 8 to 10")));
}

#[test]
fn reconcile_new_replica_set_cases() {
    // (replicas, maxSurge, old, new, expected new size) from upstream's rolling_test.go.
    let cases = [
        (10, 0, 10, 0, None),
        (10, 2, 10, 0, Some(2)),
        (10, 2, 5, 0, Some(7)),
        (10, 2, 10, 2, None),
        (2, 0, 2, 4, Some(2)),
    ];
    for (replicas, surge, old, new, expected) in cases {
        let d = deployment(replicas, rolling(json!(surge), json!(0)), "nginx:2");
        let max = replicas + surge;
        let old_rs = scaled_for(
            owned_rs("web-old", "nginx:1", old, old, "2025-01-01T00:00:00Z"),
            "1",
            replicas,
            max,
        );
        let new_rs = scaled_for(
            owned_rs("web-new", "nginx:2", new, 0, "2025-02-01T00:00:00Z"),
            "2",
            replicas,
            max,
        );
        let plan = plan(&d, &[old_rs, new_rs], &[], time(NOW));
        assert_eq!(
            replica_updates(&plan, "web-new").first().copied(),
            expected,
            "case {replicas} {surge} {old} {new}: {plan:?}"
        );
        assert!(created(&plan).is_empty());
    }
}

#[test]
fn reconcile_old_replica_sets_cases() {
    // (replicas, maxUnavailable, old, new, old available, new available, old sizes) after
    // upstream's rolling_test.go; maxSurge 0.
    type Case = (i32, i32, i32, i32, i32, i32, Vec<i32>);
    let cases: [Case; 5] = [
        (10, 0, 10, 0, 10, 0, vec![9]),
        (10, 2, 10, 0, 10, 0, vec![8]),
        // The 2 unhealthy replicas are cleaned up, nothing else may go.
        (10, 2, 10, 0, 8, 0, vec![8]),
        // 1 unhealthy cleaned up, then 1 available scaled down.
        (10, 2, 10, 0, 9, 0, vec![9, 8]),
        // The new ReplicaSet's unavailable pods block further scale-down.
        (10, 2, 8, 2, 8, 0, vec![]),
    ];
    for (replicas, unavailable, old, new, old_avail, new_avail, expected) in cases {
        let d = deployment(replicas, rolling(json!(0), json!(unavailable)), "nginx:2");
        let old_rs = scaled_for(
            owned_rs("web-old", "nginx:1", old, old_avail, "2025-01-01T00:00:00Z"),
            "1",
            replicas,
            replicas,
        );
        let new_rs = scaled_for(
            owned_rs("web-new", "nginx:2", new, new_avail, "2025-02-01T00:00:00Z"),
            "2",
            replicas,
            replicas,
        );
        let plan = plan(&d, &[old_rs, new_rs], &[], time(NOW));
        assert_eq!(
            replica_updates(&plan, "web-old"),
            expected,
            "case {replicas} {unavailable} {old} {new} {old_avail}: {plan:?}"
        );
        assert!(replica_updates(&plan, "web-new").is_empty());
    }
}

#[test]
fn recreate_scales_old_down_waits_for_pods_then_creates_the_new_one() {
    let d = deployment(3, json!({"type": "Recreate"}), "nginx:2");
    let old = scaled_for(
        owned_rs("web-old", "nginx:1", 3, 3, "2025-01-01T00:00:00Z"),
        "1",
        3,
        3,
    );
    let running = vec![
        pod("p1", "web-old", "Running"),
        pod("p2", "web-old", "Running"),
        pod("p3", "web-old", "Pending"),
    ];

    // 1. Old ReplicaSet to 0, nothing new yet.
    let first = plan(&d, std::slice::from_ref(&old), &running, time(NOW));
    assert_eq!(replica_updates(&first, "web-old"), vec![0]);
    assert!(created(&first).is_empty());
    assert_eq!(
        events(&first),
        vec!["Normal ScalingReplicaSet Scaled down replica set web-old from 3 to 0"]
    );

    // 2. Scaled down, but its pods still run (or it still counts them): wait.
    let mut scaled = old.clone();
    scaled.spec.as_mut().expect("spec").replicas = Some(0);
    let waiting = plan(&d, std::slice::from_ref(&scaled), &running, time(NOW));
    assert!(created(&waiting).is_empty(), "{waiting:?}");
    assert!(replica_updates(&waiting, "web-old").is_empty());
    scaled.status.as_mut().expect("status").replicas = 0;
    let still = plan(&d, std::slice::from_ref(&scaled), &running, time(NOW));
    assert!(created(&still).is_empty(), "{still:?}");
    let unknown = vec![pod("p1", "web-old", "Unknown")];
    assert!(created(&plan(
        &d,
        std::slice::from_ref(&scaled),
        &unknown,
        time(NOW)
    ))
    .is_empty());

    // 3. Only terminal pods left: the new ReplicaSet at full size.
    let done = vec![
        pod("p1", "web-old", "Succeeded"),
        pod("p2", "web-old", "Failed"),
    ];
    let last = plan(&d, std::slice::from_ref(&scaled), &done, time(NOW));
    let created = created(&last);
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].spec.as_ref().and_then(|s| s.replicas), Some(3));
    let annotations = created[0].metadata.annotations.as_ref().expect("a");
    assert_eq!(annotations[REVISION_ANNOTATION], "2");
    assert_eq!(
        annotations[MAX_REPLICAS_ANNOTATION], "3",
        "no surge for Recreate"
    );
}

#[test]
fn recreate_never_runs_old_and_new_pods_together() {
    let mut c = Cluster::new(deployment(4, json!({"type": "Recreate"}), "nginx:1"));
    c.converge();
    c.change_image("nginx:2");
    for _ in 0..50 {
        let plan = c.step();
        let with_pods = c.rss.iter().filter(|rs| spec_replicas(rs) > 0).count();
        assert!(with_pods <= 1, "old and new both scaled up: {:?}", c.rss);
        c.tick();
        if plan.actions.is_empty() {
            break;
        }
    }
    assert_eq!(c.rss.len(), 2);
    assert_eq!(c.total(spec_replicas), 4);
    let status = c.d.status.clone().expect("status");
    assert_eq!(status.updated_replicas, Some(4));
    assert_eq!(status.available_replicas, Some(4));
}

#[test]
fn proportional_scaling_during_a_rollout() {
    // (old deployment size, new size, new RS, old RSs) → expected sizes, from upstream's
    // sync_test.go TestScale; maxSurge 0 and maxUnavailable 0 as there.
    type Sizes = Vec<(&'static str, i32, &'static str)>;
    let cases: [(i32, i32, Sizes, Vec<i32>); 5] = [
        (
            5,
            10,
            vec![
                ("foo-v2", 2, "2025-02-02T00:00:00Z"),
                ("foo-v1", 3, "2025-02-01T00:00:00Z"),
            ],
            vec![4, 6],
        ),
        (
            5,
            3,
            vec![
                ("foo-v2", 2, "2025-02-02T00:00:00Z"),
                ("foo-v1", 3, "2025-02-01T00:00:00Z"),
            ],
            vec![1, 2],
        ),
        (
            9,
            4,
            vec![
                ("foo-v2", 8, "2025-02-02T00:00:00Z"),
                ("foo-v1", 1, "2025-02-01T00:00:00Z"),
            ],
            vec![4, 0],
        ),
        (
            7,
            10,
            vec![
                ("foo-v3", 2, "2025-02-03T00:00:00Z"),
                ("foo-v2", 3, "2025-02-02T00:00:00Z"),
                ("foo-v1", 2, "2025-02-01T00:00:00Z"),
            ],
            vec![3, 4, 3],
        ),
        (
            13,
            8,
            vec![
                ("foo-v3", 2, "2025-02-03T00:00:00Z"),
                ("foo-v2", 8, "2025-02-02T00:00:00Z"),
                ("foo-v1", 3, "2025-02-01T00:00:00Z"),
            ],
            vec![1, 5, 2],
        ),
    ];
    for (before, after, sets, expected) in cases {
        let d = deployment(after, rolling(json!(0), json!(0)), "nginx:new");
        let rss: Vec<ReplicaSet> = sets
            .iter()
            .enumerate()
            .map(|(k, (name, size, created))| {
                let image = if k == 0 { "nginx:new" } else { name };
                let revision = (sets.len() - k).to_string();
                scaled_for(
                    owned_rs(name, image, *size, *size, created),
                    &revision,
                    before,
                    before,
                )
            })
            .collect();
        let plan = plan(&d, &rss, &[], time(NOW));
        for ((name, size, _), want) in sets.iter().zip(&expected) {
            let got = replica_updates(&plan, name)
                .last()
                .copied()
                .unwrap_or(*size);
            assert_eq!(got, *want, "{before}→{after}: {name} in {plan:?}");
        }
        assert!(created(&plan).is_empty(), "scaling does not roll out");
        // Every active ReplicaSet records the new size.
        for (name, size, _) in &sets {
            if *size == 0 {
                continue;
            }
            let recorded = plan.actions.iter().any(|a| {
                matches!(a,
                Action::UpdateReplicaSet { name: n, annotations, .. }
                    if n == name
                        && annotations.get(DESIRED_REPLICAS_ANNOTATION)
                            == Some(&Some(after.to_string())))
            });
            assert!(recorded, "{name} records desired {after}: {plan:?}");
        }
    }
}

#[test]
fn a_paused_deployment_scales_but_does_not_roll_out() {
    let mut d = deployment(5, json!({}), "nginx:2");
    d.spec.as_mut().expect("spec").paused = Some(true);
    let old = scaled_for(
        owned_rs("web-old", "nginx:1", 3, 3, "2025-01-01T00:00:00Z"),
        "1",
        3,
        4,
    );
    let plan = plan(&d, &[old], &[], time(NOW));
    assert!(created(&plan).is_empty());
    assert_eq!(replica_updates(&plan, "web-old"), vec![5]);
    assert!(plan.actions.contains(&Action::UpdateReplicaSet {
        name: "web-old".to_string(),
        replicas: Some(5),
        annotations: BTreeMap::from([
            (
                DESIRED_REPLICAS_ANNOTATION.to_string(),
                Some("5".to_string())
            ),
            // 25% surge of 5 rounds up to 2.
            (MAX_REPLICAS_ANNOTATION.to_string(), Some("7".to_string())),
        ]),
    }));
    let status = new_status(&plan).expect("status");
    let progressing = condition(status, CONDITION_PROGRESSING);
    assert_eq!(progressing.status, "Unknown");
    assert_eq!(
        progressing.reason.as_deref(),
        Some(REASON_DEPLOYMENT_PAUSED)
    );
    assert_eq!(progressing.message.as_deref(), Some("Deployment is paused"));
    assert_eq!(plan.requeue_after, None);
}

#[test]
fn resuming_records_deployment_resumed() {
    let mut d = deployment(3, json!({}), "nginx:1");
    d.status = Some(
        serde_json::from_value(json!({
            "observedGeneration": 1, "replicas": 3, "updatedReplicas": 3,
            "readyReplicas": 1, "availableReplicas": 1, "unavailableReplicas": 2,
            "terminatingReplicas": 0,
            "conditions": [{"type": "Progressing", "status": "Unknown",
                "reason": "DeploymentPaused", "message": "Deployment is paused",
                "lastUpdateTime": "2025-01-01T00:00:00Z",
                "lastTransitionTime": "2025-01-01T00:00:00Z"}]
        }))
        .expect("status"),
    );
    let rs = scaled_for(
        owned_rs("web-1", "nginx:1", 3, 1, "2025-01-01T00:00:00Z"),
        "1",
        3,
        4,
    );
    let plan = plan(&d, &[rs], &[], time(NOW));
    let status = new_status(&plan).expect("status");
    let progressing = condition(status, CONDITION_PROGRESSING);
    assert_eq!(
        (progressing.status.as_str(), progressing.reason.as_deref()),
        ("Unknown", Some(REASON_DEPLOYMENT_RESUMED))
    );
    assert_eq!(
        progressing.message.as_deref(),
        Some("Deployment is resumed")
    );
    assert_eq!(progressing.last_update_time, at(NOW));
    // The deadline counts from the resume.
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(601)));
}

#[test]
fn old_replica_sets_beyond_the_history_limit_are_deleted_oldest_first() {
    let mut d = deployment(2, json!({}), "nginx:6");
    d.spec.as_mut().expect("spec").revision_history_limit = Some(2);
    d.metadata.annotations = Some(BTreeMap::from([(
        REVISION_ANNOTATION.to_string(),
        "6".to_string(),
    )]));
    d.status = Some(
        serde_json::from_value(json!({
            "observedGeneration": 1, "replicas": 2, "updatedReplicas": 2,
            "readyReplicas": 2, "availableReplicas": 2
        }))
        .expect("status"),
    );
    let old = |name: &str, revision: &str, created: &str| {
        scaled_for(owned_rs(name, name, 0, 0, created), revision, 2, 3)
    };
    // rev 1 still has a terminating pod; rev 0 is already being deleted.
    let mut still_terminating = old("web-1", "1", "2025-01-01T00:00:00Z");
    still_terminating.status.as_mut().expect("status").replicas = 1;
    let mut being_deleted = old("web-0", "0", "2024-12-01T00:00:00Z");
    being_deleted.metadata.deletion_timestamp = at("2025-02-01T00:00:00Z");
    let rss = vec![
        old("web-4", "4", "2025-01-04T00:00:00Z"),
        old("web-2", "2", "2025-01-02T00:00:00Z"),
        still_terminating,
        being_deleted,
        old("web-3", "3", "2025-01-03T00:00:00Z"),
        old("web-5", "5", "2025-01-05T00:00:00Z"),
        scaled_for(
            owned_rs("web-6", "nginx:6", 2, 2, "2025-01-06T00:00:00Z"),
            "6",
            2,
            3,
        ),
    ];
    let plan = plan(&d, &rss, &[], time(NOW));
    let deleted: Vec<(String, String)> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::DeleteReplicaSet { name, uid } => Some((name.clone(), uid.clone())),
            _ => None,
        })
        .collect();
    // 5 cleanable old sets, limit 2: revisions 1, 2 and 3 are candidates; 1 is skipped.
    assert_eq!(
        deleted,
        vec![
            ("web-2".to_string(), "web-2-uid".to_string()),
            ("web-3".to_string(), "web-3-uid".to_string()),
        ]
    );
}

#[test]
fn no_history_cleanup_while_a_rollout_is_incomplete() {
    let mut d = deployment(2, json!({}), "nginx:3");
    d.spec.as_mut().expect("spec").revision_history_limit = Some(0);
    let rss = vec![
        scaled_for(
            owned_rs("web-1", "nginx:1", 0, 0, "2025-01-01T00:00:00Z"),
            "1",
            2,
            3,
        ),
        scaled_for(
            owned_rs("web-2", "nginx:2", 2, 2, "2025-01-02T00:00:00Z"),
            "2",
            2,
            3,
        ),
        scaled_for(
            owned_rs("web-3", "nginx:3", 1, 0, "2025-01-03T00:00:00Z"),
            "3",
            2,
            3,
        ),
    ];
    let plan = plan(&d, &rss, &[], time(NOW));
    assert!(!plan
        .actions
        .iter()
        .any(|a| matches!(a, Action::DeleteReplicaSet { .. })));
}

/// A rollout stuck at 1 of 3 new replicas: old 3 available, new 1 unavailable, maxSurge 1,
/// maxUnavailable 0, Progressing last updated at `last_update`.
fn stuck(last_update: &str) -> (Deployment, Vec<ReplicaSet>) {
    let mut d = deployment(3, rolling(json!(1), json!(0)), "nginx:2");
    d.metadata.generation = Some(2);
    d.metadata.annotations = Some(BTreeMap::from([(
        REVISION_ANNOTATION.to_string(),
        "2".to_string(),
    )]));
    d.status = Some(
        serde_json::from_value(json!({
            "observedGeneration": 2, "replicas": 4, "updatedReplicas": 1,
            "readyReplicas": 3, "availableReplicas": 3, "unavailableReplicas": 1,
            "terminatingReplicas": 0,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                 "message": "Deployment has minimum availability.",
                 "lastUpdateTime": "2025-01-01T00:00:00Z",
                 "lastTransitionTime": "2025-01-01T00:00:00Z"},
                {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                 "message": "ReplicaSet \"web-new\" is progressing.",
                 "lastUpdateTime": last_update,
                 "lastTransitionTime": "2025-01-01T00:00:00Z"}
            ]
        }))
        .expect("status"),
    );
    let rss = vec![
        scaled_for(
            owned_rs("web-old", "nginx:1", 3, 3, "2025-01-01T00:00:00Z"),
            "1",
            3,
            4,
        ),
        scaled_for(
            owned_rs("web-new", "nginx:2", 1, 0, "2025-03-01T11:00:00Z"),
            "2",
            3,
            4,
        ),
    ];
    (d, rss)
}

#[test]
fn a_rollout_without_progress_times_out_after_the_deadline() {
    // 700s without progress, deadline 600s.
    let (d, rss) = stuck("2025-03-01T11:48:20Z");
    let plan = plan(&d, &rss, &[], time(NOW));
    assert_eq!(plan.actions.len(), 1, "{plan:?}");
    let status = new_status(&plan).expect("status");
    let progressing = condition(status, CONDITION_PROGRESSING);
    assert_eq!(progressing.status, "False");
    assert_eq!(
        progressing.reason.as_deref(),
        Some(REASON_PROGRESS_DEADLINE_EXCEEDED)
    );
    assert_eq!(
        progressing.message.as_deref(),
        Some("ReplicaSet \"web-new\" has timed out progressing.")
    );
    assert_eq!(progressing.last_update_time, at(NOW));
    assert_eq!(progressing.last_transition_time, at(NOW));
    assert_eq!(plan.requeue_after, None);

    // Once timed out it stays so, even when resyncing later.
    let mut timed_out = d.clone();
    timed_out.status = Some(status.clone());
    let later = super::plan(&timed_out, &rss, &[], time("2025-03-01T13:00:00Z"));
    assert_eq!(later, DeploymentPlan::default());
}

#[test]
fn a_rollout_within_its_deadline_requeues_for_the_time_left() {
    // 100s without progress: 500s left (+1s margin), and nothing to write.
    let (d, rss) = stuck("2025-03-01T11:58:20Z");
    let plan = plan(&d, &rss, &[], time(NOW));
    assert_eq!(plan.actions, vec![]);
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(501)));
}

#[test]
fn progress_moves_last_update_time_but_keeps_last_transition_time() {
    let (d, mut rss) = stuck("2025-03-01T11:58:20Z");
    // One more new pod became available.
    let status = rss[1].status.as_mut().expect("status");
    status.available_replicas = Some(1);
    status.ready_replicas = Some(1);
    let plan = plan(&d, &rss, &[], time(NOW));
    let status = new_status(&plan).expect("status");
    let progressing = condition(status, CONDITION_PROGRESSING);
    assert_eq!(
        progressing.reason.as_deref(),
        Some(REASON_REPLICA_SET_UPDATED)
    );
    assert_eq!(
        progressing.message.as_deref(),
        Some("ReplicaSet \"web-new\" is progressing.")
    );
    assert_eq!(progressing.last_update_time, at(NOW));
    assert_eq!(progressing.last_transition_time, at("2025-01-01T00:00:00Z"));
    // The old ReplicaSet may lose the pod that the new one gained.
    assert_eq!(replica_updates(&plan, "web-old"), vec![2]);
}

#[test]
fn a_hash_collision_bumps_collision_count_instead_of_creating() {
    let d = deployment(2, json!({}), "nginx:1");
    let hash = pod_template_hash(&d.spec.as_ref().expect("spec").template, None);
    // Someone else's ReplicaSet already has the name.
    let mut squatter = owned_rs(
        &format!("web-{hash}"),
        "busybox",
        1,
        1,
        "2025-01-01T00:00:00Z",
    );
    squatter.metadata.owner_references = None;
    squatter.metadata.labels = Some(BTreeMap::from([("app".to_string(), "other".to_string())]));
    let plan = plan(&d, std::slice::from_ref(&squatter), &[], time(NOW));
    assert!(created(&plan).is_empty());
    assert_eq!(plan.actions.len(), 1, "{plan:?}");
    assert_eq!(new_status(&plan).and_then(|s| s.collision_count), Some(1));

    // With the bumped count, another name.
    let mut bumped = d.clone();
    bumped.status = Some(DeploymentStatus {
        collision_count: Some(1),
        ..DeploymentStatus::default()
    });
    let retry = super::plan(&bumped, &[squatter], &[], time(NOW));
    let created = created(&retry);
    assert_eq!(created.len(), 1);
    let name = created[0].metadata.name.clone().expect("name");
    assert_ne!(name, format!("web-{hash}"));
    let spec = bumped.spec.as_ref().expect("spec");
    assert_eq!(
        name,
        format!("web-{}", pod_template_hash(&spec.template, Some(1)))
    );
}

#[test]
fn orphans_are_adopted_and_mismatches_released() {
    let d = deployment(2, json!({}), "nginx:1");
    let mut orphan = owned_rs("web-orphan", "nginx:1", 2, 2, "2025-01-01T00:00:00Z");
    orphan.metadata.owner_references = None;
    let mut stray = owned_rs("web-stray", "nginx:0", 0, 0, "2025-01-01T00:00:00Z");
    stray.metadata.labels = Some(BTreeMap::from([("app".to_string(), "api".to_string())]));
    let mut foreign = owned_rs("web-foreign", "nginx:1", 1, 1, "2025-01-01T00:00:00Z");
    foreign.metadata.owner_references.as_mut().expect("refs")[0].uid = "other".to_string();
    let mut dying_orphan = orphan.clone();
    dying_orphan.metadata.name = Some("web-dying".to_string());
    dying_orphan.metadata.deletion_timestamp = at("2025-02-01T00:00:00Z");
    let rss = vec![orphan, stray, foreign, dying_orphan];

    let plan = plan(&d, &rss, &[], time(NOW));
    assert_eq!(
        plan.actions[..2],
        [
            Action::AdoptReplicaSet {
                name: "web-orphan".to_string()
            },
            Action::ReleaseReplicaSet {
                name: "web-stray".to_string()
            },
        ]
    );
    // The adopted ReplicaSet has our template: it is the new one, nothing is created.
    assert!(created(&plan).is_empty());
    assert!(!plan.actions.iter().any(|a| matches!(a,
        Action::AdoptReplicaSet { name } | Action::ReleaseReplicaSet { name }
            if name == "web-foreign" || name == "web-dying")));

    // While the Deployment is being deleted: no adoption, no release, status only.
    let mut deleting = d.clone();
    deleting.metadata.deletion_timestamp = at("2025-02-01T00:00:00Z");
    let plan = super::plan(&deleting, &rss, &[], time(NOW));
    assert!(
        plan.actions
            .iter()
            .all(|a| matches!(a, Action::UpdateStatus(_))),
        "{plan:?}"
    );
}

#[test]
fn rolling_back_reuses_the_old_replica_set_with_a_new_revision() {
    // `kubectl rollout undo` put revision 1's template back.
    let mut d = deployment(3, json!({}), "nginx:1");
    d.metadata.annotations = Some(BTreeMap::from([
        (REVISION_ANNOTATION.to_string(), "2".to_string()),
        ("kubernetes.io/change-cause".to_string(), "undo".to_string()),
    ]));
    let rss = vec![
        scaled_for(
            owned_rs("web-1", "nginx:1", 0, 0, "2025-01-01T00:00:00Z"),
            "1",
            3,
            4,
        ),
        scaled_for(
            owned_rs("web-2", "nginx:2", 3, 3, "2025-01-02T00:00:00Z"),
            "2",
            3,
            4,
        ),
    ];
    let plan = plan(&d, &rss, &[], time(NOW));
    assert!(created(&plan).is_empty());
    assert_eq!(
        plan.actions[0],
        Action::UpdateReplicaSet {
            name: "web-1".to_string(),
            replicas: None,
            annotations: BTreeMap::from([
                (
                    "kubernetes.io/change-cause".to_string(),
                    Some("undo".to_string())
                ),
                (REVISION_ANNOTATION.to_string(), Some("3".to_string())),
                (
                    REVISION_HISTORY_ANNOTATION.to_string(),
                    Some("1".to_string())
                ),
            ]),
        }
    );
    assert_eq!(
        plan.actions[1],
        Action::UpdateDeploymentAnnotations(BTreeMap::from([(
            REVISION_ANNOTATION.to_string(),
            Some("3".to_string())
        )]))
    );
    // Then an ordinary rolling step: surge 1 (25% of 3 rounded up).
    assert_eq!(replica_updates(&plan, "web-1"), vec![1]);
}

#[test]
fn a_selector_matching_everything_is_refused() {
    let mut d = deployment(1, json!({}), "nginx:1");
    d.spec.as_mut().expect("spec").selector = Default::default();
    let plan = plan(&d, &[], &[], time(NOW));
    assert_eq!(
        events(&plan),
        vec![
            "Warning SelectingAll This deployment is selecting all pods. A non-empty selector is required."
        ]
    );
    assert!(created(&plan).is_empty());
    assert_eq!(
        new_status(&plan).and_then(|s| s.observed_generation),
        Some(1)
    );
}

#[test]
fn terminating_replicas_are_unknown_until_every_observed_replica_set_reports_them() {
    let d = deployment(3, json!({}), "nginx:1");
    let mut rs = scaled_for(
        owned_rs("web-1", "nginx:1", 3, 3, "2025-01-01T00:00:00Z"),
        "1",
        3,
        4,
    );
    rs.status.as_mut().expect("status").terminating_replicas = Some(2);
    let plan1 = plan(&d, std::slice::from_ref(&rs), &[], time(NOW));
    assert_eq!(
        new_status(&plan1).and_then(|s| s.terminating_replicas),
        Some(2)
    );
    rs.status.as_mut().expect("status").terminating_replicas = None;
    let plan2 = plan(&d, &[rs], &[], time(NOW));
    let status = new_status(&plan2).expect("status");
    assert_eq!(status.terminating_replicas, None);
    assert_eq!(status.replicas, Some(3));
}

#[test]
fn missing_fields_take_the_apps_v1_defaults() {
    // No replicas, strategy, revisionHistoryLimit or progressDeadlineSeconds.
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "d-uid"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template("nginx:1")}
    }))
    .expect("deployment");
    let plan = plan(&d, &[], &[], time(NOW));
    let rs = created(&plan)[0];
    assert_eq!(rs.spec.as_ref().and_then(|s| s.replicas), Some(1));
    let annotations = rs.metadata.annotations.as_ref().expect("a");
    // 25% of 1 rounds up to a surge of 1.
    assert_eq!(annotations[MAX_REPLICAS_ANNOTATION], "2");
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(601)));
}

#[test]
fn a_converged_deployment_as_the_api_returns_it_needs_nothing() {
    // Zero counters are omitted by the API server.
    let mut d = deployment(3, json!({}), "nginx:1");
    d.metadata.annotations = Some(BTreeMap::from([(
        REVISION_ANNOTATION.to_string(),
        "1".to_string(),
    )]));
    d.status = Some(
        serde_json::from_value(json!({
            "observedGeneration": 1, "replicas": 3, "updatedReplicas": 3,
            "readyReplicas": 3, "availableReplicas": 3, "terminatingReplicas": 0,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                 "message": "Deployment has minimum availability.",
                 "lastUpdateTime": "2025-01-01T00:00:10Z",
                 "lastTransitionTime": "2025-01-01T00:00:10Z"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                 "message": "ReplicaSet \"web-1\" has successfully progressed.",
                 "lastUpdateTime": "2025-01-01T00:00:10Z",
                 "lastTransitionTime": "2025-01-01T00:00:00Z"}
            ]
        }))
        .expect("status"),
    );
    let rs = scaled_for(
        owned_rs("web-1", "nginx:1", 3, 3, "2025-01-01T00:00:00Z"),
        "1",
        3,
        4,
    );
    let pods = vec![pod("p1", "web-1", "Running")];
    assert_eq!(
        plan(&d, std::slice::from_ref(&rs), &pods, time(NOW)),
        DeploymentPlan::default()
    );

    // A pod lost after the rollout: Available turns False (2 < 3 - maxUnavailable 0), while
    // Progressing keeps NewReplicaSetAvailable; no requeue for a deadline that cannot fire.
    let mut degraded = rs;
    let status = degraded.status.as_mut().expect("status");
    status.available_replicas = Some(2);
    status.ready_replicas = Some(2);
    let plan = plan(&d, &[degraded], &pods, time(NOW));
    let status = new_status(&plan).expect("status");
    assert_eq!(condition(status, CONDITION_AVAILABLE).status, "False");
    assert_eq!(
        condition(status, CONDITION_PROGRESSING).reason.as_deref(),
        Some(REASON_NEW_REPLICA_SET_AVAILABLE)
    );
    assert_eq!(plan.requeue_after, None);
}
