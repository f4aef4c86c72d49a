//! Real peers of a Gateway for end-to-end tests, each written here and run on
//! a test host behind a Service: an external authorization service (HTTP and
//! gRPC), a rate limit service, an OTLP collector (traces and logs), a Zipkin
//! collector, a TLS upstream that records the client certificate it saw, a TLS
//! client that reports what the server presented, and a JSON Web Key Set
//! server with its signing key.

pub mod auth;
pub mod jwks;
pub mod otlp;
pub mod ratelimit;
pub mod tls_client;
pub mod tls_echo;
pub mod zipkin;

use std::convert::Infallible;
use std::future::Future;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::json;
use tokio::net::TcpListener;

use crate::TestEnv;
use crate::api::apply;

/// A selector-less Service `name` whose port `port` (named `main`) goes to
/// `address:port`, with its EndpointSlice, as a Deployment behind a Service
/// would look. Peers listen on test hosts because EndpointSlices refuse
/// loopback addresses.
pub async fn expose(env: &TestEnv, name: &str, address: &str, port: u16) {
    let service = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": { "name": name },
        "spec": { "ports": [{ "name": "main", "port": port, "targetPort": port }] }
    });
    apply(&env.client, &env.namespace, &service)
        .await
        .unwrap_or_else(|e| panic!("the Service {name} was refused: {e}"));
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": { "name": format!("{name}-1"), "labels": { "kubernetes.io/service-name": name } },
        "addressType": "IPv4",
        "endpoints": [{ "addresses": [address], "conditions": { "ready": true } }],
        "ports": [{ "name": "main", "port": port, "protocol": "TCP" }]
    });
    apply(&env.client, &env.namespace, &slice)
        .await
        .unwrap_or_else(|e| panic!("the EndpointSlice of {name} was refused: {e}"));
}

/// Every request a peer saw, shared between the peer's tasks and the test.
#[derive(Debug)]
pub struct Seen<T>(std::sync::Arc<std::sync::Mutex<Vec<T>>>);

impl<T> Clone for Seen<T> {
    fn clone(&self) -> Self {
        Seen(self.0.clone())
    }
}

impl<T> Default for Seen<T> {
    fn default() -> Self {
        Seen(std::sync::Arc::default())
    }
}

impl<T: Clone> Seen<T> {
    pub fn push(&self, item: T) {
        if let Ok(mut items) = self.0.lock() {
            items.push(item);
        }
    }

    pub fn all(&self) -> Vec<T> {
        self.0.lock().map(|items| items.clone()).unwrap_or_default()
    }

    /// The last item that satisfies `pred`.
    pub fn last_where(&self, pred: impl Fn(&T) -> bool) -> Option<T> {
        self.all().into_iter().rev().find(|item| pred(item))
    }
}

/// A task that is aborted when dropped.
#[derive(Debug)]
pub struct Task(pub tokio::task::JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves HTTP/1.1 and HTTP/2 on `listener`, each request answered by
/// `answer`, until the returned task is dropped.
pub fn serve_http<F, Fut>(listener: TcpListener, answer: F) -> Task
where
    F: Fn(hyper::Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<hyper::Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    Task(tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service_fn(answer))
                    .await;
            });
        }
    }))
}
