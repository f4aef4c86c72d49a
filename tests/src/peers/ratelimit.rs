//! A rate limit service (envoy.service.ratelimit.v3, gRPC) that records every
//! request's domain and descriptors, and answers OVER_LIMIT when any entry's
//! value is `over` (with the headers `x-test-ratelimit: over` and
//! `retry-after: 17`), OK otherwise.

use envoy_types::pb::envoy::config::core::v3::HeaderValue;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{Code, DescriptorStatus};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::{
    RateLimitService, RateLimitServiceServer,
};
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use tokio::net::TcpListener;

use super::{Seen, Task};

/// The entry value that puts a descriptor over its limit.
pub const OVER: &str = "over";

/// One descriptor: its entries as (key, value), in order.
pub type Descriptor = Vec<(String, String)>;

/// One call, as the service saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitCall {
    pub domain: String,
    pub descriptors: Vec<Descriptor>,
}

impl RateLimitCall {
    /// Whether some descriptor has an entry `(key, value)`.
    pub fn has_entry(&self, key: &str, value: &str) -> bool {
        self.descriptors
            .iter()
            .flatten()
            .any(|(k, v)| k == key && v == value)
    }

    /// Whether some descriptor has an entry with `key`.
    pub fn has_key(&self, key: &str) -> bool {
        self.descriptors.iter().flatten().any(|(k, _)| k == key)
    }
}

/// A running rate limit service; stops when dropped.
#[derive(Debug)]
pub struct RateLimitServer {
    pub calls: Seen<RateLimitCall>,
    _task: Task,
}

impl RateLimitServer {
    pub fn serve(listener: TcpListener) -> RateLimitServer {
        let calls = Seen::default();
        let service = Limiter { calls: calls.clone() };
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(RateLimitServiceServer::new(service))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
                .await;
        });
        RateLimitServer {
            calls,
            _task: Task(task),
        }
    }

    /// The last call with an entry `(key, value)`.
    pub fn call_with(&self, key: &str, value: &str) -> Option<RateLimitCall> {
        self.calls.last_where(|c| c.has_entry(key, value))
    }
}

#[derive(Debug, Clone)]
struct Limiter {
    calls: Seen<RateLimitCall>,
}

fn header(key: &str, value: &str) -> HeaderValue {
    HeaderValue {
        key: key.into(),
        value: value.into(),
        ..HeaderValue::default()
    }
}

#[tonic::async_trait]
impl RateLimitService for Limiter {
    async fn should_rate_limit(
        &self,
        request: tonic::Request<RateLimitRequest>,
    ) -> Result<tonic::Response<RateLimitResponse>, tonic::Status> {
        let request = request.into_inner();
        let descriptors: Vec<Descriptor> = request
            .descriptors
            .iter()
            .map(|d| {
                d.entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.clone()))
                    .collect()
            })
            .collect();
        let over: Vec<bool> = descriptors
            .iter()
            .map(|d| d.iter().any(|(_, v)| v == OVER))
            .collect();
        self.calls.push(RateLimitCall {
            domain: request.domain.clone(),
            descriptors,
        });
        let code = |o: bool| if o { Code::OverLimit } else { Code::Ok } as i32;
        let any_over = over.iter().any(|o| *o);
        let response = RateLimitResponse {
            overall_code: code(any_over),
            statuses: over
                .iter()
                .map(|o| DescriptorStatus {
                    code: code(*o),
                    ..DescriptorStatus::default()
                })
                .collect(),
            response_headers_to_add: if any_over {
                vec![header("x-test-ratelimit", OVER), header("retry-after", "17")]
            } else {
                Vec::new()
            },
            ..RateLimitResponse::default()
        };
        Ok(tonic::Response::new(response))
    }
}
