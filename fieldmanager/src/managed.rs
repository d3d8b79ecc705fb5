//! `metadata.managedFields` ⇄ managers and their field sets (apimachinery's
//! `managedfields.go`, `fields.go`).
//!
//! A manager is identified as upstream does, by the JSON of its entry without fields and
//! time, and without apiVersion for appliers: `{"manager":"kubectl","operation":"Apply"}`,
//! `{"manager":"kube-controller-manager","operation":"Update","apiVersion":"apps/v1","subresource":"scale"}`.

use crate::path::go_json_string;
use crate::set::FieldSet;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub(crate) const APPLY: &str = "Apply";
pub(crate) const UPDATE: &str = "Update";

/// A manager's fields at an API version, and whether they came from an apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct VersionedSet {
    pub set: FieldSet,
    pub api_version: String,
    pub applied: bool,
}

/// The decoded `managedFields` of an object: field sets and times by manager identifier.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManagedFields {
    pub(crate) fields: BTreeMap<String, VersionedSet>,
    pub(crate) times: BTreeMap<String, String>,
}

/// One `managedFields` entry, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedFieldsEntry {
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    pub api_version: String,
    /// RFC 3339, seconds precision, UTC.
    pub time: Option<String>,
    pub subresource: String,
    pub fields: FieldSet,
}

/// Upstream's manager identifier (`BuildManagerIdentifier`).
pub(crate) fn manager_identifier(
    manager: &str,
    operation: &str,
    api_version: &str,
    subresource: &str,
) -> String {
    let mut out = String::from("{");
    let mut first = true;
    let mut field = |name: &str, value: &str| {
        if value.is_empty() {
            return;
        }
        if !first {
            out.push(',');
        }
        first = false;
        go_json_string(name, &mut out);
        out.push(':');
        go_json_string(value, &mut out);
    };
    field("manager", manager);
    field("operation", operation);
    if operation != APPLY {
        field("apiVersion", api_version);
    }
    field("subresource", subresource);
    out.push('}');
    out
}

/// The parts of an identifier: (manager, operation, apiVersion, subresource).
pub(crate) fn parse_identifier(id: &str) -> Option<(String, String, String, String)> {
    let v: Value = serde_json::from_str(id).ok()?;
    let m = v.as_object()?;
    let s = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    Some((
        s("manager"),
        s("operation"),
        s("apiVersion"),
        s("subresource"),
    ))
}

