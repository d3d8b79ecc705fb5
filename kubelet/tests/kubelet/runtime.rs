//! The containerd runtime against a real containerd (started by the test, as root) running
//! real containers through runc, from a busybox image built and imported locally.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use keelson_kubelet::runtime::containerd::oci_spec;

use crate::fixture::{spec, wait_exited, wait_log, Containerd, IMAGE, NAMESPACE};
use keelson_kubelet::runtime::image::{build_busybox_image, sha256_digest};
use keelson_kubelet::runtime::{ContainerState, Runtime, RuntimeError};

#[test]
fn busybox_image_is_an_oci_layout_with_busybox_and_its_applets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = build_busybox_image(dir.path(), IMAGE).expect("build image");
    let mut blobs = BTreeMap::new();
    let mut archive = tar::Archive::new(std::fs::File::open(&path).expect("open"));
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let name = entry.path().expect("path").to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("read");
        blobs.insert(name, data);
    }
    assert!(blobs.contains_key("oci-layout"));
    for (name, data) in &blobs {
        if let Some(hex) = name.strip_prefix("blobs/sha256/") {
            assert_eq!(sha256_digest(data), format!("sha256:{hex}"), "{name}");
        }
    }
    let blob = |digest: &str| -> &Vec<u8> {
        &blobs[&format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))]
    };
    let index: serde_json::Value = serde_json::from_slice(&blobs["index.json"]).expect("index");
    let m = &index["manifests"][0];
    assert_eq!(m["annotations"]["io.containerd.image.name"], IMAGE);
    assert_eq!(m["annotations"]["org.opencontainers.image.ref.name"], IMAGE);
    let manifest: serde_json::Value =
        serde_json::from_slice(blob(m["digest"].as_str().expect("digest"))).expect("manifest");
    let config: serde_json::Value =
        serde_json::from_slice(blob(manifest["config"]["digest"].as_str().expect("config")))
            .expect("config");
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["sh"]));
    let layer_gz = blob(manifest["layers"][0]["digest"].as_str().expect("layer"));
    let mut layer = Vec::new();
    flate2::read::GzDecoder::new(&layer_gz[..])
        .read_to_end(&mut layer)
        .expect("gunzip");
    assert_eq!(config["rootfs"]["diff_ids"][0], sha256_digest(&layer));
    let mut entries = BTreeMap::new();
    for entry in tar::Archive::new(&layer[..])
        .entries()
        .expect("layer entries")
    {
        let entry = entry.expect("entry");
        let name = entry.path().expect("path").to_string_lossy().into_owned();
        let link = entry
            .link_name()
            .expect("link")
            .map(|l| l.to_string_lossy().into_owned());
        entries.insert(name.trim_end_matches('/').to_string(), (entry.size(), link));
    }
    let busybox_size = std::fs::metadata("/bin/busybox").expect("busybox").len();
    assert_eq!(entries["bin/busybox"].0, busybox_size);
    for applet in ["sh", "echo", "sleep", "cat", "ls", "wget", "httpd", "nc"] {
        assert_eq!(
            entries[&format!("bin/{applet}")].1.as_deref(),
            Some("busybox"),
            "{applet}"
        );
    }
    assert!(entries.contains_key("tmp"));
    let passwd = tar::Archive::new(&layer[..])
        .entries()
        .expect("entries")
        .filter_map(|e| e.ok())
        .find(|e| {
            e.path()
                .map(|p| p == Path::new("etc/passwd"))
                .unwrap_or(false)
        })
        .map(|mut e| {
            let mut s = String::new();
            e.read_to_string(&mut s).expect("passwd");
            s
        })
        .expect("etc/passwd in the layer");
    assert!(passwd.starts_with("root:x:0:0:"), "{passwd}");
}

