//! The IR: a plain, Kubernetes-free model of one Gateway's configuration.
//!
//! The operator builds it from the user's objects; [`crate::translate`] turns
//! it into Envoy resources. Every item carries the [`ObjectRef`] of the object
//! that produced it.

mod gateway;
mod identity;
mod listener;
mod route;
mod services;
mod tcp;
mod upstream;
mod validate;

pub use gateway::Gateway;
pub use identity::ObjectRef;
pub use listener::{Listener, ListenerProtocol, Secret, SecretMaterial, ServerTls, TlsVersion};
pub use route::{
    Cors, Forward, HeaderMatch, HeaderValue, HostRewrite, Mirror, PathMatch, QueryMatch, Redirect,
    RegexRewrite, RetryPolicy, Route, RouteAction, RouteId, RouteMatch, RoutePolicy, ValueMatch,
    WeightedUpstream,
};
pub use services::{AuthProtocol, AuthService, RateLimitService};
pub use tcp::TcpRoute;
pub use upstream::{
    CircuitBreakers, Discovery, Endpoint, LoadBalancing, Upstream, UpstreamProtocol, UpstreamTls,
};
pub use validate::InvalidRoute;
