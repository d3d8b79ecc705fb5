//! ImageLocality (`plugins/imagelocality`): prefers nodes that already hold the pod's
//! container images, weighted by image size and by how widely each image is spread
//! (an image on every node is no reason to pick one).

use k8s_openapi::api::core::v1::Pod;

use crate::framework::{NodeInfo, Snapshot, MAX_NODE_SCORE};
use crate::plugins::{containers, init_containers};

pub(crate) const NAME: &str = "ImageLocality";
pub(crate) const WEIGHT: i64 = 1;

const MB: i64 = 1024 * 1024;
/// Below this total an image sum scores 0 (`minThreshold`).
const MIN_THRESHOLD: i64 = 23 * MB;
/// Per container, above this the score saturates (`maxContainerThreshold`).
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

/// The pod's images, normalized, and its container count.
pub(crate) struct PodImages {
    names: Vec<String>,
    containers: i64,
}

/// `normalizedImageName`: `:latest` is added to names without a tag.
fn normalized_image_name(name: &str) -> String {
    let colon = name.rfind(':').map_or(-1, |i| i as i64);
    let slash = name.rfind('/').map_or(-1, |i| i as i64);
    if colon <= slash {
        format!("{name}:latest")
    } else {
        name.to_string()
    }
}

pub(crate) fn pre_score(pod: &Pod) -> PodImages {
    let all: Vec<_> = init_containers(pod).iter().chain(containers(pod)).collect();
    PodImages {
        names: all
            .iter()
            .map(|c| normalized_image_name(c.image.as_deref().unwrap_or("")))
            .collect(),
        containers: all.len() as i64,
    }
}

/// `sumImageScores` then `calculatePriority`.
pub(crate) fn score(images: &PodImages, snapshot: &Snapshot, node: &NodeInfo) -> i64 {
    let total_nodes = snapshot.len().max(1) as f64;
    let mut sum = 0i64;
    for name in &images.names {
        if let Some(size) = node.image_size(name) {
            let spread = snapshot.nodes_with_image(name) as f64 / total_nodes;
            sum += (size as f64 * spread) as i64;
        }
    }
    calculate_priority(sum, images.containers)
}

