//! The operator run the way `manifests/` deploys it: the Deployment's own
//! arguments and environment, and the identity of its ServiceAccount (a
//! token from the TokenRequest API) instead of the admin's. Only what a pod
//! on this machine cannot have is changed: listen addresses move to free
//! ports on 127.0.0.1, Envoy listeners bind 127.0.0.1, and Envoys get no
//! fixed probe ports (they run on this machine, side by side).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::controlplane::ControlPlane;
use crate::http::HttpClient;
use crate::net::{free_port, loopback};

/// Writes a kubeconfig for ServiceAccount `namespace/name` of `control_plane`
/// into `dir`, with a token from the TokenRequest API (`kubectl create
/// token`), and returns its path.
pub fn service_account_kubeconfig(
    control_plane: &ControlPlane,
    namespace: &str,
    name: &str,
    dir: &Path,
) -> PathBuf {
    let token = control_plane.kubectl(&["create", "token", name, "-n", namespace, "--duration=2h"]);
    let admin = std::fs::read_to_string(control_plane.kubeconfig())
        .unwrap_or_else(|e| panic!("reading {}: {e}", control_plane.kubeconfig().display()));
    let admin: Value =
        serde_saphyr::from_str(&admin).unwrap_or_else(|e| panic!("the admin kubeconfig is not YAML: {e}"));
    let cluster = admin["clusters"][0]["cluster"].clone();
    assert!(
        cluster["server"].is_string(),
        "the admin kubeconfig names no server: {admin}"
    );
    let user = format!("system:serviceaccount:{namespace}:{name}");
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": "legate-test", "cluster": cluster }],
        "users": [{ "name": user, "user": { "token": token.trim() } }],
        "contexts": [{ "name": user, "context": { "cluster": "legate-test", "user": user, "namespace": namespace } }],
        "current-context": user,
    });
    let path = dir.join(format!("{namespace}-{name}.kubeconfig"));
    let yaml = serde_saphyr::to_string(&config).expect("a kubeconfig serializes");
    std::fs::write(&path, yaml).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path
}

/// A `legate` process started from a Deployment's container; stopped
/// (SIGTERM, then SIGKILL) on drop.
#[derive(Debug)]
pub struct DeployedOperator {
    child: Child,
    /// Where Envoys connect for xDS (the Deployment's `--xds-listen`, moved to loopback).
    pub xds: SocketAddr,
    /// `/healthz` and `/readyz`.
    pub health: SocketAddr,
    /// `/metrics`.
    pub metrics: SocketAddr,
    /// The command line it runs, for messages.
    pub args: Vec<String>,
    log: PathBuf,
}

impl DeployedOperator {
    /// Starts the first container of `deployment` (a Deployment as JSON) with
    /// `kubeconfig`, logging into `dir`, and waits for `/readyz`.
    pub async fn start(deployment: &Value, kubeconfig: &Path, dir: &Path) -> DeployedOperator {
        let binary = crate::operator::binary().unwrap_or_else(|e| panic!("{e}"));
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        let namespace = deployment["metadata"]["namespace"]
            .as_str()
            .unwrap_or("legate-system");
        let xds = loopback(free_port());
        let health = loopback(free_port());
        let metrics = loopback(free_port());

        // The downward API, as the kubelet would fill it in for a pod.
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        for var in container["env"].as_array().into_iter().flatten() {
            let name = var["name"].as_str().unwrap_or_default().to_string();
            let value = match (&var["value"], var["valueFrom"]["fieldRef"]["fieldPath"].as_str()) {
                (Value::String(v), _) => v.clone(),
                (_, Some("metadata.name")) => format!("legate-test-{}", std::process::id()),
                (_, Some("metadata.namespace")) => namespace.to_string(),
                (_, other) => panic!("the test cannot fill env var {name} from {other:?}"),
            };
            env.insert(name, value);
        }
        let moved: BTreeMap<&str, String> = [
            ("--xds-listen", xds.to_string()),
            ("--xds-advertise", xds.to_string()),
            ("--health-listen", health.to_string()),
            ("--metrics-listen", metrics.to_string()),
        ]
        .into();
        let mut args: Vec<String> = Vec::new();
        let mut container_args = container["args"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter();
        while let Some(arg) = container_args.next() {
            let arg = expand(arg.as_str().unwrap_or_default(), &env);
            match arg.split_once('=') {
                Some((flag, _)) if moved.contains_key(flag) => args.push(format!("{flag}={}", moved[flag])),
                None if moved.contains_key(arg.as_str()) => {
                    container_args.next();
                    args.push(format!("{arg}={}", moved[arg.as_str()]));
                }
                _ => args.push(arg),
            }
        }
        args.push(format!("--kubeconfig={}", kubeconfig.display()));
        args.push("--envoy-listen-address=127.0.0.1".to_string());

        let log = dir.join("legate.log");
        let log_file =
            std::fs::File::create(&log).unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
        let child = Command::new(&binary)
            .args(&args)
            .env_clear()
            .envs(&env)
            // Ports that the Deployment leaves to defaults move to loopback too.
            .env("LEGATE_HEALTH_LISTEN", health.to_string())
            .env("LEGATE_METRICS_LISTEN", metrics.to_string())
            .env("LEGATE_LOG_LEVEL", "info,legate=debug")
            // Envoys run on this machine, not in pods: no fixed probe and admin
            // ports, which would collide between tests.
            .env("LEGATE_ENVOY_PROBES", "false")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let mut operator = DeployedOperator {
            child,
            xds,
            health,
            metrics,
            args,
            log,
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
                    "legate {} exited ({status}) before it was ready\n{}",
                    operator.args.join(" "),
                    operator.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("legate was not ready within 30s\n{}", operator.log_text());
    }

    /// Everything it logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for DeployedOperator {
    fn drop(&mut self) {
        // A failing test shows what the operator said.
        if std::thread::panicking() {
            let log = self.log_text();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(60)..];
            eprintln!(
                "--- the last lines of {} ---\n{}",
                self.log.display(),
                tail.join("\n")
            );
        }
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
}

/// `$(VAR)` references, expanded as the kubelet does for container args
/// (an unknown variable stays as written).
pub fn expand(arg: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = arg;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find(')') {
            Some(end) if env.contains_key(&after[..end]) => {
                out.push_str(&env[&after[..end]]);
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("$(");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_fills_known_variables_and_keeps_unknown_ones() {
        let env: BTreeMap<String, String> =
            [("POD_NAMESPACE".to_string(), "legate-system".to_string())].into();
        assert_eq!(
            expand("--xds-advertise=legate-xds.$(POD_NAMESPACE).svc:18000", &env),
            "--xds-advertise=legate-xds.legate-system.svc:18000"
        );
        assert_eq!(expand("$(NOPE)/$(POD_NAMESPACE)", &env), "$(NOPE)/legate-system");
        assert_eq!(expand("plain", &env), "plain");
    }
}
