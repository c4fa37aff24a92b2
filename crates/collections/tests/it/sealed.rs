//! Sealed fields: bound to their record, erased with their tenant, never
//! in a key.

use serde::{Deserialize, Serialize};

use sealkv::Db;
use sealkv_collections::{Collection, Error, Finding, Index, Schema, Sealed, Tenants};

use crate::support::{norm, open_db, user, users};

#[test]
fn erasing_a_tenant_erases_its_sealed_fields_and_unlinks_its_index() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path(), false);
    let users = users(&db);
    users
        .insert(&user(1, "acme", "ada", 36, "ada@x.org"))
        .unwrap();
    users
        .insert(&user(2, "globex", "bo", 40, "bo@x.org"))
        .unwrap();
    let tenants = Tenants::open(&db).unwrap();
    let acme_key = tenants.key_of("acme").unwrap().unwrap();
    assert_ne!(Some(acme_key), tenants.key_of("globex").unwrap());

    assert!(tenants.erase("acme").unwrap());
    assert!(!tenants.erase("initech").unwrap());
    let ada = users.get(&1).unwrap().unwrap();
    assert!(ada.ssn.is_erased() && ada.email.is_erased());
    assert_eq!(ada.ssn.value(), None);
    assert_eq!((ada.name.as_str(), ada.age), ("ada", 36)); // fields not sealed stay
    assert_eq!(format!("{:?}", ada.ssn), "Sealed(<erased>)");
    assert!(
        users
            .find_in_tenant("acme", "email", &norm("ada@x.org"))
            .unwrap()
            .is_empty()
    );
    // The other tenant is untouched.
    let bo = users.get(&2).unwrap().unwrap();
    assert_eq!(bo.ssn.value().map(String::as_str), Some("ssn-0002"));
    assert_eq!(
        users
            .find_in_tenant("globex", "email", &norm("bo@x.org"))
            .unwrap()
            .len(),
        1
    );

    // An erased tenant's record is not written again, but is deleted
    // with its entries.
    let err = users.update(&1, |u| u.age = 1).unwrap_err();
    assert!(
        matches!(err, Error::Db(sealkv::Error::KeyDestroyed(_))),
        "{err:?}"
    );
    assert!(users.verify().unwrap().is_clean());
    assert!(users.delete(&1).unwrap());
    assert!(users.find("age", &36u32).unwrap().is_empty());
    let report = users.verify().unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.records, 1);

    // After a reopen too (every handle holds the database open).
    drop((users, tenants));
    db.close().unwrap();
    let db = open_db(dir.path(), false);
    let users = crate::support::users(&db);
    assert!(
        users
            .find_in_tenant("acme", "email", &norm("ada@x.org"))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        users.get(&2).unwrap().unwrap().email.value().unwrap(),
        "bo@x.org"
    );
}

#[test]
fn a_sealed_field_moved_to_another_record_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path(), false);
    let users = users(&db);
    users
        .insert(&user(1, "acme", "ada", 36, "ada@x.org"))
        .unwrap();
    users
        .insert(&user(2, "acme", "bo", 40, "bo@x.org"))
        .unwrap();
    // Swap the stored records of 1 and 2 underneath the collection.
    let ks = db.keyspace("sealkv.collection.users").unwrap();
    let (k1, k2) = ([1u8, 0, 0, 0, 0, 0, 0, 0, 1], [1u8, 0, 0, 0, 0, 0, 0, 0, 2]);
    let (v1, v2) = (ks.get(k1).unwrap().unwrap(), ks.get(k2).unwrap().unwrap());
    ks.put(k1, &v2).unwrap();
    ks.put(k2, &v1).unwrap();
    let err = users.get(&1).unwrap_err();
    assert!(
        matches!(&err, Error::Corruption { collection, .. } if collection == "users"),
        "{err:?}"
    );
    let report = users.verify().unwrap();
    assert!(!report.is_clean());
}

#[derive(Debug, Serialize, Deserialize)]
struct Leaky {
    id: Sealed<u64>,
    secret: Sealed<String>,
}

