//! The embedded backend: SQLite (bundled) in WAL mode, one table of revisions, as kine does.
//!
//! # Layout
//!
//! ```sql
//! kv(id INTEGER PRIMARY KEY AUTOINCREMENT,  -- the revision of the write
//!    name TEXT, created, deleted,            -- the key; 1 if this row created / deleted it
//!    create_revision, prev_revision,         -- prev_revision: the key's previous row (0 if none)
//!    value BLOB)                             -- for a delete: the value the key had
//! INDEX kv_name_id ON kv(name, id, deleted)  -- `deleted` makes counts index-only
//! meta(name, value)                         -- 'compacted' (the compacted revision) and
//!                                           -- 'compact_done' (how far its row deletion got)
//! ```
//!
//! The current revision is `sqlite_sequence`'s counter for `kv` (AUTOINCREMENT never reuses a
//! revision, even after compaction deleted the newest rows).
//!
//! # Writes: group commit
//!
//! One writer thread owns the only write connection. It takes every pending request from a
//! channel, applies them in order in one `BEGIN IMMEDIATE` transaction (each checked on its
//! own: a failed precondition fails only that request), commits once (one fsync of the WAL,
//! `synchronous=FULL`), and only then publishes the events and answers the callers. So an
//! acknowledged write is on disk, and throughput grows with the number of concurrent writers.
//!
//! # Reads
//!
//! A small pool of read-only connections, used from `spawn_blocking`; WAL lets them read a
//! consistent snapshot while the writer commits. A list checks its revision against the
//! compacted and current revisions inside the same snapshot it reads from.
//!
//! # Watch
//!
//! See [`watch`]: subscribe to the writer's broadcast, replay history from the table, then
//! follow the broadcast, skipping what the replay covered; if the broadcast overflows, read
//! the missed range from the table again.
//!
//! # Compaction
//!
//! `compact(r)` first records `r` as the compacted revision (from then on reads and watches
//! below `r` fail), then deletes, in small batches through the writer (so writes interleave),
//! every row superseded by a newer row at or below `r` and every delete marker at or below
//! `r`. Each batch records its progress, so a compaction interrupted by a crash is finished
//! when the store is opened again.

mod read;
mod watch;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{mpsc, Arc};

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{broadcast, oneshot, Mutex as AsyncMutex};

use crate::{KeyValue, ListResult, Result, Revision, StorageError, Store, WatchStream};
use read::ReadPool;
use writer::{CompactStep, Msg, WriteOp};

/// Events of one commit, in revision order, as the writer publishes them.
pub(crate) type EventBatch = Arc<Vec<crate::Event>>;

/// Tuning of [`SqliteStore`]. The defaults suit the API server.
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    /// Read-only connections in the pool (concurrent reads).
    pub read_connections: usize,
    /// Most requests the writer puts in one transaction.
    pub max_batch: usize,
    /// Commits the event broadcast holds for slow watchers before they must re-read the table.
    pub event_buffer: usize,
    /// Rows a watch reads from the table at a time while replaying history.
    pub watch_page: usize,
    /// Rows one compaction batch looks at (bounds how long a batch holds the writer).
    pub compact_batch: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            read_connections: 4,
            max_batch: 1024,
            event_buffer: 1024,
            watch_page: 1000,
            compact_batch: 1000,
        }
    }
}

/// State shared by the store handle, its watch streams and its writer thread.
pub(crate) struct Shared {
    pub(crate) readers: Arc<ReadPool>,
    /// The revision of the last commit (updated by the writer after each commit).
    pub(crate) current: AtomicI64,
    /// The compacted revision as of the last commit.
    pub(crate) compacted: AtomicI64,
    pub(crate) closed: AtomicBool,
    /// Where the writer publishes the events of each commit and watches subscribe. Taken
    /// (so every watch sees the channel close) when the store is closed or the writer stops.
    pub(crate) events: parking_lot::Mutex<Option<broadcast::Sender<EventBatch>>>,
    pub(crate) opts: SqliteOptions,
}

impl Shared {
    /// Marks the store closed and ends every watch.
    pub(crate) fn shut(&self) {
        self.closed.store(true, Ordering::Release);
        self.events.lock().take();
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StorageError::Unavailable("store is closed".into()));
        }
        Ok(())
    }
}

/// The embedded SQLite store. See the module docs for how it works.
pub struct SqliteStore {
    path: PathBuf,
    shared: Arc<Shared>,
    writer: mpsc::Sender<Msg>,
    /// One compaction at a time.
    compaction: AsyncMutex<()>,
}

