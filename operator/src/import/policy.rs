//! Traffic policies that a Mapping and the `ambassador` Module (as Gateway
//! defaults) share: CORS, retries, circuit breakers, load balancing, TCP
//! keepalive.

use legate_crds::common::{
    CircuitBreakers, Cors, Duration, HashCookie, HashOn, LoadBalancer, LoadBalancerPolicy, RetryPolicy,
    TcpKeepalive,
};
use serde_json::Value;

use super::fields::{Fields, seconds};
use super::report::DocReport;

/// `cors` → Legate `cors`.
pub fn cors(mut f: Fields, report: &mut DocReport) -> Cors {
    let max_age = f.string("max_age", report).and_then(|text| {
        let converted = seconds(&text);
        if converted.is_none() {
            report.dropped(f.at("max_age"), format!("{text:?} is not a number of seconds"));
        }
        converted
    });
    let cors = Cors {
        origins: f.strings("origins", report),
        methods: f.strings("methods", report),
        headers: f.strings("headers", report),
        exposed_headers: f.strings("exposed_headers", report),
        credentials: f.boolean("credentials", report),
        max_age: max_age.map(Duration),
    };
    f.ignore("v2CommaSeparatedOrigins");
    f.finish("cors", report);
    cors
}

/// `retry_policy` → Legate `retryPolicy`.
pub fn retry_policy(mut f: Fields, report: &mut DocReport) -> RetryPolicy {
    let per_try_timeout = f.string("per_try_timeout", report).and_then(|text| {
        let converted = seconds(&text);
        if converted.is_none() {
            report.dropped(f.at("per_try_timeout"), format!("{text:?} is not a duration"));
        }
        converted
    });
    let policy = RetryPolicy {
        retry_on: f.string("retry_on", report),
        num_retries: f.integer("num_retries", report).map(clamp_i32),
        per_try_timeout: per_try_timeout.map(Duration),
    };
    f.drop(
        "retry_back_off",
        "Legate retries with Envoy's default back-off (25ms base, 250ms most)",
        report,
    );
    f.finish("retry_policy", report);
    policy
}

/// `circuit_breakers` (a list, one per priority) → Legate `circuitBreakers`,
/// from the `default` priority entry.
pub fn circuit_breakers(value: Value, path: &str, report: &mut DocReport) -> Option<CircuitBreakers> {
    let entries = match value {
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        _ => {
            report.dropped(path, "expected a list of circuit breakers");
            return None;
        }
    };
    let mut chosen = None;
    for (i, entry) in entries.into_iter().enumerate() {
        let mut f = Fields::of(format!("{path}[{i}]"), entry, report);
        let priority = f.string("priority", report).unwrap_or_else(|| "default".into());
        if priority == "high" {
            report.dropped(
                f.path.clone(),
                "Legate routes every request at default priority: limits of the high priority have nothing to apply to",
            );
            continue;
        }
        let breakers = CircuitBreakers {
            max_connections: f.integer("max_connections", report).map(clamp_i32),
            max_pending_requests: f.integer("max_pending_requests", report).map(clamp_i32),
            max_requests: f.integer("max_requests", report).map(clamp_i32),
            max_retries: f.integer("max_retries", report).map(clamp_i32),
        };
        f.finish("a circuit breaker", report);
        if chosen.is_some() {
            report.dropped(
                format!("{path}[{i}]"),
                "a second default-priority entry; the first one is kept",
            );
        } else {
            chosen = Some(breakers);
        }
    }
    chosen
}

/// `load_balancer` → Legate `loadBalancer`; None (reported) for a policy
/// Legate does not have.
pub fn load_balancer(mut f: Fields, report: &mut DocReport) -> Option<LoadBalancer> {
    let policy = match f.string("policy", report).as_deref() {
        Some("round_robin") | None => LoadBalancerPolicy::RoundRobin,
        Some("least_request") => LoadBalancerPolicy::LeastRequest,
        Some("ring_hash") => LoadBalancerPolicy::RingHash,
        Some("maglev") => LoadBalancerPolicy::Maglev,
        Some(other) => {
            report.dropped(f.at("policy"), format!("{other:?} is not a policy Legate has"));
            f.finish("load_balancer", report);
            return None;
        }
    };
    let header = f.string("header", report);
    let source_ip = f.boolean("source_ip", report).filter(|b| *b);
    let cookie = f.object("cookie", report).and_then(|mut c| {
        let name = c.string("name", report);
        let ttl = c.string("ttl", report).and_then(|t| seconds(&t));
        let path = c.string("path", report);
        c.finish("load_balancer.cookie", report);
        name.map(|name| HashCookie {
            name,
            ttl: ttl.map(Duration),
            path,
        })
    });
    let hashing = matches!(policy, LoadBalancerPolicy::RingHash | LoadBalancerPolicy::Maglev);
    let mut hash_on = None;
    for (field, candidate) in [
        (
            "header",
            header.map(|h| HashOn {
                header: Some(h),
                cookie: None,
                source_ip: None,
            }),
        ),
        (
            "cookie",
            cookie.map(|c| HashOn {
                header: None,
                cookie: Some(c),
                source_ip: None,
            }),
        ),
        (
            "source_ip",
            source_ip.map(|_| HashOn {
                header: None,
                cookie: None,
                source_ip: Some(true),
            }),
        ),
    ] {
        let Some(candidate) = candidate else { continue };
        if !hashing {
            report.dropped(
                f.at(field),
                "only ring_hash and maglev hash on a request property",
            );
        } else if hash_on.is_some() {
            report.dropped(
                f.at(field),
                "Legate hashes on one property; the first of header, cookie, source_ip is kept",
            );
        } else {
            hash_on = Some(candidate);
        }
    }
    f.finish("load_balancer", report);
    Some(LoadBalancer { policy, hash_on })
}

/// `keepalive` (whole seconds) → Legate `tcpKeepalive`.
pub fn keepalive(mut f: Fields, report: &mut DocReport) -> TcpKeepalive {
    let secs = |n: i64| (n > 0).then(|| Duration(format!("{n}s")));
    let keepalive = TcpKeepalive {
        probes: f.integer("probes", report).map(clamp_i32),
        idle_time: f.integer("idle_time", report).and_then(secs),
        interval: f.integer("interval", report).and_then(secs),
    };
    f.finish("keepalive", report);
    keepalive
}

/// The statuses Envoy can send (Legate's AuthService `statusOnError` accepts these).
pub const ENVOY_STATUSES: &[i32] = &[
    100, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401,
    402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 423, 424, 426,
    428, 429, 431, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
];

pub fn clamp_i32(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(if n < 0 { i32::MIN } else { i32::MAX })
}
