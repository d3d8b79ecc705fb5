//! End-to-end cases of the field manager on realistic objects.

use super::*;
use serde_json::json;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn deploy_type() -> TypeInfo {
    TypeInfo::new("apps/v1", "Deployment", true).unwrap()
}

/// The entry of a manager in an object's managedFields.
fn entry<'a>(obj: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
}

fn fields_v1(obj: &Value, manager: &str, operation: &str) -> String {
    let e = entry(obj, manager, operation)
        .unwrap_or_else(|| panic!("no {operation} entry for {manager} in {obj:#}"));
    FieldSet::from_fields_v1(&e["fieldsV1"])
        .unwrap()
        .to_fields_v1_string()
}

/// What the API server would store: the apply result plus server-set metadata and defaults.
fn stored(mut obj: Value, uid: &str) -> Value {
    obj["metadata"]["uid"] = json!(uid);
    obj["metadata"]["resourceVersion"] = json!("1");
    obj["metadata"]["creationTimestamp"] = json!("2024-01-01T00:00:00Z");
    if let Some(containers) = obj
        .pointer_mut("/spec/template/spec/containers")
        .and_then(Value::as_array_mut)
    {
        for c in containers {
            if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports {
                    if p.get("protocol").is_none() {
                        p["protocol"] = json!("TCP");
                    }
                }
            }
            c["imagePullPolicy"] = json!("IfNotPresent");
        }
    }
    obj
}

fn web_v1() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "tier": "frontend"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{
                    "name": "web",
                    "image": "nginx:1.25",
                    "ports": [{"containerPort": 80}, {"containerPort": 443}],
                    "env": [{"name": "A", "value": "1"}]
                }]}
            }
        }
    })
}

fn web_v2() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{
                    "name": "web",
                    "image": "nginx:1.25",
                    "ports": [{"containerPort": 80}],
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
                }]}
            }
        }
    })
}

#[test]
fn apply_twice_prunes_what_the_manager_dropped_and_keeps_others_fields() {
    let ty = deploy_type();
    // 1. create by apply
    let op1 = Operation::new("ci", t("2024-01-01T00:00:00Z"));
    let a1 = apply(&ty, None, &web_v1(), &op1, false).unwrap();
    assert!(a1.changed);
    assert_eq!(a1.managed_fields.len(), 1);
    assert_eq!(
        fields_v1(&a1.object, "ci", "Apply"),
        concat!(
            r#"{"f:metadata":{"f:labels":{"f:app":{},"f:tier":{}}},"f:spec":{"f:replicas":{},"f:selector":{},"#,
            r#""f:template":{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"web\"}":{"#,
            r#"".":{},"f:env":{"k:{\"name\":\"A\"}":{".":{},"f:name":{},"f:value":{}}},"f:image":{},"f:name":{},"#,
            r#""f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}},"#,
            r#""k:{\"containerPort\":443,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}}}}}}}}}"#
        )
    );
    let e = entry(&a1.object, "ci", "Apply").unwrap();
    assert_eq!(e["apiVersion"], "apps/v1");
    assert_eq!(e["time"], "2024-01-01T00:00:00Z");
    assert_eq!(e["fieldsType"], "FieldsV1");
    assert!(e.get("subresource").is_none());
    let live = stored(a1.object, "u1");

    // 2. another client edits with an Update: adds an annotation and minReadySeconds
    let mut edited = live.clone();
    edited["metadata"]["annotations"] = json!({"team": "payments"});
    edited["spec"]["minReadySeconds"] = json!(5);
    let op_edit = Operation::new("kubectl-edit", t("2024-01-02T00:00:00Z"));
    update_object(&ty, Some(&live), &mut edited, &op_edit);
    assert_eq!(
        fields_v1(&edited, "kubectl-edit", "Update"),
        r#"{"f:metadata":{"f:annotations":{".":{},"f:team":{}}},"f:spec":{"f:minReadySeconds":{}}}"#
    );
    let e = entry(&edited, "kubectl-edit", "Update").unwrap();
    assert_eq!(e["apiVersion"], "apps/v1");
    assert_eq!(e["time"], "2024-01-02T00:00:00Z");
    // the applier keeps its fields: nothing it owns changed
    assert_eq!(
        fields_v1(&edited, "ci", "Apply"),
        fields_v1(&live, "ci", "Apply")
    );
    let live = edited;

    // 3. apply again: port 443 and label tier dropped, env B added
    let op2 = Operation::new("ci", t("2024-01-03T00:00:00Z"));
    let a2 = apply(&ty, Some(&live), &web_v2(), &op2, false).unwrap();
    let obj = &a2.object;
    assert_eq!(obj["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(obj["metadata"]["annotations"], json!({"team": "payments"}));
    assert_eq!(obj["spec"]["minReadySeconds"], 5);
    assert_eq!(obj["spec"]["replicas"], 2);
    let c = &obj["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        c["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}])
    );
    assert_eq!(
        c["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
    );
    // a default the applier never set stays
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(obj["metadata"]["uid"], "u1");
    assert_eq!(
        fields_v1(obj, "ci", "Apply"),
        concat!(
            r#"{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:replicas":{},"f:selector":{},"#,
            r#""f:template":{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"web\"}":{"#,
            r#"".":{},"f:env":{"k:{\"name\":\"A\"}":{".":{},"f:name":{},"f:value":{}},"k:{\"name\":\"B\"}":{".":{},"f:name":{},"f:value":{}}},"#,
            r#""f:image":{},"f:name":{},"f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}}}}}}}}}"#
        )
    );
    assert_eq!(
        entry(obj, "ci", "Apply").unwrap()["time"],
        "2024-01-03T00:00:00Z"
    );
    assert_eq!(
        fields_v1(obj, "kubectl-edit", "Update"),
        r#"{"f:metadata":{"f:annotations":{".":{},"f:team":{}}},"f:spec":{"f:minReadySeconds":{}}}"#
    );
    // Apply entries sort before Update entries
    let managers: Vec<&str> = a2
        .managed_fields
        .iter()
        .map(|e| e["manager"].as_str().unwrap())
        .collect();
    assert_eq!(managers, ["ci", "kubectl-edit"]);

    // 4. applying the same configuration again changes nothing, not even the time
    let live = stored(a2.object, "u1");
    let op3 = Operation::new("ci", t("2024-01-04T00:00:00Z"));
    let a3 = apply(&ty, Some(&live), &web_v2(), &op3, false).unwrap();
    assert!(!a3.changed);
    assert_eq!(a3.object, live);
}

