//! PATCH: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and strategic merge patch
//! against the live object, then the same update path as PUT; server-side apply is
//! `apply.rs`.

use bytes::Bytes;
use http::StatusCode;
use keelson_apimachinery::{Cause, Status};
use serde_json::Value;

use super::{object_response, Ctx};
use crate::codec;
use crate::rest::FieldValidation;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
}

pub fn patch_type(content_type: &str) -> Result<PatchType, Status> {
    match codec::media_type(content_type).as_str() {
        "application/json-patch+json" => Ok(PatchType::Json),
        "application/merge-patch+json" => Ok(PatchType::Merge),
        "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
        other => Err(Status::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (got {other:?})"),
        )),
    }
}

/// Applies a patch document to `current`.
/// `schema` is the message of the patched kind; strategic merge patches need it.
pub fn apply(
    kind: PatchType,
    current: &Value,
    body: &[u8],
    schema: Option<&keelson_schema::MessageDescriptor>,
) -> Result<Value, Status> {
    let mut target = current.clone();
    match kind {
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| Status::bad_request(format!("error decoding patch: {e}")))?;
            json_patch::patch(&mut target, &ops).map_err(|e| {
                Status::new(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })?;
        }
        PatchType::Merge => {
            let doc: Value = serde_json::from_slice(body)
                .map_err(|e| Status::bad_request(format!("error decoding patch: {e}")))?;
            if !doc.is_object() {
                return Err(Status::bad_request("a merge patch must be a JSON object"));
            }
            json_patch::merge(&mut target, &doc);
        }
        PatchType::Strategic => {
            let doc: Value = serde_json::from_slice(body)
                .map_err(|e| Status::bad_request(format!("error decoding patch: {e}")))?;
            target = crate::smp::apply(current, &doc, schema).map_err(Status::bad_request)?;
        }
    }
    Ok(target)
}

pub async fn patch(ctx: Ctx, body: Bytes) -> Result<super::Response, Status> {
    if super::apply::is_apply(ctx.header("content-type")) {
        return super::apply::apply(ctx, body).await;
    }
    let kind = patch_type(ctx.header("content-type"))?;
    if ctx.query.get("force").is_some() {
        return Err(Status::invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            vec![Cause::new(
                "FieldValueForbidden",
                "Forbidden: may not be specified for non-apply patch",
                "force",
            )],
        ));
    }
    let opts = ctx.write_options()?;
    let sub = ctx.req.subresource.clone();
    let def = ctx.def;
    let mut warnings = Vec::new();
    let updated = ctx
        .api
        .update(
            def,
            ctx.namespace(),
            ctx.name(),
            sub.as_deref(),
            &opts,
            |current| {
                let view = crate::convert::to_version(def, current.clone());
                let schema = keelson_schema::message_for(def.group, def.version, def.kind);
                let mut patched = apply(kind, &view, &body, schema.as_ref())?;
                if !patched.is_object() {
                    return Err(Status::bad_request(
                        "the patched object is not a JSON object",
                    ));
                }
                super::check_type(&mut patched, def.kind, &def.api_version())?;
                if let Some(desc) = keelson_schema::message_for(def.group, def.version, def.kind) {
                    let unknown = keelson_schema::find_unknown_fields(
                        &desc,
                        &mut patched,
                        opts.field_validation != FieldValidation::Strict,
                    );
                    let problems = unknown
                        .into_iter()
                        .map(|f| format!("unknown field \"{f}\""))
                        .collect();
                    warnings = super::judge_fields(
                        opts.field_validation,
                        def.kind,
                        def.version,
                        problems,
                    )?;
                }
                Ok(crate::convert::to_storage(def, patched))
            },
        )
        .await?;
    Ok(object_response(StatusCode::OK, def, updated, &warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_sets_and_removes() {
        let cur = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        let out = apply(
            PatchType::Merge,
            &cur,
            br#"{"metadata":{"labels":{"a":null,"c":"3"}}}"#,
            None,
        )
        .ok();
        assert_eq!(
            out,
            Some(json!({"metadata": {"labels": {"b": "2", "c": "3"}}}))
        );
    }

    #[test]
    fn json_patch_failures_are_invalid() {
        let cur = json!({"spec": {}});
        let err = apply(
            PatchType::Json,
            &cur,
            br#"[{"op":"test","path":"/spec/x","value":1}]"#,
            None,
        )
        .err();
        assert_eq!(err.map(|s| s.code), Some(422));
        let err = apply(PatchType::Json, &cur, b"{", None).err();
        assert_eq!(err.map(|s| s.code), Some(400));
    }
}
