use crate::server::{BINARY, TestServer};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `openssl s_client` against an address with extra arguments; returns whether the
/// handshake succeeded and what it printed.
fn s_client(address: &str, arguments: &[&str]) -> (bool, String) {
    let mut command = Command::new("openssl");
    command
        .args(["s_client", "-connect", address, "-servername", "localhost"])
        .args(arguments);
    let output = command
        .stdin(Stdio::null())
        .output()
        .expect("openssl is installed (cargo xtask test installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let handshake = text.contains("BEGIN CERTIFICATE") || text.contains("Server certificate");
    (output.status.success() && handshake, text)
}

#[test]
fn only_tls_1_2_and_1_3_with_ecdhe_aead_suites_are_accepted() {
    let server = TestServer::start();
    for listener in [&server.public, &server.admin] {
        let (tls13, text) = s_client(listener, &["-tls1_3"]);
        assert!(tls13 && text.contains("TLSv1.3"), "TLS 1.3: {text}");
        let (tls12, text) = s_client(listener, &["-tls1_2"]);
        assert!(
            tls12 && text.contains("ECDHE") && text.contains("GCM"),
            "TLS 1.2 negotiates ECDHE with AES-GCM: {text}"
        );
        let (alpn, text) = s_client(listener, &["-alpn", "h2"]);
        assert!(
            alpn && text.contains("ALPN protocol: h2"),
            "ALPN h2: {text}"
        );
        let (tls11, _) = s_client(listener, &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"]);
        assert!(!tls11, "TLS 1.1 is refused");
        for weak in [
            "AES128-SHA",
            "AES256-GCM-SHA384",
            "ECDHE-RSA-AES128-SHA",
            "DHE-RSA-AES256-GCM-SHA384",
        ] {
            let (accepted, _) = s_client(listener, &["-tls1_2", "-cipher", weak]);
            assert!(!accepted, "{weak} (no ECDHE, or no AEAD) is refused");
        }
    }
}

#[tokio::test]
async fn plain_http_on_a_tls_port_gets_no_data() {
    let server = TestServer::start();
    for listener in [&server.public, &server.admin] {
        let mut stream = std::net::TcpStream::connect(listener).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let text = String::from_utf8_lossy(&answer);
        assert!(
            !text.contains("HTTP/1.1") && !text.contains("ok") && !text.contains('{'),
            "plain HTTP got: {text:?}"
        );
    }
    // Such connections carry no request, so are in no audit event; operators see them
    // counted instead.
    let metrics = server.metrics().await;
    // (The test's own start-up probe of the admin port is such a connection too.)
    for listener in ["public", "admin"] {
        let counter = format!(
            "strongroom_connections_closed_before_a_request_total{{listener=\"{listener}\",reason=\"tls_handshake_failed\"}} "
        );
        let count: u64 = metrics
            .lines()
            .find_map(|line| line.strip_prefix(&counter))
            .and_then(|count| count.parse().ok())
            .unwrap_or(0);
        assert!(count >= 1, "{counter} in {metrics}");
    }
}

fn make_certificate(
    directory: &std::path::Path,
    name: &str,
    common_name: &str,
) -> (String, String) {
    let cert = directory.join(format!("{name}.crt"));
    let key = directory.join(format!("{name}.key"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "30",
            "-subj",
            &format!("/CN={common_name}"),
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ])
        .args([
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    (
        cert.to_str().unwrap().to_owned(),
        key.to_str().unwrap().to_owned(),
    )
}

fn served_subject(address: &str) -> String {
    let (_, text) = s_client(address, &[]);
    text.lines()
        .find(|line| line.contains("subject="))
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn certificates_reload_on_sighup_and_on_file_change() {
    let files = tempfile::tempdir().unwrap();
    let (cert, key) = make_certificate(files.path(), "first", "first.example");
    let extra = format!(
        "\n[tls]\ncert_file = \"{cert}\"\nkey_file = \"{key}\"\nreload_check_seconds = 1\n"
    );
    let server = TestServer::start_with(&extra, &[("STRONGROOM_TLS_CERT_FILE", &cert)]);
    assert!(served_subject(&server.public).contains("first.example"));

    let (second_cert, second_key) = make_certificate(files.path(), "second", "second.example");
    std::fs::copy(&second_key, &key).unwrap();
    std::fs::copy(&second_cert, &cert).unwrap();
    server.signal("HUP");
    wait_for(
        || served_subject(&server.public).contains("second.example"),
        "SIGHUP reload",
    );

    let (third_cert, third_key) = make_certificate(files.path(), "third", "third.example");
    std::fs::copy(&third_key, &key).unwrap();
    std::fs::copy(&third_cert, &cert).unwrap();
    wait_for(
        || served_subject(&server.admin).contains("third.example"),
        "reload on file change",
    );
    assert!(server.logs().contains("TLS certificate reloaded"));
}

fn wait_for(condition: impl Fn() -> bool, what: &str) {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what} did not happen within 20 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn refused_start(server: &mut TestServer) -> String {
    server.spawn().expect_err("the server must refuse to start")
}

#[test]
fn production_refuses_unsafe_settings_with_a_message_that_says_what_to_change() {
    let mut self_signed = TestServer::configure("", &[("STRONGROOM_PROFILE", "production")]);
    let message = refused_start(&mut self_signed);
    assert!(message.contains("tls.cert_file"), "{message}");

    let files = tempfile::tempdir().unwrap();
    let (cert, key) = make_certificate(files.path(), "own", "own.example");
    let tls = [
        ("STRONGROOM_PROFILE", "production"),
        ("STRONGROOM_TLS_CERT_FILE", cert.as_str()),
        ("STRONGROOM_TLS_KEY_FILE", key.as_str()),
    ];
    let mut explicit_self_signed = TestServer::configure("", &tls);
    assert!(
        refused_start(&mut explicit_self_signed).contains("self-signed"),
        "a configured self-signed certificate is refused too"
    );

    let mut from_environment = TestServer::configure(
        "",
        &[
            ("STRONGROOM_PROFILE", "production"),
            (
                "STRONGROOM_MASTER_KEY",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            ),
        ],
    );
    let message = refused_start(&mut from_environment);
    assert!(message.contains("STRONGROOM_MASTER_KEY"), "{message}");
}

#[tokio::test]
async fn a_readable_key_file_or_one_inside_the_data_directory_is_refused() {
    let mut server = TestServer::start();
    server.stop().await;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(server.key_file(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let message = refused_start(&mut server);
    assert!(message.contains("chmod 600"), "{message}");

    let inside = TestServer::configure("", &[]);
    let key_inside = inside.data_dir().join("master.key");
    let output = Command::new(BINARY)
        .args([
            "--config",
            inside.config_file.to_str().unwrap(),
            "--key-file",
            key_inside.to_str().unwrap(),
            "serve",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("inside data_dir"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_configuration_resolves_file_then_environment_then_flags() {
    let server = TestServer::configure("", &[]);
    let output = Command::new(BINARY)
        .args([
            "--config",
            server.config_file.to_str().unwrap(),
            "--public-listen",
            "127.0.0.1:7001",
            "config",
        ])
        .env("STRONGROOM_PUBLIC_LISTEN", "127.0.0.1:7000")
        .env("STRONGROOM_BODY_BYTES_MAX", "2048")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("listen = \"127.0.0.1:7001\""),
        "flags win: {text}"
    );
    assert!(
        text.contains("body_bytes_max = 2048"),
        "environment beats the file: {text}"
    );
    assert!(
        text.contains(&server.admin),
        "the file beats defaults: {text}"
    );
    let bad = Command::new(BINARY)
        .args(["--config", "/nonexistent.toml", "config"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("/nonexistent.toml"));
}

/// Debian's testssl.sh judges the public listener the way an auditor would. The only findings
/// allowed are the ones a self-signed test certificate must produce (production refuses it).
#[test]
fn testssl_finds_nothing_but_the_self_signed_test_certificate() {
    let server = TestServer::start();
    let report = server.directory.path().join("testssl.json");
    let output = Command::new("testssl")
        .args([
            "--quiet",
            "--color",
            "0",
            "-n",
            "none",
            "--warnings",
            "off",
            "--openssl",
            "/usr/bin/openssl",
            "--jsonfile-pretty",
        ])
        .arg(&report)
        .arg(&server.public)
        .output()
        .expect("testssl is installed (cargo xtask test installs testssl.sh)");
    assert!(
        report.exists(),
        "testssl wrote no report: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    let document: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let findings: Vec<(String, String, String)> = document["scanResult"][0]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|section| section.as_array())
        .flatten()
        .map(|finding| {
            let text = |key: &str| finding[key].as_str().unwrap_or_default().to_owned();
            (text("id"), text("severity"), text("finding"))
        })
        .collect();
    let expected_for_self_signed = ["cert_chain_of_trust", "cert_revocation"];
    let problems: Vec<_> = findings
        .iter()
        .filter(|(id, severity, _)| {
            ["LOW", "MEDIUM", "HIGH", "CRITICAL"].contains(&severity.as_str())
                && !expected_for_self_signed.contains(&id.as_str())
        })
        .collect();
    assert!(problems.is_empty(), "testssl findings: {problems:#?}");
    let finding = |wanted: &str| {
        findings
            .iter()
            .find(|(id, _, _)| id == wanted)
            .map(|(_, severity, text)| format!("{severity} {text}"))
            .unwrap_or_default()
    };
    assert!(finding("TLS1").contains("not offered") && finding("TLS1_1").contains("not offered"));
    assert!(finding("TLS1_2").starts_with("OK") && finding("TLS1_3").starts_with("OK"));
    assert!(
        finding("cipher_order").starts_with("OK"),
        "{}",
        finding("cipher_order")
    );
    assert!(finding("PFS").starts_with("OK"));
    assert!(finding("HSTS_time").starts_with("OK") && finding("HSTS_subdomains").starts_with("OK"));
    assert!(finding("ALPN_HTTP2").contains("h2"));
}
