//! Field metadata from the proto comments' markers, for merge-patch and server-side apply.

use crate::gvk::openapi_name;
use crate::model::{model, value_message, FieldModel, Special};
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};

/// A scalar JSON type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar {
    String,
    Bool,
    Int32,
    Int64,
    Double,
    /// base64 in JSON
    Bytes,
}

/// The shape of a field's JSON value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldKind {
    Scalar(Scalar),
    /// An object with fields, by OpenAPI name (`io.k8s.api.core.v1.Container`).
    Message(String),
    /// A value that is replaced as a whole (Time, Quantity, IntOrString, RawExtension,
    /// FieldsV1, apiextensions JSON and the JSONSchemaPropsOr* types), by OpenAPI name.
    Atomic(String),
    /// A JSON array of the inner kind.
    List(Box<FieldKind>),
    /// A JSON object with string keys and values of the inner kind.
    Map(Box<FieldKind>),
}

/// What merge-patch and apply need to know about a field, parsed from its comment markers.
#[derive(Clone, Debug)]
pub struct FieldMeta {
    /// The JSON name.
    pub name: String,
    pub kind: FieldKind,
    /// `+patchStrategy=` (e.g. `merge`, `retainKeys`, `merge,retainKeys`).
    pub patch_strategy: Option<String>,
    /// `+patchMergeKey=`.
    pub patch_merge_key: Option<String>,
    /// `+listType=` (`atomic`, `set`, `map`).
    pub list_type: Option<String>,
    /// `+listMapKey=` in order (repeatable).
    pub list_map_keys: Vec<String>,
    /// `+mapType=` (`atomic`, `granular`), or a message's `+structType=`.
    pub map_type: Option<String>,
    /// `+optional` is present.
    pub optional: bool,
    /// Upstream lists the field as required.
    pub required: bool,
    /// The message of the value to descend into: the field's message, a list's element or a
    /// map's value (`None` for scalars and atomic types).
    pub value_message: Option<MessageDescriptor>,
}

/// The metadata of `msg`'s JSON field `field` (JSON name; fields of inlined Go structs such as
/// a Volume's `emptyDir` are found too).
pub fn field_meta(msg: &MessageDescriptor, field: &str) -> Option<FieldMeta> {
    let model = model(msg)?;
    let fm = model.json_fields.get(*model.by_json.get(field)?)?;
    Some(meta_of(fm))
}

/// The metadata of every JSON field of `msg`, in order.
pub fn fields_meta(msg: &MessageDescriptor) -> Vec<FieldMeta> {
    model(msg)
        .map(|m| m.json_fields.iter().map(meta_of).collect())
        .unwrap_or_default()
}

fn meta_of(fm: &FieldModel) -> FieldMeta {
    let kind = field_kind(&fm.desc);
    let vm = value_message(&fm.desc).filter(|m| Special::of(m).is_none());
    let struct_type = vm
        .as_ref()
        .filter(|_| !fm.desc.is_list() && !fm.desc.is_map())
        .and_then(|m| model(m))
        .and_then(|m| m.markers.struct_type.clone());
    FieldMeta {
        name: fm.json_name.clone(),
        kind,
        patch_strategy: fm.markers.patch_strategy.clone(),
        patch_merge_key: fm.markers.patch_merge_key.clone(),
        list_type: fm.markers.list_type.clone(),
        list_map_keys: fm.markers.list_map_keys.clone(),
        map_type: fm.markers.map_type.clone().or(struct_type),
        optional: fm.markers.optional,
        required: fm.required,
        value_message: vm,
    }
}

fn scalar_of(kind: &Kind) -> Scalar {
    match kind {
        Kind::Bool => Scalar::Bool,
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 | Kind::Uint32 | Kind::Fixed32 => Scalar::Int32,
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64 => Scalar::Int64,
        Kind::Double | Kind::Float => Scalar::Double,
        Kind::Bytes => Scalar::Bytes,
        _ => Scalar::String,
    }
}

fn value_kind(kind: &Kind) -> FieldKind {
    match kind {
        Kind::Message(m) => match Special::of(m) {
            Some(Special::StringList) => {
                FieldKind::List(Box::new(FieldKind::Scalar(Scalar::String)))
            }
            Some(_) => FieldKind::Atomic(openapi_name(m)),
            None => FieldKind::Message(openapi_name(m)),
        },
        other => FieldKind::Scalar(scalar_of(other)),
    }
}

