//! `legate import -f emissary.yaml`: Emissary-ingress objects in, Legate
//! objects out, with every dropped or changed field named per object.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

/// Shown after `legate import --help`.
pub const EXAMPLES: &str = "Examples:
  legate import -f emissary.yaml";

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A YAML file of getambassador.io objects; `-` reads standard input.
    #[arg(short = 'f', long = "filename", required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

pub fn main(_args: &ImportArgs) -> ExitCode {
    eprintln!("legate import: not built yet");
    ExitCode::FAILURE
}
