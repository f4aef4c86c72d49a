//! The Envoy bootstrap of a Gateway's proxies: who they are, where the
//! control plane is, and the limits that keep one overloaded Envoy alive.
//!
//! Everything else (listeners, routes, clusters, certificates) comes over ADS.

use std::fmt::Write as _;

use crate::server::Protocol;

/// The name of the static cluster that points at Legate's ADS server.
pub const XDS_CLUSTER: &str = "legate-xds";

/// The node metadata key (boolean) by which a delta proxy asks for virtual
/// hosts over VHDS. A proxy that does not ask gets each route config whole.
pub const VHDS_NODE_METADATA: &str = "legate.dev/vhds";

/// What the bootstrap of one Gateway's proxies says.
#[derive(Clone, PartialEq, Debug)]
pub struct BootstrapConfig {
    /// `node.id`: unique per proxy (the pod name, in Kubernetes).
    pub node_id: String,
    /// `node.cluster`: the Gateway (`namespace/name`) the proxy serves.
    pub gateway: String,
    /// The ADS server: a DNS name or an IP address, and a port.
    pub xds_host: String,
    pub xds_port: u16,
    /// Delta ADS unless told otherwise: it sends only what changed.
    pub protocol: Protocol,
    /// Over delta ADS, ask for virtual hosts over VHDS ([`VHDS_NODE_METADATA`]),
    /// so that a change to one host's routes sends that host's routes only
    /// (when the Gateway's translator uses VHDS). Ignored over state of the
    /// world, which Envoy's VHDS does not support.
    pub vhds: bool,
    /// The admin API listens on 127.0.0.1 only; 0 picks a free port. Unused
    /// when `admin_socket` is set.
    pub admin_port: u16,
    /// Put the admin API on this Unix socket (mode 0600) instead of TCP:
    /// what a Gateway's pods do, because any tenant's route can send traffic
    /// to 127.0.0.1 (a DNS name resolving to loopback), and the admin API
    /// must not be one request away from it. `None` (tests, local runs):
    /// TCP on `127.0.0.1:admin_port`.
    pub admin_socket: Option<String>,
    /// mTLS towards the control plane (files mounted into the pod).
    pub xds_tls: Option<XdsTls>,
    /// A listener on all addresses for the kubelet's probes: `/healthz` (the
    /// process answers) and `/ready` (the admin API's readiness: listeners
    /// received, asked of the admin API through [`ADMIN_CLUSTER`]). Needs
    /// `admin_socket` or a fixed `admin_port`.
    pub health_port: Option<u16>,
    pub limits: OverloadLimits,
}

/// Paths of the PEM files for mTLS to the control plane.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct XdsTls {
    pub ca_path: String,
    pub cert_path: String,
    pub key_path: String,
}

/// Overload manager limits.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct OverloadLimits {
    /// Heap size at which Envoy starts shedding (shrinks heap at 95 %, stops
    /// accepting requests at 98 %).
    pub max_heap_bytes: u64,
    /// Downstream connections across all listeners.
    pub max_downstream_connections: u64,
}

impl Default for OverloadLimits {
    fn default() -> Self {
        OverloadLimits {
            max_heap_bytes: 1 << 30,
            max_downstream_connections: 50_000,
        }
    }
}

impl BootstrapConfig {
    /// Delta ADS over plaintext, admin on a free 127.0.0.1 port, default limits.
    pub fn new(node_id: &str, gateway: &str, xds_host: &str, xds_port: u16) -> BootstrapConfig {
        BootstrapConfig {
            node_id: node_id.to_owned(),
            gateway: gateway.to_owned(),
            xds_host: xds_host.to_owned(),
            xds_port,
            protocol: Protocol::Delta,
            vhds: true,
            admin_port: 0,
            admin_socket: None,
            xds_tls: None,
            health_port: None,
            limits: OverloadLimits::default(),
        }
    }

