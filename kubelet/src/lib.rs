//! The kubelet: registers its node, runs the pods bound to it through a container
//! [`runtime::Runtime`] (containerd), and gives them a network namespace through the
//! standard CNI plugins ([`network`]).

pub mod network;
pub mod runtime;
