//! The tests that share one control plane with no operator of the harness's
//! on it: each runs its own operator, or none. Here, unlike in `cluster`, no
//! operator watches every namespace of the shared control plane, so
//! - `fleet`, `xds_auth`, `lease_clock` and `ca_rotation` run operators
//!   limited to their namespace (`lease_clock` and `ca_rotation` keep their
//!   Lease and xDS CA there too);
//! - `api` applies objects that such an operator would act on (a Gateway
//!   that admits routes from every namespace, the examples' NodePorts);
//! - `operator_ha` and `operator_restart` run operators that watch every
//!   namespace, so each has a control plane of its own;
//! - `chaos` (issue 16) stops the API server, compacts etcd and kills the
//!   operator under traffic, each test on a control plane of its own;
//! - `setup` starts its own control planes and stack with the scripts, and
//!   `run_local` runs `make run` and stops it as a user does.

mod api;
mod ca_rotation;
mod chaos;
mod fleet;
mod lease_clock;
mod operator_ha;
mod operator_restart;
mod run_local;
mod setup;
mod xds_auth;