#[test]
fn keys_that_read_a_sealed_field_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path(), false);
    let by_pk =
        Collection::open(&db, Schema::new("a", |l: &Leaky| *l.id.value().unwrap())).unwrap();
    let leaky = Leaky {
        id: Sealed::new(1),
        secret: Sealed::new("s".into()),
    };
    assert!(matches!(
        by_pk.insert(&leaky),
        Err(Error::SealedFieldInKey { .. })
    ));
    let by_plain = Collection::open(
        &db,
        Schema::new("b", |_: &Leaky| 1u8)
            .index("secret", Index::plain(), |l| l.secret.value().cloned()),
    )
    .unwrap();
    assert!(matches!(
        by_plain.insert(&leaky),
        Err(Error::SealedFieldInKey { .. })
    ));
    assert_eq!(by_plain.count().unwrap(), 0);
    let blind = Collection::open(
        &db,
        Schema::new("c", |_: &Leaky| 1u8).index("secret", Index::plain().blind(), |l| {
            l.secret.value().cloned()
        }),
    )
    .unwrap();
    blind.insert(&leaky).unwrap();
    assert_eq!(
        blind.find("secret", &Some("s".to_string())).unwrap().len(),
        1
    );
}

#[test]
fn a_sealed_field_never_serializes_outside_a_collection() {
    let leaky = Leaky {
        id: Sealed::new(1),
        secret: Sealed::new("s".into()),
    };
    assert!(postcard::to_allocvec(&leaky).is_err());
    assert_eq!(format!("{:?}", leaky.secret), "Sealed(<redacted>)");
}

#[test]
fn sealed_fields_and_blind_indexes_need_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let err = Collection::open(&db, crate::support::schema()).unwrap_err();
    assert!(
        matches!(err, Error::Db(sealkv::Error::MissingKey)),
        "{err:?}"
    );
    let plain =
        Collection::open(&db, Schema::new("p", |l: &Leaky| l.id.value().is_some())).unwrap();
    let err = plain
        .insert(&Leaky {
            id: Sealed::new(1),
            secret: Sealed::new("s".into()),
        })
        .unwrap_err();
    assert!(matches!(err, Error::SealedFieldInKey { .. }), "{err:?}");
    #[derive(Serialize, Deserialize)]
    struct Note {
        id: u8,
        body: Sealed<String>,
    }
    let notes = Collection::open(&db, Schema::new("n", |n: &Note| n.id)).unwrap();
    let err = notes
        .insert(&Note {
            id: 1,
            body: Sealed::new("b".into()),
        })
        .unwrap_err();
    assert!(matches!(err, Error::SealedOutsideCollection), "{err:?}");
}

/// The stored form of a `User` record, field by field: a `Sealed` field
/// is a postcard byte string, as a `Vec<u8>` is.
#[derive(Serialize, Deserialize)]
struct RawUser {
    id: u64,
    tenant: String,
    name: String,
    age: u32,
    email: Vec<u8>,
    ssn: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct RawHead {
    version: u32,
    entries: Vec<(u32, Vec<u8>)>,
}

/// Rewrites the stored ssn of user `id`: `edit` gets the record's binding
/// and the sealed bytes.
fn edit_ssn(db: &Db, id: u64, edit: impl FnOnce(&[u8], &mut Vec<u8>)) {
    let ks = db.keyspace("sealkv.collection.users").unwrap();
    let pk = id.to_be_bytes();
    let rkey = [&[1u8][..], &pk].concat();
    let stored = ks.get(&rkey).unwrap().unwrap();
    let (head, body) = postcard::take_from_bytes::<RawHead>(&stored[1..]).unwrap();
    let mut raw: RawUser = postcard::from_bytes(body).unwrap();
    let mut binding = b"sealkv/collections/v1/record".to_vec();
    binding.extend_from_slice(&5u32.to_be_bytes());
    binding.extend_from_slice(b"users");
    binding.extend_from_slice(&pk);
    edit(&binding, &mut raw.ssn);
    let mut out = vec![stored[0]];
    out.extend_from_slice(&postcard::to_allocvec(&head).unwrap());
    out.extend_from_slice(&postcard::to_allocvec(&raw).unwrap());
    ks.put(&rkey, &out).unwrap();
}

/// Replaces the stored ssn of user `id` with `ssn` sealed under `key`,
/// bound to that record (so only the key differs).
fn reseal_ssn(db: &Db, id: u64, key: sealkv::crypto::KeyId, ssn: &str) {
    edit_ssn(db, id, |binding, sealed| {
        *sealed = db
            .seal_field(
                key,
                binding,
                &postcard::to_allocvec(&ssn.to_string()).unwrap(),
            )
            .unwrap();
    });
}

#[test]
fn a_sealed_field_naming_an_unknown_key_is_a_finding() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path(), false);
    let users = users(&db);
    users
        .insert(&user(1, "acme", "ada", 36, "ada@x.org"))
        .unwrap();
    users
        .insert(&user(2, "acme", "bo", 40, "bo@x.org"))
        .unwrap();
    // The header's key id (bytes 4..8, little-endian) names no key.
    edit_ssn(&db, 1, |_, sealed| {
        sealed[4..8].copy_from_slice(&9999u32.to_le_bytes())
    });
    let err = users.get(&1).unwrap_err();
    assert!(
        matches!(&err, Error::Corruption { collection, .. } if collection == "users"),
        "{err:?}"
    );
    let report = users.verify().unwrap();
    assert_eq!(report.records, 2);
    assert_eq!(
        report.findings,
        [Finding::DamagedRecord {
            key: 1u64.to_be_bytes().to_vec()
        }]
    );
}

