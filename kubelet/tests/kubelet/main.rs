//! The kubelet's integration tests, as root against the real tools: one binary (one link).
//! `runtime`: containerd started by the test on a private socket; `network`: the CNI
//! plugins on a private bridge and subnet.

mod exec;
mod fixture;
mod network;
mod pull;
mod runtime;
