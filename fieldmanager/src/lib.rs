//! Server-side apply and `metadata.managedFields` bookkeeping over JSON objects: what
//! kube-apiserver's field manager does (structured-merge-diff plus apimachinery's
//! `pkg/util/managedfields`), typed by `keelson-schema`.
//!
//! The API server calls:
//! - [`update`] (or [`update_object`]) on every create, update and non-apply patch, with the
//!   stored object (`None` on create) and the object about to be stored. The manager gains
//!   the fields it changed and other managers lose them; the result is the new
//!   `metadata.managedFields` (empty: omit the field).
//! - [`apply`] on an apply patch (`application/apply-patch+yaml`), with the stored object
//!   (`None`: the apply creates the object) and the applied configuration. It merges the
//!   configuration into the object by the schema's list and map types, removes fields the
//!   manager applied before and no longer applies (unless another manager owns them), and
//!   fails with [`Conflicts`] (409) when another manager owns a field the apply changes,
//!   unless `force` is set, in which case ownership moves to the applier.
//!
//! The pipeline mirrors upstream's wrappers, innermost last:
//! - version check (`invalid object type: apps/v1, Kind=Deployment`);
//! - `kubectl` last-applied: on conflicts, an apply by manager `kubectl` is forced when every
//!   conflicting field is in the `kubectl.kubernetes.io/last-applied-configuration`
//!   annotation with the live value; after an apply by `kubectl` the annotation, if present,
//!   is rewritten from the applied configuration;
//! - before-first-apply: applying to an object without managed fields first records all its
//!   fields as owned by the Update manager `before-first-apply`; updates to an existing
//!   object without managed fields are not tracked (objects created by an update are);
//! - at most 10 Update managers: the oldest are merged into `ancient-changes`;
//! - manager identifiers (`{"manager":"m","operation":"Update","apiVersion":"apps/v1"}`);
//! - times: an entry's time is set when the operation changed the object;
//! - `apiVersion`, `kind`, `metadata.{name,namespace,uid,resourceVersion,generation,
//!   creationTimestamp,selfLink,clusterName,managedFields}` are never owned;
//! - the reset fields of the [`TypeInfo`] (`status` for resources with a status
//!   subresource) are neither owned nor compared.
//!
//! Deviations: there is one API version per type, so managers recorded at other versions are
//! compared as if they were at the current one (upstream converts); after apply the merged
//! object is not defaulted (the strategy does that) and `null`s are dropped (upstream's typed
//! conversion drops them); Go's zero values are emulated when comparing (non-pointer structs
//! such as `spec` and `spec.template` are present as `{}`, required lists and maps as `null`)
//! from the schema's required fields and a short table.

mod conflict;
mod managed;
mod path;
mod set;
mod typed;
mod types;

pub use conflict::{Conflict, ConflictCause, Conflicts};
pub use managed::{format_time, ManagedFields, ManagedFieldsEntry};
pub use path::{
    compare_values, value_to_string, values_equal, Path, PathElement, PathElementError,
};
pub use set::{FieldSet, FieldsV1Error};
pub use types::TypeInfo;

use chrono::{DateTime, Utc};
use managed::{manager_identifier, VersionedSet, APPLY, UPDATE};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::OnceLock;
use typed::Errors;

/// The annotation client-side `kubectl apply` keeps.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Upstream's `DefaultMaxUpdateManagers`.
pub const MAX_UPDATE_MANAGERS: usize = 10;

const BEFORE_FIRST_APPLY: &str = "before-first-apply";
const ANCIENT_CHANGES: &str = "ancient-changes";
const CURRENT_OPERATION: &str = "current-operation";
/// Upstream's limit on the total size of annotations.
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Who is writing, and when.
#[derive(Clone, Copy, Debug)]
pub struct Operation<'a> {
    /// The `fieldManager` (empty: `unknown`).
    pub manager: &'a str,
    /// The subresource of the request (`""`, `status`, `scale`).
    pub subresource: &'a str,
    /// The time recorded in the manager's entry.
    pub now: DateTime<Utc>,
}

