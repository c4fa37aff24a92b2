//! Re-encryption: everything rewritten under the active data key, old keys
//! retired only when nothing on disk names them, resumable after a stop or
//! a crash, while writes go on.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::Path;

use sealkv::crypto::{EncryptionAlgorithm, KeyId};
use sealkv::{Db, Error};
use sealkv_fileio::SimVfs;
use sealkv_testkit::{Canaries, read_sim_tree, scan_for_plaintext};

use crate::support::{dir, sim_config};

const ALGS: [EncryptionAlgorithm; 3] = EncryptionAlgorithm::ALL;

/// Data key ids named in the clear headers of every page of the page file
/// and every WAL segment, read independently of the engine: page header
/// bytes 4..8 (big-endian), segment header bytes 16..20 (little-endian).
fn keys_named_on_disk(vfs: &SimVfs) -> BTreeMap<u32, usize> {
    let mut out = BTreeMap::new();
    for (name, bytes) in read_sim_tree(vfs, &dir()) {
        if name.ends_with(".sealkv") {
            for page in bytes.chunks(4096).skip(1) {
                if page.iter().any(|&b| b != 0) {
                    let dek = u32::from_be_bytes(page[4..8].try_into().unwrap());
                    *out.entry(dek).or_insert(0) += 1;
                }
            }
        } else if name.ends_with(".wal") && bytes.len() >= 128 {
            let dek = u32::from_le_bytes(bytes[16..20].try_into().unwrap());
            *out.entry(dek).or_insert(0) += 1;
        }
    }
    out
}

fn fill(db: &Db, model: &mut BTreeMap<Vec<u8>, Vec<u8>>, from: usize, n: usize, tag: u8) {
    for i in from..from + n {
        let key = format!("key-{i:06}").into_bytes();
        // Every 97th value spills into overflow pages.
        let len = if i % 97 == 0 { 9000 } else { 40 };
        let value = vec![tag ^ (i as u8); len];
        db.put(&key, &value).unwrap();
        model.insert(key, value);
    }
}

fn assert_matches(db: &Db, model: &BTreeMap<Vec<u8>, Vec<u8>>) {
    let got: BTreeMap<Vec<u8>, Vec<u8>> = db
        .range::<&[u8]>(..)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(got.len(), model.len());
    assert!(got == *model, "contents differ from the model");
}

fn run(db: &Db) -> sealkv::ReencryptReport {
    db.reencrypt(&mut |_| ControlFlow::Continue(())).unwrap()
}

#[test]
fn reencrypt_rewrites_everything_and_retires_every_old_key() {
    for alg in ALGS {
        let vfs = SimVfs::new();
        let canaries = Canaries::new(40);
        let db = Db::open_with_config(sim_config(&vfs, Some(alg))).unwrap();
        let mut model = BTreeMap::new();
        fill(&db, &mut model, 0, 3000, 1);
        for i in 0..canaries.len() {
            db.put(canaries.key(i), canaries.value(i)).unwrap();
            model.insert(canaries.key(i).to_vec(), canaries.value(i).to_vec());
        }
        db.flush().unwrap();
        let first = db.stats().unwrap().encryption.active_key.unwrap();
        let second = db.rotate_data_key().unwrap();
        fill(&db, &mut model, 3000, 500, 2);
        let third = db.rotate_data_key().unwrap();
        fill(&db, &mut model, 100, 200, 3); // overwrites
        let before = keys_named_on_disk(&vfs);
        assert!(before.contains_key(&first.0), "{alg:?}: {before:?}");

        let mut steps = 0;
        let report = db
            .reencrypt(&mut |p| {
                steps += 1;
                assert!(p.entries > 0 && p.pages_written > 0);
                ControlFlow::Continue(())
            })
            .unwrap();
        assert!(report.complete);
        assert!(steps >= 3, "{steps} steps for 3,540 entries");
        assert_eq!(report.entries, model.len() as u64);
        assert!(report.pages_zeroed > 0);
        assert_eq!(report.retired, vec![first, second]);
        assert_eq!(report.coverage.keys.len(), 1);
        let active = report.coverage.keys[0];
        assert!(active.active && active.id == third && active.pages > 0);
        assert!(!report.coverage.reencrypt_pending);

        // Independently of the engine: no page or segment names an old key.
        let after = keys_named_on_disk(&vfs);
        assert_eq!(
            after.keys().copied().collect::<Vec<_>>(),
            vec![third.0],
            "{alg:?}"
        );
        assert_matches(&db, &model);
        let status = db.stats().unwrap().encryption;
        assert_eq!(status.data_keys, vec![third]);
        db.close().unwrap();
        let leaks = scan_for_plaintext(&read_sim_tree(&vfs, &dir()), &canaries);
        assert!(leaks.is_empty(), "{leaks:?}");

        let db = Db::open_with_config(sim_config(&vfs, Some(alg))).unwrap();
        assert_matches(&db, &model);
        assert!(db.verify().unwrap().is_clean());
        assert_eq!(db.stats().unwrap().encryption.data_keys, vec![third]);
    }
}

