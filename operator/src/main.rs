//! `legate`: the Kubernetes operator that turns Legate resources into Envoy
//! configuration and manages the Envoy fleets.

use std::process::ExitCode;

const USAGE: &str = "\
legate — Kubernetes-native API gateway operator

Usage: legate <command>

Commands:
  version   print the version of legate, its API and the Envoy it targets
  help      print this message
";

fn main() -> ExitCode {
    let command = std::env::args().nth(1);
    match command.as_deref() {
        Some("version") | Some("--version") => {
            print_line(&format!(
                "legate {} (api {}, envoy {})",
                env!("CARGO_PKG_VERSION"),
                legate_crds::api_version(),
                legate_xds::ENVOY_VERSION
            ));
            ExitCode::SUCCESS
        }
        None | Some("help") | Some("--help") | Some("-h") => {
            print_line(USAGE);
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("legate: unknown command {other:?}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

#[allow(clippy::print_stdout)] // the CLI's output is its interface
fn print_line(text: &str) {
    println!("{text}");
}
