//! The one table of resources the API server serves. Routing, discovery, OpenAPI, field
//! selectors and (later) printing all read from it; nothing is listed twice.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::OnceLock;

use k8s_openapi::api;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use k8s_openapi::{ListableResource, NamespaceResourceScope, Resource};

use crate::strategy::{self, Strategy};

pub const GET: &str = "get";
pub const LIST: &str = "list";
pub const WATCH: &str = "watch";
pub const CREATE: &str = "create";
pub const UPDATE: &str = "update";
pub const PATCH: &str = "patch";
pub const DELETE: &str = "delete";
pub const DELETECOLLECTION: &str = "deletecollection";

const ALL_VERBS: &[&str] = &[
    CREATE,
    DELETE,
    DELETECOLLECTION,
    GET,
    LIST,
    PATCH,
    UPDATE,
    WATCH,
];
const GET_PATCH_UPDATE: &[&str] = &[GET, PATCH, UPDATE];

/// A subresource such as `status` or `scale`, with the kind its responses carry.
#[derive(Debug, Clone, Copy)]
pub struct Subresource {
    pub name: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

const fn sub(
    name: &'static str,
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    verbs: &'static [&'static str],
) -> Subresource {
    Subresource {
        name,
        group,
        version,
        kind,
        verbs,
    }
}

/// Streaming pod subresources are served by the kubelet (a later issue); discovery
/// already advertises them because kubectl decides by discovery which protocol to use.
const POD_SUBRESOURCES: &[Subresource] = &[
    sub("attach", "", "v1", "PodAttachOptions", &[CREATE, GET]),
    sub("binding", "", "v1", "Binding", &[CREATE]),
    sub("eviction", "policy", "v1", "Eviction", &[CREATE]),
    sub("exec", "", "v1", "PodExecOptions", &[CREATE, GET]),
    sub("log", "", "v1", "Pod", &[GET]),
    sub(
        "portforward",
        "",
        "v1",
        "PodPortForwardOptions",
        &[CREATE, GET],
    ),
    sub("status", "", "v1", "Pod", GET_PATCH_UPDATE),
];

/// One served resource.
pub struct ResourceDef {
    pub group: &'static str,
    pub version: &'static str,
    /// The plural, as in the URL.
    pub resource: &'static str,
    pub singular: String,
    pub kind: &'static str,
    pub list_kind: &'static str,
    pub namespaced: bool,
    pub verbs: &'static [&'static str],
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub subresources: Vec<Subresource>,
    /// Fields that field selectors may use beyond metadata.name / metadata.namespace.
    pub selectable_fields: &'static [&'static str],
    pub strategy: &'static dyn Strategy,
}

impl ResourceDef {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn group_version(&self) -> String {
        self.api_version()
    }

    /// Where this resource's objects live in the store. Versions of one group share it.
    pub fn storage_prefix(&self) -> String {
        let (group, _) = crate::convert::storage_group_version(self);
        let group = if group.is_empty() { "core" } else { group };
        format!("/registry/{group}/{}/", self.resource)
    }

    pub fn subresource(&self, name: &str) -> Option<&Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    pub fn has_status(&self) -> bool {
        self.subresource("status").is_some()
    }

    pub fn storage_hash(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("{}/{}/{}", self.group, self.version, self.kind));
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &digest[..8])
    }
}

struct Row {
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    subresources: Vec<Subresource>,
    selectable_fields: &'static [&'static str],
    strategy: &'static dyn Strategy,
    verbs: &'static [&'static str],
}

