//! `/healthz` (every task the operator needs still runs) and `/readyz`
//! (every watch has listed once and the first translation is in the cache,
//! so that this replica could answer Envoys the moment it leads).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;

use crate::liveness::Liveness;

/// Flipped to true once the operator can serve.
#[derive(Debug, Default)]
pub struct Readiness(AtomicBool);

impl Readiness {
    pub fn set_ready(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn is_ready(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// `/healthz`: 503 naming what stopped, so that the kubelet restarts a
/// process whose configuration would otherwise freeze unnoticed.
fn healthz(liveness: &Liveness) -> (StatusCode, String) {
    let stopped = liveness.stopped();
    if stopped.is_empty() {
        (StatusCode::OK, "ok".to_string())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("stopped: {}", stopped.join(", ")),
        )
    }
}

pub async fn serve(
    listener: tokio::net::TcpListener,
    readiness: Arc<Readiness>,
    liveness: Arc<Liveness>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route(
            "/healthz",
            get(move || {
                let liveness = liveness.clone();
                async move { healthz(&liveness) }
            }),
        )
        .route(
            "/readyz",
            get(move || {
                let readiness = readiness.clone();
                async move {
                    if readiness.is_ready() {
                        (StatusCode::OK, "ok")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "starting")
                    }
                }
            }),
        );
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

/// Binds the health endpoint's address.
pub async fn bind(address: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address).await
}

/// Serves `/metrics`, and the routes of `pages` (the diagnostics page), until
/// `shutdown` completes. The pages sit here rather than beside `/healthz`:
/// this port is already the one people (and Prometheus) read the operator
/// through, and the kubelet's probes on the health port never wait behind a
/// page being rendered.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    metrics: Arc<crate::metrics::Metrics>,
    pages: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = pages.route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(
                        "content-type",
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.encode(),
                )
            }
        }),
    );
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// The status code and the whole response.
    async fn get(address: SocketAddr, path: &str) -> (String, String) {
        let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
        let request = format!("GET {path} HTTP/1.0\r\nHost: legate\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        let code = response.split(' ').nth(1).unwrap_or_default().to_string();
        (code, response)
    }

    #[tokio::test]
    async fn healthz_fails_and_names_a_task_that_stopped() {
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("bind");
        let address = listener.local_addr().expect("address");
        let liveness = Liveness::new();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            Arc::new(Readiness::default()),
            liveness.clone(),
            async {
                let _ = stopped.await;
            },
        ));
        let _engine = liveness.spawn("engine", std::future::pending::<()>());
        let (end_xds, xds_ends) = tokio::sync::oneshot::channel::<()>();
        let xds = liveness.spawn("xDS server", async {
            let _ = xds_ends.await;
        });
        let (code, healthy) = get(address, "/healthz").await;
        assert_eq!(code, "200", "{healthy}");

        let _ = end_xds.send(());
        xds.await.expect("the xDS task ends");
        let (code, failing) = get(address, "/healthz").await;
        assert_eq!(code, "503", "{failing}");
        assert!(failing.ends_with("stopped: xDS server (ended)"), "{failing}");
        let _ = stop.send(());
        server.await.expect("joined").expect("served");
    }
}
