//! A Gateway's Envoy fleet as the API server stores it: hardened, probed,
//! spread, protected by a PodDisruptionBudget; and the probe listener works
//! in a real Envoy.

use std::time::Duration;

use legate_tests::api::{apply, get, install_crds};
use legate_tests::http::HttpClient;
use legate_tests::net::{eventually, free_port, loopback};
use legate_tests::operator::Operator;
use legate_tests::{Envoy, TestEnv};
use serde_json::{Value, json};

async fn read(env: &TestEnv, api_version: &str, kind: &str, name: &str) -> Value {
    eventually(&format!("{kind} {name}"), Duration::from_secs(20), || async {
        let object = get(&env.client, &env.namespace, api_version, kind, name)
            .await
            .ok()??;
        serde_json::to_value(object).ok()
    })
    .await
}

#[tokio::test]
async fn the_fleet_is_hardened_and_scaling_changes_only_replicas() {
    let env = TestEnv::new().await;
    install_crds(&env.client).await;
    let xds = free_port();
    let _operator = Operator::start_with(
        env.control_plane,
        xds,
        None,
        &["--namespace", &env.namespace, "--envoy-probes=true"],
    )
    .await;
    let gateway = |replicas: i32| {
        json!({
            "apiVersion": "legate.dev/v1alpha1", "kind": "Gateway", "metadata": { "name": "edge" },
            "spec": {
                "replicas": replicas, "serviceType": "NodePort",
                "resources": { "requests": { "cpu": "250m", "memory": "128Mi" }, "limits": { "memory": "512Mi" } },
                "listeners": [{ "name": "http", "port": 8080, "protocol": "HTTP", "nodePort": 30080 }],
            }
        })
    };
    apply(&env.client, &env.namespace, &gateway(2))
        .await
        .expect("the Gateway applies");

    // Every object passed the API server's own validation to exist at all.
    let deployment = read(&env, "apps/v1", "Deployment", "edge-envoy").await;
    let pdb = read(&env, "policy/v1", "PodDisruptionBudget", "edge-envoy").await;
    let service = read(&env, "v1", "Service", "edge-envoy").await;
    let account = read(&env, "v1", "ServiceAccount", "edge-envoy").await;
    for object in [&deployment, &pdb, &service, &account] {
        let owner = &object["metadata"]["ownerReferences"][0];
        assert_eq!(
            (owner["kind"].as_str(), owner["name"].as_str()),
            (Some("Gateway"), Some("edge")),
            "{object:#}"
        );
        assert_eq!(owner["controller"], true);
    }
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    let envoy = &pod["containers"][0];
    let security = &envoy["securityContext"];
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(envoy["readinessProbe"]["httpGet"]["path"], "/ready");
    assert_eq!(envoy["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(envoy["resources"]["requests"]["cpu"], "250m");
    assert_eq!(envoy["resources"]["limits"]["memory"], "512Mi");
    assert_eq!(envoy["lifecycle"]["preStop"]["sleep"]["seconds"], 10);
    assert_eq!(
        pod["topologySpreadConstraints"][0]["topologyKey"],
        "kubernetes.io/hostname"
    );
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert_eq!(service["spec"]["ports"][0]["nodePort"], 30080);

    // Scaling touches replicas and nothing else: no rollout.
    let template = deployment["spec"]["template"].clone();
    apply(&env.client, &env.namespace, &gateway(3))
        .await
        .expect("the Gateway scales");
    let scaled = eventually(
        "the Deployment to have 3 replicas",
        Duration::from_secs(20),
        || async {
            let d = read(&env, "apps/v1", "Deployment", "edge-envoy").await;
            (d["spec"]["replicas"] == 3).then_some(d)
        },
    )
    .await;
    assert_eq!(
        scaled["spec"]["template"], template,
        "the pod template did not change"
    );
}

#[tokio::test]
async fn the_probe_listener_says_ready_only_once_envoy_has_its_listeners() {
    let env = TestEnv::new().await;
    install_crds(&env.client).await;
    let xds = free_port();
    let gateway_port = free_port();
    let health = free_port();
    let admin = free_port();
    let mut bootstrap = legate_xds::bootstrap::BootstrapConfig::new(
        "probe-1",
        &format!("{}/edge", env.namespace),
        "127.0.0.1",
        xds,
    );
    bootstrap.admin_port = admin;
    bootstrap.health_port = Some(health);
    // Envoy starts before the operator: it has no listeners yet.
    let envoy = Envoy::start_unready(&bootstrap.to_yaml()).await;
    let probe = |path: &'static str| {
        let url = format!("http://{}{path}", loopback(health));
        async move {
            HttpClient::http1()
                .get(&url, None)
                .await
                .map(|r| r.status.as_u16())
        }
    };
    // Envoy opens no listener before its first configuration: the kubelet's
    // probes fail, so the pod is not ready.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        probe("/ready").await.is_err(),
        "not ready without listeners\n{}",
        envoy.log_tail()
    );

    let _operator =
        Operator::start_with(env.control_plane, xds, None, &["--namespace", &env.namespace]).await;
    let gateway = json!({
        "apiVersion": "legate.dev/v1alpha1", "kind": "Gateway", "metadata": { "name": "edge" },
        "spec": { "replicas": 1, "serviceType": "ClusterIP",
                  "listeners": [{ "name": "http", "port": gateway_port, "protocol": "HTTP" }] }
    });
    apply(&env.client, &env.namespace, &gateway)
        .await
        .expect("the Gateway applies");
    eventually(
        "the probe listener to say ready",
        Duration::from_secs(30),
        || async { (probe("/ready").await == Ok(200)).then_some(()) },
    )
    .await;
    assert_eq!(probe("/healthz").await, Ok(200), "and live");
}
