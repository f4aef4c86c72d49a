//! HTTP routes: what a request must look like, and what happens to it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::ObjectRef;

/// The stable identity of a route: derived from the object that produced it
/// (plus a rule index when one object yields several routes), never from a
/// position in a list, so that removing one route never renames another.
/// Cheap to clone: the translator keys several indexes by it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct RouteId(Arc<str>);

impl RouteId {
    /// The route of an object that produces exactly one route.
    pub fn of(object: &ObjectRef) -> RouteId {
        RouteId(object.key().into())
    }

    /// Rule `index` of an object that produces several routes.
    pub fn rule(object: &ObjectRef, index: u32) -> RouteId {
        RouteId(format!("{}#{index}", object.key()).into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as a shared string (no copy).
    pub fn as_arc(&self) -> Arc<str> {
        self.0.clone()
    }
}

impl fmt::Display for RouteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One HTTP route on one listener.
#[derive(Clone, PartialEq, Debug)]
pub struct Route {
    pub id: RouteId,
    /// The object that owns the route. When several objects of one namespace
    /// split traffic over the same match, the others are in `co_origins`.
    pub origin: ObjectRef,
    pub co_origins: Vec<ObjectRef>,
    /// The listener (by name) the route is attached to.
    pub listener: String,
    /// Host globs (`shop.example.com`, `*.example.com`, `*`). Empty means every
    /// host: a route without a hostname matches all of them.
    pub hostnames: Vec<String>,
    /// The namespace the route serves for, when it is not the Gateway's own.
    /// A glob route (`*.example.com`, `*`) goes into the virtual hosts of
    /// the names it covers only where they are this tenant's too; `None`
    /// (the Gateway's namespace) goes everywhere it covers.
    pub tenant: Option<String>,
    /// Higher wins, before any other ordering rule.
    pub precedence: i32,
    pub matcher: RouteMatch,
    pub action: RouteAction,
    pub policy: RoutePolicy,
}

#[derive(Clone, PartialEq, Debug)]
pub struct RouteMatch {
    pub path: PathMatch,
    /// Whether the path match is case sensitive (Envoy's default is yes).
    pub case_sensitive: bool,
    /// An HTTP method (`GET`) the request must have.
    pub method: Option<String>,
    pub headers: Vec<HeaderMatch>,
    pub query: Vec<QueryMatch>,
}

impl Default for RouteMatch {
    fn default() -> Self {
        RouteMatch {
            path: PathMatch::Prefix("/".into()),
            case_sensitive: true,
            method: None,
            headers: Vec::new(),
            query: Vec::new(),
        }
    }
}

#[derive(Clone, PartialEq, Debug)]
pub enum PathMatch {
    /// A plain string prefix (as in Ambassador: `/foo` matches `/foobar`).
    Prefix(String),
    Exact(String),
    /// An RE2 regular expression that must match the whole path.
    Regex(String),
}

#[derive(Clone, PartialEq, Debug)]
pub struct HeaderMatch {
    pub name: String,
    pub value: ValueMatch,
    /// Match requests where the header does *not* match.
    pub invert: bool,
}

#[derive(Clone, PartialEq, Debug)]
pub struct QueryMatch {
    pub name: String,
    pub value: ValueMatch,
}

#[derive(Clone, PartialEq, Debug)]
pub enum ValueMatch {
    Present,
    Exact(String),
    Prefix(String),
    Regex(String),
}

#[derive(Clone, PartialEq, Debug)]
pub enum RouteAction {
    Forward(Forward),
    Redirect(Redirect),
    DirectResponse { status: u16, body: Option<String> },
}

/// Send the request upstream.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct Forward {
    /// Upstreams (by name) and their weights; one entry means no split.
    pub upstreams: Vec<WeightedUpstream>,
    /// Replaces the matched prefix (Ambassador's `rewrite`).
    pub prefix_rewrite: Option<String>,
    pub regex_rewrite: Option<RegexRewrite>,
    pub host_rewrite: Option<HostRewrite>,
    /// Connection upgrades to allow (`websocket`, `CONNECT`...).
    pub upgrades: Vec<String>,
    /// Copies of the traffic sent elsewhere, responses ignored.
    pub mirrors: Vec<Mirror>,
}

#[derive(Clone, PartialEq, Debug)]
pub struct WeightedUpstream {
    pub upstream: String,
    pub weight: u32,
}

#[derive(Clone, PartialEq, Debug)]
pub struct RegexRewrite {
    pub pattern: String,
    pub substitution: String,
}

#[derive(Clone, PartialEq, Debug)]
pub enum HostRewrite {
    Literal(String),
    /// Use the upstream's (DNS) hostname.
    FromUpstream,
}

#[derive(Clone, PartialEq, Debug)]
pub struct Mirror {
    pub upstream: String,
    /// Share of requests mirrored, 0 to 100.
    pub percent: u32,
}

#[derive(Clone, PartialEq, Debug, Default)]
pub struct Redirect {
    pub host: Option<String>,
    /// How the path changes; `None` keeps it.
    pub path: Option<RedirectPath>,
    pub port: Option<u16>,
    pub https: bool,
    /// 301, 302, 303, 307 or 308; anything else means 301.
    pub status: u16,
    pub strip_query: bool,
}

#[derive(Clone, PartialEq, Debug)]
pub enum RedirectPath {
    /// Replace the whole path.
    Replace(String),
    /// Replace the matched prefix, keeping the rest.
    Prefix(String),
    /// Rewrite with a regular expression; a path it does not match stays.
    Regex(RegexRewrite),
}

#[derive(Clone, PartialEq, Debug, Default)]
pub struct RoutePolicy {
    /// Whole-request timeout; `None` keeps Envoy's default (15 s).
    pub timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub retries: Option<RetryPolicy>,
    pub request_headers_to_add: Vec<HeaderValue>,
    pub request_headers_to_remove: Vec<String>,
    pub response_headers_to_add: Vec<HeaderValue>,
    pub response_headers_to_remove: Vec<String>,
    pub cors: Option<Cors>,
    /// Skip the Gateway's external authorization for this route.
    pub bypass_auth: bool,
    /// Context sent to the external authorization service with each request.
    pub auth_context: BTreeMap<String, String>,
    /// Descriptors sent to the rate limit service, each a list of entries.
    pub rate_limits: Vec<Vec<RateLimitEntry>>,
    /// A token bucket enforced by each Envoy on its own.
    pub local_rate_limit: Option<LocalRateLimit>,
    /// What a consistent-hash load balancer hashes (sticky sessions).
    pub hash_on: Option<HashOn>,
    /// Count the route's requests under its owner's name (Envoy route
    /// statistics, which Envoy builds again for every route of the listener
    /// whenever one changes).
    pub stats: bool,
    /// Responses of this route are never compressed.
    pub no_compression: bool,
    /// The route's own request body limit, else the listener's.
    pub body_limit: Option<super::BodyLimit>,
    /// The Mapping's client address lists, judged after the listener's.
    pub ip_access: Option<super::IpAccess>,
    /// A valid JSON Web Token is required.
    pub jwt: Option<super::JwtAuth>,
}

/// One entry of a rate limit descriptor.
#[derive(Clone, PartialEq, Debug)]
pub enum RateLimitEntry {
    Generic {
        key: String,
        value: String,
    },
    /// The value of a request header under `key`. When the header is absent
    /// the whole descriptor is left out, unless `skip_if_absent` drops just
    /// this entry.
    RequestHeader {
        header: String,
        key: String,
        skip_if_absent: bool,
    },
    RemoteAddress,
    DestinationCluster,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LocalRateLimit {
    pub requests: u32,
    pub per: Duration,
}

#[derive(Clone, PartialEq, Debug)]
pub enum HashOn {
    Header(String),
    /// A cookie; Envoy sets it when the client has none and `ttl` is given.
    Cookie {
        name: String,
        ttl: Option<Duration>,
        path: Option<String>,
    },
    SourceIp,
}

#[derive(Clone, PartialEq, Debug)]
pub struct RetryPolicy {
    /// Envoy `retry_on` conditions (`5xx`, `gateway-error`, `reset`...).
    pub retry_on: Vec<String>,
    pub num_retries: u32,
    pub per_try_timeout: Option<Duration>,
}

#[derive(Clone, PartialEq, Debug)]
pub struct HeaderValue {
    pub name: String,
    pub value: String,
    /// Append to an existing value instead of overwriting it.
    pub append: bool,
}

#[derive(Clone, PartialEq, Debug, Default)]
pub struct Cors {
    /// Exact origins, or `*`.
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<Duration>,
    pub allow_credentials: bool,
}
