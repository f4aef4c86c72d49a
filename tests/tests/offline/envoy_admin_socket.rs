//! The fleet's bootstrap in a real Envoy: the admin API listens on a Unix
//! socket and on no TCP port (a tenant's route to a name resolving to
//! 127.0.0.1 must not reach it), and the probe listener still answers
//! `/ready` by asking the admin API on that socket.
//!
//! The harness's [`legate_tests::Envoy`] reads a TCP admin address, so this
//! file starts Envoy itself.

use std::collections::BTreeSet;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use legate_tests::envoy::{binary, die_with_parent};
use legate_tests::http::HttpClient;
use legate_tests::net::{eventually, free_port, loopback};
use legate_xds::bootstrap::BootstrapConfig;
use legate_xds::cache::SnapshotCache;
use legate_xds::sample;
use legate_xds::translate::{Change, Translator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::xds_rig::{CONVERGE, ControlPlane, GATEWAY};

/// An Envoy started from a bootstrap file, killed on drop.
struct SocketEnvoy {
    child: Child,
    log: PathBuf,
}

impl SocketEnvoy {
    /// Starts Envoy on `config` (a bootstrap file); its log goes beside it.
    fn start(config: &Path, name: &str) -> SocketEnvoy {
        let binary = binary().unwrap_or_else(|e| panic!("{e}"));
        let log = config.with_file_name(format!("{name}.log"));
        let mut command = Command::new(&binary);
        command
            .arg("--config-path")
            .arg(config)
            .arg("--log-path")
            .arg(&log)
            .args([
                "--log-level",
                "info",
                "--disable-hot-restart",
                "--concurrency",
                "1",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        die_with_parent(&mut command);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        SocketEnvoy { child, log }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of Envoy's log, for failure messages.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Waits until the probe listener on `port` answers `/ready` with 200:
    /// the probe listener's cluster reached the admin API on its socket.
    async fn until_ready_through(&mut self, port: u16) {
        let url = format!("http://{}/ready", loopback(port));
        let client = HttpClient::http1();
        let deadline = tokio::time::Instant::now() + CONVERGE;
        loop {
            if let Ok(r) = client.get(&url, None).await
                && r.status == 200
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("Envoy exited early ({status})\n{}", self.log_tail());
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the probe listener did not answer /ready with 200 within {CONVERGE:?}\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SocketEnvoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The control plane, serving one HTTP listener on `http_port` to the Gateway.
async fn control_plane(http_port: u16) -> (ControlPlane, u16) {
    let cache = SnapshotCache::new();
    let (control_plane, xds_port, _) = ControlPlane::start(cache.clone(), 0).await;
    let listener = Change::UpsertListener(sample::listener("http", http_port));
    cache.update(GATEWAY, &Translator::new().translate(vec![listener]));
    (control_plane, xds_port)
}

/// The bootstrap of a fleet's pod (admin on `socket`, probe listener on
/// `health`), but with a free loopback port in `admin_port`, to show it unused.
fn fleet_bootstrap(xds_port: u16, socket: &Path, health: u16) -> String {
    let mut config = BootstrapConfig::new("envoy-0", GATEWAY, "127.0.0.1", xds_port);
    config.admin_port = free_port();
    config.admin_socket = Some(socket.display().to_string());
    config.health_port = Some(health);
    let yaml = config.to_yaml();
    let admin = yaml
        .split_once("\nadmin:\n")
        .and_then(|(_, rest)| rest.lines().next())
        .unwrap_or_default();
    assert!(
        admin.contains("pipe:") && !admin.contains("socket_address"),
        "{yaml}"
    );
    assert!(
        !yaml.contains(&format!("port_value: {}", config.admin_port)),
        "{yaml}"
    );
    // The probe listener and the xDS server are the only TCP addresses.
    assert_eq!(yaml.matches("socket_address").count(), 2, "{yaml}");
    yaml
}

/// The TCP ports process `pid` listens on: its socket inodes, looked up in
/// the LISTEN rows of its network namespace's `/proc/net/tcp{,6}`.
fn listening_ports(pid: u32) -> BTreeSet<u16> {
    let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.flatten()
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .filter_map(|target| {
                    let target = target.to_string_lossy().into_owned();
                    Some(target.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    ["tcp", "tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).ok())
        .flat_map(|text| text.lines().skip(1).filter_map(listen_row).collect::<Vec<_>>())
        .filter(|(_, inode)| inodes.contains(inode))
        .map(|(port, _)| port)
        .collect()
}

/// The port and inode of a LISTEN row of `/proc/net/tcp` (state 0A).
fn listen_row(row: &str) -> Option<(u16, String)> {
    let fields: Vec<&str> = row.split_whitespace().collect();
    let local = fields.get(1)?;
    let state = fields.get(3)?;
    let inode = fields.get(9)?;
    if *state != "0A" {
        return None;
    }
    let port = u16::from_str_radix(local.rsplit_once(':')?.1, 16).ok()?;
    Some((port, (*inode).to_owned()))
}

/// GET `path` from the admin API over its Unix socket; the raw response.
async fn admin_over_socket(socket: &Path, path: &str) -> Result<String, String> {
    let exchange = async {
        let mut stream = tokio::net::UnixStream::connect(socket).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    match tokio::time::timeout(Duration::from_secs(5), exchange).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(e)) => Err(format!("{}: {e}", socket.display())),
        Err(_) => Err(format!("{}: no answer within 5s", socket.display())),
    }
}

#[tokio::test]
async fn the_fleets_admin_api_listens_on_a_socket_and_the_probe_listener_reaches_it() {
    let http_port = free_port();
    let health = free_port();
    let (_control_plane, xds_port) = control_plane(http_port).await;
    let dir = tempfile::Builder::new()
        .prefix("legate-admin-")
        .tempdir()
        .unwrap_or_else(|e| panic!("a temp dir: {e}"));
    let socket = dir.path().join("admin.sock");
    let config = dir.path().join("envoy.yaml");
    std::fs::write(&config, fleet_bootstrap(xds_port, &socket, health))
        .unwrap_or_else(|e| panic!("writing {}: {e}", config.display()));

    let mut envoy = SocketEnvoy::start(&config, "envoy-1");
    envoy.until_ready_through(health).await;

    // (b) The socket exists, for Envoy's user only, and is the admin API.
    assert_socket_is_the_admin_api(&socket, &envoy).await;
    // (c) Envoy listens on TCP for the probe listener and its one xDS
    // listener, on nothing else: no admin port.
    let ports = eventually("Envoy's HTTP listener to be bound", CONVERGE, || async {
        let ports = listening_ports(envoy.pid());
        ports.contains(&http_port).then_some(ports)
    })
    .await;
    assert_eq!(
        ports,
        BTreeSet::from([http_port, health]),
        "Envoy's TCP listeners\n{}",
        envoy.log_tail()
    );

    // A restarted container finds the dead Envoy's socket file in the
    // emptyDir, which outlives it: the new Envoy must take it over.
    drop(envoy);
    assert!(socket.exists(), "a killed Envoy leaves its socket file behind");
    let mut restarted = SocketEnvoy::start(&config, "envoy-2");
    restarted.until_ready_through(health).await;
    assert_socket_is_the_admin_api(&socket, &restarted).await;
}

/// The socket file is a socket with mode 0600, and the admin API answers on it.
async fn assert_socket_is_the_admin_api(socket: &Path, envoy: &SocketEnvoy) {
    let metadata = std::fs::metadata(socket)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", socket.display(), envoy.log_tail()));
    assert!(metadata.file_type().is_socket(), "{metadata:?}");
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600, "{metadata:?}");
    let ready = admin_over_socket(socket, "/ready")
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", envoy.log_tail()));
    assert!(
        ready.starts_with("HTTP/1.1 200") && ready.contains("LIVE"),
        "{ready}"
    );
}
