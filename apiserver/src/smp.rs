//! Strategic merge patch (`application/strategic-merge-patch+json`) for built-in kinds, as
//! apimachinery's `strategicpatch` applies it: lists merge by their `patchMergeKey`, the
//! directives `$patch` (replace/delete/merge), `$retainKeys`, `$setElementOrder/<list>` and
//! `$deleteFromPrimitiveList/<list>` are honoured, and everything else is a JSON merge patch.
//! Merge keys and strategies come from the upstream type definitions (keelson-schema).

use keelson_schema::{field_meta, FieldKind, MessageDescriptor};
use serde_json::{Map, Value};

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ORDER: &str = "$setElementOrder/";
const DELETE_PRIMITIVE: &str = "$deleteFromPrimitiveList/";

/// Applies `patch` to `original`; `schema` is the kind's message (None: merge-patch rules).
pub fn apply(
    original: &Value,
    patch: &Value,
    schema: Option<&MessageDescriptor>,
) -> Result<Value, String> {
    let Value::Object(patch) = patch else {
        return Err("a strategic merge patch must be a JSON object".into());
    };
    match merge_map(original.as_object(), patch, schema)? {
        Some(map) => Ok(Value::Object(map)),
        None => Ok(Value::Object(Map::new())),
    }
}

/// How a field's value merges.
struct Field {
    merge_list: bool,
    merge_key: Option<String>,
    item_schema: Option<MessageDescriptor>,
    is_map_of_values: bool,
}

fn describe(schema: Option<&MessageDescriptor>, name: &str) -> Field {
    let meta = schema.and_then(|s| field_meta(s, name));
    match meta {
        Some(m) => {
            let strategy = m.patch_strategy.unwrap_or_default();
            Field {
                merge_list: strategy.split(',').any(|s| s == "merge"),
                merge_key: m.patch_merge_key,
                is_map_of_values: matches!(m.kind, FieldKind::Map(_)),
                item_schema: m.value_message,
            }
        }
        None => Field {
            merge_list: false,
            merge_key: None,
            item_schema: None,
            is_map_of_values: false,
        },
    }
}

