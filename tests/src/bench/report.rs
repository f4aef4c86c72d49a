//! The report: every number next to its target (from issue 14), with a
//! verdict where the target applies to this run's size.

use std::time::Duration;

use super::changes::{ChangeKind, Changed};
use super::gauges::{LogScan, ProcessSample, Writes};
use super::load::Loaded;
use super::probe::Waited;
use super::route_updates::{Buckets, RouteUpdates};
use super::{Apply, BenchError, Config};

/// The size the load, latency and memory targets are stated for.
const TARGET_SIZE: usize = 5_000;
/// The size the one-by-one target is stated for.
const ONE_BY_ONE_TARGET_SIZE: usize = 1_000;
/// RSS "does not grow" over the changes, give or take the allocator's noise.
const RSS_NOISE_MIB: f64 = 5.0;

/// What the bulk run measured.
#[derive(Debug)]
pub struct BulkReport<'a> {
    pub config: &'a Config,
    pub loaded: Loaded,
    pub before_load: ProcessSample,
    pub after_load: ProcessSample,
    pub costs: ChangeCosts,
    /// Everything written during the idle phase.
    pub idle_writes: Writes,
    pub after_idle: ProcessSample,
    pub whole_log: LogScan,
}

/// The change phase and what it cost.
#[derive(Debug)]
pub struct ChangeCosts {
    pub changed: Changed,
    /// From the last change until every Mapping was Programmed again.
    pub settled: Waited,
    /// Everything written from the first change until settled.
    pub writes: Writes,
    pub xds_bytes: u64,
    pub process_before: ProcessSample,
    pub process_after: ProcessSample,
    pub log: LogScan,
    /// Envoy's own route updates over the same span (an error is reported as n/a).
    pub envoy_updates: Result<RouteUpdates, BenchError>,
}

/// What the one-by-one run measured.
#[derive(Debug)]
pub struct OneByOneReport<'a> {
    pub config: &'a Config,
    pub loaded: Loaded,
    pub before_load: ProcessSample,
    pub after_load: ProcessSample,
    /// Everything written from the first create until converged.
    pub writes: Writes,
    pub whole_log: LogScan,
}

#[derive(Debug, Default)]
struct Table {
    rows: Vec<[String; 4]>,
    notes: Vec<String>,
}

impl Table {
    fn row(&mut self, what: &str, measured: String, target: &str, verdict: Option<bool>) {
        let verdict = match verdict {
            None => "",
            Some(true) => "pass",
            Some(false) => "FAIL",
        };
        self.rows
            .push([what.into(), measured, target.into(), verdict.into()]);
    }

    fn note(&mut self, line: String) {
        self.notes.push(line);
    }

    #[allow(clippy::print_stdout)] // the report is the program's output
    fn print(&self, title: &str) {
        let width = |i: usize| self.rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
        let (w0, w1, w2) = (width(0), width(1), width(2));
        println!("\n== {title}");
        println!("{:w0$}  {:w1$}  {:w2$}  verdict", "measure", "measured", "target");
        for [what, measured, target, verdict] in &self.rows {
            println!("{what:w0$}  {measured:w1$}  {target:w2$}  {verdict}");
        }
        for note in &self.notes {
            println!("{note}");
        }
    }
}

/// A verdict only where the target is stated for this size.
fn at_size(n: usize, size: usize, ok: bool) -> Option<bool> {
    (n == size).then_some(ok)
}

pub fn bulk(report: &BulkReport<'_>) {
    let config = report.config;
    let n = config.mappings;
    let mut table = Table::default();
    load_rows(&mut table, report);
    change_rows(&mut table, config, &report.costs);
    idle_rows(&mut table, report);
    let how = match config.apply {
        Apply::Kubectl => "kubectl apply --server-side",
        Apply::Concurrent => "server-side applies, 32 at a time",
    };
    table.print(&format!(
        "{n} Mappings on {} hosts, loaded as one List ({how}); {} changes; {} s idle",
        config.hosts,
        config.changes,
        config.idle.as_secs()
    ));
}

fn load_rows(table: &mut Table, report: &BulkReport<'_>) {
    let n = report.config.mappings;
    let loaded = &report.loaded;
    table.row(
        "load: the List applied (the last write returned)",
        seconds(loaded.written),
        "",
        None,
    );
    table.row(
        "load: every route answers 200",
        after_writes(loaded.answered, loaded.written),
        "<= 30 s at 5,000",
        at_size(n, TARGET_SIZE, within(loaded.answered, Duration::from_secs(30))),
    );
    table.row(
        "load: every Mapping Programmed",
        after_writes(loaded.programmed, loaded.written),
        "<= 60 s at 5,000",
        at_size(n, TARGET_SIZE, within(loaded.programmed, Duration::from_secs(60))),
    );
    let rss = report.after_load.rss_mib();
    table.row(
        "operator RSS after the load",
        format!("{rss:.1} MiB"),
        "<= 150 MiB at 5,000",
        at_size(n, TARGET_SIZE, rss <= 150.0),
    );
    let cpu = report.after_load.cpu_seconds - report.before_load.cpu_seconds;
    table.row("operator CPU during the load", format!("{cpu:.1} s"), "", None);
}