#[test]
fn runtime_spec_carries_the_container_settings() {
    let image_config = serde_json::json!({
        "config": { "Env": ["PATH=/bin", "A=image"], "Cmd": ["sh"], "WorkingDir": "/w" }
    });
    let mut s = spec("c1", &[], PathBuf::from("/tmp/log"));
    s.env = vec![("A".into(), "pod".into()), ("B".into(), "2".into())];
    s.mounts = vec![(PathBuf::from("/host/data"), "/data".into(), true)];
    s.network_namespace = Some(PathBuf::from("/var/run/netns/pod1"));
    s.user = Some((1000, 2000));
    s.read_only_rootfs = true;
    s.cpu_limit_milli = Some(500);
    s.memory_limit_bytes = Some(64 << 20);
    let oci =
        serde_json::to_value(oci_spec(&s, &image_config, NAMESPACE).expect("spec")).expect("json");
    assert_eq!(oci["process"]["args"], serde_json::json!(["sh"]));
    assert_eq!(
        oci["process"]["env"],
        serde_json::json!(["PATH=/bin", "A=pod", "B=2"])
    );
    assert_eq!(oci["process"]["cwd"], "/w");
    assert_eq!(oci["process"]["user"]["uid"], 1000);
    assert_eq!(oci["process"]["user"]["gid"], 2000);
    assert_eq!(oci["root"]["readonly"], true);
    assert_eq!(oci["linux"]["cgroupsPath"], "/keelson/c1");
    assert_eq!(oci["linux"]["resources"]["cpu"]["quota"], 50_000);
    assert_eq!(oci["linux"]["resources"]["cpu"]["period"], 100_000);
    assert_eq!(oci["linux"]["resources"]["memory"]["limit"], 64 << 20);
    let namespaces = oci["linux"]["namespaces"].as_array().expect("namespaces");
    let net = namespaces
        .iter()
        .find(|n| n["type"] == "network")
        .expect("network namespace");
    assert_eq!(net["path"], "/var/run/netns/pod1");
    let mounts = oci["mounts"].as_array().expect("mounts");
    for dest in ["/proc", "/dev", "/sys"] {
        assert!(mounts.iter().any(|m| m["destination"] == dest), "{dest}");
    }
    let data = mounts
        .iter()
        .find(|m| m["destination"] == "/data")
        .expect("bind mount");
    assert_eq!(data["source"], "/host/data");
    assert!(data["options"]
        .as_array()
        .expect("options")
        .contains(&serde_json::json!("ro")));
    assert!(!oci["process"]["capabilities"]["bounding"]
        .as_array()
        .expect("caps")
        .contains(&serde_json::json!("CAP_SYS_ADMIN")));

    // Host network: no network namespace. Privileged: every capability.
    let mut s = spec("c2", &["true"], PathBuf::from("/tmp/log"));
    s.privileged = true;
    let oci =
        serde_json::to_value(oci_spec(&s, &image_config, NAMESPACE).expect("spec")).expect("json");
    assert!(!oci["linux"]["namespaces"]
        .as_array()
        .expect("namespaces")
        .iter()
        .any(|n| n["type"] == "network"));
    assert!(oci["process"]["capabilities"]["bounding"]
        .as_array()
        .expect("caps")
        .contains(&serde_json::json!("CAP_SYS_ADMIN")));
    assert_eq!(oci["process"]["args"], serde_json::json!(["true"]));
    assert_eq!(oci["hostname"], serde_json::Value::Null);
}

