//! Names that parts of one Gateway's configuration share: upstreams,
//! endpoints and Secrets. The whole build merges them as it meets them: an
//! upstream keeps the first settings written and gathers every origin in
//! order, endpoints and Secrets are the last ones written. Here each name
//! keeps what each part wrote under it ([`Source`], in the whole build's
//! order), and a name that one part changes is merged again from those.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use legate_xds::ir;

use crate::services::{Reads, ResolvedPort, ServiceIndex, ServiceKey};

/// A Service port, whose endpoints the index answers.
pub(super) type ServicePort = (ServiceKey, ResolvedPort);

/// Who wrote a shared name, in the order the whole build writes them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Source {
    /// Listeners and TLSContexts.
    Before,
    /// The Mappings of one match (by [`crate::mappings::match_key`]).
    Group(Arc<str>),
    /// AuthService, RateLimitService, tracing, TCPMappings.
    After,
}

/// What one part wrote under shared names, on its way to [`Sources`].
#[derive(Debug, Default)]
pub(super) struct Written {
    upstreams: BTreeMap<String, ir::Upstream>,
    endpoints: BTreeMap<String, Vec<ir::Endpoint>>,
    secrets: BTreeMap<String, ir::Secret>,
}

impl Written {
    /// Takes the shared names out of `config`.
    pub fn take(config: &mut ir::Gateway) -> Written {
        Written {
            upstreams: std::mem::take(&mut config.upstreams),
            endpoints: std::mem::take(&mut config.endpoints),
            secrets: std::mem::take(&mut config.secrets),
        }
    }
}

/// The names one part wrote, to take them back.
#[derive(Debug, Default)]
pub(super) struct Names {
    upstreams: Vec<String>,
    endpoints: Vec<String>,
    secrets: Vec<String>,
}

/// What every part wrote under each shared name.
#[derive(Debug, Default)]
pub(super) struct Sources {
    upstreams: HashMap<String, Upstreams>,
    endpoints: HashMap<String, BTreeMap<Source, Endpoints>>,
    secrets: HashMap<String, BTreeMap<Source, ir::Secret>>,
}

/// Endpoints one part wrote under a name.
#[derive(Debug)]
enum Endpoints {
    Fixed(Vec<ir::Endpoint>),
    /// Those of a Service port, as the index answers them now: when only
    /// EndpointSlices change, the name is merged again and nothing else.
    Of(ServicePort),
}

impl Endpoints {
    fn now(&self, index: &ServiceIndex) -> Vec<ir::Endpoint> {
        match self {
            Endpoints::Fixed(endpoints) => endpoints.clone(),
            Endpoints::Of(((namespace, name), port)) => index.endpoints(namespace, name, port),
        }
    }
}

/// The upstreams written under one name.
#[derive(Debug, Default)]
struct Upstreams {
    by_source: BTreeMap<Source, ir::Upstream>,
    /// In how many sources each origin is, and how many origins are in more
    /// than one: while none is, merging the origins is putting them end to
    /// end (a Service that five thousand Mappings share has as many).
    counts: HashMap<ir::ObjectRef, u32>,
    repeated: usize,
}

impl Upstreams {
    fn insert(&mut self, source: Source, upstream: ir::Upstream) {
        self.forget(&source);
        for origin in &upstream.origins {
            let count = self.counts.entry(origin.clone()).or_insert(0);
            *count += 1;
            if *count == 2 {
                self.repeated += 1;
            }
        }
        self.by_source.insert(source, upstream);
    }

    fn forget(&mut self, source: &Source) {
        let Some(upstream) = self.by_source.remove(source) else {
            return;
        };
        for origin in &upstream.origins {
            if let Some(count) = self.counts.get_mut(origin) {
                *count -= 1;
                match *count {
                    0 => {
                        self.counts.remove(origin);
                    }
                    1 => self.repeated -= 1,
                    _ => {}
                }
            }
        }
    }

    /// The first upstream written, with the origins of all in order.
    fn merged(&self) -> Option<ir::Upstream> {
        let mut all = self.by_source.values();
        let mut merged = all.next()?.clone();
        if self.repeated == 0 {
            for other in all {
                merged.origins.extend(other.origins.iter().cloned());
            }
            return Some(merged);
        }
        let mut seen: HashSet<ir::ObjectRef> = merged.origins.iter().cloned().collect();
        for other in all {
            for origin in &other.origins {
                if seen.insert(origin.clone()) {
                    merged.origins.push(origin.clone());
                }
            }
        }
        Some(merged)
    }
}

/// Names to merge again.
#[derive(Debug, Default)]
pub(super) struct Stale {
    upstreams: BTreeSet<String>,
    endpoints: BTreeSet<String>,
    secrets: BTreeSet<String>,
}

