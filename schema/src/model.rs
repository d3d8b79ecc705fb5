//! The JSON view of the proto messages, built once from the descriptor pool.
//!
//! The `.proto` files name fields as upstream's JSON does with a few exceptions that the
//! descriptors cannot tell, so they are listed here:
//! - Go structs embedded with `json:",inline"` ([`INLINE`]): the proto has one field holding
//!   the embedded struct, JSON has that struct's fields directly in the parent object.
//! - fields whose proto name differs from the JSON tag ([`RENAMED`], and JSONSchemaProps'
//!   `$ref`/`$schema`/`x-kubernetes-*`).
//! - messages whose JSON form is not an object of their fields ([`Special`]).
//!
//! Each message gets a [`MessageModel`] with its fields in declaration order and a flattened
//! JSON property table; `tests/upstream.rs` checks the property names of every message
//! against upstream's OpenAPI definitions.

use crate::gvk::openapi_name_of;
use crate::pool::pool;
use crate::upstream_required::REQUIRED;
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

/// Messages whose JSON (and OpenAPI) form is not "an object of the proto fields".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    /// metav1.Time: RFC 3339 string with seconds precision.
    Time,
    /// metav1.MicroTime: RFC 3339 string with 6 fractional digits.
    MicroTime,
    /// metav1.Duration: Go duration string ("1h0m0s").
    Duration,
    /// intstr.IntOrString: a JSON number or string.
    IntOrString,
    /// resource.Quantity (and QuantityValue): a string.
    Quantity,
    /// runtime.RawExtension: an embedded JSON value.
    RawExtension,
    /// metav1.FieldsV1: a JSON object.
    FieldsV1,
    /// apiextensions JSON: any JSON value.
    Json,
    /// JSONSchemaPropsOrArray: a schema object or an array of schemas.
    SchemaOrArray,
    /// JSONSchemaPropsOrBool: a schema object or a boolean.
    SchemaOrBool,
    /// JSONSchemaPropsOrStringArray: a schema object or an array of strings.
    SchemaOrStringArray,
    /// `ExtraValue`/`Verbs`: a Go `[]string` wrapped in a message; JSON is an array.
    StringList,
}

impl Special {
    /// The special type of a message, by its full proto name.
    pub fn of(msg: &MessageDescriptor) -> Option<Special> {
        Special::of_name(msg.full_name())
    }

    pub fn of_name(full_name: &str) -> Option<Special> {
        const AX: &str = "apiextensions_apiserver.pkg.apis.apiextensions.v1.";
        Some(match full_name {
            "apimachinery.pkg.apis.meta.v1.Time" => Special::Time,
            "apimachinery.pkg.apis.meta.v1.MicroTime" => Special::MicroTime,
            "apimachinery.pkg.apis.meta.v1.Duration" => Special::Duration,
            "apimachinery.pkg.util.intstr.IntOrString" => Special::IntOrString,
            "apimachinery.pkg.api.resource.Quantity"
            | "apimachinery.pkg.api.resource.QuantityValue" => Special::Quantity,
            "apimachinery.pkg.runtime.RawExtension" => Special::RawExtension,
            "apimachinery.pkg.apis.meta.v1.FieldsV1" => Special::FieldsV1,
            "apimachinery.pkg.apis.meta.v1.Verbs"
            | "api.authentication.v1.ExtraValue"
            | "api.authorization.v1.ExtraValue"
            | "api.certificates.v1.ExtraValue" => Special::StringList,
            n => match n.strip_prefix(AX) {
                Some("JSON") => Special::Json,
                Some("JSONSchemaPropsOrArray") => Special::SchemaOrArray,
                Some("JSONSchemaPropsOrBool") => Special::SchemaOrBool,
                Some("JSONSchemaPropsOrStringArray") => Special::SchemaOrStringArray,
                _ => return None,
            },
        })
    }

    /// Whether the JSON form accepts arbitrary content (no unknown-field checks inside).
    pub fn is_free_form(self) -> bool {
        matches!(
            self,
            Special::RawExtension | Special::FieldsV1 | Special::Json
        )
    }
}

