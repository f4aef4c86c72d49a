//! Small networking helpers shared by the harness.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// Envoy must be told its listener ports up front, so the harness picks them;
/// the kernel hands out ephemeral ports in sequence, so a reuse race between
/// two tests is unlikely and would fail loudly (bind error), not silently.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("the kernel should hand out a free loopback port")
}

/// `127.0.0.1:port`.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// Polls `check` every 50 ms until it returns `Some`, or fails after `timeout`
/// with `what` in the message. Tests wait on conditions, never on sleeps.
pub async fn eventually<T, F, Fut>(what: &str, timeout: std::time::Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A TCP load balancer on 127.0.0.1 that spreads connections over backends
/// and skips those that refuse: the test's stand-in for a Kubernetes Service
/// in front of several operator replicas.
#[derive(Debug)]
pub struct TcpBalancer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl TcpBalancer {
    pub async fn start(backends: Vec<SocketAddr>) -> TcpBalancer {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("the balancer binds a loopback port");
        let addr = listener.local_addr().expect("a bound listener has an address");
        let task = tokio::spawn(async move {
            let mut next = 0usize;
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut upstream = None;
                for i in 0..backends.len() {
                    let backend = backends[(next + i) % backends.len()];
                    if let Ok(s) = tokio::net::TcpStream::connect(backend).await {
                        upstream = Some(s);
                        next = (next + i + 1) % backends.len();
                        break;
                    }
                }
                let Some(mut upstream) = upstream else {
                    continue;
                };
                tokio::spawn(async move {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut upstream).await;
                });
            }
        });
        TcpBalancer { addr, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for TcpBalancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
