//! `legate explain [-g ns/gateway] METHOD URL [-H 'name: value']...`: the
//! route that serves a request and why every route ahead of it did not,
//! judged on the Gateway's route table as Envoy judges it
//! (`legate_xds::explain`), with no traffic sent.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use legate_xds::explain::{self, Explanation, Judgement, Outcome, Request};
use legate_xds::ir;
use legate_xds::table::{route_table, vhost_covers};
use serde::Serialize;

use super::source::SourceArgs;
use super::view::{ObjectView, RouteView, State, columns};
use super::{InspectError, Inspection};

/// Shown after `legate explain --help`.
pub const EXAMPLES: &str = "Examples:
  # Which Mapping serves this request, from the cluster of the current kubeconfig
  legate explain GET http://shop.example.com/api/cart

  # On one Gateway, with headers, as JSON for a script
  legate explain -g infra/edge POST https://shop.example.com/login -H 'x-team: blue' -o json

  # From files, before applying them
  legate explain -f gateway.yaml -f mappings/ GET http://shop.example.com/

The URL's port picks the listener (80 for http, 443 for https when none is
given); a Host header overrides the URL's host. The first line of the
answer is the verdict in one line: who serves, or why the request gets 404.
Exit status: 0 when a route serves the request, 1 when none does, 2 when
the question could not be answered.";

#[derive(Debug, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// The request's method (GET, POST...).
    pub method: String,
    /// The request's URL: http[s]://host[:port]/path[?query].
    pub url: String,
    /// A request header, `name: value`; repeat for more.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = ExplainFormat::Text)]
    pub output: ExplainFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExplainFormat {
    Text,
    Json,
}

/// The answer, as `-o json` prints it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExplainView {
    pub gateway: String,
    pub request: RequestView,
    /// `served`, `notFound` (Envoy answers 404) or `connectionRefused`.
    pub result: &'static str,
    /// The answer in one line.
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listener: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub served_by: Option<RouteView>,
    /// The routes of the virtual host up to the one that serves, and those
    /// after it that match too, each with its verdict.
    pub routes: Vec<JudgedView>,
    /// When nothing serves: the positions of the routes that came closest.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub closest: Vec<usize>,
    /// Objects that claim this host but are not in the route table, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_in_table: Vec<AbsentView>,
    /// When no virtual host fits: the hosts the listener does serve.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestView {
    pub method: String,
    pub host: String,
    pub port: u16,
    /// As Envoy routes it: normalized, without the query.
    pub path: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JudgedView {
    #[serde(flatten)]
    pub route: RouteView,
    /// `serves`, `misses` or `behind`.
    pub verdict: &'static str,
    /// Why it does not serve: the first reason it does not match, or why
    /// the serving route comes before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Every reason it does not match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct AbsentView {
    pub owner: ObjectView,
    pub hostname: String,
    pub status: State,
}