pub(crate) fn field_kind(desc: &FieldDescriptor) -> FieldKind {
    match desc.kind() {
        Kind::Message(entry) if desc.is_map() => {
            FieldKind::Map(Box::new(value_kind(&entry.map_entry_value_field().kind())))
        }
        k if desc.is_list() => FieldKind::List(Box::new(value_kind(&k))),
        k => value_kind(&k),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gvk::message_for;
    use crate::pool::pool;

    fn msg(name: &str) -> MessageDescriptor {
        pool().get_message_by_name(name).expect(name)
    }

    #[test]
    fn pod_spec_containers() {
        let m = field_meta(&msg("api.core.v1.PodSpec"), "containers").unwrap();
        assert_eq!(m.patch_strategy.as_deref(), Some("merge"));
        assert_eq!(m.patch_merge_key.as_deref(), Some("name"));
        assert_eq!(m.list_type.as_deref(), Some("map"));
        assert_eq!(m.list_map_keys, ["name"]);
        assert_eq!(
            m.kind,
            FieldKind::List(Box::new(FieldKind::Message(
                "io.k8s.api.core.v1.Container".into()
            )))
        );
        assert_eq!(
            m.value_message.unwrap().full_name(),
            "api.core.v1.Container"
        );
    }

    #[test]
    fn container_ports_and_service_ports() {
        let c = field_meta(&msg("api.core.v1.Container"), "ports").unwrap();
        assert_eq!(c.list_map_keys, ["containerPort", "protocol"]);
        assert_eq!(c.patch_merge_key.as_deref(), Some("containerPort"));
        assert_eq!(c.list_type.as_deref(), Some("map"));
        assert!(c.optional);
        let s = field_meta(&msg("api.core.v1.ServiceSpec"), "ports").unwrap();
        assert_eq!(s.list_map_keys, ["port", "protocol"]);
        assert_eq!(s.patch_merge_key.as_deref(), Some("port"));
        assert_eq!(s.patch_strategy.as_deref(), Some("merge"));
    }

    #[test]
    fn kinds_of_fields() {
        let meta = msg("apimachinery.pkg.apis.meta.v1.ObjectMeta");
        let labels = field_meta(&meta, "labels").unwrap();
        assert_eq!(
            labels.kind,
            FieldKind::Map(Box::new(FieldKind::Scalar(Scalar::String)))
        );
        assert!(labels.value_message.is_none());
        let ts = field_meta(&meta, "creationTimestamp").unwrap();
        assert_eq!(
            ts.kind,
            FieldKind::Atomic("io.k8s.apimachinery.pkg.apis.meta.v1.Time".into())
        );
        let finalizers = field_meta(&meta, "finalizers").unwrap();
        assert_eq!(finalizers.patch_strategy.as_deref(), Some("merge"));
        assert_eq!(finalizers.list_type.as_deref(), Some("set"));
        let secret = message_for("", "v1", "Secret").unwrap();
        assert_eq!(
            field_meta(&secret, "data").unwrap().kind,
            FieldKind::Map(Box::new(FieldKind::Scalar(Scalar::Bytes)))
        );
        assert!(field_meta(&secret, "nope").is_none());
        // inlined fields are found by their JSON name
        let vol = msg("api.core.v1.Volume");
        assert_eq!(
            field_meta(&vol, "emptyDir").unwrap().kind,
            FieldKind::Message("io.k8s.api.core.v1.EmptyDirVolumeSource".into())
        );
        // +structType=atomic on the referenced message shows as the map type
        let env = msg("api.core.v1.EnvVarSource");
        assert_eq!(
            field_meta(&env, "configMapKeyRef")
                .unwrap()
                .map_type
                .as_deref(),
            Some("atomic")
        );
        let dep = message_for("apps", "v1", "DeploymentSpec");
        assert!(dep.is_none());
        let spec = msg("api.apps.v1.DeploymentSpec");
        let sel = field_meta(&spec, "selector").unwrap();
        assert!(sel.required);
        assert_eq!(
            field_meta(&spec, "replicas").unwrap().kind,
            FieldKind::Scalar(Scalar::Int32)
        );
        let user = msg("api.authentication.v1.UserInfo");
        assert_eq!(
            field_meta(&user, "extra").unwrap().kind,
            FieldKind::Map(Box::new(FieldKind::List(Box::new(FieldKind::Scalar(
                Scalar::String
            )))))
        );
    }
}
