//! The operator realm through the real binary and its CLI: an invited operator enrols with a
//! TOTP code from Debian's oathtool, the bootstrap token is retired, and tenant data is reached
//! only with a break-glass grant, each request marked.

use crate::server::{BINARY, TestServer};
use serde_json::{Value, json};
use std::process::Command;

const PASSWORD: &str = "olga's operator passphrase 3e9f";

/// Runs the CLI with extra environment; returns its JSON output, or panics with its error.
fn cli(server: &TestServer, arguments: &[&str], environment: &[(&str, &str)]) -> Value {
    let output = run(server, arguments, environment);
    assert!(
        output.status.success(),
        "{arguments:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn run(
    server: &TestServer,
    arguments: &[&str],
    environment: &[(&str, &str)],
) -> std::process::Output {
    let mut command = Command::new(BINARY);
    command
        .args(["--config", server.config_file.to_str().unwrap()])
        .args(arguments)
        .env_remove("STRONGROOM_OPERATOR_TOKEN")
        .env_remove("STRONGROOM_OPERATOR_PASSWORD");
    for (name, value) in environment {
        command.env(name, value);
    }
    command.output().unwrap()
}

/// The code Debian's oathtool shows for `secret` now, or one step later.
fn oathtool(secret: &str, later: bool) -> String {
    let mut command = Command::new("oathtool");
    command.args(["--totp", "-b", secret]);
    if later {
        command.args(["-N", "now + 30 seconds"]);
    }
    let output = command
        .output()
        .expect("oathtool is installed (cargo xtask test installs it)");
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[tokio::test]
async fn an_enrolled_operator_retires_the_bootstrap_token_and_uses_break_glass_grants() {
    let mut server = TestServer::start();
    let bootstrap_file = server.data_dir().join("bootstrap-operator.token");
    let bootstrap = std::fs::read_to_string(&bootstrap_file).unwrap();
    server.tenant_with_token("acme");
    let client = server.client();
    let owner = server.first_owner("acme").await;
    client
        .put(server.public_url("/v1/tenants/acme/collections/notes"))
        .bearer_auth(&owner)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let note: Value = client
        .post(server.public_url("/v1/tenants/acme/collections/notes/records"))
        .bearer_auth(&owner)
        .json(&json!({"text": "customer data"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let note_url = server.public_url(&format!(
        "/v1/tenants/acme/collections/notes/records/{}",
        note["id"].as_str().unwrap()
    ));

    // Invite (with the bootstrap token), enrol and confirm (as the new operator).
    let invited = cli(&server, &["operator", "invite", "olga"], &[]);
    let enrolment_token = invited["enrolment_token"].as_str().unwrap().to_owned();
    let enrolment = cli(
        &server,
        &["operator", "enrol", "--token", &enrolment_token],
        &[("STRONGROOM_OPERATOR_PASSWORD", PASSWORD)],
    );
    let uri = enrolment["otpauth_uri"].as_str().unwrap();
    let secret = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let confirmed = cli(
        &server,
        &[
            "operator",
            "confirm",
            "--token",
            &enrolment_token,
            "--code",
            &oathtool(&secret, false),
        ],
        &[],
    );
    let operator_session = confirmed["session_token"].as_str().unwrap().to_owned();
    assert!(
        !bootstrap_file.exists(),
        "the retired bootstrap token's file is removed"
    );
    let retired = client
        .get(server.admin_url("/admin/v1/tenants"))
        .bearer_auth(bootstrap.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(retired.status(), 401, "the bootstrap token stops working");
    let as_operator = [("STRONGROOM_OPERATOR_TOKEN", operator_session.as_str())];
    let tenants = cli(&server, &["tenant", "list"], &as_operator);
    assert!(tenants.to_string().contains("acme"));
    // A fresh sign-in: password on standard input would work too; the next step's code.
    let signed_in = cli(
        &server,
        &[
            "operator",
            "login",
            "olga",
            "--code",
            &oathtool(&secret, true),
        ],
        &[("STRONGROOM_OPERATOR_PASSWORD", PASSWORD)],
    );
    assert!(
        signed_in["session_token"]
            .as_str()
            .unwrap()
            .starts_with("sra_")
    );

    // No tenant data without a grant; with one, read-only and marked.
    let refused = client
        .get(&note_url)
        .bearer_auth(&operator_session)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let granted = cli(
        &server,
        &[
            "support-access",
            "request",
            "acme",
            "--justification",
            "ticket 99: the export is broken",
            "--scope",
            "records:read",
            "--minutes",
            "30",
        ],
        &as_operator,
    );
    let grant_token = granted["token"].as_str().unwrap().to_owned();
    let grant_id = granted["grant"]["id"].as_str().unwrap().to_owned();
    let read = client
        .get(&note_url)
        .bearer_auth(&grant_token)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    assert_eq!(
        read.headers()["strongroom-support-grant"],
        grant_id.as_str()
    );
    let visible: Value = client
        .get(server.public_url("/v1/tenants/acme/support-access"))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(visible["grants"][0]["id"], grant_id.as_str());
    assert_eq!(visible["grants"][0]["operator"], "olga");
    cli(
        &server,
        &["support-access", "revoke", &grant_id],
        &as_operator,
    );
    let after = client
        .get(&note_url)
        .bearer_auth(&grant_token)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401, "a revoked grant stops at once");

    server.stop().await;
    let logs = server.logs();
    assert!(logs.contains("request under a break-glass grant") && logs.contains(&grant_id));
    for secret_value in [
        PASSWORD,
        secret.as_str(),
        operator_session.as_str(),
        grant_token.as_str(),
        enrolment_token.as_str(),
    ] {
        assert!(
            !logs.contains(secret_value),
            "the log holds a secret: {secret_value}"
        );
    }
}
