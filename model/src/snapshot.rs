//! A [`World`] read from YAML files instead of watched from an API server:
//! what `legate translate -f` builds the model from, offline.
//!
//! Read: Legate's kinds (`legate.dev/v1alpha1`), and the core objects the
//! model looks at: `v1` Service, Namespace and Secret, `discovery.k8s.io/v1`
//! EndpointSlice. A `v1` `List` counts as its `items`. Every other kind
//! (a Deployment next to its Mapping, say) is skipped with a [`Warning`], so
//! that a folder of manifests can be read as it is applied; a `legate.dev`
//! kind or version this release does not know is an error instead, since
//! leaving out one of Legate's own objects would change the verdicts.
//!
//! What the API server would fill in is filled in, so that the model judges
//! the objects as the operator would:
//!
//! - `metadata.namespace` is `default` when absent (namespaced kinds);
//! - `metadata.generation` is 1 when absent (Legate kinds);
//! - `metadata.creationTimestamp`, when absent, is one second after the
//!   previous object's, starting at 2024-01-01T00:00:00Z, in the order the
//!   objects are read (files in the order given, documents in file order):
//!   where the oldest object wins (conflicts, the one AuthService of a
//!   Gateway), the first in the files wins;
//! - Secrets: `stringData` merged into `data`, `type` `Opaque` when absent;
//!   as in the operator, an Opaque Secret keeps only its CA bundle
//!   ([`CA_BUNDLE_KEY`]) and Secrets of other types are not read.
//!
//! A later object with the same kind, namespace and name replaces the
//! earlier one, as a second `kubectl apply` would (it keeps the first one's
//! creation time), with a warning.
//!
//! Documents are counted from 1 in each file; empty documents are not counted.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use legate_crds::{AuthService, Gateway, Mapping, RateLimitService, TCPMapping, TLSContext};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{CA_BUNDLE_KEY, World};

/// 2024-01-01T00:00:00Z: the creation time of the first object read without one.
const FIRST_CREATION_SECOND: i64 = 1_704_067_200;

/// Where an object was read: a file, the document in it, and the item of a `List`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub path: PathBuf,
    /// Counted from 1, empty documents left out.
    pub document: usize,
    /// Counted from 1, when the document is a `List`.
    pub item: Option<usize>,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, document {}", self.path.display(), self.document)?;
        if let Some(item) = self.item {
            write!(f, ", item {item}")?;
        }
        Ok(())
    }
}

/// Why files could not be read into a [`World`].
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("reading {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{} has no *.yaml or *.yml file", path.display())]
    NoYamlFiles { path: PathBuf },
    #[error("{} is not valid YAML: {source}", path.display())]
    Yaml {
        path: PathBuf,
        // Boxed: the parser's error is large, and every Result carries it.
        source: Box<serde_saphyr::Error>,
    },
    #[error("{place}: {problem}")]
    NotAnObject { place: Place, problem: String },
    #[error(
        "{place}: legate {} does not know {kind} of apiVersion {api_version}; it reads {}",
        env!("CARGO_PKG_VERSION"),
        LEGATE_KINDS.join(", ")
    )]
    UnknownLegateKind {
        place: Place,
        api_version: String,
        kind: String,
    },
    #[error("{place}: {kind} {name:?} is not valid: {source}")]
    Invalid {
        place: Place,
        kind: String,
        name: String,
        source: serde_json::Error,
    },
}

/// The kinds of group legate.dev, as `kind` spells them.
pub const LEGATE_KINDS: [&str; 6] = [
    "Gateway",
    "Mapping",
    "TLSContext",
    "AuthService",
    "RateLimitService",
    "TCPMapping",
];

/// Something read but not taken as it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub place: Place,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.message)
    }
}

/// The world read, and what was skipped or replaced on the way.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub world: World,
    pub warnings: Vec<Warning>,
}

/// Reads files one after the other into one [`World`].
#[derive(Debug)]
pub struct Reader {
    world: World,
    warnings: Vec<Warning>,
    /// Objects read so far: the next one without a creation time gets this
    /// many seconds after the first.
    read: i64,
    /// Where each object (`Kind/namespace/name`) was read, for the
    /// warning when another replaces it.
    places: std::collections::BTreeMap<String, Place>,
}

impl Reader {
    /// An empty world whose listeners bind `listen_address`.
    pub fn new(listen_address: IpAddr) -> Reader {
        Reader {
            world: World {
                listen_address,
                ..World::default()
            },
            warnings: Vec::new(),
            read: 0,
            places: std::collections::BTreeMap::new(),
        }
    }

