//! `legate routes` (being built).

use std::process::ExitCode;

use clap::Args;

pub const EXAMPLES: &str = "Examples:\n  legate routes";

#[derive(Debug, Args)]
pub struct RoutesArgs {}

pub fn main(_args: &RoutesArgs) -> ExitCode {
    ExitCode::FAILURE
}
