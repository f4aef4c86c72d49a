//! Requests through the Envoy: how the benchmark sees what a client sees.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;

use super::world::Route;
use crate::http::HttpClient;

/// How often a route is asked while the benchmark waits for it to change:
/// the resolution of "change -> first answer".
const POLL: Duration = Duration::from_millis(1);
/// Requests in flight at once when every route of a load is probed.
const SWEEP_CONCURRENCY: usize = 32;
/// The bystander client's pause between requests.
const STEADY_PAUSE: Duration = Duration::from_millis(2);

/// A client of the Gateway's HTTP listener (connections are pooled).
#[derive(Debug, Clone)]
pub struct Prober {
    client: HttpClient,
    base: String,
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// Done, this long after the start.
    Done(Duration),
    /// Still not done when the benchmark gave up; `left` were missing.
    TimedOut { after: Duration, left: usize },
}

impl Prober {
    pub fn new(http: SocketAddr) -> Prober {
        Prober {
            client: HttpClient::http1(),
            base: format!("http://{http}"),
        }
    }

    /// The status `route` answers now, or None when the request failed.
    pub async fn status(&self, route: &Route) -> Option<u16> {
        let url = format!("{}{}", self.base, route.prefix);
        let response = self.client.get(&url, Some(&route.host)).await.ok()?;
        Some(response.status.as_u16())
    }

    /// Asks `route` every millisecond until it answers `want`; returns the
    /// time from `since` (when the API call that changed it returned).
    pub async fn until(&self, route: &Route, want: u16, since: Instant, timeout: Duration) -> Waited {
        loop {
            if self.status(route).await == Some(want) {
                return Waited::Done(since.elapsed());
            }
            if since.elapsed() >= timeout {
                return Waited::TimedOut {
                    after: since.elapsed(),
                    left: 1,
                };
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Sweeps every route (a bounded number at once), again and again over
    /// those that do not answer 200 yet, until all do.
    pub async fn until_all_answer(&self, routes: &[Route], since: Instant, timeout: Duration) -> Waited {
        let mut pending: Vec<&Route> = routes.iter().collect();
        let mut last_report = Instant::now();
        while !pending.is_empty() {
            if since.elapsed() >= timeout {
                return Waited::TimedOut {
                    after: since.elapsed(),
                    left: pending.len(),
                };
            }
            pending = self.still_failing(pending).await;
            if last_report.elapsed() >= Duration::from_secs(5) {
                eprintln!(
                    "bench:   {} of {} routes answer 200",
                    routes.len() - pending.len(),
                    routes.len()
                );
                last_report = Instant::now();
            }
            if !pending.is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        Waited::Done(since.elapsed())
    }

    async fn still_failing<'a>(&self, routes: Vec<&'a Route>) -> Vec<&'a Route> {
        futures::stream::iter(routes)
            .map(|route| async move { (self.status(route).await != Some(200)).then_some(route) })
            .buffer_unordered(SWEEP_CONCURRENCY)
            .filter_map(|failing| async move { failing })
            .collect()
            .await
    }
}

/// What the bystander client saw.
#[derive(Debug, Clone, Default)]
pub struct SteadyCount {
    pub sent: u64,
    /// Answers by status; a failed request (no answer) counts under 0.
    pub by_status: BTreeMap<u16, u64>,
}

impl SteadyCount {
    /// Requests that did not answer 2xx (failures included).
    pub fn non_2xx(&self) -> u64 {
        self.by_status
            .iter()
            .filter(|(status, _)| !(200..300).contains(*status))
            .map(|(_, n)| n)
            .sum()
    }
}

/// A second client looping on a route that no change touches, for as long
/// as the changes run: any non-2xx is collateral damage.
#[derive(Debug)]
pub struct SteadyLoop {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<SteadyCount>,
}

impl SteadyLoop {
    pub fn start(http: SocketAddr, route: Route) -> SteadyLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let running = stop.clone();
        // A client of its own: its connections are not the measuring client's.
        let prober = Prober::new(http);
        let task = tokio::spawn(async move {
            let mut count = SteadyCount::default();
            while !running.load(Ordering::Relaxed) {
                let status = prober.status(&route).await.unwrap_or(0);
                count.sent += 1;
                *count.by_status.entry(status).or_default() += 1;
                tokio::time::sleep(STEADY_PAUSE).await;
            }
            count
        });
        SteadyLoop { stop, task }
    }

    pub async fn finish(self) -> SteadyCount {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}
