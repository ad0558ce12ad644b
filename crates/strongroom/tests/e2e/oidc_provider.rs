//! A real OpenID Connect provider for the single sign-on tests: the `oidc-provider` package
//! from the npm registry on Node.js, started on 127.0.0.1 with a free port
//! (`tests/oidc-provider/provider.mjs`, which signs users in without a browser when the
//! authorization request names them in `login_hint`).

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct OidcProvider {
    pub issuer: String,
    child: Child,
}

fn directory() -> PathBuf {
    // `cargo test` sets the package's directory at run time; the compiled-in one can be
    // another checkout that shared the target directory.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .join("tests/oidc-provider")
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
        // Node has been seen to listen and then never print READY (once in many runs): a start
        // that is not ready in time is killed and tried again, so the suite cannot hang on it.
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            match start_once(clients, users) {
                Ok(provider) => return provider,
                Err(failure) => failures.push(failure),
            }
        }
        panic!("the OpenID Connect provider did not start: {failures:?}");
    }
}

const START_ATTEMPTS: usize = 3;
const READY_WAIT: Duration = Duration::from_secs(60);

fn start_once(clients: &Value, users: &Value) -> Result<OidcProvider, String> {
    let mut child = Command::new("node")
        .arg("provider.mjs")
        .current_dir(directory())
        .env("PORT", "0")
        .env("CLIENTS_JSON", clients.to_string())
        .env("USERS_JSON", users.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node runs (cargo xtask test installs Node.js)");
    let stdout = child.stdout.take().expect("piped");
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut first_line = String::new();
        let read = BufReader::new(stdout).read_line(&mut first_line);
        let _ = sender.send(read.map(|_| first_line));
    });
    let answer = receiver.recv_timeout(READY_WAIT);
    let issuer = match &answer {
        Ok(Ok(line)) => line.trim().strip_prefix("READY ").map(str::to_owned),
        _ => None,
    };
    match issuer {
        Some(issuer) => Ok(OidcProvider { issuer, child }),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!("{answer:?}"))
        }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
