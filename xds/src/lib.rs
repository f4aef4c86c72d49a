//! Everything Envoy, with no Kubernetes in sight: the IR of one Gateway's
//! configuration, its translation into Envoy resources, the snapshot cache and
//! the ADS server. It builds, tests and benchmarks without a cluster.

/// The Envoy release whose API this crate speaks and whose binary the tests run.
pub const ENVOY_VERSION: &str = "1.40.0";

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::config::core::v3::Node;

    #[test]
    fn envoy_types_are_linked() {
        let node = Node {
            id: "gw-1".into(),
            cluster: "default/gw".into(),
            ..Node::default()
        };
        assert_eq!(node.cluster, "default/gw");
    }
}