    /// The bootstrap as YAML (what goes into the Gateway's ConfigMap).
    pub fn to_yaml(&self) -> String {
        let api_type = match self.protocol {
            Protocol::Delta => "DELTA_GRPC",
            Protocol::StateOfTheWorld => "GRPC",
        };
        // An IP address needs no resolution; anything else is a DNS name.
        let discovery = if self.xds_host.parse::<std::net::IpAddr>().is_ok() {
            "STATIC"
        } else {
            "STRICT_DNS"
        };
        let metadata = if self.vhds && self.protocol == Protocol::Delta {
            format!("  metadata: {{ {}: true }}\n", quote(VHDS_NODE_METADATA))
        } else {
            String::new()
        };
        let mut y = String::new();
        let _ = write!(
            y,
            r#"node:
  id: {node}
  cluster: {gateway}
{metadata}admin:
  address: {admin_listener}
dynamic_resources:
  ads_config:
    api_type: {api_type}
    transport_api_version: V3
    set_node_on_first_message_only: true
    grpc_services:
    # Retry the stream every 2 s at most (Envoy's default backs off to 30 s):
    # after a leader change, proxies find the new leader within the grace
    # in which it holds back NoProxies.
    - envoy_grpc:
        cluster_name: {xds_cluster}
        retry_policy: {{ retry_back_off: {{ base_interval: 0.25s, max_interval: 2s }} }}
  cds_config: {{ ads: {{}}, resource_api_version: V3 }}
  lds_config: {{ ads: {{}}, resource_api_version: V3 }}
static_resources:
{health_listener}  clusters:
  - name: {xds_cluster}
    type: {discovery}
    connect_timeout: 5s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options:
            connection_keepalive: {{ interval: 30s, timeout: 10s }}
    load_assignment:
      cluster_name: {xds_cluster}
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {{ address: {host}, port_value: {port} }}
"#,
            health_listener = self.health_listener(),
            node = quote(&self.node_id),
            gateway = quote(&self.gateway),
            admin_listener = self.admin_address(AdminSide::Listener),
            xds_cluster = XDS_CLUSTER,
            host = quote(&self.xds_host),
            port = self.xds_port,
        );
        if let Some(tls) = &self.xds_tls {
            let _ = write!(
                y,
                r#"    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        common_tls_context:
          tls_certificates:
          - certificate_chain: {{ filename: {cert} }}
            private_key: {{ filename: {key} }}
          validation_context:
            trusted_ca: {{ filename: {ca} }}
"#,
                cert = quote(&tls.cert_path),
                key = quote(&tls.key_path),
                ca = quote(&tls.ca_path),
            );
        }
        if self.health_port.is_some() {
            let _ = write!(
                y,
                r#"  - name: {ADMIN_CLUSTER}
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: {ADMIN_CLUSTER}
      endpoints:
      - lb_endpoints:
        - endpoint:
            address: {admin}
"#,
                admin = self.admin_address(AdminSide::Endpoint),
            );
        }
        let _ = write!(
            y,
            r#"overload_manager:
  refresh_interval: 0.25s
  resource_monitors:
  - name: envoy.resource_monitors.fixed_heap
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig
      max_heap_size_bytes: {heap}
  - name: envoy.resource_monitors.global_downstream_max_connections
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig
      max_active_downstream_connections: {connections}
  actions:
  - name: envoy.overload_actions.shrink_heap
    triggers:
    - name: envoy.resource_monitors.fixed_heap
      threshold: {{ value: 0.95 }}
  - name: envoy.overload_actions.stop_accepting_requests
    triggers:
    - name: envoy.resource_monitors.fixed_heap
      threshold: {{ value: 0.98 }}
"#,
            heap = self.limits.max_heap_bytes,
            connections = self.limits.max_downstream_connections,
        );
        y
    }
}

/// Which end of the admin API an address is written for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum AdminSide {
    /// `admin.address`: where Envoy listens (the socket's mode applies).
    Listener,
    /// The endpoint of [`ADMIN_CLUSTER`]: where the probe listener connects.
    Endpoint,
}

/// The admin socket's mode, 0600: only Envoy's own user may connect (a
/// socket needs write permission to connect); without a mode Envoy leaves
/// it to the umask (0755 under the usual 022). Written in decimal (384),
/// because YAML 1.2 reads `0600` as the decimal 600.
const ADMIN_SOCKET_MODE: u32 = 0o600;

impl BootstrapConfig {
    /// The admin API's address (a YAML flow mapping). One function writes
    /// both ends, so the probe listener always reaches the admin API where
    /// it listens.
    fn admin_address(&self, side: AdminSide) -> String {
        match (&self.admin_socket, side) {
            (Some(path), AdminSide::Listener) => format!(
                "{{ pipe: {{ path: {}, mode: {ADMIN_SOCKET_MODE} }} }}",
                quote(path)
            ),
            (Some(path), AdminSide::Endpoint) => format!("{{ pipe: {{ path: {} }} }}", quote(path)),
            (None, _) => format!(
                "{{ socket_address: {{ address: 127.0.0.1, port_value: {} }} }}",
                self.admin_port
            ),
        }
    }

