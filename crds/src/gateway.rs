//! Gateway: an Envoy fleet, its listeners, which namespaces may attach routes
//! to it, and defaults for those routes.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{
    CircuitBreakers, Cors, Duration, HealthCheck, LoadBalancer, OutlierDetection, RetryPolicy, TcpKeepalive,
};
use crate::http::HttpOptions;
use crate::observability::{AccessLog, Tracing};

/// The Envoy image a Gateway runs unless it names another: the release the tests use.
pub const DEFAULT_ENVOY_IMAGE: &str = "docker.io/envoyproxy/envoy:v1.40.0";

/// A Gateway is a fleet of Envoy proxies that Legate deploys and configures.
/// Mappings, TCPMappings and TLSContexts attach to it; its status says whether
/// its Envoys run and have accepted the current configuration.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "legate.dev",
    version = "v1alpha1",
    kind = "Gateway",
    namespaced,
    status = "GatewayStatus",
    shortname = "lgw",
    category = "legate",
    doc = "A fleet of Envoy proxies that Legate deploys and configures; routes attach to it.",
    printcolumn(
        name = "Listeners",
        type_ = "string",
        json_path = ".spec.listeners[*].port",
        description = "Ports the Envoys listen on"
    ),
    printcolumn(
        name = "Ready",
        type_ = "integer",
        json_path = ".status.readyReplicas",
        description = "Envoy pods ready"
    ),
    printcolumn(
        name = "Programmed",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Programmed\")].status"
    ),
    printcolumn(name = "Address", type_ = "string", json_path = ".status.addresses[0].value"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    // The Envoy Service is `<name>-envoy`, a DNS label of 63 characters at most.
    validation = Rule::new("self.metadata.name.size() <= 57")
        .message("a Gateway's name may have at most 57 characters (its Envoy Service is named <name>-envoy)")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.serviceType == 'NodePort' || self.serviceType == 'LoadBalancer' || self.listeners.all(l, !has(l.nodePort))")
    .message("listeners may set nodePort only when serviceType is NodePort or LoadBalancer")
    .field_path(".listeners"))]
pub struct GatewaySpec {
    /// How many Envoy pods to run. Ignored when `autoscaling` is set: the
    /// HorizontalPodAutoscaler (or whoever scales the Envoy Deployment) decides then.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: i32,
    /// The Envoy container image. Defaults to the Envoy release Legate is tested with.
    #[serde(default = "default_image")]
    #[schemars(length(min = 1, max = 512))]
    pub image: String,
    /// CPU and memory requests and limits of each Envoy container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Schedule the Envoy pods only on nodes with these labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations of the Envoy pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// How the Envoys are exposed: ClusterIP, NodePort or LoadBalancer (the default).
    #[serde(default)]
    pub service_type: ServiceType,
    /// Annotations for the Envoys' Service, for example to configure a cloud load balancer.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub service_annotations: BTreeMap<String, String>,
    /// The ports the Envoys listen on. Defaults to `http` on 8080 (HTTP) and `https` on 8443 (HTTPS).
    #[serde(default = "default_listeners")]
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(
        merge_strategy = ListMerge::Map(vec!["name".into()]),
        validation = Rule::new("self.all(a, self.exists_one(b, b.port == a.port))").message("listener ports must be unique"),
    )]
    pub listeners: Vec<Listener>,
    /// Which namespaces may attach routes to this Gateway. Defaults to all.
    #[serde(default)]
    pub allowed_routes: AllowedRoutes,
    /// Defaults for every route attached to this Gateway; a route's own settings win.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<RouteDefaults>,
    /// The Envoys' access log: on their stdout (default: one JSON object per request),
    /// and to an OpenTelemetry collector with `otlp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_log: Option<AccessLog>,
    /// Envoy statistics per Mapping: with `PerMapping`, every route of a Mapping counts its
    /// requests under `legate_<namespace>_<name>` (served as Prometheus text on the probe
    /// port's `/stats/prometheus`). Off by default: Envoy builds these statistics again for
    /// every route of a listener whenever one route changes, so on a Gateway with many
    /// Mappings each route change reaches the Envoys later (about 2x at 1,000 Mappings).
    #[serde(default, skip_serializing_if = "RouteStats::is_off")]
    pub route_stats: RouteStats,
    /// Send a trace span of every sampled request to an OpenTelemetry (the default) or
    /// Zipkin collector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<Tracing>,
    /// What the HTTP and HTTPS listeners do to every request and response: compression,
    /// gRPC-Web, a request body limit, the `server` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpOptions>,
    /// Hosts this Gateway assigns to a namespace, whoever claimed them first. Without an
    /// entry, a host belongs to the namespace whose oldest Mapping, TLSContext or TCPMapping
    /// names it. A glob (`*.shop.example.com`) assigns every name under it; the most
    /// specific entry wins. Each hostname may be listed once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["hostname".into()]))]
    pub host_owners: Vec<HostOwner>,
    /// Size the Envoy fleet by CPU use with a HorizontalPodAutoscaler (autoscaling/v2)
    /// that Legate creates and owns. `replicas` is then ignored: the Envoy Deployment's
    /// count is the autoscaler's, and Legate does not set it (nor undo a `kubectl
    /// scale`). Removing this field deletes the autoscaler, and `replicas` applies again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Autoscaling>,
}

