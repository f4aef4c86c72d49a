//! Emissary `TLSContext` → Legate `TLSContext`, and the TLS settings that a
//! TLSContext and a Host's inline `tls` share. A TLSContext without hosts is
//! Emissary's client context for upstream TLS: it becomes the `upstreamTls`
//! of the Mappings that name it (see [`origination`]).

use legate_crds::mapping::UpstreamTls;
use legate_crds::tls_context::{Insecure, InsecureAction, TlsVersion};
use legate_crds::{TLSContext, TLSContextSpec};
use serde_json::Value;

use super::context::Context;
use super::fields::Fields;
use super::hostname::glob;
use super::object::Emissary;
use super::report::DocReport;

/// An empty Legate TLSContext spec for `hosts` and `secret`.
pub fn spec(hosts: Vec<String>, secret: String, ctx: &Context) -> TLSContextSpec {
    TLSContextSpec {
        hosts,
        secret,
        ca_secret: None,
        cert_required: None,
        min_tls_version: None,
        max_tls_version: None,
        alpn_protocols: Vec::new(),
        cipher_suites: Vec::new(),
        insecure: Insecure::default(),
        gateways: ctx.gateways(),
    }
}

/// The upstream TLS of a TLSContext without hosts, read from the raw
/// document before conversion (Mappings that name it need it).
pub fn origination(spec: &Value, namespace: &str) -> Option<UpstreamTls> {
    let hosts = spec["hosts"].as_array().is_some_and(|h| !h.is_empty());
    if hosts {
        return None;
    }
    let text = |key: &str| spec[key].as_str().filter(|s| !s.is_empty()).map(String::from);
    let namespacing = spec["secret_namespacing"].as_bool().unwrap_or(true);
    Some(UpstreamTls {
        sni: text("sni"),
        ca_secret: text("ca_secret").and_then(|s| local_secret(&s, namespace, namespacing).ok()),
        client_cert_secret: text("secret").and_then(|s| local_secret(&s, namespace, namespacing).ok()),
    })
}

/// A Secret name of `namespace`: Emissary's `name.namespace` form is read
/// when `namespacing` is on; another namespace is `Err` (Legate reads only
/// Secrets of the object's own namespace).
pub fn local_secret(text: &str, namespace: &str, namespacing: bool) -> Result<String, String> {
    match text.split_once('.') {
        Some((name, ns)) if namespacing => {
            if ns == namespace {
                Ok(name.to_string())
            } else {
                Err(format!(
                    "Secret {name} of namespace {ns}: Legate reads TLS Secrets from the TLSContext's own namespace ({namespace}) only; copy the Secret there"
                ))
            }
        }
        _ => Ok(text.to_string()),
    }
}

/// Converts one TLSContext; `Ok(None)` for a client context (no hosts), which
/// the Mappings naming it carry.
pub fn convert(
    mut object: Emissary,
    ctx: &Context,
    report: &mut DocReport,
) -> Result<Option<TLSContext>, String> {
    let namespace = object.namespace_or_default().to_string();
    let spec = &mut object.spec;
    ctx.ambassador_id(spec, report)?;
    let mut hosts = Vec::new();
    for host in spec.strings("hosts", report) {
        hosts.push(glob("spec.hosts", &host, report)?);
    }
    let from_hosts = ctx
        .host_tls_contexts
        .get(&(namespace.clone(), object.name.clone()))
        .cloned()
        .unwrap_or_default();
    if !from_hosts.is_empty() {
        report.changed(
            "spec.hosts",
            format!(
                "Hosts name this TLSContext: it serves their hostnames too ({})",
                from_hosts.join(", ")
            ),
        );
        for host in from_hosts {
            if !hosts.contains(&host) {
                hosts.push(host);
            }
        }
    }
    let namespacing = spec.boolean("secret_namespacing", report).unwrap_or(true);
    let secret = spec.string("secret", report);
    if hosts.is_empty() {
        // Its settings were read into the Mappings that name it
        // (Context::origination); a Secret of another namespace was left out.
        let ca = spec.string("ca_secret", report);
        for (field, secret) in [("spec.secret", secret.as_ref()), ("spec.ca_secret", ca.as_ref())] {
            if let Some(Err(why)) = secret.map(|s| local_secret(s, &namespace, namespacing)) {
                report.dropped(field, why);
            }
        }
        spec.ignore("sni");
        report.changed(
            "spec",
            "no hosts: an Emissary client context for upstream TLS; no Legate TLSContext is made, the Mappings that name it (tls) get its secret, ca_secret and sni as upstreamTls",
        );
        settings(spec, None, &namespace, namespacing, report);
        object.spec.finish("a TLSContext", report);
        return Ok(None);
    }
    let Some(secret) = secret else {
        return Err(
            "no secret: Legate terminates TLS only with a certificate from a kubernetes.io/tls Secret (cert_chain_file and private_key_file are files on Emissary's pod)"
                .into(),
        );
    };
    let secret = local_secret(&secret, &namespace, namespacing)?;
    let mut out = spec_for(hosts, secret, ctx, report);
    settings(spec, Some(&mut out), &namespace, namespacing, report);
    object.spec.finish("a TLSContext", report);
    Ok(Some(TLSContext {
        metadata: object.meta(),
        spec: out,
        status: None,
    }))
}

