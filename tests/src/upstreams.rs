//! Upstreams that misbehave on purpose, for resilience tests: a recording
//! echo that can fail each path's first attempt (for retries, shadows and
//! request counting), and an endpoint that never answers a SYN (for connect
//! timeouts).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::echo::EchoReply;
use crate::testhost::{TestHost, TestHostError};

/// How a [`Recorder`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Always 200, like the echo server.
    Answer,
    /// The first request for each path answers 503; later ones 200.
    FailFirstAttempt,
    /// Every request answers 503, health checks too: a broken endpoint.
    AlwaysFail,
}

/// An HTTP/1.1 and h2c server that answers like the echo server (a JSON
/// [`EchoReply`]) and remembers every request it saw. Stops when dropped.
#[derive(Debug)]
pub struct Recorder {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<EchoReply>>>,
    task: JoinHandle<()>,
}

impl Recorder {
    /// Serves `listener` (for example one a test host bound) as `name`.
    pub fn serve(listener: TcpListener, name: &str, behaviour: Behaviour) -> Recorder {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("recorder {name} has no local address: {e}"));
        let seen: Arc<Mutex<Vec<EchoReply>>> = Arc::default();
        let name = name.to_string();
        let log = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (name, log) = (name.clone(), log.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req| answer(req, name.clone(), log.clone(), behaviour));
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Recorder { addr, seen, task }
    }

    /// Starts a recorder named `name` on `host`'s address at `port`.
    pub fn on(
        host: &TestHost,
        name: &str,
        port: u16,
        behaviour: Behaviour,
    ) -> Result<Recorder, TestHostError> {
        Ok(Recorder::serve(host.bind(port)?, name, behaviour))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request seen so far, in arrival order.
    pub fn requests(&self) -> Vec<EchoReply> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// How many requests for `path` arrived.
    pub fn count(&self, path: &str) -> usize {
        self.requests().iter().filter(|r| r.path == path).count()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    req: Request<Incoming>,
    backend: String,
    log: Arc<Mutex<Vec<EchoReply>>>,
    behaviour: Behaviour,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = EchoReply::read(req, &backend).await;
    let earlier = match log.lock() {
        Ok(mut seen) => {
            let earlier = seen.iter().filter(|r| r.path == reply.path).count();
            seen.push(reply.clone());
            earlier
        }
        Err(_) => 0,
    };
    let status = match behaviour {
        Behaviour::FailFirstAttempt if earlier == 0 => StatusCode::SERVICE_UNAVAILABLE,
        Behaviour::AlwaysFail => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    };
    Ok(reply.into_response(status))
}

/// A listening port on a test host that never answers a new SYN: its accept
/// queue (backlog 0, so one connection) is full and nobody accepts, so the
/// kernel drops further SYNs. A client's connect hangs until its own timeout,
/// as with a host that went away without a trace.
#[derive(Debug)]
pub struct Unanswering {
    addr: SocketAddr,
    _listener: TcpListener,
    _queued: TcpStream,
}

impl Unanswering {
    pub async fn on(host: &TestHost, port: u16) -> Unanswering {
        let addr = SocketAddr::from((host.addr(), port));
        let netns = host.netns().to_string();
        let runtime = tokio::runtime::Handle::current();
        let listener = std::thread::spawn(move || -> std::io::Result<TcpListener> {
            let handle = std::fs::File::open(format!("/run/netns/{netns}"))?;
            nix::sched::setns(&handle, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
            let _guard = runtime.enter();
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(addr)?;
            socket.listen(0)
        })
        .join()
        .expect("the namespace-entering thread does not panic")
        .unwrap_or_else(|e| panic!("listening on {addr} in test host {}: {e}", host.netns()));
        // One connection fills a backlog of 0; it is never accepted.
        let queued = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("filling the accept queue of {addr}: {e}"));
        Unanswering {
            addr,
            _listener: listener,
            _queued: queued,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}
