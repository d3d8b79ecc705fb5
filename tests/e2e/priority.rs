//! The Priority admission plugin and the system PriorityClasses, through kubectl and
//! kube-rs.

use anyhow::{ensure, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;

use crate::harness::Server;

const KUBECTL: &str = "1.37";

fn class(name: &str, value: i64, global_default: bool) -> String {
    format!(
        "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata:\n  name: {name}\nvalue: {value}\nglobalDefault: {global_default}\n"
    )
}

fn pod(name: &str, class: Option<&str>) -> String {
    let class = class
        .map(|c| format!("  priorityClassName: \"{c}\"\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n{class}  containers:\n  - name: c\n    image: registry.invalid/app:1\n"
    )
}

async fn pod_priority(server: &Server, name: &str) -> Result<(Option<i32>, Option<String>)> {
    let pods: Api<Pod> = Api::namespaced(server.client().await?, "default");
    let spec = pods.get(name).await?.spec.unwrap_or_default();
    Ok((spec.priority, spec.priority_class_name))
}

#[tokio::test]
async fn system_priority_classes_exist() -> Result<()> {
    let server = Server::start()?;
    let out = server.kubectl_ok(KUBECTL, &["get", "priorityclasses"])?;
    ensure!(
        out.contains("system-cluster-critical") && out.contains("2000000000"),
        "{out}"
    );
    ensure!(
        out.contains("system-node-critical") && out.contains("2000001000"),
        "{out}"
    );
    // A pod may use them; its priority comes from the class.
    server.kubectl_stdin(
        KUBECTL,
        &["apply", "-f", "-"],
        &pod("critical", Some("system-node-critical")),
    )?;
    ensure!(pod_priority(&server, "critical").await?.0 == Some(2000001000));
    Ok(())
}

#[tokio::test]
async fn pod_gets_the_priority_of_its_class() -> Result<()> {
    let server = Server::start()?;
    server.kubectl_stdin(KUBECTL, &["apply", "-f", "-"], &class("high", 1000, false))?;
    server.kubectl_stdin(KUBECTL, &["apply", "-f", "-"], &pod("p", Some("high")))?;
    let (priority, name) = pod_priority(&server, "p").await?;
    ensure!(priority == Some(1000), "{priority:?}");
    ensure!(name.as_deref() == Some("high"));
    let out = server.kubectl_ok(
        KUBECTL,
        &["get", "pod", "p", "-o", "jsonpath={.spec.preemptionPolicy}"],
    )?;
    ensure!(out == "PreemptLowerPriority", "{out}");
    // Without a class and without a default: 0.
    server.kubectl_stdin(KUBECTL, &["apply", "-f", "-"], &pod("plain", None))?;
    ensure!(pod_priority(&server, "plain").await? == (Some(0), None));
    Ok(())
}

#[tokio::test]
async fn unknown_class_is_forbidden() -> Result<()> {
    let server = Server::start()?;
    let out = server.kubectl_input(KUBECTL, &["apply", "-f", "-"], &pod("x", Some("y")))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success(),
        "{stderr} {}",
        String::from_utf8_lossy(&out.stdout)
    );
    ensure!(
        stderr.contains(r#"pods "x" is forbidden: no PriorityClass with name y was found"#),
        "{stderr}"
    );
    // A priority that contradicts the class is refused as upstream does.
    server.kubectl_stdin(KUBECTL, &["apply", "-f", "-"], &class("high", 1000, false))?;
    let manifest = pod("z", Some("high")).replace("spec:\n", "spec:\n  priority: 5\n");
    let out = server.kubectl_input(KUBECTL, &["create", "-f", "-"], &manifest)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        stderr.contains("the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 1000 from the given PriorityClass name"),
        "{stderr}"
    );
    Ok(())
}

#[tokio::test]
async fn global_default_applies_to_pods_without_a_class() -> Result<()> {
    let server = Server::start()?;
    server.kubectl_stdin(KUBECTL, &["apply", "-f", "-"], &class("fallback", 42, true))?;
    server.kubectl_stdin(KUBECTL, &["apply", "-f", "-"], &pod("d", None))?;
    let got = pod_priority(&server, "d").await?;
    ensure!(got == (Some(42), Some("fallback".into())), "{got:?}");
    // Only one default; user classes stay below the system range; system- is reserved.
    for (manifest, want) in [
        (
            class("second", 1, true),
            "PriorityClass fallback is already marked as default. Only one default can exist",
        ),
        (
            class("huge", 1_000_000_001, false),
            "maximum allowed value of a user defined priority is 1000000000",
        ),
        (
            class("system-mine", 5, false),
            "prefix are reserved for system use only",
        ),
    ] {
        let out = server.kubectl_input(KUBECTL, &["create", "-f", "-"], &manifest)?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(!out.status.success() && stderr.contains(want), "{stderr}");
    }
    Ok(())
}
