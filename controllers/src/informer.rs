//! One watch per resource type shared by every controller that needs it: a reflector
//! store to read from, and a fan-out of each changed or deleted object to subscribers
//! (kube-runtime's shared streams drop deletions, which the ReplicaSet controller needs to
//! replace a deleted pod).
//!
//! The informer also tracks the highest resourceVersion it has seen, so that a controller
//! that just wrote can wait until its own writes are visible in the store before it plans
//! again (upstream's "expectations"): without that, a ReplicaSet would create its pods a
//! second time while their creations are still on their way through the watch.

use std::fmt::Debug;
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Resource;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::UnboundedReceiverStream;

/// The numeric form of a resourceVersion. Clients must treat them as opaque, but every
/// API server (etcd's revisions, Keelson's store) hands out increasing integers; an
/// unparsable one reads as 0, which only makes a wait end by its timeout.
pub fn resource_version(meta: &kube::api::ObjectMeta) -> u64 {
    meta.resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0)
}

/// Builds an informer; subscribe before [`InformerBuilder::start`].
pub struct InformerBuilder<K: Resource<DynamicType = ()> + 'static> {
    api: Api<K>,
    config: watcher::Config,
    subscribers: Vec<mpsc::UnboundedSender<K>>,
}

impl<K> InformerBuilder<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    pub fn new(api: Api<K>, config: watcher::Config) -> Self {
        InformerBuilder {
            api,
            config,
            subscribers: Vec::new(),
        }
    }

    /// A stream of every object that is listed, changed or deleted, for
    /// `Controller::watches_stream` / `for_stream`.
    pub fn subscribe(&mut self) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static {
        let (tx, rx) = mpsc::unbounded_channel();
        self.subscribers.push(tx);
        UnboundedReceiverStream::new(rx).map(Ok)
    }

    /// Starts watching (on the current runtime) and returns the read side.
    pub fn start(self) -> Informer<K> {
        let (reader, mut writer) = reflector::store();
        let (seen_tx, seen_rx) = watch::channel(0u64);
        let subscribers = self.subscribers;
        let mut events = watcher::watcher(self.api, self.config)
            .default_backoff()
            .boxed();
        tokio::spawn(async move {
            while let Some(event) = events.next().await {
                let event = match event {
                    // Controllers never read managedFields, which are half of a typical
                    // object (upstream informers drop them too).
                    Ok(event) => event.modify(|o| o.meta_mut().managed_fields = None),
                    Err(e) => {
                        tracing::warn!(kind = %K::kind(&()), error = %e, "watch failed; retrying");
                        continue;
                    }
                };
                writer.apply_watcher_event(&event);
                let object = match &event {
                    Event::Apply(o) | Event::Delete(o) | Event::InitApply(o) => o,
                    Event::Init | Event::InitDone => continue,
                };
                let rv = resource_version(object.meta());
                seen_tx.send_if_modified(|seen| {
                    let newer = rv > *seen;
                    if newer {
                        *seen = rv;
                    }
                    newer
                });
                for subscriber in &subscribers {
                    let _ = subscriber.send(object.clone());
                }
            }
        });
        Informer {
            reader,
            seen: seen_rx,
        }
    }
}

/// The read side of a shared watch.
#[derive(Clone)]
pub struct Informer<K: Resource<DynamicType = ()> + 'static> {
    reader: Store<K>,
    seen: watch::Receiver<u64>,
}

impl<K> Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    pub fn store(&self) -> &Store<K> {
        &self.reader
    }

    /// Every object in `namespace`, cloned out of the store.
    pub fn in_namespace(&self, namespace: &str) -> Vec<K> {
        self.reader
            .state()
            .into_iter()
            .filter(|o| o.meta().namespace.as_deref() == Some(namespace))
            .map(|o| (*o).clone())
            .collect()
    }

    /// Waits until the store has seen resourceVersion `rv` (or anything newer), or until
    /// `timeout`. Returns whether it caught up.
    pub async fn caught_up(&self, rv: u64, timeout: Duration) -> bool {
        let mut seen = self.seen.clone();
        tokio::time::timeout(timeout, seen.wait_for(|s| *s >= rv))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Waits until the first list has been loaded.
    pub async fn ready(&self) {
        let _ = self.reader.wait_until_ready().await;
    }
}
