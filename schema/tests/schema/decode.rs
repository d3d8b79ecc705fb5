//! Protobuf bodies built with explicit Go-style zero values decode to the JSON kube-apiserver
//! would store: zero values of non-pointer fields dropped, meaningful ones kept, special types
//! in their JSON forms, bad input rejected with an error (never a panic).

use keelson_schema::{decode_protobuf, pool, DecodeError};
use prost::Message as _;
use prost_reflect::{DynamicMessage, MapKey, Value as P};
use serde_json::json;
use std::collections::HashMap;

fn new(name: &str) -> DynamicMessage {
    DynamicMessage::new(
        pool()
            .get_message_by_name(name)
            .unwrap_or_else(|| panic!("{name}")),
    )
}

/// Builds a message from (field, value) pairs; every pair is set explicitly, as Go does for
/// non-pointer fields.
fn msg(name: &str, fields: Vec<(&str, P)>) -> P {
    let mut m = new(name);
    for (f, v) in fields {
        m.try_set_field_by_name(f, v)
            .unwrap_or_else(|e| panic!("{name}.{f}: {e}"));
    }
    P::Message(m)
}

fn s(v: &str) -> P {
    P::String(v.to_string())
}

fn list(items: Vec<P>) -> P {
    P::List(items)
}

fn map(entries: Vec<(&str, P)>) -> P {
    P::Map(
        entries
            .into_iter()
            .map(|(k, v)| (MapKey::String(k.into()), v))
            .collect::<HashMap<_, _>>(),
    )
}

fn bytes(b: &[u8]) -> P {
    P::Bytes(b.to_vec().into())
}

fn encode(v: P) -> Vec<u8> {
    match v {
        P::Message(m) => m.encode_to_vec(),
        _ => panic!("not a message"),
    }
}

fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = msg(
        "apimachinery.pkg.runtime.Unknown",
        vec![
            (
                "typeMeta",
                msg(
                    "apimachinery.pkg.runtime.TypeMeta",
                    vec![("apiVersion", s(api_version)), ("kind", s(kind))],
                ),
            ),
            ("raw", bytes(&raw)),
            ("contentEncoding", s("")),
            ("contentType", s("")),
        ],
    );
    let mut out = b"k8s\0".to_vec();
    out.extend(encode(unknown));
    out
}

const META: &str = "apimachinery.pkg.apis.meta.v1.";
const CORE: &str = "api.core.v1.";

fn n(prefix: &str, name: &str) -> String {
    format!("{prefix}{name}")
}

fn time(seconds: i64) -> P {
    msg(
        &n(META, "Time"),
        vec![("seconds", P::I64(seconds)), ("nanos", P::I32(0))],
    )
}

fn int_or_string_int(i: i32) -> P {
    msg(
        "apimachinery.pkg.util.intstr.IntOrString",
        vec![
            ("type", P::I64(0)),
            ("intVal", P::I32(i)),
            ("strVal", s("")),
        ],
    )
}

fn int_or_string_str(v: &str) -> P {
    msg(
        "apimachinery.pkg.util.intstr.IntOrString",
        vec![("type", P::I64(1)), ("intVal", P::I32(0)), ("strVal", s(v))],
    )
}

fn object_meta(name: &str) -> P {
    msg(
        &n(META, "ObjectMeta"),
        vec![
            ("name", s(name)),
            ("generateName", s("")),
            ("namespace", s("")),
            ("generation", P::I64(0)),
            ("creationTimestamp", msg(&n(META, "Time"), vec![])),
        ],
    )
}

