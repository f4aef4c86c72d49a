//! The translation loop: whenever the world changes, rebuild the model, hand
//! each Gateway's IR to its translator (whose `sync` is the one diff: only
//! what changed is re-encoded and pushed) and the result to the snapshot
//! cache, and wake the controllers so that statuses follow.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use legate_xds::cache::SnapshotCache;
use legate_xds::server::XdsEvent;
use legate_xds::translate::Translator;
use tokio::sync::{broadcast, watch};

use crate::metrics::{GatewayLabels, Metrics, TypeLabels};
use crate::program::ProgramState;
use crate::world::Stores;
use legate_model::Model;

/// Changes that arrive within this window are translated together.
const DEBOUNCE: Duration = Duration::from_millis(10);

/// State shared by the engine, the ACK tracker and the controllers.
#[derive(Debug)]
pub struct Shared {
    pub cache: Arc<SnapshotCache>,
    pub metrics: Arc<Metrics>,
    model: RwLock<Arc<Model>>,
    program: Mutex<ProgramState>,
    /// Bumped when statuses may need to change; controllers reconcile all on it.
    trigger: watch::Sender<u64>,
    /// Bumped when Envoy refused something: the engine rebuilds without it.
    rejected: watch::Sender<u64>,
    /// True once the first whole world has been translated into the cache.
    translated: watch::Sender<bool>,
}

impl Shared {
    pub fn new(cache: Arc<SnapshotCache>, metrics: Arc<Metrics>) -> Arc<Shared> {
        Arc::new(Shared {
            cache,
            metrics,
            model: RwLock::new(Arc::new(Model::default())),
            program: Mutex::new(ProgramState::default()),
            trigger: watch::Sender::new(0),
            rejected: watch::Sender::new(0),
            translated: watch::Sender::new(false),
        })
    }

    /// The latest model.
    pub fn model(&self) -> Arc<Model> {
        self.model
            .read()
            .map(|m| m.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// Runs `f` with the ACK state.
    pub fn with_program<T>(&self, f: impl FnOnce(&ProgramState) -> T) -> T {
        match self.program.lock() {
            Ok(p) => f(&p),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    /// A stream that yields whenever statuses should be recomputed.
    pub fn triggers(&self) -> watch::Receiver<u64> {
        self.trigger.subscribe()
    }

    /// Resolves once the first whole world is in the cache. Until then the
    /// cache is empty, and a proxy that reconnects would be told to drop
    /// what it runs (503s until the first translation).
    pub async fn first_translation(&self) {
        let mut translated = self.translated.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = translated.wait_for(|t| *t).await;
    }

    /// Asks every controller to reconcile everything.
    pub fn poke(&self) {
        self.trigger.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Rebuilds and pushes configuration on every change of the world, forever.
pub async fn translate_forever(
    stores: Stores,
    shared: Arc<Shared>,
    listen_address: std::net::IpAddr,
    mut listed: watch::Receiver<bool>,
) {
    // Never translate a half-listed world: a Mapping seen before its Service
    // would push "no endpoints" to Envoy (a 503) and flap its conditions.
    // (One task waits on the stores themselves and signals `listed`: kube's
    // readiness future wakes only one waiter at a time.)
    if listed.wait_for(|l| *l).await.is_err() {
        return;
    }
    let mut changed = stores.changed.clone();
    // The world as listed is the first thing to translate.
    changed.mark_changed();
    let mut rejected = shared.rejected.subscribe();
    let mut translators: BTreeMap<String, Translator> = BTreeMap::new();
    loop {
        tokio::select! {
            r = changed.changed() => if r.is_err() { return },
            r = rejected.changed() => if r.is_err() { return },
        }
        tokio::time::sleep(DEBOUNCE).await;
        changed.borrow_and_update();
        rejected.borrow_and_update();
        let quarantine = shared.with_program(|p| p.quarantine());
        let started = Instant::now();
        let world = stores.world(listen_address);
        let model = legate_model::build_with(&world, &quarantine);
        shared.metrics.model_builds.inc();
        let mut pushed = 0usize;
        for (key, desired) in &model.gateways {
            let translator = translators.entry(key.clone()).or_default();
            let (updates, refused) = translator.sync(desired);
            for e in &refused {
                // The model validates routes first; this is a model bug, not user input.
                tracing::warn!(gateway = %key, error = %e, "the translator refused part of the model");
            }
            if !updates.is_empty() {
                pushed += updates.len();
                for update in &updates {
                    let labels = TypeLabels {
                        r#type: update.kind().short().to_string(),
                    };
                    shared.metrics.resources_pushed.get_or_create(&labels).inc();
                }
                let snapshot = shared.cache.update(key, &updates);
                let labels = GatewayLabels { gateway: key.clone() };
                shared
                    .metrics
                    .snapshot_version
                    .get_or_create(&labels)
                    .set(snapshot.serial() as i64);
            }
        }
        let gone: Vec<String> = translators
            .keys()
            .filter(|k| !model.gateways.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            translators.remove(&key);
            shared.cache.remove(&key);
        }
        shared
            .metrics
            .translation_duration
            .observe(started.elapsed().as_secs_f64());
        for verdict in model.verdicts.values() {
            if verdict.accepted.is_ok() && !verdict.gateways.is_empty() {
                shared
                    .metrics
                    .change_seen(&verdict.object.key(), verdict.object.generation());
            }
        }
        tracing::debug!(
            gateways = model.gateways.len(),
            resources_pushed = pushed,
            took_us = started.elapsed().as_micros() as u64,
            "translated"
        );
        if let Ok(mut m) = shared.model.write() {
            *m = Arc::new(model);
        }
        shared.translated.send_replace(true);
        shared.poke();
    }
}

/// Follows the ADS server's events into the ACK state, forever.
pub async fn track_proxies_forever(mut events: broadcast::Receiver<XdsEvent>, shared: Arc<Shared>) {
    loop {
        match events.recv().await {
            Ok(event) => {
                let gateway = event.proxy().gateway.clone();
                let proxies = match shared.program.lock() {
                    Ok(mut program) => {
                        program.on_event(&event);
                        program.proxies(&gateway)
                    }
                    Err(_) => 0,
                };
                let labels = GatewayLabels { gateway };
                shared
                    .metrics
                    .connected_proxies
                    .get_or_create(&labels)
                    .set(proxies as i64);
                match &event {
                    XdsEvent::Acked(ack) => {
                        let labels = TypeLabels {
                            r#type: ack.kind.short().to_string(),
                        };
                        shared.metrics.acks.get_or_create(&labels).inc();
                    }
                    XdsEvent::Rejected(nack) => {
                        let labels = TypeLabels {
                            r#type: nack.kind.short().to_string(),
                        };
                        shared.metrics.nacks.get_or_create(&labels).inc();
                    }
                    _ => {}
                }
                if matches!(event, XdsEvent::Rejected(_)) {
                    shared.rejected.send_modify(|n| *n = n.wrapping_add(1));
                }
                shared.poke();
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "fell behind the xDS event stream; statuses may lag until the next ACK"
                );
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
