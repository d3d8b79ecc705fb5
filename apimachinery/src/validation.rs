//! Field-level validation errors with the wording of apimachinery's `util/validation/field`,
//! and the generic checks every object gets: `metadata` on create and update
//! (`pkg/api/validation/objectmeta.go`), label maps and selectors, and the query options of
//! `pkg/apis/meta/v1/validation`.
//!
//! Every check returns `Vec<Cause>`; an empty vector means valid. A [`Cause`] carries the
//! upstream reason (`FieldValueInvalid`, ...), the field path (`metadata.name`) and the
//! message body (`Invalid value: "Foo": a lowercase RFC 1123 subdomain must ...`), which is
//! what [`crate::Status::invalid`] needs for a 422.

use serde_json::{Map, Value};

use crate::names::{self, NameRule};
use crate::Cause;

pub const REASON_REQUIRED: &str = "FieldValueRequired";
pub const REASON_INVALID: &str = "FieldValueInvalid";
pub const REASON_TYPE_INVALID: &str = "FieldValueTypeInvalid";
pub const REASON_FORBIDDEN: &str = "FieldValueForbidden";
pub const REASON_TOO_LONG: &str = "FieldValueTooLong";
pub const REASON_NOT_SUPPORTED: &str = "FieldValueNotSupported";
pub const REASON_DUPLICATE: &str = "FieldValueDuplicate";
pub const REASON_NOT_FOUND: &str = "FieldValueNotFound";
pub const REASON_INTERNAL: &str = "InternalError";

/// Largest total size of an object's annotations (keys plus values), 256 KiB.
pub const TOTAL_ANNOTATION_SIZE_LIMIT_B: usize = 256 * 1024;
/// Longest `fieldManager`.
pub const FIELD_MANAGER_MAX_LENGTH: usize = 128;
/// Longest `managedFields[].subresource`.
pub const MAX_SUBRESOURCE_NAME_LENGTH: usize = 256;
/// `field is immutable`
pub const FIELD_IMMUTABLE_ERROR_MSG: &str = "field is immutable";
/// `must be greater than or equal to 0`
pub const IS_NEGATIVE_ERROR_MSG: &str = "must be greater than or equal to 0";

/// Go's `strconv.Quote` (what `%q` prints): the string in double quotes, with `"` and `\`
/// escaped and control or otherwise unprintable characters written as escapes.
pub fn go_quote(s: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if !go_is_print(c) => {
                if (c as u32) < 0x10000 {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                } else {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `unicode.IsPrint` for non-ASCII characters: controls, spaces
/// other than U+0020 and the common format characters are not printable.
fn go_is_print(c: char) -> bool {
    if c.is_ascii() {
        return !c.is_ascii_control();
    }
    !(c.is_control()
        || c.is_whitespace()
        || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}'))
}

/// How upstream prints a bad value after `Invalid value: `: strings quoted Go-style,
/// numbers and booleans bare, everything else as compact JSON.
pub fn format_bad_value(value: &Value) -> String {
    match value {
        Value::String(s) => go_quote(s),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_string(),
        other => serde_json::to_string(other).unwrap_or_else(|_| "null".to_string()),
    }
}

fn with_detail(mut body: String, detail: &str) -> String {
    if !detail.is_empty() {
        body.push_str(": ");
        body.push_str(detail);
    }
    body
}

/// `field.Required`: `Required value[: detail]`.
pub fn required(field: &str, detail: &str) -> Cause {
    Cause::new(
        REASON_REQUIRED,
        with_detail("Required value".to_string(), detail),
        field,
    )
}

/// `field.Invalid` for any JSON value: `Invalid value: <value>[: detail]`.
pub fn invalid(field: &str, value: &Value, detail: &str) -> Cause {
    Cause::new(
        REASON_INVALID,
        with_detail(
            format!("Invalid value: {}", format_bad_value(value)),
            detail,
        ),
        field,
    )
}

/// `field.Invalid` for a string value: `Invalid value: "value"[: detail]`.
pub fn invalid_str(field: &str, value: &str, detail: &str) -> Cause {
    Cause::new(
        REASON_INVALID,
        with_detail(format!("Invalid value: {}", go_quote(value)), detail),
        field,
    )
}

/// `field.Invalid` for an integer value: `Invalid value: 3[: detail]`.
pub fn invalid_int(field: &str, value: i64, detail: &str) -> Cause {
    Cause::new(
        REASON_INVALID,
        with_detail(format!("Invalid value: {value}"), detail),
        field,
    )
}

/// `field.TypeInvalid`: `Invalid value: <value>[: detail]` with reason
/// `FieldValueTypeInvalid`.
pub fn type_invalid(field: &str, value: &Value, detail: &str) -> Cause {
    Cause::new(
        REASON_TYPE_INVALID,
        with_detail(
            format!("Invalid value: {}", format_bad_value(value)),
            detail,
        ),
        field,
    )
}

/// `field.Forbidden`: `Forbidden[: detail]`.
pub fn forbidden(field: &str, detail: &str) -> Cause {
    Cause::new(
        REASON_FORBIDDEN,
        with_detail("Forbidden".to_string(), detail),
        field,
    )
}

/// `field.TooLong`: `Too long: may not be more than N bytes` (the value is never shown).
pub fn too_long(field: &str, max_length: usize) -> Cause {
    let unit = if max_length == 1 { "byte" } else { "bytes" };
    Cause::new(
        REASON_TOO_LONG,
        format!("Too long: may not be more than {max_length} {unit}"),
        field,
    )
}

/// `field.NotSupported`: `Unsupported value: <value>: supported values: "a", "b"`.
pub fn not_supported(field: &str, value: &Value, supported: &[&str]) -> Cause {
    let detail = if supported.is_empty() {
        String::new()
    } else {
        let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
        format!("supported values: {}", quoted.join(", "))
    };
    Cause::new(
        REASON_NOT_SUPPORTED,
        with_detail(
            format!("Unsupported value: {}", format_bad_value(value)),
            &detail,
        ),
        field,
    )
}

/// `field.Duplicate`: `Duplicate value: <value>`.
pub fn duplicate(field: &str, value: &Value) -> Cause {
    Cause::new(
        REASON_DUPLICATE,
        format!("Duplicate value: {}", format_bad_value(value)),
        field,
    )
}

/// `field.NotFound`: `Not found: <value>`.
pub fn not_found(field: &str, value: &Value) -> Cause {
    Cause::new(
        REASON_NOT_FOUND,
        format!("Not found: {}", format_bad_value(value)),
        field,
    )
}

/// `field.InternalError`: `Internal error: detail`.
pub fn internal_error(field: &str, detail: &str) -> Cause {
    Cause::new(
        REASON_INTERNAL,
        with_detail("Internal error".to_string(), detail),
        field,
    )
}

/// `parent.child`, or `child` at the root.
pub fn child_path(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}.{child}")
    }
}

/// `parent[i]`
pub fn index_path(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// `parent[key]`
pub fn key_path(parent: &str, key: &str) -> String {
    format!("{parent}[{key}]")
}

fn str_field<'a>(obj: &'a Value, key: &str) -> &'a str {
    obj.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// A map of strings at `obj[key]`, checking its shape: labels and annotations must be
/// objects whose values are strings. Reports what is not and yields the usable entries.
fn string_map<'a>(
    obj: &'a Value,
    key: &str,
    path: &str,
    errs: &mut Vec<Cause>,
) -> Vec<(&'a str, &'a str)> {
    match obj.get(key) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(map)) => string_map_entries(map, path, errs),
        Some(other) => {
            errs.push(type_invalid(path, other, "must be an object"));
            Vec::new()
        }
    }
}

