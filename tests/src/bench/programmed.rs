//! "Fully Programmed": every Mapping of the benchmark's namespace has
//! Programmed=True for its current generation, and none is still being
//! deleted.

use std::time::Duration;

use kube::Api;
use kube::api::ListParams;
use legate_crds::conditions::types::PROGRAMMED;
use legate_crds::mapping::Mapping;
use tokio::time::Instant;

use super::BenchError;
use super::probe::Waited;

/// Objects per page: what a careful client asks for at this scale.
const PAGE: u32 = 500;
/// The pause between two lists: each list of thousands of Mappings costs the
/// API server (and the operator sharing these 2 cores) real work.
const PAUSE: Duration = Duration::from_millis(250);

/// Where the Mappings of the namespace stand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub total: usize,
    pub programmed: usize,
    /// Deleted but still held by the operator's finalizer.
    pub terminating: usize,
}

impl Progress {
    fn settled(&self, expected: usize) -> bool {
        self.total == expected && self.programmed == expected && self.terminating == 0
    }
}

/// Lists every Mapping, page by page.
pub async fn progress(api: &Api<Mapping>) -> Result<Progress, BenchError> {
    let mut progress = Progress::default();
    let mut token: Option<String> = None;
    loop {
        let mut params = ListParams::default().limit(PAGE);
        if let Some(token) = &token {
            params = params.continue_token(token);
        }
        let page = api
            .list(&params)
            .await
            .map_err(BenchError::kube("listing Mappings"))?;
        for mapping in &page.items {
            progress.total += 1;
            if mapping.metadata.deletion_timestamp.is_some() {
                progress.terminating += 1;
            } else if is_programmed(mapping) {
                progress.programmed += 1;
            }
        }
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            return Ok(progress);
        }
    }
}

/// Programmed=True, and about the generation the Mapping has now.
fn is_programmed(mapping: &Mapping) -> bool {
    let generation = mapping.metadata.generation;
    let Some(status) = &mapping.status else {
        return false;
    };
    status.conditions.iter().any(|c| {
        c.type_ == PROGRAMMED
            && c.status == "True"
            && c.observed_generation.or(status.observed_generation) == generation
    })
}

/// Lists until `expected` Mappings are all Programmed at their generation
/// (and none is terminating); the time is counted from `since`.
pub async fn until_settled(
    api: &Api<Mapping>,
    expected: usize,
    since: Instant,
    timeout: Duration,
) -> Result<Waited, BenchError> {
    let mut last_report = Instant::now();
    loop {
        let now = progress(api).await?;
        if now.settled(expected) {
            return Ok(Waited::Done(since.elapsed()));
        }
        if since.elapsed() >= timeout {
            let left = expected.saturating_sub(now.programmed) + now.terminating;
            return Ok(Waited::TimedOut {
                after: since.elapsed(),
                left,
            });
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            eprintln!(
                "bench:   {} of {expected} Mappings Programmed ({} listed, {} terminating)",
                now.programmed, now.total, now.terminating
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(PAUSE).await;
    }
}
