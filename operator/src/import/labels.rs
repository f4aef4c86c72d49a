//! A Mapping's rate limit `labels` → Legate `rateLimits` descriptors. Emissary
//! writes labels by domain, then groups, then specifiers; v2 has shorthand
//! strings and `{key: {header: …}}` maps, v3alpha1 longhand objects. Both are
//! read.

use legate_crds::mapping::{Empty, GenericKey, RateLimitDescriptor, RateLimitEntry, RequestHeaderEntry};
use serde_json::Value;

use super::fields::{Fields, kind_of};
use super::report::DocReport;

/// The domain Emissary sends descriptors with unless told otherwise; the
/// import sets it on converted RateLimitServices.
pub const EMISSARY_DOMAIN: &str = "ambassador";

/// Converts `labels` (domain → groups).
pub fn rate_limits(mut labels: Fields, report: &mut DocReport) -> Vec<RateLimitDescriptor> {
    let mut out = Vec::new();
    for domain in labels.keys() {
        let path = labels.at(&domain);
        let groups = labels.list(&domain, report);
        if domain != EMISSARY_DOMAIN {
            report.changed(
                &path,
                format!("domain {domain:?}: Legate sends every descriptor with its RateLimitService's spec.domain (the import sets \"{EMISSARY_DOMAIN}\")"),
            );
        }
        for (g, group) in groups.into_iter().enumerate() {
            let path = format!("{path}[{g}]");
            let Value::Object(group) = group else {
                report.dropped(path, format!("expected a label group, found {}", kind_of(&group)));
                continue;
            };
            for (name, specifiers) in group {
                let path = format!("{path}.{name}");
                let Value::Array(specifiers) = specifiers else {
                    report.dropped(path, "expected a list of labels");
                    continue;
                };
                let entries: Vec<RateLimitEntry> = specifiers
                    .into_iter()
                    .enumerate()
                    .filter_map(|(i, s)| entry(&format!("{path}[{i}]"), s, report))
                    .collect();
                if entries.is_empty() {
                    report.dropped(path, "no label Legate can send: no descriptor");
                } else {
                    out.push(RateLimitDescriptor { entries });
                }
            }
        }
    }
    if out.len() > 16 {
        report.dropped(
            "spec.labels",
            "Legate sends at most 16 descriptors per Mapping; the rest are dropped",
        );
        out.truncate(16);
    }
    out
}

fn entry(path: &str, specifier: Value, report: &mut DocReport) -> Option<RateLimitEntry> {
    let none = RateLimitEntry {
        generic_key: None,
        request_header: None,
        remote_address: None,
        destination_cluster: None,
    };
    match specifier {
        Value::String(s) => match fixed_entry(&s, path, report) {
            Some(entry) => entry,
            None => Some(RateLimitEntry {
                generic_key: Some(GenericKey { key: None, value: s }),
                ..none
            }),
        },
        Value::Object(map) if map.len() == 1 => {
            let (kind, body) = map.into_iter().next()?;
            let mut f = Fields::of(format!("{path}.{kind}"), body.clone(), report);
            let fixed = fixed_entry(&kind, path, report);
            let entry = match kind.as_str() {
                _ if fixed.is_some() => fixed.flatten(),
                "generic_key" => {
                    let (key, value) = match body {
                        Value::String(value) => (None, Some(value)),
                        _ => (f.string("key", report), f.string("value", report)),
                    };
                    f.ignore("v2Shorthand");
                    value.map(|value| RateLimitEntry {
                        generic_key: Some(GenericKey { key, value }),
                        ..none
                    })
                }
                "request_headers" => {
                    let key = f.string("key", report);
                    header_entry(&mut f, key, "header_name", report, none)
                }
                // v2: `{label_key: {header: name, omit_if_not_present: bool}}`.
                label_key => header_entry(&mut f, Some(label_key.to_string()), "header", report, none),
            };
            // `key` of remote_address/destination_cluster is fixed by Envoy.
            f.ignore("key");
            f.finish("a rate limit label", report);
            entry
        }
        other => {
            report.dropped(path, format!("expected a label, found {}", kind_of(&other)));
            None
        }
    }
}

/// The labels whose entry Envoy fills in by itself: `Some(entry)` for
/// them (`Some(None)` when Legate has no such entry, which is reported),
/// `None` for any other name.
fn fixed_entry(kind: &str, path: &str, report: &mut DocReport) -> Option<Option<RateLimitEntry>> {
    let none = RateLimitEntry {
        generic_key: None,
        request_header: None,
        remote_address: None,
        destination_cluster: None,
    };
    match kind {
        "remote_address" => Some(Some(RateLimitEntry {
            remote_address: Some(Empty {}),
            ..none
        })),
        "destination_cluster" => Some(Some(RateLimitEntry {
            destination_cluster: Some(Empty {}),
            ..none
        })),
        "source_cluster" => {
            report.dropped(
                path,
                "source_cluster: Legate's descriptors have no source cluster (every request comes from the Gateway)",
            );
            Some(None)
        }
        _ => None,
    }
}

fn header_entry(
    f: &mut Fields,
    key: Option<String>,
    header_field: &str,
    report: &mut DocReport,
    none: RateLimitEntry,
) -> Option<RateLimitEntry> {
    let header = f.string(header_field, report);
    let omit = f.boolean("omit_if_not_present", report);
    match (key, header) {
        (Some(key), Some(header)) => Some(RateLimitEntry {
            request_header: Some(RequestHeaderEntry {
                header,
                key,
                omit_if_not_present: omit,
            }),
            ..none
        }),
        _ => {
            report.dropped(f.path.clone(), "a header label needs a key and a header name");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn convert(labels: Value) -> (Vec<RateLimitDescriptor>, DocReport) {
        let mut r = DocReport::new("t#1".into(), "x".into());
        let f = Fields::of("spec.labels", labels, &mut r);
        (rate_limits(f, &mut r), r)
    }

    #[test]
    fn v2_shorthand_and_v3_longhand_give_the_same_descriptor() {
        let (v2, r2) = convert(json!({"ambassador": [{"group": [
            "remote_address",
            {"x-user": {"header": "x-user", "omit_if_not_present": true}},
            "checkout",
        ]}]}));
        let (v3, r3) = convert(json!({"ambassador": [{"group": [
            {"remote_address": {"key": "remote_address"}},
            {"request_headers": {"key": "x-user", "header_name": "x-user", "omit_if_not_present": true}},
            {"generic_key": {"value": "checkout"}},
        ]}]}));
        assert_eq!(v2, v3);
        assert_eq!(v2[0].entries.len(), 3);
        assert!(
            r2.notes.is_empty() && r3.notes.is_empty(),
            "{:?} {:?}",
            r2.notes,
            r3.notes
        );
    }

    #[test]
    fn source_cluster_and_other_domains_are_reported() {
        let (out, r) = convert(json!({"billing": [{"g": ["source_cluster", "x"]}]}));
        assert_eq!(out.len(), 1);
        assert_eq!(r.notes.len(), 2, "{:?}", r.notes);
    }
}
