//! Gateway-wide services that filters call: external authorization and rate limiting.

use std::time::Duration;

use super::ObjectRef;

/// External authorization (ext_authz) for every route of a Gateway, unless a
/// route bypasses it.
#[derive(Clone, PartialEq, Debug)]
pub struct AuthService {
    pub origin: ObjectRef,
    /// The upstream (by name) of the authorization service.
    pub upstream: String,
    pub protocol: AuthProtocol,
    pub timeout: Duration,
    /// Let requests through when the service cannot be reached.
    pub failure_mode_allow: bool,
}

#[derive(Clone, PartialEq, Debug)]
pub enum AuthProtocol {
    Http {
        path_prefix: String,
        allowed_request_headers: Vec<String>,
    },
    Grpc,
}

/// Global rate limiting through a gRPC rate limit service.
#[derive(Clone, PartialEq, Debug)]
pub struct RateLimitService {
    pub origin: ObjectRef,
    pub upstream: String,
    pub domain: String,
    pub timeout: Duration,
    /// Reject requests when the service cannot be reached.
    pub failure_mode_deny: bool,
}
