//! The controller-manager. Each controller is a pure planning function (observed state →
//! actions, unit-tested without a server) and a thin kube-runtime reconciler that applies
//! the actions through the public API.

pub mod deployment;
pub mod pods;
pub mod replicaset;
