//! End-to-end tests: the real `strongroom` binary on 127.0.0.1 with free ports, over real TLS,
//! driven through its CLI, HTTPS and Debian's `openssl`.

mod alerts;
mod audit;
mod cli_and_keys;
mod crash_and_secrets;
mod documents;
mod oidc_provider;
mod operators;
mod server;
mod sso;
mod tls_and_profiles;
