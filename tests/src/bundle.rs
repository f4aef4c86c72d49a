//! The OLM bundle (`olm-bundle/`), generated from the files that already say
//! each thing once: the install strategy from `manifests/` (the Deployment,
//! the ClusterRole and the Role), the CRDs from `manifests/crds/`, the
//! examples from `examples/`, the version from Cargo.toml and the rest from
//! the hand-written `manifests/olm/csv-base.yaml` (and the default Envoy
//! image from `legate-crds`). `make bundle` writes it;
//! a test fails when the committed bundle differs from what this produces.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// The command that rewrites `olm-bundle/`, for error messages.
pub const REGENERATE_COMMAND: &str = "make bundle";

/// The operator's version, which is the workspace's.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// One example of each kind for the console (`alm-examples`), in this order.
const EXAMPLE_FILES: [&str; 6] = [
    "gateway.yaml",
    "mapping-basic.yaml",
    "tlscontext.yaml",
    "authservice.yaml",
    "ratelimitservice.yaml",
    "tcpmapping.yaml",
];

/// What `manifests/kustomization.yaml` installs, read back by kind.
#[derive(Debug, Clone)]
pub struct Manifests {
    /// `(file, document)` for every document of every resource file, CRDs included.
    pub documents: Vec<(PathBuf, Value)>,
}

impl Manifests {
    /// Reads every resource that the kustomization lists, in its order.
    pub fn read(root: &Path) -> Result<Manifests, String> {
        let dir = root.join("manifests");
        let kustomization = read_yaml(&dir.join("kustomization.yaml"))?;
        let resources = kustomization
            .first()
            .and_then(|k| k["resources"].as_array())
            .ok_or("manifests/kustomization.yaml lists no resources")?;
        let mut documents = Vec::new();
        for resource in resources {
            let file = resource.as_str().ok_or_else(|| {
                format!("a resource in manifests/kustomization.yaml is not a path: {resource}")
            })?;
            let path = dir.join(file);
            for doc in read_yaml(&path)? {
                documents.push((path.clone(), doc));
            }
        }
        Ok(Manifests { documents })
    }

    /// Every document of `kind`.
    pub fn all(&self, kind: &str) -> Vec<&Value> {
        self.documents
            .iter()
            .map(|(_, d)| d)
            .filter(|d| d["kind"] == kind)
            .collect()
    }

    /// The only document of `kind`.
    pub fn one(&self, kind: &str) -> Result<&Value, String> {
        match self.all(kind).as_slice() {
            [one] => Ok(one),
            other => Err(format!(
                "manifests/ should hold exactly one {kind}, it holds {}",
                other.len()
            )),
        }
    }

    /// The CRDs, by file name under `manifests/crds/`.
    pub fn crds(&self) -> Vec<(&Path, &Value)> {
        self.documents
            .iter()
            .filter(|(_, d)| d["kind"] == "CustomResourceDefinition")
            .map(|(p, d)| (p.as_path(), d))
            .collect()
    }
}

