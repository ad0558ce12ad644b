//! In-process tests of both routers with `tower::ServiceExt::oneshot`: the HTTP contract,
//! errors, isolation, encryption at rest, the journal and key rotation.

use crate::harness::{self, Harness, Request};
use axum::http::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn record_lifecycle_with_etags_and_merge_patch() {
    let harness = Harness::new().await;
    let token = harness
        .tenant_with_token("acme", &["records:read", "records:write"])
        .await;
    let schema = json!({"schema": {"fields": {"email": {"type": "string", "required": true, "indexed": true}, "age": {"type": "integer"}}}});
    let created = harness
        .public(
            Request::put("/v1/tenants/acme/collections/people")
                .token(&token)
                .json(schema.clone()),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let again = harness
        .public(
            Request::put("/v1/tenants/acme/collections/people")
                .token(&token)
                .json(schema),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);

    let record = harness
        .public(
            Request::post("/v1/tenants/acme/collections/people/records")
                .token(&token)
                .json(json!({"email": "ann@example.com", "age": 41})),
        )
        .await;
    assert_eq!(record.status, StatusCode::CREATED, "{}", record.body);
    assert_eq!(record.header("etag"), "\"1\"");
    let id = record.body["id"].as_str().unwrap().to_owned();
    assert_eq!(record.body["version"], 1);
    assert!(record.header("location").ends_with(&id));
    let path = format!("/v1/tenants/acme/collections/people/records/{id}");

    let read = harness.public(Request::get(&path).token(&token)).await;
    assert_eq!(
        read.body["data"],
        json!({"email": "ann@example.com", "age": 41})
    );

    let patched = harness
        .public(
            Request::patch(&path)
                .token(&token)
                .header("if-match", "\"1\"")
                .json(json!({"age": null, "city": "Gent"})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(
        patched.body["data"],
        json!({"email": "ann@example.com", "city": "Gent"})
    );
    assert_eq!(patched.header("etag"), "\"2\"");

    let stale = harness
        .public(
            Request::put(&path)
                .token(&token)
                .header("if-match", "\"1\"")
                .json(json!({"email": "x@y.z"})),
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(stale.body["code"], "precondition_failed");

    let replaced = harness
        .public(
            Request::put(&path)
                .token(&token)
                .header("if-match", "\"2\"")
                .json(json!({"email": "bo@example.com"})),
        )
        .await;
    assert_eq!(
        (replaced.status, replaced.body["version"].clone()),
        (StatusCode::OK, json!(3))
    );
    let invalid = harness
        .public(
            Request::patch(&path)
                .token(&token)
                .json(json!({"email": null})),
        )
        .await;
    assert_eq!(
        invalid.body["code"], "schema_violation",
        "a patch may not remove a required field"
    );

    let deleted = harness
        .public(
            Request::delete(&path)
                .token(&token)
                .header("if-match", "\"3\""),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = harness.public(Request::get(&path).token(&token)).await;
    assert_eq!(
        (gone.status, gone.body["code"].clone()),
        (StatusCode::NOT_FOUND, json!("not_found"))
    );
}

#[tokio::test]
async fn listing_pages_orders_and_filters() {
    let harness = Harness::new().await;
    let token = harness
        .tenant_with_token("acme", &["records:read", "records:write"])
        .await;
    let schema = json!({"schema": {"fields": {"team": {"type": "string", "indexed": true}, "n": {"type": "integer", "indexed": true}}}});
    harness
        .public(
            Request::put("/v1/tenants/acme/collections/items")
                .token(&token)
                .json(schema),
        )
        .await;
    let mut ids = Vec::new();
    for n in 0..25 {
        harness.clock.advance_micros(1_000);
        let team = if n % 2 == 0 { "red" } else { "blue" };
        let created = harness
            .public(
                Request::post("/v1/tenants/acme/collections/items/records")
                    .token(&token)
                    .json(json!({"team": team, "n": n})),
            )
            .await;
        ids.push(created.body["id"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut uri = "/v1/tenants/acme/collections/items/records?limit=10".to_owned();
    loop {
        let page = harness.public(Request::get(&uri).token(&token)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        seen.extend(
            page.body["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|record| record["id"].as_str().unwrap().to_owned()),
        );
        match page.body["next_cursor"].as_str() {
            Some(cursor) => {
                uri = format!("/v1/tenants/acme/collections/items/records?limit=10&cursor={cursor}")
            }
            None => break,
        }
    }
    assert_eq!(
        seen, ids,
        "cursor pages return every record once, oldest first"
    );

    let red = harness
        .public(
            Request::get("/v1/tenants/acme/collections/items/records?where.team=red&limit=1000")
                .token(&token),
        )
        .await;
    assert_eq!(red.body["records"].as_array().unwrap().len(), 13);
    let one = harness
        .public(
            Request::get("/v1/tenants/acme/collections/items/records?where.team=red&where.n=4")
                .token(&token),
        )
        .await;
    assert_eq!(one.body["records"][0]["data"]["n"], 4);

    harness.clock.advance_micros(1_000);
    let marker = harness.clock_now_rfc3339();
    harness.clock.advance_micros(1_000);
    let first = format!("/v1/tenants/acme/collections/items/records/{}", ids[0]);
    harness
        .public(
            Request::patch(&first)
                .token(&token)
                .json(json!({"team": "green"})),
        )
        .await;
    let recent = harness
        .public(
            Request::get(&format!(
                "/v1/tenants/acme/collections/items/records?order=updated&updated_after={marker}"
            ))
            .token(&token),
        )
        .await;
    let recent_ids: Vec<&str> = recent.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|record| record["id"].as_str().unwrap())
        .collect();
    assert_eq!(recent_ids, [ids[0].as_str()]);
    let green = harness
        .public(
            Request::get("/v1/tenants/acme/collections/items/records?where.team=green")
                .token(&token),
        )
        .await;
    assert_eq!(
        green.body["records"].as_array().unwrap().len(),
        1,
        "the index follows updates"
    );

    for (query, code) in [
        ("limit=1001", "invalid_query"),
        ("limit=0", "invalid_query"),
        ("cursor=not-a-cursor", "invalid_cursor"),
        ("where.unknown=1", "invalid_query"),
        ("where.n=abc", "invalid_query"),
        ("order=sideways", "invalid_query"),
        ("updated_after=yesterday", "invalid_query"),
        ("limt=5", "invalid_query"),
    ] {
        let response = harness
            .public(
                Request::get(&format!(
                    "/v1/tenants/acme/collections/items/records?{query}"
                ))
                .token(&token),
            )
            .await;
        assert_eq!(
            (response.status, response.body["code"].as_str().unwrap()),
            (StatusCode::BAD_REQUEST, code),
            "{query}"
        );
    }
}

#[tokio::test]
async fn bad_input_gets_clear_problems_never_a_500() {
    let harness = Harness::new().await;
    let token = harness
        .tenant_with_token("acme", &["records:read", "records:write"])
        .await;
    let strict = json!({"schema": {"fields": {"name": {"type": "string", "required": true}}, "additional_fields": false}});
    harness
        .public(
            Request::put("/v1/tenants/acme/collections/strict")
                .token(&token)
                .json(strict),
        )
        .await;
    let records = "/v1/tenants/acme/collections/strict/records";
    let cases: Vec<(&str, Request, StatusCode, &str)> = vec![
        (
            "malformed JSON",
            Request::post(records)
                .token(&token)
                .raw("application/json", b"{\"name\": ".to_vec()),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "bad UTF-8",
            Request::post(records)
                .token(&token)
                .raw("application/json", b"{\"name\": \"\xff\xfe\"}".to_vec()),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "empty body",
            Request::post(records)
                .token(&token)
                .raw("application/json", Vec::new()),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "wrong type",
            Request::post(records)
                .token(&token)
                .json(json!({"name": 5})),
            StatusCode::BAD_REQUEST,
            "schema_violation",
        ),
        (
            "unknown field",
            Request::post(records)
                .token(&token)
                .json(json!({"name": "a", "extra": 1})),
            StatusCode::BAD_REQUEST,
            "schema_violation",
        ),
        (
            "not an object",
            Request::post(records).token(&token).json(json!([1, 2])),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "not JSON at all",
            Request::post(records)
                .token(&token)
                .raw("text/plain", b"name=a".to_vec()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "oversized",
            Request::post(records)
                .token(&token)
                .json(json!({"name": "x".repeat(2 * 1024 * 1024)})),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "oversized without length",
            Request::post(records)
                .token(&token)
                .streamed_json(vec![b'['; 2 * 1024 * 1024]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "unknown collection",
            Request::post("/v1/tenants/acme/collections/nope/records")
                .token(&token)
                .json(json!({})),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "bad collection name",
            Request::put("/v1/tenants/acme/collections/Bad-Name")
                .token(&token)
                .json(json!({})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "unknown schema member",
            Request::put("/v1/tenants/acme/collections/c2")
                .token(&token)
                .json(json!({"schema": {"feilds": {}}})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "bad field type",
            Request::put("/v1/tenants/acme/collections/c2")
                .token(&token)
                .json(json!({"schema": {"fields": {"a": {"type": "date"}}}})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "indexed object",
            Request::put("/v1/tenants/acme/collections/c2")
                .token(&token)
                .json(json!({"schema": {"fields": {"a": {"type": "object", "indexed": true}}}})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "bad If-Match",
            Request::put(&format!("{records}/abc"))
                .token(&token)
                .header("if-match", "three")
                .json(json!({"name": "a"})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "unknown record",
            Request::get(&format!("{records}/0123456789abcdef")).token(&token),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "odd record id",
            Request::get(&format!("{records}/..%2F..%2Fetc")).token(&token),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "no token",
            Request::get(records),
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            "unknown token",
            Request::get(records).token("srt_nope"),
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            "wrong method",
            Request::delete("/v1/tenants/acme/collections"),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            "unknown route",
            Request::get("/v2/anything"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (name, request, status, code) in cases {
        let response = harness.public(request).await;
        assert_eq!(response.status, status, "{name}: {}", response.body);
        assert_eq!(response.body["code"], code, "{name}");
        assert_eq!(
            response.header("content-type"),
            "application/problem+json",
            "{name}"
        );
        assert!(
            response.body["detail"]
                .as_str()
                .is_some_and(|detail| !detail.is_empty()),
            "{name}"
        );
        assert_eq!(response.body["status"], status.as_u16(), "{name}");
        assert!(
            response.status.is_client_error(),
            "{name}: bad input is never a server error"
        );
    }
    let listing = harness.public(Request::get(records).token(&token)).await;
    assert_eq!(
        listing.body["records"].as_array().unwrap().len(),
        0,
        "nothing refused was stored"
    );
}

#[tokio::test]
async fn tenants_cannot_see_each_other_and_suspension_and_scopes_hold() {
    let harness = Harness::new().await;
    let acme = harness
        .tenant_with_token("acme", &["records:read", "records:write"])
        .await;
    let globex = harness
        .tenant_with_token("globex", &["records:read", "records:write"])
        .await;
    harness
        .public(
            Request::put("/v1/tenants/globex/collections/secrets")
                .token(&globex)
                .json(json!({})),
        )
        .await;
    let secret = harness
        .public(
            Request::post("/v1/tenants/globex/collections/secrets/records")
                .token(&globex)
                .json(json!({"v": 1})),
        )
        .await;
    let secret_path = format!(
        "/v1/tenants/globex/collections/secrets/records/{}",
        secret.body["id"].as_str().unwrap()
    );

    let probe = harness
        .public(Request::get(&secret_path).token(&acme))
        .await;
    let missing = harness
        .public(Request::get("/v1/tenants/nosuchtenant/collections/secrets/records/x").token(&acme))
        .await;
    assert_eq!(probe.status, StatusCode::NOT_FOUND);
    assert_eq!(
        probe.body, missing.body,
        "another tenant's data looks exactly like a tenant that does not exist"
    );
    let write_probe = harness
        .public(Request::delete(&secret_path).token(&acme))
        .await;
    assert_eq!(write_probe.status, StatusCode::NOT_FOUND);
    assert_eq!(
        harness
            .public(Request::get(&secret_path).token(&globex))
            .await
            .status,
        StatusCode::OK,
        "the probe changed nothing"
    );
    let probes = harness.security_count("cross_tenant_probe");
    assert_eq!(probes, 2, "each cross-tenant use is a security event");
    let harness = &harness;
    let probes_of = |slug: &'static str| async move {
        let listed = harness
            .admin(
                Request::get(&format!(
                    "/admin/v1/security-events?tenant={slug}&action=security.cross_tenant_probe"
                ))
                .token(&harness.operator),
            )
            .await;
        assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
        listed.body["events"].as_array().unwrap().clone()
    };
    let mut recorded = Vec::new();
    for _ in 0..100 {
        recorded = probes_of("globex").await;
        if recorded.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(recorded.len(), 2, "in the trail of the tenant probed");
    assert_eq!(
        probes_of("acme").await,
        Vec::<Value>::new(),
        "acme's admins cannot tell a tenant that exists from one that does not"
    );

    let reader = harness.token_for("globex", &["records:read"]).await;
    let denied = harness
        .public(
            Request::post("/v1/tenants/globex/collections/secrets/records")
                .token(&reader)
                .json(json!({})),
        )
        .await;
    assert_eq!(
        (denied.status, denied.body["code"].clone()),
        (StatusCode::FORBIDDEN, json!("missing_scope"))
    );

    let suspended = harness
        .admin(Request::post("/admin/v1/tenants/globex/suspend").token(&harness.operator))
        .await;
    assert_eq!(suspended.body["status"], "suspended");
    let refused = harness
        .public(Request::get(&secret_path).token(&globex))
        .await;
    assert_eq!(
        (refused.status, refused.body["code"].clone()),
        (StatusCode::FORBIDDEN, json!("tenant_suspended"))
    );
    harness
        .admin(Request::post("/admin/v1/tenants/globex/resume").token(&harness.operator))
        .await;
    assert_eq!(
        harness
            .public(Request::get(&secret_path).token(&globex))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn listeners_are_separate_and_the_admin_api_needs_an_operator() {
    let harness = Harness::new().await;
    let token = harness.tenant_with_token("acme", &["records:read"]).await;
    for path in ["/admin/v1/tenants", "/healthz", "/readyz", "/metrics"] {
        assert_eq!(
            harness
                .public(Request::get(path).token(&harness.operator))
                .await
                .status,
            StatusCode::NOT_FOUND,
            "{path} on public"
        );
    }
    for path in ["/v1/tenants/acme/collections", "/openapi.json"] {
        assert_eq!(
            harness.admin(Request::get(path).token(&token)).await.status,
            StatusCode::NOT_FOUND,
            "{path} on admin"
        );
    }
    assert_eq!(
        harness
            .admin(Request::get("/admin/v1/tenants").token(&token))
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "a tenant token is no operator token"
    );
    assert_eq!(
        harness.admin(Request::get("/healthz")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        harness.admin(Request::get("/readyz")).await.status,
        StatusCode::OK
    );
    let metrics = harness.admin(Request::get("/metrics")).await;
    assert!(
        metrics.text.contains("strongroom_http_requests_total"),
        "{}",
        metrics.text
    );
    let duplicate = harness
        .admin(
            Request::post("/admin/v1/tenants")
                .token(&harness.operator)
                .json(json!({"slug": "acme", "name": "Again"})),
        )
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    let bad_slug = harness
        .admin(
            Request::post("/admin/v1/tenants")
                .token(&harness.operator)
                .json(json!({"slug": "Acme!", "name": "x"})),
        )
        .await;
    assert_eq!(bad_slug.body["code"], "invalid_request");
    let bad_scope = harness
        .admin(
            Request::post("/admin/v1/tenants/acme/tokens")
                .token(&harness.operator)
                .json(json!({"name": "x", "scopes": ["records:delete"]})),
        )
        .await;
    assert_eq!(bad_scope.status, StatusCode::BAD_REQUEST);
    let listed = harness
        .admin(Request::get("/admin/v1/tenants").token(&harness.operator))
        .await;
    assert_eq!(listed.body["tenants"].as_array().unwrap().len(), 1);
    assert!(
        listed.text.find("srt_").is_none(),
        "token secrets are never listed"
    );
}

#[tokio::test]
async fn every_route_is_in_the_openapi_document() {
    let harness = Harness::new().await;
    let document = harness.public(Request::get("/openapi.json")).await;
    assert_eq!(document.status, StatusCode::OK);
    assert!(
        document.body["openapi"]
            .as_str()
            .unwrap()
            .starts_with("3.1")
    );
    let codes: Vec<&str> = document.body["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap())
        .collect();
    for code in strongroom_api::problem::ErrorCode::ALL {
        assert!(
            codes.contains(&code.code()),
            "{} missing from the document",
            code.code()
        );
    }
    let expected = [
        ("get", "/openapi.json"),
        ("get", "/v1/tenants/{slug}/collections"),
        ("put", "/v1/tenants/{slug}/collections/{name}"),
        ("get", "/v1/tenants/{slug}/collections/{name}/records"),
        ("post", "/v1/tenants/{slug}/collections/{name}/records"),
        ("get", "/v1/tenants/{slug}/collections/{name}/records/{id}"),
        ("put", "/v1/tenants/{slug}/collections/{name}/records/{id}"),
        (
            "patch",
            "/v1/tenants/{slug}/collections/{name}/records/{id}",
        ),
        (
            "delete",
            "/v1/tenants/{slug}/collections/{name}/records/{id}",
        ),
        ("get", "/v1/tenants/{slug}/documents"),
        ("put", "/v1/tenants/{slug}/documents/{path}"),
        ("get", "/v1/tenants/{slug}/documents/{path}"),
        ("post", "/v1/tenants/{slug}/documents/{path}"),
        ("delete", "/v1/tenants/{slug}/documents/{path}"),
        ("get", "/v1/tenants/{slug}/trash"),
        ("post", "/v1/tenants/{slug}/trash/{id}/restore"),
        ("get", "/v1/tenants/{slug}/users"),
        ("post", "/v1/tenants/{slug}/users"),
        ("post", "/v1/tenants/{slug}/auth/login"),
        ("post", "/v1/tenants/{slug}/auth/logout"),
        ("get", "/v1/tenants/{slug}/me"),
        ("post", "/v1/tenants/{slug}/me/password"),
        ("post", "/v1/tenants/{slug}/auth/mfa"),
        ("post", "/v1/tenants/{slug}/me/mfa/totp"),
        ("post", "/v1/tenants/{slug}/me/mfa/totp/confirm"),
        ("patch", "/v1/tenants/{slug}/me"),
        ("patch", "/v1/tenants/{slug}/users/{id}"),
        ("delete", "/v1/tenants/{slug}/users/{id}"),
        ("delete", "/v1/tenants/{slug}/users/{id}/sessions"),
        ("get", "/v1/tenants/{slug}/policy/security"),
        ("put", "/v1/tenants/{slug}/policy/security"),
        ("post", "/v1/tenants/{slug}/tokens"),
        ("get", "/v1/tenants/{slug}/roles"),
        ("put", "/v1/tenants/{slug}/roles/{name}"),
        ("delete", "/v1/tenants/{slug}/roles/{name}"),
        ("get", "/v1/tenants/{slug}/groups"),
        ("put", "/v1/tenants/{slug}/groups/{name}"),
        ("delete", "/v1/tenants/{slug}/groups/{name}"),
        ("get", "/v1/tenants/{slug}/grants"),
        ("post", "/v1/tenants/{slug}/grants"),
        ("delete", "/v1/tenants/{slug}/grants/{id}"),
        ("get", "/v1/tenants/{slug}/sso/providers"),
        ("put", "/v1/tenants/{slug}/sso/providers/{name}"),
        ("delete", "/v1/tenants/{slug}/sso/providers/{name}"),
        ("get", "/v1/tenants/{slug}/auth/sso/{name}"),
        ("get", "/v1/tenants/{slug}/auth/sso/callback"),
        ("get", "/v1/tenants/{slug}/support-access"),
        ("post", "/v1/tenants/{slug}/auth/recover"),
        ("get", "/v1/tenants/{slug}/tokens"),
        ("get", "/v1/tenants/{slug}/policy/firewall"),
        ("get", "/v1/tenants/{slug}/policy/downloads"),
        ("get", "/v1/tenants/{slug}/audit"),
        ("get", "/v1/tenants/{slug}/audit/public-key"),
        ("get", "/v1/tenants/{slug}/audit/checkpoints"),
        ("get", "/v1/tenants/{slug}/security-events"),
        ("get", "/v1/tenants/{slug}/policy/audit-retention"),
        ("get", "/v1/tenants/{slug}/policy/alerts"),
        ("put", "/v1/tenants/{slug}/policy/alerts"),
        ("get", "/v1/tenants/{slug}/alerts/deliveries"),
        ("put", "/v1/tenants/{slug}/policy/audit-retention"),
        ("put", "/v1/tenants/{slug}/policy/downloads"),
        ("delete", "/v1/tenants/{slug}/download-blocks/{id}"),
        ("put", "/v1/tenants/{slug}/policy/firewall"),
        ("delete", "/v1/tenants/{slug}/tokens/{id}"),
        ("post", "/v1/tenants/{slug}/support-access/{id}/approve"),
        ("post", "/v1/tenants/{slug}/support-access/{id}/deny"),
        ("post", "/v1/tenants/{slug}/support-access/{id}/revoke"),
    ];
    let documented = harness::operations(&document.body);
    let mut expected: Vec<(String, String)> = expected
        .iter()
        .map(|(method, path)| (method.to_string(), path.to_string()))
        .collect();
    expected.sort();
    assert_eq!(documented, expected);
    for (method, path) in &documented {
        let concrete = path
            .replace("{slug}", "acme")
            .replace("{name}", "things")
            .replace("{id}", "abc")
            .replace("{path}", "docs/a.txt");
        let response = harness.public(Request::new(method, &concrete)).await;
        assert_ne!(
            response.body["detail"], "no such route on this listener",
            "{method} {path} is documented but not routed"
        );
        assert_ne!(
            response.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
    }
    let admin_document = strongroom_api::admin_routes().into_openapi();
    let admin_json: Value = serde_json::from_str(
        &strongroom_api::openapi::with_openapi_path_syntax(admin_document)
            .to_json()
            .unwrap(),
    )
    .unwrap();
    for (method, path) in harness::operations(&admin_json) {
        let concrete = path.replace("{slug}", "acme");
        let response = harness.admin(Request::new(&method, &concrete)).await;
        assert_ne!(
            response.body["detail"], "no such route on this listener",
            "{method} {path}"
        );
        assert_ne!(
            response.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn indexing_a_field_later_reindexes_existing_records() {
    let harness = Harness::new().await;
    let token = harness
        .tenant_with_token("acme", &["records:read", "records:write"])
        .await;
    harness
        .public(
            Request::put("/v1/tenants/acme/collections/people")
                .token(&token)
                .json(json!({})),
        )
        .await;
    for city in ["Gent", "Gent", "Brugge"] {
        harness
            .public(
                Request::post("/v1/tenants/acme/collections/people/records")
                    .token(&token)
                    .json(json!({"city": city, "id": 1_000_000_000_000_000_001i64})),
            )
            .await;
    }
    let before = harness
        .public(
            Request::get("/v1/tenants/acme/collections/people/records?where.city=Gent")
                .token(&token),
        )
        .await;
    assert_eq!(before.body["code"], "invalid_query", "not indexed yet");
    let schema = json!({"schema": {"fields": {"city": {"type": "string", "indexed": true}, "id": {"type": "integer", "indexed": true}}}});
    let changed = harness
        .public(
            Request::put("/v1/tenants/acme/collections/people")
                .token(&token)
                .json(schema),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK);
    let gent = harness
        .public(
            Request::get("/v1/tenants/acme/collections/people/records?where.city=Gent")
                .token(&token),
        )
        .await;
    assert_eq!(
        gent.body["records"].as_array().unwrap().len(),
        2,
        "records written before the index exist in it"
    );
    let near = harness
        .public(
            Request::get(
                "/v1/tenants/acme/collections/people/records?where.id=1000000000000000002",
            )
            .token(&token),
        )
        .await;
    assert_eq!(
        near.body["records"].as_array().unwrap().len(),
        0,
        "large integers are indexed exactly"
    );
    let deep = (0..40).fold(json!(1), |inner, _| json!([inner]));
    let refused = harness
        .public(
            Request::post("/v1/tenants/acme/collections/people/records")
                .token(&token)
                .json(json!({"deep": deep})),
        )
        .await;
    assert_eq!(
        refused.body["code"], "schema_violation",
        "nesting is bounded so journal entries always parse again"
    );
}
