//! Sets of field paths and their `FieldsV1` encoding (structured-merge-diff's
//! `fieldpath.Set`, `serialize.go`).

use crate::path::{go_json_string, Path, PathElement, PathElementError};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// A set of field paths, stored as a tree: at each level the elements that are members
/// themselves and the elements with descendants. A path can be both a member and a
/// prefix of other members (`".": {}` in `FieldsV1`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    members: BTreeSet<PathElement>,
    /// Never holds an empty set.
    children: BTreeMap<PathElement, FieldSet>,
}

/// A `FieldsV1` document that does not decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FieldsV1Error(pub String);

impl FieldSet {
    pub fn new() -> FieldSet {
        FieldSet::default()
    }

    /// A set of the given paths.
    pub fn from_paths<'a>(paths: impl IntoIterator<Item = &'a Path>) -> FieldSet {
        let mut s = FieldSet::new();
        for p in paths {
            s.insert(&p.0);
        }
        s
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    /// The number of paths in the set.
    pub fn len(&self) -> usize {
        self.members.len() + self.children.values().map(FieldSet::len).sum::<usize>()
    }

    /// Adds a path (the empty path, the object itself, is never a member).
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [pe] => {
                self.members.insert(pe.clone());
            }
            [pe, rest @ ..] => self.children.entry(pe.clone()).or_default().insert(rest),
        }
    }

    /// Whether `path` is a member.
    pub fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [pe] => self.members.contains(pe),
            [pe, rest @ ..] => self.children.get(pe).is_some_and(|c| c.has(rest)),
        }
    }

    /// The members of this level (paths of length one).
    pub fn members(&self) -> impl Iterator<Item = &PathElement> {
        self.members.iter()
    }

    /// The subset below `pe`, with `pe` removed from the front of each path.
    pub fn with_prefix(&self, pe: &PathElement) -> Option<&FieldSet> {
        self.children.get(pe)
    }

    pub(crate) fn children(&self) -> impl Iterator<Item = (&PathElement, &FieldSet)> {
        self.children.iter()
    }

    pub(crate) fn has_member(&self, pe: &PathElement) -> bool {
        self.members.contains(pe)
    }

    pub(crate) fn insert_member(&mut self, pe: PathElement) {
        self.members.insert(pe);
    }

    pub(crate) fn set_child(&mut self, pe: PathElement, child: FieldSet) {
        if child.is_empty() {
            self.children.remove(&pe);
        } else {
            self.children.insert(pe, child);
        }
    }

    /// Paths in either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, c) in &other.children {
            let merged = match out.children.get(pe) {
                Some(mine) => mine.union(c),
                None => c.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out
    }

    /// Paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        out.members = self.members.intersection(&other.members).cloned().collect();
        for (pe, c) in &self.children {
            if let Some(oc) = other.children.get(pe) {
                out.set_child(pe.clone(), c.intersection(oc));
            }
        }
        out
    }

    /// Paths in `self` that are not in `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        out.members = self.members.difference(&other.members).cloned().collect();
        for (pe, c) in &self.children {
            match other.children.get(pe) {
                Some(oc) => out.set_child(pe.clone(), c.difference(oc)),
                None => {
                    out.children.insert(pe.clone(), c.clone());
                }
            }
        }
        out
    }

    /// Paths in `self` that are neither in `other` nor below a member of `other`.
    pub fn recursive_difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        out.members = self.members.difference(&other.members).cloned().collect();
        for (pe, c) in &self.children {
            if other.members.contains(pe) {
                continue;
            }
            match other.children.get(pe) {
                Some(oc) => out.set_child(pe.clone(), c.recursive_difference(oc)),
                None => {
                    out.children.insert(pe.clone(), c.clone());
                }
            }
        }
        out
    }

    /// Only the members that are not prefixes of other members.
    pub fn leaves(&self) -> FieldSet {
        let mut out = FieldSet::new();
        out.members = self
            .members
            .iter()
            .filter(|m| !self.children.contains_key(*m))
            .cloned()
            .collect();
        for (pe, c) in &self.children {
            out.set_child(pe.clone(), c.leaves());
        }
        out
    }

    /// Every path, in upstream's iteration order: at each level the members, then the
    /// descendants of each child in order.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        let mut prefix = Vec::new();
        self.collect_paths(&mut prefix, &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Path>) {
        for m in &self.members {
            let mut p = prefix.clone();
            p.push(m.clone());
            out.push(Path(p));
        }
        for (pe, c) in &self.children {
            prefix.push(pe.clone());
            c.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// The `FieldsV1` JSON object of the set.
    pub fn to_fields_v1(&self) -> Value {
        Value::Object(self.emit(false))
    }

    fn emit(&self, include_self: bool) -> Map<String, Value> {
        let mut out = Map::new();
        if include_self && !self.is_empty() {
            out.insert(".".into(), Value::Object(Map::new()));
        }
        let mut members = self.members.iter().peekable();
        let mut children = self.children.iter().peekable();
        loop {
            let take_member = match (members.peek(), children.peek()) {
                (None, None) => break,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(m), Some((c, _))) => m < c,
            };
            if take_member {
                let Some(m) = members.next() else { break };
                out.insert(m.to_fields_v1_key(), Value::Object(Map::new()));
            } else {
                let Some((pe, set)) = children.next() else {
                    break;
                };
                let is_member = members.peek().is_some_and(|m| *m == pe);
                if is_member {
                    members.next();
                }
                out.insert(pe.to_fields_v1_key(), Value::Object(set.emit(is_member)));
            }
        }
        out
    }

    /// The `FieldsV1` bytes exactly as upstream writes them (compact, Go string escaping).
    pub fn to_fields_v1_string(&self) -> String {
        let mut out = String::new();
        write_compact(&self.to_fields_v1(), &mut out);
        out
    }

    /// Decodes a `FieldsV1` object. Keys of unknown kinds are dropped, as upstream does.
    pub fn from_fields_v1(v: &Value) -> Result<FieldSet, FieldsV1Error> {
        let (found, _) = read_v1(v)?;
        Ok(found.unwrap_or_default())
    }

    /// Decodes `FieldsV1` JSON text.
    pub fn from_fields_v1_str(s: &str) -> Result<FieldSet, FieldsV1Error> {
        let v: Value = serde_json::from_str(s).map_err(|e| FieldsV1Error(e.to_string()))?;
        FieldSet::from_fields_v1(&v)
    }
}

