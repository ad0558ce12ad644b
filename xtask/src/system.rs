//! Small helpers for running commands and installing Debian packages.

use std::process::Command;

/// Runs a command with inherited output; fails when it exits unsuccessfully.
pub fn run(program: &str, arguments: &[&str]) -> Result<(), String> {
    eprintln!("xtask: {program} {}", arguments.join(" "));
    let status = Command::new(program)
        .args(arguments)
        .status()
        .map_err(|error| format!("cannot run {program}: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {} failed with {status}",
            arguments.join(" ")
        ))
    }
}

/// Runs a command and returns its standard output.
pub fn output(program: &str, arguments: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(arguments)
        .output()
        .map_err(|error| format!("cannot run {program}: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "{program} {} failed: {}",
            arguments.join(" "),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

pub fn has_command(command: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {command} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|status| status.success())
}

/// Installs each (command, package) whose command is missing, with apt-get.
pub fn ensure_debian_packages(needed: &[(&str, &str)]) -> Result<(), String> {
    let missing: Vec<&str> = needed
        .iter()
        .filter(|(command, _)| !has_command(command))
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    let quiet_update = Command::new("apt-get").args(["update", "-qq"]).status();
    if quiet_update.is_err() {
        return Err(format!(
            "apt-get is unavailable; install {} by hand",
            missing.join(" ")
        ));
    }
    let mut arguments = vec!["install", "-y", "-qq", "--no-install-recommends"];
    arguments.extend(missing.iter());
    run("apt-get", &arguments)
}