pub(crate) fn sql_err(err: rusqlite::Error) -> StorageError {
    use rusqlite::ErrorCode;
    match err.sqlite_error_code() {
        Some(
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::DiskFull
            | ErrorCode::SystemIoFailure,
        ) => StorageError::Unavailable(format!("sqlite: {err}")),
        _ => StorageError::Internal(format!("sqlite: {err}")),
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kv (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS kv_name_id ON kv (name, id, deleted);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (name, value) VALUES ('compacted', 0), ('compact_done', 0);
";

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(sql_err)?;
    // FULL: the WAL is fsynced at every commit, so an acknowledged write survives power loss.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sql_err)?;
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(sql_err)?;
    Ok(())
}

/// The revision of the last write and the compacted revision, as seen by `conn`'s current
/// transaction (or at this instant when it has none).
pub(crate) fn revisions(conn: &Connection) -> Result<(Revision, Revision)> {
    conn.prepare_cached(
        "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'kv'), 0),
                    COALESCE((SELECT MAX(id) FROM kv), 0)),
                (SELECT value FROM meta WHERE name = 'compacted')",
    )
    .and_then(|mut stmt| stmt.query_row([], |row| Ok((row.get(0)?, row.get(1)?))))
    .map_err(sql_err)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Arc<SqliteStore>> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens (creating if needed) the database at `path`. Must not be opened twice at once
    /// (by this or another process): the watch of one would miss the writes of the other.
    pub fn open_with(path: impl AsRef<Path>, opts: SqliteOptions) -> Result<Arc<SqliteStore>> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StorageError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let mut conn = Connection::open(&path).map_err(sql_err)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(sql_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StorageError::Internal(format!(
                "{}: cannot switch to WAL mode (got {mode})",
                path.display()
            )));
        }
        configure(&conn)?;
        conn.pragma_update(None, "cache_size", -32_000)
            .map_err(sql_err)?;
        // Truncate the WAL back to 64 MiB after a checkpoint that emptied it.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
            .map_err(sql_err)?;
        conn.execute_batch(SCHEMA).map_err(sql_err)?;
        // Finish a compaction that a crash interrupted, before anything reads.
        while writer::compact_step_txn(&mut conn, opts.compact_batch)? == CompactStep::More {}
        let (current, compacted) = revisions(&conn)?;

        let mut readers = Vec::new();
        for _ in 0..opts.read_connections.max(1) {
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI;
            let reader = Connection::open_with_flags(&path, flags).map_err(sql_err)?;
            configure(&reader)?;
            reader
                .pragma_update(None, "query_only", true)
                .map_err(sql_err)?;
            readers.push(reader);
        }

        let shared = Arc::new(Shared {
            readers: Arc::new(ReadPool::new(readers)),
            current: AtomicI64::new(current),
            compacted: AtomicI64::new(compacted),
            closed: AtomicBool::new(false),
            events: parking_lot::Mutex::new(Some(broadcast::channel(opts.event_buffer.max(16)).0)),
            opts: opts.clone(),
        });
        let (tx, rx) = mpsc::channel();
        let writer_shared = shared.clone();
        std::thread::Builder::new()
            .name("keelson-sqlite-writer".into())
            .spawn(move || writer::run(conn, rx, writer_shared))
            .map_err(|e| StorageError::Internal(format!("cannot start the writer thread: {e}")))?;
        tracing::debug!(path = %path.display(), current, compacted, "opened sqlite store");
        Ok(Arc::new(SqliteStore {
            path,
            shared,
            writer: tx,
            compaction: AsyncMutex::new(()),
        }))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the store: writes already queued are committed and answered, then the writer
    /// stops. Afterwards every operation fails with `Unavailable` and every watch stream
    /// yields an `Unavailable` error and ends. Waits until the writer has closed the database.
    pub async fn close(&self) {
        self.shared.shut();
        let (reply, done) = oneshot::channel();
        if self.writer.send(Msg::Shutdown(reply)).is_ok() {
            let _ = done.await;
        }
        self.shared.readers.close();
    }

    async fn write(&self, op: WriteOp) -> Result<KeyValue> {
        self.shared.check_open()?;
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(Msg::Write(op, reply))
            .map_err(|_| StorageError::Unavailable("store is closed".into()))?;
        answer
            .await
            .map_err(|_| StorageError::Unavailable("store writer stopped".into()))?
    }

    async fn compact_msg(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<CompactStep>>) -> Msg,
    ) -> Result<CompactStep> {
        self.shared.check_open()?;
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(make(reply))
            .map_err(|_| StorageError::Unavailable("store is closed".into()))?;
        answer
            .await
            .map_err(|_| StorageError::Unavailable("store writer stopped".into()))?
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn current_revision(&self) -> Result<Revision> {
        self.shared.check_open()?;
        Ok(self.shared.current.load(Ordering::Acquire))
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        self.shared.check_open()?;
        let key = key.to_owned();
        self.shared
            .readers
            .run(move |conn| read::get(conn, &key))
            .await
    }

    async fn list(
        &self,
        prefix: &str,
        start_key: Option<&str>,
        limit: usize,
        revision: Option<Revision>,
    ) -> Result<ListResult> {
        self.shared.check_open()?;
        let range = read::Range::new(prefix, start_key);
        self.shared
            .readers
            .run(move |conn| read::list(conn, &range, limit, revision))
            .await
    }

    async fn count(&self, prefix: &str) -> Result<i64> {
        self.shared.check_open()?;
        let range = read::Range::new(prefix, None);
        self.shared
            .readers
            .run(move |conn| read::count(conn, &range))
            .await
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        self.write(WriteOp::Create {
            key: key.to_owned(),
            value,
        })
        .await
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_mod_revision: Revision,
    ) -> Result<KeyValue> {
        self.write(WriteOp::Update {
            key: key.to_owned(),
            value,
            expected: expected_mod_revision,
        })
        .await
    }

    async fn delete(&self, key: &str, expected_mod_revision: Option<Revision>) -> Result<KeyValue> {
        self.write(WriteOp::Delete {
            key: key.to_owned(),
            expected: expected_mod_revision,
        })
        .await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        self.shared.check_open()?;
        let rx = match self.shared.events.lock().as_ref() {
            Some(events) => events.subscribe(),
            None => return Err(StorageError::Unavailable("store is closed".into())),
        };
        watch::start(self.shared.clone(), rx, prefix, after).await
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let _one_at_a_time = self.compaction.lock().await;
        self.compact_msg(|reply| Msg::SetCompacted(revision, reply))
            .await?;
        while self.compact_msg(Msg::CompactBatch).await? == CompactStep::More {}
        Ok(())
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        self.shared.check_open()?;
        Ok(self.shared.compacted.load(Ordering::Acquire))
    }
}
