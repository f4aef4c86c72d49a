//! Installing Legate on a real API server the way users do: `kubectl apply
//! --server-side -k manifests/`, then the operator run from the manifests'
//! Deployment as the ServiceAccount they create, through a Gateway, a
//! Mapping, a TLSContext, traffic and the quickstart. A binary of its own:
//! the manifests install cluster-wide objects, and the operator watches
//! every namespace, leads through the Lease `legate-system/legate-leader`
//! and gives the quickstart Gateway the NodePorts 30080 and 30443, so it must
//! not share its control plane with other tests. The checks of the
//! repository's files (bundle, RBAC, README...) are in the `offline` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use legate_tests::api::{apply, documents, get, wait_condition};
use legate_tests::bundle::Manifests;
use legate_tests::deployed::{DeployedOperator, service_account_kubeconfig};
use legate_tests::net::{eventually, free_port};
use legate_tests::stage::{PATIENCE, Stage};
use legate_tests::{ControlPlane, TestEnv, workspace};
use serde_json::{Value, json};

mod uninstall;

fn root() -> PathBuf {
    workspace::root()
}

fn manifests() -> Manifests {
    Manifests::read(&root()).unwrap_or_else(|e| panic!("{e}"))
}

fn operator_container(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

/// `kubectl apply --server-side -k manifests/`, as the README says, and waits
/// for the CRDs.
fn install_manifests(control_plane: &ControlPlane) -> String {
    let manifests = root().join("manifests");
    let out = control_plane.kubectl(&[
        "apply",
        "--server-side",
        "-k",
        manifests.to_str().expect("a UTF-8 path"),
    ]);
    control_plane.kubectl(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/gateways.legate.dev",
        "crd/mappings.legate.dev",
        "crd/tlscontexts.legate.dev",
        "crd/authservices.legate.dev",
        "crd/ratelimitservices.legate.dev",
        "crd/tcpmappings.legate.dev",
    ]);
    out
}

#[tokio::test]
async fn the_service_account_may_do_what_the_operator_needs_and_nothing_more() {
    let env = TestEnv::new().await;
    install_manifests(env.control_plane);
    let can = |args: &[&str]| {
        let mut all = vec!["auth", "can-i", "--as=system:serviceaccount:legate-system:legate"];
        all.extend_from_slice(args);
        let output = env
            .control_plane
            .kubectl_command(&all)
            .output()
            .expect("kubectl runs");
        String::from_utf8_lossy(&output.stdout).trim() == "yes"
    };
    for allowed in [
        &["watch", "mappings.legate.dev", "-A"][..],
        &[
            "patch",
            "gateways.legate.dev",
            "--subresource=status",
            "-n",
            "team-a",
        ],
        &["list", "secrets", "-A"],
        &["patch", "deployments.apps", "-n", "team-a"],
        &["patch", "horizontalpodautoscalers.autoscaling", "-n", "team-a"],
        &["delete", "horizontalpodautoscalers.autoscaling", "-n", "team-a"],
        &["create", "events.events.k8s.io", "-n", "team-a"],
        &["update", "leases.coordination.k8s.io", "-n", "legate-system"],
        &["update", "secrets", "-n", "legate-system"],
        &["get", "secrets", "-n", "team-a"],
    ] {
        assert!(can(allowed), "the operator may not {allowed:?}");
    }
    for refused in [
        &["delete", "deployments.apps", "-n", "team-a"][..],
        &["update", "horizontalpodautoscalers.autoscaling", "-n", "team-a"],
        &["list", "horizontalpodautoscalers.autoscaling", "-A"],
        &["delete", "mappings.legate.dev", "-n", "team-a"],
        &["update", "mappings.legate.dev", "-n", "team-a"],
        &["create", "pods", "-n", "team-a"],
        &["update", "secrets", "-n", "team-a"],
        &["update", "secrets", "-n", "kube-system"],
        &["delete", "secrets", "-n", "legate-system"],
        &["update", "leases.coordination.k8s.io", "-n", "kube-system"],
        &["create", "clusterrolebindings"],
        &["escalate", "clusterroles"],
        &["patch", "nodes"],
        &["get", "pods", "--subresource=exec", "-n", "team-a"],
    ] {
        assert!(
            !can(refused),
            "the operator may {refused:?}, which it never needs"
        );
    }
}

