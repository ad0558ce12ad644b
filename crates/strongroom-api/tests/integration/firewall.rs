//! The tenants' virtual firewall through the routers: allow and deny networks, the lockout
//! guard, trusted proxies and the support range.

use crate::harness::{Harness, Request};
use crate::users::first_owner_of_acme;
use axum::http::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_tenant_firewall_refuses_other_addresses_before_anything_is_touched() {
    let harness = Harness::new().await;
    let token = harness.tenant_with_token("acme", &["records:read"]).await;
    let other = harness.tenant_with_token("globex", &["records:read"]).await;
    let owner = first_owner_of_acme(&harness).await;
    let empty = harness
        .public(Request::get("/v1/tenants/acme/policy/firewall").token(&owner))
        .await;
    assert_eq!(
        empty.body,
        json!({"allow": [], "deny": [], "allow_support": false})
    );

    for (rules, status, code) in [
        (
            json!({"allow": ["10.0.0.0/8"]}),
            StatusCode::CONFLICT,
            "firewall_lockout",
        ),
        (
            json!({"allow": ["10.1.2.3/8"]}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"deny": ["example.com"]}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ] {
        let refused = harness
            .public(
                Request::put("/v1/tenants/acme/policy/firewall")
                    .token(&owner)
                    .json(rules),
            )
            .await;
        assert_eq!(
            (refused.status, refused.body["code"].as_str()),
            (status, Some(code)),
            "{}",
            refused.body
        );
    }
    let set = harness
        .public(
            Request::put("/v1/tenants/acme/policy/firewall")
                .token(&owner)
                .json(json!({
                    "allow": ["10.0.0.0/8", "127.0.0.1"],
                    "deny": ["10.66.0.0/16"],
                    "allow_support": true
                })),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body["allow"], json!(["10.0.0.0/8", "127.0.0.1/32"]));
    assert_eq!(harness.security_count("firewall_changed"), 1);
    let wiped = harness
        .public(
            Request::put("/v1/tenants/acme/policy/firewall")
                .token(&owner)
                .json(json!([])),
        )
        .await;
    assert_eq!(
        (wiped.status, wiped.body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_request")),
        "an array is not rules, and does not reset them: {}",
        wiped.body
    );
    let kept = harness
        .public(Request::get("/v1/tenants/acme/policy/firewall").token(&owner))
        .await;
    assert_eq!(kept.body["deny"], json!(["10.66.0.0/16"]));
    let trail = harness
        .public(
            Request::get("/v1/tenants/acme/audit?action=put_firewall&outcome=allowed")
                .token(&owner),
        )
        .await;
    let change = &trail.body["events"][0]["event"];
    assert_eq!(
        change["details"]["old"]["allow"],
        json!([]),
        "{}",
        trail.body
    );
    assert_eq!(change["details"]["new"]["deny"], json!(["10.66.0.0/16"]));
    let refused_trail = harness
        .public(
            Request::get("/v1/tenants/acme/audit?action=put_firewall&outcome=denied").token(&owner),
        )
        .await;
    assert_eq!(
        refused_trail.body["events"].as_array().unwrap().len(),
        4,
        "refused changes are in the trail too"
    );

    let read_from = |address: &str, bearer: &str, forwarded_for: Option<&str>| {
        let mut request = Request::get("/v1/tenants/acme/collections")
            .token(bearer)
            .sent_from(address);
        if let Some(forwarded_for) = forwarded_for {
            request = request.header("x-forwarded-for", forwarded_for);
        }
        harness.public(request)
    };
    assert_eq!(
        read_from("10.1.2.3:5000", &token, None).await.status,
        StatusCode::OK
    );
    let outside = read_from("203.0.113.9:5000", &token, None).await;
    assert_eq!(
        (outside.status, outside.body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("firewall_denied"))
    );
    // The trail names whose credential came from the refused address, though no handler
    // authenticated it: a leaked token used from elsewhere shows.
    let refused = harness
        .public(
            Request::get("/v1/tenants/acme/audit?action=list_collections&ip=203.0.113.9")
                .token(&owner),
        )
        .await;
    assert_eq!(
        (
            &refused.body["events"][0]["event"]["actor"]["kind"],
            &refused.body["events"][0]["event"]["reason"]
        ),
        (&json!("api_token"), &json!("firewall_denied")),
        "{}",
        refused.body
    );
    assert_eq!(
        read_from("10.66.1.1:5000", &token, None).await.status,
        StatusCode::FORBIDDEN,
        "deny wins over allow"
    );
    // However the path spells the tenant, its rules apply.
    for spelled in ["%61cme", "%61%63%6D%65"] {
        let encoded = harness
            .public(
                Request::get(&format!("/v1/tenants/{spelled}/collections"))
                    .token(&token)
                    .sent_from("203.0.113.9:5000"),
            )
            .await;
        assert_eq!(
            (encoded.status, encoded.body["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("firewall_denied")),
            "{spelled}"
        );
    }
    let login = harness
        .public(
            Request::post("/v1/tenants/acme/auth/login")
                .sent_from("203.0.113.9:5000")
                .json(json!({"email": "ann@example.com", "password": "a fine long passphrase"})),
        )
        .await;
    assert_eq!(login.body["code"], "firewall_denied", "sign-in too");
    assert_eq!(
        harness
            .public(
                Request::get("/v1/tenants/globex/collections")
                    .token(&other)
                    .sent_from("203.0.113.9:5000")
            )
            .await
            .status,
        StatusCode::OK,
        "another tenant's rules are its own"
    );

    // X-Forwarded-For counts only from a trusted proxy (10.9.9.9 in the harness).
    assert_eq!(
        read_from("10.9.9.9:5000", &token, Some("10.1.2.3"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        read_from("10.9.9.9:5000", &token, Some("203.0.113.9"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        read_from("203.0.113.9:5000", &token, Some("10.1.2.3"))
            .await
            .status,
        StatusCode::FORBIDDEN,
        "a client cannot claim an address"
    );
    // A proxy that adds a line of its own: the client's line, first, does not count.
    let two_lines = harness
        .public(
            Request::get("/v1/tenants/acme/collections")
                .token(&token)
                .sent_from("10.9.9.9:5000")
                .header("x-forwarded-for", "10.1.2.3")
                .header("x-forwarded-for", "203.0.113.9"),
        )
        .await;
    assert_eq!(
        two_lines.status,
        StatusCode::FORBIDDEN,
        "{}",
        two_lines.body
    );
    assert_eq!(
        harness
            .public(
                Request::get("/v1/tenants/acme/collections")
                    .token(&token)
                    .sent_from("[::ffff:10.9.9.9]:5000")
                    .header("x-forwarded-for", "10.1.2.3")
            )
            .await
            .status,
        StatusCode::OK,
        "the proxy reached over an IPv6 socket is still the proxy"
    );

    // The support range (192.0.2.0/24 in the harness) passes only with a break-glass token.
    assert_eq!(
        read_from("192.0.2.7:5000", &token, None).await.status,
        StatusCode::FORBIDDEN
    );
    let support = read_from("192.0.2.7:5000", "srg_not-a-real-grant", None).await;
    assert_eq!(
        (support.status, support.body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("firewall_denied")),
        "a token that only looks like a grant does not open the support pass: {}",
        support.body
    );
    let sign_in = harness
        .public(
            Request::post("/v1/tenants/acme/auth/login")
                .sent_from("192.0.2.7:5000")
                .header("authorization", "Bearer srg_not-a-real-grant")
                .json(json!({"email": "ann@example.com", "password": "a fine long passphrase"})),
        )
        .await;
    assert_eq!(
        sign_in.body["code"], "firewall_denied",
        "nor sign-in, which reads no bearer"
    );
    assert!(harness.security_count("firewall_denied") >= 5);
    // The tenant's admins see them; they are written in the background, so wait a moment.
    let mut listed = Vec::new();
    for _ in 0..100 {
        listed = harness
            .public(
                Request::get("/v1/tenants/acme/security-events?action=security.firewall_denied")
                    .token(&owner),
            )
            .await
            .body["events"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if listed.len() >= 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(listed.len() >= 5, "{listed:?}");
    assert!(
        listed[0]["event"]["details"]["detail"]
            .as_str()
            .unwrap()
            .contains("refused by the tenant's firewall")
    );
    let denied = &listed[0]["event"];
    assert!(
        denied["address"]
            .as_str()
            .is_some_and(|address| !address.is_empty())
            && denied["request_id"]
                .as_str()
                .is_some_and(|id| id.contains('-'))
            && denied["listener"] == "public",
        "the event names the request it arose in: {denied}"
    );
    let operators_view = harness
        .admin(
            Request::get("/admin/v1/security-events?tenant=acme&action=security.firewall_changed")
                .token(&harness.operator),
        )
        .await;
    assert_eq!(
        operators_view.body["events"].as_array().unwrap().len(),
        1,
        "{}",
        operators_view.body
    );

    // A confirmed lockout is applied.
    let confirmed = harness
        .public(
            Request::put("/v1/tenants/acme/policy/firewall")
                .token(&owner)
                .json(json!({
                    "allow": ["10.0.0.0/8"],
                    "confirm_lockout": true
                })),
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    assert_eq!(
        harness
            .public(Request::get("/v1/tenants/acme/policy/firewall").token(&owner))
            .await
            .body["code"],
        "firewall_denied",
        "the confirmed rules shut the caller out at once"
    );
}

/// Admins who shut themselves out (a confirmed lock-out) get back in through an operator,
/// who empties the lists; the change is in the tenant's trail and its security events.
#[tokio::test]
async fn an_operator_clears_a_firewall_its_admins_locked_themselves_out_with() {
    let harness = Harness::new().await;
    harness.tenant_with_token("acme", &["records:read"]).await;
    let owner = first_owner_of_acme(&harness).await;
    let locked = harness
        .public(
            Request::put("/v1/tenants/acme/policy/firewall")
                .token(&owner)
                .json(json!({"allow": ["10.0.0.0/8"], "allow_support": true, "confirm_lockout": true})),
        )
        .await;
    assert_eq!(locked.status, StatusCode::OK, "{}", locked.body);
    let firewall =
        || harness.public(Request::get("/v1/tenants/acme/policy/firewall").token(&owner));
    assert_eq!(firewall().await.status, StatusCode::FORBIDDEN);
    let cleared = harness
        .admin(Request::delete("/admin/v1/tenants/acme/policy/firewall").token(&harness.operator))
        .await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.body);
    assert_eq!(
        cleared.body,
        json!({"allow": [], "deny": [], "allow_support": true}),
        "the lists are emptied; the support setting stays"
    );
    let back = firewall().await;
    assert_eq!(
        back.status,
        StatusCode::OK,
        "the admins are back in: {}",
        back.body
    );
    let recorded = harness
        .public(
            Request::get("/v1/tenants/acme/audit?action=clear_tenant_firewall&outcome=allowed")
                .token(&owner),
        )
        .await;
    let event = &recorded.body["events"][0]["event"];
    assert_eq!(event["actor"]["kind"], "operator", "{}", recorded.body);
    assert_eq!(event["details"]["old"]["allow"], json!(["10.0.0.0/8"]));
    let mut told = false;
    for _ in 0..100 {
        let events = harness
            .public(
                Request::get("/v1/tenants/acme/security-events?action=security.firewall_changed")
                    .token(&owner),
            )
            .await;
        told = events.body["events"].as_array().map_or(0, Vec::len) == 2;
        if told {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        told,
        "the admins see the operator's change as a security event"
    );
}
