//! The structured-merge-diff view of a Kubernetes type, derived from `keelson-schema` the
//! way kube-openapi's `schemaconv/smd.go` derives it from the OpenAPI extensions:
//!
//! - lists: `+listType` wins (`atomic`, `set`, `map` keyed by `+listMapKey`); otherwise a
//!   `merge` (or `merge,retainKeys`) patch strategy makes an associative list keyed by the
//!   patch merge key, or a set without one; everything else is atomic;
//! - maps and structs are granular unless `+mapType=atomic` / `+structType=atomic`;
//! - Time, Quantity, IntOrString, RawExtension and the like are atomic leaves; apiextensions
//!   `JSON` and fields the schema does not know are "deduced" (maps granular, lists atomic);
//! - key fields with a `+default=` (container and service port `protocol`) take that default
//!   when an element omits them, so `k:{"containerPort":80,"protocol":"TCP"}` is the key of a
//!   port applied without a protocol.

use crate::set::FieldSet;
use crate::Path;
use keelson_schema::{field_meta, fields_meta, FieldKind, FieldMeta, MessageDescriptor};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// How a list merges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ListRel {
    Atomic,
    /// Associative list of scalars, elements identified by value.
    Set,
    /// Associative list of objects identified by these key fields.
    Map(Vec<String>),
}

/// A node of the type tree.
#[derive(Clone, Debug)]
pub(crate) enum Ty {
    Struct {
        msg: MessageDescriptor,
        atomic: bool,
    },
    Map {
        elem: Box<Ty>,
        atomic: bool,
    },
    List {
        elem: Box<Ty>,
        rel: ListRel,
    },
    /// A scalar or an atomic special type: always a leaf.
    Scalar,
    /// No schema: objects are granular maps of deduced values, everything else is a leaf.
    Deduced,
}

/// What the field manager needs to know about a resource: its schema, its apiVersion and
/// kind, and the fields whose changes are not tracked (upstream's strategy "reset fields",
/// e.g. `status` on the main resource when there is a status subresource).
#[derive(Clone, Debug)]
pub struct TypeInfo {
    pub(crate) root: Ty,
    api_version: String,
    kind: String,
    ignored: FieldSet,
}

impl TypeInfo {
    /// The type of a built-in kind, or `None` if the schema has no such kind.
    /// With `status_subresource`, `.status` is ignored (the main resource's reset fields).
    pub fn new(api_version: &str, kind: &str, status_subresource: bool) -> Option<TypeInfo> {
        let (group, version) = keelson_schema::split_api_version(api_version);
        let msg = keelson_schema::message_for(group, version, kind)?;
        let mut t = TypeInfo::from_message(msg, api_version, kind);
        if status_subresource {
            t.ignored.insert(&Path::fields(["status"]).0);
        }
        Some(t)
    }

    /// A type from a message descriptor.
    pub fn from_message(msg: MessageDescriptor, api_version: &str, kind: &str) -> TypeInfo {
        TypeInfo {
            root: Ty::Struct { msg, atomic: false },
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            ignored: FieldSet::new(),
        }
    }

    /// A type without a schema (custom resources that preserve unknown fields): objects are
    /// granular, lists atomic.
    pub fn deduced(api_version: &str, kind: &str) -> TypeInfo {
        TypeInfo {
            root: Ty::Deduced,
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            ignored: FieldSet::new(),
        }
    }

    /// The same type for requests to the status subresource: `.spec` is ignored instead of
    /// `.status` (add more with [`TypeInfo::with_ignored_fields`] where the status strategy
    /// resets more, e.g. `.metadata.labels`).
    pub fn for_status_subresource(&self) -> TypeInfo {
        let mut t = self.clone();
        t.ignored = FieldSet::new();
        t.ignored.insert(&Path::fields(["spec"]).0);
        t
    }

