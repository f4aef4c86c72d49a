//! The IR: a plain, Kubernetes-free model of one Gateway's configuration.
//!
//! legate-model builds it from the user's objects; `crate::translate` (behind
//! the `envoy` feature) turns it into Envoy resources. Every item carries the [`ObjectRef`] of the object
//! that produced it.

mod gateway;
mod http;
mod identity;
mod jwt;
mod listener;
mod observe;
mod route;
mod services;
mod tcp;
mod upstream;
mod validate;

pub use gateway::{Gateway, Touched};
pub use http::{BodyLimit, Cidr, Compression, CompressionAlgorithm, ErrorResponse, HttpOptions, IpAccess};
pub use identity::ObjectRef;
pub use jwt::JwtAuth;
pub use listener::{Listener, ListenerProtocol, Secret, SecretMaterial, ServerTls, TlsVersion};
pub use observe::{AccessLog, Observability, OtlpLog, Tracer, Tracing};
pub use route::{
    Cors, Forward, HashOn, HeaderMatch, HeaderValue, HostRewrite, LocalRateLimit, Mirror, PathMatch,
    QueryMatch, RateLimitEntry, Redirect, RedirectPath, RegexRewrite, RetryPolicy, Route, RouteAction,
    RouteId, RouteMatch, RoutePolicy, ValueMatch, WeightedUpstream,
};
pub use services::{AuthBody, AuthProtocol, AuthService, RateLimitService};
pub use tcp::TcpRoute;
pub use upstream::{
    CircuitBreakers, Discovery, Endpoint, HealthCheck, LoadBalancing, OutlierDetection, TcpKeepalive,
    Upstream, UpstreamProtocol, UpstreamTls,
};
pub use validate::InvalidRoute;
