//! How Envoy talks to an upstream, and the canonical key of those settings
//! that names a cluster apart from the default one of the same destination.

use std::time::Duration;

use legate_xds::ir;

/// How Envoy talks to an upstream, apart from TLS (which the resolver works
/// out from the reference): what a Mapping or the Gateway's defaults ask
/// for, or what a Gateway-wide service's protocol needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClusterSettings {
    pub protocol: ir::UpstreamProtocol,
    pub load_balancing: ir::LoadBalancing,
    pub connect_timeout: Duration,
    pub circuit_breakers: Option<ir::CircuitBreakers>,
}

impl Default for ClusterSettings {
    /// Envoy's defaults, as [`ir::Upstream::endpoints`] has them.
    fn default() -> ClusterSettings {
        ClusterSettings {
            protocol: ir::UpstreamProtocol::Http1,
            load_balancing: ir::LoadBalancing::RoundRobin,
            connect_timeout: Duration::from_secs(3),
            circuit_breakers: None,
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
    Some(format!(
        "protocol={protocol};tls={tls};lb={lb};connect={}ms;breakers={breakers}",
        settings.connect_timeout.as_millis()
    ))
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
}
