//! The envelope of an Emissary object: its API version, kind, name,
//! namespace and labels, and its spec as [`Fields`]. Emissary reads two
//! shapes: Kubernetes objects (`metadata` and `spec`) and the flat objects of
//! annotations (`name` and the spec's fields at the top).

use std::collections::BTreeMap;

use kube::api::ObjectMeta;
use serde_json::{Map, Value};

use super::fields::Fields;
use super::read::CONFIG_ANNOTATION;
use super::report::DocReport;

/// The Emissary API versions `legate import` reads. Their Mappings differ
/// in spelling only (v2 `host`, v3alpha1 `hostname`; both are read from
/// either), so the conversion does not branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    V2,
    V3alpha1,
}

/// An Emissary object, ready to convert.
#[derive(Debug)]
pub struct Emissary {
    #[cfg_attr(not(test), allow(dead_code))]
    pub version: ApiVersion,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub spec: Fields,
}

impl Emissary {
    /// `namespace/name`, or `name` when the input gives no namespace.
    #[cfg(test)]
    pub fn key(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }

    /// The metadata of a Legate object converted from this one: same name,
    /// namespace and labels.
    pub fn meta(&self) -> ObjectMeta {
        ObjectMeta {
            name: Some(self.name.clone()),
            namespace: self.namespace.clone(),
            labels: (!self.labels.is_empty()).then(|| self.labels.clone()),
            ..ObjectMeta::default()
        }
    }

    /// The namespace for tenancy judgements: the input's, else `default`
    /// (where `kubectl apply` puts an object without one, unless told).
    pub fn namespace_or_default(&self) -> &str {
        self.namespace.as_deref().unwrap_or("default")
    }
}