#[test]
fn a_second_applier_conflicts_and_force_moves_ownership() {
    let ty = deploy_type();
    let a1 = apply(
        &ty,
        None,
        &web_v1(),
        &Operation::new("ci", t("2024-01-01T00:00:00Z")),
        false,
    )
    .unwrap();
    let live = stored(a1.object, "u1");

    let helm_cfg = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 3}
    });
    let helm = Operation::new("helm", t("2024-01-02T00:00:00Z"));
    let err = apply(&ty, Some(&live), &helm_cfg, &helm, false).unwrap_err();
    let ApplyError::Conflicts(c) = err else {
        panic!("expected conflicts, got {err}")
    };
    assert_eq!(
        c.message(),
        r#"Apply failed with 1 conflict: conflict with "ci": .spec.replicas"#
    );
    assert_eq!(
        c.causes()
            .iter()
            .map(ConflictCause::to_json)
            .collect::<Vec<_>>(),
        vec![
            json!({"reason": "FieldManagerConflict", "message": "conflict with \"ci\"", "field": ".spec.replicas"})
        ]
    );
    let status = c.to_status();
    assert_eq!(status["code"], 409);
    assert_eq!(status["reason"], "Conflict");

    // the same value is no conflict: the field becomes shared
    let same = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 2}
    });
    let shared = apply(&ty, Some(&live), &same, &helm, false).unwrap();
    assert!(!shared.changed);
    assert_eq!(
        fields_v1(&shared.object, "helm", "Apply"),
        r#"{"f:spec":{"f:replicas":{}}}"#
    );
    assert!(fields_v1(&shared.object, "ci", "Apply").contains("f:replicas"));
    // no change, so no time for the new entry (as upstream)
    assert!(entry(&shared.object, "helm", "Apply")
        .unwrap()
        .get("time")
        .is_none());

    // several conflicts are grouped by manager
    let helm_cfg2 = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}
    });
    let ApplyError::Conflicts(c) = apply(&ty, Some(&live), &helm_cfg2, &helm, false).unwrap_err()
    else {
        panic!()
    };
    assert_eq!(
        c.message(),
        "Apply failed with 2 conflicts: conflicts with \"ci\":\n- .spec.replicas\n- .spec.template.spec.containers[name=\"web\"].image"
    );
    assert_eq!(
        c.causes()[1].field,
        r#".spec.template.spec.containers[name="web"].image"#
    );

    // force takes the fields over
    let forced = apply(&ty, Some(&live), &helm_cfg, &helm, true).unwrap();
    assert_eq!(forced.object["spec"]["replicas"], 3);
    assert_eq!(
        fields_v1(&forced.object, "helm", "Apply"),
        r#"{"f:spec":{"f:replicas":{}}}"#
    );
    assert!(!fields_v1(&forced.object, "ci", "Apply").contains("f:replicas"));
    let live = stored(forced.object, "u1");

    // now ci conflicts with helm when it applies its replicas again
    let ApplyError::Conflicts(c) = apply(
        &ty,
        Some(&live),
        &web_v1(),
        &Operation::new("ci", t("2024-01-03T00:00:00Z")),
        false,
    )
    .unwrap_err() else {
        panic!()
    };
    assert_eq!(
        c.message(),
        r#"Apply failed with 1 conflict: conflict with "helm": .spec.replicas"#
    );
}

