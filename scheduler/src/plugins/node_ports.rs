//! NodePorts (`plugins/nodeports`): the host ports a pod asks for must be free on the
//! node.

use k8s_openapi::api::core::v1::Pod;

use crate::framework::{pod_host_ports, Code, FilterResult, HostPort, NodeInfo, Status};

pub(crate) const NAME: &str = "NodePorts";

/// `ErrReason`.
pub(crate) const ERR_REASON: &str = "node(s) didn't have free ports for the requested pod ports";

/// The host ports the pod wants; empty means Skip.
pub(crate) fn pre_filter(pod: &Pod) -> Vec<HostPort> {
    pod_host_ports(pod)
}

/// `fitsPorts`.
pub(crate) fn filter(wanted: &[HostPort], node: &NodeInfo) -> FilterResult {
    if wanted.iter().any(|p| node.used_ports().conflicts(p)) {
        return Err(Status::new(Code::Unschedulable, ERR_REASON));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::*;
    use k8s_openapi::api::core::v1::{ContainerPort, Pod};

    /// A pod using `ports` written `proto/ip/port` like upstream's test helper.
    fn pod_with_ports(name: &str, ports: &[&str]) -> Pod {
        let mut p = pod(name, &[&[]]);
        let ports = ports
            .iter()
            .map(|s| {
                let parts: Vec<&str> = s.split('/').collect();
                ContainerPort {
                    protocol: Some(parts[0].to_string()),
                    host_ip: Some(parts[1].to_string()),
                    host_port: Some(parts[2].parse().expect("port")),
                    container_port: 1,
                    ..ContainerPort::default()
                }
            })
            .collect();
        spec(&mut p).containers[0].ports = Some(ports);
        p
    }

    fn check(wanted: &[&str], existing: &[&str]) -> FilterResult {
        let p = pod_with_ports("p", wanted);
        let info = node_info(node("n", &[], &[]), vec![pod_with_ports("e", existing)]);
        filter(&pre_filter(&p), &info)
    }

    fn conflict() -> FilterResult {
        Err(Status::new(Code::Unschedulable, ERR_REASON))
    }

    // TestNodePorts
    #[test]
    fn nothing_running() {
        assert!(pre_filter(&pod("p", &[&[]])).is_empty());
    }

    #[test]
    fn other_port() {
        assert_eq!(
            check(&["UDP/127.0.0.1/8080"], &["UDP/127.0.0.1/9090"]),
            Ok(())
        );
    }

    #[test]
    fn same_udp_port() {
        assert_eq!(
            check(&["UDP/127.0.0.1/8080"], &["UDP/127.0.0.1/8080"]),
            conflict()
        );
    }

    #[test]
    fn same_tcp_port() {
        assert_eq!(
            check(&["TCP/127.0.0.1/8080"], &["TCP/127.0.0.1/8080"]),
            conflict()
        );
    }

    #[test]
    fn different_host_ip() {
        assert_eq!(
            check(&["TCP/127.0.0.1/8080"], &["TCP/127.0.0.2/8080"]),
            Ok(())
        );
    }

    #[test]
    fn different_protocol() {
        assert_eq!(
            check(&["UDP/127.0.0.1/8080"], &["TCP/127.0.0.1/8080"]),
            Ok(())
        );
    }

    #[test]
    fn second_udp_port_conflict() {
        assert_eq!(
            check(
                &["UDP/127.0.0.1/8000", "UDP/127.0.0.1/8080"],
                &["UDP/127.0.0.1/8080"]
            ),
            conflict()
        );
    }

    #[test]
    fn first_tcp_port_conflict() {
        assert_eq!(
            check(
                &["TCP/127.0.0.1/8001", "UDP/127.0.0.1/8080"],
                &["TCP/127.0.0.1/8001", "UDP/127.0.0.1/8081"]
            ),
            conflict()
        );
    }

    #[test]
    fn first_tcp_port_conflict_due_to_0_0_0_0_host_ip() {
        assert_eq!(
            check(
                &["TCP/0.0.0.0/8001"],
                &["TCP/127.0.0.1/8001", "TCP/127.0.0.1/8081"]
            ),
            conflict()
        );
    }

    #[test]
    fn tcp_port_conflict_due_to_0_0_0_0_host_ip() {
        assert_eq!(
            check(
                &["TCP/10.0.10.10/8001", "TCP/0.0.0.0/8001"],
                &["TCP/127.0.0.1/8001"]
            ),
            conflict()
        );
    }

    #[test]
    fn second_tcp_port_conflict_to_0_0_0_0_host_ip() {
        assert_eq!(
            check(&["TCP/127.0.0.1/8001"], &["TCP/0.0.0.0/8001"]),
            conflict()
        );
    }

    #[test]
    fn second_different_protocol() {
        assert_eq!(
            check(&["UDP/127.0.0.1/8001"], &["TCP/0.0.0.0/8001"]),
            Ok(())
        );
    }

    #[test]
    fn udp_port_conflict_due_to_0_0_0_0_host_ip() {
        assert_eq!(
            check(
                &["UDP/127.0.0.1/8001"],
                &["TCP/0.0.0.0/8001", "UDP/0.0.0.0/8001"]
            ),
            conflict()
        );
    }

    #[test]
    fn restartable_init_container_ports_count() {
        let mut existing = pod("e", &[&[]]);
        let mut sidecar = container(&[]);
        sidecar.restart_policy = Some("Always".to_string());
        sidecar.ports = Some(vec![ContainerPort {
            container_port: 1,
            host_port: Some(8080),
            ..ContainerPort::default()
        }]);
        spec(&mut existing).init_containers = Some(vec![sidecar]);
        let info = node_info(node("n", &[], &[]), vec![existing]);
        let p = pod_with_ports("p", &["TCP//8080"]);
        assert_eq!(filter(&pre_filter(&p), &info), conflict());
    }
}
