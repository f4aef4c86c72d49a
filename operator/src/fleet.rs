//! A Gateway's Envoy fleet: ServiceAccount, ConfigMap (the bootstrap),
//! Deployment and Service, applied through one helper by server-side apply
//! with field manager `legate`, each owned by the Gateway so that deleting the
//! Gateway garbage-collects them.

use std::collections::BTreeMap;

use kube::api::{DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Api, Client, Resource, ResourceExt};
use legate_crds::Gateway;
use legate_crds::gateway::ServiceType;
use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::Secret;
use legate_xds::bootstrap::BootstrapConfig;

use crate::pki::{
    Authority, BUNDLE_ANNOTATION, CA_CERT_KEY, CERT_KEY, KEY_KEY, NOT_AFTER_ANNOTATION, needs_renewal,
    rfc3339,
};
use serde_json::{Value, json};

/// The field manager of everything Legate applies.
pub const FIELD_MANAGER: &str = "legate";
/// The bootstrap's file name in the ConfigMap and in the pod.
pub const BOOTSTRAP_KEY: &str = "envoy.yaml";
/// Label on every fleet object, naming the Gateway.
pub const GATEWAY_LABEL: &str = "legate.dev/gateway";

/// The name of every fleet object of a Gateway.
pub fn fleet_name(gateway: &Gateway) -> String {
    format!("{}-envoy", gateway.name_any())
}

/// Envoy's admin API (loopback only) and the probe listener in pods.
pub const ADMIN_PORT: u16 = 19000;
pub const HEALTH_PORT: u16 = 19001;
/// The UID Envoy runs as (the official image's `envoy` user).
const ENVOY_UID: i64 = 101;

/// How fleets are built, from the operator's flags.
#[derive(Debug, Clone)]
pub struct FleetSettings {
    /// Where Envoys find the xDS server.
    pub xds_host: String,
    pub xds_port: u16,
    /// Give Envoy the probe listener (pods); off when Envoys run on this machine.
    pub probes: bool,
    /// The CA that issues each Gateway's xDS client certificate (xDS over mTLS).
    pub ca: Option<Arc<RwLock<Authority>>>,
}

/// Where the pod mounts its xDS client certificate; `legate bootstrap` and
/// local runs replace this directory with their own.
pub const XDS_TLS_DIR: &str = "/etc/envoy/xds-tls";

/// The Secret with a Gateway's xDS client certificate.
pub fn xds_secret_name(gateway: &Gateway) -> String {
    format!("{}-envoy-xds", gateway.name_any())
}

