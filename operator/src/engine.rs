//! The translation loop: whenever the world changes, rebuild the model, hand
//! each Gateway's IR to its translator (whose `sync` is the one diff: only
//! what changed is re-encoded and pushed) and the result to the snapshot
//! cache, and requeue exactly the objects whose status may follow: those
//! whose verdict changed or whose part of the configuration moved.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use legate_xds::cache::SnapshotCache;
use legate_xds::server::XdsEvent;
use legate_xds::translate::Translator;
use tokio::sync::{broadcast, watch};

use crate::diagnostics::Diagnostics;
use crate::metrics::{GatewayLabels, Metrics, TypeLabels};
use crate::program::{Affected, ProgramState};
use crate::requeue::Requeues;
use crate::world::{Stores, WorldSettings};
use legate_model::{Incremental, Reach, Verdict, Verdicts};

/// State shared by the engine, the ACK tracker and the controllers.
#[derive(Debug)]
pub struct Shared {
    pub cache: Arc<SnapshotCache>,
    pub metrics: Arc<Metrics>,
    /// What the diagnostics page reads: each Gateway's routing, its last NACK.
    pub diagnostics: Arc<Diagnostics>,
    /// The verdicts of the latest model (the statuses' input), updated in
    /// place where a build reached.
    verdicts: RwLock<HashMap<String, Verdict>>,
    program: Mutex<ProgramState>,
    /// The objects whose status may have changed, per kind.
    pub requeues: Requeues,
    /// Bumped when every status must be looked at (taking the lead, the end
    /// of the restart grace); controllers reconcile all on it.
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
            diagnostics: Arc::default(),
            verdicts: RwLock::new(HashMap::new()),
            program: Mutex::new(ProgramState::default()),
            requeues: Requeues::default(),
            trigger: watch::Sender::new(0),
            rejected: watch::Sender::new(0),
            translated: watch::Sender::new(false),
        })
    }

    /// The latest model's verdict on the object with key `key`.
    pub fn verdict(&self, key: &str) -> Option<Verdict> {
        let verdicts = self
            .verdicts
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        verdicts.get(key).cloned()
    }

    fn verdicts_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Verdict>> {
        // Every update of one verdict completes under the lock or not at all.
        self.verdicts
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` with the ACK state.
    pub fn with_program<T>(&self, f: impl FnOnce(&ProgramState) -> T) -> T {
        f(&self.program_mut())
    }

    /// Forgets what Gateways released of an object that is gone for good.
    pub fn forget_released(&self, object_key: &str) {
        self.program_mut().forget_released(object_key);
    }

    /// Sets how many proxies per Gateway must reconnect to this replica
    /// before it judges them (see [`ProgramState::expect_reconnects`]).
    pub fn expect_reconnects(&self, floors: BTreeMap<String, usize>) {
        self.program_mut().expect_reconnects(floors);
    }

    fn program_mut(&self) -> std::sync::MutexGuard<'_, ProgramState> {
        // Every update of the state completes under the lock or not at all.
        self.program
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A stream that yields whenever every status should be recomputed.
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
    settings: WorldSettings,
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
    // Kept between runs: a change re-judges only what it can reach.
    let mut incremental = Incremental::new();
    loop {
        tokio::select! {
            r = changed.changed() => if r.is_err() { return },
            r = rejected.changed() => if r.is_err() { return },
        }
        // No debounce: what arrives while a build runs is taken together by
        // the next one, and a build costs in proportion to its change, so
        // waiting would only delay a lone change. Yielding lets the watch
        // events already queued land first.
        tokio::task::yield_now().await;
        changed.borrow_and_update();
        rejected.borrow_and_update();
        let quarantine = shared.with_program(|p| p.quarantine());
        let started = Instant::now();
        let world = stores.world(&settings);
        let whole_before = incremental.whole_builds();
        incremental.build(&world, &quarantine);
        shared.metrics.model_builds.inc();
        if incremental.whole_builds() != whole_before {
            shared.metrics.model_whole_builds.inc();
        }
        let model = incremental.model();
        let reach = incremental.reach();
        let mut pushed = 0usize;
        for (key, desired) in &model.gateways {
            let touched = match reach {
                Reach::Entries { gateways, .. } if translators.contains_key(key) => match gateways.get(key) {
                    Some(touched) if !touched.is_empty() => Some(touched),
                    _ => continue,
                },
                _ => None,
            };
            // Virtual hosts over VHDS for the proxies that ask (a route
            // change sends one host); the others get whole route configs.
            let translator = translators
                .entry(key.clone())
                .or_insert_with(Translator::with_vhds);
            let (updates, refused) = match touched {
                Some(touched) => translator.sync_touched(desired, touched),
                None => translator.sync(desired),
            };
            for e in &refused {
                // The model validates routes first; this is a model bug, not user input.
                tracing::warn!(gateway = %key, error = %e, "the translator refused part of the model");
            }
            if !updates.is_empty() {
                pushed += updates.len();
                push(&shared, key, &updates);
            }
            shared.diagnostics.publish(key, desired, touched);
            // Streams of its proxies answer from here on, whatever changed.
            shared.cache.publish(key);
        }
        let gone: Vec<String> = translators
            .keys()
            .filter(|k| !model.gateways.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            translators.remove(&key);
            shared.cache.remove(&key);
            shared.diagnostics.forget(&key);
            let carried = shared.program_mut().forget_gateway(&key);
            for object in &carried {
                shared.requeues.object(object);
            }
        }
        shared
            .metrics
            .translation_duration
            .observe(started.elapsed().as_secs_f64());
        publish_verdicts(&shared, &model.verdicts, reach);
        tracing::debug!(
            gateways = model.gateways.len(),
            resources_pushed = pushed,
            took_us = started.elapsed().as_micros() as u64,
            "translated"
        );
        shared.translated.send_replace(true);
    }
}

/// The serial of the last change to what a Gateway routes (not its
/// endpoints or secrets): its status's `configVersion`.
pub fn routing_serial(snapshot: &legate_xds::cache::Snapshot) -> u64 {
    use legate_xds::resource::ResourceType::{Listener, Route, VirtualHost};
    [Listener, Route, VirtualHost]
        .into_iter()
        .map(|kind| snapshot.type_serial(kind))
        .max()
        .unwrap_or(0)
}

/// Hands `updates` to the cache and the ACK index, and requeues the objects
/// whose part moved (and the Gateway, when what it routes moved).
fn push(shared: &Shared, gateway: &str, updates: &[legate_xds::resource::ResourceUpdate]) {
    for update in updates {
        let labels = TypeLabels {
            r#type: update.kind().short().to_string(),
        };
        shared.metrics.resources_pushed.get_or_create(&labels).inc();
    }
    let before = shared.cache.snapshot(gateway).map(|s| routing_serial(&s));
    let snapshot = shared.cache.update(gateway, updates);
    let moved = shared
        .program_mut()
        .on_snapshot(gateway, snapshot.serial(), updates);
    for object in &moved {
        shared.requeues.object(object);
    }
    if before != Some(routing_serial(&snapshot)) {
        shared.requeues.gateway(gateway);
    }
    let labels = GatewayLabels {
        gateway: gateway.to_string(),
    };
    shared
        .metrics
        .snapshot_version
        .get_or_create(&labels)
        .set(snapshot.serial() as i64);
}

/// Takes the verdicts a build reached into the shared ones, and requeues
/// the objects whose verdict is new, changed or gone: a change to one object
/// looks at (and moves) that object alone.
fn publish_verdicts(shared: &Shared, next: &Verdicts, reach: &Reach) {
    let mut held = shared.verdicts_mut();
    let everything: BTreeSet<String>;
    let keys = match reach {
        Reach::Entries { verdicts, .. } => verdicts,
        Reach::Everything => {
            everything = held.keys().chain(next.keys()).cloned().collect();
            &everything
        }
    };
    for key in keys {
        let verdict = next.get(key);
        if held.get(key) == verdict {
            continue;
        }
        shared.requeues.object(key);
        match verdict {
            Some(verdict) => {
                if verdict.accepted.is_ok() && !verdict.gateways.is_empty() {
                    shared
                        .metrics
                        .change_seen(&verdict.object.key(), verdict.object.generation());
                }
                held.insert(key.clone(), verdict.clone());
            }
            None => {
                held.remove(key);
            }
        }
    }
}

/// Follows the ADS server's events into the ACK state, forever, and requeues
/// the objects (and Gateways) whose answer an event may have moved.
pub async fn track_proxies_forever(mut events: broadcast::Receiver<XdsEvent>, shared: Arc<Shared>) {
    // Per Gateway: (connected proxies, every proxy in sync) as last seen.
    let mut gateway_states: BTreeMap<String, (usize, bool)> = BTreeMap::new();
    loop {
        match events.recv().await {
            Ok(event) => {
                let gateway = event.proxy().gateway.clone();
                let snapshot = shared.cache.snapshot(&gateway);
                let (affected, state) = {
                    let mut program = shared.program_mut();
                    let affected = program.on_event(&event);
                    let in_sync = snapshot.as_ref().is_none_or(|s| program.in_sync(&gateway, s));
                    (affected, (program.proxies(&gateway), in_sync))
                };
                follow(&shared, &event, &gateway, state.0);
                let Affected {
                    objects,
                    gateway: gateway_moved,
                } = affected;
                for object in &objects {
                    shared.requeues.object(object);
                }
                if gateway_moved && gateway_states.insert(gateway.clone(), state) != Some(state) {
                    shared.requeues.gateway(&gateway);
                }
                if let XdsEvent::Rejected(rejection) = &event {
                    let at = k8s_openapi::jiff::Timestamp::now().to_string();
                    shared.diagnostics.record_nack(rejection, at);
                    shared.rejected.send_modify(|n| *n = n.wrapping_add(1));
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "fell behind the xDS event stream; looking at every status again"
                );
                shared.poke();
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// The metrics of one xDS event.
fn follow(shared: &Shared, event: &XdsEvent, gateway: &str, proxies: usize) {
    let labels = GatewayLabels {
        gateway: gateway.to_string(),
    };
    shared
        .metrics
        .connected_proxies
        .get_or_create(&labels)
        .set(proxies as i64);
    match event {
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
}