/// Go structs embedded with `json:",inline"`: (message, proto field).
const INLINE: &[(&str, &str)] = &[
    ("api.core.v1.Volume", "volumeSource"),
    ("api.core.v1.PersistentVolumeSpec", "persistentVolumeSource"),
    ("api.core.v1.Probe", "handler"),
    ("api.core.v1.EphemeralContainer", "ephemeralContainerCommon"),
    ("api.core.v1.ConfigMapEnvSource", "localObjectReference"),
    ("api.core.v1.ConfigMapKeySelector", "localObjectReference"),
    ("api.core.v1.ConfigMapProjection", "localObjectReference"),
    ("api.core.v1.ConfigMapVolumeSource", "localObjectReference"),
    ("api.core.v1.SecretEnvSource", "localObjectReference"),
    ("api.core.v1.SecretKeySelector", "localObjectReference"),
    ("api.core.v1.SecretProjection", "localObjectReference"),
    (
        "api.admissionregistration.v1.NamedRuleWithOperations",
        "ruleWithOperations",
    ),
    ("api.admissionregistration.v1.RuleWithOperations", "rule"),
    ("api.networking.v1.IngressRule", "ingressRuleValue"),
    (
        "api.resource.v1.DeviceAllocationConfiguration",
        "deviceConfiguration",
    ),
    (
        "api.resource.v1.DeviceClaimConfiguration",
        "deviceConfiguration",
    ),
    (
        "api.resource.v1.DeviceClassConfiguration",
        "deviceConfiguration",
    ),
];

/// Fields whose proto name is not their JSON name: (message, proto field, JSON name).
const RENAMED: &[(&str, &str, &str)] = &[
    (
        "api.admissionregistration.v1.MutatingWebhookConfiguration",
        "Webhooks",
        "webhooks",
    ),
    (
        "api.admissionregistration.v1.ValidatingWebhookConfiguration",
        "Webhooks",
        "webhooks",
    ),
    (
        "api.admissionregistration.v1.Validation",
        "Expression",
        "expression",
    ),
    ("api.admissionregistration.v1.Variable", "Name", "name"),
    (
        "api.admissionregistration.v1.Variable",
        "Expression",
        "expression",
    ),
    ("api.authentication.v1.BoundObjectReference", "uID", "uid"),
    (
        "api.networking.v1.IngressClassParametersReference",
        "aPIGroup",
        "apiGroup",
    ),
    (
        "apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
        "ref",
        "$ref",
    ),
    (
        "apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
        "schema",
        "$schema",
    ),
];

