//! The model kept between worlds: [`Incremental::build`] answers exactly
//! what [`crate::build_with`] answers, and for a world that differs from the
//! last by a few Mappings, Services, EndpointSlices or Secrets it judges
//! again only what those can change.
//!
//! What a change can reach:
//! - a Mapping: the group of Mappings with its match, before and after the
//!   change, on each Gateway (conflicts and weights are settled within a
//!   group), and the verdicts of their members;
//! - a Service: the groups that looked it up (found or not);
//! - an EndpointSlice: the endpoints the groups wrote for its Service's
//!   ports (the groups themselves when a port gains its first ready
//!   endpoint or loses its last);
//! - a Secret: the groups whose `upstreamTls` read it (found or not);
//! - a quarantine entry: the Mapping it names;
//! - a TLSContext, AuthService, RateLimitService or TCPMapping, a Namespace
//!   while a Gateway selects namespaces by label, or a Service, EndpointSlice
//!   or Secret that one of those reads: each Gateway's parts before and
//!   after its HTTP routes (listeners, TLS, Gateway-wide services, TCP
//!   routes) and their verdicts, every Mapping's place (a Namespace's labels
//!   attach it or not), and the groups whose place or listeners changed.
//!
//! A Gateway's spec (the same Gateways live) is followed the same way, its
//! route defaults judging its groups again if they changed. A Gateway that
//! comes or goes, the listen address, many changes at once, and two
//! objects of one kind with one name build the model whole again.

mod diff;
mod gateway;
mod sources;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_walk;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use legate_crds::Mapping;
use legate_xds::ir::{self, ObjectRef};

use crate::mappings;
use crate::names::{gateway_key, object_ref};
use crate::secrets::{self, SecretKey};
use crate::server_tls;
use crate::services::{self, ServiceIndex, ServiceKey};
use crate::verdicts::{Problem, Verdict, Verdicts};
use crate::world::{Quarantine, World};
use crate::{Model, attach, gateways, live_gateways};

use diff::{Frame, FrameChange, Seen};
use gateway::{Effect, GatewayState};

/// Past this many changed objects of a kind (and an eighth of them), a
/// whole build is cheaper than following each change.
const MANY_CHANGES: usize = 64;

/// The model, kept up to date from one world to the next.
///
/// ```
/// use legate_model::{Incremental, Quarantine, World};
///
/// let mut model = Incremental::new();
/// let (world, quarantine) = (World::default(), Quarantine::new());
/// // Each new world (the operator's stores after a change) builds on the last.
/// let built = model.build(&world, &quarantine);
/// assert!(built.gateways.is_empty());
/// ```
#[derive(Default)]
pub struct Incremental {
    model: Model,
    state: Option<State>,
    whole_builds: u64,
    reach: Reach,
}

/// What the last [`Incremental::build`] may have changed in its model, so
/// that whoever passes the model on looks at that alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Reach {
    /// Built whole: anything may have changed (and Gateways come or gone).
    #[default]
    Everything,
    /// Followed the changes: every entry that differs from the model
    /// before is named here (some named ones may not differ).
    Entries {
        /// Object keys whose verdict may differ, or be gone.
        verdicts: BTreeSet<String>,
        /// Per Gateway key (the same Gateways as before), what may differ
        /// in its configuration.
        gateways: BTreeMap<String, ir::Touched>,
    },
}

/// What the last build saw and made, to compare the next world with.
#[derive(Debug)]
struct State {
    frame: Frame,
    quarantine: Quarantine,
    mappings: Seen<Mapping>,
    services: Seen<Service>,
    slices: Seen<EndpointSlice>,
    index: ServiceIndex,
    /// Every Mapping, by object key.
    by_key: HashMap<String, MappingState>,
    /// One per Gateway that is not being deleted, in the world's order.
    gateways: Vec<GatewayState>,
    /// The keys of the Secrets, to tell two with one name.
    secret_keys: HashSet<SecretKey>,
    secrets: Seen<Secret>,
    /// Services and Secrets read outside the Mappings' routes: a change to
    /// one of them builds the model whole.
    frame_reads: FrameReads,
}

/// Services and Secrets read outside the Mappings' routes.
#[derive(Debug, Default)]
struct FrameReads {
    services: HashSet<ServiceKey>,
    secrets: HashSet<SecretKey>,
}

/// What the model keeps about one Mapping, worked out once per version.
#[derive(Debug)]
struct MappingState {
    object: Arc<Mapping>,
    reference: ObjectRef,
    match_key: Arc<str>,
    validity: Result<(), Problem>,
}

