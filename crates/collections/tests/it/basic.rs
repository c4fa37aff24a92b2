//! Records and their indexes through every operation.

use sealkv_collections::{Collection, Error, Index, Schema};
use serde::{Deserialize, Serialize};

use crate::support::{norm, open_db, user, users};

#[test]
fn records_are_found_by_key_by_index_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path(), true);
    let users = users(&db);
    for (id, name, age) in [(3, "cy", 40), (1, "ada", 36), (2, "bo", 40), (10, "di", 20)] {
        users
            .insert(&user(id, "acme", name, age, &format!("{name}@x.org")))
            .unwrap();
    }
    assert_eq!(users.get(&2).unwrap().unwrap().name, "bo");
    assert_eq!(users.get(&4).unwrap(), None);
    assert!(users.contains(&10).unwrap());
    assert_eq!(users.count().unwrap(), 4);

    let ids = |v: Vec<crate::support::User>| v.into_iter().map(|u| u.id).collect::<Vec<_>>();
    let all: Vec<u64> = users.iter().unwrap().map(|u| u.unwrap().id).collect();
    assert_eq!(all, [1, 2, 3, 10]);
    let back: Vec<u64> = users.iter().unwrap().rev().map(|u| u.unwrap().id).collect();
    assert_eq!(back, [10, 3, 2, 1]);
    let mid: Vec<u64> = users.range(2..=3).unwrap().map(|u| u.unwrap().id).collect();
    assert_eq!(mid, [2, 3]);

    assert_eq!(ids(users.find("age", &40u32).unwrap()), [2, 3]);
    assert_eq!(ids(users.range_by("age", 30u32..).unwrap()), [1, 2, 3]);
    assert_eq!(ids(users.range_by("age", ..=36u32).unwrap()), [10, 1]);
    assert_eq!(
        ids(users
            .range_by(
                "age",
                (std::ops::Bound::Excluded(36u32), std::ops::Bound::Unbounded)
            )
            .unwrap()),
        [2, 3]
    );
    assert_eq!(
        ids(users.range_by("age", 21u32..36).unwrap()),
        Vec::<u64>::new()
    );
    assert_eq!(users.find_unique("name", "cy").unwrap().unwrap().id, 3);
    assert_eq!(users.find_unique("name", "zz").unwrap(), None);
    let by_email = users
        .find_in_tenant("acme", "email", &norm(" BO@x.org"))
        .unwrap();
    assert_eq!(ids(by_email), [2]);
    // Another tenant's key tags the same value differently: not found.
    assert!(
        users
            .find_in_tenant("other", "email", &norm("bo@x.org"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn unique_violations_and_duplicates_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path(), false);
    let users = users(&db);
    users
        .insert(&user(1, "acme", "ada", 36, "ada@x.org"))
        .unwrap();

    let err = users
        .insert(&user(1, "acme", "other", 1, "o@x.org"))
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateKey { .. }), "{err:?}");
    let err = users
        .insert(&user(2, "acme", "ada", 1, "o@x.org"))
        .unwrap_err();
    assert!(
        matches!(&err, Error::UniqueViolation { index, .. } if index == "name"),
        "{err:?}"
    );
    let err = users
        .insert(&user(2, "acme", "bo", 1, " ADA@x.org"))
        .unwrap_err();
    assert!(
        matches!(&err, Error::UniqueViolation { index, .. } if index == "email"),
        "{err:?}"
    );
    // The same email in another tenant is another tenant's business.
    users
        .insert(&user(3, "globex", "cy", 1, "ada@x.org"))
        .unwrap();

    // Inside a transaction: the refused insert leaves the transaction as
    // it was, and what the transaction did before it commits.
    db.transaction(|tx| {
        let mut t = users.in_tx(tx);
        t.insert(&user(4, "acme", "di", 50, "di@x.org"))?;
        let err = t.insert(&user(5, "acme", "di", 51, "e@x.org")).unwrap_err();
        assert!(matches!(err, Error::UniqueViolation { .. }));
        Ok::<_, Error>(())
    })
    .unwrap();
    assert_eq!(users.count().unwrap(), 3);
    assert!(users.find("age", &51u32).unwrap().is_empty());
    assert!(
        users
            .find_in_tenant("acme", "email", &norm("e@x.org"))
            .unwrap()
            .is_empty()
    );
    assert!(users.verify().unwrap().is_clean());
}

#[test]
fn updates_and_deletes_move_every_entry() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path(), true);
    let users = users(&db);
    users
        .insert(&user(1, "acme", "ada", 36, "ada@x.org"))
        .unwrap();
    users
        .insert(&user(2, "acme", "bo", 36, "bo@x.org"))
        .unwrap();

    let new = users
        .update(&1, |u| {
            u.age = 37;
            u.name = "ada l".into();
            u.email.set("ada@y.org".into());
        })
        .unwrap()
        .unwrap();
    assert_eq!(new.age, 37);
    assert_eq!(users.find("age", &36u32).unwrap().len(), 1);
    assert_eq!(users.find("age", &37u32).unwrap()[0].id, 1);
    assert!(users.find_unique("name", "ada").unwrap().is_none());
    assert!(
        users
            .find_in_tenant("acme", "email", &norm("ada@x.org"))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        users
            .find_in_tenant("acme", "email", &norm("ada@y.org"))
            .unwrap()[0]
            .id,
        1
    );
    // The freed values can be taken by another record.
    users.update(&2, |u| u.name = "ada".into()).unwrap();
    assert_eq!(users.find_unique("name", "ada").unwrap().unwrap().id, 2);
    assert_eq!(users.update(&9, |u| u.age = 1).unwrap(), None);
    let err = users.update(&2, |u| u.id = 3).unwrap_err();
    assert!(matches!(err, Error::PrimaryKeyChanged { .. }));

    // Upsert replaces, with its entries.
    assert!(
        users
            .upsert(&user(2, "acme", "bo", 99, "bo@x.org"))
            .unwrap()
    );
    assert!(users.find_unique("name", "ada").unwrap().is_none());
    assert!(!users.upsert(&user(3, "acme", "cy", 5, "cy@x.org")).unwrap());

    assert!(users.delete(&1).unwrap());
    assert!(!users.delete(&1).unwrap());
    assert!(users.find("age", &37u32).unwrap().is_empty());
    assert!(
        users
            .find_in_tenant("acme", "email", &norm("ada@y.org"))
            .unwrap()
            .is_empty()
    );
    let report = users.verify().unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!((report.records, report.entries), (2, 6));
}

