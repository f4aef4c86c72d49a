//! Mapping: an HTTP route. Requests for a host and path (and optionally a
//! method, headers and query parameters) go to a Service, with the policies a
//! developer needs: rewrites, redirects, weights, timeouts, retries, CORS,
//! headers, WebSockets, gRPC, shadowing, auth and rate limits.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{
    CircuitBreakers, Cors, Duration, GatewayRef, HEADER_NAME_PATTERN, HealthCheck, LoadBalancer,
    ObjectStatus, OutlierDetection, RetryPolicy, TcpKeepalive, header_names_rule,
};

/// `name[.namespace][:port]` of a Kubernetes Service (port by number or name), or an
/// absolute `http://` or `https://` URL of a host outside the cluster.
pub const SERVICE_PATTERN: &str = r"^(https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)?(:([0-9]{1,5}|[a-z0-9]([-a-z0-9]*[a-z0-9])?))?)$";

/// A hostname, or a glob with a leading `*.` label, or `*` for every host.
pub const HOSTNAME_PATTERN: &str =
    r"^(\*|(\*\.)?[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*)$";

/// An HTTP route from a host and path to a Service.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "legate.dev",
    version = "v1alpha1",
    kind = "Mapping",
    namespaced,
    status = "ObjectStatus",
    shortname = "lmap",
    category = "legate",
    doc = "An HTTP route: requests for a host and path go to a Service.",
    printcolumn(name = "Hostname", type_ = "string", json_path = ".spec.hostname"),
    printcolumn(
        name = "Match",
        type_ = "string",
        json_path = ".spec['prefix','path','pathRegex']",
        description = "The prefix, exact path or path regex"
    ),
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
#[x_kube(
    validation = Rule::new("[has(self.prefix), has(self.path), has(self.pathRegex)].filter(x, x).size() == 1")
        .message("set exactly one of prefix, path or pathRegex"),
    validation = Rule::new("has(self.service) != has(self.redirect)")
        .message("set either service (where requests go) or redirect (where clients are sent), not both and not neither"),
    validation = Rule::new("!has(self.hostRewrite) || !has(self.autoHostRewrite) || !self.autoHostRewrite")
        .message("hostRewrite and autoHostRewrite cannot both be set")
        .field_path(".hostRewrite"),
)]
pub struct MappingSpec {
    /// The Gateways to attach to. Empty: every Gateway that admits this namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub gateways: Vec<GatewayRef>,
    /// The host this route serves: a name (`shop.example.com`), a glob (`*.example.com`,
    /// which matches `a.example.com` but not `example.com`) or `*` for every host (the default).
    #[serde(default = "any_host")]
    #[schemars(length(min = 1, max = 253), regex(pattern = HOSTNAME_PATTERN))]
    pub hostname: String,
    /// Match paths starting with this string (a plain string prefix: `/foo` matches `/foobar`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024), regex(pattern = r"^/"))]
    pub prefix: Option<String>,
    /// Match exactly this path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024), regex(pattern = r"^/"))]
    pub path: Option<String>,
    /// Match paths that this RE2 regular expression matches in full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub path_regex: Option<String>,
    /// Whether path matching is case-sensitive (default true).
    #[serde(default = "yes")]
    pub case_sensitive: bool,
    /// Match only this HTTP method, such as GET.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Z]+$"), length(max = 32))]
    pub method: Option<String>,
    /// Match requests that carry these headers with exactly these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    #[x_kube(validation = header_names_rule())]
    pub headers: BTreeMap<String, String>,
    /// Match requests whose headers match these RE2 regular expressions (`.*` tests presence).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    #[x_kube(validation = header_names_rule())]
    pub regex_headers: BTreeMap<String, String>,
    /// Match requests with these query parameters set to exactly these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query_parameters: BTreeMap<String, String>,
    /// Match requests whose query parameters match these RE2 regular expressions.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub regex_query_parameters: BTreeMap<String, String>,
    /// Routes with higher precedence are tried first (default 0).
    #[serde(default)]
    pub precedence: i32,
    /// Where requests go: `name[.namespace][:port]` of a Service (port by number or name), or an
    /// absolute `http://` or `https://` URL of a host outside the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512), regex(pattern = SERVICE_PATTERN))]
    pub service: Option<String>,
    /// Replaces the matched prefix before the request goes upstream (default `/`, so that
    /// `/backend/probe` arrives as `/probe`); the empty string forwards the path unchanged.
    #[serde(default = "root_path")]
    #[schemars(length(max = 1024))]
    pub rewrite: String,
    /// Rewrites the path with an RE2 regular expression and a substitution with capture groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex_rewrite: Option<RegexSubstitution>,
    /// Sets the Host header sent upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub host_rewrite: Option<String>,
    /// Sets the Host header sent upstream to the upstream's hostname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_host_rewrite: Option<bool>,
    /// The share of this route's traffic, in percent (0-100), among Mappings of this namespace
    /// with the same match. Mappings without a weight share what is left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub weight: Option<i32>,
    /// Timeout of the whole request. Default: the Gateway's `defaults.timeout`, else "3s".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Close a connection or stream idle for this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<Duration>,
    /// Timeout for connecting to the upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Duration>,
    /// Retries for failed requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicy>,
    /// Limits on the load sent to the upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_breakers: Option<CircuitBreakers>,
    /// Load balancing across the upstream's endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancer>,
    /// Active health checks: every Envoy asks each endpoint of the upstream over HTTP, and
    /// an endpoint that fails gets no request until it passes again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// Passive health checks: an endpoint of the upstream that answers 5xx several times in
    /// a row is ejected for a while.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
    /// TCP keepalive on the connections to the upstream, so that a NAT or load balancer in
    /// between does not drop idle pooled connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// CORS for browser clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Cors>,
    /// `false` leaves this Mapping's responses uncompressed when the Gateway compresses
    /// (for example a stream of server-sent events that must not wait for a buffer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<bool>,
    /// This Mapping's request body limit in bytes (413 beyond it): at most the
    /// Gateway's `http.maxRequestBodyBytes`, or 16 MiB when the Gateway sets none
    /// (Envoy holds the whole body in memory); 0 for no limit (the body streams).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = crate::http::MAX_BODY_LIMIT))]
    pub max_request_body_bytes: Option<i64>,
    /// Only clients from these addresses (IP addresses or CIDR ranges) may use this
    /// Mapping; others get 403. It narrows what the Gateway's `http.ipAllow` lets in and
    /// can never widen it: a request passes only when the Gateway's lists and these agree.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = crate::access::MAX_CIDRS), inner(length(min = 1, max = 64)))]
    #[x_kube(validation = crate::access::cidr_list_rule())]
    pub ip_allow: Vec<String>,
    /// Clients from these addresses (IP addresses or CIDR ranges) get 403 from this
    /// Mapping, even when `ipAllow` names them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = crate::access::MAX_CIDRS), inner(length(min = 1, max = 64)))]
    #[x_kube(validation = crate::access::cidr_list_rule())]
    pub ip_deny: Vec<String>,
    /// Require a valid JSON Web Token (`Authorization: Bearer <token>`): a request with
    /// none, or a token badly signed, expired or of another issuer, gets 401; a valid
    /// token for none of `audiences` gets 403.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<crate::access::Jwt>,
    /// Headers added to the request before it goes upstream.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    #[x_kube(validation = header_names_rule())]
    pub add_request_headers: BTreeMap<String, HeaderValue>,
    /// Headers added to the response before it goes to the client.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    #[x_kube(validation = header_names_rule())]
    pub add_response_headers: BTreeMap<String, HeaderValue>,
    /// Headers removed from the request before it goes upstream.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(regex(pattern = HEADER_NAME_PATTERN), length(min = 1, max = 256)))]
    pub remove_request_headers: Vec<String>,
    /// Headers removed from the response before it goes to the client.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(regex(pattern = HEADER_NAME_PATTERN), length(min = 1, max = 256)))]
    pub remove_response_headers: Vec<String>,
    /// Protocol upgrades to allow, such as `websocket`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 8),
        inner(regex(pattern = r"^[A-Za-z0-9-]+$"), length(min = 1, max = 64))
    )]
    pub allow_upgrade: Vec<String>,
    /// The upstream speaks gRPC (HTTP/2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<bool>,
    /// Mirror requests to this service instead of routing them; the client sees only the
    /// primary's answer. With `weight`, mirrors that percentage of requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<bool>,
    /// Send clients elsewhere instead of proxying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<Redirect>,
    /// Do not call the Gateway's AuthService for this route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bypass_auth: Option<bool>,
    /// Extra context sent to the AuthService with each request of this route.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub auth_context_extensions: BTreeMap<String, String>,
    /// Descriptors sent to the Gateway's RateLimitService.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub rate_limits: Vec<RateLimitDescriptor>,
    /// A rate limit enforced by each Envoy on its own, with no RateLimitService.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_rate_limit: Option<LocalRateLimit>,
    /// TLS from Envoy to the upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_tls: Option<UpstreamTls>,
}

