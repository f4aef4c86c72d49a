//! Everything Envoy, with no Kubernetes in sight: the IR of one Gateway's
//! configuration, its translation into Envoy resources, the snapshot cache and
//! the ADS server. It builds, tests and benchmarks without a cluster.

pub mod bootstrap;
pub mod cache;
pub mod ir;
pub mod resource;
#[doc(hidden)]
pub mod sample;
pub mod server;
pub mod translate;

/// The Envoy release whose API this crate speaks and whose binary the tests run.
pub const ENVOY_VERSION: &str = "1.40.0";