#[test]
fn kubectl_scale_after_apply() {
    let ty = deploy_type();
    let a1 = apply(
        &ty,
        None,
        &web_v1(),
        &Operation::new("ci", t("2024-01-01T00:00:00Z")),
        false,
    )
    .unwrap();
    let live = stored(a1.object, "u1");

    // PATCH deployments/web/scale by kubectl scale, applied to the deployment
    let mut scaled = live.clone();
    scaled["spec"]["replicas"] = json!(5);
    scaled["metadata"]["resourceVersion"] = json!("2");
    let op = Operation::new("kubectl-scale", t("2024-01-02T03:04:05Z")).with_subresource("scale");
    let mf = update(&ty, Some(&live), &scaled, &op);
    set_managed_fields(&mut scaled, mf);
    let e = entry(&scaled, "kubectl-scale", "Update").unwrap();
    assert_eq!(
        e,
        &json!({
            "manager": "kubectl-scale",
            "operation": "Update",
            "apiVersion": "apps/v1",
            "time": "2024-01-02T03:04:05Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:replicas": {}}},
            "subresource": "scale"
        })
    );
    assert!(!fields_v1(&scaled, "ci", "Apply").contains("f:replicas"));
    // the applier's time does not move
    assert_eq!(
        entry(&scaled, "ci", "Apply").unwrap()["time"],
        "2024-01-01T00:00:00Z"
    );

    // re-applying the old replicas conflicts with the scaler
    let ApplyError::Conflicts(c) = apply(
        &ty,
        Some(&scaled),
        &web_v1(),
        &Operation::new("ci", t("2024-01-03T00:00:00Z")),
        false,
    )
    .unwrap_err() else {
        panic!()
    };
    assert_eq!(
        c.message(),
        r#"Apply failed with 1 conflict: conflict with "kubectl-scale" with subresource "scale" using apps/v1: .spec.replicas"#
    );
    assert_eq!(
        c.causes()[0].message,
        r#"conflict with "kubectl-scale" with subresource "scale" using apps/v1"#
    );

    // applying without replicas leaves them to the scaler
    let mut cfg = web_v1();
    cfg["spec"].as_object_mut().unwrap().remove("replicas");
    let a2 = apply(
        &ty,
        Some(&scaled),
        &cfg,
        &Operation::new("ci", t("2024-01-03T00:00:00Z")),
        false,
    )
    .unwrap();
    assert_eq!(a2.object["spec"]["replicas"], 5);

    // a second scale by the same manager keeps one entry with the new time
    let live = stored(a2.object, "u1");
    let mut scaled2 = live.clone();
    scaled2["spec"]["replicas"] = json!(7);
    let op = Operation::new("kubectl-scale", t("2024-01-04T00:00:00Z")).with_subresource("scale");
    update_object(&ty, Some(&live), &mut scaled2, &op);
    let scale_entries: Vec<&Value> = scaled2["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["manager"] == "kubectl-scale")
        .collect();
    assert_eq!(scale_entries.len(), 1);
    assert_eq!(scale_entries[0]["time"], "2024-01-04T00:00:00Z");
    // an update that changes nothing keeps the time
    let mut same = scaled2.clone();
    update_object(
        &ty,
        Some(&scaled2),
        &mut same,
        &Operation::new("kubectl-scale", t("2024-01-05T00:00:00Z")).with_subresource("scale"),
    );
    assert_eq!(
        entry(&same, "kubectl-scale", "Update").unwrap()["time"],
        "2024-01-04T00:00:00Z"
    );
}

