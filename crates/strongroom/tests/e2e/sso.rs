//! Single sign-on end to end: the real binary, a real OpenID Connect provider (npm
//! `oidc-provider` on Node.js), and an HTTP client playing the browser.

use crate::oidc_provider::OidcProvider;
use crate::server::{TestServer, eventually, tls_client_config};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

const CLIENT_SECRET: &str = "oidc-client-secret-canary-7d2c";
const BINDING_COOKIE: &str = "__Host-strongroom-sso";

/// A browser that does not follow redirects by itself.
fn browser(server: &TestServer) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls_client_config(
            &server.data_dir().join("tls/self-signed.crt"),
        ))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.split(';').next())
        .map(str::to_owned)
        .collect()
}

/// What a sign-in through the provider ends with at Strongroom's callback.
struct Outcome {
    status: StatusCode,
    body: Value,
    callback_url: String,
    binding: String,
}

/// Starts at Strongroom, signs in at the provider as `account`, comes back to the callback.
async fn sign_in(server: &TestServer, account: &str) -> Outcome {
    let browser = browser(server);
    let started = browser
        .get(server.public_url("/v1/tenants/acme/auth/sso/corp"))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    let binding = set_cookies(&started)
        .into_iter()
        .find_map(|cookie| {
            cookie
                .strip_prefix(&format!("{BINDING_COOKIE}="))
                .map(str::to_owned)
        })
        .expect("the start binds the sign-in to this browser");
    let authorization = started.headers()[LOCATION].to_str().unwrap().to_owned();
    for parameter in [
        "code_challenge_method=S256",
        "state=",
        "nonce=",
        "scope=openid",
    ] {
        assert!(
            authorization.contains(parameter),
            "{parameter} in {authorization}"
        );
    }
    let callback_prefix = server.public_url("/v1/tenants/acme/auth/sso/callback");
    let issuer_root = {
        let url = reqwest::Url::parse(&authorization).unwrap();
        format!("{}://{}", url.scheme(), url.host_str().unwrap())
            + &format!(":{}", url.port().unwrap())
    };
    let mut next = format!("{authorization}&login_hint={account}");
    let mut jar: Vec<String> = Vec::new();
    let callback_url = loop {
        let response = browser
            .get(&next)
            .header(COOKIE, jar.join("; "))
            .send()
            .await
            .unwrap();
        jar.extend(set_cookies(&response));
        let location = response
            .headers()
            .get(LOCATION)
            .unwrap_or_else(|| {
                panic!(
                    "the provider answered {} without a redirect",
                    response.status()
                )
            })
            .to_str()
            .unwrap()
            .to_owned();
        if location.starts_with(&callback_prefix) {
            break location;
        }
        next = if location.starts_with('/') {
            format!("{issuer_root}{location}")
        } else {
            location
        };
        assert!(jar.len() < 64, "the provider keeps redirecting");
    };
    let answer = browser
        .get(&callback_url)
        .header(COOKIE, format!("{BINDING_COOKIE}={binding}"))
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let body = answer.json().await.unwrap_or(Value::Null);
    Outcome {
        status,
        body,
        callback_url,
        binding,
    }
}

