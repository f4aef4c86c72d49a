//! `legate explain` and `legate routes`: questions answered from the route
//! table the operator sends to Envoy, read from the cluster or from files.

pub mod explain;
pub mod routes;
