//! The page's HTTP side: `GET /diagnostics` and
//! `GET /diagnostics/{namespace}/{name}`, on the metrics port. GET only; a
//! page reads state and renders it, and no request changes anything.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kube::ResourceExt;

use super::html::{document, esc};
use super::objects::{gateway_row, objects_of};
use super::page::{GatewayPage, IndexEntry, gateway_page, index_page};
use crate::engine::Shared;
use crate::world::Stores;

/// What the pages read: the engine's shared state and the watch stores.
#[derive(Clone)]
pub struct Source {
    pub shared: Arc<Shared>,
    pub stores: Stores,
}

/// The diagnostics routes, to merge into the metrics server's router.
pub fn router(source: Source) -> Router {
    Router::new()
        .route("/diagnostics", get(index))
        .route("/diagnostics/{namespace}/{name}", get(gateway))
        .with_state(source)
}

async fn index(State(source): State<Source>) -> Response {
    let mut entries: Vec<IndexEntry> = source
        .stores
        .gateways
        .state()
        .iter()
        .map(|g| {
            let key = format!("{}/{}", g.namespace().unwrap_or_default(), g.name_any());
            IndexEntry {
                gateway: gateway_row(&source.stores, &key),
                routes: source.shared.diagnostics.routing(&key).map(|r| r.routes.len()),
                last_nack_at: source.shared.diagnostics.last_nack(&key).map(|n| n.at),
                key,
            }
        })
        .collect();
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    html(StatusCode::OK, index_page(&entries))
}

async fn gateway(State(source): State<Source>, Path((namespace, name)): Path<(String, String)>) -> Response {
    let key = format!("{namespace}/{name}");
    let diagnostics = &source.shared.diagnostics;
    let gateway = gateway_row(&source.stores, &key);
    let routing = diagnostics.routing(&key);
    if gateway.is_none() && routing.is_none() {
        let body = format!(
            "<p><a href=\"/diagnostics\">All Gateways</a></p>\n<h1>No Gateway {}</h1>\n\
             <p>The operator watches no Gateway of that namespace and name.</p>\n",
            esc(&key)
        );
        return html(StatusCode::NOT_FOUND, document("Legate: no such Gateway", &body));
    }
    let carried_by = |object: &str| {
        source
            .shared
            .verdict(object)
            .map(|v| v.gateways)
            .unwrap_or_default()
    };
    let objects = objects_of(&source.stores, &key, &carried_by);
    let last_nack = diagnostics.last_nack(&key);
    let page = GatewayPage {
        key: &key,
        gateway: gateway.as_ref(),
        routing: routing.as_deref(),
        objects: &objects,
        last_nack: last_nack.as_ref(),
        proxies: source.shared.with_program(|p| p.proxies(&key)),
    };
    html(StatusCode::OK, gateway_page(&page))
}

/// An HTML answer that a browser never caches, never sniffs as something
/// else and never runs a script in (everything is escaped; this is the
/// second line).
fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'",
            ),
        ],
        body,
    )
        .into_response()
}
