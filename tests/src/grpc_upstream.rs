//! A tiny gRPC upstream: Envoy's `envoy.service.auth.v3.Authorization`
//! service (generated with tonic server code by envoy-types), served over h2c,
//! that answers every Check with OK and a message describing what it saw.
//! It stands for any gRPC service behind a Gateway.

use std::net::SocketAddr;

use envoy_types::pb::envoy::service::auth::v3::authorization_server::{Authorization, AuthorizationServer};
use envoy_types::pb::envoy::service::auth::v3::{CheckRequest, CheckResponse};
use envoy_types::pb::google::rpc::Status;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;

/// The request metadata a [`GrpcUpstream`] reports back, in its answer's status message.
pub const REPORTED_METADATA: [&str; 2] = ["x-client", "x-gateway"];

/// A running gRPC server; stops when dropped.
#[derive(Debug)]
pub struct GrpcUpstream {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

#[derive(Debug)]
struct Checker {
    name: String,
}

#[tonic::async_trait]
impl Authorization for Checker {
    async fn check(
        &self,
        request: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        let metadata: Vec<String> = REPORTED_METADATA
            .iter()
            .map(|key| {
                let value = request
                    .metadata()
                    .get(*key)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                format!("{key}={value}")
            })
            .collect();
        let path = request
            .get_ref()
            .attributes
            .as_ref()
            .and_then(|a| a.request.as_ref())
            .and_then(|r| r.http.as_ref())
            .map(|h| h.path.clone())
            .unwrap_or_default();
        Ok(tonic::Response::new(CheckResponse {
            status: Some(Status {
                code: 0,
                message: format!("{} checked {path} {}", self.name, metadata.join(" ")),
                details: Vec::new(),
            }),
            ..CheckResponse::default()
        }))
    }
}

impl GrpcUpstream {
    /// Serves the Authorization service on `listener` (HTTP/2 only, as gRPC
    /// servers are), naming itself `name` in its answers.
    pub fn serve(listener: TcpListener, name: &str) -> GrpcUpstream {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("gRPC upstream {name} has no local address: {e}"));
        let service = AuthorizationServer::new(Checker {
            name: name.to_string(),
        });
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpIncoming::from(listener))
                .await;
        });
        GrpcUpstream { addr, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for GrpcUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}