#[test]
fn go_zero_values_dropped_pointer_zeros_kept() {
    let container = msg(
        &n(CORE, "Container"),
        vec![
            ("name", s("c")),
            ("image", s("busybox")),
            ("workingDir", s("")),
            ("resources", msg(&n(CORE, "ResourceRequirements"), vec![])),
            ("terminationMessagePath", s("")),
            ("imagePullPolicy", s("")),
            ("stdin", P::Bool(false)),
            (
                "securityContext",
                msg(
                    &n(CORE, "SecurityContext"),
                    vec![("runAsUser", P::I64(0)), ("privileged", P::Bool(false))],
                ),
            ),
            (
                "livenessProbe",
                msg(
                    &n(CORE, "Probe"),
                    vec![
                        (
                            "handler",
                            msg(
                                &n(CORE, "ProbeHandler"),
                                vec![(
                                    "httpGet",
                                    msg(
                                        &n(CORE, "HTTPGetAction"),
                                        vec![("path", s("/")), ("port", int_or_string_str("http"))],
                                    ),
                                )],
                            ),
                        ),
                        ("periodSeconds", P::I32(0)),
                        ("timeoutSeconds", P::I32(0)),
                    ],
                ),
            ),
        ],
    );
    let volumes = list(vec![
        msg(
            &n(CORE, "Volume"),
            vec![
                ("name", s("scratch")),
                (
                    "volumeSource",
                    msg(
                        &n(CORE, "VolumeSource"),
                        vec![(
                            "emptyDir",
                            msg(&n(CORE, "EmptyDirVolumeSource"), vec![("medium", s(""))]),
                        )],
                    ),
                ),
            ],
        ),
        msg(
            &n(CORE, "Volume"),
            vec![
                ("name", s("sec")),
                (
                    "volumeSource",
                    msg(
                        &n(CORE, "VolumeSource"),
                        vec![(
                            "secret",
                            msg(
                                &n(CORE, "SecretVolumeSource"),
                                vec![
                                    ("secretName", s("x")),
                                    ("defaultMode", P::I32(0)),
                                    ("optional", P::Bool(false)),
                                ],
                            ),
                        )],
                    ),
                ),
            ],
        ),
    ]);
    let pod_spec = msg(
        &n(CORE, "PodSpec"),
        vec![
            ("containers", list(vec![container])),
            ("volumes", volumes),
            ("restartPolicy", s("")),
            ("terminationGracePeriodSeconds", P::I64(0)),
            ("dnsPolicy", s("")),
            ("hostNetwork", P::Bool(false)),
            ("nodeSelector", map(vec![])),
            (
                "securityContext",
                msg(&n(CORE, "PodSecurityContext"), vec![]),
            ),
            (
                "tolerations",
                list(vec![msg(
                    &n(CORE, "Toleration"),
                    vec![
                        ("key", s("k")),
                        ("operator", s("")),
                        ("tolerationSeconds", P::I64(0)),
                    ],
                )]),
            ),
        ],
    );
    let deployment = msg(
        "api.apps.v1.Deployment",
        vec![
            ("metadata", object_meta("web")),
            (
                "spec",
                msg(
                    "api.apps.v1.DeploymentSpec",
                    vec![
                        ("replicas", P::I32(0)),
                        ("selector", msg(&n(META, "LabelSelector"), vec![])),
                        (
                            "template",
                            msg(
                                &n(CORE, "PodTemplateSpec"),
                                vec![("metadata", object_meta("")), ("spec", pod_spec)],
                            ),
                        ),
                        (
                            "strategy",
                            msg(
                                "api.apps.v1.DeploymentStrategy",
                                vec![
                                    ("type", s("")),
                                    (
                                        "rollingUpdate",
                                        msg(
                                            "api.apps.v1.RollingUpdateDeployment",
                                            vec![
                                                ("maxUnavailable", int_or_string_int(0)),
                                                ("maxSurge", int_or_string_str("25%")),
                                            ],
                                        ),
                                    ),
                                ],
                            ),
                        ),
                        ("minReadySeconds", P::I32(0)),
                        ("revisionHistoryLimit", P::I32(0)),
                        ("paused", P::Bool(false)),
                    ],
                ),
            ),
            (
                "status",
                msg(
                    "api.apps.v1.DeploymentStatus",
                    vec![("replicas", P::I32(0))],
                ),
            ),
        ],
    );
    let body = envelope("apps/v1", "Deployment", encode(deployment));
    let got = decode_protobuf(&body).unwrap();
    assert_eq!(
        got.object,
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 0,
                "selector": {},
                "template": {
                    "spec": {
                        "volumes": [
                            {"name": "scratch", "emptyDir": {}},
                            {"name": "sec", "secret": {"secretName": "x", "defaultMode": 0, "optional": false}}
                        ],
                        "containers": [{
                            "name": "c",
                            "image": "busybox",
                            "livenessProbe": {"httpGet": {"path": "/", "port": "http"}},
                            "securityContext": {"privileged": false, "runAsUser": 0}
                        }],
                        "terminationGracePeriodSeconds": 0,
                        "tolerations": [{"key": "k", "tolerationSeconds": 0}]
                    }
                },
                "strategy": {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
                "revisionHistoryLimit": 0
            }
        })
    );
}

