//! Operations on typed JSON values: the field set a value forms, comparison, merge and
//! removal of items (structured-merge-diff's `typed` package: `tofieldset.go`,
//! `compare.go`, `merge.go`, `remove.go`, `helpers.go`).

use crate::path::{values_equal, Path, PathElement};
use crate::set::FieldSet;
use crate::types::{msg_info, ListRel, Ty};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::OnceLock;

fn empty_object() -> &'static Value {
    static EMPTY: OnceLock<Value> = OnceLock::new();
    EMPTY.get_or_init(|| Value::Object(Map::new()))
}

/// Errors found in a value (only reported for values checked strictly: applied configs).
#[derive(Debug, Default)]
pub(crate) struct Errors(pub Vec<String>);

impl Errors {
    fn push(&mut self, path: &[PathElement], msg: impl std::fmt::Display) {
        self.0.push(format!("{}: {msg}", Path(path.to_vec())));
    }
}

/// The path element of a list item (upstream `listItemToPathElement`).
pub(crate) fn item_pe(
    rel: &ListRel,
    elem: &Ty,
    item: &Value,
    index: usize,
) -> Result<PathElement, String> {
    match rel {
        ListRel::Atomic => Ok(PathElement::Index(index as i64)),
        ListRel::Set => match item {
            Value::Object(_) => {
                Err("associative list without keys has an element that's a map type".into())
            }
            Value::Array(_) => {
                Err("associative list without keys has an element that's a list type".into())
            }
            v => Ok(PathElement::Value(v.clone())),
        },
        ListRel::Map(keys) => {
            let obj = match item {
                Value::Null => {
                    return Err("associative list with keys may not have a null element".into())
                }
                Value::Object(m) => m,
                _ => return Err("associative list with keys may not have non-map elements".into()),
            };
            let mut fields = Vec::with_capacity(keys.len());
            for k in keys {
                if let Some(v) = obj.get(k) {
                    fields.push((k.clone(), v.clone()));
                } else if let Some(d) = key_default(elem, k) {
                    fields.push((k.clone(), d));
                } else {
                    return Err(format!(
                        "associative list with keys has an element that omits key field {k:?} (and doesn't have default value)"
                    ));
                }
            }
            Ok(PathElement::key(fields))
        }
    }
}

fn key_default(elem: &Ty, key: &str) -> Option<Value> {
    match elem {
        Ty::Struct { msg, .. } => msg_info(msg).defaults.get(key).cloned(),
        _ => None,
    }
}

fn is_atomic(ty: &Ty) -> bool {
    matches!(
        ty,
        Ty::Scalar
            | Ty::Deduced
            | Ty::Struct { atomic: true, .. }
            | Ty::Map { atomic: true, .. }
            | Ty::List {
                rel: ListRel::Atomic,
                ..
            }
    )
}

// ---------------------------------------------------------------------------------------
// ToFieldSet

/// The set of fields `v` forms: every leaf, every list item, every map key (but not struct
/// fields that have children).
pub(crate) fn to_field_set(v: &Value, ty: &Ty, errs: &mut Errors) -> FieldSet {
    let mut set = FieldSet::new();
    let mut path = Vec::new();
    tfs(v, ty, &mut path, &mut set, errs);
    set
}

