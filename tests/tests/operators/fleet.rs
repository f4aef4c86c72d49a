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

/// The fields of the Deployment that field manager `manager` applied.
fn applied_by<'a>(deployment: &'a Value, manager: &str) -> Option<&'a Value> {
    deployment["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == "Apply")
        .map(|e| &e["fieldsV1"])
}

/// Whether the operator's own apply (field manager `legate`) sets the Deployment's replicas.
fn legate_sets_replicas(deployment: &Value) -> bool {
    applied_by(deployment, "legate").is_some_and(|f| f["f:spec"].get("f:replicas").is_some())
}

async fn autoscaled_env() -> (TestEnv, Operator) {
    let env = TestEnv::new().await;
    install_crds(&env.client).await;
    let operator = Operator::start_with(
        env.control_plane,
        free_port(),
        None,
        &["--namespace", &env.namespace],
    )
    .await;
    (env, operator)
}

/// A ClusterIP Gateway `edge` with `replicas` and, when given, `autoscaling`
/// and a node selector (a change of the fleet that shows the operator applied it).
fn scalable_gateway(replicas: i32, autoscaling: Option<Value>, zone: &str) -> Value {
    let mut gateway = json!({
        "apiVersion": "legate.dev/v1alpha1", "kind": "Gateway", "metadata": { "name": "edge" },
        "spec": {
            "replicas": replicas, "serviceType": "ClusterIP",
            "nodeSelector": { "topology.kubernetes.io/zone": zone },
            "listeners": [{ "name": "http", "port": 8080, "protocol": "HTTP" }],
        }
    });
    if let Some(autoscaling) = autoscaling {
        gateway["spec"]["autoscaling"] = autoscaling;
    }
    gateway
}

/// Waits until the Deployment's pods select `zone`: the operator applied the
/// Gateway's latest change.
async fn deployment_in_zone(env: &TestEnv, zone: &str) -> Value {
    eventually(
        &format!("the Deployment's pods to select zone {zone}"),
        Duration::from_secs(20),
        || async {
            let d = read(env, "apps/v1", "Deployment", "edge-envoy").await;
            (d["spec"]["template"]["spec"]["nodeSelector"]["topology.kubernetes.io/zone"] == zone)
                .then_some(d)
        },
    )
    .await
}

