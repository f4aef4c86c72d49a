//! TLSContexts on a Gateway: certificates on its HTTPS listeners (chosen by
//! SNI), and what cleartext requests for their hosts get.

use kube::{Resource, ResourceExt};
use legate_crds::tls_context::InsecureAction;
use legate_crds::{Gateway, TLSContext};
use legate_xds::ir;

use crate::hosts::HostOwners;
use crate::names::{gateway_key, object_ref, tenant_of};
use crate::own_routes::add_tenant_route;
use crate::verdicts::Verdicts;
use crate::world::World;
use crate::{attach, server_tls};

/// Certificates of the TLSContexts attached to the Gateway, on its HTTPS
/// listeners; and, on its HTTP listeners, the `insecure.action` for their
/// hosts. A TLSContext naming a host another namespace owns is refused whole.
pub fn add_tls(
    world: &World,
    gateway: &Gateway,
    hosts: &HostOwners,
    config: &mut ir::Gateway,
    verdicts: &mut Verdicts,
) {
    let key = gateway_key(gateway);
    for context in &world.tls_contexts {
        if context.meta().deletion_timestamp.is_some() {
            continue;
        }
        let namespace = context.namespace().unwrap_or_default();
        if !attach::tls_attaches(world, gateway, &namespace, &context.spec.gateways) {
            continue;
        }
        let origin = object_ref(context.as_ref());
        let verdict = verdicts.entry(&origin);
        let owned = context
            .spec
            .hosts
            .iter()
            .try_for_each(|h| hosts.judge_server_name(h, &namespace, "TLSContext"));
        if let Err(problem) = owned {
            verdict.accepted = Err(problem);
            continue;
        }
        let tenant = tenant_of(gateway, &namespace);
        let hostnames: Vec<String> = context
            .spec
            .hosts
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
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
    add_tenant_route(
        config,
        origin,
        tenant,
        |l| l.protocol == ir::ListenerProtocol::Http,
        hostnames,
        i32::MAX,
        action,
        policy,
    );
}