    /// Adds fields to ignore (paths and everything below them).
    pub fn with_ignored_fields(mut self, fields: &FieldSet) -> TypeInfo {
        self.ignored = self.ignored.union(fields);
        self
    }

    pub fn ignored_fields(&self) -> &FieldSet {
        &self.ignored
    }

    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    pub fn kind(&self) -> &str {
        &self.kind
    }
}

impl Ty {
    /// The type of field `name` and whether the schema declares it (for structs).
    pub(crate) fn field(&self, name: &str) -> (Ty, bool) {
        match self {
            Ty::Struct { msg, .. } => match field_meta(msg, name) {
                Some(meta) => (ty_of_meta(&meta), true),
                None => (Ty::Deduced, false),
            },
            Ty::Map { elem, .. } => ((**elem).clone(), false),
            _ => (Ty::Deduced, false),
        }
    }

    /// The type below a path element.
    pub(crate) fn child(&self, pe: &crate::PathElement) -> Ty {
        match pe {
            crate::PathElement::Field(name) => self.field(name).0,
            _ => match self {
                Ty::List { elem, .. } => (**elem).clone(),
                _ => Ty::Deduced,
            },
        }
    }

    /// The type to use for a pair of values: a deduced type becomes a granular map of
    /// deduced values when the values are objects, a leaf otherwise.
    pub(crate) fn resolve(&self, a: Option<&Value>, b: Option<&Value>) -> Ty {
        match self {
            Ty::Deduced => {
                let is_obj = |v: Option<&Value>| v.is_none_or(Value::is_object);
                if (a.is_some() || b.is_some()) && is_obj(a) && is_obj(b) {
                    Ty::Map {
                        elem: Box::new(Ty::Deduced),
                        atomic: false,
                    }
                } else {
                    Ty::Scalar
                }
            }
            t => t.clone(),
        }
    }
}

fn is_json_kind(name: &str) -> bool {
    name.ends_with("apiextensions.v1.JSON")
}

fn ty_of_meta(meta: &FieldMeta) -> Ty {
    let atomic = meta.map_type.as_deref() == Some("atomic");
    match &meta.kind {
        FieldKind::List(inner) => {
            let elem = elem_ty(inner, meta.value_message.as_ref());
            let rel = match meta.list_type.as_deref() {
                Some("set") => ListRel::Set,
                Some("map") if !meta.list_map_keys.is_empty() => {
                    ListRel::Map(meta.list_map_keys.clone())
                }
                Some(_) => ListRel::Atomic,
                None => match meta.patch_strategy.as_deref() {
                    Some("merge") | Some("merge,retainKeys") => match &meta.patch_merge_key {
                        Some(k) => ListRel::Map(vec![k.clone()]),
                        None => ListRel::Set,
                    },
                    _ => ListRel::Atomic,
                },
            };
            Ty::List {
                elem: Box::new(elem),
                rel,
            }
        }
        FieldKind::Map(inner) => Ty::Map {
            elem: Box::new(elem_ty(inner, meta.value_message.as_ref())),
            atomic,
        },
        FieldKind::Message(_) => match &meta.value_message {
            Some(msg) => Ty::Struct {
                msg: msg.clone(),
                atomic: atomic || msg_info(msg).struct_atomic,
            },
            None => Ty::Deduced,
        },
        FieldKind::Atomic(name) if is_json_kind(name) => Ty::Deduced,
        FieldKind::Atomic(_) | FieldKind::Scalar(_) => Ty::Scalar,
    }
}

fn elem_ty(kind: &FieldKind, msg: Option<&MessageDescriptor>) -> Ty {
    match kind {
        FieldKind::Message(_) => match msg {
            Some(m) => Ty::Struct {
                msg: m.clone(),
                atomic: msg_info(m).struct_atomic,
            },
            None => Ty::Deduced,
        },
        FieldKind::Atomic(name) if is_json_kind(name) => Ty::Deduced,
        FieldKind::Atomic(_) | FieldKind::Scalar(_) => Ty::Scalar,
        FieldKind::List(inner) => Ty::List {
            elem: Box::new(elem_ty(inner, msg)),
            rel: ListRel::Atomic,
        },
        FieldKind::Map(inner) => Ty::Map {
            elem: Box::new(elem_ty(inner, msg)),
            atomic: false,
        },
    }
}

