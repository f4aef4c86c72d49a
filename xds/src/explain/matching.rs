//! One route against one request, as Envoy's router judges it, keeping
//! every reason it does not match (the first is the one to tell; their
//! number says how close it came).

use std::fmt;

use regex::Regex;

use super::request::Request;
use crate::ir::{self, PathMatch, ValueMatch};

/// One thing a route asks for that the request does not have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Miss {
    Method {
        wanted: String,
        got: String,
    },
    Path {
        wanted: String,
        got: String,
    },
    Header {
        name: String,
        wanted: String,
        got: Option<String>,
    },
    Query {
        name: String,
        wanted: String,
        got: Option<String>,
    },
}

impl Miss {
    /// Which part of the request it is about: `method`, `path`, `header`, `query`.
    pub fn part(&self) -> &'static str {
        match self {
            Miss::Method { .. } => "method",
            Miss::Path { .. } => "path",
            Miss::Header { .. } => "header",
            Miss::Query { .. } => "query",
        }
    }
}

impl fmt::Display for Miss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Miss::Method { wanted, got } => write!(f, "method {got} is not {wanted}"),
            Miss::Path { wanted, got } => write!(f, "path {got} does not match {wanted}"),
            Miss::Header {
                name,
                wanted,
                got: None,
            } => write!(f, "header {name} is absent ({wanted})"),
            Miss::Header {
                name,
                wanted,
                got: Some(v),
            } => {
                write!(f, "header {name}: {v:?} does not match {wanted}")
            }
            Miss::Query {
                name,
                wanted,
                got: None,
            } => write!(f, "query parameter {name} is absent ({wanted})"),
            Miss::Query {
                name,
                wanted,
                got: Some(v),
            } => {
                write!(f, "query parameter {name}={v:?} does not match {wanted}")
            }
        }
    }
}

/// Every reason `route` does not match `request`, in the order a reader
/// checks them (method, path, headers, query); empty when it matches. The
/// host is the virtual host's business, judged before.
pub fn misses(route: &ir::Route, request: &Request) -> Vec<Miss> {
    let m = &route.matcher;
    let mut out = Vec::new();
    if let Some(method) = &m.method
        && *method != request.method
    {
        out.push(Miss::Method {
            wanted: method.clone(),
            got: request.method.clone(),
        });
    }
    if !path_matches(&m.path, m.case_sensitive, &request.path) {
        out.push(Miss::Path {
            wanted: describe_path(&m.path, m.case_sensitive),
            got: request.path.clone(),
        });
    }
    for h in &m.headers {
        let name = h.name.to_ascii_lowercase();
        let got = request.header(&name);
        if !header_matches(h, got.as_deref()) {
            out.push(Miss::Header {
                wanted: describe_value(&h.value, h.invert),
                name: h.name.clone(),
                got,
            });
        }
    }
    for q in &m.query {
        let got = request.query_param(&q.name);
        let matched = match got {
            None => false,
            Some(v) => value_matches(&q.value, v),
        };
        if !matched {
            out.push(Miss::Query {
                name: q.name.clone(),
                wanted: describe_value(&q.value, false),
                got: got.map(str::to_owned),
            });
        }
    }
    out
}

/// Envoy: a prefix or exact path honours `case_sensitive`; a regex ignores
/// it and must match the whole path.
fn path_matches(path: &PathMatch, case_sensitive: bool, got: &str) -> bool {
    match path {
        PathMatch::Prefix(p) if case_sensitive => got.starts_with(p.as_str()),
        PathMatch::Prefix(p) => {
            got.len() >= p.len() && got.is_char_boundary(p.len()) && got[..p.len()].eq_ignore_ascii_case(p)
        }
        PathMatch::Exact(p) if case_sensitive => got == p,
        PathMatch::Exact(p) => got.eq_ignore_ascii_case(p),
        PathMatch::Regex(re) => full_match(re, got),
    }
}

/// Envoy: an absent header matches only a `present: false` test (an
/// inverted presence test); any value test on it fails, inverted or not.
fn header_matches(h: &ir::HeaderMatch, got: Option<&str>) -> bool {
    match (got, &h.value) {
        (None, ValueMatch::Present) => h.invert,
        (None, _) => false,
        (Some(_), ValueMatch::Present) => !h.invert,
        (Some(v), value) => value_matches(value, v) != h.invert,
    }
}

fn value_matches(value: &ValueMatch, got: &str) -> bool {
    match value {
        ValueMatch::Present => true,
        ValueMatch::Exact(s) => got == s,
        ValueMatch::Prefix(s) => got.starts_with(s.as_str()),
        ValueMatch::Regex(re) => full_match(re, got),
    }
}

/// RE2 and Rust's `regex` share their syntax for what Legate admits; a
/// pattern this side cannot read is taken as matching nothing.
fn full_match(re: &str, got: &str) -> bool {
    Regex::new(&format!("^(?:{re})$")).is_ok_and(|re| re.is_match(got))
}

pub fn describe_path(path: &PathMatch, case_sensitive: bool) -> String {
    let any_case = if case_sensitive { "" } else { " (any case)" };
    match path {
        PathMatch::Prefix(p) => format!("prefix {p}{any_case}"),
        PathMatch::Exact(p) => format!("exactly {p}{any_case}"),
        PathMatch::Regex(re) => format!("regex {re}"),
    }
}

pub fn describe_value(value: &ValueMatch, invert: bool) -> String {
    let text = match value {
        ValueMatch::Present => "present".to_owned(),
        ValueMatch::Exact(s) => format!("= {s:?}"),
        ValueMatch::Prefix(s) => format!("starts with {s:?}"),
        ValueMatch::Regex(re) => format!("~ /{re}/"),
    };
    if invert { format!("not {text}") } else { text }
}