pub fn main(args: &ExplainArgs) -> ExitCode {
    const UNANSWERED: u8 = 2;
    let request = match Request::parse(&args.method, &args.url, &args.headers) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("legate explain: {e}");
            return ExitCode::from(UNANSWERED);
        }
    };
    let inspection = match Inspection::load(&args.source) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("legate explain: {e}");
            return ExitCode::from(UNANSWERED);
        }
    };
    for w in &inspection.loaded.warnings {
        eprintln!("legate explain: warning: {w}");
    }
    let view = match explain_request(&inspection, args.source.gateway.as_deref(), request) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("legate explain: {e}");
            return ExitCode::from(UNANSWERED);
        }
    };
    let text = match args.output {
        ExplainFormat::Text => text(&view),
        ExplainFormat::Json => match serde_json::to_string_pretty(&view) {
            Ok(json) => json + "\n",
            Err(e) => {
                eprintln!("legate explain: writing JSON: {e}");
                return ExitCode::from(UNANSWERED);
            }
        },
    };
    match (print(&text), view.result) {
        (code, _) if code != ExitCode::SUCCESS => code,
        (_, "served") => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

/// Explains `request` on Gateway `gateway` (or the only one).
pub fn explain_request(
    inspection: &Inspection,
    gateway: Option<&str>,
    request: Request,
) -> Result<ExplainView, InspectError> {
    let key = inspection.one_gateway(gateway)?;
    let ir = inspection.gateway_ir(&key);
    let (table, _) = route_table(&ir);
    let e = explain::explain(&table, request);
    Ok(view(inspection, key, &ir, &e))
}

fn view(
    inspection: &Inspection,
    gateway: String,
    gateway_ir: &ir::Gateway,
    e: &Explanation<'_>,
) -> ExplainView {
    let result = match e.outcome {
        Outcome::Served(_) => "served",
        Outcome::NoListener => "connectionRefused",
        Outcome::NoVirtualHost | Outcome::NoRoute => "notFound",
    };
    let routes = e
        .routes
        .iter()
        .map(|j| {
            let (verdict, reasons, reason) = match &j.judgement {
                Judgement::Serves => ("serves", Vec::new(), None),
                Judgement::Misses(m) => {
                    let reasons: Vec<String> = m.iter().map(ToString::to_string).collect();
                    ("misses", reasons.clone(), reasons.first().cloned())
                }
                Judgement::Behind(why) => ("behind", Vec::new(), Some(why.clone())),
            };
            JudgedView {
                route: RouteView::of(inspection, j.position, j.route),
                verdict,
                reason,
                reasons,
            }
        })
        .collect();
    let closest = match e.outcome {
        Outcome::NoRoute => e.closest().iter().map(|j| j.position).collect(),
        _ => Vec::new(),
    };
    let mut summary = e.summary();
    if let Outcome::Served(route) = e.outcome {
        let state = inspection.state_of(&route.origin);
        if state.state.starts_with("NotProgrammedYet") {
            summary.push_str(" (not Programmed yet: Envoy may still serve the previous generation)");
        }
    }
    ExplainView {
        gateway,
        request: RequestView {
            method: e.request.method.clone(),
            host: e.request.host.clone(),
            port: e.request.port,
            path: e.request.path.clone(),
        },
        result,
        summary,
        listener: e.listener.map(|l| l.name.clone()),
        virtual_host: e.virtual_host.clone(),
        served_by: match e.outcome {
            Outcome::Served(route) => {
                let position = e
                    .routes
                    .iter()
                    .find(|j| j.judgement == Judgement::Serves)
                    .map_or(0, |j| j.position);
                Some(RouteView::of(inspection, position, route))
            }
            _ => None,
        },
        routes,
        closest,
        not_in_table: absent(inspection, gateway_ir, &e.request.host),
        hosts: e.hosts.clone(),
    }
}

/// The Mappings that claim the request's host but are in no route of the
/// Gateway, because the operator did not accept them (a conflict, a host
/// another namespace owns, an invalid field...).
fn absent(inspection: &Inspection, gateway: &ir::Gateway, host: &str) -> Vec<AbsentView> {
    let routed: BTreeSet<String> = gateway
        .routes
        .values()
        .flat_map(|r| std::iter::once(&r.origin).chain(&r.co_origins))
        .map(ir::ObjectRef::key)
        .collect();
    inspection
        .loaded
        .world
        .mappings
        .iter()
        .filter_map(|m| {
            let object = legate_model::object_ref(m.as_ref());
            let hostname = m.spec.hostname.to_ascii_lowercase();
            if routed.contains(&object.key()) || !vhost_covers(&hostname, host) {
                return None;
            }
            let status = inspection.refusal(&object)?;
            Some(AbsentView {
                owner: ObjectView::of(&object),
                hostname,
                status,
            })
        })
        .collect()
}

/// The answer as text: the one-line verdict first.
pub fn text(v: &ExplainView) -> String {
    let mut out = format!("{}\n", v.summary);
    let r = &v.request;
    out.push_str(&format!(
        "\nRequest:  {} {}:{}{} on Gateway {}",
        r.method, r.host, r.port, r.path, v.gateway
    ));
    if let Some(l) = &v.listener {
        out.push_str(&format!(", listener {l}"));
    }
    if let Some(h) = &v.virtual_host {
        out.push_str(&format!(", virtual host {h}"));
    }
    out.push('\n');
    if let Some(s) = &v.served_by {
        out.push_str(&format!(
            "Served by {} (route {} of the virtual host)\n",
            s.owners(),
            s.position
        ));
        out.push_str(&format!("  match:   {}\n", s.match_));
        out.push_str(&format!("  action:  {}\n", s.action));
        for p in &s.policies {
            out.push_str(&format!("  policy:  {p}\n"));
        }
        out.push_str(&format!("  status:  {}", s.status.state));
        if !s.status.message.is_empty() {
            out.push_str(&format!(": {}", s.status.message));
        }
        out.push('\n');
    }
    if !v.hosts.is_empty() {
        out.push_str(&format!("Hosts this listener serves: {}\n", v.hosts.join(", ")));
    }
    if !v.routes.is_empty() {
        out.push_str("\nRoutes of the virtual host, in the order Envoy tries them:\n");
        let mut rows = vec![["#", "OWNER", "MATCH", "VERDICT"].map(str::to_owned).to_vec()];
        for j in &v.routes {
            let verdict = match (j.verdict, &j.reason) {
                ("serves", _) => "serves".to_owned(),
                (_, Some(reason)) if v.closest.contains(&j.route.position) => format!("closest: {reason}"),
                ("behind", Some(reason)) => format!("matches too, but comes after: {reason}"),
                (_, Some(reason)) => format!("no: {reason}"),
                (other, None) => other.to_owned(),
            };
            rows.push(vec![
                j.route.position.to_string(),
                j.route.owners(),
                j.route.match_.clone(),
                verdict,
            ]);
        }
        out.push_str(&indent(&columns(&rows)));
    }
    if !v.not_in_table.is_empty() {
        out.push_str("\nClaiming this host but not in the route table:\n");
        for a in &v.not_in_table {
            out.push_str(&format!("  {} ({}): {}", a.owner, a.hostname, a.status.state));
            if !a.status.message.is_empty() {
                out.push_str(&format!(": {}", a.status.message));
            }
            out.push('\n');
        }
    }
    out
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// Writes `text` to stdout; a closed pipe (`| head`) is the reader's choice.
pub fn print(text: &str) -> ExitCode {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("legate: writing the output: {e}");
            ExitCode::from(2)
        }
    }
}

/// Reports an error of `legate <command>`.
pub fn fail(command: &str, e: &InspectError) -> ExitCode {
    eprintln!("legate {command}: {e}");
    ExitCode::from(2)
}