impl MappingState {
    fn new(object: &Arc<Mapping>, reference: ObjectRef) -> MappingState {
        MappingState {
            object: object.clone(),
            reference,
            match_key: mappings::match_key(object).into(),
            validity: mappings::validate(object),
        }
    }
}

impl Incremental {
    pub fn new() -> Incremental {
        Incremental::default()
    }

    /// The model of `world` without the `quarantine`d objects: always equal
    /// to [`crate::build_with`]`(world, quarantine)`. Objects that did not
    /// change since the last call are expected as the same `Arc`s, else as
    /// the same uid at the same resourceVersion (for Legate's kinds, the
    /// same generation: their status is not read); anything else counts as
    /// a change.
    pub fn build(&mut self, world: &World, quarantine: &Quarantine) -> &Model {
        match self.follow(world, quarantine) {
            Some(reach) => self.reach = reach,
            None => {
                self.whole_builds += 1;
                self.build_whole(world, quarantine);
                self.reach = Reach::Everything;
            }
        }
        &self.model
    }

    /// What the last build may have changed.
    pub fn reach(&self) -> &Reach {
        &self.reach
    }

    /// The model of the last [`Incremental::build`].
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// How many builds judged the whole world (the first, and every change
    /// whose reach was too wide to follow), for metrics.
    pub fn whole_builds(&self) -> u64 {
        self.whole_builds
    }

    /// Builds everything, and keeps what the next world is compared with.
    fn build_whole(&mut self, world: &World, quarantine: &Quarantine) {
        self.state = None;
        let index = ServiceIndex::new(world);
        let mut by_key = HashMap::with_capacity(world.mappings.len());
        for mapping in &world.mappings {
            let reference = object_ref(mapping.as_ref());
            by_key.insert(reference.key(), MappingState::new(mapping, reference));
        }
        if by_key.len() != world.mappings.len() || has_twins(world, &index) {
            // Which twin wins depends on the order of the lists: leave it
            // to the whole build, every time, while twins last.
            self.model = crate::build_with(world, quarantine);
            return;
        }
        let mut model = Model::default();
        let mut frame_reads = FrameReads::default();
        for context in &world.tls_contexts {
            frame_reads.secrets.extend(server_tls::secrets_read(context));
        }
        let mut states = Vec::new();
        for gateway in live_gateways(world) {
            let (mut state, mut config) = GatewayState::new(
                world,
                quarantine,
                gateway,
                &index,
                &mut model.verdicts,
                &mut frame_reads,
            );
            let mut dirty = HashSet::new();
            for (key, mapping) in &by_key {
                state.place(world, quarantine, key, Some(mapping), true, &mut dirty);
            }
            state.rejudge(world, &index, dirty, &mut config, None);
            // What the next build changes is measured from here.
            state.take_touched();
            model.gateways.insert(state.key.clone(), config);
            states.push(state);
        }
        gateways::judge_gateways(world, &mut model.verdicts);
        attach::judge_unattached_except_mappings(world, &mut model.verdicts);
        for (key, mapping) in &by_key {
            let verdict = mapping_verdict(world, key, mapping, &states);
            model.verdicts.insert(key.clone(), verdict);
        }
        self.model = model;
        self.state = Some(State {
            frame: Frame::of(world),
            quarantine: quarantine.clone(),
            mappings: Seen::new(&world.mappings),
            services: Seen::new(&world.services),
            slices: Seen::new(&world.endpoint_slices),
            index,
            by_key,
            gateways: states,
            secret_keys: world.secrets.iter().map(|s| secrets::secret_key(s)).collect(),
            secrets: Seen::new(&world.secrets),
            frame_reads,
        });
    }

