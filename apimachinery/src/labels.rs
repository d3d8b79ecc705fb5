//! Label selectors: the string grammar of apimachinery's `pkg/labels/selector.go` (what
//! `?labelSelector=` carries), the meta/v1 `LabelSelector` object that workload specs hold
//! (`metav1.LabelSelectorAsSelector`), matching, and the canonical string form.
//!
//! ```text
//! <selector-syntax>         ::= <requirement> | <requirement> "," <selector-syntax>
//! <requirement>             ::= [!] KEY [ <set-based-restriction> | <exact-match-restriction> ]
//! <set-based-restriction>   ::= "" | <inclusion-exclusion> <value-set>
//! <inclusion-exclusion>     ::= "in" | "notin"
//! <value-set>               ::= "(" <values> ")"
//! <values>                  ::= VALUE | VALUE "," <values>
//! <exact-match-restriction> ::= ["="|"=="|"!="|">"|"<"] VALUE
//! ```
//!
//! Keys must be qualified names and values label values; errors carry upstream's text,
//! for example `unable to parse requirement: <nil>: Invalid value: "app:": name part must
//! consist of ...`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde_json::{Map, Value};

use crate::names;
use crate::validation::{format_bad_value, go_quote};

/// A requirement's operator (`selection.Operator`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `=`
    Equals,
    /// `==`
    DoubleEquals,
    /// `!=`
    NotEquals,
    /// `in (a,b)`
    In,
    /// `notin (a,b)`
    NotIn,
    /// `key`
    Exists,
    /// `!key`
    DoesNotExist,
    /// `key>1`
    GreaterThan,
    /// `key<1`
    LessThan,
}

impl Operator {
    /// The `selection.Operator` string: `=`, `==`, `!=`, `in`, `notin`, `exists`, `!`,
    /// `gt`, `lt`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Upstream's `binaryOperators`, as listed in "expected:" parse errors.
const BINARY_OPERATORS: &str = "in, notin, =, ==, !=, gt, lt";

/// Anything labels can be looked up in.
pub trait Labels {
    /// The value of label `key`, if the label is present.
    fn label(&self, key: &str) -> Option<&str>;
}

impl Labels for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl<S: std::hash::BuildHasher> Labels for HashMap<String, String, S> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// A JSON object of labels (`metadata.labels`); entries whose value is not a string
/// count as absent.
impl Labels for Map<String, Value> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }
}

/// A JSON value of labels: an object as for `Map`, anything else (a missing `labels`,
/// `null`) has no labels.
impl Labels for Value {
    fn label(&self, key: &str) -> Option<&str> {
        self.as_object().and_then(|m| m.label(key))
    }
}

