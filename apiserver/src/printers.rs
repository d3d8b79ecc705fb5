//! Per-kind Table columns, as kube-apiserver's printers (`pkg/printers/internalversion`)
//! serve them: one row of [`PRINTERS`] per (group, kind) with its column definitions and a
//! function from the object's JSON to the row's cells.
//!
//! The server always prints the wide cells (kube-apiserver's printers run with
//! `Wide: true`); kubectl hides the `priority > 0` columns unless `-o wide`. Column
//! descriptions are upstream's `SwaggerDoc()` texts: fields of the vendored v1 types come
//! from the proto doc comments, the few that upstream takes from beta types are written
//! out here. Kinds without a printer upstream (roles, cluster roles, limit ranges, CRDs)
//! get upstream's default convertor: Name and Created At.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use keelson_apimachinery::labels::Selector;
use keelson_apimachinery::quantity::Quantity;
use serde_json::{json, Map, Value};

use crate::table::human_duration;

/// The time rows are printed at (ages and durations are relative to it).
pub type Now = DateTime<Utc>;

/// Where a column's description comes from.
#[derive(Clone, Copy, Debug)]
pub enum Doc {
    Text(&'static str),
    /// A field's doc comment: (proto message full name, JSON field name).
    Field(&'static str, &'static str),
}

/// A meta/v1 `TableColumnDefinition`.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub name: &'static str,
    pub ty: &'static str,
    pub format: &'static str,
    pub priority: i32,
    pub doc: Doc,
}

/// How one kind is printed.
pub struct Printer {
    pub columns: &'static [Column],
    /// The row's cells, one per column.
    pub cells: fn(&Value, Now) -> Vec<Value>,
    /// The row's `conditions`, for kinds that have them (finished pods).
    pub conditions: fn(&Value) -> Option<Value>,
}

/// The printer for a (group, kind); kinds without one get Name and Age.
pub fn printer(group: &str, kind: &str) -> &'static Printer {
    PRINTERS
        .iter()
        .find(|(g, k, _)| *g == group && *k == kind)
        .map(|(_, _, p)| p)
        .unwrap_or(&FALLBACK)
}

/// The `columnDefinitions` of a printer.
pub fn column_definitions(p: &Printer) -> Value {
    Value::Array(
        p.columns
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "type": c.ty,
                    "format": c.format,
                    "description": description(c.doc),
                    "priority": c.priority,
                })
            })
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------
// Column descriptions

const META: &str = "apimachinery.pkg.apis.meta.v1.ObjectMeta";
const POD_SPEC: &str = "api.core.v1.PodSpec";
const POD_STATUS: &str = "api.core.v1.PodStatus";
const RC_SPEC: &str = "api.core.v1.ReplicationControllerSpec";
const RC_STATUS: &str = "api.core.v1.ReplicationControllerStatus";
const SERVICE_SPEC: &str = "api.core.v1.ServiceSpec";
const ENDPOINTS: &str = "api.core.v1.Endpoints";
const NODE_INFO: &str = "api.core.v1.NodeSystemInfo";
const NODE_STATUS: &str = "api.core.v1.NodeStatus";
const EVENT: &str = "api.core.v1.Event";
const OBJECT_REFERENCE: &str = "api.core.v1.ObjectReference";
const SECRET: &str = "api.core.v1.Secret";
const SERVICE_ACCOUNT: &str = "api.core.v1.ServiceAccount";
const CONFIG_MAP: &str = "api.core.v1.ConfigMap";
const PV_SPEC: &str = "api.core.v1.PersistentVolumeSpec";
const PV_STATUS: &str = "api.core.v1.PersistentVolumeStatus";
const PVC_SPEC: &str = "api.core.v1.PersistentVolumeClaimSpec";
const PVC_STATUS: &str = "api.core.v1.PersistentVolumeClaimStatus";
const JOB_SPEC: &str = "api.batch.v1.JobSpec";
const JOB_STATUS: &str = "api.batch.v1.JobStatus";
const CRONJOB_SPEC: &str = "api.batch.v1.CronJobSpec";
const CONTROLLER_REVISION: &str = "api.apps.v1.ControllerRevision";
const LEASE_SPEC: &str = "api.coordination.v1.LeaseSpec";
const STORAGE_CLASS: &str = "api.storage.v1.StorageClass";
const VA_SPEC: &str = "api.storage.v1.VolumeAttachmentSpec";
const VA_SOURCE: &str = "api.storage.v1.VolumeAttachmentSource";
const VA_STATUS: &str = "api.storage.v1.VolumeAttachmentStatus";
const CSI_DRIVER_SPEC: &str = "api.storage.v1.CSIDriverSpec";
const CSI_CAPACITY: &str = "api.storage.v1.CSIStorageCapacity";
const PRIORITY_CLASS: &str = "api.scheduling.v1.PriorityClass";
const CSR_SPEC: &str = "api.certificates.v1.CertificateSigningRequestSpec";

// Upstream describes these columns with fields of beta types that are not vendored here.
const RS_SPEC_REPLICAS: &str = "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller";
const RS_STATUS_REPLICAS: &str = "Replicas is the most recently oberved number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller";
const RS_READY: &str = "The number of ready replicas for this replica set.";
const RS_SELECTOR: &str = "Selector is a label query over pods that should match the replica count. If the selector is empty, it is defaulted to the labels present on the pod template. Label keys and values that must match in order to be controlled by this replica set. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
const DS_DESIRED: &str = "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/";
const DS_CURRENT: &str = "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/";
const DS_READY: &str = "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.";
const DS_UPDATED: &str = "The total number of nodes that are running updated daemon pod";
const DS_AVAILABLE: &str = "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)";
const DS_SELECTOR: &str = "A label query over pods that are managed by the daemon set. Must match in order to be controlled. If empty, defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
const DEPLOY_UPDATED: &str = "Total number of non-terminated pods targeted by this deployment that have the desired template spec.";
const DEPLOY_AVAILABLE: &str =
    "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.";
const DEPLOY_SELECTOR: &str = "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.";
const NETPOL_POD_SELECTOR: &str = "Selects the pods to which this NetworkPolicy object applies.  The array of ingress rules is applied to any pods selected by this field. Multiple network policies can select the same set of pods.  In this case, the ingress rules for each are combined additively. This field is NOT optional and follows standard label selector semantics. An empty podSelector matches all pods in this namespace.";
const CRONJOB_SCHEDULE: &str =
    "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.";
const CRONJOB_SUSPEND: &str = "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false.";
const CRONJOB_ACTIVE: &str = "A list of pointers to currently running jobs.";
const CRONJOB_LAST_SCHEDULE: &str =
    "Information when was the last time the job was successfully scheduled.";
const HPA_REFERENCE: &str = "scaleTargetRef points to the target resource to scale, and is used to the pods for which metrics should be collected, as well as to actually change the replica count.";
const HPA_METRICS: &str = "metrics contains the specifications for which to use to calculate the desired replica count (the maximum replica count across all metrics will be used).  The desired replica count is calculated multiplying the ratio between the target value and the current value by the current number of pods.  Ergo, metrics used must decrease as the pod count is increased, and vice-versa.  See the individual metric source types for more information about how each type of metric must respond.";
const HPA_MIN: &str = "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down. It defaults to 1 pod.";
const HPA_MAX: &str = "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up. It cannot be less that minReplicas.";
const HPA_CURRENT: &str = "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler.";
const RB_ROLE: &str = "roleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error.";
const CRB_ROLE: &str = "roleRef can only reference a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error.";
const CSR_SIGNER: &str = "Requested signer for the request. It is a qualified name in the form: `scope-hostname.io/name`. If empty, it will be defaulted:\n 1. If it's a kubelet client certificate, it is assigned\n    \"kubernetes.io/kube-apiserver-client-kubelet\".\n 2. If it's a kubelet serving certificate, it is assigned\n    \"kubernetes.io/kubelet-serving\".\n 3. Otherwise, it is assigned \"kubernetes.io/legacy-unknown\".\nDistribution of trust for signers happens out of band. You can select on this field using `spec.signerName`.";
const CSR_REQUEST: &str = "Base64-encoded PKCS#10 CSR data";
const CSR_CONDITIONS: &str = "Conditions applied to the request, such as approval or denial.";
const SLICE_ADDRESS_TYPE: &str = "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name.";
const SLICE_PORTS: &str = "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. When ports is empty, it indicates that there are no defined ports. When a port is defined with a nil port value, it indicates \"all ports\". Each slice may include a maximum of 100 ports.";
const SLICE_ENDPOINTS: &str = "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints.";

const CONTAINERS_DOC: &str = "Names of each container in the template.";
const IMAGES_DOC: &str = "Images referenced by each container in the template.";

/// A column's description: field docs are read from the vendored proto comments once.
fn description(doc: Doc) -> String {
    match doc {
        Doc::Text(t) => t.to_string(),
        Doc::Field(message, field) => field_docs()
            .get(&(message, field))
            .cloned()
            .unwrap_or_default(),
    }
}

fn field_docs() -> &'static HashMap<(&'static str, &'static str), String> {
    static DOCS: OnceLock<HashMap<(&'static str, &'static str), String>> = OnceLock::new();
    DOCS.get_or_init(|| {
        let wanted: Vec<(&'static str, &'static str)> = PRINTERS
            .iter()
            .map(|(_, _, p)| p)
            .chain([&FALLBACK])
            .flat_map(|p| p.columns.iter())
            .filter_map(|c| match c.doc {
                Doc::Field(m, f) => Some((m, f)),
                Doc::Text(_) => None,
            })
            .collect();
        let pool = keelson_schema::pool();
        let mut seen = HashSet::new();
        let roots: Vec<_> = wanted
            .iter()
            .filter(|(m, _)| seen.insert(*m))
            .filter_map(|(m, _)| pool.get_message_by_name(m))
            .map(|msg| (msg, Vec::new()))
            .collect();
        let components = keelson_schema::openapi_components(&roots);
        wanted
            .into_iter()
            .filter_map(|(m, f)| {
                let msg = pool.get_message_by_name(m)?;
                let text = components
                    .get(&keelson_schema::openapi_name(&msg))?
                    .pointer(&format!("/properties/{f}/description"))?
                    .as_str()?
                    .to_string();
                Some(((m, f), text))
            })
            .collect()
    })
}

// ---------------------------------------------------------------------------------------
// Columns

const STRING: &str = "string";
const INTEGER: &str = "integer";
const BOOLEAN: &str = "boolean";
const DATE: &str = "date";

const fn col(name: &'static str, ty: &'static str, doc: Doc) -> Column {
    Column {
        name,
        ty,
        format: "",
        priority: 0,
        doc,
    }
}

/// A `-o wide` column.
const fn wide(name: &'static str, ty: &'static str, doc: Doc) -> Column {
    Column {
        name,
        ty,
        format: "",
        priority: 1,
        doc,
    }
}

const fn text(t: &'static str) -> Doc {
    Doc::Text(t)
}

const fn field(message: &'static str, name: &'static str) -> Doc {
    Doc::Field(message, name)
}

const NAME: Column = Column {
    name: "Name",
    ty: STRING,
    format: "name",
    priority: 0,
    doc: field(META, "name"),
};
const AGE: Column = col("Age", STRING, field(META, "creationTimestamp"));
const CREATED_AT: Column = col("Created At", DATE, field(META, "creationTimestamp"));
const CONTAINERS: Column = wide("Containers", STRING, text(CONTAINERS_DOC));
const IMAGES: Column = wide("Images", STRING, text(IMAGES_DOC));

