//! Which route of a Gateway serves a request, and why no other did, judged
//! on the [`crate::table`] Envoy was sent, the way Envoy judges it: the
//! listener by port, the virtual host by name (exact, then the longest
//! `*.suffix`, then `*`), then the first route of that virtual host whose
//! method, path, headers and query all match.

pub mod matching;
pub mod request;

pub use matching::Miss;
pub use request::{Request, RequestError};

use crate::ir;
use crate::table::{HostTable, ListenerTable, RouteTable};
use crate::translate::order::{Rule, SortKey};

/// The answer for one request on one Gateway.
#[derive(Debug, Clone)]
pub struct Explanation<'a> {
    pub request: Request,
    pub outcome: Outcome<'a>,
    /// The listener on the request's port.
    pub listener: Option<&'a ir::Listener>,
    /// The virtual host Envoy picked (its domain).
    pub virtual_host: Option<String>,
    /// The routes of that virtual host in Envoy's order, each judged, up to
    /// the one that serves; after it, only those that also match (they lost
    /// on order).
    pub routes: Vec<Judged<'a>>,
    /// Every virtual host of the listener, when none fits the host.
    pub hosts: Vec<String>,
    /// The ports that do have a listener, when none is on the request's.
    pub ports: Vec<u16>,
}

#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    Served(&'a ir::Route),
    /// Nothing listens on the port: the connection is refused.
    NoListener,
    /// No virtual host fits the host, and none serves every host: 404.
    NoVirtualHost,
    /// The virtual host has no route that matches: 404.
    NoRoute,
}

#[derive(Debug, Clone)]
pub struct Judged<'a> {
    pub route: &'a ir::Route,
    /// 1-based place in the virtual host.
    pub position: usize,
    pub judgement: Judgement,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    Serves,
    /// Every reason it does not match; the first is the one to tell.
    Misses(Vec<Miss>),
    /// It matches too, but the route that serves comes first, for this reason.
    Behind(String),
}

/// Judges `request` against `table`.
pub fn explain<'a>(table: &RouteTable<'a>, request: Request) -> Explanation<'a> {
    let mut out = Explanation {
        outcome: Outcome::NoListener,
        listener: None,
        virtual_host: None,
        routes: Vec::new(),
        hosts: Vec::new(),
        ports: Vec::new(),
        request,
    };
    let Some(listener) = table
        .listeners
        .iter()
        .find(|l| l.listener.port == out.request.port)
    else {
        out.ports = table.listeners.iter().map(|l| l.listener.port).collect();
        return out;
    };
    out.listener = Some(listener.listener);
    let Some(vhost) = listener.virtual_host_for(&out.request.host) else {
        out.outcome = Outcome::NoVirtualHost;
        out.hosts = listener_hosts(listener);
        return out;
    };
    out.virtual_host = Some(vhost.domain.clone());
    let (outcome, routes) = judge(vhost, &out.request);
    out.outcome = outcome;
    out.routes = routes;
    out
}

fn listener_hosts(listener: &ListenerTable<'_>) -> Vec<String> {
    listener
        .hosts
        .iter()
        .filter(|h| !h.routes.is_empty())
        .map(|h| h.domain.clone())
        .collect()
}

fn judge<'a>(vhost: &HostTable<'a>, request: &Request) -> (Outcome<'a>, Vec<Judged<'a>>) {
    let mut routes = Vec::new();
    let mut served: Option<&'a ir::Route> = None;
    for (i, route) in vhost.routes.iter().copied().enumerate() {
        let misses = matching::misses(route, request);
        let judgement = match (served, misses.is_empty()) {
            (None, true) => {
                served = Some(route);
                Judgement::Serves
            }
            (None, false) => Judgement::Misses(misses),
            (Some(winner), true) => Judgement::Behind(why_ahead(winner, route)),
            (Some(_), false) => continue,
        };
        routes.push(Judged {
            route,
            position: i + 1,
            judgement,
        });
    }
    let outcome = served.map_or(Outcome::NoRoute, Outcome::Served);
    (outcome, routes)
}

/// Why `winner` comes before `loser` in Envoy's order ([`SortKey`]).
pub fn why_ahead(winner: &ir::Route, loser: &ir::Route) -> String {
    let (w, l) = (&winner.matcher, &loser.matcher);
    let (kw, kl) = (SortKey::of(winner), SortKey::of(loser));
    match kw.deciding_rule(&kl) {
        Rule::Precedence => format!(
            "precedence {} is higher than {}",
            winner.precedence, loser.precedence
        ),
        Rule::PathLength => format!(
            "its path ({}) is longer than {}",
            matching::describe_path(&w.path, w.case_sensitive),
            matching::describe_path(&l.path, l.case_sensitive)
        ),
        Rule::Matchers => format!(
            "it tests more (method, headers, query: {} against {})",
            kw.matchers(),
            kl.matchers()
        ),
        Rule::PathKind => "an exact path comes before a prefix, and a prefix before a regex".to_owned(),
        Rule::Host => "its host is more specific (a name before a glob before every host)".to_owned(),
        Rule::Id => format!(
            "all else equal, routes go by name: {} before {}",
            winner.id, loser.id
        ),
    }
}