fn any_host() -> String {
    "*".into()
}

fn yes() -> bool {
    true
}

fn root_path() -> String {
    "/".into()
}

/// The request timeout when neither the Mapping nor its Gateway sets one.
pub const DEFAULT_TIMEOUT: &str = "3s";

/// An RE2 pattern and its substitution (`\1` refers to the first capture group).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegexSubstitution {
    /// The RE2 regular expression.
    #[schemars(length(min = 1, max = 1024))]
    pub pattern: String,
    /// What replaces each match.
    #[schemars(length(max = 1024))]
    pub substitution: String,
}

/// A header to add.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeaderValue {
    /// The value.
    #[schemars(length(max = 4096))]
    pub value: String,
    /// Add to existing values of the header (true, the default) or replace them.
    #[serde(default = "yes")]
    pub append: bool,
}

/// A redirect: clients get a 3xx answer pointing elsewhere.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.path), has(self.prefix), has(self.regex)].filter(x, x).size() <= 1")
    .message("set at most one of path, prefix or regex"))]
pub struct Redirect {
    /// Send clients to this host, keeping the path and query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub host: Option<String>,
    /// Replace the whole path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^/"))]
    pub path: Option<String>,
    /// Replace the matched prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^/"))]
    pub prefix: Option<String>,
    /// Rewrite the path with an RE2 regular expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<RegexSubstitution>,
    /// 301 (the default), 302, 303, 307 or 308.
    #[serde(default = "moved_permanently")]
    #[x_kube(validation = Rule::new("self in [301, 302, 303, 307, 308]").message("must be one of 301, 302, 303, 307 or 308"))]
    pub response_code: i32,
    /// Redirect to https.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_redirect: Option<bool>,
}

