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
    /// Which route serves a request and why no other did, from the route
    /// table Envoy was sent: no traffic needed.
    #[command(after_long_help = crate::inspect::explain::EXAMPLES)]
    Explain(crate::inspect::explain::ExplainArgs),
    /// Each Gateway's route table: per listener and host, the routes in the
    /// order Envoy tries them, with their owner, match, upstream and status.
    #[command(after_long_help = crate::inspect::routes::EXAMPLES)]
    Routes(crate::inspect::routes::RoutesArgs),
    /// Convert Emissary-ingress (getambassador.io) objects into Legate
    /// objects, saying what changed or was dropped, per object.
    #[command(after_long_help = crate::import::EXAMPLES)]
    Import(crate::import::ImportArgs),
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
    pub xds_ca: XdsCaArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// The lifetimes of the xDS CA and of the certificates it signs (with
/// `--xds-tls`). Durations are a number and a unit, several of them added:
/// `90s`, `15m`, `12h`, `30d`, `1h30m`.
#[derive(Debug, Args)]
pub struct XdsCaArgs {
    /// How long a new xDS CA is valid.
    #[arg(long, env = "LEGATE_XDS_CA_VALIDITY", default_value = "365d", value_parser = parse_duration)]
    pub xds_ca_validity: std::time::Duration,
    /// When the signing CA has this long left, the next CA is made and trusted
    /// (every Gateway's certificate Secret gets it, and its Envoys roll); it
    /// signs once every Gateway's Secret has carried it for --xds-ca-settle.
    #[arg(long, env = "LEGATE_XDS_CA_ROTATE_BEFORE", default_value = "30d", value_parser = parse_duration)]
    pub xds_ca_rotate_before: std::time::Duration,
    /// How long the xDS server's certificate and each Gateway's client
    /// certificate are valid (never longer than the CA that signs them). A
    /// CA that stopped signing stays trusted this long (at most until it expires).
    #[arg(long, env = "LEGATE_XDS_LEAF_VALIDITY", default_value = "30d", value_parser = parse_duration)]
    pub xds_leaf_validity: std::time::Duration,
    /// A certificate with this long left is reissued (a Gateway's Envoys roll).
    /// Shorter than --xds-leaf-validity and --xds-ca-rotate-before.
    #[arg(long, env = "LEGATE_XDS_LEAF_RENEW_BEFORE", default_value = "10d", value_parser = parse_duration)]
    pub xds_leaf_renew_before: std::time::Duration,
    /// How often each replica re-reads the CA Secret and takes the rotation's
    /// steps when due, and the leader looks for certificates to reissue (each
    /// replica also watches the CA Secret and follows a change at once).
    #[arg(long, env = "LEGATE_XDS_CA_CHECK_INTERVAL", default_value = "24h", value_parser = parse_duration)]
    pub xds_ca_check_interval: std::time::Duration,
    /// How long every Gateway's certificate Secret must have carried the next
    /// CA before it signs: time for their Envoy pods to roll.
    #[arg(long, env = "LEGATE_XDS_CA_SETTLE", default_value = "1h", value_parser = parse_duration)]
    pub xds_ca_settle: std::time::Duration,
}

impl XdsCaArgs {
    /// The lifetimes the xDS CA works with.
    pub fn lifetimes(&self) -> crate::pki::Lifetimes {
        // Flags are parsed to at most u64::MAX seconds; beyond time's range, the largest.
        let time = |d: std::time::Duration| time::Duration::try_from(d).unwrap_or(time::Duration::MAX);
        crate::pki::Lifetimes {
            ca_validity: time(self.xds_ca_validity),
            ca_rotate_before: time(self.xds_ca_rotate_before),
            leaf_validity: time(self.xds_leaf_validity),
            leaf_renew_before: time(self.xds_leaf_renew_before),
            check_interval: time(self.xds_ca_check_interval),
            settle: time(self.xds_ca_settle),
        }
    }
}

/// A duration as a number and a unit (`s`, `m`, `h`, `d`), or several added
/// (`1h30m`); `0` alone is zero.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let invalid = || format!("{text:?} is not a duration such as 90s, 15m, 12h, 30d or 1h30m");
    let mut total: u64 = 0;
    let mut rest = text;
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let (number, after) = rest.split_at(digits);
        let unit_len = after.len() - after.trim_start_matches(|c: char| c.is_ascii_alphabetic()).len();
        let (unit, after) = after.split_at(unit_len);
        let number: u64 = number.parse().map_err(|_| invalid())?;
        let seconds = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(invalid()),
        };
        total = number
            .checked_mul(seconds)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(invalid)?;
        rest = after;
    }
    Ok(std::time::Duration::from_secs(total))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_person_writes_them() {
        let secs = std::time::Duration::from_secs;
        assert_eq!(parse_duration("90s"), Ok(secs(90)));
        assert_eq!(parse_duration("30d"), Ok(secs(30 * 86_400)));
        assert_eq!(parse_duration("1h30m"), Ok(secs(5400)));
        assert_eq!(parse_duration("0"), Ok(secs(0)));
        for bad in ["", "10", "s", "5y", "1.5h", "-3s", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_xds_ca_defaults_are_the_lifetimes_legate_always_had() {
        let cli = Cli::try_parse_from(["legate", "run"]).expect("run parses with no flags");
        let Command::Run(args) = cli.command else {
            panic!("not run");
        };
        assert_eq!(args.xds_ca.lifetimes(), crate::pki::Lifetimes::default());
        let cli = Cli::try_parse_from(["legate", "run", "--xds-ca-validity", "3m", "--xds-ca-settle=5s"])
            .expect("run parses");
        let Command::Run(args) = cli.command else {
            panic!("not run");
        };
        assert_eq!(args.xds_ca.lifetimes().ca_validity, time::Duration::minutes(3));
        assert_eq!(args.xds_ca.lifetimes().settle, time::Duration::seconds(5));
    }
}
