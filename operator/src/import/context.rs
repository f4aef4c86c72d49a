//! What every conversion needs besides its own object: the flags, and what
//! other input objects say about it (TLSContexts that Mappings name for
//! upstream TLS, Hosts that name a TLSContext).

use std::collections::BTreeMap;

use legate_crds::GatewayRef;
use legate_crds::mapping::UpstreamTls;
use serde_json::Value;

use super::fields::Fields;
use super::report::DocReport;

/// The settings of one import run, and the indexes of the input.
#[derive(Debug, Default)]
pub struct Context {
    /// `--gateway`: the Gateway every converted object attaches to.
    pub gateway: Option<GatewayRef>,
    /// `--ambassador-id`: the Emissary installation whose objects are read.
    pub ambassador_id: String,
    /// Upstream TLS of TLSContexts without hosts (Emissary's origination
    /// contexts), by `(namespace, name)`.
    pub origination: BTreeMap<(String, String), UpstreamTls>,
    /// Hostnames of Hosts that name a TLSContext, by the TLSContext's
    /// `(namespace, name)`.
    pub host_tls_contexts: BTreeMap<(String, String), Vec<String>>,
    /// The input has Listeners (Emissary 2 and later): the Module's
    /// listener settings are then Emissary 1's, which 2 no longer reads.
    pub has_listeners: bool,
}

impl Context {
    /// `spec.gateways` of every converted object.
    pub fn gateways(&self) -> Vec<GatewayRef> {
        self.gateway.iter().cloned().collect()
    }

    /// Reads `ambassador_id`: `Err` when the object belongs to another
    /// Emissary installation than `--ambassador-id` (Emissary would ignore it).
    pub fn ambassador_id(&self, spec: &mut Fields, report: &mut DocReport) -> Result<(), String> {
        let ids = match spec.take("ambassador_id") {
            None => vec!["default".to_string()],
            Some(Value::String(id)) => vec![id],
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            Some(_) => {
                report.dropped("spec.ambassador_id", "expected a string or a list of strings");
                vec!["default".to_string()]
            }
        };
        if !ids.contains(&self.ambassador_id) {
            return Err(format!(
                "ambassador_id {ids:?} does not include {:?}: that Emissary installation ignores it, and so does this import (--ambassador-id chooses the installation)",
                self.ambassador_id
            ));
        }
        if ids != ["default"] {
            let how = match &self.gateway {
                Some(g) => format!(
                    "Legate attaches objects to Gateways by spec.gateways: this one to {}/{}",
                    g.namespace.as_deref().unwrap_or("(its namespace)"),
                    g.name
                ),
                None => "Legate attaches objects to Gateways by spec.gateways; without --gateway, to every Gateway that admits the namespace".to_string(),
            };
            report.changed("spec.ambassador_id", how);
        }
        Ok(())
    }
}
