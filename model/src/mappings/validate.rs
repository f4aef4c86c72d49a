//! What only the controller can judge about a Mapping on its own, before it
//! is attached anywhere.

use std::time::Duration;

use kube::ResourceExt;
use legate_crds::common;
use legate_crds::conditions::reasons;
use legate_crds::mapping::Mapping;

use crate::upstreams;
use crate::verdicts::Problem;

/// What only the controller can judge about a Mapping on its own: regular
/// expressions (RE2 syntax, checked with Rust's regex crate, which shares it),
/// durations, the service reference.
pub(crate) fn validate(mapping: &Mapping) -> Result<(), Problem> {
    let spec = &mapping.spec;
    let invalid = |message: String| Problem::new(reasons::INVALID, message);
    let mut regexes: Vec<(String, &str)> = Vec::new();
    if let Some(r) = &spec.path_regex {
        regexes.push(("spec.pathRegex".into(), r));
    }
    for (name, r) in &spec.regex_headers {
        regexes.push((format!("spec.regexHeaders[{name}]"), r));
    }
    for (name, r) in &spec.regex_query_parameters {
        regexes.push((format!("spec.regexQueryParameters[{name}]"), r));
    }
    if let Some(r) = &spec.regex_rewrite {
        regexes.push(("spec.regexRewrite.pattern".into(), &r.pattern));
    }
    if let Some(r) = spec.redirect.as_ref().and_then(|r| r.regex.as_ref()) {
        regexes.push(("spec.redirect.regex.pattern".into(), &r.pattern));
    }
    for (field, pattern) in regexes {
        if let Err(e) = regex::Regex::new(pattern) {
            let detail = e
                .to_string()
                .lines()
                .last()
                .unwrap_or_default()
                .trim()
                .to_string();
            return Err(invalid(format!(
                "{field} {pattern:?} is not a valid RE2 regular expression: {detail}"
            )));
        }
    }
    let durations = [
        ("spec.timeout", spec.timeout.as_ref()),
        ("spec.idleTimeout", spec.idle_timeout.as_ref()),
        ("spec.connectTimeout", spec.connect_timeout.as_ref()),
    ];
    for (field, duration) in durations {
        if let Some(Err(e)) = duration.map(common::Duration::to_std) {
            return Err(invalid(format!("{field}: {e}")));
        }
    }
    if let Some(service) = &spec.service {
        upstreams::parse(service, &mapping.namespace().unwrap_or_default())
            .map_err(|e| invalid(e.to_string()))?;
    }
    if let Some(limit) = &spec.local_rate_limit {
        // Envoy refuses an empty bucket, and a fill interval under 50 ms.
        let per = limit
            .per
            .to_std()
            .map_err(|e| invalid(format!("spec.localRateLimit.per: {e}")))?;
        if per < Duration::from_millis(50) || limit.requests < 1 {
            return Err(invalid(format!(
                "spec.localRateLimit allows {} requests per {}: it needs at least 1 request per 50ms or more",
                limit.requests, limit.per.0
            )));
        }
    }
    crate::ip_access::mapping_lists(&spec.ip_allow, &spec.ip_deny).map_err(|e| invalid(e.to_string()))?;
    // The API server checks this too; a route that lost its token check
    // would let every request through.
    if let Some(jwt) = &spec.jwt {
        let uri_ok = jwt.jwks.uri.as_deref().is_some_and(|u| u.starts_with("https://"));
        if jwt.jwks.service.is_some() == uri_ok {
            return Err(invalid(
                "spec.jwt.jwks needs either service or an https:// uri, not both and not neither".into(),
            ));
        }
    }
    if spec.redirect.as_ref().is_some_and(|r| r.prefix.is_some()) && spec.prefix.is_none() {
        return Err(invalid(
            "spec.redirect.prefix replaces the matched prefix: the Mapping needs spec.prefix".into(),
        ));
    }
    Ok(())
}
