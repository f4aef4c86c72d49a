//! Prometheus metrics, named after what operators ask: how long from a
//! change to Envoy running it, what Envoy refused, who leads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    pub kind: String,
    /// `ok` or `error`.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileErrorLabels {
    pub kind: String,
    /// What failed: the controllers' `Error::metric_label`.
    pub error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GatewayLabels {
    pub gateway: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabels {
    /// The xDS type: listener, route, cluster, endpoint, secret.
    pub r#type: String,
}

/// Every series Legate exports.
#[derive(Debug)]
pub struct Metrics {
    pub reconciles: Family<ReconcileLabels, Counter>,
    pub reconcile_errors: Family<ReconcileErrorLabels, Counter>,
    pub reconcile_duration: Family<KindLabels, Histogram>,
    pub reconciles_in_flight: Family<KindLabels, Gauge>,
    pub translation_duration: Histogram,
    /// Model rebuilds: one per batch of changes that could alter configuration.
    pub model_builds: Counter,
    pub model_whole_builds: Counter,
    pub snapshot_version: Family<GatewayLabels, Gauge>,
    pub connected_proxies: Family<GatewayLabels, Gauge>,
    pub resources_pushed: Family<TypeLabels, Counter>,
    pub acks: Family<TypeLabels, Counter>,
    pub nacks: Family<TypeLabels, Counter>,
    pub change_to_ack: Histogram,
    pub leader: Gauge,
    pub xds_refused: Counter,
    /// The ADS server's own count of refusals, copied into `xds_refused` at each scrape.
    refused_source: Mutex<Option<Arc<std::sync::atomic::AtomicU64>>>,
    /// When each (object key, generation) was first translated; consumed
    /// when every proxy runs it.
    changes_in_flight: Mutex<HashMap<(String, i64), Instant>>,
    registry: Registry,
}

fn seconds_buckets() -> impl Iterator<Item = f64> {
    // 1 ms to ~65 s.
    exponential_buckets(0.001, 2.0, 17)
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("legate");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        let reconcile_errors = Family::<ReconcileErrorLabels, Counter>::default();
        let reconcile_duration =
            Family::<KindLabels, Histogram>::new_with_constructor(|| Histogram::new(seconds_buckets()));
        let reconciles_in_flight = Family::<KindLabels, Gauge>::default();
        let translation_duration = Histogram::new(seconds_buckets());
        let model_builds = Counter::default();
        let model_whole_builds = Counter::default();
        let snapshot_version = Family::<GatewayLabels, Gauge>::default();
        let connected_proxies = Family::<GatewayLabels, Gauge>::default();
        let resources_pushed = Family::<TypeLabels, Counter>::default();
        let acks = Family::<TypeLabels, Counter>::default();
        let nacks = Family::<TypeLabels, Counter>::default();
        let change_to_ack = Histogram::new(seconds_buckets());
        let leader = Gauge::default();
        let xds_refused = Counter::default();
        registry.register("reconciles", "Reconciles per kind and result", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Failed reconciles per kind and what failed (status, fleet, finalizer...)",
            reconcile_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile took",
            reconcile_duration.clone(),
        );
        registry.register(
            "reconciles_in_flight",
            "Reconciles running now, per kind (the work queue's depth)",
            reconciles_in_flight.clone(),
        );
        registry.register(
            "translation_duration_seconds",
            "Time to rebuild the model and translate the changes",
            translation_duration.clone(),
        );
        registry.register(
            "model_builds",
            "Times the model was rebuilt (status-only updates never rebuild it)",
            model_builds.clone(),
        );
        registry.register(
            "model_whole_builds",
            "Model builds that judged the whole world: the first, and changes whose reach is too wide to follow (Gateways, TLSContexts, ...)",
            model_whole_builds.clone(),
        );
        registry.register(
            "snapshot_version",
            "The configuration version served to a Gateway's Envoys",
            snapshot_version.clone(),
        );
        registry.register(
            "connected_proxies",
            "Envoys connected over xDS, per Gateway",
            connected_proxies.clone(),
        );
        registry.register(
            "xds_resources_pushed",
            "Envoy resources added, changed or removed, per xDS type",
            resources_pushed.clone(),
        );
        registry.register("xds_acks", "Responses Envoy accepted, per xDS type", acks.clone());
        registry.register(
            "xds_nacks",
            "Responses Envoy rejected, per xDS type",
            nacks.clone(),
        );
        registry.register(
            "change_to_ack_seconds",
            "Time from an object's change to every connected Envoy running it",
            change_to_ack.clone(),
        );
        registry.register(
            "leader",
            "1 when this replica leads (writes status and manages fleets)",
            leader.clone(),
        );
        registry.register(
            "xds_refused",
            "xDS connections or streams refused: no client certificate, an untrusted one, or another Gateway's",
            xds_refused.clone(),
        );
        // Every xDS type is listed from the start, at zero, so that dashboards
        // and alerts see the series before the first push.
        for kind in legate_xds::resource::ResourceType::ALL {
            let labels = TypeLabels {
                r#type: kind.short().to_string(),
            };
            resources_pushed.get_or_create(&labels).inc_by(0);
            acks.get_or_create(&labels).inc_by(0);
            nacks.get_or_create(&labels).inc_by(0);
        }
        Arc::new(Metrics {
            reconciles,
            reconcile_errors,
            reconcile_duration,
            reconciles_in_flight,
            translation_duration,
            model_builds,
            model_whole_builds,
            snapshot_version,
            connected_proxies,
            resources_pushed,
            acks,
            nacks,
            change_to_ack,
            leader,
            xds_refused,
            refused_source: Mutex::new(None),
            changes_in_flight: Mutex::new(HashMap::new()),
            registry,
        })
    }

    /// Where the ADS server counts refusals.
    pub fn count_refused_from(&self, source: Arc<std::sync::atomic::AtomicU64>) {
        if let Ok(mut s) = self.refused_source.lock() {
            *s = Some(source);
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let total = self
            .refused_source
            .lock()
            .ok()
            .and_then(|s| s.as_ref().map(|a| a.load(std::sync::atomic::Ordering::Relaxed)));
        if let Some(total) = total {
            let seen = self.xds_refused.get();
            if total > seen {
                self.xds_refused.inc_by(total - seen);
            }
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// The engine translated `key` at `generation` for the first time.
    pub fn change_seen(&self, key: &str, generation: i64) {
        if let Ok(mut m) = self.changes_in_flight.lock() {
            m.entry((key.to_string(), generation))
                .or_insert_with(Instant::now);
            // Bound the map: an object that never gets programmed must not leak.
            if m.len() > 100_000 {
                let cutoff = Instant::now() - Duration::from_secs(600);
                m.retain(|_, t| *t > cutoff);
            }
        }
    }

    /// Every proxy runs `key` at `generation`: observe the time since the change.
    pub fn change_programmed(&self, key: &str, generation: i64) {
        let started = self
            .changes_in_flight
            .lock()
            .ok()
            .and_then(|mut m| m.remove(&(key.to_string(), generation)));
        if let Some(started) = started {
            self.change_to_ack.observe(started.elapsed().as_secs_f64());
        }
    }

    /// A reconcile of `kind` failed; `error` says what failed.
    pub fn reconcile_failed(&self, kind: &str, error: &str) {
        self.reconcile_errors
            .get_or_create(&ReconcileErrorLabels {
                kind: kind.to_string(),
                error: error.to_string(),
            })
            .inc();
    }

    /// Times a reconcile of `kind`.
    pub fn reconcile_started(self: &Arc<Self>, kind: &str) -> ReconcileTimer {
        let labels = KindLabels {
            kind: kind.to_string(),
        };
        self.reconciles_in_flight.get_or_create(&labels).inc();
        ReconcileTimer {
            metrics: self.clone(),
            kind: kind.to_string(),
            started: Instant::now(),
        }
    }
}

/// Records one reconcile when finished.
#[derive(Debug)]
pub struct ReconcileTimer {
    metrics: Arc<Metrics>,
    kind: String,
    started: Instant,
}

impl ReconcileTimer {
    pub fn finish(self, ok: bool) {
        let kind = KindLabels {
            kind: self.kind.clone(),
        };
        self.metrics.reconciles_in_flight.get_or_create(&kind).dec();
        self.metrics
            .reconcile_duration
            .get_or_create(&kind)
            .observe(self.started.elapsed().as_secs_f64());
        let result = if ok { "ok" } else { "error" };
        self.metrics
            .reconciles
            .get_or_create(&ReconcileLabels {
                kind: self.kind,
                result: result.into(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_to_ack_is_observed_once_per_generation() {
        let m = Metrics::new();
        m.change_seen("Mapping/a/b", 2);
        m.change_seen("Mapping/a/b", 2);
        m.change_programmed("Mapping/a/b", 2);
        m.change_programmed("Mapping/a/b", 2);
        let text = m.encode();
        assert!(text.contains("legate_change_to_ack_seconds_count 1"), "{text}");
    }

    #[test]
    fn reconciles_are_counted_by_kind_and_result() {
        let m = Metrics::new();
        m.reconcile_started("Mapping").finish(true);
        m.reconcile_started("Mapping").finish(false);
        let text = m.encode();
        assert!(
            text.contains(r#"legate_reconciles_total{kind="Mapping",result="ok"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"legate_reconciles_total{kind="Mapping",result="error"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn reconcile_errors_are_counted_by_what_failed() {
        let m = Metrics::new();
        m.reconcile_failed("Gateway", "fleet");
        m.reconcile_failed("Gateway", "fleet");
        let text = m.encode();
        assert!(
            text.contains(r#"legate_reconcile_errors_total{kind="Gateway",error="fleet"} 2"#),
            "{text}"
        );
    }
}
