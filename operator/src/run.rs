//! `legate run`: wires the watches, the engine, the xDS server, the
//! controllers, the health endpoint and the metrics port (with the
//! diagnostics page) together, and shuts them down in order on SIGTERM or
//! Ctrl-C.

use std::process::ExitCode;
use std::sync::Arc;

use legate_xds::cache::SnapshotCache;
use legate_xds::server::AdsServer;
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;

use crate::cli::{LogArgs, LogFormat, RunArgs, split_host_port};
use crate::controllers::{self, Context, FleetConfig};
use crate::diagnostics;
use crate::engine::{self, Shared};
use crate::health::{self, Readiness};
use crate::leader::{self, LeaseConfig};
use crate::liveness::Liveness;
use crate::metrics::Metrics;
use crate::world;
use crate::xds_serving::XdsServing;
use crate::xds_tls;

/// Why the operator could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "--log-level {filter:?} is not a filter ({source}); give a level such as info, or \
         directives such as legate=debug,kube=info"
    )]
    LogFilter {
        filter: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    #[error(transparent)]
    Client(#[from] crate::kubeconfig::ClientError),
    #[error("--xds-advertise {0}; give the host:port at which Envoys reach the xDS server")]
    Advertise(String),
    #[error("binding {what} on {address}: {source}; is another process listening there?")]
    Bind {
        what: &'static str,
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("setting up xDS over TLS: {0}")]
    Tls(#[source] xds_tls::TlsError),
    #[error("starting the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

pub fn main(args: RunArgs) -> ExitCode {
    if let Err(e) = init_logging(&args.log) {
        eprintln!("legate: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("legate: {}", RunError::Runtime(e));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "legate stopped");
            eprintln!("legate: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(log: &LogArgs) -> Result<(), RunError> {
    let filter = EnvFilter::try_new(&log.log_level).map_err(|source| RunError::LogFilter {
        filter: log.log_level.clone(),
        source,
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match log.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    Ok(())
}

async fn run(args: RunArgs) -> Result<(), RunError> {
    let (xds_host, xds_port) = split_host_port(&args.xds_advertise).map_err(RunError::Advertise)?;
    let client = crate::kubeconfig::client(args.kubeconfig.as_deref()).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_rx_leader = stop_rx.clone();
    let stop_rx_xds = stop_rx.clone();
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };

    let cache = SnapshotCache::new();
    let mut ads = AdsServer::new(cache.clone());
    let tls = if args.xds_tls {
        let (ca, config) = xds_tls::start(
            client.clone(),
            args.operator_namespace.clone(),
            xds_host.clone(),
            args.xds_ca.lifetimes(),
            args.namespace.clone(),
        )
        .await
        .map_err(RunError::Tls)?;
        ads = ads.with_authenticator(Arc::new(xds_tls::GatewayCertificates));
        Some((ca, config))
    } else {
        tracing::warn!(
            "xDS is served without TLS (--xds-tls=false): any client can read every Gateway's configuration"
        );
        None
    };
    let metrics = Metrics::new();
    let metrics_for_leader = metrics.clone();
    let shared = Shared::new(cache, metrics.clone());
    let xds_listener = tokio::net::TcpListener::bind(args.xds_listen)
        .await
        .map_err(|source| RunError::Bind {
            what: "the xDS server",
            address: args.xds_listen,
            source,
        })?;
    let health_listener = health::bind(args.health_listen)
        .await
        .map_err(|source| RunError::Bind {
            what: "the health endpoint",
            address: args.health_listen,
            source,
        })?;
    let metrics_listener = health::bind(args.metrics_listen)
        .await
        .map_err(|source| RunError::Bind {
            what: "the metrics endpoint",
            address: args.metrics_listen,
            source,
        })?;
    tracing::info!(metrics = %args.metrics_listen, xds = %args.xds_listen, health = %args.health_listen, advertise = %args.xds_advertise, "legate starting");

    let readiness = Arc::new(Readiness::default());
    // The tasks that must run as long as the process; `/healthz` fails
    // when one stops.
    let liveness = Liveness::new();
    let health = tokio::spawn(health::serve(
        health_listener,
        readiness.clone(),
        liveness.clone(),
        stopped(),
    ));
    liveness.spawn(
        "ACK tracker",
        engine::track_proxies_forever(ads.events(), shared.clone()),
    );
    metrics.count_refused_from(ads.refused());
    let (stores, updates) = world::start(&client, args.namespace.as_deref());
    let pages = diagnostics::router(diagnostics::Source {
        shared: shared.clone(),
        stores: stores.clone(),
    });
    let metrics_server = tokio::spawn(health::serve_metrics(
        metrics_listener,
        metrics.clone(),
        pages,
        stopped(),
    ));
    let (listed_tx, listed) = watch::channel(false);
    liveness.spawn(
        "engine",
        engine::translate_forever(
            stores.clone(),
            shared.clone(),
            world::WorldSettings {
                listen_address: args.envoy_listen_address,
                allow_loopback_upstreams: args.allow_loopback_upstreams,
            },
            listed,
        ),
    );
    {
        let stores = stores.clone();
        let readiness = readiness.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            if stores.wait_until_ready().await.is_ok() {
                let _ = listed_tx.send(true);
                // Ready means able to answer Envoys: the whole world is in the cache.
                shared.first_translation().await;
                readiness.set_ready();
                tracing::info!("every watch has listed and the first translation is done; ready");
            }
        });
    }
    let fleet = args.manage_fleets.then_some(FleetConfig {
        xds_host,
        xds_port,
        probes: args.envoy_probes,
        ca: tls.as_ref().map(|(ca, _)| ca.clone()),
    });
    let mut election_task = None;
    let leading = if args.leader_elect {
        let identity = args.identity.clone().unwrap_or_else(default_identity);
        let config = LeaseConfig::new(&args.operator_namespace, &args.leader_election_id, &identity);
        tracing::info!(%identity, lease = %format!("{}/{}", config.namespace, config.name), "leader election on");
        let (leading, election) = leader::election(
            client.clone(),
            config,
            metrics_for_leader.clone(),
            stop_rx_leader.clone(),
        );
        election_task = Some(liveness.spawn("leader election", election));
        leading
    } else {
        metrics_for_leader.leader.set(1);
        watch::channel(true).1
    };
    let xds = liveness.spawn(
        "xDS server",
        XdsServing {
            ads,
            address: args.xds_listen,
            listener: xds_listener,
            tls: tls.as_ref().map(|(_, config)| config.clone()),
        }
        .run(shared.clone(), leading.clone(), stop_rx_xds),
    );
    let ctx = Context::new(client, shared, fleet, leading);
    let controllers = liveness.spawn(
        "controllers",
        controllers::run_all(ctx, stores, updates, args.namespace.clone(), stopped()),
    );

    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = controllers.await;
    let _ = xds.await;
    let _ = health.await;
    let _ = metrics_server.await;
    // The leader releases the Lease on its way out, so another replica takes
    // over at once; exiting first would leave it held until it expires.
    if let Some(election) = election_task {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(3), election).await;
    }
    Ok(())
}

/// `hostname-pid`, for a replica run outside a pod.
fn default_identity() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    format!(
        "{}-{}",
        if host.is_empty() { "legate" } else { &host },
        std::process::id()
    )
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
