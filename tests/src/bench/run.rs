//! One benchmark run, phase by phase, with the gauges read at each phase's
//! edges.

use std::time::Duration;

use tokio::time::Instant;

use super::gauges::{ProcessSample, Writes, log_mark, sample_process, scan_log, xds_rx_bytes};
use super::load::{self, patience};
use super::probe::{Prober, Waited};
use super::programmed::until_settled;
use super::report::{BulkReport, ChangeCosts, OneByOneReport};
use super::route_updates::RouteUpdates;
use super::stack::Stack;
use super::world::{self, Route};
use super::{BenchError, Config, Load, changes, report};

/// Sets the stage, runs `config`'s load and (for the bulk load) the change
/// and idle phases, and prints the report on stdout.
pub async fn run(config: &Config) -> Result<(), BenchError> {
    let stack = Stack::open(&config.stack_dir).await?;
    let prober = Prober::new(stack.http);
    // Kept until the end: dropping it stops the echo server.
    let _upstream = world::set_up(&stack).await?;
    let steady = Route::steady();
    if let Waited::TimedOut { .. } = prober
        .until(&steady, 200, Instant::now(), Duration::from_secs(60))
        .await
    {
        return Err(BenchError::Failed(format!(
            "the steady route (Host {}, {}) never answered 200 through the Envoy at {}; see {}",
            steady.host,
            steady.prefix,
            stack.http,
            stack.operator_log.display()
        )));
    }
    let routes: Vec<Route> = (0..config.mappings)
        .map(|i| Route::loaded(i, config.hosts))
        .collect();
    match config.load {
        Load::Bulk => bulk(config, &stack, &routes, &prober).await,
        Load::OneByOne => one_by_one(config, &stack, &routes, &prober).await,
    }
}

async fn bulk(config: &Config, stack: &Stack, routes: &[Route], prober: &Prober) -> Result<(), BenchError> {
    let pid = stack.operator_pid;
    let before_load = sample_process(pid)?;
    eprintln!("bench: applying {} Mappings as one List", routes.len());
    let loaded = load::bulk(stack, routes, prober, config.apply).await?;
    let after_load = sample_process(pid)?;

    eprintln!("bench: {} changes", config.changes);
    let costs = change_phase(config, stack, routes, prober).await?;

    eprintln!("bench: {} s with nothing changing", config.idle.as_secs());
    let idle_start = Writes::read(&stack.client).await?;
    tokio::time::sleep(config.idle).await;
    let idle_writes = Writes::read(&stack.client).await?.since(&idle_start);
    let after_idle = sample_process(pid)?;

    report::bulk(&BulkReport {
        config,
        loaded,
        before_load,
        after_load,
        costs,
        idle_writes,
        after_idle,
        whole_log: scan_log(&stack.operator_log, 0)?,
    });
    Ok(())
}

/// The K changes, then the wait until every Mapping is Programmed again;
/// the gauges' deltas cover both.
async fn change_phase(
    config: &Config,
    stack: &Stack,
    routes: &[Route],
    prober: &Prober,
) -> Result<ChangeCosts, BenchError> {
    // Before the other gauges: its wait for an Envoy stats flush (up to 5 s)
    // stays out of their window.
    let updates_before = RouteUpdates::read_after_flush(stack.envoy_admin).await;
    let writes_before = Writes::read(&stack.client).await?;
    let bytes_before = xds_rx_bytes(stack.envoy_admin, &stack.xds_cluster).await?;
    let mark = log_mark(&stack.operator_log);
    let process_before = sample_process(stack.operator_pid)?;

    let changed = changes::run(stack, routes, config.hosts, config.changes, prober).await?;
    let last_change = Instant::now();
    let settled = until_settled(
        &world::typed_mappings(stack),
        changed.mappings_after,
        last_change,
        patience(routes.len()),
    )
    .await?;
    // The Gateway's status (its configVersion) is written at most every 2 s:
    // the last change's write belongs to the changes, not to the idle phase.
    until_gateway_quiet(stack).await?;

    let writes = Writes::read(&stack.client).await?.since(&writes_before);
    let xds_bytes = xds_rx_bytes(stack.envoy_admin, &stack.xds_cluster)
        .await?
        .saturating_sub(bytes_before);
    let process_after = sample_process(stack.operator_pid)?;
    let log = scan_log(&stack.operator_log, mark)?;
    // After them, for the same reason; a failure is an n/a in the report,
    // not the end of the run.
    let envoy_updates = match updates_before {
        Ok(before) => RouteUpdates::read_after_flush(stack.envoy_admin)
            .await
            .and_then(|after| after.since(&before)),
        Err(e) => Err(e),
    };
    Ok(ChangeCosts {
        writes,
        xds_bytes,
        process_before,
        process_after,
        log,
        envoy_updates,
        settled,
        changed,
    })
}

async fn one_by_one(
    config: &Config,
    stack: &Stack,
    routes: &[Route],
    prober: &Prober,
) -> Result<(), BenchError> {
    let before_load: ProcessSample = sample_process(stack.operator_pid)?;
    let writes_before = Writes::read(&stack.client).await?;
    eprintln!("bench: creating {} Mappings one by one", routes.len());
    let loaded = load::one_by_one(stack, routes, prober).await?;
    let writes = Writes::read(&stack.client).await?.since(&writes_before);
    report::one_by_one(&OneByOneReport {
        config,
        loaded,
        before_load,
        after_load: sample_process(stack.operator_pid)?,
        writes,
        whole_log: scan_log(&stack.operator_log, 0)?,
    });
    Ok(())
}

/// How long the Gateway's resourceVersion must stay put to count as written out.
const GATEWAY_QUIET: Duration = Duration::from_secs(3);

/// Waits until the Gateway's status has not moved for [`GATEWAY_QUIET`]
/// (at most a minute: then the idle phase will show what keeps writing).
async fn until_gateway_quiet(stack: &Stack) -> Result<(), BenchError> {
    let gateways: kube::Api<legate_crds::Gateway> =
        kube::Api::namespaced(stack.client.clone(), "legate-system");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last: Option<(String, Instant)> = None;
    while Instant::now() < deadline {
        let version = gateways
            .get_opt("default")
            .await
            .ok()
            .flatten()
            .and_then(|g| g.metadata.resource_version)
            .unwrap_or_default();
        match &last {
            Some((seen, since)) if *seen == version => {
                if since.elapsed() >= GATEWAY_QUIET {
                    return Ok(());
                }
            }
            _ => last = Some((version, Instant::now())),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}
