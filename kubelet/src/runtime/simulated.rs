//! A runtime without processes, for scale tests and machines without containerd (as
//! KWOK): starting a container takes `start_delay` (the pod shows ContainerCreating
//! meanwhile), then it runs, and — for pods that do not restart forever — exits 0 after
//! `run_for`. Exec answers with output marked as simulated.
//! The kubelet drives it through the same workers, node and lease code as containerd.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use super::{
    ContainerInfo, ContainerSpec, ContainerState, ExecOutput, RegistryAuth, Result, Runtime,
    RuntimeError,
};

/// The container label that tells the simulated runtime a container is meant to finish
/// (its pod's restartPolicy is not Always).
pub const LABEL_FINITE: &str = "keelson.dev/finite";

#[derive(Clone, Copy, Debug)]
pub struct Timings {
    /// How long a start takes.
    pub start_delay: Duration,
    /// Running → exited 0, for containers of pods whose restartPolicy is not Always.
    pub run_for: Duration,
}

struct Container {
    info: ContainerInfo,
    created: Instant,
    created_at: SystemTime,
    /// Set when stopped: (exit code, when).
    stopped: Option<(i32, SystemTime)>,
}

pub struct SimulatedRuntime {
    timings: Timings,
    containers: Mutex<HashMap<String, Container>>,
}

impl SimulatedRuntime {
    pub fn new(timings: Timings) -> SimulatedRuntime {
        SimulatedRuntime {
            timings,
            containers: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Container>> {
        // A panic elsewhere cannot leave the map half-written: every update is one insert
        // or field store.
        self.containers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn state_of(&self, c: &Container) -> ContainerState {
        let started_at = c.created_at;
        if let Some((exit_code, finished_at)) = c.stopped {
            return ContainerState::Exited {
                exit_code,
                started_at,
                finished_at,
                oom_killed: false,
            };
        }
        let finite = c.info.labels.get(LABEL_FINITE).is_some_and(|v| v == "true");
        if finite && c.created.elapsed() >= self.timings.run_for {
            return ContainerState::Exited {
                exit_code: 0,
                started_at,
                finished_at: started_at + self.timings.run_for,
                oom_killed: false,
            };
        }
        ContainerState::Running { pid: 0, started_at }
    }
}

#[async_trait::async_trait]
impl Runtime for SimulatedRuntime {
    async fn version(&self) -> Result<String> {
        Ok("simulated://1.0".into())
    }

    async fn import_image(&self, _tarball: &Path) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    async fn has_image(&self, _name: &str) -> Result<bool> {
        Ok(true)
    }

    async fn start(&self, spec: &ContainerSpec) -> Result<()> {
        if self.lock().contains_key(&spec.id) {
            return Err(RuntimeError::Runtime(format!(
                "container {} already exists",
                spec.id
            )));
        }
        tokio::time::sleep(self.timings.start_delay).await;
        let mut containers = self.lock();
        if containers.contains_key(&spec.id) {
            return Err(RuntimeError::Runtime(format!(
                "container {} already exists",
                spec.id
            )));
        }
        containers.insert(
            spec.id.clone(),
            Container {
                info: ContainerInfo {
                    id: spec.id.clone(),
                    image: spec.image.clone(),
                    labels: spec.labels.clone(),
                    state: ContainerState::Created,
                },
                created: Instant::now(),
                created_at: SystemTime::now(),
                stopped: None,
            },
        );
        Ok(())
    }

    async fn state(&self, id: &str) -> Result<ContainerState> {
        let containers = self.lock();
        let c = containers
            .get(id)
            .ok_or_else(|| RuntimeError::NotFound(format!("container {id}")))?;
        Ok(self.state_of(c))
    }

    async fn stop(&self, id: &str, _grace: Duration) -> Result<()> {
        let mut containers = self.lock();
        if let Some(c) = containers.get_mut(id) {
            if c.stopped.is_none() {
                // As a process that handles SIGTERM would: exit 0 at once.
                c.stopped = Some((0, SystemTime::now()));
            }
        }
        Ok(())
    }

    async fn remove(&self, id: &str) -> Result<()> {
        self.lock().remove(id);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<ContainerInfo>> {
        let containers = self.lock();
        Ok(containers
            .values()
            .map(|c| ContainerInfo {
                state: self.state_of(c),
                ..c.info.clone()
            })
            .collect())
    }

    async fn pull_image(&self, _reference: &str, _auth: Option<&RegistryAuth>) -> Result<()> {
        Ok(())
    }

    async fn exec(&self, id: &str, command: &[String], _timeout: Duration) -> Result<ExecOutput> {
        match self.state(id).await? {
            ContainerState::Running { .. } => Ok(ExecOutput {
                exit_code: 0,
                output: format!("simulated: {}\n", command.join(" ")).into_bytes(),
                timed_out: false,
            }),
            _ => Err(RuntimeError::Runtime(format!(
                "cannot exec in container {id}: it is not running"
            ))),
        }
    }

    fn simulated(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str, finite: bool) -> ContainerSpec {
        ContainerSpec {
            id: id.into(),
            labels: [(LABEL_FINITE.to_string(), finite.to_string())].into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn containers_start_after_the_delay_and_finite_ones_complete() {
        let rt = SimulatedRuntime::new(Timings {
            start_delay: Duration::from_millis(50),
            run_for: Duration::from_millis(100),
        });
        let started = Instant::now();
        rt.start(&spec("a", false)).await.expect("start");
        assert!(
            started.elapsed() >= Duration::from_millis(50),
            "a start takes the delay"
        );
        rt.start(&spec("job", true)).await.expect("start");
        assert!(rt.start(&spec("a", false)).await.is_err(), "ids are unique");
        assert!(matches!(
            rt.state("a").await,
            Ok(ContainerState::Running { .. })
        ));
        assert!(matches!(
            rt.state("job").await,
            Ok(ContainerState::Running { .. })
        ));
        let out = rt
            .exec("a", &["echo".into(), "hi".into()], Duration::from_secs(1))
            .await
            .expect("exec");
        assert_eq!(String::from_utf8_lossy(&out.output), "simulated: echo hi\n");
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(matches!(
            rt.state("job").await,
            Ok(ContainerState::Exited { exit_code: 0, .. })
        ));
        assert!(matches!(
            rt.state("a").await,
            Ok(ContainerState::Running { .. })
        ));
        rt.stop("a", Duration::ZERO).await.expect("stop");
        assert!(matches!(
            rt.state("a").await,
            Ok(ContainerState::Exited { .. })
        ));
        rt.remove("a").await.expect("remove");
        assert_eq!(rt.list().await.expect("list").len(), 1);
    }
}
