//! The tests that need no API server: the harness's echo upstream, the real
//! Envoy, the xDS engine against the real Envoy, and the checks of the
//! repository's files (manifests, bundle, Dockerfile, README, `legate
//! version`). One binary, so that kube, tonic and envoy-types are linked
//! once for all of them.

mod cli_help;
mod echo;
mod envoy;
mod envoy_admin_socket;
mod explain_envoy;
mod install;
mod probe_metrics;
#[macro_use]
mod xds_rig;
mod xds_envoy;
mod xds_envoy_features;
mod xds_envoy_vhds;
