//! Sealed values stored by the caller (`seal_field`, `open_field`) and
//! blind-index keys.

use std::collections::HashSet;

use sealkv::crypto::field::FieldError;
use sealkv::{Config, Db, Error};
use sealkv_fileio::SimVfs;

use crate::support::{dir, key, sim_config};

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
    assert_ne!(a, b, "another counter per seal");
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
fn open_field_into_replaces_what_the_buffer_held_in_either_format() {
    let vfs = SimVfs::new();
    let db = Db::open_with_config(plaintext_with_key(&vfs)).unwrap();
    let randomized = db.create_field_key().unwrap();
    let deterministic = db.create_deterministic_field_key().unwrap();
    let format_2 = db.seal_field(randomized, b"ctx", b"two").unwrap();
    let format_1 = db
        .deterministic_token(b"one", deterministic, b"field")
        .unwrap();
    let mut out = b"a longer value the buffer held before".to_vec();
    db.open_field_into(b"ctx", &format_2, &mut out).unwrap();
    assert_eq!(out, b"two");
    out.extend_from_slice(b" and more");
    db.open_field_into(b"field", &format_1, &mut out).unwrap();
    assert_eq!(out, b"one");
    // A refused open leaves nothing in the buffer, opened or held before.
    assert!(matches!(
        db.open_field_into(b"other", &format_2, &mut out),
        Err(Error::Field(_))
    ));
    assert!(out.is_empty());
    out.extend_from_slice(b"held");
    assert!(matches!(
        db.open_field_into(b"other", &format_1, &mut out),
        Err(Error::Field(_))
    ));
    assert!(out.is_empty());
    db.destroy_field_key(randomized).unwrap();
    out.extend_from_slice(b"held");
    assert!(matches!(
        db.open_field_into(b"ctx", &format_2, &mut out),
        Err(Error::KeyDestroyed(k)) if k == randomized
    ));
    assert!(out.is_empty());
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

/// The (session salt, counter) a format-2 value was sealed under, read
/// from its bytes (FORMAT.md): magic 0xF2, mode, algorithm, key id, then
/// the salt and the counter (u32 BE).
fn salt_and_counter(sealed: &[u8]) -> ([u8; 32], u32) {
    assert_eq!(sealed[0], 0xF2, "randomized values are written in format 2");
    assert_eq!(sealed[1], 1, "mode randomized");
    (
        sealed[8..40].try_into().unwrap(),
        u32::from_be_bytes(sealed[40..44].try_into().unwrap()),
    )
}

#[test]
fn randomized_values_are_format_2_and_open_in_their_context_only() {
    let vfs = SimVfs::new();
    let db = Db::open_with_config(plaintext_with_key(&vfs)).unwrap();
    let fk = db.create_field_key().unwrap();
    let a = db.seal_field(fk, b"ctx/1", b"secret").unwrap();
    let b = db.seal_field(fk, b"ctx/1", b"secret").unwrap();
    assert_eq!(a.len(), 6 + 44 + 16, "value + 44-byte header + tag");
    let (salt_a, ctr_a) = salt_and_counter(&a);
    let (salt_b, ctr_b) = salt_and_counter(&b);
    assert_eq!(salt_a, salt_b, "one session per field key and handle");
    assert_eq!((ctr_a, ctr_b), (0, 1));
    db.put_sealed(b"rec", b"v", fk).unwrap();
    let stored = db.get(b"rec").unwrap().unwrap();
    assert_eq!(salt_and_counter(&stored), (salt_a, 2));
    assert_eq!(db.get_sealed(b"rec", None).unwrap().unwrap(), b"v");
    // Every byte flipped: refused, the header's tampering (salt, counter,
    // algorithm) and the body's as a failed authentication.
    for i in 0..a.len() {
        let mut s = a.clone();
        s[i] ^= 0x80;
        let err = db.open_field(b"ctx/1", &s).unwrap_err();
        if i == 0 || i == 1 {
            assert!(matches!(err, Error::Field(_)), "{i}: {err:?}");
        } else if (4..8).contains(&i) {
            assert!(matches!(err, Error::UnknownKey(_)), "{i}: {err:?}");
        } else {
            assert!(
                matches!(err, Error::Field(FieldError::Authentication)),
                "{i}: {err:?}"
            );
        }
    }
    assert!(matches!(
        db.open_field(b"ctx/2", &a),
        Err(Error::Field(FieldError::Authentication))
    ));
    // Relabelled as format 1 (0xF2 to 0xF1): parsed, refused by its tag.
    let mut as_v1 = a.clone();
    as_v1[0] = 0xF1;
    assert!(matches!(
        db.open_field(b"ctx/1", &as_v1),
        Err(Error::Field(FieldError::Authentication))
    ));
}

#[test]
fn session_salt_and_counter_pairs_never_repeat_across_threads_reopens_and_copies() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 500;
    let vfs = SimVfs::new();
    let mut seen = HashSet::new();
    let mut seals = 0usize;
    let mut record = |sealed: &[u8]| {
        seals += 1;
        assert!(seen.insert(salt_and_counter(sealed)), "a pair repeated");
    };
    let fk = {
        let db = Db::open_with_config(plaintext_with_key(&vfs)).unwrap();
        db.create_field_key().unwrap()
    };
    let mut salts = HashSet::new();
    for cycle in 0..3 {
        let db = Db::open_with_config(plaintext_with_key(&vfs)).unwrap();
        let sealed: Vec<Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let db = &db;
                    s.spawn(move || {
                        (0..PER_THREAD)
                            .map(|i| {
                                let key = format!("{cycle}/{t}/{i}");
                                db.put_sealed(&key, b"v", fk).unwrap();
                                db.get(&key).unwrap().unwrap()
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        for v in &sealed {
            record(v);
            salts.insert(salt_and_counter(v).0);
        }
        if cycle == 1 {
            // A crash instead of a close: the next open is a new session.
            vfs.crash();
            drop(db);
        } else {
            db.close().unwrap();
        }
    }
    assert_eq!(salts.len(), 3, "one session per open, a new salt each");

    // A copied directory written on both sides.
    let copy = dir().with_file_name("copy");
    vfs.copy_tree(&dir(), &copy);
    let original = Db::open_with_config(plaintext_with_key(&vfs)).unwrap();
    let twin = Db::open_with_config(
        Config::new(&copy)
            .vfs(std::sync::Arc::new(vfs.clone()))
            .encryption_key(key(5))
            .encrypt_at_rest(false),
    )
    .unwrap();
    for i in 0..200 {
        for db in [&original, &twin] {
            let sealed = db
                .seal_field(fk, b"both", format!("{i}").as_bytes())
                .unwrap();
            assert_eq!(
                db.open_field(b"both", &sealed).unwrap(),
                format!("{i}").as_bytes()
            );
            record(&sealed);
        }
    }
    assert_eq!(
        seals,
        3 * THREADS * PER_THREAD + 2 * 200,
        "every seal was recorded"
    );
    assert_eq!(seen.len(), seals);
}

/// Two read-only handles of one directory open at once in one process (a
/// writer excludes every other handle; readers share the directory), each
/// sealing on its own thread: each handle has its own session, so no
/// (salt, counter) pair is shared, and each opens the other's values.
#[test]
fn two_open_handles_of_one_directory_share_no_pair() {
    const PER_HANDLE: usize = 400;
    let vfs = SimVfs::new();
    let fk = {
        let db = Db::open_with_config(plaintext_with_key(&vfs)).unwrap();
        let fk = db.create_field_key().unwrap();
        db.close().unwrap();
        fk
    };
    let first = Db::open_with_config(plaintext_with_key(&vfs).read_only(true)).unwrap();
    let second = Db::open_with_config(plaintext_with_key(&vfs).read_only(true)).unwrap();
    let barrier = std::sync::Barrier::new(2);
    let sealed: Vec<Vec<Vec<u8>>> = std::thread::scope(|s| {
        let handles: Vec<_> = [&first, &second]
            .into_iter()
            .map(|db| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    (0..PER_HANDLE)
                        .map(|i| db.seal_field(fk, b"ctx", &i.to_be_bytes()).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let salts: Vec<HashSet<[u8; 32]>> = sealed
        .iter()
        .map(|vs| vs.iter().map(|v| salt_and_counter(v).0).collect())
        .collect();
    assert_eq!((salts[0].len(), salts[1].len()), (1, 1), "one session each");
    assert!(salts[0].is_disjoint(&salts[1]), "the handles' salts differ");
    let pairs: HashSet<_> = sealed
        .iter()
        .flatten()
        .map(|v| salt_and_counter(v))
        .collect();
    assert_eq!(pairs.len(), 2 * PER_HANDLE, "no pair repeats");
    // Each handle opens the other's values.
    for (db, theirs) in [(&first, &sealed[1]), (&second, &sealed[0])] {
        for (i, v) in theirs.iter().enumerate() {
            assert_eq!(db.open_field(b"ctx", v).unwrap(), i.to_be_bytes());
        }
    }
}

#[test]
fn a_session_at_its_last_counter_hands_over_to_a_new_salt() {
    let vfs = SimVfs::new();
    let db = Db::open_with_config(plaintext_with_key(&vfs)).unwrap();
    let fk = db.create_field_key().unwrap();
    let first = db.seal_field(fk, b"c", b"first").unwrap();
    let (salt, _) = salt_and_counter(&first);
    db.skip_field_session_to(fk, u64::from(u32::MAX)).unwrap();
    let last = db.seal_field(fk, b"c", b"last").unwrap();
    assert_eq!(salt_and_counter(&last), (salt, u32::MAX));
    let next = db.seal_field(fk, b"c", b"next").unwrap();
    let (new_salt, counter) = salt_and_counter(&next);
    assert_ne!(
        new_salt, salt,
        "a new session, never counter 2^32 or a wrap"
    );
    assert_eq!(counter, 0);
    for (v, want) in [(&first, &b"first"[..]), (&last, b"last"), (&next, b"next")] {
        assert_eq!(db.open_field(b"c", v).unwrap(), want);
    }
}

#[test]
fn a_session_started_in_another_process_is_replaced_by_a_new_salt() {
    // A child forked after a session started holds the parent's salt and
    // counter: sealing in it would repeat the parent's (subkey, nonce).
    let vfs = SimVfs::new();
    let db = Db::open_with_config(plaintext_with_key(&vfs)).unwrap();
    let fk = db.create_field_key().unwrap();
    let parent = db.seal_field(fk, b"c", b"parent").unwrap();
    let (parent_salt, parent_counter) = salt_and_counter(&parent);
    db.pretend_field_session_forked(fk).unwrap();
    let child = db.seal_field(fk, b"c", b"child").unwrap();
    let (child_salt, child_counter) = salt_and_counter(&child);
    assert_ne!(child_salt, parent_salt, "the child seals under a new salt");
    assert_eq!((parent_counter, child_counter), (0, 0));
    // The new session is the child's own: it goes on with its counter.
    let again = db.seal_field(fk, b"c", b"again").unwrap();
    assert_eq!(salt_and_counter(&again), (child_salt, 1));
    for (v, want) in [
        (&parent, &b"parent"[..]),
        (&child, b"child"),
        (&again, b"again"),
    ] {
        assert_eq!(db.open_field(b"c", v).unwrap(), want);
    }
}

#[test]
fn a_value_with_a_forged_salt_fails_to_authenticate_and_caches_no_opener() {
    let vfs = SimVfs::new();
    {
        let db = Db::open_with_config(plaintext_with_key(&vfs)).unwrap();
        let fk = db.create_field_key().unwrap();
        db.put_sealed(b"rec", b"v", fk).unwrap();
        db.close().unwrap();
    }
    let db = Db::open_with_config(plaintext_with_key(&vfs)).unwrap();
    let genuine = db.get(b"rec").unwrap().unwrap();
    assert_eq!(db.field_openers_cached().unwrap(), 0, "a fresh handle");
    // Salts that no session of this key drew: the header names them, but
    // only the tag can tell whether they are true.
    for i in 0..32u8 {
        let mut forged = genuine.clone();
        forged[8 + usize::from(i)] ^= 0x5a;
        assert!(matches!(
            db.open_field(b"rec", &forged),
            Err(Error::Field(FieldError::Authentication))
        ));
    }
    assert_eq!(
        db.field_openers_cached().unwrap(),
        0,
        "no opener built from a forged salt was kept"
    );
    // The genuine value opens, and its session's opener is kept.
    assert_eq!(db.get_sealed(b"rec", None).unwrap().unwrap(), b"v");
    assert_eq!(db.field_openers_cached().unwrap(), 1);
    assert_eq!(db.open_field(b"rec", &genuine).unwrap(), b"v");
    assert_eq!(db.field_openers_cached().unwrap(), 1, "a hit, not a second");
}

#[test]
fn destroying_a_field_key_makes_its_format_2_values_unreadable_at_once_cached_or_not() {
    let vfs = SimVfs::new();
    let db = Db::open_with_config(plaintext_with_key(&vfs)).unwrap();
    let (doomed, kept) = (
        db.create_field_key().unwrap(),
        db.create_field_key().unwrap(),
    );
    let gone = db.seal_field(doomed, b"c", b"gone").unwrap();
    let stays = db.seal_field(kept, b"c", b"stays").unwrap();
    // Opened once, so its session's opener is cached.
    assert_eq!(db.open_field(b"c", &gone).unwrap(), b"gone");
    db.put_sealed(b"rec", b"gone too", doomed).unwrap();
    db.destroy_field_key(doomed).unwrap();
    let destroyed =
        |r: Result<(), Error>| matches!(r, Err(Error::KeyDestroyed(id)) if id == doomed);
    assert!(destroyed(db.open_field(b"c", &gone).map(drop)));
    assert!(destroyed(db.get_sealed(b"rec", None).map(drop)));
    assert!(destroyed(db.seal_field(doomed, b"c", b"v").map(drop)));
    assert_eq!(db.open_field(b"c", &stays).unwrap(), b"stays");
    db.close().unwrap();
    let db = Db::open_with_config(plaintext_with_key(&vfs)).unwrap();
    assert!(destroyed(db.open_field(b"c", &gone).map(drop)));
    assert!(destroyed(db.get_sealed(b"rec", None).map(drop)));
    assert_eq!(db.open_field(b"c", &stays).unwrap(), b"stays");
}

#[test]
fn an_opener_built_on_read_for_an_earlier_handles_session_dies_with_its_key() {
    let vfs = SimVfs::new();
    let fk = {
        let db = Db::open_with_config(plaintext_with_key(&vfs)).unwrap();
        let fk = db.create_field_key().unwrap();
        db.put_sealed(b"rec", b"earlier", fk).unwrap();
        db.close().unwrap();
        fk
    };
    let db = Db::open_with_config(plaintext_with_key(&vfs)).unwrap();
    // Read in this handle: the earlier handle's session gets an opener here.
    assert_eq!(db.get_sealed(b"rec", None).unwrap().unwrap(), b"earlier");
    assert_eq!(
        db.field_openers_cached().unwrap(),
        1,
        "its opener is cached"
    );
    db.destroy_field_key(fk).unwrap();
    assert_eq!(db.field_openers_cached().unwrap(), 0, "dropped by destroy");
    assert!(matches!(
        db.get_sealed(b"rec", None),
        Err(Error::KeyDestroyed(id)) if id == fk
    ));
    let sealed = db.get(b"rec").unwrap().unwrap();
    assert!(matches!(
        db.open_field(b"rec", &sealed),
        Err(Error::KeyDestroyed(id)) if id == fk
    ));
    assert_eq!(db.field_openers_cached().unwrap(), 0, "none built again");
}
