//! The operator realm through the routers: invitation, enrolment with TOTP (codes from
//! Debian's oathtool), the bootstrap token retired, no tenant data without a break-glass
//! grant, and grants the tenant sees, approves and revokes.

use crate::harness::{Harness, Request, unix_seconds};
use crate::users::{oathtool_code, session_token};
use axum::http::StatusCode;
use serde_json::{Value, json};

fn secret_of(otpauth_uri: &str) -> String {
    otpauth_uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned()
}

/// An owner of `slug`, created with the bootstrap token while it still works.
async fn tenant_owner(harness: &Harness, slug: &str, email: &str) -> String {
    harness.tenant_with_token(slug, &["records:read"]).await;
    let created = harness
        .admin(
            Request::post(&format!("/admin/v1/tenants/{slug}/users"))
                .token(&harness.operator)
                .json(json!({"email": email, "display_name": "Owner"})),
        )
        .await;
    let one_time = created.body["one_time_password"].as_str().unwrap();
    let first = harness
        .public(
            Request::post(&format!("/v1/tenants/{slug}/auth/login"))
                .json(json!({"email": email, "password": one_time})),
        )
        .await;
    let session = first.body["session_token"].as_str().unwrap().to_owned();
    let changed = harness
        .public(
            Request::post(&format!("/v1/tenants/{slug}/me/password"))
                .token(&session)
                .json(
                    json!({"current_password": one_time, "new_password": "a fine long passphrase"}),
                ),
        )
        .await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT);
    harness
        .public(
            Request::post(&format!("/v1/tenants/{slug}/auth/login"))
                .json(json!({"email": email, "password": "a fine long passphrase"})),
        )
        .await
        .body["session_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn admin_json(harness: &Harness, request: Request) -> (StatusCode, Value) {
    let response = harness.admin(request).await;
    (response.status, response.body)
}

