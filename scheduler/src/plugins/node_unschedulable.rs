//! NodeUnschedulable (`plugins/nodeunschedulable`): a cordoned node
//! (`spec.unschedulable`) takes only pods tolerating the
//! `node.kubernetes.io/unschedulable:NoSchedule` taint.

use k8s_openapi::api::core::v1::{Pod, Taint};

use crate::framework::{Code, FilterResult, NodeInfo, Status};
use crate::plugins::{tolerations, tolerations_tolerate_taint};

pub(crate) const NAME: &str = "NodeUnschedulable";

/// `ErrReasonUnschedulable`.
pub(crate) const ERR_REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";

/// `v1.TaintNodeUnschedulable`.
pub(crate) const TAINT_NODE_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

pub(crate) fn filter(pod: &Pod, node: &NodeInfo) -> FilterResult {
    let unschedulable = node
        .node()
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    if !unschedulable {
        return Ok(());
    }
    let taint = Taint {
        key: TAINT_NODE_UNSCHEDULABLE.to_string(),
        effect: "NoSchedule".to_string(),
        value: None,
        time_added: None,
    };
    if tolerations_tolerate_taint(tolerations(pod), &taint) {
        return Ok(());
    }
    Err(Status::new(
        Code::UnschedulableAndUnresolvable,
        ERR_REASON_UNSCHEDULABLE,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::*;
    use k8s_openapi::api::core::v1::{Node, NodeSpec};

    fn cordoned(unschedulable: Option<bool>) -> Node {
        let mut n = node("n", &[], &[]);
        n.spec = Some(NodeSpec {
            unschedulable,
            ..NodeSpec::default()
        });
        n
    }

    // TestNodeUnschedulable
    #[test]
    fn does_not_fit_unschedulable_node() {
        let err = filter(&pod("p", &[]), &node_info(cordoned(Some(true)), vec![])).unwrap_err();
        assert_eq!(err.code(), Code::UnschedulableAndUnresolvable);
        assert_eq!(err.message(), ERR_REASON_UNSCHEDULABLE);
    }

    #[test]
    fn fits_schedulable_node() {
        assert_eq!(
            filter(&pod("p", &[]), &node_info(cordoned(Some(false)), vec![])),
            Ok(())
        );
        assert_eq!(
            filter(&pod("p", &[]), &node_info(cordoned(None), vec![])),
            Ok(())
        );
    }

    #[test]
    fn fits_unschedulable_node_with_toleration() {
        let mut p = pod("p", &[]);
        spec(&mut p).tolerations = Some(vec![toleration(
            TAINT_NODE_UNSCHEDULABLE,
            "Exists",
            "",
            "NoSchedule",
        )]);
        assert_eq!(filter(&p, &node_info(cordoned(Some(true)), vec![])), Ok(()));
    }
}