#[test]
fn set_lists_union_and_prune() {
    let ty = TypeInfo::new("v1", "ConfigMap", false).unwrap();
    let cm = |fins: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": fins}});
    let a = apply(
        &ty,
        None,
        &cm(json!(["x", "shared"])),
        &Operation::new("a", t("2024-01-01T00:00:00Z")),
        false,
    )
    .unwrap();
    assert_eq!(
        fields_v1(&a.object, "a", "Apply"),
        r#"{"f:metadata":{"f:finalizers":{"v:\"shared\"":{},"v:\"x\"":{}}}}"#
    );
    let live = stored(a.object, "u");
    let b = apply(
        &ty,
        Some(&live),
        &cm(json!(["y", "shared"])),
        &Operation::new("b", t("2024-01-02T00:00:00Z")),
        false,
    )
    .unwrap();
    assert_eq!(
        b.object["metadata"]["finalizers"],
        json!(["x", "y", "shared"])
    );
    let live = stored(b.object, "u");
    // a drops x and shared: x goes, shared stays (b owns it)
    let a2 = apply(
        &ty,
        Some(&live),
        &cm(json!([])),
        &Operation::new("a", t("2024-01-03T00:00:00Z")),
        false,
    )
    .unwrap();
    assert_eq!(a2.object["metadata"]["finalizers"], json!(["y", "shared"]));
    assert!(entry(&a2.object, "a", "Apply").is_none());
}

#[test]
fn associative_lists_with_two_keys() {
    let ty = deploy_type();
    let cfg = |ports: Value| {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "dns"},
            "spec": {"template": {"spec": {"containers": [{"name": "dns", "ports": ports}]}}}
        })
    };
    let a1 = apply(
        &ty,
        None,
        &cfg(json!([
            {"containerPort": 53, "protocol": "UDP", "name": "dns"},
            {"containerPort": 53, "protocol": "TCP", "name": "dns-tcp"}
        ])),
        &Operation::new("m", t("2024-01-01T00:00:00Z")),
        false,
    )
    .unwrap();
    let fs = fields_v1(&a1.object, "m", "Apply");
    assert!(fs.contains(
        r#""f:ports":{"k:{\"containerPort\":53,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{},"f:name":{},"f:protocol":{}},"k:{\"containerPort\":53,\"protocol\":\"UDP\"}":{".":{},"f:containerPort":{},"f:name":{},"f:protocol":{}}}"#
    ), "{fs}");
    let live = stored(a1.object, "u");
    // the TCP port again, its protocol left to the default: the UDP port is pruned, and so
    // is the protocol m no longer applies (the strategy's defaulting puts TCP back)
    let a2 = apply(
        &ty,
        Some(&live),
        &cfg(json!([{"containerPort": 53, "name": "dns-tcp"}])),
        &Operation::new("m", t("2024-01-02T00:00:00Z")),
        false,
    )
    .unwrap();
    assert_eq!(
        a2.object["spec"]["template"]["spec"]["containers"][0]["ports"],
        json!([{"containerPort": 53, "name": "dns-tcp"}])
    );
    // a duplicate key in the applied list fails like upstream's typed conversion
    let err = apply(
        &ty,
        Some(&live),
        &cfg(json!([{"containerPort": 53}, {"containerPort": 53, "protocol": "TCP"}])),
        &Operation::new("m", t("2024-01-02T00:00:00Z")),
        false,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"failed to create typed patch object (/dns; apps/v1, Kind=Deployment): .spec.template.spec.containers[name="dns"].ports: duplicate entries for key [containerPort=53,protocol="TCP"]"#
    );
}