impl<'a> Operation<'a> {
    pub fn new(manager: &'a str, now: DateTime<Utc>) -> Operation<'a> {
        Operation {
            manager,
            subresource: "",
            now,
        }
    }

    pub fn with_subresource(mut self, subresource: &'a str) -> Operation<'a> {
        self.subresource = subresource;
        self
    }
}

/// Why an apply failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// 409 Conflict: see [`Conflicts::to_status`].
    #[error("{0}")]
    Conflicts(Conflicts),
    /// 400 Bad Request (`invalid object type: ...`, `metadata.managedFields must be nil`).
    #[error("{0}")]
    BadRequest(String),
    /// An error upstream returns as a plain error, i.e. 500 with this message (for example
    /// `failed to create typed patch object (ns/name; apps/v1, Kind=Deployment): ...` for an
    /// applied list element without its key, or undecodable live managedFields).
    #[error("{0}")]
    Internal(String),
}

/// The result of an apply.
#[derive(Clone, Debug)]
pub struct Applied {
    /// The new object, with `metadata.managedFields` set.
    pub object: Value,
    /// The new `metadata.managedFields` (also inside `object`).
    pub managed_fields: Vec<Value>,
    /// Whether the object changed apart from its managed fields.
    pub changed: bool,
}

fn strip_set() -> &'static FieldSet {
    static SET: OnceLock<FieldSet> = OnceLock::new();
    SET.get_or_init(|| {
        let mut s = FieldSet::new();
        for p in [
            &["apiVersion"][..],
            &["kind"],
            &["metadata"],
            &["metadata", "name"],
            &["metadata", "namespace"],
            &["metadata", "creationTimestamp"],
            &["metadata", "selfLink"],
            &["metadata", "uid"],
            &["metadata", "clusterName"],
            &["metadata", "generation"],
            &["metadata", "managedFields"],
            &["metadata", "resourceVersion"],
        ] {
            s.insert(&Path::fields(p.iter().copied()).0);
        }
        s
    })
}

/// The fields an object forms, as an Apply or Update manager would own them: leaves, list
/// items, map keys; without the type and identity fields and the type's ignored fields.
pub fn fields_of(obj: &Value, ty: &TypeInfo) -> FieldSet {
    let obj = without_managed_fields(obj);
    let mut errs = Errors::default();
    typed::to_field_set(&obj, &ty.root, &mut errs)
        .difference(strip_set())
        .recursive_difference(ty.ignored_fields())
}

/// The manager of a non-apply write as upstream picks it: the `fieldManager` query
/// parameter, else the User-Agent up to its first `/` (printable characters, at most 128
/// bytes): `kubectl/v1.35.0 (linux/amd64) kubernetes/abc` → `kubectl`.
pub fn manager_or_user_agent(field_manager: &str, user_agent: &str) -> String {
    if !field_manager.is_empty() {
        return field_manager.to_string();
    }
    let prefix = user_agent.split('/').next().unwrap_or("");
    let mut out = String::new();
    for c in prefix.chars() {
        if c.is_control() {
            continue;
        }
        if out.len() + c.len_utf8() > 128 {
            break;
        }
        out.push(c);
    }
    out
}

/// Sets `metadata.managedFields` (removes it when `managed_fields` is empty).
pub fn set_managed_fields(obj: &mut Value, managed_fields: Vec<Value>) {
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    if managed_fields.is_empty() {
        if let Some(Value::Object(meta)) = o.get_mut("metadata") {
            meta.remove("managedFields");
        }
        return;
    }
    let meta = o
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    if let Some(meta) = meta.as_object_mut() {
        meta.insert("managedFields".into(), Value::Array(managed_fields));
    }
}

// ---------------------------------------------------------------------------------------
// Update

/// The managed fields after a create (`live` is `None`), update or non-apply patch that
/// turns `live` into `new`, encoded for `metadata.managedFields` (empty: omit the field).
///
/// As upstream: the managedFields of `new` are used when they are valid and not empty
/// (clients may rewrite them; `[]` or `[{}]` resets them), else those of `live`; for a
/// subresource only those of `live`. Errors never fail the request: undecodable managed
/// fields count as none.
pub fn update(ty: &TypeInfo, live: Option<&Value>, new: &Value, op: &Operation) -> Vec<Value> {
    update_managed_fields(ty, live, new, op).encode()
}

