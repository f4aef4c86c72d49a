//! The host a Mapping serves: Emissary's `hostname` (a DNS glob), `host` (an
//! exact name, or a regex with `host_regex`) or neither, as Legate's
//! `hostname` (a name, a leading `*.` glob, or `*`).

use std::sync::LazyLock;

use legate_crds::mapping::HOSTNAME_PATTERN;
use regex::Regex;

use super::fields::Fields;
use super::report::DocReport;

static HOSTNAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(HOSTNAME_PATTERN).expect("HOSTNAME_PATTERN is a valid regex"));

/// The Legate hostname of a Mapping, taking `hostname`, `host` and
/// `host_regex` from `spec`; `Err` when no Legate hostname matches the same
/// requests (a broader one would take other teams' traffic).
pub fn mapping_hostname(spec: &mut Fields, report: &mut DocReport) -> Result<String, String> {
    let hostname = spec.string("hostname", report);
    let host = spec.string("host", report);
    let host_regex = spec.boolean("host_regex", report).unwrap_or(false);
    if let Some(hostname) = hostname {
        if host.is_some() {
            report.dropped(
                "spec.host",
                "hostname is set too, and wins (as in Emissary, which logs an error and ignores host)",
            );
        }
        if host_regex {
            report.dropped("spec.host_regex", "goes with host, which hostname replaces");
        }
        return glob("spec.hostname", &hostname, report);
    }
    match host {
        Some(host) if host_regex => from_regex(&host, report),
        Some(host) => glob("spec.host", &host, report),
        None => {
            if host_regex {
                report.dropped("spec.host_regex", "there is no host for it to apply to");
            }
            report.changed(
                "spec.hostname",
                "a hostless Mapping: Emissary attaches it to every Host; Legate gives it hostname \"*\", which serves every host when the Mapping is in the Gateway's namespace, and elsewhere only the hosts no namespace owns (docs/tenancy.md)",
            );
            Ok("*".into())
        }
    }
}

/// A hostname or glob as Legate writes it; a port is removed (Legate
/// ignores the port of the Host header).
pub fn glob(field: &str, text: &str, report: &mut DocReport) -> Result<String, String> {
    let mut name = text.trim().to_ascii_lowercase();
    if let Some((host, port)) = name.rsplit_once(':')
        && port.chars().all(|c| c.is_ascii_digit())
        && !host.is_empty()
    {
        report.changed(
                field,
                format!("{text}: Legate matches the host whatever the port of the Host header, so the port is not part of the hostname"),
            );
        name = host.to_string();
    }
    if HOSTNAME.is_match(&name) {
        Ok(name)
    } else {
        Err(format!(
            "{field} {text:?} is not a hostname Legate can match: a name, a glob with one leading \"*.\" label, or \"*\""
        ))
    }
}

/// A `host_regex` as a hostname when one matches exactly the same hosts, or
/// every host under a domain; otherwise `Err`.
fn from_regex(regex: &str, report: &mut DocReport) -> Result<String, String> {
    let refuse = || {
        format!(
            "host {regex:?} with host_regex: Legate matches hosts by name or a leading \"*.\" glob, never by regex; write one Mapping per hostname (dropping the host would widen this route to every host, other teams' included)"
        )
    };
    let body = regex.trim();
    let body = body.strip_prefix('^').unwrap_or(body);
    let body = body.strip_suffix('$').unwrap_or(body);
    if matches!(body, ".*" | ".+") {
        report.changed(
            "spec.host_regex",
            format!("host {regex:?} matches every host: hostname \"*\""),
        );
        return Ok("*".into());
    }
    for any_label in [
        r".*\.",
        r".+\.",
        r"[^.]+\.",
        r"[^.]*\.",
        r"[a-z0-9-]+\.",
        r"[a-zA-Z0-9-]+\.",
    ] {
        if let Some(rest) = body.strip_prefix(any_label) {
            let domain = literal(rest).ok_or_else(refuse)?;
            report.changed(
                "spec.host_regex",
                format!(
                    "host {regex:?}: hostname \"*.{domain}\", which matches any name under {domain} (one label or more)"
                ),
            );
            return glob("spec.host", &format!("*.{domain}"), report);
        }
    }
    let name = literal(body).ok_or_else(refuse)?;
    report.changed(
        "spec.host_regex",
        format!("host {regex:?} is one name: hostname {name:?}"),
    );
    glob("spec.host", &name, report)
}

/// The name a regex matches when it is a plain name with `\.` for its dots.
fn literal(regex: &str) -> Option<String> {
    let text = regex.replace(r"\.", ".");
    text.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        .then_some(text)
        .filter(|t| !t.is_empty() && !regex.contains("..") && regex.split(r"\.").all(|p| !p.contains('.')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn convert(spec: Value) -> (Result<String, String>, DocReport) {
        let mut r = DocReport::new("t#1".into(), "x".into());
        let Value::Object(map) = spec else {
            panic!("an object")
        };
        let mut fields = Fields::new("spec", map);
        (mapping_hostname(&mut fields, &mut r), r)
    }

    #[test]
    fn hostname_host_and_nothing() {
        assert_eq!(
            convert(json!({"hostname": "*.Example.com"})).0,
            Ok("*.example.com".into())
        );
        assert_eq!(
            convert(json!({"host": "shop.example.com:8080"})).0,
            Ok("shop.example.com".into())
        );
        let (hostless, report) = convert(json!({}));
        assert_eq!(hostless, Ok("*".into()));
        assert!(report.notes[0].why.contains("hostless"), "{:?}", report.notes);
    }

    #[test]
    fn host_regexes_convert_only_when_a_hostname_matches_the_same_hosts() {
        let ok = |re: &str| convert(json!({"host": re, "host_regex": true})).0;
        assert_eq!(ok(r"^shop\.example\.com$"), Ok("shop.example.com".into()));
        assert_eq!(ok(r"[^.]+\.example\.com"), Ok("*.example.com".into()));
        assert_eq!(ok(".*"), Ok("*".into()));
        assert!(ok(r"(shop|store)\.example\.com").is_err());
        assert!(
            ok(r"shop.example.com").is_err(),
            "an unescaped dot matches any character"
        );
    }

    #[test]
    fn globs_legate_cannot_match_are_refused() {
        assert!(convert(json!({"hostname": "shop.*"})).0.is_err());
    }
}
