//! Watch: newline-delimited JSON events from the watch cache, with bookmarks, watch-list
//! (sendInitialEvents) and 410 as an ERROR event inside a 200 stream.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use keelson_apimachinery::Status;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::list::{list_invalid, Filter};
use super::Ctx;
use crate::cache::{CacheEvent, EventType, TooOld};
use crate::registry::ResourceDef;
use crate::respond::{self, Response};

const BOOKMARK_INTERVAL: Duration = Duration::from_secs(30);

/// How the stream's objects are shaped: full objects, Tables or metadata only.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Object,
    Table,
    Metadata,
}

struct Encoder {
    def: &'static ResourceDef,
    shape: Shape,
    query: crate::request::Query,
    sent_columns: bool,
}

impl Encoder {
    fn event(&mut self, kind: &str, obj: &Value) -> Option<Bytes> {
        let object = match self.shape {
            Shape::Object => {
                if obj.get("apiVersion").and_then(Value::as_str)
                    == Some(self.def.api_version().as_str())
                {
                    return line(kind, obj);
                }
                super::present(self.def, obj.clone())
            }
            Shape::Metadata => crate::table::partial_metadata(obj),
            Shape::Table => {
                let mut table = crate::table::render(
                    self.def,
                    &[Arc::new(obj.clone())],
                    &self.query,
                    json!({}),
                )
                .ok()?;
                if self.sent_columns {
                    if let Some(m) = table.as_object_mut() {
                        m.remove("columnDefinitions");
                    }
                }
                self.sent_columns = true;
                table
            }
        };
        line(kind, &object)
    }

