//! Mapping between Kubernetes group/version/kind, proto packages and OpenAPI names.

use crate::pool::pool;
use prost_reflect::MessageDescriptor;

/// Kinds that `metav1.AddToGroupVersion` registers in every group version, so a body may
/// carry them with any `apiVersion` (client-go sends DeleteOptions with the resource's own
/// group version).
const META_KINDS: &[&str] = &[
    "DeleteOptions",
    "ListOptions",
    "GetOptions",
    "CreateOptions",
    "UpdateOptions",
    "PatchOptions",
    "Status",
    "WatchEvent",
    "PartialObjectMetadata",
    "PartialObjectMetadataList",
    "Table",
    "TableOptions",
];

/// Kinds whose Go type has TypeMeta but no ObjectMeta/ListMeta `metadata`.
const KINDS_WITHOUT_METADATA: &[&str] = &[
    "APIVersions",
    "APIGroup",
    "APIGroupList",
    "APIResourceList",
    "PodLogOptions",
    "PodAttachOptions",
    "PodExecOptions",
    "PodPortForwardOptions",
    "PodProxyOptions",
    "NodeProxyOptions",
    "ServiceProxyOptions",
    "ConversionReview",
];

const META_PACKAGE: &str = "apimachinery.pkg.apis.meta";

/// The proto package prefix (without the version) that holds a group's types.
///
/// The core group is `""`; `x.k8s.io` style groups use their first DNS label
/// (`rbac.authorization.k8s.io` → `api.rbac`); the two groups served by other upstream
/// repositories have their own prefixes.
pub fn package_prefix(group: &str) -> Option<String> {
    match group {
        "" | "core" => Some("api.core".to_string()),
        "apiextensions.k8s.io" => Some("apiextensions_apiserver.pkg.apis.apiextensions".into()),
        "apiregistration.k8s.io" => Some("kube_aggregator.pkg.apis.apiregistration".into()),
        "meta.k8s.io" => Some(META_PACKAGE.to_string()),
        g if !g.contains('.') => Some(format!("api.{g}")),
        g if g.ends_with(".k8s.io") => {
            let label = g.split('.').next().unwrap_or(g);
            Some(format!("api.{label}"))
        }
        _ => None,
    }
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The protobuf message of a built-in kind, or `None` when the group version or kind is not
/// one of the compiled upstream kinds (CRDs, unknown groups, types that are not kinds such as
/// `DeploymentSpec`).
pub fn message_for(group: &str, version: &str, kind: &str) -> Option<MessageDescriptor> {
    if !valid_segment(version) || !valid_segment(kind) {
        return None;
    }
    if let Some(prefix) = package_prefix(group) {
        if let Some(m) = pool().get_message_by_name(&format!("{prefix}.{version}.{kind}")) {
            if is_kind_message(&m) {
                return Some(m);
            }
        }
    }
    if META_KINDS.contains(&kind) && version.starts_with('v') {
        return pool().get_message_by_name(&format!("{META_PACKAGE}.v1.{kind}"));
    }
    None
}

/// Whether a message is a kind, i.e. its Go type embeds TypeMeta so that `apiVersion` and
/// `kind` are valid JSON keys: a top-level message with ObjectMeta/ListMeta `metadata`, or one
/// of the meta kinds registered in every group version.
pub fn is_kind_message(msg: &MessageDescriptor) -> bool {
    if msg.parent_message().is_some() {
        return false;
    }
    if KINDS_WITHOUT_METADATA.contains(&msg.name())
        || (msg.package_name() == format!("{META_PACKAGE}.v1") && META_KINDS.contains(&msg.name()))
    {
        return true;
    }
    msg.get_field_by_name("metadata").is_some_and(|f| {
        matches!(f.kind(), prost_reflect::Kind::Message(m)
            if m.full_name() == "apimachinery.pkg.apis.meta.v1.ObjectMeta"
                || m.full_name() == "apimachinery.pkg.apis.meta.v1.ListMeta")
    })
}

/// Splits an `apiVersion` into group and version (`"apps/v1"` → `("apps", "v1")`,
/// `"v1"` → `("", "v1")`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// The OpenAPI definition name upstream gives a proto message's Go type, e.g.
/// `io.k8s.api.apps.v1.Deployment`, `io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta`,
/// `io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps`.
pub fn openapi_name(msg: &MessageDescriptor) -> String {
    openapi_name_of(msg.full_name())
}

pub(crate) fn openapi_name_of(full_name: &str) -> String {
    const MAP: &[(&str, &str)] = &[
        (
            "apiextensions_apiserver.",
            "io.k8s.apiextensions-apiserver.",
        ),
        ("kube_aggregator.", "io.k8s.kube-aggregator."),
        ("api.", "io.k8s.api."),
        ("apimachinery.", "io.k8s.apimachinery."),
    ];
    for (from, to) in MAP {
        if let Some(rest) = full_name.strip_prefix(from) {
            return format!("{to}{rest}");
        }
    }
    full_name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_and_named_groups() {
        let pod = message_for("", "v1", "Pod").expect("Pod");
        assert_eq!(pod.full_name(), "api.core.v1.Pod");
        assert_eq!(
            message_for("apps", "v1", "Deployment").map(|m| m.full_name().to_string()),
            Some("api.apps.v1.Deployment".into())
        );
        assert_eq!(
            message_for("rbac.authorization.k8s.io", "v1", "ClusterRole")
                .map(|m| m.full_name().to_string()),
            Some("api.rbac.v1.ClusterRole".into())
        );
        assert_eq!(
            message_for("flowcontrol.apiserver.k8s.io", "v1", "FlowSchema")
                .map(|m| m.full_name().to_string()),
            Some("api.flowcontrol.v1.FlowSchema".into())
        );
        let crd = message_for("apiextensions.k8s.io", "v1", "CustomResourceDefinition").unwrap();
        assert_eq!(
            openapi_name(&crd),
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition"
        );
        let svc = message_for("apiregistration.k8s.io", "v1", "APIService").unwrap();
        assert_eq!(
            openapi_name(&svc),
            "io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIService"
        );
    }

    #[test]
    fn meta_kinds_in_any_group() {
        for (g, v) in [
            ("", "v1"),
            ("apps", "v1"),
            ("meta.k8s.io", "v1"),
            ("batch", "v1"),
        ] {
            let m = message_for(g, v, "DeleteOptions").expect("DeleteOptions");
            assert_eq!(
                openapi_name(&m),
                "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"
            );
        }
        assert_eq!(
            message_for("", "v1", "Status").map(|m| m.full_name().to_string()),
            Some("apimachinery.pkg.apis.meta.v1.Status".into())
        );
    }

    #[test]
    fn unknown_gvks() {
        assert!(message_for("example.com", "v1", "Widget").is_none());
        assert!(message_for("apps", "v1beta1", "Deployment").is_none());
        assert!(message_for("apps", "v1", "NoSuchKind").is_none());
        assert!(message_for("", "v1", "ObjectMeta.LabelsEntry").is_none());
        assert!(message_for("", "v1", "").is_none());
        assert!(message_for("apps", "v1", "DeploymentSpec").is_none());
        assert!(message_for("", "v1", "PodLogOptions").is_some());
        // nested map-entry messages are not kinds
        assert!(message_for("", "v1", "ConfigMap.DataEntry").is_none());
    }

    #[test]
    fn openapi_names() {
        let p = pool();
        for (full, name) in [
            ("api.apps.v1.Deployment", "io.k8s.api.apps.v1.Deployment"),
            (
                "apimachinery.pkg.apis.meta.v1.ObjectMeta",
                "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            ),
            (
                "apimachinery.pkg.util.intstr.IntOrString",
                "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
            ),
            (
                "apimachinery.pkg.api.resource.Quantity",
                "io.k8s.apimachinery.pkg.api.resource.Quantity",
            ),
        ] {
            let m = p.get_message_by_name(full).expect(full);
            assert_eq!(openapi_name(&m), name);
        }
    }
}
