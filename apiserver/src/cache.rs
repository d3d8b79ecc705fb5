//! The watch cache: every object of every resource in memory, and a bounded window of recent
//! events per resource, filled from the store's own watch (so several API servers on one
//! store agree). Lists at resourceVersion 0, consistent lists and every watch are served
//! from here.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use keelson_storage::{EventKind, KeyValue, Revision, Store};
use parking_lot::RwLock;
use serde_json::Value;
use tokio::sync::{broadcast, watch};

use crate::object;
use crate::registry::Registry;

/// Events kept per resource for watches that start in the past.
const HISTORY_PER_RESOURCE: usize = 20_000;
/// Buffered live events per resource before a slow watcher is cut off (it then re-watches
/// from its last resourceVersion, which the history window still holds).
const BROADCAST_CAPACITY: usize = 4_096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

#[derive(Debug)]
pub struct CacheEvent {
    pub kind: EventType,
    pub revision: Revision,
    /// The object after the change (for a delete: its last state, at the delete revision).
    pub object: Arc<Value>,
    /// The object before the change, so that watches with selectors can tell an object that
    /// left the selection (sent as DELETED) from one that entered it (ADDED).
    pub prev: Option<Arc<Value>>,
}

#[derive(Default)]
struct State {
    /// By storage key: `/registry/group/resource/ns/name`.
    objects: BTreeMap<String, Arc<Value>>,
    history: VecDeque<Arc<CacheEvent>>,
    /// Watches from a revision below this get 410: their events are gone.
    oldest_servable: Revision,
    /// The revision of the last event applied here.
    revision: Revision,
}

pub struct ResourceCache {
    state: RwLock<State>,
    events: broadcast::Sender<Arc<CacheEvent>>,
}

/// What a new watch starts from: the events after its revision, then the live feed.
pub struct Subscription {
    pub replay: Vec<Arc<CacheEvent>>,
    pub live: broadcast::Receiver<Arc<CacheEvent>>,
}

/// A consistent copy of a resource's objects, with the revision it reflects and the live
/// feed from just after it.
pub struct Snapshot {
    pub objects: Vec<Arc<Value>>,
    pub revision: Revision,
    pub live: broadcast::Receiver<Arc<CacheEvent>>,
}

pub struct TooOld {
    pub oldest: Revision,
}

impl ResourceCache {
    fn new() -> Self {
        ResourceCache {
            state: RwLock::new(State::default()),
            events: broadcast::channel(BROADCAST_CAPACITY).0,
        }
    }

    pub fn subscribe_from(&self, after: Revision) -> Result<Subscription, TooOld> {
        let state = self.state.read();
        if after < state.oldest_servable {
            return Err(TooOld {
                oldest: state.oldest_servable,
            });
        }
        let live = self.events.subscribe();
        let start = state.history.partition_point(|e| e.revision <= after);
        let replay = state.history.iter().skip(start).cloned().collect();
        Ok(Subscription { replay, live })
    }

    /// Objects whose storage key starts with `prefix`.
    /// `revision` is the global revision read before the call; the snapshot may be newer.
    pub fn snapshot(&self, prefix: &str, revision: Revision) -> Snapshot {
        let state = self.state.read();
        let revision = revision.max(state.revision);
        let live = self.events.subscribe();
        let objects = state
            .objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect();
        Snapshot {
            objects,
            revision,
            live,
        }
    }

    pub fn get(&self, key: &str) -> Option<Arc<Value>> {
        self.state.read().objects.get(key).cloned()
    }

