//! OpenAPI v3: the `/openapi/v3` index and one document per group/version, generated from
//! the registry table (paths) and the upstream type definitions (component schemas).
//! kubectl and Helm read the PATCH operations to decide on server-side field validation.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use http::{HeaderMap, HeaderValue, StatusCode};
use keelson_apimachinery::Status;
use serde_json::{json, Map, Value};
use sha2::Digest;

use crate::registry::{Registry, ResourceDef};
use crate::request::Query;
use crate::respond::{self, Response};

struct Document {
    bytes: Vec<u8>,
    hash: String,
}

struct Documents {
    /// Keyed by `api/v1`, `apis/apps/v1`.
    by_path: BTreeMap<String, Document>,
}

fn ref_to(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn query_param(name: &str, description: &str, kind: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": kind, "uniqueItems": true}})
}

fn write_params() -> Vec<Value> {
    vec![
        query_param("dryRun", "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed", "string"),
        query_param("fieldManager", "fieldManager is a name associated with the actor or entity that is making these changes.", "string"),
        query_param("fieldValidation", "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore - Warn (default) - Strict", "string"),
    ]
}

fn operation(
    def: &ResourceDef,
    action: &str,
    op_id: &str,
    schema_name: &str,
    extra_params: Vec<Value>,
    body_types: &[&str],
) -> Value {
    let mut op = json!({
        "description": format!("{action} {}", def.kind),
        "operationId": op_id,
        "tags": [def.group_version().replace('/', "_")],
        "parameters": extra_params,
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": ref_to(schema_name)}}}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": def.group, "kind": def.kind, "version": def.version},
    });
    if !body_types.is_empty() {
        let content: Map<String, Value> = body_types
            .iter()
            .map(|t| (t.to_string(), json!({"schema": ref_to(schema_name)})))
            .collect();
        op["requestBody"] = json!({"content": content, "required": true});
    }
    op
}

fn paths_for(
    def: &ResourceDef,
    schema_name: &str,
    list_schema: &str,
    paths: &mut Map<String, Value>,
) {
    let root = if def.group.is_empty() {
        format!("/api/{}", def.version)
    } else {
        format!("/apis/{}/{}", def.group, def.version)
    };
    let collection = if def.namespaced {
        format!("{root}/namespaces/{{namespace}}/{}", def.resource)
    } else {
        format!("{root}/{}", def.resource)
    };
    let item = format!("{collection}/{{name}}");
    let id = format!("{}{}", def.version, def.kind);
    let patch_types = [
        "application/apply-patch+yaml",
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
    ];
    let mut patch_params = write_params();
    patch_params.push(query_param(
        "force",
        "Force is going to \"force\" Apply requests.",
        "boolean",
    ));
    let mut item_ops = json!({
        "get": operation(def, "get", &format!("read{id}"), schema_name, vec![], &[]),
        "put": operation(def, "put", &format!("replace{id}"), schema_name, write_params(), &["*/*"]),
        "patch": operation(def, "patch", &format!("patch{id}"), schema_name, patch_params, &patch_types),
        "delete": operation(def, "delete", &format!("delete{id}"), schema_name, vec![], &[]),
        "parameters": [
            {"name": "name", "in": "path", "required": true, "description": format!("name of the {}", def.kind), "schema": {"type": "string", "uniqueItems": true}},
        ],
    });
    let mut collection_ops = json!({
        "get": operation(def, "list", &format!("list{id}"), list_schema, vec![], &[]),
        "post": operation(def, "post", &format!("create{id}"), schema_name, write_params(), &["*/*"]),
        "parameters": [],
    });
    if def.namespaced {
        let ns = json!({"name": "namespace", "in": "path", "required": true, "description": "object name and auth scope, such as for teams and projects", "schema": {"type": "string", "uniqueItems": true}});
        if let Some(p) = item_ops["parameters"].as_array_mut() {
            p.push(ns.clone());
        }
        if let Some(p) = collection_ops["parameters"].as_array_mut() {
            p.push(ns);
        }
    }
    paths.insert(collection, collection_ops);
    paths.insert(item, item_ops);
}