fn change_rows(table: &mut Table, config: &Config, costs: &ChangeCosts) {
    let n = config.mappings;
    let changed = &costs.changed;
    for kind in [ChangeKind::Create, ChangeKind::Modify, ChangeKind::Delete] {
        let times = done(
            changed
                .timings
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, w)| *w),
        );
        table.row(
            &format!("change: {} (n={})", kind.label(), times.len()),
            spread(&times),
            "",
            None,
        );
    }
    let all = done(changed.timings.iter().map(|(_, w)| *w));
    let fast = !all.is_empty()
        && percentile(&all, 50.0) <= Duration::from_millis(20)
        && percentile(&all, 99.0) <= Duration::from_millis(100);
    table.row(
        &format!("change: all, p50/p90/p99/max (n={})", all.len()),
        spread(&all),
        "p50 <= 20, p99 <= 100 ms at 5,000",
        at_size(n, TARGET_SIZE, fast),
    );
    envoy_rows(table, &costs.envoy_updates);
    let lost = changed.timings.len() - all.len();
    table.row(
        "change: not seen within 30 s",
        lost.to_string(),
        "0",
        Some(lost == 0),
    );
    table.row(
        "change: all Programmed after the last",
        waited(costs.settled),
        "",
        None,
    );
    let steady = &changed.steady;
    table.row(
        "unrelated route: non-2xx during the changes",
        format!("{} of {}", steady.non_2xx(), steady.sent),
        "0",
        Some(steady.non_2xx() == 0),
    );
    if steady.non_2xx() > 0 {
        table.note(format!(
            "unrelated route answers by status (0 = no answer): {:?}",
            steady.by_status
        ));
    }
    cost_rows(table, config, costs);
}

/// Envoy's own time per route update during the changes, next to the
/// change latency it is part of.
fn envoy_rows(table: &mut Table, updates: &Result<RouteUpdates, BenchError>) {
    const VHDS: &str = "Envoy: route table rebuilt per update (VHDS update_duration) p50/p90/max";
    const RDS: &str = "Envoy: route configuration applied (RDS update_duration) p50/p90/max";
    match updates {
        Ok(updates) => {
            table.row(VHDS, bucket_spread(&updates.vhds), "", None);
            table.row(RDS, bucket_spread(&updates.rds), "", None);
            table.note(
                "Envoy rows: its update_duration histograms summed over route configurations, counted \
                 from the first change until settled; p50 <= 100 means the median update fell in the \
                 bucket ending at 100 ms (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000 ms, ...); a change \
                 may cause several updates"
                    .into(),
            );
        }
        Err(e) => {
            table.row(VHDS, "n/a".into(), "", None);
            table.row(RDS, "n/a".into(), "", None);
            table.note(format!("Envoy's update_duration could not be read: {e}"));
        }
    }
}

/// `p50 <= 50 / p90 <= 100 / max <= 250 ms (12 updates)`, or n/a without updates.
fn bucket_spread(buckets: &Buckets) -> String {
    match (
        buckets.bound_at(50.0),
        buckets.bound_at(90.0),
        buckets.bound_at(100.0),
    ) {
        (Some(p50), Some(p90), Some(max)) => format!(
            "p50 <= {p50} / p90 <= {p90} / max <= {max} ms ({} updates)",
            buckets.count()
        ),
        _ => "n/a".into(),
    }
}

fn cost_rows(table: &mut Table, config: &Config, costs: &ChangeCosts) {
    let k = config.changes.max(1) as f64;
    let writes = &costs.writes;
    let operator = writes
        .total()
        .saturating_sub(costs.changed.own_writes + writes.leases());
    let per_change = operator as f64 / k;
    table.row(
        "API writes per change (the operator's)",
        format!("{per_change:.2} ({operator} in all)"),
        "<= 3",
        Some(per_change <= 3.0),
    );
    let refused = writes.refused();
    table.row(
        "API writes refused (4xx) during the changes",
        refused.total().to_string(),
        "",
        None,
    );
    table.row(
        "operator log: warnings (refused writes) in the changes",
        format!("{} ({})", costs.log.warnings, costs.log.refused_writes),
        "",
        None,
    );
    table.row(
        "xDS bytes received by the Envoy per change",
        format!("{:.0} B", costs.xds_bytes as f64 / k),
        "",
        None,
    );
    let (before, after) = (costs.process_before.rss_mib(), costs.process_after.rss_mib());
    table.row(
        "operator RSS over the changes",
        format!("{before:.1} -> {after:.1} MiB"),
        "no growth (<= +5 MiB)",
        Some(after - before <= RSS_NOISE_MIB),
    );
    let cpu = costs.process_after.cpu_seconds - costs.process_before.cpu_seconds;
    table.row(
        "operator CPU per change",
        format!("{:.1} ms", cpu * 1000.0 / k),
        "",
        None,
    );
    table.note(format!(
        "writes from the first change until settled (the benchmark's own: {}; leases: {}):",
        costs.changed.own_writes,
        writes.leases()
    ));
    write_rows(table, writes);
    if costs.log.warnings > 0 {
        table.note("operator warnings during the changes (first few):".into());
        costs
            .log
            .examples
            .iter()
            .for_each(|l| table.note(format!("  {l}")));
    }
}

