//! The audit trail through the real binary: requests over TLS are recorded, `strongroom audit
//! verify` finds the chains intact, and finds an event changed on disk.

use crate::server::{TestServer, eventually};
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
    zero_event(&server, 5);
    let broken = server.cli(&["audit", "verify", "--tenant", "acme"]);
    assert!(!broken.status.success(), "a broken chain fails the command");
    let printed: Value = serde_json::from_slice(&broken.stdout).unwrap();
    assert_eq!(printed["chains"][0]["broken_at"], 5, "{printed}");
    assert!(String::from_utf8_lossy(&broken.stderr).contains("broken"));

    server.stop().await;
    assert!(
        !server.logs().contains(&token),
        "the audit trail logs no token"
    );
}

/// Zeroes the sealed body of acme's event `sequence` in `audit.db`, as someone with access to
/// the disk could.
fn zero_event(server: &TestServer, sequence: i64) {
    let connection = rusqlite::Connection::open(server.data_dir().join("audit.db")).unwrap();
    connection
        .busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    connection
        .execute(
            "UPDATE audit_events SET sealed = zeroblob(length(sealed))
             WHERE chain <> 'control' AND sequence = ?1",
            [sequence],
        )
        .unwrap();
}

/// A server with tenant acme whose API token listed its collections `reads` times.
async fn acme_after_reads(reads: usize) -> (TestServer, String) {
    let server = TestServer::start();
    let token = server.tenant_with_token("acme");
    let collections = server.public_url("/v1/tenants/acme/collections");
    for _ in 0..reads {
        let listed = server.get_json(&collections, &token).await;
        assert!(listed["collections"].is_array(), "{listed}");
    }
    (server, token)
}

/// A trail cut back on disk together with the checkpoints that signed its end: the server,
/// restarted, goes on from the cut and signs its new heads, so the database alone looks whole;
/// the heads signed before the cut are still in the daily files, and `audit verify` finds the
/// trail falls short of them.
#[tokio::test]
async fn a_trail_cut_back_with_its_checkpoints_is_caught_by_the_heads_in_the_daily_files() {
    let (mut server, token) = acme_after_reads(6).await;
    // The stop signs every head that moved and writes it to the daily files.
    server.stop().await;
    let connection = rusqlite::Connection::open(server.data_dir().join("audit.db")).unwrap();
    let chain = "(SELECT chain FROM audit_events WHERE chain <> 'control' LIMIT 1)";
    let (last, signed): (i64, i64) = connection
        .query_row(
            &format!(
                "SELECT (SELECT max(sequence) FROM audit_events WHERE chain = {chain}),
                        (SELECT max(sequence) FROM audit_checkpoints WHERE chain = {chain})"
            ),
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!(last, signed, "the stop signed the head");
    let signed = signed as u64;
    connection
        .execute_batch(&format!(
            "DELETE FROM audit_events WHERE chain = {chain} AND sequence > 3;
             DELETE FROM audit_checkpoints WHERE chain = {chain} AND sequence > 3;"
        ))
        .unwrap();
    drop(connection);

    server.spawn().unwrap();
    let collections = server.public_url("/v1/tenants/acme/collections");
    let listed = server.get_json(&collections, &token).await;
    assert!(listed["collections"].is_array(), "{listed}");
    // The new branch's head is signed and written after the old heads.
    server.stop().await;
    let day_files = server.data_dir().join("audit-logs/acme");
    // Oldest day first (a run across midnight UTC writes two files).
    let mut days: Vec<_> = std::fs::read_dir(&day_files)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    days.sort();
    let lines: String = days
        .iter()
        .map(|day| std::fs::read_to_string(day).unwrap())
        .collect();
    let signed_sequences: Vec<u64> = lines
        .lines()
        .filter(|line| line.starts_with("{\"checkpoint\":"))
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["checkpoint"]["sequence"]
                .as_u64()
                .unwrap()
        })
        .collect();
    // The new branch (the start's own verification already reports the cut, one event; the
    // request, another) is signed after the old head, below it.
    assert_eq!(signed_sequences.first(), Some(&signed), "{lines}");
    assert!(
        signed_sequences.len() >= 2 && signed_sequences[1..].iter().all(|head| *head < signed),
        "{signed_sequences:?}"
    );

    server.spawn().unwrap();
    let verified = server.cli(&["audit", "verify", "--tenant", "acme"]);
    assert!(!verified.status.success(), "a cut trail fails the command");
    let printed: Value = serde_json::from_slice(&verified.stdout).unwrap();
    let report = &printed["chains"][0];
    assert_eq!(report["intact"], false, "{printed}");
    assert_eq!(report["broken_at"], signed, "{printed}");
    assert_eq!(report["anchored_at"], signed, "{printed}");
    assert!(
        report["problem"].as_str().unwrap().contains("daily files"),
        "{printed}"
    );
    server.stop().await;
}