const POD_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Ready",
        STRING,
        text("The aggregate readiness state of this pod for accepting traffic."),
    ),
    col(
        "Status",
        STRING,
        text("The aggregate status of the containers in this pod."),
    ),
    col("Restarts", STRING, text("The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.")),
    AGE,
    wide("IP", STRING, field(POD_STATUS, "podIP")),
    wide("Node", STRING, field(POD_SPEC, "nodeName")),
    wide(
        "Nominated Node",
        STRING,
        field(POD_STATUS, "nominatedNodeName"),
    ),
    wide("Readiness Gates", STRING, field(POD_SPEC, "readinessGates")),
];

const POD_TEMPLATE_COLUMNS: &[Column] = &[
    NAME,
    col("Containers", STRING, text(CONTAINERS_DOC)),
    col("Images", STRING, text(IMAGES_DOC)),
    col(
        "Pod Labels",
        STRING,
        text("The labels for the pod template."),
    ),
];

const PDB_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Min Available",
        STRING,
        text("The minimum number of pods that must be available."),
    ),
    col(
        "Max Unavailable",
        STRING,
        text("The maximum number of pods that may be unavailable."),
    ),
    col(
        "Allowed Disruptions",
        INTEGER,
        text("Calculated number of pods that may be disrupted at this time."),
    ),
    AGE,
];

const RC_COLUMNS: &[Column] = &[
    NAME,
    col("Desired", INTEGER, field(RC_SPEC, "replicas")),
    col("Current", INTEGER, field(RC_STATUS, "replicas")),
    col("Ready", INTEGER, field(RC_STATUS, "readyReplicas")),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", STRING, field(RC_SPEC, "selector")),
];

const RS_COLUMNS: &[Column] = &[
    NAME,
    col("Desired", INTEGER, text(RS_SPEC_REPLICAS)),
    col("Current", INTEGER, text(RS_STATUS_REPLICAS)),
    col("Ready", INTEGER, text(RS_READY)),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", STRING, text(RS_SELECTOR)),
];

const DS_COLUMNS: &[Column] = &[
    NAME,
    col("Desired", INTEGER, text(DS_DESIRED)),
    col("Current", INTEGER, text(DS_CURRENT)),
    col("Ready", INTEGER, text(DS_READY)),
    col("Up-to-date", INTEGER, text(DS_UPDATED)),
    col("Available", INTEGER, text(DS_AVAILABLE)),
    col("Node Selector", STRING, field(POD_SPEC, "nodeSelector")),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", STRING, text(DS_SELECTOR)),
];

const JOB_COLUMNS: &[Column] = &[
    NAME,
    col("Status", STRING, text("Status of the job.")),
    col("Completions", STRING, field(JOB_STATUS, "succeeded")),
    col(
        "Duration",
        STRING,
        text("Time required to complete the job."),
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", STRING, field(JOB_SPEC, "selector")),
];

const CRONJOB_COLUMNS: &[Column] = &[
    NAME,
    col("Schedule", STRING, text(CRONJOB_SCHEDULE)),
    col("Timezone", STRING, field(CRONJOB_SPEC, "timeZone")),
    col("Suspend", BOOLEAN, text(CRONJOB_SUSPEND)),
    col("Active", INTEGER, text(CRONJOB_ACTIVE)),
    col("Last Schedule", STRING, text(CRONJOB_LAST_SCHEDULE)),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", STRING, field(JOB_SPEC, "selector")),
];

const SERVICE_COLUMNS: &[Column] = &[
    NAME,
    col("Type", STRING, field(SERVICE_SPEC, "type")),
    col("Cluster-IP", STRING, field(SERVICE_SPEC, "clusterIP")),
    col("External-IP", STRING, field(SERVICE_SPEC, "externalIPs")),
    col("Port(s)", STRING, field(SERVICE_SPEC, "ports")),
    AGE,
    wide("Selector", STRING, field(SERVICE_SPEC, "selector")),
];

const INGRESS_COLUMNS: &[Column] = &[
    NAME,
    col("Class", STRING, text("The name of the IngressClass resource that should be used for additional configuration")),
    col("Hosts", STRING, text("Hosts that incoming requests are matched against before the ingress rule")),
    col(
        "Address",
        STRING,
        text("Address is a list containing ingress points for the load-balancer"),
    ),
    col(
        "Ports",
        STRING,
        text("Ports of TLS configurations that open"),
    ),
    AGE,
];

const INGRESS_CLASS_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Controller",
        STRING,
        text("Controller that is responsible for handling this class"),
    ),
    col(
        "Parameters",
        STRING,
        text("A reference to a resource with additional parameters"),
    ),
    AGE,
];

const STATEFULSET_COLUMNS: &[Column] = &[
    NAME,
    col("Ready", STRING, text("Number of the pod with ready state")),
    AGE,
    CONTAINERS,
    IMAGES,
];

const ENDPOINTS_COLUMNS: &[Column] = &[
    NAME,
    col("Endpoints", STRING, field(ENDPOINTS, "subsets")),
    AGE,
];

const NODE_COLUMNS: &[Column] = &[
    NAME,
    col("Status", STRING, text("The status of the node")),
    col("Roles", STRING, text("The roles of the node")),
    AGE,
    col("Version", STRING, field(NODE_INFO, "kubeletVersion")),
    wide("Internal-IP", STRING, field(NODE_STATUS, "addresses")),
    wide("External-IP", STRING, field(NODE_STATUS, "addresses")),
    wide("OS-Image", STRING, field(NODE_INFO, "osImage")),
    wide("Kernel-Version", STRING, field(NODE_INFO, "kernelVersion")),
    wide(
        "Container-Runtime",
        STRING,
        field(NODE_INFO, "containerRuntimeVersion"),
    ),
];

const EVENT_COLUMNS: &[Column] = &[
    col("Last Seen", STRING, field(EVENT, "lastTimestamp")),
    col("Type", STRING, field(EVENT, "type")),
    col("Reason", STRING, field(EVENT, "reason")),
    col("Object", STRING, field(EVENT, "involvedObject")),
    wide("Subobject", STRING, field(OBJECT_REFERENCE, "fieldPath")),
    wide("Source", STRING, field(EVENT, "source")),
    col("Message", STRING, field(EVENT, "message")),
    wide("First Seen", STRING, field(EVENT, "firstTimestamp")),
    wide("Count", STRING, field(EVENT, "count")),
    Column {
        name: "Name",
        ty: STRING,
        format: "name",
        priority: 1,
        doc: field(META, "name"),
    },
];

const NAMESPACE_COLUMNS: &[Column] = &[
    NAME,
    col("Status", STRING, text("The status of the namespace")),
    AGE,
];

const SECRET_COLUMNS: &[Column] = &[
    NAME,
    col("Type", STRING, field(SECRET, "type")),
    col("Data", STRING, field(SECRET, "data")),
    AGE,
];

const SERVICE_ACCOUNT_COLUMNS: &[Column] = &[
    NAME,
    col("Secrets", STRING, field(SERVICE_ACCOUNT, "secrets")),
    AGE,
];

const PV_COLUMNS: &[Column] = &[
    NAME,
    col("Capacity", STRING, field(PV_SPEC, "capacity")),
    col("Access Modes", STRING, field(PV_SPEC, "accessModes")),
    col(
        "Reclaim Policy",
        STRING,
        field(PV_SPEC, "persistentVolumeReclaimPolicy"),
    ),
    col("Status", STRING, field(PV_STATUS, "phase")),
    col("Claim", STRING, field(PV_SPEC, "claimRef")),
    col("StorageClass", STRING, text("StorageClass of the pv")),
    col(
        "VolumeAttributesClass",
        STRING,
        text("VolumeAttributesClass of the pv"),
    ),
    col("Reason", STRING, field(PV_STATUS, "reason")),
    AGE,
    wide("VolumeMode", STRING, field(PV_SPEC, "volumeMode")),
];

const PVC_COLUMNS: &[Column] = &[
    NAME,
    col("Status", STRING, field(PVC_STATUS, "phase")),
    col("Volume", STRING, field(PVC_SPEC, "volumeName")),
    col("Capacity", STRING, field(PVC_STATUS, "capacity")),
    col("Access Modes", STRING, field(PVC_STATUS, "accessModes")),
    col("StorageClass", STRING, text("StorageClass of the pvc")),
    col(
        "VolumeAttributesClass",
        STRING,
        text("VolumeAttributesClass of the pvc"),
    ),
    AGE,
    wide("VolumeMode", STRING, field(PVC_SPEC, "volumeMode")),
];

const DEPLOYMENT_COLUMNS: &[Column] = &[
    NAME,
    col("Ready", STRING, text("Number of the pod with ready state")),
    col("Up-to-date", STRING, text(DEPLOY_UPDATED)),
    col("Available", STRING, text(DEPLOY_AVAILABLE)),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", STRING, text(DEPLOY_SELECTOR)),
];

const HPA_COLUMNS: &[Column] = &[
    NAME,
    col("Reference", STRING, text(HPA_REFERENCE)),
    col("Targets", STRING, text(HPA_METRICS)),
    col("MinPods", STRING, text(HPA_MIN)),
    col("MaxPods", STRING, text(HPA_MAX)),
    col("Replicas", STRING, text(HPA_CURRENT)),
    AGE,
];

const CONFIG_MAP_COLUMNS: &[Column] = &[NAME, col("Data", STRING, field(CONFIG_MAP, "data")), AGE];

const NETWORK_POLICY_COLUMNS: &[Column] = &[
    NAME,
    col("Pod-Selector", STRING, text(NETPOL_POD_SELECTOR)),
    AGE,
];

const ROLE_BINDING_COLUMNS: &[Column] = &[
    NAME,
    col("Role", STRING, text(RB_ROLE)),
    AGE,
    wide("Users", STRING, text("Users in the roleBinding")),
    wide("Groups", STRING, text("Groups in the roleBinding")),
    wide(
        "ServiceAccounts",
        STRING,
        text("ServiceAccounts in the roleBinding"),
    ),
];

const CLUSTER_ROLE_BINDING_COLUMNS: &[Column] = &[
    NAME,
    col("Role", STRING, text(CRB_ROLE)),
    AGE,
    wide("Users", STRING, text("Users in the clusterRoleBinding")),
    wide("Groups", STRING, text("Groups in the clusterRoleBinding")),
    wide(
        "ServiceAccounts",
        STRING,
        text("ServiceAccounts in the clusterRoleBinding"),
    ),
];

const CSR_COLUMNS: &[Column] = &[
    NAME,
    AGE,
    col("SignerName", STRING, text(CSR_SIGNER)),
    col("Requestor", STRING, text(CSR_REQUEST)),
    col(
        "RequestedDuration",
        STRING,
        field(CSR_SPEC, "expirationSeconds"),
    ),
    col("Condition", STRING, text(CSR_CONDITIONS)),
];

const LEASE_COLUMNS: &[Column] = &[
    NAME,
    col("Holder", STRING, field(LEASE_SPEC, "holderIdentity")),
    AGE,
];

const STORAGE_CLASS_COLUMNS: &[Column] = &[
    NAME,
    col("Provisioner", STRING, field(STORAGE_CLASS, "provisioner")),
    col(
        "ReclaimPolicy",
        STRING,
        field(STORAGE_CLASS, "reclaimPolicy"),
    ),
    col(
        "VolumeBindingMode",
        STRING,
        field(STORAGE_CLASS, "volumeBindingMode"),
    ),
    col(
        "AllowVolumeExpansion",
        STRING,
        field(STORAGE_CLASS, "allowVolumeExpansion"),
    ),
    AGE,
];

const CONTROLLER_REVISION_COLUMNS: &[Column] = &[
    NAME,
    col("Controller", STRING, text("Controller of the object")),
    col("Revision", STRING, field(CONTROLLER_REVISION, "revision")),
    AGE,
];

const RESOURCE_QUOTA_COLUMNS: &[Column] = &[
    NAME,
    col("Request", STRING, text("Request represents a minimum amount of cpu/memory that a container may consume.")),
    col("Limit", STRING, text("Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.")),
    AGE,
];

