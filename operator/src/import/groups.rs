//! What only the objects together show: canary groups (Mappings with the
//! same match, splitting traffic by weight) that span namespaces, and hosts
//! that Mappings and TLSContexts of several namespaces claim. Emissary shares such traffic
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

/// The hosts a converted TLSContext (from a TLSContext or a Host) claims.
#[derive(Debug)]
pub struct TlsClaim {
    pub report: usize,
    pub namespace: String,
    pub hosts: Vec<String>,
}

/// Adds the notes about groups and hosts shared between namespaces.
pub fn judge(mappings: &[Placed<'_>], tls: &[TlsClaim], reports: &mut [DocReport]) {
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
    // Hosts claimed (Mappings with a hostname, TLSContexts) by namespace.
    let mut hosts: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for m in mappings {
        if m.spec.hostname != "*" {
            hosts
                .entry(m.spec.hostname.as_str())
                .or_default()
                .insert(m.namespace.as_str());
        }
    }
    for c in tls {
        for host in &c.hosts {
            hosts
                .entry(host.as_str())
                .or_default()
                .insert(c.namespace.as_str());
        }
    }
    let others = |host: &str, namespace: &str| -> Option<String> {
        let namespaces = hosts.get(host)?;
        let others: Vec<&str> = namespaces.iter().copied().filter(|ns| *ns != namespace).collect();
        (!others.is_empty()).then(|| others.join(", "))
    };
    for m in mappings {
        if in_shared_group.contains(&m.report) {
            continue;
        }
        let Some(others) = others(&m.spec.hostname, &m.namespace) else {
            continue;
        };
        reports[m.report].changed("spec.hostname", shared_host(&m.spec.hostname, &others));
    }
    for c in tls {
        for host in &c.hosts {
            if let Some(others) = others(host, &c.namespace) {
                reports[c.report].changed("spec.hosts", shared_host(host, &others));
            }
        }
    }
}

fn shared_host(host: &str, others: &str) -> String {
    format!(
        "{host} is also claimed by Mappings or TLSContexts of {others}: Legate gives a host to one namespace (the Gateway's hostOwners, else the namespace that claimed it first), and the others' objects for it get Accepted=False; the import assigns no host, assign it with the Gateway's spec.hostOwners"
    )
}
