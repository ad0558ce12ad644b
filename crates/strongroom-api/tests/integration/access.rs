//! Custom roles, groups and limited grants through the routers: a user's rights are their
//! built-in roles plus every grant to them or their groups, limited where the grant says.

use crate::harness::{Harness, Request};
use crate::users::{activated_session, first_owner_of_acme};
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use strongroom_storage::TenantStore;

/// A user created by `owner` with `roles`, signed in with a changed password.
async fn user_session(
    harness: &Harness,
    owner: &str,
    email: &str,
    roles: Value,
) -> (String, String) {
    let created = harness
        .public(
            Request::post("/v1/tenants/acme/users")
                .token(owner)
                .json(json!({"email": email, "display_name": "Someone", "roles": roles})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let session = activated_session(
        harness,
        email,
        created.body["one_time_password"].as_str().unwrap(),
        "a fine long passphrase",
    )
    .await;
    let id = created.body["user"]["id"].as_str().unwrap().to_owned();
    (id, session)
}

async fn put_documents(harness: &Harness, owner: &str, paths: &[&str]) {
    for path in paths {
        let put = harness
            .public(
                Request::put(&format!("/v1/tenants/acme/documents/{path}"))
                    .token(owner)
                    .raw("text/plain", b"content".to_vec()),
            )
            .await;
        assert_eq!(put.status, StatusCode::CREATED, "{}", put.body);
    }
}

async fn status_of(harness: &Harness, request: Request) -> (StatusCode, Value) {
    let response = harness.public(request).await;
    (response.status, response.body)
}

#[tokio::test]
async fn custom_roles_and_groups_give_rights_limited_to_collections_and_directories() {
    let harness = Harness::new().await;
    harness.tenant_with_token("acme", &["records:read"]).await;
    let owner = first_owner_of_acme(&harness).await;
    let mut record_ids = Vec::new();
    for collection in ["invoices", "customers"] {
        let put = harness
            .public(
                Request::put(&format!("/v1/tenants/acme/collections/{collection}"))
                    .token(&owner)
                    .json(json!({})),
            )
            .await;
        assert_eq!(put.status, StatusCode::CREATED, "{}", put.body);
        let created = harness
            .public(
                Request::post(&format!(
                    "/v1/tenants/acme/collections/{collection}/records"
                ))
                .token(&owner)
                .json(json!({"n": 1})),
            )
            .await;
        record_ids.push(created.body["id"].as_str().unwrap().to_owned());
    }
    put_documents(&harness, &owner, &["hr/a.txt", "finance/b.txt"]).await;
    let invoice = format!(
        "/v1/tenants/acme/collections/invoices/records/{}",
        record_ids[0]
    );
    let customer = format!(
        "/v1/tenants/acme/collections/customers/records/{}",
        record_ids[1]
    );

    // A new user without a role may do nothing.
    let (bob_id, bob) = user_session(&harness, &owner, "bob@example.com", json!([])).await;
    assert_eq!(
        status_of(&harness, Request::get(&invoice).token(&bob))
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    // A custom role limited to one collection.
    let (status, role) = status_of(
        &harness,
        Request::put("/v1/tenants/acme/roles/invoice-reader")
            .token(&owner)
            .json(json!({"permissions": ["records:read"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{role}");
    let roles = harness
        .public(Request::get("/v1/tenants/acme/roles").token(&owner))
        .await;
    let names: Vec<&str> = roles.body["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|role| role["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "owner",
            "admin",
            "member",
            "viewer",
            "auditor",
            "invoice-reader"
        ]
    );
    let (status, invoice_grant) = status_of(
        &harness,
        Request::post("/v1/tenants/acme/grants")
            .token(&owner)
            .json(json!({
                "subject": {"kind": "user", "id": bob_id},
                "role": "invoice-reader",
                "limit": {"kind": "collections", "names": ["invoices"]}
            })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{invoice_grant}");
    assert_eq!(
        status_of(&harness, Request::get(&invoice).token(&bob))
            .await
            .0,
        StatusCode::OK,
        "the grant applies to the next request"
    );
    let (status, body) = status_of(&harness, Request::get(&customer).token(&bob)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("missing_permission")),
        "other collections stay closed"
    );
    let (_, listed) = status_of(
        &harness,
        Request::get("/v1/tenants/acme/collections").token(&bob),
    )
    .await;
    let listed: Vec<&str> = listed["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|collection| collection["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        ["invoices"],
        "listings show only what the grant covers"
    );
    assert_eq!(
        status_of(
            &harness,
            Request::post("/v1/tenants/acme/collections/invoices/records")
                .token(&bob)
                .json(json!({"n": 2}))
        )
        .await
        .0,
        StatusCode::FORBIDDEN,
        "a read role does not write"
    );

    // A group with a built-in role limited to a directory.
    let (status, group) = status_of(
        &harness,
        Request::put("/v1/tenants/acme/groups/hr")
            .token(&owner)
            .json(json!({"members": [bob_id]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let (status, body) = status_of(
        &harness,
        Request::post("/v1/tenants/acme/grants")
            .token(&owner)
            .json(json!({
                "subject": {"kind": "group", "name": "hr"},
                "role": "viewer",
                "limit": {"kind": "document_prefixes", "prefixes": ["hr/"]}
            })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        status_of(
            &harness,
            Request::get("/v1/tenants/acme/documents/hr/a.txt").token(&bob)
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        status_of(
            &harness,
            Request::get("/v1/tenants/acme/documents/finance/b.txt").token(&bob)
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    let (_, listing) = status_of(
        &harness,
        Request::get("/v1/tenants/acme/documents").token(&bob),
    )
    .await;
    let paths: Vec<&str> = listing["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|document| document["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["hr/a.txt"]);
    // Neither a page nor its cursor reveals that hidden documents exist.
    let (_, first) = status_of(
        &harness,
        Request::get("/v1/tenants/acme/documents?limit=1").token(&bob),
    )
    .await;
    assert_eq!(first["documents"][0]["path"], "hr/a.txt", "{first}");
    assert!(
        first["next_cursor"].is_null(),
        "finance/b.txt must not earn a cursor: {first}"
    );
    put_documents(&harness, &owner, &["finance/c.txt", "hr/d.txt"]).await;
    // The fake clock gives every document the same time, so the order is by id: either may
    // come first, but each page holds one visible document and only the first has a cursor.
    let (_, first) = status_of(
        &harness,
        Request::get("/v1/tenants/acme/documents?limit=1").token(&bob),
    )
    .await;
    assert_eq!(first["documents"].as_array().unwrap().len(), 1, "{first}");
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a second visible document follows");
    let (_, second) = status_of(
        &harness,
        Request::get(&format!(
            "/v1/tenants/acme/documents?limit=1&cursor={cursor}"
        ))
        .token(&bob),
    )
    .await;
    assert_eq!(second["documents"].as_array().unwrap().len(), 1, "{second}");
    let mut seen = [
        first["documents"][0]["path"].as_str().unwrap(),
        second["documents"][0]["path"].as_str().unwrap(),
    ];
    seen.sort();
    assert_eq!(seen, ["hr/a.txt", "hr/d.txt"]);
    assert!(second["next_cursor"].is_null(), "{second}");
    // Listing a directory: a granted one in full, one outside the grant as if empty.
    put_documents(&harness, &owner, &["hr/pay/e.txt"]).await;
    let listed = |prefix: &'static str| {
        let (harness, bob) = (&harness, bob.clone());
        async move {
            let (status, page) = status_of(
                harness,
                Request::get(&format!("/v1/tenants/acme/documents?prefix={prefix}")).token(&bob),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let mut paths: Vec<String> = page["documents"]
                .as_array()
                .unwrap()
                .iter()
                .map(|document| document["path"].as_str().unwrap().to_owned())
                .collect();
            paths.sort();
            paths
        }
    };
    assert_eq!(listed("hr/pay/").await, ["hr/pay/e.txt"]);
    assert_eq!(
        listed("hr/").await,
        ["hr/a.txt", "hr/d.txt", "hr/pay/e.txt"]
    );
    assert_eq!(listed("finance/").await, Vec::<String>::new());

    // documents:read without documents:download: metadata, not content.
    harness
        .public(
            Request::put("/v1/tenants/acme/roles/finance-lister")
                .token(&owner)
                .json(json!({"permissions": ["documents:read"]})),
        )
        .await;
    harness
        .public(
            Request::post("/v1/tenants/acme/grants")
                .token(&owner)
                .json(json!({
                    "subject": {"kind": "user", "id": bob_id},
                    "role": "finance-lister",
                    "limit": {"kind": "document_prefixes", "prefixes": ["finance/"]}
                })),
        )
        .await;
    assert_eq!(
        status_of(
            &harness,
            Request::get("/v1/tenants/acme/documents/finance/b.txt?versions").token(&bob)
        )
        .await
        .0,
        StatusCode::OK
    );
    let (status, body) = status_of(
        &harness,
        Request::get("/v1/tenants/acme/documents/finance/b.txt").token(&bob),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("documents:download"),
        "{body}"
    );

    // Leaving the group ends its rights at once.
    harness
        .public(
            Request::put("/v1/tenants/acme/groups/hr")
                .token(&owner)
                .json(json!({"members": []})),
        )
        .await;
    assert_eq!(
        status_of(
            &harness,
            Request::get("/v1/tenants/acme/documents/hr/a.txt").token(&bob)
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );

    // A granted role cannot be removed; its grant can, then the role.
    let (status, _) = status_of(
        &harness,
        Request::delete("/v1/tenants/acme/roles/invoice-reader").token(&owner),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let grant_path = format!(
        "/v1/tenants/acme/grants/{}",
        invoice_grant["id"].as_str().unwrap()
    );
    assert_eq!(
        status_of(&harness, Request::delete(&grant_path).token(&owner))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        status_of(&harness, Request::get(&invoice).token(&bob))
            .await
            .0,
        StatusCode::FORBIDDEN,
        "a removed grant ends its rights at once"
    );
    assert_eq!(
        status_of(
            &harness,
            Request::delete("/v1/tenants/acme/roles/invoice-reader").token(&owner)
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );

    // Deleting a user removes their grants and memberships.
    harness
        .public(
            Request::put("/v1/tenants/acme/groups/hr")
                .token(&owner)
                .json(json!({"members": [bob_id]})),
        )
        .await;
    assert_eq!(
        status_of(
            &harness,
            Request::delete(&format!("/v1/tenants/acme/users/{bob_id}")).token(&owner)
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let (_, grants) = status_of(
        &harness,
        Request::get("/v1/tenants/acme/grants").token(&owner),
    )
    .await;
    assert!(
        !grants.to_string().contains(&bob_id),
        "no grant names a deleted user: {grants}"
    );
    let (_, groups) = status_of(
        &harness,
        Request::get("/v1/tenants/acme/groups").token(&owner),
    )
    .await;
    assert_eq!(groups["groups"], json!([{"name": "hr", "members": []}]));

    // The model is journaled: a replay onto an empty store brings it along.
    let replica_directory = tempfile::tempdir().unwrap();
    let replica: Arc<dyn TenantStore> = Arc::new(
        strongroom_storage::sqlite::SqliteTenantStore::open(
            &replica_directory.path().join("replica.db"),
        )
        .unwrap(),
    );
    harness
        .platform
        .replay_tenant_journal("acme", replica.clone())
        .await
        .unwrap();
    assert!(replica.setting("access-model").unwrap().is_some());
}

#[tokio::test]
async fn nobody_grants_rights_they_do_not_hold() {
    let harness = Harness::new().await;
    harness.tenant_with_token("acme", &["records:read"]).await;
    let owner = first_owner_of_acme(&harness).await;
    let (admin_id, admin) =
        user_session(&harness, &owner, "carl@example.com", json!(["admin"])).await;
    let (member_id, _) = user_session(&harness, &owner, "meg@example.com", json!(["member"])).await;

    let with_admin = harness
        .public(
            Request::put("/v1/tenants/acme/groups/ops")
                .token(&owner)
                .json(json!({"members": [admin_id]})),
        )
        .await;
    assert_eq!(with_admin.status, StatusCode::CREATED);
    let cases = [
        (
            Request::put("/v1/tenants/acme/groups/mine")
                .token(&admin)
                .json(json!({"members": [admin_id]})),
            StatusCode::BAD_REQUEST,
            "themselves",
        ),
        (
            Request::post("/v1/tenants/acme/grants")
                .token(&admin)
                .json(json!({"subject": {"kind": "group", "name": "ops"}, "role": "viewer"})),
            StatusCode::BAD_REQUEST,
            "group they are in",
        ),
        (
            Request::put("/v1/tenants/acme/roles/peeker")
                .token(&admin)
                .json(json!({"permissions": ["audit:read"]})),
            StatusCode::FORBIDDEN,
            "audit:read",
        ),
        (
            Request::post("/v1/tenants/acme/grants")
                .token(&admin)
                .json(json!({"subject": {"kind": "user", "id": member_id}, "role": "auditor"})),
            StatusCode::FORBIDDEN,
            "audit:read",
        ),
        (
            Request::post("/v1/tenants/acme/grants")
                .token(&admin)
                .json(json!({"subject": {"kind": "user", "id": admin_id}, "role": "viewer"})),
            StatusCode::BAD_REQUEST,
            "themselves",
        ),
        (
            Request::post("/v1/tenants/acme/grants")
                .token(&owner)
                .json(json!({"subject": {"kind": "user", "id": member_id}, "role": "owner"})),
            StatusCode::BAD_REQUEST,
            "owner",
        ),
        (
            Request::put("/v1/tenants/acme/roles/admin")
                .token(&owner)
                .json(json!({"permissions": ["records:read"]})),
            StatusCode::CONFLICT,
            "built-in",
        ),
        (
            Request::put("/v1/tenants/acme/roles/Bad%20Name")
                .token(&owner)
                .json(json!({"permissions": ["records:read"]})),
            StatusCode::BAD_REQUEST,
            "not a valid name",
        ),
        (
            Request::put("/v1/tenants/acme/roles/reader")
                .token(&owner)
                .json(json!({"permissions": ["records:delete"]})),
            StatusCode::BAD_REQUEST,
            "records:delete",
        ),
        (
            Request::put("/v1/tenants/acme/groups/team")
                .token(&owner)
                .json(json!({"members": ["0123456789abcdef0123456789abcdef"]})),
            StatusCode::BAD_REQUEST,
            "no user",
        ),
        (
            Request::post("/v1/tenants/acme/grants")
                .token(&owner)
                .json(json!({
                    "subject": {"kind": "user", "id": member_id},
                    "role": "viewer",
                    "limit": {"kind": "document_prefixes", "prefixes": ["hr"]}
                })),
            StatusCode::BAD_REQUEST,
            "hr",
        ),
        (
            Request::post("/v1/tenants/acme/grants")
                .token(&owner)
                .json(json!({
                    "subject": {"kind": "group", "name": "nobody-here"},
                    "role": "viewer"
                })),
            StatusCode::BAD_REQUEST,
            "no group",
        ),
    ];
    for (request, status, mentioned) in cases {
        let response = harness.public(request).await;
        assert_eq!(response.status, status, "{}", response.body);
        assert!(
            response.body["detail"]
                .as_str()
                .unwrap()
                .contains(mentioned),
            "{mentioned}: {}",
            response.body
        );
    }
    // Within their own rights an admin may grant.
    let (status, body) = status_of(
        &harness,
        Request::post("/v1/tenants/acme/grants")
            .token(&admin)
            .json(json!({
                "subject": {"kind": "user", "id": member_id},
                "role": "viewer",
                "limit": {"kind": "collections", "names": ["invoices"]}
            })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