fn moved_permanently() -> i32 {
    301
}

/// One descriptor sent to the RateLimitService, made of one or more entries.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitDescriptor {
    /// The entries of the descriptor, in order.
    #[schemars(length(min = 1, max = 16))]
    pub entries: Vec<RateLimitEntry>,
}

/// One entry of a rate limit descriptor. Exactly one is set.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.genericKey), has(self.requestHeader), has(self.remoteAddress), has(self.destinationCluster)].filter(x, x).size() == 1")
    .message("set exactly one of genericKey, requestHeader, remoteAddress or destinationCluster"))]
pub struct RateLimitEntry {
    /// A fixed key and value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generic_key: Option<GenericKey>,
    /// The value of a request header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_header: Option<RequestHeaderEntry>,
    /// The client's address (`remoteAddress: {}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_address: Option<Empty>,
    /// The upstream cluster (`destinationCluster: {}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_cluster: Option<Empty>,
}

/// An entry with no settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
pub struct Empty {}

/// A fixed descriptor entry.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GenericKey {
    /// The key (default `generic_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub key: Option<String>,
    /// The value.
    #[schemars(length(min = 1, max = 256))]
    pub value: String,
}

/// A descriptor entry from a request header.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestHeaderEntry {
    /// The request header whose value is sent.
    #[schemars(length(min = 1, max = 256), regex(pattern = HEADER_NAME_PATTERN))]
    pub header: String,
    /// The descriptor key.
    #[schemars(length(min = 1, max = 256))]
    pub key: String,
    /// When the header is absent, send no descriptor at all (true), or the descriptor without
    /// this entry (false, the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omit_if_not_present: Option<bool>,
}

/// A token bucket per Envoy.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalRateLimit {
    /// Requests allowed per period.
    #[schemars(range(min = 1))]
    pub requests: i32,
    /// The period, such as "1s" or "1m".
    pub per: Duration,
}

/// TLS from Envoy to the upstream.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamTls {
    /// The server name to send (SNI) and verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub sni: Option<String>,
    /// A Secret (key `ca.crt`) with the CA that signs the upstream's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub ca_secret: Option<String>,
    /// A `kubernetes.io/tls` Secret with the client certificate Envoy presents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub client_cert_secret: Option<String>,
}