/// Fields whose zero value is meaningful, so a zero value present in a protobuf body is kept
/// in the JSON instead of being treated as unset.
///
/// The rule the decoder follows: Go's protobuf encoder writes every non-pointer field, zero
/// or not, so a zero scalar or an empty message in a body usually only means "Go had nothing
/// there" and is dropped, which lets the server's defaulting apply (Deployment `strategy`,
/// Service `type`, container `protocol`, ...). A Go *pointer* field is written only when it is
/// set, and for the fields below zero is a real value that defaulting must not replace:
/// `replicas: 0`, `terminationGracePeriodSeconds: 0` (kill now), `gracePeriodSeconds: 0`
/// (force delete), `maxUnavailable: 0`, `optional: false`, `ready: false` on an endpoint,
/// `storageClassName: ""` (no dynamic provisioning), ... The table is by message and proto field
/// name; `tests` check that each entry exists. Besides this table a zero value is also kept
/// when upstream lists the field as required (Go always writes those in JSON, see
/// [`crate::upstream_required`]), for every member of the union messages in [`UNION_MESSAGES`],
/// and for LabelSelector fields (an empty selector selects everything).
const KEEP_ZERO: &[(&str, &[&str])] = &[
    // meta/v1
    (
        "apimachinery.pkg.apis.meta.v1.ObjectMeta",
        &["deletionGracePeriodSeconds"],
    ),
    (
        "apimachinery.pkg.apis.meta.v1.ListMeta",
        &["remainingItemCount"],
    ),
    (
        "apimachinery.pkg.apis.meta.v1.DeleteOptions",
        &[
            "gracePeriodSeconds",
            "orphanDependents",
            "propagationPolicy",
            "ignoreStoreReadErrorWithClusterBreakingPotential",
        ],
    ),
    (
        "apimachinery.pkg.apis.meta.v1.Preconditions",
        &["uid", "resourceVersion"],
    ),
    (
        "apimachinery.pkg.apis.meta.v1.OwnerReference",
        &["controller", "blockOwnerDeletion"],
    ),
    ("apimachinery.pkg.apis.meta.v1.PatchOptions", &["force"]),
    (
        "apimachinery.pkg.apis.meta.v1.ListOptions",
        &["timeoutSeconds", "sendInitialEvents"],
    ),
    // core/v1
    (
        "api.core.v1.PodSpec",
        &[
            "terminationGracePeriodSeconds",
            "activeDeadlineSeconds",
            "automountServiceAccountToken",
            "shareProcessNamespace",
            "priority",
            "enableServiceLinks",
            "setHostnameAsFQDN",
            "hostUsers",
        ],
    ),
    (
        "api.core.v1.PodSecurityContext",
        &["runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup"],
    ),
    (
        "api.core.v1.SecurityContext",
        &[
            "privileged",
            "runAsUser",
            "runAsGroup",
            "runAsNonRoot",
            "readOnlyRootFilesystem",
            "allowPrivilegeEscalation",
        ],
    ),
    (
        "api.core.v1.WindowsSecurityContextOptions",
        &["hostProcess"],
    ),
    ("api.core.v1.Probe", &["terminationGracePeriodSeconds"]),
    ("api.core.v1.Toleration", &["tolerationSeconds"]),
    (
        "api.core.v1.ServiceAccount",
        &["automountServiceAccountToken"],
    ),
    (
        "api.core.v1.SecretVolumeSource",
        &["defaultMode", "optional"],
    ),
    (
        "api.core.v1.ConfigMapVolumeSource",
        &["defaultMode", "optional"],
    ),
    ("api.core.v1.ProjectedVolumeSource", &["defaultMode"]),
    ("api.core.v1.DownwardAPIVolumeSource", &["defaultMode"]),
    ("api.core.v1.KeyToPath", &["mode"]),
    ("api.core.v1.DownwardAPIVolumeFile", &["mode"]),
    ("api.core.v1.SecretProjection", &["optional"]),
    ("api.core.v1.ConfigMapProjection", &["optional"]),
    ("api.core.v1.ConfigMapKeySelector", &["optional"]),
    ("api.core.v1.SecretKeySelector", &["optional"]),
    ("api.core.v1.ConfigMapEnvSource", &["optional"]),
    ("api.core.v1.SecretEnvSource", &["optional"]),
    ("api.core.v1.ClusterTrustBundleProjection", &["optional"]),
    (
        "api.core.v1.ServiceAccountTokenProjection",
        &["expirationSeconds"],
    ),
    ("api.core.v1.CSIVolumeSource", &["readOnly"]),
    (
        "api.core.v1.PersistentVolumeClaimSpec",
        &["storageClassName"],
    ),
    ("api.core.v1.ReplicationControllerSpec", &["replicas"]),
    (
        "api.core.v1.ServiceSpec",
        &["allocateLoadBalancerNodePorts"],
    ),
    ("api.core.v1.ClientIPConfig", &["timeoutSeconds"]),
    ("api.core.v1.TopologySpreadConstraint", &["minDomains"]),
    ("api.core.v1.ContainerStatus", &["started"]),
    // apps/v1
    (
        "api.apps.v1.DeploymentSpec",
        &[
            "replicas",
            "revisionHistoryLimit",
            "progressDeadlineSeconds",
        ],
    ),
    ("api.apps.v1.ReplicaSetSpec", &["replicas"]),
    (
        "api.apps.v1.StatefulSetSpec",
        &["replicas", "revisionHistoryLimit"],
    ),
    ("api.apps.v1.DaemonSetSpec", &["revisionHistoryLimit"]),
    (
        "api.apps.v1.RollingUpdateDeployment",
        &["maxUnavailable", "maxSurge"],
    ),
    (
        "api.apps.v1.RollingUpdateDaemonSet",
        &["maxUnavailable", "maxSurge"],
    ),
    (
        "api.apps.v1.RollingUpdateStatefulSetStrategy",
        &["partition", "maxUnavailable"],
    ),
    ("api.apps.v1.DeploymentStatus", &["collisionCount"]),
    ("api.apps.v1.DaemonSetStatus", &["collisionCount"]),
    ("api.apps.v1.StatefulSetStatus", &["collisionCount"]),
    // batch/v1
    (
        "api.batch.v1.JobSpec",
        &[
            "parallelism",
            "completions",
            "activeDeadlineSeconds",
            "backoffLimit",
            "backoffLimitPerIndex",
            "maxFailedIndexes",
            "ttlSecondsAfterFinished",
            "manualSelector",
            "suspend",
        ],
    ),
    (
        "api.batch.v1.CronJobSpec",
        &[
            "startingDeadlineSeconds",
            "suspend",
            "successfulJobsHistoryLimit",
            "failedJobsHistoryLimit",
        ],
    ),
    ("api.batch.v1.JobStatus", &["ready", "terminating"]),
    ("api.batch.v1.SuccessPolicyRule", &["succeededCount"]),
    // autoscaling
    ("api.autoscaling.v1.ScaleSpec", &["replicas"]),
    (
        "api.autoscaling.v1.HorizontalPodAutoscalerSpec",
        &["minReplicas", "targetCPUUtilizationPercentage"],
    ),
    (
        "api.autoscaling.v1.HorizontalPodAutoscalerStatus",
        &["currentCPUUtilizationPercentage", "observedGeneration"],
    ),
    (
        "api.autoscaling.v2.HorizontalPodAutoscalerSpec",
        &["minReplicas"],
    ),
    (
        "api.autoscaling.v2.HorizontalPodAutoscalerStatus",
        &["observedGeneration"],
    ),
    (
        "api.autoscaling.v2.HPAScalingRules",
        &["stabilizationWindowSeconds"],
    ),
    ("api.autoscaling.v2.MetricTarget", &["averageUtilization"]),
    (
        "api.autoscaling.v2.MetricValueStatus",
        &["averageUtilization"],
    ),
    // policy/v1
    (
        "api.policy.v1.PodDisruptionBudgetSpec",
        &["minAvailable", "maxUnavailable"],
    ),
    // networking/v1
    ("api.networking.v1.NetworkPolicyPort", &["port", "endPort"]),
    // discovery/v1 (EndpointSlices are written by controllers as protobuf)
    (
        "api.discovery.v1.EndpointConditions",
        &["ready", "serving", "terminating"],
    ),
    ("api.discovery.v1.EndpointPort", &["name", "port"]),
    // coordination/v1 (leader-election Leases)
    (
        "api.coordination.v1.LeaseSpec",
        &["holderIdentity", "leaseDurationSeconds", "leaseTransitions"],
    ),
    // storage/v1
    ("api.storage.v1.StorageClass", &["allowVolumeExpansion"]),
    (
        "api.storage.v1.CSIDriverSpec",
        &[
            "attachRequired",
            "podInfoOnMount",
            "storageCapacity",
            "requiresRepublish",
            "seLinuxMount",
        ],
    ),
    ("api.storage.v1.VolumeNodeResources", &["count"]),
    // admissionregistration/v1
    (
        "api.admissionregistration.v1.ValidatingWebhook",
        &["timeoutSeconds"],
    ),
    (
        "api.admissionregistration.v1.MutatingWebhook",
        &["timeoutSeconds"],
    ),
    ("api.admissionregistration.v1.ServiceReference", &["port"]),
    // certificates/v1, authentication/v1
    (
        "api.certificates.v1.CertificateSigningRequestSpec",
        &["expirationSeconds"],
    ),
    (
        "api.authentication.v1.TokenRequestSpec",
        &["expirationSeconds"],
    ),
    // flowcontrol/v1
    (
        "api.flowcontrol.v1.LimitedPriorityLevelConfiguration",
        &[
            "nominalConcurrencyShares",
            "lendablePercent",
            "borrowingLimitPercent",
        ],
    ),
    (
        "api.flowcontrol.v1.ExemptPriorityLevelConfiguration",
        &["nominalConcurrencyShares", "lendablePercent"],
    ),
    // apiextensions/v1
    (
        "apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
        &[
            "ref",
            "default",
            "maximum",
            "minimum",
            "maxLength",
            "minLength",
            "maxItems",
            "minItems",
            "multipleOf",
            "maxProperties",
            "minProperties",
            "example",
            "xKubernetesPreserveUnknownFields",
            "xKubernetesListType",
            "xKubernetesMapType",
        ],
    ),
    (
        "apiextensions_apiserver.pkg.apis.apiextensions.v1.ServiceReference",
        &["port"],
    ),
    (
        "apiextensions_apiserver.pkg.apis.apiextensions.v1.ValidationRule",
        &["optionalOldSelf"],
    ),
    // apiregistration/v1
    (
        "kube_aggregator.pkg.apis.apiregistration.v1.ServiceReference",
        &["port"],
    ),
];