#[tokio::test]
async fn operators_enrol_with_totp_retire_the_bootstrap_token_and_reach_data_only_by_grant() {
    let harness = Harness::new().await;
    let owner = tenant_owner(&harness, "acme", "ann@example.com").await;
    let other_owner = tenant_owner(&harness, "globex", "gus@example.com").await;
    harness
        .public(
            Request::put("/v1/tenants/acme/collections/notes")
                .token(&owner)
                .json(json!({})),
        )
        .await;
    let note = harness
        .public(
            Request::post("/v1/tenants/acme/collections/notes/records")
                .token(&owner)
                .json(json!({"text": "customer data"})),
        )
        .await;
    let note = format!(
        "/v1/tenants/acme/collections/notes/records/{}",
        note.body["id"].as_str().unwrap()
    );

    // Invitation and enrolment: the inviting credential never sees password or secret.
    let (status, invited) = admin_json(
        &harness,
        Request::post("/admin/v1/operators")
            .token(&harness.operator)
            .json(json!({"name": "olga"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{invited}");
    assert_eq!(invited["operator"]["status"], "invited");
    let enrolment_token = invited["enrolment_token"].as_str().unwrap().to_owned();
    let (status, weak) = admin_json(
        &harness,
        Request::post("/admin/v1/operators/enrol")
            .json(json!({"enrolment_token": enrolment_token, "password": "password1234"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{weak}");
    let (status, _) = admin_json(
        &harness,
        Request::post("/admin/v1/operators/enrol")
            .json(json!({"enrolment_token": "sre_made-up", "password": "olga's long passphrase"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, enrolment) = admin_json(
        &harness,
        Request::post("/admin/v1/operators/enrol").json(
            json!({"enrolment_token": enrolment_token, "password": "olga's long passphrase"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{enrolment}");
    let secret = secret_of(enrolment["otpauth_uri"].as_str().unwrap());
    let (status, _) = admin_json(
        &harness,
        Request::post("/admin/v1/operators/enrol/confirm")
            .json(json!({"enrolment_token": enrolment_token, "code": "000000"})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a wrong code does not enrol"
    );
    let code = oathtool_code(&secret, unix_seconds(&harness.clock));
    let (status, confirmed) = admin_json(
        &harness,
        Request::post("/admin/v1/operators/enrol/confirm")
            .json(json!({"enrolment_token": enrolment_token, "code": code})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    let olga = confirmed["session_token"].as_str().unwrap().to_owned();
    assert!(olga.starts_with("sra_"));

    // The bootstrap token stops working; the operator's session works.
    let unknown_before = harness.security_count("unknown_token");
    let (status, _) = admin_json(
        &harness,
        Request::get("/admin/v1/tenants").token(&harness.operator),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the bootstrap token is retired"
    );
    // Credentials that match nothing are security events: a retired operator token, a
    // made-up operator session, a made-up break-glass token on tenant data.
    let (status, _) = admin_json(
        &harness,
        Request::get("/admin/v1/tenants").token("sra_made-up-session"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let made_up_grant = harness
        .public(Request::get(&note).token("srg_made-up-grant"))
        .await;
    assert_eq!(made_up_grant.status, StatusCode::UNAUTHORIZED);
    assert_eq!(harness.security_count("unknown_token"), unknown_before + 3);
    let (status, _) = admin_json(&harness, Request::get("/admin/v1/tenants").token(&olga)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = admin_json(
        &harness,
        Request::post("/admin/v1/operators/enrol/confirm")
            .json(json!({"enrolment_token": enrolment_token, "code": code})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "an enrolment token works once"
    );

    // Sign-in takes password and a fresh code; a code is accepted once.
    let sign_in = |password: &str, code: &str| {
        Request::post("/admin/v1/auth/login")
            .json(json!({"name": "olga", "password": password, "code": code}))
    };
    let (status, _) = admin_json(&harness, sign_in("olga's long passphrase", &code)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the enrolment code cannot be replayed"
    );
    let (_, unknown) = admin_json(
        &harness,
        Request::post("/admin/v1/auth/login").json(
            json!({"name": "nobody", "password": "olga's long passphrase", "code": "123456"}),
        ),
    )
    .await;
    harness.clock.advance_micros(30 * 1_000_000);
    let (_, wrong) = admin_json(&harness, sign_in("not her passphrase", "123456")).await;
    assert_eq!(
        unknown, wrong,
        "the answer does not tell whether the name exists"
    );
    harness.clock.advance_micros(60 * 1_000_000);
    let fresh = oathtool_code(&secret, unix_seconds(&harness.clock));
    let (status, signed_in) = admin_json(&harness, sign_in("olga's long passphrase", &fresh)).await;
    assert_eq!(status, StatusCode::OK, "{signed_in}");
    let olga = signed_in["session_token"].as_str().unwrap().to_owned();

    // Operators reach no tenant data: not with their session, not by minting a token.
    assert_eq!(
        harness
            .public(Request::get(&note).token(&olga))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let (status, minted) = admin_json(
        &harness,
        Request::post("/admin/v1/tenants/acme/tokens")
            .token(&olga)
            .json(json!({"name": "peek", "scopes": ["records:read"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{minted}");
    assert!(minted["detail"].as_str().unwrap().contains("break-glass"));

    // Break-glass: justification, scopes and at most 24 hours.
    let grant_request = |justification: &str, scopes: Value, minutes: u32| {
        Request::post("/admin/v1/tenants/acme/support-access")
            .token(&olga)
            .json(json!({"justification": justification, "scopes": scopes, "duration_minutes": minutes}))
    };
    for (request, field) in [
        (
            grant_request("because", json!(["records:read"]), 60),
            "justification",
        ),
        (
            grant_request("ticket 4711: export fails", json!([]), 60),
            "scopes",
        ),
        (
            grant_request("ticket 4711: export fails", json!(["records:read"]), 1441),
            "duration_minutes",
        ),
        (
            grant_request("ticket 4711: export fails", json!(["audit:read"]), 60),
            "scopes",
        ),
    ] {
        let (status, body) = admin_json(&harness, request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["detail"].as_str().unwrap().contains(field), "{body}");
    }
    let (status, granted) = admin_json(
        &harness,
        grant_request("ticket 4711: export fails", json!(["records:read"]), 60),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{granted}");
    assert_eq!(granted["grant"]["status"], "active");
    let grant_token = granted["token"].as_str().unwrap().to_owned();
    let grant_id = granted["grant"]["id"].as_str().unwrap().to_owned();
    let read = harness
        .public(Request::get(&note).token(&grant_token))
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    assert_eq!(
        read.header("strongroom-support-grant"),
        grant_id,
        "a request under a grant is marked"
    );
    // From the support range (192.0.2.0/24 in the harness) a working grant passes a tenant
    // allow list that admits support; nothing else from there does.
    let firewall = |rules: Value| {
        harness.public(
            Request::put("/v1/tenants/acme/policy/firewall")
                .token(&owner)
                .json(rules),
        )
    };
    let set = firewall(json!({"allow": ["127.0.0.0/8"], "deny": [], "allow_support": true})).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let supported = harness
        .public(
            Request::get(&note)
                .token(&grant_token)
                .sent_from("192.0.2.7:5000"),
        )
        .await;
    assert_eq!(supported.status, StatusCode::OK, "{}", supported.body);
    let owner_from_there = harness
        .public(
            Request::get(&note)
                .token(&owner)
                .sent_from("192.0.2.7:5000"),
        )
        .await;
    assert_eq!(owner_from_there.body["code"], "firewall_denied");
    // A grant opens the support pass of its own tenant only: not another tenant's sign-in,
    // whose firewall admits support too.
    let globex_rules = |rules: Value| {
        harness.public(
            Request::put("/v1/tenants/globex/policy/firewall")
                .token(&other_owner)
                .json(rules),
        )
    };
    let set = globex_rules(json!({"allow": ["127.0.0.0/8"], "deny": [], "allow_support": true}));
    assert_eq!(set.await.status, StatusCode::OK);
    let crossing = harness
        .public(
            Request::post("/v1/tenants/globex/auth/login")
                .sent_from("192.0.2.7:5000")
                .header("authorization", &format!("Bearer {grant_token}"))
                .json(json!({"email": "gus@example.com", "password": "a wrong guess"})),
        )
        .await;
    assert_eq!(
        crossing.body["code"], "firewall_denied",
        "acme's grant does not pass globex's firewall: {}",
        crossing.body
    );
    let cleared = globex_rules(json!({"allow": [], "deny": [], "allow_support": false}));
    assert_eq!(cleared.await.status, StatusCode::OK);
    let cleared = firewall(json!({"allow": [], "deny": [], "allow_support": false})).await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.body);
    let write = harness
        .public(
            Request::post("/v1/tenants/acme/collections/notes/records")
                .token(&grant_token)
                .json(json!({"text": "x"})),
        )
        .await;
    assert_eq!(
        write.status,
        StatusCode::FORBIDDEN,
        "only the granted scopes"
    );
    assert_eq!(
        harness
            .public(Request::get("/v1/tenants/globex/collections").token(&grant_token))
            .await
            .status,
        StatusCode::NOT_FOUND,
        "only the granted tenant"
    );

    // The tenant's admins see every grant and can revoke it at once.
    let listed = harness
        .public(Request::get("/v1/tenants/acme/support-access").token(&owner))
        .await;
    assert_eq!(listed.body["grants"][0]["operator"], "olga");
    assert_eq!(
        listed.body["grants"][0]["justification"],
        "ticket 4711: export fails"
    );
    let elsewhere = harness
        .public(
            Request::post(&format!(
                "/v1/tenants/globex/support-access/{grant_id}/revoke"
            ))
            .token(&other_owner),
        )
        .await;
    assert_eq!(
        elsewhere.status,
        StatusCode::NOT_FOUND,
        "another tenant's grant is not found"
    );
    assert!(
        harness
            .public(Request::get("/v1/tenants/globex/support-access").token(&other_owner))
            .await
            .body["grants"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let revoked = harness
        .public(
            Request::post(&format!(
                "/v1/tenants/acme/support-access/{grant_id}/revoke"
            ))
            .token(&owner),
        )
        .await;
    assert_eq!(revoked.body["status"], "revoked", "{}", revoked.body);
    let after = harness
        .public(Request::get(&note).token(&grant_token))
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert!(after.body["detail"].as_str().unwrap().contains("revoked"));

    // A tenant that approves grants first.
    let policy = harness
        .public(Request::get("/v1/tenants/acme/policy/security").token(&owner))
        .await;
    let mut policy = policy.body;
    policy["support_access_approval"] = json!(true);
    let set = harness
        .public(
            Request::put("/v1/tenants/acme/policy/security")
                .token(&owner)
                .json(policy),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let (_, pending) = admin_json(
        &harness,
        grant_request("ticket 4712: records missing", json!(["records:read"]), 60),
    )
    .await;
    assert_eq!(pending["grant"]["status"], "pending");
    let pending_token = pending["token"].as_str().unwrap().to_owned();
    let pending_id = pending["grant"]["id"].as_str().unwrap().to_owned();
    let waiting = harness
        .public(Request::get(&note).token(&pending_token))
        .await;
    assert_eq!(waiting.status, StatusCode::UNAUTHORIZED);
    assert!(
        waiting.body["detail"]
            .as_str()
            .unwrap()
            .contains("approval")
    );
    let approved = harness
        .public(
            Request::post(&format!(
                "/v1/tenants/acme/support-access/{pending_id}/approve"
            ))
            .token(&owner),
        )
        .await;
    assert_eq!(approved.body["status"], "active", "{}", approved.body);
    assert_eq!(
        harness
            .public(Request::get(&note).token(&pending_token))
            .await
            .status,
        StatusCode::OK
    );
    let twice = harness
        .public(
            Request::post(&format!(
                "/v1/tenants/acme/support-access/{pending_id}/deny"
            ))
            .token(&owner),
        )
        .await;
    assert_eq!(
        twice.status,
        StatusCode::CONFLICT,
        "a grant is decided once"
    );
    harness.clock.advance_micros(61 * 60 * 1_000_000);
    let expired = harness
        .public(Request::get(&note).token(&pending_token))
        .await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert!(expired.body["detail"].as_str().unwrap().contains("expired"));
    let owner = session_token(&harness, "ann@example.com", "a fine long passphrase").await;
    let listed = harness
        .public(Request::get("/v1/tenants/acme/support-access").token(&owner))
        .await;
    let pending_listed = listed.body["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|grant| grant["id"] == pending_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(pending_listed["status"], "expired", "{}", listed.body);
    assert_eq!(harness.security_count("support_access_granted"), 2);

    // A disabled operator's grants stop at once; an invitation can be cancelled.
    let fresh = oathtool_code(&secret, unix_seconds(&harness.clock));
    let (_, signed_in) = admin_json(&harness, sign_in("olga's long passphrase", &fresh)).await;
    let olga = signed_in["session_token"].as_str().unwrap().to_owned();
    let (_, otto) = admin_json(
        &harness,
        Request::post("/admin/v1/operators")
            .token(&olga)
            .json(json!({"name": "otto"})),
    )
    .await;
    let otto_token = otto["enrolment_token"].as_str().unwrap().to_owned();
    let (_, otto_enrolment) = admin_json(
        &harness,
        Request::post("/admin/v1/operators/enrol")
            .json(json!({"enrolment_token": otto_token, "password": "otto's long passphrase"})),
    )
    .await;
    let otto_secret = secret_of(otto_enrolment["otpauth_uri"].as_str().unwrap());
    let (_, otto_session) = admin_json(
        &harness,
        Request::post("/admin/v1/operators/enrol/confirm").json(json!({
            "enrolment_token": otto_token,
            "code": oathtool_code(&otto_secret, unix_seconds(&harness.clock))
        })),
    )
    .await;
    let otto_session = otto_session["session_token"].as_str().unwrap().to_owned();
    let mut policy = harness
        .public(Request::get("/v1/tenants/acme/policy/security").token(&owner))
        .await
        .body;
    policy["support_access_approval"] = json!(false);
    harness
        .public(
            Request::put("/v1/tenants/acme/policy/security")
                .token(&owner)
                .json(policy),
        )
        .await;
    let (_, otto_grant) = admin_json(
        &harness,
        Request::post("/admin/v1/tenants/acme/support-access")
            .token(&otto_session)
            .json(json!({"justification": "ticket 4713: slow queries", "scopes": ["records:read"], "duration_minutes": 60})),
    )
    .await;
    let otto_grant = otto_grant["token"].as_str().unwrap().to_owned();
    assert_eq!(
        harness
            .public(Request::get(&note).token(&otto_grant))
            .await
            .status,
        StatusCode::OK
    );
    let (status, disabled) = admin_json(
        &harness,
        Request::post("/admin/v1/operators/otto/disable").token(&olga),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{disabled}");
    let stopped = harness.public(Request::get(&note).token(&otto_grant)).await;
    assert_eq!(stopped.status, StatusCode::UNAUTHORIZED, "{}", stopped.body);
    let (status, _) = admin_json(
        &harness,
        Request::get("/admin/v1/tenants").token(&otto_session),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a disabled operator's sessions end"
    );
    let (_, invited) = admin_json(
        &harness,
        Request::post("/admin/v1/operators")
            .token(&olga)
            .json(json!({"name": "ivan"})),
    )
    .await;
    let (status, _) = admin_json(
        &harness,
        Request::post("/admin/v1/operators/ivan/disable").token(&olga),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = admin_json(
        &harness,
        Request::post("/admin/v1/operators/enrol").json(json!({
            "enrolment_token": invited["enrolment_token"],
            "password": "ivan's long passphrase"
        })),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a cancelled invitation stops working"
    );
}

/// Operator `name`, invited with the bootstrap token and enrolled with `password`; answers
/// the TOTP secret.
async fn enrolled_operator(harness: &Harness, name: &str, password: &str) -> String {
    let (_, invited) = admin_json(
        harness,
        Request::post("/admin/v1/operators")
            .token(&harness.operator)
            .json(json!({"name": name})),
    )
    .await;
    let enrolment_token = invited["enrolment_token"].as_str().unwrap().to_owned();
    let (_, enrolment) = admin_json(
        harness,
        Request::post("/admin/v1/operators/enrol")
            .json(json!({"enrolment_token": enrolment_token, "password": password})),
    )
    .await;
    let secret = secret_of(enrolment["otpauth_uri"].as_str().unwrap());
    let code = oathtool_code(&secret, unix_seconds(&harness.clock));
    let (status, confirmed) = admin_json(
        harness,
        Request::post("/admin/v1/operators/enrol/confirm")
            .json(json!({"enrolment_token": enrolment_token, "code": code})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    secret
}

/// Operators' sign-ins are throttled like users': an operator whose sign-ins keep failing
/// is locked, an address that sprays names is blocked, and each is a security event.
#[tokio::test]
async fn failing_operator_sign_ins_lock_the_operator_and_block_the_address() {
    let harness = Harness::new().await;
    let secret = enrolled_operator(&harness, "olga", "olga's long passphrase").await;
    let sign_in = |address: &str, name: &str, password: &str, code: &str| {
        Request::post("/admin/v1/auth/login")
            .sent_from(address)
            .json(json!({"name": name, "password": password, "code": code}))
    };
    let fresh_code = |harness: &Harness| oathtool_code(&secret, unix_seconds(&harness.clock));

    // Spraying names from one address blocks the address, even for the right credentials.
    for index in 0..20 {
        let (status, _) = admin_json(
            &harness,
            sign_in(
                "203.0.113.9:4000",
                &format!("op{index}"),
                "Summer2026!",
                "123456",
            ),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    harness.clock.advance_micros(30 * 1_000_000);
    let (status, blocked) = admin_json(
        &harness,
        sign_in(
            "203.0.113.9:4001",
            "olga",
            "olga's long passphrase",
            &fresh_code(&harness),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{blocked}");
    assert_eq!(harness.security_count("address_blocked"), 1);

    // Failures of one operator, each after its delay, lock the operator.
    let lock_after = strongroom_domain::brute_force::ACCOUNT_LOCK_AFTER;
    for _ in 0..lock_after {
        harness.clock.advance_micros(901_000_000);
        let (status, failed) = admin_json(
            &harness,
            sign_in("198.51.100.7:4000", "olga", "not her passphrase", "123456"),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{failed}");
    }
    harness.clock.advance_micros(901_000_000);
    let (status, locked) = admin_json(
        &harness,
        sign_in(
            "198.51.100.7:4000",
            "olga",
            "olga's long passphrase",
            &fresh_code(&harness),
        ),
    )
    .await;
    assert_eq!(
        (status, locked["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("account_locked")),
        "{locked}"
    );
    assert_eq!(harness.security_count("account_locked"), 1);
}
