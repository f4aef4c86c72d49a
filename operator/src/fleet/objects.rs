//! The objects of a Gateway's fleet, built as k8s-openapi types. Each builder
//! sets the object's name and what is particular to it; `Owner::apply` adds
//! the namespace, the labels every child carries and the owner reference.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, HTTPGetAction, Lifecycle, LifecycleHandler, ObjectFieldSelector, PodSecurityContext,
    PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecretVolumeSource,
    SecurityContext, Service, ServiceAccount, ServicePort, ServiceSpec, SleepAction,
    TopologySpreadConstraint, Volume, VolumeMount,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use legate_crds::Gateway;
use legate_crds::gateway::ServiceType;
use legate_xds::bootstrap::{BootstrapConfig, PROMETHEUS_PATH, XdsTls};
use legate_xds::hash::hash_bytes;

use super::{
    ADMIN_SOCKET, ADMIN_SOCKET_DIR, BOOTSTRAP_KEY, FleetSettings, HEALTH_PORT, Owner, XDS_TLS_DIR,
    fleet_name, xds_secret_name,
};
use crate::pki::{CA_CERT_KEY, CERT_KEY, KEY_KEY};

/// The UID Envoy runs as (the official image's `envoy` user).
const ENVOY_UID: i64 = 101;
/// The emptyDir volume that holds Envoy's admin socket ([`ADMIN_SOCKET`]).
const ADMIN_VOLUME: &str = "envoy-admin";
/// The pod template annotation whose change rolls the pods when the xDS
/// client certificate is renewed.
pub const CERTIFICATE_NOT_AFTER_ANNOTATION: &str = "legate.dev/xds-certificate-not-after";
/// The pod template annotation whose change rolls the pods when their
/// bootstrap changes (an upgrade of the operator, a new xDS address): Envoy
/// reads it only at start.
pub const BOOTSTRAP_HASH_ANNOTATION: &str = "legate.dev/bootstrap-hash";

/// A Gateway's fleet, in the order it is applied: the ServiceAccount and the
/// ConfigMap exist before the Deployment's pods need them.
#[derive(Debug, Clone, PartialEq)]
pub struct Fleet {
    pub service_account: ServiceAccount,
    pub config_map: ConfigMap,
    /// Without `replicas` when the Gateway has `autoscaling`: they are the
    /// autoscaler's then.
    pub deployment: Deployment,
    /// The HorizontalPodAutoscaler of the Deployment, when the Gateway has
    /// `autoscaling`; without, any the Gateway had is deleted.
    pub autoscaler: Option<HorizontalPodAutoscaler>,
    pub pod_disruption_budget: PodDisruptionBudget,
    pub service: Service,
}

impl Fleet {
    /// The fleet a Gateway should have. `certificate_not_after` is set when
    /// Envoys authenticate with a client certificate (valid until then); its
    /// renewal rolls the pods, as does a changed bootstrap. Route changes
    /// never reach here, so the pod template changes only with replicas,
    /// image, listeners, resources or the bootstrap.
    pub fn desired(
        owner: &Owner,
        gateway: &Gateway,
        settings: &FleetSettings,
        certificate_not_after: Option<&str>,
    ) -> Fleet {
        let parts = Parts {
            owner,
            gateway,
            name: fleet_name(gateway),
        };
        let config_map = parts.config_map(settings, certificate_not_after.is_some());
        let bootstrap = config_map.data.as_ref().and_then(|d| d.get(BOOTSTRAP_KEY));
        let bootstrap_hash = format!("{:016x}", hash_bytes(bootstrap.map_or(&[][..], |b| b.as_bytes())));
        Fleet {
            service_account: parts.service_account(),
            config_map,
            deployment: parts.deployment(settings, certificate_not_after, &bootstrap_hash),
            autoscaler: parts.autoscaler(),
            pod_disruption_budget: parts.pod_disruption_budget(),
            service: parts.service(settings),
        }
    }
}

/// What every builder reads.
struct Parts<'a> {
    owner: &'a Owner,
    gateway: &'a Gateway,
    /// The name of every object of the fleet.
    name: String,
}

