//! Tenancy of a collection: fixed once stored, kept by lookups, and each
//! record's sealed fields under its own tenant's key.

use serde::{Deserialize, Serialize};

use sealkv_collections::{Collection, Error, Index, Schema, Sealed};

use crate::support::open_db;

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
