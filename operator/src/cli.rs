//! The command line: every flag has an environment variable fallback, so the
//! same binary is configured by flags locally and by env in a Deployment.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "legate",
    version,
    about = "Kubernetes-native API gateway operator: Legate resources in, Envoy configuration out"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the operator: watch Legate resources, serve xDS, manage Envoy fleets.
    // A flag given twice takes its last value, as with kubectl and most daemons.
    #[command(args_override_self = true)]
    Run(Box<RunArgs>),
    /// Print the CustomResourceDefinitions as YAML, or write one file per kind.
    Crds {
        /// Write one file per kind into this directory instead of printing.
        #[arg(long)]
        write: Option<PathBuf>,
    },
    /// Print the Envoy bootstrap for a Gateway's proxies.
    Bootstrap(BootstrapArgs),
    /// Print the xDS each Gateway's Envoys would get and every object's
    /// verdict, for objects read from files: no cluster needed.
    Translate(crate::translate::TranslateArgs),
    /// Print the version of legate, its API and the Envoy it targets.
    Version,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Kubeconfig to use; without it, the in-cluster service account (or ~/.kube/config).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "LEGATE_NAMESPACE")]
    pub namespace: Option<String>,
    /// Where the xDS (ADS) server listens.
    #[arg(long, env = "LEGATE_XDS_LISTEN", default_value = "0.0.0.0:18000")]
    pub xds_listen: SocketAddr,
    /// The xDS address written into Envoy bootstraps, host:port (in a cluster, the operator Service's DNS name).
    #[arg(
        long,
        env = "LEGATE_XDS_ADVERTISE",
        default_value = "legate-xds.legate-system.svc:18000"
    )]
    pub xds_advertise: String,
    /// Where /healthz and /readyz are served.
    #[arg(long, env = "LEGATE_HEALTH_LISTEN", default_value = "0.0.0.0:8081")]
    pub health_listen: SocketAddr,
    /// Where /metrics (Prometheus text format) is served.
    #[arg(long, env = "LEGATE_METRICS_LISTEN", default_value = "0.0.0.0:9090")]
    pub metrics_listen: SocketAddr,
    /// The address Envoy listeners bind (0.0.0.0 in pods; 127.0.0.1 when Envoy runs on this machine).
    #[arg(long, env = "LEGATE_ENVOY_LISTEN_ADDRESS", default_value = "0.0.0.0")]
    pub envoy_listen_address: std::net::IpAddr,
    /// Let a `service` name a loopback host (127.0.0.0/8, ::1, localhost):
    /// only for a local stack whose upstreams run beside Envoy. Off, such a
    /// Mapping is refused, as Envoy's admin API listens there.
    #[arg(long, env = "LEGATE_ALLOW_LOOPBACK_UPSTREAMS", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub allow_loopback_upstreams: bool,
    /// Elect a leader among replicas with a Lease; only the leader writes status and manages fleets.
    #[arg(long, env = "LEGATE_LEADER_ELECT", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub leader_elect: bool,
    /// The operator's own namespace: its leader Lease and its xDS CA live there.
    #[arg(long, env = "POD_NAMESPACE", default_value = "legate-system")]
    pub operator_namespace: String,
    /// Serve xDS over mutual TLS: every Envoy presents the certificate Legate
    /// issued for its Gateway and gets that Gateway's configuration only.
    #[arg(long, env = "LEGATE_XDS_TLS", default_value_t = true, action = clap::ArgAction::Set)]
    pub xds_tls: bool,
    /// The name of the leader Lease.
    #[arg(long, env = "LEGATE_LEADER_ELECTION_ID", default_value = "legate-leader")]
    pub leader_election_id: String,
    /// This replica's identity in the Lease (in a cluster, the pod name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Give Envoy pods the probe listener (port 19001) and their admin API on a Unix socket (no TCP port).
    /// Turn off when running Envoys on this machine, where fixed ports would collide (admin: a free loopback port).
    #[arg(long, env = "LEGATE_ENVOY_PROBES", default_value_t = true, action = clap::ArgAction::Set)]
    pub envoy_probes: bool,
    /// Manage the Envoy fleets (Deployments, Services...). Tests that run Envoy locally may turn this off.
    #[arg(long, env = "LEGATE_MANAGE_FLEETS", default_value_t = true, action = clap::ArgAction::Set)]
    pub manage_fleets: bool,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// The Gateway, as namespace/name.
    #[arg(long)]
    pub gateway: String,
    /// The proxy's node id.
    #[arg(long, default_value = "envoy")]
    pub node: String,
    /// The xDS address, host:port.
    #[arg(
        long,
        env = "LEGATE_XDS_ADVERTISE",
        default_value = "legate-xds.legate-system.svc:18000"
    )]
    pub xds_advertise: String,
    /// Use state-of-the-world ADS instead of delta.
    #[arg(long)]
    pub sotw: bool,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log format.
    #[arg(long, env = "LEGATE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter, such as `info` or `legate=debug,kube=warn`.
    #[arg(long, env = "LEGATE_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `host:port` split, for the bootstrap.
pub fn split_host_port(address: &str) -> Result<(String, u16), String> {
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| format!("{address:?} is not host:port"))?;
    let port = port
        .parse()
        .map_err(|_| format!("{address:?}: {port:?} is not a port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("{address:?} has no host"));
    }
    Ok((host.to_string(), port))
}
