//! The set-up scripts behave as the README promises: up.sh and down.sh manage
//! a control plane by themselves, and a missing tool is named, never skipped.

use std::path::Path;
use std::process::Command;

use legate_tests::workspace;

fn run(cmd: &mut Command) -> std::process::Output {
    cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

fn alive(pid: &str) -> bool {
    // A zombie has exited; only its parent has yet to reap it.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| stat.split_whitespace().nth(2) != Some("Z"))
        .unwrap_or(false)
}

#[test]
fn up_starts_a_working_control_plane_and_down_stops_every_process() {
    let scripts = workspace::controlplane_dir();
    let parent = tempfile::tempdir().expect("a temp dir");
    let dir = parent.path().join("cp");

    let up = run(Command::new(scripts.join("up.sh")).arg(&dir));
    assert!(
        up.status.success(),
        "up.sh failed:\n{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let pids: Vec<String> = ["etcd", "kube-apiserver", "kube-controller-manager"]
        .iter()
        .map(|name| {
            std::fs::read_to_string(dir.join("pids").join(format!("{name}.pid")))
                .unwrap_or_else(|e| panic!("up.sh wrote no pid file for {name}: {e}"))
                .trim()
                .to_string()
        })
        .collect();
    assert!(
        pids.iter().all(|p| alive(p)),
        "every process up.sh started is running"
    );

    let env = std::fs::read_to_string(dir.join("env")).expect("up.sh writes DIR/env");
    let bin = env
        .lines()
        .find_map(|l| l.strip_prefix("LEGATE_K8S_BIN="))
        .expect("DIR/env names the binaries");
    let kubectl = |args: &[&str]| {
        let out = run(Command::new(Path::new(bin).join("kubectl"))
            .arg("--kubeconfig")
            .arg(dir.join("kubeconfig"))
            .args(args));
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let version = kubectl(&["version"]);
    assert!(
        version.contains("Server Version: v1.37.2"),
        "kubectl version said:\n{version}"
    );
    assert_eq!(kubectl(&["get", "--raw", "/readyz"]).trim(), "ok");

    kubectl(&["create", "deployment", "web", "--image=example.invalid/web:1"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let owners = kubectl(&[
            "get",
            "replicasets",
            "-o",
            "jsonpath={.items[*].metadata.ownerReferences[*].name}",
        ]);
        if owners.split_whitespace().any(|o| o == "web") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no ReplicaSet for Deployment web within 30s"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    let down = run(Command::new(scripts.join("down.sh")).arg(&dir));
    assert!(
        down.status.success(),
        "down.sh failed:\n{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let survivors: Vec<&String> = pids.iter().filter(|p| alive(p)).collect();
    assert!(survivors.is_empty(), "down.sh left pids {survivors:?} running");
    assert!(!dir.exists(), "down.sh removes the state directory");
}

#[test]
fn preflight_names_a_missing_go() {
    // A PATH with the basic system tools but without Go (which lives elsewhere).
    let out = run(Command::new("/bin/bash")
        .arg(workspace::root().join("scripts/preflight.sh"))
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"));
    assert!(!out.status.success(), "preflight must fail when Go is missing");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if Path::new("/usr/bin/go").exists() {
        panic!("this check needs Go outside /usr/bin; found /usr/bin/go");
    }
    assert!(stderr.contains("'go' is missing"), "preflight said:\n{stderr}");
    assert!(
        stderr.contains("go.dev"),
        "preflight says where to get Go:\n{stderr}"
    );
}

#[test]
fn a_missing_envoy_is_named_with_the_command_that_installs_it() {
    let empty = tempfile::tempdir().expect("a temp dir");
    let err = legate_tests::envoy::find_binary(None, empty.path()).expect_err("no Envoy in an empty venv");
    assert!(
        err.contains("make envoy"),
        "the error says how to install Envoy: {err}"
    );
    let err = legate_tests::envoy::find_binary(Some(empty.path().join("nope")), empty.path())
        .expect_err("a LEGATE_ENVOY that does not exist");
    assert!(err.contains("LEGATE_ENVOY"), "{err}");
}

#[test]
fn stack_up_runs_the_whole_stack_and_down_removes_it() {
    let parent = tempfile::tempdir().expect("a temp dir");
    let dir = parent.path().join("stack");
    let stack = workspace::root().join("tests/stack.sh");
    let up = run(Command::new(&stack).arg("up").arg(&dir));
    assert!(
        up.status.success(),
        "stack.sh up failed:\n{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let env = std::fs::read_to_string(dir.join("env")).expect("stack.sh writes DIR/env");
    let var = |name: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("DIR/env lacks {name}:\n{env}"))
            .to_string()
    };
    assert_eq!(var("LEGATE_GATEWAY"), "legate-system/default");
    let kubectl = Path::new(&var("LEGATE_K8S_BIN")).join("kubectl");
    let programmed = run(Command::new(&kubectl)
        .args([
            "--kubeconfig",
            &var("KUBECONFIG"),
            "wait",
            "--for=condition=Programmed",
            "gateway/default",
        ])
        .args(["-n", "legate-system", "--timeout=30s"]));
    assert!(
        programmed.status.success(),
        "the Gateway is Programmed: {}",
        String::from_utf8_lossy(&programmed.stderr)
    );
    // Envoy answers on the Gateway's http listener (404: no route yet).
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(var("LEGATE_HTTP")).expect("Envoy listens on LEGATE_HTTP");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.0 404") || answer.starts_with("HTTP/1.1 404"),
        "{answer}"
    );
    // It was Envoy's listener that answered: its admin counted the 404.
    let mut admin = std::net::TcpStream::connect(var("LEGATE_ENVOY_ADMIN")).expect("Envoy's admin listens");
    admin
        .write_all(
            b"GET /stats?filter=downstream_rq_4xx HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n",
        )
        .expect("write");
    let mut stats = String::new();
    let _ = admin.read_to_string(&mut stats);
    assert!(stats.contains("http.http.downstream_rq_4xx: 1"), "{stats}");

    let pids: Vec<String> = ["envoy", "legate"]
        .iter()
        .map(|n| {
            std::fs::read_to_string(dir.join("run").join(format!("{n}.pid")))
                .expect("a pid file")
                .trim()
                .to_string()
        })
        .collect();
    let down = run(Command::new(&stack).arg("down").arg(&dir));
    assert!(
        down.status.success(),
        "stack.sh down failed:\n{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(
        pids.iter().all(|p| !alive(p)),
        "stack.sh down stops the operator and Envoy"
    );
    assert!(!dir.exists(), "stack.sh down removes DIR");
}
