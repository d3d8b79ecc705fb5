//! Kubernetes protobuf request bodies → the JSON kube-apiserver would produce.
//!
//! A body is the 4 bytes `k8s\0` followed by a `runtime.Unknown` whose `raw` holds the
//! object's own message. The message is decoded as a [`DynamicMessage`] of the type named by
//! the envelope's apiVersion/kind and converted by one generic walk over the descriptors:
//! proto field names are the JSON names (with the exceptions listed in [`crate::model`]),
//! repeated fields become arrays, maps objects, `bytes` base64 strings, and the special
//! apimachinery types take their JSON forms (Time, IntOrString, Quantity, RawExtension, ...).
//!
//! Zero values: Go's protobuf encoder writes every non-pointer field, so a zero scalar or an
//! empty message usually means "unset" and is omitted, so that defaulting applies; see
//! `KEEP_ZERO` in [`crate::model`] for when a zero value is kept.

use crate::gvk::{message_for, split_api_version};
use crate::model::{model, FieldModel, MessageModel, Special};
use crate::pool::pool;
use base64::Engine as _;
use prost_reflect::{DynamicMessage, MapKey, MessageDescriptor, ReflectMessage, Value as PValue};
use serde_json::{Map, Number, Value};

/// The 4-byte prefix of Kubernetes protobuf bodies.
pub const PROTOBUF_MAGIC: &[u8; 4] = b"k8s\0";

/// Nested `k8s\0` envelopes (inside RawExtension) are followed at most this deep.
const MAX_NESTED_ENVELOPES: usize = 8;

/// A decoded protobuf body.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    pub api_version: String,
    pub kind: String,
    /// The object as JSON, with `apiVersion` and `kind` first.
    pub object: Value,
}

/// Why a protobuf body could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("not a Kubernetes protobuf body: it does not start with the k8s\\0 prefix")]
    NotEnvelope,
    #[error("malformed protobuf envelope (runtime.Unknown): {0}")]
    Envelope(String),
    #[error("the protobuf envelope has no apiVersion or kind")]
    MissingTypeMeta,
    #[error("unsupported contentEncoding {0:?} in the protobuf envelope")]
    ContentEncoding(String),
    #[error("unsupported contentType {0:?} in the protobuf envelope")]
    ContentType(String),
    #[error("no protobuf type is known for {api_version}, Kind={kind}")]
    UnknownKind { api_version: String, kind: String },
    #[error("malformed protobuf for {api_version}, Kind={kind}: {message}")]
    Malformed {
        api_version: String,
        kind: String,
        message: String,
    },
    #[error("invalid value in {kind} at {path}: {message}")]
    InvalidValue {
        kind: String,
        path: String,
        message: String,
    },
}

/// An error inside the object, with the path filled in while unwinding.
struct ValueError {
    path: Vec<String>,
    message: String,
}

