//! list and deletecollection, with selectors, paging and every resourceVersion rule.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::StatusCode;
use keelson_apimachinery::fields::FieldSelector;
use keelson_apimachinery::labels::Selector;
use keelson_apimachinery::{Cause, Status};
use serde_json::{json, Value};

use super::Ctx;
use crate::object;
use crate::registry::ResourceDef;
use crate::request::Query;
use crate::respond::{self, Response};
use crate::rest::{storage_error, Deleted};

/// Which objects a list or watch selects.
pub struct Filter {
    def: &'static ResourceDef,
    namespace_prefix: String,
    labels: Option<Selector>,
    fields: Option<FieldSelector>,
    /// From a single-object path (`GET .../pods/NAME?watch=1`).
    name: Option<String>,
}

impl Filter {
    pub fn new(ctx: &Ctx) -> Result<Filter, Status> {
        let labels =
            match ctx.query.non_empty("labelSelector") {
                Some(s) => Some(Selector::parse(s).map_err(|e| {
                    Status::bad_request(format!("unable to parse requirement: {e}"))
                })?),
                None => None,
            };
        let fields = match ctx.query.non_empty("fieldSelector") {
            Some(s) => Some(FieldSelector::parse(s).map_err(Status::bad_request)?),
            None => None,
        };
        if let Some(f) = &fields {
            for r in f.requirements() {
                let field = r.field.as_str();
                let ok = field == "metadata.name"
                    || field == "metadata.namespace"
                    || ctx.def.selectable_fields.contains(&field);
                if !ok {
                    return Err(Status::bad_request(format!(
                        "field label not supported: {field}"
                    )));
                }
            }
        }
        let name = ctx.req.name.clone();
        if let (Some(name), Some(f)) = (&name, &fields) {
            if f.requirements()
                .iter()
                .any(|r| r.field == "metadata.name" && &r.value != name)
            {
                return Err(Status::bad_request(
                    "field selector conflicts with the name in the path",
                ));
            }
        }
        let prefix = ctx.def.storage_prefix();
        let namespace_prefix = match ctx.namespace() {
            Some(ns) if ctx.def.namespaced => format!("{prefix}{ns}/"),
            _ => prefix,
        };
        Ok(Filter {
            def: ctx.def,
            namespace_prefix,
            labels,
            fields,
            name,
        })
    }

    pub fn prefix(&self) -> &str {
        &self.namespace_prefix
    }

    pub fn has_selectors(&self) -> bool {
        self.labels.is_some() || self.fields.is_some() || self.name.is_some()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        if self.name.as_deref().is_some_and(|n| n != object::name(obj)) {
            return false;
        }
        if let Some(sel) = &self.labels {
            let empty = serde_json::Map::new();
            let labels = object::labels(obj).unwrap_or(&empty);
            if !sel.matches(labels) {
                return false;
            }
        }
        if let Some(f) = &self.fields {
            // Field selectors name the fields of the request's version.
            let converted;
            let obj =
                if obj.get("apiVersion").and_then(Value::as_str) == Some(&self.def.api_version()) {
                    obj
                } else {
                    converted = crate::convert::to_version(self.def, obj.clone());
                    &converted
                };
            if !f.matches(|field| object::field_string(obj, field)) {
                return false;
            }
        }
        true
    }
}

/// The resourceVersion rules of a list, checked as `ValidateListOptions` does.
pub struct ListOptions {
    pub resource_version: Option<String>,
    pub exact: bool,
    pub limit: usize,
    pub continue_token: Option<String>,
}

/// 422 on ListOptions, as `ValidateListOptions` words it.
pub fn list_invalid(field: &str, message: &str) -> Status {
    Status::invalid(
        "ListOptions",
        "meta.k8s.io",
        "",
        vec![Cause::new(
            "FieldValueForbidden",
            format!("Forbidden: {message}"),
            field,
        )],
    )
}

