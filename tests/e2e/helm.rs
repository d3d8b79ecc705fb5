//! Helm v4 against a running server: release storage (protobuf Secrets, PUT without a
//! resourceVersion, label-selected lists) and the chart's objects, applied server-side (the
//! default) or client-side.

use std::process::Command;

use anyhow::{bail, ensure, Result};

use crate::harness::Server;

const HELM: &str = "/usr/local/bin/helm";

fn helm(s: &Server, dir: &std::path::Path, args: &[&str]) -> Result<String> {
    let out = Command::new(HELM)
        .args(args)
        .env("KUBECONFIG", &s.kubeconfig)
        .env("HELM_CACHE_HOME", dir.join("cache"))
        .env("HELM_CONFIG_HOME", dir.join("config"))
        .env("HELM_DATA_HOME", dir.join("data"))
        .current_dir(dir)
        .output()?;
    if !out.status.success() {
        bail!(
            "helm {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Helm v4's default (server-side apply) or client-side apply (`--server-side=false`).
fn install_upgrade_uninstall(server_side: bool) -> Result<()> {
    let s = Server::start()?;
    let dir = tempfile::tempdir()?;
    let mode = if server_side {
        "--server-side=true"
    } else {
        "--server-side=false"
    };
    helm(&s, dir.path(), &["create", "demo"])?;
    helm(&s, dir.path(), &["install", "web", "./demo", mode])?;
    let listed = helm(&s, dir.path(), &["list", "-o", "json"])?;
    let releases: serde_json::Value = serde_json::from_str(&listed)?;
    ensure!(
        releases[0]["name"] == "web" && releases[0]["status"] == "deployed",
        "{listed}"
    );
    let secret = s.kubectl_ok(
        "1.37",
        &[
            "get",
            "secret",
            "sh.helm.release.v1.web.v1",
            "-o",
            "jsonpath={.type} {.metadata.labels.owner}",
        ],
    )?;
    ensure!(secret == "helm.sh/release.v1 helm", "{secret}");
    let replicas = s.kubectl_ok(
        "1.37",
        &[
            "get",
            "deploy",
            "web-demo",
            "-o",
            "jsonpath={.spec.replicas}",
        ],
    )?;
    ensure!(replicas == "1", "{replicas}");
    helm(
        &s,
        dir.path(),
        &["upgrade", "web", "./demo", "--set", "replicaCount=3", mode],
    )?;
    let replicas = s.kubectl_ok(
        "1.37",
        &[
            "get",
            "deploy",
            "web-demo",
            "-o",
            "jsonpath={.spec.replicas}",
        ],
    )?;
    ensure!(replicas == "3", "{replicas}");
    let history = helm(&s, dir.path(), &["history", "web", "-o", "json"])?;
    ensure!(history.matches("\"revision\"").count() == 2, "{history}");
    helm(&s, dir.path(), &["uninstall", "web"])?;
    let left = s.kubectl("1.37", &["get", "deploy", "web-demo"])?;
    ensure!(!left.status.success(), "the chart's Deployment is gone");
    ensure!(helm(&s, dir.path(), &["list", "-q"])?.trim().is_empty());
    Ok(())
}

#[test]
fn helm_with_server_side_apply() -> Result<()> {
    install_upgrade_uninstall(true)
}

#[test]
fn helm_with_client_side_apply() -> Result<()> {
    install_upgrade_uninstall(false)
}
