use std::time::Duration;

use super::*;
use crate::pod::plan::{spec_hash, BACKOFF_INITIAL};

fn pod(restart_policy: &str, inits: &[&str], containers: &[&str]) -> Pod {
    let c = |n: &&str| json!({"name": n, "image": "busybox"});
    serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "default", "uid": "u1"},
        "spec": {
            "restartPolicy": restart_policy,
            "initContainers": inits.iter().map(c).collect::<Vec<_>>(),
            "containers": containers.iter().map(c).collect::<Vec<_>>(),
        },
        "status": {"conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
            {"type": "Ready", "status": "False", "lastTransitionTime": "2026-01-01T00:00:01Z"},
        ]}
    }))
    .expect("pod")
}

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn instance(name: &str, attempt: u32, init: bool, state: ContainerState) -> Instance {
    Instance {
        id: format!("{name}-{attempt}"),
        name: name.into(),
        attempt,
        init,
        spec_hash: spec_hash(&Default::default()),
        image: "docker.io/library/busybox:latest".into(),
        state,
    }
}

fn running() -> ContainerState {
    ContainerState::Running {
        pid: 1,
        started_at: t(1),
    }
}

fn exited(code: i32, oom: bool) -> ContainerState {
    ContainerState::Exited {
        exit_code: code,
        started_at: t(1),
        finished_at: t(2),
        oom_killed: oom,
    }
}

struct Case {
    pod: Pod,
    instances: Vec<Instance>,
    ready: HashSet<String>,
    backing_off: BTreeMap<String, BackingOff>,
    start_errors: BTreeMap<String, (String, String)>,
}

impl Case {
    fn new(pod: Pod, instances: Vec<Instance>) -> Case {
        Case {
            pod,
            instances,
            ready: HashSet::new(),
            backing_off: BTreeMap::new(),
            start_errors: BTreeMap::new(),
        }
    }

