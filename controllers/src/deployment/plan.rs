//! The Deployment controller's pure planning function, after kube-controller-manager's
//! `pkg/controller/deployment` (deployment_controller.go, sync.go, rolling.go,
//! recreate.go, progress.go and util/deployment_util.go).
//!
//! [`plan`] looks at a Deployment, every ReplicaSet and every Pod of its namespace and the
//! current time, and returns the writes one sync of upstream's controller would make, in
//! order: ReplicaSet adoption/release, creation of the new ReplicaSet, scaling, history
//! cleanup, the Deployment's revision annotation, events, and last the status (only when it
//! changed). Each action is computed on the state the previous ones produce, so a
//! reconciler applies them one after the other and stops at the first failure; the next
//! change re-plans from what is then observed.
//!
//! Differences from upstream that a user can see: the ReplicaSet name hash is FNV-1a over a
//! canonical JSON form of the template (upstream hashes Go's in-memory dump, which cannot be
//! reproduced), the Deployment's `spec.minReadySeconds` is only copied into newly created
//! ReplicaSets (the action set has no way to update it on an existing one), and the
//! deprecated `deprecated.deployment.rollback.to` annotation is ignored (apps/v1 clients such
//! as `kubectl rollout undo` patch the template instead).

mod rollout;
mod status;
#[cfg(test)]
mod tests;
mod util;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, ObjectMeta, OwnerReference, Time,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use keelson_apimachinery::labels::Selector;

pub use util::pod_template_hash;
use util::{
    annotation_diff, controller_ref, equal_ignore_hash, get_condition, max_revision, new_condition,
    replicas_annotation_changes, set_condition, set_new_rs_annotations, spec_replicas,
};

/// Revision of a ReplicaSet in its Deployment's rollout history, also kept on the
/// Deployment (what `kubectl rollout history/undo` read).
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// Former revisions of a ReplicaSet that a rollback brought back.
pub const REVISION_HISTORY_ANNOTATION: &str = "deployment.kubernetes.io/revision-history";
/// `spec.replicas` of the Deployment when the ReplicaSet was last scaled by it.
pub const DESIRED_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/desired-replicas";
/// `spec.replicas + maxSurge` of the Deployment when the ReplicaSet was last scaled by it.
pub const MAX_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/max-replicas";
/// The label that keeps the ReplicaSets of one Deployment apart.
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

/// Condition types and reasons (upstream `deployment_util.go`).
pub const CONDITION_AVAILABLE: &str = "Available";
pub const CONDITION_PROGRESSING: &str = "Progressing";
pub const CONDITION_REPLICA_FAILURE: &str = "ReplicaFailure";
pub const REASON_REPLICA_SET_UPDATED: &str = "ReplicaSetUpdated";
pub const REASON_NEW_REPLICA_SET_CREATED: &str = "NewReplicaSetCreated";
pub const REASON_FOUND_NEW_REPLICA_SET: &str = "FoundNewReplicaSet";
pub const REASON_NEW_REPLICA_SET_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const REASON_PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
pub const REASON_DEPLOYMENT_PAUSED: &str = "DeploymentPaused";
pub const REASON_DEPLOYMENT_RESUMED: &str = "DeploymentResumed";
pub const REASON_MINIMUM_REPLICAS_AVAILABLE: &str = "MinimumReplicasAvailable";
pub const REASON_MINIMUM_REPLICAS_UNAVAILABLE: &str = "MinimumReplicasUnavailable";
/// Event reason of every scale of a ReplicaSet.
pub const EVENT_SCALING_REPLICA_SET: &str = "ScalingReplicaSet";

/// What one sync of a Deployment must do.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeploymentPlan {
    /// The writes, in the order they must be applied.
    pub actions: Vec<Action>,
    /// Sync again after this long even if nothing changes: set while a rollout is in
    /// progress, to notice when `progressDeadlineSeconds` runs out.
    pub requeue_after: Option<Duration>,
}

