//! The end-to-end scale benchmark behind `make bench` (see BENCHMARKS.md): it
//! drives a stack that `tests/stack.sh up` started (control plane, the
//! release operator, one Envoy) with thousands of Mappings and measures what a
//! user and a cluster administrator see: how long until every route answers
//! and every Mapping is Programmed, how long a change takes to reach Envoy,
//! whether unrelated traffic blips, and what the operator costs (memory, CPU,
//! API server writes, xDS bytes).
//!
//! It is a program, not a test: numbers on a shared 2-core machine vary, so
//! they are printed next to their targets for a person to read, never
//! asserted.

mod changes;
mod gauges;
mod load;
mod probe;
mod programmed;
mod report;
mod route_updates;
mod run;
mod stack;
mod world;

use std::path::PathBuf;
use std::time::Duration;

pub use run::run;

/// Why the benchmark could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Something the benchmark needs is missing; the message says how to get it.
    #[error("{0}")]
    Prerequisite(String),
    #[error("{what}: {source}")]
    Kube {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A step the benchmark cannot measure around failed.
    #[error("{0}")]
    Failed(String),
}

impl BenchError {
    fn kube(what: impl Into<String>) -> impl FnOnce(kube::Error) -> BenchError {
        let what = what.into();
        move |source| BenchError::Kube { what, source }
    }

    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
        let what = what.into();
        move |source| BenchError::Io { what, source }
    }
}

/// How the Mappings reach the API server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// One List of every Mapping, `kubectl apply --server-side` (then the
    /// change phase and the idle phase run on that world).
    Bulk,
    /// One create after the other through the API, each awaited.
    OneByOne,
}

/// How the bulk load sends its List.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Apply {
    /// `kubectl apply --server-side -f list.json`: what a user types. kubectl
    /// sends one PATCH per item, one after the other.
    Kubectl,
    /// The same server-side applies from the benchmark, many in flight at
    /// once: the load as fast as the API server takes it.
    Concurrent,
}

/// One benchmark run on one stack.
#[derive(Debug, Clone)]
pub struct Config {
    /// The directory `tests/stack.sh up` was given.
    pub stack_dir: PathBuf,
    pub load: Load,
    pub apply: Apply,
    /// How many Mappings to load (N).
    pub mappings: usize,
    /// Over how many hostnames they spread: Mapping i gets `h{i % hosts}.bench.test`.
    pub hosts: usize,
    /// How many changes (create, modify, delete in turn) to time (K).
    pub changes: usize,
    /// How long to count writes with nothing changing.
    pub idle: Duration,
}
