//! Emissary `Listener` → one listener of the Legate Gateway the import
//! makes. Emissary's Listeners are separate objects; Legate's are a list in
//! the Gateway, which is the Envoy fleet.

use legate_crds::gateway::{Listener, Protocol};

use super::context::Context;
use super::object::Emissary;
use super::report::DocReport;

/// A converted Listener, and whether it binds only Hosts of its own
/// namespace (`hostBinding.namespace.from: SELF`).
#[derive(Debug)]
pub struct ConvertedListener {
    pub listener: Listener,
    pub self_namespace: bool,
}

/// Converts one Listener; `taken` are the ports of Listeners converted before.
pub fn convert(
    mut object: Emissary,
    ctx: &Context,
    taken: &[i32],
    report: &mut DocReport,
) -> Result<ConvertedListener, String> {
    let spec = &mut object.spec;
    ctx.ambassador_id(spec, report)?;
    let port = spec.integer("port", report).ok_or("no port")?;
    if !(1..=65535).contains(&port) {
        return Err(format!("port {port} is not a TCP port"));
    }
    let port = i32::try_from(port).map_err(|_| "port out of range".to_string())?;
    if taken.contains(&port) {
        return Err(format!(
            "port {port} is already a listener of the Gateway (from an earlier Listener)"
        ));
    }
    let protocol = spec.string("protocol", report);
    let stack = spec.strings("protocolStack", report);
    let (protocol, proxy_protocol) = match (protocol.as_deref(), stack.is_empty()) {
        (Some(p), true) => shorthand(p)?,
        (None, false) => from_stack(&stack)?,
        (Some(p), false) => {
            report.dropped(
                "spec.protocolStack",
                "protocol is set too (Emissary needs exactly one of them)",
            );
            shorthand(p)?
        }
        (None, true) => return Err("neither protocol nor protocolStack".into()),
    };
    let mut trusted_hops = None;
    if let Some(depth) = spec.integer("l7Depth", report) {
        if matches!(protocol, Protocol::Http | Protocol::Https) && depth > 0 {
            let hops = u32::try_from(depth.min(10)).unwrap_or(10);
            if depth > 10 {
                report.changed("spec.l7Depth", format!("{depth}: Legate trusts at most 10 hops"));
            }
            trusted_hops = Some(hops);
        } else if depth > 0 {
            report.dropped("spec.l7Depth", "a TCP or TLS listener reads no X-Forwarded-For");
        }
    }
    if let Some(model) = spec.string("securityModel", report) {
        let how = match model.as_str() {
            "XFP" => {
                "Legate judges a request secure by its listener, and believes X-Forwarded-Proto only from trustedHops proxies (l7Depth)"
            }
            "SECURE" => {
                "Legate judges a request secure when it came over TLS; a cleartext listener is insecure (a TLS-terminating load balancer in front needs trustedHops)"
            }
            "INSECURE" => {
                "Legate judges a cleartext listener insecure: cleartext requests for TLS hosts follow their TLSContext's insecure.action"
            }
            _ => "not XFP, SECURE or INSECURE",
        };
        report.changed("spec.securityModel", format!("{model}: {how}"));
    }
    let mut self_namespace = false;
    if let Some(mut binding) = spec.object("hostBinding", report) {
        if let Some(mut ns) = binding.object("namespace", report) {
            match ns.string("from", report).as_deref() {
                Some("SELF") => {
                    self_namespace = true;
                    report.changed(
                        "spec.hostBinding.namespace.from",
                        "SELF: the Gateway admits routes of its own namespace only (allowedRoutes.namespaces.from Same), on every listener",
                    );
                }
                Some("ALL") | None => {}
                Some(other) => report.dropped(
                    "spec.hostBinding.namespace.from",
                    format!("{other:?} is not read"),
                ),
            }
            ns.finish("hostBinding.namespace", report);
        }
        binding.changed(
            "selector",
            "Legate listeners serve every host of the Gateway; hosts are chosen by Mappings and TLSContexts",
            report,
        );
        binding.finish("hostBinding", report);
    }
    spec.drop("statsPrefix", "Legate names listener statistics itself", report);
    let name = listener_name(&object.name, port);
    object.spec.finish("a Listener", report);
    Ok(ConvertedListener {
        listener: Listener {
            name,
            port,
            protocol,
            node_port: None,
            trusted_hops,
            proxy_protocol,
        },
        self_namespace,
    })
}

fn shorthand(protocol: &str) -> Result<(Protocol, bool), String> {
    Ok(match protocol {
        "HTTP" => (Protocol::Http, false),
        "HTTPS" => (Protocol::Https, false),
        "HTTPPROXY" => (Protocol::Http, true),
        "HTTPSPROXY" => (Protocol::Https, true),
        "TCP" => (Protocol::Tcp, false),
        "TLS" => (Protocol::Tls, false),
        "UDP" => return Err("UDP: Legate's Gateways listen on TCP only".into()),
        other => return Err(format!("protocol {other:?} is not one Emissary documents")),
    })
}

fn from_stack(stack: &[String]) -> Result<(Protocol, bool), String> {
    let layers: Vec<&str> = stack.iter().map(String::as_str).collect();
    Ok(match layers.as_slice() {
        ["HTTP", "TCP"] => (Protocol::Http, false),
        ["TLS", "HTTP", "TCP"] => (Protocol::Https, false),
        ["PROXY", "HTTP", "TCP"] => (Protocol::Http, true),
        ["TLS", "PROXY", "HTTP", "TCP"] | ["PROXY", "TLS", "HTTP", "TCP"] => (Protocol::Https, true),
        ["TCP"] => (Protocol::Tcp, false),
        ["TLS", "TCP"] => (Protocol::Tls, false),
        _ => {
            return Err(format!(
                "protocolStack {layers:?} is not a stack Legate listens with"
            ));
        }
    })
}

/// A DNS label from the Listener's name (Legate listener names are labels).
fn listener_name(name: &str, port: i32) -> String {
    let mut label: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    label.truncate(63);
    let label = label.trim_matches('-').to_string();
    if label.is_empty() {
        format!("port-{port}")
    } else {
        label
    }
}