const PRIORITY_CLASS_COLUMNS: &[Column] = &[
    NAME,
    col("Value", INTEGER, field(PRIORITY_CLASS, "value")),
    col(
        "Global-Default",
        BOOLEAN,
        field(PRIORITY_CLASS, "globalDefault"),
    ),
    AGE,
    // Upstream gives this column no priority but fills it only in wide mode, which is how
    // the server always prints: kubectl shows it by default.
    col(
        "PreemptionPolicy",
        STRING,
        field(PRIORITY_CLASS, "preemptionPolicy"),
    ),
];

const RUNTIME_CLASS_COLUMNS: &[Column] = &[
    NAME,
    // upstream reads ObjectMeta's (absent) "handler" doc: an empty description
    col("Handler", STRING, text("")),
    AGE,
];

const VOLUME_ATTACHMENT_COLUMNS: &[Column] = &[
    NAME,
    Column {
        name: "Attacher",
        ty: STRING,
        format: "name",
        priority: 0,
        doc: field(VA_SPEC, "attacher"),
    },
    col("PV", STRING, field(VA_SOURCE, "persistentVolumeName")),
    col("Node", STRING, field(VA_SPEC, "nodeName")),
    col("Attached", BOOLEAN, field(VA_STATUS, "attached")),
    AGE,
];

const ENDPOINT_SLICE_COLUMNS: &[Column] = &[
    NAME,
    col("AddressType", STRING, text(SLICE_ADDRESS_TYPE)),
    col("Ports", STRING, text(SLICE_PORTS)),
    col("Endpoints", STRING, text(SLICE_ENDPOINTS)),
    AGE,
];

const CSI_NODE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Drivers",
        INTEGER,
        text("Drivers indicates the number of CSI drivers registered on the node"),
    ),
    AGE,
];

const CSI_DRIVER_COLUMNS: &[Column] = &[
    NAME,
    col(
        "AttachRequired",
        BOOLEAN,
        field(CSI_DRIVER_SPEC, "attachRequired"),
    ),
    col(
        "PodInfoOnMount",
        BOOLEAN,
        field(CSI_DRIVER_SPEC, "podInfoOnMount"),
    ),
    col(
        "StorageCapacity",
        BOOLEAN,
        field(CSI_DRIVER_SPEC, "storageCapacity"),
    ),
    col(
        "TokenRequests",
        STRING,
        field(CSI_DRIVER_SPEC, "tokenRequests"),
    ),
    col(
        "RequiresRepublish",
        BOOLEAN,
        field(CSI_DRIVER_SPEC, "requiresRepublish"),
    ),
    col(
        "Modes",
        STRING,
        field(CSI_DRIVER_SPEC, "volumeLifecycleModes"),
    ),
    AGE,
];

const CSI_CAPACITY_COLUMNS: &[Column] = &[
    NAME,
    col(
        "StorageClassName",
        STRING,
        field(CSI_CAPACITY, "storageClassName"),
    ),
    col("Capacity", STRING, field(CSI_CAPACITY, "capacity")),
];

const WEBHOOK_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Webhooks",
        INTEGER,
        text("Webhooks indicates the number of webhooks registered in this configuration"),
    ),
    AGE,
];

const VAP_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Validations",
        INTEGER,
        text("Validations indicates the number of validation rules defined in this configuration"),
    ),
    col(
        "ParamKind",
        STRING,
        text("ParamKind specifies the kind of resources used to parameterize this policy"),
    ),
    AGE,
];

const VAP_BINDING_COLUMNS: &[Column] = &[
    NAME,
    col(
        "PolicyName",
        STRING,
        text("PolicyName indicates the policy definition which the policy binding binded to"),
    ),
    col(
        "ParamRef",
        STRING,
        text("ParamRef indicates the param resource which sets the configration param"),
    ),
    AGE,
];

/// upstream's `rest.DefaultTableConvertor`, for kinds without a printer
const DEFAULT_COLUMNS: &[Column] = &[NAME, CREATED_AT];

// ---------------------------------------------------------------------------------------
// The table

const fn p(columns: &'static [Column], cells: fn(&Value, Now) -> Vec<Value>) -> Printer {
    Printer {
        columns,
        cells,
        conditions: no_conditions,
    }
}

static FALLBACK: Printer = p(&[NAME, AGE], name_age);

static PRINTERS: &[(&str, &str, Printer)] = &[
    (
        "",
        "Pod",
        Printer {
            columns: POD_COLUMNS,
            cells: pod,
            conditions: pod_conditions,
        },
    ),
    ("", "PodTemplate", p(POD_TEMPLATE_COLUMNS, pod_template)),
    (
        "",
        "ReplicationController",
        p(RC_COLUMNS, replication_controller),
    ),
    ("", "Service", p(SERVICE_COLUMNS, service)),
    ("", "Endpoints", p(ENDPOINTS_COLUMNS, endpoints)),
    ("", "Node", p(NODE_COLUMNS, node)),
    ("", "Event", p(EVENT_COLUMNS, any_event)),
    ("", "Namespace", p(NAMESPACE_COLUMNS, namespace)),
    ("", "Secret", p(SECRET_COLUMNS, secret)),
    (
        "",
        "ServiceAccount",
        p(SERVICE_ACCOUNT_COLUMNS, service_account),
    ),
    ("", "PersistentVolume", p(PV_COLUMNS, persistent_volume)),
    (
        "",
        "PersistentVolumeClaim",
        p(PVC_COLUMNS, persistent_volume_claim),
    ),
    ("", "ConfigMap", p(CONFIG_MAP_COLUMNS, config_map)),
    (
        "",
        "ResourceQuota",
        p(RESOURCE_QUOTA_COLUMNS, resource_quota),
    ),
    ("", "LimitRange", p(DEFAULT_COLUMNS, name_created_at)),
    ("apps", "Deployment", p(DEPLOYMENT_COLUMNS, deployment)),
    ("apps", "ReplicaSet", p(RS_COLUMNS, replica_set)),
    ("apps", "StatefulSet", p(STATEFULSET_COLUMNS, stateful_set)),
    ("apps", "DaemonSet", p(DS_COLUMNS, daemon_set)),
    (
        "apps",
        "ControllerRevision",
        p(CONTROLLER_REVISION_COLUMNS, controller_revision),
    ),
    ("batch", "Job", p(JOB_COLUMNS, job)),
    ("batch", "CronJob", p(CRONJOB_COLUMNS, cron_job)),
    (
        "autoscaling",
        "HorizontalPodAutoscaler",
        p(HPA_COLUMNS, horizontal_pod_autoscaler),
    ),
    (
        "policy",
        "PodDisruptionBudget",
        p(PDB_COLUMNS, pod_disruption_budget),
    ),
    ("coordination.k8s.io", "Lease", p(LEASE_COLUMNS, lease)),
    (
        "discovery.k8s.io",
        "EndpointSlice",
        p(ENDPOINT_SLICE_COLUMNS, endpoint_slice),
    ),
    ("events.k8s.io", "Event", p(EVENT_COLUMNS, any_event)),
    ("networking.k8s.io", "Ingress", p(INGRESS_COLUMNS, ingress)),
    (
        "networking.k8s.io",
        "IngressClass",
        p(INGRESS_CLASS_COLUMNS, ingress_class),
    ),
    (
        "networking.k8s.io",
        "NetworkPolicy",
        p(NETWORK_POLICY_COLUMNS, network_policy),
    ),
    (
        "rbac.authorization.k8s.io",
        "Role",
        p(DEFAULT_COLUMNS, name_created_at),
    ),
    (
        "rbac.authorization.k8s.io",
        "ClusterRole",
        p(DEFAULT_COLUMNS, name_created_at),
    ),
    (
        "rbac.authorization.k8s.io",
        "RoleBinding",
        p(ROLE_BINDING_COLUMNS, role_binding),
    ),
    (
        "rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        p(CLUSTER_ROLE_BINDING_COLUMNS, role_binding),
    ),
    (
        "storage.k8s.io",
        "StorageClass",
        p(STORAGE_CLASS_COLUMNS, storage_class),
    ),
    (
        "storage.k8s.io",
        "VolumeAttachment",
        p(VOLUME_ATTACHMENT_COLUMNS, volume_attachment),
    ),
    ("storage.k8s.io", "CSINode", p(CSI_NODE_COLUMNS, csi_node)),
    (
        "storage.k8s.io",
        "CSIDriver",
        p(CSI_DRIVER_COLUMNS, csi_driver),
    ),
    (
        "storage.k8s.io",
        "CSIStorageCapacity",
        p(CSI_CAPACITY_COLUMNS, csi_storage_capacity),
    ),
    (
        "scheduling.k8s.io",
        "PriorityClass",
        p(PRIORITY_CLASS_COLUMNS, priority_class),
    ),
    (
        "node.k8s.io",
        "RuntimeClass",
        p(RUNTIME_CLASS_COLUMNS, runtime_class),
    ),
    (
        "certificates.k8s.io",
        "CertificateSigningRequest",
        p(CSR_COLUMNS, certificate_signing_request),
    ),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
        p(WEBHOOK_COLUMNS, webhook_configuration),
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
        p(WEBHOOK_COLUMNS, webhook_configuration),
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicy",
        p(VAP_COLUMNS, validating_admission_policy),
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
        p(VAP_BINDING_COLUMNS, admission_policy_binding),
    ),
    (
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        p(DEFAULT_COLUMNS, name_created_at),
    ),
];

// ---------------------------------------------------------------------------------------
// Reading the JSON

static NULL: Value = Value::Null;

macro_rules! cells {
    ($($cell:expr),* $(,)?) => { vec![$(Value::from($cell)),*] };
}

/// The value at a JSON pointer, `null` when absent.
fn at<'a>(v: &'a Value, ptr: &str) -> &'a Value {
    v.pointer(ptr).unwrap_or(&NULL)
}

fn st<'a>(v: &'a Value, ptr: &str) -> &'a str {
    at(v, ptr).as_str().unwrap_or("")
}

fn int(v: &Value, ptr: &str) -> i64 {
    at(v, ptr).as_i64().unwrap_or(0)
}

fn list<'a>(v: &'a Value, ptr: &str) -> &'a [Value] {
    at(v, ptr).as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn obj<'a>(v: &'a Value, ptr: &str) -> Option<&'a Map<String, Value>> {
    at(v, ptr).as_object()
}

/// A Go pointer-to-struct field is set (`"terminated": {}` counts).
fn set(v: &Value, ptr: &str) -> bool {
    at(v, ptr).is_object()
}

fn len(v: &Value, ptr: &str) -> i64 {
    match at(v, ptr) {
        Value::Array(a) => a.len() as i64,
        Value::Object(m) => m.len() as i64,
        _ => 0,
    }
}

fn or<'a>(s: &'a str, default: &'a str) -> &'a str {
    if s.is_empty() {
        default
    } else {
        s
    }
}

fn name(o: &Value) -> String {
    st(o, "/metadata/name").to_string()
}

fn deleting(o: &Value) -> bool {
    !at(o, "/metadata/deletionTimestamp").is_null()
}

fn time(ts: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `translateTimestampSince`: `<unknown>` for an unset time.
fn since(ts: &str, now: Now) -> String {
    match time(ts) {
        Some(t) => human_duration((now - t).num_seconds()),
        None => "<unknown>".into(),
    }
}

fn age(o: &Value, now: Now) -> String {
    since(st(o, "/metadata/creationTimestamp"), now)
}

/// A Quantity value field (`resource.Quantity`): the zero value prints `0`.
fn quantity(v: &Value) -> String {
    match v {
        Value::Null => "0".into(),
        other => canonical_quantity(other),
    }
}

/// A `*resource.Quantity` field: nil prints `<nil>`.
fn quantity_ptr(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        other => canonical_quantity(other),
    }
}

