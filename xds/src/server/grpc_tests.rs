//! The ADS server over real gRPC on 127.0.0.1, with a tonic client playing
//! Envoy: ACK, NACK, reconnect with known versions, subscription changes and
//! two proxies at different versions.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::cache::SnapshotCache;
use crate::ir::{self, ObjectRef};
use crate::resource::ResourceType;
use crate::sample;
use crate::server::{AdsServer, XdsEvent};
use crate::translate::{Change, Translator};
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::google::rpc;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

const GATEWAY: &str = "default/gw";
const WAIT: Duration = Duration::from_secs(10);

struct ControlPlane {
    cache: Arc<SnapshotCache>,
    translator: Translator,
    events: broadcast::Receiver<XdsEvent>,
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl ControlPlane {
    async fn start() -> ControlPlane {
        let cache = SnapshotCache::new();
        let server = AdsServer::new(cache.clone());
        let events = server.events();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("a local address");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(server.serve(listener, async {
            let _ = stopped.await;
        }));
        let mut cp = ControlPlane {
            cache,
            translator: Translator::new(),
            events,
            addr,
            _stop: stop,
        };
        cp.change(sample::gateway(
            8080,
            4,
            2,
            2,
            SocketAddr::from(([127, 0, 0, 1], 9000)),
        ));
        cp
    }

    fn change(&mut self, changes: Vec<Change>) {
        let updates = self.translator.translate(changes);
        self.cache.update(GATEWAY, &updates);
    }

    async fn client(&self) -> AggregatedDiscoveryServiceClient<tonic::transport::Channel> {
        AggregatedDiscoveryServiceClient::connect(format!("http://{}", self.addr))
            .await
            .expect("connect to the ADS server")
    }

    /// The next ACK or NACK event of `node` (skipping connection events).
    async fn next_outcome(&mut self, node: &str) -> XdsEvent {
        loop {
            let event = tokio::time::timeout(WAIT, self.events.recv())
                .await
                .expect("an event in time")
                .expect("the event stream is open");
            if event.proxy().node == node && matches!(event, XdsEvent::Acked(_) | XdsEvent::Rejected(_)) {
                return event;
            }
        }
    }
}

fn node(id: &str) -> Node {
    Node {
        id: id.into(),
        cluster: GATEWAY.into(),
        ..Node::default()
    }
}

/// A state-of-the-world stream, driven like Envoy drives it.
struct SotwProxy {
    tx: mpsc::Sender<DiscoveryRequest>,
    rx: Streaming<DiscoveryResponse>,
}

impl SotwProxy {
    async fn connect(cp: &ControlPlane, id: &str, first_type: ResourceType, version: &str) -> SotwProxy {
        let (tx, requests) = mpsc::channel(16);
        tx.send(DiscoveryRequest {
            node: Some(node(id)),
            type_url: first_type.type_url().into(),
            version_info: version.into(),
            ..DiscoveryRequest::default()
        })
        .await
        .expect("queue the first request");
        let rx = cp
            .client()
            .await
            .stream_aggregated_resources(ReceiverStream::new(requests))
            .await
            .expect("open the ADS stream")
            .into_inner();
        SotwProxy { tx, rx }
    }

    async fn recv(&mut self) -> DiscoveryResponse {
        tokio::time::timeout(WAIT, self.rx.message())
            .await
            .expect("a response in time")
            .expect("a healthy stream")
            .expect("the stream stays open")
    }

    /// Sends a request; the node is left out, as Envoy does after the first.
    async fn send(
        &self,
        kind: ResourceType,
        names: &[&str],
        version: &str,
        nonce: &str,
        error: Option<&str>,
    ) {
        self.tx
            .send(DiscoveryRequest {
                version_info: version.into(),
                resource_names: names.iter().map(|n| n.to_string()).collect(),
                type_url: kind.type_url().into(),
                response_nonce: nonce.into(),
                error_detail: error.map(|m| rpc::Status {
                    code: 3,
                    message: m.into(),
                    details: vec![],
                }),
                ..DiscoveryRequest::default()
            })
            .await
            .expect("the stream accepts requests");
    }

