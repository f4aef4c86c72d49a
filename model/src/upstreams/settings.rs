//! How Envoy talks to an upstream, and the canonical key of those settings
//! that names a cluster apart from the default one of the same destination.

use std::time::Duration;

use legate_xds::ir;

/// How Envoy talks to an upstream, apart from TLS (which the resolver works
/// out from the reference): what a Mapping or the Gateway's defaults ask
/// for, or what a Gateway-wide service's protocol needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSettings {
    pub protocol: ir::UpstreamProtocol,
    pub load_balancing: ir::LoadBalancing,
    pub connect_timeout: Duration,
    pub circuit_breakers: Option<ir::CircuitBreakers>,
    pub health_check: Option<ir::HealthCheck>,
    pub outlier_detection: Option<ir::OutlierDetection>,
    pub tcp_keepalive: Option<ir::TcpKeepalive>,
    /// The namespace whose requests alone judge the endpoints, when outlier
    /// detection is on: another team's requests (to a path that fails, say)
    /// must not eject endpoints from this team's cluster.
    pub judged_by: Option<String>,
}

impl Default for ClusterSettings {
    /// Envoy's defaults, as [`ir::Upstream::endpoints`] has them.
    fn default() -> ClusterSettings {
        ClusterSettings {
            protocol: ir::UpstreamProtocol::Http1,
            load_balancing: ir::LoadBalancing::RoundRobin,
            connect_timeout: Duration::from_secs(3),
            circuit_breakers: None,
            health_check: None,
            outlier_detection: None,
            tcp_keepalive: None,
            judged_by: None,
        }
    }
}

impl ClusterSettings {
    /// HTTP/2 (gRPC services: auth, rate limit, OTLP) with the other defaults.
    pub fn http2() -> ClusterSettings {
        ClusterSettings {
            protocol: ir::UpstreamProtocol::Http2,
            ..ClusterSettings::default()
        }
    }
}

