use crate::server::TestServer;
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn first_start_creates_private_keys_and_a_bootstrap_token_and_serves_both_listeners() {
    let server = TestServer::start();
    let key_file = server.key_file();
    assert_eq!(std::fs::read(&key_file).unwrap().len(), 32);
    assert_eq!(mode(&key_file), 0o600);
    assert_eq!(mode(key_file.parent().unwrap()), 0o700);
    let bootstrap = server.data_dir().join("bootstrap-operator.token");
    assert_eq!(mode(&bootstrap), 0o600);
    let token = std::fs::read_to_string(&bootstrap).unwrap();
    assert!(
        server.logs().contains("bootstrap-operator.token"),
        "the path is logged"
    );
    assert!(!server.logs().contains(token.trim()), "the token is not");

    let client = server.client();
    let health = client
        .get(server.admin_url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.version(),
        reqwest::Version::HTTP_2,
        "ALPN negotiates h2"
    );
    assert_eq!(
        health.headers()["strict-transport-security"],
        "max-age=63072000; includeSubDomains"
    );
    let metrics = server.metrics().await;
    assert!(metrics.contains("strongroom_http_requests_total"));
    let document: Value = client
        .get(server.public_url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(document["paths"]["/v1/tenants/{slug}/collections/{name}/records"].is_object());
    let missing = client
        .get(server.public_url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        missing.status(),
        404,
        "no operations route on the public listener"
    );
    assert_eq!(
        missing.headers()["strict-transport-security"],
        "max-age=63072000; includeSubDomains"
    );
    assert_eq!(
        client
            .get(server.admin_url("/openapi.json"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn the_cli_manages_tenants_and_tokens_and_the_tokens_work() {
    let mut server = TestServer::start();
    let created = server.cli_json(&[
        "tenant", "create", "acme", "--name", "Acme NV", "--region", "eu",
    ]);
    assert_eq!(
        (created["slug"].as_str(), created["status"].as_str()),
        (Some("acme"), Some("active"))
    );
    let duplicate = server.cli(&["tenant", "create", "acme", "--name", "Again"]);
    assert!(!duplicate.status.success());
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("409"));
    assert_eq!(
        server.cli_json(&["tenant", "list"])["tenants"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let shown = server.cli_json(&["tenant", "show", "acme"]);
    assert_eq!(
        shown["keys"].as_array().unwrap().len(),
        2,
        "a data key and a blind-index key, with times"
    );
    let token = server.cli_json(&[
        "token",
        "create",
        "acme",
        "--name",
        "ci",
        "--scope",
        "records:read",
        "--scope",
        "records:write",
    ]);
    let secret = token["token"].as_str().unwrap().to_owned();
    assert_eq!(token["scopes"], json!(["records:read", "records:write"]));

    let client = server.client();
    let collection = client
        .put(server.public_url("/v1/tenants/acme/collections/customers"))
        .bearer_auth(&secret)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(collection.status(), 201);
    let record = client
        .post(server.public_url("/v1/tenants/acme/collections/customers/records"))
        .bearer_auth(&secret)
        .json(&json!({"name": "Ann"}))
        .send()
        .await
        .unwrap();
    assert_eq!(record.status(), 201);
    let record: Value = record.json().await.unwrap();
    let path = format!(
        "/v1/tenants/acme/collections/customers/records/{}",
        record["id"].as_str().unwrap()
    );

    server.cli_json(&["tenant", "suspend", "acme"]);
    let refused: Value = client
        .get(server.public_url(&path))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(refused["code"], "tenant_suspended");
    server.cli_json(&["tenant", "resume", "acme"]);
    assert_eq!(
        client
            .get(server.public_url(&path))
            .bearer_auth(&secret)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let without_token = {
        let mut command = std::process::Command::new(crate::server::BINARY);
        command.args([
            "--config",
            server.config_file.to_str().unwrap(),
            "--data-dir",
            "/nonexistent",
            "tenant",
            "list",
        ]);
        command.output().unwrap()
    };
    assert!(
        String::from_utf8_lossy(&without_token.stderr).contains("STRONGROOM_OPERATOR_TOKEN"),
        "a clear message when no operator token is found"
    );

    server.stop().await;
    server.spawn().unwrap();
    let client = server.client();
    let after_restart: Value = client
        .get(server.public_url(&path))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        after_restart["data"]["name"], "Ann",
        "data and tokens survive a restart"
    );
}

#[tokio::test]
async fn keys_rotate_through_the_cli_and_survive_a_restart() {
    let mut server = TestServer::start();
    let secret = server.tenant_with_token("acme");
    let client = server.client();
    client
        .put(server.public_url("/v1/tenants/acme/collections/notes"))
        .bearer_auth(&secret)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let record: Value = client
        .post(server.public_url("/v1/tenants/acme/collections/notes/records"))
        .bearer_auth(&secret)
        .json(&json!({"text": "before"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let path = format!(
        "/v1/tenants/acme/collections/notes/records/{}",
        record["id"].as_str().unwrap()
    );

    let tenant_rotation = server.cli_json(&["keys", "rotate-tenant", "acme"]);
    assert_eq!(tenant_rotation["key_version"], 2);
    let old_key = std::fs::read(server.key_file()).unwrap();
    let master_rotation = server.cli_json(&["keys", "rotate-master"]);
    assert_ne!(
        master_rotation["old_master_key_id"],
        master_rotation["new_master_key_id"]
    );
    let backup = std::path::PathBuf::from(master_rotation["backup_file"].as_str().unwrap());
    assert_eq!(std::fs::read(&backup).unwrap(), old_key);
    assert_eq!(mode(&backup), 0o600);
    assert_eq!(mode(&server.key_file()), 0o600);

    server.stop().await;
    server.spawn().unwrap();
    let client = server.client();
    let read: Value = client
        .get(server.public_url(&path))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["data"]["text"], "before");
    let shown = server.cli_json(&["tenant", "show", "acme"]);
    let versions: Vec<u64> = shown["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|key| key["purpose"] == "data")
        .map(|key| key["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2]);
    assert!(
        shown["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|key| key["master_key_id"] == master_rotation["new_master_key_id"])
    );
}