/// Messages all of whose fields are Go pointers that select one member of a union (or, for
/// CRD subresources, switch a feature on): present means set, even when empty
/// (`emptyDir: {}`, `subresources: {status: {}}`, `state: {waiting: {}}`).
const UNION_MESSAGES: &[&str] = &[
    "api.core.v1.VolumeSource",
    "api.core.v1.PersistentVolumeSource",
    "api.core.v1.VolumeProjection",
    "api.core.v1.ContainerState",
    "api.core.v1.ProbeHandler",
    "api.core.v1.LifecycleHandler",
    "api.resource.v1.DeviceAttribute",
    "apiextensions_apiserver.pkg.apis.apiextensions.v1.CustomResourceSubresources",
];

const LABEL_SELECTOR: &str = "apimachinery.pkg.apis.meta.v1.LabelSelector";

/// Markers parsed from a field's comment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Markers {
    pub optional: bool,
    pub required: bool,
    pub patch_strategy: Option<String>,
    pub patch_merge_key: Option<String>,
    pub list_type: Option<String>,
    pub list_map_keys: Vec<String>,
    pub map_type: Option<String>,
    pub struct_type: Option<String>,
}

impl Markers {
    pub(crate) fn parse(comment: &str) -> Markers {
        let mut m = Markers::default();
        for line in comment.lines() {
            let line = line.trim();
            let Some(marker) = line.strip_prefix('+') else {
                continue;
            };
            let (key, value) = match marker.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim().to_string())),
                None => (marker.trim(), None),
            };
            match (key, value) {
                ("optional", _) => m.optional = true,
                ("required", _) => m.required = true,
                ("patchStrategy", Some(v)) => m.patch_strategy = Some(v),
                ("patchMergeKey", Some(v)) => m.patch_merge_key = Some(v),
                ("listType", Some(v)) => m.list_type = Some(v),
                ("listMapKey", Some(v)) => m.list_map_keys.push(v),
                ("mapType", Some(v)) => m.map_type = Some(v),
                ("structType", Some(v)) => m.struct_type = Some(v),
                _ => {}
            }
        }
        m
    }
}

