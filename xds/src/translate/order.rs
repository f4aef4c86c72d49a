//! Route order within a virtual host.
//!
//! Envoy takes the first route that matches, so order is semantics: higher
//! `precedence` first, then the longer path, then more header and query
//! matchers, then the more specific host (a name before a glob before `*`),
//! and finally the route id, so that equal routes never swap places between
//! two translations.

use std::cmp::Reverse;

use crate::ir::{PathMatch, Route, RouteId};

/// Sorts ascending into Envoy's route order.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub struct SortKey {
    precedence: Reverse<i32>,
    path_len: Reverse<usize>,
    matchers: Reverse<usize>,
    /// At equal length an exact path is more specific than a prefix, and a
    /// prefix more predictable than a regex.
    path_kind: u8,
    /// A route for `shop.example.com` beats one for `*.example.com`, which
    /// beats one for `*`, when the virtual host holds them all.
    host: (u8, Reverse<usize>),
    pub id: RouteId,
}

fn host_specificity(host: &str) -> (u8, Reverse<usize>) {
    match host {
        "*" | "" => (2, Reverse(0)),
        glob if glob.starts_with('*') => (1, Reverse(glob.len())),
        _ => (0, Reverse(host.len())),
    }
}

/// The rule of the order that puts one route before another: the first
/// field of [`SortKey`] on which they differ.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Rule {
    Precedence,
    PathLength,
    Matchers,
    PathKind,
    Host,
    Id,
}

impl SortKey {
    /// Which rule orders `self` and `other` (`Id` for equal keys too).
    pub fn deciding_rule(&self, other: &SortKey) -> Rule {
        if self.precedence != other.precedence {
            Rule::Precedence
        } else if self.path_len != other.path_len {
            Rule::PathLength
        } else if self.matchers != other.matchers {
            Rule::Matchers
        } else if self.path_kind != other.path_kind {
            Rule::PathKind
        } else if self.host != other.host {
            Rule::Host
        } else {
            Rule::Id
        }
    }

    /// How many method, header and query tests the route has.
    pub fn matchers(&self) -> usize {
        self.matchers.0
    }

    pub fn of(route: &Route) -> SortKey {
        let m = &route.matcher;
        let (path_len, path_kind) = match &m.path {
            PathMatch::Exact(p) => (p.len(), 0),
            PathMatch::Prefix(p) => (p.len(), 1),
            PathMatch::Regex(r) => (r.len(), 2),
        };
        SortKey {
            precedence: Reverse(route.precedence),
            path_len: Reverse(path_len),
            matchers: Reverse(m.headers.len() + m.query.len() + usize::from(m.method.is_some())),
            path_kind,
            host: route
                .hostnames
                .iter()
                .map(|h| host_specificity(h))
                .min()
                .unwrap_or((2, Reverse(0))),
            id: route.id.clone(),
        }
    }
}