#[test]
fn docs_configmap_example() {
    // kubernetes.io/docs/reference/using-api/server-side-apply: the managedFields of a
    // ConfigMap applied by kubectl.
    let ty = TypeInfo::new("v1", "ConfigMap", false).unwrap();
    let cfg = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "test-cm", "namespace": "default", "labels": {"test-label": "test"}},
        "data": {"key": "some value"}
    });
    let a = apply(
        &ty,
        None,
        &cfg,
        &Operation::new("kubectl", t("2010-10-10T00:00:00Z")),
        false,
    )
    .unwrap();
    assert_eq!(
        a.object["metadata"]["managedFields"],
        json!([{
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": "2010-10-10T00:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {"f:test-label": {}}}, "f:data": {"f:key": {}}}
        }])
    );
    assert_eq!(
        fields_v1(&a.object, "kubectl", "Apply"),
        r#"{"f:data":{"f:key":{}},"f:metadata":{"f:labels":{"f:test-label":{}}}}"#
    );
    assert_eq!(a.object["data"], json!({"key": "some value"}));
}

#[test]
fn create_by_update_records_like_upstream() {
    let ty = deploy_type();
    let obj = stored(
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}]}]}
                }
            },
            "status": {"replicas": 0}
        }),
        "u",
    );
    let mf = update(
        &ty,
        None,
        &obj,
        &Operation::new("kubectl-create", t("2024-01-01T00:00:00Z")),
    );
    assert_eq!(mf.len(), 1);
    let fs = FieldSet::from_fields_v1(&mf[0]["fieldsV1"]).unwrap();
    assert_eq!(
        fs.to_fields_v1_string(),
        concat!(
            r#"{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:replicas":{},"f:selector":{},"#,
            r#""f:strategy":{"f:rollingUpdate":{".":{},"f:maxSurge":{},"f:maxUnavailable":{}},"f:type":{}},"#,
            r#""f:template":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{"#,
            r#"".":{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:ports":{".":{},"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{"#,
            r#"".":{},"f:containerPort":{},"f:protocol":{}}},"f:resources":{}}}}}}}"#
        )
    );
    // an existing object without managed fields is not tracked by updates
    let mut changed = obj.clone();
    changed["spec"]["replicas"] = json!(2);
    assert!(update(
        &ty,
        Some(&obj),
        &changed,
        &Operation::new("x", t("2024-01-02T00:00:00Z"))
    )
    .is_empty());
}

#[test]
fn first_apply_to_an_untracked_object_conflicts_with_before_first_apply() {
    let ty = deploy_type();
    let live = stored(web_v1(), "u");
    let cfg = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 3}
    });
    let op = Operation::new("helm", t("2024-01-02T00:00:00Z"));
    let ApplyError::Conflicts(c) = apply(&ty, Some(&live), &cfg, &op, false).unwrap_err() else {
        panic!()
    };
    assert_eq!(
        c.message(),
        r#"Apply failed with 1 conflict: conflict with "before-first-apply" using apps/v1: .spec.replicas"#
    );
    let forced = apply(&ty, Some(&live), &cfg, &op, true).unwrap();
    let bfa = fields_v1(&forced.object, "before-first-apply", "Update");
    assert!(
        !bfa.contains("f:replicas") && bfa.contains("f:image"),
        "{bfa}"
    );
}

