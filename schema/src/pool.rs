//! The descriptor pool compiled from the upstream `generated.proto` files.

use prost_reflect::DescriptorPool;
use std::sync::OnceLock;

static DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/k8s_descriptors.bin"));

/// The pool of every Kubernetes message, decoded once on first use.
pub fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        // The bytes are produced by build.rs from the checked-in protos; a failure here is a
        // build defect, not something input can cause.
        DescriptorPool::decode(DESCRIPTORS).expect("embedded descriptor set is valid")
    })
}