impl ValueError {
    fn new(message: impl Into<String>) -> Self {
        ValueError {
            path: Vec::new(),
            message: message.into(),
        }
    }
    fn at(mut self, seg: impl Into<String>) -> Self {
        self.path.push(seg.into());
        self
    }
    fn path(&self) -> String {
        let mut out = String::new();
        for seg in self.path.iter().rev() {
            if !seg.starts_with('[') && !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
        out
    }
}

/// Decodes a `k8s\0`-prefixed protobuf body into its apiVersion, kind and JSON object.
///
/// Zero values: a present zero scalar or empty message is omitted (Go writes every
/// non-pointer field), except for fields where zero is a real value: Go pointer fields listed
/// in the crate's `KEEP_ZERO` table (`replicas`, `terminationGracePeriodSeconds`,
/// `gracePeriodSeconds`, `optional`, `maxUnavailable`, ...), fields upstream lists as required
/// (Go's JSON always writes them: `ready: false`, `restartCount: 0`), members of union messages
/// (`emptyDir: {}`) and LabelSelectors (`{}` selects everything). List elements and map values
/// are never dropped, and `null` is never written.
pub fn decode_protobuf(body: &[u8]) -> Result<Decoded, DecodeError> {
    decode_nested(body, 0)
}

fn decode_nested(body: &[u8], depth: usize) -> Result<Decoded, DecodeError> {
    let rest = body
        .strip_prefix(PROTOBUF_MAGIC.as_slice())
        .ok_or(DecodeError::NotEnvelope)?;
    let unknown_desc = pool()
        .get_message_by_name("apimachinery.pkg.runtime.Unknown")
        .ok_or_else(|| DecodeError::Envelope("runtime.Unknown is not compiled in".into()))?;
    let env = DynamicMessage::decode(unknown_desc.clone(), rest)
        .map_err(|e| DecodeError::Envelope(e.to_string()))?;
    let type_meta = match env.get_field_by_name("typeMeta").as_deref() {
        Some(PValue::Message(m)) => m.clone(),
        _ => return Err(DecodeError::MissingTypeMeta),
    };
    let api_version = string_field(&type_meta, "apiVersion");
    let kind = string_field(&type_meta, "kind");
    if api_version.is_empty() || kind.is_empty() {
        return Err(DecodeError::MissingTypeMeta);
    }
    let encoding = string_field(&env, "contentEncoding");
    if !encoding.is_empty() {
        return Err(DecodeError::ContentEncoding(encoding));
    }
    let raw = match env.get_field_by_name("raw").as_deref() {
        Some(PValue::Bytes(b)) => b.clone(),
        _ => Default::default(),
    };
    let content_type = string_field(&env, "contentType");
    let mut object = match content_type.as_str() {
        "" | "application/vnd.kubernetes.protobuf" => {
            let (group, version) = split_api_version(&api_version);
            let desc =
                message_for(group, version, &kind).ok_or_else(|| DecodeError::UnknownKind {
                    api_version: api_version.clone(),
                    kind: kind.clone(),
                })?;
            let msg = DynamicMessage::decode(desc.clone(), raw.as_ref()).map_err(|e| {
                DecodeError::Malformed {
                    api_version: api_version.clone(),
                    kind: kind.clone(),
                    message: e.to_string(),
                }
            })?;
            message_json(&msg, depth).map_err(|e| DecodeError::InvalidValue {
                kind: kind.clone(),
                path: e.path(),
                message: e.message,
            })?
        }
        "application/json" => match serde_json::from_slice::<Value>(&raw) {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                return Err(DecodeError::Malformed {
                    api_version,
                    kind,
                    message: "the embedded JSON is not an object".into(),
                })
            }
            Err(e) => {
                return Err(DecodeError::Malformed {
                    api_version,
                    kind,
                    message: e.to_string(),
                })
            }
        },
        other => return Err(DecodeError::ContentType(other.to_string())),
    };
    object.shift_remove("apiVersion");
    object.shift_remove("kind");
    let mut out = Map::with_capacity(object.len() + 2);
    out.insert("apiVersion".into(), Value::String(api_version.clone()));
    out.insert("kind".into(), Value::String(kind.clone()));
    out.extend(object);
    Ok(Decoded {
        api_version,
        kind,
        object: Value::Object(out),
    })
}

/// Converts an already decoded message of the pool to JSON with the same rules as
/// [`decode_protobuf`] (no apiVersion/kind are added).
pub fn message_to_json(msg: &DynamicMessage) -> Result<Value, DecodeError> {
    message_json(msg, 0)
        .map(Value::Object)
        .map_err(|e| DecodeError::InvalidValue {
            kind: msg.descriptor().name().to_string(),
            path: e.path(),
            message: e.message,
        })
}

fn string_field(msg: &DynamicMessage, name: &str) -> String {
    match msg.get_field_by_name(name).as_deref() {
        Some(PValue::String(s)) => s.clone(),
        _ => String::new(),
    }
}

fn model_of(desc: &MessageDescriptor) -> Result<&'static MessageModel, ValueError> {
    model(desc).ok_or_else(|| ValueError::new(format!("no model for {}", desc.full_name())))
}

fn message_json(msg: &DynamicMessage, depth: usize) -> Result<Map<String, Value>, ValueError> {
    let model = model_of(&msg.descriptor())?;
    let mut out = Map::new();
    for fm in &model.fields {
        if !msg.has_field(&fm.desc) {
            continue;
        }
        let value = msg.get_field(&fm.desc);
        if fm.inline {
            if let PValue::Message(inner) = value.as_ref() {
                let inner = message_json(inner, depth).map_err(|e| e.at(fm.json_name.as_str()))?;
                out.extend(inner);
            }
            continue;
        }
        if let Some(v) = field_json(fm, &value, depth).map_err(|e| e.at(fm.json_name.as_str()))? {
            out.insert(fm.json_name.clone(), v);
        }
    }
    Ok(out)
}