impl Stale {
    /// The endpoints under `name` are to be merged again.
    pub fn endpoints(&mut self, name: &str) {
        if !self.endpoints.contains(name) {
            self.endpoints.insert(name.to_string());
        }
    }
}

impl Sources {
    /// Keeps what `source` wrote (with `reads`, what it read while it
    /// wrote: the endpoints of a Service port are kept as such); returns
    /// the names, to take it back.
    pub fn add(
        &mut self,
        written: Written,
        source: &Source,
        reads: Option<&Reads>,
        stale: &mut Stale,
    ) -> Names {
        let mut names = Names::default();
        for (name, upstream) in written.upstreams {
            self.upstreams
                .entry(name.clone())
                .or_default()
                .insert(source.clone(), upstream);
            stale.upstreams.insert(name.clone());
            names.upstreams.push(name);
        }
        for (name, endpoints) in written.endpoints {
            // What a name holds is what was written last under it.
            let last = reads.and_then(|r| r.endpoints.iter().rev().find(|w| w.upstream == name));
            let endpoints = match last.and_then(|w| w.source.clone()) {
                Some(port) => Endpoints::Of(port),
                None => Endpoints::Fixed(endpoints),
            };
            self.endpoints
                .entry(name.clone())
                .or_default()
                .insert(source.clone(), endpoints);
            stale.endpoints.insert(name.clone());
            names.endpoints.push(name);
        }
        for (name, secret) in written.secrets {
            self.secrets
                .entry(name.clone())
                .or_default()
                .insert(source.clone(), secret);
            stale.secrets.insert(name.clone());
            names.secrets.push(name);
        }
        names
    }

    /// Takes back what `source` wrote under `names`.
    pub fn remove(&mut self, names: &Names, source: &Source, stale: &mut Stale) {
        for name in &names.upstreams {
            if let Some(upstreams) = self.upstreams.get_mut(name) {
                upstreams.forget(source);
                if upstreams.by_source.is_empty() {
                    self.upstreams.remove(name);
                }
            }
            stale.upstreams.insert(name.clone());
        }
        for name in &names.endpoints {
            forget(&mut self.endpoints, name, source);
            stale.endpoints.insert(name.clone());
        }
        for name in &names.secrets {
            forget(&mut self.secrets, name, source);
            stale.secrets.insert(name.clone());
        }
    }

    /// Merges the `stale` names of `config` again, as the whole build would
    /// have: an upstream from the first source with the origins of all in
    /// order, endpoints and Secrets from the last.
    /// Adds to `touched` what it writes.
    pub fn merge(
        &self,
        stale: &Stale,
        config: &mut ir::Gateway,
        index: &ServiceIndex,
        touched: &mut ir::Touched,
    ) {
        touched.upstreams.extend(stale.upstreams.iter().cloned());
        touched.endpoints.extend(stale.endpoints.iter().cloned());
        touched.secrets.extend(stale.secrets.iter().cloned());
        for name in &stale.upstreams {
            match self.upstreams.get(name).and_then(Upstreams::merged) {
                Some(upstream) => config.upstreams.insert(name.clone(), upstream),
                None => config.upstreams.remove(name),
            };
        }
        for name in &stale.endpoints {
            match self.endpoints.get(name).and_then(|w| w.values().next_back()) {
                Some(endpoints) => config.endpoints.insert(name.clone(), endpoints.now(index)),
                None => config.endpoints.remove(name),
            };
        }
        for name in &stale.secrets {
            match self.secrets.get(name).and_then(|w| w.values().next_back()) {
                Some(secret) => config.secrets.insert(name.clone(), secret.clone()),
                None => config.secrets.remove(name),
            };
        }
    }
}

fn forget<V>(writers: &mut HashMap<String, BTreeMap<Source, V>>, name: &str, source: &Source) {
    if let Some(by_source) = writers.get_mut(name) {
        by_source.remove(source);
        if by_source.is_empty() {
            writers.remove(name);
        }
    }
}

/// An empty configuration to judge a group into; `ir::Gateway::default()`
/// would build the default access log's fields only to drop them.
pub(super) fn scratch() -> ir::Gateway {
    ir::Gateway {
        listeners: BTreeMap::new(),
        routes: BTreeMap::new(),
        tcp_routes: BTreeMap::new(),
        upstreams: BTreeMap::new(),
        endpoints: BTreeMap::new(),
        secrets: BTreeMap::new(),
        auth: None,
        rate_limit: None,
        namespace_auth: BTreeMap::new(),
        namespace_rate_limit: BTreeMap::new(),
        observability: ir::Observability {
            access_log: ir::AccessLog::Off,
            otlp_log: None,
            tracing: None,
        },
    }
}
