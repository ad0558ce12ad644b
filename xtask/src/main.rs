//! Project automation: `cargo xtask test` (the whole suite, installing what it needs) and
//! `cargo xtask bench` (Strongroom beside PocketBase under the same load generator).
#![forbid(unsafe_code)]

mod bench;
mod bench_audit;
mod bench_documents;
mod bench_identity;
mod system;

use std::path::PathBuf;
use std::process::ExitCode;

/// The workspace root, from the `CARGO_MANIFEST_DIR` that `cargo run` sets at run time. The
/// value compiled in can name another clone that shared the target directory: cargo does not
/// rebuild for a moved checkout.
pub(crate) fn workspace_root() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let result = match arguments.first().map(String::as_str) {
        Some("test") => test(&arguments[1..]),
        Some("bench") => bench::run(&arguments[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask test [cargo test arguments]\n       cargo xtask bench [records] [--seconds N]\n       cargo xtask bench documents [--size-mib N]\n       cargo xtask bench identity [--seconds N]\n       cargo xtask bench audit [--seconds N]"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Installs the external tools the tests meet (Debian packages), then runs every test of
/// the workspace.
fn test(extra: &[String]) -> Result<(), String> {
    system::ensure_debian_packages(&[
        ("openssl", "openssl"),
        ("curl", "curl"),
        ("testssl", "testssl.sh"),
        ("oathtool", "oathtool"),
        ("node", "nodejs"),
        ("npm", "npm"),
        ("aiosmtpd", "python3-aiosmtpd"),
    ])?;
    // The audit tests check an exported trail with an independent verifier in Python
    // (tools/verify_audit_export.py), which needs Debian's cryptography module.
    let has_cryptography = std::process::Command::new("/usr/bin/python3")
        .args(["-c", "import cryptography"])
        .status()
        .is_ok_and(|status| status.success());
    if !has_cryptography {
        system::run(
            "apt-get",
            &[
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "python3-cryptography",
            ],
        )?;
    }
    // The single sign-on tests run a real OpenID Connect provider from the npm registry,
    // pinned by its lock file.
    let provider = workspace_root().join("crates/strongroom/tests/oidc-provider");
    system::run(
        "npm",
        &[
            "ci",
            "--prefix",
            provider
                .to_str()
                .ok_or("the checkout's path is not UTF-8")?,
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ],
    )?;
    let mut arguments = vec!["test", "--workspace", "--all-targets"];
    arguments.extend(extra.iter().map(String::as_str));
    system::run("cargo", &arguments)
}