fn tfs(v: &Value, ty: &Ty, path: &mut Vec<PathElement>, set: &mut FieldSet, errs: &mut Errors) {
    let ty = ty.resolve(Some(v), None);
    if is_atomic(&ty) {
        set.insert(path);
        return;
    }
    match &ty {
        Ty::Struct { .. } | Ty::Map { .. } => {
            let Some(m) = v.as_object() else {
                if !v.is_null() {
                    errs.push(path, format!("expected map, got {}", kind_name(v)));
                }
                return;
            };
            for (k, child) in m {
                let (cty, declared) = ty.field(k);
                path.push(PathElement::Field(k.clone()));
                tfs(child, &cty, path, set, errs);
                if !declared {
                    set.insert(path);
                }
                path.pop();
            }
        }
        Ty::List { elem, rel } => {
            let Some(items) = v.as_array() else {
                if !v.is_null() {
                    errs.push(path, format!("expected list, got {}", kind_name(v)));
                }
                return;
            };
            let mut seen = std::collections::BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                match item_pe(rel, elem, item, i) {
                    Ok(pe) if !seen.insert(pe.clone()) => {
                        errs.push(path, format!("duplicate entries for key {pe}"));
                    }
                    Ok(pe) => {
                        path.push(pe);
                        tfs(item, elem, path, set, errs);
                        set.insert(path);
                        path.pop();
                    }
                    Err(e) => errs.push(path, format!("element {i}: {e}")),
                }
            }
        }
        Ty::Scalar | Ty::Deduced => set.insert(path),
    }
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

// ---------------------------------------------------------------------------------------
// Compare

/// The difference between two values: fields added, modified and removed by `rhs`.
#[derive(Debug, Default, Clone)]
pub(crate) struct Comparison {
    pub added: FieldSet,
    pub modified: FieldSet,
    pub removed: FieldSet,
}

impl Comparison {
    pub(crate) fn exclude(&mut self, ignored: &FieldSet) {
        if ignored.is_empty() {
            return;
        }
        self.added = self.added.recursive_difference(ignored);
        self.modified = self.modified.recursive_difference(ignored);
        self.removed = self.removed.recursive_difference(ignored);
    }
}

/// Compares two objects. Structs are compared as Go's typed objects look: a present
/// struct always carries its non-pointer struct fields (`{}` when unset) and required
/// lists/maps (`null`), so creating an object does not mark `spec` or `spec.template` as
/// added, as upstream's comparison against an empty typed object does not.
pub(crate) fn compare(lhs: &Value, rhs: &Value, ty: &Ty) -> Comparison {
    let mut out = Comparison::default();
    let mut path = Vec::new();
    cmp_rec(Some(lhs), Some(rhs), ty, &mut path, &mut out);
    out
}

fn leaf(l: Option<&Value>, r: Option<&Value>, path: &[PathElement], out: &mut Comparison) {
    match (l, r) {
        (None, None) => {}
        (None, Some(_)) => out.added.insert(path),
        (Some(_), None) => out.removed.insert(path),
        (Some(a), Some(b)) => {
            if !values_equal(a, b) {
                out.modified.insert(path)
            }
        }
    }
}

/// The entries of a struct or map as Go would have them.
fn effective_entries<'a>(v: Option<&'a Value>, ty: &Ty) -> Option<Vec<(String, &'a Value)>> {
    let m = v?.as_object();
    let mut entries: Vec<(String, &Value)> = m
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v)).collect())
        .unwrap_or_default();
    if let Ty::Struct { msg, .. } = ty {
        for (name, zero) in &msg_info(msg).go_zero {
            if m.is_none_or(|m| !m.contains_key(name)) {
                let z: &'static Value = if zero.is_null() {
                    &Value::Null
                } else {
                    empty_object()
                };
                entries.push((name.clone(), z));
            }
        }
    }
    Some(entries)
}

