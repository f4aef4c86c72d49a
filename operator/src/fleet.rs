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
use legate_xds::bootstrap::BootstrapConfig;
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
}

/// The objects of a Gateway's fleet, as server-side apply bodies.
pub fn desired_objects(gateway: &Gateway, settings: &FleetSettings) -> Vec<Value> {
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
                "template": { "metadata": { "labels": labels }, "spec": pod_spec },
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
) -> Result<(), (String, kube::Error)> {
    let namespace = gateway.namespace().unwrap_or_default();
    for object in desired_objects(gateway, settings) {
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(host: &str) -> FleetSettings {
        FleetSettings {
            xds_host: host.into(),
            xds_port: 18000,
            probes: true,
        }
    }

    #[test]
    fn envoy_is_probed_through_its_health_listener() {
        let objects = desired_objects(&gateway(json!({})), &settings("x"));
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
        let objects = desired_objects(&gateway(json!({})), &settings("legate-xds.legate-system.svc"));
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
        );
        assert_eq!(node_port[4]["spec"]["ports"][0]["nodePort"], 30080);
        assert_eq!(node_port[4]["spec"]["type"], "NodePort");
    }

    #[test]
    fn route_changes_cannot_touch_the_pod_template() {
        // The template depends on the Gateway alone: two calls with the same
        // Gateway give the same template, whatever the routes are.
        let g = gateway(json!({}));
        let a = desired_objects(&g, &settings("x"));
        let b = desired_objects(&g, &settings("x"));
        assert_eq!(a[2]["spec"]["template"], b[2]["spec"]["template"]);
    }
}
