//! A work queue after client-go's `workqueue`: an item is queued at most once, an item
//! being processed is not handed to a second worker (a re-add while it is processed queues
//! it again after `done`), and failures are retried with a per-item exponential back-off.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

struct State<K> {
    queue: VecDeque<K>,
    /// Items waiting to be processed (queued, or re-added while processing).
    dirty: HashSet<K>,
    processing: HashSet<K>,
    failures: HashMap<K, u32>,
}

struct Inner<K> {
    state: Mutex<State<K>>,
    notify: Notify,
    base_delay: Duration,
    max_delay: Duration,
}

/// A cloneable handle on one queue.
pub(crate) struct Queue<K> {
    inner: Arc<Inner<K>>,
}

impl<K> Clone for Queue<K> {
    fn clone(&self) -> Self {
        Queue {
            inner: self.inner.clone(),
        }
    }
}

impl<K: Clone + Eq + Hash + Send + 'static> Queue<K> {
    /// A queue whose failed items wait `base_delay * 2^(failures-1)`, at most `max_delay`.
    pub(crate) fn new(base_delay: Duration, max_delay: Duration) -> Self {
        Queue {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    dirty: HashSet::new(),
                    processing: HashSet::new(),
                    failures: HashMap::new(),
                }),
                notify: Notify::new(),
                base_delay,
                max_delay,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State<K>> {
        // A poisoned lock only means another worker panicked mid-update; the sets stay usable.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `key` unless it is already waiting.
    pub(crate) fn add(&self, key: K) {
        let mut state = self.state();
        if !state.dirty.insert(key.clone()) {
            return;
        }
        if state.processing.contains(&key) {
            return;
        }
        state.queue.push_back(key);
        drop(state);
        self.inner.notify.notify_one();
    }

    /// Queues `key` after `delay`.
    pub(crate) fn add_after(&self, key: K, delay: Duration) {
        if delay.is_zero() {
            self.add(key);
            return;
        }
        let queue = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            queue.add(key);
        });
    }

    /// Queues `key` again after its back-off, which doubles with every failure.
    pub(crate) fn add_rate_limited(&self, key: K) {
        let failures = {
            let mut state = self.state();
            let n = state.failures.entry(key.clone()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        self.add_after(key, self.backoff(failures));
    }

    fn backoff(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(30);
        self.inner
            .base_delay
            .saturating_mul(1u32 << exp)
            .min(self.inner.max_delay)
    }

    /// Clears the failure count of `key`.
    pub(crate) fn forget(&self, key: &K) {
        self.state().failures.remove(key);
    }

    /// How often `key` failed since it was last forgotten.
    #[cfg(test)]
    pub(crate) fn failures(&self, key: &K) -> u32 {
        self.state().failures.get(key).copied().unwrap_or(0)
    }

    fn try_get(&self) -> Option<(K, bool)> {
        let mut state = self.state();
        let key = state.queue.pop_front()?;
        state.dirty.remove(&key);
        state.processing.insert(key.clone());
        Some((key, !state.queue.is_empty()))
    }

    /// The next item; the caller must call [`Queue::done`] when it has processed it.
    pub(crate) async fn get(&self) -> K {
        loop {
            if let Some((key, more)) = self.try_get() {
                if more {
                    // Pass the wake-up on: one permit may stand for several adds.
                    self.inner.notify.notify_one();
                }
                return key;
            }
            self.inner.notify.notified().await;
        }
    }

    /// Marks `key` processed; an add that arrived meanwhile queues it again.
    pub(crate) fn done(&self, key: &K) {
        let mut state = self.state();
        state.processing.remove(key);
        if state.dirty.contains(key) {
            state.queue.push_back(key.clone());
            drop(state);
            self.inner.notify.notify_one();
        }
    }

    /// Items waiting (not counting those being processed).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.state().queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn deduplicates_and_requeues_items_added_while_processing() {
        let q: Queue<String> = Queue::new(Duration::from_millis(5), Duration::from_secs(1));
        q.add("a".into());
        q.add("a".into());
        q.add("b".into());
        assert_eq!(q.len(), 2);
        let first = q.get().await;
        assert_eq!(first, "a");
        // Re-added while processing: not handed out twice, queued again after done.
        q.add("a".into());
        assert_eq!(q.get().await, "b");
        assert_eq!(q.len(), 0);
        q.done(&first);
        assert_eq!(q.len(), 1);
        assert_eq!(q.get().await, "a");
    }

    #[tokio::test]
    async fn backs_off_exponentially_and_forgets() {
        let q: Queue<String> = Queue::new(Duration::from_millis(5), Duration::from_millis(40));
        assert_eq!(q.backoff(1), Duration::from_millis(5));
        assert_eq!(q.backoff(2), Duration::from_millis(10));
        assert_eq!(q.backoff(4), Duration::from_millis(40));
        assert_eq!(q.backoff(20), Duration::from_millis(40));
        q.add_rate_limited("x".into());
        q.add_rate_limited("x".into());
        assert_eq!(q.failures(&"x".to_string()), 2);
        let got = tokio::time::timeout(Duration::from_secs(2), q.get()).await;
        assert_eq!(got.ok().as_deref(), Some("x"));
        q.forget(&"x".to_string());
        assert_eq!(q.failures(&"x".to_string()), 0);
    }

    #[tokio::test]
    async fn wakes_every_waiting_worker() {
        let q: Queue<u32> = Queue::new(Duration::from_millis(5), Duration::from_secs(1));
        let mut workers = Vec::new();
        for _ in 0..3 {
            let q = q.clone();
            workers.push(tokio::spawn(async move { q.get().await }));
        }
        tokio::task::yield_now().await;
        for i in 0..3 {
            q.add(i);
        }
        let mut got = Vec::new();
        for w in workers {
            let v = tokio::time::timeout(Duration::from_secs(2), w).await;
            got.push(v.ok().and_then(|r| r.ok()));
        }
        got.sort();
        assert_eq!(got, vec![Some(0), Some(1), Some(2)]);
    }
}
