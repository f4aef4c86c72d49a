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

/// What one part wrote under shared names, sorted by name. Vectors rather
/// than maps: a group writes one or two of each, and five thousand small
/// maps cost more to build and drop than the judging itself.
#[derive(Debug, Default)]
pub(super) struct Written {
    upstreams: Vec<(String, ir::Upstream)>,
    endpoints: Vec<(String, Vec<ir::Endpoint>)>,
    secrets: Vec<(String, ir::Secret)>,
}

impl Written {
    /// Takes the shared names out of `config`.
    pub fn take(config: &mut ir::Gateway) -> Written {
        Written {
            upstreams: std::mem::take(&mut config.upstreams).into_iter().collect(),
            endpoints: std::mem::take(&mut config.endpoints).into_iter().collect(),
            secrets: std::mem::take(&mut config.secrets).into_iter().collect(),
        }
    }

    /// Writes `endpoints` under `name` again.
    pub fn set_endpoints(&mut self, name: &str, endpoints: Vec<ir::Endpoint>) {
        if let Ok(at) = self.endpoints.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            self.endpoints[at].1 = endpoints;
        }
    }

    fn names(&self) -> [Vec<&String>; 3] {
        [
            self.upstreams.iter().map(|(n, _)| n).collect(),
            self.endpoints.iter().map(|(n, _)| n).collect(),
            self.secrets.iter().map(|(n, _)| n).collect(),
        ]
    }
}

/// The value of `name` in pairs sorted by name.
fn find<'a, V>(pairs: &'a [(String, V)], name: &str) -> Option<&'a V> {
    let at = pairs.binary_search_by(|(n, _)| n.as_str().cmp(name)).ok()?;
    pairs.get(at).map(|(_, v)| v)
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
    /// Records `source` as a writer of every shared name in `written`.
    pub fn add(&mut self, written: &Written, source: &Source, stale: &mut Stale) {
        for (names, writers, stale) in self.kinds(written, stale) {
            for name in names {
                match writers.get_mut(name) {
                    Some(set) => {
                        set.insert(source.clone());
                    }
                    None => {
                        writers.insert(name.clone(), BTreeSet::from([source.clone()]));
                    }
                }
                if !stale.contains(name) {
                    stale.insert(name.clone());
                }
            }
        }
    }

    /// Forgets `source` as a writer of every shared name in `written`.
    pub fn remove(&mut self, written: &Written, source: &Source, stale: &mut Stale) {
        for (names, writers, stale) in self.kinds(written, stale) {
            for name in names {
                if let Some(set) = writers.get_mut(name) {
                    set.remove(source);
                    if set.is_empty() {
                        writers.remove(name);
                    }
                }
                if !stale.contains(name) {
                    stale.insert(name.clone());
                }
            }
        }
    }

    /// For each kind: the names written, their writers, the stale ones.
    fn kinds<'a>(
        &'a mut self,
        written: &'a Written,
        stale: &'a mut Stale,
    ) -> [(Vec<&'a String>, &'a mut Writers, &'a mut BTreeSet<String>); 3] {
        let [upstreams, endpoints, secrets] = written.names();
        [
            (upstreams, &mut self.upstreams, &mut stale.upstreams),
            (endpoints, &mut self.endpoints, &mut stale.endpoints),
            (secrets, &mut self.secrets, &mut stale.secrets),
        ]
    }

    /// Merges the `stale` names of `config` again from what their sources
    /// wrote (`written` finds it), as the whole build would have.
    pub fn merge<'a>(
        &self,
        stale: &Stale,
        config: &mut ir::Gateway,
        written: impl Fn(&Source) -> Option<&'a Written>,
    ) {
        for name in &stale.upstreams {
            let mut found = self
                .upstreams
                .get(name)
                .into_iter()
                .flatten()
                .filter_map(|s| find(&written(s)?.upstreams, name));
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
                .find_map(|s| find(&written(s)?.endpoints, name));
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
                .find_map(|s| find(&written(s)?.secrets, name));
            match last {
                Some(secret) => config.secrets.insert(name.clone(), secret.clone()),
                None => config.secrets.remove(name),
            };
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
        observability: ir::Observability {
            access_log: ir::AccessLog::Off,
            tracing: None,
        },
    }
}