#[test]
fn delete_options_with_any_group_version() {
    for api_version in ["v1", "apps/v1", "meta.k8s.io/v1"] {
        let opts = msg(
            &n(META, "DeleteOptions"),
            vec![
                ("gracePeriodSeconds", P::I64(0)),
                ("propagationPolicy", s("Background")),
                ("dryRun", list(vec![])),
            ],
        );
        let got = decode_protobuf(&envelope(api_version, "DeleteOptions", encode(opts))).unwrap();
        assert_eq!(
            got.object,
            json!({"apiVersion": api_version, "kind": "DeleteOptions",
                   "gracePeriodSeconds": 0, "propagationPolicy": "Background"})
        );
    }
}

#[test]
fn lease_micro_times_and_zero_transitions() {
    let micro = |secs: i64, nanos: i32| {
        msg(
            &n(META, "MicroTime"),
            vec![("seconds", P::I64(secs)), ("nanos", P::I32(nanos))],
        )
    };
    let lease = msg(
        "api.coordination.v1.Lease",
        vec![
            ("metadata", object_meta("kube-scheduler")),
            (
                "spec",
                msg(
                    "api.coordination.v1.LeaseSpec",
                    vec![
                        ("holderIdentity", s("node-1")),
                        ("leaseDurationSeconds", P::I32(15)),
                        ("acquireTime", micro(1704164645, 123_456_789)),
                        ("renewTime", micro(1704164645, 0)),
                        ("leaseTransitions", P::I32(0)),
                    ],
                ),
            ),
        ],
    );
    let got = decode_protobuf(&envelope("coordination.k8s.io/v1", "Lease", encode(lease))).unwrap();
    assert_eq!(
        got.object["spec"],
        json!({
            "holderIdentity": "node-1",
            "leaseDurationSeconds": 15,
            "acquireTime": "2024-01-02T03:04:05.123456Z",
            "renewTime": "2024-01-02T03:04:05.000000Z",
            "leaseTransitions": 0
        })
    );
}

#[test]
fn endpoint_slice_false_conditions_and_unnamed_port() {
    let slice = msg(
        "api.discovery.v1.EndpointSlice",
        vec![
            ("metadata", object_meta("svc-abc")),
            ("addressType", s("IPv4")),
            (
                "endpoints",
                list(vec![msg(
                    "api.discovery.v1.Endpoint",
                    vec![
                        ("addresses", list(vec![s("10.0.0.1")])),
                        (
                            "conditions",
                            msg(
                                "api.discovery.v1.EndpointConditions",
                                vec![
                                    ("ready", P::Bool(false)),
                                    ("serving", P::Bool(true)),
                                    ("terminating", P::Bool(false)),
                                ],
                            ),
                        ),
                    ],
                )]),
            ),
            (
                "ports",
                list(vec![msg(
                    "api.discovery.v1.EndpointPort",
                    vec![
                        ("name", s("")),
                        ("port", P::I32(80)),
                        ("protocol", s("TCP")),
                    ],
                )]),
            ),
        ],
    );
    let got = decode_protobuf(&envelope(
        "discovery.k8s.io/v1",
        "EndpointSlice",
        encode(slice),
    ))
    .unwrap();
    assert_eq!(
        got.object,
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "svc-abc"},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.1"],
                           "conditions": {"ready": false, "serving": true, "terminating": false}}],
            "ports": [{"name": "", "protocol": "TCP", "port": 80}]
        })
    );
}