fn cmp_rec(
    l: Option<&Value>,
    r: Option<&Value>,
    ty: &Ty,
    path: &mut Vec<PathElement>,
    out: &mut Comparison,
) {
    let ty = ty.resolve(l, r);
    let in_leaf = if is_atomic(&ty) {
        leaf(l, r, path, out);
        true
    } else {
        match &ty {
            Ty::Struct { .. } | Ty::Map { .. } => {
                let le = effective_entries(l, &ty);
                let re = effective_entries(r, &ty);
                let empty =
                    |e: &Option<Vec<(String, &Value)>>| e.as_ref().is_none_or(Vec::is_empty);
                if empty(&le) && empty(&re) {
                    leaf(l, r, path, out);
                    true
                } else {
                    let le = le.unwrap_or_default();
                    let re = re.unwrap_or_default();
                    let rmap: BTreeMap<&str, &Value> =
                        re.iter().map(|(k, v)| (k.as_str(), *v)).collect();
                    let lmap: BTreeMap<&str, &Value> =
                        le.iter().map(|(k, v)| (k.as_str(), *v)).collect();
                    for (k, lv) in &le {
                        let (cty, _) = ty.field(k);
                        path.push(PathElement::Field(k.to_string()));
                        cmp_rec(Some(lv), rmap.get(k.as_str()).copied(), &cty, path, out);
                        path.pop();
                    }
                    for (k, rv) in &re {
                        if lmap.contains_key(k.as_str()) {
                            continue;
                        }
                        let (cty, _) = ty.field(k);
                        path.push(PathElement::Field(k.to_string()));
                        cmp_rec(None, Some(rv), &cty, path, out);
                        path.pop();
                    }
                    false
                }
            }
            Ty::List { elem, rel } => {
                let la = l.and_then(Value::as_array);
                let ra = r.and_then(Value::as_array);
                let empty = |a: Option<&Vec<Value>>| a.is_none_or(Vec::is_empty);
                if empty(la) && empty(ra) {
                    leaf(l, r, path, out);
                    true
                } else {
                    let lidx = index_items(la, rel, elem);
                    let ridx = index_items(ra, rel, elem);
                    let lmap: BTreeMap<&PathElement, &Value> =
                        lidx.iter().map(|(p, v)| (p, *v)).collect();
                    let rmap: BTreeMap<&PathElement, &Value> =
                        ridx.iter().map(|(p, v)| (p, *v)).collect();
                    for (pe, rv) in &ridx {
                        path.push(pe.clone());
                        cmp_rec(lmap.get(pe).copied(), Some(rv), elem, path, out);
                        path.pop();
                    }
                    for (pe, lv) in &lidx {
                        if rmap.contains_key(pe) {
                            continue;
                        }
                        path.push(pe.clone());
                        cmp_rec(Some(lv), None, elem, path, out);
                        path.pop();
                    }
                    false
                }
            }
            Ty::Scalar | Ty::Deduced => {
                leaf(l, r, path, out);
                true
            }
        }
    };
    if !in_leaf {
        if l.is_none() {
            out.added.insert(path);
        } else if r.is_none() {
            out.removed.insert(path);
        }
    }
}

