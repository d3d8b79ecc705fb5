//! Helm v4 against a running server: release storage (protobuf Secrets, PUT without a
//! resourceVersion, label-selected lists) and the chart's objects, applied server-side (the
//! default) or client-side. The chart is `tests/e2e/charts/shop`.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, ensure, Result};
use serde_json::Value;

use crate::harness::Server;

const HELM: &str = "/usr/local/bin/helm";

fn chart() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e/charts/shop")
        .display()
        .to_string()
}

fn helm(s: &Server, dir: &Path, args: &[&str]) -> Result<String> {
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

fn get(s: &Server, what: &[&str]) -> Result<Value> {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    args.extend_from_slice(&["-o", "json"]);
    Ok(serde_json::from_str(&s.kubectl_ok("1.37", &args)?)?)
}

/// install, list, upgrade with changed values, history, rollback, uninstall.
fn release_lifecycle(server_side: bool) -> Result<()> {
    let s = Server::start()?;
    let dir = tempfile::tempdir()?;
    let mode = if server_side {
        "--server-side=true"
    } else {
        "--server-side=false"
    };
    let chart = chart();
    helm(&s, dir.path(), &["install", "shop", &chart, mode])?;
    let listed: Value = serde_json::from_str(&helm(&s, dir.path(), &["list", "-o", "json"])?)?;
    ensure!(
        listed[0]["name"] == "shop"
            && listed[0]["status"] == "deployed"
            && listed[0]["revision"] == "1",
        "{listed}"
    );
    let secret = get(&s, &["secret", "sh.helm.release.v1.shop.v1"])?;
    ensure!(
        secret["type"] == "helm.sh/release.v1" && secret["metadata"]["labels"]["owner"] == "helm",
        "{secret}"
    );
    let deploy = get(&s, &["deploy", "shop-web"])?;
    ensure!(
        deploy["spec"]["replicas"] == 1
            && deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25",
        "{deploy}"
    );
    ensure!(
        deploy["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
            && deploy["metadata"]["annotations"]["meta.helm.sh/release-name"] == "shop",
        "{}",
        deploy["metadata"]
    );
    for what in [
        ["svc", "shop-web"],
        ["cm", "shop-config"],
        ["sa", "shop-sa"],
        ["role", "shop-reader"],
        ["rolebinding", "shop-reader"],
    ] {
        get(&s, &what)?;
    }

    helm(
        &s,
        dir.path(),
        &[
            "upgrade",
            "shop",
            &chart,
            mode,
            "--set",
            "replicas=3",
            "--set",
            "image=nginx:1.26",
            "--set",
            "greeting=hi",
        ],
    )?;
    let deploy = get(&s, &["deploy", "shop-web"])?;
    ensure!(
        deploy["spec"]["replicas"] == 3
            && deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26",
        "{}",
        deploy["spec"]
    );
    ensure!(get(&s, &["cm", "shop-config"])?["data"]["greeting"] == "hi");
    let history: Value =
        serde_json::from_str(&helm(&s, dir.path(), &["history", "shop", "-o", "json"])?)?;
    ensure!(history.as_array().map(Vec::len) == Some(2), "{history}");

    helm(&s, dir.path(), &["rollback", "shop", "1"])?;
    let deploy = get(&s, &["deploy", "shop-web"])?;
    ensure!(
        deploy["spec"]["replicas"] == 1
            && deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25",
        "{}",
        deploy["spec"]
    );
    ensure!(get(&s, &["cm", "shop-config"])?["data"]["greeting"] == "hello");
    let history: Value =
        serde_json::from_str(&helm(&s, dir.path(), &["history", "shop", "-o", "json"])?)?;
    let statuses: Vec<&str> = history
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h["status"].as_str())
        .collect();
    ensure!(
        statuses == ["superseded", "superseded", "deployed"],
        "{history}"
    );
    // Three revisions, three release Secrets.
    let secrets = get(&s, &["secrets", "-l", "owner=helm,name=shop"])?;
    ensure!(
        secrets["items"].as_array().map(Vec::len) == Some(3),
        "{secrets}"
    );

    helm(&s, dir.path(), &["uninstall", "shop"])?;
    for what in [
        ["deploy", "shop-web"],
        ["svc", "shop-web"],
        ["cm", "shop-config"],
        ["role", "shop-reader"],
    ] {
        let left = s.kubectl("1.37", &["get", what[0], what[1]])?;
        ensure!(!left.status.success(), "{what:?} left behind");
    }
    ensure!(helm(&s, dir.path(), &["list", "-q"])?.trim().is_empty());
    let secrets = get(&s, &["secrets", "-l", "owner=helm"])?;
    ensure!(
        secrets["items"].as_array().is_some_and(Vec::is_empty),
        "{secrets}"
    );
    Ok(())
}

#[test]
fn helm_with_server_side_apply() -> Result<()> {
    release_lifecycle(true)
}

#[test]
fn helm_with_client_side_apply() -> Result<()> {
    release_lifecycle(false)
}
