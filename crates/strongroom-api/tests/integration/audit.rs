//! The audit trail through the routers: every request recorded with actor, address, action
//! and outcome and no secret; failing closed; tampering of every kind detected.

use crate::harness::{Harness, Request, files_under};
use crate::users::{first_owner_of_acme, session_token};
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;

async fn trail(harness: &Harness, owner: &str, query: &str) -> Vec<Value> {
    let page = harness
        .public(Request::get(&format!("/v1/tenants/acme/audit{query}")).token(owner))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.body["events"].as_array().unwrap().clone()
}

#[tokio::test]
async fn every_request_is_recorded_with_actor_address_action_and_outcome_and_no_secret() {
    let harness = Harness::new().await;
    let token = harness
        .tenant_with_token("acme", &["records:read", "records:write"])
        .await;
    let owner = first_owner_of_acme(&harness).await;
    let password_canary = "canary-password-3f9a";
    let failed = harness
        .public(
            Request::post("/v1/tenants/acme/auth/login")
                .sent_from("198.51.100.4:5000")
                .header("user-agent", "canary-agent/1.0")
                .json(json!({"email": "ann@example.com", "password": password_canary})),
        )
        .await;
    assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    harness
        .public(
            Request::put("/v1/tenants/acme/collections/secret_notes")
                .token(&token)
                .json(json!({})),
        )
        .await;
    let created = harness
        .public(
            Request::post("/v1/tenants/acme/collections/secret_notes/records")
                .token(&token)
                .json(json!({"text": "canary-body-77e1"})),
        )
        .await;
    let record = created.body["id"].as_str().unwrap().to_owned();
    let read = harness
        .public(
            Request::get(&format!(
                "/v1/tenants/acme/collections/secret_notes/records/{record}"
            ))
            .token(&token),
        )
        .await;
    assert_eq!(read.status, StatusCode::OK);

    let events = trail(&harness, &owner, "?limit=1000").await;
    let find = |action: &str, outcome: &str| -> Vec<&Value> {
        events
            .iter()
            .filter(|event| {
                event["event"]["action"] == action && event["event"]["outcome"] == outcome
            })
            .collect()
    };
    let failed_login = find("login", "denied");
    assert_eq!(failed_login.len(), 1, "{events:#?}");
    let failed_login = &failed_login[0]["event"];
    assert_eq!(failed_login["username_tried"], "ann@example.com");
    assert_eq!(failed_login["address"], "198.51.100.4");
    assert_eq!(failed_login["user_agent"], "canary-agent/1.0");
    assert_eq!(failed_login["reason"], "unauthenticated");
    assert_eq!(failed_login["status"], 401);
    assert!(failed_login["request_id"].as_str().unwrap().contains('-'));
    assert!(failed_login["at"].as_str().unwrap().ends_with('Z'));

    let token_id = harness
        .public(Request::get("/v1/tenants/acme/tokens").token(&owner))
        .await
        .body["tokens"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let create_intent = find("create_record", "pending");
    let create_outcome = find("create_record", "allowed");
    assert_eq!(
        (create_intent.len(), create_outcome.len()),
        (1, 1),
        "a change: intent, then outcome"
    );
    assert!(
        create_intent[0]["sequence"].as_u64() < create_outcome[0]["sequence"].as_u64(),
        "the intent is durable before the change runs"
    );
    assert_eq!(
        create_outcome[0]["event"]["actor"],
        json!({"kind": "api_token", "id": token_id})
    );
    // The intent names the caller too: after a crash between the change and its outcome it
    // is the change's only event.
    assert_eq!(
        create_intent[0]["event"]["actor"],
        json!({"kind": "api_token", "id": token_id})
    );
    let get = &find("get_record", "allowed")[0]["event"];
    assert_eq!(get["resource"]["id"], record.as_str());
    assert!(
        get["resource"]["name"].as_str().unwrap().starts_with('#'),
        "collection names are tenant content: a keyed hash stands in"
    );
    assert!(get["bytes_sent"].as_u64().unwrap() > 0);
    assert_eq!(
        find("login", "allowed")[0]["event"]["actor"]["kind"],
        "anonymous",
        "a sign-in is made before there is a session"
    );

    // Filters.
    let denied = trail(&harness, &owner, "?action=login&outcome=denied").await;
    assert_eq!(denied.len(), 1);
    let by_token = trail(&harness, &owner, &format!("?actor={token_id}")).await;
    assert!(!by_token.is_empty());
    assert!(
        by_token
            .iter()
            .all(|event| event["event"]["actor"]["id"] == token_id.as_str())
    );
    let sent_from = trail(&harness, &owner, "?ip=198.51.100.4").await;
    assert_eq!(sent_from.len(), 2, "the sign-in's intent and outcome");
    let mapped = trail(&harness, &owner, "?ip=::ffff:198.51.100.4").await;
    assert_eq!(
        mapped.len(),
        2,
        "an IPv4-mapped address is the IPv4 address"
    );
    for (query, parameter) in [("?outcome=bogus", "outcome"), ("?ip=not-an-ip", "ip")] {
        let refused = harness
            .public(Request::get(&format!("/v1/tenants/acme/audit{query}")).token(&owner))
            .await;
        assert_eq!(
            (refused.status, refused.body["code"].clone()),
            (StatusCode::BAD_REQUEST, json!("invalid_query")),
            "{query}: {}",
            refused.body
        );
        assert!(
            refused.body["detail"]
                .as_str()
                .unwrap()
                .contains(&format!("\"{parameter}\"")),
            "{}",
            refused.body
        );
    }
    let paged = trail(&harness, &owner, "?limit=2").await;
    assert_eq!(paged.len(), 2);
    let older = trail(
        &harness,
        &owner,
        &format!("?limit=2&cursor={}", paged[1]["sequence"]),
    )
    .await;
    assert!(older[0]["sequence"].as_u64() < paged[1]["sequence"].as_u64());

    // The daily JSON-lines file of the tenant, for log shippers: no plaintext personal data.
    let log_file = harness
        .directory
        .path()
        .join("audit-logs/acme/2026-01-01.jsonl");
    let mut lines: Vec<Value> = Vec::new();
    for _ in 0..100 {
        lines = std::fs::read_to_string(&log_file)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        if lines.len() >= events.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        lines.len() >= events.len(),
        "{} lines, {} events",
        lines.len(),
        events.len()
    );
    let logged_failure = lines
        .iter()
        .find(|line| line["event"]["action"] == "login" && line["event"]["outcome"] == "denied")
        .unwrap();
    assert!(
        logged_failure["event"]["username_tried"]
            .as_str()
            .unwrap()
            .starts_with('#')
    );
    assert!(
        logged_failure["event"]["address"]
            .as_str()
            .unwrap()
            .starts_with('#')
    );
    let text = std::fs::read_to_string(&log_file).unwrap();
    assert!(!text.contains("ann@example.com") && !text.contains("198.51.100.4"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&log_file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Reading the trail needs audit:read; the API token has only data scopes.
    let denials_before = harness.security_count("scope_denied");
    let refused = harness
        .public(Request::get("/v1/tenants/acme/audit").token(&token))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.body["code"], "missing_scope", "{}", refused.body);
    assert_eq!(
        harness.security_count("scope_denied"),
        denials_before + 1,
        "a refusal for a missing scope is a security event"
    );

    // No secret in any event, and nothing personal or of the content in plaintext on disk.
    let everything = trail(&harness, &owner, "?limit=1000").await;
    let text = serde_json::to_string(&everything).unwrap();
    for secret in [
        password_canary,
        token.as_str(),
        owner.as_str(),
        "canary-body-77e1",
    ] {
        assert!(!text.contains(secret), "an audit event holds {secret}");
    }
    for file in files_under(&harness.data_dir()) {
        let bytes = std::fs::read(&file).unwrap();
        for needle in [
            "ann@example.com",
            "canary-agent",
            "secret_notes",
            password_canary,
        ] {
            assert!(
                !bytes
                    .windows(needle.len())
                    .any(|window| window == needle.as_bytes()),
                "{needle} in plaintext in {}",
                file.display()
            );
        }
    }
}

/// A client that disconnects mid-request must not take the request's outcome with it: the
/// change under way finishes (here it fails, the body broke off) and the trail says how.
#[tokio::test]
async fn a_request_its_client_abandons_still_has_its_outcome_recorded() {
    let harness = Harness::new().await;
    let token = harness
        .tenant_with_token("acme", &["documents:read", "documents:write"])
        .await;
    let owner = first_owner_of_acme(&harness).await;
    // A connection as the server makes them: its place under the connection limit (held
    // until its last request is done) and one request slot.
    let place: Arc<dyn std::any::Any + Send + Sync> = Arc::new(());
    let place_in_use = Arc::downgrade(&place);
    let connection = strongroom_api::ConnectionSlots::new(place, 1);
    let (upload, body) = Request::put("/v1/tenants/acme/documents/left.bin")
        .token(&token)
        .header("content-type", "application/octet-stream")
        .on_connection(&connection)
        .held_open();
    body.send(Ok(vec![7u8; 70_000])).await.unwrap();
    let uploads = |outcome: &'static str| {
        let harness = &harness;
        let owner = owner.clone();
        async move {
            trail(
                harness,
                &owner,
                &format!("?action=put_document&outcome={outcome}"),
            )
            .await
            .len()
        }
    };
    // Abandoned once its intent is in the trail: the handler is then reading the body.
    harness
        .public_abandoned(upload, async {
            while uploads("pending").await == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
        .await;
    assert!(
        place_in_use.upgrade().is_some(),
        "the request still runs, so its connection's place stays taken"
    );
    let refused = harness
        .public(
            Request::get("/v1/tenants/acme/documents")
                .token(&token)
                .on_connection(&connection),
        )
        .await;
    assert_eq!(
        (refused.status, refused.body["code"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!("unavailable")),
        "the connection's one request slot is still taken: {}",
        refused.body
    );
    assert_eq!(
        trail(&harness, &owner, "?action=list_documents&outcome=error")
            .await
            .len(),
        1,
        "the refusal is recorded"
    );
    // Nobody reads it any more if the abandoned request was cancelled.
    let _ = body
        .send(Err(std::io::Error::other("connection reset")))
        .await;
    let mut recorded = 0;
    for _ in 0..500 {
        recorded = uploads("denied").await;
        if recorded > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        recorded, 1,
        "the abandoned upload's outcome is in the trail"
    );
    for _ in 0..500 {
        if connection.requests.available_permits() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let listed = harness
        .public(
            Request::get("/v1/tenants/acme/documents")
                .token(&token)
                .on_connection(&connection),
        )
        .await;
    assert_eq!(
        listed.status,
        StatusCode::OK,
        "the slot is free once the request is done"
    );
    drop(connection);
    assert!(
        place_in_use.upgrade().is_none(),
        "and so is the connection's place once its requests are done"
    );
    let listed = harness
        .public(Request::get("/v1/tenants/acme/documents").token(&token))
        .await;
    assert_eq!(listed.body["documents"], json!([]), "{}", listed.body);
}

#[tokio::test]
async fn when_the_trail_cannot_be_written_nothing_happens_and_every_request_is_refused() {
    let harness = Harness::new().await;
    let token = harness
        .tenant_with_token("acme", &["records:read", "records:write"])
        .await;
    harness.put_collection("acme", "notes", &token).await;
    let kept = harness
        .public(
            Request::post("/v1/tenants/acme/collections/notes/records")
                .token(&token)
                .json(json!({"text": "kept as it is"})),
        )
        .await;
    let kept_path = format!(
        "/v1/tenants/acme/collections/notes/records/{}",
        kept.body["id"].as_str().unwrap()
    );
    harness
        .audit
        .broken
        .store(true, std::sync::atomic::Ordering::SeqCst);
    // Record changes write their intent alongside (held behind a gate), others before they
    // run: both kinds are refused and change nothing.
    for request in [
        Request::patch(&kept_path)
            .token(&token)
            .json(json!({"text": "changed"})),
        Request::delete(&kept_path).token(&token),
        Request::put("/v1/tenants/acme/collections/other")
            .token(&token)
            .json(json!({})),
    ] {
        let refused = harness.public(request).await;
        assert_eq!(
            (refused.status, refused.body["code"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("audit_unavailable"))
        );
    }
    let create = harness
        .public(
            Request::post("/v1/tenants/acme/collections/notes/records")
                .token(&token)
                .json(json!({"text": "must not be stored"})),
        )
        .await;
    assert_eq!(
        (create.status, create.body["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("audit_unavailable"))
    );
    for request in [
        Request::get("/v1/tenants/acme/collections/notes/records").token(&token),
        Request::get("/openapi.json"),
    ] {
        assert_eq!(
            harness.public(request).await.status,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    assert_eq!(
        harness
            .admin(Request::get("/admin/v1/tenants").token(&harness.operator))
            .await
            .status,
        StatusCode::SERVICE_UNAVAILABLE,
        "the control plane's requests too"
    );
    harness
        .audit
        .broken
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let listed = harness
        .public(Request::get("/v1/tenants/acme/collections/notes/records").token(&token))
        .await;
    let records = listed.body["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "the refused create was never made");
    assert_eq!(
        (
            records[0]["version"].as_u64(),
            records[0]["data"]["text"].as_str()
        ),
        (Some(1), Some("kept as it is")),
        "the refused patch and delete were never made"
    );
    let collection = harness
        .public(Request::get("/v1/tenants/acme/collections/other/records").token(&token))
        .await;
    assert_eq!(collection.status, StatusCode::NOT_FOUND);

    // A change whose intent is written but whose outcome is not: it stands, and the answer
    // says so, so the client does not make it twice.
    harness
        .audit
        .break_after
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let made = harness
        .public(
            Request::post("/v1/tenants/acme/collections/notes/records")
                .token(&token)
                .json(json!({"text": "made, outcome unrecorded"})),
        )
        .await;
    assert_eq!(
        (made.status, made.body["code"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("audit_outcome_unavailable")
        ),
        "{}",
        made.body
    );
    harness
        .audit
        .broken
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let listed = harness
        .public(Request::get("/v1/tenants/acme/collections/notes/records").token(&token))
        .await;
    assert_eq!(listed.body["records"].as_array().unwrap().len(), 2);
}

/// Runs `sql` on the audit database, as someone with access to the disk could.
async fn tamper(harness: &Harness, sql: &str) {
    // Security events of earlier verifications are appended in the background: they land
    // before the tampering, not in the middle of it.
    harness.platform.security.recorded().await;
    let connection = rusqlite::Connection::open(harness.data_dir().join("audit.db")).unwrap();
    connection
        .busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    connection.execute_batch(sql).unwrap();
}

/// Runs `sql` on the audit database and answers what verification says of acme's chain.
async fn verify_after(harness: &Harness, sql: &str) -> Value {
    tamper(harness, sql).await;
    // The platform's own verification: the route's would add its own events to acme's chain
    // (an operator's reading of it), moving the places these tests tamper with.
    let report = harness
        .platform
        .verify_audit(Some("acme"))
        .await
        .unwrap()
        .remove(0);
    json!({
        "intact": report.broken_at.is_none(),
        "chain": report.chain,
        "events": report.events,
        "checkpoints": report.checkpoints,
        "broken_at": report.broken_at,
        "problem": report.problem,
        "anchored_at": report.anchored_at,
    })
}

/// The newest signed head is also in the daily files: a trail cut back in the database together
/// with the checkpoints that signed its end is caught there, and a forged line is passed over.
#[tokio::test]
async fn a_trail_cut_back_with_its_checkpoints_falls_short_of_the_head_in_the_daily_files() {
    let harness = Harness::new().await;
    let token = harness.tenant_with_token("acme", &["records:read"]).await;
    let read = || async {
        harness
            .public(Request::get("/v1/tenants/acme/collections").token(&token))
            .await;
    };
    for _ in 0..3 {
        read().await;
    }
    assert!(harness.platform.sign_audit_checkpoints().await.unwrap() >= 1);
    for _ in 0..3 {
        read().await;
    }
    assert!(harness.platform.sign_audit_checkpoints().await.unwrap() >= 1);
    assert!(
        harness
            .platform
            .flush_audit_log(std::time::Duration::from_secs(5))
            .await
    );
    let intact = verify_after(&harness, "").await;
    assert_eq!(intact["intact"], true, "{intact}");
    assert_eq!(intact["checkpoints"], 2, "{intact}");
    // Token creation (intent, outcome) and six reads: the second checkpoint signed 8.
    assert_eq!(intact["anchored_at"], 8, "{intact}");
    // The fake clock stays on its first day.
    let day = harness
        .directory
        .path()
        .join("audit-logs/acme/2026-01-01.jsonl");
    let lines = std::fs::read_to_string(&day).unwrap();
    let checkpoint_lines: Vec<Value> = lines
        .lines()
        .filter(|line| line.starts_with("{\"checkpoint\":"))
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(checkpoint_lines.len(), 2, "{lines}");
    assert_eq!(checkpoint_lines[1]["checkpoint"]["sequence"], 8);
    assert_eq!(checkpoint_lines[1]["checkpoint"]["expiry"], false);

    // A line someone added with a higher sequence but no valid signature counts for nothing.
    let mut forged = checkpoint_lines[1].clone();
    forged["checkpoint"]["sequence"] = json!(50);
    let mut file = std::fs::OpenOptions::new().append(true).open(&day).unwrap();
    std::io::Write::write_all(&mut file, format!("{forged}\n").as_bytes()).unwrap();
    drop(file);
    let with_forged_line = verify_after(&harness, "").await;
    assert_eq!(with_forged_line["intact"], true, "{with_forged_line}");
    assert_eq!(with_forged_line["anchored_at"], 8, "{with_forged_line}");

    // Cut back to 4, with the checkpoints at 5 and 8: the database alone is consistent again
    // (its last checkpoint is gone with the events it signed), but the daily files know both.
    // (The server going on from the cut and signing its new head is the e2e test's, through a
    // restart.)
    let chain = "(SELECT chain FROM audit_events WHERE chain <> 'control' LIMIT 1)";
    let cut = verify_after(
        &harness,
        &format!(
            "DELETE FROM audit_events WHERE chain = {chain} AND sequence > 4;
             DELETE FROM audit_checkpoints WHERE chain = {chain} AND sequence > 4;"
        ),
    )
    .await;
    assert_eq!(cut["intact"], false, "{cut}");
    assert_eq!(cut["broken_at"], 5, "{cut}");
    assert_eq!(cut["checkpoints"], 0, "{cut}");
    assert_eq!(cut["anchored_at"], 8, "{cut}");
    let problem = cut["problem"].as_str().unwrap();
    assert!(
        problem.contains("daily files") && problem.contains("cut"),
        "{cut}"
    );
}

/// A chain that cannot be checked at all (rows of a chain no tenant owns) is reported broken,
/// and the others are still checked; a tenant whose every audit row is gone is checked too.
#[tokio::test]
async fn verification_goes_on_past_a_chain_it_cannot_check() {
    let harness = Harness::new().await;
    let token = harness.tenant_with_token("acme", &["records:read"]).await;
    harness.tenant_with_token("globex", &["records:read"]).await;
    harness
        .public(Request::get("/v1/tenants/acme/collections").token(&token))
        .await;
    harness.platform.sign_audit_checkpoints().await.unwrap();
    harness.platform.security.recorded().await;
    assert!(
        harness
            .platform
            .flush_audit_log(std::time::Duration::from_secs(5))
            .await
    );
    let globex = harness
        .admin(Request::get("/admin/v1/tenants/globex").token(&harness.operator))
        .await;
    let globex_chain = globex.body["id"].as_str().unwrap().to_owned();
    // A row of a chain no tenant owns, and every row of globex's chain gone.
    tamper(
        &harness,
        &format!(
            "INSERT INTO audit_checkpoints (chain, sequence, head, signature, at)
               VALUES ('0', 1, zeroblob(32), zeroblob(64), 0);
             DELETE FROM audit_events WHERE chain = '{globex_chain}';
             DELETE FROM audit_checkpoints WHERE chain = '{globex_chain}';"
        ),
    )
    .await;
    let reports = harness.platform.verify_audit(None).await.unwrap();
    let by_chain = |name: &str| {
        reports
            .iter()
            .find(|report| report.chain == name)
            .unwrap_or_else(|| panic!("no report of {name}"))
    };
    assert!(by_chain("0").broken_at.is_some(), "the chain of no tenant");
    assert!(
        by_chain("0")
            .problem
            .as_deref()
            .unwrap()
            .contains("could not be checked")
    );
    assert_eq!(by_chain("acme").broken_at, None);
    assert!(by_chain("acme").events >= 3);
    // Gone from the database, but its head is in its daily file.
    let globex = by_chain("globex");
    assert_eq!(
        (globex.events, globex.broken_at),
        (0, Some(2)),
        "{globex:?}"
    );
    assert!(
        globex.problem.as_deref().unwrap().contains("cut"),
        "{globex:?}"
    );
    assert_eq!(by_chain("control").broken_at, None);
}

#[tokio::test]
async fn verification_finds_edited_deleted_reordered_and_cut_events() {
    let harness = Harness::new().await;
    let token = harness.tenant_with_token("acme", &["records:read"]).await;
    for _ in 0..6 {
        harness
            .public(Request::get("/v1/tenants/acme/collections").token(&token))
            .await;
    }
    assert!(harness.platform.sign_audit_checkpoints().await.unwrap() >= 1);
    let intact = verify_after(&harness, "").await;
    assert_eq!(intact["intact"], true, "{intact}");
    // The operator's token creation (intent and outcome) is in the tenant's chain too.
    assert_eq!(intact["events"], 8);
    assert_eq!(intact["checkpoints"], 1);
    let key = harness
        .admin(Request::get("/admin/v1/audit/public-key").token(&harness.operator))
        .await;
    assert_eq!(key.body["public_key_hex"].as_str().unwrap().len(), 64);

    let chain = "(SELECT chain FROM audit_events WHERE chain <> 'control' LIMIT 1)";
    // A copy to put back after each kind of tampering. Events the server appends meanwhile
    // (the security events of failed verifications) stay: the server goes on from the head it
    // wrote, so removing them would itself be a break.
    let backup = format!(
        "DROP TABLE IF EXISTS saved; CREATE TABLE saved AS SELECT * FROM audit_events WHERE chain = {chain};"
    );
    let restore = "DELETE FROM audit_events WHERE chain = (SELECT chain FROM saved LIMIT 1)
           AND sequence <= (SELECT max(sequence) FROM saved);
         INSERT INTO audit_events SELECT * FROM saved;";
    for (tamper, at, said) in [
        (
            format!("UPDATE audit_events SET sealed = zeroblob(length(sealed)) WHERE chain = {chain} AND sequence = 3;"),
            3,
            "does not open",
        ),
        (
            format!("DELETE FROM audit_events WHERE chain = {chain} AND sequence = 4;"),
            4,
            "missing",
        ),
        (
            format!(
                "UPDATE audit_events SET sequence = -sequence WHERE chain = {chain} AND sequence IN (2, 5);
                 UPDATE audit_events SET sequence = 5 WHERE chain = {chain} AND sequence = -2;
                 UPDATE audit_events SET sequence = 2 WHERE chain = {chain} AND sequence = -5;"
            ),
            2,
            "does not open",
        ),
        (
            format!("DELETE FROM audit_events WHERE chain = {chain} AND sequence > 4;"),
            8,
            "cut",
        ),
        (
            format!("UPDATE audit_checkpoints SET head = zeroblob(32) WHERE chain = {chain};"),
            8,
            "signature",
        ),
    ] {
        verify_after(&harness, &backup).await;
        let report = verify_after(&harness, &tamper).await;
        assert_eq!(report["intact"], false, "{tamper}: {report}");
        assert_eq!(report["broken_at"], at, "{tamper}: {report}");
        assert!(report["problem"].as_str().unwrap().contains(said), "{tamper}: {report}");
        let restored = verify_after(&harness, restore).await;
        if !tamper.contains("audit_checkpoints") {
            assert_eq!(restored["intact"], true, "restored after {tamper}: {restored}");
        }
    }
    assert!(harness.security_count("audit_verify_failed") >= 5);

    // Events removed from the start up to an ordinary signed checkpoint do not pass for
    // expired ones: only expiry signs the mark a trail may start after.
    assert!(harness.platform.sign_audit_checkpoints().await.unwrap() >= 1);
    for _ in 0..2 {
        harness
            .public(Request::get("/v1/tenants/acme/collections").token(&token))
            .await;
    }
    let report = verify_after(
        &harness,
        &format!(
            "DELETE FROM audit_events WHERE chain = {chain}
               AND sequence <= (SELECT max(sequence) FROM audit_checkpoints WHERE chain = {chain});"
        ),
    )
    .await;
    assert_eq!(report["intact"], false, "{report}");
    assert_eq!(report["broken_at"], 1, "{report}");
    assert!(
        report["problem"]
            .as_str()
            .unwrap()
            .contains("marks no expiry"),
        "{report}"
    );
}

/// A log collector's API token with the `audit:read` scope reads the trail, its checkpoints and
/// the public key, and nothing else; only an admin who holds `audit:read` can create one.
#[tokio::test]
async fn an_audit_read_token_reads_the_trail_and_nothing_else() {
    let harness = Harness::new().await;
    harness.tenant_with_token("acme", &["records:read"]).await;
    // Not minted by operators, even before a tenant has users (they read trails on the admin
    // listener, as themselves).
    let by_operator = harness
        .admin(
            Request::post("/admin/v1/tenants/acme/tokens")
                .token(&harness.operator)
                .json(json!({"name": "siem", "scopes": ["audit:read"]})),
        )
        .await;
    assert_eq!(
        by_operator.status,
        StatusCode::BAD_REQUEST,
        "{}",
        by_operator.body
    );
    assert!(
        by_operator.body["detail"]
            .as_str()
            .unwrap()
            .contains("operators do not mint audit:read tokens"),
        "{}",
        by_operator.body
    );
    let owner = first_owner_of_acme(&harness).await;
    let admin =
        crate::users::session_with_role(&harness, &owner, "adam@example.com", "admin").await;
    let mint = |session: &str| {
        harness.public(
            Request::post("/v1/tenants/acme/tokens")
                .token(session)
                .json(json!({"name": "siem", "scopes": ["audit:read"]})),
        )
    };
    let by_admin = mint(&admin).await;
    assert_eq!(by_admin.status, StatusCode::FORBIDDEN, "{}", by_admin.body);
    assert_eq!(by_admin.body["code"], "missing_permission");
    let minted = mint(&owner).await;
    assert_eq!(minted.status, StatusCode::CREATED, "{}", minted.body);
    assert_eq!(minted.body["scopes"], json!(["audit:read"]));
    let collector = minted.body["token"].as_str().unwrap().to_owned();

    let page = harness
        .public(Request::get("/v1/tenants/acme/audit?limit=5").token(&collector))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.body["events"].as_array().unwrap().len(), 5);
    harness.platform.sign_audit_checkpoints().await.unwrap();
    let checkpoints = harness
        .public(Request::get("/v1/tenants/acme/audit/checkpoints").token(&collector))
        .await;
    assert_eq!(checkpoints.status, StatusCode::OK, "{}", checkpoints.body);
    assert!(
        !checkpoints.body["checkpoints"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let key = harness
        .public(Request::get("/v1/tenants/acme/audit/public-key").token(&collector))
        .await;
    assert_eq!(key.status, StatusCode::OK, "{}", key.body);

    // Nothing else: not the retention (users only), not data, not the security policy.
    // The retention change also says why a token with the audit:read scope is not enough.
    for (request, code, detail) in [
        (
            Request::put("/v1/tenants/acme/policy/audit-retention")
                .token(&collector)
                .json(json!({"days": 30})),
            "missing_permission",
            Some("only a signed-in user with the audit:read permission"),
        ),
        (
            Request::get("/v1/tenants/acme/policy/audit-retention").token(&collector),
            "missing_permission",
            None,
        ),
        (
            Request::get("/v1/tenants/acme/security-events").token(&collector),
            "missing_permission",
            None,
        ),
        (
            Request::get("/v1/tenants/acme/collections").token(&collector),
            "missing_scope",
            None,
        ),
    ] {
        let refused = harness.public(request).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
        assert_eq!(refused.body["code"], code, "{}", refused.body);
        if let Some(detail) = detail {
            assert!(
                refused.body["detail"].as_str().unwrap().contains(detail),
                "a token with the audit:read scope is told why it is not enough: {}",
                refused.body
            );
        }
    }
    let retention = harness
        .public(Request::get("/v1/tenants/acme/policy/audit-retention").token(&owner))
        .await;
    assert_eq!(retention.body["days"], 400, "unchanged");

    // Its reads are in the trail under its own name, like any caller's.
    let token_id = minted.body["id"].as_str().unwrap();
    let own = trail(&harness, &owner, &format!("?actor={token_id}&limit=50")).await;
    assert!(
        own.iter()
            .any(|event| event["event"]["action"] == "tenant_audit"),
        "{own:?}"
    );
}

/// A change's intent names who asked, as its outcome does, for operators, sessions and API
/// tokens alike. Finding out raises nothing of its own: a bad token is one security event,
/// the handler's.
#[tokio::test]
async fn intents_name_the_caller_as_outcomes_do() {
    let harness = Harness::new().await;
    let token = harness
        .tenant_with_token("acme", &["records:read", "records:write"])
        .await;
    let owner = first_owner_of_acme(&harness).await;
    let made = harness
        .mint_token(
            "acme",
            &owner,
            json!({"name": "ci", "scopes": ["records:read"]}),
        )
        .await;
    assert!(made.status.is_success(), "{}", made.body);
    harness.put_collection("acme", "notes", &token).await;
    let before = harness.security_count("unknown_token");
    let bogus = harness
        .public(
            Request::post("/v1/tenants/acme/collections/notes/records")
                .token("srt_not-a-token")
                .json(json!({})),
        )
        .await;
    assert_eq!(bogus.status, StatusCode::UNAUTHORIZED);
    assert_eq!(harness.security_count("unknown_token"), before + 1);
    // Credentials the handler refuses name nobody in the intent either: the owner's session
    // cookie on a change another site started, and a token (cached) once it has expired.
    let cross_site = harness
        .public(
            Request::post("/v1/tenants/acme/tokens")
                .header("cookie", &format!("__Host-strongroom-session={owner}"))
                .header("sec-fetch-site", "cross-site")
                .json(json!({"name": "forged", "scopes": ["records:read"]})),
        )
        .await;
    assert_eq!(
        cross_site.status,
        StatusCode::FORBIDDEN,
        "{}",
        cross_site.body
    );
    let expiring = harness.mint_token("acme", &owner, json!({"name": "brief", "scopes": ["records:write"], "expires_at": harness.clock_in_seconds(60)})).await;
    let expiring = expiring.body["token"].as_str().unwrap().to_owned();
    let write_with = |token: String| {
        harness.public(
            Request::post("/v1/tenants/acme/collections/notes/records")
                .token(&token)
                .json(json!({})),
        )
    };
    assert_eq!(
        write_with(expiring.clone()).await.status,
        StatusCode::CREATED
    );
    harness.clock.advance_micros(61_000_000);
    assert_eq!(write_with(expiring).await.status, StatusCode::UNAUTHORIZED);

    let events = trail(&harness, &owner, "?limit=1000").await;
    let mut kinds = std::collections::BTreeSet::new();
    for intent in events
        .iter()
        .filter(|event| event["event"]["phase"] == "intent")
    {
        let outcome = events
            .iter()
            .find(|event| {
                event["event"]["phase"] == "outcome"
                    && event["event"]["request_id"] == intent["event"]["request_id"]
            })
            .unwrap();
        assert_eq!(
            intent["event"]["actor"], outcome["event"]["actor"],
            "{intent} / {outcome}"
        );
        kinds.insert(
            intent["event"]["actor"]["kind"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["anonymous", "api_token", "operator", "user"]
    );
}

/// Verification reads checkpoints a page (1,000) at a time beside the events: a chain with
/// more checkpoints than a page is checked whole, and a break past the first page is found.
#[tokio::test]
async fn verification_checks_checkpoints_past_its_first_page() {
    let harness = Harness::new().await;
    harness.tenant_with_token("acme", &["records:read"]).await;
    let checkpoints = 1_205;
    for _ in 0..checkpoints {
        harness
            .platform
            .audit(strongroom_service::AuditRecord {
                tenant_slug: Some("acme".into()),
                phase: "request",
                listener: "public",
                method: "GET".into(),
                route: "/test".into(),
                action: "test".into(),
                outcome: "allowed",
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(harness.platform.sign_audit_checkpoints().await.unwrap() >= 1);
    }
    let intact = verify_after(&harness, "").await;
    assert_eq!(
        (&intact["intact"], &intact["checkpoints"]),
        (&json!(true), &json!(checkpoints)),
        "{intact}"
    );
    let chain = "(SELECT chain FROM audit_events WHERE chain <> 'control' LIMIT 1)";
    let broken = verify_after(
        &harness,
        &format!("UPDATE audit_checkpoints SET head = zeroblob(32) WHERE chain = {chain} AND sequence = 1100;"),
    )
    .await;
    assert_eq!(
        (
            &broken["intact"],
            &broken["broken_at"],
            &broken["checkpoints"]
        ),
        (&json!(false), &json!(1100), &json!(checkpoints)),
        "{broken}"
    );
    let cut = verify_after(
        &harness,
        &format!("DELETE FROM audit_events WHERE chain = {chain} AND sequence > 1150;"),
    )
    .await;
    assert_eq!(
        cut["broken_at"], 1100,
        "the first break stays the first: {cut}"
    );
}

#[tokio::test]
async fn expiry_keeps_the_rest_of_the_chain_verifiable_from_a_signed_checkpoint() {
    let harness = Harness::new().await;
    let token = harness.tenant_with_token("acme", &["records:read"]).await;
    let owner = first_owner_of_acme(&harness).await;
    let retention = harness
        .public(Request::get("/v1/tenants/acme/policy/audit-retention").token(&owner))
        .await;
    assert_eq!(retention.body["days"], 400);
    let too_short = harness
        .public(
            Request::put("/v1/tenants/acme/policy/audit-retention")
                .token(&owner)
                .json(json!({"days": 7})),
        )
        .await;
    assert_eq!(too_short.status, StatusCode::BAD_REQUEST);
    let set = harness
        .public(
            Request::put("/v1/tenants/acme/policy/audit-retention")
                .token(&owner)
                .json(json!({"days": 30})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    for _ in 0..4 {
        harness
            .public(Request::get("/v1/tenants/acme/collections").token(&token))
            .await;
    }
    harness.platform.sign_audit_checkpoints().await.unwrap();
    let before = verify_after(&harness, "").await;
    let old_file = harness
        .directory
        .path()
        .join("audit-logs/acme/2026-01-01.jsonl");
    for _ in 0..100 {
        if old_file.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(old_file.exists());

    // Reads on 2026-01-12 are 20 days old at expiry: inside the 30 days, so they stay.
    harness.clock.advance_micros(11 * 24 * 3600 * 1_000_000);
    for _ in 0..3 {
        harness
            .public(Request::get("/v1/tenants/acme/collections").token(&token))
            .await;
    }
    harness.clock.advance_micros(20 * 24 * 3600 * 1_000_000);
    for _ in 0..3 {
        harness
            .public(Request::get("/v1/tenants/acme/collections").token(&token))
            .await;
    }
    let removed = harness.platform.expire_audit().await.unwrap();
    assert!(removed >= 4, "removed {removed}");
    let after = verify_after(&harness, "").await;
    assert_eq!(after["intact"], true, "{after}");
    assert!(
        after["events"].as_u64() < before["events"].as_u64(),
        "{before} {after}"
    );
    assert!(!old_file.exists(), "the files of expired days go too");
    // A month on, the owner signs in again (sessions last 12 hours at most).
    let owner = session_token(&harness, "ann@example.com", "a fine long passphrase").await;
    let kept = trail(&harness, &owner, "?action=list_collections&limit=1000").await;
    let days: Vec<&str> = kept
        .iter()
        .map(|entry| &entry["event"]["at"].as_str().unwrap()[..10])
        .collect();
    assert_eq!(
        days.iter().filter(|day| **day == "2026-01-12").count(),
        3,
        "events younger than the retention stay: {days:?}"
    );
    assert!(!days.contains(&"2026-01-01"), "{days:?}");
    let exported = tenant_side_check(&harness, &owner, |_| {}).await;
    assert_eq!(
        exported["intact"], true,
        "the tenant's own check accepts the expiry mark: {exported}"
    );

    // Cutting more than expiry did is still found.
    let cut = verify_after(
        &harness,
        "DELETE FROM audit_events WHERE chain <> 'control' AND sequence = (SELECT MIN(sequence) FROM audit_events WHERE chain <> 'control');",
    )
    .await;
    assert_eq!(cut["intact"], false, "{cut}");
    assert!(
        cut["problem"]
            .as_str()
            .unwrap()
            .contains("no signed checkpoint"),
        "{cut}"
    );
}

/// Every page of a listing, following `next_cursor`: the items under `field`.
async fn every_page(harness: &Harness, owner: &str, path: &str, field: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = harness
            .public(Request::get(&format!("{path}{cursor}")).token(owner))
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        items.extend(page.body[field].as_array().unwrap().iter().cloned());
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return items,
        }
    }
}

/// Exports the tenant's trail through the API as a tenant would and runs the independent
/// verifier (`tools/verify_audit_export.py`: Python's hashlib and cryptography, not our code).
async fn tenant_side_check(harness: &Harness, owner: &str, tamper: impl Fn(&mut Value)) -> Value {
    let events = every_page(
        harness,
        owner,
        "/v1/tenants/acme/audit?limit=1000",
        "events",
    )
    .await;
    // One checkpoint a page, so the export walks the pages as a tenant with a year of them must.
    let checkpoints = every_page(
        harness,
        owner,
        "/v1/tenants/acme/audit/checkpoints?limit=1",
        "checkpoints",
    )
    .await;
    let key = harness
        .public(Request::get("/v1/tenants/acme/audit/public-key").token(owner))
        .await
        .body["public_key_hex"]
        .clone();
    let mut export = json!({"public_key_hex": key, "events": events, "checkpoints": checkpoints});
    tamper(&mut export);
    // The package directory `cargo test` sets at run time, not a compiled-in one that can
    // name another checkout sharing the target directory.
    let script = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
        .join("../../tools/verify_audit_export.py");
    let mut child = std::process::Command::new("/usr/bin/python3")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(export.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "the verifier said: {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

#[tokio::test]
async fn a_tenant_checks_its_exported_trail_without_trusting_the_server() {
    let harness = Harness::new().await;
    let token = harness.tenant_with_token("acme", &["records:read"]).await;
    let owner = first_owner_of_acme(&harness).await;
    // A second factor's secret is a canary too: enrolment answers it, the trail must not.
    let enrolment = harness
        .public(Request::post("/v1/tenants/acme/me/mfa/totp").token(&owner))
        .await;
    let seed = enrolment.body["otpauth_uri"]
        .as_str()
        .unwrap()
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    for _ in 0..3 {
        harness
            .public(Request::get("/v1/tenants/acme/collections").token(&token))
            .await;
    }
    harness.platform.sign_audit_checkpoints().await.unwrap();
    let intact = tenant_side_check(&harness, &owner, |_| {}).await;
    assert_eq!(intact["intact"], true, "{intact}");
    let everything = trail(&harness, &owner, "?limit=1000").await;
    assert!(
        !serde_json::to_string(&everything).unwrap().contains(&seed),
        "the TOTP seed is in the trail"
    );

    let edited = tenant_side_check(&harness, &owner, |export| {
        let events = export["events"].as_array_mut().unwrap();
        let last = events.len() - 1;
        let text =
            events[last]["event_json"]
                .as_str()
                .unwrap()
                .replacen("\"phase\"", "\"phase \"", 1);
        events[last]["event_json"] = json!(text);
    })
    .await;
    assert_eq!(edited["intact"], false, "{edited}");
    let forged = tenant_side_check(&harness, &owner, |export| {
        let checkpoints = export["checkpoints"].as_array_mut().unwrap();
        checkpoints[0]["head"] = json!("00".repeat(32));
    })
    .await;
    assert_eq!(forged["intact"], false, "{forged}");
    // Events dropped from the start up to an ordinary checkpoint (the trail's own reads came
    // after it) are a cut, and calling that checkpoint an expiry mark breaks its signature.
    for claim_expiry in [false, true] {
        let cut = tenant_side_check(&harness, &owner, |export| {
            let through = export["checkpoints"][0]["sequence"].as_u64().unwrap();
            export["checkpoints"][0]["expiry"] = json!(claim_expiry);
            export["events"]
                .as_array_mut()
                .unwrap()
                .retain(|event| event["sequence"].as_u64().unwrap() > through);
            assert!(!export["events"].as_array().unwrap().is_empty());
        })
        .await;
        assert_eq!(cut["intact"], false, "{cut}");
        let expected = if claim_expiry { "signature" } else { "cut" };
        assert!(cut["problem"].as_str().unwrap().contains(expected), "{cut}");
    }
    // With every event gone, only an expiry mark may end the trail.
    let emptied = tenant_side_check(&harness, &owner, |export| {
        export["events"] = json!([]);
    })
    .await;
    assert_eq!(emptied["intact"], false, "{emptied}");
    assert!(
        emptied["problem"].as_str().unwrap().contains("missing"),
        "{emptied}"
    );
}

#[tokio::test]
async fn expiry_holds_back_a_chain_whose_stored_times_were_moved_back() {
    let harness = Harness::new().await;
    let token = harness.tenant_with_token("acme", &["records:read"]).await;
    for _ in 0..4 {
        harness
            .public(Request::get("/v1/tenants/acme/collections").token(&token))
            .await;
    }
    // Every young acme event made to look a lifetime old, as someone erasing them would.
    let moved = verify_after(
        &harness,
        "UPDATE audit_events SET at = 0 WHERE chain <> 'control';",
    )
    .await;
    assert_eq!(moved["intact"], false, "{moved}");
    assert!(
        moved["problem"].as_str().unwrap().contains("stored time"),
        "{moved}"
    );
    let count = || {
        rusqlite::Connection::open(harness.data_dir().join("audit.db"))
            .unwrap()
            .query_row(
                "SELECT count(*) FROM audit_events WHERE chain <> 'control'",
                [],
                |row| row.get::<_, i64>(0),
            )
            .unwrap()
    };
    let events_before = count();
    let alarms_before = harness.security_count("audit_verify_failed");
    assert_eq!(harness.platform.expire_audit().await.unwrap(), 0);
    // The raised security event may join the trail meanwhile; nothing left it.
    assert!(count() >= events_before, "nothing was erased");
    assert!(
        harness.security_count("audit_verify_failed") > alarms_before,
        "the held-back expiry raised a security event"
    );
}

#[tokio::test]
async fn a_chain_whose_every_event_expired_still_verifies() {
    let harness = Harness::new().await;
    let token = harness.tenant_with_token("acme", &["records:read"]).await;
    for _ in 0..3 {
        harness
            .public(Request::get("/v1/tenants/acme/collections").token(&token))
            .await;
    }
    harness.platform.sign_audit_checkpoints().await.unwrap();
    harness.clock.advance_micros(401 * 24 * 3600 * 1_000_000);
    assert!(harness.platform.expire_audit().await.unwrap() >= 3);
    let report = verify_after(&harness, "").await;
    assert_eq!(report["intact"], true, "{report}");
    assert_eq!(report["events"], 0, "{report}");
}

/// An operator reading a tenant's trail (`?tenant=`) is recorded in that tenant's trail, with
/// the operator as the actor: the tenant sees who read it.
#[tokio::test]
async fn an_operator_reading_a_tenants_trail_is_in_that_trail() {
    let harness = Harness::new().await;
    harness.tenant_with_token("acme", &["records:read"]).await;
    for request in [
        Request::get("/admin/v1/audit?tenant=acme"),
        Request::get("/admin/v1/security-events?tenant=acme"),
        Request::post("/admin/v1/audit/verify?tenant=acme"),
    ] {
        let read = harness.admin(request.token(&harness.operator)).await;
        assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    }
    let trail = harness
        .admin(Request::get("/admin/v1/audit?tenant=acme&limit=1000").token(&harness.operator))
        .await;
    let reads: Vec<&Value> = trail.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| {
            ["operator_audit", "operator_security_events", "verify"]
                .contains(&event["event"]["action"].as_str().unwrap_or_default())
        })
        .collect();
    // The verification is a POST: its intent and its outcome.
    assert_eq!(reads.len(), 4, "{:#}", trail.body);
    for read in reads {
        assert_eq!(read["event"]["tenant"], "acme");
        // An intent is written before the caller is known; its outcome names the operator.
        if read["event"]["phase"] != "intent" {
            assert_eq!(read["event"]["actor"]["kind"], "operator", "{read:#}");
        }
    }
}

/// A tenant whose retention cannot be read is skipped (and logged): the other chains still
/// expire.
#[tokio::test]
async fn one_tenant_whose_retention_cannot_be_read_holds_back_no_other_expiry() {
    let harness = Harness::new().await;
    let token = harness.tenant_with_token("acme", &["records:read"]).await;
    harness.tenant_with_token("globex", &["records:read"]).await;
    for _ in 0..3 {
        harness
            .public(Request::get("/v1/tenants/acme/collections").token(&token))
            .await;
    }
    rusqlite::Connection::open(harness.tenant_dir("globex").await.join("tenant.db"))
        .unwrap()
        .execute(
            "INSERT OR REPLACE INTO settings (name, sealed) VALUES ('audit-retention', x'00')",
            [],
        )
        .unwrap();
    harness.platform.sign_audit_checkpoints().await.unwrap();
    harness.clock.advance_micros(401 * 24 * 3600 * 1_000_000);
    let removed = harness.platform.expire_audit().await.unwrap();
    assert!(removed >= 3, "acme's events expired: {removed}");
    let acme = verify_after(&harness, "").await;
    assert_eq!(acme["events"], 0, "{acme}");
}

/// A sign-in name that could name no account may be a password typed into the wrong field:
/// the trail keeps only its keyed hash (tenants) or nothing of it (operators).
#[tokio::test]
async fn a_password_typed_as_the_sign_in_name_is_not_in_the_trail() {
    let harness = Harness::new().await;
    harness.tenant_with_token("acme", &["records:read"]).await;
    let owner = first_owner_of_acme(&harness).await;
    let canary = "Canary-Pass 9f1a!";
    let refused = harness
        .public(
            Request::post("/v1/tenants/acme/auth/login")
                .json(json!({"email": canary, "password": "whatever it was"})),
        )
        .await;
    assert!(refused.status.is_client_error(), "{}", refused.body);
    let operator = harness
        .admin(
            Request::post("/admin/v1/auth/login")
                .json(json!({"name": canary, "password": "x", "code": "000000"})),
        )
        .await;
    assert!(operator.status.is_client_error(), "{}", operator.body);

    let events = trail(&harness, &owner, "?action=login&limit=1000").await;
    let tried: Vec<&Value> = events
        .iter()
        .filter_map(|event| event["event"].get("username_tried"))
        .filter(|name| !name.is_null())
        .collect();
    // The owner's own sign-ins keep their address; the canary's is a keyed hash.
    assert!(
        tried
            .iter()
            .any(|name| name.as_str().unwrap().starts_with('#')),
        "{tried:?}"
    );
    let control = harness
        .admin(Request::get("/admin/v1/audit?limit=1000").token(&harness.operator))
        .await;
    for listing in [
        &serde_json::to_string(&events).unwrap(),
        &control.body.to_string(),
    ] {
        assert!(!listing.contains(canary), "{listing}");
    }
    assert!(
        control
            .body
            .to_string()
            .contains("\"username_tried\":\"#\""),
        "the operator's sign-in is still recorded, without the name: {}",
        control.body
    );
}

/// The control plane's trail names the operator a request was about (no tenant content is in
/// it), and bounds what an anonymous client can make it store.
#[tokio::test]
async fn the_control_trail_names_operators_and_bounds_what_clients_send() {
    let harness = Harness::new().await;
    let disabled = harness
        .admin(Request::post("/admin/v1/operators/olga/disable").token(&harness.operator))
        .await;
    assert!(disabled.status.is_client_error(), "{}", disabled.body);
    let long_slug = "x".repeat(5000);
    harness
        .public(Request::get(&format!(
            "/v1/tenants/{long_slug}/collections"
        )))
        .await;
    // A mistyped slug: the path may still be someone's content.
    harness
        .public(Request::get(
            "/v1/tenants/acmee/documents/hr/salary-of-jane.pdf",
        ))
        .await;
    let control = harness
        .admin(Request::get("/admin/v1/audit?limit=1000").token(&harness.operator))
        .await;
    let events = control.body["events"].as_array().unwrap();
    let disable = events
        .iter()
        .find(|event| event["event"]["action"] == "disable_operator")
        .unwrap_or_else(|| panic!("{:#}", control.body));
    assert_eq!(disable["event"]["resource"]["name"], "olga");
    let probe = events
        .iter()
        .find(|event| event["event"]["action"] == "list_collections")
        .unwrap_or_else(|| panic!("{:#}", control.body));
    assert_eq!(
        probe["event"]["tenant"].as_str().unwrap().len(),
        64,
        "a missing tenant's slug is bounded"
    );
    assert!(
        !control.body.to_string().contains("salary-of-jane"),
        "{:#}",
        control.body
    );
}
