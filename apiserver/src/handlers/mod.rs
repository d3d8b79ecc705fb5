//! HTTP handlers for resource requests: decoding options and bodies, calling the object
//! lifecycle in `rest`, shaping responses.

mod apply;
pub mod list;
pub mod patch;
mod subresource;
mod watch;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use keelson_apimachinery::{Cause, Status};
use serde_json::{json, Value};

use crate::codec;
use crate::object;
use crate::registry::ResourceDef;
use crate::request::{Query, ResourceRequest};
use crate::respond::{self, Response};
use crate::rest::{Api, DeleteOptions, Deleted, FieldValidation, WriteOptions};

/// kube-apiserver's `--max-request-bytes` default for a request body.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Everything a resource handler needs about one request.
pub struct Ctx {
    pub api: Arc<Api>,
    pub def: &'static ResourceDef,
    pub req: ResourceRequest,
    pub query: Query,
    pub headers: HeaderMap,
    pub user_agent: String,
}

impl Ctx {
    pub fn namespace(&self) -> Option<&str> {
        self.req.namespace.as_deref()
    }

    pub fn name(&self) -> &str {
        self.req.name.as_deref().unwrap_or("")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn write_options(&self) -> Result<WriteOptions, Status> {
        let dry_run = match self.query.all("dryRun").as_slice() {
            [] => false,
            ["All"] => true,
            other => {
                return Err(Status::invalid(
                    "CreateOptions",
                    "",
                    "",
                    vec![Cause::new(
                        "FieldValueNotSupported",
                        format!(
                            "Unsupported value: {:?}: supported values: \"All\"",
                            other.join(",")
                        ),
                        "dryRun",
                    )],
                ))
            }
        };
        let field_validation = match self.query.non_empty("fieldValidation") {
            None | Some("Warn") => FieldValidation::Warn,
            Some("Strict") => FieldValidation::Strict,
            Some("Ignore") => FieldValidation::Ignore,
            Some(other) => {
                return Err(Status::bad_request(format!(
                    "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Warn\", \"Strict\""
                )))
            }
        };
        let field_manager = match self.query.non_empty("fieldManager") {
            Some(m) if m.len() > 128 || m.chars().any(|c| c.is_control()) => {
                return Err(Status::invalid(
                    "CreateOptions",
                    "",
                    "",
                    vec![Cause::new(
                        "FieldValueTooLong",
                        "Too long: may not be more than 128 bytes",
                        "fieldManager",
                    )],
                ))
            }
            Some(m) => m.to_string(),
            None => self.user_agent.split('/').next().unwrap_or("").to_string(),
        };
        Ok(WriteOptions {
            dry_run,
            field_validation,
            field_manager,
            apply: false,
        })
    }

    /// Decodes a body as an object of this resource's kind, checking apiVersion/kind and
    /// unknown fields as the field validation mode asks. Returns warnings for `Warn`.
    fn decode_object(
        &self,
        body: &[u8],
        opts: &WriteOptions,
        kind: &str,
        api_version: &str,
    ) -> Result<(Value, Vec<String>), Status> {
        let content_type = self.header("content-type");
        let mut obj = codec::decode_object(content_type, body, kind)?;
        check_type(&mut obj, kind, api_version)?;
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let mut problems = Vec::new();
        if opts.field_validation != FieldValidation::Ignore
            && codec::media_type(content_type).ends_with("json")
        {
            problems.extend(
                codec::duplicate_fields(body)
                    .into_iter()
                    .map(|f| format!("duplicate field \"{f}\"")),
            );
        }
        if let Some(desc) = keelson_schema::message_for(group, version, kind) {
            let prune = opts.field_validation != FieldValidation::Strict;
            let unknown = keelson_schema::find_unknown_fields(&desc, &mut obj, prune);
            problems.extend(
                unknown
                    .into_iter()
                    .map(|f| format!("unknown field \"{f}\"")),
            );
        }
        let warnings = judge_fields(opts.field_validation, kind, version, problems)?;
        Ok((obj, warnings))
    }
}

/// Applies the fieldValidation mode to what decoding found (unknown or duplicate fields):
/// Strict refuses the request, Warn returns the warnings to send, Ignore drops them.
pub fn judge_fields(
    mode: FieldValidation,
    kind: &str,
    version: &str,
    problems: Vec<String>,
) -> Result<Vec<String>, Status> {
    match mode {
        _ if problems.is_empty() => Ok(Vec::new()),
        FieldValidation::Strict => Err(Status::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
            problems.join(", ")
        ))),
        FieldValidation::Warn => Ok(problems),
        FieldValidation::Ignore => Ok(Vec::new()),
    }
}

