//! The status the kubelet reports for a pod (upstream's `generateAPIPodStatus` and
//! `getPhase`): container states with their reasons, restart counts, the phase and the
//! conditions, from the runtime's instances and the probes' results.

use std::collections::{BTreeMap, HashSet};
use std::time::SystemTime;

use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::{json, Value};

use super::plan::{self, BackingOff, Instance};
use crate::runtime::ContainerState;

/// The conditions the kubelet owns; any others (PodScheduled, DisruptionTarget, readiness
/// gates) are kept as they are.
const KUBELET_CONDITIONS: [&str; 4] = [
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
];

/// Everything the status is computed from.
pub struct StatusInput<'a> {
    pub pod: &'a Pod,
    pub instances: &'a [Instance],
    /// Container ids that count as ready (running, started, readiness probe passed).
    pub ready: &'a HashSet<String>,
    /// Container ids whose startup probe passed (or that have none) and run.
    pub started: &'a HashSet<String>,
    /// Why a container could not be started, by name: (reason, message), e.g.
    /// ErrImagePull or CreateContainerConfigError.
    pub start_errors: &'a BTreeMap<String, (String, String)>,
    pub backing_off: &'a BTreeMap<String, BackingOff>,
    /// The pod's network is set up (its sandbox exists, in upstream's words).
    pub network_ready: bool,
    pub pod_ip: Option<&'a str>,
    pub host_ip: &'a str,
    pub start_time: SystemTime,
    pub now: SystemTime,
}

/// Kubernetes' time format (seconds, UTC).
pub fn time(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn terminated(i: &Instance) -> Option<Value> {
    let ContainerState::Exited {
        exit_code,
        finished_at,
        oom_killed,
        ..
    } = &i.state
    else {
        return None;
    };
    let reason = if *oom_killed {
        "OOMKilled"
    } else if *exit_code == 0 {
        "Completed"
    } else {
        "Error"
    };
    Some(json!({
        "exitCode": exit_code,
        "reason": reason,
        "startedAt": started_at(i).map(time),
        "finishedAt": time(*finished_at),
        "containerID": container_id(&i.id),
    }))
}

fn started_at(i: &Instance) -> Option<SystemTime> {
    match i.state {
        ContainerState::Running { started_at, .. } | ContainerState::Exited { started_at, .. } => {
            Some(started_at)
        }
        _ => None,
    }
}

pub fn container_id(id: &str) -> String {
    format!("containerd://{id}")
}

/// One entry of containerStatuses / initContainerStatuses.
fn container_status(input: &StatusInput, c: &Container, waiting_default: &str) -> Value {
    let latest = plan::latest(input.instances);
    let mut status = json!({
        "name": c.name,
        "image": c.image.clone().unwrap_or_default(),
        "imageID": "",
        "ready": false,
        "restartCount": 0,
        "started": false,
        "state": {"waiting": {"reason": waiting_default}},
    });
    if let Some((reason, message)) = input.start_errors.get(&c.name) {
        status["state"] = json!({"waiting": {"reason": reason, "message": message}});
    }
    let Some(i) = latest.get(c.name.as_str()) else {
        return status;
    };
    status["restartCount"] = json!(i.attempt);
    status["containerID"] = json!(container_id(&i.id));
    status["imageID"] = json!(i.image);
    if let Some(prev) = plan::previous(input.instances, &c.name, i.attempt) {
        if let Some(t) = terminated(prev) {
            status["lastState"] = json!({ "terminated": t });
        }
    }
    match &i.state {
        ContainerState::Running { started_at, .. } => {
            status["state"] = json!({"running": {"startedAt": time(*started_at)}});
            status["ready"] = json!(input.ready.contains(&i.id));
            status["started"] = json!(input.started.contains(&i.id));
        }
        ContainerState::Exited { .. } => {
            let t = terminated(i).unwrap_or(Value::Null);
            if let Some(b) = input.backing_off.get(&c.name) {
                // Waiting to restart: upstream shows the crash as lastState.
                status["lastState"] = json!({ "terminated": t });
                status["state"] = json!({"waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": format!(
                        "back-off {} restarting failed container={} pod={}_{}({})",
                        humanize(b.delay),
                        c.name,
                        input.pod.metadata.name.as_deref().unwrap_or_default(),
                        input.pod.metadata.namespace.as_deref().unwrap_or_default(),
                        input.pod.metadata.uid.as_deref().unwrap_or_default(),
                    ),
                }});
            } else if !input.start_errors.contains_key(&c.name) {
                status["state"] = json!({ "terminated": t });
            } else {
                status["lastState"] = json!({ "terminated": t });
            }
        }
        ContainerState::Created | ContainerState::Unknown => {}
    }
    status
}

