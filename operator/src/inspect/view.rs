//! What `legate routes` and `legate explain` print, as values: serialized
//! for `-o json|yaml`, laid out as text otherwise.

use legate_xds::ir;
use legate_xds::table::{HostTable, describe};
use serde::Serialize;

use super::Inspection;

/// An object's state: a reason-like word, and the message behind it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct State {
    pub state: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
}

impl State {
    pub fn new(state: &str, message: &str) -> State {
        State {
            state: state.to_owned(),
            message: message.to_owned(),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ObjectView {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl ObjectView {
    pub fn of(o: &ir::ObjectRef) -> ObjectView {
        ObjectView {
            kind: o.kind().to_owned(),
            namespace: o.namespace().to_owned(),
            name: o.name().to_owned(),
        }
    }
}

impl std::fmt::Display for ObjectView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// One route of a virtual host.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteView {
    /// 1-based place in its virtual host: Envoy tries them in this order.
    pub position: usize,
    /// The route's name in Envoy's configuration.
    pub route: String,
    pub owner: ObjectView,
    /// Objects of the owner's namespace splitting the same match by weight.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub co_owners: Vec<ObjectView>,
    /// The hosts the owner declared (empty: every host).
    pub hostnames: Vec<String>,
    pub precedence: i32,
    #[serde(rename = "match")]
    pub match_: String,
    pub action: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    pub status: State,
}

impl RouteView {
    pub fn of(inspection: &Inspection, position: usize, route: &ir::Route) -> RouteView {
        RouteView {
            position,
            route: route.id.to_string(),
            owner: ObjectView::of(&route.origin),
            co_owners: route.co_origins.iter().map(ObjectView::of).collect(),
            hostnames: route.hostnames.clone(),
            precedence: route.precedence,
            match_: describe::match_text(&route.matcher),
            action: describe::action_text(&route.action),
            policies: describe::policy_lines(route),
            status: inspection.state_of(&route.origin),
        }
    }

    /// `Mapping ns/name` with the co-owners after a `+`.
    pub fn owners(&self) -> String {
        let mut text = self.owner.to_string();
        for co in &self.co_owners {
            text.push_str(&format!(" + {}/{}", co.namespace, co.name));
        }
        text
    }
}

/// One virtual host and its routes.
#[derive(Debug, Clone, Serialize)]
pub struct HostView {
    pub host: String,
    pub routes: Vec<RouteView>,
}

impl HostView {
    pub fn of(inspection: &Inspection, host: &HostTable<'_>) -> HostView {
        HostView {
            host: host.domain.clone(),
            routes: host
                .routes
                .iter()
                .enumerate()
                .map(|(i, r)| RouteView::of(inspection, i + 1, r))
                .collect(),
        }
    }
}

/// Lays rows out in columns, two spaces apart; the last column unpadded.
pub fn columns(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len))
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let last = row.len().saturating_sub(1);
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if c < last {
                let pad = widths[c].saturating_sub(cell.chars().count()) + 2;
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
