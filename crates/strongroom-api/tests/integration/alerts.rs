//! Security events delivered to a tenant's webhook: a real HTTP receiver on 127.0.0.1 that
//! fails the first attempt, signatures checked, the delivery recorded.

use crate::harness::{Harness, Request};
use crate::users::first_owner_of_acme;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

type Received = Arc<Mutex<Vec<(axum::http::HeaderMap, Vec<u8>)>>>;

/// An HTTP server that records what it receives and answers 500 to the first request.
async fn receiver() -> (String, Received) {
    receiver_failing_first(true).await
}

/// An HTTP server that records what it receives, answering 500 to the first request if asked.
async fn receiver_failing_first(fail_first: bool) -> (String, Received) {
    let received: Received = Arc::default();
    let store = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let store = store.clone();
                async move {
                    let mut received = store.lock().unwrap();
                    received.push((headers, body.to_vec()));
                    if fail_first && received.len() == 1 {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}/hook"), received)
}

/// Acme, with its first owner signed in.
async fn acme_owner(harness: &Harness) -> String {
    harness.tenant_with_token("acme", &["records:read"]).await;
    first_owner_of_acme(harness).await
}

/// The tenant's alert deliveries, once there are `count` of them.
async fn deliveries(harness: &Harness, owner: &str, count: usize) -> Vec<Value> {
    let mut deliveries = Vec::new();
    for _ in 0..200 {
        deliveries = harness
            .public(Request::get("/v1/tenants/acme/alerts/deliveries").token(owner))
            .await
            .body["events"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if deliveries.len() >= count {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    deliveries
}

#[tokio::test]
async fn security_events_reach_the_tenant_webhook_signed_retried_and_recorded() {
    let harness = Harness::allowing_private_networks().await;
    let owner = acme_owner(&harness).await;
    let (url, received) = receiver().await;
    let secret = "webhook-secret-canary-21c9";
    let refused = harness
        .public(
            Request::put("/v1/tenants/acme/policy/alerts")
                .token(&owner)
                .json(json!({"webhooks": [{"url": url, "secret": "short"}]})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        refused.body["code"], "invalid_request",
        "a body field, not a query parameter: {}",
        refused.body
    );
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .starts_with("invalid \"webhooks.secret\""),
        "{}",
        refused.body
    );
    let set = harness
        .public(
            Request::put("/v1/tenants/acme/policy/alerts")
                .token(&owner)
                .json(json!({"webhooks": [{"url": url, "secret": secret}]})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body["webhooks"], json!([url]));
    assert!(!set.body.to_string().contains(secret));

    // A security event: the firewall changes.
    let changed = harness
        .public(
            Request::put("/v1/tenants/acme/policy/firewall")
                .token(&owner)
                .json(json!({"deny": ["203.0.113.0/24"]})),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK);
    let deliveries = deliveries(&harness, &owner, 1).await;
    assert_eq!(deliveries.len(), 1, "one delivery, recorded");
    let delivery = &deliveries[0]["event"];
    assert_eq!(delivery["outcome"], "allowed");
    assert_eq!(
        delivery["details"]["attempts"], 2,
        "the first attempt failed and was retried"
    );
    assert_eq!(delivery["details"]["kind"], "firewall_changed");
    let shown = delivery["details"]["url"].as_str().unwrap();
    assert!(
        shown.starts_with("http://127.0.0.1:") && !shown.contains("hook"),
        "the trail shows where, not the URL's path, which may hold a secret: {shown}"
    );

    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 2);
    let (headers, body) = &received[1];
    let signature = headers["strongroom-signature"].to_str().unwrap();
    let (timestamp, mac) = signature
        .strip_prefix("t=")
        .unwrap()
        .split_once(",v1=")
        .unwrap();
    let mut signed = timestamp.as_bytes().to_vec();
    signed.push(b'.');
    signed.extend_from_slice(body);
    let expected: String = strongroom_crypto::hmac_sha256(secret.as_bytes(), &signed)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    assert_eq!(
        mac, expected,
        "the receiver can check the delivery came from us"
    );
    assert_eq!(headers["strongroom-event"], "security.firewall_changed");
    let payload: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(payload["tenant"], "acme");
    assert_eq!(payload["kind"], "firewall_changed");
    assert!(
        payload["detail"]
            .as_str()
            .unwrap()
            .contains("203.0.113.0/24")
    );
}

/// A webhook at a private address is refused when it is set, not at every alert after.
#[tokio::test]
async fn webhooks_at_private_addresses_are_refused_up_front() {
    let harness = Harness::new().await;
    let owner = acme_owner(&harness).await;
    let set_webhook = |url: &str| {
        harness.public(
            Request::put("/v1/tenants/acme/policy/alerts")
                .token(&owner)
                .json(json!({"webhooks": [{"url": url, "secret": "a webhook secret of enough length"}]})),
        )
    };
    for url in [
        "https://127.0.0.1:9999/hook",
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest",
        "https://0x7f000001/hook",
        "https://[::1]/hook",
        "https://localhost/hook",
    ] {
        let refused = set_webhook(url).await;
        assert_eq!(
            (refused.status, refused.body["code"].clone()),
            (StatusCode::BAD_REQUEST, json!("invalid_request")),
            "{url}: {}",
            refused.body
        );
        assert!(
            refused.body["detail"]
                .as_str()
                .unwrap()
                .contains("private address"),
            "{url}: {}",
            refused.body
        );
    }
    // Credentials in the URL, a password alone too, would be sent to the receiver.
    for url in [
        "https://user:pass@hooks.example.com/x",
        "https://:token@hooks.example.com/x",
    ] {
        let refused = set_webhook(url).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{url}");
        assert!(
            refused.body["detail"]
                .as_str()
                .unwrap()
                .contains("credentials"),
            "{url}: {}",
            refused.body
        );
        assert!(
            !refused.body.to_string().contains("token@"),
            "{}",
            refused.body
        );
    }
}

/// An HTTP server that records each request and never answers.
async fn hanging_receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let store = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let store = store.clone();
                async move {
                    store.lock().unwrap().push((headers, body.to_vec()));
                    std::future::pending::<StatusCode>().await
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}/hook"), received)
}

/// A webhook that hangs (each attempt waits for the 10 s timeout, then retries for half a
/// minute) holds back no other channel: every channel gets the alert at once.
#[tokio::test]
async fn a_hanging_webhook_does_not_hold_back_the_others() {
    let harness = Harness::allowing_private_networks().await;
    let owner = acme_owner(&harness).await;
    let (hanging_url, hanging) = hanging_receiver().await;
    let (url, received) = receiver_failing_first(false).await;
    let set = harness
        .public(
            Request::put("/v1/tenants/acme/policy/alerts")
                .token(&owner)
                .json(json!({"webhooks": [
                    {"url": hanging_url, "secret": "a webhook secret of enough length"},
                    {"url": url, "secret": "another webhook secret, long enough"}
                ]})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let changed = harness
        .public(
            Request::put("/v1/tenants/acme/policy/firewall")
                .token(&owner)
                .json(json!({"deny": ["203.0.113.0/24"]})),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK);
    let recorded = deliveries(&harness, &owner, 1).await;
    assert_eq!(
        recorded.len(),
        1,
        "the second webhook's delivery is recorded while the first still hangs"
    );
    assert_eq!(received.lock().unwrap().len(), 1);
    assert_eq!(
        hanging.lock().unwrap().len(),
        1,
        "the first was tried and has not answered"
    );
}

/// A burst sends one alert; once its minute is over the rest are counted in one more, even
/// when no later event comes to carry the count.
#[tokio::test]
async fn a_burst_that_ends_is_reported_once_its_minute_is_over() {
    let harness = Harness::allowing_private_networks().await;
    let owner = acme_owner(&harness).await;
    let (url, received) = receiver_failing_first(false).await;
    let set = harness
        .public(
            Request::put("/v1/tenants/acme/policy/alerts")
                .token(&owner)
                .json(json!({"webhooks": [{"url": url, "secret": "a webhook secret of enough length"}]})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    for network in ["203.0.113.0/24", "198.51.100.0/24", "192.0.2.0/24"] {
        let changed = harness
            .public(
                Request::put("/v1/tenants/acme/policy/firewall")
                    .token(&owner)
                    .json(json!({"deny": [network]})),
            )
            .await;
        assert_eq!(changed.status, StatusCode::OK);
    }
    let changes = || async {
        harness
            .public(
                Request::get("/v1/tenants/acme/security-events?action=security.firewall_changed")
                    .token(&owner),
            )
            .await
            .body["events"]
            .as_array()
            .map_or(0, Vec::len)
    };
    for _ in 0..200 {
        if changes().await == 3 && !deliveries(&harness, &owner, 1).await.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(changes().await, 3, "three events in the trail");
    assert_eq!(
        harness.platform.send_held_back_alerts().await,
        0,
        "nothing before the minute is over"
    );
    harness.clock.advance_micros(61_000_000);
    assert_eq!(harness.platform.send_held_back_alerts().await, 1);
    assert_eq!(
        harness.platform.send_held_back_alerts().await,
        0,
        "reported once"
    );
    let recorded = deliveries(&harness, &owner, 2).await;
    assert_eq!(recorded.len(), 2, "{recorded:#?}");
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 2, "one alert, then one summary");
    let summary: Value = serde_json::from_slice(&received[1].1).unwrap();
    assert_eq!(summary["kind"], "firewall_changed");
    assert!(
        summary["detail"]
            .as_str()
            .unwrap()
            .starts_with("2 more firewall_changed events in the last minute"),
        "{summary}"
    );
}

/// A real SMTP server: Debian's aiosmtpd on 127.0.0.1 with STARTTLS required, delivering into
/// a maildir. Stopped when dropped.
struct SmtpServer {
    child: std::process::Child,
    port: u16,
    directory: tempfile::TempDir,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn smtp_server() -> SmtpServer {
    let directory = tempfile::tempdir().unwrap();
    let path = |name: &str| directory.path().join(name).to_str().unwrap().to_owned();
    let generated = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            // A server certificate, not a CA: rustls refuses a CA as the end entity.
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
            "-keyout",
            &path("key.pem"),
            "-out",
            &path("cert.pem"),
        ])
        .output()
        .expect("openssl is installed (cargo xtask test installs it)");
    assert!(
        generated.status.success(),
        "{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new("/usr/bin/python3")
        .args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
            "--tlscert",
            &path("cert.pem"),
            "--tlskey",
            &path("key.pem"),
            "-c",
            "aiosmtpd.handlers.Mailbox",
            &path("maildir"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("aiosmtpd is installed (cargo xtask test installs python3-aiosmtpd)");
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    SmtpServer {
        child,
        port,
        directory,
    }
}

#[tokio::test]
async fn security_events_are_mailed_over_starttls_to_a_real_smtp_server() {
    let smtp = smtp_server();
    let harness = Harness::with_smtp(strongroom_service::SmtpOptions {
        host: "127.0.0.1".into(),
        port: smtp.port,
        from: "alerts@strongroom.test".into(),
        username: None,
        password: None,
        ca_file: Some(smtp.directory.path().join("cert.pem")),
    })
    .await;
    harness.tenant_with_token("acme", &["records:read"]).await;
    let owner = first_owner_of_acme(&harness).await;
    // One address mail cannot be sent to would fail the message for every recipient.
    let unaddressable = harness
        .public(
            Request::put("/v1/tenants/acme/policy/alerts")
                .token(&owner)
                .json(json!({"emails": ["security@acme.example", "ops@corp@acme.example"]})),
        )
        .await;
    assert_eq!(
        (unaddressable.status, unaddressable.body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request")),
        "{}",
        unaddressable.body
    );
    let set = harness
        .public(
            Request::put("/v1/tenants/acme/policy/alerts")
                .token(&owner)
                .json(json!({"emails": ["Security@Acme.example"]})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body["emails"], json!(["security@acme.example"]));
    harness
        .public(
            Request::put("/v1/tenants/acme/policy/firewall")
                .token(&owner)
                .json(json!({"deny": ["203.0.113.0/24"]})),
        )
        .await;
    let new_mail = smtp.directory.path().join("maildir/new");
    let mut message = String::new();
    for _ in 0..300 {
        if let Some(entry) = std::fs::read_dir(&new_mail)
            .ok()
            .and_then(|mut entries| entries.next())
        {
            message = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(message.contains("To: security@acme.example"), "{message}");
    assert!(message.contains("firewall_changed"), "{message}");
    assert!(message.contains("203.0.113.0/24"), "{message}");
    let mut deliveries = Vec::new();
    for _ in 0..100 {
        deliveries = harness
            .public(Request::get("/v1/tenants/acme/alerts/deliveries").token(&owner))
            .await
            .body["events"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !deliveries.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let delivery = &deliveries[0]["event"];
    assert_eq!(delivery["details"]["channel"], "email");
    assert_eq!(delivery["outcome"], "allowed", "{delivery}");
    assert_eq!(delivery["details"]["attempts"], 1);
}
