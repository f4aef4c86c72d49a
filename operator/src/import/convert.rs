//! The conversion of a whole input: an index pass (what objects say about
//! each other), one conversion per document, the Gateway from Listeners and
//! the Module, and the notes only the Mappings together show.

use legate_crds::{GatewayRef, MappingSpec};
use serde::Serialize;
use serde_json::Value;

use super::context::Context;
use super::gateway;
use super::groups::{self, Placed, TlsClaim};
use super::listener::{self, ConvertedListener};
use super::module::{self, ModuleSettings};
use super::object::{self, Emissary};
use super::read::Document;
use super::report::{DocReport, Outcome, Report};
use super::{host, mapping, services, tls};

/// Every Legate object made, in input order (the Gateway first), and the report.
#[derive(Debug, Default)]
pub struct Conversion {
    /// `(Kind, namespace, name)` and the object.
    pub objects: Vec<(ObjectKey, Value)>,
    pub report: Report,
}

/// Which object: kind, namespace (None when the input gave none), name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectKey {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

fn namespace_of(value: &Value) -> String {
    value["metadata"]["namespace"]
        .as_str()
        .or_else(|| value["namespace"].as_str())
        .unwrap_or("default")
        .to_string()
}

fn spec_of(value: &Value) -> &Value {
    if value.get("metadata").is_some() {
        &value["spec"]
    } else {
        value
    }
}

