//! Sealed values stored by the caller (`seal_field`, `open_field`) and
//! blind-index keys.

use sealkv::{Db, Error};
use sealkv_fileio::SimVfs;

use crate::support::{key, sim_config};

fn plaintext_with_key(vfs: &SimVfs) -> sealkv::Config {
    sim_config(vfs, None)
        .encryption_key(key(5))
        .encrypt_at_rest(false)
}

#[test]
fn sealed_values_open_in_their_context_only_and_die_with_their_key() {
    let vfs = SimVfs::new();
    let db = Db::open_with_config(plaintext_with_key(&vfs)).unwrap();
    let fk = db.create_field_key().unwrap();
    let a = db.seal_field(fk, b"ctx/1", b"secret").unwrap();
    let b = db.seal_field(fk, b"ctx/1", b"secret").unwrap();
    assert_ne!(a, b, "a fresh salt per seal");
    assert!(!a.windows(6).any(|w| w == b"secret"));
    assert_eq!(db.open_field(b"ctx/1", &a).unwrap(), b"secret");
    assert!(matches!(db.open_field(b"ctx/2", &a), Err(Error::Field(_))));
    // put_sealed's values open the same way, their record key as context.
    db.put_sealed(b"rec", b"v", fk).unwrap();
    let stored = db.get(b"rec").unwrap().unwrap();
    assert_eq!(db.open_field(b"rec", &stored).unwrap(), b"v");

    db.destroy_field_key(fk).unwrap();
    assert!(matches!(db.open_field(b"ctx/1", &a), Err(Error::KeyDestroyed(id)) if id == fk));
    assert!(matches!(
        db.seal_field(fk, b"c", b"v"),
        Err(Error::KeyDestroyed(_))
    ));
    assert!(matches!(
        db.blind_index_key(fk, &[b"s"]),
        Err(Error::KeyDestroyed(_))
    ));
}

#[test]
fn blind_index_keys_are_stable_per_scope_and_key_and_survive_reopen() {
    let vfs = SimVfs::new();
    let db = Db::open_with_config(plaintext_with_key(&vfs)).unwrap();
    let (f1, f2) = (
        db.create_field_key().unwrap(),
        db.create_field_key().unwrap(),
    );
    let tag = |db: &Db, fk, scope: &[&[u8]]| db.blind_index_key(fk, scope).unwrap().tag(b"a@b.org");
    let t = tag(&db, f1, &[b"users", b"email"]);
    assert_eq!(t, tag(&db, f1, &[b"users", b"email"]));
    assert_ne!(t, tag(&db, f2, &[b"users", b"email"]));
    assert_ne!(t, tag(&db, f1, &[b"users", b"phone"]));
    db.close().unwrap();
    let db = Db::open_with_config(plaintext_with_key(&vfs)).unwrap();
    assert_eq!(t, tag(&db, f1, &[b"users", b"email"]));
    // The key's bytes are nowhere in its Debug.
    let k = db.blind_index_key(f1, &[b"users"]).unwrap();
    assert_eq!(format!("{k:?}"), "BlindIndexKey(<redacted>)");
}

#[test]
fn a_database_without_a_key_has_no_field_keys() {
    let vfs = SimVfs::new();
    let db = Db::open_with_config(sim_config(&vfs, None)).unwrap();
    assert!(matches!(
        db.seal_field(sealkv::crypto::KeyId(1), b"c", b"v"),
        Err(Error::MissingKey)
    ));
    assert!(matches!(
        db.blind_index_key(sealkv::crypto::KeyId(1), &[b"s"]),
        Err(Error::MissingKey)
    ));
}

#[test]
fn a_blind_index_key_used_before_its_field_key_is_destroyed_is_refused_after() {
    let vfs = SimVfs::new();
    let db = Db::open_with_config(plaintext_with_key(&vfs)).unwrap();
    let (doomed, kept) = (
        db.create_field_key().unwrap(),
        db.create_field_key().unwrap(),
    );
    let before = db.blind_index_key(kept, &[b"s"]).unwrap().tag(b"v");
    db.blind_index_key(doomed, &[b"s"]).unwrap();
    db.destroy_field_key(doomed).unwrap();
    assert!(matches!(
        db.blind_index_key(doomed, &[b"s"]),
        Err(Error::KeyDestroyed(_))
    ));
    assert_eq!(db.blind_index_key(kept, &[b"s"]).unwrap().tag(b"v"), before);
}
