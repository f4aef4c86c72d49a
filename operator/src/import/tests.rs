//! The corpus (`tests/fixtures/emissary`) against the research table
//! (`docs/import.md`) and the converter: every field the table lists is in
//! the corpus, and every corpus document converts or is refused with a
//! reason, with no field the import does not know. The whole conversion is
//! a golden file, `tests/fixtures/emissary/golden/corpus.out.yaml` (the
//! report as comments, then the objects): regenerate it with `make golden`
//! (which runs every golden test of the operator with LEGATE_UPDATE_GOLDEN=1)
//! and review the diff.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Format;
use super::convert::convert_all;
use super::output::render;
use super::read::{Document, read_str};
use super::report::Outcome;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the operator crate lives one level below the workspace root")
        .to_path_buf()
}

fn corpus() -> Vec<Document> {
    let dir = workspace().join("tests/fixtures/emissary");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        docs.extend(read_str(&name, &text).unwrap_or_else(|e| panic!("{e}")));
    }
    docs
}

/// `(kind, field path)` for every field the research table lists, paths
/// relative to `spec` (to `spec.config` for the Module).
fn table_fields() -> Vec<(String, String)> {
    let path = workspace().join("docs/import.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let ticks = regex::Regex::new("`([^`]+)`").expect("a valid regex");
    let mut kind = None;
    let mut fields = Vec::new();
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            kind = [
                "Mapping",
                "Host",
                "Listener",
                "TLSContext",
                "AuthService",
                "RateLimitService",
                "TCPMapping",
                "Module",
            ]
            .into_iter()
            .find(|k| heading.split_whitespace().next() == Some(*k))
            .map(String::from);
            continue;
        }
        let (Some(kind), Some(row)) = (&kind, line.strip_prefix("| ")) else {
            continue;
        };
        if row.starts_with("Emissary") || row.starts_with("---") {
            continue;
        }
        let first_cell = row.split(" | ").next().unwrap_or_default();
        let mut base = String::new();
        for item in ticks.captures_iter(first_cell).filter_map(|c| c.get(1)) {
            let item = item.as_str();
            let full = if let Some(rest) = item.strip_prefix('.') {
                format!("{base}.{rest}")
            } else {
                base = item
                    .rsplit_once('.')
                    .map(|(p, _)| p.to_string())
                    .unwrap_or_default();
                item.to_string()
            };
            fields.push((kind.clone(), full));
        }
    }
    fields
}

/// Whether `value` has the field `path` (`a.b`, `a[].b`: any element).
fn has_path(value: &Value, path: &[&str]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return true;
    };
    let (key, each) = match first.strip_suffix("[]") {
        Some(key) => (key, true),
        None => (*first, false),
    };
    let Some(next) = value.get(key).filter(|v| !v.is_null()) else {
        return false;
    };
    if each {
        next.as_array()
            .is_some_and(|items| items.iter().any(|i| has_path(i, rest)))
    } else {
        has_path(next, rest)
    }
}

fn spec(doc: &Document) -> &Value {
    if doc.value.get("metadata").is_some() {
        &doc.value["spec"]
    } else {
        &doc.value
    }
}

#[test]
fn the_corpus_uses_every_field_of_the_research_table() {
    let docs = corpus();
    let fields = table_fields();
    assert!(fields.len() > 250, "the table lists {} fields", fields.len());
    let mut missing = Vec::new();
    for (kind, path) in &fields {
        let (root, path) = match kind.as_str() {
            "Module" => ("config", path.as_str()),
            _ => ("", path.as_str()),
        };
        let segments: Vec<&str> = root
            .split('.')
            .filter(|s| !s.is_empty())
            .chain(path.split('.'))
            .collect();
        let found = docs
            .iter()
            .filter(|d| d.value["kind"] == kind.as_str())
            .any(|d| has_path(spec(d), &segments));
        if !found {
            missing.push(format!("{kind} {path}"));
        }
    }
    assert!(
        missing.is_empty(),
        "fields of docs/import.md no corpus document has:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_corpus_document_is_converted_or_refused_with_a_reason() {
    let docs = corpus();
    assert!(docs.len() >= 30, "{} documents", docs.len());
    let conversion = convert_all(docs, None, "default");
    let report = conversion.report.to_string();
    for doc in &conversion.report.docs {
        if let Outcome::Refused(why) = &doc.outcome {
            assert!(why.len() > 20, "{} refused without a reason", doc.source);
        }
        for note in &doc.notes {
            assert!(
                !note.why.contains("not a documented field"),
                "{}: the import does not know {}:\n{report}",
                doc.source,
                note.field
            );
        }
    }
    let mut refused: Vec<&str> = conversion
        .report
        .docs
        .iter()
        .filter(|d| d.refused())
        .map(|d| d.object.as_str())
        .collect();
    refused.sort_unstable();
    assert_eq!(
        refused,
        vec![
            "ConfigMap shop/not-emissary",
            "Host shop/blog",
            "KubernetesEndpointResolver emissary/endpoint",
            "Listener emissary/dns",
            "Mapping shop/ancient",
            "Mapping shop/elsewhere",
            "Mapping shop/many-hosts",
            "Mapping shop/writes",
            "Module emissary/tls",
            "Service annotated",
            "TCPMapping data/external-db",
            "TLSContext shop/from-files",
            "TracingService emissary/tracing",
        ],
        "{report}"
    );
}

const REGENERATE: &str = "make golden";

#[test]
fn the_corpus_converts_as_the_golden_file_says() {
    let conversion = convert_all(corpus(), None, "default");
    let mut text = String::new();
    for line in conversion.report.to_string().lines() {
        text.push_str("# ");
        text.push_str(line);
        text.push('\n');
    }
    let values: Vec<&Value> = conversion.objects.iter().map(|(_, v)| v).collect();
    text.push_str(&render(&values, Format::Yaml).unwrap_or_else(|e| panic!("{e}")));
    let path = workspace().join("tests/fixtures/emissary/golden/corpus.out.yaml");
    if std::env::var_os("LEGATE_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().expect("a parent directory")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&path, &text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; create it with `{REGENERATE}`", path.display()));
    if expected != text {
        let first = expected
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(text.lines().count()));
        panic!(
            "{} differs from the conversion from line {}:\n  golden: {:?}\n  now:    {:?}\nregenerate with `{REGENERATE}` and review the diff",
            path.display(),
            first + 1,
            expected.lines().nth(first),
            text.lines().nth(first)
        );
    }
}

#[test]
fn a_host_and_a_tls_context_of_one_name_make_two_tls_contexts() {
    let text = "\
apiVersion: getambassador.io/v3alpha1
kind: TLSContext
metadata: {name: shop, namespace: shop}
spec: {hosts: [a.example.com], secret: a}
---
apiVersion: getambassador.io/v3alpha1
kind: Host
metadata: {name: shop, namespace: shop}
spec: {hostname: b.example.com, tlsSecret: {name: b}}
";
    let docs = read_str("dup.yaml", text).unwrap_or_else(|e| panic!("{e}"));
    let conversion = convert_all(docs, None, "default");
    let names: Vec<&str> = conversion.objects.iter().map(|(k, _)| k.name.as_str()).collect();
    assert_eq!(names, vec!["shop", "shop-host"]);
    assert_eq!(conversion.objects[1].1["metadata"]["name"], "shop-host");
    assert_eq!(conversion.objects[1].1["spec"]["hosts"][0], "b.example.com");
}
