//! Alerts through the real binary: a burst's held-back count is sent when the server stops,
//! not lost with the minute tick that no longer comes.

use crate::server::{OWNER_PASSWORD, TestServer, eventually};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// A webhook receiver on 127.0.0.1 that answers 200 and keeps every JSON body it gets.
async fn webhook_receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let keeping = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let keeping = keeping.clone();
            async move {
                let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                keeping.lock().unwrap().push(body);
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

// Several workers: the receiver must answer while the test waits for the server to stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_held_back_in_a_minute_not_yet_over_are_sent_at_shutdown() {
    let mut server = TestServer::start_with("\n[outbound]\nallow_private_networks = true\n", &[]);
    server.tenant_with_token("acme");
    let owner = server.first_owner("acme").await;
    let client = server.client();
    let (url, received) = webhook_receiver().await;
    let set = client
        .put(server.public_url("/v1/tenants/acme/policy/alerts"))
        .bearer_auth(&owner)
        .json(&json!({"webhooks": [{"url": url, "secret": "a webhook secret of enough length"}]}))
        .send()
        .await
        .unwrap();
    assert!(set.status().is_success(), "{}", set.text().await.unwrap());
    for network in ["203.0.113.0/24", "198.51.100.0/24", "192.0.2.0/24"] {
        let changed = client
            .put(server.public_url("/v1/tenants/acme/policy/firewall"))
            .bearer_auth(&owner)
            .json(&json!({"deny": [network]}))
            .send()
            .await
            .unwrap();
        assert!(changed.status().is_success(), "{}", changed.status());
    }
    let events_url =
        server.public_url("/v1/tenants/acme/security-events?action=security.firewall_changed");
    let all_recorded = eventually(async || {
        let listed = server.get_json(&events_url, &owner).await;
        listed["events"].as_array().map_or(0, Vec::len) == 3 && received.lock().unwrap().len() == 1
    })
    .await;
    assert!(
        all_recorded,
        "three changes in the trail, the first alerted"
    );

    server.stop().await;
    let received = received.lock().unwrap().clone();
    assert_eq!(
        received.len(),
        2,
        "the first alert, then the held-back count: {received:#?}"
    );
    assert_eq!(received[1]["kind"], "firewall_changed");
    let detail = received[1]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("2 more firewall_changed events"),
        "{detail}"
    );

    // Both deliveries are in the trail, and the trail verifies after the restart.
    server.spawn().unwrap();
    let owner = server.sign_in("acme", OWNER_PASSWORD).await;
    let deliveries = server
        .get_json(
            &server.public_url("/v1/tenants/acme/alerts/deliveries"),
            &owner,
        )
        .await;
    assert_eq!(
        deliveries["events"].as_array().map_or(0, Vec::len),
        2,
        "{deliveries:#}"
    );
    let verified = server.cli_json(&["audit", "verify", "--tenant", "acme"]);
    assert_eq!(verified["intact"], true, "{verified:#}");
}