    async fn ack(&self, r: &DiscoveryResponse, names: &[&str]) {
        let kind = ResourceType::from_type_url(&r.type_url).expect("a known type");
        self.send(kind, names, &r.version_info, &r.nonce, None).await;
    }
}

fn sotw_names(r: &DiscoveryResponse) -> Vec<String> {
    use prost::Message;
    #[derive(prost::Message)]
    struct Named {
        #[prost(string, tag = "1")]
        name: String,
    }
    r.resources
        .iter()
        .map(|a| Named::decode(a.value.as_slice()).expect("a resource").name)
        .collect()
}

const SVCS: [&str; 2] = ["default/svc-0:8080", "default/svc-1:8080"];

/// The initial exchange: CDS, EDS, LDS and RDS, all ACKed.
async fn bring_up(p: &mut SotwProxy) -> [DiscoveryResponse; 4] {
    let cds = p.recv().await;
    assert_eq!(sotw_names(&cds), SVCS);
    p.send(ResourceType::Endpoints, &SVCS, "", "", None).await;
    let eds = p.recv().await;
    p.ack(&cds, &[]).await;
    p.ack(&eds, &SVCS).await;
    p.send(ResourceType::Listener, &[], "", "", None).await;
    let lds = p.recv().await;
    p.ack(&lds, &[]).await;
    p.send(ResourceType::Route, &["http"], "", "", None).await;
    let rds = p.recv().await;
    assert_eq!(sotw_names(&rds), ["http"]);
    p.ack(&rds, &["http"]).await;
    [cds, eds, lds, rds]
}

#[tokio::test]
async fn sotw_acks_are_reported_and_not_answered() {
    let mut cp = ControlPlane::start().await;
    let mut p = SotwProxy::connect(&cp, "envoy-a", ResourceType::Cluster, "").await;
    let [_, _, _, rds] = bring_up(&mut p).await;
    loop {
        if let XdsEvent::Acked(ack) = cp.next_outcome("envoy-a").await
            && ack.kind == ResourceType::Route
        {
            assert_eq!(ack.version, rds.version_info);
            assert_eq!(ack.proxy.gateway, GATEWAY);
            assert_eq!(ack.programmed.len(), 4, "every route's Mapping is programmed");
            let snapshot = cp.cache.snapshot(GATEWAY).expect("the Gateway has a snapshot");
            assert_eq!(
                ack.serial,
                snapshot.serial(),
                "the ACK names the snapshot it applied"
            );
            break;
        }
    }
    // The next thing the proxy hears is the next change, not a repeat.
    cp.change(vec![sample::endpoints(
        "default/svc-1:8080",
        &[SocketAddr::from(([127, 0, 0, 5], 1))],
    )]);
    let eds = p.recv().await;
    assert_eq!(eds.type_url, ResourceType::Endpoints.type_url());
    assert_eq!(sotw_names(&eds), ["default/svc-1:8080"]);
}

#[tokio::test]
async fn a_nack_names_the_object_and_the_proxy_keeps_its_version() {
    let mut cp = ControlPlane::start().await;
    let mut p = SotwProxy::connect(&cp, "envoy-a", ResourceType::Cluster, "").await;
    let [_, _, _, rds] = bring_up(&mut p).await;
    let mut bad = sample::route("bad", "host-0.example.com", "/bad", "default/svc-0:8080");
    bad.matcher.path = ir::PathMatch::Regex("/(bad".into());
    cp.change(vec![Change::UpsertRoute(bad)]);
    let refused = p.recv().await;
    p.send(
        ResourceType::Route,
        &["http"],
        &rds.version_info,
        &refused.nonce,
        Some("regex error: missing )"),
    )
    .await;
    let rejection = loop {
        if let XdsEvent::Rejected(r) = cp.next_outcome("envoy-a").await {
            break r;
        }
    };
    assert_eq!(rejection.message, "regex error: missing )");
    assert_eq!(rejection.kind, ResourceType::Route);
    assert_eq!(
        rejection.objects,
        [ObjectRef::new("Mapping", "default", "bad", 1)]
    );
    // The fix goes out; nothing else does in between.
    let mut good = sample::route("bad", "host-0.example.com", "/bad", "default/svc-0:8080");
    good.origin = good.origin.at_generation(2);
    cp.change(vec![Change::UpsertRoute(good)]);
    let fixed = p.recv().await;
    assert_eq!(fixed.type_url, ResourceType::Route.type_url());
    assert_ne!(fixed.version_info, refused.version_info);
}

#[tokio::test]
async fn sotw_reconnect_with_the_current_version_gets_only_later_changes() {
    let mut cp = ControlPlane::start().await;
    let mut p = SotwProxy::connect(&cp, "envoy-a", ResourceType::Cluster, "").await;
    let cds = p.recv().await;
    p.ack(&cds, &[]).await;
    drop(p);

    // Envoy reconnects and says which CDS version it has: nothing to resend.
    // Requests are handled in order, so the EDS answer proves that no CDS
    // answer came before it.
    let mut p = SotwProxy::connect(&cp, "envoy-a", ResourceType::Cluster, &cds.version_info).await;
    p.send(ResourceType::Endpoints, &SVCS[..1], "", "", None).await;
    let first = p.recv().await;
    assert_eq!(
        first.type_url,
        ResourceType::Endpoints.type_url(),
        "no CDS repeat"
    );

    let mut slow = sample::upstream("default/svc-0:8080");
    slow.connect_timeout = Duration::from_secs(8);
    cp.change(vec![Change::UpsertUpstream(slow)]);
    let next = p.recv().await;
    assert_eq!(next.type_url, ResourceType::Cluster.type_url());
    assert_ne!(next.version_info, cds.version_info);
    assert_eq!(sotw_names(&next), SVCS, "CDS responses list every cluster");
}

#[tokio::test]
async fn the_first_request_must_name_the_gateway() {
    let cp = ControlPlane::start().await;
    let (tx, requests) = mpsc::channel(1);
    tx.send(DiscoveryRequest {
        type_url: ResourceType::Cluster.type_url().into(),
        ..DiscoveryRequest::default()
    })
    .await
    .expect("queue");
    let mut rx = cp
        .client()
        .await
        .stream_aggregated_resources(ReceiverStream::new(requests))
        .await
        .expect("open the stream")
        .into_inner();
    let status = rx
        .message()
        .await
        .expect_err("the server refuses a stream without a node");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("node"), "{}", status.message());
}

