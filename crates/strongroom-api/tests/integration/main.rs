//! The API crate's one integration-test binary: in-process router tests with
//! `tower::ServiceExt::oneshot` against a real platform on temporary SQLite files.

mod access;
mod alerts;
mod audit;
mod contract;
mod documents;
mod downloads;
mod firewall;
mod harness;
mod invariants;
mod operators;
mod sso;
mod users;
