//! The kubelet: registers its node, runs the pods bound to it through a container
//! [`runtime::Runtime`] (containerd), and gives them a network namespace through the
//! standard CNI plugins ([`network`]). [`node`] describes the Node it registers (also used
//! for simulated nodes).

pub mod agent;
pub mod logs;
pub mod network;
pub mod node;
pub mod pod;
pub mod probe;
pub mod runtime;
pub mod static_pods;