/// A delta stream.
struct DeltaProxy {
    tx: mpsc::Sender<DeltaDiscoveryRequest>,
    rx: Streaming<DeltaDiscoveryResponse>,
}

impl DeltaProxy {
    async fn connect(cp: &ControlPlane, first: DeltaDiscoveryRequest) -> DeltaProxy {
        let (tx, requests) = mpsc::channel(16);
        tx.send(first).await.expect("queue the first request");
        let rx = cp
            .client()
            .await
            .delta_aggregated_resources(ReceiverStream::new(requests))
            .await
            .expect("open the delta stream")
            .into_inner();
        DeltaProxy { tx, rx }
    }

    async fn recv(&mut self) -> DeltaDiscoveryResponse {
        tokio::time::timeout(WAIT, self.rx.message())
            .await
            .expect("a response in time")
            .expect("a healthy stream")
            .expect("the stream stays open")
    }

    async fn send(&self, r: DeltaDiscoveryRequest) {
        self.tx.send(r).await.expect("the stream accepts requests");
    }
}

fn delta_req(
    kind: ResourceType,
    subscribe: &[&str],
    unsubscribe: &[&str],
    nonce: &str,
) -> DeltaDiscoveryRequest {
    DeltaDiscoveryRequest {
        type_url: kind.type_url().into(),
        resource_names_subscribe: subscribe.iter().map(|n| n.to_string()).collect(),
        resource_names_unsubscribe: unsubscribe.iter().map(|n| n.to_string()).collect(),
        response_nonce: nonce.into(),
        ..DeltaDiscoveryRequest::default()
    }
}

fn delta_names(r: &DeltaDiscoveryResponse) -> Vec<&str> {
    r.resources.iter().map(|r| r.name.as_str()).collect()
}

#[tokio::test]
async fn delta_reconnect_with_known_versions_sends_only_what_changed() {
    let mut cp = ControlPlane::start().await;
    let mut first = delta_req(ResourceType::Cluster, &[], &[], "");
    first.node = Some(node("envoy-d"));
    let mut p = DeltaProxy::connect(&cp, first.clone()).await;
    let cds = p.recv().await;
    assert_eq!(delta_names(&cds), SVCS);
    p.send(delta_req(ResourceType::Cluster, &[], &[], &cds.nonce))
        .await;
    let known: std::collections::HashMap<String, String> = cds
        .resources
        .iter()
        .map(|r| (r.name.clone(), r.version.clone()))
        .collect();
    drop(p);

    // While the proxy is away, one cluster changes.
    let mut changed = sample::upstream("default/svc-0:8080");
    changed.load_balancing = ir::LoadBalancing::Random;
    cp.change(vec![Change::UpsertUpstream(changed)]);

    first.initial_resource_versions = known;
    let mut p = DeltaProxy::connect(&cp, first).await;
    let cds = p.recv().await;
    assert_eq!(
        delta_names(&cds),
        ["default/svc-0:8080"],
        "the unchanged cluster is not sent again"
    );
    assert!(cds.removed_resources.is_empty());
}

