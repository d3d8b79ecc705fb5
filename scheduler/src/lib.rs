//! The scheduler: pods whose `spec.schedulerName` is ours are taken from a priority queue,
//! filtered and scored over the nodes of a cache fed by watches (the kube-scheduler
//! framework's plugins, in Rust), assumed onto the best node and bound through
//! `pods/binding`.

pub mod framework;
pub mod plugins;
pub mod queue;
