//! Watch: one etcd watch per store watch, re-established after connection loss.
//!
//! A task reads the etcd watch (from `after + 1`, with `prev_kv`) and forwards its events,
//! converted, into a bounded channel that the returned stream reads (so a slow consumer
//! slows the etcd stream down through gRPC flow control rather than buffering without
//! bound). It remembers the revision of the last event it forwarded; when the etcd stream
//! fails or ends (etcd restarted, connection reset, keep-alive timeout), it opens a new
//! etcd watch from the revision after that one, retrying with back-off (100 ms doubling to
//! 2 s) for as long as it takes: the consumer sees neither the gap nor duplicates. etcd
//! sends all events of one revision in one response, so resuming after the last forwarded
//! revision cannot split a multi-key transaction.
//!
//! If etcd cancels the watch with a `compact_revision` (the revision it needs was compacted,
//! possibly while it was disconnected), the stream yields [`StorageError::Compacted`] and
//! ends. Closing or dropping the store makes it yield [`StorageError::Unavailable`] and end;
//! dropping the stream stops the task and cancels the etcd watch.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{EventType, WatchClient, WatchOptions};
use futures::StreamExt;
use tokio::sync::{mpsc, watch};

use super::{etcd_err, EtcdStore, Shared};
use crate::{Event, EventKind, KeyValue, Result, Revision, StorageError, WatchStream};

/// Events the task may forward ahead of the consumer.
const BUFFER: usize = 1024;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

struct Watcher {
    client: WatchClient,
    shared: Arc<Shared>,
    closing: watch::Receiver<bool>,
    /// The watched range in etcd's keys (key prefix included).
    key: Vec<u8>,
    range_end: Vec<u8>,
    /// Every event up to this revision has been forwarded.
    last: Revision,
}

/// Resolves when the store is closed or dropped.
async fn store_closed(closing: &mut watch::Receiver<bool>) {
    // An error means the sender (the store) is gone: closed as well.
    let _ = closing.wait_for(|closed| *closed).await;
}

pub(crate) async fn start(
    client: WatchClient,
    shared: Arc<Shared>,
    closing: watch::Receiver<bool>,
    full_prefix: Vec<u8>,
    after: Revision,
) -> Result<WatchStream> {
    let range_end = super::prefix_range_end(&full_prefix);
    let key = if full_prefix.is_empty() {
        vec![0]
    } else {
        full_prefix
    };
    let watcher = Watcher {
        client,
        shared,
        closing,
        key,
        range_end,
        last: after,
    };
    // The first etcd watch now, so that an unreachable etcd fails the call itself.
    let stream = watcher.open().await?;
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(watcher.run(stream, tx));
    Ok(tokio_stream::wrappers::ReceiverStream::new(rx).boxed())
}