fn spec_for(hosts: Vec<String>, secret: String, ctx: &Context, report: &mut DocReport) -> TLSContextSpec {
    if ctx.gateway.is_none() {
        report.changed(
            "metadata.namespace",
            "a Legate TLSContext gives its private key only to Gateways of its own namespace unless spec.gateways names others (import with --gateway to name one)",
        );
    }
    spec(hosts, secret, ctx)
}

/// Reads the TLS settings shared by a TLSContext and a Host's `tls` into
/// `out` (None: read and report only).
pub fn settings(
    f: &mut Fields,
    mut out: Option<&mut TLSContextSpec>,
    namespace: &str,
    namespacing: bool,
    report: &mut DocReport,
) {
    if let Some(ca) = f.string("ca_secret", report) {
        match local_secret(&ca, namespace, namespacing) {
            Ok(ca) => {
                if let Some(out) = out.as_deref_mut() {
                    out.ca_secret = Some(ca);
                }
            }
            Err(why) => report.dropped(f.at("ca_secret"), why),
        }
    }
    let cert_required = f.boolean("cert_required", report);
    let min = version(f, "min_tls_version", report);
    let max = version(f, "max_tls_version", report);
    let alpn = f.strings("alpn_protocols", report);
    let ciphers = f.strings("cipher_suites", report);
    if let Some(out) = out.as_deref_mut() {
        out.cert_required = cert_required;
        if cert_required == Some(true) && out.ca_secret.is_none() {
            report.dropped(
                f.at("cert_required"),
                "Legate requires client certificates only against a ca_secret, and there is none",
            );
            out.cert_required = None;
        }
        out.min_tls_version = min;
        out.max_tls_version = max;
        out.alpn_protocols = alpn;
        out.cipher_suites = ciphers;
    }
    if let Some(port) = f.integer("redirect_cleartext_from", report) {
        if let Some(out) = out {
            out.insecure.action = InsecureAction::Redirect;
        }
        report.changed(
            f.at("redirect_cleartext_from"),
            format!("port {port}: Legate redirects cleartext requests for these hosts to https on every HTTP listener (insecure.action Redirect, the default)"),
        );
    }
    let file = "a file on Emissary's pod: Legate reads certificates from Secrets only";
    f.drop("cert_chain_file", file, report);
    f.drop("private_key_file", file, report);
    f.drop("cacert_chain_file", file, report);
    f.drop(
        "crl_secret",
        "Legate does not check certificate revocation lists",
        report,
    );
    f.drop("ecdh_curves", "Legate offers Envoy's default curves", report);
    f.drop(
        "signature_algorithms",
        "Legate offers Envoy's default signature algorithms",
        report,
    );
    f.changed(
        "sni",
        "Legate chooses the certificate by the client's SNI among the hosts; there is no separate SNI to set",
        report,
    );
}

fn version(f: &mut Fields, key: &str, report: &mut DocReport) -> Option<TlsVersion> {
    let text = f.string(key, report)?;
    match text.as_str() {
        "v1.0" => Some(TlsVersion::V1_0),
        "v1.1" => Some(TlsVersion::V1_1),
        "v1.2" => Some(TlsVersion::V1_2),
        "v1.3" => Some(TlsVersion::V1_3),
        _ => {
            report.dropped(
                f.at(key),
                format!("{text:?} is not one of v1.0, v1.1, v1.2, v1.3"),
            );
            None
        }
    }
}
