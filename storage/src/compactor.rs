//! Periodic compaction, as kube-apiserver runs it against etcd.

use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::{Revision, StorageError, Store};

/// When [`spawn_compactor`] compacts.
///
/// Every `interval` the compactor compacts to the revision that was current at the previous
/// tick, as kube-apiserver does (its `--etcd-compaction-interval`, default 5 minutes): so a
/// watch or a paged list that is less than one interval old can always be resumed. It never
/// compacts the last `min_retained_revisions` revisions, so that a burst of writes still
/// leaves a window of history for slow watchers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactionPolicy {
    pub interval: Duration,
    pub min_retained_revisions: i64,
}

impl Default for CompactionPolicy {
    /// Every 5 minutes (kube-apiserver's default), keeping at least the last 1,000 revisions
    /// (kine's default).
    fn default() -> Self {
        CompactionPolicy {
            interval: Duration::from_secs(300),
            min_retained_revisions: 1000,
        }
    }
}

impl CompactionPolicy {
    /// The revision to compact to at a tick: `previous_tick` (the revision current at the
    /// previous tick) but no later than `current - min_retained_revisions`.
    pub fn target(&self, previous_tick: Revision, current: Revision) -> Revision {
        previous_tick
            .min(current - self.min_retained_revisions.max(0))
            .max(0)
    }
}

/// Starts a task (on the current tokio runtime) that compacts `store` by `policy`.
///
/// The task holds only a weak reference: it ends by itself once the store is dropped (or
/// reports itself closed); abort the handle to stop it earlier. Failures are logged and
/// retried at the next tick.
pub fn spawn_compactor<S: Store + ?Sized>(
    store: &Arc<S>,
    policy: CompactionPolicy,
) -> tokio::task::JoinHandle<()> {
    let weak: Weak<S> = Arc::downgrade(store);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(policy.interval.max(Duration::from_millis(1)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut previous_tick: Option<Revision> = None;
        loop {
            ticker.tick().await;
            let Some(store) = weak.upgrade() else { return };
            let current = match store.current_revision().await {
                Ok(r) => r,
                Err(StorageError::Unavailable(msg)) => {
                    tracing::debug!(%msg, "compactor: store unavailable, stopping");
                    return;
                }
                Err(err) => {
                    tracing::warn!(%err, "compactor: cannot read the current revision");
                    continue;
                }
            };
            if let Some(previous) = previous_tick {
                let target = policy.target(previous, current);
                match store.compacted_revision().await {
                    Ok(compacted) if target > compacted => match store.compact(target).await {
                        Ok(()) => tracing::info!(revision = target, "compacted store history"),
                        Err(StorageError::Compacted { .. }) => {}
                        Err(StorageError::Unavailable(msg)) => {
                            tracing::debug!(%msg, "compactor: store unavailable, stopping");
                            return;
                        }
                        Err(err) => tracing::warn!(%err, revision = target, "compaction failed"),
                    },
                    Ok(_) => {}
                    Err(err) => {
                        tracing::warn!(%err, "compactor: cannot read the compacted revision")
                    }
                }
            }
            previous_tick = Some(current);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_keeps_one_interval_and_the_minimum_window() {
        let p = CompactionPolicy {
            interval: Duration::from_secs(1),
            min_retained_revisions: 100,
        };
        assert_eq!(p.target(500, 10_000), 500);
        assert_eq!(p.target(9_990, 10_000), 9_900);
        assert_eq!(p.target(50, 60), 0);
    }
}