/// Turns a Go doc comment into upstream's OpenAPI description: marker (`+...`) and `TODO`
/// lines dropped, nothing after a `---` line, lines of a paragraph joined by spaces,
/// paragraphs separated by a blank line, indented lines kept on their own line.
pub(crate) fn description(comment: &str) -> String {
    let mut buf = String::new();
    for raw in comment.lines() {
        // protoc keeps the space after `//`
        let line = raw.strip_prefix(' ').unwrap_or(raw).trim_end();
        if line == "---" {
            break;
        }
        let leading = line.trim_start();
        if line.is_empty() {
            buf.pop();
            buf.push_str("\n\n");
        } else if leading.starts_with("TODO") || leading.starts_with('+') {
            continue;
        } else if line.starts_with(' ') || line.starts_with('\t') {
            buf.pop();
            buf.push('\n');
            buf.push_str(line);
            buf.push('\n');
        } else {
            buf.push_str(line);
            buf.push(' ');
        }
    }
    buf.trim_matches('\n').trim_matches(' ').to_string()
}

/// One proto field with what the JSON view needs to know about it.
#[derive(Clone, Debug)]
pub(crate) struct FieldModel {
    pub desc: FieldDescriptor,
    pub json_name: String,
    /// An embedded Go struct: its fields appear in the parent JSON object.
    pub inline: bool,
    /// Keep a present zero value (see [`KEEP_ZERO`]).
    pub keep_zero: bool,
    /// Upstream lists the field as required.
    pub required: bool,
    pub markers: Markers,
    pub description: String,
}

impl FieldModel {
    /// The message type of the field's value (the map value for maps, the element for lists).
    pub fn value_message(&self) -> Option<MessageDescriptor> {
        value_message(&self.desc)
    }
}

pub(crate) fn value_message(desc: &FieldDescriptor) -> Option<MessageDescriptor> {
    match desc.kind() {
        Kind::Message(m) if desc.is_map() => match m.map_entry_value_field().kind() {
            Kind::Message(v) => Some(v),
            _ => None,
        },
        Kind::Message(m) => Some(m),
        _ => None,
    }
}