impl Row {
    fn new() -> Self {
        Row {
            short_names: &[],
            categories: &[],
            subresources: Vec::new(),
            selectable_fields: &[],
            strategy: &strategy::Generic,
            verbs: ALL_VERBS,
        }
    }
    fn short(mut self, names: &'static [&'static str]) -> Self {
        self.short_names = names;
        self
    }
    fn all(mut self) -> Self {
        self.categories = &["all"];
        self
    }
    fn status<K: Resource>(mut self) -> Self {
        self.subresources.push(sub(
            "status",
            K::GROUP,
            K::VERSION,
            K::KIND,
            GET_PATCH_UPDATE,
        ));
        self
    }
    fn scale(mut self) -> Self {
        self.subresources
            .push(sub("scale", "autoscaling", "v1", "Scale", GET_PATCH_UPDATE));
        self
    }
    fn subs(mut self, subs: &[Subresource]) -> Self {
        self.subresources.extend_from_slice(subs);
        self
    }
    fn fields(mut self, fields: &'static [&'static str]) -> Self {
        self.selectable_fields = fields;
        self
    }
    fn strategy(mut self, strategy: &'static dyn Strategy) -> Self {
        self.strategy = strategy;
        self
    }
    fn of<K: ListableResource + 'static>(self) -> ResourceDef {
        ResourceDef {
            group: K::GROUP,
            version: K::VERSION,
            resource: K::URL_PATH_SEGMENT,
            singular: K::KIND.to_lowercase(),
            kind: K::KIND,
            list_kind: K::LIST_KIND,
            namespaced: TypeId::of::<K::Scope>() == TypeId::of::<NamespaceResourceScope>(),
            verbs: self.verbs,
            short_names: self.short_names,
            categories: self.categories,
            subresources: self.subresources,
            selectable_fields: self.selectable_fields,
            strategy: self.strategy,
        }
    }
}

const POD_FIELDS: &[&str] = &[
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
];
const EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];
const EVENTS_K8S_IO_FIELDS: &[&str] = &[
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reason",
    "reportingController",
    "type",
];

