//! Conformance checks for document metadata and blob stores.

use super::journal_marker;
use crate::*;

/// Runs every blob-store check, each on a fresh store from `open`.
pub fn blob_store_suite(open: &dyn Fn() -> Box<dyn BlobStore>) {
    let store = open();
    let mut upload = store.create().expect("create");
    upload.write(b"hello ").expect("write");
    upload.write(b"world").expect("write");
    assert!(
        upload.finish("0123456789abcdef").expect("finish"),
        "a new blob is stored"
    );
    let reader = store.open("0123456789abcdef").expect("open");
    assert_eq!(reader.length(), 11);
    let mut buffer = [0u8; 5];
    reader.read_exact_at(6, &mut buffer).expect("read");
    assert_eq!(&buffer, b"world");
    assert!(
        reader.read_exact_at(8, &mut buffer).is_err(),
        "reading past the end fails"
    );
    let mut duplicate = store.create().expect("create");
    duplicate.write(b"other bytes").expect("write");
    assert!(
        !duplicate.finish("0123456789abcdef").expect("finish"),
        "an existing id keeps its first content"
    );
    let mut abandoned = store.create().expect("create");
    abandoned.write(b"partial").expect("write");
    drop(abandoned);
    assert_eq!(
        store.list().expect("list"),
        vec!["0123456789abcdef".to_owned()],
        "an abandoned upload leaves nothing"
    );
    assert!(matches!(
        store.open("fedcba9876543210"),
        Err(StorageError::NotFound)
    ));
    assert!(store.open("../../etc/passwd").is_err(), "ids are validated");
    let mut replacement = store.create().expect("create");
    replacement.write(b"hello again").expect("write");
    replacement
        .finish_replacing("0123456789abcdef")
        .expect("replace");
    let mut replaced = [0u8; 11];
    store
        .open("0123456789abcdef")
        .expect("open")
        .read_exact_at(0, &mut replaced)
        .expect("read");
    assert_eq!(
        &replaced, b"hello again",
        "a replacement takes the id atomically"
    );
    store.remove("0123456789abcdef").expect("remove");
    store
        .remove("0123456789abcdef")
        .expect("removing twice is fine");
    assert!(store.list().expect("list").is_empty());
    assert_eq!(store.remove_abandoned_uploads().expect("sweep"), 0);
}

fn document(id: &str, path: &[u8], current_version: u64, at: i64) -> StoredDocument {
    StoredDocument {
        id: id.into(),
        path_id: path.to_vec(),
        sealed_path: path.to_vec(),
        key_version: 1,
        trashed_at: None,
        current_version,
        created_at: at,
        updated_at: at,
    }
}

fn document_version(id: &str, version: u64, blob: &str, at: i64) -> StoredDocumentVersion {
    StoredDocumentVersion {
        document_id: id.into(),
        version,
        blob_id: blob.into(),
        size: 10,
        sealed_meta: vec![1],
        key_version: 1,
        created_at: at,
        superseded_at: None,
    }
}

