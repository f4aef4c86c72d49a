//! Uninstalling the way the README says, `scripts/uninstall.sh` (`make
//! uninstall`), from a cluster full of Legate objects, with the operator
//! running and with the operator gone: the script succeeds, and no Legate
//! object, CRD or namespace is left, nor anything stuck in Terminating. Each
//! test has a control plane of its own: deleting the CRDs would pull them
//! from under every other test of this binary.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use legate_tests::api::apply;
use legate_tests::deployed::{DeployedOperator, service_account_kubeconfig};
use legate_tests::net::{eventually, free_port};
use legate_tests::stage::PATIENCE;
use legate_tests::{ControlPlane, TestEnv};
use serde_json::{Value, json};

use super::{certificate, install_manifests, manifests, root};

const CRDS: [&str; 6] = [
    "gateways.legate.dev",
    "mappings.legate.dev",
    "tlscontexts.legate.dev",
    "authservices.legate.dev",
    "ratelimitservices.legate.dev",
    "tcpmappings.legate.dev",
];

/// Another controller's finalizer, on one Mapping of the second test.
const FOREIGN_FINALIZER: &str = "example.com/audit";

/// A cluster with Legate installed from the manifests, the operator running
/// as its ServiceAccount, and 20 Legate objects of every kind in two
/// namespaces, each holding its finalizer or conditions; with `foreign`, the
/// Mapping `team-0` also holds [`FOREIGN_FINALIZER`].
struct Installed {
    platform: TestEnv,
    team: TestEnv,
    operator: DeployedOperator,
    dir: tempfile::TempDir,
}

async fn install_with_objects(control_plane: &'static ControlPlane, foreign: bool) -> Installed {
    let started = Instant::now();
    install_manifests(control_plane);
    let dir = tempfile::tempdir().expect("a temp dir");
    let kubeconfig = service_account_kubeconfig(control_plane, "legate-system", "legate", dir.path());
    let deployment = manifests()
        .one("Deployment")
        .cloned()
        .unwrap_or_else(|e| panic!("{e}"));
    let operator = DeployedOperator::start(&deployment, &kubeconfig, dir.path()).await;
    let platform = TestEnv::on(control_plane).await;
    let team = TestEnv::on(control_plane).await;
    let (a, b) = (platform.namespace.as_str(), team.namespace.as_str());

    let (cert, key) = certificate(dir.path(), "shop.example.com");
    control_plane.kubectl(&[
        "create",
        "secret",
        "tls",
        "shop-tls",
        "-n",
        a,
        "--cert",
        cert.to_str().expect("UTF-8"),
        "--key",
        key.to_str().expect("UTF-8"),
    ]);
    let edge = json!({ "name": "edge", "namespace": a });
    let (db, cache) = (free_port(), free_port());
    let mut objects: Vec<(&str, Value)> = vec![
        (
            a,
            json!({
                "kind": "Gateway", "metadata": { "name": "edge" },
                "spec": {
                    "serviceType": "ClusterIP", "replicas": 1,
                    "listeners": [
                        { "name": "http", "port": free_port(), "protocol": "HTTP" },
                        { "name": "db", "port": db, "protocol": "TCP" },
                        { "name": "cache", "port": cache, "protocol": "TCP" },
                    ],
                    "allowedRoutes": { "namespaces": { "from": "All" } },
                }
            }),
        ),
        (
            a,
            json!({
                "kind": "TLSContext", "metadata": { "name": "shop" },
                "spec": { "hosts": ["shop.example.com"], "secret": "shop-tls" }
            }),
        ),
        (
            a,
            json!({
                "kind": "AuthService", "metadata": { "name": "auth" },
                "spec": { "service": "auth:3000", "protocol": "HTTP", "gateways": [edge] }
            }),
        ),
        (
            a,
            json!({
                "kind": "RateLimitService", "metadata": { "name": "ratelimit" },
                "spec": { "service": "ratelimit:8081", "domain": "legate" }
            }),
        ),
        (
            a,
            json!({
                "kind": "TCPMapping", "metadata": { "name": "db" },
                "spec": { "port": db, "service": "postgres:5432", "gateways": [edge] }
            }),
        ),
        (
            b,
            json!({
                "kind": "TCPMapping", "metadata": { "name": "cache" },
                "spec": { "port": cache, "service": "redis:6379", "gateways": [edge] }
            }),
        ),
    ];
    for i in 0..7 {
        let mut spec = json!({ "prefix": format!("/shop-{i}/"), "service": "quote", "gateways": [edge] });
        if i % 2 == 0 {
            spec["hostname"] = json!("shop.example.com");
        }
        if i % 3 == 0 {
            spec["timeout"] = json!("5s");
        }
        objects.push((
            a,
            json!({ "kind": "Mapping", "metadata": { "name": format!("shop-{i}") }, "spec": spec }),
        ));
    }
    for i in 0..7 {
        let mut spec = json!({ "prefix": format!("/team-{i}/"), "service": "api:8080", "gateways": [edge] });
        if i % 2 == 1 {
            spec["hostname"] = json!("team.example.com");
            spec["rewrite"] = json!("/v1/");
        }
        let mut metadata = json!({ "name": format!("team-{i}") });
        if foreign && i == 0 {
            // Uninstalling leaves other controllers' finalizers to them.
            metadata["finalizers"] = json!([FOREIGN_FINALIZER]);
        }
        objects.push((
            b,
            json!({ "kind": "Mapping", "metadata": metadata, "spec": spec }),
        ));
    }
    assert_eq!(objects.len(), 20);
    for (namespace, mut object) in objects {
        object["apiVersion"] = json!("legate.dev/v1alpha1");
        apply(&platform.client, namespace, &object)
            .await
            .unwrap_or_else(|e| panic!("{object} was refused: {e}"));
    }

    // Every object was judged (it has conditions), and every route holds
    // the operator's finalizer: what plain `kubectl delete -k` gets stuck on.
    eventually("20 objects with conditions, routes with legate.dev/routes", PATIENCE, || async {
        let listed = control_plane.kubectl(&[
            "get",
            "legate",
            "-A",
            "-o",
            "jsonpath={range .items[*]}{.kind} {.metadata.name} {.metadata.finalizers} {.status.conditions[*].type}{\"\\n\"}{end}",
        ]);
        let lines: Vec<&str> = listed.lines().filter(|l| !l.is_empty()).collect();
        let ready = lines.len() == 20
            && lines.iter().all(|l| {
                let routes = l.starts_with("Mapping ") || l.starts_with("TCPMapping ");
                l.contains("Accepted") && (!routes || l.contains("legate.dev/routes"))
            });
        ready.then_some(())
    })
    .await;
    eprintln!("installed with 20 objects in {:?}", started.elapsed());
    Installed {
        platform,
        team,
        operator,
        dir,
    }
}

