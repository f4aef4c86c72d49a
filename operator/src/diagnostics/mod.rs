//! The diagnostics page: per Gateway, its route table as its Envoys hold it,
//! every object's conditions and the last NACK, as HTML on the metrics port.
//!
//! - [`state`]: what the engine and the ACK tracker publish for the page;
//! - [`objects`]: which objects a Gateway's page lists, with their conditions;
//! - [`page`]: the pages, as pure functions of those;
//! - [`html`]: escaping and the shared frame;
//! - [`serve`]: the GET routes.

pub mod html;
pub mod objects;
pub mod page;
pub mod serve;
pub mod state;

pub use serve::{Source, router};
pub use state::Diagnostics;

#[cfg(test)]
mod tests;