#[test]
fn a_sealed_field_under_another_tenants_key_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path(), false);
    let users = users(&db);
    users
        .insert(&user(1, "acme", "ada", 36, "ada@x.org"))
        .unwrap();
    users
        .insert(&user(2, "globex", "bo", 40, "bo@x.org"))
        .unwrap();
    let tenants = Tenants::open(&db).unwrap();
    let globex = tenants.key_of("globex").unwrap().unwrap();

    // Sealed under globex's key, bound to ada's record: it opens, but it
    // is not ada's tenant's.
    reseal_ssn(&db, 1, globex, "forged");
    let err = users.get(&1).unwrap_err();
    assert!(
        matches!(&err, Error::Corruption { collection, .. } if collection == "users"),
        "{err:?}"
    );
    // Once globex is erased, the field must not pass for erased either:
    // erased is decided only for the record's own key.
    assert!(tenants.erase("globex").unwrap());
    let err = users.get(&1).unwrap_err();
    assert!(
        matches!(&err, Error::Corruption { collection, .. } if collection == "users"),
        "{err:?}"
    );
    let err = users.iter().unwrap().find_map(Result::err).unwrap();
    assert!(matches!(err, Error::Corruption { .. }), "{err:?}");
    // Globex's own record reads erased, as it should.
    assert!(users.get(&2).unwrap().unwrap().ssn.is_erased());
}

#[test]
fn comparing_a_sealed_field_in_a_key_counts_as_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path(), false);
    // An index of whether the secret equals a guess would store the answer
    // in clear.
    let guess = Sealed::new("s".to_string());
    let by_guess = Collection::open(
        &db,
        Schema::new("g", |_: &Leaky| 1u8).index("is_s", Index::plain(), move |l| l.secret == guess),
    )
    .unwrap();
    let leaky = Leaky {
        id: Sealed::new(1),
        secret: Sealed::new("s".into()),
    };
    let err = by_guess.insert(&leaky).unwrap_err();
    assert!(matches!(err, Error::SealedFieldInKey { .. }), "{err:?}");
    assert_eq!(by_guess.count().unwrap(), 0);
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Contact {
    id: u8,
    email: Sealed<String>,
}

/// The tags of every blind entry of collection `name`.
fn stored_tags(db: &Db, name: &str) -> Vec<Vec<u8>> {
    let ks = db.keyspace(&format!("sealkv.collection.{name}")).unwrap();
    ks.prefix([2u8])
        .unwrap()
        .map(|item| item.unwrap().0[5..].to_vec())
        .collect()
}

#[test]
fn a_blind_index_declared_again_gets_tags_unlinkable_to_the_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path(), false);
    let with_email = || {
        Schema::new("contacts", |c: &Contact| c.id).index("email", Index::unique().blind(), |c| {
            c.email.value().cloned()
        })
    };
    let contacts = Collection::open(&db, with_email()).unwrap();
    contacts
        .insert(&Contact {
            id: 1,
            email: Sealed::new("ada@x.org".into()),
        })
        .unwrap();
    let before = stored_tags(&db, "contacts");
    assert_eq!(before.len(), 1);
    // Dropped, then declared again under the same name: a new index.
    drop(contacts);
    drop(Collection::open(&db, Schema::new("contacts", |c: &Contact| c.id)).unwrap());
    assert!(stored_tags(&db, "contacts").is_empty());
    let contacts = Collection::open(&db, with_email()).unwrap();
    let after = stored_tags(&db, "contacts");
    assert_eq!(after.len(), 1);
    assert_ne!(before, after, "the same value must get another tag");
    assert_eq!(
        contacts
            .find("email", &Some("ada@x.org".to_string()))
            .unwrap()
            .len(),
        1
    );
}
