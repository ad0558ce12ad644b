use crate::server::{TestServer, files_containing};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// A record, and the request id its answer carried.
struct Acknowledged {
    id: String,
    request_id: String,
}

/// Acknowledged creates survive SIGKILL, and so does each one's audit outcome (an event is
/// durable before its answer leaves), in a chain that still verifies.
#[tokio::test]
async fn acknowledged_creates_survive_kill_9() {
    let mut server = TestServer::start();
    let secret = server.tenant_with_token("acme");
    let client = server.client();
    let collection = server.public_url("/v1/tenants/acme/collections/events");
    client
        .put(&collection)
        .bearer_auth(&secret)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let acknowledged: Arc<Mutex<Vec<Acknowledged>>> = Arc::default();
    let records = format!("{collection}/records");
    let writers: Vec<_> = (0..16)
        .map(|writer| {
            let (client, records, secret, acknowledged) = (
                client.clone(),
                records.clone(),
                secret.clone(),
                acknowledged.clone(),
            );
            tokio::spawn(async move {
                for sequence in 0.. {
                    let Ok(response) = client
                        .post(&records)
                        .bearer_auth(&secret)
                        .json(&json!({"writer": writer, "sequence": sequence}))
                        .send()
                        .await
                    else {
                        return;
                    };
                    if response.status() != 201 {
                        return;
                    }
                    let request_id = response.headers()["x-request-id"]
                        .to_str()
                        .unwrap()
                        .to_owned();
                    let Ok(body) = response.json::<Value>().await else {
                        return;
                    };
                    acknowledged.lock().unwrap().push(Acknowledged {
                        id: body["id"].as_str().unwrap().to_owned(),
                        request_id,
                    });
                }
            })
        })
        .collect();
    while acknowledged.lock().unwrap().len() < 400 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.kill_9();
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged = std::mem::take(&mut *acknowledged.lock().unwrap());

    let tenant_dir = std::fs::read_dir(server.data_dir().join("tenants"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let connection = rusqlite::Connection::open(tenant_dir.join("tenant.db")).unwrap();
    let integrity: String = connection
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(integrity, "ok", "the database opens cleanly after SIGKILL");
    drop(connection);

    server.spawn().unwrap();
    let client = server.client();
    for Acknowledged { id, .. } in &acknowledged {
        let response = client
            .get(format!("{records}/{id}"))
            .bearer_auth(&secret)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "acknowledged record {id} was lost");
    }

    let recorded = recorded_creates(&server).await;
    for Acknowledged { id, request_id } in &acknowledged {
        assert!(
            recorded.contains(request_id),
            "the create of {id} (request {request_id}) was answered, but its outcome is not in the trail"
        );
    }
    let verified = server.cli_json(&["audit", "verify", "--tenant", "acme"]);
    assert_eq!(verified["intact"], true, "{verified}");
}

/// The request ids of acme's create outcomes answered 201, read through the operator API.
async fn recorded_creates(server: &TestServer) -> HashSet<String> {
    let bootstrap = server.bootstrap_token();
    let mut recorded = HashSet::new();
    let mut cursor = String::new();
    loop {
        let page = server
            .get_json(
                &server.admin_url(&format!(
                    "/admin/v1/audit?tenant=acme&action=create_record&limit=1000{cursor}"
                )),
                &bootstrap,
            )
            .await;
        for entry in page["events"].as_array().unwrap() {
            let event = &entry["event"];
            if event["phase"] == "outcome" && event["status"] == 201 {
                recorded.insert(event["request_id"].as_str().unwrap().to_owned());
            }
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return recorded,
        }
    }
}

#[tokio::test]
async fn secrets_and_content_never_reach_logs_or_disk() {
    let mut server = TestServer::start();
    let operator =
        std::fs::read_to_string(server.data_dir().join("bootstrap-operator.token")).unwrap();
    let secret = server.tenant_with_token("acme");
    let client = server.client();
    let canaries = ["canary-body-6c1d", "canary-indexed-41aa"];
    client
        .put(server.public_url("/v1/tenants/acme/collections/notes"))
        .bearer_auth(&secret)
        .json(&json!({"schema": {"fields": {"tag": {"type": "string", "indexed": true}}}}))
        .send()
        .await
        .unwrap();
    for _ in 0..20 {
        let created = client
            .post(server.public_url("/v1/tenants/acme/collections/notes/records"))
            .bearer_auth(&secret)
            .json(&json!({"tag": canaries[1], "text": canaries[0]}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
    }
    let lookup: Value = client
        .get(server.public_url(&format!(
            "/v1/tenants/acme/collections/notes/records?where.tag={}",
            canaries[1]
        )))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(lookup["records"].as_array().unwrap().len(), 20);
    client
        .get(server.public_url("/v1/tenants/acme/collections"))
        .bearer_auth("srt_wrong-token-for-the-log")
        .send()
        .await
        .unwrap();
    client
        .get(server.admin_url("/admin/v1/tenants"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    let first_user: Value = client
        .post(server.admin_url("/admin/v1/tenants/acme/users"))
        .bearer_auth(operator.trim())
        .json(&json!({"email": "canary-user@example.com", "display_name": "Canary"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let one_time = first_user["one_time_password"].as_str().unwrap().to_owned();
    let signed_in: Value = client
        .post(server.public_url("/v1/tenants/acme/auth/login"))
        .json(&json!({"email": "canary-user@example.com", "password": one_time}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session = signed_in["session_token"].as_str().unwrap().to_owned();
    let new_password = "canary passphrase 5b7e";
    let changed = client
        .post(server.public_url("/v1/tenants/acme/me/password"))
        .bearer_auth(&session)
        .json(&json!({"current_password": one_time, "new_password": new_password}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 204);
    let master_key = std::fs::read(server.key_file()).unwrap();
    server.stop().await;

    let logs = server.logs();
    assert!(
        logs.contains("request answered"),
        "debug logging was on, so the check means something"
    );
    let master_hex: String = master_key
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    for needle in [
        operator.trim(),
        secret.as_str(),
        "srt_wrong-token-for-the-log",
        &master_hex,
        canaries[0],
        canaries[1],
        &one_time,
        &session,
        new_password,
        "canary-user@example.com",
    ] {
        assert!(
            !logs.contains(needle),
            "the log holds a secret or content: {needle}"
        );
    }
    assert_eq!(
        files_containing(
            &server.data_dir(),
            &[
                canaries[0],
                canaries[1],
                "canary-user@example.com",
                new_password,
                &one_time
            ]
        ),
        Vec::<String>::new(),
        "after a graceful stop (WAL checkpointed)"
    );
    let wal_files: Vec<_> = crate::server::walk(&server.data_dir())
        .into_iter()
        .filter(|path| path.to_string_lossy().ends_with("-wal"))
        .filter(|path| std::fs::metadata(path).unwrap().len() > 0)
        .collect();
    assert!(
        wal_files.is_empty(),
        "a graceful stop checkpoints every WAL: {wal_files:?}"
    );
}
