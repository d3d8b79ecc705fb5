//! One pod on this node: what its spec needs from the node (env, volumes), what should run
//! next ([`plan`]), and the status the kubelet reports.

pub mod env;
pub mod volumes;