/// `scripts/uninstall.sh` against `control_plane`, as a user runs it: kubectl
/// from $KUBECTL, the cluster from $KUBECONFIG.
fn uninstall(control_plane: &ControlPlane, dir: &Path) -> Command {
    let mut command = Command::new(root().join("scripts/uninstall.sh"));
    command
        .env("KUBECONFIG", control_plane.kubeconfig())
        .env("KUBECTL", control_plane.bin_dir().join("kubectl"))
        .env("KUBECACHEDIR", dir.join("kubectl-cache"))
        // Bounded, so that a stuck uninstall fails the test instead of hanging it.
        .env("LEGATE_UNINSTALL_TIMEOUT", "60")
        .stdin(Stdio::null());
    command
}

fn report(output: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Nothing of Legate is left and nothing is stuck in Terminating.
async fn assert_uninstalled(control_plane: &ControlPlane, output: &Output) {
    let crds = control_plane.kubectl(&["get", "crd", "-o", "name"]);
    for crd in CRDS {
        assert!(
            !crds.contains(crd),
            "the CRD {crd} is left:\n{crds}\n{}",
            report(output)
        );
    }
    // No objects of the kinds either: the API group is gone.
    let group = control_plane
        .kubectl_command(&["get", "--raw", "/apis/legate.dev/v1alpha1"])
        .output()
        .expect("kubectl runs");
    assert!(
        !group.status.success(),
        "the API server still serves legate.dev/v1alpha1: {}",
        String::from_utf8_lossy(&group.stdout)
    );
    for (kind, name) in [
        ("namespace", "legate-system"),
        ("clusterrole", "legate"),
        ("clusterrolebinding", "legate"),
    ] {
        let left = control_plane.kubectl(&["get", kind, name, "--ignore-not-found", "-o", "name"]);
        assert!(left.is_empty(), "{kind} {name} is left\n{}", report(output));
    }
    // Nothing anywhere waits on a finalizer. Garbage collection of the
    // Gateways' fleets may take a moment; a stuck object never goes.
    let types = control_plane.kubectl(&["api-resources", "--verbs=list,delete", "-o", "name"]);
    let types: Vec<&str> = types.lines().filter(|t| !t.is_empty()).collect();
    let types = types.join(",");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let terminating = control_plane.kubectl(&[
            "get",
            &types,
            "-A",
            "-o",
            "jsonpath={range .items[?(@.metadata.deletionTimestamp)]}{.kind} {.metadata.namespace}/{.metadata.name} {.metadata.finalizers}{\"\\n\"}{end}",
        ]);
        if terminating.trim().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "objects stuck in Terminating:\n{terminating}\n{}",
            report(output)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn uninstall_with_the_operator_running_deletes_everything_and_leaves_nothing_stuck() {
    let own = ControlPlane::own();
    let control_plane = own.get();
    let installed = install_with_objects(control_plane, false).await;

    let started = Instant::now();
    let output = uninstall(control_plane, installed.dir.path())
        .output()
        .expect("scripts/uninstall.sh runs");
    eprintln!("uninstalled in {:?}", started.elapsed());
    assert!(
        output.status.success(),
        "scripts/uninstall.sh failed: {}",
        report(&output)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Step 1 ran against a live operator, which removed its own finalizers
    // (with only the RBAC of the manifests): the script neither took it for
    // gone nor had to strip a finalizer itself.
    for gone in [
        "no operator holds the Lease",
        "was not renewed",
        "removing Legate's finalizers",
    ] {
        assert!(
            !stderr.contains(gone),
            "the running operator was taken for gone: {}\n{}",
            report(&output),
            installed.operator.log_text()
        );
    }
    assert_uninstalled(control_plane, &output).await;

    // Again, on a cluster without Legate: nothing to do, and success.
    let again = uninstall(control_plane, installed.dir.path())
        .output()
        .expect("scripts/uninstall.sh runs");
    assert!(again.status.success(), "a second run failed: {}", report(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("no Legate CRD is installed"),
        "{}",
        report(&again)
    );
    drop(installed);
}

#[tokio::test]
async fn uninstall_with_the_operator_gone_removes_legates_finalizers_and_no_others() {
    let own = ControlPlane::own();
    let control_plane = own.get();
    let Installed {
        platform,
        team,
        operator,
        dir,
    } = install_with_objects(control_plane, true).await;
    // The operator stops first (as when its Deployment was deleted, or its
    // pods crash): nobody will remove legate.dev/routes.
    drop(operator);

    let started = Instant::now();
    let child = uninstall(control_plane, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("scripts/uninstall.sh runs");
    // The script takes Legate's finalizer off and leaves the other one, whose
    // controller removes it when it is done.
    release_foreign_finalizer(control_plane, &team.namespace, "team-0").await;
    let output = child.wait_with_output().expect("scripts/uninstall.sh ends");
    eprintln!("uninstalled in {:?}", started.elapsed());
    assert!(
        output.status.success(),
        "scripts/uninstall.sh failed: {}",
        report(&output)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    // SIGTERM releases the Lease; an operator killed without it leaves a
    // Lease that nobody renews. Either way the script sees nobody leads.
    assert!(
        stderr.contains("no operator holds the Lease legate-leader")
            || stderr.contains("the operator's Lease legate-leader was not renewed"),
        "the script did not see that the operator is gone: {}",
        report(&output)
    );
    for said in [
        "removing Legate's finalizers (legate.dev/...)",
        "removed Legate's finalizers from mappings.legate.dev",
        "removed Legate's finalizers from tcpmappings.legate.dev",
    ] {
        assert!(
            stderr.contains(said),
            "stderr does not say {said:?}: {}",
            report(&output)
        );
    }
    assert_uninstalled(control_plane, &output).await;
    drop((platform, team));
}

/// Plays the controller of [`FOREIGN_FINALIZER`]: once Mapping `name` is
/// being deleted and Legate's finalizer is off it, removes its own. Fails
/// when the Mapping went with that finalizer, or Legate's stays.
async fn release_foreign_finalizer(control_plane: &ControlPlane, namespace: &str, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let finalizers = loop {
        let listed = control_plane.kubectl(&[
            "get",
            "mappings.legate.dev",
            name,
            "-n",
            namespace,
            "--ignore-not-found",
            "-o",
            "jsonpath=[{.metadata.deletionTimestamp}] {.metadata.finalizers[*]}",
        ]);
        assert!(
            !listed.is_empty(),
            "Mapping {namespace}/{name} went with the finalizer {FOREIGN_FINALIZER} on it"
        );
        let (deleting, finalizers) = listed.split_once(' ').unwrap_or((&listed, ""));
        let finalizers: Vec<String> = finalizers.split_whitespace().map(str::to_string).collect();
        if deleting != "[]" && !finalizers.iter().any(|f| f.starts_with("legate.dev/")) {
            break finalizers;
        }
        assert!(
            Instant::now() < deadline,
            "Mapping {namespace}/{name} still has {finalizers:?} (deleting: {deleting}) after 60s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        finalizers.iter().any(|f| f == FOREIGN_FINALIZER),
        "the other controller's finalizer was removed: {finalizers:?}"
    );
    let patch = json!([
        { "op": "test", "path": "/metadata/finalizers", "value": finalizers },
        { "op": "replace", "path": "/metadata/finalizers",
          "value": finalizers.iter().filter(|f| *f != FOREIGN_FINALIZER).collect::<Vec<_>>() },
    ]);
    control_plane.kubectl(&[
        "patch",
        "mappings.legate.dev",
        name,
        "-n",
        namespace,
        "--type=json",
        "-p",
        &patch.to_string(),
    ]);
}