/// How a HorizontalPodAutoscaler sizes a Gateway's Envoy fleet.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.minReplicas >= 1")
        .message("minReplicas must be at least 1")
        .field_path(".minReplicas"),
    validation = Rule::new("self.maxReplicas >= self.minReplicas")
        .message("maxReplicas must be at least minReplicas (2 when not set)")
        .field_path(".maxReplicas"),
    validation = Rule::new("self.targetCPUUtilizationPercentage >= 1 && self.targetCPUUtilizationPercentage <= 100")
        .message("targetCPUUtilizationPercentage must be between 1 and 100")
        .field_path(".targetCPUUtilizationPercentage"),
)]
pub struct Autoscaling {
    /// The fewest Envoy pods to run, at least 1. Default 2, so that one pod can go away
    /// (a node drain, a rollout) while another serves.
    #[serde(default = "default_min_replicas")]
    #[schemars(range(max = 1000))]
    pub min_replicas: i32,
    /// The most Envoy pods to run, at least minReplicas (at most 1000).
    #[schemars(range(max = 1000))]
    pub max_replicas: i32,
    /// The average CPU use the autoscaler aims for, in percent (1-100) of each Envoy
    /// container's CPU request (the default resources request 100m; with your own
    /// `resources`, request CPU). Default 80. Needs the cluster's metrics API
    /// (metrics-server).
    #[serde(default = "default_target_cpu", rename = "targetCPUUtilizationPercentage")]
    pub target_cpu_utilization_percentage: i32,
}

fn default_min_replicas() -> i32 {
    2
}

fn default_target_cpu() -> i32 {
    80
}

/// A host (or glob) and the namespace it belongs to on this Gateway.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostOwner {
    /// A hostname, or a glob with a leading `*.` label (`*` is not a host anyone can own).
    #[schemars(length(min = 1, max = 253), regex(pattern = HOST_OWNER_PATTERN))]
    pub hostname: String,
    /// The namespace whose objects alone may route this host.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub namespace: String,
}

/// A hostname or a `*.` glob: [`crate::mapping::HOSTNAME_PATTERN`] without the lone `*`.
pub const HOST_OWNER_PATTERN: &str =
    r"^(\*\.)?[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$";

fn default_replicas() -> i32 {
    2
}

fn default_image() -> String {
    DEFAULT_ENVOY_IMAGE.to_string()
}

fn default_listeners() -> Vec<Listener> {
    vec![
        Listener {
            name: "http".into(),
            port: 8080,
            protocol: Protocol::Http,
            node_port: None,
            trusted_hops: None,
            proxy_protocol: false,
        },
        Listener {
            name: "https".into(),
            port: 8443,
            protocol: Protocol::Https,
            node_port: None,
            trusted_hops: None,
            proxy_protocol: false,
        },
    ]
}

/// How the Envoys' Service is exposed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
pub enum ServiceType {
    /// Reachable inside the cluster only.
    ClusterIP,
    /// On a port of every node.
    NodePort,
    /// Through the cloud's load balancer.
    #[default]
    LoadBalancer,
}