/// The JSON of one present field, or `None` to omit it.
fn field_json(fm: &FieldModel, value: &PValue, depth: usize) -> Result<Option<Value>, ValueError> {
    match value {
        PValue::List(items) => {
            if items.is_empty() {
                return Ok(None);
            }
            let mut arr = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let v = element_json(item, depth).map_err(|e| e.at(format!("[{i}]")))?;
                arr.push(v);
            }
            Ok(Some(Value::Array(arr)))
        }
        PValue::Map(entries) => {
            if entries.is_empty() {
                return Ok(None);
            }
            let mut keyed: Vec<(String, &PValue)> =
                entries.iter().map(|(k, v)| (map_key(k), v)).collect();
            // Go's encoding/json writes map keys sorted
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            let mut obj = Map::with_capacity(keyed.len());
            for (k, v) in keyed {
                let j = element_json(v, depth).map_err(|e| e.at(k.clone()))?;
                obj.insert(k, j);
            }
            Ok(Some(Value::Object(obj)))
        }
        PValue::Message(m) => {
            let (v, zero) = message_value(m, depth)?;
            // `null` (zero Time, empty RawExtension) is never written: absent means the same
            Ok((!v.is_null() && (!zero || fm.keep_zero)).then_some(v))
        }
        scalar => {
            let (v, zero) = scalar_json(scalar)?;
            Ok((!zero || fm.keep_zero).then_some(v))
        }
    }
}

/// List elements and map values are never dropped: `[{}]` and `{"a": ""}` mean something.
fn element_json(value: &PValue, depth: usize) -> Result<Value, ValueError> {
    match value {
        PValue::Message(m) => Ok(message_value(m, depth)?.0),
        other => Ok(scalar_json(other)?.0),
    }
}

fn map_key(k: &MapKey) -> String {
    match k {
        MapKey::String(s) => s.clone(),
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
    }
}

/// A scalar's JSON and whether it is the zero value.
fn scalar_json(value: &PValue) -> Result<(Value, bool), ValueError> {
    Ok(match value {
        PValue::Bool(b) => (Value::Bool(*b), !*b),
        PValue::I32(n) => (Value::from(*n), *n == 0),
        PValue::I64(n) => (Value::from(*n), *n == 0),
        PValue::U32(n) => (Value::from(*n), *n == 0),
        PValue::U64(n) => (Value::from(*n), *n == 0),
        PValue::F32(f) => (float(f64::from(*f))?, *f == 0.0),
        PValue::F64(f) => (float(*f)?, *f == 0.0),
        PValue::String(s) => (Value::String(s.clone()), s.is_empty()),
        PValue::Bytes(b) => (
            Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
            b.is_empty(),
        ),
        PValue::EnumNumber(n) => (Value::from(*n), *n == 0),
        PValue::Message(_) | PValue::List(_) | PValue::Map(_) => {
            return Err(ValueError::new("unexpected nested value"))
        }
    })
}

/// Go writes integral floats without a fraction (`0`, `3`, not `0.0`).
fn float(f: f64) -> Result<Value, ValueError> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if f.is_finite() && f.fract() == 0.0 && f.abs() < EXACT {
        return Ok(Value::from(f as i64));
    }
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| ValueError::new(format!("{f} is not representable in JSON")))
}

