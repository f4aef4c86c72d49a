//! Writing the Legate objects (YAML documents or a JSON List, on stdout or
//! one file each in `--out`) and the report (stderr, and
//! `import-report.txt` in `--out`).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::Format;
use super::convert::{Conversion, ObjectKey};

/// Why the output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("writing YAML: {0}")]
    Yaml(#[source] serde_saphyr::ser::Error),
    #[error("writing JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error("writing {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing standard output: {0}")]
    Stdout(#[source] std::io::Error),
}

/// The text of one object (or of all of them, for stdout).
pub fn render(values: &[&Value], format: Format) -> Result<String, OutputError> {
    match format {
        Format::Yaml => {
            let mut text = String::new();
            for value in values {
                text.push_str("---\n");
                let yaml = serde_saphyr::to_string(value).map_err(OutputError::Yaml)?;
                text.push_str(&yaml);
                if !yaml.ends_with('\n') {
                    text.push('\n');
                }
            }
            Ok(text)
        }
        Format::Json => {
            let body = if values.len() == 1 {
                values[0].clone()
            } else {
                json!({ "apiVersion": "v1", "kind": "List", "items": values })
            };
            let mut text = serde_json::to_string_pretty(&body).map_err(OutputError::Json)?;
            text.push('\n');
            Ok(text)
        }
    }
}

fn file_name(key: &ObjectKey, format: Format) -> String {
    let ext = match format {
        Format::Yaml => "yaml",
        Format::Json => "json",
    };
    match &key.namespace {
        Some(ns) => format!("{}-{ns}-{}.{ext}", key.kind.to_ascii_lowercase(), key.name),
        None => format!("{}-{}.{ext}", key.kind.to_ascii_lowercase(), key.name),
    }
}

/// Writes the objects and the report.
pub fn write(conversion: &Conversion, format: Format, out: Option<&Path>) -> Result<(), OutputError> {
    let report = conversion.report.to_string();
    eprint!("{report}");
    let Some(dir) = out else {
        let values: Vec<&Value> = conversion.objects.iter().map(|(_, v)| v).collect();
        let text = render(&values, format)?;
        return match std::io::stdout().lock().write_all(text.as_bytes()) {
            Ok(()) => Ok(()),
            // A closed pipe (`| head`) is the reader's choice.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            Err(e) => Err(OutputError::Stdout(e)),
        };
    };
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| OutputError::File { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    for (key, value) in &conversion.objects {
        let path = dir.join(file_name(key, format));
        let text = render(&[value], format)?;
        std::fs::write(&path, text).map_err(io(&path))?;
    }
    let path = dir.join("import-report.txt");
    std::fs::write(&path, report).map_err(io(&path))?;
    Ok(())
}
