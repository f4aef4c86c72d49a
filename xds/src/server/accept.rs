//! Accepting xDS connections. An accept error (EMFILE when descriptors run
//! out, a connection reset before it was accepted) is logged and retried
//! after a pause instead of ending the server; handshakes are bounded in
//! number and in time, so a flood of half-open connections waits in the
//! kernel's backlog rather than taking every descriptor and task.

use std::fmt::Display;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

/// Where connections come from: a TCP listener, or a script in tests.
pub(crate) trait Listener: Send + 'static {
    type Io: Send + 'static;
    fn accept(&mut self) -> impl Future<Output = std::io::Result<(Self::Io, SocketAddr)>> + Send;
}

impl Listener for tokio::net::TcpListener {
    type Io = tokio::net::TcpStream;

    fn accept(&mut self) -> impl Future<Output = std::io::Result<(Self::Io, SocketAddr)>> + Send {
        tokio::net::TcpListener::accept(self)
    }
}

/// How connections are let in.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// Handshakes in progress at once; more connections wait to be accepted.
    pub handshakes: usize,
    /// A handshake not done by then is dropped (and counted as refused).
    pub handshake_timeout: Duration,
    /// The pause after an accept error: EMFILE persists until a connection
    /// closes, and retrying at once would spin.
    pub retry_after: Duration,
    /// At most one accept error is logged per period; the rest are counted.
    pub log_every: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            // Far above the handshakes a fleet reconnecting at once needs
            // (each takes milliseconds), far below the descriptors we have.
            handshakes: 64,
            handshake_timeout: Duration::from_secs(10),
            retry_after: Duration::from_millis(100),
            log_every: Duration::from_secs(10),
        }
    }
}

/// Accepts connections for as long as `incoming` is open: each one is
/// handshaken (`handshake`, bounded by `limits`) and what it yields is sent
/// on `incoming`. A failed or timed-out handshake adds to `refused`.
pub(crate) async fn accept_forever<L, H, F, T, E>(
    mut listener: L,
    limits: Limits,
    handshake: H,
    incoming: mpsc::Sender<T>,
    refused: Arc<AtomicU64>,
) where
    L: Listener,
    H: Fn(L::Io) -> F,
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Display + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(limits.handshakes.max(1)));
    let mut errors = ErrorLog::new(limits.log_every);
    loop {
        // A slot first, then accept: over the cap, connections stay in the
        // backlog and hold nothing of ours.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                // The semaphore is never closed; nothing to accept for if it were.
                Err(_) => return,
            },
            () = incoming.closed() => return,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = incoming.closed() => return,
        };
        let (io, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                errors.record(&e, Instant::now());
                tokio::time::sleep(limits.retry_after).await;
                continue;
            }
        };
        let handshaking = handshake(io);
        let (incoming, refused) = (incoming.clone(), refused.clone());
        let timeout = limits.handshake_timeout;
        tokio::spawn(async move {
            let done = tokio::time::timeout(timeout, handshaking).await;
            drop(permit);
            match done {
                Ok(Ok(connection)) => {
                    // The server may be shutting down; the connection just closes.
                    let _ = incoming.send(connection).await;
                }
                Ok(Err(e)) => {
                    refused.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%peer, error = %e, "refused an xDS connection: TLS handshake failed");
                }
                Err(_) => {
                    refused.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%peer, ?timeout, "refused an xDS connection: TLS handshake timed out");
                }
            }
        });
    }
}

/// Logs the first accept error of each period and counts the rest, so a
/// descriptor shortage that lasts does not flood the log.
#[derive(Debug)]
struct ErrorLog {
    every: Duration,
    last_logged: Option<Instant>,
    suppressed: u64,
}

impl ErrorLog {
    fn new(every: Duration) -> ErrorLog {
        ErrorLog {
            every,
            last_logged: None,
            suppressed: 0,
        }
    }

    /// Whether this error was logged (false: counted for the next line).
    fn record(&mut self, error: &std::io::Error, now: Instant) -> bool {
        if self
            .last_logged
            .is_some_and(|at| now.saturating_duration_since(at) < self.every)
        {
            self.suppressed += 1;
            return false;
        }
        tracing::error!(
            %error,
            suppressed = self.suppressed,
            "accepting an xDS connection failed; retrying (suppressed: errors since the last such line)"
        );
        self.last_logged = Some(now);
        self.suppressed = 0;
        true
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::convert::Infallible;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// Hands out a scripted sequence of accept results, then waits forever.
    struct Script(VecDeque<std::io::Result<(u32, SocketAddr)>>);

    impl Listener for Script {
        type Io = u32;

        fn accept(&mut self) -> impl Future<Output = std::io::Result<(u32, SocketAddr)>> + Send {
            let next = self.0.pop_front();
            async move {
                match next {
                    Some(result) => result,
                    None => std::future::pending().await,
                }
            }
        }
    }

    fn peer() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 40000))
    }

    fn emfile() -> std::io::Error {
        std::io::Error::from_raw_os_error(24)
    }

    #[tokio::test(start_paused = true)]
    async fn an_accept_error_is_retried_and_the_loop_goes_on() {
        let script = Script(VecDeque::from([
            Ok((1, peer())),
            Err(emfile()),
            Err(emfile()),
            Ok((2, peer())),
        ]));
        let (tx, mut rx) = mpsc::channel(8);
        let refused = Arc::new(AtomicU64::new(0));
        let handshake = |io: u32| std::future::ready(Ok::<u32, Infallible>(io));
        let task = tokio::spawn(accept_forever(
            script,
            Limits::default(),
            handshake,
            tx,
            refused.clone(),
        ));
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(
            rx.recv().await,
            Some(2),
            "the connection after the errors is served"
        );
        assert!(!task.is_finished());
        assert_eq!(refused.load(Ordering::Relaxed), 0);
        // Dropping the receiver (the server stopped) ends the loop.
        drop(rx);
        task.await.expect("the loop ends without panicking");
    }

    #[tokio::test(start_paused = true)]
    async fn handshakes_over_the_cap_wait_and_a_stuck_one_times_out() {
        let script = Script((0..10).map(|i| Ok((i, peer()))).collect());
        let limits = Limits {
            handshakes: 3,
            handshake_timeout: Duration::from_secs(10),
            ..Limits::default()
        };
        let started = Arc::new(AtomicUsize::new(0));
        let handshake = {
            let started = started.clone();
            move |_io: u32| {
                started.fetch_add(1, Ordering::SeqCst);
                // A peer that connects and never speaks.
                std::future::pending::<Result<u32, Infallible>>()
            }
        };
        let (tx, _rx) = mpsc::channel(8);
        let refused = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(accept_forever(script, limits, handshake, tx, refused.clone()));
        // Let everything that can run, run; time does not move.
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(started.load(Ordering::SeqCst), 3, "only the cap's worth started");
        // The stuck handshakes time out, free their slots, and the next start.
        tokio::time::sleep(Duration::from_millis(10_001)).await;
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            refused.load(Ordering::Relaxed),
            3,
            "the timed-out ones count as refused"
        );
        assert_eq!(started.load(Ordering::SeqCst), 6);
        task.abort();
    }

    #[test]
    fn accept_errors_are_logged_once_per_period() {
        let mut log = ErrorLog::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert!(log.record(&emfile(), t0));
        assert!(!log.record(&emfile(), t0 + Duration::from_secs(1)));
        assert!(!log.record(&emfile(), t0 + Duration::from_secs(9)));
        assert_eq!(log.suppressed, 2);
        assert!(log.record(&emfile(), t0 + Duration::from_secs(10)));
        assert_eq!(log.suppressed, 0);
    }
}