#[derive(Debug)]
pub(crate) struct MessageModel {
    pub description: String,
    pub markers: Markers,
    /// Direct proto fields in declaration order.
    pub fields: Vec<FieldModel>,
    /// JSON properties in order, inline fields expanded.
    pub json_fields: Vec<FieldModel>,
    pub by_json: HashMap<String, usize>,
    /// The message is a kind (has TypeMeta in Go): `apiVersion`/`kind` are valid JSON keys.
    pub has_type_meta: bool,
}

fn json_name(message: &str, field: &str) -> String {
    if let Some((_, _, j)) = RENAMED
        .iter()
        .find(|(m, f, _)| *m == message && *f == field)
    {
        return (*j).to_string();
    }
    if message == "apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps" {
        if let Some(rest) = field.strip_prefix("xKubernetes") {
            let mut out = String::from("x-kubernetes");
            for c in rest.chars() {
                if c.is_ascii_uppercase() {
                    out.push('-');
                    out.push(c.to_ascii_lowercase());
                } else {
                    out.push(c);
                }
            }
            return out;
        }
    }
    field.to_string()
}

struct Comments {
    by_path: HashMap<(String, Vec<i32>), String>,
}

impl Comments {
    fn load() -> Comments {
        let mut by_path = HashMap::new();
        for file in pool().files() {
            let proto = file.file_descriptor_proto();
            if let Some(info) = &proto.source_code_info {
                for loc in &info.location {
                    if let Some(c) = &loc.leading_comments {
                        by_path.insert((file.name().to_string(), loc.path.clone()), c.clone());
                    }
                }
            }
        }
        Comments { by_path }
    }

    fn get(&self, file: &str, path: &[i32]) -> &str {
        self.by_path
            .get(&(file.to_string(), path.to_vec()))
            .map(String::as_str)
            .unwrap_or("")
    }
}

fn build_models() -> HashMap<String, MessageModel> {
    let comments = Comments::load();
    let keep: HashSet<(&str, &str)> = KEEP_ZERO
        .iter()
        .flat_map(|(m, fs)| fs.iter().map(move |f| (*m, *f)))
        .collect();
    let required: HashMap<&str, &[&str]> = REQUIRED.iter().copied().collect();

    let mut direct: HashMap<String, (String, Markers, Vec<FieldModel>)> = HashMap::new();
    for msg in pool().all_messages() {
        let file = msg.parent_file();
        let full = msg.full_name().to_string();
        let oname = openapi_name_of(&full);
        let req = required.get(oname.as_str()).copied().unwrap_or(&[]);
        let union = UNION_MESSAGES.contains(&full.as_str());
        let fields = msg
            .fields()
            .map(|f| {
                let comment = comments.get(file.name(), f.path());
                let json_name = json_name(&full, f.name());
                let is_required = req.contains(&json_name.as_str());
                let selector = !f.is_list()
                    && value_message(&f).is_some_and(|m| m.full_name() == LABEL_SELECTOR);
                FieldModel {
                    inline: INLINE.contains(&(full.as_str(), f.name())),
                    keep_zero: union
                        || is_required
                        || selector
                        || keep.contains(&(full.as_str(), f.name())),
                    required: is_required,
                    markers: Markers::parse(comment),
                    description: description(comment),
                    json_name,
                    desc: f,
                }
            })
            .collect();
        let comment = comments.get(file.name(), msg.path());
        direct.insert(
            full,
            (description(comment), Markers::parse(comment), fields),
        );
    }

    fn flatten(
        name: &str,
        direct: &HashMap<String, (String, Markers, Vec<FieldModel>)>,
        out: &mut Vec<FieldModel>,
        depth: usize,
    ) {
        let Some((_, _, fields)) = direct.get(name) else {
            return;
        };
        for f in fields {
            match (f.inline, f.value_message()) {
                (true, Some(m)) if depth < 8 => flatten(m.full_name(), direct, out, depth + 1),
                _ => out.push(f.clone()),
            }
        }
    }

    let flattened: Vec<(MessageDescriptor, Vec<FieldModel>)> = pool()
        .all_messages()
        .map(|msg| {
            let mut json_fields = Vec::new();
            flatten(msg.full_name(), &direct, &mut json_fields, 0);
            (msg, json_fields)
        })
        .collect();
    let mut models = HashMap::new();
    for (msg, json_fields) in flattened {
        let full = msg.full_name();
        let by_json = json_fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.json_name.clone(), i))
            .collect();
        let has_type_meta = crate::gvk::is_kind_message(&msg);
        let Some((description, markers, fields)) = direct.remove(full) else {
            continue;
        };
        models.insert(
            full.to_string(),
            MessageModel {
                description,
                markers,
                fields,
                json_fields,
                by_json,
                has_type_meta,
            },
        );
    }
    models
}