/// The objects of a Gateway's fleet, as server-side apply bodies.
/// `certificate_not_after` is set when Envoys authenticate with a client
/// certificate (valid until then); its renewal rolls the pods.
pub fn desired_objects(
    gateway: &Gateway,
    settings: &FleetSettings,
    certificate_not_after: Option<&str>,
) -> Vec<Value> {
    let name = fleet_name(gateway);
    let namespace = gateway.namespace().unwrap_or_default();
    let gateway_key = format!("{namespace}/{}", gateway.name_any());
    let labels: BTreeMap<String, String> = [
        ("app.kubernetes.io/name".to_string(), "envoy".to_string()),
        ("app.kubernetes.io/managed-by".to_string(), "legate".to_string()),
        (GATEWAY_LABEL.to_string(), gateway.name_any()),
    ]
    .into();
    let selector: BTreeMap<&str, String> = [(GATEWAY_LABEL, gateway.name_any())].into();
    let owner = gateway
        .controller_owner_ref(&())
        .map(|o| vec![o])
        .unwrap_or_default();
    let meta = |extra: Value| {
        let mut m =
            json!({ "name": name, "namespace": namespace, "labels": labels, "ownerReferences": owner });
        if let (Some(m), Some(extra)) = (m.as_object_mut(), extra.as_object()) {
            m.extend(extra.clone());
        }
        m
    };
    // The node id comes from the pod name (--service-node); the bootstrap's is a placeholder.
    let mut bootstrap = BootstrapConfig::new("envoy", &gateway_key, &settings.xds_host, settings.xds_port);
    if settings.probes {
        bootstrap.admin_port = ADMIN_PORT;
        bootstrap.health_port = Some(HEALTH_PORT);
    }
    if certificate_not_after.is_some() {
        bootstrap.xds_tls = Some(legate_xds::bootstrap::XdsTls {
            ca_path: format!("{XDS_TLS_DIR}/{CA_CERT_KEY}"),
            cert_path: format!("{XDS_TLS_DIR}/{CERT_KEY}"),
            key_path: format!("{XDS_TLS_DIR}/{KEY_KEY}"),
        });
    }
    let bootstrap = bootstrap.to_yaml();
    let spec = &gateway.spec;
    let mut container_ports: Vec<Value> = spec
        .listeners
        .iter()
        .map(|l| json!({ "name": l.name, "containerPort": l.port, "protocol": "TCP" }))
        .collect();
    let service_ports: Vec<Value> = spec
        .listeners
        .iter()
        .map(|l| {
            let mut p = json!({ "name": l.name, "port": l.port, "targetPort": l.port, "protocol": "TCP" });
            if let (Some(node_port), ServiceType::NodePort | ServiceType::LoadBalancer) =
                (l.node_port, spec.service_type)
            {
                p["nodePort"] = json!(node_port);
            }
            p
        })
        .collect();
    let service_type = match spec.service_type {
        ServiceType::ClusterIP => "ClusterIP",
        ServiceType::NodePort => "NodePort",
        ServiceType::LoadBalancer => "LoadBalancer",
    };
    let resources = match &spec.resources {
        Some(r) => json!(r),
        // Without the Gateway's own numbers: enough to schedule sensibly, and a
        // memory ceiling that matches the overload manager's heap limit.
        None => json!({ "requests": { "cpu": "100m", "memory": "128Mi" }, "limits": { "memory": "1Gi" } }),
    };
    let mut container = json!({
        "name": "envoy",
        "image": spec.image,
        "args": [
            "--config-path", format!("/etc/envoy/{BOOTSTRAP_KEY}"),
            "--service-node", "$(POD_NAME)",
            "--service-cluster", gateway_key,
            "--log-level", "info",
            // On SIGTERM, Envoy stops at once; the preStop pause below is the drain.
            "--drain-time-s", "15",
        ],
        "env": [{ "name": "POD_NAME", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } }],
        "volumeMounts": [
            { "name": "bootstrap", "mountPath": "/etc/envoy", "readOnly": true },
            // Envoy writes nothing else; its root filesystem is read-only.
            { "name": "tmp", "mountPath": "/tmp" },
        ],
        "resources": resources,
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": ENVOY_UID,
            "runAsGroup": ENVOY_UID,
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": { "drop": ["ALL"] },
            "seccompProfile": { "type": "RuntimeDefault" },
        },
        // Terminating: the pod leaves the Service's endpoints at once; Envoy
        // keeps serving in-flight and late-routed requests for 10 s, then exits.
        "lifecycle": { "preStop": { "sleep": { "seconds": 10 } } },
    });
    if settings.probes {
        container_ports.push(json!({ "name": "health", "containerPort": HEALTH_PORT, "protocol": "TCP" }));
        container["readinessProbe"] = json!({
            // 200 only once Envoy is initialized: its listeners arrived over xDS.
            "httpGet": { "path": "/ready", "port": HEALTH_PORT },
            "periodSeconds": 2, "failureThreshold": 2,
        });
        // Envoy opens no listener, the probe listener included, until its
        // first configuration arrived: allow five minutes for that before the
        // liveness probe may restart it.
        container["startupProbe"] = json!({
            "httpGet": { "path": "/healthz", "port": HEALTH_PORT },
            "periodSeconds": 5, "failureThreshold": 60,
        });
        container["livenessProbe"] = json!({
            "httpGet": { "path": "/healthz", "port": HEALTH_PORT },
            "periodSeconds": 10, "failureThreshold": 3,
        });
    }
    container["ports"] = json!(container_ports);
    let mut template_annotations = serde_json::Map::new();
    if let Some(not_after) = certificate_not_after {
        if let Some(mounts) = container["volumeMounts"].as_array_mut() {
            mounts.push(json!({ "name": "xds-tls", "mountPath": XDS_TLS_DIR, "readOnly": true }));
        }
        // Envoy reads its xDS certificate at start: a renewed one rolls the pods.
        template_annotations.insert("legate.dev/xds-certificate-not-after".into(), json!(not_after));
    }
    let mut pod_spec = json!({
        "serviceAccountName": name,
        "automountServiceAccountToken": false,
        "terminationGracePeriodSeconds": 30,
        "securityContext": { "runAsNonRoot": true, "fsGroup": ENVOY_UID },
        "containers": [container],
        "volumes": [
            { "name": "bootstrap", "configMap": { "name": name } },
            { "name": "tmp", "emptyDir": {} },
        ],
        // Spread the Envoys over nodes so that one node going away takes one Envoy.
        "topologySpreadConstraints": [{
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": { "matchLabels": selector },
        }],
    });
    if certificate_not_after.is_some()
        && let Some(volumes) = pod_spec["volumes"].as_array_mut()
    {
        volumes.push(json!({ "name": "xds-tls", "secret": { "secretName": xds_secret_name(gateway), "defaultMode": 0o440 } }));
    }
    if !spec.node_selector.is_empty() {
        pod_spec["nodeSelector"] = json!(spec.node_selector);
    }
    if !spec.tolerations.is_empty() {
        pod_spec["tolerations"] = json!(spec.tolerations);
    }
    vec![
        json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(json!({})), "automountServiceAccountToken": false }),
        json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(json!({})), "data": { BOOTSTRAP_KEY: bootstrap } }),
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(json!({})),
            "spec": {
                "replicas": spec.replicas,
                "selector": { "matchLabels": selector },
                // Never below the current count during a rollout.
                "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxUnavailable": 0, "maxSurge": 1 } },
                "template": { "metadata": { "labels": labels, "annotations": template_annotations }, "spec": pod_spec },
            }
        }),
        json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta(json!({})),
            // Voluntary disruptions (node drains) take one Envoy at a time.
            "spec": { "maxUnavailable": 1, "selector": { "matchLabels": selector } },
        }),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": meta(json!({ "annotations": spec.service_annotations })),
            "spec": { "type": service_type, "selector": selector, "ports": service_ports },
        }),
    ]
}

