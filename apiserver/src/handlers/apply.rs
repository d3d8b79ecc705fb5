//! Server-side apply: `PATCH` with `application/apply-patch+yaml`. The body is the
//! manager's whole intent; keelson-fieldmanager merges it into the live object by list
//! types, prunes what the manager stopped applying and reports conflicts with other
//! managers. Applying to an object that does not exist creates it (201).

use bytes::Bytes;
use http::StatusCode;
use keelson_apimachinery::{Cause, Status};
use keelson_fieldmanager::{ApplyError, Operation};
use serde_json::json;

use super::{object_response, Ctx};
use crate::codec;
use crate::convert;
use crate::object;
use crate::rest::FieldValidation;

pub const APPLY_YAML: &str = "application/apply-patch+yaml";

fn apply_error(err: ApplyError) -> Status {
    match err {
        ApplyError::Conflicts(conflicts) => {
            let mut status = Status::new(409, "Conflict", conflicts.message());
            status.causes = conflicts
                .causes()
                .into_iter()
                .map(|c| Cause::new(c.reason, c.message, c.field))
                .collect();
            status
        }
        ApplyError::BadRequest(msg) => Status::bad_request(msg),
        ApplyError::Internal(msg) => Status::internal(msg),
    }
}

pub async fn apply(ctx: Ctx, body: Bytes) -> Result<super::Response, Status> {
    let mut opts = ctx.write_options()?;
    opts.apply = true;
    if ctx.query.non_empty("fieldManager").is_none() {
        return Err(Status::invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            vec![Cause::new(
                "FieldValueRequired",
                "Required value: is required for apply patch",
                "fieldManager",
            )],
        ));
    }
    let force = ctx.query.flag("force").map_err(Status::bad_request)?;
    let def = ctx.def;
    let sub = ctx.req.subresource.clone();
    // YAML is a superset of JSON: Helm sends JSON, kubectl YAML.
    let mut applied = codec::decode_yaml(&body, def.kind)?;
    if !applied.is_object() {
        return Err(Status::bad_request("the apply patch must be an object"));
    }
    let (group, version) = (def.group, def.version);
    let mut problems = Vec::new();
    if let Some(desc) = keelson_schema::message_for(group, version, def.kind) {
        let prune = opts.field_validation != FieldValidation::Strict;
        problems.extend(
            keelson_schema::find_unknown_fields(&desc, &mut applied, prune)
                .into_iter()
                .map(|f| format!("unknown field \"{f}\"")),
        );
    }
    let warnings = super::judge_fields(opts.field_validation, def.kind, version, problems)?;
    let body_name = object::name(&applied).to_string();
    if !body_name.is_empty() && body_name != ctx.name() {
        return Err(Status::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({})",
            ctx.name()
        )));
    }
    if let Some(ns) = ctx.namespace() {
        let body_ns = object::namespace(&applied);
        if !body_ns.is_empty() && body_ns != ns {
            return Err(Status::bad_request("the namespace of the provided object does not match the namespace sent on the request"));
        }
    }
    // The fieldmanager works on stored objects: bring the applied intent to that version.
    let applied = convert::to_storage(def, applied);
    let ty = crate::rest::apply_type(def, sub.as_deref()).ok_or_else(|| {
        Status::new(
            415,
            "UnsupportedMediaType",
            "server-side apply is not supported for this kind",
        )
    })?;
    let manager = opts.field_manager.clone();
    let now = chrono::Utc::now();
    let op = Operation::new(&manager, now).with_subresource(sub.as_deref().unwrap_or(""));
    let updated = ctx
        .api
        .update(
            def,
            ctx.namespace(),
            ctx.name(),
            sub.as_deref(),
            &opts,
            |current| {
                let result = keelson_fieldmanager::apply(&ty, Some(current), &applied, &op, force)
                    .map_err(apply_error)?;
                Ok(result.object)
            },
        )
        .await;
    match updated {
        Ok(obj) => Ok(object_response(StatusCode::OK, def, obj, &warnings)),
        Err(status) if status.code == 404 && sub.is_none() => {
            let mut created = keelson_fieldmanager::apply(&ty, None, &applied, &op, force)
                .map_err(apply_error)?
                .object;
            let meta = object::meta_mut(&mut created);
            meta.insert("name".into(), json!(ctx.name()));
            let obj = ctx.api.create(def, ctx.namespace(), created, &opts).await?;
            Ok(object_response(StatusCode::CREATED, def, obj, &warnings))
        }
        Err(status) => Err(status),
    }
}

/// The media types PATCH accepts beyond the patch formats.
pub fn is_apply(content_type: &str) -> bool {
    codec::media_type(content_type) == APPLY_YAML
}