    /// Reads a file, or every `*.yaml` and `*.yml` file in a folder (and its
    /// subfolders, if `recursive`) in path order; `-` is standard input.
    pub fn read_path(&mut self, path: &Path, recursive: bool) -> Result<(), SnapshotError> {
        if path == Path::new("-") {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|source| {
                SnapshotError::Read {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
            return self.read_str(Path::new("<stdin>"), &text);
        }
        let is_dir = std::fs::metadata(path)
            .map_err(|source| SnapshotError::Read {
                path: path.to_path_buf(),
                source,
            })?
            .is_dir();
        if !is_dir {
            return self.read_file(path);
        }
        let files = yaml_files(path, recursive)?;
        if files.is_empty() {
            return Err(SnapshotError::NoYamlFiles {
                path: path.to_path_buf(),
            });
        }
        files.iter().try_for_each(|file| self.read_file(file))
    }

    /// Reads one YAML file.
    pub fn read_file(&mut self, path: &Path) -> Result<(), SnapshotError> {
        let text = std::fs::read_to_string(path).map_err(|source| SnapshotError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        self.read_str(path, &text)
    }

    /// Reads YAML text; `path` names it in errors and warnings.
    pub fn read_str(&mut self, path: &Path, yaml: &str) -> Result<(), SnapshotError> {
        let documents: Vec<Value> =
            serde_saphyr::from_multiple(yaml).map_err(|source| SnapshotError::Yaml {
                path: path.to_path_buf(),
                source: Box::new(source),
            })?;
        for (i, document) in documents.into_iter().enumerate() {
            let place = Place {
                path: path.to_path_buf(),
                document: i + 1,
                item: None,
            };
            self.read_document(place, document)?;
        }
        Ok(())
    }

    /// The world and the warnings.
    pub fn finish(self) -> Snapshot {
        Snapshot {
            world: self.world,
            warnings: self.warnings,
        }
    }

    fn read_document(&mut self, place: Place, document: Value) -> Result<(), SnapshotError> {
        let not_an_object = |problem: &str| SnapshotError::NotAnObject {
            place: place.clone(),
            problem: problem.to_string(),
        };
        let Value::Object(fields) = &document else {
            return Err(not_an_object(
                "not a Kubernetes object (a mapping with apiVersion and kind)",
            ));
        };
        let text = |key: &str| {
            fields
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let (api_version, kind) = (text("apiVersion"), text("kind"));
        if api_version.is_empty() || kind.is_empty() {
            return Err(not_an_object("no apiVersion and kind"));
        }
        let legate_version = legate_crds::api_version();
        match (api_version.as_str(), kind.as_str()) {
            ("v1", "List") => {
                let Some(Value::Array(items)) = fields.get("items") else {
                    return Err(not_an_object("a List without items"));
                };
                for (i, item) in items.clone().into_iter().enumerate() {
                    let place = Place {
                        item: Some(i + 1),
                        ..place.clone()
                    };
                    self.read_document(place, item)?;
                }
                Ok(())
            }
            (v, "Gateway") if v == legate_version => {
                self.legate::<Gateway>(place, document, |w| &mut w.gateways)
            }
            (v, "Mapping") if v == legate_version => {
                self.legate::<Mapping>(place, document, |w| &mut w.mappings)
            }
            (v, "TLSContext") if v == legate_version => {
                self.legate::<TLSContext>(place, document, |w| &mut w.tls_contexts)
            }
            (v, "AuthService") if v == legate_version => {
                self.legate::<AuthService>(place, document, |w| &mut w.auth_services)
            }
            (v, "RateLimitService") if v == legate_version => {
                self.legate::<RateLimitService>(place, document, |w| &mut w.rate_limit_services)
            }
            (v, "TCPMapping") if v == legate_version => {
                self.legate::<TCPMapping>(place, document, |w| &mut w.tcp_mappings)
            }
            (v, _) if v.starts_with(&format!("{}/", legate_crds::GROUP)) => {
                Err(SnapshotError::UnknownLegateKind {
                    place,
                    api_version: api_version.clone(),
                    kind: kind.clone(),
                })
            }
            ("v1", "Service") => {
                let service: Service = parse(&place, document)?;
                self.insert(place, service, true, |w| &mut w.services);
                Ok(())
            }
            ("discovery.k8s.io/v1", "EndpointSlice") => {
                let slice: EndpointSlice = parse(&place, document)?;
                self.insert(place, slice, true, |w| &mut w.endpoint_slices);
                Ok(())
            }
            ("v1", "Namespace") => {
                let namespace: Namespace = parse(&place, document)?;
                self.insert(place, namespace, false, |w| &mut w.namespaces);
                Ok(())
            }
            ("v1", "Secret") => {
                let secret: Secret = parse(&place, document)?;
                self.secret(place, secret);
                Ok(())
            }
            _ => {
                let name = fields
                    .get("metadata")
                    .and_then(|m| m.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                self.warn(
                    place,
                    format!("skipped {kind} {name:?} ({api_version}): Legate does not read it"),
                );
                Ok(())
            }
        }
    }

    fn legate<K>(
        &mut self,
        place: Place,
        document: Value,
        list: fn(&mut World) -> &mut Vec<Arc<K>>,
    ) -> Result<(), SnapshotError>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned,
    {
        let mut object: K = parse(&place, document)?;
        object.meta_mut().generation.get_or_insert(1);
        self.insert(place, object, true, list);
        Ok(())
    }

    /// A Secret as the operator keeps it.
    fn secret(&mut self, place: Place, mut secret: Secret) {
        if let Some(strings) = secret.string_data.take() {
            let data = secret.data.get_or_insert_with(Default::default);
            for (key, value) in strings {
                data.insert(key, k8s_openapi::ByteString(value.into_bytes()));
            }
        }
        let type_ = secret.type_.get_or_insert_with(|| "Opaque".into()).clone();
        match type_.as_str() {
            "kubernetes.io/tls" => {}
            "Opaque" => {
                if let Some(data) = secret.data.as_mut() {
                    data.retain(|key, _| key == CA_BUNDLE_KEY);
                }
            }
            other => {
                let name = secret.metadata.name.clone().unwrap_or_default();
                let message = format!(
                    "skipped Secret {name:?} of type {other}: Legate reads kubernetes.io/tls Secrets and the {CA_BUNDLE_KEY} of Opaque ones"
                );
                self.warn(place, message);
                return;
            }
        }
        self.insert(place, secret, true, |w| &mut w.secrets);
    }

    /// Adds `object` with what the API server would have filled in, or
    /// replaces an object of the same kind, namespace and name.
    fn insert<K>(
        &mut self,
        place: Place,
        mut object: K,
        namespaced: bool,
        list: fn(&mut World) -> &mut Vec<Arc<K>>,
    ) where
        K: Resource<DynamicType = ()>,
    {
        let created =
            Timestamp::from_second(FIRST_CREATION_SECOND + self.read).unwrap_or(Timestamp::UNIX_EPOCH);
        self.read += 1;
        let meta = object.meta_mut();
        if namespaced {
            meta.namespace.get_or_insert_with(|| "default".into());
        }
        let key = format!(
            "{}/{}/{}",
            K::kind(&()),
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default()
        );
        let objects = list(&mut self.world);
        let same = objects
            .iter()
            .position(|o| o.meta().namespace == meta.namespace && o.meta().name == meta.name);
        let Some(at) = same else {
            meta.creation_timestamp.get_or_insert(Time(created));
            objects.push(Arc::new(object));
            self.places.insert(key, place);
            return;
        };
        if meta.creation_timestamp.is_none() {
            meta.creation_timestamp = objects[at].meta().creation_timestamp.clone();
        }
        objects[at] = Arc::new(object);
        let message = match self.places.insert(key.clone(), place.clone()) {
            Some(earlier) => format!("{key} replaces the one read at {earlier}"),
            None => format!("{key} replaces an earlier one"),
        };
        self.warn(place, message);
    }

    fn warn(&mut self, place: Place, message: String) {
        self.warnings.push(Warning { place, message });
    }
}

/// Reads `paths` (files, folders or `-`, see [`Reader::read_path`]) into a world
/// whose listeners bind `listen_address`.
pub fn read_paths(
    paths: &[PathBuf],
    recursive: bool,
    listen_address: IpAddr,
) -> Result<Snapshot, SnapshotError> {
    let mut reader = Reader::new(listen_address);
    for path in paths {
        reader.read_path(path, recursive)?;
    }
    Ok(reader.finish())
}

/// The `*.yaml` and `*.yml` files in `dir` (and below, if `recursive`),
/// sorted by path: the order `kubectl apply -R -f` takes them in.
pub fn yaml_files(dir: &Path, recursive: bool) -> Result<Vec<PathBuf>, SnapshotError> {
    let read_error = |source| SnapshotError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let entry = entry.map_err(read_error)?;
        let path = entry.path();
        // Only real folders are descended into: a link back up would loop.
        if entry.file_type().map_err(read_error)?.is_dir() {
            if recursive {
                files.extend(yaml_files(&path, true)?);
            }
        } else if path.is_file() && path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn parse<K: Resource<DynamicType = ()> + DeserializeOwned>(
    place: &Place,
    document: Value,
) -> Result<K, SnapshotError> {
    let name = document
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let kind = K::kind(&()).to_string();
    let object: K = serde_json::from_value(document).map_err(|source| SnapshotError::Invalid {
        place: place.clone(),
        kind: kind.clone(),
        name: name.clone(),
        source,
    })?;
    if name.is_empty() {
        return Err(SnapshotError::NotAnObject {
            place: place.clone(),
            problem: format!("{kind} without metadata.name"),
        });
    }
    Ok(object)
}

#[cfg(test)]
mod tests;
