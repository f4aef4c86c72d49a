//! `legate`: the Kubernetes operator that turns Legate resources into Envoy
//! configuration and manages the Envoy fleets.

mod cli;
mod controllers;
mod diagnostics;
mod engine;
mod fleet;
mod health;
mod import;
mod inspect;
mod kubeconfig;
mod leader;
mod liveness;
mod metrics;
mod pki;
mod program;
mod requeue;
mod run;
mod status;
mod translate;
mod world;
mod xds_serving;
mod xds_tls;

use std::process::ExitCode;

use clap::Parser;
use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => {
            // The commit is stamped by build.rs ("unknown" without git).
            print_line(&format!(
                "legate {}\ncommit: {}\napi: {}\nenvoy: {} (xDS v3, ADS)",
                env!("CARGO_PKG_VERSION"),
                env!("LEGATE_COMMIT"),
                legate_crds::api_version(),
                legate_xds::ENVOY_VERSION
            ));
            ExitCode::SUCCESS
        }
        Command::Crds { write } => crds(write),
        Command::Bootstrap(args) => bootstrap(&args),
        Command::Translate(args) => translate::main(&args),
        Command::Explain(args) => inspect::explain::main(&args),
        Command::Routes(args) => inspect::routes::main(&args),
        Command::Import(args) => import::main(&args),
        Command::Run(args) => run::main(*args),
    }
}

/// `legate crds`: the CRDs generated from the types in legate-crds.
fn crds(write: Option<std::path::PathBuf>) -> ExitCode {
    let files = match legate_crds::generate::files() {
        Ok(files) => files,
        Err(e) => {
            eprintln!("legate crds: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(dir) = write else {
        let all: Vec<String> = files.into_iter().map(|(_, yaml)| yaml).collect();
        print_line(all.join("---\n").trim_end());
        return ExitCode::SUCCESS;
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
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

/// `legate bootstrap --gateway ns/name`: what the Gateway's ConfigMap holds.
fn bootstrap(args: &cli::BootstrapArgs) -> ExitCode {
    if !args.gateway.contains('/') {
        eprintln!(
            "legate bootstrap: --gateway must be namespace/name, got {:?}",
            args.gateway
        );
        return ExitCode::from(2);
    }
    let (host, port) = match cli::split_host_port(&args.xds_advertise) {
        Ok(hp) => hp,
        Err(e) => {
            eprintln!("legate bootstrap: --xds-advertise {e}");
            return ExitCode::from(2);
        }
    };
    let mut config = legate_xds::bootstrap::BootstrapConfig::new(&args.node, &args.gateway, &host, port);
    if args.sotw {
        config.protocol = legate_xds::server::Protocol::StateOfTheWorld;
    }
    print_line(config.to_yaml().trim_end());
    ExitCode::SUCCESS
}

#[allow(clippy::print_stdout)] // the CLI's output is its interface
fn print_line(text: &str) {
    println!("{text}");
}
