//! The writer thread: group commit of every pending request in one transaction.

use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::oneshot;

use super::{revisions, sql_err, Shared};
use crate::{Event, EventKind, KeyValue, Result, Revision, StorageError};

pub(crate) enum WriteOp {
    Create {
        key: String,
        value: Bytes,
    },
    Update {
        key: String,
        value: Bytes,
        expected: Revision,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
}

pub(crate) enum Msg {
    Write(WriteOp, oneshot::Sender<Result<KeyValue>>),
    /// Records a new compacted revision (validated against the current and compacted ones).
    SetCompacted(Revision, oneshot::Sender<Result<CompactStep>>),
    /// Deletes one batch of compacted rows.
    CompactBatch(oneshot::Sender<Result<CompactStep>>),
    /// Commit what came before, then stop.
    Shutdown(oneshot::Sender<()>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CompactStep {
    /// More rows to delete: send another `CompactBatch`.
    More,
    Done,
}

enum Outcome {
    Write(oneshot::Sender<Result<KeyValue>>, Result<KeyValue>),
    Compact(oneshot::Sender<Result<CompactStep>>, Result<CompactStep>),
}

impl Outcome {
    fn fail(&mut self, err: &StorageError) {
        match self {
            Outcome::Write(_, r) => *r = Err(err.clone()),
            Outcome::Compact(_, r) => *r = Err(err.clone()),
        }
    }

    fn answer(self) {
        // A caller that went away no longer needs the answer.
        match self {
            Outcome::Write(reply, r) => {
                let _ = reply.send(r);
            }
            Outcome::Compact(reply, r) => {
                let _ = reply.send(r);
            }
        }
    }
}

/// Closes the store when the writer stops, however it stops (even by a panic).
struct StopGuard(Arc<Shared>);

impl Drop for StopGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!("the sqlite writer thread panicked; the store is closed");
        }
        self.0.shut();
    }
}

pub(crate) fn run(mut conn: Connection, rx: mpsc::Receiver<Msg>, shared: Arc<Shared>) {
    let guard = StopGuard(shared.clone());
    let max_batch = shared.opts.max_batch.max(1);
    let mut shutdown = None;
    while shutdown.is_none() {
        let Ok(first) = rx.recv() else { break };
        let mut batch = Vec::with_capacity(64);
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Shutdown(done) => shutdown = Some(done),
                msg => batch.push(msg),
            }
            if shutdown.is_none() && batch.len() < max_batch {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            commit_batch(&mut conn, batch, &shared);
        }
    }
    // Requests still queued are dropped with their reply channels: their callers see
    // `Unavailable`; watches see the broadcast close.
    drop(guard);
    drop(rx);
    if let Err((_, err)) = conn.close() {
        tracing::warn!(%err, "closing the sqlite write connection");
    }
    if let Some(done) = shutdown {
        let _ = done.send(());
    }
}

/// Applies `batch` in one transaction, commits, publishes the events and answers.
fn commit_batch(conn: &mut Connection, batch: Vec<Msg>, shared: &Shared) {
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut published = Vec::new();
    let mut failed: Option<StorageError> = None;

    let start = conn
        .execute_batch("BEGIN IMMEDIATE")
        .map_err(sql_err)
        .and_then(|()| revisions(conn));
    let (mut rev, mut compacted) = match start {
        Ok(r) => r,
        Err(err) => {
            failed = Some(err);
            (0, 0)
        }
    };

    for msg in batch {
        let mut outcome = match msg {
            Msg::Write(op, reply) => {
                let result = if failed.is_some() {
                    Err(StorageError::Unavailable("transaction aborted".into()))
                } else {
                    apply(conn, op, rev + 1).map(|(kv, event)| {
                        rev += 1;
                        published.push(event);
                        kv
                    })
                };
                Outcome::Write(reply, result)
            }
            Msg::SetCompacted(target, reply) => {
                let result = if failed.is_some() {
                    Err(StorageError::Unavailable("transaction aborted".into()))
                } else {
                    set_compacted(conn, target, rev, &mut compacted)
                };
                Outcome::Compact(reply, result)
            }
            Msg::CompactBatch(reply) => {
                let result = if failed.is_some() {
                    Err(StorageError::Unavailable("transaction aborted".into()))
                } else {
                    compact_in_savepoint(conn, shared.opts.compact_batch)
                };
                Outcome::Compact(reply, result)
            }
            Msg::Shutdown(done) => {
                let _ = done.send(());
                continue;
            }
        };
        // A failed statement normally undoes only itself; some errors (I/O, disk full)
        // roll back the whole transaction, and then every request of the batch fails.
        if failed.is_none() && conn.is_autocommit() {
            let err = StorageError::Unavailable("sqlite rolled back the write transaction".into());
            outcome.fail(&err);
            failed = Some(err);
        }
        outcomes.push(outcome);
    }

    if failed.is_none() {
        if let Err(err) = conn.execute_batch("COMMIT") {
            failed = Some(sql_err(err));
        }
    }
    match failed {
        Some(err) => {
            tracing::warn!(%err, "sqlite write batch failed");
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            for mut outcome in outcomes {
                outcome.fail(&err);
                outcome.answer();
            }
        }
        None => {
            shared.current.store(rev, Ordering::Release);
            shared.compacted.store(compacted, Ordering::Release);
            if !published.is_empty() {
                if let Some(events) = shared.events.lock().as_ref() {
                    // No receiver (no watch) is fine.
                    let _ = events.send(Arc::new(published));
                }
            }
            for outcome in outcomes {
                outcome.answer();
            }
        }
    }
}

