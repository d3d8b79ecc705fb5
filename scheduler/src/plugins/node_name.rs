//! NodeName (`plugins/nodename`): a pod that names a node (`spec.nodeName`) fits only
//! that node.

use k8s_openapi::api::core::v1::Pod;

use crate::framework::{Code, FilterResult, NodeInfo, Status};

pub(crate) const NAME: &str = "NodeName";

/// `ErrReason`.
pub(crate) const ERR_REASON: &str = "node(s) didn't match the requested node name";

/// `Fits`: no node name, or this node's.
pub(crate) fn fits(pod: &Pod, node: &NodeInfo) -> bool {
    let wanted = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("");
    wanted.is_empty() || wanted == node.name()
}

pub(crate) fn filter(pod: &Pod, node: &NodeInfo) -> FilterResult {
    if fits(pod, node) {
        Ok(())
    } else {
        Err(Status::new(Code::UnschedulableAndUnresolvable, ERR_REASON))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::*;

    // TestNodeName
    #[test]
    fn no_host_specified() {
        let info = node_info(node("foo", &[], &[]), vec![]);
        assert_eq!(filter(&pod("p", &[]), &info), Ok(()));
    }

    #[test]
    fn host_matches() {
        let info = node_info(node("foo", &[], &[]), vec![]);
        assert_eq!(filter(&on_node(pod("p", &[]), "foo"), &info), Ok(()));
    }

    #[test]
    fn host_does_not_match() {
        let info = node_info(node("foo", &[], &[]), vec![]);
        let err = filter(&on_node(pod("p", &[]), "bar"), &info).unwrap_err();
        assert_eq!(err.code(), Code::UnschedulableAndUnresolvable);
        assert_eq!(err.message(), ERR_REASON);
    }
}
