//! `legate import -f emissary.yaml`: Emissary-ingress objects in, Legate
//! objects out, with every dropped or changed field named per object.
//!
//! Each input document is read field by field ([`fields::Fields`]): a field
//! is converted, or reported as dropped or changed in meaning; one nobody
//! reads is reported too. A document Legate cannot express without taking
//! traffic that is not its own (a host regex, a method regex) is refused with
//! the reason, never widened. The Legate objects are the typed structs of
//! `legate-crds`, serialized, so each is valid by construction.

mod context;
mod convert;
mod fields;
mod gateway;
mod groups;
mod headers;
mod health;
mod host;
mod hostname;
mod labels;
mod listener;
mod mapping;
mod matching;
mod module;
mod object;
mod output;
mod policy;
mod read;
mod report;
mod service;
mod services;
#[cfg(test)]
mod tests;
mod tls;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

/// Shown after `legate import --help`.
pub const EXAMPLES: &str = "Examples:
  # Convert, print the Legate objects, and the report on standard error
  legate import -f emissary.yaml

  # Everything Emissary has in a cluster, into files (and import-report.txt)
  kubectl get -A -o yaml $(kubectl api-resources --api-group=getambassador.io -o name | paste -sd,) \\
      | legate import -f - --out ./legate

  # Attach every converted object to the Gateway edge of namespace platform
  legate import -f emissary.yaml --gateway platform/edge | kubectl apply -f -";

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A YAML file of getambassador.io objects (v2 or v3alpha1; a `kind: List`
    /// and Services with a getambassador.io/config annotation are opened);
    /// `-` reads standard input. Repeat for more.
    #[arg(short = 'f', long = "filename", required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Write one file per Legate object into this directory (created if
    /// needed), and the report into import-report.txt, instead of printing.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Output format of the Legate objects.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Yaml)]
    pub output: Format,
    /// The Gateway (`namespace/name`) that every converted object attaches to
    /// (spec.gateways), and the name of the Gateway made from Listeners and
    /// the ambassador Module. Without it, objects attach to every Gateway
    /// that admits their namespace, and the Gateway made is `emissary`.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub gateway: Option<String>,
    /// Read the objects of this Emissary installation (AMBASSADOR_ID);
    /// objects whose ambassador_id excludes it are refused, as that
    /// installation ignores them.
    #[arg(long, value_name = "ID", default_value = "default")]
    pub ambassador_id: String,
}

/// How the Legate objects are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Yaml,
    Json,
}

/// Runs `legate import`: objects on stdout (or in `--out`), the report on
/// stderr. The exit status is non-zero only when the input cannot be read or
/// the output cannot be written: a refused document is part of the report.
pub fn main(args: &ImportArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("legate import: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Why `legate import` stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Read(#[from] read::ReadError),
    #[error(transparent)]
    Output(#[from] output::OutputError),
    #[error("--gateway {0:?} is not namespace/name (or name)")]
    Gateway(String),
}

fn run(args: &ImportArgs) -> Result<(), ImportError> {
    let gateway = args
        .gateway
        .as_deref()
        .map(|text| parse_gateway(text).ok_or_else(|| ImportError::Gateway(text.to_string())))
        .transpose()?;
    let documents = read::read_inputs(&args.files)?;
    let conversion = convert::convert_all(documents, gateway, &args.ambassador_id);
    output::write(&conversion, args.output, args.out.as_deref())?;
    Ok(())
}

fn parse_gateway(text: &str) -> Option<legate_crds::GatewayRef> {
    let label = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    let (namespace, name) = match text.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, text),
    };
    (label(name) && namespace.is_none_or(label)).then(|| legate_crds::GatewayRef {
        name: name.to_string(),
        namespace: namespace.map(String::from),
    })
}
