use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use super::objects::{BOOTSTRAP_HASH_ANNOTATION, CERTIFICATE_NOT_AFTER_ANNOTATION};
use super::*;

fn settings(host: &str) -> FleetSettings {
    FleetSettings {
        xds_host: host.into(),
        xds_port: 18000,
        probes: true,
        ca: None,
    }
}

fn gateway(spec: Value) -> Gateway {
    serde_json::from_value(json!({
        "apiVersion": "legate.dev/v1alpha1", "kind": "Gateway",
        "metadata": { "name": "edge", "namespace": "infra", "uid": "1234" },
        "spec": spec,
    }))
    .expect("a valid Gateway")
}

fn fleet(spec: Value, settings: &FleetSettings, not_after: Option<&str>) -> (Owner, Fleet) {
    let gateway = gateway(spec);
    let owner = Owner::of(&gateway).expect("a stored Gateway");
    let fleet = Fleet::desired(&owner, &gateway, settings, not_after);
    (owner, fleet)
}

fn bootstrap(fleet: &Fleet) -> &str {
    fleet
        .config_map
        .data
        .as_ref()
        .and_then(|d| d.get(BOOTSTRAP_KEY))
        .map(String::as_str)
        .unwrap_or_default()
}

fn pod(deployment: &Deployment) -> &PodSpec {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("the Deployment has a pod template")
}

fn envoy(deployment: &Deployment) -> &Container {
    &pod(deployment).containers[0]
}

#[test]
fn every_child_is_in_the_gateways_namespace_owned_by_it_and_labelled() {
    let (owner, fleet) = fleet(json!({}), &settings("x"), None);
    let metas = [
        owner.adopt(fleet.service_account).metadata,
        owner.adopt(fleet.config_map).metadata,
        owner.adopt(fleet.deployment).metadata,
        owner.adopt(fleet.pod_disruption_budget).metadata,
        owner.adopt(fleet.service).metadata,
    ];
    for meta in metas {
        assert_eq!(meta.name.as_deref(), Some("edge-envoy"));
        assert_eq!(meta.namespace.as_deref(), Some("infra"));
        let owners = meta.owner_references.unwrap_or_default();
        assert_eq!(owners.len(), 1, "{owners:?}");
        assert_eq!(owners[0].kind, "Gateway");
        assert_eq!(owners[0].name, "edge");
        assert_eq!(owners[0].uid, "1234");
        assert_eq!(owners[0].controller, Some(true));
        let labels = meta.labels.unwrap_or_default();
        assert_eq!(labels.get(GATEWAY_LABEL).map(String::as_str), Some("edge"));
        assert_eq!(
            labels.get("app.kubernetes.io/managed-by").map(String::as_str),
            Some("legate")
        );
        assert_eq!(
            labels.get("app.kubernetes.io/name").map(String::as_str),
            Some("envoy")
        );
    }
}

#[test]
fn a_gateway_not_read_from_the_api_server_owns_nothing() {
    let mut g = gateway(json!({}));
    g.metadata.uid = None;
    assert!(matches!(Owner::of(&g), Err(FleetError::NotStored { .. })));
}

#[test]
fn envoy_runs_as_non_root_on_a_read_only_root_filesystem() {
    let (_, fleet) = fleet(json!({}), &settings("x"), None);
    let pod = pod(&fleet.deployment);
    let pod_security = pod.security_context.clone().unwrap_or_default();
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert_eq!(pod_security.fs_group, Some(101));
    assert_eq!(pod.automount_service_account_token, Some(false));
    let security = envoy(&fleet.deployment)
        .security_context
        .clone()
        .unwrap_or_default();
    assert_eq!(security.run_as_non_root, Some(true));
    assert_eq!(security.run_as_user, Some(101));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(
        security.capabilities.and_then(|c| c.drop),
        Some(vec!["ALL".to_string()])
    );
    assert_eq!(
        security.seccomp_profile.map(|p| p.type_).as_deref(),
        Some("RuntimeDefault")
    );
    assert_eq!(fleet.service_account.automount_service_account_token, Some(false));
}