fn canonical_quantity(v: &Value) -> String {
    match Quantity::from_json(v) {
        Ok(q) => q.to_string(),
        Err(_) => v.as_str().map(str::to_string).unwrap_or_default(),
    }
}

/// An IntOrString's `String()`.
fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

fn print_bool_ptr(v: &Value) -> &'static str {
    match v.as_bool() {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    }
}

/// `labels.FormatLabels`: `k=v,...` sorted by key, `<none>` when empty.
fn format_labels(m: Option<&Map<String, Value>>) -> String {
    let set = m.into_iter().flatten().map(|(k, v)| {
        (
            k.clone(),
            v.as_str().map(str::to_string).unwrap_or_default(),
        )
    });
    let s = Selector::from_set(set).to_string();
    if s.is_empty() {
        "<none>".into()
    } else {
        s
    }
}

/// `metav1.FormatLabelSelector`: `<none>` for an empty or missing selector.
fn format_label_selector(sel: &Value) -> String {
    match Selector::from_label_selector_json(sel) {
        Ok(s) => {
            let s = s.to_string();
            if s.is_empty() {
                "<none>".into()
            } else {
                s
            }
        }
        Err(_) => "<error>".into(),
    }
}

/// `LabelSelectorAsSelector(...).String()` as the deployment printer uses it.
fn selector_string(sel: &Value) -> String {
    match Selector::from_label_selector_json(sel) {
        Ok(s) => s.to_string(),
        Err(_) => "<invalid>".into(),
    }
}

/// `layoutContainerCells`: names and images, comma-joined.
fn containers(o: &Value, ptr: &str) -> (String, String) {
    let cs = list(o, ptr);
    let names: Vec<&str> = cs.iter().map(|c| st(c, "/name")).collect();
    let images: Vec<&str> = cs.iter().map(|c| st(c, "/image")).collect();
    (names.join(","), images.join(","))
}

/// The first condition of `ty` in the list at `ptr` has status True.
fn condition_true(o: &Value, ptr: &str, ty: &str) -> bool {
    list(o, ptr)
        .iter()
        .find(|c| st(c, "/type") == ty)
        .is_some_and(|c| st(c, "/status") == "True")
}

/// `net.JoinHostPort`.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `a,b,c + 2 more...`, or `<unset>` for nothing.
fn list_with_more(list: &[String], more: bool, count: usize, max: usize) -> String {
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", count - max)
    } else if ret.is_empty() {
        "<unset>".into()
    } else {
        ret
    }
}

// ---------------------------------------------------------------------------------------
// Rows

fn no_conditions(_: &Value) -> Option<Value> {
    None
}

fn name_age(o: &Value, now: Now) -> Vec<Value> {
    cells![name(o), age(o, now)]
}

/// The default convertor's cells: the creation time in RFC 3339, UTC.
fn name_created_at(o: &Value, _: Now) -> Vec<Value> {
    let created = time(st(o, "/metadata/creationTimestamp"))
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".into());
    cells![name(o), created]
}

