//! Test hosts: network namespaces with an address of their own.
//!
//! EndpointSlice validation refuses loopback addresses, so a test that needs a
//! Service with real endpoints runs its echo servers inside a test host: a
//! network namespace joined to this machine by a veth pair. Addresses come
//! from 198.18.0.0/15, the range set aside for network testing (RFC 2544), so
//! they can never be someone else's host. The namespace is deleted on drop.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use nix::sched::CloneFlags;
use tokio::net::TcpListener;

use crate::echo::EchoServer;

const NETNS_PREFIX: &str = "legate-";

/// Why a test host could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TestHostError {
    #[error("`ip {args}` failed: {stderr}\n(test hosts need root and iproute2: `apt-get install iproute2`)")]
    Ip { args: String, stderr: String },
    #[error("could not run `ip` ({0}); test hosts need iproute2: `apt-get install iproute2`")]
    NoIpTool(std::io::Error),
    #[error("entering network namespace {netns}: {source}")]
    Enter { netns: String, source: std::io::Error },
    #[error("binding {addr} inside {netns}: {source}")]
    Bind {
        netns: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// One network namespace with one IPv4 address, reachable from this machine.
#[derive(Debug)]
pub struct TestHost {
    netns: String,
    addr: Ipv4Addr,
}

impl TestHost {
    /// Creates a namespace and a veth pair: this machine gets `.1` of a /30 in
    /// 198.18.0.0/15, the test host gets `.2`.
    pub fn create() -> Result<TestHost, TestHostError> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let pid = std::process::id();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        remove_abandoned_namespaces();

        // 2^15 /30 blocks in 198.18.0.0/15; spread by pid so that two test
        // binaries running at once do not collide.
        let block = (pid.wrapping_mul(64).wrapping_add(n)) % (1 << 15);
        let base = u32::from(Ipv4Addr::new(198, 18, 0, 0)) + block * 4;
        let outside = Ipv4Addr::from(base + 1);
        let inside = Ipv4Addr::from(base + 2);
        let netns = format!("{NETNS_PREFIX}{pid}-{n}");
        // Interface names are limited to 15 bytes.
        let veth_out = format!("lg{pid:x}x{n}o");
        let veth_in = format!("lg{pid:x}x{n}i");

        ip(&["netns", "add", &netns])?;
        let host = TestHost { netns, addr: inside };
        let ns = host.netns.as_str();
        ip(&["link", "add", &veth_out, "type", "veth", "peer", "name", &veth_in])?;
        ip(&["link", "set", &veth_in, "netns", ns])?;
        ip(&["addr", "add", &format!("{outside}/30"), "dev", &veth_out])?;
        ip(&["link", "set", &veth_out, "up"])?;
        ip(&["-n", ns, "addr", "add", &format!("{inside}/30"), "dev", &veth_in])?;
        ip(&["-n", ns, "link", "set", &veth_in, "up"])?;
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        Ok(host)
    }

    /// The test host's address: what goes into an EndpointSlice.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The network namespace's name (for `ip netns exec`).
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// Binds a TCP listener on the test host's address. The socket is created
    /// inside the namespace (on a short-lived thread that joins it) and keeps
    /// living there, served by this process's tokio runtime.
    pub fn bind(&self, port: u16) -> Result<TcpListener, TestHostError> {
        let netns = self.netns.clone();
        let addr = SocketAddr::from((self.addr, port));
        let std_listener = std::thread::spawn(move || {
            let handle =
                File::open(format!("/run/netns/{netns}")).map_err(|source| TestHostError::Enter {
                    netns: netns.clone(),
                    source,
                })?;
            nix::sched::setns(&handle, CloneFlags::CLONE_NEWNET).map_err(|errno| TestHostError::Enter {
                netns: netns.clone(),
                source: errno.into(),
            })?;
            let listener = std::net::TcpListener::bind(addr).map_err(|source| TestHostError::Bind {
                netns: netns.clone(),
                addr,
                source,
            })?;
            listener
                .set_nonblocking(true)
                .map_err(|source| TestHostError::Bind { netns, addr, source })?;
            Ok(listener)
        })
        .join()
        .expect("the namespace-entering thread does not panic")?;
        TcpListener::from_std(std_listener).map_err(|source| TestHostError::Bind {
            netns: self.netns.clone(),
            addr,
            source,
        })
    }

    /// Starts an echo server named `name` on this test host.
    pub fn start_echo(&self, name: &str, port: u16) -> Result<EchoServer, TestHostError> {
        Ok(EchoServer::serve(self.bind(port)?, name))
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        // Deleting the namespace also deletes both ends of the veth pair.
        let _ = ip(&["netns", "del", &self.netns]);
    }
}

fn ip(args: &[&str]) -> Result<(), TestHostError> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(TestHostError::NoIpTool)?;
    if output.status.success() {
        Ok(())
    } else {
        Err(TestHostError::Ip {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

/// Namespaces left by test binaries that were killed before dropping them.
fn remove_abandoned_namespaces() {
    let Ok(output) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let owner = name
            .strip_prefix(NETNS_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = owner
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = ip(&["netns", "del", name]);
        }
    }
}
