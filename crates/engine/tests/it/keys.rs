//! Rekey, field-level encryption and crypto-shredding through `Db`.

use sealkv::crypto::field::FieldError;
use sealkv::crypto::{EncryptionAlgorithm, KeySource};
use sealkv::{Db, Error};
use sealkv_fileio::SimVfs;
use sealkv_testkit::{Canaries, read_sim_tree, scan_for_plaintext};

use crate::support::{dir, key, sim_config};

#[test]
fn rekey_then_only_the_new_key_opens_and_data_is_intact() {
    for alg in EncryptionAlgorithm::ALL {
        let vfs = SimVfs::new();
        let alg = Some(alg);
        let db = Db::open_with_config(sim_config(&vfs, alg)).unwrap();
        db.put(b"a", b"1").unwrap();
        let fk = db.create_field_key().unwrap();
        db.put_sealed(b"secret", b"field value", fk).unwrap();
        db.flush().unwrap();
        db.put(b"b", b"2").unwrap();
        db.rekey(KeySource::Key(key(99))).unwrap();
        db.close().unwrap();

        assert!(matches!(
            Db::open_with_config(sim_config(&vfs, alg)),
            Err(Error::WrongKey)
        ));
        let db = Db::open_with_config(sim_config(&vfs, None).encryption_key(key(99))).unwrap();
        assert_eq!(db.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(db.get(b"b").unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(
            db.get_sealed(b"secret", None).unwrap().as_deref(),
            Some(&b"field value"[..])
        );
    }
}

#[test]
fn field_values_stay_sealed_even_without_encryption_at_rest() {
    let vfs = SimVfs::new();
    let canaries = Canaries::new(40);
    // A plaintext database that holds a key for its field keys.
    let config = || {
        sim_config(&vfs, None)
            .encryption_key(key(5))
            .encrypt_at_rest(false)
    };
    let db = Db::open_with_config(config()).unwrap();
    let fk = db.create_field_key().unwrap();
    // Record keys are plain (the database is plaintext); values are sealed.
    let rec = |i: usize| format!("rec/{i:03}").into_bytes();
    for i in 0..canaries.len() {
        db.put_sealed(rec(i), canaries.value(i), fk).unwrap();
    }
    db.flush().unwrap();
    for i in 0..10 {
        db.put_sealed(rec(i), canaries.value(i + 10), fk).unwrap();
    }
    let values = canaries.values_only();
    let leaks = scan_for_plaintext(&read_sim_tree(&vfs, &dir()), &values);
    assert!(leaks.is_empty(), "{leaks:?}");
    assert_eq!(
        db.get_sealed(rec(3), None).unwrap().as_deref(),
        Some(canaries.value(13))
    );
    // A sealed value moved to another record does not open.
    let moved = db.get(rec(20)).unwrap().unwrap();
    db.put(rec(21), &moved).unwrap();
    assert!(matches!(db.get_sealed(rec(21), None), Err(Error::Field(_))));
    db.close().unwrap();
    let db = Db::open_with_config(config()).unwrap();
    assert_eq!(
        db.get_sealed(rec(30), None).unwrap().as_deref(),
        Some(canaries.value(30))
    );
}

#[test]
fn destroying_a_field_key_shreds_its_values_for_good() {
    for alg in EncryptionAlgorithm::ALL {
        let vfs = SimVfs::new();
        let alg = Some(alg);
        let db = Db::open_with_config(sim_config(&vfs, alg)).unwrap();
        let tenant_a = db.create_field_key().unwrap();
        let tenant_b = db.create_field_key().unwrap();
        db.put_sealed(b"a/email", b"a@example.com", tenant_a)
            .unwrap();
        db.put_sealed(b"b/email", b"b@example.com", tenant_b)
            .unwrap();
        db.destroy_field_key(tenant_a).unwrap();
        assert!(matches!(
            db.get_sealed(b"a/email", None),
            Err(Error::KeyDestroyed(id)) if id == tenant_a
        ));
        assert_eq!(
            db.get_sealed(b"b/email", None).unwrap().as_deref(),
            Some(&b"b@example.com"[..])
        );
        db.close().unwrap();
        let db = Db::open_with_config(sim_config(&vfs, alg)).unwrap();
        assert!(matches!(
            db.get_sealed(b"a/email", None),
            Err(Error::KeyDestroyed(_))
        ));
        assert!(db.get_sealed(b"b/email", None).unwrap().is_some());
    }
}

#[test]
fn deterministic_values_can_be_found_by_equality() {
    for alg in EncryptionAlgorithm::ALL {
        let vfs = SimVfs::new();
        let db = Db::open_with_config(sim_config(&vfs, Some(alg))).unwrap();
        let fk = db.create_deterministic_field_key().unwrap();
        db.put_deterministic(b"user/1/email", b"ada@example.com", fk, b"email")
            .unwrap();
        db.put_deterministic(b"user/2/email", b"bob@example.com", fk, b"email")
            .unwrap();
        let token = db
            .deterministic_token(b"ada@example.com", fk, b"email")
            .unwrap();
        let hits: Vec<_> = db
            .prefix(b"user/")
            .unwrap()
            .filter_map(Result::ok)
            .filter(|(_, v)| *v == token)
            .map(|(k, _)| k)
            .collect();
        assert_eq!(hits, vec![b"user/1/email".to_vec()]);
        assert_eq!(
            db.get_sealed(b"user/1/email", Some(b"email"))
                .unwrap()
                .as_deref(),
            Some(&b"ada@example.com"[..])
        );
        assert!(matches!(
            db.get_sealed(b"user/1/email", None),
            Err(Error::MissingFieldId)
        ));
        // Randomized keys cannot be used deterministically, in every mode.
        let random = db.create_field_key().unwrap();
        assert_not_misuse_resistant(db.put_deterministic(b"x", b"y", random, b"email"));
    }
}

#[test]
fn rotation_seals_new_writes_under_a_new_key_and_old_data_stays_readable() {
    for alg in EncryptionAlgorithm::ALL {
        let vfs = SimVfs::new();
        let alg = Some(alg);
        let canaries = Canaries::new(60);
        let db = Db::open_with_config(sim_config(&vfs, alg)).unwrap();
        for i in 0..30 {
            db.put(canaries.key(i), canaries.value(i)).unwrap();
        }
        db.flush().unwrap();
        let before = db.stats().unwrap().encryption;
        let new = db.rotate_data_key().unwrap();
        assert_ne!(Some(new), before.active_key);
        for i in 30..60 {
            db.put(canaries.key(i), canaries.value(i)).unwrap();
        }
        let after = db.stats().unwrap().encryption;
        assert_eq!(after.active_key, Some(new));
        assert_eq!(after.data_keys.len(), 2);
        assert!(after.registry_generation > before.registry_generation);
        db.flush().unwrap();
        db.close().unwrap();
        let leaks = scan_for_plaintext(&read_sim_tree(&vfs, &dir()), &canaries);
        assert!(leaks.is_empty(), "{leaks:?}");
        let db = Db::open_with_config(sim_config(&vfs, alg)).unwrap();
        for i in 0..60 {
            assert_eq!(
                db.get(canaries.key(i)).unwrap().as_deref(),
                Some(canaries.value(i))
            );
        }
        assert!(db.verify().unwrap().is_clean());
        // A plaintext database has no data key to rotate.
        let plain = SimVfs::new();
        let db = Db::open_with_config(sim_config(&plain, None)).unwrap();
        assert!(matches!(
            db.rotate_data_key(),
            Err(Error::NotEncrypted {
                operation: "rotate_data_key"
            })
        ));
    }
}

#[test]
fn an_older_registry_put_back_is_detected() {
    for alg in EncryptionAlgorithm::ALL {
        let vfs = SimVfs::new();
        let alg = Some(alg);
        let db = Db::open_with_config(sim_config(&vfs, alg)).unwrap();
        db.put(b"k", b"v").unwrap();
        db.flush().unwrap();
        let keys_path = dir().join("KEYS");
        let old = vfs.read_file(&keys_path).unwrap();
        db.rotate_data_key().unwrap();
        db.put(b"k2", b"v2").unwrap();
        db.flush().unwrap();
        db.close().unwrap();
        vfs.write_file(&keys_path, &old);
        let err = Db::open_with_config(sim_config(&vfs, alg)).unwrap_err();
        assert!(
            matches!(&err, Error::Rollback { file, .. } if file.ends_with("KEYS")),
            "{err:?}"
        );
    }
}

#[test]
fn the_registry_of_another_copy_at_the_same_generation_is_detected() {
    for algorithm in EncryptionAlgorithm::ALL {
        let vfs = SimVfs::new();
        let alg = Some(algorithm);
        let db = Db::open_with_config(sim_config(&vfs, alg)).unwrap();
        db.put(b"k", b"v").unwrap();
        db.close().unwrap();
        // `cp -r`: two copies, each rotates once (same generation, different keys).
        let copy = std::path::PathBuf::from("/copy");
        vfs.copy_tree(&dir(), &copy);
        for path in [dir(), copy.clone()] {
            let db = Db::open_with_config(
                sealkv::Config::new(&path)
                    .vfs(std::sync::Arc::new(vfs.clone()))
                    .encryption_key(key(7))
                    .encryption_algorithm(algorithm),
            )
            .unwrap();
            db.rotate_data_key().unwrap();
            db.put(b"k2", path.to_string_lossy().as_bytes()).unwrap();
            db.flush().unwrap();
            db.close().unwrap();
        }
        let theirs = vfs.read_file(&copy.join("KEYS")).unwrap();
        let ours = vfs.read_file(&dir().join("KEYS")).unwrap();
        vfs.write_file(&dir().join("KEYS"), &theirs);
        // Detected: the newest meta page does not open under the other copy's
        // key #2, the older one leaves WAL records the log cannot deliver.
        let err = Db::open_with_config(sim_config(&vfs, alg)).unwrap_err();
        assert!(
            matches!(&err, Error::Rollback { .. } | Error::Corruption { .. }),
            "{err:?}"
        );
        // Our own registry still opens everything.
        vfs.write_file(&dir().join("KEYS"), &ours);
        let db = Db::open_with_config(sim_config(&vfs, alg)).unwrap();
        assert_eq!(db.get(b"k2").unwrap().as_deref(), Some(&b"/db"[..]));
    }
}

/// A randomized field key is refused for deterministic use in every mode:
/// each algorithm, an AES-256-GCM-SIV database included (its randomized
/// field keys are AES-256-GCM: the registry records no mode, the algorithm
/// marks it), and a plaintext database that holds field keys.
#[test]
fn a_randomized_field_key_is_refused_for_deterministic_use_in_every_mode() {
    // `None`: a plaintext database that holds field keys.
    for mode in crate::support::modes() {
        let vfs = SimVfs::new();
        let config = match mode {
            Some(alg) => sim_config(&vfs, Some(alg)),
            None => sim_config(&vfs, None)
                .encryption_key(key(5))
                .encrypt_at_rest(false),
        };
        let db = Db::open_with_config(config).unwrap();
        let random = db.create_field_key().unwrap();
        assert_not_misuse_resistant(db.put_deterministic(b"x", b"y", random, b"email"));
        assert_not_misuse_resistant(db.deterministic_token(b"y", random, b"email"));
        assert_eq!(db.get(b"x").unwrap(), None, "nothing was written");
        // A deterministic key of the same database is accepted.
        let det = db.create_deterministic_field_key().unwrap();
        db.put_deterministic(b"x", b"y", det, b"email").unwrap();
    }
}

/// The refusal of a deterministic use of a randomized field key.
fn assert_not_misuse_resistant<T: std::fmt::Debug>(r: Result<T, Error>) {
    assert!(
        matches!(r, Err(Error::Field(FieldError::NotMisuseResistant(_)))),
        "{r:?}"
    );
}
