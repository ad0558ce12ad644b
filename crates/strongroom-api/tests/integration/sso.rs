//! Single sign-on settings through the routers. The sign-in itself runs end to end against a
//! real OpenID Connect provider in the binary's e2e tests.

use crate::harness::{Harness, Request, files_under};
use crate::users::{first_owner_of_acme, login};
use axum::http::StatusCode;
use serde_json::json;

#[tokio::test]
async fn admins_configure_providers_with_sealed_secrets_and_can_make_sso_mandatory() {
    let harness = Harness::new().await;
    harness.tenant_with_token("acme", &["records:read"]).await;
    let owner = first_owner_of_acme(&harness).await;
    let secret = "client-secret-canary-5f1e2d";
    let provider = json!({
        "issuer": "https://login.example.com/tenant-1/v2.0",
        "client_id": "strongroom",
        "client_secret": secret,
        "allowed_email_domains": ["Example.com"],
        "create_users": true,
        "role": "member"
    });
    let with = |field: &str, value: serde_json::Value| {
        let mut changed = provider.clone();
        changed[field] = value;
        changed
    };
    let mut without_secret = provider.clone();
    without_secret
        .as_object_mut()
        .unwrap()
        .remove("client_secret");
    for (name, body, mentioned) in [
        (
            "corp",
            with("issuer", json!("http://login.example.com")),
            "https",
        ),
        (
            "corp",
            with("issuer", json!("http://127.0.0.1:9999")),
            "https",
        ),
        ("corp", with("issuer", json!("not a url")), "absolute URL"),
        ("corp", with("role", json!("owner")), "owners"),
        ("corp", with("allowed_email_domains", json!([])), "domains"),
        ("corp", without_secret, "client secret"),
        ("callback", provider.clone(), "callback"),
    ] {
        let refused = harness
            .public(
                Request::put(&format!("/v1/tenants/acme/sso/providers/{name}"))
                    .token(&owner)
                    .json(body),
            )
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
        assert!(
            refused.body["detail"].as_str().unwrap().contains(mentioned),
            "{mentioned}: {}",
            refused.body
        );
    }
    let refused = harness
        .public(
            Request::put("/v1/tenants/acme/policy/security")
                .token(&owner)
                .json(json!({"password": {"length_min": 12, "length_max": 128, "complexity": {"kind": "none"}, "reject_common": true, "history": 5, "expiry_days": null}, "mfa": {"kind": "optional"}, "sso_required": true})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("provider first")
    );

    let created = harness
        .public(
            Request::put("/v1/tenants/acme/sso/providers/corp")
                .token(&owner)
                .json(provider.clone()),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(
        created.body["redirect_uri"],
        "https://127.0.0.1:8443/v1/tenants/acme/auth/sso/callback"
    );
    assert_eq!(
        created.body["allowed_email_domains"],
        json!(["example.com"])
    );
    let listed = harness
        .public(Request::get("/v1/tenants/acme/sso/providers").token(&owner))
        .await;
    assert_eq!(listed.body["providers"][0]["name"], "corp");
    assert!(
        !listed.body.to_string().contains(secret) && !created.body.to_string().contains(secret),
        "the client secret is never shown"
    );
    let mut keep_secret = provider.clone();
    keep_secret.as_object_mut().unwrap().remove("client_secret");
    let updated = harness
        .public(
            Request::put("/v1/tenants/acme/sso/providers/corp")
                .token(&owner)
                .json(keep_secret),
        )
        .await;
    assert_eq!(
        updated.status,
        StatusCode::OK,
        "an update may keep the stored secret"
    );
    for file in files_under(&harness.data_dir()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes
                .windows(secret.len())
                .any(|window| window == secret.as_bytes()),
            "the client secret is sealed at rest: {}",
            file.display()
        );
    }

    // An admin (not an owner) may not hand out rights they lack, nor let a provider sign in
    // as existing users.
    let admin =
        crate::users::session_with_role(&harness, &owner, "adam@example.com", "admin").await;
    for (body, mentioned) in [
        (with("role", json!("auditor")), "audit:read"),
        (with("link_existing_users", json!(true)), "owner"),
    ] {
        let refused = harness
            .public(
                Request::put("/v1/tenants/acme/sso/providers/other")
                    .token(&admin)
                    .json(body),
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
        assert!(refused.body["detail"].as_str().unwrap().contains(mentioned));
    }
    let mut moved = provider.clone();
    moved["issuer"] = json!("https://evil.example.net");
    moved.as_object_mut().unwrap().remove("client_secret");
    let moved = harness
        .public(
            Request::put("/v1/tenants/acme/sso/providers/corp")
                .token(&owner)
                .json(moved),
        )
        .await;
    assert_eq!(moved.status, StatusCode::BAD_REQUEST);
    assert!(
        moved.body["detail"]
            .as_str()
            .unwrap()
            .contains("client secret again"),
        "the stored secret never goes to another issuer: {}",
        moved.body
    );

    let mandatory = harness
        .public(
            Request::put("/v1/tenants/acme/policy/security")
                .token(&owner)
                .json(json!({"password": {"length_min": 12, "length_max": 128, "complexity": {"kind": "none"}, "reject_common": true, "history": 5, "expiry_days": null}, "mfa": {"kind": "optional"}, "sso_required": true})),
        )
        .await;
    assert_eq!(mandatory.status, StatusCode::OK, "{}", mandatory.body);
    let password = login(&harness, "ann@example.com", "a fine long passphrase").await;
    assert_eq!(
        (password.status, password.body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("sso_required")),
        "password sign-in is refused once SSO is mandatory"
    );
    let recovery = harness
        .public(Request::post("/v1/tenants/acme/auth/recover").json(
            json!({"email": "ann@example.com", "password": "a fine long passphrase", "recovery_code": "x"}),
        ))
        .await;
    assert_eq!(
        recovery.body["code"], "sso_required",
        "no way around mandatory SSO through recovery either"
    );
    let older_client = harness
        .public(
            Request::put("/v1/tenants/acme/policy/security")
                .token(&owner)
                .json(json!({"password": {"length_min": 12, "length_max": 128, "complexity": {"kind": "none"}, "reject_common": true, "history": 5, "expiry_days": null}, "mfa": {"kind": "optional"}})),
        )
        .await;
    assert_eq!(
        older_client.body["sso_required"], true,
        "a PUT that leaves a setting out keeps it: {}",
        older_client.body
    );
    let last = harness
        .public(Request::delete("/v1/tenants/acme/sso/providers/corp").token(&owner))
        .await;
    assert_eq!(last.status, StatusCode::CONFLICT, "{}", last.body);

    let unknown = harness
        .public(Request::get("/v1/tenants/acme/auth/sso/nope"))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let forged = harness
        .public(Request::get(
            "/v1/tenants/acme/auth/sso/callback?code=abc&state=made-up",
        ))
        .await;
    assert_eq!(
        (forged.status, forged.body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("sso_failed"))
    );
}
