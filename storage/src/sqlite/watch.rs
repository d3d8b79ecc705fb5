//! Watch: history from the table, then live events from the writer's broadcast.
//!
//! The receiver is subscribed *before* the history is read, so every commit is either in the
//! history snapshot or arrives on the receiver (or both: those are skipped by revision).
//! `covered` is the revision up to which every change has been delivered (or skipped as not
//! matching the prefix); live events at or below it are dropped. If the receiver lagged
//! (the broadcast overwrote commits it had not read), the missing range is read from the
//! table again, from `covered` on, so a slow watcher never silently loses events.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::broadcast::{self, error::RecvError};

use super::read::{self, Range};
use super::{EventBatch, Shared};
use crate::{Event, Result, Revision, StorageError, WatchStream};

struct WatchState {
    shared: Arc<Shared>,
    rx: broadcast::Receiver<EventBatch>,
    prefix: String,
    range: Range,
    covered: Revision,
    /// The table may hold changes after `covered` that the receiver will not deliver.
    replaying: bool,
    buf: VecDeque<Event>,
    done: bool,
}

pub(crate) async fn start(
    shared: Arc<Shared>,
    rx: broadcast::Receiver<EventBatch>,
    prefix: &str,
    after: Revision,
) -> Result<WatchStream> {
    let mut state = WatchState {
        shared,
        rx,
        prefix: prefix.to_owned(),
        range: Range::new(prefix, None),
        covered: after,
        replaying: true,
        buf: VecDeque::new(),
        done: false,
    };
    // The first page now, so that a compacted `after` fails the call itself.
    state.replay_page().await?;
    let stream = futures::stream::unfold(state, |mut state| async move {
        let item = state.next_item().await?;
        Some((item, state))
    });
    Ok(stream.boxed())
}

impl WatchState {
    async fn replay_page(&mut self) -> Result<()> {
        let range = self.range.clone();
        let after = self.covered;
        let page = self.shared.opts.watch_page;
        let (events, covered) = self
            .shared
            .readers
            .run(move |conn| read::history(conn, &range, after, page))
            .await?;
        self.replaying = events.len() >= page.max(1);
        self.buf.extend(events);
        self.covered = self.covered.max(covered);
        Ok(())
    }

    async fn next_item(&mut self) -> Option<Result<Event>> {
        loop {
            if let Some(event) = self.buf.pop_front() {
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            if self.replaying {
                if let Err(err) = self.replay_page().await {
                    self.done = true;
                    return Some(Err(err));
                }
                continue;
            }
            match self.rx.recv().await {
                Ok(batch) => {
                    for event in batch.iter() {
                        if event.revision() > self.covered && event.kv.key.starts_with(&self.prefix)
                        {
                            self.buf.push_back(event.clone());
                        }
                    }
                    if let Some(last) = batch.last() {
                        self.covered = self.covered.max(last.revision());
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(
                        missed,
                        covered = self.covered,
                        "watch fell behind; re-reading from the table"
                    );
                    self.replaying = true;
                }
                Err(RecvError::Closed) => {
                    self.done = true;
                    return Some(Err(StorageError::Unavailable("store is closed".into())));
                }
            }
        }
    }
}