/// `ValidateLabelName`: a label key must be a qualified name.
pub fn validate_label_name(name: &str, path: &str) -> Vec<Cause> {
    names::is_qualified_name(name)
        .into_iter()
        .map(|msg| invalid_str(path, name, &msg))
        .collect()
}

/// `ValidateLabels` over (key, value) pairs: keys are qualified names, values label values.
/// Errors are reported on `path` itself (`metadata.labels`), as upstream does.
pub fn validate_labels<'a>(
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
    path: &str,
) -> Vec<Cause> {
    let mut errs = Vec::new();
    for (k, v) in labels {
        errs.extend(validate_label_name(k, path));
        for msg in names::is_valid_label_value(v) {
            errs.push(invalid_str(path, v, &msg));
        }
    }
    errs
}

/// [`validate_labels`] for a JSON object of labels (`metadata.labels`, `matchLabels`).
pub fn validate_labels_json(labels: &Map<String, Value>, path: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    let pairs = string_map_entries(labels, path, &mut errs);
    errs.extend(validate_labels(pairs, path));
    errs
}

fn string_map_entries<'a>(
    map: &'a Map<String, Value>,
    path: &str,
    errs: &mut Vec<Cause>,
) -> Vec<(&'a str, &'a str)> {
    let mut out = Vec::with_capacity(map.len());
    for (k, v) in map {
        match v {
            Value::String(s) => out.push((k.as_str(), s.as_str())),
            Value::Null => out.push((k.as_str(), "")),
            other => errs.push(type_invalid(&key_path(path, k), other, "must be a string")),
        }
    }
    out
}

/// `ValidateAnnotations`: keys are qualified names (case-insensitively), and keys plus
/// values total at most 256 KiB.
pub fn validate_annotations<'a>(
    annotations: impl IntoIterator<Item = (&'a str, &'a str)>,
    path: &str,
) -> Vec<Cause> {
    let mut errs = Vec::new();
    let mut total = 0usize;
    for (k, v) in annotations {
        total = total.saturating_add(k.len()).saturating_add(v.len());
        for msg in names::is_qualified_name(&k.to_lowercase()) {
            errs.push(invalid_str(path, k, &msg));
        }
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT_B {
        errs.push(too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT_B));
    }
    errs
}

/// `apiVersion` split as `schema.ParseGroupVersion` does: `(group, version)`, or `None`
/// when it has more than one `/`.
fn parse_group_version(api_version: &str) -> Option<(&str, &str)> {
    if api_version.is_empty() {
        return Some(("", ""));
    }
    let mut parts = api_version.split('/');
    let first = parts.next().unwrap_or_default();
    match (parts.next(), parts.next()) {
        (None, _) => Some(("", first)),
        (Some(second), None) => Some((first, second)),
        _ => None,
    }
}

