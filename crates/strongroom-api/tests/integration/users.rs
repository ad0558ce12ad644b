//! Users through the routers: the operator's first owner, one-time passwords, sign-in,
//! sessions with role permissions, password changes under the policy.

use crate::harness::{Harness, Request};
use axum::http::StatusCode;
use serde_json::{Value, json};

pub(crate) async fn login(
    harness: &Harness,
    email: &str,
    password: &str,
) -> crate::harness::Response {
    harness
        .public(
            Request::post("/v1/tenants/acme/auth/login")
                .json(json!({"email": email, "password": password})),
        )
        .await
}

/// A session token for a user who signs in with a password alone.
pub(crate) async fn session_token(harness: &Harness, email: &str, password: &str) -> String {
    let signed_in = login(harness, email, password).await;
    signed_in.body["session_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{email} could not sign in: {}", signed_in.body))
        .to_owned()
}

pub(crate) async fn activated_session(
    harness: &Harness,
    email: &str,
    one_time: &str,
    new_password: &str,
) -> String {
    let first = login(harness, email, one_time).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["must_change_password"], true);
    let session = first.body["session_token"].as_str().unwrap().to_owned();
    let changed = harness
        .public(
            Request::post("/v1/tenants/acme/me/password")
                .token(&session)
                .json(json!({"current_password": one_time, "new_password": new_password})),
        )
        .await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{}", changed.body);
    session
}