/// Per-message facts read from the proto comments, and the zero values Go would write.
pub(crate) struct MsgInfo {
    /// `+structType=atomic` on the message.
    pub struct_atomic: bool,
    /// `+default=` of fields (used for list-map keys).
    pub defaults: HashMap<String, Value>,
    /// Fields Go's JSON always writes for a present struct, with the value it writes when
    /// unset: non-pointer structs as `{}`, required lists and maps as `null`.
    pub go_zero: Vec<(String, Value)>,
}

/// Go structs that are not pointers (so always written, as `{}` when empty) although
/// optional, beyond every `metadata`, `spec` and `status`.
const NON_POINTER_STRUCTS: &[(&str, &str)] = &[
    ("api.apps.v1.DeploymentSpec", "strategy"),
    ("api.apps.v1.StatefulSetSpec", "updateStrategy"),
    ("api.apps.v1.DaemonSetSpec", "updateStrategy"),
    ("api.core.v1.Container", "resources"),
    ("api.core.v1.EphemeralContainer", "resources"),
    ("api.core.v1.PersistentVolumeClaimSpec", "resources"),
];

pub(crate) fn msg_info(msg: &MessageDescriptor) -> Arc<MsgInfo> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<MsgInfo>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(info) = cache.lock().unwrap().get(msg.full_name()) {
        return info.clone();
    }
    let info = Arc::new(build_msg_info(msg));
    cache
        .lock()
        .unwrap()
        .insert(msg.full_name().to_string(), info.clone());
    info
}