/// Returns the children found below `v` and whether `v` marks its own path as a member.
fn read_v1(v: &Value) -> Result<(Option<FieldSet>, bool), FieldsV1Error> {
    let obj = v
        .as_object()
        .ok_or_else(|| FieldsV1Error(format!("expected an object in FieldsV1, got {v}")))?;
    let mut children: Option<FieldSet> = None;
    let mut is_member = false;
    for (key, val) in obj {
        if key == "." {
            is_member = true;
            continue;
        }
        let pe = match PathElement::from_fields_v1_key(key) {
            Ok(pe) => pe,
            Err(PathElementError::UnknownType) => continue,
            Err(PathElementError::Invalid(e)) => {
                return Err(FieldsV1Error(format!("parsing key as path element: {e}")))
            }
        };
        let (grandchildren, child_is_member) = read_v1(val)?;
        let set = children.get_or_insert_with(FieldSet::new);
        if child_is_member {
            set.members.insert(pe.clone());
        }
        if let Some(g) = grandchildren {
            set.children.insert(pe, g);
        }
    }
    if children.is_none() {
        is_member = true;
    }
    Ok((children, is_member))
}

fn write_compact(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            out.push('{');
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json_string(k, out);
                out.push(':');
                write_compact(v, out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Golden data from structured-merge-diff's `fieldpath/serialize_test.go`.
    const GOLDEN: &[&str] = &[
        r#"{"f:aaa":{},"f:aab":{},"f:aac":{},"f:aad":{},"f:aae":{},"f:aaf":{},"k:{\"name\":\"first\"}":{},"k:{\"name\":\"second\"}":{},"k:{\"port\":443,\"protocol\":\"tcp\"}":{},"k:{\"port\":443,\"protocol\":\"udp\"}":{},"v:1":{},"v:2":{},"v:3":{},"v:\"aa\"":{},"v:\"ab\"":{},"v:true":{},"i:1":{},"i:2":{},"i:3":{},"i:4":{}}"#,
        r#"{"f:aaa":{"k:{\"name\":\"second\"}":{"v:3":{"f:aab":{}}},"v:3":{},"v:true":{}},"f:aab":{"f:aaa":{},"f:aaf":{"k:{\"port\":443,\"protocol\":\"udp\"}":{"k:{\"port\":443,\"protocol\":\"tcp\"}":{}}},"k:{\"name\":\"first\"}":{}},"f:aac":{"f:aaa":{"v:1":{}},"f:aac":{},"v:3":{"k:{\"name\":\"second\"}":{}}},"f:aad":{"f:aac":{"v:1":{}},"f:aaf":{"k:{\"name\":\"first\"}":{"k:{\"name\":\"first\"}":{}}},"i:1":{"i:1":{},"i:3":{"v:true":{}}}},"f:aae":{"f:aae":{},"k:{\"port\":443,\"protocol\":\"tcp\"}":{"k:{\"port\":443,\"protocol\":\"udp\"}":{}},"i:4":{"f:aaf":{}}},"f:aaf":{"i:1":{"f:aac":{}},"i:2":{},"i:3":{}},"k:{\"name\":\"first\"}":{"f:aad":{"f:aaf":{}}},"k:{\"port\":443,\"protocol\":\"tcp\"}":{"f:aaa":{"f:aad":{}}},"k:{\"port\":443,\"protocol\":\"udp\"}":{"f:aac":{},"k:{\"name\":\"first\"}":{"i:3":{}},"k:{\"port\":443,\"protocol\":\"udp\"}":{"i:4":{}}},"v:1":{"f:aac":{"i:4":{}},"f:aaf":{},"k:{\"port\":443,\"protocol\":\"tcp\"}":{}},"v:2":{"f:aad":{"f:aaf":{}},"i:1":{}},"v:3":{"f:aaa":{},"k:{\"name\":\"first\"}":{},"i:2":{}},"v:\"aa\"":{"f:aab":{"f:aaf":{}},"f:aae":{},"k:{\"name\":\"first\"}":{"f:aad":{}},"i:2":{}},"v:\"ab\"":{"f:aaf":{"i:4":{}},"k:{\"port\":443,\"protocol\":\"tcp\"}":{},"k:{\"port\":443,\"protocol\":\"udp\"}":{},"v:1":{"k:{\"port\":443,\"protocol\":\"udp\"}":{}},"i:1":{"f:aae":{"i:4":{}}}},"v:true":{"k:{\"name\":\"second\"}":{"f:aaa":{}},"i:2":{"k:{\"port\":443,\"protocol\":\"tcp\"}":{}}},"i:1":{"i:3":{"f:aaf":{}}},"i:2":{"f:aae":{},"k:{\"port\":443,\"protocol\":\"tcp\"}":{"v:1":{}}},"i:3":{"f:aab":{"v:true":{"v:\"aa\"":{}}},"f:aaf":{},"i:1":{}},"i:4":{"v:\"aa\"":{"f:aab":{"k:{\"name\":\"second\"}":{}}}}}"#,
    ];

    #[test]
    fn upstream_golden_round_trip() {
        for g in GOLDEN {
            let s = FieldSet::from_fields_v1_str(g).unwrap();
            assert_eq!(&s.to_fields_v1_string(), g);
        }
    }

    #[test]
    fn unknown_kinds_are_dropped() {
        let s = FieldSet::from_fields_v1_str(r#"{"f:aaa":{},"r:aab":{}}"#).unwrap();
        assert_eq!(s.to_fields_v1_string(), r#"{"f:aaa":{}}"#);
        assert!(FieldSet::from_fields_v1_str(r#"{"f":{}}"#).is_err());
        assert!(FieldSet::from_fields_v1(&json!({})).unwrap().is_empty());
    }

    fn p(names: &[&str]) -> Vec<PathElement> {
        names.iter().map(|n| PathElement::field(*n)).collect()
    }

    #[test]
    fn dot_and_set_algebra() {
        let mut a = FieldSet::new();
        a.insert(&p(&["metadata", "labels"]));
        a.insert(&p(&["metadata", "labels", "app"]));
        a.insert(&p(&["spec", "replicas"]));
        assert_eq!(
            a.to_fields_v1_string(),
            r#"{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:replicas":{}}}"#
        );
        assert_eq!(a.len(), 3);
        let leaves = a.leaves();
        assert!(!leaves.has(&p(&["metadata", "labels"])));
        assert!(leaves.has(&p(&["metadata", "labels", "app"])));

        let mut b = FieldSet::new();
        b.insert(&p(&["spec", "replicas"]));
        b.insert(&p(&["spec", "paused"]));
        assert_eq!(
            a.intersection(&b).paths(),
            vec![Path::fields(["spec", "replicas"])]
        );
        let d = a.difference(&b);
        assert!(!d.has(&p(&["spec", "replicas"])));
        assert_eq!(d.len(), 2);
        let u = a.union(&b);
        assert_eq!(u.len(), 4);

        let mut meta = FieldSet::new();
        meta.insert(&p(&["metadata"]));
        assert_eq!(
            a.recursive_difference(&meta).paths(),
            vec![Path::fields(["spec", "replicas"])]
        );
        // plain difference removes only the exact member
        assert_eq!(a.difference(&meta), a);
    }

    #[test]
    fn iteration_order_is_members_first() {
        let mut s = FieldSet::new();
        s.insert(&p(&["spec", "a", "b"]));
        s.insert(&p(&["spec", "z"]));
        s.insert(&p(&["metadata", "x"]));
        let got: Vec<String> = s.paths().iter().map(ToString::to_string).collect();
        assert_eq!(got, [".metadata.x", ".spec.z", ".spec.a.b"]);
    }
}
