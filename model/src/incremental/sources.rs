//! Names that parts of one Gateway's configuration share: upstreams,
//! endpoints and Secrets. The whole build merges them as it meets them: an
//! upstream keeps the first settings written and gathers every origin in
//! order, endpoints and Secrets are the last ones written. Here each name
//! remembers which parts wrote it ([`Source`], in the whole build's order),
//! and a name that one part changes is merged again from its sources alone.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use legate_xds::ir;

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

/// The sources of each name of one kind.
type Writers = HashMap<String, BTreeSet<Source>>;

/// The sources of each shared name, by kind.
#[derive(Debug, Default)]
pub(super) struct Sources {
    upstreams: Writers,
    endpoints: Writers,
    secrets: Writers,
}

/// Names to merge again.
#[derive(Debug, Default)]
pub(super) struct Stale {
    upstreams: BTreeSet<String>,
    pub endpoints: BTreeSet<String>,
    secrets: BTreeSet<String>,
}

impl Sources {
    /// Records `source` as a writer of every shared name in `output`.
    pub fn add(&mut self, output: &ir::Gateway, source: &Source, stale: &mut Stale) {
        for (names, sources, stale) in self.kinds(output, stale) {
            for name in names {
                sources.entry(name.clone()).or_default().insert(source.clone());
                stale.insert(name.clone());
            }
        }
    }

    /// Forgets `source` as a writer of every shared name in `output`.
    pub fn remove(&mut self, output: &ir::Gateway, source: &Source, stale: &mut Stale) {
        for (names, sources, stale) in self.kinds(output, stale) {
            for name in names {
                if let Some(set) = sources.get_mut(name) {
                    set.remove(source);
                    if set.is_empty() {
                        sources.remove(name);
                    }
                }
                stale.insert(name.clone());
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn kinds<'a>(
        &'a mut self,
        output: &'a ir::Gateway,
        stale: &'a mut Stale,
    ) -> [(
        Vec<&'a String>,
        &'a mut HashMap<String, BTreeSet<Source>>,
        &'a mut BTreeSet<String>,
    ); 3] {
        [
            (keys(&output.upstreams), &mut self.upstreams, &mut stale.upstreams),
            (keys(&output.endpoints), &mut self.endpoints, &mut stale.endpoints),
            (keys(&output.secrets), &mut self.secrets, &mut stale.secrets),
        ]
    }

    /// Merges the `stale` names of `config` again from what their sources
    /// wrote (`output` finds it), as the whole build would have.
    pub fn merge<'a>(
        &self,
        stale: &Stale,
        config: &mut ir::Gateway,
        output: impl Fn(&Source) -> Option<&'a ir::Gateway>,
    ) {
        for name in &stale.upstreams {
            let mut found = self
                .upstreams
                .get(name)
                .into_iter()
                .flatten()
                .filter_map(|s| output(s)?.upstreams.get(name));
            let Some(first) = found.next() else {
                config.upstreams.remove(name);
                continue;
            };
            let mut merged = first.clone();
            let mut seen: HashSet<ir::ObjectRef> = merged.origins.iter().cloned().collect();
            for other in found {
                for origin in &other.origins {
                    if seen.insert(origin.clone()) {
                        merged.origins.push(origin.clone());
                    }
                }
            }
            config.upstreams.insert(name.clone(), merged);
        }
        for name in &stale.endpoints {
            let last = self
                .endpoints
                .get(name)
                .into_iter()
                .flatten()
                .rev()
                .find_map(|s| output(s)?.endpoints.get(name));
            match last {
                Some(endpoints) => config.endpoints.insert(name.clone(), endpoints.clone()),
                None => config.endpoints.remove(name),
            };
        }
        for name in &stale.secrets {
            let last = self
                .secrets
                .get(name)
                .into_iter()
                .flatten()
                .rev()
                .find_map(|s| output(s)?.secrets.get(name));
            match last {
                Some(secret) => config.secrets.insert(name.clone(), secret.clone()),
                None => config.secrets.remove(name),
            };
        }
    }
}

fn keys<V>(map: &BTreeMap<String, V>) -> Vec<&String> {
    map.keys().collect()
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
        observability: ir::Observability {
            access_log: ir::AccessLog::Off,
            tracing: None,
        },
    }
}
