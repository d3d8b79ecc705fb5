//! The scheduling queue, after kube-scheduler's `PriorityQueue`
//! (`pkg/scheduler/backend/queue/scheduling_queue.go`).
//!
//! Three sub-queues hold the pods waiting to be scheduled; a key is in at most one of them:
//!
//! - **active**: pods the scheduler should try now, popped highest priority first and, among
//!   equal priorities, oldest timestamp first (the `PrioritySort` queue-sort plugin);
//! - **backoff**: pods that failed an attempt and wait out their backoff
//!   (`initial_backoff` doubling per attempt up to `max_backoff`) before going back to active;
//! - **unschedulable**: pods found unschedulable, parked until a cluster event that may help
//!   them ([`SchedulingQueue::move_all_to_active_or_backoff`]), an update of the pod itself, or
//!   `max_in_unschedulable` (upstream `podMaxInUnschedulablePodsDuration`, 5 minutes) passes.
//!
//! A popped pod is *in flight* until its attempt ends ([`SchedulingQueue::add_unschedulable`],
//! [`SchedulingQueue::add_backoff`] or [`SchedulingQueue::done`]). If a move request arrives
//! while a pod is in flight (upstream `moveRequestCycle`), or the pod itself is updated, a
//! failed attempt sends it to backoff instead of unschedulable, so the event is not lost. A pod
//! deleted while in flight is not queued again.
//!
//! The queue is generic over the queued item so it can be tested without Kubernetes objects; it
//! is internally synchronised (a mutex plus a [`tokio::sync::Notify`]) so one task pops while
//! watch handlers add, update and delete.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Upstream `DefaultPodInitialBackoffDuration`.
pub const DEFAULT_POD_INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Upstream `DefaultPodMaxBackoffDuration`.
pub const DEFAULT_POD_MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Upstream `DefaultPodMaxInUnschedulablePodsDuration`.
pub const DEFAULT_POD_MAX_IN_UNSCHEDULABLE: Duration = Duration::from_secs(5 * 60);
/// How often [`SchedulingQueue::spawn_flusher`] flushes the backoff and unschedulable queues.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Timing parameters of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    /// Backoff after the first failed attempt (`podInitialBackoffSeconds`, 1 s).
    pub initial_backoff: Duration,
    /// Upper bound of the backoff (`podMaxBackoffSeconds`, 10 s).
    pub max_backoff: Duration,
    /// How long a pod may stay unschedulable before it is retried anyway (5 min).
    pub max_in_unschedulable: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            initial_backoff: DEFAULT_POD_INITIAL_BACKOFF,
            max_backoff: DEFAULT_POD_MAX_BACKOFF,
            max_in_unschedulable: DEFAULT_POD_MAX_IN_UNSCHEDULABLE,
        }
    }
}

impl QueueConfig {
    /// The backoff after `attempts` scheduling attempts, as upstream
    /// `calculateBackoffDuration`: none before the first attempt, then `initial_backoff`
    /// doubled per further attempt, capped at `max_backoff` (1, 2, 4, 8, 10, 10, ... s).
    pub fn backoff_duration(&self, attempts: u32) -> Duration {
        if attempts == 0 {
            return Duration::ZERO;
        }
        let mut duration = self.initial_backoff;
        for _ in 1..attempts {
            // Compare before doubling so a large attempt count cannot overflow.
            if duration > self.max_backoff.saturating_sub(duration) {
                return self.max_backoff;
            }
            duration += duration;
        }
        duration.min(self.max_backoff)
    }
}

/// A pod in the queue together with its queueing bookkeeping (upstream `QueuedPodInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedPod<T> {
    /// `namespace/name`.
    pub key: String,
    pub uid: String,
    /// `spec.priority` (0 when unset).
    pub priority: i32,
    pub item: T,
    /// Scheduling attempts so far; incremented when the pod is popped.
    pub attempts: u32,
    /// When the pod was first popped.
    pub initial_attempt: Option<Instant>,
    /// When the pod was added, or re-queued after a failed attempt. Moving between the
    /// sub-queues keeps it, as upstream: it orders the active queue and starts the backoff.
    pub timestamp: Instant,
    /// Plugins that rejected the pod in its last attempt; cleared when it is popped.
    pub unschedulable_plugins: BTreeSet<String>,
}

impl<T> QueuedPod<T> {
    /// A fresh pod that has not been tried yet.
    pub fn new(key: String, uid: String, priority: i32, item: T, now: Instant) -> Self {
        Self {
            key,
            uid,
            priority,
            item,
            attempts: 0,
            initial_attempt: None,
            timestamp: now,
            unschedulable_plugins: BTreeSet::new(),
        }
    }

    /// When the pod's backoff ends: `timestamp + backoff_duration(attempts)`.
    pub fn backoff_expiry(&self, config: &QueueConfig) -> Instant {
        let duration = config.backoff_duration(self.attempts);
        // Only an absurd `max_backoff` overflows `Instant`; treat it as no backoff.
        self.timestamp
            .checked_add(duration)
            .unwrap_or(self.timestamp)
    }

    /// Whether the pod is still backing off at `now` (upstream `isPodBackingoff`).
    pub fn is_backing_off(&self, config: &QueueConfig, now: Instant) -> bool {
        self.backoff_expiry(config) > now
    }
}

/// A pod nominated to run on a node after preempting others (upstream nominator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NominatedPod<T> {
    pub key: String,
    pub uid: String,
    pub priority: i32,
    pub item: T,
    pub node: String,
}

/// Which sub-queue holds a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueKind {
    Active,
    Backoff,
    Unschedulable,
}

/// Order of the active queue: priority descending, then timestamp, then insertion.
type ActiveKey = (Reverse<i32>, Instant, u64);
/// Order of the backoff queue: backoff expiry, then insertion.
type BackoffKey = (Instant, u64);

