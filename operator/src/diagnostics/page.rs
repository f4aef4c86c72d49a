//! The pages themselves, as pure functions of what the operator knows: the
//! index of Gateways and one Gateway's route table, objects and last NACK.

use std::collections::HashMap;
use std::fmt::Write;

use legate_xds::ir::{self, ObjectRef};
use legate_xds::table::describe::{action_text, match_text, policy_lines};
use legate_xds::table::{HostTable, ListenerTable, route_table};

use super::html::{document, esc};
use super::objects::ObjectRow;
use super::state::LastNack;

/// The conditions every routed object has, in the order they are reached.
const OBJECT_CONDITIONS: [&str; 3] = ["Accepted", "ResolvedRefs", "Programmed"];

/// One line of the index.
#[derive(Debug, Clone)]
pub struct IndexEntry {
    /// `namespace/name`.
    pub key: String,
    /// The Gateway object's conditions.
    pub gateway: Option<ObjectRow>,
    /// HTTP routes in the latest model; None when it has no configuration.
    pub routes: Option<usize>,
    pub last_nack_at: Option<String>,
}

/// `GET /diagnostics`: every Gateway, linked to its page.
pub fn index_page(entries: &[IndexEntry]) -> String {
    let mut body = String::new();
    body.push_str(
        "<h1>Legate diagnostics</h1>\n<p class=\"muted\">Read-only. Each Gateway's page shows its route \
         table as its Envoys hold it, every object's conditions and the last configuration an Envoy refused.</p>\n",
    );
    if entries.is_empty() {
        body.push_str("<p>No Gateway is watched.</p>\n");
        return document("Legate diagnostics", &body);
    }
    body.push_str(
        "<table id=\"gateways\"><tr><th>Gateway</th><th>Conditions</th><th>HTTP routes</th><th>Last NACK</th></tr>\n",
    );
    for entry in entries {
        let conditions = entry
            .gateway
            .as_ref()
            .map(|g| {
                condition_badges(
                    g,
                    &g.conditions.iter().map(|c| c.type_.as_str()).collect::<Vec<_>>(),
                )
            })
            .unwrap_or_default();
        let routes = entry
            .routes
            .map_or("no configuration".to_string(), |n| n.to_string());
        let _ = writeln!(
            body,
            "<tr class=\"gateway\"><td><a href=\"/diagnostics/{key}\">{key}</a></td><td>{conditions}</td><td>{routes}</td><td>{nack}</td></tr>",
            key = esc(&entry.key),
            nack = esc(entry.last_nack_at.as_deref().unwrap_or("none")),
        );
    }
    body.push_str("</table>\n");
    document("Legate diagnostics", &body)
}

/// What one Gateway's page shows.
#[derive(Debug)]
pub struct GatewayPage<'a> {
    /// `namespace/name`.
    pub key: &'a str,
    /// The Gateway object; None when the watch does not have it.
    pub gateway: Option<&'a ObjectRow>,
    /// The listeners and routes of the latest model; None when the model
    /// has no configuration for it.
    pub routing: Option<&'a ir::Gateway>,
    pub objects: &'a [ObjectRow],
    pub last_nack: Option<&'a LastNack>,
    /// Envoys connected to this replica for the Gateway.
    pub proxies: usize,
}

/// `GET /diagnostics/{namespace}/{name}`.
pub fn gateway_page(page: &GatewayPage<'_>) -> String {
    let by_key: HashMap<String, &ObjectRow> = page.objects.iter().map(|o| (o.key(), o)).collect();
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<p><a href=\"/diagnostics\">All Gateways</a></p>\n<h1>Gateway {}</h1>",
        esc(page.key)
    );
    let _ = writeln!(body, "<p>Envoys connected to this operator: {}</p>", page.proxies);
    match page.gateway {
        Some(gateway) => {
            body.push_str("<table id=\"gateway-conditions\"><tr><th>Condition</th><th>Status</th><th>Reason</th><th>Message</th></tr>\n");
            for c in &gateway.conditions {
                let _ = writeln!(
                    body,
                    "<tr><td>{}</td><td class=\"{status}\">{status}</td><td>{}</td><td>{}</td></tr>",
                    esc(&c.type_),
                    esc(&c.reason),
                    esc(&c.message),
                    status = esc(&c.status),
                );
            }
            body.push_str("</table>\n");
        }
        None => body.push_str("<p class=\"False\">The operator's watch has no such Gateway.</p>\n"),
    }
    route_tables(&mut body, page.routing, &by_key);
    last_nack(&mut body, page.last_nack);
    objects(&mut body, page.objects);
    document(&format!("Legate: Gateway {}", page.key), &body)
}

