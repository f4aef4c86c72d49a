//! TCPMapping: a TCP (or TLS, by SNI) port of a Gateway to a Service.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{Duration, GatewayRef, ObjectStatus};
use crate::mapping::{HOSTNAME_PATTERN, SERVICE_PATTERN};

/// Raw TCP routing: connections to a TCP or TLS listener of the Gateway go to a Service.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "legate.dev",
    version = "v1alpha1",
    kind = "TCPMapping",
    plural = "tcpmappings",
    namespaced,
    status = "ObjectStatus",
    shortname = "ltcp",
    category = "legate",
    doc = "A TCP or TLS port of a Gateway routed to a Service.",
    printcolumn(name = "Port", type_ = "integer", json_path = ".spec.port"),
    printcolumn(name = "SNI", type_ = "string", json_path = ".spec.sni"),
    printcolumn(name = "Service", type_ = "string", json_path = ".spec.service"),
    printcolumn(
        name = "Accepted",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Accepted\")].status"
    ),
    printcolumn(
        name = "Programmed",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Programmed\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct TCPMappingSpec {
    /// The Gateway listener port (a TCP or TLS listener) whose connections this routes.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Where connections go: `name[.namespace]:port` of a Service.
    #[schemars(length(min = 1, max = 512), regex(pattern = SERVICE_PATTERN))]
    pub service: String,
    /// Route only TLS connections for this server name (on a TLS listener).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = HOSTNAME_PATTERN))]
    pub sni: Option<String>,
    /// A TLSContext in this namespace: terminate TLS with it, then forward plain TCP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub tls_context: Option<String>,
    /// The share of connections, in percent (0-100), among TCPMappings of the same port and SNI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub weight: Option<i32>,
    /// Close connections idle for this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<Duration>,
    /// The Gateways to attach to. Empty: every Gateway that admits this namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<GatewayRef>,
}
