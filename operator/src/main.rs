//! `legate`: the Kubernetes operator that turns Legate resources into Envoy
//! configuration and manages the Envoy fleets.

mod model;

use std::process::ExitCode;

const USAGE: &str = "\
legate — Kubernetes-native API gateway operator

Usage: legate <command>

Commands:
  crds [--write DIR]  print the CustomResourceDefinitions as YAML, or write one file per kind into DIR
  version             print the version of legate, its API and the Envoy it targets
  help                print this message
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
        Some("crds") => crds(std::env::args().skip(2).collect()),
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

/// `legate crds`: the CRDs generated from the types in legate-crds.
fn crds(args: Vec<String>) -> ExitCode {
    let files = match legate_crds::generate::files() {
        Ok(files) => files,
        Err(e) => {
            eprintln!("legate crds: {e}");
            return ExitCode::FAILURE;
        }
    };
    match args.as_slice() {
        [] => {
            let all: Vec<String> = files.into_iter().map(|(_, yaml)| yaml).collect();
            print_line(all.join("---\n").trim_end());
            ExitCode::SUCCESS
        }
        [flag, dir] if flag == "--write" => {
            let dir = std::path::Path::new(dir);
            if let Err(e) = std::fs::create_dir_all(dir) {
                eprintln!("legate crds: creating {}: {e}", dir.display());
                return ExitCode::FAILURE;
            }
            for (name, yaml) in files {
                let path = dir.join(name);
                if let Err(e) = std::fs::write(&path, yaml) {
                    eprintln!("legate crds: writing {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
                eprintln!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("legate crds: usage: legate crds [--write DIR]");
            ExitCode::from(2)
        }
    }
}

#[allow(clippy::print_stdout)] // the CLI's output is its interface
fn print_line(text: &str) {
    println!("{text}");
}
