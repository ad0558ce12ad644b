//! `cargo xtask bench audit`: the audit trail's cost, two ways in one run.
//!
//! In process: the `audit_bench` example drives the public router directly, with the real
//! audit store and with one that keeps nothing (that store exists only in the example).
//! Over TLS: the real binary, then the same server started by the example with the store that
//! keeps nothing (`audit_bench serve-without-trail`), each loaded by `wrk` with 50 keep-alive
//! connections, as clients meet the server; three rounds of the pair, judged by the median.
//! Each measured phase follows two unmeasured seconds of the same load.

use crate::bench::{
    Measurement, Server, start_strongroom_server, strongroom_creates, strongroom_gets,
    write_record_scripts,
};
use crate::system;
use std::path::Path;

const TARGET_RATIO: f64 = 0.9;
/// Pairs of over-TLS runs; the verdict is their median ratio.
const ROUNDS: usize = 3;
/// Seconds of the same load, unmeasured, before each measured phase.
const WARM_UP_SECONDS: u64 = 2;

pub fn run(arguments: &[String]) -> Result<(), String> {
    let seconds: u64 = match arguments {
        [] => Some(8),
        [flag, value] if flag == "--seconds" => value.parse().ok(),
        _ => None,
    }
    .ok_or("usage: cargo xtask bench audit [--seconds N]")?;
    system::ensure_debian_packages(&[("wrk", "wrk"), ("curl", "curl")])?;
    let (target, run_dir) = crate::bench::prepare()?;
    system::run(
        "cargo",
        &[
            "build",
            "--release",
            "--quiet",
            "--package",
            "strongroom",
            "--example",
            "audit_bench",
        ],
    )?;
    let example = target.join("release/examples/audit_bench");
    let binary = target.join("release/strongroom");
    let status = std::process::Command::new(&example)
        .args(["--seconds", &seconds.to_string()])
        .env("BENCH_DIR", target.join("bench"))
        .status()
        .map_err(|error| format!("cannot run {}: {error}", example.display()))?;
    if !status.success() {
        return Err(format!("the in-process audit benchmark failed: {status}"));
    }

    eprintln!("xtask: over TLS, {ROUNDS} rounds: the real binary, then the server without a trail");
    let ticks_per_second: f64 = system::output("getconf", &["CLK_TCK"])?
        .trim()
        .parse()
        .map_err(|_| "getconf CLK_TCK printed no number")?;
    let load = |server: &Path, arguments: &[&str], name: &str| {
        load_over_tls(
            server,
            arguments,
            &binary,
            &run_dir.join(name),
            seconds,
            ticks_per_second,
        )
    };
    // Rounds side by side, each on fresh data: this VM's speed drifts by more than the
    // difference measured, and a pair measured minutes apart would compare the drift.
    let mut rounds = Vec::new();
    for round in 1..=ROUNDS {
        let audited = load(&binary, &["serve"], &format!("audited-{round}"))?;
        let unaudited = load(
            &example,
            &["serve-without-trail"],
            &format!("unaudited-{round}"),
        )?;
        rounds.push((audited, unaudited));
    }
    println!(
        "\nOver TLS: wrk -t2 -c50 -d{seconds}s (after {WARM_UP_SECONDS} s unmeasured) against the server binary, then against the same server whose audit store keeps nothing; {ROUNDS} rounds"
    );
    println!(
        "  operation  round   audited/s  without audit/s  ratio   server CPU per request (audited / without)"
    );
    for (name, pick) in [
        (
            "creates",
            (|loaded: &Loaded| &loaded.0) as fn(&Loaded) -> &(Measurement, f64),
        ),
        ("gets   ", |loaded: &Loaded| &loaded.1),
    ] {
        let mut ratios = Vec::new();
        for (round, (audited, unaudited)) in rounds.iter().enumerate() {
            let (audited, unaudited) = (pick(audited), pick(unaudited));
            let ratio = audited.0.rps / unaudited.0.rps;
            ratios.push(ratio);
            println!(
                "  {name}  {:>5}  {:>10.0} {:>16.0}  {ratio:>5.2}   {:.1} µs / {:.1} µs",
                round + 1,
                audited.0.rps,
                unaudited.0.rps,
                audited.1,
                unaudited.1
            );
        }
        ratios.sort_by(f64::total_cmp);
        let median = ratios[ratios.len() / 2];
        let verdict = if median >= TARGET_RATIO {
            "met"
        } else {
            "MISSED"
        };
        println!("  {name}  median ratio {median:.2}, target {TARGET_RATIO:.2}: {verdict}");
    }
    Ok(())
}

/// Creates, then gets, each with the server's CPU time per request (µs).
type Loaded = ((Measurement, f64), (Measurement, f64));

fn load_over_tls(
    server: &Path,
    arguments: &[&str],
    cli: &Path,
    run_dir: &Path,
    seconds: u64,
    ticks_per_second: f64,
) -> Result<Loaded, String> {
    std::fs::create_dir_all(run_dir).map_err(|error| error.to_string())?;
    write_record_scripts(run_dir)?;
    let (server, token, cacert) = start_strongroom_server(server, arguments, cli, run_dir)?;
    let duration = &format!("{seconds}s");
    let measured = |load: &dyn Fn() -> Result<Measurement, String>| {
        let before = server_cpu_ticks(&server)?;
        let measurement = load()?;
        let cpu = (server_cpu_ticks(&server)? - before) / ticks_per_second;
        let per_request = cpu * 1e6 / (measurement.rps * seconds as f64);
        Ok::<_, String>((measurement, per_request))
    };
    // Each measured phase follows an unmeasured one of the same load: the audited server is
    // still writing the previous phase's trail out (its WAL checkpoint, the daily files) when
    // the next begins, and that belongs to the previous phase's cost, not the next one's.
    let warm_up = &format!("{WARM_UP_SECONDS}s");
    strongroom_creates(&token, run_dir, warm_up)?;
    let creates = measured(&|| strongroom_creates(&token, run_dir, duration))?;
    strongroom_gets(&token, &cacert, run_dir, warm_up)?;
    let gets = measured(&|| strongroom_gets(&token, &cacert, run_dir, duration))?;
    Ok((creates, gets))
}

/// User and system CPU time, in clock ticks, the server's process has used so far.
fn server_cpu_ticks(server: &Server) -> Result<f64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", server.child.id()))
        .map_err(|error| format!("cannot read the server's CPU time: {error}"))?;
    // The fields after the command name, which is in parentheses and may hold spaces: utime
    // and stime are the line's 14th and 15th fields, so the 12th and 13th of these.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|field| field.parse::<f64>().ok())
    };
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => Ok(user + system),
        _ => Err("the server's /proc stat line has no CPU times".into()),
    }
}