pub(super) fn documents_versions_trash_and_purge(store: &dyn TenantStore) {
    let new = |id: &str, path: &[u8], version: u64, blob: &str, at: i64| NewDocumentVersion {
        document: document(id, path, version, at),
        version: document_version(id, version, blob, at),
        prefix_tokens: vec![b"all".to_vec(), path[..1].to_vec()],
    };
    store
        .put_document_version(new("d1", b"a/x", 1, "blob1", 10), journal_marker("v"))
        .wait()
        .expect("create");
    assert!(
        matches!(
            store
                .put_document_version(new("d2", b"a/x", 1, "blob2", 11), journal_marker("v"))
                .wait(),
            Err(StorageError::Conflict(_))
        ),
        "one live document per path"
    );
    store
        .put_document_version(new("d1", b"a/x", 2, "blob2", 20), journal_marker("v"))
        .wait()
        .expect("second version");
    assert!(
        matches!(
            store
                .put_document_version(new("d1", b"a/x", 2, "blob3", 21), journal_marker("v"))
                .wait(),
            Err(StorageError::Conflict(_))
        ),
        "versions advance one at a time"
    );
    store
        .put_document_version(new("d3", b"b/y", 1, "blob1", 30), journal_marker("v"))
        .wait()
        .expect("same content, other document");
    assert_eq!(
        store
            .document_by_path(b"a/x")
            .expect("read")
            .expect("live")
            .current_version,
        2
    );
    let versions = store.document_versions("d1").expect("versions");
    assert_eq!(
        (
            versions.len(),
            versions[0].superseded_at,
            versions[1].superseded_at
        ),
        (2, Some(20), None)
    );
    assert_eq!(
        store.storage_used_bytes().expect("usage"),
        20,
        "two distinct blobs of 10 bytes"
    );
    let query = |prefix: &[u8], trashed: bool| DocumentQuery {
        prefix_tokens: vec![prefix.to_vec()],
        trashed,
        after: None,
        limit: 10,
    };
    assert_eq!(
        store
            .list_documents(&query(b"all", false))
            .expect("list")
            .len(),
        2
    );
    assert_eq!(
        store.list_documents(&query(b"a", false)).expect("list")[0].id,
        "d1"
    );
    let under_either = |tokens: &[&[u8]]| {
        store
            .list_documents(&DocumentQuery {
                prefix_tokens: tokens.iter().map(|token| token.to_vec()).collect(),
                ..query(b"", false)
            })
            .expect("list")
            .into_iter()
            .map(|document| document.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        under_either(&[b"all", b"a"]).len(),
        2,
        "a document under two of the prefixes is listed once"
    );
    assert_eq!(under_either(&[b"a", b"nothing here"]), ["d1"]);
    // Pages across two prefixes, one document at a time, in order and each once.
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_documents(&DocumentQuery {
                prefix_tokens: vec![b"b".to_vec(), b"a".to_vec()],
                after: after.clone(),
                limit: 1,
                ..query(b"", false)
            })
            .expect("list");
        let Some(document) = page.first() else {
            break;
        };
        after = Some((document.updated_at, document.id.clone()));
        paged.push(document.id.clone());
    }
    assert_eq!(
        paged,
        ["d1", "d3"],
        "by time of change across both prefixes"
    );
    assert_eq!(
        under_either(&[]),
        Vec::<String>::new(),
        "no prefix, no page"
    );

    store
        .trash_document("d1", 40, journal_marker("t"))
        .wait()
        .expect("trash");
    assert!(store.document_by_path(b"a/x").expect("read").is_none());
    assert_eq!(
        store
            .list_documents(&query(b"all", true))
            .expect("trash")
            .len(),
        1
    );
    store
        .put_document_version(new("d4", b"a/x", 1, "blob3", 50), journal_marker("v"))
        .wait()
        .expect("the path is free again");
    assert!(
        matches!(
            store
                .restore_document("d1", None, 60, journal_marker("r"))
                .wait(),
            Err(StorageError::Conflict(_))
        ),
        "restoring onto a taken path"
    );
    let relocation = DocumentRelocation {
        path_id: b"a/z".to_vec(),
        sealed_path: b"a/z".to_vec(),
        prefix_tokens: vec![b"all".to_vec()],
    };
    store
        .restore_document("d1", Some(relocation), 60, journal_marker("r"))
        .wait()
        .expect("restore elsewhere");
    assert_eq!(
        store
            .document_by_path(b"a/z")
            .expect("read")
            .expect("restored")
            .id,
        "d1"
    );

    store
        .trash_document("d3", 70, journal_marker("t"))
        .wait()
        .expect("trash");
    let plan = store.purge_candidates(25, 75, 100).expect("plan");
    assert_eq!(
        plan,
        PurgePlan {
            versions: vec![("d1".into(), 1)],
            documents: vec!["d3".into()],
            versions_before: 25,
            trash_before: 75,
        }
    );
    // A restore between planning and purging keeps the document and its history.
    store
        .put_document_version(new("d5", b"e/x", 1, "blob5", 10), journal_marker("v"))
        .wait()
        .expect("create");
    store
        .trash_document("d5", 20, journal_marker("t"))
        .wait()
        .expect("trash");
    let stale_plan = store.purge_candidates(0, 75, 100).expect("plan");
    assert!(stale_plan.documents.contains(&"d5".to_owned()));
    store
        .restore_document("d5", None, 30, journal_marker("r"))
        .wait()
        .expect("restore");
    store
        .purge(
            PurgePlan {
                documents: vec!["d5".into()],
                versions: vec![],
                versions_before: 0,
                trash_before: 75,
            },
            journal_marker("p"),
        )
        .wait()
        .expect("purge");
    assert_eq!(
        store.document_versions("d5").expect("versions").len(),
        1,
        "a restored document keeps its versions"
    );
    assert!(store.document("d5").expect("read").is_some());
    store
        .purge(plan, journal_marker("p"))
        .wait()
        .expect("purge");
    assert_eq!(store.document_versions("d1").expect("versions").len(), 1);
    assert!(store.document("d3").expect("read").is_none());
    assert_eq!(
        store.unreferenced_blobs().expect("blobs"),
        vec!["blob1".to_owned()],
        "blob1 lost its last reference"
    );
    assert!(store.forget_blob("blob1").wait().expect("forget"));
    assert!(
        !store.forget_blob("blob2").wait().expect("forget"),
        "a referenced blob is never forgotten"
    );
    assert!(store.blob_registered("blob2").expect("read"));
    let (documents, versions) = store.document_items_sealed_below(2, 100).expect("scan");
    assert!(!documents.is_empty() && !versions.is_empty());
    let resealed_documents: Vec<_> = documents
        .into_iter()
        .map(|document| StoredDocument {
            key_version: 2,
            sealed_path: b"new".to_vec(),
            ..document
        })
        .collect();
    let resealed_versions: Vec<_> = versions
        .into_iter()
        .map(|version| StoredDocumentVersion {
            key_version: 2,
            sealed_meta: b"new".to_vec(),
            ..version
        })
        .collect();
    let expected = (resealed_documents.len() + resealed_versions.len()) as u64;
    assert_eq!(
        store
            .reseal_document_items(resealed_documents.clone(), resealed_versions)
            .wait()
            .expect("reseal"),
        expected
    );
    assert_eq!(
        store.document_items_sealed_below(2, 100).expect("scan"),
        (vec![], vec![])
    );
    assert_eq!(
        store
            .reseal_document_items(resealed_documents, vec![])
            .wait()
            .expect("reseal"),
        0,
        "already re-sealed items are left alone"
    );
}

