//! The revisioned key-value store behind the Keelson API server.
//!
//! One trait, [`Store`], with the semantics kube-apiserver expects of etcd (and kine provides
//! on top of SQL databases), and two backends: [`SqliteStore`], embedded, on SQLite in WAL
//! mode, and [`EtcdStore`], on stock etcd 3.4+ (see the [`etcd`] module for the mapping).
//!
//! # Model
//!
//! * There is one global revision counter for the whole store. Every successful write
//!   (create, update or delete) gets the next revision; nothing else changes it (compaction
//!   does not). Revisions start at 1; `0` means "nothing written yet". (etcd counts its own
//!   creation as revision 1: a fresh etcd is at revision 1 and its first write is 2. Writes
//!   by other etcd clients, outside the store's keys too, also take revisions.)
//! * Every live key has a `create_revision` (the revision of the write that created it) and a
//!   `mod_revision` (the revision of its last write). A Kubernetes `resourceVersion` is the
//!   object's `mod_revision`; a list's `resourceVersion` is the revision it was read at.
//! * The store keeps the history of every key, so that a list can be read at an older
//!   revision and a watch can start from an older revision, until that history is
//!   compacted. After `compact(r)`, reads at revisions `< r` and watches from revisions `< r`
//!   fail with [`StorageError::Compacted`] (kube-apiserver turns that into 410 Gone).
//! * Keys are compared byte-wise (UTF-8 order). A prefix matches keys that start with it, so
//!   callers pass prefixes ending in `/` (`/registry/pods/` must not match
//!   `/registry/podsx/...`).

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

mod compactor;
pub mod etcd;
mod sqlite;

pub use compactor::{spawn_compactor, CompactionPolicy};
pub use etcd::{EtcdOptions, EtcdStore, EtcdTls};
pub use sqlite::{SqliteOptions, SqliteStore};

/// A store revision. Revisions are positive and strictly increasing; `0` is "before the first write".
pub type Revision = i64;

/// One key at one revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    /// Revision of the write that created the key (the create of this incarnation: after a
    /// delete and a new create, the new create's revision).
    pub create_revision: Revision,
    /// Revision of the last write to the key (Kubernetes `resourceVersion`).
    pub mod_revision: Revision,
}

/// What happened to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The key was created or updated.
    Put,
    /// The key was deleted.
    Delete,
}

/// One change seen by a watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// For [`EventKind::Put`], the new value. For [`EventKind::Delete`], the last value the
    /// key had, with `mod_revision` set to the revision of the delete.
    pub kv: KeyValue,
    /// The value before this event: `None` for a create.
    pub prev: Option<KeyValue>,
}

impl Event {
    /// The revision of the write this event reports.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// One page of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListResult {
    /// Live keys in key order.
    pub kvs: Vec<KeyValue>,
    /// The revision the list was read at: the one asked for, or the current one.
    pub revision: Revision,
    /// Whether matching keys follow this page (only ever true when a limit was given).
    pub more: bool,
    /// How many matching keys follow this page (at the same revision).
    pub remaining: i64,
}

/// Why a store operation failed.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum StorageError {
    #[error("key {key:?} not found")]
    NotFound { key: String },
    #[error("key {key:?} already exists")]
    AlreadyExists { key: String },
    /// A precondition on the key's `mod_revision` did not hold; `current` is what the key
    /// holds now (`None` if it does not exist).
    #[error("key {key:?} was modified (current revision {})", current.as_ref().map_or(0, |kv| kv.mod_revision))]
    Conflict {
        key: String,
        current: Option<KeyValue>,
    },
    /// The revision asked for is older than the compacted revision (410 Gone for clients).
    #[error("revision {requested} has been compacted (compacted revision {compacted})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    /// The revision asked for is newer than the store's current revision.
    #[error("revision {requested} is in the future (current revision {current})")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    /// The store cannot serve now (closed, busy, disk trouble); the caller may retry.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("storage internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// The events of one watch. See [`Store::watch`].
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<Event>> + Send>>;