/// One write of the Deployment controller.
// The complete ReplicaSet to create is part of the agreed interface; plans are short lists.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Set the Deployment's controller ownerReference (`controller` and
    /// `blockOwnerDeletion` true) on an orphan ReplicaSet that matches its selector.
    AdoptReplicaSet { name: String },
    /// Remove the Deployment's ownerReference from a ReplicaSet that no longer matches.
    ReleaseReplicaSet { name: String },
    /// Create this ReplicaSet (complete object).
    CreateReplicaSet(ReplicaSet),
    /// One merge patch of a ReplicaSet: `spec.replicas` when `Some`, and annotations
    /// (`None` removes one).
    UpdateReplicaSet {
        name: String,
        replicas: Option<i32>,
        annotations: BTreeMap<String, Option<String>>,
    },
    /// Delete an old ReplicaSet beyond `revisionHistoryLimit`, with a uid precondition.
    DeleteReplicaSet { name: String, uid: String },
    /// Merge-patch the Deployment's annotations (`None` removes one).
    UpdateDeploymentAnnotations(BTreeMap<String, Option<String>>),
    /// Replace the Deployment's status with this one.
    UpdateStatus(DeploymentStatus),
    /// Record an event on the Deployment.
    Event {
        type_: String,
        reason: String,
        message: String,
    },
}

/// Plans one sync of `deployment`. `replica_sets` and `pods` are every ReplicaSet and Pod of
/// the Deployment's namespace; `now` is the current time.
pub fn plan(
    deployment: &Deployment,
    replica_sets: &[ReplicaSet],
    pods: &[Pod],
    now: DateTime<Utc>,
) -> DeploymentPlan {
    let Some(mut planner) = Planner::new(deployment, replica_sets, pods, now) else {
        return DeploymentPlan::default();
    };
    planner.run();
    planner.finish()
}

/// The rollout strategy with apps/v1 defaults applied.
#[derive(Clone, Debug)]
enum Strategy {
    Recreate,
    RollingUpdate {
        max_surge: IntOrString,
        max_unavailable: IntOrString,
    },
    /// A type this controller does not know: nothing is rolled out.
    Unknown,
}

/// Planning stops early (upstream returns an error and requeues); the actions so far stand.
struct Stop;

type Step<T> = Result<T, Stop>;

/// The working state of one sync: the Deployment's spec with defaults, and working copies of
/// its status, annotations and claimed ReplicaSets that each planned action updates.
struct Planner<'a> {
    name: String,
    namespace: Option<String>,
    uid: String,
    generation: i64,
    deleting: bool,
    replicas: i32,
    strategy: Strategy,
    /// `None` when unlimited (MaxInt32); a missing value defaults to 10.
    revision_history_limit: Option<i32>,
    /// `None` when there is no deadline (MaxInt32); a missing value defaults to 600.
    progress_deadline_seconds: Option<i32>,
    paused: bool,
    min_ready_seconds: Option<i32>,
    selector_spec: LabelSelector,
    template: PodTemplateSpec,
    annotations: BTreeMap<String, String>,
    observed_status: DeploymentStatus,
    status: DeploymentStatus,
    namespace_rss: &'a [ReplicaSet],
    pods: &'a [Pod],
    /// The ReplicaSets this Deployment owns (after adoption/release), as updated by the
    /// actions planned so far. Entries are never removed, so indices stay valid.
    rss: Vec<ReplicaSet>,
    now: DateTime<Utc>,
    now_ts: Timestamp,
    actions: Vec<Action>,
    requeue_after: Option<Duration>,
}