#[test]
fn envoy_is_probed_through_its_health_listener() {
    let (_, fleet) = fleet(json!({}), &settings("x"), None);
    let envoy = envoy(&fleet.deployment);
    let probe = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        let get = p.as_ref().and_then(|p| p.http_get.clone()).unwrap_or_default();
        (get.path.unwrap_or_default(), get.port)
    };
    let health = IntOrString::Int(19001);
    assert_eq!(probe(&envoy.readiness_probe), ("/ready".into(), health.clone()));
    assert_eq!(probe(&envoy.liveness_probe), ("/healthz".into(), health.clone()));
    assert_eq!(probe(&envoy.startup_probe), ("/healthz".into(), health));
    assert!(
        envoy
            .ports
            .iter()
            .flatten()
            .any(|p| p.name.as_deref() == Some("health") && p.container_port == 19001)
    );
    let bootstrap = bootstrap(&fleet);
    assert!(bootstrap.contains("port_value: 19001"), "{bootstrap}");
}

#[test]
fn in_pods_the_admin_api_listens_on_a_socket_and_on_no_tcp_port() {
    let (_, fleet) = fleet(json!({}), &settings("x"), None);
    let bootstrap = bootstrap(&fleet);
    let admin = bootstrap
        .split_once("\nadmin:\n")
        .and_then(|(_, rest)| rest.lines().next())
        .unwrap_or_default();
    assert_eq!(
        admin, "  address: { pipe: { path: \"/run/envoy-admin/admin.sock\", mode: 384 } }",
        "{bootstrap}"
    );
    assert!(
        !bootstrap.contains("127.0.0.1"),
        "no admin socket_address on loopback, for the admin API or its probe cluster: {bootstrap}"
    );
    // The probe listener and the xDS server: the only TCP addresses.
    assert_eq!(bootstrap.matches("socket_address").count(), 2, "{bootstrap}");
    assert!(
        bootstrap.contains("address: { pipe: { path: \"/run/envoy-admin/admin.sock\" } }"),
        "the probe listener asks the admin API on its socket: {bootstrap}"
    );
    assert!(
        ADMIN_SOCKET.starts_with(&format!("{ADMIN_SOCKET_DIR}/")),
        "the socket is in its volume"
    );
}

#[test]
fn the_admin_socket_is_on_a_writable_volume_of_its_own() {
    let (_, fleet) = fleet(json!({}), &settings("x"), None);
    let mounts = envoy(&fleet.deployment).volume_mounts.clone().unwrap_or_default();
    let mount = mounts
        .iter()
        .find(|m| m.mount_path == ADMIN_SOCKET_DIR)
        .expect("the admin socket's directory is mounted");
    assert_ne!(mount.read_only, Some(true), "Envoy creates the socket there");
    let volumes = pod(&fleet.deployment).volumes.clone().unwrap_or_default();
    let volume = volumes
        .iter()
        .find(|v| v.name == mount.name)
        .expect("the mount names a volume");
    assert!(volume.empty_dir.is_some(), "{volume:?}");
    assert!(
        !envoy(&fleet.deployment)
            .ports
            .iter()
            .flatten()
            .any(|p| p.container_port == 19000),
        "no admin port"
    );
}

#[test]
fn envoys_run_locally_get_no_probes() {
    let local = FleetSettings {
        probes: false,
        ..settings("x")
    };
    let (_, fleet) = fleet(json!({}), &local, None);
    let envoy = envoy(&fleet.deployment);
    assert!(
        envoy.readiness_probe.is_none() && envoy.liveness_probe.is_none() && envoy.startup_probe.is_none()
    );
    assert!(
        !envoy
            .ports
            .iter()
            .flatten()
            .any(|p| p.name.as_deref() == Some("health"))
    );
    // Many Envoys on one machine: each on a free loopback port, which the
    // tests' harness reads; no socket path that would collide.
    let bootstrap = bootstrap(&fleet);
    assert!(
        bootstrap.contains("admin:\n  address: { socket_address: { address: 127.0.0.1, port_value: 0 } }"),
        "{bootstrap}"
    );
    assert!(!bootstrap.contains("pipe"), "{bootstrap}");
}

