//! Tenancy of a collection: fixed once stored, kept by lookups, and each
//! record's sealed fields under its own tenant's key.

use serde::{Deserialize, Serialize};

use sealkv_collections::{Collection, Error, Index, Schema, Sealed, Tenants};

use crate::support::{open_db, user, users};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Note {
    id: u64,
    owner: String,
    body: Sealed<String>,
}

fn note(id: u64, owner: &str) -> Note {
    Note {
        id,
        owner: owner.into(),
        body: Sealed::new(format!("body-{id}")),
    }
}

fn untenanted() -> Schema<Note, u64> {
    Schema::new("notes", |n: &Note| n.id).index("owner", Index::plain(), |n| n.owner.clone())
}

#[test]
fn adding_or_removing_tenants_on_a_stored_collection_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path(), false);
    let notes = Collection::open(&db, untenanted()).unwrap();
    notes.insert(&note(1, "acme")).unwrap();
    drop(notes);
    let err = Collection::open(&db, untenanted().tenant(|n| n.owner.clone())).unwrap_err();
    assert!(matches!(err, Error::TenancyMismatch { .. }), "{err:?}");
    // Another tenant type is refused too.
    let tenanted = || Schema::new("tenanted", |n: &Note| n.id).tenant(|n| n.owner.clone());
    Collection::open(&db, tenanted())
        .unwrap()
        .insert(&note(1, "acme"))
        .unwrap();
    let err = Collection::open(
        &db,
        Schema::new("tenanted", |n: &Note| n.id).tenant(|n| n.id),
    )
    .unwrap_err();
    assert!(matches!(err, Error::TenancyMismatch { .. }), "{err:?}");
    let err = Collection::open(&db, Schema::new("tenanted", |n: &Note| n.id)).unwrap_err();
    assert!(matches!(err, Error::TenancyMismatch { .. }), "{err:?}");
    // The stored collections still read as they were.
    let notes = Collection::open(&db, untenanted()).unwrap();
    assert_eq!(notes.get(&1).unwrap().unwrap(), note(1, "acme"));
    let t = Collection::open(&db, tenanted()).unwrap();
    assert_eq!(t.get(&1).unwrap().unwrap(), note(1, "acme"));
}

#[test]
fn find_in_tenant_finds_only_that_tenants_records() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path(), false);
    let users = users(&db);
    users
        .insert(&user(1, "acme", "ada", 36, "ada@x.org"))
        .unwrap();
    users
        .insert(&user(2, "globex", "bo", 36, "bo@x.org"))
        .unwrap();
    users
        .insert(&user(3, "acme", "cy", 36, "cy@x.org"))
        .unwrap();
    let ids = |found: Vec<crate::support::User>| found.iter().map(|u| u.id).collect::<Vec<_>>();
    assert_eq!(
        ids(users.find_in_tenant("acme", "age", &36u32).unwrap()),
        [1, 3]
    );
    assert_eq!(
        ids(users.find_in_tenant("globex", "age", &36u32).unwrap()),
        [2]
    );
    assert_eq!(ids(users.find("age", &36u32).unwrap()), [1, 2, 3]);
    // A unique plain index is one across tenants: its holder is found in
    // its own tenant only.
    assert!(
        users
            .find_in_tenant("globex", "name", "ada")
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ids(users.find_in_tenant("acme", "name", "ada").unwrap()),
        [1]
    );
    // An erased tenant's records are found by no blind value; plain
    // values still find them, in their tenant only.
    assert!(Tenants::open(&db).unwrap().erase("acme").unwrap());
    assert_eq!(
        ids(users.find_in_tenant("acme", "age", &36u32).unwrap()),
        [1, 3]
    );
    assert_eq!(
        ids(users.find_in_tenant("globex", "age", &36u32).unwrap()),
        [2]
    );

    // A collection without tenants has no tenant to look in.
    let notes = Collection::open(&db, untenanted()).unwrap();
    notes.insert(&note(1, "acme")).unwrap();
    let err = notes.find_in_tenant("acme", "owner", "acme").unwrap_err();
    assert!(matches!(err, Error::NoTenants { .. }), "{err:?}");
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Visit {
    id: u64,
    owner: String,
    page: String,
}

#[test]
fn an_erased_tenant_is_not_written_again_even_without_sealed_fields() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path(), false);
    // No sealed field and no blind index: nothing is sealed under the key.
    let visits = Collection::open(
        &db,
        Schema::new("visits", |v: &Visit| v.id)
            .tenant(|v| v.owner.clone())
            .index("page", Index::plain(), |v| v.page.clone()),
    )
    .unwrap();
    let visit = |id: u64, owner: &str| Visit {
        id,
        owner: owner.into(),
        page: "/".into(),
    };
    visits.insert(&visit(1, "acme")).unwrap();
    visits.insert(&visit(2, "globex")).unwrap();
    let tenants = Tenants::open(&db).unwrap();
    assert!(tenants.erase("acme").unwrap());
    assert!(tenants.erase("acme").unwrap(), "erasing again is harmless");

    for err in [
        visits.insert(&visit(3, "acme")).unwrap_err(),
        visits.upsert(&visit(1, "acme")).unwrap_err(),
        visits.update(&1, |v| v.page = "/x".into()).unwrap_err(),
    ] {
        assert!(
            matches!(err, Error::Db(sealkv::Error::KeyDestroyed(_))),
            "{err:?}"
        );
    }
    assert_eq!(visits.get(&1).unwrap().unwrap(), visit(1, "acme"));
    visits.insert(&visit(4, "globex")).unwrap();
    assert!(visits.delete(&1).unwrap());
    assert_eq!(visits.count().unwrap(), 2);
    assert!(visits.verify().unwrap().is_clean());
}

#[test]
fn a_tenant_of_another_type_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path(), false);
    let users = users(&db);
    users
        .insert(&user(1, "acme", "ada", 36, "ada@x.org"))
        .unwrap();
    let err = users.find_in_tenant(&7u32, "age", &36u32).unwrap_err();
    assert!(
        matches!(&err, Error::TenantType { declared, queried, .. } if declared == "str" && queried == "u32"),
        "{err:?}"
    );
    assert_eq!(
        users.find_in_tenant("acme", "age", &36u32).unwrap().len(),
        1
    );
}

#[test]
fn a_tenant_created_twice_at_once_reads_its_own_key_until_it_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path(), false);
    let users = users(&db);
    // Both see no key for initech; each gives it one.
    let mut first = db.begin_transaction().unwrap();
    let mut second = db.begin_transaction().unwrap();
    users
        .in_tx(&mut first)
        .insert(&user(1, "initech", "ada", 36, "ada@x.org"))
        .unwrap();
    users
        .in_tx(&mut second)
        .insert(&user(2, "initech", "bo", 40, "bo@x.org"))
        .unwrap();
    first.commit().unwrap();
    // The committed key is now first's; second still reads its own
    // record, sealed under its own key, by key and by iteration (the
    // handle has seen the committed key too).
    assert_eq!(
        users.get(&1).unwrap().unwrap().ssn.value().unwrap(),
        "ssn-0001"
    );
    let mine = users.in_tx(&mut second).get(&2).unwrap().unwrap();
    assert_eq!(mine.ssn.value().unwrap(), "ssn-0002");
    let all = users
        .in_tx(&mut second)
        .iter()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    assert_eq!(all.iter().map(|u| u.id).collect::<Vec<_>>(), [2]);
    let err = second.commit().unwrap_err();
    assert!(matches!(err, sealkv::Error::Conflict), "{err:?}");
    assert!(users.get(&2).unwrap().is_none());
    assert!(users.verify().unwrap().is_clean());
}