#[test]
fn kubectl_takes_over_client_side_apply_fields() {
    let ty = deploy_type();
    let last = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"}, "spec": {"replicas": 2}});
    let mut created = web_v1();
    created["metadata"]["annotations"] = json!({LAST_APPLIED_ANNOTATION: format!("{}\n", last)});
    let mf = update(
        &ty,
        None,
        &created,
        &Operation::new("kubectl-client-side-apply", t("2024-01-01T00:00:00Z")),
    );
    set_managed_fields(&mut created, mf);
    let live = stored(created, "u");

    let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"}, "spec": {"replicas": 4}});
    // another manager conflicts
    assert!(matches!(
        apply(
            &ty,
            Some(&live),
            &cfg,
            &Operation::new("other", t("2024-01-02T00:00:00Z")),
            false
        ),
        Err(ApplyError::Conflicts(_))
    ));
    // kubectl may take over what its client-side apply set
    let a = apply(
        &ty,
        Some(&live),
        &cfg,
        &Operation::new("kubectl", t("2024-01-02T00:00:00Z")),
        false,
    )
    .unwrap();
    assert_eq!(a.object["spec"]["replicas"], 4);
    assert_eq!(
        a.object["metadata"]["annotations"][LAST_APPLIED_ANNOTATION],
        "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\",\"namespace\":\"default\"},\"spec\":{\"replicas\":4}}\n"
    );
    // but not what it never applied (the image)
    let cfg2 = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 4, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}}});
    let ApplyError::Conflicts(c) = apply(
        &ty,
        Some(&live),
        &cfg2,
        &Operation::new("kubectl", t("2024-01-02T00:00:00Z")),
        false,
    )
    .unwrap_err() else {
        panic!()
    };
    assert_eq!(
        c.message(),
        r#"Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.template.spec.containers[name="web"].image"#
    );
}

