//! Stamps the git commit into the binary for `legate version`: from
//! $LEGATE_COMMIT when set (the image build, where .git is absent), else from
//! git, else "unknown".

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=LEGATE_COMMIT");
    let from_env = std::env::var("LEGATE_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty());
    let commit = from_env
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_string());
    // Rebuild when HEAD moves: HEAD itself (a checkout), the branch it names
    // (a commit) and packed-refs (where git may keep that branch). Only files
    // that exist: Cargo reruns a build script on every build for a missing one.
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name])
            && std::path::Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rustc-env=LEGATE_COMMIT={}", commit.trim());
}

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}