impl Labels for [(&str, &str)] {
    fn label(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

impl<L: Labels + ?Sized> Labels for &L {
    fn label(&self, key: &str) -> Option<&str> {
        (**self).label(key)
    }
}

impl<L: Labels> Labels for Option<L> {
    fn label(&self, key: &str) -> Option<&str> {
        self.as_ref().and_then(|l| l.label(key))
    }
}

/// One `key op values` term of a selector. Build with [`Requirement::new`], which
/// validates like upstream's `NewRequirement`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

/// Joins field errors the way `utilerrors.Aggregate` prints them: one error alone,
/// several deduplicated inside `[...]`.
fn aggregate(errs: Vec<String>) -> String {
    let mut seen: Vec<String> = Vec::with_capacity(errs.len());
    for err in errs {
        if !seen.contains(&err) {
            seen.push(err);
        }
    }
    if seen.len() == 1 {
        seen.pop().unwrap_or_default()
    } else {
        format!("[{}]", seen.join(", "))
    }
}

/// `field.Invalid(path, value, detail).Error()`.
fn invalid_error(path: &str, bad_value: &str, detail: &str) -> String {
    format!("{path}: Invalid value: {bad_value}: {detail}")
}

/// `validateLabelKey`: the key must be a qualified name; all messages joined with `; `.
fn validate_label_key(key: &str, path: &str) -> Result<(), String> {
    let errs = names::is_qualified_name(key);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(invalid_error(path, &go_quote(key), &errs.join("; ")))
    }
}

fn parse_int(s: &str) -> Option<i64> {
    s.parse::<i64>().ok()
}

impl Requirement {
    /// `NewRequirement`: the key must be a qualified name; `In`/`NotIn` need values,
    /// `=`/`==`/`!=` exactly one, `Exists`/`DoesNotExist` none, `>`/`<` exactly one
    /// integer; every value must be a valid label value. Errors use upstream's paths
    /// (`key`, `values`, `values[0][key]`).
    pub fn new(
        key: impl Into<String>,
        operator: Operator,
        values: Vec<String>,
    ) -> Result<Requirement, String> {
        let key = key.into();
        let mut errs = Vec::new();
        if let Err(err) = validate_label_key(&key, "key") {
            errs.push(err);
        }
        let values_path = "values";
        let values_json = || format_bad_value(&Value::from(values.clone()));
        match operator {
            Operator::In | Operator::NotIn => {
                if values.is_empty() {
                    errs.push(invalid_error(
                        values_path,
                        &values_json(),
                        "for 'in', 'notin' operators, values set can't be empty",
                    ));
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if values.len() != 1 {
                    errs.push(invalid_error(
                        values_path,
                        &values_json(),
                        "exact-match compatibility requires one single value",
                    ));
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !values.is_empty() {
                    errs.push(invalid_error(
                        values_path,
                        &values_json(),
                        "values set must be empty for exists and does not exist",
                    ));
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(invalid_error(
                        values_path,
                        &values_json(),
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, value) in values.iter().enumerate() {
                    if parse_int(value).is_none() {
                        errs.push(invalid_error(
                            &format!("{values_path}[{i}]"),
                            &go_quote(value),
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
        }
        for (i, value) in values.iter().enumerate() {
            let msgs = names::is_valid_label_value(value);
            if !msgs.is_empty() {
                errs.push(invalid_error(
                    &format!("{values_path}[{i}][{key}]"),
                    &go_quote(value),
                    &msgs.join("; "),
                ));
            }
        }
        if errs.is_empty() {
            Ok(Requirement {
                key,
                operator,
                values,
            })
        } else {
            Err(aggregate(errs))
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values, in the order given (the parser yields them sorted and deduplicated).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    fn has_value(&self, value: &str) -> bool {
        self.values.iter().any(|v| v == value)
    }

    /// Whether `labels` satisfy this requirement. `!=` and `notin` match when the label is
    /// absent; `>`/`<` need the label to be present and an integer.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        self.matches_value(labels.label(&self.key))
    }

    /// Whether a label whose value is `value` (`None`: absent) satisfies this requirement.
    pub fn matches_value(&self, value: Option<&str>) -> bool {
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                value.is_some_and(|v| self.has_value(v))
            }
            Operator::NotIn | Operator::NotEquals => value.is_none_or(|v| !self.has_value(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(have) = value.and_then(parse_int) else {
                    return false;
                };
                let [want] = self.values.as_slice() else {
                    return false;
                };
                let Some(want) = parse_int(want) else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    /// Upstream's `Requirement.String()`: `!key`, `key`, `key=v`, `key in (a,b)` with the
    /// values sorted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
        };
        f.write_str(op)?;
        let set = matches!(self.operator, Operator::In | Operator::NotIn);
        if set {
            f.write_str("(")?;
        }
        if self.values.len() == 1 {
            f.write_str(&self.values[0])?;
        } else {
            let mut sorted: Vec<&str> = self.values.iter().map(String::as_str).collect();
            sorted.sort_unstable();
            f.write_str(&sorted.join(","))?;
        }
        if set {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A parsed label selector: the AND of its requirements, sorted by key. The empty selector
/// matches everything; [`Selector::nothing`] (a `null` LabelSelector) matches nothing.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Selector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl Selector {
    /// Matches every set of labels (`labels.Everything()`).
    pub fn everything() -> Selector {
        Selector::default()
    }

    /// Matches nothing (`labels.Nothing()`): what a missing LabelSelector converts to.
    pub fn nothing() -> Selector {
        Selector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// `labels.Parse`: the `?labelSelector=` grammar. An empty or all-blank string is the
    /// empty selector.
    pub fn parse(selector: &str) -> Result<Selector, String> {
        let mut parser = Parser::new(selector);
        let mut requirements = parser.parse()?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Selector {
            requirements,
            nothing: false,
        })
    }

    /// `SelectorFromSet`: `key=value` for every pair, unvalidated, sorted by key.
    pub fn from_set<K, V>(set: impl IntoIterator<Item = (K, V)>) -> Selector
    where
        K: Into<String>,
        V: Into<String>,
    {
        let mut requirements: Vec<Requirement> = set
            .into_iter()
            .map(|(k, v)| Requirement {
                key: k.into(),
                operator: Operator::Equals,
                values: vec![v.into()],
            })
            .collect();
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Selector {
            requirements,
            nothing: false,
        }
    }

    /// `metav1.LabelSelectorAsSelector` for a meta/v1 LabelSelector as JSON
    /// (`{matchLabels, matchExpressions: [{key, operator, values}]}`): `null` matches
    /// nothing, `{}` everything. Operators are `In`, `NotIn`, `Exists`, `DoesNotExist`.
    pub fn from_label_selector_json(selector: &Value) -> Result<Selector, String> {
        let obj = match selector {
            Value::Null => return Ok(Selector::nothing()),
            Value::Object(obj) => obj,
            other => {
                return Err(format!(
                    "a label selector must be an object, got {}",
                    format_bad_value(other)
                ))
            }
        };
        let match_labels = match obj.get("matchLabels") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(other) => {
                return Err(format!(
                    "matchLabels must be an object, got {}",
                    format_bad_value(other)
                ))
            }
        };
        let match_expressions = match obj.get("matchExpressions") {
            None | Some(Value::Null) => None,
            Some(Value::Array(list)) => Some(list),
            Some(other) => {
                return Err(format!(
                    "matchExpressions must be an array, got {}",
                    format_bad_value(other)
                ))
            }
        };
        let label_count = match_labels.map_or(0, Map::len);
        let expression_count = match_expressions.map_or(0, Vec::len);
        if label_count + expression_count == 0 {
            return Ok(Selector::everything());
        }
        let mut requirements = Vec::with_capacity(label_count + expression_count);
        for (key, value) in match_labels.into_iter().flatten() {
            let value = match value {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => {
                    return Err(format!(
                        "matchLabels[{key}] must be a string, got {}",
                        format_bad_value(other)
                    ))
                }
            };
            requirements.push(Requirement::new(
                key.clone(),
                Operator::Equals,
                vec![value],
            )?);
        }
        for expr in match_expressions.into_iter().flatten() {
            let key = expr.get("key").and_then(Value::as_str).unwrap_or_default();
            let operator = expr
                .get("operator")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let operator = match operator {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(format!(
                        "{} is not a valid label selector operator",
                        go_quote(other)
                    ))
                }
            };
            let values = match expr.get("values") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(list)) => list
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s.clone()),
                        other => Err(format!(
                            "matchExpressions values must be strings, got {}",
                            format_bad_value(other)
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                Some(other) => {
                    return Err(format!(
                        "matchExpressions values must be an array, got {}",
                        format_bad_value(other)
                    ))
                }
            };
            requirements.push(Requirement::new(key, operator, values)?);
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Selector {
            requirements,
            nothing: false,
        })
    }

    /// Adds requirements, keeping the key order (`Selector.Add`).
    pub fn with_requirements(
        mut self,
        requirements: impl IntoIterator<Item = Requirement>,
    ) -> Selector {
        if self.nothing {
            return self;
        }
        self.requirements.extend(requirements);
        self.requirements.sort_by(|a, b| a.key.cmp(&b.key));
        self
    }

    /// Whether every requirement holds for `labels`.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// [`Selector::matches`] with a lookup function instead of a label map.
    pub fn matches_with<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        !self.nothing
            && self
                .requirements
                .iter()
                .all(|r| r.matches_value(get(&r.key)))
    }

    /// Whether this selector restricts nothing (`Empty()`); false for [`Selector::nothing`].
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// Whether this is [`Selector::nothing`], which matches no object at all.
    pub fn is_nothing(&self) -> bool {
        self.nothing
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// `RequiresExactMatch`: the single value the first requirement on `label` demands,
    /// when it is `=`, `==` or a one-value `in`.
    pub fn requires_exact_match(&self, label: &str) -> Option<&str> {
        let requirement = self.requirements.iter().find(|r| r.key == label)?;
        match (requirement.operator, requirement.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [value]) => Some(value),
            _ => None,
        }
    }
}

impl fmt::Display for Selector {
    /// The canonical form: requirements by key, comma-joined (`app=nginx,tier in (a,b)`);
    /// empty for both the empty selector and [`Selector::nothing`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, requirement) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{requirement}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Selector {
    type Err = String;

    fn from_str(s: &str) -> Result<Selector, String> {
        Selector::parse(s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn keyword(s: &str) -> Option<Token> {
    Some(match s {
        ")" => Token::ClosedPar,
        "," => Token::Comma,
        "!" => Token::DoesNotExist,
        "==" => Token::DoubleEquals,
        "=" => Token::Equals,
        ">" => Token::GreaterThan,
        "in" => Token::In,
        "<" => Token::LessThan,
        "!=" => Token::NotEquals,
        "notin" => Token::NotIn,
        "(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Upstream's byte lexer. A NUL byte ends the input, as it does upstream.
struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> u8 {
        self.s.as_bytes().get(self.pos).copied().unwrap_or(0)
    }

    fn lex(&mut self) -> (Token, &'a str) {
        while is_whitespace(self.peek()) {
            self.pos += 1;
        }
        let ch = self.peek();
        if ch == 0 {
            return (Token::EndOfString, "");
        }
        if is_special(ch) {
            return self.scan_special();
        }
        let start = self.pos;
        while self.pos < self.s.len() {
            let b = self.peek();
            if b == 0 || is_special(b) || is_whitespace(b) {
                break;
            }
            self.pos += 1;
        }
        // Every byte the loop stops at is ASCII, so `start..pos` is on char boundaries.
        let literal = self.s.get(start..self.pos).unwrap_or_default();
        (keyword(literal).unwrap_or(Token::Identifier), literal)
    }

    /// The longest operator made of special symbols starting here.
    fn scan_special(&mut self) -> (Token, &'a str) {
        let start = self.pos;
        let mut last: Option<(Token, usize)> = None;
        while is_special(self.peek()) {
            let candidate = self.s.get(start..self.pos + 1).unwrap_or_default();
            match keyword(candidate) {
                Some(token) => {
                    self.pos += 1;
                    last = Some((token, self.pos));
                }
                None if last.is_some() => break,
                None => self.pos += 1,
            }
        }
        match last {
            Some((token, end)) => {
                self.pos = end;
                (token, self.s.get(start..end).unwrap_or_default())
            }
            None => (Token::Error, ""),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

struct Parser<'a> {
    items: Vec<(Token, &'a str)>,
    position: usize,
}

impl<'a> Parser<'a> {
    fn new(selector: &'a str) -> Parser<'a> {
        let mut lexer = Lexer {
            s: selector,
            pos: 0,
        };
        let mut items = Vec::new();
        loop {
            let item = lexer.lex();
            items.push(item);
            if item.0 == Token::EndOfString {
                break;
            }
        }
        Parser { items, position: 0 }
    }

    fn item(&self, index: usize, context: Context) -> (Token, &'a str) {
        let (token, literal) = self
            .items
            .get(index)
            .copied()
            .unwrap_or((Token::EndOfString, ""));
        match (context, token) {
            (Context::Values, Token::In | Token::NotIn) => (Token::Identifier, literal),
            _ => (token, literal),
        }
    }

    fn lookahead(&self, context: Context) -> (Token, &'a str) {
        self.item(self.position, context)
    }

    fn consume(&mut self, context: Context) -> (Token, &'a str) {
        let item = self.item(self.position, context);
        self.position += 1;
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            let (token, literal) = self.lookahead(Context::Values);
            match token {
                Token::Identifier | Token::DoesNotExist => {
                    let requirement = self
                        .parse_requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(requirement);
                    let (token, literal) = self.consume(Context::Values);
                    match token {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (next, next_literal) = self.lookahead(Context::Values);
                            if next != Token::Identifier && next != Token::DoesNotExist {
                                return Err(format!(
                                    "found '{next_literal}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => {
                            return Err(format!(
                                "found '{literal}', expected: ',' or 'end of string'"
                            ))
                        }
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(format!(
                        "found '{literal}', expected: !, identifier, or 'end of string'"
                    ))
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, operator) = self.parse_key_and_infer_operator()?;
        if let Some(op @ (Operator::Exists | Operator::DoesNotExist)) = operator {
            return Requirement::new(key, op, Vec::new());
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::new(key, operator, values.into_iter().collect())
    }

    /// `[!] KEY`; with no operator after the key, `Exists` (or `DoesNotExist` after `!`).
    fn parse_key_and_infer_operator(&mut self) -> Result<(&'a str, Option<Operator>), String> {
        let mut operator = None;
        let (mut token, mut literal) = self.consume(Context::Values);
        if token == Token::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            (token, literal) = self.consume(Context::Values);
        }
        if token != Token::Identifier {
            return Err(format!("found '{literal}', expected: identifier"));
        }
        validate_label_key(literal, "<nil>")?;
        let (next, _) = self.lookahead(Context::Values);
        if (next == Token::EndOfString || next == Token::Comma) && operator.is_none() {
            operator = Some(Operator::Exists);
        }
        Ok((literal, operator))
    }

    fn parse_operator(&mut self) -> Result<Operator, String> {
        let (token, literal) = self.consume(Context::KeyAndOperator);
        Ok(match token {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => return Err(format!("found '{literal}', expected: {BINARY_OPERATORS}")),
        })
    }

    /// `( v1, v2 )`; `()` is the set holding the empty string.
    fn parse_values(&mut self) -> Result<BTreeSet<String>, String> {
        let (token, literal) = self.consume(Context::Values);
        if token != Token::OpenPar {
            return Err(format!("found '{literal}' expected: '('"));
        }
        let (token, literal) = self.lookahead(Context::Values);
        match token {
            Token::Identifier | Token::Comma => {
                let set = self.parse_identifiers_list()?;
                let (closing, _) = self.consume(Context::Values);
                if closing != Token::ClosedPar {
                    return Err(format!("found '{literal}', expected: ')'"));
                }
                Ok(set)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(BTreeSet::from([String::new()]))
            }
            _ => Err(format!(
                "found '{literal}', expected: ',', ')' or identifier"
            )),
        }
    }

    /// Comma-separated, possibly empty identifiers: `a,,b` and `,a` hold the empty string.
    fn parse_identifiers_list(&mut self) -> Result<BTreeSet<String>, String> {
        let mut set = BTreeSet::new();
        loop {
            let (token, literal) = self.consume(Context::Values);
            match token {
                Token::Identifier => {
                    set.insert(literal.to_string());
                    let (next, next_literal) = self.lookahead(Context::Values);
                    match next {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(set),
                        _ => return Err(format!("found '{next_literal}', expected: ',' or ')'")),
                    }
                }
                Token::Comma => {
                    if set.is_empty() {
                        set.insert(String::new());
                    }
                    let (next, _) = self.lookahead(Context::Values);
                    if next == Token::ClosedPar {
                        set.insert(String::new());
                        return Ok(set);
                    }
                    if next == Token::Comma {
                        self.consume(Context::Values);
                        set.insert(String::new());
                    }
                }
                _ => return Err(format!("found '{literal}', expected: ',', or identifier")),
            }
        }
    }

    /// The value of `=`, `==`, `!=`, `>`, `<`; nothing before `,` or the end is `""`.
    fn parse_exact_value(&mut self) -> Result<BTreeSet<String>, String> {
        let (token, _) = self.lookahead(Context::Values);
        if token == Token::EndOfString || token == Token::Comma {
            return Ok(BTreeSet::from([String::new()]));
        }
        let (token, literal) = self.consume(Context::Values);
        if token == Token::Identifier {
            Ok(BTreeSet::from([literal.to_string()]))
        } else {
            Err(format!("found '{literal}', expected: identifier"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    type Pairs<'a> = &'a [(&'a str, &'a str)];

    fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn req(key: &str, op: Operator, values: &[&str]) -> Requirement {
        Requirement::new(key, op, values.iter().map(|v| v.to_string()).collect())
            .unwrap_or_else(|e| panic!("{key} {op}: {e}"))
    }

    fn lex_all(s: &str) -> Vec<Token> {
        let mut lexer = Lexer { s, pos: 0 };
        let mut out = Vec::new();
        loop {
            let (token, _) = lexer.lex();
            if token == Token::EndOfString {
                return out;
            }
            out.push(token);
        }
    }

    #[test]
    fn lexer_single_tokens() {
        for (s, t) in [
            ("", Token::EndOfString),
            (",", Token::Comma),
            ("notin", Token::NotIn),
            ("in", Token::In),
            ("=", Token::Equals),
            ("==", Token::DoubleEquals),
            (">", Token::GreaterThan),
            ("<", Token::LessThan),
            ("!", Token::DoesNotExist),
            ("!=", Token::NotEquals),
            ("(", Token::OpenPar),
            (")", Token::ClosedPar),
            ("~", Token::Identifier),
            ("||", Token::Identifier),
        ] {
            let mut lexer = Lexer { s, pos: 0 };
            let (token, literal) = lexer.lex();
            assert_eq!(token, t, "{s}");
            assert_eq!(literal, s);
        }
    }

    #[test]
    fn lexer_sequences() {
        use Token::*;
        for (s, tokens) in [
            (
                "key in ( value )",
                vec![Identifier, In, OpenPar, Identifier, ClosedPar],
            ),
            (
                "key notin ( value )",
                vec![Identifier, NotIn, OpenPar, Identifier, ClosedPar],
            ),
            (
                "key in ( value1, value2 )",
                vec![
                    Identifier, In, OpenPar, Identifier, Comma, Identifier, ClosedPar,
                ],
            ),
            ("key", vec![Identifier]),
            ("!key", vec![DoesNotExist, Identifier]),
            ("()", vec![OpenPar, ClosedPar]),
            (
                "x in (),y",
                vec![Identifier, In, OpenPar, ClosedPar, Comma, Identifier],
            ),
            (
                "== != (), = notin",
                vec![
                    DoubleEquals,
                    NotEquals,
                    OpenPar,
                    ClosedPar,
                    Comma,
                    Equals,
                    NotIn,
                ],
            ),
            ("key>2", vec![Identifier, GreaterThan, Identifier]),
            ("key<1", vec![Identifier, LessThan, Identifier]),
            ("===", vec![DoubleEquals, Equals]),
            ("a\0b", vec![Identifier]),
        ] {
            assert_eq!(lex_all(s), tokens, "{s}");
        }
    }

    #[test]
    fn parse_good_and_restring() {
        for s in [
            "x=a,y=b,z=c",
            "",
            "x!=a,y=b",
            "x=",
            "x= ",
            "x=,z= ",
            "x= ,z= ",
            "!x",
            "x>1",
            "x>1,z<5",
        ] {
            let selector = Selector::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(selector.to_string(), s.replace(' ', ""), "{s}");
        }
    }

    #[test]
    fn parse_bad() {
        for s in [
            "x=a||y=b",
            "x==a==b",
            "!x=a",
            "x<a",
            "x,y,",
            ",x",
            "x nott in (y)",
            "a in (xyz),",
            "a in (xyz)b notin ()",
            "a in (xyz abc)",
            "a notin(",
            "a (",
            "(",
            "x>",
            "x in",
            "x in (a",
            "x=a b",
            "=a",
            "x=(",
            "x>-1",
        ] {
            assert!(Selector::parse(s).is_err(), "{s:?} parsed");
        }
    }

    #[test]
    fn deterministic_parse() {
        let a = Selector::parse("x=a,a=x").map(|s| s.to_string());
        let b = Selector::parse("a=x,x=a").map(|s| s.to_string());
        assert_eq!(a, b);
        assert_eq!(a.as_deref(), Ok("a=x,x=a"));
    }

    #[test]
    fn set_selector_parser() {
        use Operator::*;
        let cases: Vec<(&str, Vec<Requirement>)> = vec![
            ("", vec![]),
            ("\rx", vec![req("x", Exists, &[])]),
            (
                "this-is-a-dns.domain.com/key-with-dash",
                vec![req("this-is-a-dns.domain.com/key-with-dash", Exists, &[])],
            ),
            (
                "this-is-another-dns.domain.com/key-with-dash in (so,what)",
                vec![req(
                    "this-is-another-dns.domain.com/key-with-dash",
                    In,
                    &["so", "what"],
                )],
            ),
            (
                "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
                vec![req(
                    "0.1.2.domain/99",
                    NotIn,
                    &["10.10.100.1", "tick.tack.clock"],
                )],
            ),
            ("foo  in\t (abc)", vec![req("foo", In, &["abc"])]),
            ("x notin\n (abc)", vec![req("x", NotIn, &["abc"])]),
            (
                "x  notin\t\t\t(abc,def)",
                vec![req("x", NotIn, &["abc", "def"])],
            ),
            ("x in (abc,def)", vec![req("x", In, &["abc", "def"])]),
            ("x in (abc,)", vec![req("x", In, &["", "abc"])]),
            ("x in ()", vec![req("x", In, &[""])]),
            (
                "x notin (abc,,def),bar,z in (),w",
                vec![
                    req("bar", Exists, &[]),
                    req("w", Exists, &[]),
                    req("x", NotIn, &["", "abc", "def"]),
                    req("z", In, &[""]),
                ],
            ),
            (
                "x,y in (a)",
                vec![req("x", Exists, &[]), req("y", In, &["a"])],
            ),
            ("x=a", vec![req("x", Equals, &["a"])]),
            ("x>1", vec![req("x", GreaterThan, &["1"])]),
            ("x<7", vec![req("x", LessThan, &["7"])]),
            (
                "x=a,y!=b",
                vec![req("x", Equals, &["a"]), req("y", NotEquals, &["b"])],
            ),
            (
                "x=a,y!=b,z in (h,i,j)",
                vec![
                    req("x", Equals, &["a"]),
                    req("y", NotEquals, &["b"]),
                    req("z", In, &["h", "i", "j"]),
                ],
            ),
            ("x notin ( )", vec![req("x", NotIn, &[""])]),
            ("x notin (, a)", vec![req("x", NotIn, &["", "a"])]),
            ("a ", vec![req("a", Exists, &[])]),
            (
                "a in (x,y,notin, z,in)",
                vec![req("a", In, &["in", "notin", "x", "y", "z"])],
            ),
            ("x==a", vec![req("x", DoubleEquals, &["a"])]),
            ("in=notin", vec![req("in", Equals, &["notin"])]),
            ("x in (b,a,b)", vec![req("x", In, &["a", "b"])]),
        ];
        for (input, expected) in cases {
            let selector = Selector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(selector.requirements(), expected.as_slice(), "{input:?}");
        }
    }

    #[test]
    fn parse_error_messages() {
        let name_part = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
        for (input, expected) in [
            (
                "app:monolith",
                format!("unable to parse requirement: <nil>: Invalid value: \"app:monolith\": {name_part}"),
            ),
            (
                "*bar",
                format!("unable to parse requirement: <nil>: Invalid value: \"*bar\": {name_part}"),
            ),
            (
                "x=a b",
                "found 'b', expected: ',' or 'end of string'".to_string(),
            ),
            (
                "x,",
                "found '', expected: identifier after ','".to_string(),
            ),
            (
                "=a",
                "found '=', expected: !, identifier, or 'end of string'".to_string(),
            ),
            (
                "x nott in (y)",
                "unable to parse requirement: found 'nott', expected: in, notin, =, ==, !=, gt, lt".to_string(),
            ),
            ("a notin(", "unable to parse requirement: found '', expected: ',', ')' or identifier".to_string()),
            ("a in x", "unable to parse requirement: found 'x' expected: '('".to_string()),
            ("a in (xyz abc)", "unable to parse requirement: found 'abc', expected: ',' or ')'".to_string()),
            ("!", "unable to parse requirement: found '', expected: identifier".to_string()),
            ("x=(", "unable to parse requirement: found '(', expected: identifier".to_string()),
            (
                "x<a",
                "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer".to_string(),
            ),
            (
                "x=a$",
                "unable to parse requirement: values[0][x]: Invalid value: \"a$\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".to_string(),
            ),
            (
                "x>-1",
                "unable to parse requirement: values[0][x]: Invalid value: \"-1\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".to_string(),
            ),
        ] {
            assert_eq!(Selector::parse(input), Err(expected), "{input:?}");
        }
        // several problems with one requirement are aggregated in brackets
        let err = Selector::parse("x>a$").unwrap_err();
        assert!(err.starts_with("unable to parse requirement: [values[0]: Invalid value: \"a$\": for 'Gt', 'Lt' operators, the value must be an integer, values[0][x]: Invalid value: \"a$\": a valid label"), "{err}");
        assert!(err.ends_with("')]"), "{err}");
    }

    #[test]
    fn selector_matches() {
        let cases: &[(&str, Pairs, bool)] = &[
            ("", &[("x", "y")], true),
            ("x=y", &[("x", "y")], true),
            ("x=y,z=w", &[("x", "y"), ("z", "w")], true),
            ("x!=y,z!=w", &[("x", "z"), ("z", "a")], true),
            ("notin=in", &[("notin", "in")], true),
            ("x", &[("x", "z")], true),
            ("!x", &[("y", "z")], true),
            ("x>1", &[("x", "2")], true),
            ("x<1", &[("x", "0")], true),
            ("x=z", &[], false),
            ("x=y", &[("x", "z")], false),
            ("x=y,z=w", &[("x", "w"), ("z", "w")], false),
            ("x!=y,z!=w", &[("x", "z"), ("z", "w")], false),
            ("x", &[("y", "z")], false),
            ("!x", &[("x", "z")], false),
            ("x>1", &[("x", "0")], false),
            ("x<1", &[("x", "2")], false),
            ("x>1", &[], false),
            ("x>1", &[("x", "v2")], false),
            ("x!=y", &[], true),
            ("x notin (a)", &[], true),
            ("x in (a)", &[], false),
            ("x in (a,b)", &[("x", "b")], true),
            ("x notin (a,b)", &[("x", "b")], false),
            ("x in ()", &[("x", "")], true),
            ("x=", &[("x", "")], true),
            ("x=", &[], false),
            ("foo=bar", &[("foo", "bar"), ("baz", "blah")], true),
            ("baz=blah", &[("foo", "bar"), ("baz", "blah")], true),
            ("foo=bar,baz=blah", &[("foo", "bar"), ("baz", "blah")], true),
            ("foo=blah", &[("foo", "bar"), ("baz", "blah")], false),
            ("baz=bar", &[("foo", "bar"), ("baz", "blah")], false),
            (
                "foo=bar,foobar=bar,baz=blah",
                &[("foo", "bar"), ("baz", "blah")],
                false,
            ),
        ];
        for (selector, labels, want) in cases {
            let parsed = Selector::parse(selector).unwrap_or_else(|e| panic!("{selector}: {e}"));
            assert_eq!(
                parsed.matches(&set(labels)),
                *want,
                "{selector} vs {labels:?}"
            );
            // every label source agrees
            let json = Value::Object(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), json!(v)))
                    .collect(),
            );
            assert_eq!(parsed.matches(&json), *want, "json {selector}");
            assert_eq!(parsed.matches(*labels), *want, "slice {selector}");
        }
    }

    #[test]
    fn requirement_constructor() {
        use Operator::*;
        let cases: Vec<(String, Operator, Vec<&str>, bool)> = vec![
            ("x".into(), In, vec![], false),
            ("x".into(), NotIn, vec![], false),
            ("x".into(), In, vec!["foo"], true),
            ("x".into(), NotIn, vec!["foo"], true),
            ("x".into(), Exists, vec![], true),
            ("x".into(), DoesNotExist, vec![], true),
            ("1foo".into(), In, vec!["bar"], true),
            ("1234".into(), In, vec!["bar"], true),
            ("y".into(), GreaterThan, vec!["1"], true),
            ("z".into(), LessThan, vec!["6"], true),
            ("foo".into(), GreaterThan, vec!["bar"], false),
            ("barz".into(), LessThan, vec!["blah"], false),
            ("x".into(), Equals, vec!["a", "b"], false),
            ("x".into(), Exists, vec!["a"], false),
            ("x".into(), GreaterThan, vec!["1", "2"], false),
            ("a".repeat(254), Exists, vec![], false),
        ];
        for (key, op, values, ok) in cases {
            let result = Requirement::new(
                key.clone(),
                op,
                values.iter().map(|v| v.to_string()).collect(),
            );
            assert_eq!(result.is_ok(), ok, "{key} {op} {values:?}: {result:?}");
        }
        assert_eq!(
            Requirement::new("x", Operator::In, vec![]).unwrap_err(),
            "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty"
        );
        assert_eq!(
            Requirement::new("x", Operator::Equals, vec!["a".into(), "b".into()]).unwrap_err(),
            "values: Invalid value: [\"a\",\"b\"]: exact-match compatibility requires one single value"
        );
        assert!(Requirement::new("a b", Operator::Exists, vec![])
            .unwrap_err()
            .starts_with("key: Invalid value: \"a b\": name part must consist"));
    }

    #[test]
    fn to_string_canonical() {
        use Operator::*;
        let cases: Vec<(Vec<Requirement>, &str)> = vec![
            (
                vec![
                    req("x", In, &["abc", "def"]),
                    req("y", NotIn, &["jkl"]),
                    req("z", Exists, &[]),
                ],
                "x in (abc,def),y notin (jkl),z",
            ),
            (
                vec![
                    req("x", NotIn, &["def", "abc"]),
                    req("y", NotEquals, &["jkl"]),
                    req("z", DoesNotExist, &[]),
                ],
                "x notin (abc,def),y!=jkl,!z",
            ),
            (
                vec![
                    req("x", NotIn, &["abc"]),
                    req("y", In, &["jkl", "mno"]),
                    req("z", NotIn, &[""]),
                ],
                "x notin (abc),y in (jkl,mno),z notin ()",
            ),
            (
                vec![
                    req("x", Equals, &["abc"]),
                    req("y", DoubleEquals, &["jkl"]),
                    req("z", NotEquals, &["a"]),
                    req("z", Exists, &[]),
                ],
                "x=abc,y==jkl,z!=a,z",
            ),
            (
                vec![
                    req("x", GreaterThan, &["2"]),
                    req("y", LessThan, &["8"]),
                    req("z", Exists, &[]),
                ],
                "x>2,y<8,z",
            ),
        ];
        for (requirements, want) in cases {
            assert_eq!(
                Selector::everything()
                    .with_requirements(requirements)
                    .to_string(),
                want
            );
        }
        let from_set = Selector::from_set([("tier", "web"), ("app", "nginx")]);
        assert_eq!(from_set.to_string(), "app=nginx,tier=web");
        assert!(from_set.matches(&set(&[("app", "nginx"), ("tier", "web"), ("x", "y")])));
        assert_eq!(
            Selector::parse("x in (b,a)")
                .map(|s| s.to_string())
                .as_deref(),
            Ok("x in (a,b)")
        );
    }

    #[test]
    fn everything_and_nothing() {
        let everything = Selector::everything();
        assert!(everything.is_empty());
        assert!(everything.matches(&set(&[("x", "y")])));
        assert!(Selector::parse("").is_ok_and(|s| s.is_empty()));
        assert!(Selector::parse("  \t").is_ok_and(|s| s.is_empty()));
        let nothing = Selector::nothing();
        assert!(!nothing.is_empty());
        assert!(nothing.is_nothing());
        assert!(!nothing.matches(&set(&[])));
        assert_eq!(nothing.to_string(), "");
        assert!(!Selector::parse("x").is_ok_and(|s| s.is_empty()));
    }

    #[test]
    fn label_selector_json() {
        let selector = Selector::from_label_selector_json(&json!({
            "matchLabels": {"app": "nginx"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["web", "api"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "env", "operator": "NotIn", "values": ["dev"]},
                {"key": "zone", "operator": "Exists"},
            ]
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            selector.to_string(),
            "app=nginx,!canary,env notin (dev),tier in (api,web),zone"
        );
        assert!(selector.matches(&set(&[("app", "nginx"), ("tier", "web"), ("zone", "a")])));
        assert!(!selector.matches(&set(&[
            ("app", "nginx"),
            ("tier", "web"),
            ("zone", "a"),
            ("canary", "1")
        ])));
        assert!(!selector.matches(&set(&[("app", "nginx"), ("tier", "db"), ("zone", "a")])));

        let simple = Selector::from_label_selector_json(&json!({"matchLabels": {"app": "nginx"}}));
        assert_eq!(simple.map(|s| s.to_string()).as_deref(), Ok("app=nginx"));

        let everything = Selector::from_label_selector_json(&json!({}));
        assert!(everything.is_ok_and(|s| s.is_empty()));
        let everything =
            Selector::from_label_selector_json(&json!({"matchLabels": {}, "matchExpressions": []}));
        assert!(everything.is_ok_and(|s| s.is_empty()));
        let nothing = Selector::from_label_selector_json(&Value::Null);
        assert!(nothing.is_ok_and(|s| s.is_nothing()));

        assert_eq!(
            Selector::from_label_selector_json(
                &json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]})
            ),
            Err("\"Gt\" is not a valid label selector operator".to_string())
        );
        assert_eq!(
            Selector::from_label_selector_json(
                &json!({"matchExpressions": [{"key": "a", "operator": "In"}]})
            ),
            Err(
                "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty"
                    .to_string()
            )
        );
        assert!(
            Selector::from_label_selector_json(&json!({"matchLabels": {"a b": "c"}}))
                .unwrap_err()
                .starts_with("key: Invalid value: \"a b\"")
        );
        assert!(Selector::from_label_selector_json(&json!("app=x")).is_err());
        assert!(Selector::from_label_selector_json(&json!({"matchLabels": {"a": 1}})).is_err());
    }

    #[test]
    fn exact_match() {
        let s = Selector::parse("a=1,b in (2),c in (3,4),d!=5,e==6").unwrap_or_default();
        assert_eq!(s.requires_exact_match("a"), Some("1"));
        assert_eq!(s.requires_exact_match("b"), Some("2"));
        assert_eq!(s.requires_exact_match("c"), None);
        assert_eq!(s.requires_exact_match("d"), None);
        assert_eq!(s.requires_exact_match("e"), Some("6"));
        assert_eq!(s.requires_exact_match("f"), None);
    }

    #[test]
    fn closure_and_option_sources() {
        let s = Selector::parse("app=web").unwrap_or_default();
        assert!(s.matches_with(|k| if k == "app" { Some("web") } else { None }));
        assert!(!s.matches_with(|_| None));
        let none: Option<&BTreeMap<String, String>> = None;
        assert!(!s.matches(&none));
        assert!(Selector::parse("!app").unwrap_or_default().matches(&none));
        let labels = set(&[("app", "web")]);
        assert!(s.matches(&Some(&labels)));
    }
}
