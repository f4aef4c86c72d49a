//! `legate translate -f FILE...`: what the operator would make of some
//! objects, with no cluster. The files are read into a `World`
//! (`legate_model::snapshot`), judged by the operator's own model code, and
//! each Gateway's configuration goes through a fresh translator; the output
//! is every xDS resource each Gateway's Envoys would get and every object's
//! verdict, as YAML (bodies as block scalars) or JSON.
//!
//! An object the model finds wrong is part of the answer (its verdict says
//! why), not an error: the exit status is non-zero only when the input cannot
//! be read.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use legate_crds::conditions::reasons;
use legate_model::snapshot::{Snapshot, SnapshotError, read_paths};
use legate_model::{Problem, World};
use legate_xds::render::render_resource;
use legate_xds::resource::{ResourceType, ResourceUpdate};
use legate_xds::translate::Translator;
use serde::Serialize;
use serde_saphyr::LitString;

#[cfg(test)]
mod golden;

#[derive(Debug, Args)]
pub struct TranslateArgs {
    /// A YAML file of objects, or a folder of them (its *.yaml and *.yml
    /// files, in path order); `-` reads standard input. Repeat for more.
    #[arg(short = 'f', long = "filename", required = true, value_name = "FILE_OR_DIR")]
    pub files: Vec<PathBuf>,
    /// Read the subfolders of folders too.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Yaml)]
    pub output: OutputFormat,
    /// The address Envoy listeners bind, as the operator's --envoy-listen-address.
    #[arg(long, default_value = "0.0.0.0")]
    pub listen_address: IpAddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Yaml,
    Json,
}

/// Why `legate translate` printed nothing.
#[derive(Debug, thiserror::Error)]
pub enum TranslateError {
    #[error(transparent)]
    Input(#[from] SnapshotError),
    #[error("writing YAML: {0}")]
    Yaml(#[source] serde_saphyr::ser::Error),
    #[error("writing JSON: {0}")]
    Json(#[source] serde_json::Error),
}

/// Runs `legate translate`: the translation on stdout, warnings about
/// skipped or replaced objects on stderr.
pub fn main(args: &TranslateArgs) -> ExitCode {
    let snapshot = match read(args) {
        Ok(snapshot) => snapshot,
        Err(e) => {
            eprintln!("legate translate: {e}");
            return ExitCode::FAILURE;
        }
    };
    for warning in &snapshot.warnings {
        eprintln!("legate translate: warning: {warning}");
    }
    let text = match render(&translate(&snapshot.world), args.output) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("legate translate: {e}");
            return ExitCode::FAILURE;
        }
    };
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("legate translate: writing the output: {e}");
            ExitCode::FAILURE
        }
    }
}

fn read(args: &TranslateArgs) -> Result<Snapshot, TranslateError> {
    Ok(read_paths(&args.files, args.recursive, args.listen_address)?)
}

/// Everything `legate translate` prints, in a fixed order.
#[derive(Debug, Serialize)]
pub struct Translation {
    /// By Gateway key (`namespace/name`).
    pub gateways: Vec<GatewayXds>,
    /// By object key (`Kind/namespace/name`).
    pub verdicts: Vec<VerdictView>,
}

/// The xDS resources one Gateway's Envoys would get.
#[derive(Debug, Serialize)]
pub struct GatewayXds {
    pub gateway: String,
    /// What the translator refused (the model validates first, so this is
    /// empty unless the two disagree: a bug worth seeing).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<String>,
    /// In the order a request meets them, then by name.
    pub resources: Vec<ResourceView>,
}

#[derive(Debug, Serialize)]
pub struct ResourceView {
    /// The proto message: Listener, RouteConfiguration, Cluster...
    #[serde(rename = "type")]
    pub type_: &'static str,
    pub name: String,
    /// The version Envoy would be sent (a hash of the bytes).
    pub version: String,
    /// The proto, decoded (see `legate_xds::render`), private keys redacted.
    pub body: LitString,
}

/// An object's verdict: the two conditions the model decides.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerdictView {
    /// `Kind/namespace/name`.
    pub object: String,
    pub generation: i64,
    /// The Gateways whose configuration carries it.
    pub gateways: Vec<String>,
    pub accepted: ConditionView,
    pub resolved_refs: ConditionView,
}

#[derive(Debug, Serialize)]
pub struct ConditionView {
    pub status: &'static str,
    pub reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl ConditionView {
    fn of(judged: &Result<(), Problem>, true_reason: &'static str) -> ConditionView {
        match judged {
            Ok(()) => ConditionView {
                status: "True",
                reason: true_reason,
                message: None,
            },
            Err(problem) => ConditionView {
                status: "False",
                reason: problem.reason,
                message: Some(problem.message.clone()),
            },
        }
    }
}

/// Resource types in the order a request meets them.
const TYPE_ORDER: [ResourceType; ResourceType::COUNT] = [
    ResourceType::Listener,
    ResourceType::Route,
    ResourceType::VirtualHost,
    ResourceType::Cluster,
    ResourceType::Endpoints,
    ResourceType::Secret,
];

/// The model of `world`, each Gateway's IR through a fresh translator (so
/// every resource is new, as for an Envoy that just connected).
pub fn translate(world: &World) -> Translation {
    let model = legate_model::build(world);
    let gateways = model
        .gateways
        .iter()
        .map(|(key, desired)| {
            let (updates, refused) = Translator::new().sync(desired);
            let mut resources: Vec<_> = updates
                .into_iter()
                .filter_map(|u| match u {
                    ResourceUpdate::Upsert(r) => Some(r),
                    // A fresh translator has nothing to remove.
                    ResourceUpdate::Remove(..) => None,
                })
                .collect();
            resources.sort_by_key(|r| {
                let rank = TYPE_ORDER.iter().position(|t| *t == r.kind);
                (rank, r.name.clone())
            });
            GatewayXds {
                gateway: key.clone(),
                refused: refused.iter().map(ToString::to_string).collect(),
                resources: resources
                    .iter()
                    .map(|r| ResourceView {
                        type_: r.kind.type_url().rsplit('.').next().unwrap_or_default(),
                        name: r.name.to_string(),
                        version: r.version.to_string(),
                        body: LitString(render_resource(r)),
                    })
                    .collect(),
            }
        })
        .collect();
    let verdicts = model
        .verdicts
        .values()
        .map(|v| VerdictView {
            object: v.object.key(),
            generation: v.object.generation(),
            gateways: v.gateways.clone(),
            accepted: ConditionView::of(&v.accepted, reasons::ACCEPTED),
            resolved_refs: ConditionView::of(&v.resolved_refs, reasons::RESOLVED_REFS),
        })
        .collect();
    Translation { gateways, verdicts }
}

/// The translation as YAML or JSON text, ending with a newline.
pub fn render(translation: &Translation, format: OutputFormat) -> Result<String, TranslateError> {
    match format {
        OutputFormat::Yaml => serde_saphyr::to_string(translation).map_err(TranslateError::Yaml),
        OutputFormat::Json => serde_json::to_string_pretty(translation)
            .map(|json| json + "\n")
            .map_err(TranslateError::Json),
    }
}
