//! The tests that share one control plane and the operator the harness runs
//! for all of them (`SharedOperator`, watching every namespace): each works
//! in a namespace of its own with a Gateway that admits only that namespace.
//! The operator end to end, routing, the edge, and the harness's proofs that
//! the control plane and test hosts are real (which apply no Legate object,
//! so the shared operator and they leave each other alone).

mod diagnostics;
mod edge;
mod explain;
mod import;
mod kubernetes;
mod operator;
mod programmed;
mod routing;
mod tenancy;
mod testhost;