/// A revisioned key-value store with etcd semantics (see the crate docs for the model).
///
/// All writes are atomic and durable when they return `Ok`: an acknowledged write survives a
/// crash of the process (and, for the SQLite backend, loss of power).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The revision of the last write (0 if nothing was ever written; 1 for a fresh etcd).
    async fn current_revision(&self) -> Result<Revision>;

    /// The live value of `key`, or `None` if it does not exist.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Live keys that start with `prefix`, in key order, from `start_key` (inclusive) on if
    /// given, at most `limit` of them (`0` = no limit), as they were at `revision`.
    ///
    /// `revision`: `None` (or `Some(0)`) reads at the current revision; `Some(r)` reads at
    /// `r`, failing with [`StorageError::Compacted`] if `r` is older than the compacted
    /// revision and [`StorageError::FutureRevision`] if `r` is newer than the current one.
    ///
    /// To page, pass the returned `revision` and, as `start_key`, the last key returned
    /// followed by `"\0"`: every key is then returned exactly once, whatever is written
    /// between pages.
    async fn list(
        &self,
        prefix: &str,
        start_key: Option<&str>,
        limit: usize,
        revision: Option<Revision>,
    ) -> Result<ListResult>;

    /// How many live keys start with `prefix`, at the current revision.
    async fn count(&self, prefix: &str) -> Result<i64>;

    /// Creates `key`. Fails with [`StorageError::AlreadyExists`] if it is live.
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue>;

    /// Replaces the value of `key` if its `mod_revision` is `expected_mod_revision`.
    /// Fails with [`StorageError::NotFound`] if the key does not exist and with
    /// [`StorageError::Conflict`] (carrying the current value) if it was modified since.
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_mod_revision: Revision,
    ) -> Result<KeyValue>;

    /// Deletes `key`, if `expected_mod_revision` is given only when its `mod_revision` is that.
    /// Returns the last value with `mod_revision` set to the revision of the delete.
    /// Fails with [`StorageError::NotFound`] or [`StorageError::Conflict`] like `update`.
    async fn delete(&self, key: &str, expected_mod_revision: Option<Revision>) -> Result<KeyValue>;

    /// Every change to keys starting with `prefix` with a revision greater than `after`, in
    /// revision order, without gaps or duplicates: first the stored history, then changes as
    /// they are committed. `after` may be the current revision (only new changes) or even a
    /// future one (events up to it are skipped).
    ///
    /// Fails with [`StorageError::Compacted`] if `after` is older than the compacted revision.
    /// The stream yields an error item and ends if it can no longer be served without a gap
    /// (the history it needs was compacted while it was behind, or the store was closed);
    /// the caller then starts a new watch after the last revision it saw.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream>;

    /// Forgets history older than `revision`: afterwards reads at, and watches after,
    /// revisions older than `revision` fail with [`StorageError::Compacted`]; the latest
    /// value of every key is kept. Compacting to the already compacted revision is a no-op;
    /// to an older one fails with `Compacted`, to a future one with `FutureRevision`.
    async fn compact(&self, revision: Revision) -> Result<()>;

    /// The revision of the last compaction (0 if never compacted).
    async fn compacted_revision(&self) -> Result<Revision>;
}

/// The smallest string greater than every string that starts with `prefix`, or `None` if
/// there is none (empty prefix, or one made only of `char::MAX`). With it, "starts with
/// `prefix`" is the range `prefix <= key < prefix_end(prefix)` in byte (= code point) order.
pub(crate) fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last as u32 + 1 {
            0xD800 => Some('\u{E000}'),
            n => char::from_u32(n),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_is_the_next_string_after_the_prefix_range() {
        assert_eq!(
            prefix_end("/registry/pods/").as_deref(),
            Some("/registry/pods0")
        );
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        let end = prefix_end("/registry/pods/").unwrap_or_default();
        assert!("/registry/pods/zzz\u{10FFFF}".as_bytes() < end.as_bytes());
        assert!("/registry/podsx/a" > end.as_str());
    }
}