#[derive(Debug, Clone, Copy)]
enum Location {
    Active(ActiveKey),
    Backoff(BackoffKey),
    Unschedulable,
}

struct Entry<T> {
    pod: QueuedPod<T>,
    location: Location,
}

/// A popped pod whose attempt has not ended.
struct InFlight<T> {
    uid: String,
    /// The scheduling cycle the pod was popped in.
    cycle: u64,
    /// The pod was deleted during the attempt: do not queue it again.
    deleted: bool,
    /// The pod was updated during the attempt: the latest priority and item.
    updated: Option<(i32, T)>,
}

struct State<T> {
    entries: HashMap<String, Entry<T>>,
    active: BTreeMap<ActiveKey, String>,
    backoff: BTreeMap<BackoffKey, String>,
    unschedulable: BTreeSet<String>,
    in_flight: HashMap<String, InFlight<T>>,
    nominated: HashMap<String, NominatedPod<T>>,
    seq: u64,
    /// Incremented on every pop (upstream `schedulingCycle`).
    scheduling_cycle: u64,
    /// The scheduling cycle of the last move request (upstream `moveRequestCycle`).
    move_request_cycle: Option<u64>,
}

impl<T> State<T> {
    fn new() -> Self {
        Self {
            entries: HashMap::new(),
            active: BTreeMap::new(),
            backoff: BTreeMap::new(),
            unschedulable: BTreeSet::new(),
            in_flight: HashMap::new(),
            nominated: HashMap::new(),
            seq: 0,
            scheduling_cycle: 0,
            move_request_cycle: None,
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Puts `pod` into `kind`, replacing any entry with the same key.
    fn insert(&mut self, pod: QueuedPod<T>, kind: QueueKind, config: &QueueConfig) {
        self.remove(&pod.key);
        let seq = self.next_seq();
        let location = match kind {
            QueueKind::Active => {
                let k = (Reverse(pod.priority), pod.timestamp, seq);
                self.active.insert(k, pod.key.clone());
                Location::Active(k)
            }
            QueueKind::Backoff => {
                let k = (pod.backoff_expiry(config), seq);
                self.backoff.insert(k, pod.key.clone());
                Location::Backoff(k)
            }
            QueueKind::Unschedulable => {
                self.unschedulable.insert(pod.key.clone());
                Location::Unschedulable
            }
        };
        self.entries
            .insert(pod.key.clone(), Entry { pod, location });
    }

    /// Takes the pod with `key` out of whichever sub-queue holds it.
    fn remove(&mut self, key: &str) -> Option<QueuedPod<T>> {
        let entry = self.entries.remove(key)?;
        match entry.location {
            Location::Active(k) => {
                self.active.remove(&k);
            }
            Location::Backoff(k) => {
                self.backoff.remove(&k);
            }
            Location::Unschedulable => {
                self.unschedulable.remove(key);
            }
        }
        Some(entry.pod)
    }

    fn kind_of(&self, key: &str) -> Option<QueueKind> {
        self.entries.get(key).map(|e| match e.location {
            Location::Active(_) => QueueKind::Active,
            Location::Backoff(_) => QueueKind::Backoff,
            Location::Unschedulable => QueueKind::Unschedulable,
        })
    }

    /// Moves the pod with `key` to backoff if it is still backing off at `now`, else to
    /// active. Returns where it went.
    fn move_to_active_or_backoff(
        &mut self,
        key: &str,
        now: Instant,
        config: &QueueConfig,
    ) -> Option<QueueKind> {
        let pod = self.remove(key)?;
        let kind = if pod.is_backing_off(config, now) {
            QueueKind::Backoff
        } else {
            QueueKind::Active
        };
        self.insert(pod, kind, config);
        Some(kind)
    }
}

type Clock = Box<dyn Fn() -> Instant + Send + Sync>;

/// Decides from a pod's unschedulable plugins whether a cluster event may help it.
pub type PluginFilter<'a> = dyn Fn(&BTreeSet<String>) -> bool + 'a;

/// The scheduling queue; see the module documentation.
pub struct SchedulingQueue<T> {
    config: QueueConfig,
    clock: Clock,
    state: Mutex<State<T>>,
    notify: Notify,
}

impl<T> fmt::Debug for SchedulingQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("SchedulingQueue")
            .field("config", &self.config)
            .field("active", &s.active.len())
            .field("backoff", &s.backoff.len())
            .field("unschedulable", &s.unschedulable.len())
            .field("in_flight", &s.in_flight.len())
            .field("scheduling_cycle", &s.scheduling_cycle)
            .finish()
    }
}

impl<T> SchedulingQueue<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding the lock leaves the maps consistent enough to go on.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T: Clone + Send> SchedulingQueue<T> {
    /// An empty queue on the system clock.
    pub fn new(config: QueueConfig) -> Self {
        Self::with_clock(config, Instant::now)
    }

    /// An empty queue reading time from `clock` (upstream `WithClock`), for tests.
    pub fn with_clock(
        config: QueueConfig,
        clock: impl Fn() -> Instant + Send + Sync + 'static,
    ) -> Self {
        Self {
            config,
            clock: Box::new(clock),
            state: Mutex::new(State::new()),
            notify: Notify::new(),
        }
    }

    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// The queue's current time.
    pub fn now(&self) -> Instant {
        (self.clock)()
    }

    /// `config.backoff_duration(attempts)` (upstream `calculateBackoffDuration`).
    pub fn backoff_duration(attempts: u32, config: &QueueConfig) -> Duration {
        config.backoff_duration(attempts)
    }

    /// A new pending pod: to active. A key already queued is updated instead
    /// (see [`Self::update`]).
    pub fn add(&self, key: &str, uid: &str, priority: i32, item: T) {
        self.update_with_hint(key, uid, priority, item, true);
    }