#[test]
fn the_bootstrap_names_the_gateway_and_the_xds_server() {
    let (_, fleet) = fleet(json!({}), &settings("legate-xds.legate-system.svc"), None);
    let bootstrap = bootstrap(&fleet);
    assert!(bootstrap.contains("infra/edge"), "{bootstrap}");
    assert!(bootstrap.contains("legate-xds.legate-system.svc"), "{bootstrap}");
    let args = envoy(&fleet.deployment).args.clone().unwrap_or_default();
    assert!(
        args.windows(2).any(|w| w == ["--service-cluster", "infra/edge"]),
        "{args:?}"
    );
}

#[test]
fn a_changed_bootstrap_rolls_the_pods_and_an_unchanged_one_does_not() {
    let hash = |host: &str| {
        let (_, fleet) = fleet(json!({}), &settings(host), None);
        let template = fleet.deployment.spec.as_ref().map(|s| &s.template);
        template
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get(BOOTSTRAP_HASH_ANNOTATION).cloned())
            .expect("the pod template carries the bootstrap's hash")
    };
    assert_eq!(hash("xds-a.example"), hash("xds-a.example"));
    assert_ne!(hash("xds-a.example"), hash("xds-b.example"));
}

#[test]
fn with_a_client_certificate_envoy_authenticates_and_renewal_rolls_the_pods() {
    let (_, fleet) = fleet(json!({}), &settings("x"), Some("2026-12-27T00:00:00Z"));
    let bootstrap = bootstrap(&fleet);
    assert!(bootstrap.contains("/etc/envoy/xds-tls/tls.crt"), "{bootstrap}");
    let template = fleet.deployment.spec.as_ref().map(|s| &s.template);
    let annotations = template
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.annotations.clone())
        .unwrap_or_default();
    assert_eq!(
        annotations
            .get(CERTIFICATE_NOT_AFTER_ANNOTATION)
            .map(String::as_str),
        Some("2026-12-27T00:00:00Z")
    );
    let volumes = pod(&fleet.deployment).volumes.clone().unwrap_or_default();
    let secret = volumes
        .iter()
        .find_map(|v| v.secret.as_ref())
        .expect("the certificate is mounted");
    assert_eq!(secret.secret_name.as_deref(), Some("edge-envoy-xds"));
    assert_eq!(secret.default_mode, Some(0o440));
}

#[test]
fn the_certificate_secret_is_labelled_like_the_fleet_but_not_as_envoy() {
    let g = gateway(json!({}));
    let owner = Owner::of(&g).expect("a stored Gateway");
    let ca = Authority::generate().expect("a CA");
    let issued = ca.issue_gateway(owner.key()).expect("a certificate");
    let secret = owner.adopt(certificate_secret(
        xds_secret_name(&g),
        &ca,
        &issued,
        "2026-12-27T00:00:00Z",
    ));
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    let labels = secret.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels, owner.labels());
    let annotations = secret.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations.get(NOT_AFTER_ANNOTATION).map(String::as_str),
        Some("2026-12-27T00:00:00Z")
    );
    assert_eq!(annotations.get(BUNDLE_ANNOTATION), Some(&ca.bundle_hash()));
    let data = secret.string_data.clone().unwrap_or_default();
    assert_eq!(data.keys().collect::<Vec<_>>(), [CA_CERT_KEY, CERT_KEY, KEY_KEY]);
    assert_eq!(
        secret
            .metadata
            .owner_references
            .map(|o| o[0].kind.clone())
            .as_deref(),
        Some("Gateway")
    );
}

