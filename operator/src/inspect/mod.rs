//! `legate explain` and `legate routes`: questions answered from the route
//! table the operator sends to Envoy, read from the cluster or from files.
//! Both build the model with the operator's own code and the table with the
//! translator's own placement and order (`legate_xds::table`), so that the
//! answer is what Envoy does, not a second opinion of it.

pub mod explain;
pub mod routes;
pub mod source;
pub mod view;

use std::collections::BTreeSet;

use legate_crds::conditions::types;
use legate_model::Model;
use legate_xds::ir;

use source::{Loaded, SourceArgs};

/// The objects, their model, and what the cluster says of them.
pub struct Inspection {
    pub loaded: Loaded,
    pub model: Model,
}

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    Source(#[from] source::SourceError),
    #[error("no Gateway {0} (Gateways: {1})")]
    NoSuchGateway(String, String),
    #[error("there is no Gateway to ask about")]
    NoGateway,
    #[error("there are several Gateways; name one with -g NAMESPACE/NAME ({0})")]
    WhichGateway(String),
}

impl Inspection {
    pub fn load(args: &SourceArgs) -> Result<Inspection, InspectError> {
        let loaded = source::load(args)?;
        let model = legate_model::build(&loaded.world);
        Ok(Inspection { loaded, model })
    }

    /// The Gateways asked about: the one named (`ns/name`, or `name` in
    /// `default`), else every Gateway.
    pub fn gateways(&self, wanted: Option<&str>) -> Result<Vec<String>, InspectError> {
        let all: Vec<String> = self.model.gateways.keys().cloned().collect();
        match wanted {
            None => Ok(all),
            Some(name) => {
                let key = if name.contains('/') {
                    name.to_owned()
                } else {
                    format!("default/{name}")
                };
                if all.contains(&key) {
                    Ok(vec![key])
                } else {
                    Err(InspectError::NoSuchGateway(key, listing(&all)))
                }
            }
        }
    }

    /// The one Gateway asked about: named, or the only one there is.
    pub fn one_gateway(&self, wanted: Option<&str>) -> Result<String, InspectError> {
        let mut keys = self.gateways(wanted)?;
        match keys.len() {
            0 => Err(InspectError::NoGateway),
            1 => Ok(keys.remove(0)),
            _ => Err(InspectError::WhichGateway(listing(&keys))),
        }
    }

    /// Gateway `key`'s configuration as its Envoys have it. From the
    /// cluster, the routes of objects the operator did not accept at their
    /// generation are left out: the operator may judge with flags this
    /// command does not know (`--allow-loopback-upstreams`).
    pub fn gateway_ir(&self, key: &str) -> ir::Gateway {
        let mut gateway = self.model.gateways.get(key).cloned().unwrap_or_default();
        if self.loaded.live {
            let refused: BTreeSet<String> = self
                .loaded
                .statuses
                .iter()
                .filter(|(_, o)| o.condition(types::ACCEPTED).is_some_and(|c| c.status == "False"))
                .map(|(k, _)| k.clone())
                .collect();
            gateway.routes.retain(|_, r| !refused.contains(&r.origin.key()));
        }
        gateway
    }

    /// Why the operator did not accept `object`, if it did not.
    pub fn refusal(&self, object: &ir::ObjectRef) -> Option<view::State> {
        let key = object.key();
        if self.loaded.live {
            let observed = self.loaded.statuses.get(&key)?;
            let c = observed
                .condition(types::ACCEPTED)
                .filter(|c| c.status == "False")?;
            return Some(view::State::new(&c.reason, &c.message));
        }
        let problem = self.model.verdicts.get(&key)?.accepted.as_ref().err()?;
        Some(view::State::new(problem.reason, &problem.message))
    }

    /// An object's state in a word or two: from the cluster, its
    /// Programmed condition (or the first that is not True); from files,
    /// the model's verdict.
    pub fn state_of(&self, object: &ir::ObjectRef) -> view::State {
        let key = object.key();
        if self.loaded.live {
            let Some(observed) = self.loaded.statuses.get(&key) else {
                return view::State::new("Unknown", "not found in the cluster");
            };
            for kind in [types::ACCEPTED, types::RESOLVED_REFS] {
                if let Some(c) = observed.condition(kind).filter(|c| c.status == "False") {
                    return view::State::new(&c.reason, &c.message);
                }
            }
            return match observed.condition(types::PROGRAMMED) {
                Some(c) if c.status == "True" => view::State::new("Programmed", ""),
                Some(c) => view::State::new(&format!("NotProgrammedYet ({})", c.reason), &c.message),
                None => view::State::new(
                    "NotProgrammedYet",
                    "the operator has not written Programmed for this generation",
                ),
            };
        }
        match self.model.verdicts.get(&key) {
            Some(v) => match (&v.accepted, &v.resolved_refs) {
                (Err(p), _) | (Ok(()), Err(p)) => view::State::new(p.reason, &p.message),
                (Ok(()), Ok(())) => view::State::new("Accepted", ""),
            },
            None => view::State::new("Accepted", ""),
        }
    }
}

fn listing(keys: &[String]) -> String {
    if keys.is_empty() {
        "none".to_owned()
    } else {
        keys.join(", ")
    }
}
