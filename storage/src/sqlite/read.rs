//! Reads: a pool of read-only connections used from `spawn_blocking`, and the queries.

use std::sync::Arc;

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::Semaphore;

use super::{revisions, sql_err};
use crate::{prefix_end, KeyValue, ListResult, Result, Revision, StorageError};

pub(crate) struct ReadPool {
    conns: parking_lot::Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

/// Puts the connection back into the pool even if the read panicked.
struct Lease<'a> {
    pool: &'a ReadPool,
    conn: Option<Connection>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.conns.lock().push(conn);
        }
    }
}

impl ReadPool {
    pub(crate) fn new(conns: Vec<Connection>) -> ReadPool {
        let n = conns.len();
        ReadPool {
            conns: parking_lot::Mutex::new(conns),
            permits: Arc::new(Semaphore::new(n)),
        }
    }

    /// Runs `f` on a free read connection on tokio's blocking pool.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StorageError::Unavailable("store is closed".into()))?;
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = pool.conns.lock().pop();
            let mut lease = Lease { pool: &pool, conn };
            match lease.conn.as_mut() {
                Some(conn) => f(conn),
                None => Err(StorageError::Internal("no free read connection".into())),
            }
        })
        .await
        .map_err(|e| StorageError::Internal(format!("read task failed: {e}")))?
    }

    /// Fails every later read with `Unavailable` and closes the connections.
    pub(crate) fn close(&self) {
        self.permits.close();
        self.conns.lock().clear();
    }
}

/// Keys `lo <= key < hi` (no upper bound when `hi` is `None`).
#[derive(Clone, Debug)]
pub(crate) struct Range {
    pub(crate) lo: String,
    pub(crate) hi: Option<String>,
}

impl Range {
    /// Keys starting with `prefix`, from `start_key` on.
    pub(crate) fn new(prefix: &str, start_key: Option<&str>) -> Range {
        let lo = match start_key {
            Some(start) if start > prefix => start.to_owned(),
            _ => prefix.to_owned(),
        };
        Range {
            lo,
            hi: prefix_end(prefix),
        }
    }

    fn is_empty(&self) -> bool {
        self.hi.as_deref().is_some_and(|hi| self.lo.as_str() >= hi)
    }
}

/// The live rows at revision `?rev` among the rows selected by `range_sql`: not a delete
/// marker, and no newer row of the same key at or below `?rev`. `+kv.id` keeps the planner
/// on the (name, id, deleted) index, so rows come in key order and a LIMIT stops the scan early.
fn live_where(range: &Range, lo_cmp: &str) -> String {
    let hi = if range.hi.is_some() {
        " AND kv.name < :hi"
    } else {
        ""
    };
    format!(
        "kv.name {lo_cmp} :lo{hi} AND +kv.id <= :rev AND kv.deleted = 0
         AND NOT EXISTS (SELECT 1 FROM kv AS newer
                         WHERE newer.name = kv.name AND newer.id > kv.id AND newer.id <= :rev)"
    )
}

pub(crate) fn get(conn: &mut Connection, key: &str) -> Result<Option<KeyValue>> {
    conn.prepare_cached("SELECT id, create_revision, deleted, value FROM kv WHERE name = ?1 ORDER BY id DESC LIMIT 1")
        .and_then(|mut stmt| {
            stmt.query_row(params![key], |row| {
                let deleted: bool = row.get(2)?;
                if deleted {
                    return Ok(None);
                }
                Ok(Some(KeyValue {
                    key: key.to_owned(),
                    value: Bytes::from(row.get::<_, Vec<u8>>(3)?),
                    create_revision: row.get(1)?,
                    mod_revision: row.get(0)?,
                }))
            })
            .optional()
        })
        .map(Option::flatten)
        .map_err(sql_err)
}

