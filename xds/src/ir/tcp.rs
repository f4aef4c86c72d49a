//! TCP routes: a port (or, on a TLS listener, an SNI name) → an upstream,
//! bytes passed through untouched.

use std::time::Duration;

use super::{ObjectRef, RouteId, ServerTls, WeightedUpstream};

#[derive(Clone, PartialEq, Debug)]
pub struct TcpRoute {
    pub id: RouteId,
    pub origin: ObjectRef,
    /// Other objects whose upstreams share this route's connections.
    pub co_origins: Vec<ObjectRef>,
    /// A listener (by name) whose protocol is TCP or TLS.
    pub listener: String,
    /// On a TLS listener: the SNI names this route takes (the TLS stream
    /// passes through to the upstream undecrypted). Empty: every connection
    /// no other route of the listener takes.
    pub sni: Vec<String>,
    /// Upstreams (by name) and their weights; one entry takes every connection.
    pub upstreams: Vec<WeightedUpstream>,
    pub idle_timeout: Option<Duration>,
    /// Terminate TLS with this certificate and forward plaintext, instead of
    /// passing TLS through.
    pub tls: Option<ServerTls>,
}