fn idle_rows(table: &mut Table, report: &BulkReport<'_>) {
    let idle = &report.idle_writes;
    let operator = idle.total().saturating_sub(idle.leases());
    table.row(
        &format!(
            "API writes over {} s idle (the operator's)",
            report.config.idle.as_secs()
        ),
        operator.to_string(),
        "0",
        Some(operator == 0),
    );
    let cpu = report.after_idle.cpu_seconds - report.costs.process_after.cpu_seconds;
    table.row("operator CPU while idle", format!("{cpu:.2} s"), "", None);
    table.row(
        "operator RSS at the end (peak)",
        format!(
            "{:.1} MiB ({:.1})",
            report.after_idle.rss_mib(),
            report.after_idle.peak_rss_mib()
        ),
        "",
        None,
    );
    if operator > 0 {
        table.note("writes while idle:".into());
        write_rows(table, idle);
    }
    log_note(table, &report.whole_log);
}

pub fn one_by_one(report: &OneByOneReport<'_>) {
    let config = report.config;
    let n = config.mappings;
    let loaded = &report.loaded;
    let mut table = Table::default();
    let rate = n as f64 / loaded.written.as_secs_f64().max(1e-9);
    table.row(
        "load: the last create returned",
        format!("{} ({rate:.0} creates/s)", seconds(loaded.written)),
        "",
        None,
    );
    for (what, waited_for) in [
        ("load: every route answers 200", loaded.answered),
        ("load: every Mapping Programmed", loaded.programmed),
    ] {
        table.row(
            what,
            after_writes(waited_for, loaded.written),
            "<= last create + 2 s at 1,000",
            at_size(
                n,
                ONE_BY_ONE_TARGET_SIZE,
                within(waited_for, loaded.written + Duration::from_secs(2)),
            ),
        );
    }
    let writes = &report.writes;
    let operator = writes.total().saturating_sub(n as u64 + writes.leases());
    table.row(
        "API writes per Mapping (the operator's)",
        format!("{:.2} ({operator} in all)", operator as f64 / n.max(1) as f64),
        "",
        None,
    );
    table.row(
        "operator RSS after the load",
        format!("{:.1} MiB", report.after_load.rss_mib()),
        "",
        None,
    );
    let cpu = report.after_load.cpu_seconds - report.before_load.cpu_seconds;
    table.row("operator CPU during the load", format!("{cpu:.1} s"), "", None);
    table.note(format!(
        "writes from the first create until converged (the benchmark's own: {n}):"
    ));
    write_rows(&mut table, writes);
    log_note(&mut table, &report.whole_log);
    table.print(&format!(
        "{n} Mappings on {} hosts, created one by one through the API",
        config.hosts
    ));
}

fn write_rows(table: &mut Table, writes: &Writes) {
    for (key, count) in writes.rows() {
        table.note(format!(
            "  {:>7}  {} {} -> {}",
            count, key.verb, key.resource, key.code
        ));
    }
}

fn log_note(table: &mut Table, log: &LogScan) {
    table.note(format!(
        "operator log over the whole run: {} warnings/errors, {} mention a refused write",
        log.warnings, log.refused_writes
    ));
}

fn within(waited: Waited, limit: Duration) -> bool {
    matches!(waited, Waited::Done(d) if d <= limit)
}

fn waited(waited: Waited) -> String {
    match waited {
        Waited::Done(d) => seconds(d),
        Waited::TimedOut { after, left } => format!("timed out after {} ({left} left)", seconds(after)),
    }
}

/// The time from the start, and after the last write returned.
fn after_writes(waited: Waited, written: Duration) -> String {
    match waited {
        Waited::Done(d) => format!("{} (+{})", seconds(d), seconds(d.saturating_sub(written))),
        other => self::waited(other),
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn done(waits: impl Iterator<Item = Waited>) -> Vec<Duration> {
    let mut times: Vec<Duration> = waits
        .filter_map(|w| match w {
            Waited::Done(d) => Some(d),
            Waited::TimedOut { .. } => None,
        })
        .collect();
    times.sort();
    times
}

/// p50 / p90 / p99 / max in milliseconds.
fn spread(sorted: &[Duration]) -> String {
    if sorted.is_empty() {
        return "-".into();
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "{:.1} / {:.1} / {:.1} / {:.1} ms",
        ms(percentile(sorted, 50.0)),
        ms(percentile(sorted, 90.0)),
        ms(percentile(sorted, 99.0)),
        ms(percentile(sorted, 100.0))
    )
}

/// Nearest-rank percentile of sorted durations (zero when there are none).
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