pub(super) fn users_passwords_and_sessions(store: &dyn TenantStore) {
    let user = StoredUser {
        id: "u1".into(),
        email_index: b"ann".to_vec(),
        sealed_profile: b"profile".to_vec(),
        sealed_password: Some(b"p1".to_vec()),
        roles: "owner".into(),
        disabled: false,
        must_change_password: true,
        password_changed_at: Some(1),
        key_version: 1,
        created_at: 1,
        updated_at: 1,
    };
    store
        .put_user(user.clone(), None, 5, journal_marker("u"))
        .wait()
        .expect("insert");
    let clash = StoredUser {
        id: "u2".into(),
        ..user.clone()
    };
    assert!(
        matches!(
            store.put_user(clash, None, 5, journal_marker("u")).wait(),
            Err(StorageError::Conflict(_))
        ),
        "emails are unique"
    );
    assert_eq!(
        store.user_by_email(b"ann").expect("read"),
        Some(user.clone())
    );
    for (index, password) in [b"p2", b"p3", b"p4"].iter().enumerate() {
        let previous = store
            .user("u1")
            .expect("read")
            .expect("there")
            .sealed_password;
        let changed = StoredUser {
            sealed_password: Some(password.to_vec()),
            updated_at: 10 + index as i64,
            must_change_password: false,
            ..user.clone()
        };
        store
            .put_user(changed, previous, 2, journal_marker("u"))
            .wait()
            .expect("change");
    }
    assert_eq!(
        store.password_history("u1").expect("history"),
        vec![b"p3".to_vec(), b"p2".to_vec()],
        "newest first, at most the kept number"
    );
    assert_eq!(store.list_users().expect("list").len(), 1);

    for token in [b"s1", b"s2", b"s3"] {
        store
            .insert_session(StoredSession {
                token_hash: token.to_vec(),
                user_id: "u1".into(),
                created_at: 5,
                last_seen_at: 5,
            })
            .wait()
            .expect("session");
    }
    store.touch_session(b"s1", 9).wait().expect("touch");
    assert_eq!(
        store
            .session(b"s1")
            .expect("read")
            .expect("there")
            .last_seen_at,
        9
    );
    assert_eq!(
        store
            .end_sessions("u1", SessionSelection::One(b"s2".to_vec()))
            .wait()
            .expect("logout"),
        1
    );
    assert_eq!(
        store
            .end_sessions("u1", SessionSelection::AllBut(b"s1".to_vec()))
            .wait()
            .expect("others"),
        1
    );
    assert!(
        store.session(b"s1").expect("read").is_some()
            && store.session(b"s3").expect("read").is_none()
    );
    assert_eq!(
        store
            .end_sessions("u1", SessionSelection::All)
            .wait()
            .expect("all"),
        1
    );

    // The tenant keeps an active owner, decided in the write itself (two owners demoting each
    // other at once cannot both succeed).
    let last_owner = |result: Result<(), StorageError>| matches!(result, Err(StorageError::Conflict(reason)) if reason.contains("last owner"));
    let current = store.user("u1").expect("read").expect("there");
    let disabled = StoredUser {
        disabled: true,
        updated_at: 20,
        ..current.clone()
    };
    assert!(last_owner(
        store
            .put_user(disabled.clone(), None, 2, journal_marker("u"))
            .wait()
    ));
    let second = StoredUser {
        id: "u3".into(),
        email_index: b"bea".to_vec(),
        ..current.clone()
    };
    store
        .put_user(second.clone(), None, 2, journal_marker("u"))
        .wait()
        .expect("a second owner");
    store
        .put_user(disabled, None, 2, journal_marker("u"))
        .wait()
        .expect("one of two owners can go");
    let demoted = StoredUser {
        roles: "admin".into(),
        ..second
    };
    assert!(last_owner(
        store.put_user(demoted, None, 2, journal_marker("u")).wait()
    ));
    assert!(last_owner(
        store.remove_user("u3", journal_marker("u")).wait()
    ));
    assert!(
        store
            .user("u3")
            .expect("read")
            .is_some_and(|user| user.roles == "owner"),
        "refused changes change nothing"
    );
}
