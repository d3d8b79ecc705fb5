//! Container logs in the Kubernetes (CRI) format, written by a logger process that
//! containerd's shim starts for each container.