    /// Follows the changes since the last build, and says what they
    /// reached; `None` when they reach too far (or nothing was built yet),
    /// and the model must be built whole.
    fn follow(&mut self, world: &World, quarantine: &Quarantine) -> Option<Reach> {
        let Incremental { model, state, .. } = self;
        let state = state.as_mut()?;
        // Whether the parts of each Gateway before and after its HTTP
        // routes are to be built again.
        let change = state.frame.compare(world);
        let mut refresh = match change {
            FrameChange::Gateways => return None,
            FrameChange::GatewaySpecs | FrameChange::Parts => true,
            FrameChange::Nothing => false,
        };
        let mappings = state.mappings.update(&world.mappings);
        let services = state.services.update(&world.services);
        let slices = state.slices.update(&world.endpoint_slices);
        let secrets = state.secrets.update(&world.secrets);
        let many = |changes: usize, of: usize| changes > MANY_CHANGES && changes > of / 8;
        if many(mappings.len(), world.mappings.len())
            || many(services.len() + slices.len(), world.services.len())
            || many(secrets.len(), world.secrets.len())
        {
            return None;
        }

        // Secrets that may read differently now.
        let mut changed_secrets: BTreeSet<SecretKey> = BTreeSet::new();
        for secret in &secrets.removed {
            let key = secrets::secret_key(secret);
            state.secret_keys.remove(&key);
            changed_secrets.insert(key);
        }
        for secret in &secrets.added {
            let key = secrets::secret_key(secret);
            if !state.secret_keys.insert(key.clone()) {
                return None; // two Secrets with one name
            }
            changed_secrets.insert(key);
        }
        refresh |= changed_secrets
            .iter()
            .any(|s| state.frame_reads.secrets.contains(s));

        // Services whose lookups may answer differently now: those that
        // changed (every answer), those whose EndpointSlices alone changed
        // (only their endpoints).
        let mut changed_services: BTreeSet<ServiceKey> = BTreeSet::new();
        let mut changed_slices: BTreeSet<ServiceKey> = BTreeSet::new();
        for service in &services.removed {
            state.index.remove_service(service);
            changed_services.insert(services::service_key(service));
        }
        for slice in &slices.removed {
            changed_slices.extend(state.index.remove_slice(slice));
        }
        for service in &services.added {
            if state.index.insert_service(service.clone()).is_some() {
                return None; // two Services with one name
            }
            changed_services.insert(services::service_key(service));
        }
        for slice in &slices.added {
            changed_slices.extend(state.index.insert_slice(slice.clone()));
        }
        refresh |= changed_services
            .iter()
            .chain(&changed_slices)
            .any(|s| state.frame_reads.services.contains(s));
        changed_slices.retain(|s| !changed_services.contains(s));

        // Mappings to place again: changed ones, and those whose quarantine changed.
        let mut changed: BTreeSet<String> = BTreeSet::new();
        for mapping in &mappings.removed {
            let key = object_ref(mapping.as_ref()).key();
            state.by_key.remove(&key);
            changed.insert(key);
        }
        for mapping in &mappings.added {
            let reference = object_ref(mapping.as_ref());
            let key = reference.key();
            if state.by_key.contains_key(&key) {
                return None; // two Mappings with one name
            }
            state
                .by_key
                .insert(key.clone(), MappingState::new(mapping, reference));
            changed.insert(key);
        }
        if state.quarantine != *quarantine {
            let keys = state.quarantine.changes(quarantine);
            // TLSContexts and TCPMappings are the frame's.
            refresh |= keys.iter().any(|key| !key.starts_with("Mapping/"));
            changed.extend(keys);
            state.quarantine = quarantine.clone();
        }

        // Claims on hosts: a Mapping that comes, goes or moves may hand a
        // host to another namespace, which judges again the Mappings on it
        // and, when a TLSContext or TCPMapping claims there too, the frame.
        let mut rechecks: Vec<BTreeSet<String>> = Vec::new();
        if !refresh {
            for gateway in &mut state.gateways {
                let patterns: Vec<String> = changed
                    .iter()
                    .flat_map(|key| gateway.reclaim(world, key, state.by_key.get(key)))
                    .collect();
                refresh |= gateway.frame_claims_overlap(&patterns);
                let mut keys = BTreeSet::new();
                gateway.claimants_under(&patterns, &mut keys);
                rechecks.push(keys);
            }
        }

        let mut touched = changed.clone();
        let mut frame_verdicts = Verdicts::default();
        let mut frame_reads = FrameReads::default();
        if refresh {
            for context in &world.tls_contexts {
                frame_reads.secrets.extend(server_tls::secrets_read(context));
            }
        }
        for (at, gateway) in state.gateways.iter_mut().enumerate() {
            let Some(config) = model.gateways.get_mut(&gateway.key) else {
                return None; // every Gateway state has its configuration
            };
            let mut dirty = HashSet::new();
            if change == FrameChange::GatewaySpecs {
                let now = live_gateways(world).find(|g| gateway_key(g) == gateway.key);
                let Some(now) = now else {
                    return None; // the same Gateways are live
                };
                gateway.respec(now, &mut dirty);
            }
            if refresh {
                gateway.refresh_frame(
                    world,
                    quarantine,
                    &state.index,
                    &mut frame_verdicts,
                    &mut frame_reads,
                    config,
                    &mut dirty,
                );
                // A Namespace's labels may attach Mappings or let them go.
                for (key, mapping) in &state.by_key {
                    if !changed.contains(key)
                        && gateway.place(world, quarantine, key, Some(mapping), false, &mut dirty)
                    {
                        touched.insert(key.clone());
                    }
                }
            }
            if !refresh {
                // Mappings on a host whose owner may have changed.
                for key in rechecks.get(at).into_iter().flatten() {
                    if !changed.contains(key)
                        && gateway.place(world, quarantine, key, state.by_key.get(key), false, &mut dirty)
                    {
                        touched.insert(key.clone());
                    }
                }
            }
            for key in &changed {
                gateway.place(world, quarantine, key, state.by_key.get(key), true, &mut dirty);
            }
            for service in &changed_services {
                gateway.readers_of(service, &mut dirty);
            }
            for secret in &changed_secrets {
                gateway.secret_readers_of(secret, &mut dirty);
            }
            if !changed_slices.is_empty() {
                gateway.rewrite_endpoints(&state.index, &changed_slices, &mut dirty, config);
            }
            gateway.rejudge(world, &state.index, dirty, config, Some(&mut touched));
        }
        let mut reached_verdicts = touched.clone();
        if refresh {
            // Every verdict but the Mappings' came from the parts built again.
            gateways::judge_gateways(world, &mut frame_verdicts);
            attach::judge_unattached_except_mappings(world, &mut frame_verdicts);
            let not_mapping = |key: &&String| !key.starts_with("Mapping/");
            reached_verdicts.extend(model.verdicts.keys().filter(not_mapping).cloned());
            reached_verdicts.extend(frame_verdicts.keys().filter(not_mapping).cloned());
            model.verdicts.retain(|key| key.starts_with("Mapping/"));
            model.verdicts.append(frame_verdicts);
            state.frame = Frame::of(world);
            state.frame_reads = frame_reads;
        }
        for key in &touched {
            match state.by_key.get(key) {
                Some(mapping) => {
                    let verdict = mapping_verdict(world, key, mapping, &state.gateways);
                    model.verdicts.insert(key.clone(), verdict);
                }
                None if key.starts_with("Mapping/") => model.verdicts.remove(key),
                // A quarantined object of another kind: the model ignores it.
                None => {}
            }
        }
        let gateways = state
            .gateways
            .iter_mut()
            .map(|g| (g.key.clone(), g.take_touched()))
            .collect();
        Some(Reach::Entries {
            verdicts: reached_verdicts,
            gateways,
        })
    }
}