    /// The pod changed; the update is assumed to possibly make it schedulable.
    /// See [`Self::update_with_hint`].
    pub fn update(&self, key: &str, uid: &str, priority: i32, item: T) {
        self.update_with_hint(key, uid, priority, item, true);
    }

    /// The pod changed (upstream `Update`):
    ///
    /// - in active or backoff: replaced in place (a new priority re-sorts it);
    /// - unschedulable: replaced, and if `may_become_schedulable` (upstream `isPodUpdated`:
    ///   more than status, resourceVersion, generation, managedFields or finalizers changed)
    ///   moved to backoff if still backing off, else to active;
    /// - in flight: remembered, so a failed attempt re-queues the latest version to backoff;
    /// - not queued, or queued under another uid (deleted and re-created): added to active as
    ///   a new pod.
    pub fn update_with_hint(
        &self,
        key: &str,
        uid: &str,
        priority: i32,
        item: T,
        may_become_schedulable: bool,
    ) {
        let now = self.now();
        let mut s = self.lock();
        if let Some(n) = s.nominated.get_mut(key) {
            if n.uid == uid {
                n.priority = priority;
                n.item = item.clone();
            }
        }

        let existing = s
            .entries
            .get(key)
            .map(|e| (e.pod.uid == uid, e.pod.priority, e.location));
        match existing {
            Some((true, old_priority, location)) => {
                match location {
                    Location::Active(k) if old_priority != priority => {
                        // Re-sort, keeping the timestamp and FIFO position among equals.
                        s.active.remove(&k);
                        let k = (Reverse(priority), k.1, k.2);
                        s.active.insert(k, key.to_string());
                        if let Some(e) = s.entries.get_mut(key) {
                            e.location = Location::Active(k);
                        }
                    }
                    _ => {}
                }
                if let Some(e) = s.entries.get_mut(key) {
                    e.pod.priority = priority;
                    e.pod.item = item;
                }
                if matches!(location, Location::Unschedulable) && may_become_schedulable {
                    let moved = s.move_to_active_or_backoff(key, now, &self.config);
                    tracing::debug!(pod = key, to = ?moved, "updated unschedulable pod moved");
                    if moved == Some(QueueKind::Active) {
                        drop(s);
                        self.notify.notify_waiters();
                    }
                }
                return;
            }
            Some((false, _, _)) => {
                tracing::debug!(pod = key, uid, "pod re-created under a new uid: re-queued");
            }
            None => {
                if let Some(f) = s.in_flight.get_mut(key) {
                    if f.uid == uid && !f.deleted {
                        f.updated = Some((priority, item));
                        return;
                    }
                }
            }
        }
        let pod = QueuedPod::new(key.to_string(), uid.to_string(), priority, item, now);
        s.insert(pod, QueueKind::Active, &self.config);
        drop(s);
        self.notify.notify_waiters();
    }

    /// The pod is gone: removed from every sub-queue and the nominator. If it is in flight,
    /// its attempt's outcome will not queue it again.
    pub fn delete(&self, key: &str) {
        let mut s = self.lock();
        s.remove(key);
        s.nominated.remove(key);
        if let Some(f) = s.in_flight.get_mut(key) {
            f.deleted = true;
        }
    }