struct Latest {
    id: Revision,
    deleted: bool,
    create_revision: Revision,
    value: Bytes,
}

impl Latest {
    fn kv(&self, key: &str) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: self.value.clone(),
            create_revision: self.create_revision,
            mod_revision: self.id,
        }
    }
}

fn latest(conn: &Connection, key: &str) -> Result<Option<Latest>> {
    conn.prepare_cached("SELECT id, deleted, create_revision, value FROM kv WHERE name = ?1 ORDER BY id DESC LIMIT 1")
        .and_then(|mut stmt| {
            stmt.query_row(params![key], |row| {
                Ok(Latest {
                    id: row.get(0)?,
                    deleted: row.get(1)?,
                    create_revision: row.get(2)?,
                    value: Bytes::from(row.get::<_, Vec<u8>>(3)?),
                })
            })
            .optional()
        })
        .map_err(sql_err)
}

#[allow(clippy::too_many_arguments)]
fn insert(
    conn: &Connection,
    id: Revision,
    key: &str,
    created: bool,
    deleted: bool,
    create_revision: Revision,
    prev_revision: Revision,
    value: &[u8],
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO kv (id, name, created, deleted, create_revision, prev_revision, value)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            id,
            key,
            created,
            deleted,
            create_revision,
            prev_revision,
            value
        ])
    })
    .map(|_| ())
    .map_err(sql_err)
}

/// Checks `op`'s precondition and, if it holds, writes it at revision `rev`.
fn apply(conn: &Connection, op: WriteOp, rev: Revision) -> Result<(KeyValue, Event)> {
    match op {
        WriteOp::Create { key, value } => {
            let prev_id = match latest(conn, &key)? {
                Some(l) if !l.deleted => return Err(StorageError::AlreadyExists { key }),
                Some(l) => l.id,
                None => 0,
            };
            insert(conn, rev, &key, true, false, rev, prev_id, &value)?;
            let kv = KeyValue {
                key,
                value,
                create_revision: rev,
                mod_revision: rev,
            };
            Ok((
                kv.clone(),
                Event {
                    kind: EventKind::Put,
                    kv,
                    prev: None,
                },
            ))
        }
        WriteOp::Update {
            key,
            value,
            expected,
        } => {
            let Some(l) = latest(conn, &key)?.filter(|l| !l.deleted) else {
                return Err(StorageError::NotFound { key });
            };
            if l.id != expected {
                let current = Some(l.kv(&key));
                return Err(StorageError::Conflict { key, current });
            }
            insert(
                conn,
                rev,
                &key,
                false,
                false,
                l.create_revision,
                l.id,
                &value,
            )?;
            let prev = l.kv(&key);
            let kv = KeyValue {
                key,
                value,
                create_revision: l.create_revision,
                mod_revision: rev,
            };
            Ok((
                kv.clone(),
                Event {
                    kind: EventKind::Put,
                    kv,
                    prev: Some(prev),
                },
            ))
        }
        WriteOp::Delete { key, expected } => {
            let Some(l) = latest(conn, &key)?.filter(|l| !l.deleted) else {
                return Err(StorageError::NotFound { key });
            };
            if expected.is_some_and(|e| e != l.id) {
                let current = Some(l.kv(&key));
                return Err(StorageError::Conflict { key, current });
            }
            insert(
                conn,
                rev,
                &key,
                false,
                true,
                l.create_revision,
                l.id,
                &l.value,
            )?;
            let prev = l.kv(&key);
            let kv = KeyValue {
                key,
                value: l.value,
                create_revision: l.create_revision,
                mod_revision: rev,
            };
            Ok((
                kv.clone(),
                Event {
                    kind: EventKind::Delete,
                    kv,
                    prev: Some(prev),
                },
            ))
        }
    }
}

