//! Field selectors (`?fieldSelector=`), as apimachinery's `pkg/fields/selector.go` parses
//! them: comma-joined `field=value`, `field==value` and `field!=value` terms, with `\`, `,`
//! and `=` in values escaped by a backslash. A field that is absent matches as `""`.
//!
//! Which fields a resource supports is the server's business: [`FieldSelector::requirements`]
//! lists what was asked for, so unsupported fields can be rejected with 400, and
//! [`FieldSelector::requires_exact_match`] finds `metadata.name=x` or `spec.nodeName=x` for
//! use as an index.

use std::fmt;

use serde_json::Value;

/// A field requirement's operator. `=` and `==` are the same requirement (`Equals`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldOperator {
    Equals,
    NotEquals,
}

impl FieldOperator {
    /// `=` or `!=`, as in the canonical string.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldOperator::Equals => "=",
            FieldOperator::NotEquals => "!=",
        }
    }
}

impl fmt::Display for FieldOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `field op value` term, with the value unescaped.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldRequirement {
    pub field: String,
    pub operator: FieldOperator,
    pub value: String,
}

impl FieldRequirement {
    /// Whether a field whose value is `value` (`None`: absent, which counts as `""`)
    /// satisfies this term.
    pub fn matches_value(&self, value: Option<&str>) -> bool {
        let value = value.unwrap_or_default();
        match self.operator {
            FieldOperator::Equals => value == self.value,
            FieldOperator::NotEquals => value != self.value,
        }
    }
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.field,
            self.operator,
            escape_value(&self.value)
        )
    }
}

/// A parsed field selector: the AND of its terms. The empty selector matches everything.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

/// `EscapeValue`: backslash-escapes `\`, `,` and `=` so a literal value can be embedded in
/// a field selector.
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `UnescapeValue`: undoes [`escape_value`]. Any other escape, a trailing lone backslash,
/// or an unescaped `,` or `=` is an error with upstream's wording.
pub fn unescape_value(value: &str) -> Result<String, String> {
    if !value.contains(['\\', ',', '=']) {
        return Ok(value.to_string());
    }
    let mut out = String::with_capacity(value.len());
    let mut in_slash = false;
    for c in value.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                other => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{other}"
                    ))
                }
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            // Go prints the rune with %v, i.e. as its number.
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                ))
            }
            other => out.push(other),
        }
    }
    if in_slash {
        return Err("invalid field selector: invalid escape sequence: \\".to_string());
    }
    Ok(out)
}

/// `splitTerms`: split on commas not escaped by a backslash; escapes are kept.
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::with_capacity(1);
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in selector.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// `splitTerm`: the field before the first `!=`, `==` or `=` (checked in that order at
/// each position), the operator, and the still-escaped value.
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, operator) in [
            ("!=", FieldOperator::NotEquals),
            ("==", FieldOperator::Equals),
            ("=", FieldOperator::Equals),
        ] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], operator, value));
            }
        }
    }
    None
}

impl FieldSelector {
    /// Matches every object.
    pub fn everything() -> FieldSelector {
        FieldSelector::default()
    }

    /// `fields.ParseSelector`. Terms are sorted (as upstream does before parsing), empty
    /// terms are skipped; a term without an operator is
    /// `invalid selector: '<selector>'; can't understand '<term>'`.
    pub fn parse(selector: &str) -> Result<FieldSelector, String> {
        let mut parts = split_terms(selector);
        parts.sort_unstable();
        let mut requirements = Vec::with_capacity(parts.len());
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((field, operator, value)) = split_term(part) else {
                return Err(format!(
                    "invalid selector: '{selector}'; can't understand '{part}'"
                ));
            };
            requirements.push(FieldRequirement {
                field: field.to_string(),
                operator,
                value: unescape_value(value)?,
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// `fields.OneTermEqualSelector`: `field=value`.
    pub fn one_term_equal(field: impl Into<String>, value: impl Into<String>) -> FieldSelector {
        FieldSelector {
            requirements: vec![FieldRequirement {
                field: field.into(),
                operator: FieldOperator::Equals,
                value: value.into(),
            }],
        }
    }

    /// The terms, in parse order (sorted by their text).
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// Whether this selector restricts nothing.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// `RequiresExactMatch`: the value of the first `field=value` term on `field`.
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && r.operator == FieldOperator::Equals)
            .map(|r| r.value.as_str())
    }

    /// Whether every term holds, `get` giving each field's value (`None`: absent, `""`).
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.requirements
            .iter()
            .all(|r| r.matches_value(get(&r.field).as_deref()))
    }

