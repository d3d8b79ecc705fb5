//! Exec in running containers through a real containerd (started by the test, as root), and
//! an exec probe against one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ExecAction, Probe};
use keelson_kubelet::probe::{spawn_probe, ProbeKind, ProbeResult, ProbeTarget};
use keelson_kubelet::runtime::image::build_busybox_image;
use keelson_kubelet::runtime::{ContainerState, Runtime, RuntimeError};

use crate::fixture::{spec, wait_exited, Containerd, IMAGE};

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

async fn wait_running(rt: &dyn Runtime, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match rt.state(id).await.expect("state") {
            ContainerState::Running { .. } => return,
            other => assert!(Instant::now() < deadline, "{id} is not running: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_runs_commands_in_running_containers() {
    let dir = tempfile::Builder::new()
        .prefix("keelson-ctrd-exec")
        .tempdir()
        .expect("tempdir");
    let mut containerd = Containerd::start(dir.path());
    let rt = Arc::new(containerd.connect().await);
    let tarball = build_busybox_image(dir.path(), IMAGE).expect("build image");
    rt.import_image(&tarball).await.expect("import");
    let logs = dir.path().join("logs");

    let mut sleeper = spec(
        "sleeper",
        &["sh", "-c", "touch /tmp/healthy; exec sleep 1000"],
        logs.join("sleeper.log"),
    );
    sleeper.env = vec![("GREETING".into(), "hello".into())];
    sleeper.working_dir = Some("/tmp".into());
    rt.start(&sleeper).await.expect("start sleeper");
    wait_running(rt.as_ref(), "sleeper").await;

    // Exit code, stdout and stderr.
    let out = rt
        .exec(
            "sleeper",
            &args(&["sh", "-c", "echo out; echo err >&2; exit 7"]),
            Duration::from_secs(10),
        )
        .await
        .expect("exec");
    let text = String::from_utf8_lossy(&out.output).into_owned();
    assert_eq!(out.exit_code, 7, "{text}");
    assert!(!out.timed_out);
    assert!(text.contains("out\n") && text.contains("err\n"), "{text:?}");

    // The container's environment and working directory.
    let out = rt
        .exec(
            "sleeper",
            &args(&["sh", "-c", "echo $GREETING; pwd; id -u"]),
            Duration::from_secs(10),
        )
        .await
        .expect("exec");
    assert_eq!(out.exit_code, 0);
    assert_eq!(String::from_utf8_lossy(&out.output), "hello\n/tmp\n0\n");

    // Output is capped at 10 KiB.
    let out = rt
        .exec(
            "sleeper",
            &args(&[
                "sh",
                "-c",
                "i=0; while [ $i -lt 400 ]; do echo 0123456789012345678901234567890123456789012345678; i=$((i+1)); done",
            ]),
            Duration::from_secs(10),
        )
        .await
        .expect("exec");
    assert_eq!(out.exit_code, 0);
    assert_eq!(out.output.len(), 10 * 1024);

    // A command that outlives its timeout is killed.
    let started = Instant::now();
    let out = rt
        .exec("sleeper", &args(&["sleep", "10"]), Duration::from_secs(1))
        .await
        .expect("exec");
    let took = started.elapsed();
    assert!(out.timed_out, "{out:?}");
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(3),
        "took {took:?}"
    );
    // The container itself is unharmed.
    wait_running(rt.as_ref(), "sleeper").await;

    // A command the image does not have.
    let missing = rt
        .exec(
            "sleeper",
            &args(&["no-such-command"]),
            Duration::from_secs(5),
        )
        .await;
    assert!(missing.is_err(), "{missing:?}");

    // An exec probe: ready while /tmp/healthy exists, not ready once it is gone.
    let probe = Probe {
        exec: Some(ExecAction {
            // $(HEALTH_FILE) expands from the container's static env, as upstream.
            command: Some(args(&["sh", "-c", "test -f $(HEALTH_FILE)"])),
        }),
        period_seconds: Some(1),
        failure_threshold: Some(2),
        ..Default::default()
    };
    let target = ProbeTarget {
        container_id: "sleeper".into(),
        env: vec![("HEALTH_FILE".into(), "/tmp/healthy".into())],
        ..Default::default()
    };
    let runtime: Arc<dyn Runtime> = rt.clone();
    let readiness = spawn_probe(ProbeKind::Readiness, probe, target, runtime);
    readiness.set_started(true);
    let mut results = readiness.subscribe();
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        results.wait_for(|r| *r == ProbeResult::Success),
    )
    .await
    .expect("ready within 10 s")
    .expect("probe running")
    .clone();
    assert_eq!(result, ProbeResult::Success);
    let out = rt
        .exec(
            "sleeper",
            &args(&["rm", "/tmp/healthy"]),
            Duration::from_secs(5),
        )
        .await
        .expect("exec rm");
    assert_eq!(
        out.exit_code,
        0,
        "{:?}",
        String::from_utf8_lossy(&out.output)
    );
    let started = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        results.wait_for(|r| matches!(r, ProbeResult::Failure { .. })),
    )
    .await
    .expect("not ready within 10 s")
    .expect("probe running")
    .clone();
    assert_eq!(
        result,
        ProbeResult::Failure {
            message: String::new()
        }
    );
    // Two failures one period apart.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    drop(readiness);

    // A container that has exited, and one that does not exist.
    let exits = spec("exits", &["true"], logs.join("exits.log"));
    rt.start(&exits).await.expect("start exits");
    wait_exited(&rt, "exits", Duration::from_secs(20)).await;
    let exited = rt
        .exec("exits", &args(&["true"]), Duration::from_secs(5))
        .await;
    assert!(
        matches!(&exited, Err(RuntimeError::Runtime(m)) if m.contains("not running")),
        "{exited:?}"
    );
    assert!(matches!(
        rt.exec("nobody", &args(&["true"]), Duration::from_secs(5))
            .await,
        Err(RuntimeError::NotFound(_))
    ));

    rt.stop("sleeper", Duration::from_secs(1))
        .await
        .expect("stop");
    rt.remove("sleeper").await.expect("remove sleeper");
    rt.remove("exits").await.expect("remove exits");
    drop(containerd);
}
