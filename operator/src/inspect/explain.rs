//! `legate explain` (being built).

use std::process::ExitCode;

use clap::Args;

pub const EXAMPLES: &str = "Examples:\n  legate explain";

#[derive(Debug, Args)]
pub struct ExplainArgs {}

pub fn main(_args: &ExplainArgs) -> ExitCode {
    ExitCode::FAILURE
}
