//! The match of a Mapping besides its host: the path (prefix, exact or
//! regex), the method, headers and query parameters. A matcher Legate cannot
//! express refuses the Mapping: dropping it would widen the route.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use legate_crds::MappingSpec;
use legate_crds::common::HEADER_NAME_PATTERN;
use regex::Regex;
use serde_json::Value;

use super::fields::{Fields, kind_of};
use super::report::DocReport;

pub(super) static HEADER_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(HEADER_NAME_PATTERN).expect("HEADER_NAME_PATTERN is a valid regex"));

pub(super) fn path_match(
    spec: &mut Fields,
    out: &mut MappingSpec,
    report: &mut DocReport,
) -> Result<(), String> {
    let prefix = spec
        .string("prefix", report)
        .ok_or("no prefix: every Emissary Mapping needs one")?;
    let regex = spec.boolean("prefix_regex", report).unwrap_or(false);
    let exact = spec.boolean("prefix_exact", report).unwrap_or(false);
    if regex {
        if exact {
            report.dropped(
                "spec.prefix_exact",
                "prefix_regex is set too: the regex must match the whole path anyway",
            );
        }
        out.path_regex = Some(prefix);
    } else if !prefix.starts_with('/') {
        return Err(format!(
            "prefix {prefix:?} does not start with \"/\": no request path matches it"
        ));
    } else if exact {
        out.path = Some(prefix);
    } else {
        out.prefix = Some(prefix);
    }
    Ok(())
}

pub(super) fn request_match(
    spec: &mut Fields,
    out: &mut MappingSpec,
    report: &mut DocReport,
) -> Result<(), String> {
    let method_regex = spec.boolean("method_regex", report).unwrap_or(false);
    if let Some(method) = spec.string("method", report) {
        let upper = method.to_ascii_uppercase();
        let plain = upper.chars().all(|c| c.is_ascii_uppercase()) && !upper.is_empty();
        if !plain {
            return Err(format!(
                "method {method:?}{}: Legate matches one method by name; write one Mapping per method",
                if method_regex { " with method_regex" } else { "" }
            ));
        }
        if method_regex {
            report.changed(
                "spec.method_regex",
                format!("the regex {method:?} is one method: method {upper}"),
            );
        }
        out.method = Some(upper);
    }
    matchers(
        spec,
        "headers",
        &mut out.headers,
        &mut out.regex_headers,
        true,
        report,
    )?;
    let mut regex_headers = BTreeMap::new();
    matchers(
        spec,
        "regex_headers",
        &mut regex_headers,
        &mut BTreeMap::new(),
        true,
        report,
    )?;
    out.regex_headers.extend(regex_headers);
    matchers(
        spec,
        "query_parameters",
        &mut out.query_parameters,
        &mut out.regex_query_parameters,
        false,
        report,
    )?;
    let mut regex_query = BTreeMap::new();
    matchers(
        spec,
        "regex_query_parameters",
        &mut regex_query,
        &mut BTreeMap::new(),
        false,
        report,
    )?;
    out.regex_query_parameters.extend(regex_query);
    Ok(())
}

/// Reads a map of exact (or regex) matchers; a `true` value means "present",
/// which Legate writes as the regex `.*`.
fn matchers(
    spec: &mut Fields,
    key: &str,
    exact: &mut BTreeMap<String, String>,
    present: &mut BTreeMap<String, String>,
    headers: bool,
    report: &mut DocReport,
) -> Result<(), String> {
    let Some(value) = spec.take(key) else {
        return Ok(());
    };
    let Value::Object(map) = value else {
        return Err(format!(
            "spec.{key} is {}, not a map: its requests cannot be matched",
            kind_of(&value)
        ));
    };
    for (name, v) in map {
        if headers && !HEADER_NAME.is_match(&name) {
            return Err(format!(
                "spec.{key}.{name}: Legate matches request headers by their HTTP names; pseudo-headers such as :authority are matched by hostname, method and path"
            ));
        }
        match v {
            Value::Bool(true) => {
                report.changed(
                    format!("spec.{key}.{name}"),
                    format!(
                        "true (present, any value) is the regex \".*\" in Legate's regex{}",
                        if headers { "Headers" } else { "QueryParameters" }
                    ),
                );
                present.insert(name, ".*".into());
            }
            Value::String(s) => {
                exact.insert(name, s);
            }
            Value::Number(n) => {
                exact.insert(name, n.to_string());
            }
            other => {
                return Err(format!(
                    "spec.{key}.{name} is {}: Legate cannot match it, and dropping it would widen the route",
                    kind_of(&other)
                ));
            }
        }
    }
    Ok(())
}