impl ListOptions {
    pub fn parse(query: &Query) -> Result<ListOptions, Status> {
        let resource_version = query.non_empty("resourceVersion").map(String::from);
        let matching = query.non_empty("resourceVersionMatch");
        let continue_token = query.non_empty("continue").map(String::from);
        let limit = query
            .int("limit")
            .map_err(Status::bad_request)?
            .unwrap_or(0)
            .max(0) as usize;
        if let Some(m) = matching {
            if resource_version.is_none() {
                return Err(list_invalid(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
            if continue_token.is_some() {
                return Err(list_invalid(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
            if m != "Exact" && m != "NotOlderThan" {
                return Err(Status::invalid(
                    "ListOptions",
                    "meta.k8s.io",
                    "",
                    vec![Cause::new("FieldValueNotSupported", format!("Unsupported value: {m:?}: supported values: \"Exact\", \"NotOlderThan\""), "resourceVersionMatch")],
                ));
            }
            if m == "Exact" && resource_version.as_deref() == Some("0") {
                return Err(list_invalid(
                    "resourceVersionMatch",
                    "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                ));
            }
        }
        if let Some(rv) = &resource_version {
            if rv.parse::<i64>().is_err() {
                return Err(Status::bad_request(format!(
                    "invalid resource version {rv:?}"
                )));
            }
        }
        let legacy_exact = matching.is_none()
            && limit > 0
            && resource_version.as_deref().is_some_and(|rv| rv != "0");
        Ok(ListOptions {
            exact: matching == Some("Exact") || legacy_exact,
            resource_version,
            limit,
            continue_token,
        })
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    v: String,
    rv: i64,
    start: String,
}

fn encode_continue(rv: i64, next_key: &str, prefix: &str) -> String {
    let token = ContinueToken {
        v: "meta.k8s.io/v1".into(),
        rv,
        start: next_key
            .strip_prefix(prefix)
            .unwrap_or(next_key)
            .to_string(),
    };
    base64::engine::general_purpose::URL_SAFE.encode(serde_json::to_vec(&token).unwrap_or_default())
}

fn decode_continue(token: &str) -> Result<ContinueToken, Status> {
    let bad = || {
        Status::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    };
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token))
        .map_err(|_| bad())?;
    let parsed: ContinueToken = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if parsed.v != "meta.k8s.io/v1" || parsed.rv <= 0 || parsed.start.contains("..") {
        return Err(bad());
    }
    Ok(parsed)
}

pub struct Page {
    pub items: Vec<Arc<Value>>,
    pub revision: i64,
    pub continue_token: Option<String>,
    pub remaining: Option<i64>,
}

/// Reads the page the options ask for, from the watch cache or the store.
pub async fn read(ctx: &Ctx, filter: &Filter, opts: &ListOptions) -> Result<Page, Status> {
    let from_store = opts.continue_token.is_some()
        || opts.exact
        || (opts.limit > 0 && opts.resource_version.as_deref() != Some("0"));
    if from_store {
        return read_store(ctx, filter, opts).await;
    }
    let cache = ctx
        .api
        .cache
        .resource(&ctx.def.storage_prefix())
        .ok_or_else(|| Status::internal("resource has no cache"))?;
    let revision = match opts.resource_version.as_deref() {
        None => ctx.api.synced_revision().await?,
        Some("0") => ctx.api.cache.revision(),
        Some(rv) => {
            let wanted: i64 = rv.parse().unwrap_or(0);
            if !ctx.api.cache.wait_for(wanted, Duration::from_secs(3)).await {
                return Err(storage_error(
                    ctx.def,
                    "",
                    keelson_storage::StorageError::FutureRevision {
                        requested: wanted,
                        current: ctx.api.cache.revision(),
                    },
                ));
            }
            ctx.api.cache.revision()
        }
    };
    let snapshot = cache.snapshot(filter.prefix(), revision);
    let items = snapshot
        .objects
        .into_iter()
        .filter(|o| filter.matches(o))
        .collect();
    Ok(Page {
        items,
        revision: revision.max(snapshot.revision),
        continue_token: None,
        remaining: None,
    })
}

async fn read_store(ctx: &Ctx, filter: &Filter, opts: &ListOptions) -> Result<Page, Status> {
    let prefix = filter.prefix().to_string();
    let (mut revision, mut start) = match &opts.continue_token {
        Some(token) => {
            let t = decode_continue(token)?;
            (Some(t.rv), Some(format!("{prefix}{}", t.start)))
        }
        None => (
            opts.resource_version
                .as_deref()
                .and_then(|rv| rv.parse::<i64>().ok())
                .filter(|_| opts.exact),
            None,
        ),
    };
    let want = if opts.limit == 0 {
        usize::MAX
    } else {
        opts.limit
    };
    let mut items = Vec::new();
    loop {
        let fetch = if opts.limit == 0 {
            0
        } else {
            (want - items.len()).max(if filter.has_selectors() { 500 } else { 1 })
        };
        let page = ctx.api.store.list(&prefix, start.as_deref(), fetch, revision).await.map_err(|e| match e {
            keelson_storage::StorageError::Compacted { .. } if opts.continue_token.is_some() => Status::gone(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
            ),
            other => storage_error(ctx.def, "", other),
        })?;
        revision = Some(page.revision);
        let mut last_key = None;
        for kv in &page.kvs {
            last_key = Some(kv.key.clone());
            let Ok(mut v) = serde_json::from_slice::<Value>(&kv.value) else {
                continue;
            };
            object::set_resource_version(&mut v, kv.mod_revision);
            if filter.matches(&v) {
                items.push(Arc::new(v));
                if items.len() == want {
                    break;
                }
            }
        }
        let consumed_all = last_key.as_ref() == page.kvs.last().map(|kv| &kv.key);
        let more = page.more || !consumed_all;
        if items.len() >= want || !more {
            let rev = page.revision;
            let continue_token = match (more, last_key) {
                (true, Some(k)) => Some(encode_continue(rev, &format!("{k}\0"), &prefix)),
                _ => None,
            };
            let remaining = if continue_token.is_some() && !filter.has_selectors() && consumed_all {
                Some(page.remaining)
            } else {
                None
            };
            return Ok(Page {
                items,
                revision: rev,
                continue_token,
                remaining,
            });
        }
        match last_key {
            Some(k) => start = Some(format!("{k}\0")),
            None => {
                return Ok(Page {
                    items,
                    revision: page.revision,
                    continue_token: None,
                    remaining: None,
                })
            }
        }
    }
}

pub async fn list(ctx: Ctx) -> Result<Response, Status> {
    if ctx
        .query
        .get("sendInitialEvents")
        .is_some_and(|v| !v.is_empty())
    {
        return Err(list_invalid(
            "sendInitialEvents",
            "sendInitialEvents is forbidden for list",
        ));
    }
    let opts = ListOptions::parse(&ctx.query)?;
    let filter = Filter::new(&ctx)?;
    let page = read(&ctx, &filter, &opts).await?;
    render(&ctx, ctx.def, page)
}

fn list_metadata(page: &Page) -> Value {
    let mut meta = json!({"resourceVersion": page.revision.to_string()});
    if let Some(c) = &page.continue_token {
        meta["continue"] = json!(c);
    }
    if let Some(r) = page.remaining {
        meta["remainingItemCount"] = json!(r);
    }
    meta
}

fn render(ctx: &Ctx, def: &ResourceDef, page: Page) -> Result<Response, Status> {
    let accept = ctx.header("accept");
    if crate::table::wants_table(accept) {
        let table = crate::table::render(def, &page.items, &ctx.query, list_metadata(&page))?;
        return Ok(respond::json(StatusCode::OK, &table));
    }
    let partial = crate::table::wants_partial_metadata(accept);
    let (kind, api_version) = if partial {
        (
            "PartialObjectMetadataList".to_string(),
            "meta.k8s.io/v1".to_string(),
        )
    } else {
        (def.list_kind.to_string(), def.api_version())
    };
    // Written by hand so that thousands of cached objects are serialized once, not cloned.
    let mut out = Vec::with_capacity(256 + page.items.len() * 512);
    out.extend_from_slice(b"{\"kind\":");
    serde_json::to_writer(&mut out, &kind).map_err(Status::internal)?;
    out.extend_from_slice(b",\"apiVersion\":");
    serde_json::to_writer(&mut out, &api_version).map_err(Status::internal)?;
    out.extend_from_slice(b",\"metadata\":");
    serde_json::to_writer(&mut out, &list_metadata(&page)).map_err(Status::internal)?;
    out.extend_from_slice(b",\"items\":[");
    for (i, item) in page.items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if partial {
            serde_json::to_writer(&mut out, &crate::table::partial_metadata(item))
                .map_err(Status::internal)?;
        } else if item.get("apiVersion").and_then(Value::as_str) == Some(api_version.as_str()) {
            serde_json::to_writer(&mut out, item.as_ref()).map_err(Status::internal)?;
        } else {
            serde_json::to_writer(&mut out, &super::present(def, (**item).clone()))
                .map_err(Status::internal)?;
        }
    }
    out.extend_from_slice(b"]}");
    Ok(respond::bytes_response(StatusCode::OK, respond::JSON, out))
}

pub async fn delete_collection(ctx: Ctx, body: Bytes) -> Result<Response, Status> {
    let opts = super::delete_options(&ctx, &body)?;
    let filter = Filter::new(&ctx)?;
    let list_opts = ListOptions {
        resource_version: None,
        exact: false,
        limit: 0,
        continue_token: None,
    };
    let page = read(&ctx, &filter, &list_opts).await?;
    let mut deleted = Vec::new();
    for item in &page.items {
        let ns = object::namespace(item).to_string();
        let ns = if ctx.def.namespaced {
            Some(ns.as_str())
        } else {
            None
        };
        match ctx.api.delete(ctx.def, ns, object::name(item), &opts).await {
            Ok(Deleted::Gone(obj)) | Ok(Deleted::Pending(obj)) => deleted.push(Arc::new(obj)),
            Err(s) if s.code == 404 => {}
            Err(s) => return Err(s),
        }
    }
    let page = Page {
        items: deleted,
        revision: ctx.api.cache.revision(),
        continue_token: None,
        remaining: None,
    };
    render(&ctx, ctx.def, page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let token = encode_continue(42, "/registry/core/pods/ns/b\0", "/registry/core/pods/");
        let parsed = decode_continue(&token).ok().map(|t| (t.rv, t.start));
        assert_eq!(parsed, Some((42, "ns/b\0".to_string())));
        assert_eq!(
            decode_continue("not-base64!").err().map(|s| s.code),
            Some(400)
        );
    }

    #[test]
    fn list_option_combinations() {
        let q = |s: &str| Query::parse(Some(s));
        assert_eq!(
            ListOptions::parse(&q("resourceVersionMatch=Exact"))
                .err()
                .map(|s| s.code),
            Some(422)
        );
        assert_eq!(
            ListOptions::parse(&q("resourceVersion=0&resourceVersionMatch=Exact"))
                .err()
                .map(|s| s.code),
            Some(422)
        );
        assert_eq!(
            ListOptions::parse(&q(
                "resourceVersion=5&resourceVersionMatch=NotOlderThan&continue=x"
            ))
            .err()
            .map(|s| s.code),
            Some(422)
        );
        assert!(ListOptions::parse(&q("resourceVersion=5&limit=10")).is_ok_and(|o| o.exact));
        assert!(ListOptions::parse(&q("resourceVersion=0&limit=10")).is_ok_and(|o| !o.exact));
    }
}