#[test]
fn a_stopped_or_crashed_reencrypt_goes_on_from_its_durable_cursor() {
    for alg in ALGS {
        let vfs = SimVfs::new();
        let db = Db::open_with_config(sim_config(&vfs, Some(alg))).unwrap();
        let mut model = BTreeMap::new();
        fill(&db, &mut model, 0, 4000, 5);
        db.flush().unwrap();
        let old = db.stats().unwrap().encryption.active_key.unwrap();
        db.rotate_data_key().unwrap();
        // Stop after the first step.
        let report = db.reencrypt(&mut |_| ControlFlow::Break(())).unwrap();
        assert!(!report.complete);
        assert!(report.retired.is_empty());
        assert!(report.entries > 0 && report.entries < 4000);
        let done_first = report.entries;
        assert!(db.key_coverage().unwrap().reencrypt_pending);
        // More writes, then a power cut (nothing synced is lost: Always).
        fill(&db, &mut model, 4000, 100, 6);
        drop(db);
        vfs.crash();

        let db = Db::open_with_config(sim_config(&vfs, Some(alg))).unwrap();
        let coverage = db.key_coverage().unwrap();
        assert!(coverage.reencrypt_pending, "{alg:?}: the cursor survived");
        let old_cov = coverage.keys.iter().find(|k| k.id == old).unwrap();
        assert!(old_cov.pages > 0);
        let report = run(&db);
        assert!(report.complete);
        // It went on from the cursor: the entries before it were not redone.
        assert!(report.entries <= 4100 - done_first, "{}", report.entries);
        assert_eq!(report.retired, vec![old]);
        assert!(!keys_named_on_disk(&vfs).contains_key(&old.0));
        assert_matches(&db, &model);
        assert!(db.verify().unwrap().is_clean());
    }
}