/// A self-signed certificate for `host`, made with openssl (which the control
/// plane needs anyway): `(certificate PEM path, key PEM path)`.
fn certificate(dir: &Path, host: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .args(["-days", "1", "-subj", &format!("/CN={host}")])
        .args(["-addext", &format!("subjectAltName=DNS:{host}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl made no certificate");
    (cert, key)
}

#[tokio::test]
async fn from_the_manifests_the_operator_runs_a_gateway_as_its_service_account() {
    let env = TestEnv::new().await;
    let applied = install_manifests(env.control_plane);
    for object in [
        "namespace/legate-system",
        "deployment.apps/legate",
        "clusterrole.rbac.authorization.k8s.io/legate",
    ] {
        assert!(
            applied.contains(object),
            "kubectl apply -k did not apply {object}:\n{applied}"
        );
    }
    // The API server kept the Deployment as written (defaults aside).
    let deployment = manifests()
        .one("Deployment")
        .cloned()
        .unwrap_or_else(|e| panic!("{e}"));
    let live = get(&env.client, "legate-system", "apps/v1", "Deployment", "legate")
        .await
        .expect("the API server answers")
        .expect("the Deployment exists");
    assert_eq!(
        live.data["spec"]["template"]["spec"]["containers"][0]["args"],
        operator_container(&deployment)["args"]
    );

    let dir = tempfile::tempdir().expect("a temp dir");
    let kubeconfig = service_account_kubeconfig(env.control_plane, "legate-system", "legate", dir.path());
    let whoami = env.control_plane.kubectl(&[
        "--kubeconfig",
        kubeconfig.to_str().expect("UTF-8"),
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ]);
    assert_eq!(whoami, "system:serviceaccount:legate-system:legate");
    let operator = DeployedOperator::start(&deployment, &kubeconfig, dir.path()).await;
    eprintln!("legate {}", operator.args.join(" "));

    // A user's session: a Gateway with HTTP and HTTPS, a Service, a Mapping,
    // a TLSContext; then traffic through Envoy.
    let stage = Stage::with_env(env).await;
    let ns = stage.env.namespace.clone();
    let https_port = free_port();
    let gateway = json!({
        "apiVersion": "legate.dev/v1alpha1", "kind": "Gateway",
        "metadata": { "name": "edge" },
        "spec": {
            "serviceType": "ClusterIP", "replicas": 1,
            "listeners": [
                { "name": "http", "port": stage.port, "protocol": "HTTP" },
                { "name": "https", "port": https_port, "protocol": "HTTPS" },
            ],
            "allowedRoutes": { "namespaces": { "from": "Same" } },
        }
    });
    apply(&stage.env.client, &ns, &gateway)
        .await
        .expect("the Gateway applies");
    stage
        .mapping("quote", json!({ "prefix": "/backend/", "service": "quote" }))
        .await;
    let response = stage.until_status("/backend/probe", 200).await;
    assert_eq!(response.echo().backend, "quote-1");

    let (cert, key) = certificate(dir.path(), "shop.example.com");
    stage.env.control_plane.kubectl(&[
        "create",
        "secret",
        "tls",
        "shop-tls",
        "-n",
        &ns,
        "--cert",
        cert.to_str().expect("UTF-8"),
        "--key",
        key.to_str().expect("UTF-8"),
    ]);
    let tls = json!({
        "apiVersion": "legate.dev/v1alpha1", "kind": "TLSContext",
        "metadata": { "name": "shop" },
        "spec": { "hosts": ["shop.example.com"], "secret": "shop-tls" }
    });
    apply(&stage.env.client, &ns, &tls)
        .await
        .expect("the TLSContext applies");
    // The Secret, read under the operator's RBAC, reached Envoy over SDS.
    eventually("the certificate in Envoy", PATIENCE, || async {
        let certs = stage.envoy.admin_get("/certs").await;
        certs.contains("shop.example.com").then_some(())
    })
    .await;

    for (kind, name) in [("Mapping", "quote"), ("TLSContext", "shop"), ("Gateway", "edge")] {
        wait_condition(&stage.env.client, &ns, kind, name, "Programmed", "True", PATIENCE).await;
    }
    // The fleet was applied and Events were written, under this identity.
    let fleet = get(&stage.env.client, &ns, "apps/v1", "Deployment", "edge-envoy")
        .await
        .expect("the API server answers");
    let fleet = fleet.unwrap_or_else(|| panic!("no fleet Deployment\n{}", operator.log_text()));
    let managers: Vec<&str> = fleet
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.as_deref())
        .collect();
    assert!(managers.contains(&"legate"), "{managers:?}");
    let events = stage.env.control_plane.kubectl(&[
        "get",
        "events.events.k8s.io",
        "-n",
        &ns,
        "-o",
        "jsonpath={.items[*].reportingController}",
    ]);
    assert!(events.contains("legate"), "no Events from legate: {events:?}");

    // In its own namespace it leads through a Lease and keeps its xDS CA in
    // a Secret (the Role's rules).
    let lease = get(
        &stage.env.client,
        "legate-system",
        "coordination.k8s.io/v1",
        "Lease",
        "legate-leader",
    )
    .await
    .expect("the API server answers")
    .expect("the operator created its Lease");
    assert!(
        lease.data["spec"]["holderIdentity"]
            .as_str()
            .is_some_and(|h| h.starts_with("legate-test-")),
        "{:?}",
        lease.data
    );
    let ca = get(
        &stage.env.client,
        "legate-system",
        "v1",
        "Secret",
        "legate-xds-ca",
    )
    .await
    .expect("the API server answers");
    assert!(ca.is_some(), "the operator created no CA Secret");

    // The quickstart, applied as the README does (into a namespace of its
    // own here): its Gateway's Service gets the NodePorts that
    // kind-config.yaml maps, and its TLSContext waits for the Secret that the
    // README creates first.
    let quickstart = format!("quickstart-{:x}", std::process::id());
    stage
        .env
        .control_plane
        .kubectl(&["create", "namespace", &quickstart]);
    let mut node_ports = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("examples/quickstart"))
        .expect("examples/quickstart/ exists")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("a readable example");
        for doc in documents(&text) {
            if doc["kind"] == "Gateway" {
                for l in doc["spec"]["listeners"].as_array().into_iter().flatten() {
                    node_ports.push((
                        l["name"].as_str().unwrap_or_default().to_string(),
                        l["nodePort"].as_i64(),
                    ));
                }
            }
            apply(&stage.env.client, &quickstart, &doc)
                .await
                .unwrap_or_else(|e| panic!("{} was refused: {e}", path.display()));
        }
    }
    assert!(!node_ports.is_empty(), "examples/quickstart/ has a Gateway");
    let ports = eventually("the quickstart Gateway's Service", PATIENCE, || async {
        let service = get(&stage.env.client, &quickstart, "v1", "Service", "edge-envoy")
            .await
            .ok()??;
        let ports: Vec<(String, Option<i64>)> = service.data["spec"]["ports"]
            .as_array()?
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap_or_default().to_string(),
                    p["nodePort"].as_i64(),
                )
            })
            .collect();
        Some(ports)
    })
    .await;
    assert_eq!(ports, node_ports, "the fleet Service's node ports");
    let missing = eventually("TLSContext shop to say SecretNotFound", PATIENCE, || async {
        let tls = get(
            &stage.env.client,
            &quickstart,
            "legate.dev/v1alpha1",
            "TLSContext",
            "shop",
        )
        .await
        .ok()??;
        let conditions = tls.data["status"]["conditions"].as_array()?.clone();
        conditions
            .into_iter()
            .find(|c| c["type"] == "ResolvedRefs" && c["reason"] == "SecretNotFound")
    })
    .await;
    assert_eq!(missing["status"], "False", "{missing}");

    // Autoscaling, under this identity: the Gateway's HorizontalPodAutoscaler
    // is created, and deleted once the Gateway drops `autoscaling`.
    let autoscaler = || {
        get(
            &stage.env.client,
            &ns,
            "autoscaling/v2",
            "HorizontalPodAutoscaler",
            "edge-envoy",
        )
    };
    let mut autoscaled = gateway.clone();
    autoscaled["spec"]["autoscaling"] = json!({ "minReplicas": 1, "maxReplicas": 3 });
    apply(&stage.env.client, &ns, &autoscaled)
        .await
        .expect("the Gateway takes autoscaling");
    eventually("the Gateway's HorizontalPodAutoscaler", PATIENCE, || async {
        autoscaler().await.ok()?.map(drop)
    })
    .await;
    apply(&stage.env.client, &ns, &gateway)
        .await
        .expect("the Gateway drops autoscaling");
    eventually("the HorizontalPodAutoscaler to be deleted", PATIENCE, || async {
        autoscaler().await.ok()?.is_none().then_some(())
    })
    .await;

    let log = operator.log_text();
    let forbidden: Vec<&str> = log
        .lines()
        .filter(|l| l.to_ascii_lowercase().contains("forbidden"))
        .collect();
    assert!(
        forbidden.is_empty(),
        "the operator was refused with the manifests' RBAC:\n{}",
        forbidden.join("\n")
    );
}
