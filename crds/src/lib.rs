//! Legate's API: the custom resources that users apply (group `legate.dev`).
//!
//! One kind per module; each holds the spec, the status, the defaults and the
//! validation rules of its kind. No controller logic lives here. The CRD YAML
//! in `manifests/crds/` is generated from these types ([`generate`]).

// kube-derive printcolumn(...) lists repeat `type_ = ...` per column, which
// clippy mistakes for duplicated attributes.
#![allow(clippy::duplicated_attributes)]

pub mod access;
pub mod auth_service;
pub mod common;
pub mod conditions;
pub mod gateway;
pub mod generate;
// The committed CRD YAML against the types (a unit module: no extra test binary).
#[cfg(test)]
mod generated_tests;
pub mod http;
pub mod mapping;
pub mod observability;
pub mod rate_limit_service;
pub mod tcp_mapping;
pub mod tls_context;

pub use auth_service::{AuthService, AuthServiceSpec};
pub use common::{Duration, GatewayRef, ObjectStatus};
pub use gateway::{Gateway, GatewaySpec, GatewayStatus};
pub use mapping::{Mapping, MappingSpec};
pub use rate_limit_service::{RateLimitService, RateLimitServiceSpec};
pub use tcp_mapping::{TCPMapping, TCPMappingSpec};
pub use tls_context::{TLSContext, TLSContextSpec};

/// The API group of every Legate kind.
pub const GROUP: &str = "legate.dev";

/// The API version served by this release.
pub const VERSION: &str = "v1alpha1";

/// The `kubectl get` category that lists every Legate object (`kubectl get legate`).
pub const CATEGORY: &str = "legate";

/// `apiVersion` as written in YAML.
pub fn api_version() -> String {
    format!("{GROUP}/{VERSION}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_version_joins_group_and_version() {
        assert_eq!(api_version(), "legate.dev/v1alpha1");
    }
}
