//! The `legate` operator as a real process against the test control plane,
//! and the Envoys that stand in for a Gateway's pods.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;

use crate::controlplane::ControlPlane;
use crate::envoy::Envoy;
use crate::http::HttpClient;
use crate::net::{eventually, free_port, loopback};
use crate::workspace;

/// The `legate` binary that `make test` builds before the tests run.
pub fn binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("LEGATE_BIN") {
        return Ok(PathBuf::from(path));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace::root().join("target"));
    let path = target.join("debug").join("legate");
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} does not exist; build it with `cargo build -p legate-operator` (make test does)",
            path.display()
        ))
    }
}

/// The operator shared by the tests of one binary (each test isolates itself
/// with its own namespace and Gateway); it lives as long as the binary.
#[derive(Debug)]
pub struct SharedOperator {
    pub xds: SocketAddr,
    pub health: SocketAddr,
    /// `/metrics`.
    pub metrics: SocketAddr,
    pub log: PathBuf,
}

static SHARED: std::sync::OnceLock<Result<SharedOperator, String>> = std::sync::OnceLock::new();

impl SharedOperator {
    /// Starts the binary's operator on first use.
    pub fn get(control_plane: &ControlPlane) -> &'static SharedOperator {
        match SHARED.get_or_init(|| start_shared(control_plane)) {
            Ok(op) => op,
            Err(e) => panic!("the shared operator did not start: {e}"),
        }
    }

    pub fn log_tail(&self) -> String {
        tail(&self.log, 60)
    }
}

fn start_shared(control_plane: &ControlPlane) -> Result<SharedOperator, String> {
    let binary = binary()?;
    ensure_operator_namespace(control_plane);
    let log = std::env::temp_dir().join(format!("legate-operator-{}.log", std::process::id()));
    let log_file = std::fs::File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
    let xds = loopback(free_port());
    let health = loopback(free_port());
    let metrics = loopback(free_port());
    let mut command = operator_command(&binary, control_plane, xds, xds, health, metrics);
    command.stderr(log_file);
    die_with_parent(&mut command);
    // The parent-death signal fires when the spawning *thread* ends, so the
    // operator is spawned from a thread that lives as long as the process.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let child = command.spawn();
        let failed = child.as_ref().err().map(|e| e.to_string());
        let _ = tx.send(failed);
        let _keep = child;
        loop {
            std::thread::park();
        }
    });
    if let Ok(Some(e)) = rx.recv() {
        return Err(format!("starting {}: {e}", binary.display()));
    }
    for _ in 0..300 {
        if ready_blocking(health) {
            return Ok(SharedOperator {
                xds,
                health,
                metrics,
                log,
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("legate was not ready within 30s\n{}", tail(&log, 40)))
}

fn operator_command(
    binary: &std::path::Path,
    control_plane: &ControlPlane,
    xds: SocketAddr,
    advertise: SocketAddr,
    health: SocketAddr,
    metrics: SocketAddr,
) -> Command {
    let mut command = Command::new(binary);
    command
        .arg("run")
        .arg("--kubeconfig")
        .arg(control_plane.kubeconfig())
        .arg("--xds-listen")
        .arg(xds.to_string())
        .arg("--xds-advertise")
        .arg(advertise.to_string())
        .arg("--health-listen")
        .arg(health.to_string())
        .arg("--metrics-listen")
        .arg(metrics.to_string())
        .arg("--envoy-listen-address")
        .arg("127.0.0.1")
        // Envoys run on this machine, many at once: no fixed probe or admin ports.
        .arg("--envoy-probes=false")
        .args(["--log-level", "info,legate=debug"])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    command
}

/// GET /readyz with std only (no runtime needed).
fn ready_blocking(health: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&health, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream
        .write_all(b"GET /readyz HTTP/1.0\r\nHost: legate\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200")
}

fn tail(path: &std::path::Path, n: usize) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    let start = lines.len().saturating_sub(n);
    format!(
        "--- last lines of {} ---\n{}",
        path.display(),
        lines[start..].join("\n")
    )
}

/// Has the kernel kill the operator if the test binary dies.
#[allow(unsafe_code)]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and only makes one
    // async-signal-safe system call (prctl).
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(std::io::Error::from)
        });
    }
}