    pub fn len(&self) -> usize {
        self.state.read().objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` for every object under `prefix` without copying the set.
    pub fn for_each(&self, prefix: &str, mut f: impl FnMut(&Arc<Value>)) {
        let state = self.state.read();
        for (_, v) in state
            .objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            f(v);
        }
    }

    fn apply(&self, key: String, kind: EventKind, kv: &KeyValue) {
        let mut state = self.state.write();
        let event = match kind {
            EventKind::Put => {
                let Some(object) = decode(kv) else { return };
                let object = Arc::new(object);
                let prev = state.objects.insert(key, object.clone());
                let kind = if prev.is_some() {
                    EventType::Modified
                } else {
                    EventType::Added
                };
                CacheEvent {
                    kind,
                    revision: kv.mod_revision,
                    object,
                    prev,
                }
            }
            EventKind::Delete => {
                let prev = state.objects.remove(&key);
                let mut last = match decode(kv) {
                    Some(v) => v,
                    None => match &prev {
                        Some(p) => (**p).clone(),
                        None => return,
                    },
                };
                object::set_resource_version(&mut last, kv.mod_revision);
                CacheEvent {
                    kind: EventType::Deleted,
                    revision: kv.mod_revision,
                    object: Arc::new(last),
                    prev,
                }
            }
        };
        let event = Arc::new(event);
        state.revision = event.revision;
        state.history.push_back(event.clone());
        if state.history.len() > HISTORY_PER_RESOURCE {
            if let Some(dropped) = state.history.pop_front() {
                state.oldest_servable = dropped.revision;
            }
        }
        // No receivers is fine: nobody is watching this resource.
        let _ = self.events.send(event);
    }
}

fn decode(kv: &KeyValue) -> Option<Value> {
    match serde_json::from_slice::<Value>(&kv.value) {
        Ok(mut v) => {
            object::set_resource_version(&mut v, kv.mod_revision);
            Some(v)
        }
        Err(err) => {
            tracing::error!(key = %kv.key, %err, "undecodable object in the store; skipped");
            None
        }
    }
}

pub struct WatchCache {
    store: Arc<dyn Store>,
    by_prefix: HashMap<String, Arc<ResourceCache>>,
    progress: watch::Sender<Revision>,
}

/// `/registry/group/resource/` of a storage key.
fn resource_prefix(key: &str) -> Option<&str> {
    let mut slashes = key.match_indices('/').map(|(i, _)| i);
    let end = slashes.nth(3)?;
    Some(&key[..=end])
}

impl WatchCache {
    /// Loads every object from the store and follows its watch from then on.
    pub async fn start(
        store: Arc<dyn Store>,
        registry: &Registry,
    ) -> anyhow::Result<Arc<WatchCache>> {
        let mut by_prefix = HashMap::new();
        for r in &registry.resources {
            by_prefix
                .entry(r.storage_prefix())
                .or_insert_with(|| Arc::new(ResourceCache::new()));
        }
        let start = store.current_revision().await?;
        let mut loaded = 0usize;
        let mut next_key: Option<String> = None;
        loop {
            let page = store
                .list("/registry/", next_key.as_deref(), 10_000, Some(start))
                .await?;
            for kv in &page.kvs {
                let Some(prefix) = resource_prefix(&kv.key) else {
                    continue;
                };
                let Some(cache) = by_prefix.get(prefix) else {
                    continue;
                };
                if let Some(v) = decode(kv) {
                    cache
                        .state
                        .write()
                        .objects
                        .insert(kv.key.clone(), Arc::new(v));
                    loaded += 1;
                }
            }
            match (page.more, page.kvs.last()) {
                (true, Some(last)) => next_key = Some(format!("{}\0", last.key)),
                _ => break,
            }
        }
        for cache in by_prefix.values() {
            let mut state = cache.state.write();
            state.oldest_servable = start;
            state.revision = start;
        }
        tracing::info!(objects = loaded, revision = start, "watch cache loaded");
        let cache = Arc::new(WatchCache {
            store,
            by_prefix,
            progress: watch::channel(start).0,
        });
        tokio::spawn(cache.clone().follow(start));
        Ok(cache)
    }

    async fn follow(self: Arc<Self>, mut after: Revision) {
        loop {
            match self.store.watch("/registry/", after).await {
                Ok(mut stream) => {
                    while let Some(item) = stream.next().await {
                        match item {
                            Ok(event) => {
                                let revision = event.kv.mod_revision;
                                if let Some(cache) = resource_prefix(&event.kv.key)
                                    .and_then(|p| self.by_prefix.get(p))
                                {
                                    cache.apply(event.kv.key.clone(), event.kind, &event.kv);
                                }
                                after = revision;
                                self.progress.send_replace(revision);
                            }
                            Err(err) => {
                                tracing::warn!(%err, "store watch failed; re-establishing");
                                break;
                            }
                        }
                    }
                }
                Err(err) => tracing::warn!(%err, "store watch could not start; retrying"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn resource(&self, storage_prefix: &str) -> Option<&Arc<ResourceCache>> {
        self.by_prefix.get(storage_prefix)
    }

    /// The revision every cache reflects.
    pub fn revision(&self) -> Revision {
        *self.progress.borrow()
    }

    /// Waits until the cache has caught up with `revision` (a consistent read).
    pub async fn wait_for(&self, revision: Revision, timeout: Duration) -> bool {
        let mut rx = self.progress.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|r| *r >= revision))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Waits until the cache reflects the store's current state.
    pub async fn sync(&self, timeout: Duration) -> Result<Revision, keelson_storage::StorageError> {
        let current = self.store.current_revision().await?;
        if self.wait_for(current, timeout).await {
            Ok(current.max(self.revision()))
        } else {
            Err(keelson_storage::StorageError::Unavailable(format!(
                "too large resource version: {current}, current: {}",
                self.revision()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_prefix_is_the_first_three_segments() {
        assert_eq!(
            resource_prefix("/registry/core/pods/ns/p"),
            Some("/registry/core/pods/")
        );
        assert_eq!(
            resource_prefix("/registry/core/namespaces/default"),
            Some("/registry/core/namespaces/")
        );
        assert_eq!(resource_prefix("/registry/x"), None);
    }
}
