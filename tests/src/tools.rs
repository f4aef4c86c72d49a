//! `legate-tools`, the Go checks from `tests/tools/`: the operator-framework
//! bundle validators and kind's config decoding. Built (or found in the
//! cache) by `tests/tools/build.sh` on first use.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use crate::workspace;

static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// The built `legate-tools`; panics with build.sh's explanation when it cannot be built.
pub fn binary() -> &'static Path {
    match BINARY.get_or_init(build) {
        Ok(path) => path,
        Err(e) => panic!("legate-tools is not available: {e}"),
    }
}

fn build() -> Result<PathBuf, String> {
    let script = workspace::root().join("tests").join("tools").join("build.sh");
    let output = Command::new(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("could not run {}: {e}", script.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} failed ({}); its output above says why",
            script.display(),
            output.status
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let path = stdout
        .lines()
        .last()
        .map(PathBuf::from)
        .ok_or_else(|| format!("{} printed no path", script.display()))?;
    Ok(path)
}

/// Runs `legate-tools ARGS...` and returns what it said and how it exited.
pub fn run(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(binary())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", binary().display()))
}