/// Fills in or checks `apiVersion` and `kind` of a body against what the path serves.
fn check_type(obj: &mut Value, kind: &str, api_version: &str) -> Result<(), Status> {
    let body_kind = obj
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let body_version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !body_kind.is_empty() && body_kind != kind {
        return Err(Status::bad_request(format!(
            "the object provided is unrecognized: the body of the request was a {body_kind} ({body_version}), but this endpoint serves {kind} ({api_version})"
        )));
    }
    if !body_version.is_empty() && body_version != api_version {
        return Err(Status::bad_request(format!(
            "the API version in the data ({body_version}) does not match the expected API version ({api_version})"
        )));
    }
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), json!(api_version));
        map.insert("kind".into(), json!(kind));
    }
    Ok(())
}

/// How much of an oversized body is read (and dropped) before answering 413, so that the
/// client sees the answer rather than a reset stream.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

pub async fn read_body(mut body: Incoming) -> Result<Bytes, Status> {
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| Status::bad_request(format!("unable to read the request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len();
        if seen <= MAX_BODY {
            buf.extend_from_slice(&data);
        } else if seen > DRAIN_LIMIT {
            break;
        }
    }
    if seen > MAX_BODY {
        return Err(Status::too_large(
            "the server has received a request that is too large",
        ));
    }
    Ok(buf.freeze())
}

/// Sets the object's apiVersion/kind to what the request's version serves.
pub fn present(def: &ResourceDef, obj: Value) -> Value {
    let mut obj = crate::convert::to_version(def, obj);
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), json!(def.api_version()));
        map.insert("kind".into(), json!(def.kind));
    }
    obj
}

pub async fn handle(ctx: Ctx, method: Method, body: Incoming) -> Response {
    let sub = ctx.req.subresource.clone();
    let named = ctx.req.name.is_some();
    let verbs = ctx.def.verbs;
    let result = match (&method, named, sub.as_deref()) {
        (&Method::GET, false, None) => {
            let watching = ctx.req.watch_path || ctx.query.flag("watch").unwrap_or(false);
            if watching {
                return watch::watch(ctx).await;
            }
            list::list(ctx).await
        }
        (&Method::GET, true, None) if ctx.req.watch_path => return watch::watch(ctx).await,
        (&Method::GET, true, None) => get(ctx).await,
        (&Method::POST, false, None) if verbs.contains(&"create") => match read_body(body).await {
            Ok(bytes) => create(ctx, bytes).await,
            Err(s) => Err(s),
        },
        (&Method::PUT, true, None | Some("status" | "finalize")) => match read_body(body).await {
            Ok(bytes) => update(ctx, bytes).await,
            Err(s) => Err(s),
        },
        (&Method::PATCH, true, None | Some("status")) => match read_body(body).await {
            Ok(bytes) => patch::patch(ctx, bytes).await,
            Err(s) => Err(s),
        },
        (&Method::DELETE, true, None) => match read_body(body).await {
            Ok(bytes) => delete(ctx, bytes).await,
            Err(s) => Err(s),
        },
        (&Method::DELETE, false, None) => match read_body(body).await {
            Ok(bytes) => list::delete_collection(ctx, bytes).await,
            Err(s) => Err(s),
        },
        (_, true, Some(_)) => return subresource::handle(ctx, method, body).await,
        _ => Err(Status::method_not_allowed(
            "the server does not allow this method on the requested resource",
        )),
    };
    match result {
        Ok(resp) => resp,
        Err(status) => respond::status(&status),
    }
}

pub fn object_response(
    code: StatusCode,
    def: &ResourceDef,
    obj: Value,
    warnings: &[String],
) -> Response {
    let mut resp = respond::json(code, &present(def, obj));
    respond::add_warnings(&mut resp, warnings);
    resp
}

async fn get(ctx: Ctx) -> Result<Response, Status> {
    let obj = ctx.api.get(ctx.def, ctx.namespace(), ctx.name()).await?;
    if crate::table::wants_table(ctx.header("accept")) {
        let list_meta = json!({"resourceVersion": object::resource_version(&obj)});
        let table =
            crate::table::render(ctx.def, &[std::sync::Arc::new(obj)], &ctx.query, list_meta)?;
        return Ok(respond::json(StatusCode::OK, &table));
    }
    if crate::table::wants_partial_metadata(ctx.header("accept")) {
        return Ok(respond::json(
            StatusCode::OK,
            &crate::table::partial_metadata(&obj),
        ));
    }
    Ok(object_response(StatusCode::OK, ctx.def, obj, &[]))
}

