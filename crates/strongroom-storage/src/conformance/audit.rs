//! The audit-store suite: chains, links, queries, checkpoints and the signing key.

use crate::{AuditCheckpointRow, AuditEntry, AuditQuery, AuditStore, StoredSigningKey};

fn entry(chain: &str, at: i64, action: &str, actor: &[u8]) -> AuditEntry {
    AuditEntry {
        chain: chain.into(),
        at,
        action: action.into(),
        outcome: "allowed".into(),
        actor_token: Some(actor.to_vec()),
        address_token: None,
    }
}

/// A sealer that records what it was given and makes the hash from the previous one.
fn sealer(body: &'static [u8]) -> crate::AuditSealer {
    Box::new(move |sequence, previous| {
        let mut hash = *previous;
        hash[0] = hash[0].wrapping_add(sequence as u8);
        hash[31] = body[0];
        Ok((body.to_vec(), hash))
    })
}

/// Runs every audit-store check on a fresh store from `open`.
pub fn audit_store_suite(open: &dyn Fn() -> Box<dyn AuditStore>) {
    let store = open();
    let appended: Vec<u64> = [
        ("t1", 10, "get_record", b"a", b"one" as &[u8]),
        ("t1", 20, "put_document", b"b", b"two"),
        ("control", 15, "create_tenant", b"o", b"ctl"),
        ("t1", 30, "get_record", b"a", b"three"),
    ]
    .into_iter()
    .map(|(chain, at, action, actor, body)| {
        let body: &'static [u8] = Box::leak(body.to_vec().into_boxed_slice());
        store
            .append(entry(chain, at, action, actor), sealer(body))
            .wait()
            .expect("append")
    })
    .collect();
    assert_eq!(appended, [1, 2, 1, 3], "each chain counts on its own");
    let t1 = store.chain_events("t1", 0, 100).expect("chain");
    assert_eq!(
        t1.iter().map(|row| row.sequence).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(
        t1[1].hash[0],
        t1[0].hash[0].wrapping_add(2),
        "the sealer got the previous hash"
    );
    assert_eq!(t1[2].sealed, b"three");
    assert_eq!(store.chain_events("t1", 2, 100).expect("chain").len(), 1);
    assert_eq!(store.chains().expect("chains"), ["control", "t1"]);
    assert_eq!(
        store
            .head("t1")
            .expect("head")
            .map(|(sequence, _)| sequence),
        Some(3)
    );
    assert_eq!(store.head("none").expect("head"), None);

    let query = |query: AuditQuery| -> Vec<u64> {
        store
            .events(&query)
            .expect("events")
            .iter()
            .map(|row| row.sequence)
            .collect()
    };
    let base = || AuditQuery {
        chain: "t1".into(),
        limit: 100,
        ..AuditQuery::default()
    };
    assert_eq!(query(base()), [3, 2, 1], "newest first");
    assert_eq!(
        query(AuditQuery {
            action: Some("get_record".into()),
            ..base()
        }),
        [3, 1]
    );
    assert_eq!(
        query(AuditQuery {
            actor_token: Some(b"b".to_vec()),
            ..base()
        }),
        [2]
    );
    assert_eq!(
        query(AuditQuery {
            from: Some(15),
            to: Some(30),
            ..base()
        }),
        [2]
    );
    assert_eq!(
        query(AuditQuery {
            before_sequence: Some(3),
            limit: 1,
            ..base()
        }),
        [2],
        "paging"
    );

    let checkpoint = AuditCheckpointRow {
        chain: "t1".into(),
        sequence: 3,
        head: t1[2].hash.clone(),
        signature: vec![7; 64],
        at: 40,
        expiry: false,
    };
    store
        .add_checkpoint(checkpoint.clone())
        .expect("checkpoint");
    store
        .add_checkpoint(AuditCheckpointRow {
            signature: vec![8; 64],
            ..checkpoint.clone()
        })
        .expect("a second checkpoint of the same head is ignored");
    assert_eq!(
        store
            .checkpoints_after("t1", 0, u32::MAX)
            .expect("checkpoints"),
        std::slice::from_ref(&checkpoint)
    );

    assert_eq!(
        store
            .last_event_before("t1", 25)
            .expect("before")
            .map(|(sequence, _)| sequence),
        Some(2)
    );
    assert_eq!(store.last_event_before("t1", 5).expect("before"), None);
    // Clocks of concurrent requests differ a little: an event stamped before one ahead of it
    // in the chain does not expire ahead of that younger one.
    for (at, body) in [(10, b"x"), (40, b"y"), (20, b"z")] {
        let body: &'static [u8] = Box::leak(body.to_vec().into_boxed_slice());
        store
            .append(entry("t2", at, "get_record", b"a"), sealer(body))
            .wait()
            .expect("append");
    }
    assert_eq!(
        store
            .last_event_before("t2", 30)
            .expect("before")
            .map(|(sequence, _)| sequence),
        Some(1)
    );
    assert_eq!(
        store
            .last_event_before("t2", 50)
            .expect("before")
            .map(|(sequence, _)| sequence),
        Some(3),
        "all expired"
    );
    store
        .add_checkpoint(AuditCheckpointRow {
            sequence: 2,
            head: t1[1].hash.clone(),
            ..checkpoint.clone()
        })
        .expect("checkpoint at 2");
    assert!(
        store.remove_events_through("t1", 2).is_err(),
        "an ordinary checkpoint at the cut does not let events go"
    );
    assert_eq!(store.chain_events("t1", 0, 100).expect("chain").len(), 3);
    let expiry = AuditCheckpointRow {
        sequence: 2,
        head: t1[1].hash.clone(),
        signature: vec![9; 64],
        at: 50,
        expiry: true,
        ..checkpoint.clone()
    };
    store
        .add_checkpoint(expiry.clone())
        .expect("an expiry mark replaces the head's checkpoint");
    store
        .add_checkpoint(AuditCheckpointRow {
            signature: vec![6; 64],
            ..expiry.clone()
        })
        .expect("and is not replaced itself");
    store
        .add_checkpoint(AuditCheckpointRow {
            sequence: 3,
            head: vec![5; 32],
            ..expiry.clone()
        })
        .expect("an expiry mark at a different head than the one signed there");
    assert_eq!(
        store
            .checkpoints_after("t1", 0, u32::MAX)
            .expect("checkpoints")[1],
        checkpoint,
        "does not replace the signed head"
    );
    assert_eq!(
        store
            .checkpoints_after("t1", 0, u32::MAX)
            .expect("checkpoints")[0],
        expiry,
        "the expiry mark at 2"
    );
    assert_eq!(store.remove_events_through("t1", 2).expect("remove"), 2);
    assert_eq!(
        store
            .chain_events("t1", 0, 100)
            .expect("chain")
            .iter()
            .map(|row| row.sequence)
            .collect::<Vec<_>>(),
        [3]
    );
    assert_eq!(
        store
            .checkpoints_after("t1", 0, u32::MAX)
            .expect("checkpoints")
            .iter()
            .map(|checkpoint| checkpoint.sequence)
            .collect::<Vec<_>>(),
        [2, 3],
        "the checkpoint at the cut stays"
    );
    assert_eq!(
        store.last_checkpoint("t1").expect("last checkpoint"),
        store
            .checkpoints_after("t1", 0, u32::MAX)
            .expect("checkpoints")
            .pop(),
        "the newest"
    );
    assert_eq!(
        store.last_checkpoint("nowhere").expect("last checkpoint"),
        None
    );
    let sequences = |after, limit| {
        store
            .checkpoints_after("t1", after, limit)
            .expect("page")
            .iter()
            .map(|checkpoint| checkpoint.sequence)
            .collect::<Vec<_>>()
    };
    assert_eq!(sequences(0, 1), [2], "oldest first");
    assert_eq!(sequences(2, 10), [3], "after the cursor");
    assert_eq!(sequences(3, 10), Vec::<u64>::new());
    assert_eq!(
        store.chain_events("control", 0, 100).expect("chain").len(),
        1,
        "other chains keep theirs"
    );

    assert_eq!(store.signing_key().expect("key"), None);
    let key = |sealed: &[u8], public: &[u8]| StoredSigningKey {
        sealed: sealed.to_vec(),
        public: public.to_vec(),
    };
    let stored = store
        .set_signing_key(key(b"sealed", b"public"))
        .expect("set");
    assert_eq!(
        store
            .set_signing_key(key(b"other", b"other"))
            .expect("set again"),
        stored,
        "the first key stays"
    );
    assert_eq!(store.signing_key().expect("key"), Some(stored));
}
