//! TLSContexts on a Gateway: certificates on its HTTPS listeners (chosen by
//! SNI), and what cleartext requests for their hosts get.

use std::collections::BTreeMap;
use std::sync::Arc;

use kube::{Resource, ResourceExt};
use legate_crds::conditions::reasons;
use legate_crds::tls_context::InsecureAction;
use legate_crds::{Gateway, TLSContext};
use legate_xds::ir;

use crate::age::age_order;
use crate::hosts::HostOwners;
use crate::names::{gateway_key, object_ref, tenant_of};
use crate::own_routes::{OwnRoute, add_tenant_route};
use crate::verdicts::{Problem, Verdicts};
use crate::world::Quarantine;
use crate::world::World;
use crate::{attach, server_tls};

/// Certificates of the TLSContexts attached to the Gateway, on its HTTPS
/// listeners; and, on its HTTP listeners, the `insecure.action` for their
/// hosts. A TLSContext naming a host another namespace owns is refused whole.
pub fn add_tls(
    world: &World,
    gateway: &Gateway,
    hosts: &HostOwners,
    quarantine: &Quarantine,
    config: &mut ir::Gateway,
    verdicts: &mut Verdicts,
) {
    let key = gateway_key(gateway);
    let mut contexts: Vec<&Arc<TLSContext>> = world
        .tls_contexts
        .iter()
        .filter(|c| c.meta().deletion_timestamp.is_none())
        .filter(|c| {
            let namespace = c.namespace().unwrap_or_default();
            attach::tls_attaches(world, gateway, &namespace, &c.spec.gateways)
        })
        .collect();
    // The older keeps a host that two name: it was serving first.
    contexts.sort_by(|a, b| age_order(a.as_ref(), b.as_ref()));
    let mut served: BTreeMap<String, String> = BTreeMap::new();
    for context in contexts {
        let namespace = context.namespace().unwrap_or_default();
        let origin = object_ref(context.as_ref());
        let verdict = verdicts.entry(&origin);
        let hostnames: Vec<String> = context
            .spec
            .hosts
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        let judged = context
            .spec
            .hosts
            .iter()
            .try_for_each(|h| hosts.judge_server_name(h, &namespace, "TLSContext"))
            .and_then(|()| server_tls::check_cipher_suites(&context.spec.cipher_suites))
            .and_then(|()| not_served_already(&hostnames, &served, &key));
        if let Err(problem) = judged {
            verdict.accepted = Err(problem);
            continue;
        }
        // Envoy refused this generation here: it stays out of this Gateway
        // (its status says so) until its next generation.
        if quarantine.holds(&key, &origin.key(), origin.generation()) {
            verdict.carried_by(&key);
            continue;
        }
        let holder = format!("TLSContext {namespace}/{}", context.name_any());
        for host in &hostnames {
            served.insert(host.clone(), holder.clone());
        }
        let tenant = tenant_of(gateway, &namespace);
        // Cleartext stays redirected or refused while the certificate is
        // missing (cert-manager's first issue, a typo): never served in clear.
        add_insecure_routes(context, &origin, tenant, &hostnames, config);
        let resolved = match server_tls::resolve(world, context) {
            Ok(resolved) => resolved,
            Err(mut problem) => {
                problem
                    .message
                    .push_str("; the hosts of this TLSContext are not served over TLS");
                verdict.resolved_refs = Err(problem);
                continue;
            }
        };
        for secret in resolved.secrets {
            config.secrets.insert(secret.name.clone(), secret);
        }
        for listener in config.listeners.values_mut() {
            if listener.protocol == ir::ListenerProtocol::Https {
                listener.tls.push(resolved.server.clone());
            }
        }
        verdict.carried_by(&key);
    }
}

/// Envoy cannot choose between two certificates for one server name (it
/// refuses the listener): a host an older TLSContext serves here is its.
fn not_served_already(
    hostnames: &[String],
    served: &BTreeMap<String, String>,
    gateway: &str,
) -> Result<(), Problem> {
    match hostnames
        .iter()
        .find_map(|h| served.get(h).map(|holder| (h, holder)))
    {
        Some((host, holder)) => Err(Problem::new(
            reasons::CONFLICTED,
            format!(
                "{holder} already serves host {host} on Gateway {gateway}, and is older; \
                 a server name has one certificate. Remove {host} from one of the two"
            ),
        )),
        None => Ok(()),
    }
}

/// Cleartext requests for a TLS host: a redirect to the Gateway's HTTPS
/// listener, or 404, ahead of every Mapping (Route adds nothing: Mappings
/// answer). Only when an HTTPS listener exists to send clients to.
fn add_insecure_routes(
    context: &TLSContext,
    origin: &ir::ObjectRef,
    tenant: Option<String>,
    hostnames: &[String],
    config: &mut ir::Gateway,
) {
    let Some(https_port) = config
        .listeners
        .values()
        .filter(|l| l.protocol == ir::ListenerProtocol::Https)
        .map(|l| l.port)
        .min()
    else {
        return;
    };
    let action = match context.spec.insecure.action {
        InsecureAction::Route => return,
        InsecureAction::Redirect => ir::RouteAction::Redirect(ir::Redirect {
            https: true,
            // 443 is implied by https; any other port must be in the URL.
            port: (https_port != 443).then_some(https_port),
            status: 301,
            ..ir::Redirect::default()
        }),
        InsecureAction::Reject => ir::RouteAction::DirectResponse {
            status: 404,
            body: None,
        },
    };
    // Answered before anything else; the auth service need not see it.
    let policy = ir::RoutePolicy {
        bypass_auth: true,
        ..ir::RoutePolicy::default()
    };
    // Cleartext as Envoy judges it: X-Forwarded-Proto is the connection's
    // scheme, unless the listener trusts proxies in front (a load balancer
    // that terminated TLS says https, and must not be sent back to HTTPS).
    let matcher = ir::RouteMatch {
        headers: vec![ir::HeaderMatch {
            name: "x-forwarded-proto".into(),
            value: ir::ValueMatch::Exact("https".into()),
            invert: true,
        }],
        ..ir::RouteMatch::default()
    };
    add_tenant_route(
        config,
        origin,
        tenant,
        |l| l.protocol == ir::ListenerProtocol::Http,
        hostnames,
        OwnRoute {
            precedence: i32::MAX,
            matcher,
            action,
            policy,
        },
    );
}
