use super::*;
use serde_json::json;

fn pod(restart_policy: &str, inits: &[&str], containers: &[&str]) -> Pod {
    let c = |n: &&str| json!({"name": n, "image": "busybox"});
    serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "default", "uid": "u1"},
        "spec": {
            "restartPolicy": restart_policy,
            "initContainers": inits.iter().map(c).collect::<Vec<_>>(),
            "containers": containers.iter().map(c).collect::<Vec<_>>(),
        }
    }))
    .expect("pod")
}

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + secs)
}

fn instance(pod: &Pod, name: &str, attempt: u32, init: bool, state: ContainerState) -> Instance {
    let spec = pod.spec.as_ref().expect("spec");
    let c = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
        .expect("container");
    Instance {
        id: format!("{name}-{attempt}"),
        name: name.into(),
        attempt,
        init,
        spec_hash: spec_hash(c),
        image: "busybox".into(),
        state,
    }
}

fn running() -> ContainerState {
    ContainerState::Running {
        pid: 1,
        started_at: t(0),
    }
}

fn exited(code: i32, at: u64) -> ContainerState {
    ContainerState::Exited {
        exit_code: code,
        started_at: t(0),
        finished_at: t(at),
        oom_killed: false,
    }
}

fn start(name: &str, init: bool, attempt: u32) -> Action {
    Action::Start {
        name: name.into(),
        init,
        attempt,
    }
}

#[test]
fn a_new_pod_starts_its_first_init_container_only() {
    let p = pod("Always", &["i1", "i2"], &["a", "b"]);
    let plan = plan(&p, &Observed::default(), t(0));
    assert_eq!(plan.actions, vec![start("i1", true, 0)]);
}

#[test]
fn init_containers_run_in_order_then_all_containers_start() {
    let p = pod("Always", &["i1", "i2"], &["a", "b"]);
    let mut seen = vec![instance(&p, "i1", 0, true, running())];
    assert!(plan(
        &p,
        &Observed {
            instances: &seen,
            ..Default::default()
        },
        t(1)
    )
    .actions
    .is_empty());
    seen[0].state = exited(0, 2);
    let got = plan(
        &p,
        &Observed {
            instances: &seen,
            ..Default::default()
        },
        t(3),
    );
    assert_eq!(got.actions, vec![start("i2", true, 0)]);
    assert!(!initialized(&p, &seen));
    seen.push(instance(&p, "i2", 0, true, exited(0, 4)));
    assert!(initialized(&p, &seen));
    let got = plan(
        &p,
        &Observed {
            instances: &seen,
            ..Default::default()
        },
        t(5),
    );
    assert_eq!(
        got.actions,
        vec![start("a", false, 0), start("b", false, 0)]
    );
}

#[test]
fn a_failed_init_container_fails_a_never_pod_and_is_retried_otherwise() {
    let never = pod("Never", &["i1"], &["a"]);
    let seen = vec![instance(&never, "i1", 0, true, exited(1, 1))];
    let got = plan(
        &never,
        &Observed {
            instances: &seen,
            ..Default::default()
        },
        t(2),
    );
    assert!(got.actions.is_empty());
    let always = pod("Always", &["i1"], &["a"]);
    let got = plan(
        &always,
        &Observed {
            instances: &seen,
            ..Default::default()
        },
        t(2),
    );
    assert_eq!(got.actions, vec![start("i1", true, 1)]);
}

#[test]
fn exited_containers_restart_by_policy() {
    for (policy, code, restarts) in [
        ("Always", 0, true),
        ("Always", 1, true),
        ("OnFailure", 0, false),
        ("OnFailure", 2, true),
        ("Never", 0, false),
        ("Never", 3, false),
    ] {
        let p = pod(policy, &[], &["a"]);
        let seen = vec![instance(&p, "a", 0, false, exited(code, 1))];
        let got = plan(
            &p,
            &Observed {
                instances: &seen,
                ..Default::default()
            },
            t(2),
        );
        let want = if restarts {
            vec![start("a", false, 1)]
        } else {
            vec![]
        };
        assert_eq!(got.actions, want, "{policy} exit {code}");
    }
}