impl Parts<'_> {
    /// The Gateway's labels plus the one that says these objects are Envoy.
    fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.owner.labels();
        labels.insert("app.kubernetes.io/name".into(), "envoy".into());
        labels
    }

    fn meta(&self) -> ObjectMeta {
        ObjectMeta {
            name: Some(self.name.clone()),
            labels: Some(self.labels()),
            ..ObjectMeta::default()
        }
    }

    fn selector(&self) -> LabelSelector {
        LabelSelector {
            match_labels: Some(self.owner.selector()),
            ..LabelSelector::default()
        }
    }

    fn service_account(&self) -> ServiceAccount {
        ServiceAccount {
            metadata: self.meta(),
            automount_service_account_token: Some(false),
            ..ServiceAccount::default()
        }
    }

    fn config_map(&self, settings: &FleetSettings, client_certificate: bool) -> ConfigMap {
        // The node id comes from the pod name (--service-node); the bootstrap's is a placeholder.
        let mut bootstrap =
            BootstrapConfig::new("envoy", self.owner.key(), &settings.xds_host, settings.xds_port);
        if settings.probes {
            // In a pod, the admin API listens on no TCP port at all: tenants'
            // routes can reach 127.0.0.1. Envoys run on this machine (no
            // probes) keep a free loopback port, which tests read.
            bootstrap.admin_socket = Some(ADMIN_SOCKET.into());
            bootstrap.health_port = Some(HEALTH_PORT);
        }
        if client_certificate {
            bootstrap.xds_tls = Some(XdsTls {
                ca_path: format!("{XDS_TLS_DIR}/{CA_CERT_KEY}"),
                cert_path: format!("{XDS_TLS_DIR}/{CERT_KEY}"),
                key_path: format!("{XDS_TLS_DIR}/{KEY_KEY}"),
            });
        }
        ConfigMap {
            metadata: self.meta(),
            data: Some([(BOOTSTRAP_KEY.to_string(), bootstrap.to_yaml())].into()),
            ..ConfigMap::default()
        }
    }

    fn deployment(
        &self,
        settings: &FleetSettings,
        certificate_not_after: Option<&str>,
        bootstrap_hash: &str,
    ) -> Deployment {
        let spec = &self.gateway.spec;
        let mut annotations = scrape_annotations(settings);
        annotations.insert(BOOTSTRAP_HASH_ANNOTATION.to_string(), bootstrap_hash.to_string());
        if let Some(not_after) = certificate_not_after {
            // Envoy reads its xDS certificate at start: a renewed one rolls the pods.
            annotations.insert(
                CERTIFICATE_NOT_AFTER_ANNOTATION.to_string(),
                not_after.to_string(),
            );
        }
        Deployment {
            metadata: self.meta(),
            spec: Some(DeploymentSpec {
                // With autoscaling, replicas are not Legate's: leaving them out of
                // the apply is what keeps it from undoing the autoscaler's count.
                replicas: spec.autoscaling.is_none().then_some(spec.replicas),
                selector: self.selector(),
                // Never below the current count during a rollout.
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_unavailable: Some(IntOrString::Int(0)),
                        max_surge: Some(IntOrString::Int(1)),
                    }),
                }),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(self.labels()),
                        annotations: Some(annotations),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(self.pod(settings, certificate_not_after.is_some())),
                },
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        }
    }

    fn pod(&self, settings: &FleetSettings, client_certificate: bool) -> PodSpec {
        let spec = &self.gateway.spec;
        let mut volumes = vec![
            Volume {
                name: "bootstrap".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: self.name.clone(),
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            },
            Volume {
                name: "tmp".into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Volume::default()
            },
        ];
        if settings.probes {
            volumes.push(Volume {
                name: ADMIN_VOLUME.into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Volume::default()
            });
        }
        if client_certificate {
            volumes.push(Volume {
                name: "xds-tls".into(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(xds_secret_name(self.gateway)),
                    default_mode: Some(0o440),
                    ..SecretVolumeSource::default()
                }),
                ..Volume::default()
            });
        }
        PodSpec {
            service_account_name: Some(self.name.clone()),
            automount_service_account_token: Some(false),
            termination_grace_period_seconds: Some(30),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                fs_group: Some(ENVOY_UID),
                ..PodSecurityContext::default()
            }),
            containers: vec![self.envoy(settings, client_certificate)],
            volumes: Some(volumes),
            // Spread the Envoys over nodes so that one node going away takes one Envoy.
            topology_spread_constraints: Some(vec![TopologySpreadConstraint {
                max_skew: 1,
                topology_key: "kubernetes.io/hostname".into(),
                when_unsatisfiable: "ScheduleAnyway".into(),
                label_selector: Some(self.selector()),
                ..TopologySpreadConstraint::default()
            }]),
            node_selector: (!spec.node_selector.is_empty()).then(|| spec.node_selector.clone()),
            tolerations: (!spec.tolerations.is_empty()).then(|| spec.tolerations.clone()),
            ..PodSpec::default()
        }
    }

    fn envoy(&self, settings: &FleetSettings, client_certificate: bool) -> Container {
        let spec = &self.gateway.spec;
        let mut ports: Vec<ContainerPort> = spec
            .listeners
            .iter()
            .map(|l| ContainerPort {
                name: Some(l.name.clone()),
                container_port: l.port,
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            })
            .collect();
        let mut mounts = vec![
            VolumeMount {
                name: "bootstrap".into(),
                mount_path: "/etc/envoy".into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            // Envoy's scratch space: its root filesystem is read-only.
            VolumeMount {
                name: "tmp".into(),
                mount_path: "/tmp".into(),
                ..VolumeMount::default()
            },
        ];
        if settings.probes {
            // The admin socket; the only thing Envoy writes besides /tmp.
            mounts.push(VolumeMount {
                name: ADMIN_VOLUME.into(),
                mount_path: ADMIN_SOCKET_DIR.into(),
                ..VolumeMount::default()
            });
        }
        if client_certificate {
            mounts.push(VolumeMount {
                name: "xds-tls".into(),
                mount_path: XDS_TLS_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            });
        }
        let mut container = Container {
            name: "envoy".into(),
            image: Some(spec.image.clone()),
            args: Some(vec![
                "--config-path".into(),
                format!("/etc/envoy/{BOOTSTRAP_KEY}"),
                "--service-node".into(),
                "$(POD_NAME)".into(),
                "--service-cluster".into(),
                self.owner.key().to_string(),
                "--log-level".into(),
                "info".into(),
                // On SIGTERM, Envoy stops at once; the preStop pause below is the drain.
                "--drain-time-s".into(),
                "15".into(),
            ]),
            env: Some(vec![EnvVar {
                name: "POD_NAME".into(),
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        field_path: "metadata.name".into(),
                        ..ObjectFieldSelector::default()
                    }),
                    ..EnvVarSource::default()
                }),
                ..EnvVar::default()
            }]),
            volume_mounts: Some(mounts),
            resources: Some(spec.resources.clone().unwrap_or_else(default_resources)),
            security_context: Some(SecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(ENVOY_UID),
                run_as_group: Some(ENVOY_UID),
                allow_privilege_escalation: Some(false),
                read_only_root_filesystem: Some(true),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    ..Capabilities::default()
                }),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    ..SeccompProfile::default()
                }),
                ..SecurityContext::default()
            }),
            // Terminating: the pod leaves the Service's endpoints at once; Envoy
            // keeps serving in-flight and late-routed requests for 10 s, then exits.
            lifecycle: Some(Lifecycle {
                pre_stop: Some(LifecycleHandler {
                    sleep: Some(SleepAction { seconds: 10 }),
                    ..LifecycleHandler::default()
                }),
                ..Lifecycle::default()
            }),
            ..Container::default()
        };
        if settings.probes {
            ports.push(ContainerPort {
                name: Some("health".into()),
                container_port: i32::from(HEALTH_PORT),
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            });
            // 200 only once Envoy is initialized: its listeners arrived over xDS.
            container.readiness_probe = Some(health_probe("/ready", 2, 2));
            // Envoy opens no listener, the probe listener included, until its
            // first configuration arrived: allow five minutes for that before the
            // liveness probe may restart it.
            container.startup_probe = Some(health_probe("/healthz", 5, 60));
            container.liveness_probe = Some(health_probe("/healthz", 10, 3));
        }
        container.ports = Some(ports);
        container
    }

    /// Scales the Deployment between the Gateway's bounds on the Envoys'
    /// average CPU use, relative to their request.
    fn autoscaler(&self) -> Option<HorizontalPodAutoscaler> {
        let autoscaling = self.gateway.spec.autoscaling.as_ref()?;
        Some(HorizontalPodAutoscaler {
            metadata: self.meta(),
            spec: Some(HorizontalPodAutoscalerSpec {
                scale_target_ref: CrossVersionObjectReference {
                    api_version: Some("apps/v1".into()),
                    kind: "Deployment".into(),
                    name: self.name.clone(),
                },
                min_replicas: Some(autoscaling.min_replicas),
                max_replicas: autoscaling.max_replicas,
                metrics: Some(vec![MetricSpec {
                    type_: "Resource".into(),
                    resource: Some(ResourceMetricSource {
                        name: "cpu".into(),
                        target: MetricTarget {
                            type_: "Utilization".into(),
                            average_utilization: Some(autoscaling.target_cpu_utilization_percentage),
                            ..MetricTarget::default()
                        },
                    }),
                    ..MetricSpec::default()
                }]),
                behavior: None,
            }),
            ..HorizontalPodAutoscaler::default()
        })
    }

    fn pod_disruption_budget(&self) -> PodDisruptionBudget {
        PodDisruptionBudget {
            metadata: self.meta(),
            // Voluntary disruptions (node drains) take one Envoy at a time.
            spec: Some(PodDisruptionBudgetSpec {
                max_unavailable: Some(IntOrString::Int(1)),
                selector: Some(self.selector()),
                ..PodDisruptionBudgetSpec::default()
            }),
            ..PodDisruptionBudget::default()
        }
    }

    fn service(&self, settings: &FleetSettings) -> Service {
        let spec = &self.gateway.spec;
        let node_ports = matches!(
            spec.service_type,
            ServiceType::NodePort | ServiceType::LoadBalancer
        );
        let ports = spec
            .listeners
            .iter()
            .map(|l| ServicePort {
                name: Some(l.name.clone()),
                port: l.port,
                target_port: Some(IntOrString::Int(l.port)),
                protocol: Some("TCP".into()),
                node_port: l.node_port.filter(|_| node_ports),
                ..ServicePort::default()
            })
            .collect();
        let service_type = match spec.service_type {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        };
        let mut metadata = self.meta();
        // The Gateway's own annotations win: `prometheus.io/scrape: "false"`
        // turns the Service's scraping off. The probe port stays out of the
        // Service's ports (a LoadBalancer would publish the stats): the
        // annotations are for scrapers that discover through Endpoints.
        let mut annotations = scrape_annotations(settings);
        annotations.extend(spec.service_annotations.clone());
        metadata.annotations = Some(annotations);
        Service {
            metadata,
            spec: Some(ServiceSpec {
                type_: Some(service_type.into()),
                selector: Some(self.owner.selector()),
                ports: Some(ports),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        }
    }
}

/// The usual Prometheus scrape annotations, pointing at the stats the probe
/// listener serves; none for Envoys without it (run on the operator's
/// machine, their stats are on the admin API).
fn scrape_annotations(settings: &FleetSettings) -> BTreeMap<String, String> {
    if !settings.probes {
        return BTreeMap::new();
    }
    [
        ("prometheus.io/scrape", "true".to_string()),
        ("prometheus.io/port", HEALTH_PORT.to_string()),
        ("prometheus.io/path", PROMETHEUS_PATH.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Without the Gateway's own numbers: enough to schedule sensibly, and a
/// memory ceiling that matches the overload manager's heap limit.
fn default_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(
            [
                ("cpu".to_string(), Quantity("100m".into())),
                ("memory".to_string(), Quantity("128Mi".into())),
            ]
            .into(),
        ),
        limits: Some([("memory".to_string(), Quantity("1Gi".into()))].into()),
        ..ResourceRequirements::default()
    }
}

/// A GET on Envoy's probe listener.
fn health_probe(path: &str, period_seconds: i32, failure_threshold: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(i32::from(HEALTH_PORT)),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period_seconds),
        failure_threshold: Some(failure_threshold),
        ..Probe::default()
    }
}