#[test]
fn node_ports_go_to_the_service_only_when_it_has_them() {
    let listeners = json!([{ "name": "http", "port": 8080, "protocol": "HTTP", "nodePort": 30080 }]);
    let node_port_of = |service_type: &str| {
        let (_, fleet) = fleet(
            json!({ "serviceType": service_type, "listeners": listeners }),
            &settings("x"),
            None,
        );
        let spec = fleet.service.spec.unwrap_or_default();
        (spec.type_, spec.ports.unwrap_or_default()[0].node_port)
    };
    assert_eq!(node_port_of("NodePort"), (Some("NodePort".into()), Some(30080)));
    assert_eq!(node_port_of("ClusterIP"), (Some("ClusterIP".into()), None));
}

#[test]
fn the_gateways_resources_replace_the_defaults() {
    let (_, defaults) = fleet(json!({}), &settings("x"), None);
    let resources = envoy(&defaults.deployment).resources.clone().unwrap_or_default();
    let limits = resources.limits.unwrap_or_default();
    assert_eq!(limits.get("memory").map(|q| q.0.as_str()), Some("1Gi"));
    let (_, own) = fleet(
        json!({ "resources": { "requests": { "cpu": "250m" } } }),
        &settings("x"),
        None,
    );
    let resources = envoy(&own.deployment).resources.clone().unwrap_or_default();
    assert_eq!(
        resources
            .requests
            .unwrap_or_default()
            .get("cpu")
            .map(|q| q.0.as_str()),
        Some("250m")
    );
    assert_eq!(resources.limits, None);
}

#[test]
fn route_changes_cannot_touch_the_pod_template() {
    // The template depends on the Gateway alone: two calls with the same
    // Gateway give the same template, whatever the routes are.
    let (_, a) = fleet(json!({}), &settings("x"), None);
    let (_, b) = fleet(json!({}), &settings("x"), None);
    assert_eq!(a.deployment, b.deployment);
}

#[test]
fn without_autoscaling_legate_sets_replicas_and_has_no_autoscaler() {
    let (_, fleet) = fleet(json!({ "replicas": 3 }), &settings("x"), None);
    assert_eq!(fleet.deployment.spec.as_ref().and_then(|s| s.replicas), Some(3));
    assert_eq!(fleet.autoscaler, None);
}

#[test]
fn with_autoscaling_the_autoscaler_scales_the_deployment_and_legate_leaves_replicas_alone() {
    let spec = json!({
        "replicas": 3,
        "autoscaling": { "minReplicas": 2, "maxReplicas": 7, "targetCPUUtilizationPercentage": 65 },
    });
    let (owner, fleet) = fleet(spec, &settings("x"), None);
    assert_eq!(
        fleet.deployment.spec.as_ref().and_then(|s| s.replicas),
        None,
        "replicas are the autoscaler's"
    );
    let autoscaler = owner.adopt(fleet.autoscaler.expect("an autoscaler"));
    assert_eq!(autoscaler.metadata.name.as_deref(), Some("edge-envoy"));
    assert_eq!(
        autoscaler.metadata.owner_references.unwrap_or_default()[0].name,
        "edge"
    );
    let hpa = serde_json::to_value(autoscaler.spec).expect("serializes");
    assert_eq!(
        hpa,
        json!({
            "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "edge-envoy" },
            "minReplicas": 2,
            "maxReplicas": 7,
            "metrics": [{
                "type": "Resource",
                "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": 65 } },
            }],
        })
    );
}

#[test]
fn autoscaling_defaults_to_two_pods_at_least_and_eighty_percent_cpu() {
    let (_, fleet) = fleet(
        json!({ "autoscaling": { "maxReplicas": 4 } }),
        &settings("x"),
        None,
    );
    let spec = fleet.autoscaler.and_then(|a| a.spec).expect("an autoscaler");
    assert_eq!(spec.min_replicas, Some(2));
    let target = spec.metrics.unwrap_or_default()[0]
        .resource
        .as_ref()
        .and_then(|r| r.target.average_utilization);
    assert_eq!(target, Some(80));
}