#[tokio::test]
async fn with_autoscaling_an_hpa_owns_the_count_and_the_operator_never_undoes_a_scale() {
    let (env, _operator) = autoscaled_env().await;
    let autoscaling = json!({ "minReplicas": 2, "maxReplicas": 5, "targetCPUUtilizationPercentage": 70 });
    apply(
        &env.client,
        &env.namespace,
        &scalable_gateway(1, Some(autoscaling.clone()), "a"),
    )
    .await
    .expect("the Gateway applies");

    let hpa = read(&env, "autoscaling/v2", "HorizontalPodAutoscaler", "edge-envoy").await;
    let spec = &hpa["spec"];
    assert_eq!(
        spec["scaleTargetRef"],
        json!({ "apiVersion": "apps/v1", "kind": "Deployment", "name": "edge-envoy" }),
        "{hpa:#}"
    );
    assert_eq!(
        (spec["minReplicas"].as_i64(), spec["maxReplicas"].as_i64()),
        (Some(2), Some(5))
    );
    assert_eq!(
        spec["metrics"],
        json!([{ "type": "Resource",
                 "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": 70 } } }]),
        "{hpa:#}"
    );
    let owner = &hpa["metadata"]["ownerReferences"][0];
    assert_eq!(
        (owner["kind"].as_str(), owner["name"].as_str()),
        (Some("Gateway"), Some("edge"))
    );
    assert_eq!(owner["controller"], true);
    assert_eq!(hpa["metadata"]["labels"]["legate.dev/gateway"], "edge");

    // The new Deployment starts at the autoscaler's minimum (not at
    // `replicas: 1`, which autoscaling overrides), and the operator's field
    // manager does not set its replicas.
    let deployment = eventually(
        "the Deployment to start with minReplicas",
        Duration::from_secs(20),
        || async {
            let d = read(&env, "apps/v1", "Deployment", "edge-envoy").await;
            (d["spec"]["replicas"] == 2).then_some(d)
        },
    )
    .await;
    assert!(
        applied_by(&deployment, "legate").is_some(),
        "the operator applied the Deployment: {:#}",
        deployment["metadata"]["managedFields"]
    );
    assert!(
        !legate_sets_replicas(&deployment),
        "the operator's apply sets no replicas: {:#}",
        deployment["metadata"]["managedFields"]
    );

    // `kubectl scale` stands in for the HPA controller (there is no metrics server).
    env.control_plane.kubectl(&[
        "scale",
        "deployment/edge-envoy",
        "--replicas=3",
        "-n",
        &env.namespace,
    ]);
    // A change to the Gateway makes the operator apply the fleet again.
    apply(
        &env.client,
        &env.namespace,
        &scalable_gateway(1, Some(autoscaling.clone()), "b"),
    )
    .await
    .expect("the Gateway changes");
    let deployment = deployment_in_zone(&env, "b").await;
    assert_eq!(
        deployment["spec"]["replicas"], 3,
        "the operator did not undo the scale"
    );
    assert!(!legate_sets_replicas(&deployment));

    // Without autoscaling, the autoscaler goes and `replicas` is the operator's again.
    apply(&env.client, &env.namespace, &scalable_gateway(1, None, "c"))
        .await
        .expect("the Gateway drops autoscaling");
    eventually(
        "the HorizontalPodAutoscaler to be deleted",
        Duration::from_secs(20),
        || async {
            get(
                &env.client,
                &env.namespace,
                "autoscaling/v2",
                "HorizontalPodAutoscaler",
                "edge-envoy",
            )
            .await
            .ok()?
            .is_none()
            .then_some(())
        },
    )
    .await;
    let deployment = deployment_in_zone(&env, "c").await;
    assert_eq!(deployment["spec"]["replicas"], 1, "replicas applies again");
    assert!(legate_sets_replicas(&deployment));
}

#[tokio::test]
async fn turning_autoscaling_on_keeps_the_pods_the_gateway_had() {
    let (env, _operator) = autoscaled_env().await;
    apply(&env.client, &env.namespace, &scalable_gateway(4, None, "a"))
        .await
        .expect("the Gateway applies");
    let deployment = eventually("4 replicas", Duration::from_secs(20), || async {
        let d = read(&env, "apps/v1", "Deployment", "edge-envoy").await;
        (d["spec"]["replicas"] == 4).then_some(d)
    })
    .await;
    assert!(legate_sets_replicas(&deployment));
    assert!(
        get(
            &env.client,
            &env.namespace,
            "autoscaling/v2",
            "HorizontalPodAutoscaler",
            "edge-envoy"
        )
        .await
        .expect("the API server answers")
        .is_none(),
        "a Gateway without autoscaling has no autoscaler"
    );

    // Letting go of replicas must not reset the Deployment to its default of
    // one pod: the 4 it had stay (they are within the bounds).
    apply(
        &env.client,
        &env.namespace,
        &scalable_gateway(4, Some(json!({ "minReplicas": 2, "maxReplicas": 6 })), "b"),
    )
    .await
    .expect("the Gateway turns autoscaling on");
    read(&env, "autoscaling/v2", "HorizontalPodAutoscaler", "edge-envoy").await;
    let deployment = deployment_in_zone(&env, "b").await;
    assert!(!legate_sets_replicas(&deployment));
    assert_eq!(deployment["spec"]["replicas"], 4, "the pods it had stay");

    // A count above the new maximum comes down to it at once.
    apply(&env.client, &env.namespace, &scalable_gateway(4, None, "c"))
        .await
        .expect("autoscaling off");
    deployment_in_zone(&env, "c").await;
    apply(
        &env.client,
        &env.namespace,
        &scalable_gateway(4, Some(json!({ "minReplicas": 1, "maxReplicas": 3 })), "d"),
    )
    .await
    .expect("autoscaling on, at most 3");
    let deployment = deployment_in_zone(&env, "d").await;
    assert_eq!(deployment["spec"]["replicas"], 3, "clamped to maxReplicas");
}
