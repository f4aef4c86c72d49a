//! The tonic service: one task per stream, which feeds requests and snapshot
//! changes to the stream's [`StreamState`] and sends what it returns.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use futures::{Stream, StreamExt};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Status, Streaming};
use tracing::Instrument;

use super::events::{ProxyId, XdsEvent};
use super::stream::{Protocol, Request, Response, Step, StreamState};
use crate::cache::SnapshotCache;

#[derive(Debug, thiserror::Error)]
#[error("the ADS server failed: {0}")]
pub struct ServeError(#[source] tonic::transport::Error);

/// How many events a slow subscriber may fall behind before it misses some.
const EVENT_BUFFER: usize = 4096;

/// The ADS server of every Gateway in a [`SnapshotCache`].
#[derive(Clone, Debug)]
pub struct AdsServer {
    cache: Arc<SnapshotCache>,
    events: broadcast::Sender<XdsEvent>,
}

impl AdsServer {
    pub fn new(cache: Arc<SnapshotCache>) -> AdsServer {
        AdsServer {
            cache,
            events: broadcast::Sender::new(EVENT_BUFFER),
        }
    }

    /// Every proxy's connections, ACKs and NACKs from now on. A subscriber
    /// that falls more than 4,096 events behind gets `Lagged`: it missed
    /// events, and what it knows of a proxy may be stale until that proxy's
    /// next ACK.
    pub fn events(&self) -> broadcast::Receiver<XdsEvent> {
        self.events.subscribe()
    }

    /// The tonic service to add to a server. Responses can be large (every
    /// route of a Gateway is one RouteConfiguration), so no size limit is set
    /// on encoding.
    pub fn into_service(self) -> AggregatedDiscoveryServiceServer<AdsServer> {
        AggregatedDiscoveryServiceServer::new(self).max_encoding_message_size(usize::MAX)
    }

    /// Serves ADS on `listener` until `shutdown` completes.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        tonic::transport::Server::builder()
            // Envoy keeps one ADS stream open for hours; keepalives notice a
            // peer that vanished without closing it.
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            .add_service(self.into_service())
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
            .await
            .map_err(ServeError)
    }

    fn spawn_stream<Req, Resp>(
        &self,
        protocol: Protocol,
        inbound: Streaming<Req>,
        wrap: fn(Req) -> Request,
        unwrap: fn(Response) -> Option<Resp>,
    ) -> ReceiverStream<Result<Resp, Status>>
    where
        Req: Send + 'static,
        Resp: Send + 'static,
    {
        let (tx, rx) = mpsc::channel(16);
        let cache = self.cache.clone();
        let events = self.events.clone();
        tokio::spawn(async move {
            let inbound = inbound.map(move |r| r.map(wrap));
            if let Err(status) = serve_stream(protocol, &cache, &events, inbound, &tx, unwrap).await {
                // The client may be gone already; nothing more to do then.
                let _ = tx.send(Err(status)).await;
            }
        });
        ReceiverStream::new(rx)
    }
}

type Outbound<Resp> = mpsc::Sender<Result<Resp, Status>>;

async fn serve_stream<S, Resp>(
    protocol: Protocol,
    cache: &SnapshotCache,
    events: &broadcast::Sender<XdsEvent>,
    mut inbound: S,
    tx: &Outbound<Resp>,
    unwrap: fn(Response) -> Option<Resp>,
) -> Result<(), Status>
where
    S: Stream<Item = Result<Request, Status>> + Unpin,
{
    let Some(first) = inbound.next().await.transpose()? else {
        return Ok(());
    };
    let Some(node) = first.node() else {
        return Err(Status::invalid_argument(
            "the first request of an ADS stream must carry the node (id, and cluster = the Gateway)",
        ));
    };
    if node.cluster.is_empty() {
        return Err(Status::invalid_argument(
            "node.cluster must name the Gateway (namespace/name) this Envoy serves",
        ));
    }
    let proxy = ProxyId {
        node: node.id.clone(),
        gateway: node.cluster.clone(),
    };
    let mut snapshots = cache.watch(&proxy.gateway);
    let snapshot = snapshots.borrow_and_update().clone();
    let mut state = StreamState::new(protocol, proxy.clone(), snapshot);
    tracing::info!(%proxy, ?protocol, "proxy connected");
    let _ = events.send(XdsEvent::Connected(proxy.clone()));
    // Everything logged while serving this stream says which proxy it is about.
    let span = tracing::info_span!("ads_stream", node = %proxy.node, gateway = %proxy.gateway);
    let result = async {
        emit(state.on_request(first), events, tx, unwrap).await?;
        loop {
            tokio::select! {
                request = inbound.next() => match request {
                    Some(request) => emit(state.on_request(request?), events, tx, unwrap).await?,
                    None => return Ok(()),
                },
                changed = snapshots.changed() => {
                    if changed.is_err() {
                        return Err(Status::unavailable("the Gateway was removed from the control plane"));
                    }
                    let snapshot = snapshots.borrow_and_update().clone();
                    emit(state.on_snapshot(snapshot), events, tx, unwrap).await?;
                }
            }
        }
    }
    .instrument(span)
    .await;
    tracing::info!(%proxy, "proxy disconnected");
    let _ = events.send(XdsEvent::Disconnected(proxy));
    result
}

async fn emit<Resp>(
    step: Step,
    events: &broadcast::Sender<XdsEvent>,
    tx: &Outbound<Resp>,
    unwrap: fn(Response) -> Option<Resp>,
) -> Result<(), Status> {
    for event in step.events {
        // No subscriber is fine: events are for whoever listens.
        let _ = events.send(event);
    }
    for response in step.responses {
        if let Some(response) = unwrap(response) {
            tx.send(Ok(response))
                .await
                .map_err(|_| Status::cancelled("the proxy closed the stream"))?;
        }
    }
    Ok(())
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl AggregatedDiscoveryService for AdsServer {
    type StreamAggregatedResourcesStream = BoxStream<DiscoveryResponse>;
    type DeltaAggregatedResourcesStream = BoxStream<DeltaDiscoveryResponse>;

    async fn stream_aggregated_resources(
        &self,
        request: tonic::Request<Streaming<DiscoveryRequest>>,
    ) -> Result<tonic::Response<Self::StreamAggregatedResourcesStream>, Status> {
        let stream = self.spawn_stream(
            Protocol::StateOfTheWorld,
            request.into_inner(),
            Request::Sotw,
            |r| match r {
                Response::Sotw(r) => Some(r),
                Response::Delta(_) => None,
            },
        );
        Ok(tonic::Response::new(Box::pin(stream)))
    }

    async fn delta_aggregated_resources(
        &self,
        request: tonic::Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<tonic::Response<Self::DeltaAggregatedResourcesStream>, Status> {
        let stream = self.spawn_stream(
            Protocol::Delta,
            request.into_inner(),
            Request::Delta,
            |r| match r {
                Response::Delta(r) => Some(r),
                Response::Sotw(_) => None,
            },
        );
        Ok(tonic::Response::new(Box::pin(stream)))
    }
}
