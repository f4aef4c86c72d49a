//! One real Kubernetes control plane per test binary, and a namespace per test;
//! a test that must not share its API server gets a control plane of its own.
//!
//! A control plane is started with `tests/controlplane/up.sh` (which builds or
//! reuses the cached binaries), the shared one the first time a test asks for
//! it. A watchdog process runs `down.sh` when the test binary exits, however it
//! exits, so no etcd or API server outlives the tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use crate::workspace;

/// A running control plane: where its kubeconfig and binaries are.
#[derive(Debug)]
pub struct ControlPlane {
    dir: PathBuf,
    bin_dir: PathBuf,
}

static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

impl ControlPlane {
    /// The control plane of this test binary, started on first use.
    ///
    /// Panics with up.sh's explanation when it cannot start (for example when
    /// Go is missing); every test that needs Kubernetes then fails, loudly.
    pub fn shared() -> &'static ControlPlane {
        match SHARED.get_or_init(start_for_this_process) {
            Ok(cp) => cp,
            Err(why) => panic!("the test control plane is not available: {why}"),
        }
    }

    /// A control plane for the calling test alone, stopped when the returned
    /// guard drops: for a test whose operator watches every namespace, which
    /// would otherwise act on (and be disturbed by) the other tests' objects.
    ///
    /// Panics with up.sh's explanation when it cannot start.
    pub fn own() -> OwnControlPlane {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("legate-cp-{}-own{n}", std::process::id()));
        match start(dir) {
            // TestEnv and Stage hold a `&'static ControlPlane`; leaking these
            // two paths is the price, the processes stop with the guard.
            Ok(cp) => OwnControlPlane {
                control_plane: Box::leak(Box::new(cp)),
            },
            Err(why) => panic!("the test's own control plane is not available: {why}"),
        }
    }

    /// The admin kubeconfig (system:masters).
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// Where kubectl, kube-apiserver, kube-controller-manager and etcd are.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// An admin client. Each test makes its own: a client is bound to the tokio
    /// runtime that created it, and every `#[tokio::test]` has its own runtime.
    pub async fn client(&self) -> Client {
        let kubeconfig = Kubeconfig::read_from(self.kubeconfig())
            .unwrap_or_else(|e| panic!("reading {}: {e}", self.kubeconfig().display()));
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap_or_else(|e| panic!("loading {}: {e}", self.kubeconfig().display()));
        Client::try_from(config).unwrap_or_else(|e| panic!("building a kube client: {e}"))
    }

    /// Runs kubectl against this control plane and returns its stdout; panics
    /// with stderr when it fails.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let output = self
            .kubectl_command(args)
            .output()
            .unwrap_or_else(|e| panic!("running kubectl: {e}"));
        if !output.status.success() {
            panic!(
                "kubectl {} failed ({}):\n{}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// A kubectl command for this control plane, for tests that inspect failures.
    ///
    /// Each command gets a discovery cache of its own: tests of one binary run
    /// in parallel, and a cache written before another test installed the
    /// CRDs would make `kubectl get legate` say the type does not exist.
    pub fn kubectl_command(&self, args: &[&str]) -> Command {
        static CALLS: AtomicU64 = AtomicU64::new(0);
        let call = CALLS.fetch_add(1, Ordering::Relaxed);
        let mut cmd = Command::new(self.bin_dir.join("kubectl"));
        cmd.arg("--kubeconfig")
            .arg(self.kubeconfig())
            .arg("--cache-dir")
            .arg(self.dir.join(format!("kubectl-cache-{call}")))
            .args(args);
        cmd
    }
}

impl ControlPlane {
    /// The pid that `pids/<name>.pid` names, if that process still runs.
    fn running_pid(&self, name: &str) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.dir.join("pids").join(format!("{name}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Not a zombie: `pid (comm) Z ...`.
        let state = stat.rsplit(')').next()?.split_whitespace().next()?;
        (state != "Z").then_some(pid)
    }

    /// The etcd client URL the API server uses (for tests that compact
    /// etcd), from etcd's command line.
    pub fn etcd_url(&self) -> String {
        let pid = self
            .running_pid("etcd")
            .unwrap_or_else(|| panic!("no etcd runs in {}", self.dir.display()));
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .unwrap_or_else(|e| panic!("reading etcd's command line: {e}"));
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        args.iter()
            .position(|a| a == "--advertise-client-urls")
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| panic!("etcd's command line names no --advertise-client-urls: {args:?}"))
    }

    /// Compacts etcd to its current revision (physically: the old revisions
    /// are gone, a watch or read at one of them fails) through etcd's
    /// HTTP/JSON gateway, and returns that revision. Only etcd is involved:
    /// it works while the API server is stopped.
    pub async fn compact_etcd(&self) -> i64 {
        let etcd = self.etcd_url();
        let post = |path: &str, body: serde_json::Value| {
            let request = hyper::Request::post(format!("{etcd}{path}"))
                .header("content-type", "application/json")
                .body(http_body_util::Full::new(bytes::Bytes::from(body.to_string())))
                .expect("a POST of JSON builds");
            async move {
                let response = crate::http::HttpClient::http1()
                    .send(request)
                    .await
                    .unwrap_or_else(|e| panic!("etcd: {e}"));
                // Compacting to a revision that already is the compacted one
                // (nothing was written since) leaves etcd as asked.
                let already = response.text().contains("required revision has been compacted");
                assert!(
                    response.status.is_success() || already,
                    "etcd answered {}: {}",
                    response.status,
                    response.text()
                );
                serde_json::from_slice::<serde_json::Value>(&response.body)
                    .unwrap_or_else(|e| panic!("etcd answered no JSON ({e}): {}", response.text()))
            }
        };
        // Any read says the current revision in its header ("Zm9v" is "foo").
        let range = post("/v3/kv/range", serde_json::json!({ "key": "Zm9v" })).await;
        let revision: i64 = range["header"]["revision"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .unwrap_or_else(|| panic!("etcd's range answer has no header.revision: {range}"));
        post(
            "/v3/kv/compaction",
            serde_json::json!({ "revision": revision.to_string(), "physical": true }),
        )
        .await;
        revision
    }
}

/// A control plane that [`ControlPlane::own`] started; `down.sh` on drop.
#[derive(Debug)]
pub struct OwnControlPlane {
    control_plane: &'static ControlPlane,
}

impl OwnControlPlane {
    pub fn get(&self) -> &'static ControlPlane {
        self.control_plane
    }
}

/// An API server that [`OwnControlPlane::stop_api_server`] stopped: its
/// command line, to start it again the same way.
#[derive(Debug)]
pub struct StoppedApiServer {
    args: Vec<String>,
}

impl OwnControlPlane {
    /// Stops the API server at once (SIGKILL, as a crashed or evicted one:
    /// on SIGTERM it drains its watches for longer than a test should wait)
    /// and waits until it has exited; etcd and the controller manager keep
    /// running, and etcd keeps its data. Only on a control plane of the
    /// test's own: the other tests of the binary share theirs.
    pub async fn stop_api_server(&self) -> StoppedApiServer {
        let cp = self.control_plane;
        let pid = cp
            .running_pid("kube-apiserver")
            .unwrap_or_else(|| panic!("no kube-apiserver runs in {}", cp.dir.display()));
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .unwrap_or_else(|e| panic!("reading the API server's command line: {e}"));
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let pid = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        while cp.running_pid("kube-apiserver").is_some() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        StoppedApiServer { args }
    }

    /// Starts the API server again with the command line it had, on the same
    /// port and etcd, appending to its log, and returns once `/readyz`
    /// answers (panics after 90 s). down.sh stops the new process.
    pub async fn start_api_server(&self, stopped: StoppedApiServer) {
        let cp = self.control_plane;
        let log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(cp.dir.join("logs").join("kube-apiserver.log"))
            .unwrap_or_else(|e| panic!("opening the API server's log: {e}"));
        let (program, args) = stopped
            .args
            .split_first()
            .expect("a command line starts with its program");
        // Its own session, as up.sh starts it: a signal to the test's process
        // group does not reach it; down.sh (on drop, or the watchdog) stops it.
        let child = Command::new("setsid")
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .unwrap_or_else(|e| panic!("the API server's log: {e}")),
            )
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {program}: {e}"));
        // setsid execs in place (it is not a process group leader), so the pid is the API server's.
        std::fs::write(
            cp.dir.join("pids").join("kube-apiserver.pid"),
            format!("{}\n", child.id()),
        )
        .unwrap_or_else(|e| panic!("writing the API server's pid file: {e}"));
        // Not waited for: once stopped it stays a zombie until the test
        // binary exits, which `running_pid` and down.sh count as stopped.
        drop(child);
        let client = cp.client().await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
        loop {
            let readyz = hyper::Request::get("/readyz")
                .body(Vec::new())
                .expect("a GET of a constant path builds");
            if client.request_text(readyz).await.is_ok_and(|body| body == "ok") {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the API server was not ready within 90 s of its restart; see {}",
                cp.dir.join("logs").join("kube-apiserver.log").display()
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

impl Drop for OwnControlPlane {
    fn drop(&mut self) {
        let _ = Command::new(workspace::controlplane_dir().join("down.sh"))
            .arg(&self.control_plane.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn start_for_this_process() -> Result<ControlPlane, String> {
    start(std::env::temp_dir().join(format!("legate-cp-{}", std::process::id())))
}

/// Starts a control plane in `dir`, which is named `legate-cp-<this pid>…` so
/// that a later test binary can tell when it was abandoned.
fn start(dir: PathBuf) -> Result<ControlPlane, String> {
    let scripts = workspace::controlplane_dir();
    let pid = std::process::id();
    stop_abandoned_control_planes(&scripts);

    let status = Command::new(scripts.join("up.sh"))
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("could not run {}: {e}", scripts.join("up.sh").display()))?;
    // Whatever happened, make sure down.sh runs once this process is gone.
    spawn_watchdog(&scripts, &dir, pid)?;
    if !status.success() {
        return Err(format!(
            "{} {} failed ({status}); its output above says why",
            scripts.join("up.sh").display(),
            dir.display()
        ));
    }
    let env = std::fs::read_to_string(dir.join("env"))
        .map_err(|e| format!("up.sh did not write {}/env: {e}", dir.display()))?;
    let bin_dir = env
        .lines()
        .find_map(|l| l.strip_prefix("LEGATE_K8S_BIN="))
        .map(PathBuf::from)
        .ok_or_else(|| format!("{}/env names no LEGATE_K8S_BIN", dir.display()))?;
    Ok(ControlPlane { dir, bin_dir })
}

/// A detached shell that waits for `pid` to exit, then runs down.sh. Statics
/// are never dropped in Rust, and a test binary may be killed, so teardown
/// cannot live in a destructor.
fn spawn_watchdog(scripts: &Path, dir: &Path, pid: u32) -> Result<(), String> {
    let script = "while kill -0 \"$0\" 2>/dev/null; do sleep 0.5; done; exec \"$1\" \"$2\"";
    Command::new("setsid")
        .args(["sh", "-c", script])
        .arg(pid.to_string())
        .arg(scripts.join("down.sh"))
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(|_| ())
        .map_err(|e| format!("could not start the control plane watchdog (setsid): {e}"))
}

/// Control planes left by test binaries that died before their watchdog ran
/// (for example when the machine was reset).
fn stop_abandoned_control_planes(scripts: &Path) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // `legate-cp-<pid>` or, for a test's own, `legate-cp-<pid>-own<n>`.
        let Some(owner) = name
            .strip_prefix("legate-cp-")
            .and_then(|p| p.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{owner}")).exists() {
            let _ = Command::new(scripts.join("down.sh"))
                .arg(entry.path())
                .stdout(Stdio::null())
                .status();
        }
    }
}

/// What one test works with: a client and a namespace of its own.
pub struct TestEnv {
    pub control_plane: &'static ControlPlane,
    pub client: Client,
    pub namespace: String,
}

impl std::fmt::Debug for TestEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEnv")
            .field("control_plane", self.control_plane)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl TestEnv {
    /// Starts (or joins) the control plane and creates a fresh namespace named
    /// after the running test.
    pub async fn new() -> TestEnv {
        TestEnv::on(ControlPlane::shared()).await
    }

    /// A fresh namespace named after the running test on `control_plane`.
    pub async fn on(control_plane: &'static ControlPlane) -> TestEnv {
        let client = control_plane.client().await;
        let namespace = unique_namespace_name();
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(namespace.clone()),
                labels: Some([("legate.dev/test".to_string(), "true".to_string())].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("creating test namespace {namespace}: {e}"));
        TestEnv {
            control_plane,
            client,
            namespace,
        }
    }

    /// A typed API for namespaced objects in this test's namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }
}

impl Drop for TestEnv {
    /// Deletes the namespace (without waiting): the tests of a binary share
    /// its control plane and operator, and the operator's work on every
    /// change grows with the Gateways it knows, so a finished test's objects
    /// must not stay.
    fn drop(&mut self) {
        let _ = self
            .control_plane
            .kubectl_command(&["delete", "namespace", &self.namespace, "--wait=false"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// `<test name>-<n>`, a valid DNS label. libtest names each test's thread
/// after the test, which makes namespaces easy to trace back.
fn unique_namespace_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("test");
    let test = test.rsplit("::").next().unwrap_or(test);
    let mut label: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    label.truncate(50);
    let label = label.trim_matches('-');
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{label}-{:x}{n}", std::process::id())
}
