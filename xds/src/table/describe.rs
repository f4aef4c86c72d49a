//! A route in words: its match, its action and the policies on it, as
//! short lines a person reads in a table or a terminal.

use std::time::Duration;

use crate::explain::matching::{describe_path, describe_value};
use crate::ir::{self, RouteAction};

/// `GET prefix /api header x-team = "blue" query v present`.
pub fn match_text(m: &ir::RouteMatch) -> String {
    let mut parts = Vec::new();
    if let Some(method) = &m.method {
        parts.push(method.clone());
    }
    parts.push(describe_path(&m.path, m.case_sensitive));
    for h in &m.headers {
        parts.push(format!(
            "header {} {}",
            h.name,
            describe_value(&h.value, h.invert)
        ));
    }
    for q in &m.query {
        parts.push(format!("query {} {}", q.name, describe_value(&q.value, false)));
    }
    parts.join(" ")
}

/// Where the request goes: `→ shop/cart:80`, `→ a:80 90%, b:80 10%`,
/// `redirect 301 https://…`, `answer 404`.
pub fn action_text(action: &RouteAction) -> String {
    match action {
        RouteAction::Forward(f) => {
            let total: u64 = f.upstreams.iter().map(|u| u64::from(u.weight)).sum();
            let upstreams: Vec<String> = match f.upstreams.as_slice() {
                [one] => vec![one.upstream.clone()],
                many => many
                    .iter()
                    .map(|u| {
                        let share = u64::from(u.weight) * 100 / total.max(1);
                        format!("{} {share}%", u.upstream)
                    })
                    .collect(),
            };
            let mut text = format!("→ {}", upstreams.join(", "));
            if let Some(p) = &f.prefix_rewrite {
                text.push_str(&format!(" (prefix rewritten to {p})"));
            }
            if let Some(r) = &f.regex_rewrite {
                text.push_str(&format!(" (path /{}/ → {})", r.pattern, r.substitution));
            }
            text
        }
        RouteAction::Redirect(r) => {
            let scheme = if r.https { "https://" } else { "" };
            let host = r.host.as_deref().unwrap_or("(same host)");
            let port = r.port.map(|p| format!(":{p}")).unwrap_or_default();
            let path = match &r.path {
                None => String::new(),
                Some(ir::RedirectPath::Replace(p)) => format!(" path {p}"),
                Some(ir::RedirectPath::Prefix(p)) => format!(" prefix {p}"),
                Some(ir::RedirectPath::Regex(re)) => format!(" path /{}/ → {}", re.pattern, re.substitution),
            };
            let status = if r.status == 0 { 301 } else { r.status };
            format!("redirect {status} {scheme}{host}{port}{path}")
        }
        RouteAction::DirectResponse { status, .. } => format!("answer {status}"),
    }
}

/// The policies that apply, one line each (rewrites, timeouts, retries,
/// auth, rate limits, JWT, address lists, CORS, mirrors).
pub fn policy_lines(route: &ir::Route) -> Vec<String> {
    let p = &route.policy;
    let mut lines = Vec::new();
    if let RouteAction::Forward(f) = &route.action {
        match &f.host_rewrite {
            Some(ir::HostRewrite::Literal(h)) => lines.push(format!("host rewritten to {h}")),
            Some(ir::HostRewrite::FromUpstream) => lines.push("host rewritten to the upstream's name".into()),
            None => {}
        }
        for m in &f.mirrors {
            lines.push(format!("mirrored to {} ({}%)", m.upstream, m.percent));
        }
        if !f.upgrades.is_empty() {
            lines.push(format!("upgrades allowed: {}", f.upgrades.join(", ")));
        }
    }
    if let Some(t) = p.timeout {
        lines.push(format!("timeout {}", seconds(t)));
    }
    if let Some(t) = p.idle_timeout {
        lines.push(format!("idle timeout {}", seconds(t)));
    }
    if let Some(r) = &p.retries {
        let per_try = r
            .per_try_timeout
            .map(|t| format!(", {} per try", seconds(t)))
            .unwrap_or_default();
        lines.push(format!(
            "retries: {} on {}{per_try}",
            r.num_retries,
            r.retry_on.join(",")
        ));
    }
    if p.bypass_auth {
        lines.push("auth: bypassed".into());
    } else if !p.auth_context.is_empty() {
        let keys: Vec<&str> = p.auth_context.keys().map(String::as_str).collect();
        lines.push(format!("auth context: {}", keys.join(", ")));
    }
    if !p.rate_limits.is_empty() {
        lines.push(format!(
            "rate limits: {} descriptor(s) sent to the rate limit service",
            p.rate_limits.len()
        ));
    }
    if let Some(l) = &p.local_rate_limit {
        lines.push(format!("local rate limit: {} per {}", l.requests, seconds(l.per)));
    }
    if let Some(j) = &p.jwt {
        let audiences = if j.audiences.is_empty() {
            String::new()
        } else {
            format!(" for {}", j.audiences.join(", "))
        };
        lines.push(format!("JWT required: issuer {}{audiences}", j.issuer));
    }
    if let Some(a) = &p.ip_access {
        let allow = match &a.allow {
            None => "every address".to_owned(),
            Some(list) => format!("{} range(s)", list.len()),
        };
        lines.push(format!(
            "client addresses: allow {allow}, deny {} range(s)",
            a.deny.len()
        ));
    }
    if p.cors.is_some() {
        lines.push("CORS".into());
    }
    if p.hash_on.is_some() {
        lines.push("sticky (consistent hash)".into());
    }
    lines
}

fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
