//! Status and conditions: upstream `sync.go` (calculateStatus, syncDeploymentStatus,
//! checkPausedConditions) and `progress.go` (syncRolloutStatus, requeueStuckDeployment).

use std::time::Duration;

use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentStatus};

use super::util::{
    available_replicas, get_condition, new_condition, ready_replicas, remove_condition,
    set_condition, spec_replicas, status_replicas,
};
use super::{
    Planner, CONDITION_AVAILABLE, CONDITION_PROGRESSING, CONDITION_REPLICA_FAILURE,
    REASON_DEPLOYMENT_PAUSED, REASON_DEPLOYMENT_RESUMED, REASON_MINIMUM_REPLICAS_AVAILABLE,
    REASON_MINIMUM_REPLICAS_UNAVAILABLE, REASON_NEW_REPLICA_SET_AVAILABLE,
    REASON_PROGRESS_DEADLINE_EXCEEDED, REASON_REPLICA_SET_UPDATED,
};

const NANOS_PER_SECOND: i128 = 1_000_000_000;

impl Planner<'_> {
    /// `checkPausedConditions`: a Progressing condition with reason DeploymentPaused while
    /// paused, DeploymentResumed once resumed, so that the pause does not count against the
    /// progress deadline. A timed-out condition is left alone.
    pub(super) fn check_paused_conditions(&mut self) {
        if self.progress_deadline_seconds.is_none() {
            return;
        }
        let reason =
            get_condition(&self.status, CONDITION_PROGRESSING).and_then(|c| c.reason.clone());
        if reason.as_deref() == Some(REASON_PROGRESS_DEADLINE_EXCEEDED) {
            return;
        }
        let paused_condition_exists = reason.as_deref() == Some(REASON_DEPLOYMENT_PAUSED);
        let condition = if self.paused && !paused_condition_exists {
            (REASON_DEPLOYMENT_PAUSED, "Deployment is paused")
        } else if !self.paused && paused_condition_exists {
            (REASON_DEPLOYMENT_RESUMED, "Deployment is resumed")
        } else {
            return;
        };
        let condition = new_condition(
            CONDITION_PROGRESSING,
            "Unknown",
            condition.0,
            condition.1.to_string(),
            self.now_ts,
        );
        set_condition(&mut self.status, condition);
    }

    /// `calculateStatus`: counters from the ReplicaSets' status, and the Available
    /// condition. Counters are always explicit so that a merge patch also clears them.
    fn calculate_status(&self, all: &[usize], new: Option<usize>) -> DeploymentStatus {
        let available = self.sum(all, available_replicas);
        let total = self.sum(all, spec_replicas);
        let mut status = DeploymentStatus {
            observed_generation: Some(self.generation),
            replicas: Some(self.sum(all, status_replicas)),
            updated_replicas: Some(new.map_or(0, |n| status_replicas(&self.rss[n]))),
            ready_replicas: Some(self.sum(all, ready_replicas)),
            available_replicas: Some(available),
            unavailable_replicas: Some((total - available).max(0)),
            collision_count: self.status.collision_count,
            terminating_replicas: self.terminating_replicas(all),
            conditions: Some(self.status.conditions.clone().unwrap_or_default()),
        };
        let condition = if available >= self.replicas - self.max_unavailable() {
            new_condition(
                CONDITION_AVAILABLE,
                "True",
                REASON_MINIMUM_REPLICAS_AVAILABLE,
                "Deployment has minimum availability.".to_string(),
                self.now_ts,
            )
        } else {
            new_condition(
                CONDITION_AVAILABLE,
                "False",
                REASON_MINIMUM_REPLICAS_UNAVAILABLE,
                "Deployment does not have minimum availability.".to_string(),
                self.now_ts,
            )
        };
        set_condition(&mut status, condition);
        status
    }

    /// `GetTerminatingReplicaCountForReplicaSets` (feature DeploymentReplicaSetTerminatingReplicas,
    /// on by default since 1.35): unknown as soon as an observed ReplicaSet does not report it;
    /// ReplicaSets not yet observed by their controller are skipped.
    fn terminating_replicas(&self, all: &[usize]) -> Option<i32> {
        let mut total = 0;
        for &i in all {
            let status = self.rss[i].status.as_ref();
            let terminating = status.and_then(|s| s.terminating_replicas);
            let observed = status.and_then(|s| s.observed_generation).unwrap_or(0);
            match terminating {
                None if observed == 0 => {}
                None => return None,
                Some(n) => total += n,
            }
        }
        Some(total)
    }

    /// `syncDeploymentStatus`.
    pub(super) fn sync_deployment_status(&mut self, all: &[usize], new: Option<usize>) {
        self.status = self.calculate_status(all, new);
    }

    /// `DeploymentComplete`: every replica updated and available, the spec observed.
    pub(super) fn deployment_complete(&self, status: &DeploymentStatus) -> bool {
        status.updated_replicas.unwrap_or(0) == self.replicas
            && status.replicas.unwrap_or(0) == self.replicas
            && status.available_replicas.unwrap_or(0) == self.replicas
            && status.observed_generation.unwrap_or(0) >= self.generation
    }

    /// `DeploymentProgressing`: more updated, ready or available replicas, or fewer old
    /// ones, than in the current status.
    fn deployment_progressing(&self, new_status: &DeploymentStatus) -> bool {
        let old = &self.status;
        let get = |v: Option<i32>| v.unwrap_or(0);
        let old_old_replicas = get(old.replicas) - get(old.updated_replicas);
        let new_old_replicas = get(new_status.replicas) - get(new_status.updated_replicas);
        get(new_status.updated_replicas) > get(old.updated_replicas)
            || new_old_replicas < old_old_replicas
            || get(new_status.ready_replicas) > get(old.ready_replicas)
            || get(new_status.available_replicas) > get(old.available_replicas)
    }

    /// Nanoseconds from now until the Progressing condition's lastUpdateTime plus the
    /// deadline (negative once past). A missing time is Go's zero time: long past.
    fn until_deadline(&self, condition: &DeploymentCondition, deadline_seconds: i32) -> i128 {
        let Some(from) = condition.last_update_time.as_ref() else {
            return i128::MIN / 2;
        };
        let now = i128::from(self.now.timestamp()) * NANOS_PER_SECOND
            + i128::from(self.now.timestamp_subsec_nanos());
        from.0.as_nanosecond() + i128::from(deadline_seconds) * NANOS_PER_SECOND - now
    }

    /// `DeploymentTimedOut`.
    fn deployment_timed_out(&self, new_status: &DeploymentStatus) -> bool {
        let Some(deadline) = self.progress_deadline_seconds else {
            return false;
        };
        let Some(condition) = get_condition(new_status, CONDITION_PROGRESSING) else {
            return false;
        };
        match condition.reason.as_deref() {
            Some(REASON_NEW_REPLICA_SET_AVAILABLE) => false,
            Some(REASON_PROGRESS_DEADLINE_EXCEEDED) => true,
            _ => self.until_deadline(condition, deadline) < 0,
        }
    }

    /// `syncRolloutStatus`: the status plus the Progressing condition (complete,
    /// progressing, or timed out) and ReplicaFailure; then when to look again.
    pub(super) fn sync_rollout_status(&mut self, all: &[usize], new: Option<usize>) {
        let mut new_status = self.calculate_status(all, new);
        if self.progress_deadline_seconds.is_none() {
            remove_condition(&mut new_status, CONDITION_PROGRESSING);
        }
        let current = get_condition(&self.status, CONDITION_PROGRESSING).cloned();
        // A finished rollout on a resync: nothing to estimate.
        let is_complete_deployment = new_status.replicas == new_status.updated_replicas
            && current.as_ref().and_then(|c| c.reason.as_deref())
                == Some(REASON_NEW_REPLICA_SET_AVAILABLE);
        if self.progress_deadline_seconds.is_some() && !is_complete_deployment {
            let subject = match new {
                Some(n) => format!("ReplicaSet \"{}\"", self.rs_name(n)),
                None => format!("Deployment \"{}\"", self.name),
            };
            if self.deployment_complete(&new_status) {
                let condition = new_condition(
                    CONDITION_PROGRESSING,
                    "True",
                    REASON_NEW_REPLICA_SET_AVAILABLE,
                    format!("{subject} has successfully progressed."),
                    self.now_ts,
                );
                set_condition(&mut new_status, condition);
            } else if self.deployment_progressing(&new_status) {
                // Unlike other conditions, lastUpdateTime moves on every sign of progress.
                let mut condition = new_condition(
                    CONDITION_PROGRESSING,
                    "True",
                    REASON_REPLICA_SET_UPDATED,
                    format!("{subject} is progressing."),
                    self.now_ts,
                );
                if let Some(current) = &current {
                    if current.status == "True" {
                        condition
                            .last_transition_time
                            .clone_from(&current.last_transition_time);
                    }
                    remove_condition(&mut new_status, CONDITION_PROGRESSING);
                }
                set_condition(&mut new_status, condition);
            } else if self.deployment_timed_out(&new_status) {
                let condition = new_condition(
                    CONDITION_PROGRESSING,
                    "False",
                    REASON_PROGRESS_DEADLINE_EXCEEDED,
                    format!("{subject} has timed out progressing."),
                    self.now_ts,
                );
                set_condition(&mut new_status, condition);
            }
        }
        match self.replica_failures(all, new) {
            Some(failure) => set_condition(&mut new_status, failure),
            None => remove_condition(&mut new_status, CONDITION_REPLICA_FAILURE),
        }
        self.status = new_status;
        self.requeue_after = self.requeue_stuck_deployment();
    }

    /// `getReplicaFailures`: the new ReplicaSet's ReplicaFailure condition, else the first of
    /// any ReplicaSet, as a Deployment condition.
    fn replica_failures(&self, all: &[usize], new: Option<usize>) -> Option<DeploymentCondition> {
        let failure = |i: usize| {
            self.rss[i]
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == CONDITION_REPLICA_FAILURE))
        };
        let condition = new
            .and_then(failure)
            .or_else(|| all.iter().find_map(|&i| failure(i)))?;
        Some(DeploymentCondition {
            type_: condition.type_.clone(),
            status: condition.status.clone(),
            reason: condition.reason.clone(),
            message: condition.message.clone(),
            last_update_time: condition.last_transition_time.clone(),
            last_transition_time: condition.last_transition_time.clone(),
        })
    }

    /// `requeueStuckDeployment`: while a rollout is under way, look again when the progress
    /// deadline runs out (plus a second against clock skew). Nothing to wait for once
    /// complete or timed out, or when no deadline can fire.
    fn requeue_stuck_deployment(&self) -> Option<Duration> {
        let deadline = self.progress_deadline_seconds?;
        let condition = get_condition(&self.status, CONDITION_PROGRESSING)?;
        if self.deployment_complete(&self.status) {
            return None;
        }
        if matches!(
            condition.reason.as_deref(),
            Some(REASON_PROGRESS_DEADLINE_EXCEEDED) | Some(REASON_NEW_REPLICA_SET_AVAILABLE)
        ) {
            return None;
        }
        let nanos = self.until_deadline(condition, deadline).max(0);
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
        Some(Duration::from_nanos(nanos) + Duration::from_secs(1))
    }
}
