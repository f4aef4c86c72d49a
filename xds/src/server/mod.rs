//! The ADS server: state of the world and delta over one tonic service.

mod accept;
mod blame;
mod events;
mod service;
mod stream;
mod tracker;
pub(crate) mod wire;

// Over real gRPC on loopback; a unit test module so that the crate needs no
// integration test binary of its own (each one links tonic again).
#[cfg(test)]
mod grpc_tests;

pub use events::{Ack, ProxyId, Rejection, XdsEvent};
pub use service::{AdsServer, Authenticator, ServeError};
pub use stream::{Protocol, Request, Response, Step, StreamState};
pub use tracker::{ProxyStatus, ProxyTracker};
