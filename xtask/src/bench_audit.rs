//! `cargo xtask bench audit`: the audit trail's cost, measured in process by the API crate's
//! `audit_bench` example (the only place an audit store that keeps nothing exists).

use crate::system;
use std::path::PathBuf;

pub fn run(arguments: &[String]) -> Result<(), String> {
    let seconds = match arguments {
        [] => "8".to_owned(),
        [flag, value] if flag == "--seconds" && value.parse::<u64>().is_ok() => value.clone(),
        _ => return Err("usage: cargo xtask bench audit [--seconds N]".into()),
    };
    let workspace = crate::workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let bench_dir = target.join("bench");
    std::fs::create_dir_all(&bench_dir).map_err(|error| error.to_string())?;
    system::run(
        "cargo",
        &[
            "build",
            "--release",
            "--quiet",
            "--package",
            "strongroom-api",
            "--example",
            "audit_bench",
        ],
    )?;
    let binary = target.join("release/examples/audit_bench");
    let status = std::process::Command::new(&binary)
        .args(["--seconds", &seconds])
        .env("BENCH_DIR", &bench_dir)
        .status()
        .map_err(|error| format!("cannot run {}: {error}", binary.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the audit benchmark failed: {status}"))
    }
}
