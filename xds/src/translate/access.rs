//! Client address lists as Envoy RBAC filters: one for the Gateway's lists,
//! present only when it has some, and one for Mappings' lists, disabled in
//! every chain and enabled with its rules by the routes of Mappings that set
//! lists. Both judge `remote_ip`, the client the connection manager settled
//! on (the PROXY protocol source, or the X-Forwarded-For entry that
//! `trustedHops` trusts); the Gateway's runs first, so a route's lists can
//! only refuse more.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::core::v3::CidrRange;
use envoy_types::pb::envoy::config::rbac::v3::{
    Permission, Policy, Principal, Rbac as RbacRules, permission, principal, rbac,
};
use envoy_types::pb::envoy::extensions::filters::http::rbac::v3::{Rbac, RbacPerRoute};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpFilter, http_filter,
};
use envoy_types::pb::google::protobuf::{Any, UInt32Value};
use envoy_types::util::pack_any;

use crate::ir;

/// The Gateway's lists.
pub const GATEWAY_RBAC: &str = "rbac/gateway";
/// Mappings' lists, each route its own.
pub const ROUTE_RBAC: &str = "rbac/route";

/// The RBAC filters of an HTTP listener's chain.
pub fn rbac_filters(http: &ir::HttpOptions) -> Vec<HttpFilter> {
    let mut filters = Vec::new();
    if let Some(access) = &http.ip_access {
        filters.push(HttpFilter {
            name: GATEWAY_RBAC.into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(rbac_filter(
                access,
                "gateway_ip.",
            )))),
            ..HttpFilter::default()
        });
    }
    // Without rules it would allow everything; disabled, it is not even made
    // for a request whose route does not enable it.
    filters.push(HttpFilter {
        name: ROUTE_RBAC.into(),
        config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(Rbac::default()))),
        disabled: true,
        ..HttpFilter::default()
    });
    filters
}

/// A route's own lists, which enable the route filter for it.
pub fn add_route_rbac(p: &ir::RoutePolicy, per_filter: &mut BTreeMap<String, Any>) {
    if let Some(access) = &p.ip_access {
        per_filter.insert(
            ROUTE_RBAC.into(),
            pack_any(RbacPerRoute {
                rbac: Some(rbac_filter(access, "mapping_ip.")),
            }),
        );
    }
}

/// One ALLOW policy: any permission, for a client in `allow` (when set)
/// and in no range of `deny`. Anything else is refused with 403.
fn rbac_filter(access: &ir::IpAccess, stat_prefix: &str) -> Rbac {
    let mut clauses = Vec::new();
    if let Some(allow) = &access.allow {
        clauses.push(if allow.is_empty() {
            // An empty set is not allowed: "not anyone" matches nobody.
            not(any())
        } else {
            one_of(allow)
        });
    }
    if !access.deny.is_empty() {
        clauses.push(not(one_of(&access.deny)));
    }
    let principal = match clauses.len() {
        0 => any(),
        1 => clauses.remove(0),
        _ => Principal {
            identifier: Some(principal::Identifier::AndIds(principal::Set { ids: clauses })),
        },
    };
    let policy = Policy {
        permissions: vec![Permission {
            rule: Some(permission::Rule::Any(true)),
        }],
        principals: vec![principal],
        ..Policy::default()
    };
    Rbac {
        rules: Some(RbacRules {
            action: rbac::Action::Allow as i32,
            policies: [("client-address".to_owned(), policy)].into_iter().collect(),
            ..RbacRules::default()
        }),
        rules_stat_prefix: stat_prefix.into(),
        ..Rbac::default()
    }
}

fn any() -> Principal {
    Principal {
        identifier: Some(principal::Identifier::Any(true)),
    }
}

fn not(p: Principal) -> Principal {
    Principal {
        identifier: Some(principal::Identifier::NotId(Box::new(p))),
    }
}

fn one_of(ranges: &[ir::Cidr]) -> Principal {
    Principal {
        identifier: Some(principal::Identifier::OrIds(principal::Set {
            ids: ranges
                .iter()
                .map(|c| Principal {
                    identifier: Some(principal::Identifier::RemoteIp(CidrRange {
                        address_prefix: c.address.to_string(),
                        prefix_len: Some(UInt32Value { value: c.prefix_len }),
                    })),
                })
                .collect(),
        })),
    }
}