fn build() -> Vec<ResourceDef> {
    use api::{
        admissionregistration::v1 as admreg, apps::v1 as apps, autoscaling::v1 as as1,
        autoscaling::v2 as as2, batch::v1 as batch, certificates::v1 as certs,
        coordination::v1 as coord, core::v1 as core, discovery::v1 as disc, events::v1 as events,
        networking::v1 as net, node::v1 as node, policy::v1 as policy, rbac::v1 as rbac,
        scheduling::v1 as sched, storage::v1 as storage,
    };
    vec![
        // core/v1
        Row::new()
            .short(&["ns"])
            .status::<core::Namespace>()
            .subs(&[sub("finalize", "", "v1", "Namespace", &[UPDATE])])
            .fields(&["status.phase"])
            .strategy(&strategy::Namespace)
            .of::<core::Namespace>(),
        Row::new()
            .short(&["po"])
            .all()
            .subs(POD_SUBRESOURCES)
            .fields(POD_FIELDS)
            .strategy(&strategy::Pod)
            .of::<core::Pod>(),
        Row::new()
            .short(&["svc"])
            .all()
            .status::<core::Service>()
            .subs(&[sub(
                "proxy",
                "",
                "v1",
                "ServiceProxyOptions",
                &[CREATE, DELETE, GET, PATCH, UPDATE],
            )])
            .strategy(&strategy::Service)
            .of::<core::Service>(),
        Row::new().short(&["ep"]).of::<core::Endpoints>(),
        Row::new()
            .short(&["cm"])
            .strategy(&strategy::Configmap)
            .of::<core::ConfigMap>(),
        Row::new()
            .fields(&["type"])
            .strategy(&strategy::Secret)
            .of::<core::Secret>(),
        Row::new()
            .short(&["sa"])
            .subs(&[sub(
                "token",
                "authentication.k8s.io",
                "v1",
                "TokenRequest",
                &[CREATE],
            )])
            .of::<core::ServiceAccount>(),
        Row::new()
            .short(&["no"])
            .status::<core::Node>()
            .subs(&[sub(
                "proxy",
                "",
                "v1",
                "NodeProxyOptions",
                &[CREATE, DELETE, GET, PATCH, UPDATE],
            )])
            .fields(&["spec.unschedulable"])
            .strategy(&strategy::Node)
            .of::<core::Node>(),
        Row::new()
            .short(&["ev"])
            .fields(EVENT_FIELDS)
            .strategy(&strategy::Event)
            .of::<core::Event>(),
        Row::new()
            .short(&["pv"])
            .status::<core::PersistentVolume>()
            .of::<core::PersistentVolume>(),
        Row::new()
            .short(&["pvc"])
            .status::<core::PersistentVolumeClaim>()
            .of::<core::PersistentVolumeClaim>(),
        Row::new()
            .short(&["rc"])
            .all()
            .status::<core::ReplicationController>()
            .scale()
            .fields(&["status.replicas"])
            .strategy(&strategy::ReplicationController)
            .of::<core::ReplicationController>(),
        Row::new().short(&["limits"]).of::<core::LimitRange>(),
        Row::new()
            .short(&["quota"])
            .status::<core::ResourceQuota>()
            .of::<core::ResourceQuota>(),
        Row::new().of::<core::PodTemplate>(),
        // apps/v1
        Row::new()
            .short(&["deploy"])
            .all()
            .status::<apps::Deployment>()
            .scale()
            .strategy(&strategy::Deployment)
            .of::<apps::Deployment>(),
        Row::new()
            .short(&["rs"])
            .all()
            .status::<apps::ReplicaSet>()
            .scale()
            .fields(&["status.replicas"])
            .strategy(&strategy::ReplicaSet)
            .of::<apps::ReplicaSet>(),
        Row::new()
            .short(&["sts"])
            .all()
            .status::<apps::StatefulSet>()
            .scale()
            .strategy(&strategy::StatefulSet)
            .of::<apps::StatefulSet>(),
        Row::new()
            .short(&["ds"])
            .all()
            .status::<apps::DaemonSet>()
            .strategy(&strategy::DaemonSet)
            .of::<apps::DaemonSet>(),
        Row::new().of::<apps::ControllerRevision>(),
        // batch/v1
        Row::new()
            .all()
            .status::<batch::Job>()
            .fields(&["status.successful"])
            .strategy(&strategy::Job)
            .of::<batch::Job>(),
        Row::new()
            .short(&["cj"])
            .all()
            .status::<batch::CronJob>()
            .strategy(&strategy::CronJob)
            .of::<batch::CronJob>(),
        // autoscaling
        Row::new()
            .short(&["hpa"])
            .all()
            .status::<as2::HorizontalPodAutoscaler>()
            .strategy(&strategy::HorizontalPodAutoscaler)
            .of::<as2::HorizontalPodAutoscaler>(),
        Row::new()
            .short(&["hpa"])
            .all()
            .status::<as1::HorizontalPodAutoscaler>()
            .strategy(&strategy::HorizontalPodAutoscaler)
            .of::<as1::HorizontalPodAutoscaler>(),
        // policy/v1
        Row::new()
            .short(&["pdb"])
            .status::<policy::PodDisruptionBudget>()
            .of::<policy::PodDisruptionBudget>(),
        // coordination.k8s.io/v1
        Row::new().of::<coord::Lease>(),
        // discovery.k8s.io/v1
        Row::new()
            .fields(&["addressType"])
            .of::<disc::EndpointSlice>(),
        // events.k8s.io/v1
        Row::new()
            .short(&["ev"])
            .fields(EVENTS_K8S_IO_FIELDS)
            .strategy(&strategy::Event)
            .of::<events::Event>(),
        // networking.k8s.io/v1
        Row::new()
            .short(&["ing"])
            .status::<net::Ingress>()
            .of::<net::Ingress>(),
        Row::new().of::<net::IngressClass>(),
        Row::new().short(&["netpol"]).of::<net::NetworkPolicy>(),
        // rbac.authorization.k8s.io/v1
        Row::new().of::<rbac::ClusterRole>(),
        Row::new().of::<rbac::ClusterRoleBinding>(),
        Row::new().of::<rbac::Role>(),
        Row::new().of::<rbac::RoleBinding>(),
        // storage.k8s.io/v1
        Row::new().short(&["sc"]).of::<storage::StorageClass>(),
        Row::new().of::<storage::CSIDriver>(),
        Row::new().of::<storage::CSINode>(),
        Row::new().of::<storage::CSIStorageCapacity>(),
        Row::new()
            .status::<storage::VolumeAttachment>()
            .of::<storage::VolumeAttachment>(),
        // scheduling.k8s.io/v1
        Row::new()
            .short(&["pc"])
            .strategy(&crate::priority::PriorityClass)
            .of::<sched::PriorityClass>(),
        // node.k8s.io/v1
        Row::new().of::<node::RuntimeClass>(),
        // certificates.k8s.io/v1
        Row::new()
            .short(&["csr"])
            .status::<certs::CertificateSigningRequest>()
            .subs(&[sub(
                "approval",
                "certificates.k8s.io",
                "v1",
                "CertificateSigningRequest",
                GET_PATCH_UPDATE,
            )])
            .fields(&["spec.signerName"])
            .of::<certs::CertificateSigningRequest>(),
        // admissionregistration.k8s.io/v1
        Row::new().of::<admreg::MutatingWebhookConfiguration>(),
        Row::new().of::<admreg::ValidatingWebhookConfiguration>(),
        Row::new()
            .status::<admreg::ValidatingAdmissionPolicy>()
            .of::<admreg::ValidatingAdmissionPolicy>(),
        Row::new().of::<admreg::ValidatingAdmissionPolicyBinding>(),
        // apiextensions.k8s.io/v1: stored only; serving custom resources is a later issue
        Row::new()
            .short(&["crd", "crds"])
            .status::<apiextensions::CustomResourceDefinition>()
            .of::<apiextensions::CustomResourceDefinition>(),
    ]
}