#[tokio::test]
async fn users_sign_in_through_a_real_openid_connect_provider() {
    let mut server = TestServer::configure("", &[]);
    let public_port = server.public.rsplit(':').next().unwrap().to_owned();
    server.environment.push((
        "STRONGROOM_PUBLIC_URL".into(),
        format!("https://localhost:{public_port}"),
    ));
    // The test's provider runs on loopback.
    server.environment.push((
        "STRONGROOM_OUTBOUND_ALLOW_PRIVATE_NETWORKS".into(),
        "true".into(),
    ));
    server.spawn().expect("the server starts");
    let provider = OidcProvider::start(
        &json!([{
            "client_id": "strongroom-acme",
            "client_secret": CLIENT_SECRET,
            "redirect_uris": [format!("https://localhost:{public_port}/v1/tenants/acme/auth/sso/callback")]
        }]),
        &json!({
            "alice-sub": {"email": "Alice@Example.com", "email_verified": true, "name": "Alice Example"},
            "ann-sub": {"email": "ann@example.com", "email_verified": true, "name": "Ann"},
            "mallory-sub": {"email": "mallory@elsewhere.test", "email_verified": true, "name": "Mallory"},
            "unverified-sub": {"email": "uma@example.com", "email_verified": false, "name": "Uma"}
        }),
    );
    let operator =
        std::fs::read_to_string(server.data_dir().join("bootstrap-operator.token")).unwrap();
    server.tenant_with_token("acme");
    let client = server.client();
    let first: Value = client
        .post(server.admin_url("/admin/v1/tenants/acme/users"))
        .bearer_auth(operator.trim())
        .json(&json!({"email": "ann@example.com", "display_name": "Ann"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let one_time = first["one_time_password"].as_str().unwrap();
    let signed_in: Value = client
        .post(server.public_url("/v1/tenants/acme/auth/login"))
        .json(&json!({"email": "ann@example.com", "password": one_time}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let owner = signed_in["session_token"].as_str().unwrap().to_owned();
    let changed = client
        .post(server.public_url("/v1/tenants/acme/me/password"))
        .bearer_auth(&owner)
        .json(&json!({"current_password": one_time, "new_password": "a fine long passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 204);
    let configured = client
        .put(server.public_url("/v1/tenants/acme/sso/providers/corp"))
        .bearer_auth(&owner)
        .json(&json!({
            "issuer": provider.issuer,
            "client_id": "strongroom-acme",
            "client_secret": CLIENT_SECRET,
            "allowed_email_domains": ["example.com"],
            "create_users": true,
            "role": "viewer",
            "link_existing_users": true
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(configured.status(), 201);
    let configured: Value = configured.json().await.unwrap();
    assert_eq!(
        configured["redirect_uri"],
        format!("https://localhost:{public_port}/v1/tenants/acme/auth/sso/callback")
    );

    // A new user is created at the first sign-in, with the provider's role.
    let alice = sign_in(&server, "alice-sub").await;
    assert_eq!(alice.status, StatusCode::OK, "{}", alice.body);
    assert_eq!(alice.body["user"]["email"], "alice@example.com");
    assert_eq!(alice.body["user"]["display_name"], "Alice Example");
    assert_eq!(alice.body["user"]["roles"], json!(["viewer"]));
    let alice_session = alice.body["session_token"].as_str().unwrap().to_owned();
    let me: Value = client
        .get(server.public_url("/v1/tenants/acme/me"))
        .bearer_auth(&alice_session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["id"], alice.body["user"]["id"]);
    // The trail names who signed in through the provider, as for a password sign-in.
    let trail = server
        .get_json(
            &server.public_url("/v1/tenants/acme/audit?action=callback&outcome=allowed"),
            &owner,
        )
        .await;
    assert!(
        trail["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|event| event["event"]["username_tried"] == "alice@example.com"),
        "{trail:#}"
    );
    // The answer is single-use: the same code and state again are refused.
    let replayed = browser(&server)
        .get(&alice.callback_url)
        .header(COOKIE, format!("{BINDING_COOKIE}={}", alice.binding))
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED);
    // Signing in again finds the same user through issuer and subject.
    let again = sign_in(&server, "alice-sub").await;
    assert_eq!(again.body["user"]["id"], alice.body["user"]["id"]);
    // An existing user with a verified email of an allowed domain is linked, not duplicated.
    let ann = sign_in(&server, "ann-sub").await;
    assert_eq!(ann.status, StatusCode::OK, "{}", ann.body);
    assert_eq!(ann.body["user"]["id"], first["user"]["id"]);
    assert_eq!(ann.body["user"]["roles"], json!(["owner"]));

    for (account, reason) in [
        ("mallory-sub", "elsewhere.test addresses may not sign in"),
        ("unverified-sub", "not verified"),
    ] {
        let refused = sign_in(&server, account).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{account}");
        assert_eq!(refused.body["code"], "sso_failed");
        assert!(
            refused.body["detail"].as_str().unwrap().contains(reason),
            "{account}: {}",
            refused.body
        );
    }
    // An address of a domain not allowed is a security event for the tenant's admins.
    let rejections =
        server.public_url("/v1/tenants/acme/security-events?action=security.sso_rejected");
    let rejected = eventually(async || {
        server.get_json(&rejections, &owner).await["events"]
            .as_array()
            .is_some_and(|events| events.len() == 1)
    })
    .await;
    assert!(rejected, "the refused domain is one sso_rejected event");

    // A code carried to another browser (without the binding cookie) is refused.
    let browser_b = browser(&server);
    let started = browser_b
        .get(server.public_url("/v1/tenants/acme/auth/sso/corp"))
        .send()
        .await
        .unwrap();
    let authorization = started.headers()[LOCATION].to_str().unwrap().to_owned();
    let at_provider = browser_b
        .get(format!("{authorization}&login_hint=alice-sub"))
        .send()
        .await
        .unwrap();
    if let Some(callback) = at_provider.headers().get(LOCATION) {
        let callback = callback.to_str().unwrap().to_owned();
        if callback.contains("code=") {
            let stolen = browser_b.get(&callback).send().await.unwrap();
            assert_eq!(stolen.status(), StatusCode::UNAUTHORIZED);
        }
    }

    // SSO made mandatory: passwords are refused, SSO still works.
    let policy = client
        .put(server.public_url("/v1/tenants/acme/policy/security"))
        .bearer_auth(ann.body["session_token"].as_str().unwrap())
        .json(&json!({"password": {"length_min": 12, "length_max": 128, "complexity": {"kind": "none"}, "reject_common": true, "history": 5, "expiry_days": null}, "mfa": {"kind": "optional"}, "sso_required": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(policy.status(), 200);
    let password = client
        .post(server.public_url("/v1/tenants/acme/auth/login"))
        .json(&json!({"email": "ann@example.com", "password": "a fine long passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(password.status(), 403);
    assert_eq!(sign_in(&server, "ann-sub").await.status, StatusCode::OK);

    server.stop().await;
    let logs = server.logs();
    for secret in [CLIENT_SECRET, alice_session.as_str()] {
        assert!(!logs.contains(secret), "the log holds a secret: {secret}");
    }
}
