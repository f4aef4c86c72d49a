//! Headers a Mapping adds and removes, and string maps.

use std::collections::BTreeMap;

use legate_crds::MappingSpec;
use legate_crds::mapping::HeaderValue;
use serde_json::Value;

use super::fields::{Fields, kind_of};
use super::matching::HEADER_NAME;
use super::report::DocReport;

pub(super) fn headers(spec: &mut Fields, out: &mut MappingSpec, report: &mut DocReport) {
    out.add_request_headers = added_headers(spec, "add_request_headers", report);
    out.add_response_headers = added_headers(spec, "add_response_headers", report);
    out.remove_request_headers = header_list(spec, "remove_request_headers", report);
    out.remove_response_headers = header_list(spec, "remove_response_headers", report);
}

fn added_headers(spec: &mut Fields, key: &str, report: &mut DocReport) -> BTreeMap<String, HeaderValue> {
    let mut out = BTreeMap::new();
    let Some(mut f) = spec.object(key, report) else {
        return out;
    };
    let names: Vec<String> = f.keys();
    for name in names {
        let field = f.at(&name);
        let Some(value) = f.take(&name) else { continue };
        if !HEADER_NAME.is_match(&name) {
            report.dropped(field, "not an HTTP header name Legate can set");
            continue;
        }
        let header = match value {
            Value::String(value) => HeaderValue { value, append: true },
            Value::Bool(b) => HeaderValue {
                value: b.to_string(),
                append: true,
            },
            Value::Number(n) => HeaderValue {
                value: n.to_string(),
                append: true,
            },
            object @ Value::Object(_) => {
                let mut h = Fields::of(field, object, report);
                let value = h.string("value", report).unwrap_or_default();
                let append = h.boolean("append", report).unwrap_or(true);
                h.ignore("v2Representation");
                h.finish("an added header", report);
                HeaderValue { value, append }
            }
            other => {
                report.dropped(field, format!("expected a value, found {}", kind_of(&other)));
                continue;
            }
        };
        out.insert(name, header);
    }
    out
}

fn header_list(spec: &mut Fields, key: &str, report: &mut DocReport) -> Vec<String> {
    spec.strings(key, report)
        .into_iter()
        .filter(|name| {
            let ok = HEADER_NAME.is_match(name);
            if !ok {
                report.dropped(
                    format!("spec.{key}"),
                    format!("{name:?} is not an HTTP header name"),
                );
            }
            ok
        })
        .collect()
}

pub(super) fn string_map(spec: &mut Fields, key: &str, report: &mut DocReport) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(mut f) = spec.object(key, report) else {
        return out;
    };
    for name in f.keys() {
        if let Some(value) = f.string(&name, report) {
            out.insert(name, value);
        }
    }
    out
}
