//! `cargo xtask bench identity`: sign-ins per second at the configured Argon2id cost beside the
//! time of one hash measured in the same run, and record reads with a session token versus
//! with an API token, under the same wrk load.

use crate::bench::{
    DONE_LUA, GET_LUA, STRONGROOM_ADMIN, STRONGROOM_PUBLIC, json_string, path_str, prepare,
    start_strongroom, write, wrk,
};
use crate::system::{self, output};

const PASSWORD: &str = "benchmark passphrase 42 violet";

fn login_lua(email: &str) -> String {
    format!(
        r#"
wrk.method = "POST"
wrk.body = '{{"email":"{email}","password":"{PASSWORD}"}}'
wrk.headers["Content-Type"] = "application/json"
"#
    )
}

pub fn run(arguments: &[String]) -> Result<(), String> {
    let seconds = match arguments {
        [] => 10,
        [flag, value] if flag == "--seconds" => value
            .parse::<u64>()
            .map_err(|_| "--seconds takes a whole number")?,
        _ => return Err("usage: cargo xtask bench identity [--seconds N]".into()),
    };
    system::ensure_debian_packages(&[("wrk", "wrk"), ("curl", "curl")])?;
    let (target, run_dir) = prepare()?;
    let binary = target.join("release/strongroom");
    let (_server, api_token, cacert) = start_strongroom(&binary, &run_dir)?;
    let operator =
        std::fs::read_to_string(run_dir.join("strongroom-data/bootstrap-operator.token"))
            .map_err(|error| error.to_string())?;
    let curl = |method: &str, url: &str, bearer: &str, body: &str| -> Result<String, String> {
        output(
            "curl",
            &[
                "-fsS",
                "--cacert",
                &cacert,
                "-X",
                method,
                "-H",
                &format!("Authorization: Bearer {}", bearer.trim()),
                "-H",
                "Content-Type: application/json",
                "-d",
                body,
                url,
            ],
        )
    };
    let public = |path: &str| format!("https://{STRONGROOM_PUBLIC}{path}");
    let email = "bench-user@example.com";
    let created = curl(
        "POST",
        &format!("https://{STRONGROOM_ADMIN}/admin/v1/tenants/bench/users"),
        &operator,
        &format!(r#"{{"email":"{email}","display_name":"Bench"}}"#),
    )?;
    let one_time = json_string(&created, "one_time_password").ok_or("no one-time password")?;
    let signed_in = output(
        "curl",
        &[
            "-fsS",
            "--cacert",
            &cacert,
            "-H",
            "Content-Type: application/json",
            "-d",
            &format!(r#"{{"email":"{email}","password":"{one_time}"}}"#),
            &public("/v1/tenants/bench/auth/login"),
        ],
    )?;
    let first_session = json_string(&signed_in, "session_token").ok_or("no session")?;
    curl(
        "POST",
        &public("/v1/tenants/bench/me/password"),
        &first_session,
        &format!(r#"{{"current_password":"{one_time}","new_password":"{PASSWORD}"}}"#),
    )?;
    let signed_in = output(
        "curl",
        &[
            "-fsS",
            "--cacert",
            &cacert,
            "-H",
            "Content-Type: application/json",
            "-d",
            &format!(r#"{{"email":"{email}","password":"{PASSWORD}"}}"#),
            &public("/v1/tenants/bench/auth/login"),
        ],
    )?;
    let session = json_string(&signed_in, "session_token").ok_or("no session")?;
    let record = curl(
        "POST",
        &public("/v1/tenants/bench/collections/items/records"),
        &api_token,
        r#"{"title":"hello"}"#,
    )?;
    let record_id = json_string(&record, "id").ok_or("no record id")?;

    let timing = output(path_str(&binary)?, &["hash-timing", "--count", "20"])?;
    let hash_ms: f64 = timing
        .split("\"milliseconds_per_hash\":")
        .nth(1)
        .and_then(|rest| rest.split([',', '}']).next()?.parse().ok())
        .ok_or("no hash timing")?;
    let cores = std::thread::available_parallelism()
        .map(|cores| cores.get())
        .unwrap_or(1) as f64;

    let login_script = run_dir.join("login.lua");
    write(&login_script, &format!("{}{DONE_LUA}", login_lua(email)))?;
    let get_script = run_dir.join("get.lua");
    write(&get_script, &format!("{GET_LUA}{DONE_LUA}"))?;
    let ids = run_dir.join("identity-ids.txt");
    write(&ids, &record_id)?;
    let duration = format!("{seconds}s");
    eprintln!(
        "xtask: measuring sign-ins, then reads with a session and with an API token ({seconds} s each)"
    );
    let logins = wrk(
        &login_script,
        &public("/v1/tenants/bench/auth/login"),
        &duration,
        &[],
    )?;
    let prefix = "/v1/tenants/bench/collections/items/records";
    let with_session = wrk(
        &get_script,
        &public(""),
        &duration,
        &[
            ("BENCH_IDS_FILE", path_str(&ids)?),
            ("BENCH_PREFIX", prefix),
            ("BENCH_TOKEN", &session),
        ],
    )?;
    let with_token = wrk(
        &get_script,
        &public(""),
        &duration,
        &[
            ("BENCH_IDS_FILE", path_str(&ids)?),
            ("BENCH_PREFIX", prefix),
            ("BENCH_TOKEN", &api_token),
        ],
    )?;

    let login_target = 0.8 * cores / (hash_ms / 1000.0);
    let ratio = with_session.rps / with_token.rps;
    println!();
    println!("Identity benchmark, wrk -t2 -c50 -d{duration}, same machine, one run");
    println!("  one Argon2id hash (m=19 MiB, t=2, p=1):   {hash_ms:>8.1} ms");
    println!(
        "  sign-ins:                {:>8.0}/s   target 0.8 × {cores} cores ÷ hash time = {login_target:.0}/s  {}",
        logins.rps,
        if logins.rps >= login_target {
            "met"
        } else {
            "MISSED"
        }
    );
    println!("  record reads, session:   {:>8.0}/s", with_session.rps);
    println!(
        "  record reads, API token: {:>8.0}/s   ratio {ratio:.2} (target within 10%)  {}",
        with_token.rps,
        if (0.9..=1.1).contains(&ratio) {
            "met"
        } else {
            "MISSED"
        }
    );
    Ok(())
}
