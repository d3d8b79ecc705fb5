//! Kubernetes type schemas from the upstream `generated.proto` files (Kubernetes 1.35).
//!
//! One descriptor pool, compiled at build time with the Go doc comments, drives:
//! - [`decode_protobuf`]: `application/vnd.kubernetes.protobuf` request bodies → the JSON
//!   kube-apiserver would produce, generically for every built-in kind;
//! - [`find_unknown_fields`]: strict/warn field validation of JSON bodies;
//! - [`openapi_components`]: OpenAPI v3 component schemas with upstream's names and
//!   `x-kubernetes-*` extensions;
//! - [`field_meta`]: patch strategy, merge keys, list/map types for merge-patch and apply.

mod decode;
mod gvk;
mod meta;
mod model;
mod openapi;
mod pool;
mod unknown;
mod upstream_required;

pub use decode::{
    decode_protobuf, go_duration, kind_message, message_to_json, DecodeError, Decoded,
    PROTOBUF_MAGIC,
};
pub use gvk::{is_kind_message, message_for, openapi_name, package_prefix, split_api_version};
pub use meta::{field_meta, fields_meta, FieldKind, FieldMeta, Scalar};
pub use model::Special;
pub use openapi::{openapi_components, schema_ref, Gvk};
pub use pool::pool;
pub use prost_reflect::MessageDescriptor;
pub use unknown::find_unknown_fields;
