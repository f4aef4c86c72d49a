//! RateLimitService: global rate limiting through a gRPC rate limit service.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{Duration, GatewayRef, ObjectStatus};
use crate::mapping::SERVICE_PATTERN;

/// A gRPC rate limit service (envoy.service.ratelimit.v3) that decides on the descriptors
/// that Mappings attach with `rateLimits`. In the Gateway's own namespace it is Gateway-wide:
/// it is asked about every Mapping's descriptors. In any other namespace the Gateway admits,
/// it is asked only about that namespace's Mappings, before the Gateway-wide one (if any) is
/// asked too. The oldest wins where several would decide on the same requests.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "legate.dev",
    version = "v1alpha1",
    kind = "RateLimitService",
    namespaced,
    status = "ObjectStatus",
    shortname = "lrl",
    category = "legate",
    doc = "Global rate limiting through a gRPC rate limit service.",
    printcolumn(name = "Service", type_ = "string", json_path = ".spec.service"),
    printcolumn(name = "Domain", type_ = "string", json_path = ".spec.domain"),
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
pub struct RateLimitServiceSpec {
    /// The rate limit service: `name[.namespace][:port]` of a Service.
    #[schemars(length(min = 1, max = 512), regex(pattern = SERVICE_PATTERN))]
    pub service: String,
    /// The domain sent with every descriptor (default `legate`).
    #[serde(default = "default_domain")]
    #[schemars(length(min = 1, max = 256))]
    pub domain: String,
    /// How long to wait for the rate limit service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Refuse requests (500) when the rate limit service is down; by default they go through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_mode_deny: Option<bool>,
    /// The Gateways to attach to. Empty: every Gateway that admits this namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<GatewayRef>,
}

fn default_domain() -> String {
    "legate".into()
}