/// Merges a patch map into an original map. `None` means the map was deleted (`$patch: delete`).
fn merge_map(
    original: Option<&Map<String, Value>>,
    patch: &Map<String, Value>,
    schema: Option<&MessageDescriptor>,
) -> Result<Option<Map<String, Value>>, String> {
    match patch.get(PATCH).map(|v| v.as_str().unwrap_or("")) {
        Some("delete") => return Ok(None),
        Some("replace") => {
            let mut replaced = Map::new();
            for (k, v) in patch {
                if !k.starts_with('$') {
                    replaced.insert(k.clone(), strip_directives(v));
                }
            }
            return Ok(Some(replaced));
        }
        Some("merge") | None => {}
        Some(other) => return Err(format!("Unknown patch type: {other}")),
    }
    let mut result = original.cloned().unwrap_or_default();
    if let Some(retain) = patch.get(RETAIN_KEYS) {
        let keep: Vec<&str> = retain
            .as_array()
            .ok_or("$retainKeys must be a list")?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        result.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (key, value) in patch {
        if key == PATCH || key == RETAIN_KEYS || key.starts_with(SET_ORDER) {
            continue;
        }
        if let Some(list) = key.strip_prefix(DELETE_PRIMITIVE) {
            let remove = value
                .as_array()
                .ok_or_else(|| format!("{key} must be a list"))?;
            if let Some(Value::Array(items)) = result.get_mut(list) {
                items.retain(|i| !remove.contains(i));
            }
            continue;
        }
        if value.is_null() {
            result.remove(key);
            continue;
        }
        let field = describe(schema, key);
        let merged = match (result.get(key), value) {
            (Some(Value::Array(orig)), Value::Array(items)) if field.merge_list => {
                merge_list(orig, items, &field)?
            }
            (None, Value::Array(items)) if field.merge_list => merge_list(&[], items, &field)?,
            (orig, Value::Object(sub)) => {
                // Maps of values (labels, data, resources.limits) merge key by key with
                // merge-patch rules; objects of a known type merge by their own fields.
                let sub_schema = if field.is_map_of_values {
                    None
                } else {
                    field.item_schema.as_ref()
                };
                match merge_map(orig.and_then(Value::as_object), sub, sub_schema)? {
                    Some(map) => Some(Value::Object(map)),
                    None => {
                        result.remove(key);
                        None
                    }
                }
            }
            (_, other) => Some(strip_directives(other)),
        };
        if let Some(v) = merged {
            result.insert(key.clone(), v);
        }
    }
    for (key, order) in patch.iter().filter(|(k, _)| k.starts_with(SET_ORDER)) {
        let list = &key[SET_ORDER.len()..];
        let field = describe(schema, list);
        if let (Some(Value::Array(items)), Some(order)) = (result.get_mut(list), order.as_array()) {
            reorder(items, order, field.merge_key.as_deref());
        }
    }
    Ok(Some(result))
}

/// Merges a list whose strategy is `merge`: by merge key for lists of objects, as a set
/// union for lists of primitives.
fn merge_list(original: &[Value], patch: &[Value], field: &Field) -> Result<Option<Value>, String> {
    // `[{"$patch": "replace"}, ...]`: the rest of the patch list replaces the list.
    if patch
        .iter()
        .any(|i| i.get(PATCH).and_then(Value::as_str) == Some("replace"))
    {
        let rest: Vec<Value> = patch
            .iter()
            .filter(|i| i.get(PATCH).is_none())
            .map(strip_directives)
            .collect();
        return Ok(Some(Value::Array(rest)));
    }
    let mut result: Vec<Value> = original.to_vec();
    match field.merge_key.as_deref() {
        Some(key) => {
            for item in patch {
                let Value::Object(item_map) = item else {
                    return Err(format!("a list merged by {key:?} must hold objects"));
                };
                let id = item_map.get(key);
                let pos = id.and_then(|id| result.iter().position(|o| o.get(key) == Some(id)));
                match item_map.get(PATCH).and_then(Value::as_str) {
                    Some("delete") => {
                        if let Some(p) = pos {
                            result.remove(p);
                        }
                        continue;
                    }
                    Some("replace") => {
                        let replaced = strip_directives(item);
                        match pos {
                            Some(p) => result[p] = replaced,
                            None => result.push(replaced),
                        }
                        continue;
                    }
                    _ => {}
                }
                match pos {
                    Some(p) => {
                        let merged =
                            merge_map(result[p].as_object(), item_map, field.item_schema.as_ref())?;
                        match merged {
                            Some(m) => result[p] = Value::Object(m),
                            None => {
                                result.remove(p);
                            }
                        }
                    }
                    None => {
                        if let Some(m) = merge_map(None, item_map, field.item_schema.as_ref())? {
                            result.push(Value::Object(m));
                        }
                    }
                }
            }
        }
        None => {
            for item in patch {
                if !result.contains(item) {
                    result.push(strip_directives(item));
                }
            }
        }
    }
    Ok(Some(Value::Array(result)))
}

/// Orders `items` as `order` lists them; items the order does not name keep their relative
/// order after the named ones.
fn reorder(items: &mut Vec<Value>, order: &[Value], merge_key: Option<&str>) {
    let index_of = |item: &Value| -> Option<usize> {
        order.iter().position(|o| match merge_key {
            Some(k) => o.get(k).is_some() && o.get(k) == item.get(k),
            None => o == item,
        })
    };
    let mut keyed: Vec<(usize, Value)> = Vec::new();
    let mut rest = Vec::new();
    for item in items.drain(..) {
        match index_of(&item) {
            Some(i) => keyed.push((i, item)),
            None => rest.push(item),
        }
    }
    keyed.sort_by_key(|(i, _)| *i);
    items.extend(keyed.into_iter().map(|(_, v)| v));
    items.extend(rest);
}

/// A patch value with every `$` directive removed, for places where it is stored as is.
fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment_schema() -> Option<MessageDescriptor> {
        keelson_schema::message_for("apps", "v1", "Deployment")
    }

    fn live() -> Value {
        json!({
            "metadata": {"name": "web", "labels": {"app": "web", "old": "x"}},
            "spec": {"replicas": 2, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                     "template": {"spec": {"containers": [
                        {"name": "web", "image": "nginx:1.7.9", "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443, "protocol": "TCP"}],
                         "env": [{"name": "A", "value": "1"}]},
                        {"name": "sidecar", "image": "busybox"}]}}}
        })
    }

    #[test]
    fn containers_merge_by_name_and_ports_by_container_port() {
        // What kubectl apply sends for: new image, an added env var, port 443 removed.
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
            "containers": [{"name": "web", "image": "nginx:1.25",
                "$setElementOrder/env": [{"name": "A"}, {"name": "B"}], "env": [{"name": "B", "value": "2"}],
                "$setElementOrder/ports": [{"containerPort": 80}],
                "ports": [{"$patch": "delete", "containerPort": 443}]}]}}}});
        let out = apply(&live(), &patch, deployment_schema().as_ref()).unwrap_or_default();
        let c = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(c[0]["image"], "nginx:1.25");
        assert_eq!(
            c[0]["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
        );
        assert_eq!(
            c[0]["ports"],
            json!([{"containerPort": 80, "protocol": "TCP"}])
        );
        assert_eq!(c[1]["name"], "sidecar");
    }

    #[test]
    fn null_deletes_and_maps_merge() {
        let patch = json!({"metadata": {"labels": {"old": null, "new": "y"}}});
        let out = apply(&live(), &patch, deployment_schema().as_ref()).unwrap_or_default();
        assert_eq!(out["metadata"]["labels"], json!({"app": "web", "new": "y"}));
    }

    #[test]
    fn retain_keys_drops_what_is_not_listed() {
        let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
        let out = apply(&live(), &patch, deployment_schema().as_ref()).unwrap_or_default();
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn replace_directives() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}}}});
        let out = apply(&live(), &patch, deployment_schema().as_ref()).unwrap_or_default();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "only", "image": "x"}])
        );
        let patch = json!({"metadata": {"labels": {"$patch": "replace", "only": "1"}}});
        let out = apply(&live(), &patch, deployment_schema().as_ref()).unwrap_or_default();
        assert_eq!(out["metadata"]["labels"], json!({"only": "1"}));
    }

    #[test]
    fn primitive_lists() {
        let schema = keelson_schema::message_for("", "v1", "Pod");
        let pod = json!({"metadata": {"finalizers": ["a", "b"]}});
        let out = apply(&pod, &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "finalizers": ["c"]}}), schema.as_ref()).unwrap_or_default();
        assert_eq!(out["metadata"]["finalizers"], json!(["b", "c"]));
    }

    #[test]
    fn lists_without_a_strategy_are_replaced() {
        let schema = keelson_schema::message_for("", "v1", "Pod");
        let pod = json!({"spec": {"containers": [{"name": "c", "args": ["a", "b"]}]}});
        let out = apply(
            &pod,
            &json!({"spec": {"containers": [{"name": "c", "args": ["z"]}]}}),
            schema.as_ref(),
        )
        .unwrap_or_default();
        assert_eq!(out["spec"]["containers"][0]["args"], json!(["z"]));
    }
}
