//! `cargo xtask bench documents`: upload and download of a large file over HTTPS, beside the
//! machine's single-core AES-256-GCM speed (openssl) and a plain disk copy of the same file,
//! with the server's memory growth during the upload.

use crate::bench::{STRONGROOM_PUBLIC, path_str, prepare, start_strongroom};
use crate::system::{self, output};
use std::path::Path;
use std::time::Instant;

const MIB: f64 = 1024.0 * 1024.0;

pub fn run(arguments: &[String]) -> Result<(), String> {
    let size_mib: u64 = match arguments {
        [] => 1024,
        [flag, value] if flag == "--size-mib" => value
            .parse()
            .map_err(|_| "--size-mib takes a whole number")?,
        _ => return Err("usage: cargo xtask bench documents [--size-mib N]".into()),
    };
    system::ensure_debian_packages(&[("curl", "curl"), ("openssl", "openssl")])?;
    let (target, run_dir) = prepare()?;
    let file = run_dir.join("document.bin");
    eprintln!("xtask: writing a {size_mib} MiB random file");
    system::run(
        "sh",
        &[
            "-c",
            &format!("head -c {}M /dev/urandom > {}", size_mib, path_str(&file)?),
        ],
    )?;
    let expected_sha256 = output("sha256sum", &[path_str(&file)?])?
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();

    let copy_rate = disk_copy_rate(&file, &run_dir.join("document.copy"))?;
    let aes_rate = openssl_aes_gcm_rate()?;

    let (server, token, cacert) = start_strongroom(&target.join("release/strongroom"), &run_dir)?;
    let pid = server.child.id();
    let url = format!("https://{STRONGROOM_PUBLIC}/v1/tenants/bench/documents/bench/document.bin");
    let authorization = format!("Authorization: Bearer {token}");
    let peak_before = memory_kib(pid, "VmHWM")?;
    let rss_before = memory_kib(pid, "VmRSS")?;
    drop_page_cache();
    eprintln!("xtask: uploading");
    let started = Instant::now();
    let answer = output(
        "curl",
        &[
            "-fsS",
            "--cacert",
            &cacert,
            "-H",
            &authorization,
            "-H",
            "Content-Type: application/octet-stream",
            "-T",
            path_str(&file)?,
            &url,
        ],
    )?;
    let upload_seconds = started.elapsed().as_secs_f64();
    let peak_after = memory_kib(pid, "VmHWM")?;
    if !answer.contains(&expected_sha256) {
        return Err(format!(
            "the server's sha256 does not match the file: {answer}"
        ));
    }
    eprintln!("xtask: downloading");
    let started = Instant::now();
    let downloaded = output(
        "curl",
        &[
            "-fsS",
            "--cacert",
            &cacert,
            "-H",
            &authorization,
            "-o",
            "/dev/null",
            "-w",
            "%{size_download}",
            &url,
        ],
    )?;
    let download_seconds = started.elapsed().as_secs_f64();
    if downloaded.trim() != (size_mib * 1024 * 1024).to_string() {
        return Err(format!(
            "downloaded {downloaded} bytes, expected {}",
            size_mib * 1024 * 1024
        ));
    }
    drop(server);

    let size = (size_mib * 1024 * 1024) as f64;
    let upload_rate = size / upload_seconds;
    let download_rate = size / download_seconds;
    let target_rate = 0.5 * aes_rate.min(copy_rate);
    let growth_mib = peak_after.saturating_sub(peak_before.max(rss_before)) as f64 / 1024.0;
    println!();
    println!(
        "Documents benchmark, one {size_mib} MiB file over HTTPS (curl), same machine, one run"
    );
    println!(
        "  AES-256-GCM, one core (openssl speed): {:>8.0} MiB/s",
        aes_rate / MIB
    );
    println!(
        "  disk copy of the file (cp + fsync, cold cache): {:>5.0} MiB/s",
        copy_rate / MIB
    );
    println!(
        "  target, 50% of the smaller:             {:>8.0} MiB/s",
        target_rate / MIB
    );
    for (name, rate) in [("upload", upload_rate), ("download", download_rate)] {
        let verdict = if rate >= target_rate { "met" } else { "MISSED" };
        println!(
            "  {name:<9} {:>8.0} MiB/s  ({:.2} of target) {verdict}",
            rate / MIB,
            rate / target_rate
        );
    }
    let verdict = if growth_mib < 64.0 { "met" } else { "MISSED" };
    println!(
        "  server peak memory growth during the upload: {growth_mib:.1} MiB (target < 64) {verdict}"
    );
    Ok(())
}

/// Writes dirty pages back and empties the page cache (root only), so that the copy and the
/// upload both read the file from the disk, not from memory, and measure the same thing.
fn drop_page_cache() {
    let _ = std::process::Command::new("sync").status();
    if std::fs::write("/proc/sys/vm/drop_caches", "3").is_err() {
        eprintln!(
            "xtask: cannot drop the page cache (not root?); figures may include cached reads"
        );
    }
}

fn disk_copy_rate(source: &Path, copy: &Path) -> Result<f64, String> {
    drop_page_cache();
    let started = Instant::now();
    system::run(
        "sh",
        &[
            "-c",
            &format!(
                "cp {} {} && sync {}",
                path_str(source)?,
                path_str(copy)?,
                path_str(copy)?
            ),
        ],
    )?;
    let seconds = started.elapsed().as_secs_f64();
    let length = std::fs::metadata(copy)
        .map_err(|error| error.to_string())?
        .len() as f64;
    let _ = std::fs::remove_file(copy);
    Ok(length / seconds)
}

/// Bytes per second of `openssl speed -evp aes-256-gcm` on 16 KiB blocks, one core.
fn openssl_aes_gcm_rate() -> Result<f64, String> {
    let text = output(
        "openssl",
        &[
            "speed",
            "-evp",
            "aes-256-gcm",
            "-bytes",
            "16384",
            "-seconds",
            "3",
        ],
    )?;
    let line = text
        .lines()
        .rev()
        .find(|line| line.to_lowercase().starts_with("aes-256-gcm"))
        .ok_or("openssl printed no aes-256-gcm line")?;
    let thousands = line
        .split_whitespace()
        .last()
        .and_then(|value| value.trim_end_matches('k').parse::<f64>().ok())
        .ok_or("cannot read openssl's rate")?;
    Ok(thousands * 1000.0)
}

fn memory_kib(pid: u32, field: &str) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|error| error.to_string())?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("no {field} for process {pid}"))
}