#[test]
fn update_managers_are_capped() {
    let ty = TypeInfo::new("v1", "ConfigMap", false).unwrap();
    let mut live = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k0": "v"}});
    update_object(
        &ty,
        None,
        &mut live,
        &Operation::new("m0", t("2024-01-01T00:00:00Z")),
    );
    live["metadata"]["uid"] = json!("u");
    for i in 1..=11 {
        let mut next = live.clone();
        next["data"][format!("k{i}")] = json!("v");
        let now = t("2024-01-01T00:00:00Z") + chrono::Duration::seconds(i);
        update_object(
            &ty,
            Some(&live),
            &mut next,
            &Operation::new(&format!("m{i}"), now),
        );
        live = next;
    }
    let mf = live["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(mf.len(), 10);
    let ancient = mf
        .iter()
        .find(|e| e["manager"] == "ancient-changes")
        .unwrap();
    assert_eq!(
        ancient["fieldsV1"],
        json!({"f:data": {".": {}, "f:k0": {}, "f:k1": {}, "f:k2": {}}})
    );
    assert_eq!(ancient["time"], "2024-01-01T00:00:02Z");
    assert!(mf
        .iter()
        .all(|e| e["manager"] != "m0" && e["manager"] != "m2"));
}

#[test]
fn managed_fields_from_requests() {
    let ty = TypeInfo::new("v1", "ConfigMap", false).unwrap();
    let mut live = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
    update_object(
        &ty,
        None,
        &mut live,
        &Operation::new("m", t("2024-01-01T00:00:00Z")),
    );
    live["metadata"]["uid"] = json!("u");
    // [{}] (or []) clears the managed fields: the object is untracked until its next apply
    for empty in [json!([{}]), json!([])] {
        let mut reset = live.clone();
        reset["metadata"]["managedFields"] = empty;
        reset["data"]["b"] = json!("2");
        update_object(
            &ty,
            Some(&live),
            &mut reset,
            &Operation::new("n", t("2024-01-02T00:00:00Z")),
        );
        assert!(reset["metadata"].get("managedFields").is_none(), "{reset}");
    }
    // a client may rewrite them
    let mut rewritten = live.clone();
    rewritten["metadata"]["managedFields"] = json!([{"manager": "z", "operation": "Update", "apiVersion": "v1",
        "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}}]);
    update_object(
        &ty,
        Some(&live),
        &mut rewritten,
        &Operation::new("n", t("2024-01-02T00:00:00Z")),
    );
    assert_eq!(
        rewritten["metadata"]["managedFields"],
        json!([{"manager": "z", "operation": "Update", "apiVersion": "v1",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}}])
    );
    // a client that drops managedFields keeps the stored ones
    let mut dropped = live.clone();
    dropped["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("managedFields");
    dropped["data"]["a"] = json!("3");
    update_object(
        &ty,
        Some(&live),
        &mut dropped,
        &Operation::new("n", t("2024-01-02T00:00:00Z")),
    );
    let managers: Vec<&str> = dropped["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["manager"].as_str().unwrap())
        .collect();
    assert_eq!(managers, ["m", "n"]);
    // m lost .data.a to n but still owns the map it created
    assert_eq!(fields_v1(&dropped, "m", "Update"), r#"{"f:data":{}}"#);
    assert_eq!(
        fields_v1(&dropped, "n", "Update"),
        r#"{"f:data":{"f:a":{}}}"#
    );
}

#[test]
fn apply_checks_the_request() {
    let ty = deploy_type();
    let op = Operation::new("m", t("2024-01-01T00:00:00Z"));
    let wrong =
        json!({"apiVersion": "apps/v1beta1", "kind": "Deployment", "metadata": {"name": "x"}});
    assert_eq!(
        apply(&ty, None, &wrong, &op, false)
            .unwrap_err()
            .to_string(),
        "invalid object type: apps/v1beta1, Kind=Deployment"
    );
    let with_mf = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "managedFields": []}});
    assert_eq!(
        apply(&ty, None, &with_mf, &op, false)
            .unwrap_err()
            .to_string(),
        "metadata.managedFields must be nil"
    );
    // status is not owned on a resource with a status subresource
    let with_status = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
        "spec": {"replicas": 1}, "status": {"replicas": 9}});
    let a = apply(&ty, None, &with_status, &op, false).unwrap();
    assert_eq!(
        fields_v1(&a.object, "m", "Apply"),
        r#"{"f:spec":{"f:replicas":{}}}"#
    );
    assert_eq!(
        fields_of(&with_status, &ty).to_fields_v1_string(),
        r#"{"f:spec":{"f:replicas":{}}}"#
    );
    let no_sub = TypeInfo::new("apps/v1", "Deployment", false).unwrap();
    assert_eq!(
        fields_of(&with_status, &no_sub).to_fields_v1_string(),
        r#"{"f:spec":{"f:replicas":{}},"f:status":{"f:replicas":{}}}"#
    );
}

#[test]
fn granular_and_atomic_maps_and_structs() {
    let ty = deploy_type();
    let cfg = |sel: Value, ns: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
            "spec": {"selector": {"matchLabels": sel}, "template": {"spec": {"nodeSelector": ns}}}})
    };
    let op = Operation::new("a", t("2024-01-01T00:00:00Z"));
    let a = apply(
        &ty,
        None,
        &cfg(json!({"a": "1"}), json!({"disk": "ssd"})),
        &op,
        false,
    )
    .unwrap();
    assert_eq!(
        fields_v1(&a.object, "a", "Apply"),
        r#"{"f:spec":{"f:selector":{},"f:template":{"f:spec":{"f:nodeSelector":{}}}}}"#
    );
    let live = stored(a.object, "u");
    // another applier sets the atomic selector and nodeSelector: the values are replaced
    // whole (after force)
    let b = apply(
        &ty,
        Some(&live),
        &cfg(json!({"b": "2"}), json!({"zone": "z1"})),
        &Operation::new("b", t("2024-01-02T00:00:00Z")),
        true,
    )
    .unwrap();
    assert_eq!(
        b.object["spec"]["selector"],
        json!({"matchLabels": {"b": "2"}})
    );
    assert_eq!(
        b.object["spec"]["template"]["spec"]["nodeSelector"],
        json!({"zone": "z1"})
    );
    assert!(entry(&b.object, "a", "Apply").is_none());
}

#[test]
fn service_ports_key_on_port_and_default_protocol() {
    let ty = TypeInfo::new("v1", "Service", true).unwrap();
    let cfg = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}});
    let a = apply(
        &ty,
        None,
        &cfg,
        &Operation::new("m", t("2024-01-01T00:00:00Z")),
        false,
    )
    .unwrap();
    assert_eq!(
        fields_v1(&a.object, "m", "Apply"),
        r#"{"f:spec":{"f:ports":{"k:{\"port\":80,\"protocol\":\"TCP\"}":{".":{},"f:port":{},"f:targetPort":{}}},"f:selector":{}}}"#
    );
}

#[test]
fn managers_from_user_agents() {
    assert_eq!(manager_or_user_agent("helm", "kubectl/v1.35.0"), "helm");
    assert_eq!(
        manager_or_user_agent("", "kubectl/v1.35.0 (linux/amd64) kubernetes/abc"),
        "kubectl"
    );
    assert_eq!(
        manager_or_user_agent("", "kube-controller-manager/v1.35.0"),
        "kube-controller-manager"
    );
    assert_eq!(manager_or_user_agent("", ""), "");
}
