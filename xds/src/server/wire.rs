//! The two ADS protocols' messages, behind one request and one response type
//! so that the stream state machine serves both.

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Protocol {
    StateOfTheWorld,
    Delta,
}

/// A request from the proxy, in either protocol.
#[derive(Clone, Debug)]
pub enum Request {
    Sotw(DiscoveryRequest),
    Delta(DeltaDiscoveryRequest),
}

impl Request {
    pub fn node(&self) -> Option<&Node> {
        match self {
            Request::Sotw(r) => r.node.as_ref(),
            Request::Delta(r) => r.node.as_ref(),
        }
    }
}

/// A response to the proxy, in the stream's protocol.
#[derive(Clone, Debug)]
pub enum Response {
    Sotw(DiscoveryResponse),
    Delta(DeltaDiscoveryResponse),
}

impl Response {
    pub fn type_url(&self) -> &str {
        match self {
            Response::Sotw(r) => &r.type_url,
            Response::Delta(r) => &r.type_url,
        }
    }

    pub fn nonce(&self) -> &str {
        match self {
            Response::Sotw(r) => &r.nonce,
            Response::Delta(r) => &r.nonce,
        }
    }

    /// The names of the resources carried.
    pub fn names(&self) -> Vec<String> {
        match self {
            Response::Sotw(r) => r.resources.iter().map(|a| resource_name(&a.value)).collect(),
            Response::Delta(r) => r.resources.iter().map(|res| res.name.clone()).collect(),
        }
    }
}

/// The name of an encoded resource: field 1 in every xDS resource type Legate
/// serves, which spares decoding the whole resource.
pub(crate) fn resource_name(body: &[u8]) -> String {
    #[derive(prost::Message)]
    struct Named {
        #[prost(string, tag = "1")]
        name: String,
    }
    // Resource types that put the name elsewhere (ClusterLoadAssignment uses
    // `cluster_name`, also field 1) decode the same way.
    prost::Message::decode(body)
        .map(|n: Named| n.name)
        .unwrap_or_default()
}
