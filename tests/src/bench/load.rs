//! Loading N Mappings: as one List applied server-side, or one create after
//! the other; then waiting until every route answers and every Mapping is
//! Programmed.

use std::process::Stdio;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::time::Instant;

use super::probe::{Prober, Waited};
use super::programmed::until_settled;
use super::stack::Stack;
use super::world::{self, FIELD_MANAGER, Route};
use super::{Apply, BenchError};

/// How long a load may take to converge before the benchmark gives up on it:
/// generous, so that a slow operator is measured rather than cut off.
pub fn patience(mappings: usize) -> Duration {
    Duration::from_secs(120) + Duration::from_millis(40) * mappings as u32
}

/// A load, measured from the moment it started.
#[derive(Debug, Clone, Copy)]
pub struct Loaded {
    /// When the last write returned (kubectl exited, or the last create).
    pub written: Duration,
    /// When every route answered 200 through the Envoy.
    pub answered: Waited,
    /// When every Mapping was Programmed at its generation.
    pub programmed: Waited,
}

/// Every route of the load, plus the steady one, which is already there.
pub fn expected_mappings(routes: &[Route]) -> usize {
    routes.len() + 1
}

/// Server-side applies in flight at once for [`Apply::Concurrent`].
const APPLY_CONCURRENCY: usize = 32;

/// Every Mapping at once, as one List.
pub async fn bulk(
    stack: &Stack,
    routes: &[Route],
    prober: &Prober,
    apply: Apply,
) -> Result<Loaded, BenchError> {
    let start = Instant::now();
    match apply {
        Apply::Kubectl => kubectl_apply(stack, routes).await?,
        Apply::Concurrent => concurrent_apply(stack, routes).await?,
    }
    let written = start.elapsed();
    eprintln!(
        "bench:   the List was applied after {:.1} s",
        written.as_secs_f64()
    );
    converge(stack, routes, prober, start, written).await
}

/// `kubectl apply --server-side` of one List holding every Mapping.
async fn kubectl_apply(stack: &Stack, routes: &[Route]) -> Result<(), BenchError> {
    let file = stack.dir.join("run").join("bench-mappings.json");
    let items: Vec<serde_json::Value> = routes.iter().map(Route::object).collect();
    let list = json!({ "apiVersion": "v1", "kind": "List", "items": items });
    std::fs::write(&file, list.to_string()).map_err(BenchError::io(format!("writing {}", file.display())))?;

    let output = tokio::process::Command::new(&stack.kubectl)
        .arg("--kubeconfig")
        .arg(&stack.kubeconfig)
        .args(["apply", "--server-side", "--field-manager", FIELD_MANAGER, "-f"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await
        .map_err(BenchError::io(format!("running {}", stack.kubectl.display())))?;
    if !output.status.success() {
        return Err(BenchError::Failed(format!(
            "kubectl apply --server-side -f {} failed ({}):\n{}",
            file.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(())
}

/// One server-side apply per Mapping, [`APPLY_CONCURRENCY`] at a time.
async fn concurrent_apply(stack: &Stack, routes: &[Route]) -> Result<(), BenchError> {
    let api = world::mappings(stack);
    let params = PatchParams::apply(FIELD_MANAGER);
    futures::stream::iter(routes)
        .map(|route| {
            let (api, params) = (&api, &params);
            async move {
                api.patch(&route.name, params, &Patch::Apply(route.object()))
                    .await
                    .map_err(BenchError::kube(format!("applying Mapping {}", route.name)))
            }
        })
        .buffer_unordered(APPLY_CONCURRENCY)
        .try_for_each(|_| async { Ok(()) })
        .await
}

/// One create after the other, each awaited before the next is sent.
pub async fn one_by_one(stack: &Stack, routes: &[Route], prober: &Prober) -> Result<Loaded, BenchError> {
    let api = world::mappings(stack);
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    let start = Instant::now();
    for (n, route) in routes.iter().enumerate() {
        let object: DynamicObject = serde_json::from_value(route.object())
            .map_err(|e| BenchError::Failed(format!("building Mapping {}: {e}", route.name)))?;
        api.create(&params, &object)
            .await
            .map_err(BenchError::kube(format!("creating Mapping {}", route.name)))?;
        if (n + 1) % 1000 == 0 {
            eprintln!("bench:   {} created", n + 1);
        }
    }
    let written = start.elapsed();
    eprintln!(
        "bench:   the last create returned after {:.1} s",
        written.as_secs_f64()
    );
    converge(stack, routes, prober, start, written).await
}

/// Waits (both at once) for every route to answer and every Mapping to be
/// Programmed. Neither starts before the writes are done: no route can
/// answer before its Mapping exists, and probing thousands of missing
/// routes would only take CPU from the operator.
async fn converge(
    stack: &Stack,
    routes: &[Route],
    prober: &Prober,
    start: Instant,
    written: Duration,
) -> Result<Loaded, BenchError> {
    let patience = patience(routes.len());
    let typed = world::typed_mappings(stack);
    let (answered, programmed) = tokio::join!(
        prober.until_all_answer(routes, start, patience),
        until_settled(&typed, expected_mappings(routes), start, patience),
    );
    Ok(Loaded {
        written,
        answered,
        programmed: programmed?,
    })
}