impl Explanation<'_> {
    /// The routes that came closest when none matched: a route whose path
    /// matches before one whose path does not, then the fewest reasons not
    /// to match, then the longest stretch of the path in common.
    pub fn closest(&self) -> Vec<&Judged<'_>> {
        let distance = |j: &Judged<'_>| match &j.judgement {
            Judgement::Misses(m) => {
                let path_missed = m.iter().any(|miss| matches!(miss, Miss::Path { .. }));
                let common = match &j.route.matcher.path {
                    ir::PathMatch::Prefix(p) | ir::PathMatch::Exact(p) => p
                        .bytes()
                        .zip(self.request.path.bytes())
                        .take_while(|(a, b)| a == b)
                        .count(),
                    ir::PathMatch::Regex(_) => 0,
                };
                (path_missed, m.len(), std::cmp::Reverse(common))
            }
            _ => (true, usize::MAX, std::cmp::Reverse(0)),
        };
        let missed = || {
            self.routes
                .iter()
                .filter(|j| matches!(j.judgement, Judgement::Misses(_)))
        };
        let Some(nearest) = missed().map(distance).min() else {
            return Vec::new();
        };
        missed().filter(|j| distance(j) == nearest).collect()
    }

    /// Whether Envoy answers 404: no route matches, or only one of
    /// Legate's own last routes that answer 404 (a host assigned to a
    /// namespace, or the AuthService's fallback that lets it check every
    /// request).
    pub fn not_found(&self) -> bool {
        match self.outcome {
            Outcome::NoVirtualHost | Outcome::NoRoute => true,
            Outcome::Served(route) => {
                route.origin.kind() != "Mapping"
                    && matches!(route.action, ir::RouteAction::DirectResponse { status: 404, .. })
            }
            Outcome::NoListener => false,
        }
    }

    /// The answer in one line: who serves, or why nobody does.
    pub fn summary(&self) -> String {
        let r = &self.request;
        let listener = |l: &ir::Listener| format!("listener {} (port {})", l.name, l.port);
        let closest = || match self.closest().first() {
            None => String::new(),
            Some(near) => {
                let why = match &near.judgement {
                    Judgement::Misses(m) => m.first().map(ToString::to_string).unwrap_or_default(),
                    _ => String::new(),
                };
                format!(
                    "; closest: {} {} ({why})",
                    near.route.origin.kind(),
                    owner(near.route)
                )
            }
        };
        match (self.outcome, self.listener) {
            (Outcome::Served(route), _) if self.not_found() => format!(
                "404: no route for host {} matches but the last one, {} {}'s, which answers 404{}",
                r.host,
                route.origin.kind(),
                owner(route),
                closest()
            ),
            (Outcome::Served(route), _) => format!(
                "{} {}{}: served by {} {} {}",
                r.method,
                r.host,
                r.path,
                route.origin.kind(),
                owner(route),
                crate::table::describe::action_text(&route.action)
            ),
            (Outcome::NoListener, _) => {
                let ports: Vec<String> = self.ports.iter().map(u16::to_string).collect();
                format!(
                    "connection refused: no listener on port {} (listening: {})",
                    r.port,
                    if ports.is_empty() {
                        "none".to_owned()
                    } else {
                        ports.join(", ")
                    }
                )
            }
            (Outcome::NoVirtualHost, Some(l)) => format!(
                "404: no route serves host {} on {}, and no route serves every host (hosts: {})",
                r.host,
                listener(l),
                if self.hosts.is_empty() {
                    "none".to_owned()
                } else {
                    self.hosts.join(", ")
                }
            ),
            (Outcome::NoRoute, Some(l)) => {
                if self.routes.is_empty() {
                    format!("404: host {} on {} has no route", r.host, listener(l))
                } else {
                    format!(
                        "404: none of the {} routes for host {} matches{}",
                        self.routes.len(),
                        r.host,
                        closest()
                    )
                }
            }
            (_, None) => "no listener".to_owned(),
        }
    }
}

/// `namespace/name` of a route's owner, with the objects sharing it.
pub fn owner(route: &ir::Route) -> String {
    let key = |o: &ir::ObjectRef| format!("{}/{}", o.namespace(), o.name());
    let mut text = key(&route.origin);
    for co in &route.co_origins {
        text.push_str(" + ");
        text.push_str(&key(co));
    }
    text
}

#[cfg(test)]
mod tests;
