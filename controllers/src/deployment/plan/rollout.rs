//! Scaling and rollouts: upstream `sync.go` (sync, scale, isScalingEvent,
//! cleanupDeployment), `rolling.go` and `recreate.go`.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Pod;

use super::util::{
    self, available_replicas, cmp_by_creation, non_negative_i32_annotation, spec_replicas,
    status_replicas,
};
use super::{Action, Planner, Step, DESIRED_REPLICAS_ANNOTATION, MAX_REPLICAS_ANNOTATION};

impl Planner<'_> {
    /// `syncStatusOnly`: a Deployment being deleted only gets its status updated.
    pub(super) fn sync_status_only(&mut self) -> Step<()> {
        let (new, old) = self.get_all_rs_and_sync_revision(false)?;
        let all = with_new(&old, new);
        self.sync_deployment_status(&all, new);
        Ok(())
    }

    /// `sync`: scaling events and paused Deployments — scale, never roll out.
    pub(super) fn sync(&mut self) -> Step<()> {
        let (new, old) = self.get_all_rs_and_sync_revision(false)?;
        self.scale(new, &old);
        if self.paused {
            self.cleanup_deployment(&old);
        }
        let all = with_new(&old, new);
        self.sync_deployment_status(&all, new);
        Ok(())
    }

    /// `isScalingEvent`: an active ReplicaSet records a desired size other than ours.
    pub(super) fn is_scaling_event(&mut self) -> Step<bool> {
        let (new, old) = self.get_all_rs_and_sync_revision(false)?;
        let all = with_new(&old, new);
        Ok(self.active(&all).into_iter().any(|i| {
            non_negative_i32_annotation(&self.rss[i], DESIRED_REPLICAS_ANNOTATION)
                .is_some_and(|desired| desired != self.replicas)
        }))
    }

    /// `scale`: brings the ReplicaSets to the Deployment's size — the only active one (or
    /// the newest) directly, old ones to zero when the new one is saturated, otherwise
    /// proportionally to their sizes (rolling updates only).
    fn scale(&mut self, new: Option<usize>, old: &[usize]) {
        if let Some(i) = self.find_active_or_latest(new, old) {
            if spec_replicas(&self.rss[i]) != self.replicas {
                self.scale_and_record(i, self.replicas);
            }
            return;
        }
        if new.is_some_and(|n| self.is_saturated(n)) {
            for i in self.active(old) {
                self.scale_and_record(i, 0);
            }
            return;
        }
        if !self.is_rolling() {
            return;
        }
        let mut all = self.active(&with_new(old, new));
        let all_replicas = self.sum(&all, spec_replicas);
        let allowed_size = if self.replicas > 0 {
            self.replicas + self.max_surge()
        } else {
            0
        };
        // Replicas to add (or remove, when negative), spread over the active ReplicaSets
        // from the largest to the smallest: newer first when scaling up, older first when
        // scaling down.
        let to_add = allowed_size - all_replicas;
        if to_add > 0 {
            all.sort_by(|&a, &b| util::cmp_by_size_newer(&self.rss[a], &self.rss[b]));
        } else if to_add < 0 {
            all.sort_by(|&a, &b| util::cmp_by_size_older(&self.rss[a], &self.rss[b]));
        }
        let mut added = 0;
        let mut sizes = Vec::with_capacity(all.len());
        for &i in &all {
            let current = spec_replicas(&self.rss[i]);
            if to_add != 0 {
                let proportion = self.replica_set_proportion(i, to_add, added);
                sizes.push(current + proportion);
                added += proportion;
            } else {
                sizes.push(current);
            }
        }
        for (k, &i) in all.iter().enumerate() {
            if k == 0 && to_add != 0 {
                // The leftover goes to the largest ReplicaSet.
                sizes[0] = (sizes[0] + to_add - added).max(0);
            }
            self.scale_replica_set(i, sizes[k], to_add > 0);
        }
    }

    /// `FindActiveOrLatest`: the only active ReplicaSet, or the newest one when none is
    /// active; `None` when several are active.
    fn find_active_or_latest(&self, new: Option<usize>, old: &[usize]) -> Option<usize> {
        if new.is_none() && old.is_empty() {
            return None;
        }
        let mut old_sorted = old.to_vec();
        old_sorted.sort_by(|&a, &b| cmp_by_creation(&self.rss[b], &self.rss[a]));
        let active = self.active(&with_new(&old_sorted, new));
        match active.as_slice() {
            [] => new.or_else(|| old_sorted.first().copied()),
            [only] => Some(*only),
            _ => None,
        }
    }

    /// `IsSaturated`: the new ReplicaSet runs exactly the Deployment's size, all available.
    fn is_saturated(&self, i: usize) -> bool {
        let rs = &self.rss[i];
        let Some(desired) =
            util::annotation(rs, DESIRED_REPLICAS_ANNOTATION).and_then(|v| v.parse::<i32>().ok())
        else {
            return false;
        };
        spec_replicas(rs) == self.replicas
            && desired == self.replicas
            && available_replicas(rs) == self.replicas
    }

    /// `GetReplicaSetProportion`.
    fn replica_set_proportion(&self, i: usize, to_add: i32, added: i32) -> i32 {
        if spec_replicas(&self.rss[i]) == 0 || to_add == 0 || to_add == added {
            return 0;
        }
        let fraction = self.replica_set_fraction(i);
        let allowed = to_add - added;
        if to_add > 0 {
            fraction.min(allowed)
        } else {
            fraction.max(allowed)
        }
    }

    /// `getReplicaSetFraction`: how much this ReplicaSet grows (or shrinks) when the
    /// Deployment's maximum size goes from the recorded `max-replicas` to the current one.
    fn replica_set_fraction(&self, i: usize) -> i32 {
        let rs = &self.rss[i];
        let size = spec_replicas(rs);
        if self.replicas == 0 {
            return -size;
        }
        let max_replicas = self.replicas + self.max_surge();
        let before = match non_negative_i32_annotation(rs, MAX_REPLICAS_ANNOTATION) {
            Some(v) if v != 0 => v,
            _ => {
                // Fall back to the Deployment's current size.
                let replicas = self.status.replicas.unwrap_or(0);
                if replicas == 0 {
                    return 0;
                }
                replicas
            }
        };
        let new_size = f64::from(size) * f64::from(max_replicas) / f64::from(before);
        (new_size + 0.5).floor() as i32 - size
    }

    /// `rolloutRolling`.
    pub(super) fn rollout_rolling(&mut self) -> Step<()> {
        let (new, old) = self.get_all_rs_and_sync_revision(true)?;
        let Some(new) = new else {
            return Ok(());
        };
        let all = with_new(&old, Some(new));
        if self.reconcile_new_replica_set(&all, new) {
            self.sync_rollout_status(&all, Some(new));
            return Ok(());
        }
        let active_old = self.active(&old);
        if self.reconcile_old_replica_sets(&all, &active_old, new) {
            self.sync_rollout_status(&all, Some(new));
            return Ok(());
        }
        if self.deployment_complete(&self.status) {
            self.cleanup_deployment(&old);
        }
        self.sync_rollout_status(&all, Some(new));
        Ok(())
    }

    /// `reconcileNewReplicaSet`: scale the new ReplicaSet up within maxSurge (or down to the
    /// Deployment's size).
    fn reconcile_new_replica_set(&mut self, all: &[usize], new: usize) -> bool {
        let current = spec_replicas(&self.rss[new]);
        if current == self.replicas {
            return false;
        }
        if current > self.replicas {
            return self.scale_and_record(new, self.replicas);
        }
        let count = self.new_rs_new_replicas(self.sum(all, spec_replicas), current);
        self.scale_and_record(new, count)
    }

    /// `reconcileOldReplicaSets`: scale old ReplicaSets down as far as maxUnavailable allows,
    /// their unhealthy replicas first.
    fn reconcile_old_replica_sets(&mut self, all: &[usize], old: &[usize], new: usize) -> bool {
        if self.sum(old, spec_replicas) == 0 {
            return false;
        }
        let all_pods = self.sum(all, spec_replicas);
        let min_available = self.replicas - self.max_unavailable();
        let new_unavailable = spec_replicas(&self.rss[new]) - available_replicas(&self.rss[new]);
        // Besides maxUnavailable and surge pods already created, count the new ReplicaSet's
        // unavailable pods, so that they do not let us scale old ones further down.
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return false;
        }
        let Some((old, cleaned)) = self.cleanup_unhealthy_replicas(old, max_scaled_down) else {
            return false;
        };
        let all = with_new(&old, Some(new));
        let scaled = self.scale_down_old_for_rolling_update(&all, &old);
        cleaned + scaled > 0
    }

    /// `cleanupUnhealthyReplicas`: scale old ReplicaSets down by their unavailable replicas
    /// (oldest first), at most `max_cleanup` in all. `None` on an inconsistent ReplicaSet.
    fn cleanup_unhealthy_replicas(
        &mut self,
        old: &[usize],
        max_cleanup: i32,
    ) -> Option<(Vec<usize>, i32)> {
        let mut sorted = old.to_vec();
        sorted.sort_by(|&a, &b| cmp_by_creation(&self.rss[a], &self.rss[b]));
        let mut total = 0;
        for &i in &sorted {
            if total >= max_cleanup {
                break;
            }
            let replicas = spec_replicas(&self.rss[i]);
            let available = available_replicas(&self.rss[i]);
            if replicas == 0 || replicas == available {
                continue;
            }
            let count = (max_cleanup - total).min(replicas - available);
            let new_count = replicas - count;
            if new_count > replicas {
                return None;
            }
            self.scale_and_record(i, new_count);
            total += count;
        }
        Some((sorted, total))
    }

    /// `scaleDownOldReplicaSetsForRollingUpdate`: scale old ReplicaSets down (oldest first)
    /// by the available replicas above the minimum.
    fn scale_down_old_for_rolling_update(&mut self, all: &[usize], old: &[usize]) -> i32 {
        let min_available = self.replicas - self.max_unavailable();
        let available = self.sum(all, available_replicas);
        if available <= min_available {
            return 0;
        }
        let mut sorted = old.to_vec();
        sorted.sort_by(|&a, &b| cmp_by_creation(&self.rss[a], &self.rss[b]));
        let to_scale_down = available - min_available;
        let mut total = 0;
        for i in sorted {
            if total >= to_scale_down {
                break;
            }
            let replicas = spec_replicas(&self.rss[i]);
            if replicas == 0 {
                continue;
            }
            let count = replicas.min(to_scale_down - total);
            self.scale_and_record(i, replicas - count);
            total += count;
        }
        total
    }

    /// `rolloutRecreate`: old ReplicaSets to zero, wait until none of their pods runs, then
    /// create/scale the new one.
    pub(super) fn rollout_recreate(&mut self, pod_map: &HashMap<String, Vec<&Pod>>) -> Step<()> {
        let (mut new, mut old) = self.get_all_rs_and_sync_revision(false)?;
        let mut all = with_new(&old, new);
        let mut scaled_down = false;
        for i in self.active(&old) {
            scaled_down |= self.scale_and_record(i, 0);
        }
        if scaled_down || self.old_pods_running(new, &old, pod_map) {
            self.sync_rollout_status(&all, new);
            return Ok(());
        }
        if new.is_none() {
            (new, old) = self.get_all_rs_and_sync_revision(true)?;
            all = with_new(&old, new);
        }
        if let Some(n) = new {
            self.scale_and_record(n, self.replicas);
        }
        if self.deployment_complete(&self.status) {
            self.cleanup_deployment(&old);
        }
        self.sync_rollout_status(&all, new);
        Ok(())
    }

    /// `oldPodsRunning`: an old ReplicaSet reports pods, or one of its pods is not in a
    /// terminal phase (Unknown counts as running).
    fn old_pods_running(
        &self,
        new: Option<usize>,
        old: &[usize],
        pod_map: &HashMap<String, Vec<&Pod>>,
    ) -> bool {
        if self.sum(old, status_replicas) > 0 {
            return true;
        }
        let new_uid = new.and_then(|n| self.rss[n].metadata.uid.as_deref());
        pod_map
            .iter()
            .filter(|(uid, _)| Some(uid.as_str()) != new_uid)
            .flat_map(|(_, pods)| pods.iter())
            .any(|pod| {
                let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
                !matches!(phase, Some("Failed") | Some("Succeeded"))
            })
    }

    /// `cleanupDeployment`: delete the oldest old ReplicaSets beyond revisionHistoryLimit
    /// that are fully scaled down, observed at their latest generation and not already being
    /// deleted.
    fn cleanup_deployment(&mut self, old: &[usize]) {
        let Some(limit) = self.revision_history_limit else {
            return;
        };
        let mut cleanable: Vec<usize> = old
            .iter()
            .copied()
            .filter(|&i| self.rss[i].metadata.deletion_timestamp.is_none())
            .collect();
        let diff = cleanable.len() as i64 - i64::from(limit);
        if diff <= 0 {
            return;
        }
        cleanable.sort_by(|&a, &b| util::cmp_by_revision(&self.rss[a], &self.rss[b]));
        for &i in cleanable.iter().take(diff as usize) {
            let rs = &self.rss[i];
            let generation = rs.metadata.generation.unwrap_or(0);
            let observed = rs
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            if status_replicas(rs) != 0 || spec_replicas(rs) != 0 || generation > observed {
                continue;
            }
            self.actions.push(Action::DeleteReplicaSet {
                name: rs.metadata.name.clone().unwrap_or_default(),
                uid: rs.metadata.uid.clone().unwrap_or_default(),
            });
        }
    }
}

/// The old ReplicaSets followed by the new one, if any.
pub(super) fn with_new(old: &[usize], new: Option<usize>) -> Vec<usize> {
    let mut all = old.to_vec();
    all.extend(new);
    all
}
