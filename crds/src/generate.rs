//! The CRD YAML, generated from the types. `manifests/crds/` holds the
//! committed copy; a test fails when it drifts from what this produces.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::{AuthService, Gateway, Mapping, RateLimitService, TCPMapping, TLSContext};

/// The command that regenerates the committed YAML, for error messages.
pub const REGENERATE_COMMAND: &str = "make crds";

/// Why the YAML could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("serializing CRD {name} to YAML: {source}")]
    Yaml {
        name: String,
        source: serde_saphyr::ser::Error,
    },
}

/// Every Legate CRD, in a stable order.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![
        Gateway::crd(),
        Mapping::crd(),
        TLSContext::crd(),
        AuthService::crd(),
        RateLimitService::crd(),
        TCPMapping::crd(),
    ]
}

/// `(file name, YAML)` for each CRD, as committed in `manifests/crds/`.
pub fn files() -> Result<Vec<(String, String)>, GenerateError> {
    all()
        .into_iter()
        .map(|crd| {
            let name = crd.metadata.name.clone().unwrap_or_default();
            let yaml = serde_saphyr::to_string(&crd).map_err(|source| GenerateError::Yaml {
                name: name.clone(),
                source,
            })?;
            let header =
                format!("# Generated from the Rust types in crds/ by `{REGENERATE_COMMAND}`. Do not edit.\n");
            Ok((format!("{name}.yaml"), format!("{header}{yaml}")))
        })
        .collect()
}
