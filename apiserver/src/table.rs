//! meta/v1 Table and PartialObjectMetadata responses. The columns and cells of each kind
//! come from [`crate::printers`] (upstream's printers); kinds without one get NAME and AGE.

use std::sync::Arc;

use keelson_apimachinery::Status;
use serde_json::{json, Value};

use crate::printers;
use crate::registry::ResourceDef;
use crate::request::Query;

fn accept_has(accept: &str, what: &str) -> bool {
    accept.split(',').any(|part| {
        let params: Vec<&str> = part.split(';').map(str::trim).collect();
        params.contains(&format!("as={what}").as_str()) && params.contains(&"g=meta.k8s.io")
    })
}

pub fn wants_table(accept: &str) -> bool {
    accept_has(accept, "Table")
}

pub fn wants_partial_metadata(accept: &str) -> bool {
    accept_has(accept, "PartialObjectMetadata") || accept_has(accept, "PartialObjectMetadataList")
}

pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// kubectl's `HumanDuration`: 45s, 5m10s, 3h, 2d4h, 400d, 3y.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let d = (hours / 24) % 365;
        return if d == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{d}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// HorizontalPodAutoscalers are printed from the autoscaling/v2 form, as upstream prints
/// them from its internal version; anything else as stored.
fn printable(def: &ResourceDef, obj: &Value) -> Option<Value> {
    if def.group != "autoscaling"
        || def.kind != "HorizontalPodAutoscaler"
        || obj.get("apiVersion").and_then(Value::as_str) != Some("autoscaling/v1")
    {
        return None;
    }
    let v2 = crate::registry::registry().lookup("autoscaling", "v2", "horizontalpodautoscalers")?;
    Some(crate::convert::to_version(v2, obj.clone()))
}

pub fn render(
    def: &ResourceDef,
    objects: &[Arc<Value>],
    query: &Query,
    list_meta: Value,
) -> Result<Value, Status> {
    let include = query.non_empty("includeObject").unwrap_or("Metadata");
    if !["None", "Metadata", "Object"].contains(&include) {
        return Err(Status::bad_request(format!("includeObject: Unsupported value: {include:?}: supported values: \"None\", \"Metadata\", \"Object\"")));
    }
    let printer = printers::printer(def.group, def.kind);
    let now = chrono::Utc::now();
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let converted = printable(def, obj);
            let printed = converted.as_ref().unwrap_or(obj);
            let mut row = json!({"cells": (printer.cells)(printed, now)});
            if let Some(conditions) = (printer.conditions)(printed) {
                row["conditions"] = conditions;
            }
            match include {
                "Object" => row["object"] = super::handlers::present(def, (**obj).clone()),
                "Metadata" => row["object"] = partial_metadata(obj),
                _ => {}
            }
            row
        })
        .collect();
    Ok(json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": printers::column_definitions(printer),
        "rows": rows,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_kubectl() {
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(310), "5m10s");
        assert_eq!(human_duration(3 * 3600), "3h");
        assert_eq!(human_duration(52 * 3600), "2d4h");
    }

    #[test]
    fn accept_negotiation() {
        assert!(wants_table("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"));
        assert!(!wants_table("application/json"));
        assert!(wants_partial_metadata(
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
        ));
    }
}