/// The canonical key of the settings that make a cluster differ from
/// another of the same destination, and only those: the protocol, TLS (server
/// name, CA Secret, client certificate Secret), the load balancing policy,
/// the connect timeout and the circuit breakers. `None` for the defaults
/// (HTTP/1.1, no TLS, round robin, 3s, no breakers), so that most clusters
/// are named after their destination alone.
///
/// Spelled out field by field, never from a type's `Debug` output: a new IR
/// field must not rename every cluster on upgrade. A new setting that should
/// split clusters is added here, at the end, for non-default values only.
pub fn settings_key(settings: &ClusterSettings, tls: Option<&ir::UpstreamTls>) -> Option<String> {
    if *settings == ClusterSettings::default() && tls.is_none() {
        return None;
    }
    let or_dash = |v: Option<&str>| v.unwrap_or("-").to_string();
    let count = |v: Option<u32>| v.map_or_else(|| "-".to_string(), |n| n.to_string());
    let protocol = match settings.protocol {
        ir::UpstreamProtocol::Http1 => "h1",
        ir::UpstreamProtocol::Http2 => "h2",
    };
    let tls = match tls {
        None => "-".to_string(),
        Some(t) => format!(
            "sni:{},ca:{},client:{}",
            or_dash(t.sni.as_deref()),
            or_dash(t.ca_secret.as_deref()),
            or_dash(t.client_certificate.as_deref())
        ),
    };
    let lb = match settings.load_balancing {
        ir::LoadBalancing::RoundRobin => "round-robin",
        ir::LoadBalancing::LeastRequest => "least-request",
        ir::LoadBalancing::Random => "random",
        ir::LoadBalancing::RingHash => "ring-hash",
        ir::LoadBalancing::Maglev => "maglev",
    };
    let breakers = match settings.circuit_breakers {
        None => "-".to_string(),
        Some(b) => format!(
            "connections:{},pending:{},requests:{},retries:{}",
            count(b.max_connections),
            count(b.max_pending_requests),
            count(b.max_requests),
            count(b.max_retries)
        ),
    };
    let mut key = format!(
        "protocol={protocol};tls={tls};lb={lb};connect={}ms;breakers={breakers}",
        settings.connect_timeout.as_millis()
    );
    // Later settings join the key only when set, so that no existing
    // cluster is renamed by their arrival.
    if let Some(h) = &settings.health_check {
        let statuses: Vec<String> = h.expected_statuses.iter().map(u16::to_string).collect();
        key.push_str(&format!(
            ";health=path:{},host:{},every:{}ms,timeout:{}ms,unhealthy:{},healthy:{},statuses:{}",
            h.path,
            or_dash(h.host.as_deref()),
            h.interval.as_millis(),
            h.timeout.as_millis(),
            h.unhealthy_threshold,
            h.healthy_threshold,
            statuses.join("/")
        ));
    }
    if let Some(o) = &settings.outlier_detection {
        key.push_str(&format!(
            ";outliers=5xx:{},every:{}ms,ejection:{}ms,max:{}%",
            o.consecutive_5xx,
            o.interval.as_millis(),
            o.base_ejection_time.as_millis(),
            o.max_ejection_percent
        ));
    }
    if let Some(k) = &settings.tcp_keepalive {
        key.push_str(&format!(
            ";keepalive=probes:{},idle:{},every:{}",
            count(k.probes),
            count(k.idle_time_secs),
            count(k.interval_secs)
        ));
    }
    if let Some(namespace) = &settings.judged_by {
        key.push_str(&format!(";judged-by={namespace}"));
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_settings_have_no_key() {
        assert_eq!(settings_key(&ClusterSettings::default(), None), None);
    }

    #[test]
    fn the_key_names_every_setting_explicitly() {
        let settings = ClusterSettings {
            protocol: ir::UpstreamProtocol::Http2,
            load_balancing: ir::LoadBalancing::LeastRequest,
            connect_timeout: Duration::from_millis(1500),
            circuit_breakers: Some(ir::CircuitBreakers {
                max_requests: Some(10),
                ..ir::CircuitBreakers::default()
            }),
            ..ClusterSettings::default()
        };
        let tls = ir::UpstreamTls {
            sni: Some("api.example.com".into()),
            ca_secret: Some("shop/ca#ca".into()),
            client_certificate: None,
        };
        assert_eq!(
            settings_key(&settings, Some(&tls)).as_deref(),
            Some(
                "protocol=h2;tls=sni:api.example.com,ca:shop/ca#ca,client:-;lb=least-request;\
                 connect=1500ms;breakers=connections:-,pending:-,requests:10,retries:-"
            )
        );
        assert_eq!(
            settings_key(&ClusterSettings::http2(), None).as_deref(),
            Some("protocol=h2;tls=-;lb=round-robin;connect=3000ms;breakers=-")
        );
    }

    #[test]
    fn health_outliers_and_keepalive_join_the_key_only_when_set() {
        let settings = ClusterSettings {
            health_check: Some(ir::HealthCheck {
                path: "/healthz".into(),
                host: Some("quote.shop".into()),
                interval: Duration::from_secs(5),
                timeout: Duration::from_secs(1),
                unhealthy_threshold: 2,
                healthy_threshold: 1,
                expected_statuses: vec![200, 204],
            }),
            outlier_detection: Some(ir::OutlierDetection {
                consecutive_5xx: 3,
                interval: Duration::from_secs(1),
                base_ejection_time: Duration::from_secs(30),
                max_ejection_percent: 50,
            }),
            tcp_keepalive: Some(ir::TcpKeepalive {
                probes: Some(3),
                idle_time_secs: None,
                interval_secs: Some(10),
            }),
            judged_by: Some("shop".into()),
            ..ClusterSettings::default()
        };
        assert_eq!(
            settings_key(&settings, None).as_deref(),
            Some(
                "protocol=h1;tls=-;lb=round-robin;connect=3000ms;breakers=-;\
                 health=path:/healthz,host:quote.shop,every:5000ms,timeout:1000ms,unhealthy:2,healthy:1,statuses:200/204;\
                 outliers=5xx:3,every:1000ms,ejection:30000ms,max:50%;\
                 keepalive=probes:3,idle:-,every:10;judged-by=shop"
            )
        );
    }
}