/// One port the Envoys listen on.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.trustedHops) || self.protocol == 'HTTP' || self.protocol == 'HTTPS'")
        .message("trustedHops applies to HTTP and HTTPS listeners (X-Forwarded-For is an HTTP header)")
        .field_path(".trustedHops"),
)]
pub struct Listener {
    /// Name of the listener, unique in the Gateway (a DNS label).
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// The port Envoy listens on (1-65535).
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// HTTP, HTTPS (TLS terminated by Envoy, then HTTP), TCP or TLS (routed by SNI).
    pub protocol: Protocol,
    /// The node port for this listener when serviceType is NodePort or LoadBalancer (30000-32767).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 30000, max = 32767))]
    pub node_port: Option<i32>,
    /// How many proxies in front of the Envoys (load balancers, CDNs) are trusted to
    /// append to X-Forwarded-For (0-10, default 0). With N, the client is the Nth address
    /// from the right of X-Forwarded-For (after Envoy appends its peer), and
    /// X-Forwarded-Proto is believed, so a load balancer that terminates TLS is not
    /// redirected back to HTTPS. With 0, the client is the connection's peer and any
    /// X-Forwarded-Proto is replaced. Set it only when every connection comes through
    /// those proxies: otherwise a client chooses its own address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10))]
    pub trusted_hops: Option<u32>,
    /// Every connection starts with a PROXY protocol header (v1 or v2), as a load
    /// balancer sends it; the client is the address it names. A connection without one
    /// is closed. Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub proxy_protocol: bool,
}

/// What a listener speaks.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Protocol {
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "HTTPS")]
    Https,
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "TLS")]
    Tls,
}

/// Which namespaces may attach routes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct AllowedRoutes {
    /// The namespaces whose routes this Gateway admits.
    #[serde(default)]
    pub namespaces: RouteNamespaces,
}

/// A set of namespaces.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.from != 'Selector' || has(self.selector)")
    .message("selector is required when from is Selector")
    .field_path(".selector"))]
pub struct RouteNamespaces {
    /// All (the default), Same (the Gateway's namespace) or Selector (namespaces matching selector).
    #[serde(default)]
    pub from: FromNamespaces,
    /// The labels of admitted namespaces, when from is Selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// Where routes may come from.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
pub enum FromNamespaces {
    /// Every namespace.
    #[default]
    All,
    /// The Gateway's own namespace.
    Same,
    /// Namespaces whose labels match the selector.
    Selector,
}

/// Settings that apply to every route of a Gateway unless the route sets its own.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct RouteDefaults {
    /// Timeout of a whole request, such as "3s".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Retries for failed requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicy>,
    /// CORS for browser clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Cors>,
    /// Limits on the load sent to each upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_breakers: Option<CircuitBreakers>,
    /// Load balancing across each upstream's endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancer>,
    /// Active health checks: every Envoy asks each endpoint of each upstream over HTTP, and
    /// an endpoint that fails gets no request until it passes again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// Passive health checks: an endpoint of each upstream that answers 5xx several times in
    /// a row is ejected for a while.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
    /// TCP keepalive on the connections to each upstream, so that a NAT or load balancer in
    /// between does not drop idle pooled connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_keepalive: Option<TcpKeepalive>,
}

/// Whether a Gateway's Envoys count requests per Mapping.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
pub enum RouteStats {
    /// No statistics per route (the listener's and each upstream's still count).
    #[default]
    Off,
    /// Every route of a Mapping counts under `legate_<namespace>_<name>`.
    PerMapping,
}

impl RouteStats {
    fn is_off(&self) -> bool {
        *self == RouteStats::Off
    }
}

/// What Legate observed of a Gateway.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayStatus {
    /// The generation of the spec that this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Accepted, Programmed and Available.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// Where clients reach the Gateway.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<GatewayAddress>,
    /// Envoy pods that exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Envoy pods that are ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Envoys connected to Legate over xDS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxies: Option<i32>,
    /// The configuration version last sent to the Envoys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_version: Option<String>,
}

/// One address of a Gateway.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayAddress {
    /// IPAddress or Hostname.
    #[serde(rename = "type")]
    pub type_: String,
    /// The address.
    pub value: String,
}
