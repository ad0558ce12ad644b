//! The operator half of the control-store suite: accounts, sessions, break-glass grants and
//! the control key.

use crate::{
    ControlKeyRow, ControlStore, GrantStatus, OperatorRow, OperatorSessionRow, OperatorStatus,
    OperatorTokenRow, StorageError, SupportGrantRow, TenantRow, TenantStatus,
};

fn operator(id: &str, name: &str) -> OperatorRow {
    OperatorRow {
        id: id.into(),
        name: name.into(),
        status: OperatorStatus::Invited,
        sealed_secrets: None,
        enrolment_token_hash: Some(format!("enrol-{id}").into_bytes()),
        enrolment_expires_at: Some(100),
        failed_logins: 0,
        last_failure_at: 0,
        created_at: 1,
        updated_at: 1,
    }
}

pub(super) fn operators_sessions_and_grants(store: &dyn ControlStore) {
    // The control key: one wrap per master key, old wraps removed with the tenant wraps.
    for master in ["m1", "m2"] {
        store
            .add_control_key(ControlKeyRow {
                master_key_id: master.into(),
                wrapped: master.as_bytes().to_vec(),
                created_at: 1,
            })
            .expect("add control key");
    }
    store
        .add_control_key(ControlKeyRow {
            master_key_id: "m1".into(),
            wrapped: b"other".to_vec(),
            created_at: 2,
        })
        .expect("a second wrap under the same master is ignored");
    assert_eq!(store.control_keys().expect("read").len(), 2);
    store.remove_wraps_except_master("m2").expect("remove");
    let keys = store.control_keys().expect("read");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].master_key_id, "m2");

    // Accounts.
    store
        .insert_operator(operator("o1", "olga"))
        .expect("insert");
    assert!(
        matches!(
            store.insert_operator(operator("o2", "olga")),
            Err(StorageError::Conflict(_))
        ),
        "names are unique"
    );
    store
        .insert_operator(operator("o2", "otto"))
        .expect("insert");
    assert_eq!(
        store.operator_by_enrolment(b"enrol-o1").expect("read"),
        Some(operator("o1", "olga"))
    );
    store
        .insert_operator_token(OperatorTokenRow {
            id: "bootstrap".into(),
            name: "bootstrap".into(),
            token_hash: b"bootstrap-hash".to_vec(),
            created_at: 1,
        })
        .expect("token");
    let active = OperatorRow {
        status: OperatorStatus::Active,
        sealed_secrets: Some(b"sealed".to_vec()),
        enrolment_token_hash: None,
        enrolment_expires_at: None,
        updated_at: 5,
        ..operator("o1", "olga")
    };
    store
        .update_operator(active.clone(), 1, true)
        .expect("activate");
    assert!(
        matches!(
            store.update_operator(active.clone(), 1, false),
            Err(StorageError::Conflict(_))
        ),
        "an update from a stale read is refused"
    );
    assert_eq!(store.operator("o1").expect("read"), Some(active.clone()));
    assert_eq!(
        store.operator_by_name("olga").expect("read"),
        Some(active.clone())
    );
    assert_eq!(
        store.operator_by_enrolment(b"enrol-o1").expect("read"),
        None
    );
    assert_eq!(
        store.operator_token_count().expect("count"),
        0,
        "retiring tokens removes the bootstrap token in the same write"
    );
    assert!(matches!(
        store.update_operator(operator("missing", "x"), 1, false),
        Err(StorageError::NotFound)
    ));
    let disabled = OperatorRow {
        status: OperatorStatus::Disabled,
        updated_at: 6,
        ..active.clone()
    };
    assert!(
        matches!(
            store.update_operator(disabled, 5, false),
            Err(StorageError::Conflict("this is the last active operator"))
        ),
        "the last active operator stays active, whatever was read before"
    );
    assert_eq!(
        store
            .list_operators()
            .expect("list")
            .iter()
            .map(|row| row.name.as_str())
            .collect::<Vec<_>>(),
        ["olga", "otto"]
    );

    // Sessions.
    for hash in [b"s1", b"s2"] {
        store
            .insert_operator_session(OperatorSessionRow {
                token_hash: hash.to_vec(),
                operator_id: "o1".into(),
                created_at: 10,
                last_seen_at: 10,
            })
            .expect("session");
    }
    store.touch_operator_session(b"s1", 20).expect("touch");
    assert_eq!(
        store
            .operator_session(b"s1")
            .expect("read")
            .unwrap()
            .last_seen_at,
        20
    );
    assert_eq!(
        store.end_operator_sessions("o1", Some(b"s1")).expect("end"),
        1
    );
    assert_eq!(store.operator_session(b"s1").expect("read"), None);
    assert_eq!(store.end_operator_sessions("o1", None).expect("end"), 1);
    assert_eq!(store.operator_session(b"s2").expect("read"), None);

    // Grants.
    store
        .insert_tenant(
            TenantRow {
                id: "tg".into(),
                slug: "grants".into(),
                name: "Grants".into(),
                region: "eu".into(),
                status: TenantStatus::Active,
                created_at: 1,
                status_changed_at: 1,
            },
            vec![],
        )
        .expect("tenant");
    let grant = |id: &str, created_at: i64| SupportGrantRow {
        id: id.into(),
        operator_id: "o1".into(),
        operator_name: "olga".into(),
        tenant_id: "tg".into(),
        justification: "ticket 42".into(),
        scopes: "records:read".into(),
        token_hash: format!("grant-{id}").into_bytes(),
        status: GrantStatus::Pending,
        created_at,
        expires_at: created_at + 100,
        decided_by: None,
        decided_at: None,
    };
    store.insert_support_grant(grant("g1", 1)).expect("grant");
    store.insert_support_grant(grant("g2", 2)).expect("grant");
    assert_eq!(
        store.support_grant_by_token(b"grant-g1").expect("read"),
        Some(grant("g1", 1))
    );
    assert_eq!(
        store
            .support_grants(Some("tg"))
            .expect("list")
            .iter()
            .map(|row| row.id.as_str())
            .collect::<Vec<_>>(),
        ["g2", "g1"],
        "newest first"
    );
    assert!(
        store
            .support_grants(Some("other"))
            .expect("list")
            .is_empty()
    );
    assert_eq!(store.support_grants(None).expect("list").len(), 2);
    assert!(
        store
            .decide_support_grant("g1", &[GrantStatus::Pending], GrantStatus::Active, "ann", 5)
            .expect("approve")
    );
    assert!(
        !store
            .decide_support_grant("g1", &[GrantStatus::Pending], GrantStatus::Denied, "bob", 6)
            .expect("second decision"),
        "a grant is decided once"
    );
    let decided = store.support_grant("g1").expect("read").unwrap();
    assert_eq!(
        (
            decided.status,
            decided.decided_by.as_deref(),
            decided.decided_at
        ),
        (GrantStatus::Active, Some("ann"), Some(5))
    );
    assert!(
        !store
            .decide_support_grant(
                "missing",
                &[GrantStatus::Pending],
                GrantStatus::Active,
                "ann",
                5
            )
            .expect("unknown grant")
    );
}
