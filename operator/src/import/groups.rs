//! What only the Mappings together show: canary groups (Mappings with the
//! same match, splitting traffic by weight) that span namespaces, and hosts
//! that Mappings of several namespaces name. Emissary shares such traffic
//! between teams; Legate gives a host and a match to one namespace, so the
//! import says so on every Mapping involved instead of merging them.

use std::collections::{BTreeMap, BTreeSet};

use legate_crds::MappingSpec;

use super::report::DocReport;

/// A converted Mapping: where its report is, its namespace and spec.
#[derive(Debug)]
pub struct Placed<'a> {
    pub report: usize,
    pub namespace: String,
    pub spec: &'a MappingSpec,
}

/// The match that makes Mappings one canary group (Legate's weights split
/// traffic between Mappings of one namespace with the same match).
fn match_key(spec: &MappingSpec) -> String {
    serde_json::json!([
        spec.hostname,
        spec.prefix,
        spec.path,
        spec.path_regex,
        spec.case_sensitive,
        spec.method,
        spec.headers,
        spec.regex_headers,
        spec.query_parameters,
        spec.regex_query_parameters,
        spec.shadow.unwrap_or(false),
    ])
    .to_string()
}

/// Adds the notes about groups and hosts shared between namespaces.
pub fn judge(mappings: &[Placed<'_>], reports: &mut [DocReport]) {
    let mut groups: BTreeMap<String, Vec<&Placed<'_>>> = BTreeMap::new();
    for m in mappings {
        groups.entry(match_key(m.spec)).or_default().push(m);
    }
    let mut in_shared_group = BTreeSet::new();
    for members in groups.values() {
        let namespaces: BTreeSet<&str> = members.iter().map(|m| m.namespace.as_str()).collect();
        if namespaces.len() < 2 {
            continue;
        }
        let list = namespaces.iter().copied().collect::<Vec<_>>().join(", ");
        for m in members {
            in_shared_group.insert(m.report);
            reports[m.report].changed(
                "spec",
                format!(
                    "a canary group across namespaces ({list}): Emissary splits this match's traffic between them by weight; Legate splits only between Mappings of one namespace, so the namespace that claimed the host first keeps the traffic and the others' Mappings get Accepted=False (Conflicted). Move the group into one namespace to keep the split"
                ),
            );
        }
    }
    let mut hosts: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for m in mappings {
        if m.spec.hostname != "*" {
            hosts
                .entry(m.spec.hostname.as_str())
                .or_default()
                .insert(m.namespace.as_str());
        }
    }
    for m in mappings {
        if in_shared_group.contains(&m.report) {
            continue;
        }
        let Some(namespaces) = hosts.get(m.spec.hostname.as_str()) else {
            continue;
        };
        if namespaces.len() < 2 {
            continue;
        }
        let others: Vec<&str> = namespaces
            .iter()
            .copied()
            .filter(|ns| *ns != m.namespace)
            .collect();
        reports[m.report].changed(
            "spec.hostname",
            format!(
                "{} is also named by Mappings of {}: Legate gives a host to one namespace (the Gateway's hostOwners, else the namespace that claimed it first); the others' Mappings get Accepted=False. Assign it with the Gateway's spec.hostOwners",
                m.spec.hostname,
                others.join(", ")
            ),
        );
    }
}