fn count_live(conn: &Connection, range: &Range, lo_cmp: &str, rev: Revision) -> Result<i64> {
    let sql = format!(
        "SELECT COUNT(*) FROM kv WHERE {}",
        live_where(range, lo_cmp)
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(sql_err)?;
    let mut bind = vec![(":lo", &range.lo as &dyn rusqlite::ToSql), (":rev", &rev)];
    if let Some(hi) = &range.hi {
        bind.push((":hi", hi));
    }
    stmt.query_row(bind.as_slice(), |row| row.get(0))
        .map_err(sql_err)
}

pub(crate) fn list(
    conn: &mut Connection,
    range: &Range,
    limit: usize,
    revision: Option<Revision>,
) -> Result<ListResult> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Deferred)
        .map_err(sql_err)?;
    let (current, compacted) = revisions(&tx)?;
    let rev = match revision {
        None | Some(0) => current,
        Some(r) if r < compacted => {
            return Err(StorageError::Compacted {
                requested: r,
                compacted,
            })
        }
        Some(r) if r > current => {
            return Err(StorageError::FutureRevision {
                requested: r,
                current,
            })
        }
        Some(r) => r,
    };
    if range.is_empty() {
        return Ok(ListResult {
            kvs: Vec::new(),
            revision: rev,
            more: false,
            remaining: 0,
        });
    }
    let sql = format!(
        "SELECT kv.id, kv.name, kv.create_revision, kv.value FROM kv WHERE {} ORDER BY kv.name LIMIT :limit",
        live_where(range, ">=")
    );
    // One more than asked for, to know whether there are more.
    let fetch: i64 = if limit == 0 {
        -1
    } else {
        i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1
    };
    let mut kvs = {
        let mut stmt = tx.prepare_cached(&sql).map_err(sql_err)?;
        let mut bind = vec![
            (":lo", &range.lo as &dyn rusqlite::ToSql),
            (":rev", &rev),
            (":limit", &fetch),
        ];
        if let Some(hi) = &range.hi {
            bind.push((":hi", hi));
        }
        let rows = stmt
            .query_map(bind.as_slice(), |row| {
                Ok(KeyValue {
                    mod_revision: row.get(0)?,
                    key: row.get(1)?,
                    create_revision: row.get(2)?,
                    value: Bytes::from(row.get::<_, Vec<u8>>(3)?),
                })
            })
            .map_err(sql_err)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql_err)?
    };
    let mut more = false;
    let mut remaining = 0;
    if limit > 0 && kvs.len() > limit {
        kvs.truncate(limit);
        more = true;
        if let Some(last) = kvs.last() {
            let after = Range {
                lo: last.key.clone(),
                hi: range.hi.clone(),
            };
            remaining = count_live(&tx, &after, ">", rev)?;
        }
    }
    Ok(ListResult {
        kvs,
        revision: rev,
        more,
        remaining,
    })
}

pub(crate) fn count(conn: &mut Connection, range: &Range) -> Result<i64> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Deferred)
        .map_err(sql_err)?;
    let (current, _) = revisions(&tx)?;
    count_live(&tx, range, ">=", current)
}

/// Reads, in one snapshot, up to `page` changes in `range` with revisions in `(after, ...]`.
/// Returns them with the revision up to which the table was covered: the last row's if the
/// page is full, else the snapshot's current revision (or `after` if that is newer).
pub(crate) fn history(
    conn: &mut Connection,
    range: &Range,
    after: Revision,
    page: usize,
) -> Result<(Vec<crate::Event>, Revision)> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Deferred)
        .map_err(sql_err)?;
    let (current, compacted) = revisions(&tx)?;
    if after < compacted {
        return Err(StorageError::Compacted {
            requested: after,
            compacted,
        });
    }
    if after >= current {
        return Ok((Vec::new(), after));
    }
    let hi = if range.hi.is_some() {
        " AND kv.name < :hi"
    } else {
        ""
    };
    let sql = format!(
        "SELECT kv.id, kv.name, kv.deleted, kv.create_revision, kv.value,
                prev.id, prev.deleted, prev.create_revision, prev.value
         FROM kv LEFT JOIN kv AS prev ON prev.id = kv.prev_revision
         WHERE kv.id > :after AND kv.id <= :cur AND kv.name >= :lo{hi}
         ORDER BY kv.id LIMIT :page"
    );
    let page_len = i64::try_from(page.max(1)).unwrap_or(i64::MAX);
    let mut stmt = tx.prepare_cached(&sql).map_err(sql_err)?;
    let mut bind = vec![
        (":after", &after as &dyn rusqlite::ToSql),
        (":cur", &current),
        (":lo", &range.lo),
        (":page", &page_len),
    ];
    if let Some(hi) = &range.hi {
        bind.push((":hi", hi));
    }
    let rows = stmt
        .query_map(bind.as_slice(), |row| {
            let id: Revision = row.get(0)?;
            let key: String = row.get(1)?;
            let deleted: bool = row.get(2)?;
            let kv = KeyValue {
                key: key.clone(),
                value: Bytes::from(row.get::<_, Vec<u8>>(4)?),
                create_revision: row.get(3)?,
                mod_revision: id,
            };
            let prev = match (
                row.get::<_, Option<Revision>>(5)?,
                row.get::<_, Option<bool>>(6)?,
            ) {
                (Some(prev_id), Some(false)) => Some(KeyValue {
                    key,
                    value: Bytes::from(row.get::<_, Vec<u8>>(8)?),
                    create_revision: row.get(7)?,
                    mod_revision: prev_id,
                }),
                _ => None,
            };
            let kind = if deleted {
                crate::EventKind::Delete
            } else {
                crate::EventKind::Put
            };
            Ok(crate::Event { kind, kv, prev })
        })
        .map_err(sql_err)?;
    let events = rows
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(sql_err)?;
    let covered = if events.len() as i64 >= page_len {
        events.last().map_or(current, |e| e.revision())
    } else {
        current
    };
    Ok((events, covered))
}
