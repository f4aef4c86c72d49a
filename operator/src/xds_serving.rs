//! Only the leader serves xDS. Status, finalizers and quarantine are judged
//! from the ACKs and NACKs of the proxies connected to the replica that
//! writes them; a proxy on a follower would be invisible to it. So a
//! follower holds no xDS port open (a connection is refused at once and the
//! proxy retries, landing on the leader), and a replica that loses the lease
//! ends its streams so that its proxies reconnect to the new leader. Envoy
//! keeps its configuration while it reconnects: no request is lost.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use legate_xds::server::AdsServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::rustls;

use crate::engine::Shared;

/// How long to wait before binding the xDS port again after a failure.
const REBIND_AFTER: Duration = Duration::from_secs(1);

/// What the xDS task serves, and where.
pub struct XdsServing {
    pub ads: AdsServer,
    pub address: SocketAddr,
    /// The port bound at start (which proves the address is usable); dropped
    /// while this replica follows.
    pub listener: TcpListener,
    /// With xDS over mTLS, the server configuration (its certificate renews).
    pub tls: Option<watch::Receiver<Arc<rustls::ServerConfig>>>,
}

impl XdsServing {
    /// Serves xDS whenever `leading` is true, from the first complete
    /// translation on, until `stop` turns true.
    pub async fn run(self, shared: Arc<Shared>, leading: watch::Receiver<bool>, stop: watch::Receiver<bool>) {
        let XdsServing {
            ads,
            address,
            listener,
            tls,
        } = self;
        // Before the first translation an empty snapshot would tell proxies
        // to drop what they run; they wait in the port's backlog meanwhile.
        tokio::select! {
            () = shared.first_translation() => {}
            () = until(stop.clone(), |s| *s) => return,
        }
        let mut listener = Some(listener);
        loop {
            if !*leading.borrow() {
                // Refuse connections at once rather than let them wait in a backlog.
                listener = None;
                tracing::info!(%address, "following: not serving xDS until this replica leads");
            }
            tokio::select! {
                () = until(leading.clone(), |l| *l) => {}
                () = until(stop.clone(), |s| *s) => return,
            }
            let bound = match listener.take() {
                Some(bound) => bound,
                None => match TcpListener::bind(address).await {
                    Ok(bound) => bound,
                    Err(e) => {
                        tracing::error!(%address, error = %e, "could not bind the xDS port; retrying");
                        tokio::select! {
                            () = tokio::time::sleep(REBIND_AFTER) => continue,
                            () = until(stop.clone(), |s| *s) => return,
                        }
                    }
                },
            };
            tracing::info!(%address, "leading: serving xDS");
            let (mut leading_now, mut stop_now) = (leading.clone(), stop.clone());
            let lost = async move {
                tokio::select! {
                    () = until_changed(&mut leading_now, |l| !*l) => {}
                    () = until_changed(&mut stop_now, |s| *s) => {}
                }
            };
            let served = match &tls {
                Some(config) => ads.clone().serve_tls(bound, config.clone(), lost).await,
                None => ads.clone().serve(bound, lost).await,
            };
            if let Err(e) = served {
                tracing::error!(error = %e, "the xDS server stopped; starting it again");
            }
            if *stop.borrow() {
                return;
            }
            if !*leading.borrow() {
                tracing::info!(
                    "no longer leading: closed every xDS stream; proxies reconnect to the new leader"
                );
            }
        }
    }
}

/// Completes when `rx` holds a value that satisfies `done`; never, when its
/// sender is gone without it (a replica without leader election leads for
/// good).
async fn until(mut rx: watch::Receiver<bool>, done: impl Fn(&bool) -> bool) {
    until_changed(&mut rx, done).await;
}

async fn until_changed(rx: &mut watch::Receiver<bool>, done: impl Fn(&bool) -> bool) {
    if rx.wait_for(|v| done(v)).await.is_err() {
        std::future::pending::<()>().await;
    }
}