    fn status(&self) -> Value {
        let started: HashSet<String> = self.instances.iter().map(|i| i.id.clone()).collect();
        pod_status(&StatusInput {
            pod: &self.pod,
            instances: &self.instances,
            ready: &self.ready,
            started: &started,
            start_errors: &self.start_errors,
            backing_off: &self.backing_off,
            network_ready: true,
            pod_ip: Some("10.244.0.5"),
            host_ip: "192.168.1.2",
            start_time: t(0),
            now: t(3),
        })
    }
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

#[test]
fn a_new_pod_is_pending_with_containers_creating() {
    let s = Case::new(pod("Always", &[], &["a"]), vec![]).status();
    assert_eq!(s["phase"], "Pending");
    assert_eq!(
        s["containerStatuses"][0]["state"]["waiting"]["reason"],
        "ContainerCreating"
    );
    assert_eq!(condition(&s, "Ready")["status"], "False");
    assert_eq!(
        condition(&s, "Ready")["message"],
        "containers with unready status: [a]"
    );
    // Unchanged condition keeps its transition time; others' conditions are kept.
    assert_eq!(
        condition(&s, "Ready")["lastTransitionTime"],
        "2026-01-01T00:00:01Z"
    );
    assert_eq!(condition(&s, "PodScheduled")["status"], "True");
    assert_eq!(s["podIP"], "10.244.0.5");
    assert_eq!(s["podIPs"][0]["ip"], "10.244.0.5");
    assert_eq!(s["hostIP"], "192.168.1.2");
    assert_eq!(s["qosClass"], "BestEffort");
}

#[test]
fn running_and_ready_containers_make_a_ready_pod() {
    let mut case = Case::new(
        pod("Always", &[], &["a", "b"]),
        vec![
            instance("a", 0, false, running()),
            instance("b", 2, false, running()),
        ],
    );
    case.ready.insert("a-0".into());
    let s = case.status();
    assert_eq!(s["phase"], "Running");
    assert_eq!(condition(&s, "Ready")["status"], "False");
    assert_eq!(
        condition(&s, "ContainersReady")["message"],
        "containers with unready status: [b]"
    );
    case.ready.insert("b-2".into());
    let s = case.status();
    assert_eq!(condition(&s, "Ready")["status"], "True");
    assert_eq!(condition(&s, "Ready")["lastTransitionTime"], time(t(3)));
    let b = &s["containerStatuses"][1];
    assert_eq!(b["restartCount"], 2);
    assert_eq!(b["containerID"], "containerd://b-2");
    assert_eq!(b["state"]["running"]["startedAt"], time(t(1)));
}

#[test]
fn phases_of_finished_pods_follow_exit_codes_and_policy() {
    let s = Case::new(
        pod("Never", &[], &["a"]),
        vec![instance("a", 0, false, exited(0, false))],
    )
    .status();
    assert_eq!(s["phase"], "Succeeded");
    let term = &s["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(term["reason"], "Completed");
    assert_eq!(term["exitCode"], 0);
    assert_eq!(condition(&s, "Ready")["reason"], "PodCompleted");

    let s = Case::new(
        pod("Never", &[], &["a"]),
        vec![instance("a", 0, false, exited(3, false))],
    )
    .status();
    assert_eq!(s["phase"], "Failed");
    assert_eq!(
        s["containerStatuses"][0]["state"]["terminated"]["reason"],
        "Error"
    );
    assert_eq!(
        s["containerStatuses"][0]["state"]["terminated"]["exitCode"],
        3
    );

    let s = Case::new(
        pod("Never", &[], &["a"]),
        vec![instance("a", 0, false, exited(137, true))],
    )
    .status();
    assert_eq!(
        s["containerStatuses"][0]["state"]["terminated"]["reason"],
        "OOMKilled"
    );
}

#[test]
fn a_crash_looping_container_waits_with_its_last_termination() {
    let mut case = Case::new(
        pod("Always", &[], &["a"]),
        vec![
            instance("a", 0, false, exited(1, false)),
            instance("a", 1, false, exited(1, false)),
        ],
    );
    case.backing_off.insert(
        "a".into(),
        BackingOff {
            delay: BACKOFF_INITIAL * 2,
            until: t(30),
        },
    );
    let s = case.status();
    let a = &s["containerStatuses"][0];
    assert_eq!(a["state"]["waiting"]["reason"], "CrashLoopBackOff");
    assert_eq!(
        a["state"]["waiting"]["message"],
        "back-off 20s restarting failed container=a pod=p_default(u1)"
    );
    assert_eq!(a["lastState"]["terminated"]["exitCode"], 1);
    assert_eq!(a["restartCount"], 1);
    assert_eq!(s["phase"], "Running");
}

#[test]
fn init_containers_hold_the_pod_pending() {
    let case = Case::new(
        pod("Always", &["init"], &["a"]),
        vec![instance("init", 0, true, running())],
    );
    let s = case.status();
    assert_eq!(s["phase"], "Pending");
    assert_eq!(condition(&s, "Initialized")["status"], "False");
    assert_eq!(
        condition(&s, "Initialized")["message"],
        "containers with incomplete status: [init]"
    );
    assert_eq!(
        s["containerStatuses"][0]["state"]["waiting"]["reason"],
        "PodInitializing"
    );
    let case = Case::new(
        pod("Never", &["init"], &["a"]),
        vec![instance("init", 0, true, exited(2, false))],
    );
    assert_eq!(case.status()["phase"], "Failed");
    let case = Case::new(
        pod("Always", &["init"], &["a"]),
        vec![
            instance("init", 0, true, exited(0, false)),
            instance("a", 0, false, running()),
        ],
    );
    let s = case.status();
    assert_eq!(s["phase"], "Running");
    assert_eq!(condition(&s, "Initialized")["status"], "True");
    assert_eq!(
        s["initContainerStatuses"][0]["state"]["terminated"]["reason"],
        "Completed"
    );
}

#[test]
fn start_errors_show_as_the_waiting_reason() {
    let mut case = Case::new(pod("Always", &[], &["a"]), vec![]);
    case.start_errors.insert(
        "a".into(),
        (
            "CreateContainerConfigError".into(),
            "configmap \"x\" not found".into(),
        ),
    );
    let s = case.status();
    assert_eq!(
        s["containerStatuses"][0]["state"]["waiting"]["reason"],
        "CreateContainerConfigError"
    );
    assert_eq!(s["phase"], "Pending");
}

#[test]
fn qos_classes() {
    let with = |resources: Value| -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a", "resources": resources}]}
        }))
        .expect("pod")
    };
    assert_eq!(qos_class(&with(json!({}))), "BestEffort");
    assert_eq!(
        qos_class(&with(json!({"limits": {"cpu": "1", "memory": "1Gi"}}))),
        "Guaranteed"
    );
    assert_eq!(
        qos_class(&with(json!({"requests": {"cpu": "1"}}))),
        "Burstable"
    );
}