#[tokio::test]
async fn delta_subscription_changes_are_answered() {
    let cp = ControlPlane::start().await;
    let mut first = delta_req(ResourceType::Endpoints, &["default/svc-0:8080"], &[], "");
    first.node = Some(node("envoy-d"));
    let mut p = DeltaProxy::connect(&cp, first).await;
    let eds = p.recv().await;
    assert_eq!(delta_names(&eds), ["default/svc-0:8080"]);
    p.send(delta_req(
        ResourceType::Endpoints,
        &["default/svc-1:8080"],
        &["default/svc-0:8080"],
        &eds.nonce,
    ))
    .await;
    let eds = p.recv().await;
    assert_eq!(delta_names(&eds), ["default/svc-1:8080"]);
    // Asking for a name again gets it again: the proxy dropped it.
    p.send(delta_req(
        ResourceType::Endpoints,
        &["default/svc-0:8080"],
        &[],
        &eds.nonce,
    ))
    .await;
    let eds = p.recv().await;
    assert_eq!(delta_names(&eds), ["default/svc-0:8080"]);
}

#[tokio::test]
async fn two_proxies_of_one_gateway_can_be_at_different_versions() {
    let mut cp = ControlPlane::start().await;
    let mut a = SotwProxy::connect(&cp, "envoy-a", ResourceType::Cluster, "").await;
    let mut b = SotwProxy::connect(&cp, "envoy-b", ResourceType::Cluster, "").await;
    let v1 = a.recv().await;
    let v1_b = b.recv().await;
    assert_eq!(v1.version_info, v1_b.version_info, "same snapshot, same version");
    a.ack(&v1, &[]).await;
    b.ack(&v1_b, &[]).await;

    let mut slow = sample::upstream("default/svc-1:8080");
    slow.connect_timeout = Duration::from_secs(7);
    cp.change(vec![Change::UpsertUpstream(slow)]);
    let v2 = a.recv().await;
    let v2_b = b.recv().await;
    a.ack(&v2, &[]).await;
    b.send(
        ResourceType::Cluster,
        &[],
        &v1.version_info,
        &v2_b.nonce,
        Some("b refuses"),
    )
    .await;

    let mut versions = std::collections::BTreeMap::new();
    while versions.len() < 2 {
        let event = tokio::time::timeout(WAIT, cp.events.recv())
            .await
            .expect("an event in time")
            .expect("open");
        match event {
            XdsEvent::Acked(ack) if ack.version == v2.version_info => {
                versions.insert(ack.proxy.node.clone(), format!("applied {}", ack.version));
            }
            XdsEvent::Rejected(r) => {
                versions.insert(
                    r.proxy.node.clone(),
                    format!("refused {}: {}", r.version, r.message),
                );
            }
            _ => {}
        }
    }
    assert_eq!(versions["envoy-a"], format!("applied {}", v2.version_info));
    assert_eq!(
        versions["envoy-b"],
        format!("refused {}: b refuses", v2.version_info)
    );
}

#[tokio::test]
async fn stopping_the_server_ends_open_streams_so_proxies_reconnect_elsewhere() {
    let mut cp = ControlPlane::start().await;
    let mut proxy = SotwProxy::connect(&cp, "edge-1", ResourceType::Cluster, "").await;
    bring_up(&mut proxy).await;
    // Dropping the sender stops the server, as losing the lease does.
    let (stop, _) = oneshot::channel();
    drop(std::mem::replace(&mut cp._stop, stop));
    let ended = tokio::time::timeout(WAIT, proxy.rx.message())
        .await
        .expect("the stream ends promptly instead of outliving the server");
    let status = ended.expect_err("the stream ends with a status");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(status.message().contains("reconnect"), "{}", status.message());
    let disconnected = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(XdsEvent::Disconnected(p)) = cp.events.recv().await
                && p.node == "edge-1"
            {
                return;
            }
        }
    })
    .await;
    assert!(disconnected.is_ok(), "the tracker hears that the proxy left");
}