#[test]
fn only_legates_own_apply_of_replicas_counts_as_owning_them() {
    let deployment = |entries: Value| -> Deployment {
        serde_json::from_value(json!({
            "metadata": { "name": "edge-envoy", "managedFields": entries },
        }))
        .expect("a Deployment")
    };
    let entry = |manager: &str, operation: &str, spec: Value| {
        json!({
            "manager": manager, "operation": operation, "apiVersion": "apps/v1",
            "fieldsType": "FieldsV1", "fieldsV1": { "f:spec": spec },
        })
    };
    let with_replicas = json!({ "f:replicas": {}, "f:selector": {} });
    let without = json!({ "f:selector": {} });
    assert!(owns_replicas(&deployment(json!([entry(
        FIELD_MANAGER,
        "Apply",
        with_replicas.clone()
    )]))));
    assert!(!owns_replicas(&deployment(json!([entry(
        FIELD_MANAGER,
        "Apply",
        without.clone()
    )]))));
    assert!(!owns_replicas(&deployment(json!([
        entry(FIELD_MANAGER, "Apply", without),
        entry("kubectl", "Update", with_replicas.clone()),
        entry(REPLICAS_HANDOVER_MANAGER, "Apply", with_replicas),
    ]))));
    assert!(!owns_replicas(&deployment(json!([]))));
}

fn template_annotations(fleet: &Fleet) -> BTreeMap<String, String> {
    fleet
        .deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.clone())
        .unwrap_or_default()
}

fn scrape(annotations: &BTreeMap<String, String>) -> Vec<(&str, &str)> {
    annotations
        .iter()
        .filter(|(k, _)| k.starts_with("prometheus.io/"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[test]
fn pods_and_service_invite_prometheus_to_the_probe_listeners_stats() {
    let listeners = json!([{ "name": "http", "port": 8080, "protocol": "HTTP" }]);
    let (_, fleet) = fleet(json!({ "listeners": listeners }), &settings("x"), None);
    let port = HEALTH_PORT.to_string();
    let expected = vec![
        ("prometheus.io/path", "/stats/prometheus"),
        ("prometheus.io/port", port.as_str()),
        ("prometheus.io/scrape", "true"),
    ];
    assert_eq!(scrape(&template_annotations(&fleet)), expected);
    let service_annotations = fleet.service.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(scrape(&service_annotations), expected);
    assert!(
        bootstrap(&fleet).contains("- match: { path: /stats/prometheus }"),
        "the annotated path is served on the probe port"
    );
    // Never published: a LoadBalancer Service would expose the stats.
    let ports = fleet.service.spec.and_then(|s| s.ports).unwrap_or_default();
    assert_eq!(
        ports.iter().map(|p| p.port).collect::<Vec<_>>(),
        vec![8080],
        "only the Gateway's listeners: {ports:?}"
    );
}

#[test]
fn the_gateways_service_annotations_win_over_the_scrape_annotations() {
    let (_, fleet) = fleet(
        json!({ "serviceAnnotations": { "prometheus.io/scrape": "false", "lb.example/internal": "true" } }),
        &settings("x"),
        None,
    );
    let annotations = fleet.service.metadata.annotations.unwrap_or_default();
    assert_eq!(
        annotations.get("prometheus.io/scrape").map(String::as_str),
        Some("false")
    );
    assert_eq!(
        annotations.get("lb.example/internal").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        annotations.get("prometheus.io/path").map(String::as_str),
        Some("/stats/prometheus")
    );
}

#[test]
fn envoys_without_a_probe_listener_carry_no_scrape_annotations() {
    let local = FleetSettings {
        probes: false,
        ..settings("x")
    };
    let (_, fleet) = fleet(json!({}), &local, None);
    assert_eq!(scrape(&template_annotations(&fleet)), vec![]);
    assert_eq!(
        scrape(&fleet.service.metadata.annotations.unwrap_or_default()),
        vec![]
    );
}
