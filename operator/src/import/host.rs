//! Emissary `Host` → a Legate `TLSContext` for its hostname (with its
//! `tlsSecret`, inline `tls` and cleartext policy), or nothing for a
//! cleartext Host: Legate serves whatever hostname a Mapping names.

use legate_crds::TLSContext;
use legate_crds::tls_context::InsecureAction;
use serde_json::Value;

use super::context::Context;
use super::fields::Fields;
use super::hostname::glob;
use super::object::Emissary;
use super::report::DocReport;
use super::tls;

/// The TLSContext a Host names (`spec.tlsContext.name`), from the raw
/// document: that TLSContext serves the Host's hostname too.
pub fn named_tls_context(spec: &Value) -> Option<(String, String)> {
    let hostname = spec["hostname"].as_str()?.to_ascii_lowercase();
    let context = spec["tlsContext"]["name"].as_str()?;
    Some((context.to_string(), hostname))
}

/// Converts one Host.
pub fn convert(
    mut object: Emissary,
    ctx: &Context,
    report: &mut DocReport,
) -> Result<Option<TLSContext>, String> {
    let namespace = object.namespace_or_default().to_string();
    let spec = &mut object.spec;
    ctx.ambassador_id(spec, report)?;
    let hostname = spec
        .string("hostname", report)
        .ok_or("no hostname: Legate's TLS and routes are per hostname")?;
    let hostname = glob("spec.hostname", &hostname, report)?;
    for key in ["mappingSelector", "selector"] {
        spec.changed(
            key,
            "Legate associates Mappings with a host by their hostname only; labels select nothing",
            report,
        );
    }
    spec.drop("previewUrl", "Legate has no Service Preview", report);
    let acme = spec.object("acmeProvider", report).map(|mut a| {
        let authority = a.string("authority", report).unwrap_or_default();
        for key in ["email", "privateKeySecret", "registration"] {
            a.ignore(key);
        }
        a.finish("acmeProvider", report);
        !authority.eq_ignore_ascii_case("none")
    });
    // Only Ambassador Edge Stack runs ACME, when acmeProvider says so;
    // Emissary-ingress never does.
    let acme = acme.unwrap_or(false);
    let secret = spec.object("tlsSecret", report).and_then(|mut s| {
        let name = s.string("name", report);
        let ns = s.string("namespace", report);
        s.finish("tlsSecret", report);
        name.map(|n| (n, ns))
    });
    let named_context = spec.object("tlsContext", report).and_then(|mut c| {
        let name = c.string("name", report);
        c.finish("tlsContext", report);
        name
    });
    let mut inline = spec.object("tls", report);
    let mut insecure = None;
    if let Some(mut policy) = spec.object("requestPolicy", report) {
        if let Some(mut i) = policy.object("insecure", report) {
            insecure = match i.string("action", report).as_deref() {
                Some("Redirect") | None => Some(InsecureAction::Redirect),
                Some("Reject") => Some(InsecureAction::Reject),
                Some("Route") => Some(InsecureAction::Route),
                Some(other) => {
                    report.dropped(
                        i.at("action"),
                        format!("{other:?} is not Redirect, Reject or Route"),
                    );
                    None
                }
            };
            if let Some(port) = i.integer("additionalPort", report) {
                report.changed(
                    i.at("additionalPort"),
                    format!(
                        "port {port}: Legate applies insecure.action on every HTTP listener of the Gateway"
                    ),
                );
            }
            i.finish("requestPolicy.insecure", report);
        }
        policy.finish("requestPolicy", report);
    }

    if let Some(name) = named_context {
        if let Some(inline) = inline.take() {
            drop_inline(inline, "tlsContext is set too; Emissary refuses both", report);
        }
        if secret.is_some() {
            report.changed(
                "spec.tlsSecret",
                format!("TLSContext {name} is named too: its secret serves this host"),
            );
        }
        if acme {
            report.dropped(
                "spec.acmeProvider",
                "Legate does not request certificates by ACME (use cert-manager to fill the Secret)",
            );
        }
        if insecure.is_some() {
            report.dropped(
                "spec.requestPolicy.insecure",
                format!("the cleartext policy is TLSContext {name}'s (insecure.action); the import does not change it"),
            );
        }
        report.changed(
            "spec.tlsContext",
            format!("TLSContext {name} serves this hostname: its hosts gain {hostname}"),
        );
        object.spec.finish("a Host", report);
        return Ok(None);
    }
    let Some((secret, secret_ns)) = secret else {
        if let Some(inline) = inline.take() {
            drop_inline(inline, "a Host without tlsSecret terminates no TLS", report);
        }
        if acme {
            return Err(format!(
                "{hostname} gets its certificate by ACME, which Legate does not do: create its Secret (for example with cert-manager), set tlsSecret, and import again"
            ));
        }
        if insecure.is_some() {
            report.dropped(
                "spec.requestPolicy.insecure",
                "a cleartext host has no secure side to redirect to",
            );
        }
        report.changed(
            "spec.hostname",
            "a cleartext Host: Legate needs no object for it, it serves every hostname a Mapping names",
        );
        object.spec.finish("a Host", report);
        return Ok(None);
    };
    if acme {
        report.dropped(
            "spec.acmeProvider",
            "Legate does not renew certificates by ACME: whatever fills the Secret (cert-manager) must",
        );
    }
    if let Some(ns) = secret_ns.filter(|ns| *ns != namespace) {
        return Err(format!(
            "tlsSecret is in namespace {ns}: Legate reads TLS Secrets from the TLSContext's own namespace ({namespace}) only; copy the Secret there"
        ));
    }
    let mut out = tls::spec(vec![hostname], secret, ctx);
    if ctx.gateway.is_none() {
        report.changed(
            "metadata.namespace",
            "the TLSContext gives its private key only to Gateways of its own namespace unless spec.gateways names others (import with --gateway)",
        );
    }
    if let Some(mut inline) = inline {
        tls::settings(&mut inline, Some(&mut out), &namespace, true, report);
        inline.finish("tls", report);
    }
    if let Some(action) = insecure {
        out.insecure.action = action;
    }
    object.spec.finish("a Host", report);
    Ok(Some(TLSContext {
        metadata: object.meta(),
        spec: out,
        status: None,
    }))
}

fn drop_inline(mut inline: Fields, why: &str, report: &mut DocReport) {
    for key in inline.keys() {
        inline.drop(&key, why, report);
    }
}