/// A running operator; stopped (SIGTERM, then SIGKILL) on drop.
#[derive(Debug)]
pub struct Operator {
    child: Child,
    /// Where Envoys connect for xDS.
    pub xds: SocketAddr,
    /// `/healthz` and `/readyz`.
    pub health: SocketAddr,
    /// `/metrics`.
    pub metrics: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Operator {
    /// Starts `legate run` with fleets managed, Envoy listeners on 127.0.0.1,
    /// and waits for `/readyz`.
    pub async fn start(control_plane: &ControlPlane) -> Operator {
        Operator::start_on(control_plane, free_port()).await
    }

    /// Starts with a given xDS port (a restarted operator keeps its address).
    pub async fn start_on(control_plane: &ControlPlane, xds_port: u16) -> Operator {
        Operator::start_with(control_plane, xds_port, None, &[]).await
    }

    /// Starts with a given xDS port, the xDS address to advertise in
    /// bootstraps (default: its own), and extra `legate run` arguments.
    pub async fn start_with(
        control_plane: &ControlPlane,
        xds_port: u16,
        advertise: Option<SocketAddr>,
        extra: &[&str],
    ) -> Operator {
        let binary = binary().unwrap_or_else(|e| panic!("{e}"));
        ensure_operator_namespace(control_plane);
        let dir = tempfile::Builder::new()
            .prefix("legate-operator-")
            .tempdir()
            .expect("a temp dir");
        let log = dir.path().join("legate.log");
        let log_file = std::fs::File::create(&log).expect("a log file");
        let xds = loopback(xds_port);
        let health = loopback(free_port());
        let metrics = loopback(free_port());
        let mut command = operator_command(
            &binary,
            control_plane,
            xds,
            advertise.unwrap_or(xds),
            health,
            metrics,
        );
        let child = command
            .args(extra)
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let mut operator = Operator {
            child,
            xds,
            health,
            metrics,
            log,
            _dir: dir,
        };
        let url = format!("http://{health}/readyz");
        let client = HttpClient::http1();
        for _ in 0..300 {
            if let Ok(r) = client.get(&url, None).await
                && r.status.is_success()
            {
                return operator;
            }
            if let Ok(Some(status)) = operator.child.try_wait() {
                panic!(
                    "legate exited ({status}) before it was ready\n{}",
                    operator.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("legate was not ready within 30s\n{}", operator.log_tail());
    }

    /// Kills it without warning (SIGKILL), as a crashed node would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops it the way Kubernetes does (SIGTERM) and waits.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
        }
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_tail(&self) -> String {
        tail(&self.log, 40)
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Starts a local Envoy in place of a Gateway pod, with the bootstrap the
/// operator wrote into the Gateway's ConfigMap.
pub async fn envoy_for_gateway(client: &kube::Client, namespace: &str, gateway: &str, node: &str) -> Envoy {
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let name = format!("{gateway}-envoy");
    let bootstrap = eventually(
        &format!("ConfigMap {namespace}/{name} with the bootstrap"),
        Duration::from_secs(20),
        || {
            let configmaps = configmaps.clone();
            let name = name.clone();
            async move { configmaps.get(&name).await.ok()?.data?.get("envoy.yaml").cloned() }
        },
    )
    .await;
    // With xDS over mTLS, the Envoy needs the client certificate the operator
    // issued for its Gateway, where the bootstrap says it is mounted in a pod.
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), namespace);
    if bootstrap.contains(XDS_TLS_DIR) {
        let secret_name = format!("{gateway}-envoy-xds");
        let data = eventually(
            &format!("Secret {namespace}/{secret_name}"),
            Duration::from_secs(20),
            || {
                let secrets = secrets.clone();
                let secret_name = secret_name.clone();
                async move { secrets.get(&secret_name).await.ok()?.data }
            },
        )
        .await;
        let dir = tempfile::Builder::new()
            .prefix("legate-xds-tls-")
            .tempdir()
            .expect("a temp dir");
        for key in ["tls.crt", "tls.key", "ca.crt"] {
            let bytes = data.get(key).map(|b| b.0.clone()).unwrap_or_default();
            std::fs::write(dir.path().join(key), bytes).expect("writing a certificate file");
        }
        let bootstrap = bootstrap.replace(XDS_TLS_DIR, &dir.path().display().to_string());
        let mut envoy = Envoy::start_with_args(&bootstrap, &["--service-node", node]).await;
        envoy.keep(dir);
        return envoy;
    }
    Envoy::start_with_args(&bootstrap, &["--service-node", node]).await
}

/// Where the operator's bootstraps expect the xDS client certificate.
pub const XDS_TLS_DIR: &str = "/etc/envoy/xds-tls";

/// The operator keeps its CA in its own namespace; make sure it exists.
fn ensure_operator_namespace(control_plane: &ControlPlane) {
    let _ = control_plane
        .kubectl_command(&["create", "namespace", "legate-system"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
