//! Types shared by several kinds: durations, Gateway references, upstream
//! policies and the status every object carries.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::KubeSchema;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// A duration as Kubernetes writes them: a decimal number and a unit, possibly
/// repeated (`"250ms"`, `"3s"`, `"1m30s"`). Validated at admission: the syntax
/// by a pattern, positivity by CEL.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(transparent)]
pub struct Duration(pub String);

impl Duration {
    pub fn new(text: impl Into<String>) -> Duration {
        Duration(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The duration as a [`std::time::Duration`]. The API server has checked the
    /// syntax already; this still refuses what it cannot read rather than guess.
    pub fn to_std(&self) -> Result<std::time::Duration, String> {
        parse_duration(&self.0)
    }
}

/// Parses `"1h2m3.5s"`, `"250ms"`, `"10us"`: decimal numbers with units ns, us, ms, s, m, h.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("{text:?} is not a duration such as \"3s\", \"250ms\" or \"1m30s\"");
    if text.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if number_len == 0 {
            return Err(bad());
        }
        let number: f64 = rest[..number_len].parse().map_err(|_| bad())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += number * seconds_per_unit;
        rest = &rest[unit_len..];
    }
    std::time::Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// Units accepted in a [`Duration`], as CEL's `duration()` understands them.
pub const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$";

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "maxLength": 32,
            "x-kubernetes-validations": [{
                "rule": "duration(self) > duration('0s')",
                "message": "must be a positive duration such as \"3s\", \"250ms\" or \"1m30s\""
            }]
        })
    }
}

/// A header name as HTTP allows it (an RFC 9110 token).
pub const HEADER_NAME_PATTERN: &str = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$";

/// The CEL rule that checks every header name of a map (its keys) or a list.
pub fn header_names_rule() -> kube::core::Rule {
    kube::core::Rule::new(r"self.all(k, k.matches('^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$'))")
        .message("header names may contain only letters, digits and !#$%&'*+.^_`|~-")
}

/// A reference to the Gateway an object attaches to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayRef {
    /// Name of the Gateway.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the Gateway; defaults to the namespace of the object that refers to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
}

/// How many attempts a failed request gets.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    /// The conditions that trigger a retry, as Envoy names them, comma-separated
    /// (for example `5xx`, `gateway-error`, `connect-failure`, `retriable-4xx`, `reset`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z0-9-]+(,[a-z0-9-]+)*$"))]
    pub retry_on: Option<String>,
    /// How many retries at most (not counting the first attempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub num_retries: Option<i32>,
    /// The timeout of each attempt, such as "1s".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<Duration>,
}

/// Limits on the load sent to one upstream, beyond which Envoy fails fast.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CircuitBreakers {
    /// Most connections open to the upstream at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_connections: Option<i32>,
    /// Most requests waiting for a connection at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_pending_requests: Option<i32>,
    /// Most requests in flight to the upstream at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_requests: Option<i32>,
    /// Most retries in flight to the upstream at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_retries: Option<i32>,
}

/// Active health checking: each Envoy asks every endpoint of the upstream over HTTP
/// and sends no request to one that fails, until it passes again.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.interval) || duration(self.interval) >= duration('1s')")
        .message("interval must be at least 1s (every Envoy of the Gateway checks every endpoint)")
        .field_path(".interval"),
)]
pub struct HealthCheck {
    /// The path requested (GET), such as "/healthz".
    #[schemars(regex(pattern = "^/[^\\s]*$"), length(max = 1024))]
    pub path: String,
    /// The Host header of the checks (default: Legate's name of the upstream, such as
    /// `shop/quote:80`), for upstreams that answer by virtual host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = "^[A-Za-z0-9.:-]+$"))]
    pub host: Option<String>,
    /// Time between two checks of one endpoint, at least 1s (default 5s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// How long to wait for the answer to one check (default 1s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Failed checks in a row that make a healthy endpoint unhealthy (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub unhealthy_threshold: Option<i32>,
    /// Passed checks in a row that make an unhealthy endpoint healthy again (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub healthy_threshold: Option<i32>,
    /// Response statuses that pass (default: 200 only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(range(min = 100, max = 599)))]
    pub expected_statuses: Vec<i32>,
}