#[test]
fn crash_loops_back_off_from_the_last_restart() {
    let p = pod("Always", &[], &["a"]);
    let first = Backoff::next(None, t(10));
    assert_eq!(first.delay, BACKOFF_INITIAL);
    // Attempt 1 started at 10 and crashed at 11: wait until 20.
    let seen = vec![
        instance(&p, "a", 0, false, exited(1, 9)),
        instance(&p, "a", 1, false, exited(1, 11)),
    ];
    let observed = Observed {
        instances: &seen,
        backoff: HashMap::from([("a".to_string(), first)]),
        ..Default::default()
    };
    let got = plan(&p, &observed, t(12));
    assert!(got.actions.is_empty(), "{:?}", got.actions);
    assert_eq!(
        got.backing_off.get("a"),
        Some(&BackingOff {
            delay: BACKOFF_INITIAL,
            until: t(20)
        })
    );
    assert_eq!(got.next_wakeup(), Some(t(20)));
    let got = plan(&p, &observed, t(20));
    assert_eq!(got.actions, vec![start("a", false, 2)]);
    // The delay doubles up to five minutes, and resets after a long healthy run.
    let mut b = first;
    for _ in 0..10 {
        b = Backoff::next(Some(b), b.last_start + Duration::from_secs(1));
    }
    assert_eq!(b.delay, BACKOFF_MAX);
    let second = Backoff::next(Some(first), t(15));
    assert_eq!(second.delay, Duration::from_secs(20));
    let reset = Backoff::next(Some(b), b.last_start + Duration::from_secs(3600));
    assert_eq!(reset.delay, BACKOFF_INITIAL);
}

#[test]
fn a_container_that_ran_longer_than_its_back_off_restarts_at_once() {
    let p = pod("Always", &[], &["a"]);
    let seen = vec![instance(&p, "a", 3, false, exited(1, 100))];
    let observed = Observed {
        instances: &seen,
        backoff: HashMap::from([("a".to_string(), Backoff::next(None, t(10)))]),
        ..Default::default()
    };
    assert_eq!(
        plan(&p, &observed, t(101)).actions,
        vec![start("a", false, 4)]
    );
}

#[test]
fn liveness_failures_and_spec_changes_kill_running_containers() {
    let p = pod("Always", &[], &["a", "b"]);
    let mut seen = vec![
        instance(&p, "a", 0, false, running()),
        instance(&p, "b", 0, false, running()),
    ];
    seen[1].spec_hash = "old".into();
    let observed = Observed {
        instances: &seen,
        liveness_failed: HashSet::from(["a-0".to_string()]),
        ..Default::default()
    };
    let got = plan(&p, &observed, t(1));
    assert_eq!(
        got.actions,
        vec![
            Action::Kill {
                id: "a-0".into(),
                name: "a".into(),
                reason: KillReason::LivenessFailed
            },
            Action::Kill {
                id: "b-0".into(),
                name: "b".into(),
                reason: KillReason::SpecChanged
            },
        ]
    );
    // Killed for liveness: an OnFailure container restarts even if it exited 0 on
    // SIGTERM; a Never one does not.
    for (policy, want) in [("OnFailure", vec![start("a", false, 1)]), ("Never", vec![])] {
        let p = pod(policy, &[], &["a"]);
        let seen = vec![instance(&p, "a", 0, false, exited(0, 2))];
        let observed = Observed {
            instances: &seen,
            liveness_failed: HashSet::from(["a-0".to_string()]),
            ..Default::default()
        };
        assert_eq!(plan(&p, &observed, t(3)).actions, want, "{policy}");
    }
}

#[test]
fn old_instances_are_removed_but_the_previous_one_is_kept() {
    let p = pod("Always", &[], &["a"]);
    let seen = vec![
        instance(&p, "a", 0, false, exited(1, 1)),
        instance(&p, "a", 1, false, exited(1, 2)),
        instance(&p, "a", 2, false, running()),
    ];
    let got = plan(
        &p,
        &Observed {
            instances: &seen,
            ..Default::default()
        },
        t(3),
    );
    assert_eq!(got.actions, vec![Action::Remove { id: "a-0".into() }]);
}

#[test]
fn a_terminal_pod_starts_nothing() {
    let p = pod("Never", &[], &["a"]);
    let observed = Observed {
        terminal: true,
        ..Default::default()
    };
    assert!(plan(&p, &observed, t(0)).actions.is_empty());
}

#[test]
fn sidecars_keep_running_while_the_containers_start() {
    let mut p = pod("Always", &["proxy"], &["a"]);
    if let Some(inits) = p.spec.as_mut().and_then(|s| s.init_containers.as_mut()) {
        inits[0].restart_policy = Some("Always".into());
    }
    let seen = vec![instance(&p, "proxy", 0, true, running())];
    assert!(initialized(&p, &seen));
    let got = plan(
        &p,
        &Observed {
            instances: &seen,
            ..Default::default()
        },
        t(1),
    );
    assert_eq!(got.actions, vec![start("a", false, 0)]);
}