impl<'a> Planner<'a> {
    fn new(
        d: &Deployment,
        namespace_rss: &'a [ReplicaSet],
        pods: &'a [Pod],
        now: DateTime<Utc>,
    ) -> Option<Self> {
        let spec = d.spec.as_ref()?;
        let strategy = match spec.strategy.as_ref() {
            Some(s) if s.type_.as_deref() == Some("Recreate") => Strategy::Recreate,
            Some(s) if !matches!(s.type_.as_deref(), None | Some("") | Some("RollingUpdate")) => {
                Strategy::Unknown
            }
            s => {
                let rolling = s.and_then(|s| s.rolling_update.as_ref());
                let default = || IntOrString::String("25%".to_string());
                Strategy::RollingUpdate {
                    max_surge: rolling
                        .and_then(|r| r.max_surge.clone())
                        .unwrap_or_else(default),
                    max_unavailable: rolling
                        .and_then(|r| r.max_unavailable.clone())
                        .unwrap_or_else(default),
                }
            }
        };
        let observed_status = d.status.clone().unwrap_or_default();
        Some(Planner {
            name: d.metadata.name.clone().unwrap_or_default(),
            namespace: d.metadata.namespace.clone(),
            uid: d.metadata.uid.clone().unwrap_or_default(),
            generation: d.metadata.generation.unwrap_or(0),
            deleting: d.metadata.deletion_timestamp.is_some(),
            replicas: spec.replicas.unwrap_or(1),
            strategy,
            revision_history_limit: Some(spec.revision_history_limit.unwrap_or(10))
                .filter(|l| *l != i32::MAX),
            progress_deadline_seconds: Some(spec.progress_deadline_seconds.unwrap_or(600))
                .filter(|s| *s != i32::MAX),
            paused: spec.paused.unwrap_or(false),
            min_ready_seconds: spec.min_ready_seconds,
            selector_spec: spec.selector.clone(),
            template: spec.template.clone(),
            annotations: d.metadata.annotations.clone().unwrap_or_default(),
            status: observed_status.clone(),
            observed_status,
            namespace_rss,
            pods,
            rss: Vec::new(),
            now,
            now_ts: Timestamp::from_second(now.timestamp()).unwrap_or(Timestamp::UNIX_EPOCH),
            actions: Vec::new(),
            requeue_after: None,
        })
    }

    /// `syncDeployment`.
    fn run(&mut self) {
        let selects_everything = self
            .selector_spec
            .match_labels
            .as_ref()
            .is_none_or(BTreeMap::is_empty)
            && self
                .selector_spec
                .match_expressions
                .as_ref()
                .is_none_or(Vec::is_empty);
        if selects_everything {
            self.event(
                "Warning",
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required."
                    .to_string(),
            );
            if self.status.observed_generation.unwrap_or(0) < self.generation {
                self.status.observed_generation = Some(self.generation);
            }
            return;
        }
        let Some(selector) = serde_json::to_value(&self.selector_spec)
            .ok()
            .and_then(|v| Selector::from_label_selector_json(&v).ok())
        else {
            // Invalid selector: upstream fails the sync; validation should prevent this.
            return;
        };
        self.claim_replica_sets(&selector);
        let pod_map = self.pod_map(&selector);

        if self.deleting {
            let _ = self.sync_status_only();
            return;
        }
        self.check_paused_conditions();
        if self.paused {
            let _ = self.sync();
            return;
        }
        match self.is_scaling_event() {
            Err(Stop) => return,
            Ok(true) => {
                let _ = self.sync();
                return;
            }
            Ok(false) => {}
        }
        let _ = match self.strategy {
            Strategy::Recreate => self.rollout_recreate(&pod_map),
            Strategy::RollingUpdate { .. } => self.rollout_rolling(),
            Strategy::Unknown => Ok(()),
        };
    }

    /// Appends the status update when the working status differs from the observed one.
    fn finish(mut self) -> DeploymentPlan {
        if util::normalized_status(&self.status) != util::normalized_status(&self.observed_status) {
            self.actions.push(Action::UpdateStatus(self.status.clone()));
        }
        DeploymentPlan {
            actions: self.actions,
            requeue_after: self.requeue_after,
        }
    }

    fn event(&mut self, type_: &str, reason: &str, message: String) {
        self.actions.push(Action::Event {
            type_: type_.to_string(),
            reason: reason.to_string(),
            message,
        });
    }

