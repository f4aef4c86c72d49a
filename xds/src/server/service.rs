//! The tonic service: one task per stream, which feeds requests and snapshot
//! changes to the stream's [`StreamState`] and sends what it returns.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use futures::{Stream, StreamExt};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};
use tracing::Instrument;

use super::accept::{Limits, accept_forever};
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
    /// When set, every proxy must present a client certificate, and is served
    /// only the Gateway its certificate names.
    authenticator: Option<Arc<dyn Authenticator>>,
    /// Connections and streams refused: no certificate, an untrusted one, or
    /// one for another Gateway.
    refused: Arc<AtomicU64>,
    /// Turns true when the server stops: every open stream ends then, so
    /// proxies reconnect (to whichever replica serves now) instead of
    /// holding a stream that tonic's graceful shutdown would wait on forever.
    closing: watch::Receiver<bool>,
}

/// Who a proxy is, from its TLS client certificate.
pub trait Authenticator: Send + Sync + std::fmt::Debug + 'static {
    /// The Gateway (`namespace/name`) the certificate (DER) was issued for;
    /// None when it names no Gateway.
    fn gateway_of(&self, certificate_der: &[u8]) -> Option<String>;
}

impl AdsServer {
    pub fn new(cache: Arc<SnapshotCache>) -> AdsServer {
        AdsServer {
            cache,
            events: broadcast::Sender::new(EVENT_BUFFER),
            authenticator: None,
            refused: Arc::new(AtomicU64::new(0)),
            closing: watch::channel(false).1,
        }
    }

    /// Requires client certificates and binds each stream to the Gateway its
    /// certificate names, whatever node id or cluster the proxy claims.
    pub fn with_authenticator(mut self, authenticator: Arc<dyn Authenticator>) -> AdsServer {
        self.authenticator = Some(authenticator);
        self
    }

    /// How many connections or streams were refused so far.
    pub fn refused(&self) -> Arc<AtomicU64> {
        self.refused.clone()
    }

    /// The Gateway this request may be served, from its client certificate.
    fn identify<T>(&self, request: &tonic::Request<T>) -> Result<Option<String>, Status> {
        let Some(authenticator) = &self.authenticator else {
            return Ok(None);
        };
        let gateway = request
            .peer_certs()
            .and_then(|certs| certs.first().and_then(|c| authenticator.gateway_of(c.as_ref())));
        match gateway {
            Some(g) => Ok(Some(g)),
            None => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                Err(Status::unauthenticated(
                    "xDS needs the client certificate Legate issued for this Envoy's Gateway",
                ))
            }
        }
    }

    /// Serves ADS over TLS on `listener`: each connection is accepted with the
    /// latest `config` (certificates rotate), and failed handshakes (no client
    /// certificate, an untrusted one, none within 10 seconds) are counted as
    /// refused. At most 64 handshakes run at once.
    pub async fn serve_tls(
        self,
        listener: tokio::net::TcpListener,
        config: watch::Receiver<Arc<tokio_rustls::rustls::ServerConfig>>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        let handshake = move |tcp| tokio_rustls::TlsAcceptor::from(config.borrow().clone()).accept(tcp);
        self.serve_accepted(listener, handshake, shutdown).await
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
        let handshake = |tcp| std::future::ready(Ok::<_, std::convert::Infallible>(tcp));
        self.serve_accepted(listener, handshake, shutdown).await
    }

    /// Serves the connections our own accept loop lets in: tonic's own loop
    /// retries an accept error at once (a spin while descriptors are short)
    /// and logs it only at trace level.
    async fn serve_accepted<H, F, Io, E>(
        mut self,
        listener: tokio::net::TcpListener,
        handshake: H,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError>
    where
        H: Fn(tokio::net::TcpStream) -> F + Send + 'static,
        F: Future<Output = Result<Io, E>> + Send + 'static,
        Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + tonic::transport::server::Connected,
        Io: Unpin + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let (tx, rx) = mpsc::channel::<Io>(64);
        let accept = tokio::spawn(accept_forever(
            listener,
            Limits::default(),
            handshake,
            tx,
            self.refused.clone(),
        ));
        let incoming = ReceiverStream::new(rx).map(Ok::<_, std::io::Error>);
        let (close, closing) = watch::channel(false);
        self.closing = closing;
        let shutdown = async move {
            shutdown.await;
            // Streams end first; then tonic's graceful shutdown has nothing to wait for.
            let _ = close.send(true);
        };
        let result = tonic::transport::Server::builder()
            // Envoy keeps one ADS stream open for hours; keepalives notice a
            // peer that vanished without closing it.
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            .add_service(self.into_service())
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
            .map_err(ServeError);
        accept.abort();
        result
    }

    fn spawn_stream<Req, Resp>(
        &self,
        identity: Option<String>,
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
        let refused = self.refused.clone();
        let closing = self.closing.clone();
        tokio::spawn(async move {
            let inbound = inbound.map(move |r| r.map(wrap));
            let stream = StreamContext {
                identity,
                refused,
                protocol,
                closing,
            };
            if let Err(status) = serve_stream(stream, &cache, &events, inbound, &tx, unwrap).await {
                // The client may be gone already; nothing more to do then.
                let _ = tx.send(Err(status)).await;
            }
        });
        ReceiverStream::new(rx)
    }
}

type Outbound<Resp> = mpsc::Sender<Result<Resp, Status>>;

/// What a stream knows before its first request.
struct StreamContext {
    /// The Gateway the client certificate names, when certificates are required.
    identity: Option<String>,
    refused: Arc<AtomicU64>,
    protocol: Protocol,
    /// True once the server stops serving.
    closing: watch::Receiver<bool>,
}

async fn serve_stream<S, Resp>(
    context: StreamContext,
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
    if let Some(allowed) = &context.identity
        && *allowed != node.cluster
    {
        context.refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(certificate = %allowed, claimed = %node.cluster, node = %node.id, "refused an xDS stream: wrong Gateway");
        return Err(Status::permission_denied(format!(
            "this client certificate is for Gateway {allowed}, but node.cluster asks for {}",
            node.cluster
        )));
    }
    let protocol = context.protocol;
    let mut closing = context.closing;
    let proxy = ProxyId {
        node: node.id.clone(),
        gateway: node.cluster.clone(),
    };
    let mut snapshots = cache.watch(&proxy.gateway);
    let snapshot = snapshots.borrow_and_update().clone();
    let vhds = asks_for_vhds(node);
    let mut state = StreamState::new(protocol, proxy.clone(), snapshot).accepting_vhds(vhds);
    tracing::info!(%proxy, ?protocol, vhds, "proxy connected");
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
                () = server_closed(&mut closing) => {
                    return Err(Status::unavailable(
                        "this xDS server is closing (shutting down, or no longer the leader); reconnect",
                    ));
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

/// Completes once the server closes; never when no server owns the signal
/// (a service mounted by hand, whose sender is gone).
async fn server_closed(closing: &mut watch::Receiver<bool>) {
    if closing.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Whether the proxy's bootstrap asks for virtual hosts over VHDS.
fn asks_for_vhds(node: &envoy_types::pb::envoy::config::core::v3::Node) -> bool {
    use envoy_types::pb::google::protobuf::value::Kind;
    node.metadata
        .as_ref()
        .and_then(|m| m.fields.get(crate::bootstrap::VHDS_NODE_METADATA))
        .is_some_and(|v| v.kind == Some(Kind::BoolValue(true)))
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
        let identity = self.identify(&request)?;
        let stream = self.spawn_stream(
            identity,
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
        let identity = self.identify(&request)?;
        let stream = self.spawn_stream(
            identity,
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
