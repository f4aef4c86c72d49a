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

/// The objects of a Gateway's fleet, as server-side apply bodies.
pub fn desired_objects(gateway: &Gateway, xds_host: &str, xds_port: u16) -> Vec<Value> {
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
    let bootstrap = BootstrapConfig::new("envoy", &gateway_key, xds_host, xds_port).to_yaml();
    let spec = &gateway.spec;
    let container_ports: Vec<Value> = spec
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
    let mut container = json!({
        "name": "envoy",
        "image": spec.image,
        "args": [
            "--config-path", format!("/etc/envoy/{BOOTSTRAP_KEY}"),
            "--service-node", "$(POD_NAME)",
            "--service-cluster", gateway_key,
            "--log-level", "info",
        ],
        "env": [{ "name": "POD_NAME", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } }],
        "ports": container_ports,
        "volumeMounts": [{ "name": "bootstrap", "mountPath": "/etc/envoy", "readOnly": true }],
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": 101,
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": { "drop": ["ALL"] },
        },
    });
    if let Some(resources) = &spec.resources {
        container["resources"] = json!(resources);
    }
    let mut pod_spec = json!({
        "serviceAccountName": name,
        "automountServiceAccountToken": false,
        "containers": [container],
        "volumes": [{ "name": "bootstrap", "configMap": { "name": name } }],
    });
    if !spec.node_selector.is_empty() {
        pod_spec["nodeSelector"] = json!(spec.node_selector);
    }
    if !spec.tolerations.is_empty() {
        pod_spec["tolerations"] = json!(spec.tolerations);
    }
    vec![
        json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(json!({})) }),
        json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(json!({})), "data": { BOOTSTRAP_KEY: bootstrap } }),
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(json!({})),
            "spec": {
                "replicas": spec.replicas,
                "selector": { "matchLabels": selector },
                "template": { "metadata": { "labels": labels }, "spec": pod_spec },
            }
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
    xds_host: &str,
    xds_port: u16,
) -> Result<(), (String, kube::Error)> {
    let namespace = gateway.namespace().unwrap_or_default();
    for object in desired_objects(gateway, xds_host, xds_port) {
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
        let objects = desired_objects(&gateway(json!({})), "legate-xds.legate-system.svc", 18000);
        let kinds: Vec<&str> = objects
            .iter()
            .map(|o| o["kind"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(kinds, ["ServiceAccount", "ConfigMap", "Deployment", "Service"]);
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
            "x",
            1,
        );
        assert_eq!(node_port[3]["spec"]["ports"][0]["nodePort"], 30080);
        assert_eq!(node_port[3]["spec"]["type"], "NodePort");
    }

    #[test]
    fn route_changes_cannot_touch_the_pod_template() {
        // The template depends on the Gateway alone: two calls with the same
        // Gateway give the same template, whatever the routes are.
        let g = gateway(json!({}));
        let a = desired_objects(&g, "x", 1);
        let b = desired_objects(&g, "x", 1);
        assert_eq!(a[2]["spec"]["template"], b[2]["spec"]["template"]);
    }
}