    /// Waits for the head of the active queue and takes it (see [`Self::try_pop`]).
    /// Cancel-safe: dropping the future loses no pod.
    pub async fn pop(&self) -> QueuedPod<T> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Register before looking, so an add between the look and the await wakes us.
            notified.as_mut().enable();
            if let Some(pod) = self.try_pop() {
                return pod;
            }
            notified.await;
        }
    }

    /// Takes the head of the active queue, if any: highest priority, then oldest timestamp.
    /// The pod is marked in flight, its attempts incremented, its first attempt time set and
    /// its unschedulable plugins cleared.
    pub fn try_pop(&self) -> Option<QueuedPod<T>> {
        let now = self.now();
        let mut s = self.lock();
        let (_, key) = s.active.pop_first()?;
        let mut pod = s.entries.remove(&key)?.pod;
        pod.attempts = pod.attempts.saturating_add(1);
        pod.initial_attempt.get_or_insert(now);
        pod.unschedulable_plugins.clear();
        s.scheduling_cycle += 1;
        let cycle = s.scheduling_cycle;
        s.in_flight.insert(
            key,
            InFlight {
                uid: pod.uid.clone(),
                cycle,
                deleted: false,
                updated: None,
            },
        );
        Some(pod)
    }

    /// The attempt for `key` has ended (bound, or given up): forget it is in flight.
    /// [`Self::add_unschedulable`] and [`Self::add_backoff`] do this themselves.
    pub fn done(&self, key: &str) {
        self.lock().in_flight.remove(key);
    }

    /// Ends the in-flight attempt of `pod`. Returns the pod to re-queue, with the latest item
    /// if it was updated meanwhile, and whether something happened during the attempt that
    /// may make it schedulable; `None` if it must not be queued again.
    fn finish_attempt(s: &mut State<T>, mut pod: QueuedPod<T>) -> Option<(QueuedPod<T>, bool)> {
        let mut event_during_attempt = false;
        match s.in_flight.get(&pod.key) {
            Some(f) if f.uid != pod.uid => {
                // A newer pod of the same name is being scheduled: this one was deleted.
                tracing::debug!(pod = %pod.key, "stale attempt of a re-created pod dropped");
                return None;
            }
            Some(_) => {
                if let Some(f) = s.in_flight.remove(&pod.key) {
                    if f.deleted {
                        tracing::debug!(pod = %pod.key, "pod deleted during its attempt");
                        return None;
                    }
                    if let Some((priority, item)) = f.updated {
                        pod.priority = priority;
                        pod.item = item;
                        event_during_attempt = true;
                    }
                    if s.move_request_cycle.is_some_and(|m| m >= f.cycle) {
                        event_during_attempt = true;
                    }
                }
            }
            None => {}
        }
        if s.entries.contains_key(&pod.key) {
            tracing::debug!(pod = %pod.key, "pod already queued; failed attempt dropped");
            return None;
        }
        Some((pod, event_during_attempt))
    }

    /// The attempt failed because no node fits (upstream `AddUnschedulableIfNotPresent`):
    /// the pod goes to unschedulable, remembering `unschedulable_plugins`, or to backoff if a
    /// move request or an update of the pod arrived while it was in flight. Nothing happens if
    /// the pod was deleted meanwhile or is already queued.
    pub fn add_unschedulable(&self, pod: QueuedPod<T>, unschedulable_plugins: BTreeSet<String>) {
        let now = self.now();
        let mut s = self.lock();
        let Some((mut pod, event_during_attempt)) = Self::finish_attempt(&mut s, pod) else {
            return;
        };
        pod.timestamp = now;
        pod.unschedulable_plugins = unschedulable_plugins;
        let kind = if event_during_attempt {
            QueueKind::Backoff
        } else {
            QueueKind::Unschedulable
        };
        tracing::debug!(pod = %pod.key, attempts = pod.attempts, to = ?kind, "pod unschedulable");
        s.insert(pod, kind, &self.config);
    }

    /// The attempt failed with an error that is not "unschedulable" (e.g. binding failed):
    /// the pod goes straight to backoff. Nothing happens if the pod was deleted meanwhile or
    /// is already queued.
    pub fn add_backoff(&self, pod: QueuedPod<T>) {
        let now = self.now();
        let mut s = self.lock();
        let Some((mut pod, _)) = Self::finish_attempt(&mut s, pod) else {
            return;
        };
        pod.timestamp = now;
        pod.unschedulable_plugins.clear();
        tracing::debug!(pod = %pod.key, attempts = pod.attempts, "pod to backoff");
        s.insert(pod, QueueKind::Backoff, &self.config);
    }

    /// A cluster event (`event` names it for logs) may make unschedulable pods schedulable
    /// (upstream `MoveAllToActiveOrBackoffQueue`): each unschedulable pod for which
    /// `plugin_filter` accepts its unschedulable plugins (always, if it has none or there is
    /// no filter) goes to backoff if still backing off, else to active. Pods in flight will go
    /// to backoff if their attempt fails. `plugin_filter` runs under the queue's lock and must
    /// not call back into the queue.
    pub fn move_all_to_active_or_backoff(
        &self,
        event: &str,
        plugin_filter: Option<&PluginFilter<'_>>,
    ) {
        let now = self.now();
        let mut s = self.lock();
        let keys: Vec<String> = s
            .unschedulable
            .iter()
            .filter(|key| {
                let Some(entry) = s.entries.get(*key) else {
                    return false;
                };
                let plugins = &entry.pod.unschedulable_plugins;
                plugins.is_empty() || plugin_filter.is_none_or(|f| f(plugins))
            })
            .cloned()
            .collect();
        let mut to_active = 0usize;
        for key in &keys {
            if s.move_to_active_or_backoff(key, now, &self.config) == Some(QueueKind::Active) {
                to_active += 1;
            }
        }
        s.move_request_cycle = Some(s.scheduling_cycle);
        drop(s);
        if !keys.is_empty() {
            tracing::debug!(
                event,
                moved = keys.len(),
                to_active,
                "unschedulable pods moved"
            );
        }
        if to_active > 0 {
            self.notify.notify_waiters();
        }
    }

    /// Moves the given pods from unschedulable or backoff to active (upstream `Activate`).
    pub fn activate(&self, keys: &[&str]) {
        let mut s = self.lock();
        let mut activated = false;
        for key in keys {
            if matches!(
                s.kind_of(key),
                Some(QueueKind::Backoff | QueueKind::Unschedulable)
            ) {
                if let Some(pod) = s.remove(key) {
                    s.insert(pod, QueueKind::Active, &self.config);
                    activated = true;
                }
            }
        }
        drop(s);
        if activated {
            self.notify.notify_waiters();
        }
    }

    /// Moves pods whose backoff has ended by `now` to active (upstream
    /// `flushBackoffQCompleted`), and pods unschedulable for longer than
    /// `max_in_unschedulable` to backoff or active (upstream
    /// `flushUnschedulablePodsLeftover`). The owner calls it every second; see
    /// [`Self::spawn_flusher`].
    pub fn flush(&self, now: Instant) {
        let mut s = self.lock();
        let mut to_active = 0usize;

        let leftover: Vec<String> = s
            .unschedulable
            .iter()
            .filter(|key| {
                s.entries.get(*key).is_some_and(|e| {
                    now.saturating_duration_since(e.pod.timestamp)
                        > self.config.max_in_unschedulable
                })
            })
            .cloned()
            .collect();
        for key in &leftover {
            if s.move_to_active_or_backoff(key, now, &self.config) == Some(QueueKind::Active) {
                to_active += 1;
            }
        }
        if !leftover.is_empty() {
            s.move_request_cycle = Some(s.scheduling_cycle);
            tracing::debug!(moved = leftover.len(), "unschedulable pods timed out");
        }

        while let Some((&(expiry, _), _)) = s.backoff.first_key_value() {
            if expiry > now {
                break;
            }
            let Some((_, key)) = s.backoff.pop_first() else {
                break;
            };
            if let Some(entry) = s.entries.remove(&key) {
                s.insert(entry.pod, QueueKind::Active, &self.config);
                to_active += 1;
            }
        }

        drop(s);
        if to_active > 0 {
            self.notify.notify_waiters();
        }
    }

    /// (active, backoff, unschedulable) sizes, for metrics.
    pub fn len(&self) -> (usize, usize, usize) {
        let s = self.lock();
        (s.active.len(), s.backoff.len(), s.unschedulable.len())
    }

    /// Whether no pod waits in any sub-queue (pods in flight do not count).
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0, 0)
    }

    /// How many popped pods have not finished their attempt.
    pub fn in_flight(&self) -> usize {
        self.lock().in_flight.len()
    }

    /// The number of pops so far (upstream `SchedulingCycle`).
    pub fn scheduling_cycle(&self) -> u64 {
        self.lock().scheduling_cycle
    }

    /// Which sub-queue holds `key`, if any.
    pub fn queue_of(&self, key: &str) -> Option<QueueKind> {
        self.lock().kind_of(key)
    }

    /// A copy of the queued pod with `key`, if any.
    pub fn get(&self, key: &str) -> Option<QueuedPod<T>> {
        self.lock().entries.get(key).map(|e| e.pod.clone())
    }

    /// Every pod waiting in the queue (upstream `PendingPods`): active in pop order, then
    /// backoff in expiry order, then unschedulable by key.
    pub fn pending_pods(&self) -> Vec<T> {
        let s = self.lock();
        s.active
            .values()
            .chain(s.backoff.values())
            .chain(s.unschedulable.iter())
            .filter_map(|key| s.entries.get(key).map(|e| e.pod.item.clone()))
            .collect()
    }

    /// Records that the pod is nominated to run on `node` (after preemption, or from its
    /// `status.nominatedNodeName`), replacing any earlier nomination.
    pub fn add_nominated(&self, key: &str, uid: &str, priority: i32, item: T, node: &str) {
        self.lock().nominated.insert(
            key.to_string(),
            NominatedPod {
                key: key.to_string(),
                uid: uid.to_string(),
                priority,
                item,
                node: node.to_string(),
            },
        );
    }

    /// Forgets the pod's nomination (it was bound, deleted, or lost its nomination).
    pub fn delete_nominated(&self, key: &str) {
        self.lock().nominated.remove(key);
    }

    /// The node the pod is nominated to, if any.
    pub fn nominated_node(&self, key: &str) -> Option<String> {
        self.lock().nominated.get(key).map(|n| n.node.clone())
    }

    /// Pods nominated to `node`, highest priority first (upstream `NominatedPodsForNode`).
    pub fn nominated_pods_for_node(&self, node: &str) -> Vec<NominatedPod<T>> {
        let s = self.lock();
        let mut pods: Vec<NominatedPod<T>> = s
            .nominated
            .values()
            .filter(|n| n.node == node)
            .cloned()
            .collect();
        pods.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.key.cmp(&b.key)));
        pods
    }
}

