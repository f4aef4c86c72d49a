//! Services that filters call: external authorization and rate limiting.
//! One of each may be Gateway-wide (from the Gateway's own namespace) and one
//! of each per other namespace, for that namespace's Mappings only (see
//! [`super::Gateway::namespace_auth`]).

use std::time::Duration;

use super::ObjectRef;

/// External authorization (ext_authz) for every route of a Gateway, or of
/// one namespace's Mappings, unless a route bypasses it.
#[derive(Clone, PartialEq, Debug)]
pub struct AuthService {
    pub origin: ObjectRef,
    /// The upstream (by name) of the authorization service.
    pub upstream: String,
    pub protocol: AuthProtocol,
    pub timeout: Duration,
    /// Let requests through when the service cannot be reached.
    pub failure_mode_allow: bool,
    /// The status clients get when the service cannot be reached (403 by default).
    pub status_on_error: u16,
    /// Send the request body (buffered up to a size) to the service.
    pub include_body: Option<AuthBody>,
}

#[derive(Clone, PartialEq, Debug)]
pub enum AuthProtocol {
    Http {
        /// Prepended to the request path in the check request.
        path_prefix: String,
        /// Request headers sent to the service besides the ones always sent.
        allowed_request_headers: Vec<String>,
        /// Headers of an allowing answer that are added to the request upstream.
        allowed_authorization_headers: Vec<String>,
    },
    Grpc,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AuthBody {
    pub max_bytes: u32,
    /// Send the first `max_bytes` of a larger body instead of answering 413.
    pub allow_partial: bool,
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