impl fmt::Debug for Incremental {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incremental")
            .field("gateways", &self.model.gateways.len())
            .field("verdicts", &self.model.verdicts.len())
            .field("whole_builds", &self.whole_builds)
            .finish()
    }
}

/// Two live Gateways, Services, EndpointSlices or Secrets with one
/// namespace and name.
fn has_twins(world: &World, index: &ServiceIndex) -> bool {
    if index.service_count() != world.services.len() {
        return true;
    }
    let mut gateways = HashSet::new();
    if !live_gateways(world).all(|g| gateways.insert(gateway_key(g))) {
        return true;
    }
    let mut slices = HashSet::with_capacity(world.endpoint_slices.len());
    let mut secrets = HashSet::with_capacity(world.secrets.len());
    !world
        .endpoint_slices
        .iter()
        .all(|s| slices.insert((s.metadata.namespace.as_deref(), s.metadata.name.as_deref())))
        || !world
            .secrets
            .iter()
            .all(|s| secrets.insert((s.metadata.namespace.as_deref(), s.metadata.name.as_deref())))
}

/// A Mapping's verdict: what each Gateway said in turn, as the whole build
/// says it (a refusal on one Gateway stands on the next; a Gateway carries
/// the Mapping only while nothing refused it), then NoGateway if none did.
fn mapping_verdict(world: &World, key: &str, mapping: &MappingState, gateways: &[GatewayState]) -> Verdict {
    let mut verdict = Verdict::new(mapping.reference.clone());
    for gateway in gateways {
        match gateway.effect(key) {
            Effect::Nothing => {}
            Effect::Invalid(problem) => verdict.accepted = Err(problem.clone()),
            Effect::Quarantined => verdict.carried_by(&gateway.key),
            Effect::Judged(here) => {
                if let Err(problem) = &here.accepted {
                    verdict.accepted = Err(problem.clone());
                }
                if let Err(problem) = &here.resolved_refs {
                    verdict.resolved_refs = Err(problem.clone());
                }
                if !here.gateways.is_empty() && verdict.accepted.is_ok() {
                    verdict.carried_by(&gateway.key);
                    for note in &here.notes {
                        verdict.note(note.clone());
                    }
                }
            }
        }
    }
    attach::judge_unattached_mapping(world, &mapping.object, &mut verdict);
    verdict
}
