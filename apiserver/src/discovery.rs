//! Discovery: the legacy `/api`, `/apis`, `/api(s)/G/V` documents and aggregated discovery
//! (apidiscovery.k8s.io/v2), both generated from the registry table.

use http::{HeaderMap, HeaderValue, StatusCode};
use keelson_apimachinery::Status;
use serde_json::{json, Value};
use sha2::Digest;

use crate::registry::{Registry, ResourceDef};
use crate::respond::{self, Response};

const AGGREGATED_V2: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
const AGGREGATED_V2BETA1: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

/// Which aggregated version the Accept header asks for first, if any.
fn aggregated_version(accept: &str) -> Option<&'static str> {
    for part in accept.split(',') {
        let params: Vec<&str> = part.split(';').map(str::trim).collect();
        if params.contains(&"as=APIGroupDiscoveryList") && params.contains(&"g=apidiscovery.k8s.io")
        {
            if params.contains(&"v=v2") {
                return Some("v2");
            }
            if params.contains(&"v=v2beta1") {
                return Some("v2beta1");
            }
        }
    }
    None
}

fn legacy_resources(registry: &Registry, group: &str, version: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for r in registry.in_group_version(group, version) {
        let mut entry = json!({
            "name": r.resource,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs,
            "storageVersionHash": r.storage_hash(),
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        out.push(entry);
        for s in &r.subresources {
            let mut sub = json!({
                "name": format!("{}/{}", r.resource, s.name),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": s.kind,
                "verbs": s.verbs,
            });
            if s.group != r.group || s.version != r.version {
                sub["group"] = json!(s.group);
                sub["version"] = json!(s.version);
            }
            out.push(sub);
        }
    }
    out
}

fn aggregated_resource(r: &ResourceDef) -> Value {
    let mut entry = json!({
        "resource": r.resource,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        entry["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        entry["categories"] = json!(r.categories);
    }
    if !r.subresources.is_empty() {
        entry["subresources"] = r
            .subresources
            .iter()
            .map(|s| json!({"subresource": s.name, "responseKind": {"group": s.group, "version": s.version, "kind": s.kind}, "verbs": s.verbs}))
            .collect();
    }
    entry
}

fn aggregated(registry: &Registry, legacy: bool, version: &str) -> Value {
    let items: Vec<Value> = registry
        .groups()
        .into_iter()
        .filter(|(g, _)| g.is_empty() == legacy)
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = registry
                        .in_group_version(group, v)
                        .map(aggregated_resource)
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let metadata = if group.is_empty() {
                json!({"creationTimestamp": null})
            } else {
                json!({"name": group, "creationTimestamp": null})
            };
            json!({"metadata": metadata, "versions": versions})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": format!("apidiscovery.k8s.io/{version}"), "metadata": {}, "items": items})
}

fn group_json(group: &str, versions: &[&str]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": vs,
        "preferredVersion": {"groupVersion": format!("{group}/{}", versions[0]), "version": versions[0]},
    })
}

/// A discovery document with an ETag, answering `If-None-Match` with 304.
fn cached(body: Value, content_type: &str, headers: &HeaderMap) -> Response {
    let bytes = match serde_json::to_vec(&body) {
        Ok(b) => b,
        Err(e) => return respond::status(&Status::internal(e)),
    };
    let etag = format!("\"{}\"", hex::encode(sha2::Sha512::digest(&bytes)));
    let mut resp = if headers
        .get(http::header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        respond::bytes_response(StatusCode::NOT_MODIFIED, content_type, Vec::new())
    } else {
        respond::bytes_response(StatusCode::OK, content_type, bytes)
    };
    if let Ok(v) = HeaderValue::from_str(&etag) {
        resp.headers_mut().insert(http::header::ETAG, v);
    }
    resp.headers_mut()
        .insert(http::header::VARY, HeaderValue::from_static("Accept"));
    resp
}

pub fn handle(
    registry: &Registry,
    group: Option<&str>,
    version: Option<&str>,
    legacy: bool,
    headers: &HeaderMap,
    server_address: &str,
) -> Response {
    let accept = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match (legacy, group, version) {
        (_, None, None) => {
            if let Some(v) = aggregated_version(accept) {
                let ct = if v == "v2" {
                    AGGREGATED_V2
                } else {
                    AGGREGATED_V2BETA1
                };
                return cached(aggregated(registry, legacy, v), ct, headers);
            }
            if legacy {
                cached(
                    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}),
                    respond::JSON,
                    headers,
                )
            } else {
                let groups: Vec<Value> = registry
                    .groups()
                    .into_iter()
                    .filter(|(g, _)| !g.is_empty())
                    .map(|(g, vs)| group_json(g, &vs))
                    .collect();
                cached(
                    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
                    respond::JSON,
                    headers,
                )
            }
        }
        (false, Some(group), None) => {
            match registry.groups().into_iter().find(|(g, _)| *g == group) {
                Some((g, vs)) => {
                    let mut body = group_json(g, &vs);
                    body["kind"] = json!("APIGroup");
                    body["apiVersion"] = json!("v1");
                    cached(body, respond::JSON, headers)
                }
                None => respond::status(&Status::no_such_path()),
            }
        }
        (_, group, Some(version)) => {
            let group = group.unwrap_or("");
            let resources = legacy_resources(registry, group, version);
            if resources.is_empty() || (legacy && !group.is_empty()) {
                return respond::status(&Status::no_such_path());
            }
            let gv = if group.is_empty() {
                version.to_string()
            } else {
                format!("{group}/{version}")
            };
            cached(
                json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
                respond::JSON,
                headers,
            )
        }
        _ => respond::status(&Status::no_such_path()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::registry;

    #[test]
    fn aggregated_accept_is_recognised() {
        assert_eq!(aggregated_version("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"), Some("v2"));
        assert_eq!(
            aggregated_version(
                "application/json;as=APIGroupDiscoveryList;v=v2beta1;g=apidiscovery.k8s.io"
            ),
            Some("v2beta1")
        );
        assert_eq!(aggregated_version("application/json"), None);
    }

    #[test]
    fn legacy_lists_subresources_with_their_kinds() {
        let res = legacy_resources(registry(), "", "v1");
        let eviction = res
            .iter()
            .find(|r| r["name"] == "pods/eviction")
            .cloned()
            .unwrap_or_default();
        assert_eq!(eviction["group"], "policy");
        assert_eq!(eviction["kind"], "Eviction");
        let scale = legacy_resources(registry(), "apps", "v1")
            .into_iter()
            .find(|r| r["name"] == "deployments/scale")
            .unwrap_or_default();
        assert_eq!(
            (scale["group"].as_str(), scale["kind"].as_str()),
            (Some("autoscaling"), Some("Scale"))
        );
    }

    #[test]
    fn every_aggregated_resource_has_a_response_kind() {
        let doc = aggregated(registry(), false, "v2");
        for group in doc["items"].as_array().into_iter().flatten() {
            for v in group["versions"].as_array().into_iter().flatten() {
                for r in v["resources"].as_array().into_iter().flatten() {
                    assert!(r["responseKind"]["kind"].is_string(), "{r}");
                }
            }
        }
    }
}