fn route_tables(body: &mut String, routing: Option<&ir::Gateway>, by_key: &HashMap<String, &ObjectRow>) {
    body.push_str("<h2>Route table</h2>\n");
    let Some(routing) = routing else {
        body.push_str("<p>The operator has no configuration for this Gateway (yet).</p>\n");
        return;
    };
    body.push_str(
        "<p class=\"muted\">Per listener and virtual host, the routes in the order Envoy tries them: \
         the first that matches a request takes it.</p>\n",
    );
    let (table, refused) = route_table(routing);
    if table.listeners.is_empty() {
        body.push_str("<p>No HTTP listener.</p>\n");
    }
    for listener in &table.listeners {
        listener_table(body, listener, by_key);
    }
    tcp_routes(body, routing, by_key);
    if !refused.is_empty() {
        body.push_str("<h3>Routes left out of the configuration</h3>\n<ul>\n");
        for (route, reason) in &refused {
            let _ = writeln!(
                body,
                "<li>{}: {}</li>",
                owner(&route.origin),
                esc(&reason.to_string())
            );
        }
        body.push_str("</ul>\n");
    }
}

fn listener_table(body: &mut String, listener: &ListenerTable<'_>, by_key: &HashMap<String, &ObjectRow>) {
    let l = listener.listener;
    let _ = writeln!(
        body,
        "<h3>Listener {} ({}, port {})</h3>",
        esc(&l.name),
        protocol(l.protocol),
        l.port
    );
    if listener.hosts.is_empty() {
        body.push_str("<p>No route.</p>\n");
    }
    for host in &listener.hosts {
        host_table(body, &l.name, host, by_key);
    }
}

fn host_table(body: &mut String, listener: &str, host: &HostTable<'_>, by_key: &HashMap<String, &ObjectRow>) {
    let _ = writeln!(
        body,
        "<table class=\"routes\" data-listener=\"{}\" data-host=\"{}\">\n<caption>Host <code>{}</code></caption>\n\
         <tr><th>#</th><th>Owner</th><th>Match</th><th>Action</th><th>Owner's conditions</th></tr>",
        esc(listener),
        esc(&host.domain),
        esc(&host.domain)
    );
    for (n, route) in host.routes.iter().enumerate() {
        let owners: Vec<String> = std::iter::once(&route.origin)
            .chain(&route.co_origins)
            .map(owner)
            .collect();
        let conditions: Vec<String> = std::iter::once(&route.origin)
            .chain(&route.co_origins)
            .map(|o| match by_key.get(&o.key()) {
                Some(row) => condition_badges(row, &OBJECT_CONDITIONS),
                None => "<span class=\"Unknown\">not in the watch</span>".to_string(),
            })
            .collect();
        // The words `legate routes` uses (legate_xds::table::describe),
        // escaped: the page and the CLI describe a route the same way.
        let mut matched = esc(&match_text(&route.matcher)).to_string();
        if route.precedence != 0 {
            let _ = write!(matched, "<br>precedence {}", route.precedence);
        }
        let action: Vec<String> = std::iter::once(action_text(&route.action))
            .chain(policy_lines(route))
            .map(|line| esc(&line).to_string())
            .collect();
        let _ = writeln!(
            body,
            "<tr class=\"route\"><td>{}</td><td class=\"owner\">{}</td><td class=\"match\">{matched}</td><td class=\"action\">{}</td><td>{}</td></tr>",
            n + 1,
            owners.join("<br>"),
            action.join("<br>"),
            conditions.join("<br>"),
        );
    }
    body.push_str("</table>\n");
}