    /// `getReplicaSetsForDeployment` / `ClaimReplicaSets`: keeps the ReplicaSets we control
    /// that match, releases those that no longer match (unless we are being deleted), and
    /// adopts matching orphans that are not being deleted (unless we are).
    fn claim_replica_sets(&mut self, selector: &Selector) {
        let empty = BTreeMap::new();
        for rs in self.namespace_rss {
            if let (Some(ns), Some(rs_ns)) = (&self.namespace, &rs.metadata.namespace) {
                if ns != rs_ns {
                    continue;
                }
            }
            let name = rs.metadata.name.clone().unwrap_or_default();
            let matches = selector.matches(rs.metadata.labels.as_ref().unwrap_or(&empty));
            match controller_ref(rs.metadata.owner_references.as_ref()) {
                Some(owner) if owner.uid != self.uid => {}
                Some(_) => {
                    if matches {
                        self.rss.push(rs.clone());
                    } else if !self.deleting {
                        self.actions.push(Action::ReleaseReplicaSet { name });
                    }
                }
                None => {
                    if self.deleting || !matches || rs.metadata.deletion_timestamp.is_some() {
                        continue;
                    }
                    self.actions.push(Action::AdoptReplicaSet { name });
                    let mut adopted = rs.clone();
                    adopted
                        .metadata
                        .owner_references
                        .get_or_insert_with(Vec::new)
                        .push(self.owner_reference());
                    self.rss.push(adopted);
                }
            }
        }
    }