/// [`update`], storing the result in `new.metadata.managedFields`.
pub fn update_object(ty: &TypeInfo, live: Option<&Value>, new: &mut Value, op: &Operation) {
    let mf = update(ty, live, new, op);
    set_managed_fields(new, mf);
}

/// [`update`] returning the decoded managed fields.
pub fn update_managed_fields(
    ty: &TypeInfo,
    live: Option<&Value>,
    new: &Value,
    op: &Operation,
) -> ManagedFields {
    let live_managed = || {
        live.and_then(|l| l.pointer("/metadata/managedFields"))
            .map(|v| ManagedFields::decode(v).unwrap_or_default())
            .unwrap_or_default()
    };
    let mut managed = if !op.subresource.is_empty() {
        live_managed()
    } else {
        let requested = new.pointer("/metadata/managedFields");
        if is_reset(requested) {
            ManagedFields::new()
        } else {
            match requested.map(ManagedFields::decode) {
                Some(Ok(m)) if !m.is_empty() => m,
                _ => live_managed(),
            }
        }
    };
    // Objects that exist without managed fields are only tracked from their first apply.
    if managed.is_empty() && live.is_some_and(has_uid) {
        return managed;
    }
    let live_obj = live
        .map(without_managed_fields)
        .unwrap_or_else(|| Value::Object(Map::new()));
    let new_obj = without_managed_fields(new);
    update_tracked(
        ty,
        &live_obj,
        &new_obj,
        &mut managed,
        op.manager,
        op.subresource,
        op.now,
    );
    managed
}

fn is_reset(mf: Option<&Value>) -> bool {
    match mf {
        Some(Value::Array(items)) => match items.as_slice() {
            [] => true,
            [only] => only.as_object().is_some_and(|m| {
                m.values().all(|v| match v {
                    Value::Null => true,
                    Value::String(s) => s.is_empty(),
                    _ => false,
                })
            }),
            _ => false,
        },
        _ => false,
    }
}

fn has_uid(obj: &Value) -> bool {
    obj.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
}

fn without_managed_fields(obj: &Value) -> Value {
    let mut obj = obj.clone();
    if let Some(Value::Object(meta)) = obj.get_mut("metadata") {
        meta.remove("managedFields");
    }
    obj
}

/// capManagers ∘ buildManagerInfo ∘ managedFieldsUpdater ∘ stripMeta ∘ structured update.
fn update_tracked(
    ty: &TypeInfo,
    live: &Value,
    new: &Value,
    managed: &mut ManagedFields,
    manager: &str,
    subresource: &str,
    now: DateTime<Utc>,
) {
    let name = if manager.is_empty() {
        "unknown"
    } else {
        manager
    };
    let id = manager_identifier(name, UPDATE, ty.api_version(), subresource);
    structured_update(ty, live, new, managed, CURRENT_OPERATION);
    strip_meta(managed, CURRENT_OPERATION);
    if let Some(vs) = managed.fields.remove(CURRENT_OPERATION) {
        managed.times.remove(CURRENT_OPERATION);
        let set = match managed.fields.get(&id) {
            Some(prev) => vs.set.union(&prev.set),
            None => vs.set,
        };
        managed.fields.insert(
            id.clone(),
            VersionedSet {
                set,
                api_version: vs.api_version,
                applied: vs.applied,
            },
        );
        managed.times.insert(id, format_time(now));
    }
    cap_update_managers(managed, MAX_UPDATE_MANAGERS);
}

fn strip_meta(managed: &mut ManagedFields, id: &str) {
    if let Some(vs) = managed.fields.get_mut(id) {
        vs.set = vs.set.difference(strip_set());
        if vs.set.is_empty() {
            managed.remove(id);
        }
    }
}

