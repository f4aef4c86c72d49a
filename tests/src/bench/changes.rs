//! K changes, one at a time, each timed from the moment its API call
//! returned to the first answer through the Envoy that shows it: creates,
//! prefix modifications and deletes in turn, while a second client loops on
//! a route none of them touches.

use std::time::Duration;

use kube::Api;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::time::Instant;

use super::BenchError;
use super::probe::{Prober, SteadyCount, SteadyLoop, Waited};
use super::stack::Stack;
use super::world::{self, FIELD_MANAGER, Route};

/// How long one change may take to show before it counts as lost.
const PATIENCE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    /// A new Mapping: time to the first 200 on its path.
    Create,
    /// A loaded Mapping gets a new prefix: time to the first 200 on it.
    Modify,
    /// A Mapping created earlier in the phase goes: time to the first 404.
    Delete,
}

impl ChangeKind {
    pub fn label(self) -> &'static str {
        match self {
            ChangeKind::Create => "create -> first 200",
            ChangeKind::Modify => "modify prefix -> first 200 on it",
            ChangeKind::Delete => "delete -> first 404",
        }
    }
}

/// What the change phase saw.
#[derive(Debug, Clone)]
pub struct Changed {
    pub timings: Vec<(ChangeKind, Waited)>,
    /// Writes the benchmark itself sent (one per change), to tell them from the operator's.
    pub own_writes: u64,
    pub steady: SteadyCount,
    /// Mappings in the namespace once every change is done.
    pub mappings_after: usize,
}

/// What the changes pick their Mappings from.
struct Plan<'a> {
    loaded: &'a [Route],
    hosts: usize,
}

pub async fn run(
    stack: &Stack,
    loaded: &[Route],
    hosts: usize,
    changes: usize,
    prober: &Prober,
) -> Result<Changed, BenchError> {
    let api = world::mappings(stack);
    let plan = Plan { loaded, hosts };
    let steady = SteadyLoop::start(stack.http, Route::steady());
    let mut timings = Vec::with_capacity(changes);
    let mut created: i64 = 0;
    for step in 0..changes {
        let (kind, waited) = plan.change(&api, prober, step).await?;
        match kind {
            ChangeKind::Create => created += 1,
            ChangeKind::Delete => created -= 1,
            ChangeKind::Modify => {}
        }
        timings.push((kind, waited));
    }
    let steady = steady.finish().await;
    Ok(Changed {
        timings,
        own_writes: changes as u64,
        steady,
        mappings_after: (loaded.len() as i64 + 1 + created).max(0) as usize,
    })
}

impl Plan<'_> {
    /// Change `step`: a create, a modify and a delete (of the create two
    /// steps back) in turn, so that the world stays at N Mappings.
    async fn change(
        &self,
        api: &Api<DynamicObject>,
        prober: &Prober,
        step: usize,
    ) -> Result<(ChangeKind, Waited), BenchError> {
        match step % 3 {
            0 => {
                let route = self.created(step);
                create(api, &route).await?;
                Ok((
                    ChangeKind::Create,
                    prober.until(&route, 200, Instant::now(), PATIENCE).await,
                ))
            }
            1 => {
                let route = self.modified(step)?;
                let patch = json!({ "spec": { "prefix": route.prefix } });
                api.patch(&route.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(BenchError::kube(format!(
                        "changing the prefix of Mapping {}",
                        route.name
                    )))?;
                Ok((
                    ChangeKind::Modify,
                    prober.until(&route, 200, Instant::now(), PATIENCE).await,
                ))
            }
            _ => {
                let route = self.created(step - 2);
                api.delete(&route.name, &DeleteParams::default())
                    .await
                    .map_err(BenchError::kube(format!("deleting Mapping {}", route.name)))?;
                Ok((
                    ChangeKind::Delete,
                    prober.until(&route, 404, Instant::now(), PATIENCE).await,
                ))
            }
        }
    }

    /// The Mapping that step `step` creates.
    fn created(&self, step: usize) -> Route {
        Route::new(format!("c{step}"), step, self.hosts, format!("/c{step}/"))
    }

    /// Loaded Mapping `(step / 3) % N` with a prefix no other route has.
    fn modified(&self, step: usize) -> Result<Route, BenchError> {
        let index = (step / 3) % self.loaded.len().max(1);
        let mut route = self
            .loaded
            .get(index)
            .cloned()
            .ok_or_else(|| BenchError::Failed("no Mapping was loaded to modify".into()))?;
        route.prefix = format!("/m{index}-v{step}/");
        Ok(route)
    }
}

async fn create(api: &Api<DynamicObject>, route: &Route) -> Result<(), BenchError> {
    let object: DynamicObject = serde_json::from_value(route.object())
        .map_err(|e| BenchError::Failed(format!("building Mapping {}: {e}", route.name)))?;
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    api.create(&params, &object)
        .await
        .map(drop)
        .map_err(BenchError::kube(format!("creating Mapping {}", route.name)))
}
