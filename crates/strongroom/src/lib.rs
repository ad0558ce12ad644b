//! The server and its admin command line. The binary (`main.rs`) parses the command line and
//! calls in here; the audit benchmark (`examples/audit_bench.rs`) starts the same server with
//! an audit store of its own, which no configuration can do.
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod serve;
pub mod tls;
