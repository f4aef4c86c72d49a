//! `legate-bench`: the end-to-end scale benchmark's driver, run by
//! `scripts/bench.sh` (`make bench`) against a stack that `tests/stack.sh up`
//! started. See BENCHMARKS.md.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use legate_tests::bench::{self, Apply, Config, Load};

const USAGE: &str = "usage: legate-bench --stack DIR [--load bulk|one-by-one] [--apply kubectl|concurrent] [--mappings N] [--hosts H] [--changes K] [--idle-seconds S]";

#[tokio::main]
async fn main() -> ExitCode {
    let config = match parse(std::env::args().skip(1)) {
        Ok(config) => config,
        Err(problem) => {
            eprintln!("legate-bench: {problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match bench::run(&config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("legate-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Config, String> {
    let mut config = Config {
        stack_dir: PathBuf::new(),
        load: Load::Bulk,
        apply: Apply::Kubectl,
        mappings: 1000,
        hosts: 100,
        changes: 200,
        idle: Duration::from_secs(60),
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--stack" => config.stack_dir = PathBuf::from(value),
            "--load" => config.load = load(&value)?,
            "--apply" => config.apply = apply(&value)?,
            "--mappings" => config.mappings = number(&flag, &value)?,
            "--hosts" => config.hosts = number(&flag, &value)?,
            "--changes" => config.changes = number(&flag, &value)?,
            "--idle-seconds" => config.idle = Duration::from_secs(number(&flag, &value)? as u64),
            _ => return Err(format!("unexpected argument {flag:?}")),
        }
    }
    if config.stack_dir.as_os_str().is_empty() {
        return Err("--stack is required".into());
    }
    if config.mappings == 0 || config.hosts == 0 {
        return Err("--mappings and --hosts must be at least 1".into());
    }
    Ok(config)
}

fn load(value: &str) -> Result<Load, String> {
    match value {
        "bulk" => Ok(Load::Bulk),
        "one-by-one" => Ok(Load::OneByOne),
        _ => Err(format!("--load {value:?}: expected bulk or one-by-one")),
    }
}

fn apply(value: &str) -> Result<Apply, String> {
    match value {
        "kubectl" => Ok(Apply::Kubectl),
        "concurrent" => Ok(Apply::Concurrent),
        _ => Err(format!("--apply {value:?}: expected kubectl or concurrent")),
    }
}

fn number(flag: &str, value: &str) -> Result<usize, String> {
    value.parse().map_err(|e| format!("{flag} {value:?}: {e}"))
}