/// `Kind namespace/name` for the report, from whatever the document has.
pub fn describe(value: &Value) -> String {
    let kind = value["kind"].as_str().unwrap_or("(no kind)");
    let name = value["metadata"]["name"]
        .as_str()
        .or_else(|| value["name"].as_str())
        .unwrap_or("(no name)");
    match value["metadata"]["namespace"]
        .as_str()
        .or_else(|| value["namespace"].as_str())
    {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// Metadata the API server writes: not configuration, never carried.
const SERVER_METADATA: &[&str] = &[
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
    "generateName",
];

/// Opens the envelope of a getambassador.io object; `Err` is the reason it
/// is refused (not an Emissary object, a version not read, no name).
pub fn open(value: Value, report: &mut DocReport) -> Result<Emissary, String> {
    let Value::Object(mut top) = value else {
        return Err("not a Kubernetes object (a mapping with apiVersion and kind)".into());
    };
    let api_version = top
        .remove("apiVersion")
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    let version = match api_version.as_str() {
        "getambassador.io/v2" | "ambassador/v2" => ApiVersion::V2,
        "getambassador.io/v3alpha1" => ApiVersion::V3alpha1,
        "getambassador.io/v1" | "ambassador/v1" | "ambassador/v0" | "getambassador.io/v0" => {
            return Err(format!(
                "apiVersion {api_version} is not read: convert it to getambassador.io/v2 or v3alpha1 first (Emissary's own `kubectl convert`-style upgrade), then import"
            ));
        }
        other if other.starts_with("getambassador.io/") => {
            return Err(format!(
                "apiVersion {other} is not read: legate import reads getambassador.io/v2 and v3alpha1"
            ));
        }
        "" => return Err("no apiVersion: not a Kubernetes object".into()),
        other => {
            return Err(format!(
                "not an Emissary object (apiVersion {other}): nothing to convert; apply it as it is"
            ));
        }
    };
    let kind = top
        .remove("kind")
        .and_then(|v| v.as_str().map(String::from))
        .ok_or("no kind")?;

    let (name, namespace, labels, spec) = match top.remove("metadata") {
        Some(Value::Object(metadata)) => {
            let (name, namespace, labels) = metadata_fields(metadata, report)?;
            let spec = match top.remove("spec") {
                Some(Value::Object(spec)) => spec,
                Some(Value::Null) | None => Map::new(),
                Some(_) => return Err("spec is not an object".into()),
            };
            if top
                .remove("status")
                .is_some_and(|s| s.as_object().is_some_and(|o| !o.is_empty()))
            {
                report.changed(
                    "status",
                    "status is the controller's to write; Legate writes its own conditions",
                );
            }
            for (key, _) in top {
                report.dropped(
                    key,
                    "not a field of a Kubernetes object (only metadata and spec are read)",
                );
            }
            (name, namespace, labels, spec)
        }
        _ => {
            // The flat shape of Service annotations: everything but the name is spec.
            let name = top
                .remove("name")
                .and_then(|v| v.as_str().map(String::from))
                .ok_or("no name (neither metadata.name nor name)")?;
            let namespace = top.remove("namespace").and_then(|v| v.as_str().map(String::from));
            let spec = match top.remove("spec") {
                Some(Value::Object(spec)) => spec,
                _ => top,
            };
            (name, namespace, BTreeMap::new(), spec)
        }
    };
    Ok(Emissary {
        version,
        kind,
        name,
        namespace,
        labels,
        spec: Fields::new("spec", spec),
    })
}

type MetadataParts = (String, Option<String>, BTreeMap<String, String>);

fn metadata_fields(
    mut metadata: Map<String, Value>,
    report: &mut DocReport,
) -> Result<MetadataParts, String> {
    let name = metadata
        .remove("name")
        .and_then(|v| v.as_str().map(String::from))
        .ok_or("no metadata.name")?;
    let namespace = metadata
        .remove("namespace")
        .and_then(|v| v.as_str().map(String::from));
    let mut labels = BTreeMap::new();
    if let Some(Value::Object(map)) = metadata.remove("labels") {
        for (k, v) in map {
            match v {
                Value::String(s) => {
                    labels.insert(k, s);
                }
                other => {
                    labels.insert(k, other.to_string());
                }
            }
        }
    }
    if let Some(Value::Object(annotations)) = metadata.remove("annotations") {
        for (key, _) in annotations {
            if key == "kubectl.kubernetes.io/last-applied-configuration" || key == CONFIG_ANNOTATION {
                continue;
            }
            report.dropped(
                format!("metadata.annotations.{key}"),
                "annotations are not carried: an Emissary annotation has no meaning for Legate, and others belong to the tools that wrote them",
            );
        }
    }
    for (key, _) in metadata {
        if SERVER_METADATA.contains(&key.as_str()) {
            continue;
        }
        report.dropped(
            format!("metadata.{key}"),
            "not carried: the converted object is a new object with the same name, namespace and labels",
        );
    }
    Ok((name, namespace, labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report() -> DocReport {
        DocReport::new("t#1".into(), "x".into())
    }

    #[test]
    fn kubernetes_and_flat_shapes_open_alike() {
        let mut r = report();
        let k8s = open(
            json!({"apiVersion": "getambassador.io/v3alpha1", "kind": "Mapping",
                   "metadata": {"name": "q", "namespace": "shop", "uid": "1"},
                   "spec": {"prefix": "/q/"}}),
            &mut r,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (k8s.version, k8s.key()),
            (ApiVersion::V3alpha1, "shop/q".to_string())
        );
        assert!(k8s.spec.has("prefix"));
        let flat = open(
            json!({"apiVersion": "getambassador.io/v2", "kind": "Mapping", "name": "q", "prefix": "/q/"}),
            &mut r,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((flat.version, flat.key()), (ApiVersion::V2, "q".to_string()));
        assert!(flat.spec.has("prefix"));
        assert!(r.notes.is_empty(), "{:?}", r.notes);
    }

    #[test]
    fn other_objects_are_refused_with_a_reason() {
        let mut r = report();
        let e = open(
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "q"}}),
            &mut r,
        )
        .expect_err("not Emissary");
        assert!(e.contains("not an Emissary object"), "{e}");
        let e = open(
            json!({"apiVersion": "getambassador.io/v1", "kind": "Mapping", "name": "q"}),
            &mut r,
        )
        .expect_err("v1");
        assert!(e.contains("not read"), "{e}");
    }
}