fn build(registry: &Registry) -> Documents {
    let mut by_path = BTreeMap::new();
    for (group, versions) in registry.groups() {
        for version in versions {
            let mut roots = Vec::new();
            let mut paths = Map::new();
            for def in registry.in_group_version(group, version) {
                let Some(desc) = keelson_schema::message_for(def.group, def.version, def.kind)
                else {
                    continue;
                };
                let schema_name = keelson_schema::openapi_name(&desc);
                let list = keelson_schema::message_for(def.group, def.version, def.list_kind);
                let list_name = list
                    .as_ref()
                    .map(keelson_schema::openapi_name)
                    .unwrap_or_else(|| schema_name.clone());
                paths_for(def, &schema_name, &list_name, &mut paths);
                roots.push((
                    desc,
                    vec![(
                        def.group.to_string(),
                        def.version.to_string(),
                        def.kind.to_string(),
                    )],
                ));
                if let Some(list) = list {
                    roots.push((
                        list,
                        vec![(
                            def.group.to_string(),
                            def.version.to_string(),
                            def.list_kind.to_string(),
                        )],
                    ));
                }
            }
            let schemas = keelson_schema::openapi_components(&roots);
            let doc = json!({
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes", "version": crate::version::GIT_VERSION},
                "paths": paths,
                "components": {"schemas": schemas},
            });
            let bytes = serde_json::to_vec(&doc).unwrap_or_default();
            let hash = hex::encode_upper(sha2::Sha512::digest(&bytes));
            let key = if group.is_empty() {
                format!("api/{version}")
            } else {
                format!("apis/{group}/{version}")
            };
            by_path.insert(key, Document { bytes, hash });
        }
    }
    Documents { by_path }
}

fn documents(registry: &Registry) -> &'static Documents {
    static DOCS: OnceLock<Documents> = OnceLock::new();
    DOCS.get_or_init(|| build(registry))
}

/// Builds the documents ahead of the first request.
pub fn warm(registry: &Registry) {
    documents(registry);
}

pub fn handle(registry: &Registry, path: &str, query: &Query, headers: &HeaderMap) -> Response {
    let docs = documents(registry);
    let rest = path.trim_start_matches("/openapi/v3").trim_matches('/');
    if rest.is_empty() {
        let paths: Map<String, Value> = docs
            .by_path
            .iter()
            .map(|(k, d)| {
                (
                    k.clone(),
                    json!({"serverRelativeURL": format!("/openapi/v3/{k}?hash={}", d.hash)}),
                )
            })
            .collect();
        return respond::json(StatusCode::OK, &json!({"paths": paths}));
    }
    let Some(doc) = docs.by_path.get(rest) else {
        return respond::status(&Status::no_such_path());
    };
    let etag = format!("\"{}\"", doc.hash);
    match query.non_empty("hash") {
        Some(h) if h != doc.hash => {
            let mut resp =
                respond::bytes_response(StatusCode::MOVED_PERMANENTLY, "text/plain", Vec::new());
            if let Ok(v) = HeaderValue::from_str(&format!("/openapi/v3/{rest}?hash={}", doc.hash)) {
                resp.headers_mut().insert(http::header::LOCATION, v);
            }
            resp
        }
        Some(_) => {
            let mut resp =
                respond::bytes_response(StatusCode::OK, respond::JSON, doc.bytes.clone());
            resp.headers_mut().insert(
                http::header::CACHE_CONTROL,
                HeaderValue::from_static("public, immutable"),
            );
            let expires = (chrono::Utc::now() + chrono::Duration::days(365))
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string();
            if let Ok(v) = HeaderValue::from_str(&expires) {
                resp.headers_mut().insert(http::header::EXPIRES, v);
            }
            if let Ok(v) = HeaderValue::from_str(&etag) {
                resp.headers_mut().insert(http::header::ETAG, v);
            }
            resp
        }
        None => {
            if headers
                .get(http::header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                == Some(etag.as_str())
            {
                return respond::bytes_response(
                    StatusCode::NOT_MODIFIED,
                    respond::JSON,
                    Vec::new(),
                );
            }
            let mut resp =
                respond::bytes_response(StatusCode::OK, respond::JSON, doc.bytes.clone());
            resp.headers_mut().insert(
                http::header::CACHE_CONTROL,
                HeaderValue::from_static("no-cache, private"),
            );
            if let Ok(v) = HeaderValue::from_str(&etag) {
                resp.headers_mut().insert(http::header::ETAG, v);
            }
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::registry;

    #[test]
    fn apps_v1_has_a_patch_operation_with_field_validation_per_kind() {
        let docs = documents(registry());
        let doc: Value =
            serde_json::from_slice(&docs.by_path["apis/apps/v1"].bytes).unwrap_or_default();
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "apps", "kind": "Deployment", "version": "v1"})
        );
        let params: Vec<&str> = patch["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(params.contains(&"fieldValidation"));
        let schema = &doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            schema["x-kubernetes-group-version-kind"][0]["kind"],
            "Deployment"
        );
        let containers =
            &doc["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    }

    #[test]
    fn every_group_version_has_a_document() {
        let docs = documents(registry());
        for (group, versions) in registry().groups() {
            for v in versions {
                let key = if group.is_empty() {
                    format!("api/{v}")
                } else {
                    format!("apis/{group}/{v}")
                };
                assert!(docs.by_path.contains_key(&key), "{key}");
            }
        }
    }
}