fn is_emissary(value: &Value, kind: &str) -> bool {
    value["kind"] == kind
        && value["apiVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("getambassador.io/") || v.starts_with("ambassador/"))
}

/// The index pass: TLSContexts without hosts (for Mappings' `tls`) and Hosts
/// that name a TLSContext.
fn index(documents: &[Document], ctx: &mut Context) {
    for doc in documents {
        let value = &doc.value;
        let namespace = namespace_of(value);
        let name = value["metadata"]["name"]
            .as_str()
            .or_else(|| value["name"].as_str());
        if is_emissary(value, "TLSContext")
            && let (Some(name), Some(tls)) = (name, tls::origination(spec_of(value), &namespace))
        {
            ctx.origination.insert((namespace.clone(), name.to_string()), tls);
        }
        if is_emissary(value, "Host")
            && let Some((context, hostname)) = host::named_tls_context(spec_of(value))
        {
            ctx.host_tls_contexts
                .entry((namespace, context))
                .or_default()
                .push(hostname);
        }
    }
    ctx.has_listeners = documents.iter().any(|d| is_emissary(&d.value, "Listener"));
    // A TLSContext that a Host names serves that Host: it is not a client context.
    let served: Vec<_> = ctx.host_tls_contexts.keys().cloned().collect();
    for key in served {
        ctx.origination.remove(&key);
    }
}

/// Converts every document.
pub fn convert_all(documents: Vec<Document>, gateway: Option<GatewayRef>, ambassador_id: &str) -> Conversion {
    let mut ctx = Context {
        gateway,
        ambassador_id: ambassador_id.to_string(),
        ..Context::default()
    };
    index(&documents, &mut ctx);
    let fleet_namespace = documents
        .iter()
        .find(|d| is_emissary(&d.value, "Module") || is_emissary(&d.value, "Listener"))
        .map(|d| namespace_of(&d.value));
    let gateway_name = ctx
        .gateway
        .as_ref()
        .map_or("emissary".to_string(), |g| g.name.clone());
    let gateway_namespace = ctx
        .gateway
        .as_ref()
        .and_then(|g| g.namespace.clone())
        .or(fleet_namespace)
        .unwrap_or_else(|| "default".into());
    let gateway_key = ObjectKey {
        kind: "Gateway".into(),
        namespace: Some(gateway_namespace.clone()),
        name: gateway_name.clone(),
    };

    let mut conversion = Conversion::default();
    let mut listeners: Vec<ConvertedListener> = Vec::new();
    let mut module: Option<ModuleSettings> = None;
    let mut mappings: Vec<(usize, String, MappingSpec)> = Vec::new();
    let mut tls_claims: Vec<TlsClaim> = Vec::new();
    for doc in documents {
        let mut report = DocReport::new(doc.source, object::describe(&doc.value));
        let outcome = match object::open(doc.value, &mut report) {
            Err(why) => Outcome::Refused(why),
            Ok(object) => {
                let kind = object.kind.clone();
                let namespace = object.namespace_or_default().to_string();
                let made = one(object, &ctx, &mut report, &listeners, &gateway_key);
                match made {
                    Err(why) => Outcome::Refused(why),
                    Ok(Made::Objects(mut objects)) => {
                        for (key, value) in &mut objects {
                            unique_name(key, value, &kind, &conversion.objects, &mut report);
                        }
                        let keys: Vec<String> = objects.iter().map(|(k, _)| k.to_string()).collect();
                        for (key, value) in &objects {
                            if key.kind == "TLSContext" {
                                let hosts = value["spec"]["hosts"]
                                    .as_array()
                                    .map(|h| h.iter().filter_map(|v| v.as_str().map(String::from)).collect())
                                    .unwrap_or_default();
                                tls_claims.push(TlsClaim {
                                    report: conversion.report.docs.len(),
                                    namespace: namespace.clone(),
                                    hosts,
                                });
                            }
                        }
                        if kind == "Mapping" {
                            for (_, value) in &objects {
                                if let Ok(spec) = serde_json::from_value::<MappingSpec>(value["spec"].clone())
                                {
                                    mappings.push((conversion.report.docs.len(), namespace.clone(), spec));
                                }
                            }
                        }
                        conversion.objects.extend(objects);
                        Outcome::Converted(keys)
                    }
                    Ok(Made::Listener(l)) => {
                        let what = format!("{gateway_key} (listener {})", l.listener.name);
                        listeners.push(*l);
                        Outcome::Converted(vec![what])
                    }
                    Ok(Made::Module(m)) => {
                        if module.is_some() {
                            Outcome::Refused(
                                "a second ambassador Module: Emissary reads one per installation".into(),
                            )
                        } else {
                            module = Some(*m);
                            Outcome::Converted(vec![format!(
                                "{gateway_key} (defaults, http, accessLog, listeners)"
                            )])
                        }
                    }
                }
            }
        };
        report.outcome = outcome;
        conversion.report.docs.push(report);
    }
    let placed: Vec<Placed<'_>> = mappings
        .iter()
        .map(|(report, namespace, spec)| Placed {
            report: *report,
            namespace: namespace.clone(),
            spec,
        })
        .collect();
    groups::judge(&placed, &tls_claims, &mut conversion.report.docs);
    if !listeners.is_empty() || module.is_some() {
        let gw = gateway::assemble(&gateway_name, &gateway_namespace, listeners, module);
        if let Some(value) = to_value(&gw) {
            conversion.objects.insert(0, (gateway_key, value));
        }
    }
    conversion
}

/// What one document became.
enum Made {
    Objects(Vec<(ObjectKey, Value)>),
    Listener(Box<ConvertedListener>),
    Module(Box<ModuleSettings>),
}

fn one(
    object: Emissary,
    ctx: &Context,
    report: &mut DocReport,
    listeners: &[ConvertedListener],
    gateway: &ObjectKey,
) -> Result<Made, String> {
    let key = |kind: &str, object: &Emissary| ObjectKey {
        kind: kind.into(),
        namespace: object.namespace.clone(),
        name: object.name.clone(),
    };
    let single = |k: ObjectKey, v: Option<Value>| Made::Objects(v.map(|v| (k, v)).into_iter().collect());
    match object.kind.as_str() {
        "Mapping" => {
            let k = key("Mapping", &object);
            mapping::convert(object, ctx, report).map(|m| single(k, to_value(&m)))
        }
        "Host" => {
            let k = key("TLSContext", &object);
            host::convert(object, ctx, report).map(|t| single(k, t.as_ref().and_then(to_value)))
        }
        "TLSContext" => {
            let k = key("TLSContext", &object);
            tls::convert(object, ctx, report).map(|t| single(k, t.as_ref().and_then(to_value)))
        }
        "AuthService" => {
            let k = key("AuthService", &object);
            services::auth_service(object, ctx, report).map(|a| single(k, to_value(&a)))
        }
        "RateLimitService" => {
            let k = key("RateLimitService", &object);
            services::rate_limit_service(object, ctx, report).map(|r| single(k, to_value(&r)))
        }
        "TCPMapping" => {
            let k = key("TCPMapping", &object);
            services::tcp_mapping(object, ctx, report).map(|t| single(k, to_value(&t)))
        }
        "Listener" => {
            let taken: Vec<i32> = listeners.iter().map(|l| l.listener.port).collect();
            if object.namespace_or_default() != gateway.namespace.as_deref().unwrap_or("default") {
                report.changed(
                    "metadata.namespace",
                    format!("the listener belongs to {gateway}, in that Gateway's namespace"),
                );
            }
            listener::convert(object, ctx, &taken, report).map(|l| Made::Listener(Box::new(l)))
        }
        "Module" => module::convert(object, ctx, report).map(|m| Made::Module(Box::new(m))),
        "TracingService" => Err("TracingService is not converted: set the Gateway's spec.tracing (OpenTelemetry or Zipkin collector)".into()),
        "LogService" => Err("LogService is not converted: set the Gateway's spec.accessLog (otlp for a collector)".into()),
        "KubernetesServiceResolver" | "KubernetesEndpointResolver" | "ConsulResolver" => {
            Err("resolvers are not converted: Legate resolves Services from EndpointSlices and URLs by DNS".into())
        }
        "DevPortal" => Err("Legate has no developer portal".into()),
        "Filter" | "FilterPolicy" | "RateLimit" | "WebApplicationFirewall" | "WebApplicationFirewallPolicy" => Err(format!(
            "{} is an Ambassador Edge Stack kind, not Emissary-ingress's: not converted (Legate's JWT checks are a Mapping's jwt; rate limits a RateLimitService's)",
            object.kind
        )),
        other => Err(format!("kind {other} is not an Emissary kind legate import converts")),
    }
}

/// Renames an object whose kind, namespace and name an earlier object has
/// (a Host and a TLSContext of the same name both make a TLSContext), so
/// that applying one never overwrites the other.
fn unique_name(
    key: &mut ObjectKey,
    value: &mut Value,
    source_kind: &str,
    made: &[(ObjectKey, Value)],
    report: &mut DocReport,
) {
    let taken = |k: &ObjectKey| made.iter().any(|(m, _)| m == k);
    if !taken(key) {
        return;
    }
    let original = key.name.clone();
    let mut candidate = ObjectKey {
        name: format!("{original}-{}", source_kind.to_ascii_lowercase()),
        ..key.clone()
    };
    let mut n = 2;
    while taken(&candidate) {
        candidate.name = format!("{original}-{}-{n}", source_kind.to_ascii_lowercase());
        n += 1;
    }
    report.changed(
        "metadata.name",
        format!(
            "{} {original} is made from another document: this one is named {}",
            key.kind, candidate.name
        ),
    );
    value["metadata"]["name"] = Value::String(candidate.name.clone());
    *key = candidate;
}

fn to_value(object: &impl Serialize) -> Option<Value> {
    serde_json::to_value(object).ok()
}