    /// [`FieldSelector::matches`] with a lookup that borrows instead of allocating.
    pub fn matches_ref<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.requirements
            .iter()
            .all(|r| r.matches_value(get(&r.field)))
    }

    /// Rewrites every term with `f(field, value) -> (field, value)`, as upstream's
    /// `Transform` does for field label conversion; terms mapped to an empty field and an
    /// empty value are dropped.
    pub fn transform(
        &self,
        f: impl Fn(&str, &str) -> Result<(String, String), String>,
    ) -> Result<FieldSelector, String> {
        let mut requirements = Vec::with_capacity(self.requirements.len());
        for r in &self.requirements {
            let (field, value) = f(&r.field, &r.value)?;
            if field.is_empty() && value.is_empty() {
                continue;
            }
            requirements.push(FieldRequirement {
                field,
                operator: r.operator,
                value,
            });
        }
        Ok(FieldSelector { requirements })
    }
}

impl fmt::Display for FieldSelector {
    /// `a=b,c!=d`, values escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for FieldSelector {
    type Err = String;

    fn from_str(s: &str) -> Result<FieldSelector, String> {
        FieldSelector::parse(s)
    }
}

/// The value of a dotted field path (`metadata.name`, `spec.nodeName`, `status.phase`)
/// in a JSON object, as the field-set functions of upstream's registries produce it:
/// strings as they are, booleans as `true`/`false` (`spec.hostNetwork`), numbers in their
/// JSON form. Absent, `null` or non-scalar values are `None`.
pub fn json_field_value(object: &Value, path: &str) -> Option<String> {
    let mut current = object;
    for segment in path.split('.') {
        current = current.get(segment)?;
    }
    match current {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn matches(selector: &str, set: &BTreeMap<String, String>) -> bool {
        FieldSelector::parse(selector)
            .unwrap_or_else(|e| panic!("{selector}: {e}"))
            .matches(|f| set.get(f).cloned())
    }

    #[test]
    fn split_terms_table() {
        let cases: Vec<(&str, Vec<&str>)> = vec![
            ("a", vec!["a"]),
            ("a=avalue", vec!["a=avalue"]),
            ("a=avalue,b=bvalue", vec!["a=avalue", "b=bvalue"]),
            (
                "a=avalue,b==bvalue,c!=cvalue",
                vec!["a=avalue", "b==bvalue", "c!=cvalue"],
            ),
            ("", vec![]),
            ("a=a,", vec!["a=a", ""]),
            (",a=a", vec!["", "a=a"]),
            ("k=\\,,k2=v2", vec!["k=\\,", "k2=v2"]),
            ("k=\\\\,k2=v2", vec!["k=\\\\", "k2=v2"]),
            ("k=\\\\\\,,k2=v2", vec!["k=\\\\\\,", "k2=v2"]),
            ("k=\\a\\b\\", vec!["k=\\a\\b\\"]),
            ("k=\\", vec!["k=\\"]),
            ("함=수,목=록", vec!["함=수", "목=록"]),
        ];
        for (selector, terms) in cases {
            assert_eq!(split_terms(selector), terms, "{selector}");
        }
    }

    #[test]
    fn split_term_table() {
        use FieldOperator::*;
        type Split<'a> = Option<(&'a str, FieldOperator, &'a str)>;
        let cases: Vec<(&str, Split)> = vec![
            ("a=value", Some(("a", Equals, "value"))),
            ("b==value", Some(("b", Equals, "value"))),
            ("c!=value", Some(("c", NotEquals, "value"))),
            ("", None),
            ("a", None),
            ("k=\\,", Some(("k", Equals, "\\,"))),
            ("k=\\=", Some(("k", Equals, "\\="))),
            (
                "k=\\\\\\a\\b\\=\\,\\",
                Some(("k", Equals, "\\\\\\a\\b\\=\\,\\")),
            ),
            ("함=수", Some(("함", Equals, "수"))),
        ];
        for (term, want) in cases {
            assert_eq!(split_term(term), want, "{term}");
        }
    }

    #[test]
    fn escaping_round_trips() {
        for (unescaped, escaped) in [
            ("", ""),
            ("a", "a"),
            ("=", "\\="),
            (",", "\\,"),
            ("\\", "\\\\"),
            ("\\=\\,\\", "\\\\\\=\\\\\\,\\\\"),
        ] {
            assert_eq!(escape_value(unescaped), escaped);
            assert_eq!(unescape_value(escaped).as_deref(), Ok(unescaped));
        }
        for invalid in ["\\", "\\\\\\", "\\a"] {
            let err = unescape_value(invalid).unwrap_err();
            assert!(err.contains("invalid escape sequence"), "{invalid}: {err}");
        }
        assert_eq!(
            unescape_value("\\a"),
            Err("invalid field selector: invalid escape sequence: \\a".to_string())
        );
        assert_eq!(
            unescape_value("a=b"),
            Err("invalid field selector: unescaped character in value: 61".to_string())
        );
        assert_eq!(
            unescape_value("a,b"),
            Err("invalid field selector: unescaped character in value: 44".to_string())
        );
    }

    #[test]
    fn parse_good_and_bad() {
        for good in ["x=a,y=b,z=c", "", "x!=a,y=b", "x=a||y\\=b", "x=a\\=\\=b"] {
            let parsed = FieldSelector::parse(good).unwrap_or_else(|e| panic!("{good}: {e}"));
            assert_eq!(parsed.to_string(), good);
        }
        for bad in [
            "x=a||y=b",
            "x==a==b",
            "x=a,b",
            "x in (a)",
            "x in (a,b,c)",
            "x",
            "x=\\q",
        ] {
            assert!(FieldSelector::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            FieldSelector::parse("x=a,b"),
            Err("invalid selector: 'x=a,b'; can't understand 'b'".to_string())
        );
        assert_eq!(
            FieldSelector::parse("x==a==b"),
            Err("invalid field selector: unescaped character in value: 61".to_string())
        );
    }

    #[test]
    fn deterministic_parse_and_canonical_form() {
        let a = FieldSelector::parse("x=a,a=x").map(|s| s.to_string());
        let b = FieldSelector::parse("a=x,x=a").map(|s| s.to_string());
        assert_eq!(a, b);
        assert_eq!(
            FieldSelector::parse("b==1,a!=2")
                .map(|s| s.to_string())
                .as_deref(),
            Ok("a!=2,b=1")
        );
        assert_eq!(
            FieldSelector::parse(",,x=1,")
                .map(|s| s.to_string())
                .as_deref(),
            Ok("x=1")
        );
    }

    #[test]
    fn selector_matches() {
        let set = fields(&[("x", "y")]);
        assert!(matches("", &set));
        assert!(matches("x=y", &set));
        assert!(!matches("x=z", &set));
        assert!(matches("x=y,z=", &set), "absent fields are empty");
        assert!(!matches("x!=y", &set));
        assert!(matches("z!=w", &set));
        assert!(matches("x=y,z=w", &fields(&[("x", "y"), ("z", "w")])));
        assert!(matches("x!=y,z!=w", &fields(&[("x", "z"), ("z", "a")])));
        assert!(matches("notin=in", &fields(&[("notin", "in")])));
        assert!(!matches("x=y,z=w", &fields(&[("x", "w"), ("z", "w")])));
        assert!(!matches("x!=y,z!=w", &fields(&[("x", "z"), ("z", "w")])));

        let complex = fields(&[("foo", "bar"), ("baz", "blah"), ("complex", "=value\\,\\")]);
        assert!(matches("foo=bar", &complex));
        assert!(matches("baz=blah", &complex));
        assert!(matches("foo=bar,baz=blah", &complex));
        assert!(matches(
            "foo=bar,baz=blah,complex=\\=value\\\\\\,\\\\",
            &complex
        ));
        assert!(!matches("foo=blah", &complex));
        assert!(!matches("baz=bar", &complex));
        assert!(!matches("foo=bar,foobar=bar,baz=blah", &complex));
    }

    #[test]
    fn scheduler_and_kubectl_selectors() {
        let running = json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {"nodeName": "n1", "hostNetwork": true}, "status": {"phase": "Running"}});
        let done = json!({"metadata": {"name": "q"}, "status": {"phase": "Succeeded"}});
        let unscheduled = FieldSelector::parse("status.phase!=Succeeded,status.phase!=Failed")
            .unwrap_or_default();
        assert!(unscheduled.matches(|f| json_field_value(&running, f)));
        assert!(!unscheduled.matches(|f| json_field_value(&done, f)));

        let on_node = FieldSelector::parse("spec.nodeName=n1").unwrap_or_default();
        assert_eq!(on_node.requires_exact_match("spec.nodeName"), Some("n1"));
        assert!(on_node.matches(|f| json_field_value(&running, f)));
        assert!(!on_node.matches(|f| json_field_value(&done, f)));
        let pending = FieldSelector::parse("spec.nodeName=").unwrap_or_default();
        assert!(pending.matches(|f| json_field_value(&done, f)));

        let by_name = FieldSelector::parse("metadata.name=p").unwrap_or_default();
        assert_eq!(by_name.requires_exact_match("metadata.name"), Some("p"));
        assert_eq!(by_name.requires_exact_match("spec.nodeName"), None);
        assert_eq!(
            FieldSelector::parse("metadata.name!=p")
                .unwrap_or_default()
                .requires_exact_match("metadata.name"),
            None
        );
        assert!(FieldSelector::parse("spec.hostNetwork=true")
            .unwrap_or_default()
            .matches(|f| json_field_value(&running, f)));

        let events = FieldSelector::parse("involvedObject.name=web,involvedObject.namespace=default,involvedObject.kind=Pod,involvedObject.uid=u1")
            .unwrap_or_default();
        let fields: Vec<(&str, FieldOperator, &str)> = events
            .requirements()
            .iter()
            .map(|r| (r.field.as_str(), r.operator, r.value.as_str()))
            .collect();
        assert_eq!(
            fields,
            vec![
                ("involvedObject.kind", FieldOperator::Equals, "Pod"),
                ("involvedObject.name", FieldOperator::Equals, "web"),
                ("involvedObject.namespace", FieldOperator::Equals, "default"),
                ("involvedObject.uid", FieldOperator::Equals, "u1"),
            ]
        );
        assert!(events.matches_ref(|f| match f {
            "involvedObject.kind" => Some("Pod"),
            "involvedObject.name" => Some("web"),
            "involvedObject.namespace" => Some("default"),
            "involvedObject.uid" => Some("u1"),
            _ => None,
        }));
    }

    #[test]
    fn one_term_and_transform() {
        let s = FieldSelector::one_term_equal("x", "a,b");
        assert_eq!(s.to_string(), "x=a\\,b");
        assert!(s.matches_ref(|_| Some("a,b")));
        let renamed = FieldSelector::parse("spec.host=n1,other=x")
            .unwrap_or_default()
            .transform(|f, v| match f {
                "spec.host" => Ok(("spec.nodeName".to_string(), v.to_string())),
                "other" => Ok((String::new(), String::new())),
                _ => Err(format!("field label not supported: {f}")),
            });
        assert_eq!(
            renamed.map(|s| s.to_string()).as_deref(),
            Ok("spec.nodeName=n1")
        );
        assert!(FieldSelector::everything().is_empty());
        assert!(FieldSelector::everything().matches(|_| None));
    }

    #[test]
    fn json_fields() {
        let obj = json!({"a": {"b": "x", "n": 3, "t": false, "o": {}}});
        assert_eq!(json_field_value(&obj, "a.b").as_deref(), Some("x"));
        assert_eq!(json_field_value(&obj, "a.n").as_deref(), Some("3"));
        assert_eq!(json_field_value(&obj, "a.t").as_deref(), Some("false"));
        assert_eq!(json_field_value(&obj, "a.o"), None);
        assert_eq!(json_field_value(&obj, "a.missing"), None);
        assert_eq!(json_field_value(&obj, "a.b.c"), None);
    }
}