    fn owner_reference(&self) -> OwnerReference {
        OwnerReference {
            api_version: "apps/v1".to_string(),
            kind: "Deployment".to_string(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    /// `getPodMapForDeployment`: the pods matching the selector whose controller is one of
    /// our ReplicaSets, by ReplicaSet uid.
    fn pod_map(&self, selector: &Selector) -> HashMap<String, Vec<&'a Pod>> {
        let mut map: HashMap<String, Vec<&'a Pod>> = self
            .rss
            .iter()
            .filter_map(|rs| rs.metadata.uid.clone())
            .map(|uid| (uid, Vec::new()))
            .collect();
        let empty = BTreeMap::new();
        for pod in self.pods {
            if !selector.matches(pod.metadata.labels.as_ref().unwrap_or(&empty)) {
                continue;
            }
            let Some(owner) = controller_ref(pod.metadata.owner_references.as_ref()) else {
                continue;
            };
            if let Some(list) = map.get_mut(&owner.uid) {
                list.push(pod);
            }
        }
        map
    }

    fn is_rolling(&self) -> bool {
        matches!(self.strategy, Strategy::RollingUpdate { .. })
    }

    fn fenceposts(&self) -> (i32, i32) {
        match &self.strategy {
            Strategy::RollingUpdate {
                max_surge,
                max_unavailable,
            } => util::resolve_fenceposts(Some(max_surge), Some(max_unavailable), self.replicas),
            _ => (0, 0),
        }
    }

    /// `MaxSurge`.
    fn max_surge(&self) -> i32 {
        self.fenceposts().0
    }

    /// `MaxUnavailable`.
    fn max_unavailable(&self) -> i32 {
        if !self.is_rolling() || self.replicas == 0 {
            return 0;
        }
        self.fenceposts().1.min(self.replicas)
    }

    /// `NewRSNewReplicas`: the size of the new ReplicaSet given the ReplicaSets in `all`.
    fn new_rs_new_replicas(&self, all_spec_replicas: i32, new_replicas: i32) -> i32 {
        match self.strategy {
            Strategy::RollingUpdate { .. } => {
                let max_total = self.replicas + self.max_surge();
                if all_spec_replicas >= max_total {
                    return new_replicas;
                }
                let scale_up = (max_total - all_spec_replicas).min(self.replicas - new_replicas);
                new_replicas + scale_up
            }
            Strategy::Recreate => self.replicas,
            Strategy::Unknown => new_replicas,
        }
    }

    fn sum(&self, indices: &[usize], f: impl Fn(&ReplicaSet) -> i32) -> i32 {
        indices.iter().map(|&i| f(&self.rss[i])).sum()
    }

    fn rs_name(&self, i: usize) -> String {
        self.rss[i].metadata.name.clone().unwrap_or_default()
    }

    /// `FilterActiveReplicaSets`.
    fn active(&self, indices: &[usize]) -> Vec<usize> {
        indices
            .iter()
            .copied()
            .filter(|&i| spec_replicas(&self.rss[i]) > 0)
            .collect()
    }

    /// `FindNewReplicaSet`: the oldest owned ReplicaSet whose template equals ours.
    fn find_new_rs(&self) -> Option<usize> {
        let mut indices: Vec<usize> = (0..self.rss.len()).collect();
        indices.sort_by(|&a, &b| util::cmp_by_creation(&self.rss[a], &self.rss[b]));
        indices.into_iter().find(|&i| {
            equal_ignore_hash(
                self.rss[i].spec.as_ref().and_then(|s| s.template.as_ref()),
                Some(&self.template),
            )
        })
    }

    /// `getAllReplicaSetsAndSyncRevision`: the new ReplicaSet (created when `create` and
    /// missing) and all the old ones.
    fn get_all_rs_and_sync_revision(&mut self, create: bool) -> Step<(Option<usize>, Vec<usize>)> {
        let existing = self.find_new_rs();
        let old: Vec<usize> = (0..self.rss.len())
            .filter(|&i| Some(i) != existing)
            .collect();
        let new = self.get_new_rs(existing, &old, create)?;
        Ok((new, old))
    }

    /// `getNewReplicaSet`.
    fn get_new_rs(
        &mut self,
        existing: Option<usize>,
        old: &[usize],
        create: bool,
    ) -> Step<Option<usize>> {
        let new_revision = max_revision(old.iter().map(|&i| &self.rss[i])) + 1;

        if let Some(i) = existing {
            let before = self.rss[i].metadata.annotations.clone().unwrap_or_default();
            let mut after = before.clone();
            if set_new_rs_annotations(&self.annotations, &mut after, new_revision, None) {
                self.actions.push(Action::UpdateReplicaSet {
                    name: self.rs_name(i),
                    replicas: None,
                    annotations: annotation_diff(&before, &after),
                });
                self.rss[i].metadata.annotations = Some(after);
            }
            let revision = util::annotation(&self.rss[i], REVISION_ANNOTATION)
                .unwrap_or("")
                .to_string();
            self.set_deployment_revision(revision);
            if self.progress_deadline_seconds.is_some()
                && get_condition(&self.status, CONDITION_PROGRESSING).is_none()
            {
                let message = format!("Found new replica set \"{}\"", self.rs_name(i));
                let condition = new_condition(
                    CONDITION_PROGRESSING,
                    "True",
                    REASON_FOUND_NEW_REPLICA_SET,
                    message,
                    self.now_ts,
                );
                set_condition(&mut self.status, condition);
            }
            return Ok(Some(i));
        }
        if !create {
            return Ok(None);
        }

        let hash = pod_template_hash(&self.template, self.status.collision_count);
        let mut template = self.template.clone();
        template
            .metadata
            .get_or_insert_with(ObjectMeta::default)
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH_LABEL.to_string(), hash.clone());
        let mut selector = self.selector_spec.clone();
        selector
            .match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH_LABEL.to_string(), hash.clone());
        let name = format!("{}-{}", self.name, hash);

        // The name is taken by another ReplicaSet (the API would answer AlreadyExists): a
        // hash collision. Upstream bumps status.collisionCount and retries on the next sync.
        if let Some(taken) = self
            .namespace_rss
            .iter()
            .find(|rs| rs.metadata.name.as_deref() == Some(name.as_str()))
        {
            let ours = controller_ref(taken.metadata.owner_references.as_ref())
                .is_some_and(|r| r.uid == self.uid)
                && equal_ignore_hash(
                    taken.spec.as_ref().and_then(|s| s.template.as_ref()),
                    Some(&self.template),
                );
            if !ours {
                let count = self.status.collision_count.unwrap_or(0).wrapping_add(1);
                self.status.collision_count = Some(count);
            }
            // Ours but not claimed (being released): wait for the next sync.
            return Err(Stop);
        }

        let labels = template.metadata.as_ref().and_then(|m| m.labels.clone());
        let all_spec: i32 = old.iter().map(|&i| spec_replicas(&self.rss[i])).sum();
        let new_replicas = self.new_rs_new_replicas(all_spec, 0);
        let mut annotations = BTreeMap::new();
        set_new_rs_annotations(
            &self.annotations,
            &mut annotations,
            new_revision,
            Some((self.replicas, self.replicas + self.max_surge())),
        );
        let rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: self.namespace.clone(),
                labels,
                annotations: Some(annotations),
                owner_references: Some(vec![self.owner_reference()]),
                ..ObjectMeta::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(new_replicas),
                min_ready_seconds: self.min_ready_seconds,
                selector,
                template: Some(template),
            }),
            status: None,
        };
        self.actions.push(Action::CreateReplicaSet(rs.clone()));
        if new_replicas > 0 {
            self.event(
                "Normal",
                EVENT_SCALING_REPLICA_SET,
                format!("Scaled up replica set {name} from 0 to {new_replicas}"),
            );
        }
        self.set_deployment_revision(new_revision.to_string());
        if self.progress_deadline_seconds.is_some() {
            let condition = new_condition(
                CONDITION_PROGRESSING,
                "True",
                REASON_NEW_REPLICA_SET_CREATED,
                format!("Created new replica set \"{name}\""),
                self.now_ts,
            );
            set_condition(&mut self.status, condition);
        }
        let mut created = rs;
        created.metadata.creation_timestamp = Some(Time(self.now_ts));
        created.metadata.generation = Some(1);
        self.rss.push(created);
        Ok(Some(self.rss.len() - 1))
    }

    /// `SetDeploymentRevision`.
    fn set_deployment_revision(&mut self, revision: String) {
        if self.annotations.get(REVISION_ANNOTATION) == Some(&revision) {
            return;
        }
        self.annotations
            .insert(REVISION_ANNOTATION.to_string(), revision.clone());
        self.actions
            .push(Action::UpdateDeploymentAnnotations(BTreeMap::from([(
                REVISION_ANNOTATION.to_string(),
                Some(revision),
            )])));
    }

    /// `scaleReplicaSetAndRecordEvent`.
    fn scale_and_record(&mut self, i: usize, new_scale: i32) -> bool {
        let current = spec_replicas(&self.rss[i]);
        if current == new_scale {
            return false;
        }
        let up = current < new_scale;
        self.scale_replica_set(i, new_scale, up)
    }

    /// `scaleReplicaSet`: sets the size and the replica annotations; an event when the size
    /// changed. Returns whether the size changed.
    fn scale_replica_set(&mut self, i: usize, new_scale: i32, up: bool) -> bool {
        let old_scale = spec_replicas(&self.rss[i]);
        let size_changed = old_scale != new_scale;
        let annotations = replicas_annotation_changes(
            &self.rss[i],
            self.replicas,
            self.replicas + self.max_surge(),
        );
        if !size_changed && annotations.is_empty() {
            return false;
        }
        let name = self.rs_name(i);
        self.actions.push(Action::UpdateReplicaSet {
            name: name.clone(),
            replicas: size_changed.then_some(new_scale),
            annotations: annotations.clone(),
        });
        let rs = &mut self.rss[i];
        let map = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
        for (k, v) in annotations {
            if let Some(v) = v {
                map.insert(k, v);
            }
        }
        if size_changed {
            rs.spec.get_or_insert_with(ReplicaSetSpec::default).replicas = Some(new_scale);
            rs.metadata.generation = Some(rs.metadata.generation.unwrap_or(0) + 1);
            let direction = if up { "up" } else { "down" };
            self.event(
                "Normal",
                EVENT_SCALING_REPLICA_SET,
                format!("Scaled {direction} replica set {name} from {old_scale} to {new_scale}"),
            );
        }
        size_changed
    }
}