/// The items of a list by path element, in order, skipping items without a valid key and
/// repeated keys (the first one wins).
fn index_items<'a>(
    items: Option<&'a Vec<Value>>,
    rel: &ListRel,
    elem: &Ty,
) -> Vec<(PathElement, &'a Value)> {
    let mut out: Vec<(PathElement, &Value)> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, item) in items.into_iter().flatten().enumerate() {
        if let Ok(pe) = item_pe(rel, elem, item, i) {
            if seen.insert(pe.clone()) {
                out.push((pe, item));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Merge

/// Merges `rhs` (an applied configuration) into `lhs` (the live object). Errors in `rhs`
/// (bad or duplicate list keys, wrong kinds) are collected in `errs`.
pub(crate) fn merge(lhs: &Value, rhs: &Value, ty: &Ty, errs: &mut Errors) -> Value {
    let mut path = Vec::new();
    merge_rec(Some(lhs), Some(rhs), ty, &mut path, errs)
        .unwrap_or_else(|| Value::Object(Map::new()))
}

fn merge_rec(
    l: Option<&Value>,
    r: Option<&Value>,
    ty: &Ty,
    path: &mut Vec<PathElement>,
    errs: &mut Errors,
) -> Option<Value> {
    let ty = ty.resolve(l, r);
    if is_atomic(&ty) {
        return r.or(l).cloned();
    }
    match &ty {
        Ty::Struct { .. } | Ty::Map { .. } => {
            if let Some(v) = r {
                if !v.is_object() && !v.is_null() {
                    errs.push(path, format!("expected map, got {}", kind_name(v)));
                    return l.cloned();
                }
            }
            let lm = l.and_then(Value::as_object);
            let rm = r.and_then(Value::as_object);
            if lm.is_none_or(Map::is_empty) && rm.is_none_or(Map::is_empty) {
                return r.or(l).cloned();
            }
            let mut out = Map::new();
            if let Some(lm) = lm {
                for (k, lv) in lm {
                    let (cty, _) = ty.field(k);
                    path.push(PathElement::Field(k.clone()));
                    let rv = rm.and_then(|m| m.get(k));
                    if let Some(v) = merge_rec(Some(lv), rv, &cty, path, errs) {
                        out.insert(k.clone(), v);
                    }
                    path.pop();
                }
            }
            if let Some(rm) = rm {
                for (k, rv) in rm {
                    if lm.is_some_and(|m| m.contains_key(k)) {
                        continue;
                    }
                    let (cty, _) = ty.field(k);
                    path.push(PathElement::Field(k.clone()));
                    if let Some(v) = merge_rec(None, Some(rv), &cty, path, errs) {
                        out.insert(k.clone(), v);
                    }
                    path.pop();
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Ty::List { elem, rel } => {
            if let Some(v) = r {
                if !v.is_array() && !v.is_null() {
                    errs.push(path, format!("expected list, got {}", kind_name(v)));
                    return l.cloned();
                }
            }
            let la = l.and_then(Value::as_array);
            let ra = r.and_then(Value::as_array);
            if la.is_none_or(Vec::is_empty) && ra.is_none_or(Vec::is_empty) {
                return r.or(l).cloned();
            }
            // The applied items are checked strictly.
            let mut rhs: Vec<(PathElement, &Value)> = Vec::new();
            let mut seen = std::collections::BTreeSet::new();
            for (i, item) in ra.into_iter().flatten().enumerate() {
                match item_pe(rel, elem, item, i) {
                    Ok(pe) => {
                        if seen.insert(pe.clone()) {
                            rhs.push((pe, item));
                        } else {
                            errs.push(path, format!("duplicate entries for key {pe}"));
                        }
                    }
                    Err(e) => errs.push(path, format!("element {i}: {e}")),
                }
            }
            // Live items that cannot be keyed are kept as they are.
            let mut lhs: Vec<(Option<PathElement>, &Value)> = Vec::new();
            let mut lseen = std::collections::BTreeSet::new();
            for (i, item) in la.into_iter().flatten().enumerate() {
                match item_pe(rel, elem, item, i) {
                    Ok(pe) if lseen.insert(pe.clone()) => lhs.push((Some(pe), item)),
                    Ok(_) => {}
                    Err(_) => lhs.push((None, item)),
                }
            }
            let rmap: BTreeMap<&PathElement, &Value> = rhs.iter().map(|(p, v)| (p, *v)).collect();
            let lmap: BTreeMap<&PathElement, &Value> = lhs
                .iter()
                .filter_map(|(p, v)| p.as_ref().map(|p| (p, *v)))
                .collect();
            let mut shared: std::collections::VecDeque<&PathElement> = rhs
                .iter()
                .map(|(p, _)| p)
                .filter(|p| lmap.contains_key(p))
                .collect();
            let mut next_shared = shared.pop_front();
            let mut out = Vec::new();
            let merge_item = |pe: &PathElement,
                              lv: Option<&Value>,
                              rv: Option<&Value>,
                              out: &mut Vec<Value>,
                              path: &mut Vec<PathElement>,
                              errs: &mut Errors| {
                path.push(pe.clone());
                if let Some(v) = merge_rec(lv, rv, elem, path, errs) {
                    out.push(v);
                }
                path.pop();
            };
            let (mut li, mut ri) = (0, 0);
            while li < lhs.len() || ri < rhs.len() {
                if li < lhs.len() && ri < rhs.len() {
                    if let Some(lpe) = &lhs[li].0 {
                        if *lpe == rhs[ri].0 {
                            merge_item(lpe, Some(lhs[li].1), Some(rhs[ri].1), &mut out, path, errs);
                            li += 1;
                            ri += 1;
                            next_shared = shared.pop_front();
                            continue;
                        }
                        if rmap.contains_key(lpe) && next_shared.is_some_and(|n| n != lpe) {
                            // shared item, but not the one we want in this round
                            li += 1;
                            continue;
                        }
                    }
                }
                if li < lhs.len() {
                    match &lhs[li].0 {
                        None => {
                            out.push(lhs[li].1.clone());
                            li += 1;
                            continue;
                        }
                        Some(lpe) if !rmap.contains_key(lpe) => {
                            merge_item(lpe, Some(lhs[li].1), None, &mut out, path, errs);
                            li += 1;
                            continue;
                        }
                        _ => {}
                    }
                }
                if ri < rhs.len() {
                    let (pe, rv) = &rhs[ri];
                    merge_item(pe, lmap.get(pe).copied(), Some(rv), &mut out, path, errs);
                    ri += 1;
                    if next_shared.is_some_and(|n| n == pe) {
                        next_shared = shared.pop_front();
                    }
                } else if li < lhs.len() {
                    // a shared item already merged from the right-hand side
                    li += 1;
                }
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
        Ty::Scalar | Ty::Deduced => r.or(l).cloned(),
    }
}

// ---------------------------------------------------------------------------------------
// RemoveItems

/// `v` without the members of `set` (each removed with everything below it). Maps and lists
/// emptied by the removal disappear (upstream leaves `null`, which typed objects drop).
pub(crate) fn remove_items(v: &Value, set: &FieldSet, ty: &Ty) -> Value {
    remove_rec(v, set, ty).unwrap_or_else(|| Value::Object(Map::new()))
}

fn remove_rec(v: &Value, set: &FieldSet, ty: &Ty) -> Option<Value> {
    let ty = ty.resolve(Some(v), None);
    match &ty {
        Ty::Struct { atomic, .. } | Ty::Map { atomic, .. } => {
            let Some(m) = v.as_object() else {
                return Some(v.clone());
            };
            if m.is_empty() {
                return None;
            }
            if *atomic {
                return None;
            }
            let mut out = Map::new();
            for (k, child) in m {
                let pe = PathElement::Field(k.clone());
                if set.has_member(&pe) {
                    continue;
                }
                match set.with_prefix(&pe) {
                    Some(sub) => {
                        if let Some(c) = remove_rec(child, sub, &ty.field(k).0) {
                            out.insert(k.clone(), c);
                        }
                    }
                    None => {
                        out.insert(k.clone(), child.clone());
                    }
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Ty::List { elem, rel } => {
            let Some(items) = v.as_array() else {
                return Some(v.clone());
            };
            if items.is_empty() || *rel == ListRel::Atomic {
                return None;
            }
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let Ok(pe) = item_pe(rel, elem, item, i) else {
                    out.push(item.clone());
                    continue;
                };
                if set.has_member(&pe) {
                    continue;
                }
                match set.with_prefix(&pe) {
                    Some(sub) => {
                        if let Some(c) = remove_rec(item, sub, elem) {
                            out.push(c);
                        }
                    }
                    None => out.push(item.clone()),
                }
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
        Ty::Scalar | Ty::Deduced => Some(v.clone()),
    }
}

// ---------------------------------------------------------------------------------------
// EnsureNamedFieldsAreMembers

/// `set` plus every struct field that has descendants in it (so that pruning a struct field
/// whose contents nobody owns any more removes the struct too).
pub(crate) fn ensure_named_fields_are_members(set: &FieldSet, ty: &Ty) -> FieldSet {
    let mut out = FieldSet::new();
    for m in set.members() {
        out.insert_member(m.clone());
    }
    for (pe, child) in set.children() {
        if let (PathElement::Field(name), Ty::Struct { .. }) = (pe, ty) {
            if ty.field(name).1 {
                out.insert_member(pe.clone());
            }
        }
        let cty = ty.child(pe);
        out.set_child(pe.clone(), ensure_named_fields_are_members(child, &cty));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TypeInfo;
    use serde_json::json;

    fn deploy() -> TypeInfo {
        TypeInfo::new("apps/v1", "Deployment", true).unwrap()
    }

    #[test]
    fn field_set_of_applied_deployment() {
        let t = deploy();
        let obj = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]}
                }
            }
        });
        let mut errs = Errors::default();
        let s = to_field_set(&obj, &t.root, &mut errs);
        assert!(errs.0.is_empty());
        assert_eq!(
            s.to_fields_v1_string(),
            concat!(
                r#"{"f:apiVersion":{},"f:kind":{},"f:metadata":{"f:labels":{"f:app":{}},"f:name":{}},"#,
                r#""f:spec":{"f:replicas":{},"f:selector":{},"f:template":{"f:metadata":{"f:labels":{"f:app":{}}},"#,
                r#""f:spec":{"f:containers":{"k:{\"name\":\"web\"}":{".":{},"f:image":{},"f:name":{},"#,
                r#""f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}}}}}}}}}"#
            )
        );
    }

    #[test]
    fn bad_keys_are_errors() {
        let t = deploy();
        let obj = json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}});
        let mut errs = Errors::default();
        merge(&json!({}), &obj, &t.root, &mut errs);
        assert_eq!(
            errs.0,
            [
                r#".spec.template.spec.containers: element 0: associative list with keys has an element that omits key field "name" (and doesn't have default value)"#
            ]
        );
        let dup =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}}});
        let mut errs = Errors::default();
        merge(&json!({}), &dup, &t.root, &mut errs);
        assert_eq!(
            errs.0,
            [r#".spec.template.spec.containers: duplicate entries for key [name="a"]"#]
        );
    }

    #[test]
    fn merge_orders_like_upstream() {
        // live [a b c d], applied [d b x]: shared items follow the applied order, live-only
        // items keep their place, new items follow their applied predecessor (upstream's
        // visitListItems).
        let t = deploy();
        let c = |n: &str| json!({"name": n, "image": n});
        let live = json!({"spec": {"template": {"spec": {"containers": [c("a"), c("b"), c("c"), c("d")]}}}});
        let applied = json!({"spec": {"template": {"spec": {"containers": [{"name": "d"}, {"name": "b"}, {"name": "x"}]}}}});
        let mut errs = Errors::default();
        let out = merge(&live, &applied, &t.root, &mut errs);
        let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "c", "d", "b", "x"]);
    }

    #[test]
    fn compare_create_is_like_go() {
        let t = deploy();
        let new = json!({
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}}}
        });
        let c = compare(&json!({}), &new, &t.root);
        assert_eq!(
            c.added.to_fields_v1_string(),
            concat!(
                r#"{"f:metadata":{"f:labels":{".":{},"f:app":{}},"f:name":{}},"f:spec":{"f:replicas":{},"#,
                r#""f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"c\"}":{".":{},"f:image":{},"f:name":{},"#,
                r#""f:ports":{".":{},"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{},"f:protocol":{}}},"#,
                r#""f:resources":{}}}}}}}"#
            )
        );
        assert!(c.removed.is_empty());
        assert!(c.modified.is_empty());
    }

    #[test]
    fn remove_and_ensure_named() {
        let t = deploy();
        let obj = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"paused": true, "strategy": {"type": "Recreate"}}});
        let mut set = FieldSet::new();
        set.insert(&Path::fields(["metadata", "labels", "a"]).0);
        set.insert(&Path::fields(["spec", "strategy", "type"]).0);
        let named = ensure_named_fields_are_members(&set, &t.root);
        assert!(named.has(&Path::fields(["spec", "strategy"]).0));
        assert!(named.has(&Path::fields(["metadata", "labels"]).0));
        assert!(!named.has(&Path::fields(["metadata", "labels", "b"]).0));
        let out = remove_items(&obj, &set, &t.root);
        assert_eq!(
            out,
            json!({"metadata": {"labels": {"b": "2"}}, "spec": {"paused": true}})
        );
    }
}
