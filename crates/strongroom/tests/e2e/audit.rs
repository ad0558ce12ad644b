//! The audit trail through the real binary: requests over TLS are recorded, `strongroom audit
//! verify` finds the chains intact, and finds an event changed on disk.

use crate::server::TestServer;
use serde_json::{Value, json};

#[tokio::test]
async fn the_cli_verifies_the_trail_and_finds_an_event_changed_on_disk() {
    let mut server = TestServer::start();
    let token = server.tenant_with_token("acme");
    let client = server.client();
    client
        .put(server.public_url("/v1/tenants/acme/collections/notes"))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    for n in 0..5 {
        let created = client
            .post(server.public_url("/v1/tenants/acme/collections/notes/records"))
            .bearer_auth(&token)
            .json(&json!({"n": n}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
    }
    let report = server.cli_json(&["audit", "verify"]);
    assert_eq!(report["intact"], true, "{report}");
    let chains: Vec<&str> = report["chains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|chain| chain["chain"].as_str().unwrap())
        .collect();
    assert!(
        chains.contains(&"acme") && chains.contains(&"control"),
        "{chains:?}"
    );
    let acme = report["chains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|chain| chain["chain"] == "acme")
        .unwrap();
    assert!(
        acme["events"].as_u64().unwrap() >= 12,
        "a collection and five records, each as intent and outcome: {acme}"
    );
    let key = server.cli_json(&["audit", "public-key"]);
    assert_eq!(key["algorithm"], "Ed25519");

    // Someone with access to the disk changes one event.
    let connection = rusqlite::Connection::open(server.data_dir().join("audit.db")).unwrap();
    connection
        .busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    connection
        .execute(
            "UPDATE audit_events SET sealed = zeroblob(length(sealed))
             WHERE chain <> 'control' AND sequence = 5",
            [],
        )
        .unwrap();
    drop(connection);
    let broken = server.cli(&["audit", "verify", "--tenant", "acme"]);
    assert!(!broken.status.success(), "a broken chain fails the command");
    let printed: Value = serde_json::from_slice(&broken.stdout).unwrap();
    assert_eq!(printed["chains"][0]["broken_at"], 5, "{printed}");
    assert!(String::from_utf8_lossy(&broken.stderr).contains("broken"));

    server.stop();
    assert!(
        !server.logs().contains(&token),
        "the audit trail logs no token"
    );
}
