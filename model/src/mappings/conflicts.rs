//! Which Mappings match the same requests, and which namespace keeps a
//! match that several claim.

use std::collections::BTreeMap;
use std::sync::Arc;

use kube::ResourceExt;
use legate_crds::conditions::reasons;
use legate_crds::mapping::Mapping;

use crate::age::age_order;
use crate::names::object_ref;
use crate::verdicts::{Problem, Verdicts};

/// Mappings with equal keys match the same requests.
pub(crate) fn match_key(mapping: &Mapping) -> String {
    let s = &mapping.spec;
    let path = match (&s.prefix, &s.path, &s.path_regex) {
        (Some(p), _, _) => format!("prefix:{p}"),
        (_, Some(p), _) => format!("path:{p}"),
        (_, _, Some(p)) => format!("regex:{p}"),
        _ => String::new(),
    };
    let sorted = |m: &BTreeMap<String, String>| {
        m.iter()
            .map(|(k, v)| format!("{}={v}", k.to_ascii_lowercase()))
            .collect::<Vec<_>>()
            .join("&")
    };
    format!(
        "{}|{path}|{}|{}|h:{}|rh:{}|q:{}|rq:{}",
        s.hostname.to_ascii_lowercase(),
        s.case_sensitive,
        s.method.as_deref().unwrap_or("*"),
        sorted(&s.headers),
        sorted(&s.regex_headers),
        sorted(&s.query_parameters),
        sorted(&s.regex_query_parameters),
    )
}

/// Keeps the Mappings of the namespace that claimed the match first; the
/// others are Conflicted and get no traffic.
pub(super) fn resolve_conflicts(
    mut members: Vec<Arc<Mapping>>,
    verdicts: &mut Verdicts,
) -> Vec<Arc<Mapping>> {
    members.sort_by(|a, b| age_order(a.as_ref(), b.as_ref()));
    let Some(owner) = members
        .first()
        .map(|m| (m.namespace().unwrap_or_default(), m.name_any()))
    else {
        return members;
    };
    let (kept, conflicted): (Vec<_>, Vec<_>) = members
        .into_iter()
        .partition(|m| m.namespace().unwrap_or_default() == owner.0);
    for mapping in conflicted {
        let message = format!(
            "Mapping {}/{} already routes hostname {:?} with the same match; traffic stays with it \
             (weights split traffic only between Mappings of one namespace)",
            owner.0, owner.1, mapping.spec.hostname
        );
        verdicts.reject(
            &object_ref(mapping.as_ref()),
            Problem::new(reasons::CONFLICTED, message),
        );
    }
    kept
}