/// A new user of acme with one built-in `role`, created by `owner`, signed in with its
/// one-time password changed to "<role>'s long passphrase": their session token.
pub(crate) async fn session_with_role(
    harness: &Harness,
    owner: &str,
    email: &str,
    role: &str,
) -> String {
    let created = harness
        .public(
            Request::post("/v1/tenants/acme/users")
                .token(owner)
                .json(json!({"email": email, "display_name": role, "roles": [role]})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    activated_session(
        harness,
        email,
        created.body["one_time_password"].as_str().unwrap(),
        &format!("{role}'s long passphrase"),
    )
    .await
}

/// Acme's first user, created by the operator (so an owner), with the one-time password
/// changed to "a fine long passphrase": a fresh session token.
pub(crate) async fn first_owner_of_acme(harness: &Harness) -> String {
    let created = harness
        .admin(
            Request::post("/admin/v1/tenants/acme/users")
                .token(&harness.operator)
                .json(json!({"email": "ann@example.com", "display_name": "Ann"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    activated_session(
        harness,
        "ann@example.com",
        created.body["one_time_password"].as_str().unwrap(),
        "a fine long passphrase",
    )
    .await;
    session_token(harness, "ann@example.com", "a fine long passphrase").await
}

#[tokio::test]
async fn owners_sign_in_change_their_one_time_password_and_manage_users() {
    let harness = Harness::new().await;
    harness.tenant_with_token("acme", &["records:read"]).await;
    let created = harness
        .admin(
            Request::post("/admin/v1/tenants/acme/users")
                .token(&harness.operator)
                .json(json!({"email": "Ann@Example.com", "display_name": "Ann"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["user"]["roles"], json!(["owner"]));
    assert_eq!(created.body["user"]["email"], "ann@example.com");
    let one_time = created.body["one_time_password"]
        .as_str()
        .unwrap()
        .to_owned();
    let again = harness
        .admin(
            Request::post("/admin/v1/tenants/acme/users")
                .token(&harness.operator)
                .json(json!({"email": "b@example.com", "display_name": "B"})),
        )
        .await;
    assert_eq!(
        again.status,
        StatusCode::CONFLICT,
        "operators create only the first user"
    );

    let first = login(&harness, "ann@example.com", &one_time).await;
    let limited = first.body["session_token"].as_str().unwrap().to_owned();
    assert!(
        first
            .header("set-cookie")
            .starts_with("__Host-strongroom-session=")
    );
    assert!(
        first.header("set-cookie").contains("HttpOnly")
            && first.header("set-cookie").contains("SameSite=Strict")
            && first.header("set-cookie").contains("Secure")
    );
    let blocked = harness
        .public(Request::get("/v1/tenants/acme/collections").token(&limited))
        .await;
    assert_eq!(
        (blocked.status, blocked.body["code"].clone()),
        (StatusCode::FORBIDDEN, json!("password_change_required"))
    );

    for (new_password, rule) in [
        ("short", "at least 12"),
        ("password1234", "common"),
        // Entry 99,460 of the shipped list of 100,000.
        ("1234567890123", "common"),
        (one_time.as_str(), "last 5"),
    ] {
        let refused = harness
            .public(
                Request::post("/v1/tenants/acme/me/password")
                    .token(&limited)
                    .json(json!({"current_password": one_time, "new_password": new_password})),
            )
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{new_password}");
        assert!(
            refused.body["detail"].as_str().unwrap().contains(rule),
            "{}",
            refused.body["detail"]
        );
    }
    let wrong_current = harness
        .public(
            Request::post("/v1/tenants/acme/me/password")
                .token(&limited)
                .json(
                    json!({"current_password": "nope", "new_password": "a fine long passphrase"}),
                ),
        )
        .await;
    assert_eq!(wrong_current.status, StatusCode::UNAUTHORIZED);
    let other_session = session_token(&harness, "ann@example.com", &one_time).await;
    let changed = harness
        .public(
            Request::post("/v1/tenants/acme/me/password")
                .token(&limited)
                .json(
                    json!({"current_password": one_time, "new_password": "a fine long passphrase"}),
                ),
        )
        .await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT);
    assert_eq!(
        harness
            .public(Request::get("/v1/tenants/acme/me").token(&other_session))
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "other sessions end"
    );
    assert_eq!(
        login(&harness, "ann@example.com", &one_time).await.status,
        StatusCode::UNAUTHORIZED,
        "the one-time password is gone"
    );

    let owner = session_token(&harness, "ann@example.com", "a fine long passphrase").await;
    let me = harness
        .public(Request::get("/v1/tenants/acme/me").token(&owner))
        .await;
    assert_eq!(
        (
            me.body["display_name"].clone(),
            me.body["must_change_password"].clone()
        ),
        (json!("Ann"), json!(false))
    );
    assert_eq!(
        harness
            .public(
                Request::put("/v1/tenants/acme/collections/notes")
                    .token(&owner)
                    .json(json!({}))
            )
            .await
            .status,
        StatusCode::CREATED,
        "owners hold every data permission"
    );
    harness
        .public(
            Request::post("/v1/tenants/acme/collections/notes/records")
                .token(&owner)
                .json(json!({"text": "hi"})),
        )
        .await;

    let viewer =
        harness
            .public(Request::post("/v1/tenants/acme/users").token(&owner).json(
                json!({"email": "vic@example.com", "display_name": "Vic", "roles": ["viewer"]}),
            ))
            .await;
    assert_eq!(viewer.status, StatusCode::CREATED, "{}", viewer.body);
    let viewer_session = activated_session(
        &harness,
        "vic@example.com",
        viewer.body["one_time_password"].as_str().unwrap(),
        "vic's own long passphrase",
    )
    .await;
    let viewer_session = login(&harness, "vic@example.com", "vic's own long passphrase")
        .await
        .body["session_token"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or(viewer_session);
    let read = harness
        .public(Request::get("/v1/tenants/acme/collections/notes/records").token(&viewer_session))
        .await;
    assert_eq!(
        read.body["records"].as_array().unwrap().len(),
        1,
        "viewers read"
    );
    let denials_before = harness.security_count("scope_denied");
    let write = harness
        .public(
            Request::post("/v1/tenants/acme/collections/notes/records")
                .token(&viewer_session)
                .json(json!({"text": "no"})),
        )
        .await;
    assert_eq!(
        (write.status, write.body["code"].clone()),
        (StatusCode::FORBIDDEN, json!("missing_permission")),
        "viewers do not write: a user lacks a permission, a token a scope"
    );
    let manage = harness
        .public(
            Request::post("/v1/tenants/acme/users")
                .token(&viewer_session)
                .json(json!({"email": "x@example.com", "display_name": "X", "roles": ["owner"]})),
        )
        .await;
    assert_eq!(
        (manage.status, manage.body["code"].clone()),
        (StatusCode::FORBIDDEN, json!("missing_permission"))
    );
    assert_eq!(
        harness.security_count("scope_denied"),
        denials_before + 2,
        "each refusal for a missing permission is a security event, on data or on the tenant"
    );
    let nobody = harness
        .public(
            Request::post("/v1/tenants/acme/users")
                .token(&owner)
                .json(json!({"email": "new@example.com", "display_name": "New"})),
        )
        .await;
    assert_eq!(
        nobody.body["user"]["roles"],
        json!([]),
        "a new user has no rights until given a role"
    );
    let listed = harness
        .public(Request::get("/v1/tenants/acme/users").token(&owner))
        .await;
    assert_eq!(listed.body["users"].as_array().unwrap().len(), 3);
    assert!(!listed.text.contains("passphrase") && !listed.text.contains("one_time"));

    assert_eq!(
        harness
            .public(Request::post("/v1/tenants/acme/auth/logout").token(&owner))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        harness
            .public(Request::get("/v1/tenants/acme/me").token(&owner))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn failed_sign_ins_look_alike_and_sessions_stay_in_their_tenant_and_expire() {
    let harness = Harness::new().await;
    harness.tenant_with_token("acme", &["records:read"]).await;
    harness.tenant_with_token("globex", &["records:read"]).await;
    let created = harness
        .admin(
            Request::post("/admin/v1/tenants/acme/users")
                .token(&harness.operator)
                .json(json!({"email": "ann@example.com", "display_name": "Ann"})),
        )
        .await;
    let session = activated_session(
        &harness,
        "ann@example.com",
        created.body["one_time_password"].as_str().unwrap(),
        "a fine long passphrase",
    )
    .await;
    let wrong_password = login(&harness, "ann@example.com", "wrong").await;
    let unknown_email = login(&harness, "nobody@example.com", "wrong").await;
    assert_eq!(wrong_password.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong_password.body, unknown_email.body,
        "the answer does not tell whether the email exists"
    );
    let elsewhere = harness
        .public(Request::get("/v1/tenants/globex/collections").token(&session))
        .await;
    assert_eq!(
        elsewhere.status,
        StatusCode::UNAUTHORIZED,
        "a session belongs to its tenant"
    );
    // Used on globex's path, acme's live session is a cross-tenant probe, as another tenant's
    // API token is; a token that only claims to be acme's (not a session there) raises nothing.
    // (Looked into in the background, after the answer; the event still names the request.)
    harness.platform.security.recorded().await;
    assert_eq!(harness.security_count("cross_tenant_probe"), 1);
    let probes = harness
        .admin(Request::get("/admin/v1/security-events?tenant=globex").token(&harness.operator))
        .await;
    let probe = &probes.body["events"][0]["event"];
    assert_eq!(
        (&probe["action"], &probe["address"], &probe["listener"]),
        (
            &json!("security.cross_tenant_probe"),
            &json!("127.0.0.1"),
            &json!("public")
        ),
        "{probe}"
    );
    assert!(
        !probe["request_id"].as_str().unwrap_or_default().is_empty(),
        "{probe}"
    );
    let (issuer, _) = session
        .strip_prefix("srs_")
        .and_then(|rest| rest.split_once('_'))
        .unwrap();
    let made_up = format!("srs_{issuer}_{}", "A".repeat(43));
    let claimed = harness
        .public(Request::get("/v1/tenants/globex/collections").token(&made_up))
        .await;
    assert_eq!(claimed.status, StatusCode::UNAUTHORIZED);
    harness.platform.security.recorded().await;
    assert_eq!(harness.security_count("cross_tenant_probe"), 1);
    let cookie = harness
        .public(
            Request::get("/v1/tenants/acme/me")
                .header("cookie", &format!("__Host-strongroom-session={session}")),
        )
        .await;
    assert_eq!(
        cookie.status,
        StatusCode::OK,
        "the cookie works like the bearer header"
    );
    harness.clock.advance_micros(31 * 60 * 1_000_000);
    assert_eq!(
        harness
            .public(Request::get("/v1/tenants/acme/me").token(&session))
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "idle sessions expire"
    );
}

#[tokio::test]
async fn tenant_admins_set_session_timeouts() {
    let harness = Harness::new().await;
    harness.tenant_with_token("acme", &["records:read"]).await;
    let created = harness
        .admin(
            Request::post("/admin/v1/tenants/acme/users")
                .token(&harness.operator)
                .json(json!({"email": "ann@example.com", "display_name": "Ann"})),
        )
        .await;
    let owner = activated_session(
        &harness,
        "ann@example.com",
        created.body["one_time_password"].as_str().unwrap(),
        "a fine long passphrase",
    )
    .await;
    let defaults = harness
        .public(Request::get("/v1/tenants/acme/policy/security").token(&owner))
        .await;
    assert_eq!(
        defaults.body["sessions"],
        json!({"idle_minutes": 30, "absolute_hours": 12})
    );
    let mut policy = defaults.body.clone();
    for (sessions, field) in [
        (
            json!({"idle_minutes": 1, "absolute_hours": 12}),
            "idle_minutes",
        ),
        (
            json!({"idle_minutes": 30, "absolute_hours": 0}),
            "absolute_hours",
        ),
        (
            json!({"idle_minutes": 30, "absolute_hours": 9999}),
            "absolute_hours",
        ),
        (
            json!({"idle_minutes": 120, "absolute_hours": 1}),
            "idle_minutes",
        ),
    ] {
        policy["sessions"] = sessions.clone();
        let refused = harness
            .public(
                Request::put("/v1/tenants/acme/policy/security")
                    .token(&owner)
                    .json(policy.clone()),
            )
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{sessions}");
        assert!(
            refused.body["detail"].as_str().unwrap().contains(field),
            "{sessions}: {}",
            refused.body
        );
    }
    policy["sessions"] = json!({"idle_minutes": 10, "absolute_hours": 1});
    let set = harness
        .public(
            Request::put("/v1/tenants/acme/policy/security")
                .token(&owner)
                .json(policy.clone()),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);

    let me = |token: String| {
        let harness = &harness;
        async move {
            harness
                .public(Request::get("/v1/tenants/acme/me").token(&token))
                .await
                .status
        }
    };
    let idle = session_token(&harness, "ann@example.com", "a fine long passphrase").await;
    let busy = session_token(&harness, "ann@example.com", "a fine long passphrase").await;
    // The busy session is used every 9 minutes; the idle one is not.
    for _ in 0..6 {
        harness.clock.advance_micros(9 * 60 * 1_000_000);
        assert_eq!(
            me(busy.clone()).await,
            StatusCode::OK,
            "used within 10 minutes"
        );
    }
    assert_eq!(
        me(idle).await,
        StatusCode::UNAUTHORIZED,
        "10 minutes idle ends a session under this tenant's policy"
    );
    harness.clock.advance_micros(7 * 60 * 1_000_000);
    assert_eq!(
        me(busy).await,
        StatusCode::UNAUTHORIZED,
        "no session outlives the absolute timeout of 1 hour, however busy"
    );
}

/// The code Debian's oathtool computes for a base32 secret at a Unix time.
pub(crate) fn oathtool_code(secret_base32: &str, unix_seconds: i64) -> String {
    let output = std::process::Command::new("oathtool")
        .args([
            "--totp",
            "-b",
            secret_base32,
            "-N",
            &format!("@{unix_seconds}"),
        ])
        .output()
        .expect("oathtool is installed (cargo xtask test installs it)");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[tokio::test]
async fn totp_second_factor_with_single_use_codes_throttling_and_recovery_codes() {
    let harness = Harness::new().await;
    harness.tenant_with_token("acme", &["records:read"]).await;
    let created = harness
        .admin(
            Request::post("/admin/v1/tenants/acme/users")
                .token(&harness.operator)
                .json(json!({"email": "ann@example.com", "display_name": "Ann"})),
        )
        .await;
    let session = activated_session(
        &harness,
        "ann@example.com",
        created.body["one_time_password"].as_str().unwrap(),
        "a fine long passphrase",
    )
    .await;
    let now = || crate::harness::unix_seconds(&harness.clock);

    let enrolment = harness
        .public(Request::post("/v1/tenants/acme/me/mfa/totp").token(&session))
        .await;
    assert_eq!(enrolment.status, StatusCode::OK, "{}", enrolment.body);
    let uri = enrolment.body["otpauth_uri"].as_str().unwrap().to_owned();
    assert!(
        uri.starts_with("otpauth://totp/Strongroom:ann%40example.com?"),
        "{uri}"
    );
    assert!(enrolment.body["qr_svg"].as_str().unwrap().contains("<svg"));
    let secret = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();

    let wrong = harness
        .public(
            Request::post("/v1/tenants/acme/me/mfa/totp/confirm")
                .token(&session)
                .json(json!({"code": "000000"})),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let confirmed = harness
        .public(
            Request::post("/v1/tenants/acme/me/mfa/totp/confirm")
                .token(&session)
                .json(json!({"code": oathtool_code(&secret, now())})),
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    let recovery: Vec<String> = confirmed.body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recovery.len(), 10);

    let challenge = login(&harness, "ann@example.com", "a fine long passphrase").await;
    assert_eq!(
        (
            challenge.body["mfa_required"].clone(),
            challenge.body.get("session_token")
        ),
        (json!(true), None)
    );
    let mfa_token = challenge.body["mfa_token"].as_str().unwrap().to_owned();
    let second = |code: Value| {
        harness.public(
            Request::post("/v1/tenants/acme/auth/mfa")
                .json(json!({"mfa_token": mfa_token, "code": code})),
        )
    };
    assert_eq!(
        second(json!(oathtool_code(&secret, now()))).await.status,
        StatusCode::UNAUTHORIZED,
        "the code used to confirm is spent"
    );
    harness.clock.advance_micros(30_000_000);
    for _ in 0..2 {
        assert_eq!(
            second(json!("123456")).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let throttled = second(json!(oathtool_code(&secret, now()))).await;
    assert_eq!(
        throttled.status,
        StatusCode::TOO_MANY_REQUESTS,
        "wrong codes count against the account like wrong passwords: {}",
        throttled.body
    );
    assert_eq!(
        harness.security_count("second_factor_failed"),
        3,
        "each wrong code after the right password (the spent one too) is a security event"
    );
    assert_eq!(
        harness.security_count("scope_denied"),
        0,
        "and not a scope denial"
    );
    harness.clock.advance_micros(30_000_000);
    let signed_in = second(json!(oathtool_code(&secret, now()))).await;
    assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.body);
    assert!(
        signed_in.body["session_token"]
            .as_str()
            .unwrap()
            .starts_with("srs_")
    );
    assert_eq!(
        second(json!(oathtool_code(&secret, now()))).await.status,
        StatusCode::UNAUTHORIZED,
        "a challenge is used once"
    );

    let with_recovery = |token: String, code: String| {
        harness.public(
            Request::post("/v1/tenants/acme/auth/mfa")
                .json(json!({"mfa_token": token, "recovery_code": code})),
        )
    };
    let token = login(&harness, "ann@example.com", "a fine long passphrase")
        .await
        .body["mfa_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let recovered = with_recovery(token, recovery[0].clone()).await;
    assert_eq!(recovered.status, StatusCode::OK);
    // The trail names who completed the sign-in, as for a password alone.
    let trail = harness
        .public(
            Request::get("/v1/tenants/acme/audit?action=second_factor&outcome=allowed")
                .token(recovered.body["session_token"].as_str().unwrap()),
        )
        .await;
    assert!(
        trail.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|event| event["event"]["username_tried"] == "ann@example.com"),
        "{}",
        trail.body
    );
    assert!(!trail.body["events"].as_array().unwrap().is_empty());
    // Failed second steps name the challenge's user too (item 1: failed logins record the
    // name tried): the spent code, the two wrong ones and the throttled one. The challenge
    // already used names nobody, since it no longer says whose it was.
    let failed = harness
        .public(
            Request::get("/v1/tenants/acme/audit?action=second_factor&outcome=denied")
                .token(recovered.body["session_token"].as_str().unwrap()),
        )
        .await;
    let names: Vec<&Value> = failed.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| &event["event"]["username_tried"])
        .collect();
    assert_eq!(
        names
            .iter()
            .filter(|name| **name == "ann@example.com")
            .count(),
        4,
        "{}",
        failed.body
    );
    assert_eq!(names.len(), 5, "{}", failed.body);
    let token = login(&harness, "ann@example.com", "a fine long passphrase")
        .await
        .body["mfa_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        with_recovery(token, recovery[0].clone()).await.status,
        StatusCode::UNAUTHORIZED,
        "each recovery code works once"
    );
}

#[tokio::test]
async fn admins_change_roles_disable_and_remove_users_but_never_the_last_owner() {
    let harness = Harness::new().await;
    harness.tenant_with_token("acme", &["records:read"]).await;
    let created = harness
        .admin(
            Request::post("/admin/v1/tenants/acme/users")
                .token(&harness.operator)
                .json(json!({"email": "ann@example.com", "display_name": "Ann"})),
        )
        .await;
    let owner_id = created.body["user"]["id"].as_str().unwrap().to_owned();
    activated_session(
        &harness,
        "ann@example.com",
        created.body["one_time_password"].as_str().unwrap(),
        "a fine long passphrase",
    )
    .await;
    let owner = session_token(&harness, "ann@example.com", "a fine long passphrase").await;

    for (change, what) in [
        (json!({"roles": ["admin"]}), "demote"),
        (json!({"disabled": true}), "disable"),
    ] {
        let refused = harness
            .public(
                Request::patch(&format!("/v1/tenants/acme/users/{owner_id}"))
                    .token(&owner)
                    .json(change),
            )
            .await;
        assert!(
            refused.status == StatusCode::CONFLICT
                || (what == "demote" && refused.status == StatusCode::BAD_REQUEST),
            "{what} the last owner: {}",
            refused.status
        );
    }
    assert_eq!(
        harness
            .public(Request::delete(&format!("/v1/tenants/acme/users/{owner_id}")).token(&owner))
            .await
            .status,
        StatusCode::CONFLICT
    );

    let bob =
        harness
            .public(Request::post("/v1/tenants/acme/users").token(&owner).json(
                json!({"email": "bob@example.com", "display_name": "Bob", "roles": ["member"]}),
            ))
            .await;
    let bob_id = bob.body["user"]["id"].as_str().unwrap().to_owned();
    activated_session(
        &harness,
        "bob@example.com",
        bob.body["one_time_password"].as_str().unwrap(),
        "bob's long passphrase",
    )
    .await;
    let bob_session = session_token(&harness, "bob@example.com", "bob's long passphrase").await;
    let renamed = harness
        .public(
            Request::patch("/v1/tenants/acme/me")
                .token(&bob_session)
                .json(json!({"display_name": "Robert"})),
        )
        .await;
    assert_eq!(
        renamed.body["display_name"], "Robert",
        "self-service profile"
    );
    let phone = harness
        .public(
            Request::patch("/v1/tenants/acme/me")
                .token(&bob_session)
                .json(json!({"phone": "+32 470 12 34 56"})),
        )
        .await;
    assert_eq!(
        (
            phone.body["phone"].clone(),
            phone.body["display_name"].clone()
        ),
        (json!("+32 470 12 34 56"), json!("Robert")),
        "contact data for alerts"
    );
    let bad_phone = harness
        .public(
            Request::patch("/v1/tenants/acme/me")
                .token(&bob_session)
                .json(json!({"phone": "call me"})),
        )
        .await;
    assert_eq!(bad_phone.status, StatusCode::BAD_REQUEST);

    let demoted = harness
        .public(
            Request::patch(&format!("/v1/tenants/acme/users/{bob_id}"))
                .token(&owner)
                .json(json!({"roles": ["viewer"]})),
        )
        .await;
    assert_eq!(demoted.body["roles"], json!(["viewer"]));
    assert_eq!(
        harness
            .public(Request::get("/v1/tenants/acme/me").token(&bob_session))
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "a change of rights ends the sessions"
    );
    harness
        .public(
            Request::patch(&format!("/v1/tenants/acme/users/{bob_id}"))
                .token(&owner)
                .json(json!({"disabled": true})),
        )
        .await;
    assert_eq!(
        login(&harness, "bob@example.com", "bob's long passphrase")
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "disabled users cannot sign in"
    );
    harness
        .public(
            Request::patch(&format!("/v1/tenants/acme/users/{bob_id}"))
                .token(&owner)
                .json(json!({"disabled": false, "roles": ["owner"]})),
        )
        .await;
    let own = harness
        .public(
            Request::patch(&format!("/v1/tenants/acme/users/{owner_id}"))
                .token(&owner)
                .json(json!({"roles": ["admin"]})),
        )
        .await;
    assert_eq!(
        own.status,
        StatusCode::BAD_REQUEST,
        "nobody changes their own roles"
    );
    let bob_owner = session_token(&harness, "bob@example.com", "bob's long passphrase").await;
    let stepped_down = harness
        .public(
            Request::patch(&format!("/v1/tenants/acme/users/{owner_id}"))
                .token(&bob_owner)
                .json(json!({"roles": ["admin"]})),
        )
        .await;
    assert_eq!(
        stepped_down.status,
        StatusCode::OK,
        "with a second owner, the first can be demoted: {}",
        stepped_down.body
    );
    let admin_again = session_token(&harness, "ann@example.com", "a fine long passphrase").await;
    let escalate = harness
        .public(
            Request::patch(&format!("/v1/tenants/acme/users/{bob_id}"))
                .token(&admin_again)
                .json(json!({"disabled": true})),
        )
        .await;
    assert_eq!(
        escalate.body["code"], "missing_permission",
        "an admin cannot touch an owner"
    );
    let auditor_grant = harness.public(Request::post("/v1/tenants/acme/users").token(&admin_again).json(json!({"email": "aud@example.com", "display_name": "Aud", "roles": ["auditor"]}))).await;
    assert_eq!(
        auditor_grant.body["code"], "missing_permission",
        "nobody grants rights they do not hold (audit:read)"
    );
    assert_eq!(
        harness
            .public(
                Request::delete(&format!("/v1/tenants/acme/users/{owner_id}/sessions"))
                    .token(&bob_owner)
            )
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        harness
            .public(Request::get("/v1/tenants/acme/me").token(&admin_again))
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "signing a user out everywhere ends a session that was just in use, at once"
    );
    assert_eq!(
        harness
            .public(
                Request::delete(&format!("/v1/tenants/acme/users/{owner_id}")).token(&bob_owner)
            )
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        login(&harness, "ann@example.com", "a fine long passphrase")
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "a removed user is gone"
    );
    assert_eq!(
        harness
            .public(Request::get("/v1/tenants/acme/users").token(&bob_owner))
            .await
            .body["users"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

fn login_from(
    harness: &Harness,
    address: &str,
    email: &str,
    password: &str,
) -> impl std::future::Future<Output = crate::harness::Response> {
    harness.public(
        Request::post("/v1/tenants/acme/auth/login")
            .sent_from(address)
            .json(json!({"email": email, "password": password})),
    )
}

#[tokio::test]
async fn failed_sign_ins_slow_down_lock_accounts_and_block_spraying_addresses() {
    let harness = Harness::new().await;
    harness.tenant_with_token("acme", &["records:read"]).await;
    let created = harness
        .admin(
            Request::post("/admin/v1/tenants/acme/users")
                .token(&harness.operator)
                .json(json!({"email": "ann@example.com", "display_name": "Ann"})),
        )
        .await;
    let owner_id = created.body["user"]["id"].as_str().unwrap().to_owned();
    activated_session(
        &harness,
        "ann@example.com",
        created.body["one_time_password"].as_str().unwrap(),
        "a fine long passphrase",
    )
    .await;
    let bob = harness
        .public(
            Request::post("/v1/tenants/acme/users")
                .token(&session_token(&harness, "ann@example.com", "a fine long passphrase").await)
                .json(
                    json!({"email": "bob@example.com", "display_name": "Bob", "roles": ["member"]}),
                ),
        )
        .await;
    let bob_one_time = bob.body["one_time_password"].as_str().unwrap().to_owned();

    // A growing delay per account.
    for _ in 0..3 {
        assert_eq!(
            login(&harness, "bob@example.com", "wrong").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let slowed = login(&harness, "bob@example.com", &bob_one_time).await;
    assert_eq!(
        (slowed.status, slowed.body["code"].clone()),
        (StatusCode::TOO_MANY_REQUESTS, json!("too_many_attempts"))
    );
    assert!(
        slowed.body["detail"]
            .as_str()
            .unwrap()
            .contains("1 seconds"),
        "{}",
        slowed.body["detail"]
    );
    assert_eq!(
        harness.security_count("login_throttled"),
        1,
        "a burst of failed sign-ins is a security event"
    );
    harness.clock.advance_micros(1_000_000);
    assert_eq!(
        login(&harness, "bob@example.com", &bob_one_time)
            .await
            .status,
        StatusCode::OK,
        "after the delay, the right password works and resets the count"
    );

    // A lock after 100 consecutive failures, until an admin unlocks.
    for _ in 0..100 {
        harness.clock.advance_micros(901_000_000);
        assert_eq!(
            login(&harness, "bob@example.com", "wrong").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    harness.clock.advance_micros(901_000_000);
    let locked = login(&harness, "bob@example.com", &bob_one_time).await;
    assert_eq!(
        (locked.status, locked.body["code"].clone()),
        (StatusCode::FORBIDDEN, json!("account_locked"))
    );
    assert!(
        locked.body["detail"].as_str().unwrap().contains("admin"),
        "the real user learns what to do"
    );
    assert!(harness.security_count("account_locked") == 1);
    let owner = session_token(&harness, "ann@example.com", "a fine long passphrase").await;
    let bob_id = bob.body["user"]["id"].as_str().unwrap();
    harness
        .public(
            Request::patch(&format!("/v1/tenants/acme/users/{bob_id}"))
                .token(&owner)
                .json(json!({"unlock": true})),
        )
        .await;
    assert_eq!(
        login(&harness, "bob@example.com", &bob_one_time)
            .await
            .status,
        StatusCode::OK,
        "unlocked"
    );

    // Password spraying from one address blocks the address, across accounts.
    for index in 0..20 {
        login_from(
            &harness,
            "203.0.113.9:4000",
            &format!("user{index}@example.com"),
            "Summer2026!",
        )
        .await;
    }
    let blocked = login_from(
        &harness,
        "203.0.113.9:4001",
        "ann@example.com",
        "a fine long passphrase",
    )
    .await;
    assert_eq!(
        blocked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the address is blocked even with a right password"
    );
    assert_eq!(
        login_from(
            &harness,
            "198.51.100.7:4000",
            "ann@example.com",
            "a fine long passphrase"
        )
        .await
        .status,
        StatusCode::OK,
        "other addresses are not"
    );
    assert_eq!(harness.security_count("address_blocked"), 1);
    harness.clock.advance_micros(16 * 60 * 1_000_000);
    assert_eq!(
        login_from(
            &harness,
            "203.0.113.9:4002",
            "ann@example.com",
            "a fine long passphrase"
        )
        .await
        .status,
        StatusCode::OK,
        "the block ends"
    );
    let _ = owner_id;
}

#[tokio::test]
async fn the_tenant_security_policy_sets_password_rules_mfa_and_expiry() {
    let harness = Harness::new().await;
    let api_token = harness.tenant_with_token("acme", &["records:read"]).await;
    let owner = first_owner_of_acme(&harness).await;
    let defaults = harness
        .public(Request::get("/v1/tenants/acme/policy/security").token(&owner))
        .await;
    assert_eq!(
        (
            defaults.body["password"]["length_min"].clone(),
            defaults.body["mfa"]["kind"].clone()
        ),
        (json!(12), json!("optional"))
    );
    assert_eq!(
        harness
            .public(Request::get("/v1/tenants/acme/policy/security").token(&api_token))
            .await
            .body["code"],
        "missing_permission",
        "API tokens carry data scopes only"
    );

    let policy = |length_min: u32, mfa: Value| json!({"password": {"length_min": length_min, "length_max": 128, "complexity": {"kind": "strength", "minimum_score": 3}, "reject_common": true, "history": 5, "expiry_days": 90}, "mfa": mfa});
    let too_short = harness
        .public(
            Request::put("/v1/tenants/acme/policy/security")
                .token(&owner)
                .json(policy(8, json!({"kind": "optional"}))),
        )
        .await;
    assert!(
        too_short.body["detail"].as_str().unwrap().contains("MFA"),
        "8 characters only when MFA is enforced: {}",
        too_short.body
    );
    let unknown_role = harness
        .public(
            Request::put("/v1/tenants/acme/policy/security")
                .token(&owner)
                .json(policy(14, json!({"kind": "roles", "roles": ["boss"]}))),
        )
        .await;
    assert_eq!(unknown_role.status, StatusCode::BAD_REQUEST);
    let set = harness
        .public(
            Request::put("/v1/tenants/acme/policy/security")
                .token(&owner)
                .json(policy(14, json!({"kind": "roles", "roles": ["member"]}))),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);

    let member =
        harness
            .public(Request::post("/v1/tenants/acme/users").token(&owner).json(
                json!({"email": "meg@example.com", "display_name": "Meg", "roles": ["member"]}),
            ))
            .await;
    let one_time = member.body["one_time_password"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = session_token(&harness, "meg@example.com", &one_time).await;
    let weak = harness
        .public(
            Request::post("/v1/tenants/acme/me/password")
                .token(&first)
                .json(json!({"current_password": one_time, "new_password": "megmegmegmegmeg1"})),
        )
        .await;
    assert!(
        weak.body["detail"]
            .as_str()
            .unwrap()
            .contains("too easy to guess"),
        "{}",
        weak.body
    );
    let changed = harness.public(Request::post("/v1/tenants/acme/me/password").token(&first).json(json!({"current_password": one_time, "new_password": "violet lantern orbit 7 quietly"}))).await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{}", changed.body);
    let needs_mfa = harness
        .public(Request::get("/v1/tenants/acme/collections").token(&first))
        .await;
    assert_eq!(
        needs_mfa.body["code"], "mfa_enrolment_required",
        "members must enrol before using data"
    );
    let enrolment = harness
        .public(Request::post("/v1/tenants/acme/me/mfa/totp").token(&first))
        .await;
    let uri = enrolment.body["otpauth_uri"].as_str().unwrap().to_owned();
    let secret = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let now = crate::harness::unix_seconds(&harness.clock);
    assert_eq!(
        harness
            .public(
                Request::post("/v1/tenants/acme/me/mfa/totp/confirm")
                    .token(&first)
                    .json(json!({"code": oathtool_code(&secret, now)}))
            )
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        harness
            .public(Request::get("/v1/tenants/acme/collections").token(&first))
            .await
            .status,
        StatusCode::OK,
        "enrolled: data is open"
    );

    harness.clock.advance_micros(91 * 24 * 3600 * 1_000_000);
    let owner_again = session_token(&harness, "ann@example.com", "a fine long passphrase").await;
    let expired = harness
        .public(Request::get("/v1/tenants/acme/collections").token(&owner_again))
        .await;
    assert_eq!(
        expired.body["code"], "password_change_required",
        "passwords expire under the policy"
    );
}

/// Every route of the public OpenAPI document, called with a session of every built-in role,
/// against the table of what each role may do. A route missing from the table fails the test.
#[tokio::test]
async fn every_route_checks_permissions_for_every_built_in_role() {
    let harness = Harness::new().await;
    harness.tenant_with_token("acme", &["records:read"]).await;
    let created = harness
        .admin(
            Request::post("/admin/v1/tenants/acme/users")
                .token(&harness.operator)
                .json(json!({"email": "owner@example.com", "display_name": "Owner"})),
        )
        .await;
    let owner = activated_session(
        &harness,
        "owner@example.com",
        created.body["one_time_password"].as_str().unwrap(),
        "owner's long passphrase",
    )
    .await;
    let mut sessions = vec![("owner", owner.clone())];
    for role in ["admin", "member", "viewer", "auditor"] {
        let session =
            session_with_role(&harness, &owner, &format!("{role}@example.com"), role).await;
        sessions.push((role, session));
    }
    // (method, path, permission needed, body). "signed-in" routes need a session only; "public" none.
    let table: Vec<(&str, &str, &str, Value)> = vec![
        ("get", "/openapi.json", "public", Value::Null),
        (
            "post",
            "/v1/tenants/{slug}/auth/login",
            "public",
            json!({"email": "x@example.com", "password": "x"}),
        ),
        (
            "post",
            "/v1/tenants/{slug}/auth/recover",
            "public",
            json!({"email": "x@example.com", "password": "x", "recovery_code": "x"}),
        ),
        (
            "post",
            "/v1/tenants/{slug}/auth/mfa",
            "public",
            json!({"mfa_token": "srm_x", "code": "123456"}),
        ),
        (
            "post",
            "/v1/tenants/{slug}/auth/logout",
            "signed-in",
            Value::Null,
        ),
        ("get", "/v1/tenants/{slug}/me", "signed-in", Value::Null),
        (
            "patch",
            "/v1/tenants/{slug}/me",
            "signed-in",
            json!({"display_name": "Me"}),
        ),
        (
            "post",
            "/v1/tenants/{slug}/me/password",
            "signed-in",
            json!({"current_password": "x", "new_password": "y"}),
        ),
        (
            "post",
            "/v1/tenants/{slug}/me/mfa/totp",
            "signed-in",
            Value::Null,
        ),
        (
            "post",
            "/v1/tenants/{slug}/me/mfa/totp/confirm",
            "signed-in",
            json!({"code": "123456"}),
        ),
        (
            "get",
            "/v1/tenants/{slug}/collections",
            "records:read",
            Value::Null,
        ),
        (
            "put",
            "/v1/tenants/{slug}/collections/{name}",
            "records:write",
            json!({}),
        ),
        (
            "get",
            "/v1/tenants/{slug}/collections/{name}/records",
            "records:read",
            Value::Null,
        ),
        (
            "post",
            "/v1/tenants/{slug}/collections/{name}/records",
            "records:write",
            json!({}),
        ),
        (
            "get",
            "/v1/tenants/{slug}/collections/{name}/records/{id}",
            "records:read",
            Value::Null,
        ),
        (
            "put",
            "/v1/tenants/{slug}/collections/{name}/records/{id}",
            "records:write",
            json!({}),
        ),
        (
            "patch",
            "/v1/tenants/{slug}/collections/{name}/records/{id}",
            "records:write",
            json!({}),
        ),
        (
            "delete",
            "/v1/tenants/{slug}/collections/{name}/records/{id}",
            "records:write",
            Value::Null,
        ),
        (
            "get",
            "/v1/tenants/{slug}/documents",
            "documents:read",
            Value::Null,
        ),
        (
            "put",
            "/v1/tenants/{slug}/documents/{path}",
            "documents:write",
            json!("content"),
        ),
        (
            "get",
            "/v1/tenants/{slug}/documents/{path}",
            "documents:download",
            Value::Null,
        ),
        (
            "post",
            "/v1/tenants/{slug}/documents/{path}",
            "documents:write",
            Value::Null,
        ),
        (
            "delete",
            "/v1/tenants/{slug}/documents/{path}",
            "documents:write",
            Value::Null,
        ),
        (
            "get",
            "/v1/tenants/{slug}/trash",
            "documents:read",
            Value::Null,
        ),
        (
            "post",
            "/v1/tenants/{slug}/trash/{id}/restore",
            "documents:write",
            Value::Null,
        ),
        (
            "get",
            "/v1/tenants/{slug}/users",
            "users:manage",
            Value::Null,
        ),
        (
            "post",
            "/v1/tenants/{slug}/users",
            "users:manage",
            json!({"email": "new-{role}@example.com", "display_name": "New"}),
        ),
        (
            "patch",
            "/v1/tenants/{slug}/users/{id}",
            "users:manage",
            json!({}),
        ),
        (
            "delete",
            "/v1/tenants/{slug}/users/{id}",
            "users:manage",
            Value::Null,
        ),
        (
            "delete",
            "/v1/tenants/{slug}/users/{id}/sessions",
            "users:manage",
            Value::Null,
        ),
        (
            "get",
            "/v1/tenants/{slug}/policy/security",
            "policy:manage",
            Value::Null,
        ),
        (
            "put",
            "/v1/tenants/{slug}/policy/security",
            "policy:manage",
            json!({"password": {"length_min": 12, "length_max": 128, "complexity": {"kind": "none"}, "reject_common": true, "history": 5, "expiry_days": null}, "mfa": {"kind": "optional"}}),
        ),
        (
            "post",
            "/v1/tenants/{slug}/tokens",
            "users:manage",
            json!({"name": "ci", "scopes": ["records:read"]}),
        ),
        (
            "get",
            "/v1/tenants/{slug}/tokens",
            "users:manage",
            Value::Null,
        ),
        (
            "delete",
            "/v1/tenants/{slug}/tokens/{id}",
            "users:manage",
            Value::Null,
        ),
        (
            "get",
            "/v1/tenants/{slug}/policy/firewall",
            "policy:manage",
            Value::Null,
        ),
        (
            "put",
            "/v1/tenants/{slug}/policy/firewall",
            "policy:manage",
            json!({"allow": [], "deny": []}),
        ),
        (
            "get",
            "/v1/tenants/{slug}/policy/downloads",
            "policy:manage",
            Value::Null,
        ),
        (
            "put",
            "/v1/tenants/{slug}/policy/downloads",
            "policy:manage",
            json!({"window_minutes": 60}),
        ),
        (
            "delete",
            "/v1/tenants/{slug}/download-blocks/{id}",
            "users:manage",
            Value::Null,
        ),
        ("get", "/v1/tenants/{slug}/audit", "audit:read", Value::Null),
        (
            "get",
            "/v1/tenants/{slug}/audit/public-key",
            "audit:read",
            Value::Null,
        ),
        (
            "get",
            "/v1/tenants/{slug}/audit/checkpoints",
            "audit:read",
            Value::Null,
        ),
        (
            "get",
            "/v1/tenants/{slug}/security-events",
            "policy:manage",
            Value::Null,
        ),
        (
            "get",
            "/v1/tenants/{slug}/policy/audit-retention",
            "audit:read",
            Value::Null,
        ),
        (
            "put",
            "/v1/tenants/{slug}/policy/audit-retention",
            "audit:read",
            json!({"days": 400}),
        ),
        (
            "get",
            "/v1/tenants/{slug}/policy/alerts",
            "policy:manage",
            Value::Null,
        ),
        (
            "put",
            "/v1/tenants/{slug}/policy/alerts",
            "policy:manage",
            json!({"webhooks": []}),
        ),
        (
            "get",
            "/v1/tenants/{slug}/alerts/deliveries",
            "policy:manage",
            Value::Null,
        ),
        (
            "get",
            "/v1/tenants/{slug}/roles",
            "users:manage",
            Value::Null,
        ),
        (
            "put",
            "/v1/tenants/{slug}/roles/{name}",
            "users:manage",
            json!({"permissions": ["records:read"]}),
        ),
        (
            "delete",
            "/v1/tenants/{slug}/roles/{name}",
            "users:manage",
            Value::Null,
        ),
        (
            "get",
            "/v1/tenants/{slug}/groups",
            "users:manage",
            Value::Null,
        ),
        (
            "put",
            "/v1/tenants/{slug}/groups/{name}",
            "users:manage",
            json!({"members": []}),
        ),
        (
            "delete",
            "/v1/tenants/{slug}/groups/{name}",
            "users:manage",
            Value::Null,
        ),
        (
            "get",
            "/v1/tenants/{slug}/grants",
            "users:manage",
            Value::Null,
        ),
        (
            "post",
            "/v1/tenants/{slug}/grants",
            "users:manage",
            json!({"subject": {"kind": "group", "name": "things"}, "role": "viewer"}),
        ),
        (
            "delete",
            "/v1/tenants/{slug}/grants/{id}",
            "users:manage",
            Value::Null,
        ),
        (
            "get",
            "/v1/tenants/{slug}/sso/providers",
            "policy:manage",
            Value::Null,
        ),
        (
            "put",
            "/v1/tenants/{slug}/sso/providers/{name}",
            "policy:manage",
            json!({"issuer": "https://login.example.com", "client_id": "strongroom", "client_secret": "s3cret", "allowed_email_domains": ["example.com"]}),
        ),
        (
            "delete",
            "/v1/tenants/{slug}/sso/providers/{name}",
            "policy:manage",
            Value::Null,
        ),
        (
            "get",
            "/v1/tenants/{slug}/auth/sso/{name}",
            "public",
            Value::Null,
        ),
        (
            "get",
            "/v1/tenants/{slug}/auth/sso/callback",
            "public",
            Value::Null,
        ),
        (
            "get",
            "/v1/tenants/{slug}/support-access",
            "users:manage",
            Value::Null,
        ),
        (
            "post",
            "/v1/tenants/{slug}/support-access/{id}/approve",
            "users:manage",
            Value::Null,
        ),
        (
            "post",
            "/v1/tenants/{slug}/support-access/{id}/deny",
            "users:manage",
            Value::Null,
        ),
        (
            "post",
            "/v1/tenants/{slug}/support-access/{id}/revoke",
            "users:manage",
            Value::Null,
        ),
    ];
    let document = harness.public(Request::get("/openapi.json")).await;
    let documented = crate::harness::operations(&document.body);
    let mut listed: Vec<(String, String)> = table
        .iter()
        .map(|(method, path, _, _)| (method.to_string(), path.to_string()))
        .collect();
    listed.sort();
    assert_eq!(
        listed, documented,
        "the permission table covers every documented route"
    );

    let request_for = |method: &str, path: &str, body: &Value, role: &str, token: &str| {
        let concrete = path
            .replace("{slug}", "acme")
            .replace("{name}", "things")
            .replace("{id}", "0123456789abcdef")
            .replace(
                "{path}",
                if method == "post" {
                    "docs/a.txt/restore?version=1"
                } else {
                    "docs/a.txt"
                },
            );
        let request = Request::new(method, &concrete).token(token);
        match body {
            Value::Null => request,
            Value::String(text) => request.raw("text/plain", text.as_bytes().to_vec()),
            other => request
                .json(serde_json::from_str(&other.to_string().replace("{role}", role)).unwrap()),
        }
    };
    let denied = |response: &crate::harness::Response| {
        response.status == StatusCode::FORBIDDEN
            && matches!(
                response.body["code"].as_str(),
                Some("missing_scope" | "missing_permission")
            )
    };
    for (role, session) in &sessions {
        let permissions: Vec<&str> = strongroom_domain::BuiltinRole::ALL
            .into_iter()
            .find(|built_in| built_in.as_str() == *role)
            .unwrap()
            .permissions()
            .iter()
            .map(|permission| permission.as_str())
            .collect();
        for (method, path, needed, body) in &table {
            if *needed == "public" || (*method == "post" && path.ends_with("/logout")) {
                continue;
            }
            let response = harness
                .public(request_for(method, path, body, role, session))
                .await;
            let allowed = *needed == "signed-in" || permissions.contains(needed);
            assert_eq!(
                !denied(&response),
                allowed,
                "{role} {method} {path}: {} {}",
                response.status,
                response.body
            );
        }
    }

    // A log collector's API token (audit:read alone) reads the trail, its checkpoints and
    // public key; every other route refuses it (retention too, though it needs audit:read).
    let minted = harness
        .mint_token(
            "acme",
            &owner,
            json!({"name": "siem", "scopes": ["audit:read"]}),
        )
        .await;
    let collector = minted.body["token"].as_str().unwrap().to_owned();
    let trail_reads = [
        "/v1/tenants/{slug}/audit",
        "/v1/tenants/{slug}/audit/public-key",
        "/v1/tenants/{slug}/audit/checkpoints",
    ];
    for (method, path, needed, body) in &table {
        if *needed == "public" {
            continue;
        }
        let response = harness
            .public(request_for(method, path, body, "collector", &collector))
            .await;
        let refused = denied(&response) || response.status == StatusCode::UNAUTHORIZED;
        let allowed = *method == "get" && trail_reads.contains(path);
        assert_eq!(
            !refused, allowed,
            "audit:read token {method} {path}: {} {}",
            response.status, response.body
        );
    }
}

#[tokio::test]
async fn cookie_sessions_refuse_changes_started_by_other_sites() {
    let harness = Harness::new().await;
    harness.tenant_with_token("acme", &["records:read"]).await;
    let created = harness
        .admin(
            Request::post("/admin/v1/tenants/acme/users")
                .token(&harness.operator)
                .json(json!({"email": "ann@example.com", "display_name": "Ann"})),
        )
        .await;
    let session = activated_session(
        &harness,
        "ann@example.com",
        created.body["one_time_password"].as_str().unwrap(),
        "a fine long passphrase",
    )
    .await;
    let session = login(&harness, "ann@example.com", "a fine long passphrase")
        .await
        .body["session_token"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or(session);
    let cookie = format!("__Host-strongroom-session={session}");
    let forged = harness
        .public(
            Request::put("/v1/tenants/acme/collections/notes")
                .header("cookie", &cookie)
                .header("sec-fetch-site", "same-site")
                .json(json!({})),
        )
        .await;
    assert_eq!(
        forged.status,
        StatusCode::FORBIDDEN,
        "a sibling subdomain cannot write with the cookie"
    );
    let own_page = harness
        .public(
            Request::put("/v1/tenants/acme/collections/notes")
                .header("cookie", &cookie)
                .header("sec-fetch-site", "same-origin")
                .json(json!({})),
        )
        .await;
    assert_eq!(own_page.status, StatusCode::CREATED);
    let read = harness
        .public(
            Request::get("/v1/tenants/acme/collections")
                .header("cookie", &cookie)
                .header("sec-fetch-site", "cross-site"),
        )
        .await;
    assert_eq!(read.status, StatusCode::OK, "reads are not changes");
}

#[tokio::test]
async fn tenant_admins_create_api_tokens_within_their_own_rights() {
    let harness = Harness::new().await;
    harness.tenant_with_token("acme", &["records:read"]).await;
    let owner = first_owner_of_acme(&harness).await;
    let token = harness
        .mint_token(
            "acme",
            &owner,
            json!({"name": "app", "scopes": ["records:read", "records:write"]}),
        )
        .await;
    assert_eq!(token.status, StatusCode::CREATED, "{}", token.body);
    let secret = token.body["token"].as_str().unwrap();
    assert_eq!(
        harness
            .public(
                Request::put("/v1/tenants/acme/collections/notes")
                    .token(secret)
                    .json(json!({}))
            )
            .await
            .status,
        StatusCode::CREATED,
        "the token works"
    );
    let expired = harness.mint_token("acme", &owner, json!({"name": "old", "scopes": ["records:read"], "expires_at": "2020-01-01T00:00:00Z"})).await;
    assert_eq!(
        expired.status,
        StatusCode::BAD_REQUEST,
        "expiry must be in the future"
    );

    // Admins see every token (the operator's from before the tenant had users too) and revoke.
    let listed = harness
        .public(Request::get("/v1/tenants/acme/tokens").token(&owner))
        .await;
    let tokens = listed.body["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2, "{}", listed.body);
    assert!(
        !listed.body.to_string().contains(secret),
        "a listing never shows a secret"
    );
    let app_id = token.body["id"].as_str().unwrap();
    let revoked = harness
        .public(Request::delete(&format!("/v1/tenants/acme/tokens/{app_id}")).token(&owner))
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    assert_eq!(
        harness
            .public(Request::get("/v1/tenants/acme/collections").token(secret))
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "a revoked token stops at once, cached or not"
    );
    assert_eq!(
        harness
            .public(Request::delete(&format!("/v1/tenants/acme/tokens/{app_id}")).token(&owner))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_locked_user_with_a_second_factor_recovers_with_password_and_a_recovery_code() {
    let harness = Harness::new().await;
    harness.tenant_with_token("acme", &["records:read"]).await;
    let created = harness
        .admin(
            Request::post("/admin/v1/tenants/acme/users")
                .token(&harness.operator)
                .json(json!({"email": "ann@example.com", "display_name": "Ann"})),
        )
        .await;
    let session = activated_session(
        &harness,
        "ann@example.com",
        created.body["one_time_password"].as_str().unwrap(),
        "a fine long passphrase",
    )
    .await;
    let enrolment = harness
        .public(Request::post("/v1/tenants/acme/me/mfa/totp").token(&session))
        .await;
    let secret = enrolment.body["otpauth_uri"]
        .as_str()
        .unwrap()
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let confirmed = harness
        .public(
            Request::post("/v1/tenants/acme/me/mfa/totp/confirm")
                .token(&session)
                .json(json!({"code": oathtool_code(&secret, crate::harness::unix_seconds(&harness.clock))})),
        )
        .await;
    let recovery: Vec<String> = confirmed.body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap().to_owned())
        .collect();

    // Someone guesses passwords until the account locks.
    for _ in 0..100 {
        harness.clock.advance_micros(901_000_000);
        login(&harness, "ann@example.com", "wrong").await;
    }
    harness.clock.advance_micros(901_000_000);
    let locked = login(&harness, "ann@example.com", "a fine long passphrase").await;
    assert_eq!(locked.body["code"], "account_locked");
    assert!(
        locked.body["detail"]
            .as_str()
            .unwrap()
            .contains("recovery code"),
        "the real user learns about the way back: {}",
        locked.body
    );

    let recover = |password: &str, code: &str| {
        Request::post("/v1/tenants/acme/auth/recover")
            .json(json!({"email": "ann@example.com", "password": password, "recovery_code": code}))
    };
    for (password, code) in [
        ("wrong", recovery[0].as_str()),
        ("a fine long passphrase", "aaaa-bbbb-cccc-dddd"),
    ] {
        assert_eq!(
            harness.public(recover(password, code)).await.status,
            StatusCode::UNAUTHORIZED,
            "both factors are needed"
        );
    }
    let recovered = harness
        .public(recover("a fine long passphrase", &recovery[0]))
        .await;
    assert_eq!(recovered.status, StatusCode::OK, "{}", recovered.body);
    assert!(
        recovered.body["session_token"]
            .as_str()
            .unwrap()
            .starts_with("srs_")
    );
    assert_eq!(harness.security_count("account_recovered"), 1);
    let unlocked = login(&harness, "ann@example.com", "a fine long passphrase").await;
    assert_eq!(
        (unlocked.status, unlocked.body["mfa_required"].clone()),
        (StatusCode::OK, json!(true)),
        "the lock is lifted; sign-in asks for the second factor as before"
    );
    assert_eq!(
        harness
            .public(recover("a fine long passphrase", &recovery[0]))
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "a recovery code works once"
    );
}
