//! What should happen next to one pod's containers, from what the runtime shows: the
//! kubelet's `computePodActions` as a pure function. Init containers run one at a time in
//! order; regular containers start once all init containers succeeded; exited containers
//! restart by the pod's restartPolicy with a crash-loop back-off; a failed liveness probe
//! or a changed container spec kills the container so that it restarts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Container, Pod};

use crate::runtime::ContainerState;

/// The first crash-loop delay, doubled on each restart up to [`BACKOFF_MAX`] (upstream's
/// 10 s and 5 min).
pub const BACKOFF_INITIAL: Duration = Duration::from_secs(10);
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// One container instance of the pod in the runtime (from its labels and state).
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    pub id: String,
    pub name: String,
    /// 0 for the first run, then one more per restart: the restart count.
    pub attempt: u32,
    pub init: bool,
    /// The hash of the container spec it was started from.
    pub spec_hash: String,
    pub image: String,
    pub state: ContainerState,
}

/// The crash-loop back-off of one container: the delay before the next restart, counted
/// from the last (re)start. Upstream's `flowcontrol.Backoff` keyed by container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub delay: Duration,
    pub last_start: SystemTime,
}

impl Backoff {
    /// The back-off after a restart at `now`: doubled, or reset when the last restart is
    /// long past (the container ran fine for a while).
    pub fn next(previous: Option<Backoff>, now: SystemTime) -> Backoff {
        let delay = match previous {
            Some(b) if elapsed(b.last_start, now) <= BACKOFF_MAX * 2 => {
                (b.delay * 2).min(BACKOFF_MAX)
            }
            _ => BACKOFF_INITIAL,
        };
        Backoff {
            delay,
            last_start: now,
        }
    }

    /// Whether a container that exited at `finished_at` must still wait at `now`, and
    /// until when.
    fn wait_until(&self, finished_at: SystemTime, now: SystemTime) -> Option<SystemTime> {
        let until = self.last_start + self.delay;
        (elapsed(self.last_start, finished_at) < self.delay && now < until).then_some(until)
    }
}

fn elapsed(from: SystemTime, to: SystemTime) -> Duration {
    to.duration_since(from).unwrap_or_default()
}

/// What the kubelet knows besides the runtime's containers.
#[derive(Clone, Debug, Default)]
pub struct Observed<'a> {
    pub instances: &'a [Instance],
    /// Container ids whose liveness probe failed.
    pub liveness_failed: HashSet<String>,
    /// Per container name.
    pub backoff: HashMap<String, Backoff>,
    /// The pod's phase as last reported is Succeeded or Failed: nothing starts again.
    pub terminal: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KillReason {
    LivenessFailed,
    SpecChanged,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start `attempt` of the container `name`.
    Start {
        name: String,
        init: bool,
        attempt: u32,
    },
    /// Stop a running container (it restarts by the policy on a later sync).
    Kill {
        id: String,
        name: String,
        reason: KillReason,
    },
    /// Remove an exited instance no status or log needs any more.
    Remove { id: String },
}

/// A container that waits for its crash-loop back-off to pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackingOff {
    pub delay: Duration,
    pub until: SystemTime,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// Containers held back by their back-off, by name.
    pub backing_off: BTreeMap<String, BackingOff>,
}

impl Plan {
    /// When the plan should be made again at the latest (the first back-off to end).
    pub fn next_wakeup(&self) -> Option<SystemTime> {
        self.backing_off.values().map(|b| b.until).min()
    }
}

/// The hash of the parts of a container spec that need a restart when they change.
pub fn spec_hash(container: &Container) -> String {
    use sha2::{Digest, Sha256};
    let mut c = container.clone();
    // Upstream leaves resources out (in-place resize) and so do we; probes and the
    // like change nothing for a running process either, but restart upstream: keep them.
    c.resources = None;
    let json = serde_json::to_vec(&c).unwrap_or_default();
    hex::encode(&Sha256::digest(&json)[..8])
}

/// The latest instance of each container name.
pub fn latest(instances: &[Instance]) -> HashMap<&str, &Instance> {
    let mut out: HashMap<&str, &Instance> = HashMap::new();
    for i in instances {
        match out.get(i.name.as_str()) {
            Some(cur) if cur.attempt >= i.attempt => {}
            _ => {
                out.insert(i.name.as_str(), i);
            }
        }
    }
    out
}

/// The instance before the latest of `name` that exited: its termination is the
/// container's lastState, and its log the `--previous` one.
pub fn previous<'a>(instances: &'a [Instance], name: &str, attempt: u32) -> Option<&'a Instance> {
    instances
        .iter()
        .filter(|i| i.name == name && i.attempt < attempt)
        .max_by_key(|i| i.attempt)
}

fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