/// Compares `live` and `new` and takes the changed fields away from every manager but
/// `workflow`; with conflicts (fields of others that were added or modified) and no `force`,
/// nothing changes and the conflicts are returned.
fn structured_common(
    ty: &TypeInfo,
    live: &Value,
    new: &Value,
    managed: &mut ManagedFields,
    workflow: &str,
    force: bool,
) -> Result<typed::Comparison, Conflicts> {
    let mut cmp = typed::compare(live, new, &ty.root);
    cmp.exclude(ty.ignored_fields());
    let changed = cmp.modified.union(&cmp.added);
    let mut conflicts: BTreeMap<String, FieldSet> = BTreeMap::new();
    for (id, vs) in &managed.fields {
        if id == workflow {
            continue;
        }
        let c = vs.set.intersection(&changed);
        if !c.is_empty() {
            conflicts.insert(id.clone(), c);
        }
    }
    if !force && !conflicts.is_empty() {
        return Err(Conflicts::from_sets(&conflicts));
    }
    for (id, vs) in managed.fields.iter_mut() {
        if id == workflow {
            continue;
        }
        if let Some(c) = conflicts.get(id) {
            vs.set = vs.set.difference(c);
        }
        if !cmp.removed.is_empty() {
            vs.set = vs.set.difference(&cmp.removed);
        }
    }
    managed.drop_empty();
    Ok(cmp)
}

/// structured-merge-diff `Updater.Update`.
fn structured_update(
    ty: &TypeInfo,
    live: &Value,
    new: &Value,
    managed: &mut ManagedFields,
    manager: &str,
) {
    let cmp = match structured_common(ty, live, new, managed, manager, true) {
        Ok(cmp) => cmp,
        Err(_) => unreachable!("a forced update has no conflicts"),
    };
    let prev = managed
        .fields
        .get(manager)
        .map(|vs| vs.set.clone())
        .unwrap_or_default();
    let set = prev
        .union(&cmp.modified)
        .union(&cmp.added)
        .difference(&cmp.removed)
        .recursive_difference(ty.ignored_fields());
    if set.is_empty() {
        managed.remove(manager);
    } else {
        managed.fields.insert(
            manager.to_string(),
            VersionedSet {
                set,
                api_version: ty.api_version().to_string(),
                applied: false,
            },
        );
    }
}