pub struct Registry {
    pub resources: Vec<ResourceDef>,
    by_path: HashMap<(String, String, String), usize>,
}

impl Registry {
    fn new() -> Self {
        let resources = build();
        let by_path = resources
            .iter()
            .enumerate()
            .map(|(i, r)| {
                (
                    (
                        r.group.to_string(),
                        r.version.to_string(),
                        r.resource.to_string(),
                    ),
                    i,
                )
            })
            .collect();
        Registry { resources, by_path }
    }

    pub fn lookup(&self, group: &str, version: &str, resource: &str) -> Option<&ResourceDef> {
        self.by_path
            .get(&(group.to_string(), version.to_string(), resource.to_string()))
            .map(|&i| &self.resources[i])
    }

    /// Groups in the order they are advertised, each with its versions (preferred first).
    pub fn groups(&self) -> Vec<(&'static str, Vec<&'static str>)> {
        let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
        for r in &self.resources {
            match out.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, versions)) => {
                    if !versions.contains(&r.version) {
                        versions.push(r.version);
                    }
                }
                None => out.push((r.group, vec![r.version])),
            }
        }
        out
    }

    pub fn in_group_version<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a ResourceDef> + 'a {
        self.resources
            .iter()
            .filter(move |r| r.group == group && r.version == version)
    }

    /// Every namespaced resource, one row per storage location (preferred versions).
    pub fn namespaced_storage(&self) -> Vec<&ResourceDef> {
        let mut seen = std::collections::HashSet::new();
        self.resources
            .iter()
            .filter(|r| r.namespaced && seen.insert(r.storage_prefix()))
            .collect()
    }

    pub fn by_storage_key(&self, key: &str) -> Option<&ResourceDef> {
        self.resources
            .iter()
            .find(|r| key.starts_with(&r.storage_prefix()))
    }
}

pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_derives_names_and_scope_from_the_types() {
        let reg = registry();
        let deploy = reg
            .lookup("apps", "v1", "deployments")
            .expect("deployments");
        assert_eq!(deploy.kind, "Deployment");
        assert_eq!(deploy.list_kind, "DeploymentList");
        assert!(deploy.namespaced);
        assert_eq!(deploy.subresource("scale").map(|s| s.kind), Some("Scale"));
        let ns = reg.lookup("", "v1", "namespaces").expect("namespaces");
        assert!(!ns.namespaced);
        let eviction = reg
            .lookup("", "v1", "pods")
            .and_then(|p| p.subresource("eviction"));
        assert_eq!(eviction.map(|e| e.group), Some("policy"));
    }

    #[test]
    fn autoscaling_prefers_v2_and_shares_storage() {
        let reg = registry();
        let groups = reg.groups();
        let autoscaling = groups
            .iter()
            .find(|(g, _)| *g == "autoscaling")
            .expect("autoscaling");
        assert_eq!(autoscaling.1, vec!["v2", "v1"]);
        let v1 = reg
            .lookup("autoscaling", "v1", "horizontalpodautoscalers")
            .expect("v1");
        let v2 = reg
            .lookup("autoscaling", "v2", "horizontalpodautoscalers")
            .expect("v2");
        assert_eq!(v1.storage_prefix(), v2.storage_prefix());
    }
}