/// Go's duration format for whole seconds and minutes: "10s", "2m40s", "5m0s".
fn humanize(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m{}s", s / 60, s % 60)
    }
}

/// Upstream's getPhase over the container statuses just computed.
fn phase(pod: &Pod, init_statuses: &[Value], statuses: &[Value]) -> &'static str {
    let restart_policy = pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always");
    let inits = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or_default();
    let exit_code = |s: &Value, state: &str| s["state"][state]["exitCode"].as_i64();
    let mut pending_init = 0;
    let mut failed_init = 0;
    for (s, c) in init_statuses.iter().zip(inits) {
        let sidecar = c.restart_policy.as_deref() == Some("Always");
        if sidecar {
            if s["state"].get("running").is_none() && s["started"] != json!(true) {
                pending_init += 1;
            }
            continue;
        }
        match exit_code(s, "terminated") {
            Some(0) => {}
            Some(_) => failed_init += 1,
            None => {
                let last_failed = s["lastState"]["terminated"]["exitCode"]
                    .as_i64()
                    .is_some_and(|c| c != 0);
                if last_failed && s["state"].get("waiting").is_some() {
                    failed_init += 1;
                } else {
                    pending_init += 1;
                }
            }
        }
    }
    let (mut waiting, mut running, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in statuses {
        if s["state"].get("running").is_some() {
            running += 1;
        } else if let Some(code) = exit_code(s, "terminated") {
            stopped += 1;
            if code == 0 {
                succeeded += 1;
            }
        } else if s
            .get("lastState")
            .and_then(|l| l.get("terminated"))
            .is_some()
        {
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    if failed_init > 0 && restart_policy == "Never" {
        return "Failed";
    }
    if pending_init > 0 || failed_init > 0 {
        // Regular containers that already ran make the pod Running whatever the init
        // containers show (a restarted sidecar, say).
        if running == 0 && stopped == 0 {
            return "Pending";
        }
    }
    if waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped > 0 {
        return match restart_policy {
            "Always" => "Running",
            _ if stopped == succeeded => "Succeeded",
            "Never" => "Failed",
            _ => "Running",
        };
    }
    "Pending"
}

fn condition(type_: &str, ok: bool, reason: Option<&str>, message: Option<String>) -> Value {
    let mut c = json!({"type": type_, "status": if ok { "True" } else { "False" }});
    if !ok {
        if let Some(r) = reason {
            c["reason"] = json!(r);
        }
        if let Some(m) = message {
            c["message"] = json!(m);
        }
    }
    c
}

/// Names whose status is not ready, as upstream lists them: `[a b]`.
fn name_list(names: &[&str]) -> String {
    format!("[{}]", names.join(" "))
}

/// The pod's status, with lastTransitionTime kept from `pod.status` for conditions that
/// did not change.
pub fn pod_status(input: &StatusInput) -> Value {
    let pod = input.pod;
    let empty = Vec::new();
    let spec_containers = pod.spec.as_ref().map_or(&empty, |s| &s.containers);
    let spec_inits = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .unwrap_or(&empty);
    let initialized = plan::initialized(pod, input.instances);
    let regular_waiting = if spec_inits.is_empty() || initialized {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    let init_statuses: Vec<Value> = spec_inits
        .iter()
        .map(|c| container_status(input, c, "PodInitializing"))
        .collect();
    let statuses: Vec<Value> = spec_containers
        .iter()
        .map(|c| container_status(input, c, regular_waiting))
        .collect();
    let phase = phase(pod, &init_statuses, &statuses);

    let not_ready: Vec<&str> = statuses
        .iter()
        .filter(|s| s["ready"] != json!(true))
        .filter_map(|s| s["name"].as_str())
        .collect();
    let incomplete: Vec<&str> = init_statuses
        .iter()
        .zip(spec_inits)
        .filter(|(s, c)| {
            if c.restart_policy.as_deref() == Some("Always") {
                s["started"] != json!(true) && s["state"].get("running").is_none()
            } else {
                s["state"]["terminated"]["exitCode"] != json!(0)
            }
        })
        .filter_map(|(s, _)| s["name"].as_str())
        .collect();
    let terminal = phase == "Succeeded" || phase == "Failed";
    let containers_ready = not_ready.is_empty() && !terminal;
    let (ready_reason, ready_message) = if terminal {
        ("PodCompleted", None)
    } else {
        (
            "ContainersNotReady",
            Some(format!(
                "containers with unready status: {}",
                name_list(&not_ready)
            )),
        )
    };
    let initialized_ok = initialized || incomplete.is_empty();
    let mut conditions = vec![
        condition(
            "PodReadyToStartContainers",
            input.network_ready && !terminal,
            None,
            None,
        ),
        condition(
            "Initialized",
            initialized_ok,
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: {}",
                name_list(&incomplete)
            )),
        ),
        condition(
            "Ready",
            containers_ready,
            Some(ready_reason),
            ready_message.clone(),
        ),
        condition(
            "ContainersReady",
            containers_ready,
            Some(ready_reason),
            ready_message,
        ),
    ];
    if terminal {
        conditions[1] = condition("Initialized", true, None, None);
        conditions[1]["reason"] = json!("PodCompleted");
    }
    let old = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let now = time(input.now);
    for c in &mut conditions {
        let kept = old
            .iter()
            .find(|o| Some(o.type_.as_str()) == c["type"].as_str())
            .filter(|o| Some(o.status.as_str()) == c["status"].as_str())
            .and_then(|o| o.last_transition_time.as_ref())
            .and_then(|t| serde_json::to_value(t).ok());
        c["lastTransitionTime"] = kept.unwrap_or_else(|| json!(now));
        c["lastProbeTime"] = Value::Null;
    }
    for o in &old {
        if !KUBELET_CONDITIONS.contains(&o.type_.as_str()) {
            conditions.push(serde_json::to_value(o).unwrap_or(Value::Null));
        }
    }

    let mut status = json!({
        "phase": phase,
        "conditions": conditions,
        "hostIP": input.host_ip,
        "hostIPs": [{"ip": input.host_ip}],
        "startTime": time(input.start_time),
        "containerStatuses": statuses,
        "qosClass": qos_class(pod),
    });
    if !spec_inits.is_empty() {
        status["initContainerStatuses"] = json!(init_statuses);
    }
    if let Some(ip) = input.pod_ip {
        status["podIP"] = json!(ip);
        status["podIPs"] = json!([{ "ip": ip }]);
    }
    status
}

/// Guaranteed when every container has equal cpu and memory limits and requests,
/// BestEffort when none has any, Burstable otherwise.
pub fn qos_class(pod: &Pod) -> &'static str {
    let Some(spec) = pod.spec.as_ref() else {
        return "BestEffort";
    };
    let all: Vec<&Container> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &all {
        let requests = c.resources.as_ref().and_then(|r| r.requests.as_ref());
        let limits = c.resources.as_ref().and_then(|r| r.limits.as_ref());
        for resource in ["cpu", "memory"] {
            let request = requests.and_then(|r| r.get(resource));
            let limit = limits.and_then(|l| l.get(resource));
            if request.is_some() || limit.is_some() {
                any = true;
            }
            // A missing request defaults to the limit.
            match (request, limit) {
                (_, None) => guaranteed = false,
                (Some(r), Some(l)) if r != l => guaranteed = false,
                _ => {}
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