/// A message's JSON and whether it counts as the zero value.
fn message_value(m: &DynamicMessage, depth: usize) -> Result<(Value, bool), ValueError> {
    let desc = m.descriptor();
    let Some(special) = Special::of(&desc) else {
        let obj = message_json(m, depth)?;
        let zero = obj.is_empty();
        return Ok((Value::Object(obj), zero));
    };
    let int = |name: &str| -> i64 {
        match m.get_field_by_name(name).as_deref() {
            Some(PValue::I64(n)) => *n,
            Some(PValue::I32(n)) => i64::from(*n),
            _ => 0,
        }
    };
    let string = |name: &str| string_field(m, name);
    let bytes = |name: &str| -> Vec<u8> {
        match m.get_field_by_name(name).as_deref() {
            Some(PValue::Bytes(b)) => b.to_vec(),
            _ => Vec::new(),
        }
    };
    let has = |name: &str| {
        desc.get_field_by_name(name)
            .is_some_and(|f| m.has_field(&f))
    };
    Ok(match special {
        Special::Time | Special::MicroTime => {
            // Go encodes the zero time as an empty message; anything else is a real instant.
            if !has("seconds") && !has("nanos") {
                return Ok((Value::Null, true));
            }
            let micro = special == Special::MicroTime;
            (
                Value::String(format_time(int("seconds"), int("nanos"), micro)?),
                false,
            )
        }
        Special::Duration => {
            let d = int("duration");
            (Value::String(go_duration(d)), d == 0)
        }
        Special::IntOrString => {
            if int("type") == 1 {
                let s = string("strVal");
                let zero = s.is_empty();
                (Value::String(s), zero)
            } else {
                let n = int("intVal");
                (Value::from(n), n == 0)
            }
        }
        Special::Quantity => {
            let s = string("string");
            let zero = s.is_empty();
            (Value::String(s), zero)
        }
        Special::RawExtension | Special::FieldsV1 | Special::Json => {
            let field = if special == Special::FieldsV1 {
                "Raw"
            } else {
                "raw"
            };
            let raw = bytes(field);
            if raw.is_empty() {
                return Ok((Value::Null, true));
            }
            (
                embedded_json(&raw, special == Special::RawExtension, depth)?,
                false,
            )
        }
        Special::StringList => {
            let items = match m.get_field_by_name("items").as_deref() {
                Some(PValue::List(items)) => items
                    .iter()
                    .map(|v| match v {
                        PValue::String(s) => Value::String(s.clone()),
                        _ => Value::Null,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let zero = items.is_empty();
            (Value::Array(items), zero)
        }
        Special::SchemaOrArray => {
            if let Some(PValue::List(items)) = m.get_field_by_name("jSONSchemas").as_deref() {
                if !items.is_empty() {
                    let arr = items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| element_json(v, depth).map_err(|e| e.at(format!("[{i}]"))))
                        .collect::<Result<Vec<_>, _>>()?;
                    return Ok((Value::Array(arr), false));
                }
            }
            match schema_of(m, depth)? {
                Some(v) => (v, false),
                None => (Value::Null, true),
            }
        }
        Special::SchemaOrBool => match schema_of(m, depth)? {
            Some(v) => (v, false),
            None => {
                let allows = matches!(
                    m.get_field_by_name("allows").as_deref(),
                    Some(PValue::Bool(true))
                );
                // a present JSONSchemaPropsOrBool is always meaningful (`false` forbids)
                (Value::Bool(allows), false)
            }
        },
        Special::SchemaOrStringArray => {
            if let Some(PValue::List(items)) = m.get_field_by_name("property").as_deref() {
                if !items.is_empty() {
                    let arr = items
                        .iter()
                        .map(|v| scalar_json(v).map(|(j, _)| j))
                        .collect::<Result<Vec<_>, _>>()?;
                    return Ok((Value::Array(arr), false));
                }
            }
            match schema_of(m, depth)? {
                Some(v) => (v, false),
                None => (Value::Null, true),
            }
        }
    })
}

fn schema_of(m: &DynamicMessage, depth: usize) -> Result<Option<Value>, ValueError> {
    let desc = m.descriptor();
    let Some(field) = desc.get_field_by_name("schema") else {
        return Ok(None);
    };
    if !m.has_field(&field) {
        return Ok(None);
    }
    match m.get_field(&field).as_ref() {
        PValue::Message(s) => Ok(Some(Value::Object(
            message_json(s, depth).map_err(|e| e.at("schema"))?,
        ))),
        _ => Ok(None),
    }
}

/// The bytes of a RawExtension/FieldsV1/JSON: JSON text, or for a RawExtension possibly a
/// nested `k8s\0` protobuf object.
fn embedded_json(raw: &[u8], allow_protobuf: bool, depth: usize) -> Result<Value, ValueError> {
    if allow_protobuf && raw.starts_with(PROTOBUF_MAGIC) {
        if depth >= MAX_NESTED_ENVELOPES {
            return Err(ValueError::new("too many nested protobuf objects"));
        }
        return decode_nested(raw, depth + 1)
            .map(|d| d.object)
            .map_err(|e| ValueError::new(e.to_string()));
    }
    serde_json::from_slice(raw).map_err(|e| ValueError::new(format!("embedded JSON: {e}")))
}

/// RFC 3339 in UTC as metav1.Time (seconds) or metav1.MicroTime (6 fractional digits) write it.
fn format_time(seconds: i64, nanos: i64, micro: bool) -> Result<String, ValueError> {
    let nanos = if micro {
        u32::try_from(nanos).ok().filter(|n| *n < 1_000_000_000)
    } else {
        // metav1.Time drops the nanoseconds when it reads protobuf
        Some(0)
    };
    let t = nanos
        .and_then(|n| chrono::DateTime::from_timestamp(seconds, n))
        .filter(|t| (0..=9999).contains(&chrono::Datelike::year(t)))
        .ok_or_else(|| ValueError::new(format!("time out of range: {seconds}s {nanos:?}ns")))?;
    Ok(if micro {
        t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    })
}

/// Go's `time.Duration.String()`: "1h0m0s", "1.5s", "300ms", "0s", "-2m3s".
pub fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let neg = nanos < 0;
    let u = nanos.unsigned_abs();
    let frac = |v: u64, prec: u32| -> (u64, String) {
        let p = 10u64.pow(prec);
        let f = v % p;
        if f == 0 {
            return (v / p, String::new());
        }
        let digits = format!("{f:0width$}", width = prec as usize);
        (v / p, format!(".{}", digits.trim_end_matches('0')))
    };
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (prec, unit) = match u {
            0..1_000 => (0, "ns"),
            1_000..1_000_000 => (3, "µs"),
            _ => (6, "ms"),
        };
        let (int, f) = frac(u, prec);
        out.push_str(&format!("{int}{f}{unit}"));
    } else {
        let (secs, f) = frac(u, 9);
        let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
        if h > 0 {
            out.push_str(&format!("{h}h{m}m"));
        } else if m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&format!("{s}{f}s"));
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

/// The message type a decoded body would use, for callers that decode `raw` themselves.
pub fn kind_message(api_version: &str, kind: &str) -> Option<MessageDescriptor> {
    let (g, v) = split_api_version(api_version);
    message_for(g, v, kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_go() {
        for (ns, s) in [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (300_000_000, "300ms"),
            (1_500_000_000, "1.5s"),
            (60_000_000_000, "1m0s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_000_000_000, "1h2m3s"),
            (-123_000_000_000, "-2m3s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ] {
            assert_eq!(go_duration(ns), s, "{ns}");
        }
    }

    #[test]
    fn required_fields_keep_zero_values_but_never_null() {
        let desc = pool()
            .get_message_by_name("apimachinery.pkg.apis.meta.v1.Condition")
            .unwrap();
        let time = pool()
            .get_message_by_name("apimachinery.pkg.apis.meta.v1.Time")
            .unwrap();
        let mut c = DynamicMessage::new(desc);
        c.set_field_by_name("type", PValue::String("Ready".into()));
        c.set_field_by_name("status", PValue::String("True".into()));
        c.set_field_by_name("reason", PValue::String(String::new()));
        c.set_field_by_name("message", PValue::String(String::new()));
        c.set_field_by_name("observedGeneration", PValue::I64(0));
        c.set_field_by_name(
            "lastTransitionTime",
            PValue::Message(DynamicMessage::new(time)),
        );
        assert_eq!(
            message_to_json(&c).unwrap(),
            serde_json::json!({"type": "Ready", "status": "True", "reason": "", "message": ""})
        );
    }

    #[test]
    fn times_like_go() {
        assert_eq!(
            format_time(1704164645, 0, false).ok().unwrap(),
            "2024-01-02T03:04:05Z"
        );
        assert_eq!(
            format_time(1704164645, 999_999_999, false).ok().unwrap(),
            "2024-01-02T03:04:05Z"
        );
        assert_eq!(
            format_time(1704164645, 123_456_789, true).ok().unwrap(),
            "2024-01-02T03:04:05.123456Z"
        );
        assert_eq!(
            format_time(0, 0, true).ok().unwrap(),
            "1970-01-01T00:00:00.000000Z"
        );
        assert!(format_time(i64::MAX, 0, false).is_err());
        assert!(format_time(0, -1, true).is_err());
    }
}
