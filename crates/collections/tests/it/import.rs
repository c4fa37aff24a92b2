//! Collections copied into another database by a logical export and
//! import: the field keys stay behind in the source's registry, so the
//! copied key ids must never be taken for the keys the copy gives them.

use std::path::Path;

use serde::{Deserialize, Serialize};

use sealkv::crypto::KeySource;
use sealkv::{Config, Db};
use sealkv_backup::archive::{self, ExportOptions, ImportOptions};
use sealkv_collections::{Collection, Error, Schema, Sealed, Tenants};

use crate::support::{key, open_db, schema, user, users};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u64,
    tenant: String,
    card: Sealed<String>,
}

fn orders(db: &Db) -> Result<Collection<Order, u64>, Error> {
    Collection::open(
        db,
        Schema::new("orders", |o: &Order| o.id).tenant(|o| o.tenant.clone()),
    )
}

fn order(id: u64, tenant: &str, card: &str) -> Order {
    Order {
        id,
        tenant: tenant.into(),
        card: Sealed::new(card.into()),
    }
}

fn copy_config(dir: &Path) -> Config {
    Config::new(dir)
        .encryption_key(key())
        .encrypt_at_rest(false)
}

/// Exports a database with a tenanted collection (tenants acme and
/// globex) and imports it into a new one; returns the copy.
fn imported(root: &Path) -> Db {
    let db = open_db(&root.join("source"), false);
    let users = users(&db);
    users
        .insert(&user(1, "acme", "ada", 36, "ada@x.org"))
        .unwrap();
    users
        .insert(&user(2, "globex", "bo", 40, "bo@x.org"))
        .unwrap();
    let archive_path = root.join("export.skva");
    archive::export(
        &db,
        &archive_path,
        &ExportOptions::sealed(KeySource::Key(key())),
        &mut |_| {},
    )
    .unwrap();
    drop(users);
    db.close().unwrap();
    let dest = root.join("copy");
    archive::import(
        &archive_path,
        Some(&KeySource::Key(key())),
        &dest,
        &copy_config,
        &ImportOptions::new(),
        &mut |_| {},
    )
    .unwrap();
    Db::open_with_config(copy_config(&dest)).unwrap()
}

#[test]
fn an_imported_tenant_never_shares_a_key_with_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let copy = imported(dir.path());

    // New tenants of the copy get the copy's first field keys: the ids the
    // imported mappings of acme and globex name.
    let orders = orders(&copy).unwrap();
    orders.insert(&order(1, "newco", "4111-newco")).unwrap();
    orders.insert(&order(2, "initech", "4111-initech")).unwrap();

    // Erasing an imported tenant must not destroy a new tenant's key.
    let tenants = Tenants::open(&copy).unwrap();
    let err = tenants.erase("acme").unwrap_err();
    assert!(matches!(err, Error::KeyMismatch { .. }), "{err:?}");
    let err = tenants.erase("globex").unwrap_err();
    assert!(matches!(err, Error::KeyMismatch { .. }), "{err:?}");
    for (id, card) in [(1, "4111-newco"), (2, "4111-initech")] {
        let o = orders.get(&id).unwrap().unwrap();
        assert_eq!(o.card.value().map(String::as_str), Some(card));
    }

    // Nor is a new record of an imported tenant sealed under another
    // tenant's key.
    let err = orders.insert(&order(3, "acme", "4111-acme")).unwrap_err();
    assert!(matches!(err, Error::KeyMismatch { .. }), "{err:?}");

    // The imported collection itself names a key of the source: refused
    // when opened, with the error that says so.
    let err = Collection::open(&copy, schema()).unwrap_err();
    assert!(matches!(err, Error::KeyMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("another database"), "{err}");
}
