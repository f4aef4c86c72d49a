//! Emissary's `service` strings (`quote`, `quote.shop:8080`,
//! `https://quote.shop.svc.cluster.local`, `httpbin.org`, `10.0.0.7:80`) as
//! Legate reads them: `name[.namespace]:port` of a Kubernetes Service, or an
//! `http(s)://` URL of a host outside the cluster.

use std::net::IpAddr;
use std::sync::LazyLock;

use legate_crds::mapping::SERVICE_PATTERN;
use regex::Regex;

use super::report::DocReport;

static SERVICE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(SERVICE_PATTERN).expect("SERVICE_PATTERN is a valid regex"));

/// Top-level domains that make `a.b` a host on the Internet rather than
/// Service `a` of namespace `b`.
const TLDS: &[&str] = &[
    "com", "org", "net", "io", "dev", "app", "co", "ai", "cloud", "info", "biz", "us", "uk", "de", "fr",
    "eu", "local", "internal", "example", "test",
];

/// Where a converted object sends requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Legate's `service`.
    pub service: String,
    /// A Kubernetes Service spoken to over TLS (Legate: `upstreamTls`). A URL
    /// carries its own scheme instead.
    pub tls: bool,
    /// The Service's namespace when it is not the object's own.
    pub other_namespace: Option<String>,
}

/// Converts `raw` (the field `field` of an object in `namespace`); `Err` says
/// why it cannot be.
pub fn upstream(raw: &str, field: &str, namespace: &str, report: &mut DocReport) -> Result<Upstream, String> {
    let raw = raw.trim();
    let lower = raw.to_ascii_lowercase();
    let (tls, rest) = if let Some(rest) = lower.strip_prefix("https://") {
        (true, &raw[raw.len() - rest.len()..])
    } else if let Some(rest) = lower.strip_prefix("http://") {
        (false, &raw[raw.len() - rest.len()..])
    } else if lower.contains("://") {
        return Err(format!(
            "{field} {raw:?}: only http:// and https:// services are read"
        ));
    } else {
        (false, raw)
    };
    let rest = rest.trim_end_matches('/');
    if rest.contains('/') {
        return Err(format!(
            "{field} {raw:?} has a path: Legate services are a host and port (use rewrite for the path)"
        ));
    }
    let (host, port) =
        split_port(rest).ok_or_else(|| format!("{field} {raw:?}: the port is not a number"))?;
    let port = port.unwrap_or(if tls { 443 } else { 80 });
    let scheme = if tls { "https" } else { "http" };
    if host.parse::<IpAddr>().is_ok() {
        return checked(Upstream {
            service: format!("{scheme}://{host}:{port}"),
            tls: false,
            other_namespace: None,
        });
    }
    let mut host = host.to_ascii_lowercase();
    for suffix in [".svc.cluster.local", ".svc"] {
        if let Some(short) = host.strip_suffix(suffix) {
            report.changed(
                field,
                format!("{raw}: the same Service, written {short} as Legate names Services"),
            );
            host = short.to_string();
            break;
        }
    }
    let labels: Vec<&str> = host.split('.').collect();
    let in_cluster = match labels.as_slice() {
        [_] => true,
        [_, second] => !TLDS.contains(second),
        _ => false,
    };
    if !in_cluster {
        return checked(Upstream {
            service: format!("{scheme}://{host}:{port}"),
            tls: false,
            other_namespace: None,
        });
    }
    let other_namespace = labels
        .get(1)
        .filter(|ns| **ns != namespace)
        .map(|ns| ns.to_string());
    if let Some(ns) = &other_namespace {
        report.changed(
            field,
            format!(
                "Service {} of namespace {ns}: Legate routes to another namespace's Service only when it allows it (annotation legate.dev/allow-from on the Service, see docs/tenancy.md); Emissary did not ask",
                labels[0]
            ),
        );
    }
    checked(Upstream {
        service: format!("{host}:{port}"),
        tls,
        other_namespace,
    })
}

fn checked(upstream: Upstream) -> Result<Upstream, String> {
    if SERVICE.is_match(&upstream.service) {
        Ok(upstream)
    } else {
        Err(format!(
            "{:?} is not a Service name Legate can read (name[.namespace]:port or an http(s):// URL)",
            upstream.service
        ))
    }
}

/// `host` and its port, if any; None when the port is not a number.
fn split_port(text: &str) -> Option<(&str, Option<u16>)> {
    if text.starts_with('[') {
        // [v6]:port
        let end = text.find(']')?;
        let host = &text[1..end];
        let port = match text[end + 1..].strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None => None,
        };
        return Some((host, port));
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host, Some(port.parse().ok()?))),
        _ => Some((text, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(raw: &str) -> Result<Upstream, String> {
        let mut r = DocReport::new("t#1".into(), "x".into());
        upstream(raw, "spec.service", "shop", &mut r)
    }

    fn service(raw: &str) -> String {
        convert(raw).unwrap_or_else(|e| panic!("{e}")).service
    }

    #[test]
    fn services_get_the_port_emissary_would_use() {
        assert_eq!(service("quote"), "quote:80");
        assert_eq!(service("quote:8080"), "quote:8080");
        assert_eq!(service("http://quote.shop"), "quote.shop:80");
        assert_eq!(
            service("quote.backend.svc.cluster.local:9000"),
            "quote.backend:9000"
        );
        let tls = convert("https://quote").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((tls.service.as_str(), tls.tls), ("quote:443", true));
    }

    #[test]
    fn hosts_outside_the_cluster_become_urls() {
        assert_eq!(service("httpbin.org"), "http://httpbin.org:80");
        assert_eq!(service("https://api.example.com"), "https://api.example.com:443");
        assert_eq!(service("10.0.0.7:8080"), "http://10.0.0.7:8080");
    }

    #[test]
    fn another_namespace_is_named_and_bad_services_refused() {
        assert_eq!(
            convert("orders.backend").map(|u| u.other_namespace),
            Ok(Some("backend".to_string()))
        );
        assert!(convert("quote:http").is_err());
        assert!(convert("quote/v1").is_err());
        assert!(convert("grpc://quote").is_err());
    }
}