/// Formats a time as upstream's `metav1.Time` JSON (RFC 3339, seconds, UTC).
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn unix_seconds(t: Option<&String>) -> i64 {
    t.and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

impl ManagedFields {
    pub fn new() -> ManagedFields {
        ManagedFields::default()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Decodes a `metadata.managedFields` array with upstream's checks
    /// (`DecodeManagedFields`). Entries that share an identifier: the last one wins.
    pub fn decode(v: &Value) -> Result<ManagedFields, String> {
        let mut out = ManagedFields::new();
        let items = match v {
            Value::Null => return Ok(out),
            Value::Array(items) => items,
            _ => return Err("managedFields must be a list".into()),
        };
        for (i, item) in items.iter().enumerate() {
            let m = item
                .as_object()
                .ok_or_else(|| format!("managed fields entry {i} is not an object"))?;
            let s = |k: &str| -> Result<String, String> {
                match m.get(k) {
                    None | Some(Value::Null) => Ok(String::new()),
                    Some(Value::String(s)) => Ok(s.clone()),
                    Some(other) => Err(format!(
                        "json: cannot unmarshal {other} into Go struct field ManagedFieldsEntry.{k} of type string"
                    )),
                }
            };
            let operation = s("operation")?;
            if operation != APPLY && operation != UPDATE {
                return Err("operation must be `Apply` or `Update`".into());
            }
            let api_version = s("apiVersion")?;
            if api_version.is_empty() {
                return Err("apiVersion must not be empty".into());
            }
            match s("fieldsType")?.as_str() {
                "FieldsV1" => {}
                "" => return Err(format!("missing fieldsType in managed fields entry {i}")),
                other => {
                    return Err(format!(
                        "invalid fieldsType {other:?} in managed fields entry {i}"
                    ))
                }
            }
            let manager = s("manager")?;
            let subresource = s("subresource")?;
            let id = manager_identifier(&manager, &operation, &api_version, &subresource);
            let set = match m.get("fieldsV1") {
                None | Some(Value::Null) => FieldSet::new(),
                Some(f) => FieldSet::from_fields_v1(f).map_err(|e| {
                    format!("error decoding versioned set from entry {i}: error decoding set: {e}")
                })?,
            };
            let time = match m.get("time") {
                Some(Value::String(t)) => Some(
                    DateTime::parse_from_rfc3339(t)
                        .map(|t| format_time(t.with_timezone(&Utc)))
                        .map_err(|e| format!("invalid time {t:?}: {e}"))?,
                ),
                _ => None,
            };
            out.fields.insert(
                id.clone(),
                VersionedSet {
                    set,
                    api_version,
                    applied: operation == APPLY,
                },
            );
            match time {
                Some(t) => {
                    out.times.insert(id, t);
                }
                None => {
                    out.times.remove(&id);
                }
            }
        }
        Ok(out)
    }

    /// The entries, sorted as upstream sorts them: operation (Apply first), time, manager,
    /// apiVersion, subresource.
    pub fn entries(&self) -> Vec<ManagedFieldsEntry> {
        let mut out: Vec<ManagedFieldsEntry> = self
            .fields
            .iter()
            .map(|(id, vs)| {
                let (manager, _, _, subresource) = parse_identifier(id).unwrap_or_default();
                ManagedFieldsEntry {
                    manager,
                    operation: if vs.applied { APPLY } else { UPDATE }.to_string(),
                    api_version: vs.api_version.clone(),
                    time: self.times.get(id).cloned(),
                    subresource,
                    fields: vs.set.clone(),
                }
            })
            .collect();
        out.sort_by(|p, q| {
            p.operation
                .cmp(&q.operation)
                .then_with(|| unix_seconds(p.time.as_ref()).cmp(&unix_seconds(q.time.as_ref())))
                .then_with(|| p.manager.cmp(&q.manager))
                .then_with(|| p.api_version.cmp(&q.api_version))
                .then_with(|| p.subresource.cmp(&q.subresource))
        });
        out
    }

    /// The `metadata.managedFields` array (empty when nothing is managed: then the field is
    /// omitted).
    pub fn encode(&self) -> Vec<Value> {
        self.entries()
            .into_iter()
            .map(|e| {
                let mut m = Map::new();
                if !e.manager.is_empty() {
                    m.insert("manager".into(), e.manager.into());
                }
                m.insert("operation".into(), e.operation.into());
                m.insert("apiVersion".into(), e.api_version.into());
                if let Some(t) = e.time {
                    m.insert("time".into(), t.into());
                }
                m.insert("fieldsType".into(), "FieldsV1".into());
                m.insert("fieldsV1".into(), e.fields.to_fields_v1());
                if !e.subresource.is_empty() {
                    m.insert("subresource".into(), e.subresource.into());
                }
                Value::Object(m)
            })
            .collect()
    }

    /// The fields of one manager (`operation` "Apply" or "Update"; `api_version` only
    /// matters for updaters).
    pub fn fields_of(
        &self,
        manager: &str,
        operation: &str,
        api_version: &str,
        subresource: &str,
    ) -> Option<&FieldSet> {
        self.fields
            .get(&manager_identifier(
                manager,
                operation,
                api_version,
                subresource,
            ))
            .map(|vs| &vs.set)
    }

    pub(crate) fn remove(&mut self, id: &str) {
        self.fields.remove(id);
        self.times.remove(id);
    }

    pub(crate) fn drop_empty(&mut self) {
        let empty: Vec<String> = self
            .fields
            .iter()
            .filter(|(_, vs)| vs.set.is_empty())
            .map(|(id, _)| id.clone())
            .collect();
        for id in empty {
            self.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identifiers() {
        assert_eq!(
            manager_identifier("kubectl", "Apply", "apps/v1", ""),
            r#"{"manager":"kubectl","operation":"Apply"}"#
        );
        assert_eq!(
            manager_identifier("kube-controller-manager", "Update", "apps/v1", "scale"),
            r#"{"manager":"kube-controller-manager","operation":"Update","apiVersion":"apps/v1","subresource":"scale"}"#
        );
    }

    #[test]
    fn decode_encode_round_trip_and_checks() {
        let mf = json!([
            {"manager": "b", "operation": "Update", "apiVersion": "v1", "time": "2024-01-02T00:00:00Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:x": {}}}},
            {"manager": "a", "operation": "Update", "apiVersion": "v1", "time": "2024-01-01T00:00:00+00:00",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:y": {}}}, "subresource": "status"},
            {"manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": "2024-01-03T00:00:00Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:z": {}}}}
        ]);
        let m = ManagedFields::decode(&mf).unwrap();
        let enc = m.encode();
        assert_eq!(
            enc,
            vec![
                json!({"manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": "2024-01-03T00:00:00Z",
                       "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:z": {}}}}),
                json!({"manager": "a", "operation": "Update", "apiVersion": "v1", "time": "2024-01-01T00:00:00Z",
                       "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:y": {}}}, "subresource": "status"}),
                json!({"manager": "b", "operation": "Update", "apiVersion": "v1", "time": "2024-01-02T00:00:00Z",
                       "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:x": {}}}}),
            ]
        );
        let bad = |e: Value| ManagedFields::decode(&json!([e])).unwrap_err();
        assert_eq!(
            bad(
                json!({"manager": "m", "operation": "Patch", "apiVersion": "v1", "fieldsType": "FieldsV1"})
            ),
            "operation must be `Apply` or `Update`"
        );
        assert_eq!(
            bad(json!({"manager": "m", "operation": "Apply", "fieldsType": "FieldsV1"})),
            "apiVersion must not be empty"
        );
        assert_eq!(
            bad(json!({"manager": "m", "operation": "Apply", "apiVersion": "v1"})),
            "missing fieldsType in managed fields entry 0"
        );
        assert_eq!(
            bad(
                json!({"manager": "m", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV2"})
            ),
            "invalid fieldsType \"FieldsV2\" in managed fields entry 0"
        );
    }
}