#[test]
fn container_status_required_zeros_and_union_members() {
    let status = msg(
        &n(CORE, "ContainerStatus"),
        vec![
            ("name", s("c")),
            ("ready", P::Bool(false)),
            ("restartCount", P::I32(0)),
            ("image", s("busybox")),
            ("imageID", s("")),
            (
                "state",
                msg(
                    &n(CORE, "ContainerState"),
                    vec![(
                        "waiting",
                        msg(&n(CORE, "ContainerStateWaiting"), vec![("reason", s(""))]),
                    )],
                ),
            ),
            ("lastState", msg(&n(CORE, "ContainerState"), vec![])),
        ],
    );
    let pod = msg(
        &n(CORE, "Pod"),
        vec![
            ("metadata", object_meta("p")),
            (
                "status",
                msg(
                    &n(CORE, "PodStatus"),
                    vec![("containerStatuses", list(vec![status]))],
                ),
            ),
        ],
    );
    let got = decode_protobuf(&envelope("v1", "Pod", encode(pod))).unwrap();
    assert_eq!(
        got.object["status"]["containerStatuses"][0],
        json!({"name": "c", "state": {"waiting": {}}, "ready": false, "restartCount": 0,
               "image": "busybox", "imageID": ""})
    );
}

#[test]
fn raw_extensions_fields_v1_and_nested_protobuf() {
    let cm = msg(
        &n(CORE, "ConfigMap"),
        vec![
            ("metadata", object_meta("inner")),
            ("data", map(vec![("k", s(""))])),
        ],
    );
    let nested = envelope("v1", "ConfigMap", encode(cm));
    let managed = msg(
        &n(META, "ManagedFieldsEntry"),
        vec![
            ("manager", s("kubectl")),
            ("operation", s("Update")),
            ("apiVersion", s("apps/v1")),
            ("time", time(1704164645)),
            ("fieldsType", s("FieldsV1")),
            (
                "fieldsV1",
                msg(
                    &n(META, "FieldsV1"),
                    vec![("Raw", bytes(br#"{"f:data":{}}"#))],
                ),
            ),
        ],
    );
    let meta = msg(
        &n(META, "ObjectMeta"),
        vec![("name", s("rev")), ("managedFields", list(vec![managed]))],
    );
    for (data, want) in [
        (br#"{"spec":{"a":1}}"#.to_vec(), json!({"spec": {"a": 1}})),
        (
            nested,
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "inner"}, "data": {"k": ""}}),
        ),
    ] {
        let rev = msg(
            "api.apps.v1.ControllerRevision",
            vec![
                ("metadata", meta.clone()),
                (
                    "data",
                    msg(
                        "apimachinery.pkg.runtime.RawExtension",
                        vec![("raw", bytes(&data))],
                    ),
                ),
                ("revision", P::I64(0)),
            ],
        );
        let got = decode_protobuf(&envelope("apps/v1", "ControllerRevision", encode(rev))).unwrap();
        assert_eq!(
            got.object,
            json!({
                "apiVersion": "apps/v1", "kind": "ControllerRevision",
                "metadata": {"name": "rev", "managedFields": [{
                    "manager": "kubectl", "operation": "Update", "apiVersion": "apps/v1",
                    "time": "2024-01-02T03:04:05Z", "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:data": {}}
                }]},
                "data": want,
                "revision": 0
            })
        );
    }
    // bad embedded JSON is an error naming the field
    let rev = msg(
        "api.apps.v1.ControllerRevision",
        vec![(
            "data",
            msg(
                "apimachinery.pkg.runtime.RawExtension",
                vec![("raw", bytes(b"{nope"))],
            ),
        )],
    );
    match decode_protobuf(&envelope("apps/v1", "ControllerRevision", encode(rev))) {
        Err(DecodeError::InvalidValue { path, .. }) => assert_eq!(path, "data"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn crd_schema_json_names_and_or_types() {
    const AX: &str = "apiextensions_apiserver.pkg.apis.apiextensions.v1.";
    let props = |fields: Vec<(&str, P)>| msg(&n(AX, "JSONSchemaProps"), fields);
    let json_raw = |raw: &[u8]| msg(&n(AX, "JSON"), vec![("raw", bytes(raw))]);
    let schema = props(vec![
        ("type", s("object")),
        ("required", list(vec![s("spec")])),
        ("nullable", P::Bool(false)),
        (
            "properties",
            map(vec![
                (
                    "spec",
                    props(vec![
                        ("type", s("object")),
                        ("minimum", P::F64(0.0)),
                        ("maximum", P::F64(1.5)),
                        ("exclusiveMinimum", P::Bool(false)),
                        ("xKubernetesPreserveUnknownFields", P::Bool(true)),
                        (
                            "additionalProperties",
                            msg(
                                &n(AX, "JSONSchemaPropsOrBool"),
                                vec![("allows", P::Bool(false))],
                            ),
                        ),
                        ("default", json_raw(br#"{"a":1}"#)),
                        ("enum", list(vec![json_raw(br#""x""#), json_raw(b"2")])),
                    ]),
                ),
                (
                    "list",
                    props(vec![
                        ("type", s("array")),
                        ("xKubernetesListType", s("map")),
                        ("xKubernetesListMapKeys", list(vec![s("a")])),
                        (
                            "items",
                            msg(
                                &n(AX, "JSONSchemaPropsOrArray"),
                                vec![("schema", props(vec![("type", s("string"))]))],
                            ),
                        ),
                    ]),
                ),
                (
                    "tuple",
                    props(vec![(
                        "items",
                        msg(
                            &n(AX, "JSONSchemaPropsOrArray"),
                            vec![(
                                "jSONSchemas",
                                list(vec![
                                    props(vec![("type", s("string"))]),
                                    props(vec![("type", s("integer"))]),
                                ]),
                            )],
                        ),
                    )]),
                ),
                (
                    "r",
                    props(vec![
                        ("ref", s("#/definitions/x")),
                        ("schema", s("http://s")),
                    ]),
                ),
            ]),
        ),
        (
            "dependencies",
            map(vec![(
                "a",
                msg(
                    &n(AX, "JSONSchemaPropsOrStringArray"),
                    vec![("property", list(vec![s("b")]))],
                ),
            )]),
        ),
    ]);
    let version = msg(
        &n(AX, "CustomResourceDefinitionVersion"),
        vec![
            ("name", s("v1")),
            ("served", P::Bool(true)),
            ("storage", P::Bool(false)),
            (
                "schema",
                msg(
                    &n(AX, "CustomResourceValidation"),
                    vec![("openAPIV3Schema", schema)],
                ),
            ),
            (
                "subresources",
                msg(
                    &n(AX, "CustomResourceSubresources"),
                    vec![(
                        "status",
                        msg(&n(AX, "CustomResourceSubresourceStatus"), vec![]),
                    )],
                ),
            ),
        ],
    );
    let crd = msg(
        &n(AX, "CustomResourceDefinition"),
        vec![
            ("metadata", object_meta("ws.example.com")),
            (
                "spec",
                msg(
                    &n(AX, "CustomResourceDefinitionSpec"),
                    vec![
                        ("group", s("example.com")),
                        ("versions", list(vec![version])),
                    ],
                ),
            ),
        ],
    );
    let got = decode_protobuf(&envelope(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        encode(crd),
    ))
    .unwrap();
    assert_eq!(
        got.object["spec"]["versions"][0],
        json!({
            "name": "v1", "served": true, "storage": false,
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "required": ["spec"],
                "properties": {
                    "list": {"type": "array", "items": {"type": "string"},
                             "x-kubernetes-list-map-keys": ["a"], "x-kubernetes-list-type": "map"},
                    "r": {"$schema": "http://s", "$ref": "#/definitions/x"},
                    "spec": {"type": "object", "default": {"a": 1}, "maximum": 1.5, "minimum": 0,
                             "enum": ["x", 2], "additionalProperties": false,
                             "x-kubernetes-preserve-unknown-fields": true},
                    "tuple": {"items": [{"type": "string"}, {"type": "integer"}]}
                },
                "dependencies": {"a": ["b"]}
            }},
            "subresources": {"status": {}}
        })
    );
}

#[test]
fn service_string_target_port_and_json_content_type() {
    let svc = msg(
        &n(CORE, "Service"),
        vec![
            ("metadata", object_meta("s")),
            (
                "spec",
                msg(
                    &n(CORE, "ServiceSpec"),
                    vec![
                        ("clusterIP", s("")),
                        (
                            "ports",
                            list(vec![msg(
                                &n(CORE, "ServicePort"),
                                vec![
                                    ("port", P::I32(80)),
                                    ("targetPort", int_or_string_str("http")),
                                    ("nodePort", P::I32(0)),
                                ],
                            )]),
                        ),
                    ],
                ),
            ),
        ],
    );
    let got = decode_protobuf(&envelope("v1", "Service", encode(svc))).unwrap();
    assert_eq!(
        got.object["spec"],
        json!({"ports": [{"port": 80, "targetPort": "http"}]})
    );

    // a runtime.Unknown may carry JSON
    let unknown = msg(
        "apimachinery.pkg.runtime.Unknown",
        vec![
            (
                "typeMeta",
                msg(
                    "apimachinery.pkg.runtime.TypeMeta",
                    vec![("apiVersion", s("example.com/v1")), ("kind", s("Widget"))],
                ),
            ),
            ("raw", bytes(br#"{"kind":"Widget","spec":{"a":1}}"#)),
            ("contentType", s("application/json")),
        ],
    );
    let mut body = b"k8s\0".to_vec();
    body.extend(encode(unknown));
    let got = decode_protobuf(&body).unwrap();
    assert_eq!(
        got.object,
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"a": 1}})
    );
}

#[test]
fn errors_are_reported() {
    assert_eq!(decode_protobuf(b""), Err(DecodeError::NotEnvelope));
    assert_eq!(
        decode_protobuf(b"{\"kind\":\"Pod\"}"),
        Err(DecodeError::NotEnvelope)
    );
    assert_eq!(decode_protobuf(b"k8s\0"), Err(DecodeError::MissingTypeMeta));
    assert!(matches!(
        decode_protobuf(b"k8s\0\xff\xff\xff"),
        Err(DecodeError::Envelope(_))
    ));
    assert!(matches!(
        decode_protobuf(&envelope("example.com/v1", "Widget", vec![])),
        Err(DecodeError::UnknownKind { .. })
    ));
    assert!(matches!(
        decode_protobuf(&envelope("apps/v1", "Deployment", vec![0x0a, 0x05, 0x01])),
        Err(DecodeError::Malformed { .. })
    ));
    let err = decode_protobuf(&envelope("apps/v1", "Deployment", vec![0x0a, 0x05, 0x01]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("apps/v1") && err.contains("Deployment"),
        "{err}"
    );
    let gz = msg(
        "apimachinery.pkg.runtime.Unknown",
        vec![
            (
                "typeMeta",
                msg(
                    "apimachinery.pkg.runtime.TypeMeta",
                    vec![("apiVersion", s("v1")), ("kind", s("Pod"))],
                ),
            ),
            ("contentEncoding", s("gzip")),
        ],
    );
    let mut body = b"k8s\0".to_vec();
    body.extend(encode(gz));
    assert_eq!(
        decode_protobuf(&body),
        Err(DecodeError::ContentEncoding("gzip".into()))
    );
    // a Time beyond year 9999 cannot be written as RFC 3339
    let pod = msg(
        &n(CORE, "Pod"),
        vec![(
            "metadata",
            msg(
                &n(META, "ObjectMeta"),
                vec![("creationTimestamp", time(i64::MAX / 2))],
            ),
        )],
    );
    match decode_protobuf(&envelope("v1", "Pod", encode(pod))) {
        Err(DecodeError::InvalidValue { path, .. }) => {
            assert_eq!(path, "metadata.creationTimestamp")
        }
        other => panic!("{other:?}"),
    }
}

/// xorshift; deterministic garbage without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn garbage_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let kinds = [
        ("apps/v1", "Deployment"),
        ("v1", "Pod"),
        ("v1", "Secret"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        ("apps/v1", "ControllerRevision"),
        ("coordination.k8s.io/v1", "Lease"),
        ("v1", "DeleteOptions"),
    ];
    for i in 0..3000 {
        let len = (rng.next() % 256) as usize;
        let garbage = rng.bytes(len);
        let mut body = b"k8s\0".to_vec();
        body.extend(&garbage);
        let _ = decode_protobuf(&body);
        let (v, k) = kinds[i % kinds.len()];
        let _ = decode_protobuf(&envelope(v, k, garbage));
    }
}