#[test]
fn command_and_args_follow_the_kubernetes_rules() {
    let image_config = serde_json::json!({
        "config": { "Entrypoint": ["/entry"], "Cmd": ["--default"] }
    });
    let args_of = |command: &[&str], args: &[&str]| {
        let mut s = spec("c", command, PathBuf::from("/tmp/log"));
        s.args = args.iter().map(|a| a.to_string()).collect();
        s.hostname = Some("web-0".into());
        let oci = serde_json::to_value(oci_spec(&s, &image_config, NAMESPACE).expect("spec"))
            .expect("json");
        assert_eq!(oci["hostname"], "web-0");
        oci["process"]["args"].clone()
    };
    assert_eq!(
        args_of(&[], &[]),
        serde_json::json!(["/entry", "--default"])
    );
    assert_eq!(args_of(&[], &["-x"]), serde_json::json!(["/entry", "-x"]));
    assert_eq!(args_of(&["sh"], &[]), serde_json::json!(["sh"]));
    assert_eq!(
        args_of(&["sh", "-c"], &["true"]),
        serde_json::json!(["sh", "-c", "true"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_runs_exits_stops_and_removes_containers() {
    let dir = tempfile::Builder::new()
        .prefix("keelson-ctrd")
        .tempdir()
        .expect("tempdir");
    let mut containerd = Containerd::start(dir.path());
    let rt = containerd.connect().await;

    let version = rt.version().await.expect("version");
    assert!(version.starts_with("containerd://1."), "{version}");

    // Import the locally built busybox image.
    assert!(!rt.has_image(IMAGE).await.expect("has_image"));
    let tarball = build_busybox_image(dir.path(), IMAGE).expect("build image");
    let names = rt.import_image(&tarball).await.expect("import");
    assert_eq!(names, vec![IMAGE.to_string()]);
    assert!(rt.has_image(IMAGE).await.expect("has_image"));
    assert!(!rt
        .has_image("keelson.test/other:1")
        .await
        .expect("has_image"));
    // A second import of the same image is harmless.
    assert_eq!(rt.import_image(&tarball).await.expect("re-import"), names);

    // A container that prints and exits 3.
    let logs = dir.path().join("logs");
    let exits = spec(
        "exits",
        &["sh", "-c", "echo hello; exit 3"],
        logs.join("exits.log"),
    );
    rt.start(&exits).await.expect("start exits");
    let (code, state) = wait_exited(&rt, "exits", Duration::from_secs(20)).await;
    assert_eq!(code, 3, "{state:?}");
    let log = wait_log(&exits.log_path, "hello").await;
    assert!(log.contains("hello"), "log: {log:?}");
    rt.remove("exits").await.expect("remove exits");
    assert!(matches!(
        rt.state("exits").await,
        Err(RuntimeError::NotFound(_))
    ));

    // Env, a read-only bind mount and the working directory reach the process.
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    std::fs::write(data.join("file"), "from-the-host").expect("data file");
    let mut env = spec(
        "env",
        &[
            "sh",
            "-c",
            "echo FOO=$FOO; cat /data/file; echo; pwd; touch /data/x || exit 9",
        ],
        logs.join("env.log"),
    );
    env.env = vec![("FOO".into(), "bar".into())];
    env.mounts = vec![(data.clone(), "/data".into(), true)];
    env.working_dir = Some("/tmp".into());
    rt.start(&env).await.expect("start env");
    let (code, _) = wait_exited(&rt, "env", Duration::from_secs(20)).await;
    let log = wait_log(&env.log_path, "/tmp").await;
    assert!(log.contains("FOO=bar"), "log: {log:?}");
    assert!(log.contains("from-the-host"), "log: {log:?}");
    assert!(log.contains("\n/tmp\n"), "log: {log:?}");
    assert_eq!(code, 9, "the bind mount must be read-only; log: {log:?}");
    assert!(!data.join("x").exists());
    rt.remove("env").await.expect("remove env");

    // A container that ignores SIGTERM (sleep as pid 1): stop kills it after the grace.
    let sleeper = spec("sleeper", &["sleep", "1000"], logs.join("sleeper.log"));
    rt.start(&sleeper).await.expect("start sleeper");
    let pid = match rt.state("sleeper").await.expect("state") {
        ContainerState::Running { pid, .. } => pid,
        other => panic!("sleeper is not running: {other:?}"),
    };
    assert!(pid > 0);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("sleeper's /proc");
    assert!(
        String::from_utf8_lossy(&cmdline).contains("sleep"),
        "{cmdline:?}"
    );
    let listed = rt.list().await.expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].id, "sleeper");
    assert_eq!(listed[0].image, IMAGE);
    assert_eq!(
        listed[0].labels.get("io.keelson.test").map(String::as_str),
        Some("sleeper")
    );
    assert!(matches!(listed[0].state, ContainerState::Running { .. }));
    // A running container cannot be removed.
    assert!(rt.remove("sleeper").await.is_err());

    let started = Instant::now();
    rt.stop("sleeper", Duration::from_secs(1))
        .await
        .expect("stop");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(1),
        "stopped in {took:?}, before the grace"
    );
    match rt.state("sleeper").await.expect("state") {
        ContainerState::Exited { exit_code, .. } => {
            assert_eq!(exit_code, 128 + 9, "killed by SIGKILL")
        }
        other => panic!("sleeper did not exit: {other:?}"),
    }
    rt.remove("sleeper").await.expect("remove sleeper");

    // A container that handles SIGTERM exits within the grace period with its own code.
    let polite = spec(
        "polite",
        &[
            "sh",
            "-c",
            "trap 'echo got TERM; exit 7' TERM; echo ready; sleep 1000 & wait",
        ],
        logs.join("polite.log"),
    );
    rt.start(&polite).await.expect("start polite");
    let log = wait_log(&polite.log_path, "ready").await;
    assert!(log.contains("ready"), "log: {log:?}");
    let started = Instant::now();
    rt.stop("polite", Duration::from_secs(20))
        .await
        .expect("stop");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let (code, _) = wait_exited(&rt, "polite", Duration::from_secs(5)).await;
    assert_eq!(code, 7);
    rt.remove("polite").await.expect("remove polite");

    let listed = rt.list().await.expect("list");
    assert!(listed.is_empty(), "{listed:?}");
    assert!(matches!(
        rt.remove("sleeper").await,
        Err(RuntimeError::NotFound(_))
    ));
    drop(containerd);
}
