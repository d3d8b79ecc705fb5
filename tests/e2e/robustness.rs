//! Durability across SIGKILL, and bad input answered with the right Status.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Result};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::Value;

use crate::harness::{Auth, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() -> Result<()> {
    let mut s = Server::start()?;
    let cms: Api<ConfigMap> = Api::namespaced(s.client().await?, "default");
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..8 {
        let (cms, acked, stop) = (cms.clone(), acked.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let name = format!("w{w}-{i}");
                let cm: ConfigMap = serde_json::from_value(
                    serde_json::json!({"metadata": {"name": name}, "data": {"i": i.to_string()}}),
                )
                .unwrap_or_default();
                match cms.create(&PostParams::default(), &cm).await {
                    Ok(_) => acked.lock().map(|mut a| a.push(name)).unwrap_or(()),
                    Err(_) => break,
                }
                i += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.kill();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().map(|a| a.clone()).unwrap_or_default();
    ensure!(
        acked.len() > 100,
        "only {} writes acknowledged before the kill",
        acked.len()
    );
    tokio::task::block_in_place(|| s.restart())?;
    let cms: Api<ConfigMap> = Api::namespaced(s.client().await?, "default");
    let names: std::collections::HashSet<String> = cms
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    let lost: Vec<&String> = acked.iter().filter(|n| !names.contains(*n)).collect();
    ensure!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost: {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
    Ok(())
}

fn status(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or(Value::Null)
}

#[test]
fn bad_input_gets_the_right_status_and_the_server_keeps_serving() -> Result<()> {
    let s = Server::start()?;
    let cms = "/api/v1/namespaces/default/configmaps";
    // (what, path, content type, body, authenticated, code, reason)
    type Case = (
        &'static str,
        String,
        &'static str,
        Vec<u8>,
        bool,
        u16,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        ("malformed JSON", cms.to_string(), "application/json", b"{\"metadata\": {".to_vec(), true, 400, "BadRequest"),
        ("malformed YAML", cms.to_string(), "application/yaml", b"metadata: [\n  - x: {".to_vec(), true, 400, "BadRequest"),
        ("wrong kind for the path", cms.to_string(), "application/json", br#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}"#.to_vec(), true, 400, "BadRequest"),
        ("invalid name", cms.to_string(), "application/json", br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Not_Valid"}}"#.to_vec(), true, 422, "Invalid"),
        ("missing required field", "/api/v1/namespaces/default/pods".into(), "application/json", br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c"}]}}"#.to_vec(), true, 422, "Invalid"),
        ("unknown resource", "/api/v1/namespaces/default/widgets".into(), "application/json", b"{}".to_vec(), true, 404, "NotFound"),
        ("unknown media type", cms.to_string(), "text/html", b"<p>".to_vec(), true, 415, "UnsupportedMediaType"),
        ("anonymous", cms.to_string(), "application/json", br#"{"metadata":{"name":"anon"}}"#.to_vec(), false, 401, "Unauthorized"),
        ("missing namespace", "/api/v1/namespaces/nope/configmaps".into(), "application/json", br#"{"metadata":{"name":"x"}}"#.to_vec(), true, 404, "NotFound"),
        ("duplicate field, strict", format!("{cms}?fieldValidation=Strict"), "application/json", br#"{"metadata":{"name":"dup"},"data":{"a":"1","a":"2"}}"#.to_vec(), true, 400, "BadRequest"),
        ("unknown field, strict", format!("{cms}?fieldValidation=Strict"), "application/json", br#"{"metadata":{"name":"unk"},"dta":{}}"#.to_vec(), true, 400, "BadRequest"),
    ];
    for (what, path, ct, body, auth, code, reason) in cases {
        let (got, text) = s.curl("POST", &path, ct, Some(&body), auth)?;
        let st = status(&text);
        ensure!(got == code, "{what}: got {got}, want {code}: {text}");
        ensure!(
            st["kind"] == "Status" && st["reason"] == reason && st["code"] == code,
            "{what}: {text}"
        );
    }
    let (_, text) = s.curl(
        "POST",
        &format!("{cms}?fieldValidation=Strict"),
        "application/json",
        Some(br#"{"metadata":{"name":"dup"},"data":{"a":"1","a":"2"}}"#),
        true,
    )?;
    ensure!(
        status(&text)["message"]
            .as_str()
            .is_some_and(|m| m.contains("strict decoding error: duplicate field \"data.a\"")),
        "{text}"
    );
    // A 4 MiB body: 413.
    let big = format!(
        r#"{{"metadata":{{"name":"big"}},"data":{{"a":"{}"}}}}"#,
        "x".repeat(4 * 1024 * 1024)
    );
    let (got, text) = s.curl("POST", cms, "application/json", Some(big.as_bytes()), true)?;
    ensure!(
        got == 413 && status(&text)["reason"] == "RequestEntityTooLarge",
        "{got} {text}"
    );
    // The missing field names the field.
    let (_, text) = s.curl(
        "POST",
        "/api/v1/namespaces/default/pods",
        "application/json",
        Some(br#"{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c"}]}}"#),
        true,
    )?;
    ensure!(
        status(&text)["details"]["causes"][0]["field"] == "spec.containers[0].image",
        "{text}"
    );
    // Still serving, and nothing was created by the failures.
    let (got, text) = s.curl("GET", cms, "", None, true)?;
    ensure!(got == 200, "{text}");
    let names: Vec<String> = status(&text)["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["metadata"]["name"].as_str().map(String::from))
        .collect();
    ensure!(names.is_empty(), "{names:?}");
    Ok(())
}

#[test]
fn start_to_ready_is_quick() -> Result<()> {
    let s = Server::start()?;
    // Generous for a loaded CI machine; BENCHMARKS.md records the real figure.
    ensure!(
        s.ready_after < Duration::from_secs(10),
        "{:?}",
        s.ready_after
    );
    let (code, body) = s.curl("GET", "/readyz", "", None, false)?;
    ensure!(code == 200 && body == "ok", "{code} {body}");
    let (code, body) = s.curl("GET", "/metrics", "", None, true)?;
    ensure!(
        code == 200 && body.contains("apiserver_request_total"),
        "{body}"
    );
    Ok(())
}

#[test]
fn static_bearer_tokens_authenticate() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(
        &tokens,
        "# token,user,uid,groups\nsecret-token-1,alice,uid-1,\"dev,ops\"\n",
    )?;
    let s = Server::start_with(&[
        "--token-auth-file".to_string(),
        tokens.display().to_string(),
    ])?;
    let (code, text) = s.curl_as(
        "GET",
        "/api/v1/namespaces",
        "",
        None,
        Auth::Bearer("secret-token-1"),
    )?;
    ensure!(
        code == 200 && text.contains("NamespaceList"),
        "{code} {text}"
    );
    let (code, text) = s.curl_as("GET", "/api/v1/namespaces", "", None, Auth::Bearer("wrong"))?;
    ensure!(
        code == 401 && status(&text)["reason"] == "Unauthorized",
        "{code} {text}"
    );
    let (code, _) = s.curl_as("GET", "/version", "", None, Auth::Anonymous)?;
    ensure!(code == 200, "/version is public");
    Ok(())
}