impl Watcher {
    /// Opens an etcd watch from the revision after the last one forwarded.
    async fn open(&self) -> Result<etcd_client::WatchStream> {
        let opts = WatchOptions::new()
            .with_range(self.range_end.clone())
            .with_start_revision(self.last + 1)
            .with_prev_key();
        let mut client = self.client.clone();
        let key = self.key.clone();
        match tokio::time::timeout(self.shared.request_timeout, client.watch(key, Some(opts))).await
        {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(e)) => Err(etcd_err(e)),
            Err(_) => Err(StorageError::Unavailable(format!(
                "etcd watch: no answer within {:?}",
                self.shared.request_timeout
            ))),
        }
    }

    async fn run(mut self, first: etcd_client::WatchStream, tx: mpsc::Sender<Result<Event>>) {
        let mut stream = Some(first);
        let mut backoff = FIRST_BACKOFF;
        loop {
            let mut current = match stream.take() {
                Some(s) => s,
                None => {
                    let mut closing = self.closing.clone();
                    let opened = tokio::select! {
                        biased;
                        _ = store_closed(&mut closing) => return self.end_closed(&tx).await,
                        _ = tx.closed() => return,
                        opened = self.open() => opened,
                    };
                    match opened {
                        Ok(s) => {
                            tracing::info!(after = self.last, "etcd watch re-established");
                            s
                        }
                        Err(err) => {
                            tracing::debug!(%err, after = self.last, "etcd watch: cannot re-establish yet");
                            if !self.pause(&tx, &mut backoff).await {
                                return;
                            }
                            continue;
                        }
                    }
                }
            };
            // Read until the etcd stream fails, ends or is canceled.
            loop {
                let message = tokio::select! {
                    biased;
                    _ = store_closed(&mut self.closing) => return self.end_closed(&tx).await,
                    _ = tx.closed() => return,
                    message = current.message() => message,
                };
                let resp = match message {
                    Ok(Some(resp)) => resp,
                    Ok(None) => {
                        tracing::warn!(
                            after = self.last,
                            "etcd watch stream ended; re-establishing"
                        );
                        break;
                    }
                    Err(err) => {
                        tracing::warn!(%err, after = self.last, "etcd watch failed; re-establishing");
                        break;
                    }
                };
                if resp.compact_revision() > 0 {
                    let compacted = resp.compact_revision();
                    self.shared.note_compacted(compacted);
                    let _ = self
                        .send(
                            &tx,
                            Err(StorageError::Compacted {
                                requested: self.last,
                                compacted,
                            }),
                        )
                        .await;
                    return;
                }
                if resp.canceled() {
                    tracing::warn!(
                        reason = resp.cancel_reason(),
                        after = self.last,
                        "etcd canceled the watch; re-establishing"
                    );
                    if !self.pause(&tx, &mut backoff).await {
                        return;
                    }
                    break;
                }
                backoff = FIRST_BACKOFF;
                let mut newest = self.last;
                for event in resp.events() {
                    let item = convert(&self.shared.key_prefix, event);
                    let failed = item.is_err();
                    if let Ok(e) = &item {
                        newest = newest.max(e.revision());
                    }
                    if !self.send(&tx, item).await || failed {
                        return;
                    }
                }
                self.last = newest;
            }
        }
    }

    /// Forwards one item; false when nobody listens any more (or the store closed).
    async fn send(&mut self, tx: &mpsc::Sender<Result<Event>>, item: Result<Event>) -> bool {
        tokio::select! {
            biased;
            _ = store_closed(&mut self.closing) => {
                self.end_closed(tx).await;
                false
            }
            sent = tx.send(item) => sent.is_ok(),
        }
    }

    /// Waits before the next attempt; false if the watch should end instead.
    async fn pause(&mut self, tx: &mpsc::Sender<Result<Event>>, backoff: &mut Duration) -> bool {
        let delay = *backoff;
        *backoff = (*backoff * 2).min(MAX_BACKOFF);
        tokio::select! {
            biased;
            _ = store_closed(&mut self.closing) => {
                self.end_closed(tx).await;
                false
            }
            _ = tx.closed() => false,
            _ = tokio::time::sleep(delay) => true,
        }
    }

    async fn end_closed(&self, tx: &mpsc::Sender<Result<Event>>) {
        // try_send: a consumer that is not reading must not keep the task alive.
        let _ = tx.try_send(Err(StorageError::Unavailable("store is closed".into())));
    }
}

/// One etcd event as the store reports it.
fn convert(prefix: &str, event: &etcd_client::Event) -> Result<Event> {
    let kv = event
        .kv()
        .ok_or_else(|| StorageError::Internal("etcd watch event without a key".into()))?;
    let prev = event
        .prev_kv()
        .map(|p| EtcdStore::decode_kv(prefix, p.clone()))
        .transpose()?;
    match event.event_type() {
        EventType::Put => Ok(Event {
            kind: EventKind::Put,
            // version 1: this put created the key (etcd sends no prev_kv then either).
            prev: if kv.version() == 1 { None } else { prev },
            kv: EtcdStore::decode_kv(prefix, kv.clone())?,
        }),
        EventType::Delete => {
            let mod_revision = kv.mod_revision();
            let deleted = match &prev {
                Some(p) => KeyValue {
                    mod_revision,
                    ..p.clone()
                },
                // etcd could not read the previous value (compacted at that very moment):
                // the delete is still reported, without the last value.
                None => KeyValue {
                    key: EtcdStore::decode_key(prefix, kv.key().to_vec())?,
                    value: bytes::Bytes::new(),
                    create_revision: 0,
                    mod_revision,
                },
            };
            Ok(Event {
                kind: EventKind::Delete,
                kv: deleted,
                prev,
            })
        }
    }
}