/// Passive health checking: an endpoint that answers with errors is ejected from
/// the upstream for a while, judged on the requests themselves.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutlierDetection {
    /// 5xx answers (or connection failures) in a row that eject an endpoint (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub consecutive_5xx: Option<i32>,
    /// How often ejections are judged (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// How long an endpoint stays out the first time; each ejection in a row adds as much
    /// again (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_ejection_time: Option<Duration>,
    /// The largest share of the upstream's endpoints ejected at once, in percent (default
    /// 10; at least one endpoint can always be ejected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub max_ejection_percent: Option<i32>,
}

/// TCP keepalive on the connections to the upstream, so that a load balancer or NAT
/// between the Envoys and the upstream does not drop idle pooled connections. Unset
/// fields take the system's values.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TcpKeepalive {
    /// Unanswered probes before the connection is dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub probes: Option<i32>,
    /// Idle time before the first probe, whole seconds (such as "60s").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_time: Option<Duration>,
    /// Time between probes, whole seconds (such as "10s").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
}

/// How Envoy picks an endpoint of the upstream.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
pub enum LoadBalancerPolicy {
    /// Each endpoint in turn.
    #[default]
    RoundRobin,
    /// The endpoint with the fewest active requests (of two picked at random).
    LeastRequest,
    /// Consistent hashing on a ring: the same `hashOn` value goes to the same endpoint.
    RingHash,
    /// Consistent hashing with Maglev tables: like RingHash, faster, less even under change.
    Maglev,
}

/// Load balancing for an upstream.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.hashOn) || self.policy in ['RingHash', 'Maglev']")
    .message("hashOn is only used by the RingHash and Maglev policies")
    .field_path(".hashOn"))]
pub struct LoadBalancer {
    /// RoundRobin (the default), LeastRequest, RingHash or Maglev.
    pub policy: LoadBalancerPolicy,
    /// What consistent hashing hashes (RingHash and Maglev only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_on: Option<HashOn>,
}

/// The request property that consistent hashing uses. Exactly one is set.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.header), has(self.cookie), has(self.sourceIp)].filter(x, x).size() == 1")
    .message("set exactly one of header, cookie or sourceIp"))]
pub struct HashOn {
    /// Hash on the value of this request header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = HEADER_NAME_PATTERN), length(max = 256))]
    pub header: Option<String>,
    /// Hash on this cookie. With a `ttl`, Envoy sets it on a client that has none; without,
    /// a request without the cookie is not sticky.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<HashCookie>,
    /// Hash on the client's IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<bool>,
}

/// A cookie for session affinity.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HashCookie {
    /// Name of the cookie.
    #[schemars(length(min = 1, max = 256))]
    pub name: String,
    /// Lifetime of the cookie that Envoy sets, such as "1h".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Duration>,
    /// Path of the cookie that Envoy sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Cross-origin resource sharing for browser clients.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cors {
    /// Allowed origins, exactly (`https://app.example.com`) or `*`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub origins: Vec<String>,
    /// Allowed methods, such as GET and POST.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Request headers the browser may send.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<String>,
    /// Response headers the browser may read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exposed_headers: Vec<String>,
    /// Whether the browser may send credentials (cookies, authorization).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<bool>,
    /// How long the browser may cache a preflight answer, such as "1h".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<Duration>,
}

/// The status every Legate object has.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStatus {
    /// The generation of the spec that the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Accepted, ResolvedRefs and Programmed: where the object is on its way to Envoy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_parse_like_kubernetes_writes_them() {
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("10us"), Ok(Duration::from_micros(10)));
    }

    #[test]
    fn malformed_durations_are_refused() {
        for bad in ["", "3", "s", "3 s", "3sec", "-1s", "1..2s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
