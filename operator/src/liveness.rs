//! Which of the operator's long-running tasks have stopped. If the engine or
//! the xDS server ends or panics, configuration freezes while the process
//! lives on; `/healthz` reports it so that the kubelet restarts the pod.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use futures::FutureExt;

use tokio::task::JoinHandle;

/// The tasks that stopped, with how they stopped.
#[derive(Debug, Default)]
pub struct Liveness {
    stopped: Mutex<Vec<String>>,
}

impl Liveness {
    pub fn new() -> Arc<Liveness> {
        Arc::new(Liveness::default())
    }

    /// Spawns `task`, which should run as long as the process; when it ends,
    /// panics or is aborted, `name` is reported as stopped.
    pub fn spawn<T: Send + 'static>(
        self: &Arc<Self>,
        name: &'static str,
        task: impl Future<Output = T> + Send + 'static,
    ) -> JoinHandle<T> {
        // The guard is dropped however the task stops; if it is dropped
        // before saying how, the task was aborted.
        let mut guard = Watched {
            name,
            how: "aborted",
            liveness: self.clone(),
        };
        tokio::spawn(async move {
            match AssertUnwindSafe(task).catch_unwind().await {
                Ok(out) => {
                    guard.how = "ended";
                    drop(guard);
                    out
                }
                Err(panic) => {
                    guard.how = "panicked";
                    drop(guard);
                    // The JoinHandle still sees the panic.
                    std::panic::resume_unwind(panic)
                }
            }
        })
    }

    /// What has stopped, one `name (how)` per task; empty while all run.
    pub fn stopped(&self) -> Vec<String> {
        self.stopped
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    fn record(&self, what: String) {
        match self.stopped.lock() {
            Ok(mut stopped) => stopped.push(what),
            Err(poisoned) => poisoned.into_inner().push(what),
        }
    }
}

#[derive(Debug)]
struct Watched {
    name: &'static str,
    how: &'static str,
    liveness: Arc<Liveness>,
}

impl Drop for Watched {
    fn drop(&mut self) {
        tracing::error!(
            task = self.name,
            how = self.how,
            "a task the operator needs stopped; /healthz fails"
        );
        self.liveness.record(format!("{} ({})", self.name, self.how));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_that_ends_or_panics_is_reported_by_name() {
        let liveness = Liveness::new();
        let running = liveness.spawn("engine", std::future::pending::<()>());
        assert!(liveness.stopped().is_empty());
        liveness.spawn("xDS server", async {}).await.expect("ends");
        assert_eq!(liveness.stopped(), ["xDS server (ended)"]);
        let panicked = liveness
            .spawn("ACK tracker", async {
                if true {
                    panic!("a bug")
                }
            })
            .await;
        assert!(panicked.is_err());
        assert_eq!(
            liveness.stopped(),
            ["xDS server (ended)", "ACK tracker (panicked)"]
        );
        assert!(!running.is_finished());
        running.abort();
        let _ = running.await;
        assert_eq!(liveness.stopped().len(), 3);
        assert_eq!(liveness.stopped()[2], "engine (aborted)");
    }
}
