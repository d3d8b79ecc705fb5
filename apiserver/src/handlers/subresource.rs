//! Subresources other than the plain status PUT/PATCH: reading status, scale (as
//! autoscaling/v1 Scale), pods/binding, pods/eviction.

use bytes::Bytes;
use http::{Method, StatusCode};
use hyper::body::Incoming;
use keelson_apimachinery::{labels::Selector, Status};
use serde_json::{json, Value};

use super::{object_response, read_body, Ctx};
use crate::object;
use crate::respond::{self, Response};
use crate::rest::WriteOptions;

pub async fn handle(ctx: Ctx, method: Method, body: Incoming) -> Response {
    let sub = ctx.req.subresource.clone().unwrap_or_default();
    if ctx.def.subresource(&sub).is_none() {
        return respond::status(&Status::no_such_path());
    }
    let result = match (method, sub.as_str()) {
        (Method::GET, "status") => ctx
            .api
            .get(ctx.def, ctx.namespace(), ctx.name())
            .await
            .map(|o| object_response(StatusCode::OK, ctx.def, o, &[])),
        (Method::GET, "scale") => get_scale(&ctx).await,
        (Method::PUT | Method::PATCH, "scale") => match read_body(body).await {
            Ok(bytes) => write_scale(&ctx, bytes).await,
            Err(s) => Err(s),
        },
        (Method::POST, "binding") => match read_body(body).await {
            Ok(bytes) => bind(&ctx, bytes).await,
            Err(s) => Err(s),
        },
        (Method::POST, "eviction") => match read_body(body).await {
            Ok(bytes) => evict(&ctx, bytes).await,
            Err(s) => Err(s),
        },
        (_, "log" | "exec" | "attach" | "portforward" | "proxy") => {
            Err(Status::service_unavailable(format!(
                "{} of {} \"{}\" is served by the node's kubelet, and no kubelet serves it",
                sub,
                ctx.def.resource,
                ctx.name()
            )))
        }
        _ => Err(Status::method_not_allowed(
            "the server does not allow this method on the requested resource",
        )),
    };
    result.unwrap_or_else(|s| respond::status(&s))
}

/// The autoscaling/v1 Scale view of a scalable object.
fn scale_of(obj: &Value) -> Value {
    let selector = obj
        .pointer("/spec/selector")
        .map(|s| {
            // ReplicationControllers have a plain map selector; the others a LabelSelector.
            if s.get("matchLabels").is_some() || s.get("matchExpressions").is_some() {
                Selector::from_label_selector_json(s)
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            } else {
                Selector::from_label_selector_json(&json!({"matchLabels": s}))
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            }
        })
        .unwrap_or_default();
    let meta = object::meta(obj).cloned().unwrap_or_default();
    let mut scale_meta = serde_json::Map::new();
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(k) {
            scale_meta.insert(k.into(), v.clone());
        }
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_meta,
        "spec": {"replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0)},
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector,
        }
    })
}

async fn get_scale(ctx: &Ctx) -> Result<Response, Status> {
    let obj = ctx.api.get(ctx.def, ctx.namespace(), ctx.name()).await?;
    Ok(respond::json(StatusCode::OK, &scale_of(&obj)))
}

async fn write_scale(ctx: &Ctx, body: Bytes) -> Result<Response, Status> {
    let opts = ctx.write_options()?;
    let is_patch = !ctx.header("content-type").is_empty()
        && crate::codec::media_type(ctx.header("content-type")).contains("patch");
    let patch_kind = if is_patch {
        Some(super::patch::patch_type(ctx.header("content-type"))?)
    } else {
        None
    };
    let body_value = match patch_kind {
        Some(_) => Value::Null,
        None => crate::codec::decode_object(ctx.header("content-type"), &body, "Scale")?,
    };
    let scale_schema = keelson_schema::message_for("autoscaling", "v1", "Scale");
    let updated = ctx
        .api
        .update(
            ctx.def,
            ctx.namespace(),
            ctx.name(),
            Some("scale"),
            &opts,
            |current| {
                let current_scale = scale_of(current);
                let wanted = match patch_kind {
                    Some(kind) => {
                        super::patch::apply(kind, &current_scale, &body, scale_schema.as_ref())?
                    }
                    None => body_value.clone(),
                };
                let replicas = wanted
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                if replicas < 0 {
                    return Err(Status::invalid(
                        "Scale",
                        "autoscaling",
                        ctx.name(),
                        vec![keelson_apimachinery::Cause::new(
                            "FieldValueInvalid",
                            format!(
                                "Invalid value: {replicas}: must be greater than or equal to 0"
                            ),
                            "spec.replicas",
                        )],
                    ));
                }
                let mut next = current.clone();
                crate::object::ensure_object(&mut next, &["spec"])
                    .insert("replicas".into(), json!(replicas));
                let pinned = object::resource_version(&wanted);
                if !pinned.is_empty() {
                    crate::object::meta_mut(&mut next)
                        .insert("resourceVersion".into(), json!(pinned));
                }
                Ok(next)
            },
        )
        .await?;
    Ok(respond::json(StatusCode::OK, &scale_of(&updated)))
}

async fn bind(ctx: &Ctx, body: Bytes) -> Result<Response, Status> {
    let binding = crate::codec::decode_object(ctx.header("content-type"), &body, "Binding")?;
    let body_name = object::name(&binding);
    if !body_name.is_empty() && body_name != ctx.name() {
        return Err(Status::bad_request(format!(
            "name in URL does not match name in Binding object: {} vs {}",
            ctx.name(),
            body_name
        )));
    }
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if node.is_empty() {
        return Err(Status::invalid(
            "Binding",
            "",
            ctx.name(),
            vec![keelson_apimachinery::Cause::new(
                "FieldValueRequired",
                "Required value",
                "target.name",
            )],
        ));
    }
    let opts = WriteOptions {
        field_manager: "kube-scheduler".into(),
        ..Default::default()
    };
    let name = ctx.name().to_string();
    ctx.api
        .update(ctx.def, ctx.namespace(), ctx.name(), Some("binding"), &opts, |current| {
            if object::is_deleting(current) {
                return Err(Status::conflict("pods", "", &name, "pod is being deleted, cannot be assigned to a host"));
            }
            if let Some(existing) = current.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty()) {
                return Err(Status::conflict("pods", "", &name, &format!("pod {name} is already assigned to node \"{existing}\"")));
            }
            let mut next = current.clone();
            crate::object::ensure_object(&mut next, &["spec"]).insert("nodeName".into(), json!(node));
            let status = crate::object::ensure_object(&mut next, &["status"]);
            let conditions = status.entry("conditions").or_insert_with(|| json!([]));
            if let Some(list) = conditions.as_array_mut() {
                list.retain(|c| c.get("type").and_then(Value::as_str) != Some("PodScheduled"));
                list.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": object::now_rfc3339()}));
            }
            Ok(next)
        })
        .await?;
    let mut ok = Status::new(201, "", "");
    ok.code = 201;
    Ok(respond::json(StatusCode::CREATED, &ok.to_json()))
}

async fn evict(ctx: &Ctx, body: Bytes) -> Result<Response, Status> {
    let eviction = crate::codec::decode_object(ctx.header("content-type"), &body, "Eviction")?;
    let opts = super::delete_options_from(ctx, eviction.get("deleteOptions"))?;
    ctx.api
        .delete(ctx.def, ctx.namespace(), ctx.name(), &opts)
        .await?;
    let ok = Status::new(201, "", "");
    Ok(respond::json(StatusCode::CREATED, &ok.to_json()))
}