    /// The probe listener, when asked for (YAML under `static_resources`):
    /// `/healthz`, `/ready` and the stats in Prometheus format, and nothing
    /// else of the admin API (a path match, so a query string passes but
    /// `/stats` or `/config_dump` find no route and answer 404).
    fn health_listener(&self) -> String {
        let Some(port) = self.health_port else {
            return String::new();
        };
        format!(
            r#"  listeners:
  - name: legate-health
    address:
      socket_address: {{ address: 0.0.0.0, port_value: {port} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: legate_health
          route_config:
            virtual_hosts:
            - name: health
              domains: ["*"]
              routes:
              - match: {{ path: /ready }}
                route: {{ cluster: {ADMIN_CLUSTER} }}
              - match: {{ path: {PROMETHEUS_PATH} }}
                route: {{ cluster: {ADMIN_CLUSTER} }}
              - match: {{ path: /healthz }}
                direct_response: {{ status: 200, body: {{ inline_string: "ok" }} }}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
"#
        )
    }
}

/// Where the probe listener serves Envoy's stats in Prometheus text format
/// (the admin API's own path, forwarded as is): what the fleet's scrape
/// annotations point at.
pub const PROMETHEUS_PATH: &str = "/stats/prometheus";

/// The static cluster of the probe listener: the admin API, on its socket
/// or on loopback.
pub const ADMIN_CLUSTER: &str = "legate-admin";

/// A YAML double-quoted scalar (JSON string syntax, which YAML accepts).
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_delta_ads_with_admin_on_loopback() {
        let y = BootstrapConfig::new("gw-abc", "shop/edge", "legate.legate-system.svc", 18000).to_yaml();
        assert!(y.contains("id: \"gw-abc\"\n  cluster: \"shop/edge\""));
        assert!(y.contains("api_type: DELTA_GRPC"));
        assert!(y.contains("  metadata: { \"legate.dev/vhds\": true }\n"));
        assert!(y.contains("socket_address: { address: 127.0.0.1, port_value: 0 }"));
        assert!(y.contains("type: STRICT_DNS"));
        assert!(y.contains("connection_keepalive"));
        assert!(y.contains("max_active_downstream_connections: 50000"));
        assert!(
            !y.contains("transport_socket"),
            "plaintext unless TLS is configured"
        );
    }

    #[test]
    fn state_of_the_world_static_address_and_tls() {
        let mut c = BootstrapConfig::new("n", "g", "127.0.0.1", 1);
        c.protocol = Protocol::StateOfTheWorld;
        c.xds_tls = Some(XdsTls {
            ca_path: "/etc/legate/ca.crt".into(),
            cert_path: "/etc/legate/tls.crt".into(),
            key_path: "/etc/legate/tls.key".into(),
        });
        let y = c.to_yaml();
        assert!(y.contains("api_type: GRPC\n"));
        assert!(!y.contains("vhds"), "VHDS needs delta");
        assert!(y.contains("type: STATIC"));
        assert!(y.contains("trusted_ca: { filename: \"/etc/legate/ca.crt\" }"));
    }

    #[test]
    fn the_probe_listener_asks_the_admin_api_on_loopback_by_default() {
        let mut c = BootstrapConfig::new("n", "g", "xds.example", 1);
        c.admin_port = 19000;
        c.health_port = Some(19001);
        let y = c.to_yaml();
        let admin = "{ socket_address: { address: 127.0.0.1, port_value: 19000 } }";
        assert!(y.contains(&format!("admin:\n  address: {admin}\n")), "{y}");
        assert!(y.contains(&format!("- name: {ADMIN_CLUSTER}")), "{y}");
        assert_eq!(y.matches(admin).count(), 2, "the admin API and its cluster: {y}");
    }

    #[test]
    fn the_probe_listener_forwards_only_readiness_and_prometheus_stats_to_the_admin_api() {
        let mut c = BootstrapConfig::new("n", "g", "xds.example", 1);
        c.admin_port = 19000;
        c.health_port = Some(19001);
        let y = c.to_yaml();
        let to_admin = format!("route: {{ cluster: {ADMIN_CLUSTER} }}");
        assert_eq!(y.matches(&to_admin).count(), 2, "{y}");
        assert!(
            y.contains(&format!(
                "- match: {{ path: /stats/prometheus }}\n                {to_admin}\n"
            )),
            "an exact path, so `?usedonly` passes and `/stats` does not: {y}"
        );
        assert_eq!(
            y.matches("- match: { path: ").count(),
            3,
            "/ready, /stats/prometheus, /healthz, no prefix route opens more of the admin API: {y}"
        );
        assert!(!y.contains("match: { prefix"), "{y}");
        assert!(
            !BootstrapConfig::new("n", "g", "xds.example", 1)
                .to_yaml()
                .contains(PROMETHEUS_PATH),
            "without a probe listener, no stats route"
        );
    }

    #[test]
    fn on_a_socket_the_admin_api_has_no_tcp_address_and_its_cluster_follows() {
        let mut c = BootstrapConfig::new("n", "g", "xds.example", 1);
        c.admin_port = 19000;
        c.admin_socket = Some("/run/envoy-admin/admin.sock".into());
        c.health_port = Some(19001);
        let y = c.to_yaml();
        assert!(
            y.contains("admin:\n  address: { pipe: { path: \"/run/envoy-admin/admin.sock\", mode: 384 } }\n"),
            "{y}"
        );
        assert!(
            y.contains("address: { pipe: { path: \"/run/envoy-admin/admin.sock\" } }\n"),
            "the probe listener's cluster connects to the socket: {y}"
        );
        assert!(
            !y.contains("127.0.0.1"),
            "nothing of the admin API on loopback: {y}"
        );
        assert!(!y.contains("19000"), "admin_port is unused: {y}");
        // The probe listener and the xDS cluster are the only TCP addresses.
        assert_eq!(y.matches("socket_address").count(), 2, "{y}");
    }

    #[test]
    fn names_are_quoted() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quote("x\ny"), r#""x\ny""#);
    }
}