/// Merges the oldest Update managers into per-version `ancient-changes` entries until at
/// most `max` remain.
fn cap_update_managers(managed: &mut ManagedFields, max: usize) {
    let mut updaters: Vec<String> = managed
        .fields
        .iter()
        .filter(|(_, vs)| !vs.applied)
        .map(|(id, _)| id.clone())
        .collect();
    if updaters.len() <= max {
        return;
    }
    let seconds = |id: &String| {
        managed
            .times
            .get(id)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp())
            .unwrap_or(0)
    };
    updaters.sort_by(|a, b| seconds(a).cmp(&seconds(b)).then_with(|| a.cmp(b)));
    let mut first_of_version: BTreeMap<String, String> = BTreeMap::new();
    let mut length = updaters.len();
    for id in updaters {
        if length <= max {
            break;
        }
        let Some(vs) = managed.fields.get(&id).cloned() else {
            continue;
        };
        let time = managed.times.get(&id).cloned();
        let version = vs.api_version.clone();
        let bucket = manager_identifier(ANCIENT_CHANGES, UPDATE, &version, "");
        match first_of_version.get(&version) {
            Some(first) => {
                if !managed.fields.contains_key(&bucket) {
                    if let Some(s) = managed.fields.remove(first) {
                        managed.times.remove(first);
                        managed.fields.insert(bucket.clone(), s);
                    }
                }
                let merged = managed
                    .fields
                    .get(&bucket)
                    .map(|b| vs.set.union(&b.set))
                    .unwrap_or(vs.set);
                managed.fields.insert(
                    bucket.clone(),
                    VersionedSet {
                        set: merged,
                        api_version: vs.api_version,
                        applied: vs.applied,
                    },
                );
                managed.remove(&id);
                length -= 1;
                match time {
                    Some(t) => {
                        managed.times.insert(bucket, t);
                    }
                    None => {
                        managed.times.remove(&bucket);
                    }
                }
            }
            None => {
                first_of_version.insert(version, id);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Apply

/// Server-side apply of `applied` to `live` (`None`: the apply creates the object) by
/// `op.manager`, as a `PATCH` with `application/apply-patch+yaml` and `force`.
///
/// The returned object still goes through the strategy (defaults, validation, status reset)
/// like any patched object.
pub fn apply(
    ty: &TypeInfo,
    live: Option<&Value>,
    applied: &Value,
    op: &Operation,
    force: bool,
) -> Result<Applied, ApplyError> {
    let api_version = applied
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = applied.get("kind").and_then(Value::as_str).unwrap_or("");
    if api_version != ty.api_version() || kind != ty.kind() {
        return Err(ApplyError::BadRequest(format!(
            "invalid object type: {}",
            gvk_string(api_version, kind)
        )));
    }
    if applied
        .pointer("/metadata/managedFields")
        .is_some_and(Value::is_array)
    {
        return Err(ApplyError::BadRequest(
            "metadata.managedFields must be nil".into(),
        ));
    }
    let managed = match live.and_then(|l| l.pointer("/metadata/managedFields")) {
        Some(v) => ManagedFields::decode(v)
            .map_err(|e| ApplyError::Internal(format!("failed to decode managed fields: {e}")))?,
        None => ManagedFields::new(),
    };
    let live_obj = live
        .map(without_managed_fields)
        .unwrap_or_else(|| Value::Object(Map::new()));

    let run = |force: bool| -> Result<(Value, ManagedFields, bool), ApplyError> {
        let mut managed = managed.clone();
        if managed.is_empty() {
            // skipNonApplied: whatever the object holds belongs to "before-first-apply".
            update_tracked(
                ty,
                &Value::Object(Map::new()),
                &live_obj,
                &mut managed,
                BEFORE_FIRST_APPLY,
                op.subresource,
                op.now,
            );
        }
        let (obj, changed) = apply_tracked(ty, &live_obj, applied, &mut managed, op, force)?;
        Ok((obj, managed, changed))
    };

    let (mut object, managed, changed) = match run(force) {
        Err(ApplyError::Conflicts(c)) if op.manager == "kubectl" => {
            match allowed_conflicts_from_last_applied(ty, &live_obj) {
                Some(allowed) => {
                    let remaining: Vec<Conflict> =
                        c.0.iter()
                            .filter(|x| !allowed.has(&x.path.0))
                            .cloned()
                            .collect();
                    if remaining.is_empty() {
                        run(true)?
                    } else {
                        return Err(ApplyError::Conflicts(Conflicts(remaining)));
                    }
                }
                None => return Err(ApplyError::Conflicts(c)),
            }
        }
        r => r?,
    };

    if op.manager == "kubectl" && has_last_applied(&object) {
        let value = build_last_applied(applied);
        set_last_applied(&mut object, value);
    }
    let managed_fields = managed.encode();
    set_managed_fields(&mut object, managed_fields.clone());
    Ok(Applied {
        object,
        managed_fields,
        changed,
    })
}

/// buildManagerInfo ∘ managedFieldsUpdater ∘ stripMeta ∘ structured apply.
fn apply_tracked(
    ty: &TypeInfo,
    live: &Value,
    applied: &Value,
    managed: &mut ManagedFields,
    op: &Operation,
    force: bool,
) -> Result<(Value, bool), ApplyError> {
    let name = if op.manager.is_empty() {
        "unknown"
    } else {
        op.manager
    };
    let id = manager_identifier(name, APPLY, "", op.subresource);
    let (mut new, changed) = structured_apply(ty, live, applied, managed, &id, force)?;
    strip_meta(managed, &id);
    if changed {
        managed.times.insert(id, format_time(op.now));
    } else {
        new = live.clone();
    }
    Ok((new, changed))
}

/// structured-merge-diff `Updater.Apply`.
fn structured_apply(
    ty: &TypeInfo,
    live: &Value,
    config: &Value,
    managed: &mut ManagedFields,
    manager: &str,
    force: bool,
) -> Result<(Value, bool), ApplyError> {
    let root = &ty.root;
    let mut errs = Errors::default();
    let set = typed::to_field_set(config, root, &mut errs);
    if !errs.0.is_empty() {
        return Err(ApplyError::Internal(format!(
            "failed to create typed patch object ({}): {}",
            object_gvknn(config),
            errs.0.join("\n")
        )));
    }
    let merged = typed::merge(live, config, root, &mut Errors::default());
    let last = managed.fields.get(manager).cloned();
    managed.fields.insert(
        manager.to_string(),
        VersionedSet {
            set: set.recursive_difference(ty.ignored_fields()),
            api_version: ty.api_version().to_string(),
            applied: true,
        },
    );
    let mut new = prune(ty, merged, managed, last.as_ref());
    structured_common(ty, live, &new, managed, manager, force).map_err(ApplyError::Conflicts)?;
    strip_nulls(&mut new);
    let changed = !values_equal(live, &new);
    Ok((new, changed))
}

/// Removes what the manager applied last time and no longer applies, unless someone else
/// owns it (`prune`, `addBackOwnedItems`, `addBackDanglingItems`).
fn prune(
    ty: &TypeInfo,
    merged: Value,
    managed: &ManagedFields,
    last: Option<&VersionedSet>,
) -> Value {
    let Some(last) = last.filter(|l| !l.set.is_empty()) else {
        return merged;
    };
    let root = &ty.root;
    let named = |s: &FieldSet| typed::ensure_named_fields_are_members(s, root);
    let fields = |v: &Value| typed::to_field_set(v, root, &mut Errors::default());
    let last_set = named(&last.set);
    let pruned = typed::remove_items(&merged, &last_set, root);
    // add back what any manager (including this one's new configuration) owns
    let owned = managed
        .fields
        .values()
        .fold(FieldSet::new(), |acc, vs| acc.union(&vs.set));
    let merged_set = named(&fields(&merged));
    let pruned_set = named(&fields(&pruned));
    let pruned = typed::remove_items(
        &merged,
        &merged_set.difference(&pruned_set.union(&named(&owned))),
        root,
    );
    // only remove what this manager owned
    let pruned_set = named(&fields(&pruned));
    typed::remove_items(
        &merged,
        &merged_set.difference(&pruned_set).intersection(&last_set),
        root,
    )
}

fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            for v in m.values_mut() {
                strip_nulls(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Go's `GroupVersionKind.String()`: `apps/v1, Kind=Deployment`, `/v1, Kind=Pod`.
fn gvk_string(api_version: &str, kind: &str) -> String {
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    format!("{group}/{version}, Kind={kind}")
}

/// `namespace/name; apps/v1, Kind=Deployment` as upstream's errors name an object.
fn object_gvknn(obj: &Value) -> String {
    let s = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or("");
    format!(
        "{}/{}; {}",
        s("/metadata/namespace"),
        s("/metadata/name"),
        gvk_string(s("/apiVersion"), s("/kind"))
    )
}

fn last_applied_of(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/annotations")?
        .get(LAST_APPLIED_ANNOTATION)?
        .as_str()
        .filter(|s| !s.is_empty())
}

fn has_last_applied(obj: &Value) -> bool {
    last_applied_of(obj).is_some()
}

/// The applied configuration without the annotation, as upstream encodes unstructured
/// objects (sorted keys, trailing newline).
fn build_last_applied(applied: &Value) -> String {
    let mut obj = applied.clone();
    if let Some(Value::Object(ann)) = obj.pointer_mut("/metadata/annotations") {
        ann.remove(LAST_APPLIED_ANNOTATION);
    }
    let mut s = path::go_json_to_string(&obj);
    s.push('\n');
    s
}

fn set_last_applied(obj: &mut Value, value: String) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let ann = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(ann) = ann.as_object_mut() else {
        return;
    };
    ann.insert(LAST_APPLIED_ANNOTATION.into(), Value::String(value));
    let size: usize = ann
        .iter()
        .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
        .sum();
    if size > TOTAL_ANNOTATION_SIZE_LIMIT {
        ann.remove(LAST_APPLIED_ANNOTATION);
    }
}

/// The fields client-side apply recorded in the last-applied annotation with the values the
/// live object still has: `kubectl` may take them over without conflict.
fn allowed_conflicts_from_last_applied(ty: &TypeInfo, live: &Value) -> Option<FieldSet> {
    let last: Value = serde_json::from_str(last_applied_of(live)?).ok()?;
    if !last.is_object() || last.get("apiVersion").and_then(Value::as_str) != Some(ty.api_version())
    {
        return None;
    }
    let mut errs = Errors::default();
    let set = typed::to_field_set(&last, &ty.root, &mut errs);
    if !errs.0.is_empty() {
        return None;
    }
    let cmp = typed::compare(&last, live, &ty.root);
    Some(
        set.difference(&cmp.modified)
            .difference(&cmp.added)
            .difference(&cmp.removed),
    )
}

#[cfg(test)]
mod tests;