/// Every file of `olm-bundle/` that is generated, as `(path under the
/// workspace root, content)`.
pub fn generated_files(root: &Path) -> Result<Vec<(PathBuf, String)>, String> {
    let manifests = Manifests::read(root)?;
    let bundle = Path::new("olm-bundle").join("manifests");
    let mut files = Vec::new();
    let csv = cluster_service_version(root, &manifests)?;
    files.push((
        bundle.join("legate.clusterserviceversion.yaml"),
        to_yaml(
            &csv,
            "The ClusterServiceVersion, generated from manifests/ and manifests/olm/",
        )?,
    ));
    // CRDs go into the bundle as they are.
    for (path, _) in manifests.crds() {
        let name = path.file_name().ok_or("a CRD path has no file name")?;
        let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        files.push((bundle.join(name), text));
    }
    // Objects that OLM installs beside the CSV, in the namespace it chooses.
    for object in bundled_objects(&manifests)? {
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default().to_ascii_lowercase();
        let version = object["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .replace('/', "_");
        files.push((
            bundle.join(format!("{name}_{version}_{kind}.yaml")),
            to_yaml(&object, "Copied from manifests/ without its namespace")?,
        ));
    }
    Ok(files)
}

/// Writes every generated file; returns their paths.
pub fn write(root: &Path) -> Result<Vec<PathBuf>, String> {
    let files = generated_files(root)?;
    let dir = root.join("olm-bundle").join("manifests");
    // Files that are no longer generated go away.
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let relative = Path::new("olm-bundle").join("manifests").join(entry.file_name());
            if !files.iter().any(|(p, _)| *p == relative) {
                std::fs::remove_file(entry.path())
                    .map_err(|e| format!("removing {}: {e}", entry.path().display()))?;
            }
        }
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let mut written = Vec::new();
    for (path, text) in files {
        let full = root.join(&path);
        std::fs::write(&full, text).map_err(|e| format!("writing {}: {e}", full.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// The CSV: the hand-written base plus what the other files say.
pub fn cluster_service_version(root: &Path, manifests: &Manifests) -> Result<Value, String> {
    let base_path = root.join("manifests").join("olm").join("csv-base.yaml");
    let mut csv = read_yaml(&base_path)?
        .into_iter()
        .next()
        .ok_or_else(|| format!("{} is empty", base_path.display()))?;

    let deployment = manifests.one("Deployment")?;
    let account = manifests.one("ServiceAccount")?;
    let account_name = account["metadata"]["name"].clone();
    let image = deployment["spec"]["template"]["spec"]["containers"][0]["image"].clone();

    csv["metadata"]["name"] = json!(format!("legate.v{VERSION}"));
    csv["metadata"]["annotations"]["containerImage"] = image.clone();
    // Every image the operator runs or deploys, for mirroring into disconnected clusters.
    csv["spec"]["relatedImages"] = json!([
        { "name": "legate", "image": image },
        { "name": "envoy", "image": legate_crds::gateway::DEFAULT_ENVOY_IMAGE },
    ]);
    csv["metadata"]["annotations"]["alm-examples"] = json!(alm_examples(root)?);
    csv["spec"]["version"] = json!(VERSION);
    csv["spec"]["icon"] = json!([{
        "base64data": base64(&read_bytes(&root.join("manifests").join("olm").join("icon.svg"))?),
        "mediatype": "image/svg+xml",
    }]);
    csv["spec"]["customresourcedefinitions"]["owned"] = json!(owned_crds(&csv, manifests)?);
    csv["spec"]["install"] = json!({
        "strategy": "deployment",
        "spec": {
            "deployments": [{
                "name": deployment["metadata"]["name"],
                "label": deployment["metadata"]["labels"],
                "spec": deployment["spec"],
            }],
            "clusterPermissions": [{
                "serviceAccountName": account_name,
                "rules": manifests.one("ClusterRole")?["rules"],
            }],
            "permissions": [{
                "serviceAccountName": account_name,
                "rules": manifests.one("Role")?["rules"],
            }],
        },
    });
    Ok(csv)
}

/// The base's per-kind display data, completed from each CRD.
fn owned_crds(csv: &Value, manifests: &Manifests) -> Result<Vec<Value>, String> {
    let described = csv["spec"]["customresourcedefinitions"]["owned"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut owned = Vec::new();
    for (path, crd) in manifests.crds() {
        let kind = &crd["spec"]["names"]["kind"];
        let mut entry = described
            .iter()
            .find(|d| d["kind"] == *kind)
            .cloned()
            .ok_or_else(|| {
                format!(
                    "manifests/olm/csv-base.yaml describes no {kind} (for {})",
                    path.display()
                )
            })?;
        let versions = crd["spec"]["versions"].as_array().cloned().unwrap_or_default();
        let storage = versions
            .iter()
            .find(|v| v["storage"] == true)
            .ok_or_else(|| format!("{} has no storage version", path.display()))?;
        entry["name"] = crd["metadata"]["name"].clone();
        entry["version"] = storage["name"].clone();
        entry["description"] = storage["schema"]["openAPIV3Schema"]["description"].clone();
        owned.push(entry);
    }
    if owned.len() != described.len() {
        return Err("manifests/olm/csv-base.yaml describes a kind that has no CRD in manifests/".into());
    }
    Ok(owned)
}

/// One example of each kind, as the JSON array the console reads.
fn alm_examples(root: &Path) -> Result<String, String> {
    let mut examples = Vec::new();
    for file in EXAMPLE_FILES {
        let path = root.join("examples").join(file);
        let first = read_yaml(&path)?
            .into_iter()
            .next()
            .ok_or_else(|| format!("{} is empty", path.display()))?;
        examples.push(first);
    }
    serde_json::to_string_pretty(&examples).map_err(|e| e.to_string())
}

/// The objects besides the CSV and CRDs that OLM installs: the operator's
/// Services and PodDisruptionBudget. What OLM makes itself (the namespace,
/// the ServiceAccount, RBAC and their bindings, the Deployment) stays out; a
/// kind this function does not know is an error, so that a new manifest is a
/// decision, not an accident.
fn bundled_objects(manifests: &Manifests) -> Result<Vec<Value>, String> {
    let mut objects = Vec::new();
    for (path, doc) in &manifests.documents {
        match doc["kind"].as_str().unwrap_or_default() {
            "CustomResourceDefinition"
            | "Namespace"
            | "ServiceAccount"
            | "ClusterRole"
            | "ClusterRoleBinding"
            | "Role"
            | "RoleBinding"
            | "Deployment" => {}
            "Service" | "PodDisruptionBudget" => {
                let mut object = doc.clone();
                if let Some(meta) = object["metadata"].as_object_mut() {
                    meta.remove("namespace");
                }
                objects.push(object);
            }
            other => {
                return Err(format!(
                    "{} holds a {other}: decide whether it belongs in the OLM bundle (tests/src/bundle.rs)",
                    path.display()
                ));
            }
        }
    }
    Ok(objects)
}

fn to_yaml(value: &Value, why: &str) -> Result<String, String> {
    let yaml = serde_saphyr::to_string(value).map_err(|e| format!("serializing YAML: {e}"))?;
    Ok(format!("# {why} by `{REGENERATE_COMMAND}`. Do not edit.\n{yaml}"))
}

/// Every non-empty YAML document of a file.
pub fn read_yaml(path: &Path) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
        .map_err(|e| format!("{} is not valid YAML: {e}", path.display()))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

/// Standard base64 with padding (RFC 4648), for the CSV's icon.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_matches_rfc_4648_test_vectors() {
        for (input, output) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), output, "{input:?}");
        }
    }
}
