//! One pod on this node: what its spec needs from the node (env, volumes), what should run
//! next ([`plan`]), and the status the kubelet reports.

pub mod env;
pub mod etc_files;
pub mod plan;
pub mod source;
pub mod status;
pub mod volumes;
pub mod worker;
