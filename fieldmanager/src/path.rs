//! Field paths: path elements, their total order, their `FieldsV1` keys and their
//! human-readable form, as structured-merge-diff's `fieldpath` package defines them.

use serde_json::Value;
use std::cmp::Ordering;
use std::fmt;

/// One step of a field path.
///
/// Order (used by sets and by the `FieldsV1` encoding): fields, then keys, then values, then
/// indexes; within a kind by name, key fields, value or index.
#[derive(Clone, Debug)]
pub enum PathElement {
    /// A field of a struct or a key of a map: `f:<name>`, shown as `.name`.
    Field(String),
    /// An element of an associative list with keys, by its key fields sorted by name:
    /// `k:{"containerPort":80,"protocol":"TCP"}`, shown as `[containerPort=80,protocol="TCP"]`.
    Key(Vec<(String, Value)>),
    /// An element of a set (associative list of scalars) by value: `v:"a"`, shown as `[="a"]`.
    Value(Value),
    /// An element of a list by index: `i:3`, shown as `[3]`. Apply never produces these for
    /// typed objects (atomic lists are owned as a whole) but they are kept when decoded.
    Index(i64),
}

impl PathElement {
    /// A field element.
    pub fn field(name: impl Into<String>) -> PathElement {
        PathElement::Field(name.into())
    }

    /// A key element; the fields are sorted by name as upstream does.
    pub fn key<K: Into<String>>(fields: impl IntoIterator<Item = (K, Value)>) -> PathElement {
        let mut fields: Vec<(String, Value)> =
            fields.into_iter().map(|(k, v)| (k.into(), v)).collect();
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        PathElement::Key(fields)
    }

    /// The `FieldsV1` key of this element (`f:name`, `k:{...}`, `v:...`, `i:n`).
    pub fn to_fields_v1_key(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                let mut out = String::from("k:{");
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    go_json_string(name, &mut out);
                    out.push(':');
                    go_json(value, &mut out);
                }
                out.push('}');
                out
            }
            PathElement::Value(v) => {
                let mut out = String::from("v:");
                go_json(v, &mut out);
                out
            }
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a `FieldsV1` key. Keys of an unknown kind (`x:...`) give
    /// [`PathElementError::UnknownType`], which decoders skip as upstream does.
    pub fn from_fields_v1_key(s: &str) -> Result<PathElement, PathElementError> {
        let b = s.as_bytes();
        if b.len() < 2 {
            return Err(PathElementError::Invalid(
                "key must be 2 characters long:".into(),
            ));
        }
        if b[1] != b':' {
            return Err(PathElementError::Invalid(format!("missing colon: {s}")));
        }
        let rest = &s[2..];
        match b[0] {
            b'f' => Ok(PathElement::Field(rest.to_string())),
            b'v' => serde_json::from_str::<Value>(rest)
                .map(PathElement::Value)
                .map_err(|e| PathElementError::Invalid(e.to_string())),
            b'k' => match serde_json::from_str::<Value>(rest) {
                Ok(Value::Object(m)) => Ok(PathElement::key(m)),
                Ok(_) => Err(PathElementError::Invalid(format!(
                    "key of an associative list element must be an object: {s}"
                ))),
                Err(e) => Err(PathElementError::Invalid(e.to_string())),
            },
            b'i' => rest
                .parse::<i64>()
                .map(PathElement::Index)
                .map_err(|e| PathElementError::Invalid(format!("{s}: {e}"))),
            _ => Err(PathElementError::UnknownType),
        }
    }
}

/// Why a `FieldsV1` key is not a path element.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathElementError {
    #[error("unknown path element type")]
    UnknownType,
    #[error("{0}")]
    Invalid(String),
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        fn rank(pe: &PathElement) -> u8 {
            match pe {
                PathElement::Field(_) => 0,
                PathElement::Key(_) => 1,
                PathElement::Value(_) => 2,
                PathElement::Index(_) => 3,
            }
        }
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for ((an, av), (bn, bv)) in a.iter().zip(b.iter()) {
                    let c = an.cmp(bn).then_with(|| compare_values(av, bv));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => compare_values(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => rank(self).cmp(&rank(other)),
        }
    }
}

impl fmt::Display for PathElement {
    /// Upstream's `PathElement.String()`: `.name`, `[k=v,...]`, `[=v]`, `[i]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                f.write_str("[")?;
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{name}={}", value_to_string(value))?;
                }
                f.write_str("]")
            }
            PathElement::Value(v) => write!(f, "[={}]", value_to_string(v)),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A field path, rendered as upstream does in conflict messages
/// (`.spec.template.spec.containers[name="web"].image`).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Path(pub Vec<PathElement>);

impl Path {
    /// A path of field names (`Path::fields(["spec", "replicas"])`).
    pub fn fields<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Path {
        Path(names.into_iter().map(PathElement::field).collect())
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for pe in &self.0 {
            write!(f, "{pe}")?;
        }
        Ok(())
    }
}

impl From<Vec<PathElement>> for Path {
    fn from(v: Vec<PathElement>) -> Path {
        Path(v)
    }
}