#[test]
fn several_collections_commit_together_or_not_at_all() {
    #[derive(Debug, Serialize, Deserialize)]
    struct Order {
        id: (u64, u32),
        total: i64,
    }
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path(), true);
    let users = users(&db);
    let orders = Collection::open(
        &db,
        Schema::new("orders", |o: &Order| o.id).index("total", Index::plain(), |o| o.total),
    )
    .unwrap();
    db.transaction(|tx| {
        users.in_tx(tx).insert(&user(1, "acme", "ada", 36, "a@x"))?;
        orders.in_tx(tx).insert(&Order {
            id: (1, 1),
            total: -5,
        })?;
        orders.in_tx(tx).insert(&Order {
            id: (1, 2),
            total: 7,
        })
    })
    .unwrap();
    let failed: Result<(), Error> = db.transaction(|tx| {
        orders.in_tx(tx).insert(&Order {
            id: (1, 3),
            total: 1,
        })?;
        users.in_tx(tx).insert(&user(2, "acme", "ada", 1, "b@x")) // name taken
    });
    assert!(matches!(failed, Err(Error::UniqueViolation { .. })));
    assert_eq!(orders.count().unwrap(), 2);
    let negative: Vec<_> = orders.range_by("total", ..0i64).unwrap();
    assert_eq!(negative.len(), 1);
    assert_eq!(negative[0].id, (1, 1));
    let of_user: Vec<_> = orders
        .range((1, 0)..(2, 0))
        .unwrap()
        .map(|o| o.unwrap().id)
        .collect();
    assert_eq!(of_user, [(1, 1), (1, 2)]);
}

#[test]
fn lookups_that_cannot_be_right_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path(), false);
    let users = users(&db);
    let err = users.find("age", &36i32).unwrap_err();
    assert!(
        matches!(&err, Error::IndexType { declared, queried, .. } if declared == "u32" && queried == "i32")
    );
    assert!(matches!(
        users.find("nope", &1u8),
        Err(Error::UnknownIndex { .. })
    ));
    assert!(matches!(
        users.range_by("email", norm("a")..),
        Err(Error::BlindRange { .. })
    ));
    assert!(matches!(
        users.find("email", &norm("a")),
        Err(Error::TenantRequired { .. })
    ));
}

#[test]
fn a_stale_handle_is_refused_after_the_schema_changes() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path(), false);
    let old = users(&db);
    old.insert(&user(1, "acme", "ada", 36, "a@x")).unwrap();
    let _new = Collection::open(
        &db,
        crate::support::schema().index("tenant", Index::plain(), |u| u.tenant.clone()),
    )
    .unwrap();
    let err = old.insert(&user(2, "acme", "bo", 1, "b@x")).unwrap_err();
    assert!(matches!(err, Error::SchemaChanged { .. }), "{err:?}");
    assert!(matches!(old.get(&1), Err(Error::SchemaChanged { .. })));
}

#[test]
fn a_transaction_whose_schema_changes_after_its_check_does_not_commit() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path(), false);
    let old = users(&db);
    let mut tx = db.begin_transaction().unwrap();
    let mut in_tx = old.in_tx(&mut tx);
    // The first operation checks the generation, the second relies on it.
    in_tx.insert(&user(1, "acme", "ada", 36, "a@x")).unwrap();
    let _new = Collection::open(
        &db,
        crate::support::schema().index("tenant", Index::plain(), |u| u.tenant.clone()),
    )
    .unwrap();
    in_tx.insert(&user(2, "acme", "bo", 1, "b@x")).unwrap();
    // The generation it read changed meanwhile: the commit is refused.
    assert!(matches!(tx.commit(), Err(sealkv::Error::Conflict)));
    // Run again, the transaction's first check sees the new schema.
    let err = db
        .transaction(|tx| old.in_tx(tx).insert(&user(1, "acme", "ada", 36, "a@x")))
        .unwrap_err();
    assert!(matches!(err, Error::SchemaChanged { .. }), "{err:?}");
    let fresh = Collection::open(
        &db,
        crate::support::schema().index("tenant", Index::plain(), |u| u.tenant.clone()),
    )
    .unwrap();
    assert_eq!(
        fresh.count().unwrap(),
        0,
        "nothing of the refused transaction"
    );
}

#[test]
fn index_names_are_one_to_max_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path(), false);
    #[derive(Serialize, Deserialize)]
    struct Row {
        id: u8,
    }
    let with_index = |name: String| {
        Collection::open(
            &db,
            Schema::new("rows", |r: &Row| r.id).index(name, Index::plain(), |r| r.id),
        )
    };
    let max = sealkv_collections::MAX_INDEX_NAME_LEN;
    for len in [0, max + 1, 1 << 16] {
        let err = with_index("i".repeat(len)).unwrap_err();
        assert!(
            matches!(err, Error::InvalidIndexName { len: l, max: m, .. } if l == len && m == max),
            "{err:?}"
        );
    }
    with_index("i".repeat(max)).unwrap();
}
