//! End-to-end tests: real `keelson` processes driven by real kubectl, curl and kube-rs.
//! One test binary (one link); nextest runs the tests in parallel.

mod api;
mod controllers;
mod etcd;
mod gc;
mod harness;
mod helm;
mod kube_rs;
mod kubectl;
mod kubelet;
mod priority;
mod robustness;
mod scheduler;
mod simulated;
