//! Golden cases: `model/testdata/NAME.in.yaml` holds objects,
//! `NAME.out.yaml` what `legate translate -f NAME.in.yaml` prints for them
//! (every Gateway's xDS and every object's verdict). A case fails on any
//! byte of difference, and when its `.out.yaml` is missing or has no
//! `.in.yaml`. Regenerate every `.out.yaml` with `make golden`
//! (`LEGATE_UPDATE_GOLDEN=1 cargo test -p legate-operator golden`) and review
//! the diff.
//!
//! The runner lives here, not in legate-model: the model must not depend on
//! the Envoy half of legate-xds, and the output is the CLI's.
//!
//! The cases cover every reason the model gives (checked below). Four
//! reasons come only from what Envoys ACK or NACK, which no file can hold:
//! `Programmed`, `Pending`, `Rejected` and `NoProxies` (tested with the ACK
//! tracking in `program.rs` and `status.rs`, and end to end).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use legate_crds::conditions::reasons;
use legate_model::snapshot::Reader;

use super::{OutputFormat, Translation, render, translate};

const REGENERATE: &str = "make golden";

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/testdata")
}

/// Names of the files in `testdata()` that end with `suffix`, without it.
fn names_ending(suffix: &str) -> BTreeSet<String> {
    std::fs::read_dir(testdata())
        .expect("model/testdata is readable")
        .map(|entry| entry.expect("a directory entry").file_name())
        .filter_map(|name| name.to_str()?.strip_suffix(suffix).map(str::to_owned))
        .collect()
}

fn cases() -> BTreeSet<String> {
    names_ending(".in.yaml")
}

fn translation_of(name: &str) -> Translation {
    let path = testdata().join(format!("{name}.in.yaml"));
    let mut reader = Reader::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    if let Err(e) = reader.read_file(&path) {
        panic!("golden case {name}: {e}");
    }
    let snapshot = reader.finish();
    assert!(
        snapshot.warnings.is_empty(),
        "golden case {name} should read cleanly: {:?}",
        snapshot.warnings
    );
    translate(&snapshot.world)
}

fn yaml_of(name: &str) -> String {
    render(&translation_of(name), OutputFormat::Yaml).expect("the translation serializes")
}

/// Where the first difference is, with a few lines of each around it, and
/// the whole output written out for `diff`.
fn mismatch(name: &str, expected: &str, actual: &str) -> String {
    let at = expected
        .lines()
        .zip(actual.lines())
        .position(|(e, a)| e != a)
        .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
    let around = |text: &str| -> String {
        let lines: Vec<&str> = text.lines().collect();
        let from = at.saturating_sub(3);
        let to = (at + 4).min(lines.len());
        lines.get(from..to).unwrap_or_default().join("\n")
    };
    let saved = std::env::temp_dir()
        .join("legate-golden")
        .join(format!("{name}.out.yaml"));
    let written = std::fs::create_dir_all(saved.parent().expect("a folder"))
        .and_then(|()| std::fs::write(&saved, actual));
    let whole = match written {
        Ok(()) => format!(
            "the whole output: diff -u model/testdata/{name}.out.yaml {}",
            saved.display()
        ),
        Err(e) => format!("(could not save the whole output: {e})"),
    };
    format!(
        "{name}.out.yaml differs from the output from line {}:\n--- expected\n{}\n+++ actual\n{}\n{whole}",
        at + 1,
        around(expected),
        around(actual),
    )
}

