//! `legate routes [-g ns/gateway] [--host H]`: each Gateway's route table,
//! per listener and virtual host, in the order Envoy tries the routes.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use legate_xds::ir::ListenerProtocol;
use legate_xds::table::route_table;
use serde::Serialize;

use super::source::SourceArgs;
use super::view::{HostView, columns};
use super::{InspectError, Inspection};

/// Shown after `legate routes --help`.
pub const EXAMPLES: &str = "Examples:
  # Every Gateway's routes, from the cluster of the current kubeconfig
  legate routes

  # The routes Envoy tries for one host on one Gateway, as JSON
  legate routes -g infra/edge --host shop.example.com -o json

  # From files, before applying them
  legate routes -f gateway.yaml -f mappings/";

#[derive(Debug, Args)]
pub struct RoutesArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Only the virtual host Envoy picks for this host (its own, a
    /// `*.suffix` glob that covers it, or `*`).
    #[arg(long)]
    pub host: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = RoutesFormat::Table)]
    pub output: RoutesFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoutesFormat {
    Table,
    Json,
    Yaml,
}

#[derive(Debug, Serialize)]
pub struct GatewayRoutes {
    pub gateway: String,
    pub listeners: Vec<ListenerRoutes>,
}

#[derive(Debug, Serialize)]
pub struct ListenerRoutes {
    pub name: String,
    pub port: u16,
    pub protocol: &'static str,
    pub hosts: Vec<HostView>,
}

pub fn main(args: &RoutesArgs) -> ExitCode {
    let inspection = match Inspection::load(&args.source) {
        Ok(i) => i,
        Err(e) => return super::explain::fail("routes", &e),
    };
    for w in &inspection.loaded.warnings {
        eprintln!("legate routes: warning: {w}");
    }
    let tables = match routes(&inspection, args.source.gateway.as_deref(), args.host.as_deref()) {
        Ok(t) => t,
        Err(e) => return super::explain::fail("routes", &e),
    };
    let text = match args.output {
        RoutesFormat::Table => Ok(table_text(&tables)),
        RoutesFormat::Json => serde_json::to_string_pretty(&tables)
            .map(|j| j + "\n")
            .map_err(|e| e.to_string()),
        RoutesFormat::Yaml => serde_saphyr::to_string(&tables).map_err(|e| e.to_string()),
    };
    match text {
        Ok(text) => super::explain::print(&text),
        Err(e) => {
            eprintln!("legate routes: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The route tables of the Gateways asked about.
pub fn routes(
    inspection: &Inspection,
    gateway: Option<&str>,
    host: Option<&str>,
) -> Result<Vec<GatewayRoutes>, InspectError> {
    let host = host.map(str::to_ascii_lowercase);
    let mut out = Vec::new();
    for key in inspection.gateways(gateway)? {
        let ir = inspection.gateway_ir(&key);
        let (table, _) = route_table(&ir);
        let listeners = table
            .listeners
            .iter()
            .map(|l| ListenerRoutes {
                name: l.listener.name.clone(),
                port: l.listener.port,
                protocol: match l.listener.protocol {
                    ListenerProtocol::Https => "HTTPS",
                    _ => "HTTP",
                },
                hosts: match &host {
                    Some(h) => l
                        .virtual_host_for(h)
                        .map(|vh| HostView::of(inspection, vh))
                        .into_iter()
                        .collect(),
                    None => l.hosts.iter().map(|vh| HostView::of(inspection, vh)).collect(),
                },
            })
            .collect();
        out.push(GatewayRoutes {
            gateway: key,
            listeners,
        });
    }
    Ok(out)
}

fn table_text(tables: &[GatewayRoutes]) -> String {
    let mut out = String::new();
    for g in tables {
        for l in &g.listeners {
            out.push_str(&format!(
                "Gateway {}, listener {} ({} port {})\n",
                g.gateway, l.name, l.protocol, l.port
            ));
            let mut rows = vec![
                ["HOST", "#", "OWNER", "MATCH", "ACTION", "STATUS"]
                    .map(str::to_owned)
                    .to_vec(),
            ];
            for h in &l.hosts {
                for r in &h.routes {
                    rows.push(vec![
                        h.host.clone(),
                        r.position.to_string(),
                        r.owners(),
                        r.match_.clone(),
                        r.action.clone(),
                        r.status.state.clone(),
                    ]);
                }
            }
            if rows.len() == 1 {
                out.push_str("  (no routes)\n\n");
                continue;
            }
            out.push_str(&columns(&rows));
            out.push('\n');
        }
        if g.listeners.is_empty() {
            out.push_str(&format!("Gateway {}: no HTTP listener\n\n", g.gateway));
        }
    }
    out
}
