//! Where the project's files and tools live, seen from a test.

use std::path::{Path, PathBuf};

/// The root of the Cargo workspace.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives one level below the workspace root")
        .to_path_buf()
}

/// `tests/controlplane/`, with build.sh, up.sh and down.sh.
pub fn controlplane_dir() -> PathBuf {
    root().join("tests").join("controlplane")
}

/// The project's virtualenv, where `make envoy` installs Envoy.
pub fn venv_dir() -> PathBuf {
    root().join(".venv")
}
