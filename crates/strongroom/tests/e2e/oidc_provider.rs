//! A real OpenID Connect provider for the single sign-on tests: the `oidc-provider` package
//! from the npm registry on Node.js, started on 127.0.0.1 with a free port
//! (`tests/oidc-provider/provider.mjs`, which signs users in without a browser when the
//! authorization request names them in `login_hint`).

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct OidcProvider {
    pub issuer: String,
    child: Child,
}

fn directory() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-provider")
}

impl OidcProvider {
    /// Starts the provider with its clients and users (account id → claims).
    pub fn start(clients: &Value, users: &Value) -> Self {
        let directory = directory();
        if !directory.join("node_modules/oidc-provider").exists() {
            // `cargo xtask test` installs the pinned packages; this covers a bare `cargo test`.
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&directory)
                .status()
                .expect("npm runs (cargo xtask test installs Node.js and npm)");
            assert!(status.success(), "npm ci in {}", directory.display());
        }
        let mut child = Command::new("node")
            .arg("provider.mjs")
            .current_dir(&directory)
            .env("PORT", "0")
            .env("CLIENTS_JSON", clients.to_string())
            .env("USERS_JSON", users.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs (cargo xtask test installs Node.js)");
        let mut first_line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first_line)
            .unwrap();
        let issuer = first_line
            .trim()
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("the provider did not start: {first_line:?}"))
            .to_owned();
        OidcProvider { issuer, child }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