impl<T: Clone + Send + 'static> SchedulingQueue<T> {
    /// Spawns a task calling [`Self::flush`] every [`FLUSH_INTERVAL`] (the first call at
    /// once). It ends when the queue is dropped, or when the handle is aborted.
    pub fn spawn_flusher(self: &Arc<Self>) -> JoinHandle<()> {
        let queue = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(FLUSH_INTERVAL);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(queue) = queue.upgrade() else {
                    return;
                };
                queue.flush(queue.now());
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-driven clock.
    #[derive(Clone)]
    struct FakeClock(Arc<Mutex<Instant>>);

    impl FakeClock {
        fn new() -> Self {
            Self(Arc::new(Mutex::new(Instant::now())))
        }
        fn now(&self) -> Instant {
            *self.0.lock().unwrap()
        }
        fn advance(&self, d: Duration) {
            *self.0.lock().unwrap() += d;
        }
    }

    fn queue() -> (SchedulingQueue<String>, FakeClock) {
        let clock = FakeClock::new();
        let c = clock.clone();
        let q = SchedulingQueue::with_clock(QueueConfig::default(), move || c.now());
        (q, clock)
    }

    fn add(q: &SchedulingQueue<String>, key: &str, priority: i32) {
        q.add(key, &format!("uid-{key}"), priority, format!("{key}-v1"));
    }

    fn plugins(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn pop_keys(q: &SchedulingQueue<String>) -> Vec<String> {
        std::iter::from_fn(|| q.try_pop().map(|p| p.key)).collect()
    }

    /// Adds `key`, pops it and fails it as unschedulable by `plugin`.
    fn make_unschedulable(q: &SchedulingQueue<String>, key: &str, plugin: &str) {
        add(q, key, 0);
        let p = q.try_pop().unwrap();
        assert_eq!(p.key, key);
        q.add_unschedulable(p, plugins(&[plugin]));
        assert_eq!(q.queue_of(key), Some(QueueKind::Unschedulable));
    }

    #[test]
    fn pops_by_priority_then_fifo() {
        let (q, clock) = queue();
        add(&q, "ns/low", 1);
        clock.advance(Duration::from_millis(1));
        add(&q, "ns/high-a", 10);
        clock.advance(Duration::from_millis(1));
        add(&q, "ns/mid", 5);
        clock.advance(Duration::from_millis(1));
        add(&q, "ns/high-b", 10);
        // Same timestamp: insertion order.
        add(&q, "ns/high-c", 10);
        add(&q, "ns/neg", -3);
        assert_eq!(q.len(), (6, 0, 0));
        assert_eq!(
            pop_keys(&q),
            [
                "ns/high-a",
                "ns/high-b",
                "ns/high-c",
                "ns/mid",
                "ns/low",
                "ns/neg"
            ]
        );
        assert!(q.is_empty());
        assert_eq!(q.in_flight(), 6);
        assert_eq!(q.scheduling_cycle(), 6);
    }

    #[test]
    fn pop_marks_attempt() {
        let (q, clock) = queue();
        add(&q, "ns/a", 0);
        let added = clock.now();
        clock.advance(Duration::from_secs(3));
        let p = q.try_pop().unwrap();
        assert_eq!(p.attempts, 1);
        assert_eq!(p.timestamp, added);
        assert_eq!(p.initial_attempt, Some(added + Duration::from_secs(3)));
        assert_eq!(p.item, "ns/a-v1");
        assert_eq!(p.uid, "uid-ns/a");
        assert_eq!(q.in_flight(), 1);
        q.done("ns/a");
        assert_eq!(q.in_flight(), 0);
        assert!(q.try_pop().is_none());
    }

    #[test]
    fn backoff_grows_and_caps() {
        let config = QueueConfig::default();
        let secs: Vec<u64> = (1..=6)
            .map(|n| SchedulingQueue::<()>::backoff_duration(n, &config).as_secs())
            .collect();
        assert_eq!(secs, [1, 2, 4, 8, 10, 10]);
        assert_eq!(config.backoff_duration(0), Duration::ZERO);
        assert_eq!(config.backoff_duration(u32::MAX), Duration::from_secs(10));
        let odd = QueueConfig {
            initial_backoff: Duration::from_millis(300),
            max_backoff: Duration::from_secs(1),
            ..QueueConfig::default()
        };
        assert_eq!(odd.backoff_duration(2), Duration::from_millis(600));
        assert_eq!(odd.backoff_duration(3), Duration::from_secs(1));
    }

    #[test]
    fn backoff_expiry_follows_attempts() {
        let (q, clock) = queue();
        add(&q, "ns/a", 0);
        for attempt in 1..=6u32 {
            let p = q.try_pop().unwrap();
            assert_eq!(p.attempts, attempt);
            let failed_at = clock.now();
            q.add_backoff(p);
            assert_eq!(q.queue_of("ns/a"), Some(QueueKind::Backoff));
            let expiry = q.get("ns/a").unwrap().backoff_expiry(q.config());
            assert_eq!(expiry, failed_at + q.config().backoff_duration(attempt));
            q.flush(expiry - Duration::from_millis(1));
            assert_eq!(q.queue_of("ns/a"), Some(QueueKind::Backoff));
            clock.advance(expiry - failed_at);
            q.flush(clock.now());
            assert_eq!(q.queue_of("ns/a"), Some(QueueKind::Active));
        }
    }

    #[test]
    fn event_moves_unschedulable_to_backoff_or_active() {
        let (q, clock) = queue();
        make_unschedulable(&q, "ns/a", "NodeResourcesFit");
        make_unschedulable(&q, "ns/b", "NodeAffinity");
        assert_eq!(q.len(), (0, 0, 2));

        // An event no plugin cares about moves nothing.
        let only_fit = |p: &BTreeSet<String>| p.contains("NodeResourcesFit");
        let none = |_: &BTreeSet<String>| false;
        q.move_all_to_active_or_backoff("PodUpdate", Some(&none));
        assert_eq!(q.len(), (0, 0, 2));

        // Within the 1 s backoff of its first attempt: to backoff.
        clock.advance(Duration::from_millis(500));
        q.move_all_to_active_or_backoff("NodeAdd", Some(&only_fit));
        assert_eq!(q.queue_of("ns/a"), Some(QueueKind::Backoff));
        assert_eq!(q.queue_of("ns/b"), Some(QueueKind::Unschedulable));
        q.flush(clock.now());
        assert_eq!(q.queue_of("ns/a"), Some(QueueKind::Backoff));
        clock.advance(Duration::from_millis(500));
        q.flush(clock.now());
        assert_eq!(q.queue_of("ns/a"), Some(QueueKind::Active));

        // Backoff over: straight to active, with no filter.
        q.move_all_to_active_or_backoff("NodeUpdate", None);
        assert_eq!(q.queue_of("ns/b"), Some(QueueKind::Active));
        assert_eq!(q.len(), (2, 0, 0));
        // Timestamps kept: ns/a failed first, so it pops first.
        assert_eq!(pop_keys(&q), ["ns/a", "ns/b"]);
    }

    #[test]
    fn pod_without_unschedulable_plugins_moves_on_any_event() {
        let (q, _clock) = queue();
        add(&q, "ns/a", 0);
        let p = q.try_pop().unwrap();
        q.add_unschedulable(p, BTreeSet::new());
        let none = |_: &BTreeSet<String>| false;
        q.move_all_to_active_or_backoff("NodeAdd", Some(&none));
        assert_eq!(q.queue_of("ns/a"), Some(QueueKind::Backoff));
    }

    #[test]
    fn move_request_during_attempt_sends_failed_pod_to_backoff() {
        let (q, clock) = queue();
        add(&q, "ns/a", 0);
        add(&q, "ns/b", 0);
        let a = q.try_pop().unwrap();
        q.move_all_to_active_or_backoff("NodeAdd", None);
        // ns/b is popped after the move request: the request does not concern it.
        let b = q.try_pop().unwrap();
        q.add_unschedulable(a, plugins(&["NodeResourcesFit"]));
        q.add_unschedulable(b, plugins(&["NodeResourcesFit"]));
        assert_eq!(q.queue_of("ns/a"), Some(QueueKind::Backoff));
        assert_eq!(q.queue_of("ns/b"), Some(QueueKind::Unschedulable));
        assert_eq!(q.in_flight(), 0);
        let a = q.get("ns/a").unwrap();
        assert_eq!(a.timestamp, clock.now());
        assert_eq!(a.unschedulable_plugins, plugins(&["NodeResourcesFit"]));
        clock.advance(Duration::from_secs(1));
        q.flush(clock.now());
        assert_eq!(pop_keys(&q), ["ns/a"]);
    }

    #[test]
    fn update_during_attempt_requeues_latest_to_backoff() {
        let (q, _clock) = queue();
        add(&q, "ns/a", 0);
        let p = q.try_pop().unwrap();
        q.update("ns/a", "uid-ns/a", 7, "ns/a-v2".into());
        assert_eq!(q.len(), (0, 0, 0));
        q.add_unschedulable(p, plugins(&["NodeAffinity"]));
        let queued = q.get("ns/a").unwrap();
        assert_eq!(q.queue_of("ns/a"), Some(QueueKind::Backoff));
        assert_eq!(queued.item, "ns/a-v2");
        assert_eq!(queued.priority, 7);
        assert_eq!(queued.attempts, 1);
    }

    #[test]
    fn update_of_unschedulable_pod() {
        let (q, clock) = queue();
        make_unschedulable(&q, "ns/a", "NodeAffinity");
        make_unschedulable(&q, "ns/b", "NodeAffinity");
        make_unschedulable(&q, "ns/c", "NodeAffinity");

        // A status-only update: kept, but replaced.
        q.update_with_hint("ns/a", "uid-ns/a", 0, "ns/a-status".into(), false);
        assert_eq!(q.queue_of("ns/a"), Some(QueueKind::Unschedulable));
        assert_eq!(q.get("ns/a").unwrap().item, "ns/a-status");

        // Still backing off: to backoff.
        q.update("ns/b", "uid-ns/b", 0, "ns/b-v2".into());
        assert_eq!(q.queue_of("ns/b"), Some(QueueKind::Backoff));
        assert_eq!(q.get("ns/b").unwrap().item, "ns/b-v2");

        // Backoff over: to active.
        clock.advance(Duration::from_secs(2));
        q.update("ns/c", "uid-ns/c", 3, "ns/c-v2".into());
        assert_eq!(q.queue_of("ns/c"), Some(QueueKind::Active));
        let p = q.try_pop().unwrap();
        assert_eq!(
            (p.key.as_str(), p.item.as_str(), p.priority),
            ("ns/c", "ns/c-v2", 3)
        );
        assert_eq!(p.attempts, 2);
    }

    #[test]
    fn update_in_active_and_backoff_replaces_in_place() {
        let (q, clock) = queue();
        add(&q, "ns/a", 1);
        add(&q, "ns/b", 2);
        q.update("ns/a", "uid-ns/a", 3, "ns/a-v2".into());
        assert_eq!(q.len(), (2, 0, 0));
        let p = q.try_pop().unwrap();
        assert_eq!((p.key.as_str(), p.item.as_str()), ("ns/a", "ns/a-v2"));
        q.add_backoff(p);
        let expiry = q.get("ns/a").unwrap().backoff_expiry(q.config());
        q.update("ns/a", "uid-ns/a", 3, "ns/a-v3".into());
        assert_eq!(q.queue_of("ns/a"), Some(QueueKind::Backoff));
        assert_eq!(q.get("ns/a").unwrap().backoff_expiry(q.config()), expiry);
        // Re-adding an existing key updates it.
        add(&q, "ns/b", 2);
        assert_eq!(q.len(), (1, 1, 0));
        clock.advance(Duration::from_secs(1));
        q.flush(clock.now());
        assert_eq!(q.pending_pods(), ["ns/a-v3", "ns/b-v1"]);
    }

    #[test]
    fn update_of_unknown_or_recreated_pod_adds_it() {
        let (q, _clock) = queue();
        q.update("ns/a", "uid-1", 0, "v1".into());
        assert_eq!(q.queue_of("ns/a"), Some(QueueKind::Active));
        let p = q.try_pop().unwrap();
        q.add_backoff(p);
        q.update("ns/a", "uid-2", 0, "recreated".into());
        let p = q.get("ns/a").unwrap();
        assert_eq!(q.queue_of("ns/a"), Some(QueueKind::Active));
        assert_eq!((p.uid.as_str(), p.attempts), ("uid-2", 0));
    }

    #[test]
    fn delete_removes_from_every_queue() {
        let (q, _clock) = queue();
        make_unschedulable(&q, "ns/unsched", "NodeAffinity");
        add(&q, "ns/backoff", 0);
        let p = q.try_pop().unwrap();
        q.add_backoff(p);
        add(&q, "ns/active", 0);
        add(&q, "ns/keep", 0);
        assert_eq!(q.len(), (2, 1, 1));
        q.add_nominated("ns/unsched", "uid-ns/unsched", 0, "x".into(), "node-1");

        q.delete("ns/active");
        q.delete("ns/backoff");
        q.delete("ns/unsched");
        q.delete("ns/missing");
        assert_eq!(q.len(), (1, 0, 0));
        assert_eq!(q.pending_pods(), ["ns/keep-v1"]);
        assert!(q.nominated_node("ns/unsched").is_none());
        assert!(q.queue_of("ns/backoff").is_none());
    }

    #[test]
    fn pod_deleted_during_attempt_is_not_requeued() {
        let (q, _clock) = queue();
        add(&q, "ns/a", 0);
        add(&q, "ns/b", 0);
        let a = q.try_pop().unwrap();
        let b = q.try_pop().unwrap();
        q.delete("ns/a");
        q.delete("ns/b");
        q.add_unschedulable(a, plugins(&["NodeAffinity"]));
        q.add_backoff(b);
        assert!(q.is_empty());
        assert_eq!(q.in_flight(), 0);

        // Deleted and re-created under the same name while the old one is in flight.
        add(&q, "ns/c", 0);
        let old = q.try_pop().unwrap();
        q.delete("ns/c");
        q.add("ns/c", "uid-new", 0, "new".into());
        q.add_unschedulable(old, plugins(&["NodeAffinity"]));
        let p = q.get("ns/c").unwrap();
        assert_eq!(q.queue_of("ns/c"), Some(QueueKind::Active));
        assert_eq!(p.uid, "uid-new");
    }

    #[test]
    fn unschedulable_pods_flushed_after_five_minutes() {
        let (q, clock) = queue();
        make_unschedulable(&q, "ns/a", "NodeAffinity");
        let since = clock.now();
        q.flush(since + Duration::from_secs(5 * 60));
        assert_eq!(q.queue_of("ns/a"), Some(QueueKind::Unschedulable));
        q.flush(since + Duration::from_secs(5 * 60) + Duration::from_millis(1));
        assert_eq!(q.queue_of("ns/a"), Some(QueueKind::Active));

        // A pod whose backoff outlasts the timeout goes to backoff instead.
        let config = QueueConfig {
            max_in_unschedulable: Duration::from_secs(5),
            max_backoff: Duration::from_secs(60),
            ..QueueConfig::default()
        };
        let c = clock.clone();
        let q = SchedulingQueue::with_clock(config, move || c.now());
        add(&q, "ns/b", 0);
        for _ in 0..4 {
            let p = q.try_pop().unwrap();
            q.add_backoff(p);
            clock.advance(Duration::from_secs(60));
            q.flush(clock.now());
        }
        let p = q.try_pop().unwrap();
        assert_eq!(p.attempts, 5); // 16 s backoff
        q.add_unschedulable(p, plugins(&["NodeAffinity"]));
        let since = clock.now();
        q.flush(since + Duration::from_secs(6));
        assert_eq!(q.queue_of("ns/b"), Some(QueueKind::Backoff));
        q.flush(since + Duration::from_secs(16));
        assert_eq!(q.queue_of("ns/b"), Some(QueueKind::Active));
    }

    #[test]
    fn activate_moves_to_active() {
        let (q, _clock) = queue();
        make_unschedulable(&q, "ns/a", "NodeAffinity");
        add(&q, "ns/b", 0);
        let p = q.try_pop().unwrap();
        q.add_backoff(p);
        add(&q, "ns/c", 0);
        q.activate(&["ns/a", "ns/b", "ns/c", "ns/missing"]);
        assert_eq!(q.len(), (3, 0, 0));
    }

    #[test]
    fn failed_pod_already_queued_is_dropped() {
        let (q, _clock) = queue();
        add(&q, "ns/a", 0);
        let p = q.try_pop().unwrap();
        q.done("ns/a");
        add(&q, "ns/a", 0);
        q.add_unschedulable(p, plugins(&["NodeAffinity"]));
        assert_eq!(q.queue_of("ns/a"), Some(QueueKind::Active));
        assert_eq!(q.get("ns/a").unwrap().attempts, 0);
    }

    #[test]
    fn pending_and_nominated_pods() {
        let (q, _clock) = queue();
        make_unschedulable(&q, "ns/u", "NodeAffinity");
        add(&q, "ns/a", 0);
        add(&q, "ns/b", 5);
        assert_eq!(q.pending_pods(), ["ns/b-v1", "ns/a-v1", "ns/u-v1"]);

        q.add_nominated("ns/low", "uid-low", 1, "low".into(), "node-1");
        q.add_nominated("ns/high", "uid-high", 9, "high".into(), "node-1");
        q.add_nominated("ns/other", "uid-other", 5, "other".into(), "node-2");
        let on1: Vec<String> = q
            .nominated_pods_for_node("node-1")
            .into_iter()
            .map(|n| n.item)
            .collect();
        assert_eq!(on1, ["high", "low"]);
        q.add_nominated("ns/low", "uid-low", 1, "low".into(), "node-2");
        assert_eq!(q.nominated_node("ns/low").as_deref(), Some("node-2"));
        q.update("ns/low", "uid-low", 2, "low-v2".into());
        let on2 = q.nominated_pods_for_node("node-2");
        assert_eq!(on2.len(), 2);
        assert!(on2.iter().any(|n| n.item == "low-v2" && n.priority == 2));
        q.delete_nominated("ns/high");
        assert!(q.nominated_pods_for_node("node-1").is_empty());
    }

    #[tokio::test]
    async fn pop_waits_for_add() {
        let q = Arc::new(SchedulingQueue::<String>::new(QueueConfig::default()));
        let popper = tokio::spawn({
            let q = q.clone();
            async move { q.pop().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!popper.is_finished());
        q.add("ns/a", "uid-a", 0, "a".into());
        let p = tokio::time::timeout(Duration::from_secs(5), popper)
            .await
            .expect("pop woke up")
            .expect("pop task");
        assert_eq!((p.key.as_str(), p.attempts), ("ns/a", 1));
    }

    #[tokio::test]
    async fn pop_wakes_on_event_and_is_cancel_safe() {
        let q = Arc::new(SchedulingQueue::<String>::new(QueueConfig::default()));
        // A cancelled pop loses nothing.
        assert!(tokio::time::timeout(Duration::from_millis(10), q.pop())
            .await
            .is_err());
        add(&q, "ns/a", 0);
        let p = q.pop().await;
        q.add_unschedulable(p, plugins(&["NodeAffinity"]));
        let popper = tokio::spawn({
            let q = q.clone();
            async move { q.pop().await }
        });
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(!popper.is_finished());
        q.move_all_to_active_or_backoff("NodeAdd", None);
        let p = tokio::time::timeout(Duration::from_secs(5), popper)
            .await
            .expect("pop woke up")
            .expect("pop task");
        assert_eq!(p.attempts, 2);
    }

    #[tokio::test]
    async fn flusher_moves_expired_backoff_to_active() {
        let clock = FakeClock::new();
        let c = clock.clone();
        let q = Arc::new(SchedulingQueue::<String>::with_clock(
            QueueConfig::default(),
            move || c.now(),
        ));
        add(&q, "ns/a", 0);
        let p = q.pop().await;
        q.add_backoff(p);
        clock.advance(Duration::from_secs(1));
        let flusher = q.spawn_flusher();
        let p = tokio::time::timeout(Duration::from_secs(5), q.pop())
            .await
            .expect("flushed");
        assert_eq!(p.attempts, 2);
        // The flusher stops once the queue is gone.
        drop(q);
        tokio::time::timeout(Duration::from_secs(5), flusher)
            .await
            .expect("flusher ended")
            .expect("flusher task");
    }
}