fn pod_conditions(pod: &Value) -> Option<Value> {
    match st(pod, "/status/phase") {
        "Succeeded" => Some(json!([{
            "type": "Completed",
            "status": "True",
            "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        }])),
        "Failed" => Some(json!([{
            "type": "Completed",
            "status": "True",
            "reason": "Failed",
            "message": "The pod failed.",
        }])),
        _ => None,
    }
}

fn terminated_at(container: &Value) -> Option<DateTime<Utc>> {
    if !set(container, "/lastState/terminated") {
        return None;
    }
    time(st(container, "/lastState/terminated/finishedAt"))
}

fn later(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// `printPod`: READY, STATUS (with upstream's reason logic) and RESTARTS.
fn pod(pod: &Value, now: Now) -> Vec<Value> {
    let init_specs = list(pod, "/spec/initContainers");
    let restartable = |name: &str| {
        init_specs
            .iter()
            .any(|c| st(c, "/name") == name && st(c, "/restartPolicy") == "Always")
    };
    let total = list(pod, "/spec/containers").len()
        + init_specs
            .iter()
            .filter(|c| st(c, "/restartPolicy") == "Always")
            .count();
    let mut ready = 0;
    let mut restarts = 0;
    let mut restartable_restarts = 0;
    let mut last_restart = None;
    let mut last_restartable_restart = None;

    let phase = st(pod, "/status/phase");
    let mut reason = or(st(pod, "/status/reason"), phase).to_string();
    if list(pod, "/status/conditions")
        .iter()
        .any(|c| st(c, "/type") == "PodScheduled" && st(c, "/reason") == "SchedulingGated")
    {
        reason = "SchedulingGated".into();
    }

    let mut initializing = false;
    for (i, c) in list(pod, "/status/initContainerStatuses")
        .iter()
        .enumerate()
    {
        let count = int(c, "/restartCount");
        restarts += count;
        last_restart = later(last_restart, terminated_at(c));
        let is_restartable = restartable(st(c, "/name"));
        if is_restartable {
            restartable_restarts += count;
            last_restartable_restart = later(last_restartable_restart, terminated_at(c));
        }
        let terminated = set(c, "/state/terminated");
        if terminated && int(c, "/state/terminated/exitCode") == 0 {
            continue;
        }
        if is_restartable && at(c, "/started").as_bool() == Some(true) {
            if at(c, "/ready").as_bool() == Some(true) {
                ready += 1;
            }
            continue;
        }
        let waiting_reason = st(c, "/state/waiting/reason");
        reason = if terminated {
            match st(c, "/state/terminated/reason") {
                "" if int(c, "/state/terminated/signal") != 0 => {
                    format!("Init:Signal:{}", int(c, "/state/terminated/signal"))
                }
                "" => format!("Init:ExitCode:{}", int(c, "/state/terminated/exitCode")),
                r => format!("Init:{r}"),
            }
        } else if set(c, "/state/waiting")
            && !waiting_reason.is_empty()
            && waiting_reason != "PodInitializing"
        {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{i}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }

    if !initializing || condition_true(pod, "/status/conditions", "Initialized") {
        restarts = restartable_restarts;
        last_restart = last_restartable_restart;
        let mut has_running = false;
        for c in list(pod, "/status/containerStatuses").iter().rev() {
            restarts += int(c, "/restartCount");
            last_restart = later(last_restart, terminated_at(c));
            let waiting_reason = st(c, "/state/waiting/reason");
            let terminated = set(c, "/state/terminated");
            let terminated_reason = st(c, "/state/terminated/reason");
            if set(c, "/state/waiting") && !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if terminated && !terminated_reason.is_empty() {
                reason = terminated_reason.to_string();
            } else if terminated {
                let signal = int(c, "/state/terminated/signal");
                reason = if signal != 0 {
                    format!("Signal:{signal}")
                } else {
                    format!("ExitCode:{}", int(c, "/state/terminated/exitCode"))
                };
            } else if at(c, "/ready").as_bool() == Some(true) && set(c, "/state/running") {
                has_running = true;
                ready += 1;
            }
        }
        // a pod whose first container completed but another still runs is not Completed
        if reason == "Completed" && has_running {
            reason = if condition_true(pod, "/status/conditions", "Ready") {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }

    if deleting(pod) && st(pod, "/status/reason") == "NodeLost" {
        reason = "Unknown".into();
    } else if deleting(pod) && phase != "Failed" && phase != "Succeeded" {
        reason = "Terminating".into();
    }

    let restarts = match last_restart {
        Some(t) if restarts != 0 => {
            format!(
                "{restarts} ({} ago)",
                human_duration((now - t).num_seconds())
            )
        }
        _ => restarts.to_string(),
    };

    // the internal object's podIPs: v1's podIP when podIPs is empty
    let ip = list(pod, "/status/podIPs")
        .first()
        .map(|ip| st(ip, "/ip"))
        .unwrap_or_else(|| st(pod, "/status/podIP"));
    let gates = list(pod, "/spec/readinessGates");
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = list(pod, "/status/conditions");
        let ok = gates
            .iter()
            .filter(|g| {
                conditions
                    .iter()
                    .find(|c| st(c, "/type") == st(g, "/conditionType"))
                    .is_some_and(|c| st(c, "/status") == "True")
            })
            .count();
        format!("{ok}/{}", gates.len())
    };
    cells![
        name(pod),
        format!("{ready}/{total}"),
        reason,
        restarts,
        age(pod, now),
        or(ip, "<none>"),
        or(st(pod, "/spec/nodeName"), "<none>"),
        or(st(pod, "/status/nominatedNodeName"), "<none>"),
        readiness_gates,
    ]
}

fn pod_template(o: &Value, _: Now) -> Vec<Value> {
    let (names, images) = containers(o, "/template/spec/containers");
    cells![
        name(o),
        names,
        images,
        format_labels(obj(o, "/template/metadata/labels")),
    ]
}

fn pod_disruption_budget(o: &Value, now: Now) -> Vec<Value> {
    let bound = |ptr: &str| match at(o, ptr) {
        Value::Null => "N/A".to_string(),
        v => int_or_string(v),
    };
    cells![
        name(o),
        bound("/spec/minAvailable"),
        bound("/spec/maxUnavailable"),
        int(o, "/status/disruptionsAllowed"),
        age(o, now),
    ]
}

/// `spec.replicas`, which defaulting sets to 1 when absent.
fn desired_replicas(o: &Value) -> i64 {
    at(o, "/spec/replicas").as_i64().unwrap_or(1)
}

fn replication_controller(o: &Value, now: Now) -> Vec<Value> {
    let (names, images) = containers(o, "/spec/template/spec/containers");
    cells![
        name(o),
        desired_replicas(o),
        int(o, "/status/replicas"),
        int(o, "/status/readyReplicas"),
        age(o, now),
        names,
        images,
        format_labels(obj(o, "/spec/selector")),
    ]
}

fn replica_set(o: &Value, now: Now) -> Vec<Value> {
    let (names, images) = containers(o, "/spec/template/spec/containers");
    cells![
        name(o),
        desired_replicas(o),
        int(o, "/status/replicas"),
        int(o, "/status/readyReplicas"),
        age(o, now),
        names,
        images,
        format_label_selector(at(o, "/spec/selector")),
    ]
}

fn deployment(o: &Value, now: Now) -> Vec<Value> {
    let (names, images) = containers(o, "/spec/template/spec/containers");
    cells![
        name(o),
        format!(
            "{}/{}",
            int(o, "/status/readyReplicas"),
            desired_replicas(o)
        ),
        int(o, "/status/updatedReplicas"),
        int(o, "/status/availableReplicas"),
        age(o, now),
        names,
        images,
        selector_string(at(o, "/spec/selector")),
    ]
}

fn stateful_set(o: &Value, now: Now) -> Vec<Value> {
    let (names, images) = containers(o, "/spec/template/spec/containers");
    cells![
        name(o),
        format!(
            "{}/{}",
            int(o, "/status/readyReplicas"),
            desired_replicas(o)
        ),
        age(o, now),
        names,
        images,
    ]
}

fn daemon_set(o: &Value, now: Now) -> Vec<Value> {
    let (names, images) = containers(o, "/spec/template/spec/containers");
    cells![
        name(o),
        int(o, "/status/desiredNumberScheduled"),
        int(o, "/status/currentNumberScheduled"),
        int(o, "/status/numberReady"),
        int(o, "/status/updatedNumberScheduled"),
        int(o, "/status/numberAvailable"),
        format_labels(obj(o, "/spec/template/spec/nodeSelector")),
        age(o, now),
        names,
        images,
        format_label_selector(at(o, "/spec/selector")),
    ]
}

fn job(o: &Value, now: Now) -> Vec<Value> {
    let succeeded = int(o, "/status/succeeded");
    let completions = match at(o, "/spec/completions").as_i64() {
        Some(c) => format!("{succeeded}/{c}"),
        None => match int(o, "/spec/parallelism") {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let duration = match (
        time(st(o, "/status/startTime")),
        time(st(o, "/status/completionTime")),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration((now - start).num_seconds()),
        (Some(start), Some(end)) => human_duration((end - start).num_seconds()),
    };
    let has = |ty| condition_true(o, "/status/conditions", ty);
    let status = if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if deleting(o) {
        "Terminating"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = containers(o, "/spec/template/spec/containers");
    cells![
        name(o),
        status,
        completions,
        duration,
        age(o, now),
        names,
        images,
        format_label_selector(at(o, "/spec/selector")),
    ]
}

fn cron_job(o: &Value, now: Now) -> Vec<Value> {
    let last_schedule = match st(o, "/status/lastScheduleTime") {
        "" => "<none>".to_string(),
        t => since(t, now),
    };
    let (names, images) = containers(o, "/spec/jobTemplate/spec/template/spec/containers");
    cells![
        name(o),
        st(o, "/spec/schedule"),
        at(o, "/spec/timeZone").as_str().unwrap_or("<none>"),
        print_bool_ptr(at(o, "/spec/suspend")),
        len(o, "/status/active"),
        last_schedule,
        age(o, now),
        names,
        images,
        format_label_selector(at(o, "/spec/jobTemplate/spec/selector")),
    ]
}

/// Load-balancer ingress points: IPs or hostnames, sorted and de-duplicated.
fn load_balancer_ingress(o: &Value, ptr: &str) -> String {
    let points: BTreeSet<&str> = list(o, ptr)
        .iter()
        .map(|i| or(st(i, "/ip"), st(i, "/hostname")))
        .filter(|s| !s.is_empty())
        .collect();
    points.into_iter().collect::<Vec<_>>().join(",")
}

fn service_external_ip(o: &Value) -> String {
    let external: Vec<&str> = list(o, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match st(o, "/spec/type") {
        "ClusterIP" | "NodePort" if external.is_empty() => "<none>".into(),
        "ClusterIP" | "NodePort" => external.join(","),
        "LoadBalancer" => {
            let lb = load_balancer_ingress(o, "/status/loadBalancer/ingress");
            if !external.is_empty() {
                let mut all: Vec<&str> = lb.split(',').filter(|s| !s.is_empty()).collect();
                all.extend(external);
                all.join(",")
            } else if !lb.is_empty() {
                lb
            } else {
                "<pending>".into()
            }
        }
        "ExternalName" => st(o, "/spec/externalName").to_string(),
        _ => "<unknown>".into(),
    }
}

fn service(o: &Value, now: Now) -> Vec<Value> {
    // the internal object's clusterIPs: v1's clusterIP when clusterIPs is empty
    let cluster_ip = list(o, "/spec/clusterIPs")
        .first()
        .and_then(Value::as_str)
        .unwrap_or_else(|| st(o, "/spec/clusterIP"));
    let ports: Vec<String> = list(o, "/spec/ports")
        .iter()
        .map(|p| {
            let protocol = st(p, "/protocol");
            match int(p, "/nodePort") {
                n if n > 0 => format!("{}:{n}/{protocol}", int(p, "/port")),
                _ => format!("{}/{protocol}", int(p, "/port")),
            }
        })
        .collect();
    let ports = ports.join(",");
    cells![
        name(o),
        st(o, "/spec/type"),
        or(cluster_ip, "<none>"),
        service_external_ip(o),
        or(&ports, "<none>"),
        age(o, now),
        format_labels(obj(o, "/spec/selector")),
    ]
}

fn endpoints(o: &Value, now: Now) -> Vec<Value> {
    const MAX: usize = 3;
    let subsets = list(o, "/subsets");
    let formatted = if subsets.is_empty() {
        "<none>".to_string()
    } else {
        let mut shown: Vec<String> = Vec::new();
        let mut more = false;
        let mut count = 0;
        for ss in subsets {
            let addresses = list(ss, "/addresses");
            let ports = list(ss, "/ports");
            if ports.is_empty() {
                // headless services may have no ports
                count += addresses.len();
                for a in addresses {
                    if shown.len() == MAX {
                        more = true;
                        break;
                    }
                    shown.push(st(a, "/ip").to_string());
                }
                continue;
            }
            for port in ports {
                count += addresses.len();
                for a in addresses {
                    if shown.len() == MAX {
                        more = true;
                        break;
                    }
                    shown.push(join_host_port(st(a, "/ip"), int(port, "/port")));
                }
            }
        }
        let ret = shown.join(",");
        if more {
            format!("{ret} + {} more...", count - MAX)
        } else {
            ret
        }
    };
    cells![name(o), formatted, age(o, now)]
}

fn endpoint_slice(o: &Value, now: Now) -> Vec<Value> {
    const MAX: usize = 3;
    let ports = list(o, "/ports");
    let shown: Vec<String> = ports
        .iter()
        .take(MAX)
        .map(|p| match at(p, "/port").as_i64() {
            Some(n) => n.to_string(),
            None => at(p, "/name").as_str().unwrap_or("*").to_string(),
        })
        .collect();
    let ports = list_with_more(&shown, ports.len() > MAX, ports.len(), MAX);
    let addresses: Vec<&Value> = list(o, "/endpoints")
        .iter()
        .flat_map(|e| list(e, "/addresses"))
        .collect();
    let shown: Vec<String> = addresses
        .iter()
        .take(MAX)
        .map(|a| a.as_str().unwrap_or("").to_string())
        .collect();
    let endpoints = list_with_more(&shown, addresses.len() > MAX, addresses.len(), MAX);
    cells![
        name(o),
        st(o, "/addressType"),
        ports,
        endpoints,
        age(o, now),
    ]
}

fn node(o: &Value, now: Now) -> Vec<Value> {
    let mut status: Vec<&str> = Vec::new();
    // the last Ready condition wins, as upstream's map of conditions by type
    if let Some(c) = list(o, "/status/conditions")
        .iter()
        .rev()
        .find(|c| st(c, "/type") == "Ready")
    {
        status.push(if st(c, "/status") == "True" {
            "Ready"
        } else {
            "NotReady"
        });
    }
    if status.is_empty() {
        status.push("Unknown");
    }
    if at(o, "/spec/unschedulable").as_bool() == Some(true) {
        status.push("SchedulingDisabled");
    }
    let roles: BTreeSet<&str> = obj(o, "/metadata/labels")
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                Some(role)
            } else if k == "kubernetes.io/role" {
                v.as_str()
            } else {
                None
            }
        })
        .filter(|r| !r.is_empty())
        .collect();
    let roles = roles.into_iter().collect::<Vec<_>>().join(",");
    let address = |ty: &str| {
        list(o, "/status/addresses")
            .iter()
            .find(|a| st(a, "/type") == ty)
            .map(|a| st(a, "/address"))
            .unwrap_or("<none>")
    };
    cells![
        name(o),
        status.join(","),
        or(&roles, "<none>"),
        age(o, now),
        st(o, "/status/nodeInfo/kubeletVersion"),
        address("InternalIP"),
        address("ExternalIP"),
        or(st(o, "/status/nodeInfo/osImage"), "<unknown>"),
        or(st(o, "/status/nodeInfo/kernelVersion"), "<unknown>"),
        or(
            st(o, "/status/nodeInfo/containerRuntimeVersion"),
            "<unknown>"
        ),
    ]
}

/// An event's fields under their internal names: core/v1 and events.k8s.io/v1 spell them
/// differently but share the internal type and its printer.
struct EventFields<'a> {
    object: &'a Value,
    message: &'a str,
    source_component: &'a str,
    source_host: &'a str,
    reporting_controller: &'a str,
    reporting_instance: &'a str,
    first_timestamp: &'a str,
    last_timestamp: &'a str,
    count: i64,
}

/// Both APIs' events are stored as core/v1 events; an object in the events.k8s.io/v1 form
/// is read under that form's names.
fn any_event(o: &Value, now: Now) -> Vec<Value> {
    if st(o, "/apiVersion") == "events.k8s.io/v1" {
        events_v1_event(o, now)
    } else {
        core_event(o, now)
    }
}

fn core_event(o: &Value, now: Now) -> Vec<Value> {
    event(
        o,
        EventFields {
            object: at(o, "/involvedObject"),
            message: st(o, "/message"),
            source_component: st(o, "/source/component"),
            source_host: st(o, "/source/host"),
            reporting_controller: st(o, "/reportingComponent"),
            reporting_instance: st(o, "/reportingInstance"),
            first_timestamp: st(o, "/firstTimestamp"),
            last_timestamp: st(o, "/lastTimestamp"),
            count: int(o, "/count"),
        },
        now,
    )
}

fn events_v1_event(o: &Value, now: Now) -> Vec<Value> {
    event(
        o,
        EventFields {
            object: at(o, "/regarding"),
            message: st(o, "/note"),
            source_component: st(o, "/deprecatedSource/component"),
            source_host: st(o, "/deprecatedSource/host"),
            reporting_controller: st(o, "/reportingController"),
            reporting_instance: st(o, "/reportingInstance"),
            first_timestamp: st(o, "/deprecatedFirstTimestamp"),
            last_timestamp: st(o, "/deprecatedLastTimestamp"),
            count: int(o, "/deprecatedCount"),
        },
        now,
    )
}

fn event(o: &Value, e: EventFields<'_>, now: Now) -> Vec<Value> {
    let first = if time(e.first_timestamp).is_some() {
        since(e.first_timestamp, now)
    } else {
        since(st(o, "/eventTime"), now)
    };
    let mut last = if time(e.last_timestamp).is_some() {
        since(e.last_timestamp, now)
    } else {
        first.clone()
    };
    let mut count = e.count;
    if set(o, "/series") {
        last = since(st(o, "/series/lastObservedTime"), now);
        count = int(o, "/series/count");
    } else if count == 0 {
        // singleton events carry no count in the new API
        count = 1;
    }
    let kind = st(e.object, "/kind").to_lowercase();
    let target = match st(e.object, "/name") {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let component = or(e.source_component, e.reporting_controller);
    let instance = or(e.source_host, e.reporting_instance);
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    cells![
        last,
        st(o, "/type"),
        st(o, "/reason"),
        target,
        st(e.object, "/fieldPath"),
        source,
        e.message.trim(),
        first,
        count,
        name(o),
    ]
}

fn namespace(o: &Value, now: Now) -> Vec<Value> {
    cells![name(o), st(o, "/status/phase"), age(o, now)]
}

fn secret(o: &Value, now: Now) -> Vec<Value> {
    cells![name(o), st(o, "/type"), len(o, "/data"), age(o, now)]
}

fn service_account(o: &Value, now: Now) -> Vec<Value> {
    cells![name(o), len(o, "/secrets"), age(o, now)]
}

fn config_map(o: &Value, now: Now) -> Vec<Value> {
    cells![
        name(o),
        len(o, "/data") + len(o, "/binaryData"),
        age(o, now)
    ]
}

/// `GetAccessModesAsString`: RWO, ROX, RWX, RWOP in that order.
fn access_modes(o: &Value, ptr: &str) -> String {
    let modes: Vec<&str> = list(o, ptr).iter().filter_map(Value::as_str).collect();
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| modes.contains(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

const BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

fn persistent_volume(o: &Value, now: Now) -> Vec<Value> {
    let claim = if set(o, "/spec/claimRef") {
        format!(
            "{}/{}",
            st(o, "/spec/claimRef/namespace"),
            st(o, "/spec/claimRef/name")
        )
    } else {
        String::new()
    };
    let phase = if deleting(o) {
        "Terminating"
    } else {
        st(o, "/status/phase")
    };
    let class = obj(o, "/metadata/annotations")
        .and_then(|a| a.get(BETA_STORAGE_CLASS))
        .and_then(Value::as_str)
        .unwrap_or_else(|| st(o, "/spec/storageClassName"));
    cells![
        name(o),
        quantity(at(o, "/spec/capacity/storage")),
        access_modes(o, "/spec/accessModes"),
        st(o, "/spec/persistentVolumeReclaimPolicy"),
        phase,
        claim,
        class,
        at(o, "/spec/volumeAttributesClassName")
            .as_str()
            .unwrap_or("<unset>"),
        st(o, "/status/reason"),
        age(o, now),
        at(o, "/spec/volumeMode").as_str().unwrap_or("<unset>"),
    ]
}

fn persistent_volume_claim(o: &Value, now: Now) -> Vec<Value> {
    let phase = if deleting(o) {
        "Terminating"
    } else {
        st(o, "/status/phase")
    };
    let volume = st(o, "/spec/volumeName");
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(at(o, "/status/capacity/storage")),
            access_modes(o, "/status/accessModes"),
        )
    };
    let class = obj(o, "/metadata/annotations")
        .and_then(|a| a.get(BETA_STORAGE_CLASS))
        .and_then(Value::as_str)
        .unwrap_or_else(|| st(o, "/spec/storageClassName"));
    cells![
        name(o),
        phase,
        volume,
        capacity,
        modes,
        class,
        at(o, "/spec/volumeAttributesClassName")
            .as_str()
            .unwrap_or("<unset>"),
        age(o, now),
        at(o, "/spec/volumeMode").as_str().unwrap_or("<unset>"),
    ]
}

/// `formatHPAMetrics`: `cpu: 40%/80%, 3/10 + 1 more...`.
fn hpa_metrics(o: &Value) -> String {
    const MAX: usize = 2;
    let specs = list(o, "/spec/metrics");
    if specs.is_empty() {
        return "<none>".into();
    }
    let statuses = list(o, "/status/currentMetrics");
    let mut shown: Vec<String> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        // the status of the same index, when it has the source the spec names
        let status = |source: &str| statuses.get(i).filter(|s| set(s, &format!("/{source}")));
        let entry = match st(spec, "/type") {
            ty @ ("External" | "Object") => {
                let source = if ty == "External" {
                    "external"
                } else {
                    "object"
                };
                let target = at(spec, &format!("/{source}/target"));
                if !at(target, "/averageValue").is_null() {
                    let current = status(source)
                        .map(|s| at(s, &format!("/{source}/current/averageValue")))
                        .filter(|v| !v.is_null())
                        .map(quantity_ptr)
                        .unwrap_or_else(|| "<unknown>".into());
                    format!(
                        "{current}/{} (avg)",
                        quantity_ptr(at(target, "/averageValue"))
                    )
                } else {
                    let current = status(source)
                        .map(|s| quantity_ptr(at(s, &format!("/{source}/current/value"))))
                        .unwrap_or_else(|| "<unknown>".into());
                    format!("{current}/{}", quantity_ptr(at(target, "/value")))
                }
            }
            "Pods" => {
                let current = status("pods")
                    .map(|s| quantity_ptr(at(s, "/pods/current/averageValue")))
                    .unwrap_or_else(|| "<unknown>".into());
                format!(
                    "{current}/{}",
                    quantity_ptr(at(spec, "/pods/target/averageValue"))
                )
            }
            ty @ ("Resource" | "ContainerResource") => {
                let source = if ty == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let resource = st(spec, &format!("/{source}/name"));
                let target = at(spec, &format!("/{source}/target"));
                if !at(target, "/averageValue").is_null() {
                    let current = status(source)
                        .map(|s| quantity_ptr(at(s, &format!("/{source}/current/averageValue"))))
                        .unwrap_or_else(|| "<unknown>".into());
                    format!(
                        "{resource}: {current}/{}",
                        quantity_ptr(at(target, "/averageValue"))
                    )
                } else {
                    let current = status(source)
                        .and_then(|s| {
                            at(s, &format!("/{source}/current/averageUtilization")).as_i64()
                        })
                        .map(|u| format!("{u}%"))
                        .unwrap_or_else(|| "<unknown>".into());
                    let target = at(target, "/averageUtilization")
                        .as_i64()
                        .map(|u| format!("{u}%"))
                        .unwrap_or_else(|| "<auto>".into());
                    format!("{resource}: {current}/{target}")
                }
            }
            _ => "<unknown type>".into(),
        };
        shown.push(entry);
    }
    let count = shown.len();
    if count > MAX {
        shown.truncate(MAX);
        format!("{} + {} more...", shown.join(", "), count - MAX)
    } else {
        shown.join(", ")
    }
}

fn horizontal_pod_autoscaler(o: &Value, now: Now) -> Vec<Value> {
    let reference = format!(
        "{}/{}",
        st(o, "/spec/scaleTargetRef/kind"),
        st(o, "/spec/scaleTargetRef/name")
    );
    let min_pods = at(o, "/spec/minReplicas")
        .as_i64()
        .map(|n| n.to_string())
        .unwrap_or_else(|| "<unset>".into());
    cells![
        name(o),
        reference,
        hpa_metrics(o),
        min_pods,
        int(o, "/spec/maxReplicas"),
        int(o, "/status/currentReplicas"),
        age(o, now),
    ]
}

fn network_policy(o: &Value, now: Now) -> Vec<Value> {
    // a missing podSelector is the zero LabelSelector: everything
    let selector = match at(o, "/spec/podSelector") {
        Value::Null => "<none>".to_string(),
        s => format_label_selector(s),
    };
    cells![name(o), selector, age(o, now)]
}

fn role_binding(o: &Value, now: Now) -> Vec<Value> {
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut service_accounts = Vec::new();
    for s in list(o, "/subjects") {
        match st(s, "/kind") {
            "ServiceAccount" => {
                service_accounts.push(format!("{}/{}", st(s, "/namespace"), st(s, "/name")))
            }
            "User" => users.push(st(s, "/name").to_string()),
            "Group" => groups.push(st(s, "/name").to_string()),
            _ => {}
        }
    }
    cells![
        name(o),
        format!("{}/{}", st(o, "/roleRef/kind"), st(o, "/roleRef/name")),
        age(o, now),
        users.join(", "),
        groups.join(", "),
        service_accounts.join(", "),
    ]
}

fn certificate_signing_request(o: &Value, now: Now) -> Vec<Value> {
    let types: Vec<&str> = list(o, "/status/conditions")
        .iter()
        .map(|c| st(c, "/type"))
        .collect();
    let mut status = if types.contains(&"Denied") {
        "Denied"
    } else if types.contains(&"Approved") {
        "Approved"
    } else {
        "Pending"
    }
    .to_string();
    if types.contains(&"Failed") {
        status.push_str(",Failed");
    }
    if !st(o, "/status/certificate").is_empty() {
        status.push_str(",Issued");
    }
    let requested = at(o, "/spec/expirationSeconds")
        .as_i64()
        .map(human_duration)
        .unwrap_or_else(|| "<none>".into());
    cells![
        name(o),
        age(o, now),
        or(st(o, "/spec/signerName"), "<none>"),
        st(o, "/spec/username"),
        requested,
        status,
    ]
}

fn lease(o: &Value, now: Now) -> Vec<Value> {
    cells![name(o), st(o, "/spec/holderIdentity"), age(o, now)]
}

fn storage_class(o: &Value, now: Now) -> Vec<Value> {
    let annotations = obj(o, "/metadata/annotations");
    let annotation = |k: &str| {
        annotations
            .and_then(|a| a.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let mut n = name(o);
    if annotation("storageclass.kubernetes.io/is-default-class") == "true"
        || annotation("storageclass.beta.kubernetes.io/is-default-class") == "true"
    {
        n.push_str(" (default)");
    }
    cells![
        n,
        st(o, "/provisioner"),
        at(o, "/reclaimPolicy").as_str().unwrap_or("Delete"),
        at(o, "/volumeBindingMode").as_str().unwrap_or("Immediate"),
        at(o, "/allowVolumeExpansion").as_bool().unwrap_or(false),
        age(o, now),
    ]
}

fn controller_revision(o: &Value, now: Now) -> Vec<Value> {
    let controller = list(o, "/metadata/ownerReferences")
        .iter()
        .find(|r| at(r, "/controller").as_bool() == Some(true))
        .map(|r| {
            let group = st(r, "/apiVersion")
                .split_once('/')
                .map(|(g, _)| g)
                .unwrap_or("");
            let kind = match group {
                "" => st(r, "/kind").to_string(),
                g => format!("{}.{g}", st(r, "/kind")),
            };
            match kind.as_str() {
                "" => st(r, "/name").to_string(),
                k => format!("{}/{}", k.to_lowercase(), st(r, "/name")),
            }
        })
        .unwrap_or_else(|| "<none>".into());
    cells![name(o), controller, int(o, "/revision"), age(o, now)]
}

fn resource_quota(o: &Value, now: Now) -> Vec<Value> {
    let mut resources: Vec<&String> = obj(o, "/status/hard")
        .map(|h| h.keys().collect())
        .unwrap_or_default();
    resources.sort();
    let used = obj(o, "/status/used");
    let mut requests = Vec::new();
    let mut limits = Vec::new();
    for r in resources {
        let hard = quantity(at(o, "/status/hard").get(r.as_str()).unwrap_or(&NULL));
        let used = quantity(used.and_then(|u| u.get(r.as_str())).unwrap_or(&NULL));
        let entry = format!("{r}: {used}/{hard}");
        let pieces: Vec<&str> = r.split('.').collect();
        if pieces.len() > 1 && pieces[0] == "limits" {
            limits.push(entry);
        } else {
            requests.push(entry);
        }
    }
    cells![name(o), requests.join(", "), limits.join(", "), age(o, now)]
}

fn priority_class(o: &Value, now: Now) -> Vec<Value> {
    cells![
        name(o),
        int(o, "/value"),
        at(o, "/globalDefault").as_bool().unwrap_or(false),
        age(o, now),
        st(o, "/preemptionPolicy"),
    ]
}

fn runtime_class(o: &Value, now: Now) -> Vec<Value> {
    cells![name(o), st(o, "/handler"), age(o, now)]
}

fn volume_attachment(o: &Value, now: Now) -> Vec<Value> {
    cells![
        name(o),
        st(o, "/spec/attacher"),
        st(o, "/spec/source/persistentVolumeName"),
        st(o, "/spec/nodeName"),
        at(o, "/status/attached").as_bool().unwrap_or(false),
        age(o, now),
    ]
}

fn csi_node(o: &Value, now: Now) -> Vec<Value> {
    cells![name(o), len(o, "/spec/drivers"), age(o, now)]
}

fn csi_driver(o: &Value, now: Now) -> Vec<Value> {
    let flag = |ptr: &str, default: bool| at(o, ptr).as_bool().unwrap_or(default);
    let token_requests = match at(o, "/spec/tokenRequests") {
        Value::Array(reqs) => reqs
            .iter()
            .map(|r| st(r, "/audience"))
            .collect::<Vec<_>>()
            .join(","),
        _ => "<unset>".into(),
    };
    let modes: Vec<&str> = list(o, "/spec/volumeLifecycleModes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let modes = modes.join(",");
    cells![
        name(o),
        flag("/spec/attachRequired", true),
        flag("/spec/podInfoOnMount", false),
        flag("/spec/storageCapacity", false),
        token_requests,
        flag("/spec/requiresRepublish", false),
        or(&modes, "<none>"),
        age(o, now),
    ]
}

fn csi_storage_capacity(o: &Value, _: Now) -> Vec<Value> {
    let capacity = match at(o, "/capacity") {
        Value::Null => "<unset>".to_string(),
        q => quantity(q),
    };
    cells![name(o), st(o, "/storageClassName"), capacity]
}

fn webhook_configuration(o: &Value, now: Now) -> Vec<Value> {
    cells![name(o), len(o, "/webhooks"), age(o, now)]
}

fn validating_admission_policy(o: &Value, now: Now) -> Vec<Value> {
    let param_kind = if set(o, "/spec/paramKind") {
        format!(
            "{}/{}",
            st(o, "/spec/paramKind/apiVersion"),
            st(o, "/spec/paramKind/kind")
        )
    } else {
        "<unset>".into()
    };
    cells![
        name(o),
        len(o, "/spec/validations"),
        param_kind,
        age(o, now)
    ]
}

fn admission_policy_binding(o: &Value, now: Now) -> Vec<Value> {
    let param = if set(o, "/spec/paramRef") {
        let param = st(o, "/spec/paramRef/name");
        match st(o, "/spec/paramRef/namespace") {
            _ if param.is_empty() && set(o, "/spec/paramRef/selector") => {
                go_label_selector(at(o, "/spec/paramRef/selector"))
            }
            _ if param.is_empty() => "<unset>".into(),
            "" => format!("*/{param}"),
            ns => format!("{ns}/{param}"),
        }
    } else {
        "<unset>".into()
    };
    cells![name(o), st(o, "/spec/policyName"), param, age(o, now)]
}

/// A LabelSelector's generated Go `String()`, which upstream prints for a selector paramRef.
fn go_label_selector(sel: &Value) -> String {
    let mut labels: Vec<(&String, &str)> = obj(sel, "/matchLabels")
        .into_iter()
        .flatten()
        .map(|(k, v)| (k, v.as_str().unwrap_or("")))
        .collect();
    labels.sort();
    let labels: String = labels.iter().map(|(k, v)| format!("{k}: {v},")).collect();
    let expressions: String = list(sel, "/matchExpressions")
        .iter()
        .map(|e| {
            let values: Vec<&str> = list(e, "/values")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            format!(
                "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},",
                st(e, "/key"),
                st(e, "/operator"),
                values.join(" ")
            )
        })
        .collect();
    format!("&LabelSelector{{MatchLabels:map[string]string{{{labels}}},MatchExpressions:[]LabelSelectorRequirement{{{expressions}}},}}")
}

fn ingress(o: &Value, now: Now) -> Vec<Value> {
    const MAX: usize = 3;
    let rules = list(o, "/spec/rules");
    let mut hosts: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if hosts.len() == MAX {
            more = true;
        }
        if !more && !st(rule, "/host").is_empty() {
            hosts.push(st(rule, "/host"));
        }
    }
    let hosts = if hosts.is_empty() {
        "*".to_string()
    } else if more {
        format!("{} + {} more...", hosts.join(","), rules.len() - MAX)
    } else {
        hosts.join(",")
    };
    let ports = if list(o, "/spec/tls").is_empty() {
        "80"
    } else {
        "80, 443"
    };
    cells![
        name(o),
        at(o, "/spec/ingressClassName").as_str().unwrap_or("<none>"),
        hosts,
        load_balancer_ingress(o, "/status/loadBalancer/ingress"),
        ports,
        age(o, now),
    ]
}

fn ingress_class(o: &Value, now: Now) -> Vec<Value> {
    let parameters = if set(o, "/spec/parameters") {
        let mut p = st(o, "/spec/parameters/kind").to_string();
        if let Some(group) = at(o, "/spec/parameters/apiGroup").as_str() {
            p = format!("{p}.{group}");
        }
        format!("{p}/{}", st(o, "/spec/parameters/name"))
    } else {
        "<none>".into()
    };
    cells![name(o), st(o, "/spec/controller"), parameters, age(o, now)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Now {
        time("2025-06-01T12:00:00Z").unwrap()
    }

    /// An RFC 3339 time `secs` seconds before [`now`].
    fn ago(secs: i64) -> String {
        (now() - chrono::Duration::seconds(secs))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    }

    fn row(group: &str, kind: &str, o: &Value) -> Vec<Value> {
        let p = printer(group, kind);
        let cells = (p.cells)(o, now());
        assert_eq!(cells.len(), p.columns.len(), "{kind}: one cell per column");
        cells
    }

    fn meta(name: &str, created: i64) -> Value {
        json!({"name": name, "namespace": "default", "creationTimestamp": ago(created)})
    }

    #[test]
    fn running_pod_with_restarts() {
        let pod = json!({
            "metadata": meta("web-1", 3 * 3600),
            "spec": {"nodeName": "node-a", "containers": [{"name": "app"}, {"name": "sidecar"}]},
            "status": {
                "phase": "Running",
                "podIP": "10.0.0.7",
                "podIPs": [{"ip": "10.0.0.7"}],
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {"name": "app", "ready": true, "restartCount": 3,
                     "state": {"running": {"startedAt": ago(300)}},
                     "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(300)}}},
                    {"name": "sidecar", "ready": true, "restartCount": 2,
                     "state": {"running": {}},
                     "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(3600)}}},
                ],
            },
        });
        assert_eq!(
            row("", "Pod", &pod),
            cells![
                "web-1",
                "2/2",
                "Running",
                "5 (5m ago)",
                "3h",
                "10.0.0.7",
                "node-a",
                "<none>",
                "<none>"
            ]
        );
        assert_eq!(pod_conditions(&pod), None);
    }

    #[test]
    fn crash_looping_pod() {
        let pod = json!({
            "metadata": meta("crashy", 600),
            "spec": {"containers": [{"name": "app"}], "readinessGates": [{"conditionType": "example.com/gate"}]},
            "status": {
                "phase": "Running",
                "conditions": [{"type": "example.com/gate", "status": "False"}],
                "containerStatuses": [{
                    "name": "app", "ready": false, "restartCount": 4,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(40)}},
                }],
            },
        });
        let cells = row("", "Pod", &pod);
        assert_eq!(
            cells[1..5],
            cells!["0/1", "CrashLoopBackOff", "4 (40s ago)", "10m"]
        );
        assert_eq!(cells[5..], cells!["<none>", "<none>", "<none>", "0/1"]);
    }

    #[test]
    fn image_pull_and_creating_reasons() {
        let waiting = |reason: &str| {
            json!({
                "metadata": meta("p", 10),
                "spec": {"containers": [{"name": "a"}]},
                "status": {"phase": "Pending", "containerStatuses": [
                    {"name": "a", "restartCount": 0, "state": {"waiting": {"reason": reason}}}
                ]},
            })
        };
        for reason in ["ContainerCreating", "ImagePullBackOff", "ErrImagePull"] {
            assert_eq!(row("", "Pod", &waiting(reason))[2], json!(reason));
        }
        // a pod not yet scheduled prints its phase
        let pending = json!({"metadata": meta("p", 10), "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Pending"}});
        assert_eq!(
            row("", "Pod", &pending)[1..4],
            cells!["0/1", "Pending", "0"]
        );
    }

    #[test]
    fn completed_and_failed_pods() {
        let finished = |phase: &str, reason: &str, code: i64| {
            json!({
                "metadata": meta("job-x", 7200),
                "spec": {"containers": [{"name": "main"}]},
                "status": {"phase": phase, "containerStatuses": [{
                    "name": "main", "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": code, "reason": reason}},
                }]},
            })
        };
        let done = finished("Succeeded", "Completed", 0);
        assert_eq!(row("", "Pod", &done)[1..4], cells!["0/1", "Completed", "0"]);
        assert_eq!(
            pod_conditions(&done),
            Some(
                json!([{"type": "Completed", "status": "True", "reason": "Succeeded",
                "message": "The pod has completed successfully."}])
            )
        );
        let failed = finished("Failed", "Error", 1);
        assert_eq!(row("", "Pod", &failed)[2], json!("Error"));
        assert_eq!(
            pod_conditions(&failed).unwrap()[0]["reason"],
            json!("Failed")
        );
        assert_eq!(
            row("", "Pod", &finished("Failed", "OOMKilled", 137))[2],
            json!("OOMKilled")
        );
        assert_eq!(
            row("", "Pod", &finished("Failed", "", 2))[2],
            json!("ExitCode:2")
        );
    }

    #[test]
    fn terminating_and_node_lost_pods() {
        let mut pod = json!({
            "metadata": meta("bye", 60),
            "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}}
            ]},
        });
        pod["metadata"]["deletionTimestamp"] = json!(ago(5));
        assert_eq!(row("", "Pod", &pod)[1..3], cells!["1/1", "Terminating"]);
        pod["status"]["reason"] = json!("NodeLost");
        assert_eq!(row("", "Pod", &pod)[2], json!("Unknown"));
        // a finished pod being deleted keeps its final status
        pod["status"] = json!({"phase": "Succeeded", "containerStatuses": [
            {"name": "a", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
        ]});
        assert_eq!(row("", "Pod", &pod)[2], json!("Completed"));
    }

    #[test]
    fn init_container_states() {
        let pod = |init_statuses: Value| {
            json!({
                "metadata": meta("init", 30),
                "spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "a"}]},
                "status": {"phase": "Pending", "initContainerStatuses": init_statuses,
                    "containerStatuses": [{"name": "a", "restartCount": 0,
                        "state": {"waiting": {"reason": "PodInitializing"}}}]},
            })
        };
        let running = pod(json!([
            {"name": "i1", "restartCount": 0, "state": {"running": {}}},
            {"name": "i2", "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}},
        ]));
        assert_eq!(row("", "Pod", &running)[2], json!("Init:0/2"));
        let second = pod(json!([
            {"name": "i1", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            {"name": "i2", "restartCount": 0, "state": {"running": {}}},
        ]));
        assert_eq!(row("", "Pod", &second)[2], json!("Init:1/2"));
        let crashing = pod(json!([
            {"name": "i1", "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
             "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(90)}}},
        ]));
        assert_eq!(
            row("", "Pod", &crashing)[2..4],
            cells!["Init:CrashLoopBackOff", "3 (90s ago)"]
        );
        let failed = pod(json!([
            {"name": "i1", "restartCount": 0, "state": {"terminated": {"exitCode": 2}}},
        ]));
        assert_eq!(row("", "Pod", &failed)[2], json!("Init:ExitCode:2"));
    }

    #[test]
    fn sidecar_init_containers_count_as_containers() {
        let pod = json!({
            "metadata": meta("side", 30),
            "spec": {"initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
                     "containers": [{"name": "a"}]},
            "status": {"phase": "Running",
                "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
                "initContainerStatuses": [{"name": "proxy", "ready": true, "started": true,
                    "restartCount": 1, "state": {"running": {}},
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(20)}}}],
                "containerStatuses": [{"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}}]},
        });
        assert_eq!(
            row("", "Pod", &pod)[1..4],
            cells!["2/2", "Running", "1 (20s ago)"]
        );
    }

    #[test]
    fn node_port_and_load_balancer_services() {
        let svc = json!({
            "metadata": meta("web", 86400 * 3),
            "spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                "selector": {"tier": "web", "app": "shop"},
                "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"},
                          {"port": 443, "protocol": "TCP"}]},
        });
        assert_eq!(
            row("", "Service", &svc),
            cells![
                "web",
                "NodePort",
                "10.96.0.10",
                "<none>",
                "80:30080/TCP,443/TCP",
                "3d",
                "app=shop,tier=web"
            ]
        );
        let lb = json!({
            "metadata": meta("lb", 10),
            "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.11",
                "ports": [{"port": 53, "nodePort": 31000, "protocol": "UDP"}]},
        });
        assert_eq!(row("", "Service", &lb)[3], json!("<pending>"));
        let mut ready = lb.clone();
        ready["status"] = json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}, {"hostname": "lb.example.com"}]}});
        assert_eq!(
            row("", "Service", &ready)[3],
            json!("203.0.113.9,lb.example.com")
        );
        let headless = json!({"metadata": meta("db", 10),
            "spec": {"type": "ClusterIP", "clusterIP": "None", "externalIPs": ["1.2.3.4"]}});
        assert_eq!(
            row("", "Service", &headless)[2..7],
            cells!["None", "1.2.3.4", "<none>", "10s", "<none>"]
        );
    }

    #[test]
    fn deployment_mid_rollout() {
        let d = json!({
            "metadata": meta("shop", 600),
            "spec": {"replicas": 3,
                "selector": {"matchLabels": {"app": "shop"},
                    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]},
                "template": {"spec": {"containers": [
                    {"name": "app", "image": "shop:2"}, {"name": "log", "image": "fluent:1"}]}}},
            "status": {"replicas": 4, "updatedReplicas": 1, "readyReplicas": 2, "availableReplicas": 2},
        });
        assert_eq!(
            row("apps", "Deployment", &d),
            cells![
                "shop",
                "2/3",
                1,
                2,
                "10m",
                "app,log",
                "shop:2,fluent:1",
                "app=shop,tier in (api,web)"
            ]
        );
        let rs = json!({"metadata": meta("shop-abc", 60), "spec": {"replicas": 3, "selector": {}},
            "status": {"replicas": 3, "readyReplicas": 1}});
        assert_eq!(
            row("apps", "ReplicaSet", &rs),
            cells!["shop-abc", 3, 3, 1, "60s", "", "", "<none>"]
        );
        let sts = json!({"metadata": meta("db", 60), "spec": {"replicas": 2}, "status": {"readyReplicas": 2}});
        assert_eq!(row("apps", "StatefulSet", &sts)[1], json!("2/2"));
    }

    #[test]
    fn node_with_roles() {
        let n = json!({
            "metadata": {"name": "cp-1", "creationTimestamp": ago(86400 * 10),
                "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/etcd": "",
                           "kubernetes.io/role": "master", "kubernetes.io/hostname": "cp-1"}},
            "spec": {"unschedulable": true},
            "status": {
                "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}, {"type": "Hostname", "address": "cp-1"}],
                "nodeInfo": {"kubeletVersion": "v1.35.0", "osImage": "Debian GNU/Linux 12 (bookworm)",
                    "kernelVersion": "6.1.0-18-amd64", "containerRuntimeVersion": "containerd://2.0.1"}},
        });
        assert_eq!(
            row("", "Node", &n),
            cells![
                "cp-1",
                "Ready,SchedulingDisabled",
                "control-plane,etcd,master",
                "10d",
                "v1.35.0",
                "192.168.1.10",
                "<none>",
                "Debian GNU/Linux 12 (bookworm)",
                "6.1.0-18-amd64",
                "containerd://2.0.1"
            ]
        );
        let bare = json!({"metadata": {"name": "w"}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
        assert_eq!(
            row("", "Node", &bare)[1..5],
            cells!["NotReady", "<none>", "<unknown>", ""]
        );
    }

    #[test]
    fn jobs() {
        let running = json!({
            "metadata": meta("pi", 300),
            "spec": {"completions": 5, "parallelism": 2, "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
                "template": {"spec": {"containers": [{"name": "pi", "image": "perl:5"}]}}},
            "status": {"succeeded": 2, "startTime": ago(290)},
        });
        assert_eq!(
            row("batch", "Job", &running),
            cells![
                "pi",
                "Running",
                "2/5",
                "4m50s",
                "5m",
                "pi",
                "perl:5",
                "batch.kubernetes.io/controller-uid=u1"
            ]
        );
        let done = json!({
            "metadata": meta("once", 7200),
            "spec": {"parallelism": 1},
            "status": {"succeeded": 1, "startTime": ago(7000), "completionTime": ago(6988),
                "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]},
        });
        assert_eq!(
            row("batch", "Job", &done)[1..5],
            cells!["Complete", "1/1", "12s", "120m"]
        );
        let wide = json!({"metadata": meta("w", 5), "spec": {"parallelism": 3},
            "status": {"conditions": [{"type": "Suspended", "status": "True"}]}});
        assert_eq!(
            row("batch", "Job", &wide)[1..4],
            cells!["Suspended", "0/1 of 3", ""]
        );
        let cron = json!({"metadata": meta("nightly", 86400), "spec": {"schedule": "0 3 * * *", "suspend": false},
            "status": {"active": [{"name": "nightly-1"}], "lastScheduleTime": ago(3600)}});
        assert_eq!(
            row("batch", "CronJob", &cron)[1..7],
            cells!["0 3 * * *", "<none>", "False", 1, "60m", "24h"]
        );
    }

    #[test]
    fn events_both_apis() {
        let core = json!({
            "metadata": meta("web-1.17f", 120), "type": "Warning", "reason": "BackOff",
            "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{app}"},
            "message": "Back-off restarting failed container\n", "source": {"component": "kubelet", "host": "node-a"},
            "firstTimestamp": ago(120), "lastTimestamp": ago(30), "count": 5,
        });
        assert_eq!(
            row("", "Event", &core),
            cells![
                "30s",
                "Warning",
                "BackOff",
                "pod/web-1",
                "spec.containers{app}",
                "kubelet, node-a",
                "Back-off restarting failed container",
                "2m",
                5,
                "web-1.17f"
            ]
        );
        // what events.k8s.io serves is stored in the core form
        assert_eq!(
            row("events.k8s.io", "Event", &core),
            row("", "Event", &core)
        );
        let v1 = json!({
            "apiVersion": "events.k8s.io/v1",
            "metadata": meta("web.1", 60), "type": "Normal", "reason": "ScalingReplicaSet",
            "regarding": {"kind": "Deployment", "name": "web"}, "note": "Scaled up",
            "reportingController": "deployment-controller", "eventTime": ago(60),
        });
        assert_eq!(
            row("events.k8s.io", "Event", &v1),
            cells![
                "60s",
                "Normal",
                "ScalingReplicaSet",
                "deployment/web",
                "",
                "deployment-controller",
                "Scaled up",
                "60s",
                1,
                "web.1"
            ]
        );
    }

    #[test]
    fn storage_and_config_kinds() {
        let cm = json!({"metadata": meta("c", 5), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
        assert_eq!(row("", "ConfigMap", &cm), cells!["c", 3, "5s"]);
        let secret = json!({"metadata": meta("s", 5), "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}});
        assert_eq!(
            row("", "Secret", &secret),
            cells!["s", "kubernetes.io/tls", 2, "5s"]
        );
        let pvc = json!({"metadata": meta("data", 5), "spec": {"volumeName": "pv-1", "storageClassName": "fast"},
            "status": {"phase": "Bound", "capacity": {"storage": "1024Mi"}, "accessModes": ["ReadWriteOnce", "ReadOnlyMany"]}});
        assert_eq!(
            row("", "PersistentVolumeClaim", &pvc),
            cells!["data", "Bound", "pv-1", "1Gi", "RWO,ROX", "fast", "<unset>", "5s", "<unset>"]
        );
        let pv = json!({"metadata": meta("pv-1", 5), "spec": {"capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Retain",
            "claimRef": {"namespace": "default", "name": "data"}, "storageClassName": "fast", "volumeMode": "Filesystem"},
            "status": {"phase": "Bound"}});
        assert_eq!(
            row("", "PersistentVolume", &pv),
            cells![
                "pv-1",
                "1Gi",
                "RWO",
                "Retain",
                "Bound",
                "default/data",
                "fast",
                "<unset>",
                "",
                "5s",
                "Filesystem"
            ]
        );
        let sc = json!({"metadata": {"name": "standard", "creationTimestamp": ago(5),
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}, "provisioner": "rancher.io/local-path"});
        assert_eq!(
            row("storage.k8s.io", "StorageClass", &sc),
            cells![
                "standard (default)",
                "rancher.io/local-path",
                "Delete",
                "Immediate",
                false,
                "5s"
            ]
        );
        let quota = json!({"metadata": meta("q", 5), "status": {
            "hard": {"pods": "10", "requests.cpu": "2", "limits.memory": "2Gi"},
            "used": {"pods": "3", "requests.cpu": "500m"}}});
        assert_eq!(
            row("", "ResourceQuota", &quota)[1..3],
            cells!["pods: 3/10, requests.cpu: 500m/2", "limits.memory: 0/2Gi"]
        );
    }

    #[test]
    fn autoscalers_and_misc() {
        let hpa = json!({"metadata": meta("web", 60), "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 10,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
                {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1k"}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "512Mi"}}},
            ]},
            "status": {"currentReplicas": 2, "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 40, "averageValue": "100m"}}}]}});
        assert_eq!(
            row("autoscaling", "HorizontalPodAutoscaler", &hpa),
            cells![
                "web",
                "Deployment/web",
                "cpu: 40%/80%, <unknown>/1k + 1 more...",
                "1",
                10,
                2,
                "60s"
            ]
        );
        let lease = json!({"metadata": meta("kube-scheduler", 60), "spec": {"holderIdentity": "node-a_1234"}});
        assert_eq!(
            row("coordination.k8s.io", "Lease", &lease),
            cells!["kube-scheduler", "node-a_1234", "60s"]
        );
        let role =
            json!({"metadata": {"name": "view", "creationTimestamp": "2024-03-01T10:00:00+01:00"}});
        assert_eq!(
            row("rbac.authorization.k8s.io", "ClusterRole", &role),
            cells!["view", "2024-03-01T09:00:00Z"]
        );
        let rb = json!({"metadata": meta("edit", 60), "roleRef": {"kind": "ClusterRole", "name": "edit"},
            "subjects": [{"kind": "User", "name": "jane"}, {"kind": "ServiceAccount", "namespace": "ci", "name": "bot"},
                         {"kind": "Group", "name": "devs"}, {"kind": "User", "name": "joe"}]});
        assert_eq!(
            row("rbac.authorization.k8s.io", "RoleBinding", &rb),
            cells![
                "edit",
                "ClusterRole/edit",
                "60s",
                "jane, joe",
                "devs",
                "ci/bot"
            ]
        );
        let ep = json!({"metadata": meta("web", 60), "subsets": [
            {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}, {"port": 443}]}]});
        assert_eq!(
            row("", "Endpoints", &ep)[1],
            json!("10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more...")
        );
        let slice = json!({"metadata": meta("web-x", 60), "addressType": "IPv6",
            "ports": [{"port": 80}, {"name": "https"}], "endpoints": [{"addresses": ["fd00::1"]}]});
        assert_eq!(
            row("discovery.k8s.io", "EndpointSlice", &slice)[1..4],
            cells!["IPv6", "80,https", "fd00::1"]
        );
        let pdb = json!({"metadata": meta("web", 60), "spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}});
        assert_eq!(
            row("policy", "PodDisruptionBudget", &pdb),
            cells!["web", "50%", "N/A", 1, "60s"]
        );
        let ns = json!({"metadata": {"name": "demo", "creationTimestamp": ago(60)}, "status": {"phase": "Active"}});
        assert_eq!(row("", "Namespace", &ns), cells!["demo", "Active", "60s"]);
        let unknown = json!({"metadata": {"name": "x"}});
        assert_eq!(
            row("example.com", "Widget", &unknown),
            cells!["x", "<unknown>"]
        );
    }

    #[test]
    fn every_field_description_resolves() {
        for (group, kind, p) in PRINTERS {
            for c in p.columns {
                if let Doc::Field(m, f) = c.doc {
                    assert!(
                        !description(c.doc).is_empty(),
                        "{group}/{kind} {}: no doc for {m}.{f}",
                        c.name
                    );
                }
            }
        }
        let defs = column_definitions(printer("", "Pod"));
        assert_eq!(defs[0]["description"], json!("Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"));
        assert_eq!(
            defs[5],
            json!({"name": "IP", "type": "string", "format": "", "priority": 1,
                "description": "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated."})
        );
    }

    #[test]
    fn every_registered_kind_has_a_printer() {
        // the built-ins that upstream prints with the default convertor are listed too
        for def in &crate::registry::registry().resources {
            assert!(
                PRINTERS
                    .iter()
                    .any(|(g, k, _)| *g == def.group && *k == def.kind),
                "{}/{} has no printer",
                def.group,
                def.kind
            );
        }
    }
}
