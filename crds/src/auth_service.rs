//! AuthService: external authorization (Envoy ext_authz) for a Gateway.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{Duration, GatewayRef, HEADER_NAME_PATTERN, ObjectStatus};
use crate::mapping::SERVICE_PATTERN;

/// External authorization: requests are first checked by this service, unless their Mapping
/// sets `bypassAuth`. In the Gateway's own namespace it is Gateway-wide: it checks every
/// request to the Gateway. In any other namespace the Gateway admits, it checks only the
/// requests to that namespace's Mappings, after which the Gateway-wide one (if any) checks
/// them too. The oldest wins where several would govern the same requests.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "legate.dev",
    version = "v1alpha1",
    kind = "AuthService",
    namespaced,
    status = "ObjectStatus",
    shortname = "lauth",
    category = "legate",
    doc = "External authorization (Envoy ext_authz) for a Gateway's requests.",
    printcolumn(name = "Service", type_ = "string", json_path = ".spec.service"),
    printcolumn(name = "Protocol", type_ = "string", json_path = ".spec.protocol"),
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
pub struct AuthServiceSpec {
    /// The auth service: `name[.namespace][:port]` of a Service, or an http(s) URL.
    #[schemars(length(min = 1, max = 512), regex(pattern = SERVICE_PATTERN))]
    pub service: String,
    /// HTTP (the request is forwarded as an HTTP request) or GRPC (envoy.service.auth.v3).
    #[serde(default)]
    pub protocol: AuthProtocol,
    /// A prefix put before the request's path when calling an HTTP auth service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^/"))]
    pub path_prefix: Option<String>,
    /// How long to wait for the auth service (default "5s").
    #[serde(default = "five_seconds")]
    pub timeout: Duration,
    /// Request headers sent to the auth service, beyond those always sent (authorization,
    /// cookie, user-agent, x-forwarded-*).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(regex(pattern = HEADER_NAME_PATTERN)))]
    pub allowed_request_headers: Vec<String>,
    /// Headers of the auth service's answer that are added to the request going upstream.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(regex(pattern = HEADER_NAME_PATTERN)))]
    pub allowed_authorization_headers: Vec<String>,
    /// Send the request body too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_body: Option<IncludeBody>,
    /// Let requests through when the auth service is down or times out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_mode_allow: Option<bool>,
    /// The status clients get when the auth service fails (default 403): one of the statuses
    /// Envoy can send (IANA's registered codes, not 418, 451 or 5xx beyond 511).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100, max = 599))]
    #[x_kube(validation = Rule::new("self in [100, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 423, 424, 426, 428, 429, 431, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511]")
        .message("statusOnError must be a status Envoy can send, such as 403, 500 or 503"))]
    pub status_on_error: Option<i32>,
    /// The Gateways to attach to. Empty: every Gateway that admits this namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<GatewayRef>,
}

fn five_seconds() -> Duration {
    Duration::new("5s")
}

/// The protocol of an auth service.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
pub enum AuthProtocol {
    #[default]
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "GRPC")]
    Grpc,
}

/// How much of the body the auth service sees.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IncludeBody {
    /// The most bytes of body sent.
    #[schemars(range(min = 1))]
    pub max_bytes: i32,
    /// Send a truncated body when it is longer than maxBytes (otherwise answer 413).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_partial: Option<bool>,
}
