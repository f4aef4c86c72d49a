//! `make bundle`: writes `olm-bundle/manifests/` from `manifests/`,
//! `examples/` and `manifests/olm/` (see `legate_tests::bundle`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let root = legate_tests::workspace::root();
    match legate_tests::bundle::write(&root) {
        Ok(paths) => {
            for path in paths {
                eprintln!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("legate-bundle: {e}");
            ExitCode::FAILURE
        }
    }
}