fn meta(conn: &Connection, name: &str) -> Result<Revision> {
    conn.prepare_cached("SELECT value FROM meta WHERE name = ?1")
        .and_then(|mut stmt| stmt.query_row(params![name], |row| row.get(0)))
        .map_err(sql_err)
}

fn set_meta(conn: &Connection, name: &str, value: Revision) -> Result<()> {
    conn.prepare_cached("UPDATE meta SET value = ?2 WHERE name = ?1")
        .and_then(|mut stmt| stmt.execute(params![name, value]))
        .map(|_| ())
        .map_err(sql_err)
}

/// Validates and records a compaction to `target`; `current` is the revision so far in this
/// transaction, `compacted` the compacted revision (updated).
fn set_compacted(
    conn: &Connection,
    target: Revision,
    current: Revision,
    compacted: &mut Revision,
) -> Result<CompactStep> {
    if target < *compacted {
        return Err(StorageError::Compacted {
            requested: target,
            compacted: *compacted,
        });
    }
    if target > current {
        return Err(StorageError::FutureRevision {
            requested: target,
            current,
        });
    }
    if target > *compacted {
        set_meta(conn, "compacted", target)?;
        *compacted = target;
    }
    Ok(CompactStep::More)
}

fn compact_in_savepoint(conn: &Connection, batch: usize) -> Result<CompactStep> {
    conn.execute_batch("SAVEPOINT compact").map_err(sql_err)?;
    match compact_step(conn, batch) {
        Ok(step) => {
            conn.execute_batch("RELEASE compact").map_err(sql_err)?;
            Ok(step)
        }
        Err(err) => {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK TO compact; RELEASE compact");
            }
            Err(err)
        }
    }
}

/// Deletes the next batch of rows made unreachable by the recorded compaction: the previous
/// row of every row at or below the compacted revision (it is superseded) and every delete
/// marker at or below it. Rows are visited in revision order from where the last batch
/// stopped (`compact_done`); a delete marker's previous row always goes in the same batch as
/// (or before) the marker, so no reader ever sees an old value resurface.
pub(crate) fn compact_step(conn: &Connection, batch: usize) -> Result<CompactStep> {
    let target = meta(conn, "compacted")?;
    let done = meta(conn, "compact_done")?;
    if done >= target {
        return Ok(CompactStep::Done);
    }
    let offset = i64::try_from(batch.max(1) - 1).unwrap_or(i64::MAX);
    let hi: Revision = conn
        .prepare_cached(
            "SELECT id FROM kv WHERE id > ?1 AND id <= ?2 ORDER BY id LIMIT 1 OFFSET ?3",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![done, target, offset], |row| row.get(0))
                .optional()
        })
        .map_err(sql_err)?
        .unwrap_or(target);
    let superseded: Vec<Revision> = conn
        .prepare_cached(
            "SELECT prev_revision FROM kv WHERE id > ?1 AND id <= ?2 AND prev_revision > 0",
        )
        .and_then(|mut stmt| {
            let rows = stmt.query_map(params![done, hi], |row| row.get(0))?;
            rows.collect()
        })
        .map_err(sql_err)?;
    {
        let mut delete = conn
            .prepare_cached("DELETE FROM kv WHERE id = ?1")
            .map_err(sql_err)?;
        for id in superseded {
            delete.execute(params![id]).map_err(sql_err)?;
        }
    }
    conn.prepare_cached("DELETE FROM kv WHERE id > ?1 AND id <= ?2 AND deleted = 1")
        .and_then(|mut stmt| stmt.execute(params![done, hi]))
        .map_err(sql_err)?;
    set_meta(conn, "compact_done", hi)?;
    Ok(if hi >= target {
        CompactStep::Done
    } else {
        CompactStep::More
    })
}

/// Runs [`compact_step`] in its own transaction (at open, before the writer thread starts).
pub(crate) fn compact_step_txn(conn: &mut Connection, batch: usize) -> Result<CompactStep> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql_err)?;
    let step = compact_step(&tx, batch)?;
    tx.commit().map_err(sql_err)?;
    Ok(step)
}