/// Applies every object of the fleet. Route changes never reach here, so the
/// pod template changes only with replicas, image, listeners or resources.
pub async fn apply(
    client: &Client,
    gateway: &Gateway,
    settings: &FleetSettings,
) -> Result<Option<String>, (String, kube::Error)> {
    let namespace = gateway.namespace().unwrap_or_default();
    let not_after = match &settings.ca {
        Some(ca) => Some(ensure_certificate(client, gateway, ca).await?),
        None => None,
    };
    for object in desired_objects(gateway, settings, not_after.as_deref()) {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &resource);
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&object),
        )
        .await
        .map_err(|e| (format!("{kind} {namespace}/{name}"), e))?;
    }
    Ok(not_after)
}

/// Makes sure the Gateway has a client certificate from the current CA that
/// is not about to expire; returns when it stops being valid.
async fn ensure_certificate(
    client: &Client,
    gateway: &Gateway,
    ca: &RwLock<Authority>,
) -> Result<String, (String, kube::Error)> {
    let namespace = gateway.namespace().unwrap_or_default();
    let name = xds_secret_name(gateway);
    let what = || format!("Secret {namespace}/{name}");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let existing = secrets.get_opt(&name).await.map_err(|e| (what(), e))?;
    let (bundle, bundle_hash) = match ca.read() {
        Ok(ca) => (ca.bundle_pem().to_string(), ca.bundle_hash()),
        Err(_) => return Err((what(), kube::Error::Service("the CA lock is poisoned".into()))),
    };
    let annotations = existing
        .as_ref()
        .and_then(|s| s.metadata.annotations.clone())
        .unwrap_or_default();
    let current = annotations.get(NOT_AFTER_ANNOTATION).cloned();
    if annotations.get(BUNDLE_ANNOTATION) == Some(&bundle_hash)
        && !needs_renewal(current.as_deref())
        && let Some(not_after) = current
    {
        return Ok(not_after);
    }
    let key = format!("{namespace}/{}", gateway.name_any());
    let issued = match ca.read().map(|ca| ca.issue_gateway(&key)) {
        Ok(Ok(issued)) => issued,
        Ok(Err(e)) => return Err((what(), kube::Error::Service(e.to_string().into()))),
        Err(_) => return Err((what(), kube::Error::Service("the CA lock is poisoned".into()))),
    };
    let not_after = rfc3339(issued.not_after);
    let owner = gateway
        .controller_owner_ref(&())
        .map(|o| vec![o])
        .unwrap_or_default();
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {
            "name": name, "namespace": namespace, "ownerReferences": owner,
            "labels": { GATEWAY_LABEL: gateway.name_any(), "app.kubernetes.io/managed-by": "legate" },
            "annotations": { NOT_AFTER_ANNOTATION: not_after, BUNDLE_ANNOTATION: bundle_hash },
        },
        "type": "kubernetes.io/tls",
        "stringData": { CERT_KEY: issued.cert_pem, KEY_KEY: issued.key_pem, CA_CERT_KEY: bundle },
    });
    secrets
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&secret),
        )
        .await
        .map_err(|e| (what(), e))?;
    tracing::info!(gateway = %key, not_after = %not_after, "issued the Gateway's xDS client certificate");
    Ok(not_after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(host: &str) -> FleetSettings {
        FleetSettings {
            xds_host: host.into(),
            xds_port: 18000,
            probes: true,
            ca: None,
        }
    }

    #[test]
    fn with_a_client_certificate_envoy_authenticates_and_renewal_rolls_the_pods() {
        let objects = desired_objects(&gateway(json!({})), &settings("x"), Some("2026-12-27T00:00:00Z"));
        let bootstrap = objects[1]["data"][BOOTSTRAP_KEY].as_str().unwrap_or_default();
        assert!(bootstrap.contains("/etc/envoy/xds-tls/tls.crt"), "{bootstrap}");
        let template = &objects[2]["spec"]["template"];
        assert_eq!(
            template["metadata"]["annotations"]["legate.dev/xds-certificate-not-after"],
            "2026-12-27T00:00:00Z"
        );
        let volumes = template["spec"]["volumes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            volumes
                .iter()
                .any(|v| v["secret"]["secretName"] == "edge-envoy-xds"),
            "{volumes:?}"
        );
    }

    #[test]
    fn envoy_is_probed_through_its_health_listener() {
        let objects = desired_objects(&gateway(json!({})), &settings("x"), None);
        let container = &objects[2]["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/ready");
        assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
        let bootstrap = objects[1]["data"][BOOTSTRAP_KEY].as_str().unwrap_or_default();
        assert!(bootstrap.contains("port_value: 19001"), "{bootstrap}");
        assert!(
            bootstrap.contains("address: 127.0.0.1, port_value: 19000"),
            "admin stays on loopback: {bootstrap}"
        );
    }

    fn gateway(spec: Value) -> Gateway {
        serde_json::from_value(json!({
            "apiVersion": "legate.dev/v1alpha1", "kind": "Gateway",
            "metadata": { "name": "edge", "namespace": "infra", "uid": "1234" },
            "spec": spec,
        }))
        .expect("a valid Gateway")
    }

    #[test]
    fn the_fleet_is_owned_labelled_and_hardened() {
        let objects = desired_objects(
            &gateway(json!({})),
            &settings("legate-xds.legate-system.svc"),
            None,
        );
        let kinds: Vec<&str> = objects
            .iter()
            .map(|o| o["kind"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(
            kinds,
            [
                "ServiceAccount",
                "ConfigMap",
                "Deployment",
                "PodDisruptionBudget",
                "Service"
            ]
        );
        for o in &objects {
            assert_eq!(o["metadata"]["name"], "edge-envoy");
            assert_eq!(o["metadata"]["ownerReferences"][0]["kind"], "Gateway");
            assert_eq!(o["metadata"]["ownerReferences"][0]["controller"], true);
            assert_eq!(o["metadata"]["labels"][GATEWAY_LABEL], "edge");
        }
        let pod = &objects[2]["spec"]["template"]["spec"];
        let security = &pod["containers"][0]["securityContext"];
        assert_eq!(security["runAsNonRoot"], true);
        assert_eq!(security["readOnlyRootFilesystem"], true);
        assert_eq!(security["allowPrivilegeEscalation"], false);
        let bootstrap = objects[1]["data"][BOOTSTRAP_KEY].as_str().unwrap_or_default();
        assert!(bootstrap.contains("infra/edge"), "{bootstrap}");
        assert!(bootstrap.contains("legate-xds.legate-system.svc"), "{bootstrap}");
    }

    #[test]
    fn node_ports_go_to_the_service_only_when_it_has_them() {
        let listeners = json!([{ "name": "http", "port": 8080, "protocol": "HTTP", "nodePort": 30080 }]);
        let node_port = desired_objects(
            &gateway(json!({ "serviceType": "NodePort", "listeners": listeners })),
            &settings("x"),
            None,
        );
        assert_eq!(node_port[4]["spec"]["ports"][0]["nodePort"], 30080);
        assert_eq!(node_port[4]["spec"]["type"], "NodePort");
    }

    #[test]
    fn route_changes_cannot_touch_the_pod_template() {
        // The template depends on the Gateway alone: two calls with the same
        // Gateway give the same template, whatever the routes are.
        let g = gateway(json!({}));
        let a = desired_objects(&g, &settings("x"), None);
        let b = desired_objects(&g, &settings("x"), None);
        assert_eq!(a[2]["spec"]["template"], b[2]["spec"]["template"]);
    }
}