/// Upstream's total order of values (`value.Compare`): numbers (compared numerically, ints
/// and floats alike) < strings < booleans < lists < maps < null.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Number(_) => 0,
            Value::String(_) => 1,
            Value::Bool(_) => 2,
            Value::Array(_) => 3,
            Value::Object(_) => 4,
            Value::Null => 5,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x.cmp(&y)
            } else if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                x.cmp(&y)
            } else {
                let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                x.partial_cmp(&y).unwrap_or(Ordering::Equal)
            }
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y.iter()) {
                let c = compare_values(p, q);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut xs: Vec<_> = x.iter().collect();
            let mut ys: Vec<_> = y.iter().collect();
            xs.sort_by(|p, q| p.0.cmp(q.0));
            ys.sort_by(|p, q| p.0.cmp(q.0));
            for ((pk, pv), (qk, qv)) in xs.iter().zip(ys.iter()) {
                let c = pk.cmp(qk).then_with(|| compare_values(pv, qv));
                if c != Ordering::Equal {
                    return c;
                }
            }
            xs.len().cmp(&ys.len())
        }
        (Value::Null, Value::Null) => Ordering::Equal,
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Deep equality with upstream's semantics (numbers compare numerically, map order ignored).
pub fn values_equal(a: &Value, b: &Value) -> bool {
    compare_values(a, b) == Ordering::Equal
}

/// Upstream's `value.ToString`: strings quoted as Go's `%q`, other scalars as Go's `%v`.
pub fn value_to_string(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_number(n),
        Value::String(s) => go_quote(s),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(value_to_string).collect();
            format!("[{}]", parts.join(","))
        }
        Value::Object(m) => {
            let mut keys: Vec<_> = m.keys().collect();
            keys.sort();
            keys.iter()
                .map(|k| format!("{k}={}", value_to_string(&m[k.as_str()])))
                .collect::<Vec<_>>()
                .join("")
        }
    }
}

pub use keelson_apimachinery::validation::go_quote;

fn go_number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    let abs = f.abs();
    if f == 0.0 || (1e-6..1e21).contains(&abs) {
        format!("{f}")
    } else {
        // Go's exponent form: 1e+21, 1e-07.
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((m, e)) => {
                let (sign, digits) = match e.strip_prefix('-') {
                    Some(d) => ('-', d),
                    None => ('+', e),
                };
                let digits = if digits.len() < 2 {
                    format!("0{digits}")
                } else {
                    digits.to_string()
                };
                format!("{m}e{sign}{digits}")
            }
            None => s,
        }
    }
}

/// Writes `v` as Go's `encoding/json` would (HTML-escaped strings, map keys sorted).
pub(crate) fn go_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let s = go_number(n);
            // Go writes floats in the exponent range with a two-digit exponent only in %v;
            // encoding/json drops the leading zero (1e-7).
            match s.split_once("e-0") {
                Some((m, d)) => {
                    out.push_str(m);
                    out.push_str("e-");
                    out.push_str(d);
                }
                None => out.push_str(&s),
            }
        }
        Value::String(s) => go_json_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json(item, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json_string(k, out);
                out.push(':');
                go_json(&m[k.as_str()], out);
            }
            out.push('}');
        }
    }
}

/// A JSON string as Go's `encoding/json` writes it (`<`, `>`, `&`, U+2028 and U+2029
/// escaped).
pub(crate) fn go_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's JSON of a value (see [`go_json`]).
pub(crate) fn go_json_to_string(v: &Value) -> String {
    let mut out = String::new();
    go_json(v, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_and_rendered_like_upstream() {
        let pe = PathElement::key([("protocol", json!("TCP")), ("containerPort", json!(80))]);
        assert_eq!(
            pe.to_fields_v1_key(),
            r#"k:{"containerPort":80,"protocol":"TCP"}"#
        );
        assert_eq!(pe.to_string(), r#"[containerPort=80,protocol="TCP"]"#);
        let back = PathElement::from_fields_v1_key(&pe.to_fields_v1_key()).unwrap();
        assert_eq!(back, pe);
        // numbers decoded as floats by Go still equal the integers of live objects
        let f = PathElement::from_fields_v1_key(r#"k:{"containerPort":80.0,"protocol":"TCP"}"#)
            .unwrap();
        assert_eq!(f, pe);
    }

    #[test]
    fn elements_and_paths_display() {
        let p = Path(vec![
            PathElement::field("spec"),
            PathElement::field("template"),
            PathElement::field("spec"),
            PathElement::field("containers"),
            PathElement::key([("name", json!("web"))]),
            PathElement::field("image"),
        ]);
        assert_eq!(
            p.to_string(),
            r#".spec.template.spec.containers[name="web"].image"#
        );
        assert_eq!(
            PathElement::Value(json!("a\"b")).to_string(),
            r#"[="a\"b"]"#
        );
        assert_eq!(PathElement::Index(3).to_string(), "[3]");
        assert_eq!(
            PathElement::Value(json!("x<y")).to_fields_v1_key(),
            r#"v:"x\u003cy""#
        );
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            PathElement::from_fields_v1_key("r:aab"),
            Err(PathElementError::UnknownType)
        );
        assert!(matches!(
            PathElement::from_fields_v1_key("f"),
            Err(PathElementError::Invalid(_))
        ));
        assert!(matches!(
            PathElement::from_fields_v1_key("fx"),
            Err(PathElementError::Invalid(m)) if m == "missing colon: fx"
        ));
        assert_eq!(
            PathElement::from_fields_v1_key("i:4").unwrap(),
            PathElement::Index(4)
        );
    }

    #[test]
    fn value_order() {
        let mut vs = vec![
            json!(true),
            json!("ab"),
            json!(3),
            json!("aa"),
            json!(1.5),
            json!(null),
            json!({"a": 1}),
            json!([1]),
        ];
        vs.sort_by(compare_values);
        assert_eq!(
            vs,
            vec![
                json!(1.5),
                json!(3),
                json!("aa"),
                json!("ab"),
                json!(true),
                json!([1]),
                json!({"a": 1}),
                json!(null)
            ]
        );
    }
}