/// The server checks every chain when it starts (and every `verify_every_hours`): an event
/// changed while it was down becomes the tenant's `audit_verify_failed` security event without
/// anyone running `audit verify`.
#[tokio::test]
async fn a_trail_changed_while_the_server_was_down_is_reported_when_it_starts() {
    let (mut server, _token) = acme_after_reads(3).await;
    server.stop().await;
    zero_event(&server, 2);

    server.spawn().unwrap();
    let operator = server.bootstrap_token();
    let events_url = server.admin_url("/admin/v1/security-events?tenant=acme");
    let reported = eventually(async || {
        server.get_json(&events_url, &operator).await["events"]
            .as_array()
            .is_some_and(|events| {
                events
                    .iter()
                    .any(|event| event["event"]["action"] == "security.audit_verify_failed")
            })
    })
    .await;
    assert!(
        reported,
        "the start's verification raised audit_verify_failed"
    );
    // Logged once the whole check returns, which may be after the event shows.
    assert!(
        eventually(async || server.logs().contains("audit chains verified")).await,
        "the check is logged"
    );
    server.stop().await;
}

/// Heads are signed every `checkpoint_every_events` events, without waiting for the minute.
#[tokio::test]
async fn a_busy_trail_is_signed_every_n_events_before_its_minute_is_over() {
    let server = TestServer::start_with("\n[audit]\ncheckpoint_every_events = 5\n", &[]);
    let token = server.tenant_with_token("acme");
    let client = server.client();
    let acme_checkpoints = || {
        let report = server.cli_json(&["audit", "verify", "--tenant", "acme"]);
        assert_eq!(report["intact"], true, "{report}");
        report["chains"][0]["checkpoints"].as_u64().unwrap()
    };
    // The minute's first signing ran at start, before acme had any event; the next is a minute
    // away, longer than this test runs.
    for _ in 0..6 {
        let listed = client
            .get(server.public_url("/v1/tenants/acme/collections"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(listed.status(), 200);
    }
    assert!(
        eventually(async || acme_checkpoints() > 0).await,
        "six requests (and the CLI's) passed five events"
    );
}

/// Stopping the server writes out the daily files' last lines: every event of the trail is in
/// them.
#[tokio::test]
async fn the_daily_files_hold_every_event_once_the_server_stops() {
    let (mut server, _token) = acme_after_reads(20).await;
    server.stop().await;
    let (events, checkpoints): (i64, i64) =
        rusqlite::Connection::open(server.data_dir().join("audit.db"))
            .unwrap()
            .query_row(
                "SELECT (SELECT count(*) FROM audit_events WHERE chain <> 'control'),
                        (SELECT count(*) FROM audit_checkpoints WHERE chain <> 'control')",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
    let lines: Vec<String> = crate::server::walk(&server.data_dir().join("audit-logs/acme"))
        .iter()
        .flat_map(|file| {
            std::fs::read_to_string(file)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    let checkpoint_lines = lines
        .iter()
        .filter(|line| line.starts_with("{\"checkpoint\":"))
        .count();
    assert!(events >= 20, "{events}");
    assert!(checkpoints >= 1, "the stop signs the head");
    assert_eq!(
        (lines.len() - checkpoint_lines) as i64,
        events,
        "one line per event of acme's chain"
    );
    assert_eq!(
        checkpoint_lines as i64, checkpoints,
        "one line per signed checkpoint of acme's chain"
    );
}

/// Requests hyper refuses itself (a malformed request line, headers too large) never reach a
/// route; they are in the control plane's trail all the same, with the connection's address.
#[tokio::test]
async fn requests_refused_before_routing_are_in_the_trail() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start();
    let huge_header = format!(
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Filler: {}\r\n\r\n",
        "a".repeat(600_000)
    );
    for sent in ["NOT AN HTTP REQUEST\r\n\r\n".to_owned(), huge_header] {
        let mut stream = server.raw_tls().await;
        let _ = stream.write_all(sent.as_bytes()).await;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
    }
    let bootstrap = server.bootstrap_token();
    let listing = server.admin_url("/admin/v1/audit?action=unparsed_request");
    let mut reasons = Vec::new();
    eventually(async || {
        let listed = server.get_json(&listing, &bootstrap).await;
        reasons = listed["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|event| {
                event["event"]["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        reasons.len() == 2
    })
    .await;
    reasons.sort();
    assert_eq!(reasons, ["headers_too_large", "malformed_request"]);
}

/// A download its client drops half-way: the request's event (durable before the answer)
/// names the document's size, and a second event says how many bytes went out before the
/// connection closed.
#[tokio::test]
async fn a_download_cut_short_records_the_bytes_sent() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start();
    server.cli_json(&["tenant", "create", "acme", "--name", "Acme"]);
    let owner = server.first_owner("acme").await;
    let size = 16 * 1024 * 1024;
    let url = server.public_url("/v1/tenants/acme/documents/big.bin");
    let uploaded = server
        .client()
        .put(&url)
        .bearer_auth(&owner)
        .body(vec![7u8; size])
        .send()
        .await
        .unwrap();
    assert!(uploaded.status().is_success(), "{}", uploaded.status());

    // Read whole over HTTP/1.1, which stops writing at the header's length without polling
    // the body to its end: that is no cut.
    let mut whole = server.raw_tls().await;
    let request = format!(
        "GET /v1/tenants/acme/documents/big.bin HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {owner}\r\nConnection: close\r\n\r\n"
    );
    whole.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = whole.read_to_end(&mut answer).await;
    assert!(answer.len() > size, "{} bytes", answer.len());

    let mut stream = server.raw_tls().await;
    let request = format!(
        "GET /v1/tenants/acme/documents/big.bin HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {owner}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut first = vec![0u8; 64 * 1024];
    let read = stream.read(&mut first).await.unwrap();
    assert!(
        String::from_utf8_lossy(&first[..read]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&first[..read.min(200)])
    );
    drop(stream);

    let listing = server.public_url("/v1/tenants/acme/audit?action=get_document");
    let mut events = Vec::new();
    let recorded = eventually(async || {
        events = server.get_json(&listing, &owner).await["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|event| event["event"].clone())
            .collect();
        events.iter().any(|event| event["phase"] == "cut_short")
    })
    .await;
    assert!(recorded, "{events:?}");
    let cuts = events
        .iter()
        .filter(|event| event["phase"] == "cut_short")
        .count();
    assert_eq!(cuts, 1, "only the download dropped half-way: {events:?}");
    let cut = events
        .iter()
        .find(|event| event["phase"] == "cut_short")
        .unwrap();
    let whole = events
        .iter()
        .find(|event| event["phase"] == "outcome" || event["phase"] == "request")
        .unwrap();
    assert_eq!(whole["bytes_sent"], size, "{whole}");
    let sent = cut["bytes_sent"].as_u64().unwrap();
    assert!(sent < size as u64, "{cut}");
    assert_eq!(
        (&cut["reason"], &cut["request_id"], &cut["actor"]),
        (&json!("client_gone"), &whole["request_id"], &whole["actor"]),
        "{cut}"
    );
}