async fn create(ctx: Ctx, body: Bytes) -> Result<Response, Status> {
    let opts = ctx.write_options()?;
    let (obj, warnings) = ctx.decode_object(&body, &opts, ctx.def.kind, &ctx.def.api_version())?;
    let obj = crate::convert::to_storage(ctx.def, obj);
    let created = ctx.api.create(ctx.def, ctx.namespace(), obj, &opts).await?;
    Ok(object_response(
        StatusCode::CREATED,
        ctx.def,
        created,
        &warnings,
    ))
}

async fn update(ctx: Ctx, body: Bytes) -> Result<Response, Status> {
    let opts = ctx.write_options()?;
    let (obj, warnings) = ctx.decode_object(&body, &opts, ctx.def.kind, &ctx.def.api_version())?;
    let obj = crate::convert::to_storage(ctx.def, obj);
    let sub = ctx.req.subresource.clone();
    let updated = ctx
        .api
        .update(
            ctx.def,
            ctx.namespace(),
            ctx.name(),
            sub.as_deref(),
            &opts,
            |_current| Ok(obj.clone()),
        )
        .await?;
    Ok(object_response(StatusCode::OK, ctx.def, updated, &warnings))
}

/// DeleteOptions from the body (JSON or protobuf) if there is one, else from the query.
pub fn delete_options(ctx: &Ctx, body: &[u8]) -> Result<DeleteOptions, Status> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return delete_options_from(ctx, None);
    }
    let v = codec::decode_object(ctx.header("content-type"), body, "DeleteOptions")?;
    delete_options_from(ctx, Some(&v))
}

pub fn delete_options_from(ctx: &Ctx, body: Option<&Value>) -> Result<DeleteOptions, Status> {
    let mut opts = DeleteOptions {
        dry_run: ctx.query.get("dryRun") == Some("All"),
        grace_period_seconds: ctx
            .query
            .int("gracePeriodSeconds")
            .map_err(Status::bad_request)?,
        propagation_policy: ctx.query.non_empty("propagationPolicy").map(String::from),
        ..Default::default()
    };
    if ctx.query.get("orphanDependents") == Some("true") && opts.propagation_policy.is_none() {
        opts.propagation_policy = Some("Orphan".into());
    }
    let Some(v) = body else { return Ok(opts) };
    if let Some(kind) = v.get("kind").and_then(Value::as_str) {
        if kind != "DeleteOptions" {
            return Err(Status::bad_request(format!(
                "the body of a delete must be DeleteOptions, not {kind}"
            )));
        }
    }
    if let Some(dry) = v.get("dryRun").and_then(Value::as_array) {
        opts.dry_run = dry.iter().any(|d| d == "All");
    }
    if let Some(g) = v.get("gracePeriodSeconds").and_then(Value::as_i64) {
        opts.grace_period_seconds = Some(g);
    }
    if let Some(p) = v.get("propagationPolicy").and_then(Value::as_str) {
        opts.propagation_policy = Some(p.to_string());
    } else if v.get("orphanDependents").and_then(Value::as_bool) == Some(true) {
        opts.propagation_policy = Some("Orphan".into());
    }
    opts.precondition_uid = v
        .pointer("/preconditions/uid")
        .and_then(Value::as_str)
        .map(String::from);
    opts.precondition_resource_version = v
        .pointer("/preconditions/resourceVersion")
        .and_then(Value::as_str)
        .map(String::from);
    Ok(opts)
}

async fn delete(ctx: Ctx, body: Bytes) -> Result<Response, Status> {
    let opts = delete_options(&ctx, &body)?;
    match ctx
        .api
        .delete(ctx.def, ctx.namespace(), ctx.name(), &opts)
        .await?
    {
        Deleted::Gone(obj) => {
            let mut status = Status::new(200, "", "");
            status.name = ctx.name().to_string();
            status.group = ctx.def.group.to_string();
            status.kind = ctx.def.resource.to_string();
            status.uid = object::uid(&obj).to_string();
            Ok(respond::json(StatusCode::OK, &status.to_json()))
        }
        Deleted::Pending(obj) => Ok(object_response(StatusCode::OK, ctx.def, obj, &[])),
    }
}