#[test]
fn writes_and_reads_go_on_during_reencrypt() {
    let vfs = SimVfs::new();
    let alg = Some(EncryptionAlgorithm::Aes256Gcm);
    let db = Db::open_with_config(sim_config(&vfs, alg)).unwrap();
    let mut model = BTreeMap::new();
    fill(&db, &mut model, 0, 3000, 7);
    db.flush().unwrap();
    let old = db.stats().unwrap().encryption.active_key.unwrap();
    db.rotate_data_key().unwrap();
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || {
            let mut mine = BTreeMap::new();
            for round in 0..6 {
                fill(&db, &mut mine, round * 400, 400, 8 + round as u8);
                db.flush().unwrap();
            }
            mine
        })
    };
    let mut checked = 0;
    let report = db
        .reencrypt(&mut |_| {
            // A read in the middle sees a consistent value.
            let v = db.get(b"key-000001").unwrap().unwrap();
            assert_eq!(v.len(), 40);
            checked += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
    let mine = writer.join().unwrap();
    model.extend(mine);
    assert!(report.complete && checked > 0);
    assert_matches(&db, &model);
    // The writer's flushes ran under the new key too: old key retired.
    assert_eq!(report.retired, vec![old]);
    assert!(!keys_named_on_disk(&vfs).contains_key(&old.0));
}

#[test]
fn a_key_still_in_use_is_kept_and_reported() {
    let vfs = SimVfs::new();
    let alg = Some(EncryptionAlgorithm::ChaCha20Poly1305);
    let db = Db::open_with_config(sim_config(&vfs, alg)).unwrap();
    let mut model = BTreeMap::new();
    fill(&db, &mut model, 0, 2000, 9);
    db.flush().unwrap();
    let old = db.stats().unwrap().encryption.active_key.unwrap();
    db.rotate_data_key().unwrap();
    // A snapshot keeps the old tree's pages from being zeroed.
    let snap = db.snapshot().unwrap();
    let report = run(&db);
    assert!(report.complete);
    assert!(report.retired.is_empty(), "{:?}", report.retired);
    let cov = report.coverage.keys.iter().find(|k| k.id == old).unwrap();
    assert!(!cov.active && cov.pages > 0);
    assert_eq!(snap.get(b"key-000002").unwrap().unwrap().len(), 40);
    drop(snap);
    let report = run(&db);
    assert_eq!(report.retired, vec![old]);
    assert_matches(&db, &model);
}

#[test]
fn reencrypt_needs_an_encrypted_writable_database() {
    let vfs = SimVfs::new();
    let db = Db::open_with_config(sim_config(&vfs, None)).unwrap();
    assert!(matches!(
        run_err(&db),
        Error::NotEncrypted {
            operation: "reencrypt"
        }
    ));
    assert!(db.key_coverage().unwrap().keys.is_empty());
    let _: &Path = db.path();
    let _ = KeyId(0);
}

fn run_err(db: &Db) -> Error {
    db.reencrypt(&mut |_| ControlFlow::Continue(()))
        .unwrap_err()
}

/// Re-encryption's edge cases: keys as long as the page allows do not overflow
/// the meta page's cursor; short reads running during the pass do not keep
/// the old key; a rotation between a stopped pass and its resumption still
/// ends with only the newest key.
#[test]
fn long_keys_concurrent_readers_and_a_rotation_mid_pass() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let alg = Some(EncryptionAlgorithm::Aes256Gcm);

    let vfs = SimVfs::new();
    let db = Db::open_with_config(sim_config(&vfs, alg)).unwrap();
    let max = db.max_key_len();
    for i in 0..1100u32 {
        let mut key = vec![b'k'; max];
        key[max - 4..].copy_from_slice(&i.to_be_bytes()); // shared long prefix
        db.put(&key, b"v").unwrap();
    }
    db.flush().unwrap();
    let old = db.stats().unwrap().encryption.active_key.unwrap();
    db.rotate_data_key().unwrap();
    let report = run(&db);
    // Keys sharing a prefix longer than the cursor are re-put from it.
    assert!(report.entries >= 1100, "{}", report.entries);
    assert_eq!(report.retired, vec![old]);

    let vfs = SimVfs::new();
    let db = Db::open_with_config(sim_config(&vfs, alg)).unwrap();
    let mut model = BTreeMap::new();
    fill(&db, &mut model, 0, 3000, 1);
    db.flush().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                assert!(db.range::<&[u8]>(..).unwrap().take(500).count() > 0);
                // Moments with no reader at all: a pass must not take one
                // for "every reader let go" before it zeroed what they held.
                std::thread::sleep(std::time::Duration::from_micros(500));
            }
        })
    };
    for _ in 0..3 {
        let old = db.stats().unwrap().encryption.active_key.unwrap();
        db.rotate_data_key().unwrap();
        let r = run(&db);
        assert_eq!(r.retired, vec![old], "a short reader kept the old key");
    }
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();

    let vfs = SimVfs::new();
    let db = Db::open_with_config(sim_config(&vfs, alg)).unwrap();
    let mut model = BTreeMap::new();
    fill(&db, &mut model, 0, 4000, 1);
    db.flush().unwrap();
    db.rotate_data_key().unwrap();
    assert!(
        !db.reencrypt(&mut |_| ControlFlow::Break(()))
            .unwrap()
            .complete
    );
    let newest = db.rotate_data_key().unwrap();
    let r = run(&db);
    assert!(r.complete);
    assert_eq!(r.coverage.keys.len(), 1, "{:?}", r.coverage);
    assert_eq!(r.coverage.keys[0].id, newest);
    assert!(!keys_named_on_disk(&vfs).keys().any(|&k| k != newest.0));
    assert_matches(&db, &model);
}