fn calculate_priority(sum: i64, containers: i64) -> i64 {
    let max_threshold = MAX_CONTAINER_THRESHOLD * containers;
    let sum = if sum < MIN_THRESHOLD {
        MIN_THRESHOLD
    } else if sum > max_threshold {
        max_threshold
    } else {
        sum
    };
    if max_threshold == MIN_THRESHOLD {
        return 0;
    }
    MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max_threshold - MIN_THRESHOLD)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::*;
    use k8s_openapi::api::core::v1::Node;

    fn pod_with(images: &[&str], init: &[&str]) -> Pod {
        let mut p = pod("p", &[]);
        let make = |name: &&str| {
            let mut c = container(&[]);
            c.image = Some(name.to_string());
            c
        };
        spec(&mut p).containers = images.iter().map(make).collect();
        spec(&mut p).init_containers = Some(init.iter().map(make).collect());
        p
    }

    fn image_node(name: &str, images: &[(&[&str], i64)]) -> Node {
        with_images(node(name, &[], &[]), images)
    }

    fn node_403002000() -> Vec<(&'static [&'static str], i64)> {
        vec![
            (
                &["gcr.io/40:latest", "gcr.io/40:v1", "gcr.io/40:v1"],
                40 * MB,
            ),
            (&["gcr.io/300:latest", "gcr.io/300:v1"], 300 * MB),
            (&["gcr.io/2000:latest"], 2000 * MB),
        ]
    }

    fn node_25010() -> Vec<(&'static [&'static str], i64)> {
        vec![
            (&["gcr.io/250:latest"], 250 * MB),
            (&["gcr.io/10:latest", "gcr.io/10:v1"], 10 * MB),
        ]
    }

    fn node_60040900() -> Vec<(&'static [&'static str], i64)> {
        vec![
            (&["gcr.io/600:latest"], 600 * MB),
            (&["gcr.io/40:latest"], 40 * MB),
            (&["gcr.io/900:latest"], 900 * MB),
        ]
    }

    fn node_300600900() -> Vec<(&'static [&'static str], i64)> {
        vec![
            (&["gcr.io/300:latest"], 300 * MB),
            (&["gcr.io/600:latest"], 600 * MB),
            (&["gcr.io/900:latest"], 900 * MB),
        ]
    }

    fn node_400030() -> Vec<(&'static [&'static str], i64)> {
        vec![
            (&["gcr.io/4000:latest"], 4000 * MB),
            (&["gcr.io/30:latest"], 30 * MB),
        ]
    }

    fn node_203040() -> Vec<(&'static [&'static str], i64)> {
        vec![
            (&["gcr.io/20:latest"], 20 * MB),
            (&["gcr.io/30:latest"], 30 * MB),
            (&["gcr.io/40:latest"], 40 * MB),
        ]
    }

    fn scores(p: &Pod, nodes: Vec<Node>) -> Vec<i64> {
        let s = snapshot(nodes, vec![]);
        let images = pre_score(p);
        s.nodes().iter().map(|n| score(&images, &s, n)).collect()
    }

    // TestImageLocalityPriority
    #[test]
    fn two_images_spread_on_two_nodes_prefer_the_larger_image_one() {
        let p = pod_with(&["gcr.io/40", "gcr.io/250"], &[]);
        let nodes = vec![
            image_node("node1", &node_403002000()),
            image_node("node2", &node_25010()),
        ];
        assert_eq!(scores(&p, nodes), vec![0, 5]);
    }

    #[test]
    fn two_images_on_one_node_prefer_this_node() {
        let p = pod_with(&["gcr.io/40", "gcr.io/300"], &[]);
        let nodes = vec![
            image_node("node1", &node_403002000()),
            image_node("node2", &node_25010()),
        ];
        assert_eq!(scores(&p, nodes), vec![7, 0]);
    }

    #[test]
    fn if_exceed_limit_use_limit() {
        let p = pod_with(&["gcr.io/10", "gcr.io/4000"], &[]);
        let nodes = vec![
            image_node("node1", &node_400030()),
            image_node("node2", &node_25010()),
        ];
        assert_eq!(scores(&p, nodes), vec![100, 0]);
    }

    #[test]
    fn pod_with_multiple_large_images_node2_is_preferred() {
        let p = pod_with(&["gcr.io/300", "gcr.io/600", "gcr.io/900"], &[]);
        let nodes = vec![
            image_node("node1", &node_60040900()),
            image_node("node2", &node_300600900()),
            image_node("node3", &[]),
        ];
        assert_eq!(scores(&p, nodes), vec![32, 36, 0]);
    }

    #[test]
    fn pod_with_multiple_small_images() {
        let p = pod_with(&["gcr.io/30", "gcr.io/40"], &[]);
        let nodes = vec![
            image_node("node1", &node_203040()),
            image_node("node2", &node_400030()),
        ];
        assert_eq!(scores(&p, nodes), vec![1, 0]);
    }

    #[test]
    fn include_init_containers() {
        let p = pod_with(&["gcr.io/30"], &["gcr.io/300"]);
        let nodes = vec![
            image_node("node1", &node_403002000()),
            image_node("node2", &node_203040()),
        ];
        assert_eq!(scores(&p, nodes), vec![6, 0]);
    }

    #[test]
    fn normalized_names() {
        assert_eq!(normalized_image_name("nginx"), "nginx:latest");
        assert_eq!(normalized_image_name("nginx:1.25"), "nginx:1.25");
        assert_eq!(
            normalized_image_name("registry:5000/nginx"),
            "registry:5000/nginx:latest"
        );
        assert_eq!(
            normalized_image_name("nginx@sha256:abc"),
            "nginx@sha256:abc"
        );
    }
}
