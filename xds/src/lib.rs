//! Everything Envoy, with no Kubernetes in sight: the IR of one Gateway's
//! configuration, its translation into Envoy resources, the snapshot cache and
//! the ADS server. It builds, tests and benchmarks without a cluster. Only
//! [`ir`] is built without the default `envoy` feature: that is all that
//! legate-model needs.
//!
//! The data flows through the modules in this order:
//!
//! - [`ir`]: what one Gateway should do, every item tagged with the object
//!   (kind/namespace/name/generation) that produced it (legate-model builds it);
//! - [`translate`]: a [`translate::Translator`] per Gateway; its `sync` takes
//!   the whole desired [`ir::Gateway`], compares it with what it holds (the
//!   one diff in the pipeline) and returns only the Envoy resources that
//!   changed; single [`translate::Change`]s are there for tests and benchmarks;
//! - [`cache`]: a snapshot per Gateway, versioned per resource by content hash;
//! - [`server`]: ADS (state of the world and delta) to every Envoy of every
//!   Gateway, make-before-break, with ACKs and NACKs as [`server::XdsEvent`]s;
//! - [`bootstrap`]: the static config an Envoy starts with to find the server.
//!
//! ```
//! use legate_xds::{cache::SnapshotCache, sample, server::AdsServer, translate::Translator};
//!
//! let cache = SnapshotCache::new();
//! let mut translator = Translator::new(); // one per Gateway
//! let upstream = "127.0.0.1:9000".parse().expect("an address");
//! let updates = translator.translate(sample::gateway(8080, 10, 2, 2, upstream));
//! let snapshot = cache.update("default/gw", &updates);
//! assert_eq!(snapshot.len(), 1 + 1 + 2 + 2); // listener, route config, clusters, endpoints
//!
//! let server = AdsServer::new(cache.clone());
//! let _events = server.events(); // ACKs and NACKs of every proxy
//! // tokio::spawn(server.serve(tcp_listener, shutdown));
//! ```

#[cfg(feature = "envoy")]
pub mod bootstrap;
#[cfg(feature = "envoy")]
pub mod cache;
#[cfg(feature = "envoy")]
pub mod explain;
pub mod hash;
pub mod ir;
#[cfg(feature = "envoy")]
pub mod render;
#[cfg(feature = "envoy")]
pub mod resource;
#[cfg(feature = "envoy")]
#[doc(hidden)]
pub mod sample;
#[cfg(feature = "envoy")]
pub mod server;
#[cfg(feature = "envoy")]
pub mod table;
#[cfg(feature = "envoy")]
pub mod translate;

/// The Envoy release whose API this crate speaks and whose binary the tests run.
pub const ENVOY_VERSION: &str = "1.40.0";
