//! The input of `legate import`: YAML files (or standard input) of
//! documents, each kept with where it came from. `kind: List` documents are
//! opened into their items; Emissary objects embedded in a Service's
//! `getambassador.io/config` annotation are read as documents of their own.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The annotation in which Emissary 1.x and 2.x read objects from a Service.
pub const CONFIG_ANNOTATION: &str = "getambassador.io/config";

/// Why the input could not be read (a document that is not an Emissary
/// object is not an error: it is refused in the report).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("reading {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading standard input: {0}")]
    Stdin(#[source] std::io::Error),
    #[error("{path} is not YAML: {source}")]
    Yaml {
        path: String,
        #[source]
        source: Box<serde_saphyr::Error>,
    },
}

/// One input document.
#[derive(Debug, Clone)]
pub struct Document {
    /// `file#n` (n counts from 1), or `file#n/annotation#m` for objects of a
    /// Service's annotation, or `file#n/items[i]` for a List's items.
    pub source: String,
    pub value: Value,
}

/// Reads every file (`-` is standard input) into documents, in order.
pub fn read_inputs(files: &[PathBuf]) -> Result<Vec<Document>, ReadError> {
    let mut documents = Vec::new();
    for path in files {
        let (name, text) = if path == Path::new("-") {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(ReadError::Stdin)?;
            ("<stdin>".to_string(), text)
        } else {
            let text = std::fs::read_to_string(path).map_err(|source| ReadError::File {
                path: path.clone(),
                source,
            })?;
            (path.display().to_string(), text)
        };
        documents.extend(read_str(&name, &text)?);
    }
    Ok(documents)
}

/// The documents of one YAML text; `name` says where it came from.
pub fn read_str(name: &str, text: &str) -> Result<Vec<Document>, ReadError> {
    let values: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|source| ReadError::Yaml {
        path: name.to_string(),
        source: Box::new(source),
    })?;
    let mut documents = Vec::new();
    for (i, value) in values.into_iter().enumerate() {
        if value.is_null() {
            continue; // an empty document (`---` at the end of a file)
        }
        expand(format!("{name}#{}", i + 1), value, &mut documents)?;
    }
    Ok(documents)
}

fn expand(source: String, value: Value, out: &mut Vec<Document>) -> Result<(), ReadError> {
    if value["kind"] == "List"
        && let Some(items) = value["items"].as_array()
    {
        for (i, item) in items.iter().enumerate() {
            expand(format!("{source}/items[{i}]"), item.clone(), out)?;
        }
        return Ok(());
    }
    let annotation = value["metadata"]["annotations"][CONFIG_ANNOTATION]
        .as_str()
        .map(String::from);
    out.push(Document {
        source: source.clone(),
        value,
    });
    if let Some(text) = annotation {
        let embedded = read_str(&format!("{source}/annotation"), &text)?;
        out.extend(embedded);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_numbered_and_lists_and_annotations_opened() {
        let text = "\
apiVersion: v1
kind: Service
metadata:
  name: quote
  annotations:
    getambassador.io/config: |
      apiVersion: getambassador.io/v2
      kind: Mapping
      name: quote
      prefix: /quote/
      service: quote
---
apiVersion: v1
kind: List
items:
- apiVersion: getambassador.io/v3alpha1
  kind: Host
  metadata: {name: a}
---
";
        let docs = read_str("in.yaml", text).unwrap_or_else(|e| panic!("{e}"));
        let sources: Vec<&str> = docs.iter().map(|d| d.source.as_str()).collect();
        assert_eq!(
            sources,
            vec!["in.yaml#1", "in.yaml#1/annotation#1", "in.yaml#2/items[0]"]
        );
        assert_eq!(docs[1].value["prefix"], "/quote/");
    }

    #[test]
    fn text_that_is_not_yaml_is_an_error_naming_the_file() {
        let e = read_str("bad.yaml", "a: [").expect_err("not YAML");
        assert!(e.to_string().starts_with("bad.yaml is not YAML"), "{e}");
    }
}