#[test]
fn golden_cases_match_their_output_byte_for_byte() {
    let update = std::env::var_os("LEGATE_UPDATE_GOLDEN").is_some();
    let dir = testdata();
    let cases = cases();
    assert!(!cases.is_empty(), "no golden case in {}", dir.display());
    let mut failures = Vec::new();
    for name in &cases {
        let actual = yaml_of(name);
        let out = dir.join(format!("{name}.out.yaml"));
        if update {
            std::fs::write(&out, &actual).expect("writing a golden file");
            continue;
        }
        match std::fs::read_to_string(&out) {
            Err(e) => failures.push(format!("{name}.out.yaml: {e}; every case needs its output")),
            Ok(expected) if expected != actual => failures.push(mismatch(name, &expected, &actual)),
            Ok(_) => {}
        }
    }
    for stale in names_ending(".out.yaml").difference(&cases) {
        let out = dir.join(format!("{stale}.out.yaml"));
        if update {
            std::fs::remove_file(&out).expect("removing a stale golden file");
        } else {
            failures.push(format!("{stale}.out.yaml has no {stale}.in.yaml"));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\nIf the new output is right, regenerate every case with:\n  {REGENERATE}\nand review the diff.",
        failures.join("\n\n")
    );
}

#[test]
fn golden_cases_cover_every_kind_and_every_reason_the_model_gives() {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for name in cases() {
        for v in translation_of(&name).verdicts {
            let kind = v.object.split('/').next().unwrap_or_default().to_string();
            seen.insert(format!("Accepted={}", v.accepted.reason));
            seen.insert(format!("ResolvedRefs={}", v.resolved_refs.reason));
            seen.insert(kind);
        }
    }
    let accepted = [
        reasons::ACCEPTED,
        reasons::INVALID,
        reasons::NO_GATEWAY,
        reasons::CONFLICTED,
    ];
    let resolved = [
        reasons::RESOLVED_REFS,
        reasons::BACKEND_NOT_FOUND,
        reasons::NO_READY_ENDPOINTS,
        reasons::SECRET_NOT_FOUND,
        reasons::INVALID_SECRET,
        // A Gateway's tracing collector that does not parse.
        reasons::INVALID,
    ];
    let kinds = legate_model::snapshot::LEGATE_KINDS;
    let wanted = accepted
        .iter()
        .map(|r| format!("Accepted={r}"))
        .chain(resolved.iter().map(|r| format!("ResolvedRefs={r}")))
        .chain(kinds.iter().map(|k| k.to_string()));
    let missing: Vec<String> = wanted.filter(|w| !seen.contains(w)).collect();
    assert!(missing.is_empty(), "no golden case shows {missing:?}");
}

#[test]
fn golden_outputs_are_yaml_with_the_same_structure_as_the_json_output() {
    for name in cases() {
        let translation = translation_of(&name);
        let yaml = render(&translation, OutputFormat::Yaml).expect("YAML");
        let json = render(&translation, OutputFormat::Json).expect("JSON");
        let from_yaml: serde_json::Value =
            serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{name}: the output is not YAML: {e}"));
        let from_json: serde_json::Value = serde_json::from_str(&json).expect("the JSON output parses");
        assert!(from_yaml == from_json, "{name}: YAML and JSON outputs differ");
    }
}

#[test]
fn golden_outputs_never_hold_a_private_key() {
    for name in cases() {
        let yaml = yaml_of(&name);
        assert!(
            !yaml.contains("PRIVATE KEY"),
            "{name}: a private key reached the output"
        );
    }
}

/// `legate translate -f examples/` (and `-f examples/quickstart/`) read
/// every example: the Deployment next to the quickstart's Service is
/// skipped with a warning, every Legate object gets a verdict.
#[test]
fn every_example_translates() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for (dir, deployments) in [(examples.clone(), 0), (examples.join("quickstart"), 1)] {
        let mut reader = Reader::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        reader
            .read_path(&dir, false)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let snapshot = reader.finish();
        let skipped = snapshot
            .warnings
            .iter()
            .filter(|w| w.message.contains("skipped Deployment"))
            .count();
        assert_eq!(skipped, deployments, "{:?}", snapshot.warnings);
        let world = &snapshot.world;
        let objects = world.gateways.len()
            + world.mappings.len()
            + world.tls_contexts.len()
            + world.auth_services.len()
            + world.rate_limit_services.len()
            + world.tcp_mappings.len();
        let translation = translate(world);
        assert_eq!(translation.verdicts.len(), objects, "{}", dir.display());
        assert!(!translation.gateways.is_empty());
    }
}