fn build_msg_info(msg: &MessageDescriptor) -> MsgInfo {
    let file = msg.parent_file();
    let fdp = file.file_descriptor_proto();
    let mut comments: HashMap<Vec<i32>, &str> = HashMap::new();
    let msg_path = msg.path();
    if let Some(info) = &fdp.source_code_info {
        for loc in &info.location {
            if loc.path.starts_with(msg_path) && loc.path.len() <= msg_path.len() + 2 {
                if let Some(c) = &loc.leading_comments {
                    comments.insert(loc.path.clone(), c.as_str());
                }
            }
        }
    }
    let marker = |comment: &str, name: &str| -> Option<String> {
        comment.lines().find_map(|l| {
            l.trim()
                .strip_prefix('+')
                .and_then(|m| m.strip_prefix(name))
                .and_then(|m| m.strip_prefix('='))
                .map(|v| v.trim().to_string())
        })
    };
    let struct_atomic = comments
        .get(msg_path)
        .and_then(|c| marker(c, "structType"))
        .is_some_and(|v| v == "atomic");
    let mut defaults = HashMap::new();
    for f in msg.fields() {
        if let Some(c) = comments.get(f.path()) {
            if let Some(d) = marker(c, "default") {
                if let Ok(v) = serde_json::from_str::<Value>(&d) {
                    defaults.insert(f.name().to_string(), v);
                }
            }
        }
    }
    let mut go_zero = Vec::new();
    for meta in fields_meta(msg) {
        let zero = match &meta.kind {
            FieldKind::Message(_)
                if meta.required
                    || matches!(meta.name.as_str(), "metadata" | "spec" | "status")
                    || NON_POINTER_STRUCTS.contains(&(msg.full_name(), meta.name.as_str())) =>
            {
                Some(Value::Object(Map::new()))
            }
            FieldKind::List(_) | FieldKind::Map(_) if meta.required => Some(Value::Null),
            _ => None,
        };
        if let Some(z) = zero {
            go_zero.push((meta.name.clone(), z));
        }
    }
    MsgInfo {
        struct_atomic,
        defaults,
        go_zero,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty_at(root: &Ty, path: &[&str]) -> Ty {
        let mut t = root.clone();
        for p in path {
            t = match &t {
                Ty::List { elem, .. } if *p == "[]" => (**elem).clone(),
                _ => t.field(p).0,
            };
        }
        t
    }

    #[test]
    fn deployment_types() {
        let t = TypeInfo::new("apps/v1", "Deployment", true).unwrap();
        let containers = ty_at(&t.root, &["spec", "template", "spec", "containers"]);
        assert!(matches!(&containers, Ty::List { rel: ListRel::Map(k), .. } if k == &["name"]));
        let ports = ty_at(
            &t.root,
            &["spec", "template", "spec", "containers", "[]", "ports"],
        );
        assert!(
            matches!(&ports, Ty::List { rel: ListRel::Map(k), .. } if k == &["containerPort", "protocol"])
        );
        let Ty::List { elem, .. } = &ports else {
            unreachable!()
        };
        let Ty::Struct { msg, .. } = &**elem else {
            panic!("port is a struct")
        };
        assert_eq!(
            msg_info(msg).defaults.get("protocol"),
            Some(&Value::String("TCP".into()))
        );
        let sel = ty_at(&t.root, &["spec", "selector"]);
        assert!(matches!(sel, Ty::Struct { atomic: true, .. }));
        let cmd = ty_at(
            &t.root,
            &["spec", "template", "spec", "containers", "[]", "command"],
        );
        assert!(matches!(
            cmd,
            Ty::List {
                rel: ListRel::Atomic,
                ..
            }
        ));
        let fin = ty_at(&t.root, &["metadata", "finalizers"]);
        assert!(matches!(
            fin,
            Ty::List {
                rel: ListRel::Set,
                ..
            }
        ));
        let labels = ty_at(&t.root, &["metadata", "labels"]);
        assert!(matches!(labels, Ty::Map { atomic: false, .. }));
        let ns = ty_at(&t.root, &["spec", "template", "spec", "nodeSelector"]);
        assert!(matches!(ns, Ty::Map { atomic: true, .. }));
        let tol = ty_at(&t.root, &["spec", "template", "spec", "tolerations"]);
        assert!(matches!(
            tol,
            Ty::List {
                rel: ListRel::Atomic,
                ..
            }
        ));
        let env_from = ty_at(
            &t.root,
            &[
                "spec",
                "template",
                "spec",
                "containers",
                "[]",
                "env",
                "[]",
                "valueFrom",
                "configMapKeyRef",
            ],
        );
        assert!(matches!(env_from, Ty::Struct { atomic: true, .. }));
        let res = ty_at(
            &t.root,
            &[
                "spec",
                "template",
                "spec",
                "containers",
                "[]",
                "resources",
                "limits",
            ],
        );
        assert!(matches!(res, Ty::Map { atomic: false, .. }));
        assert!(t.ignored_fields().has(&Path::fields(["status"]).0));
    }

    #[test]
    fn go_zero_values() {
        let t = TypeInfo::new("apps/v1", "Deployment", false).unwrap();
        let Ty::Struct { msg, .. } = &t.root else {
            unreachable!()
        };
        let names: Vec<_> = msg_info(msg)
            .go_zero
            .iter()
            .map(|(n, _)| n.clone())
            .collect();
        assert!(names.contains(&"metadata".to_string()));
        assert!(names.contains(&"spec".to_string()));
        let Ty::Struct { msg: spec, .. } = t.root.field("spec").0 else {
            unreachable!()
        };
        let zero = &msg_info(&spec).go_zero;
        assert!(zero.iter().any(|(n, v)| n == "template" && v.is_object()));
        assert!(zero.iter().any(|(n, v)| n == "strategy" && v.is_object()));
    }
}