fn models() -> &'static HashMap<String, MessageModel> {
    static MODELS: OnceLock<HashMap<String, MessageModel>> = OnceLock::new();
    MODELS.get_or_init(build_models)
}

/// The model of a message of the pool (`None` only for a descriptor from another pool).
pub(crate) fn model(msg: &MessageDescriptor) -> Option<&'static MessageModel> {
    models().get(msg.full_name())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(name: &str) -> MessageDescriptor {
        pool().get_message_by_name(name).expect(name)
    }

    #[test]
    fn tables_name_real_fields() {
        for (m, fields) in KEEP_ZERO {
            let d = msg(m);
            for f in *fields {
                assert!(d.get_field_by_name(f).is_some(), "KEEP_ZERO {m}.{f}");
            }
        }
        for (m, f) in INLINE {
            assert!(msg(m).get_field_by_name(f).is_some(), "INLINE {m}.{f}");
        }
        for (m, f, _) in RENAMED {
            assert!(msg(m).get_field_by_name(f).is_some(), "RENAMED {m}.{f}");
        }
        for m in UNION_MESSAGES {
            msg(m);
        }
    }

    #[test]
    fn markers_of_pod_spec_containers() {
        let m = model(&msg("api.core.v1.PodSpec")).unwrap();
        let c = &m.json_fields[m.by_json["containers"]];
        assert_eq!(c.markers.patch_merge_key.as_deref(), Some("name"));
        assert_eq!(c.markers.patch_strategy.as_deref(), Some("merge"));
        assert_eq!(c.markers.list_type.as_deref(), Some("map"));
        assert_eq!(c.markers.list_map_keys, vec!["name".to_string()]);
        assert!(!c.markers.optional);
        assert!(c.required);
        assert!(c
            .description
            .starts_with("List of containers belonging to the pod."));
        assert!(!c.description.contains("+patch"));
    }

    #[test]
    fn marker_parsing() {
        let m = Markers::parse(
            " Ports.\n +optional\n +patchMergeKey=containerPort\n +patchStrategy=merge\n +listType=map\n +listMapKey=containerPort\n +listMapKey=protocol\n",
        );
        assert!(m.optional);
        assert_eq!(m.list_map_keys, vec!["containerPort", "protocol"]);
        assert_eq!(m.patch_merge_key.as_deref(), Some("containerPort"));
        assert_eq!(
            Markers::parse(" +mapType=atomic\n").map_type.as_deref(),
            Some("atomic")
        );
        assert_eq!(
            Markers::parse(" +structType=atomic").struct_type.as_deref(),
            Some("atomic")
        );
    }

    #[test]
    fn descriptions_like_upstream() {
        assert_eq!(
            description(" Standard object's metadata.\n More info: https://x\n +optional\n"),
            "Standard object's metadata. More info: https://x"
        );
        assert_eq!(description(" a\n\n b\n"), "a\n\nb");
        assert_eq!(
            description(" Example:\n \tfoo\n bar\n"),
            "Example:\n\tfoo\nbar"
        );
        assert_eq!(description(" kept\n ---\n dropped\n"), "kept");
    }

    #[test]
    fn inline_and_renamed_fields() {
        let vol = model(&msg("api.core.v1.Volume")).unwrap();
        assert!(vol.by_json.contains_key("emptyDir"));
        assert!(vol.by_json.contains_key("name"));
        assert!(!vol.by_json.contains_key("volumeSource"));
        let props = model(&msg(
            "apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
        ))
        .unwrap();
        for k in [
            "$ref",
            "$schema",
            "x-kubernetes-preserve-unknown-fields",
            "x-kubernetes-list-map-keys",
        ] {
            assert!(props.by_json.contains_key(k), "{k}");
        }
        let rule = model(&msg("api.admissionregistration.v1.NamedRuleWithOperations")).unwrap();
        for k in [
            "resourceNames",
            "operations",
            "apiGroups",
            "apiVersions",
            "resources",
            "scope",
        ] {
            assert!(rule.by_json.contains_key(k), "{k}");
        }
    }
}