fn tcp_routes(body: &mut String, routing: &ir::Gateway, by_key: &HashMap<String, &ObjectRow>) {
    if routing.tcp_routes.is_empty() {
        return;
    }
    body.push_str(
        "<h3>TCP and TLS routes</h3>\n<table class=\"tcp-routes\"><tr><th>Listener</th><th>Owner</th><th>SNI</th><th>Upstreams</th><th>Owner's conditions</th></tr>\n",
    );
    for route in routing.tcp_routes.values() {
        let sni = if route.sni.is_empty() {
            "any".to_string()
        } else {
            route
                .sni
                .iter()
                .map(|s| format!("<code>{}</code>", esc(s)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let conditions = by_key
            .get(&route.origin.key())
            .map(|row| condition_badges(row, &OBJECT_CONDITIONS))
            .unwrap_or_default();
        let _ = writeln!(
            body,
            "<tr class=\"tcp-route\"><td>{}</td><td>{}</td><td>{sni}</td><td>{}</td><td>{conditions}</td></tr>",
            esc(&route.listener),
            owner(&route.origin),
            upstreams(&route.upstreams),
        );
    }
    body.push_str("</table>\n");
}

fn last_nack(body: &mut String, nack: Option<&LastNack>) {
    body.push_str("<h2>Last NACK</h2>\n");
    let Some(nack) = nack else {
        body.push_str(
            "<p>No Envoy of this Gateway has refused a configuration since this operator started serving it.</p>\n",
        );
        return;
    };
    let blamed: Vec<String> = nack
        .blamed
        .iter()
        .map(|o| format!("{} (generation {})", owner(o), o.generation()))
        .collect();
    let resources: Vec<String> = nack
        .resources
        .iter()
        .map(|r| format!("<code>{}</code>", esc(r)))
        .collect();
    let _ = writeln!(
        body,
        "<table id=\"last-nack\">\n<tr><th>Time</th><td>{}</td></tr>\n<tr><th>Proxy</th><td>{}</td></tr>\n\
         <tr><th>Type</th><td>{} (version {})</td></tr>\n<tr><th>Resources</th><td>{}</td></tr>\n\
         <tr><th>Objects blamed</th><td>{}</td></tr>\n<tr><th>Envoy said</th><td><pre>{}</pre></td></tr>\n</table>",
        esc(&nack.at),
        esc(&nack.proxy),
        esc(nack.kind),
        esc(&nack.version),
        resources.join(", "),
        if blamed.is_empty() {
            "none found".to_string()
        } else {
            blamed.join("<br>")
        },
        esc(&nack.message),
    );
}

fn objects(body: &mut String, objects: &[ObjectRow]) {
    body.push_str("<h2>Objects</h2>\n");
    if objects.is_empty() {
        body.push_str("<p>No object attaches to this Gateway or names it.</p>\n");
        return;
    }
    body.push_str("<table id=\"objects\"><tr><th>Object</th><th>Generation</th>");
    for type_ in OBJECT_CONDITIONS {
        let _ = write!(body, "<th>{type_}</th>");
    }
    body.push_str("</tr>\n");
    for row in objects {
        let observed = match row.observed_generation {
            Some(g) if g == row.generation => g.to_string(),
            Some(g) => format!(
                "{} <span class=\"Unknown\">(conditions of {g})</span>",
                row.generation
            ),
            None => format!(
                "{} <span class=\"Unknown\">(no status yet)</span>",
                row.generation
            ),
        };
        let _ = write!(
            body,
            "<tr class=\"object\"><td>{}{}</td><td>{observed}</td>",
            owner_of(row.kind, &row.namespace, &row.name),
            if row.attached {
                ""
            } else {
                "<br><span class=\"muted\">attached nowhere</span>"
            },
        );
        for type_ in OBJECT_CONDITIONS {
            match row.condition(type_) {
                Some(c) => {
                    let _ = write!(
                        body,
                        "<td><span class=\"{status}\">{status}</span> {}<br><small>{}</small></td>",
                        esc(&c.reason),
                        esc(&c.message),
                        status = esc(&c.status)
                    );
                }
                None => body.push_str("<td class=\"muted\">not written</td>"),
            }
        }
        body.push_str("</tr>\n");
    }
    body.push_str("</table>\n");
}

/// As the Gateway's spec spells it.
fn protocol(protocol: ir::ListenerProtocol) -> &'static str {
    match protocol {
        ir::ListenerProtocol::Http => "HTTP",
        ir::ListenerProtocol::Https => "HTTPS",
        ir::ListenerProtocol::Tcp => "TCP",
        ir::ListenerProtocol::Tls => "TLS",
    }
}

/// A TCP route's upstreams, each with its weight when there are several.
fn upstreams(upstreams: &[ir::WeightedUpstream]) -> String {
    let named: Vec<String> = upstreams
        .iter()
        .map(|u| match upstreams {
            [_] => format!("<code>{}</code>", esc(&u.upstream)),
            _ => format!("<code>{}</code> (weight {})", esc(&u.upstream), u.weight),
        })
        .collect();
    named.join(", ")
}

/// `Kind namespace/name`.
fn owner(object: &ObjectRef) -> String {
    owner_of(object.kind(), object.namespace(), object.name())
}

fn owner_of(kind: &str, namespace: &str, name: &str) -> String {
    format!("{} {}/{}", esc(kind), esc(namespace), esc(name))
}

/// Each condition of `types` as a word coloured by its status; the reason
/// and message are in the title, and in full in the objects table.
fn condition_badges(row: &ObjectRow, types: &[&str]) -> String {
    let badges: Vec<String> = types
        .iter()
        .map(|type_| match row.condition(type_) {
            Some(c) if c.status == "True" => format!(
                "<span class=\"True\" title=\"{}\">{}</span>",
                esc(&c.message),
                esc(type_)
            ),
            Some(c) => format!(
                "<span class=\"{status}\" title=\"{}\">{}={status} ({})</span>",
                esc(&c.message),
                esc(type_),
                esc(&c.reason),
                status = esc(&c.status)
            ),
            None => format!("<span class=\"muted\">{}?</span>", esc(type_)),
        })
        .collect();
    badges.join(" ")
}