/// Whether an exited container of this pod is started again.
pub fn should_restart(pod: &Pod, exit_code: i32) -> bool {
    match restart_policy(pod) {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

/// An init container with restartPolicy Always: a sidecar that keeps running.
fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// Whether the init containers are done (all succeeded; sidecars running), so that the
/// regular containers may start. Also used for the Initialized condition.
pub fn initialized(pod: &Pod, instances: &[Instance]) -> bool {
    let latest = latest(instances);
    let inits = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or_default();
    inits.iter().all(|c| match latest.get(c.name.as_str()) {
        None => false,
        Some(i) if is_sidecar(c) => matches!(i.state, ContainerState::Running { .. }),
        Some(i) => matches!(i.state, ContainerState::Exited { exit_code: 0, .. }),
    }) || regular_started(pod, instances)
}

/// Any regular container has ever started: the pod was initialized (upstream does not
/// run init containers again for a pod whose containers have run).
fn regular_started(pod: &Pod, instances: &[Instance]) -> bool {
    let names: HashSet<&str> = pod
        .spec
        .as_ref()
        .map(|s| s.containers.iter().map(|c| c.name.as_str()).collect())
        .unwrap_or_default();
    instances
        .iter()
        .any(|i| !i.init && names.contains(i.name.as_str()))
}

/// What to do next for `pod` at `now`.
pub fn plan(pod: &Pod, observed: &Observed, now: SystemTime) -> Plan {
    let mut plan = Plan::default();
    let Some(spec) = pod.spec.as_ref() else {
        return plan;
    };
    let latest = latest(observed.instances);
    collect_garbage(observed.instances, &latest, &mut plan);
    if observed.terminal {
        return plan;
    }

    // A container that exited and restarts: start the next attempt unless backing off.
    let restart = |plan: &mut Plan, name: &str, init: bool, attempt: u32, finished_at| {
        if let Some(until) = observed
            .backoff
            .get(name)
            .and_then(|b| b.wait_until(finished_at, now).map(|u| (b.delay, u)))
        {
            plan.backing_off.insert(
                name.to_string(),
                BackingOff {
                    delay: until.0,
                    until: until.1,
                },
            );
        } else {
            plan.actions.push(Action::Start {
                name: name.to_string(),
                init,
                attempt: attempt + 1,
            });
        }
    };

    if !regular_started(pod, observed.instances) {
        for c in spec.init_containers.as_deref().unwrap_or_default() {
            match latest.get(c.name.as_str()) {
                None => {
                    plan.actions.push(Action::Start {
                        name: c.name.clone(),
                        init: true,
                        attempt: 0,
                    });
                    return plan;
                }
                Some(i) => match i.state {
                    ContainerState::Running { .. } if is_sidecar(c) => continue,
                    ContainerState::Running { .. } => return plan,
                    ContainerState::Exited { exit_code: 0, .. } if !is_sidecar(c) => continue,
                    ContainerState::Exited {
                        exit_code,
                        finished_at,
                        ..
                    } => {
                        // A failed init container fails a Never pod; otherwise it is
                        // retried (the regular containers wait).
                        if is_sidecar(c) || restart_policy(pod) != "Never" || exit_code == 0 {
                            restart(&mut plan, &c.name, true, i.attempt, finished_at);
                        }
                        return plan;
                    }
                    ContainerState::Created | ContainerState::Unknown => {
                        plan.actions.push(Action::Remove { id: i.id.clone() });
                        plan.actions.push(Action::Start {
                            name: c.name.clone(),
                            init: true,
                            attempt: i.attempt + 1,
                        });
                        return plan;
                    }
                },
            }
        }
    }

    for c in &spec.containers {
        match latest.get(c.name.as_str()) {
            None => plan.actions.push(Action::Start {
                name: c.name.clone(),
                init: false,
                attempt: 0,
            }),
            Some(i) => match i.state {
                ContainerState::Running { .. } => {
                    let reason = if observed.liveness_failed.contains(&i.id) {
                        Some(KillReason::LivenessFailed)
                    } else if i.spec_hash != spec_hash(c) {
                        Some(KillReason::SpecChanged)
                    } else {
                        None
                    };
                    if let Some(reason) = reason {
                        plan.actions.push(Action::Kill {
                            id: i.id.clone(),
                            name: c.name.clone(),
                            reason,
                        });
                    }
                }
                ContainerState::Exited {
                    exit_code,
                    finished_at,
                    ..
                } => {
                    // A container killed for its spec or liveness restarts whatever its
                    // exit code, unless the policy is Never (upstream's
                    // shouldRestartOnFailure).
                    let forced = (observed.liveness_failed.contains(&i.id)
                        || i.spec_hash != spec_hash(c))
                        && restart_policy(pod) != "Never";
                    if forced || should_restart(pod, exit_code) {
                        restart(&mut plan, &c.name, false, i.attempt, finished_at);
                    }
                }
                ContainerState::Created | ContainerState::Unknown => {
                    plan.actions.push(Action::Remove { id: i.id.clone() });
                    plan.actions.push(Action::Start {
                        name: c.name.clone(),
                        init: false,
                        attempt: i.attempt + 1,
                    });
                }
            },
        }
    }
    plan
}

/// Keeps, per container, the latest instance and the latest exited one before it (for
/// lastState and `logs --previous`); removes the rest.
fn collect_garbage(instances: &[Instance], latest: &HashMap<&str, &Instance>, plan: &mut Plan) {
    for i in instances {
        let Some(top) = latest.get(i.name.as_str()) else {
            continue;
        };
        if i.attempt == top.attempt {
            continue;
        }
        let keep = previous(instances, &i.name, top.attempt).map(|p| p.id.as_str());
        if keep != Some(i.id.as_str()) && !matches!(i.state, ContainerState::Running { .. }) {
            plan.actions.push(Action::Remove { id: i.id.clone() });
        }
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
