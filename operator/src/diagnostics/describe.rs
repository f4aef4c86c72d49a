//! A route's match and action, and a listener's protocol, in the words the
//! page shows them (every piece of user text escaped).

use legate_xds::ir;

use super::html::esc;

/// As the Gateway's spec spells it.
pub fn protocol(protocol: ir::ListenerProtocol) -> &'static str {
    match protocol {
        ir::ListenerProtocol::Http => "HTTP",
        ir::ListenerProtocol::Https => "HTTPS",
        ir::ListenerProtocol::Tcp => "TCP",
        ir::ListenerProtocol::Tls => "TLS",
    }
}

/// A route's match, one condition a line.
pub fn match_text(m: &ir::RouteMatch, precedence: i32) -> String {
    let mut lines = Vec::new();
    let path = match &m.path {
        ir::PathMatch::Prefix(p) => format!("prefix <code>{}</code>", esc(p)),
        ir::PathMatch::Exact(p) => format!("path <code>{}</code>", esc(p)),
        ir::PathMatch::Regex(p) => format!("path regex <code>{}</code>", esc(p)),
    };
    let case = if m.case_sensitive { "" } else { " (any case)" };
    match &m.method {
        Some(method) => lines.push(format!("<code>{}</code> {path}{case}", esc(method))),
        None => lines.push(format!("{path}{case}")),
    }
    for h in &m.headers {
        let not = if h.invert { "not " } else { "" };
        lines.push(format!("{not}header {}", value_text(&h.name, &h.value)));
    }
    for q in &m.query {
        lines.push(format!("query {}", value_text(&q.name, &q.value)));
    }
    if precedence != 0 {
        lines.push(format!("precedence {precedence}"));
    }
    lines.join("<br>")
}

fn value_text(name: &str, value: &ir::ValueMatch) -> String {
    let name = esc(name);
    match value {
        ir::ValueMatch::Present => format!("<code>{name}</code> present"),
        ir::ValueMatch::Exact(v) => format!("<code>{name}</code> = <code>{}</code>", esc(v)),
        ir::ValueMatch::Prefix(v) => format!("<code>{name}</code> starts with <code>{}</code>", esc(v)),
        ir::ValueMatch::Regex(v) => format!("<code>{name}</code> matches <code>{}</code>", esc(v)),
    }
}

/// Where a route sends a request.
pub fn action_text(action: &ir::RouteAction) -> String {
    match action {
        ir::RouteAction::Forward(f) => {
            let mut lines = vec![format!("to {}", upstreams(&f.upstreams))];
            if let Some(prefix) = &f.prefix_rewrite {
                lines.push(format!("prefix rewritten to <code>{}</code>", esc(prefix)));
            }
            if let Some(r) = &f.regex_rewrite {
                lines.push(format!(
                    "path <code>{}</code> rewritten to <code>{}</code>",
                    esc(&r.pattern),
                    esc(&r.substitution)
                ));
            }
            match &f.host_rewrite {
                Some(ir::HostRewrite::Literal(host)) => {
                    lines.push(format!("host rewritten to <code>{}</code>", esc(host)))
                }
                Some(ir::HostRewrite::FromUpstream) => {
                    lines.push("host rewritten to the upstream's".to_string())
                }
                None => {}
            }
            for m in &f.mirrors {
                lines.push(format!(
                    "mirrored ({}%) to <code>{}</code>",
                    m.percent,
                    esc(&m.upstream)
                ));
            }
            lines.join("<br>")
        }
        ir::RouteAction::Redirect(r) => {
            let scheme = if r.https { "https" } else { "same scheme" };
            let mut target = vec![scheme.to_string()];
            if let Some(host) = &r.host {
                target.push(format!("host <code>{}</code>", esc(host)));
            }
            if let Some(port) = r.port {
                target.push(format!("port {port}"));
            }
            match &r.path {
                Some(ir::RedirectPath::Replace(p)) => target.push(format!("path <code>{}</code>", esc(p))),
                Some(ir::RedirectPath::Prefix(p)) => target.push(format!("prefix <code>{}</code>", esc(p))),
                Some(ir::RedirectPath::Regex(rr)) => target.push(format!(
                    "path <code>{}</code> → <code>{}</code>",
                    esc(&rr.pattern),
                    esc(&rr.substitution)
                )),
                None => {}
            }
            format!("redirect {} to {}", r.status, target.join(", "))
        }
        ir::RouteAction::DirectResponse { status, .. } => format!("answers {status} itself"),
    }
}

/// One upstream by name, or each with its share of the weights.
pub fn upstreams(upstreams: &[ir::WeightedUpstream]) -> String {
    if let [one] = upstreams {
        return format!("<code>{}</code>", esc(&one.upstream));
    }
    let total: u32 = upstreams.iter().map(|u| u.weight).sum();
    upstreams
        .iter()
        .map(|u| format!("<code>{}</code> ({} of {total})", esc(&u.upstream), u.weight))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_shows_each_share_and_a_redirect_its_target() {
        let split = ir::RouteAction::Forward(ir::Forward {
            upstreams: vec![
                ir::WeightedUpstream {
                    upstream: "shop/quote:80".into(),
                    weight: 90,
                },
                ir::WeightedUpstream {
                    upstream: "shop/quote-canary:80".into(),
                    weight: 10,
                },
            ],
            ..Default::default()
        });
        assert_eq!(
            action_text(&split),
            "to <code>shop/quote:80</code> (90 of 100), <code>shop/quote-canary:80</code> (10 of 100)"
        );
        let redirect = ir::RouteAction::Redirect(ir::Redirect {
            host: Some("new.example.com".into()),
            https: true,
            status: 308,
            ..Default::default()
        });
        assert_eq!(
            action_text(&redirect),
            "redirect 308 to https, host <code>new.example.com</code>"
        );
    }

    #[test]
    fn a_match_names_its_method_path_and_every_condition() {
        let m = ir::RouteMatch {
            path: ir::PathMatch::Exact("/login".into()),
            case_sensitive: false,
            method: Some("POST".into()),
            headers: vec![ir::HeaderMatch {
                name: "x-canary".into(),
                value: ir::ValueMatch::Present,
                invert: true,
            }],
            query: vec![ir::QueryMatch {
                name: "v".into(),
                value: ir::ValueMatch::Regex("^[0-9]+$".into()),
            }],
        };
        assert_eq!(
            match_text(&m, 10),
            "<code>POST</code> path <code>/login</code> (any case)<br>not header <code>x-canary</code> present\
             <br>query <code>v</code> matches <code>^[0-9]+$</code><br>precedence 10"
        );
    }
}