    fn bookmark(&self, revision: i64, initial_end: bool) -> Option<Bytes> {
        let mut meta = json!({"resourceVersion": revision.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let (api_version, kind) = match self.shape {
            Shape::Object => (self.def.api_version(), self.def.kind.to_string()),
            Shape::Metadata => ("meta.k8s.io/v1".into(), "PartialObjectMetadata".into()),
            Shape::Table => ("meta.k8s.io/v1".into(), "Table".into()),
        };
        line(
            "BOOKMARK",
            &json!({"kind": kind, "apiVersion": api_version, "metadata": meta}),
        )
    }
}

fn line(kind: &str, object: &Value) -> Option<Bytes> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    serde_json::to_writer(&mut out, object).ok()?;
    out.extend_from_slice(b"}\n");
    Some(Bytes::from(out))
}

/// What a change looks like to a watcher with a selector: an object leaving the selection
/// is DELETED for it, one entering is ADDED.
fn translate(filter: &Filter, event: &CacheEvent) -> Option<(&'static str, Arc<Value>)> {
    let now = event.kind != EventType::Deleted && filter.matches(&event.object);
    let before = event.prev.as_ref().is_some_and(|p| filter.matches(p));
    let in_scope = event.object.get("metadata").is_some();
    if !in_scope {
        return None;
    }
    match (event.kind, before, now) {
        (EventType::Deleted, true, _) => Some(("DELETED", event.object.clone())),
        (EventType::Deleted, false, _) => {
            // A delete of an object the cache never had (prev unknown): judge by its last state.
            if event.prev.is_none() && filter.matches(&event.object) {
                Some(("DELETED", event.object.clone()))
            } else {
                None
            }
        }
        (_, false, true) => Some(("ADDED", event.object.clone())),
        (_, true, true) => Some(("MODIFIED", event.object.clone())),
        (_, true, false) => Some(("DELETED", event.object.clone())),
        (_, false, false) => None,
    }
}

pub async fn watch(ctx: Ctx) -> Response {
    match start(ctx).await {
        Ok(resp) => resp,
        Err(status) => respond::status(&status),
    }
}

async fn start(ctx: Ctx) -> Result<Response, Status> {
    let q = &ctx.query;
    let send_initial = q
        .non_empty("sendInitialEvents")
        .map(|v| matches!(v, "true" | "1" | "True" | "TRUE" | "t" | "T"));
    let rv = q.non_empty("resourceVersion").map(String::from);
    let bookmarks = q.flag("allowWatchBookmarks").unwrap_or(false);
    if let Some(initial) = send_initial {
        if q.get("resourceVersionMatch") != Some("NotOlderThan") {
            return Err(list_invalid(
                "resourceVersionMatch",
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if initial && !bookmarks {
            return Err(list_invalid(
                "allowWatchBookmarks",
                "sendInitialEvents requires setting allowWatchBookmarks to true",
            ));
        }
    } else if let Some(m) = q.non_empty("resourceVersionMatch") {
        return Err(list_invalid("resourceVersionMatch", &format!("resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided (got {m})")));
    }
    let revision: Option<i64> = match rv.as_deref() {
        None => None,
        Some(s) => Some(
            s.parse()
                .map_err(|_| Status::bad_request(format!("invalid resource version {s:?}")))?,
        ),
    };
    let filter = Filter::new(&ctx)?;
    let cache = ctx
        .api
        .cache
        .resource(&ctx.def.storage_prefix())
        .cloned()
        .ok_or_else(|| Status::internal("resource has no cache"))?;
    let timeout = match q.int("timeoutSeconds").map_err(Status::bad_request)? {
        Some(s) if s > 0 => Duration::from_secs(s as u64),
        _ => Duration::from_secs(1800 + rand::random::<u64>() % 1800),
    };
    let accept = ctx.header("accept").to_string();
    let shape = if crate::table::wants_table(&accept) {
        Shape::Table
    } else if crate::table::wants_partial_metadata(&accept) {
        Shape::Metadata
    } else {
        Shape::Object
    };
    let mut enc = Encoder {
        def: ctx.def,
        shape,
        query: ctx.query.clone(),
        sent_columns: false,
    };

    // The initial state, if any, and the live feed from right after it.
    let initial_events = send_initial.unwrap_or(matches!(revision, None | Some(0)));
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(256);
    let mut replay: Vec<Arc<CacheEvent>> = Vec::new();
    let mut initial: Vec<Arc<Value>> = Vec::new();
    let mut too_old: Option<TooOld> = None;
    let (mut live, mut last_sent) = if initial_events {
        let at = match revision {
            None => ctx.api.synced_revision().await?,
            Some(r) => {
                if !ctx.api.cache.wait_for(r, Duration::from_secs(3)).await {
                    return Err(crate::rest::storage_error(
                        ctx.def,
                        "",
                        keelson_storage::StorageError::FutureRevision {
                            requested: r,
                            current: ctx.api.cache.revision(),
                        },
                    ));
                }
                r
            }
        };
        let snapshot = cache.snapshot(filter.prefix(), at.max(ctx.api.cache.revision()));
        // Events the snapshot already reflects must not be replayed from the live feed.
        initial = snapshot
            .objects
            .into_iter()
            .filter(|o| filter.matches(o))
            .collect();
        (Some(snapshot.live), snapshot.revision)
    } else {
        let from = revision.unwrap_or(0);
        if !ctx.api.cache.wait_for(from, Duration::from_secs(3)).await {
            return Err(crate::rest::storage_error(
                ctx.def,
                "",
                keelson_storage::StorageError::FutureRevision {
                    requested: from,
                    current: ctx.api.cache.revision(),
                },
            ));
        }
        match cache.subscribe_from(from) {
            Ok(sub) => {
                replay = sub.replay;
                (Some(sub.live), from)
            }
            Err(old) => {
                too_old = Some(old);
                (None, from)
            }
        }
    };
    let initial_end = send_initial == Some(true);
    let api = ctx.api.clone();

    tokio::spawn(async move {
        let send = |bytes: Option<Bytes>| {
            let tx = tx.clone();
            async move {
                match bytes {
                    Some(b) => tx.send(Ok(Frame::data(b))).await.is_ok(),
                    None => true,
                }
            }
        };
        if let Some(old) = too_old {
            let status = Status::gone(format!(
                "too old resource version: {last_sent} ({})",
                old.oldest
            ));
            let _ = send(line("ERROR", &status.to_json())).await;
            return;
        }
        for obj in &initial {
            if !send(enc.event("ADDED", obj)).await {
                return;
            }
        }
        if initial_end && !send(enc.bookmark(last_sent, true)).await {
            return;
        }
        for event in &replay {
            if event.revision <= last_sent {
                continue;
            }
            if let Some((kind, obj)) = translate(&filter, event) {
                if !send(enc.event(kind, &obj)).await {
                    return;
                }
            }
            last_sent = event.revision;
        }
        let Some(live) = live.as_mut() else { return };
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(BOOKMARK_INTERVAL);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = ticker.tick(), if bookmarks => {
                    let at = api.cache.revision().max(last_sent);
                    if !send(enc.bookmark(at, false)).await { return; }
                }
                received = live.recv() => match received {
                    Ok(event) => {
                        if event.revision <= last_sent { continue; }
                        last_sent = event.revision;
                        if let Some((kind, obj)) = translate(&filter, &event) {
                            if !send(enc.event(kind, &obj)).await { return; }
                        }
                    }
                    // Too slow to keep up: end the stream; the client re-watches from its
                    // last resourceVersion and gets the rest from the history window.
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        }
    });

    let body = StreamBody::new(ReceiverStream::new(rx)).boxed();
    let mut resp = http::Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    let content_type = match shape {
        Shape::Table => "application/json;as=Table;v=v1;g=meta.k8s.io;stream=watch",
        _ => "application/json;stream=watch",
    };
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    resp.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(resp)
}