/// The OwnerReference as Go would marshal it in an error message.
fn owner_reference_json(reference: &Value) -> Value {
    let mut out = Map::new();
    for key in ["apiVersion", "kind", "name", "uid"] {
        out.insert(
            key.to_string(),
            Value::String(str_field(reference, key).to_string()),
        );
    }
    for key in ["controller", "blockOwnerDeletion"] {
        if let Some(v @ Value::Bool(_)) = reference.get(key) {
            out.insert(key.to_string(), v.clone());
        }
    }
    Value::Object(out)
}

/// `ValidateOwnerReferences`: apiVersion, kind, name and uid are set, no Event owners, at
/// most one controller. Errors name the list's path without an index, like upstream.
pub fn validate_owner_references(references: &Value, path: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    let list = match references {
        Value::Null => return errs,
        Value::Array(list) => list,
        other => {
            errs.push(type_invalid(path, other, "must be an array"));
            return errs;
        }
    };
    let mut first_controller: Option<String> = None;
    for reference in list {
        let api_version = str_field(reference, "apiVersion");
        let kind = str_field(reference, "kind");
        let name = str_field(reference, "name");
        let uid = str_field(reference, "uid");
        let (group, version) = parse_group_version(api_version).unwrap_or(("", ""));
        if version.is_empty() {
            errs.push(invalid_str(
                &child_path(path, "apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        if kind.is_empty() {
            errs.push(invalid_str(
                &child_path(path, "kind"),
                kind,
                "must not be empty",
            ));
        }
        if name.is_empty() {
            errs.push(invalid_str(
                &child_path(path, "name"),
                name,
                "must not be empty",
            ));
        }
        if uid.is_empty() {
            errs.push(invalid_str(
                &child_path(path, "uid"),
                uid,
                "must not be empty",
            ));
        }
        if group.is_empty() && version == "v1" && kind == "Event" {
            errs.push(invalid(
                path,
                &owner_reference_json(reference),
                &format!("{group}/{version}, Kind={kind} is disallowed from being an owner"),
            ));
        }
        if reference.get("controller").and_then(Value::as_bool) == Some(true) {
            let current = format!("{kind}/{name}");
            match &first_controller {
                Some(first) => {
                    let all: Vec<Value> = list.iter().map(owner_reference_json).collect();
                    errs.push(invalid(
                        path,
                        &Value::Array(all),
                        &format!("Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"),
                    ));
                }
                None => first_controller = Some(current),
            }
        }
    }
    errs
}

/// `metav1.FinalizerOrphanDependents`
pub const FINALIZER_ORPHAN_DEPENDENTS: &str = "orphan";
/// `metav1.FinalizerDeleteDependents`
pub const FINALIZER_DELETE_DEPENDENTS: &str = "foregroundDeletion";

/// `ValidateFinalizers`: every finalizer is a qualified name, and `orphan` and
/// `foregroundDeletion` are not both set.
pub fn validate_finalizers(finalizers: &Value, path: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    let list = match finalizers {
        Value::Null => return errs,
        Value::Array(list) => list,
        other => {
            errs.push(type_invalid(path, other, "must be an array"));
            return errs;
        }
    };
    let mut orphan = false;
    let mut delete = false;
    for (i, finalizer) in list.iter().enumerate() {
        let Some(name) = finalizer.as_str() else {
            errs.push(type_invalid(
                &index_path(path, i),
                finalizer,
                "must be a string",
            ));
            continue;
        };
        for msg in names::is_qualified_name(name) {
            errs.push(invalid_str(path, name, &msg));
        }
        orphan |= name == FINALIZER_ORPHAN_DEPENDENTS;
        delete |= name == FINALIZER_DELETE_DEPENDENTS;
    }
    if orphan && delete {
        errs.push(invalid(
            path,
            finalizers,
            &format!("finalizer {FINALIZER_ORPHAN_DEPENDENTS} and {FINALIZER_DELETE_DEPENDENTS} cannot be both set"),
        ));
    }
    errs
}

/// `ValidateFieldManager`: at most 128 bytes, printable characters only.
pub fn validate_field_manager(manager: &str, path: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    if manager.len() > FIELD_MANAGER_MAX_LENGTH {
        errs.push(too_long(path, FIELD_MANAGER_MAX_LENGTH));
    }
    for (i, c) in manager.char_indices() {
        if !go_is_print(c) {
            errs.push(invalid_str(
                path,
                manager,
                &format!("invalid character U+{:04X} (at position {i})", c as u32),
            ));
        }
    }
    errs
}

/// `ValidateManagedFields`: operation `Apply`/`Update`, fieldsType `FieldsV1`, a valid
/// manager and a bounded subresource.
pub fn validate_managed_fields(entries: &Value, path: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    let list = match entries {
        Value::Null => return errs,
        Value::Array(list) => list,
        other => {
            errs.push(type_invalid(path, other, "must be an array"));
            return errs;
        }
    };
    for (i, entry) in list.iter().enumerate() {
        let entry_path = index_path(path, i);
        let operation = str_field(entry, "operation");
        if operation != "Apply" && operation != "Update" {
            errs.push(invalid_str(
                &child_path(&entry_path, "operation"),
                operation,
                "must be `Apply` or `Update`",
            ));
        }
        let fields_type = str_field(entry, "fieldsType");
        if !fields_type.is_empty() && fields_type != "FieldsV1" {
            errs.push(invalid_str(
                &child_path(&entry_path, "fieldsType"),
                fields_type,
                "must be `FieldsV1`",
            ));
        }
        errs.extend(validate_field_manager(
            str_field(entry, "manager"),
            &child_path(&entry_path, "manager"),
        ));
        if str_field(entry, "subresource").len() > MAX_SUBRESOURCE_NAME_LENGTH {
            errs.push(too_long(
                &child_path(&entry_path, "subresource"),
                MAX_SUBRESOURCE_NAME_LENGTH,
            ));
        }
    }
    errs
}

/// `ValidateObjectMeta` for a create (after `generateName` has produced `name`):
///
/// - `generateName`, when set, must be a valid prefix under `name_rule`;
/// - `name` is required (`name or generateName is required`) and must follow `name_rule`;
/// - `namespace` is required and a DNS label when `namespaced`, forbidden otherwise;
/// - `generation` is not negative; labels, annotations, ownerReferences, finalizers and
///   managedFields are well formed.
///
/// `path` is the metadata's own path, normally `metadata`.
pub fn validate_object_meta(
    meta: &Value,
    namespaced: bool,
    name_rule: NameRule,
    path: &str,
) -> Vec<Cause> {
    let mut errs = Vec::new();
    if !meta.is_object() && !meta.is_null() {
        errs.push(type_invalid(path, meta, "must be an object"));
        return errs;
    }
    let generate_name = str_field(meta, "generateName");
    if !generate_name.is_empty() {
        for msg in name_rule.validate(generate_name, true) {
            errs.push(invalid_str(
                &child_path(path, "generateName"),
                generate_name,
                &msg,
            ));
        }
    }
    let name = str_field(meta, "name");
    if name.is_empty() {
        errs.push(required(
            &child_path(path, "name"),
            "name or generateName is required",
        ));
    } else {
        for msg in name_rule.validate(name, false) {
            errs.push(invalid_str(&child_path(path, "name"), name, &msg));
        }
    }
    errs.extend(validate_namespace_field(meta, namespaced, path));
    errs.extend(validate_meta_common(meta, path));
    errs
}

fn validate_namespace_field(meta: &Value, namespaced: bool, path: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    let namespace = str_field(meta, "namespace");
    let field = child_path(path, "namespace");
    if namespaced {
        if namespace.is_empty() {
            errs.push(required(&field, ""));
        } else {
            for msg in NameRule::DnsLabel.validate(namespace, false) {
                errs.push(invalid_str(&field, namespace, &msg));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(forbidden(&field, "not allowed on this type"));
    }
    errs
}

/// What create and update both check: generation, labels, annotations, owners, finalizers
/// and managedFields.
fn validate_meta_common(meta: &Value, path: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    if let Some(generation) = meta.get("generation").and_then(Value::as_i64) {
        if generation < 0 {
            errs.push(invalid_int(
                &child_path(path, "generation"),
                generation,
                IS_NEGATIVE_ERROR_MSG,
            ));
        }
    }
    errs.extend(validate_labels_and_annotations(meta, path));
    errs.extend(validate_owner_references(
        meta.get("ownerReferences").unwrap_or(&Value::Null),
        &child_path(path, "ownerReferences"),
    ));
    errs.extend(validate_finalizers(
        meta.get("finalizers").unwrap_or(&Value::Null),
        &child_path(path, "finalizers"),
    ));
    errs.extend(validate_managed_fields(
        meta.get("managedFields").unwrap_or(&Value::Null),
        &child_path(path, "managedFields"),
    ));
    errs
}

fn validate_labels_and_annotations(meta: &Value, path: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    let labels_path = child_path(path, "labels");
    let labels = string_map(meta, "labels", &labels_path, &mut errs);
    errs.extend(validate_labels(labels, &labels_path));
    let annotations_path = child_path(path, "annotations");
    let annotations = string_map(meta, "annotations", &annotations_path, &mut errs);
    errs.extend(validate_annotations(annotations, &annotations_path));
    errs
}

/// `ValidateObjectMetaUpdate`: identity fields are immutable (`field is immutable`), the
/// generation does not go down, no finalizer is added to an object being deleted, and
/// labels, annotations, owners and managedFields are well formed. `resourceVersion` must
/// be set: for unconditional updates the caller fills it in from the stored object first,
/// as upstream's store does.
pub fn validate_object_meta_update(new_meta: &Value, old_meta: &Value, path: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    let null = Value::Null;
    let field = |key: &str| child_path(path, key);

    let old_deleting = !matches!(old_meta.get("deletionTimestamp"), None | Some(Value::Null));
    if old_deleting {
        let as_set = |meta: &Value| -> std::collections::BTreeSet<String> {
            meta.get("finalizers")
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let old = as_set(old_meta);
        let extra: Vec<String> = as_set(new_meta).difference(&old).cloned().collect();
        if !extra.is_empty() {
            let listed: Vec<String> = extra.iter().map(|s| go_quote(s)).collect();
            errs.push(forbidden(
                &field("finalizers"),
                &format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    listed.join(", ")
                ),
            ));
        }
    }

    let resource_version = str_field(new_meta, "resourceVersion");
    if resource_version.is_empty() {
        errs.push(invalid_str(
            &field("resourceVersion"),
            resource_version,
            "must be specified for an update",
        ));
    }

    let new_generation = new_meta
        .get("generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let old_generation = old_meta
        .get("generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if new_generation < old_generation {
        errs.push(invalid_int(
            &field("generation"),
            new_generation,
            "must not be decremented",
        ));
    }

    for (key, empty) in [
        ("name", Value::String(String::new())),
        ("namespace", Value::String(String::new())),
        ("uid", Value::String(String::new())),
        ("creationTimestamp", Value::Null),
        ("deletionTimestamp", Value::Null),
        ("deletionGracePeriodSeconds", Value::Null),
    ] {
        let new_value = new_meta.get(key).unwrap_or(&null);
        let old_value = old_meta.get(key).unwrap_or(&null);
        let normalize = |v: &Value| {
            if v.is_null() {
                empty.clone()
            } else {
                v.clone()
            }
        };
        if normalize(new_value) != normalize(old_value) {
            errs.push(invalid(
                &field(key),
                &normalize(new_value),
                FIELD_IMMUTABLE_ERROR_MSG,
            ));
        }
    }

    errs.extend(validate_labels_and_annotations(new_meta, path));
    errs.extend(validate_owner_references(
        new_meta.get("ownerReferences").unwrap_or(&null),
        &field("ownerReferences"),
    ));
    errs.extend(validate_managed_fields(
        new_meta.get("managedFields").unwrap_or(&null),
        &field("managedFields"),
    ));
    errs
}

/// `ValidateLabelSelector` for a meta/v1 LabelSelector as JSON: matchLabels like labels,
/// and each matchExpression has a valid key and operator, with values exactly when the
/// operator is `In`/`NotIn`.
pub fn validate_label_selector(selector: &Value, path: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    match selector {
        Value::Null => return errs,
        Value::Object(_) => {}
        other => {
            errs.push(type_invalid(path, other, "must be an object"));
            return errs;
        }
    }
    let labels_path = child_path(path, "matchLabels");
    let labels = string_map(selector, "matchLabels", &labels_path, &mut errs);
    errs.extend(validate_labels(labels, &labels_path));
    let expressions_path = child_path(path, "matchExpressions");
    match selector.get("matchExpressions") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (i, expr) in list.iter().enumerate() {
                let expr_path = index_path(&expressions_path, i);
                let values_len = expr
                    .get("values")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                let operator = expr.get("operator").unwrap_or(&Value::Null);
                match operator.as_str() {
                    Some("In") | Some("NotIn") => {
                        if values_len == 0 {
                            errs.push(required(
                                &child_path(&expr_path, "values"),
                                "must be specified when `operator` is 'In' or 'NotIn'",
                            ));
                        }
                    }
                    Some("Exists") | Some("DoesNotExist") => {
                        if values_len > 0 {
                            errs.push(forbidden(
                                &child_path(&expr_path, "values"),
                                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                            ));
                        }
                    }
                    _ => {
                        let shown = if operator.is_null() {
                            Value::String(String::new())
                        } else {
                            operator.clone()
                        };
                        errs.push(invalid(
                            &child_path(&expr_path, "operator"),
                            &shown,
                            "not a valid selector operator",
                        ));
                    }
                }
                errs.extend(validate_label_name(
                    str_field(expr, "key"),
                    &child_path(&expr_path, "key"),
                ));
            }
        }
        Some(other) => errs.push(type_invalid(&expressions_path, other, "must be an array")),
    }
    errs
}

/// `ValidateDryRun`: the only valid value is `All`.
pub fn validate_dry_run(dry_run: &[String], path: &str) -> Vec<Cause> {
    if dry_run.iter().all(|v| v == "All") {
        Vec::new()
    } else {
        let shown = Value::Array(dry_run.iter().cloned().map(Value::String).collect());
        vec![not_supported(path, &shown, &["All"])]
    }
}

/// `ValidateFieldValidation`: empty, `Ignore`, `Strict` or `Warn`.
pub fn validate_field_validation(value: &str, path: &str) -> Vec<Cause> {
    match value {
        "" | "Ignore" | "Strict" | "Warn" => Vec::new(),
        other => vec![not_supported(
            path,
            &Value::String(other.to_string()),
            &["", "Ignore", "Strict", "Warn"],
        )],
    }
}

/// `ValidateCreateOptions` / `ValidateUpdateOptions`: fieldManager, dryRun and
/// fieldValidation, reported on their query-parameter names.
pub fn validate_write_options(
    field_manager: &str,
    dry_run: &[String],
    field_validation: &str,
) -> Vec<Cause> {
    let mut errs = validate_field_manager(field_manager, "fieldManager");
    errs.extend(validate_dry_run(dry_run, "dryRun"));
    errs.extend(validate_field_validation(
        field_validation,
        "fieldValidation",
    ));
    errs
}

/// The propagation policy check of `ValidateDeleteOptions`, plus its dryRun check.
/// `orphan_dependents_set` is whether the deprecated `orphanDependents` was given too.
pub fn validate_delete_options(
    propagation_policy: Option<&str>,
    orphan_dependents_set: bool,
    dry_run: &[String],
) -> Vec<Cause> {
    let mut errs = Vec::new();
    if let Some(policy) = propagation_policy {
        if orphan_dependents_set {
            errs.push(invalid_str(
                "propagationPolicy",
                policy,
                "orphanDependents and deletionPropagation cannot be both set",
            ));
        }
        if !matches!(policy, "Foreground" | "Background" | "Orphan") {
            errs.push(not_supported(
                "propagationPolicy",
                &Value::String(policy.to_string()),
                &["Foreground", "Background", "Orphan", "nil"],
            ));
        }
    }
    errs.extend(validate_dry_run(dry_run, "dryRun"));
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(errs: &[Cause]) -> Vec<String> {
        errs.iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn quoting_like_go() {
        assert_eq!(go_quote("abc"), "\"abc\"");
        assert_eq!(go_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(go_quote("a\nb\tc\u{0}"), "\"a\\nb\\tc\\x00\"");
        assert_eq!(go_quote("Māori"), "\"Māori\"");
        assert_eq!(go_quote("\u{200b}"), "\"\\u200b\"");
        assert_eq!(format_bad_value(&json!(-1)), "-1");
        assert_eq!(format_bad_value(&json!(["a", "b"])), "[\"a\",\"b\"]");
        assert_eq!(format_bad_value(&Value::Null), "null");
    }

    #[test]
    fn cause_builders() {
        assert_eq!(required("metadata.name", "").message, "Required value");
        assert_eq!(
            required("metadata.name", "name or generateName is required").message,
            "Required value: name or generateName is required"
        );
        let c = invalid_str("metadata.name", "Foo", "bad");
        assert_eq!(c.reason, "FieldValueInvalid");
        assert_eq!(c.message, "Invalid value: \"Foo\": bad");
        assert_eq!(forbidden("x", "").message, "Forbidden");
        assert_eq!(
            too_long("metadata.annotations", 262144).message,
            "Too long: may not be more than 262144 bytes"
        );
        assert_eq!(
            too_long("x", 1).message,
            "Too long: may not be more than 1 byte"
        );
        assert_eq!(
            not_supported("dryRun", &json!(["x"]), &["All"]).message,
            "Unsupported value: [\"x\"]: supported values: \"All\""
        );
        assert_eq!(
            duplicate("a", &json!("b")).message,
            "Duplicate value: \"b\""
        );
        assert_eq!(child_path("", "a"), "a");
        assert_eq!(child_path("a", "b"), "a.b");
        assert_eq!(index_path("a", 2), "a[2]");
        assert_eq!(key_path("a", "k"), "a[k]");
    }

    #[test]
    fn object_meta_valid() {
        let meta = json!({
            "name": "web-1",
            "namespace": "default",
            "labels": {"app": "web", "example.com/tier": "", "x": "Y_1.z"},
            "annotations": {"Example.com/Note": "anything at all goes here"},
            "finalizers": ["kubernetes.io/pvc-protection", "foregroundDeletion"],
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1", "controller": true}],
            "managedFields": [{"manager": "kubectl", "operation": "Update", "fieldsType": "FieldsV1"}],
            "generation": 3
        });
        assert!(validate_object_meta(&meta, true, NameRule::DnsSubdomain, "metadata").is_empty());
    }

    #[test]
    fn object_meta_name_required() {
        let errs = validate_object_meta(
            &json!({"namespace": "ns"}),
            true,
            NameRule::DnsSubdomain,
            "metadata",
        );
        assert_eq!(
            messages(&errs),
            vec!["metadata.name: Required value: name or generateName is required"]
        );
        assert_eq!(errs[0].reason, "FieldValueRequired");
        // a missing metadata altogether reports the name and the namespace
        let errs = validate_object_meta(&Value::Null, true, NameRule::DnsSubdomain, "metadata");
        assert_eq!(
            messages(&errs),
            vec![
                "metadata.name: Required value: name or generateName is required",
                "metadata.namespace: Required value"
            ]
        );
    }

    #[test]
    fn object_meta_name_format() {
        let errs = validate_object_meta(
            &json!({"name": "Foo", "namespace": "ns"}),
            true,
            NameRule::DnsSubdomain,
            "metadata",
        );
        assert_eq!(
            messages(&errs),
            vec!["metadata.name: Invalid value: \"Foo\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]
        );
        let errs = validate_object_meta(
            &json!({"name": "a.b"}),
            false,
            NameRule::DnsLabel,
            "metadata",
        );
        assert_eq!(
            messages(&errs),
            vec!["metadata.name: Invalid value: \"a.b\": must not contain dots"]
        );
        let long = "a".repeat(254);
        let errs = validate_object_meta(
            &json!({"name": long}),
            false,
            NameRule::DnsSubdomain,
            "metadata",
        );
        assert_eq!(errs.len(), 1);
        assert!(errs[0]
            .message
            .ends_with(": must be no more than 253 characters"));
        // generateName prefixes may end with a dash, but must otherwise be valid
        let ok = validate_object_meta(
            &json!({"name": "web-x7f2k", "generateName": "web-", "namespace": "ns"}),
            true,
            NameRule::DnsSubdomain,
            "metadata",
        );
        assert!(ok.is_empty());
        let bad = validate_object_meta(
            &json!({"name": "ok", "generateName": "Web-", "namespace": "ns"}),
            true,
            NameRule::DnsSubdomain,
            "metadata",
        );
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].field, "metadata.generateName");
    }

    #[test]
    fn object_meta_namespace_rules() {
        let errs = validate_object_meta(
            &json!({"name": "n", "namespace": "Bad_NS"}),
            true,
            NameRule::DnsSubdomain,
            "metadata",
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "metadata.namespace");
        assert!(errs[0]
            .message
            .starts_with("Invalid value: \"Bad_NS\": a lowercase RFC 1123 label"));
        let errs = validate_object_meta(
            &json!({"name": "n", "namespace": "x"}),
            false,
            NameRule::DnsSubdomain,
            "metadata",
        );
        assert_eq!(
            messages(&errs),
            vec!["metadata.namespace: Forbidden: not allowed on this type"]
        );
        assert_eq!(errs[0].reason, "FieldValueForbidden");
    }

    #[test]
    fn object_meta_namespace_lengths() {
        let ok = "a".repeat(63);
        let long = "a".repeat(64);
        assert!(validate_object_meta(
            &json!({"name": "n", "namespace": ok}),
            true,
            NameRule::DnsSubdomain,
            "metadata"
        )
        .is_empty());
        let errs = validate_object_meta(
            &json!({"name": "n", "namespace": long}),
            true,
            NameRule::DnsSubdomain,
            "metadata",
        );
        assert_eq!(
            messages(&errs),
            vec![format!(
                "metadata.namespace: Invalid value: \"{long}\": must be no more than 63 characters"
            )]
        );
        // a generateName that is too long is cut by the generator, not rejected
        let prefix = format!("{}-", "a".repeat(100));
        let name = names::generate_name(&prefix);
        assert!(validate_object_meta(
            &json!({"name": name, "generateName": prefix, "namespace": "ns"}),
            true,
            NameRule::DnsLabel,
            "metadata"
        )
        .iter()
        .all(|c| c.field == "metadata.generateName"));
    }

    #[test]
    fn object_meta_labels_and_annotations() {
        let meta = json!({
            "name": "n",
            "labels": {"a b": "ok", "good": "-bad"},
            "annotations": {"a/b/c": "v"},
        });
        let errs = validate_object_meta(&meta, false, NameRule::DnsSubdomain, "metadata");
        let msgs = messages(&errs);
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert!(msgs[0]
            .starts_with("metadata.labels: Invalid value: \"a b\": name part must consist of"));
        assert!(msgs[1].starts_with(
            "metadata.labels: Invalid value: \"-bad\": a valid label must be an empty string"
        ));
        assert!(msgs[2].starts_with(
            "metadata.annotations: Invalid value: \"a/b/c\": a qualified name must consist"
        ));

        let big = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_B);
        let errs = validate_object_meta(
            &json!({"name": "n", "annotations": {"k": big}}),
            false,
            NameRule::DnsSubdomain,
            "metadata",
        );
        assert_eq!(
            messages(&errs),
            vec!["metadata.annotations: Too long: may not be more than 262144 bytes"]
        );
        assert_eq!(errs[0].reason, "FieldValueTooLong");
        let fits = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_B - 1);
        assert!(validate_object_meta(
            &json!({"name": "n", "annotations": {"k": fits}}),
            false,
            NameRule::DnsSubdomain,
            "metadata"
        )
        .is_empty());

        let errs = validate_object_meta(
            &json!({"name": "n", "labels": "x"}),
            false,
            NameRule::DnsSubdomain,
            "metadata",
        );
        assert_eq!(errs[0].reason, "FieldValueTypeInvalid");
        let errs = validate_object_meta(
            &json!({"name": "n", "labels": {"a": 1}}),
            false,
            NameRule::DnsSubdomain,
            "metadata",
        );
        assert_eq!(errs[0].field, "metadata.labels[a]");
    }

    #[test]
    fn object_meta_owner_references() {
        let meta = json!({"name": "n", "ownerReferences": [
            {"apiVersion": "", "kind": "", "name": "", "uid": ""},
        ]});
        let errs = validate_object_meta(&meta, false, NameRule::DnsSubdomain, "metadata");
        assert_eq!(
            messages(&errs),
            vec![
                "metadata.ownerReferences.apiVersion: Invalid value: \"\": version must not be empty",
                "metadata.ownerReferences.kind: Invalid value: \"\": must not be empty",
                "metadata.ownerReferences.name: Invalid value: \"\": must not be empty",
                "metadata.ownerReferences.uid: Invalid value: \"\": must not be empty",
            ]
        );
        let meta = json!({"name": "n", "ownerReferences": [
            {"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "1"},
        ]});
        let errs = validate_object_meta(&meta, false, NameRule::DnsSubdomain, "metadata");
        assert_eq!(
            messages(&errs),
            vec!["metadata.ownerReferences: Invalid value: {\"apiVersion\":\"v1\",\"kind\":\"Event\",\"name\":\"e\",\"uid\":\"1\"}: /v1, Kind=Event is disallowed from being an owner"]
        );
        let meta = json!({"name": "n", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "1", "controller": true},
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "b", "uid": "2", "controller": true},
        ]});
        let errs = validate_object_meta(&meta, false, NameRule::DnsSubdomain, "metadata");
        assert_eq!(errs.len(), 1);
        assert!(errs[0].message.ends_with(": Only one reference can have Controller set to true. Found \"true\" in references for ReplicaSet/a and ReplicaSet/b"));
        // more than one slash: no version can be parsed
        let meta = json!({"name": "n", "ownerReferences": [{"apiVersion": "a/b/c", "kind": "K", "name": "a", "uid": "1"}]});
        assert_eq!(
            validate_object_meta(&meta, false, NameRule::DnsSubdomain, "metadata").len(),
            1
        );
    }

    #[test]
    fn object_meta_finalizers_and_generation() {
        let meta = json!({"name": "n", "generation": -1, "finalizers": ["orphan", "foregroundDeletion", "a/b/c"]});
        let msgs = messages(&validate_object_meta(
            &meta,
            false,
            NameRule::DnsSubdomain,
            "metadata",
        ));
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert_eq!(
            msgs[0],
            "metadata.generation: Invalid value: -1: must be greater than or equal to 0"
        );
        assert!(
            msgs[1].starts_with("metadata.finalizers: Invalid value: \"a/b/c\": a qualified name")
        );
        assert_eq!(
            msgs[2],
            "metadata.finalizers: Invalid value: [\"orphan\",\"foregroundDeletion\",\"a/b/c\"]: finalizer orphan and foregroundDeletion cannot be both set"
        );
    }

    #[test]
    fn object_meta_managed_fields() {
        let meta = json!({"name": "n", "managedFields": [
            {"manager": "m\u{7}", "operation": "Patch", "fieldsType": "FieldsV2", "subresource": "s".repeat(257)}
        ]});
        let msgs = messages(&validate_object_meta(
            &meta,
            false,
            NameRule::DnsSubdomain,
            "metadata",
        ));
        assert_eq!(
            msgs,
            vec![
                "metadata.managedFields[0].operation: Invalid value: \"Patch\": must be `Apply` or `Update`",
                "metadata.managedFields[0].fieldsType: Invalid value: \"FieldsV2\": must be `FieldsV1`",
                "metadata.managedFields[0].manager: Invalid value: \"m\\a\": invalid character U+0007 (at position 1)",
                "metadata.managedFields[0].subresource: Too long: may not be more than 256 bytes",
            ]
        );
    }

    #[test]
    fn object_meta_update() {
        let old = json!({"name": "n", "namespace": "ns", "uid": "u", "resourceVersion": "5", "generation": 2,
            "creationTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["a"]});
        let mut new = old.clone();
        assert!(validate_object_meta_update(&new, &old, "metadata").is_empty());

        new["name"] = json!("m");
        new["uid"] = json!("v");
        new["generation"] = json!(1);
        new["resourceVersion"] = json!("");
        new["creationTimestamp"] = Value::Null;
        let msgs = messages(&validate_object_meta_update(&new, &old, "metadata"));
        assert_eq!(
            msgs,
            vec![
                "metadata.resourceVersion: Invalid value: \"\": must be specified for an update",
                "metadata.generation: Invalid value: 1: must not be decremented",
                "metadata.name: Invalid value: \"m\": field is immutable",
                "metadata.uid: Invalid value: \"v\": field is immutable",
                "metadata.creationTimestamp: Invalid value: null: field is immutable",
            ]
        );

        let mut deleting = old.clone();
        deleting["deletionTimestamp"] = json!("2024-01-02T00:00:00Z");
        let mut new = deleting.clone();
        new["finalizers"] = json!(["a", "b", "c"]);
        let msgs = messages(&validate_object_meta_update(&new, &deleting, "metadata"));
        assert_eq!(
            msgs,
            vec!["metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"b\", \"c\"}"]
        );
        // removing finalizers while deleting is fine
        new["finalizers"] = json!([]);
        assert!(validate_object_meta_update(&new, &deleting, "metadata").is_empty());
    }

    #[test]
    fn label_selectors() {
        let good = json!({"matchLabels": {"app": "web"}, "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "x", "operator": "Exists"},
        ]});
        assert!(validate_label_selector(&good, "spec.selector").is_empty());
        let bad = json!({"matchLabels": {"a b": "c"}, "matchExpressions": [
            {"key": "tier", "operator": "In", "values": []},
            {"key": "x", "operator": "Exists", "values": ["a"]},
            {"key": "-y", "operator": "Gt", "values": ["1"]},
        ]});
        let msgs = messages(&validate_label_selector(&bad, "spec.selector"));
        assert_eq!(msgs.len(), 5, "{msgs:?}");
        assert!(msgs[0].starts_with("spec.selector.matchLabels: Invalid value: \"a b\""));
        assert_eq!(msgs[1], "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'");
        assert_eq!(msgs[2], "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'");
        assert_eq!(msgs[3], "spec.selector.matchExpressions[2].operator: Invalid value: \"Gt\": not a valid selector operator");
        assert!(msgs[4].starts_with(
            "spec.selector.matchExpressions[2].key: Invalid value: \"-y\": name part must consist"
        ));
    }

    #[test]
    fn options() {
        assert!(validate_write_options("kubectl", &["All".to_string()], "Strict").is_empty());
        let msgs = messages(&validate_write_options(
            &"m".repeat(129),
            &["Foo".to_string()],
            "Loud",
        ));
        assert_eq!(
            msgs,
            vec![
                "fieldManager: Too long: may not be more than 128 bytes",
                "dryRun: Unsupported value: [\"Foo\"]: supported values: \"All\"",
                "fieldValidation: Unsupported value: \"Loud\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\"",
            ]
        );
        assert!(validate_delete_options(Some("Background"), false, &[]).is_empty());
        let msgs = messages(&validate_delete_options(Some("Later"), true, &[]));
        assert_eq!(
            msgs,
            vec![
                "propagationPolicy: Invalid value: \"Later\": orphanDependents and deletionPropagation cannot be both set",
                "propagationPolicy: Unsupported value: \"Later\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\"",
            ]
        );
    }
}
