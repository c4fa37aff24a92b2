//! Encryption at rest end to end: nothing readable on disk, the right error
//! for every wrong key, tampering never returns wrong data.

use std::path::Path;

use sealkv::crypto::EncryptionAlgorithm;
use sealkv::{Db, Error};
use sealkv_fileio::SimVfs;
use sealkv_testkit::{Canaries, read_sim_tree, scan_for_plaintext};

use crate::support::{dir, key, modes, sim_config};

fn fill(db: &Db, canaries: &Canaries) {
    for i in 0..canaries.len() {
        db.put(canaries.key(i), canaries.value(i)).unwrap();
    }
}

#[test]
fn no_canary_reaches_the_disk_after_writes_flush_and_reopen() {
    for alg in EncryptionAlgorithm::ALL {
        let vfs = SimVfs::new();
        let canaries = Canaries::new(300);
        let db = Db::open_with_config(sim_config(&vfs, Some(alg))).unwrap();
        fill(&db, &canaries);
        // Some in the page file, some only in the WAL.
        db.flush().unwrap();
        for i in 0..50 {
            db.put(canaries.key(i), canaries.value(i + 50)).unwrap();
        }
        let leaks = scan_for_plaintext(&read_sim_tree(&vfs, &dir()), &canaries);
        assert!(leaks.is_empty(), "{alg}: {leaks:?}");
        db.close().unwrap();
        let db = Db::open_with_config(sim_config(&vfs, Some(alg))).unwrap();
        assert_eq!(
            db.get(canaries.key(3)).unwrap().as_deref(),
            Some(canaries.value(53))
        );
        db.put(b"after-reopen", canaries.value(1)).unwrap();
        db.close().unwrap();
        let leaks = scan_for_plaintext(&read_sim_tree(&vfs, &dir()), &canaries);
        assert!(leaks.is_empty(), "{alg}: {leaks:?}");
    }
}

#[test]
fn plaintext_mode_does_write_the_canaries() {
    // The scan itself must be able to fail.
    let vfs = SimVfs::new();
    let canaries = Canaries::new(20);
    let db = Db::open_with_config(sim_config(&vfs, None)).unwrap();
    fill(&db, &canaries);
    db.close().unwrap();
    assert!(!scan_for_plaintext(&read_sim_tree(&vfs, &dir()), &canaries).is_empty());
}

#[test]
fn every_wrong_key_gets_its_own_error() {
    for alg in EncryptionAlgorithm::ALL {
        let vfs = SimVfs::new();
        let db = Db::open_with_config(sim_config(&vfs, Some(alg))).unwrap();
        db.put(b"k", b"v").unwrap();
        db.close().unwrap();
        let plain = || sim_config(&vfs, None);
        assert!(matches!(
            Db::open_with_config(plain()),
            Err(Error::EncryptedDatabase)
        ));
        assert!(matches!(
            Db::open_with_config(plain().encryption_key(key(8))),
            Err(Error::WrongKey)
        ));
        let other = EncryptionAlgorithm::ALL
            .into_iter()
            .find(|a| *a != alg)
            .unwrap();
        assert!(matches!(
            Db::open_with_config(plain().encryption_key(key(7)).encryption_algorithm(other)),
            Err(Error::AlgorithmMismatch { .. })
        ));
        let db = Db::open_with_config(plain().encryption_key(key(7))).unwrap();
        assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    }
}

#[test]
fn a_plaintext_database_refuses_to_be_opened_as_encrypted() {
    let vfs = SimVfs::new();
    Db::open_with_config(sim_config(&vfs, None))
        .unwrap()
        .close()
        .unwrap();
    let err =
        Db::open_with_config(sim_config(&vfs, Some(EncryptionAlgorithm::Aes256Gcm))).unwrap_err();
    assert!(matches!(err, Error::PlaintextDatabase { .. }));
    assert!(
        err.to_string().contains("export"),
        "names the migration: {err}"
    );
}

/// Where the records of a WAL segment file stop being proven durable: the
/// end of its last sync marker (records after it were fsynced, but after a
/// power cut that lost the next marker nothing says so, and damage there is
/// cut as a torn tail: `docs/WAL.md`). Also how many records lie past it.
fn unproven_tail(segment: &[u8]) -> (usize, usize) {
    let (mut off, mut proven, mut after) = (128, 128, 0);
    while off + 48 <= segment.len() {
        let len = u32::from_le_bytes(segment[off..off + 4].try_into().unwrap()) as usize;
        let end = off + 48 + len;
        if end > segment.len() {
            break;
        }
        if segment[off + 4] & 1 == 1 {
            (proven, after) = (end, 0);
        } else {
            after += 1;
        }
        off = end;
    }
    (proven, after)
}

/// Whether a flipped byte at `offset` of `name` lies in a data key id field
/// (a page's envelope, a WAL segment's header): the key id is read before
/// anything authenticates it, so the flip names a key the registry lacks,
/// which is damage to that file (`Corruption` naming it, or a meta slot
/// stepped around), never evidence of a rollback.
fn in_key_id(name: &str, offset: usize) -> bool {
    if name.ends_with("data.sealkv") {
        offset >= 4096 && (4..8).contains(&(offset % 4096))
    } else {
        name.ends_with(".wal") && (16..20).contains(&offset)
    }
}

/// A flipped byte in any file (about 80 offsets per file, spread over all
/// of it) never makes a read return a wrong value. The database is left as a
/// power cut leaves it (150 records flushed to pages, 50 more only in the
/// live WAL segment), so the flips reach WAL records. Every error is
/// `Corruption` naming the damaged file — a flip in a data key id field of
/// a sealed database too ("names data key #K, which the key registry does
/// not hold"), never a `Rollback`; a record may go missing only if the
/// flip lies in the live segment's tail that no sync marker proves, and
/// only a record of that tail.
#[test]
fn a_flipped_byte_anywhere_never_returns_wrong_data() {
    for mode in modes() {
        let alg = mode;
        let vfs = SimVfs::new();
        let db = Db::open_with_config(sim_config(&vfs, alg)).unwrap();
        let expected: Vec<(Vec<u8>, Vec<u8>)> = (0..200u32)
            .map(|i| (format!("key{i:05}").into_bytes(), vec![i as u8; 40]))
            .collect();
        for (k, v) in &expected[..150] {
            db.put(k, v).unwrap();
        }
        db.flush().unwrap();
        for (k, v) in &expected[150..] {
            db.put(k, v).unwrap();
        }
        // A power cut: no close. Every put was fsynced (`SyncMode::Always`).
        std::mem::forget(db);
        vfs.crash();
        let files: Vec<_> = read_sim_tree(&vfs, &dir());
        let live = files
            .iter()
            .filter(|(n, b)| n.ends_with(".wal") && b.len() > 128)
            .map(|(n, _)| n.clone())
            .max()
            .expect("a WAL segment holds the last 50 records");
        let (proven, tail_records) = unproven_tail(file_bytes(&files, &live));
        assert!(
            tail_records <= 1,
            "{mode:?}: {tail_records} unproven records"
        );
        let (mut checked, mut detected, mut cut, mut key_ids_named) = (0, 0, 0, 0);
        for (name, bytes) in &files {
            if name.ends_with("LOCK") || bytes.is_empty() {
                continue;
            }
            let step = (bytes.len() / 80).max(1);
            // And a byte of each key id field: a WAL segment's, the meta
            // pages'.
            let key_ids: &[usize] = match name {
                n if n.ends_with(".wal") => &[17],
                n if n.ends_with("data.sealkv") => &[4096 + 5, 2 * 4096 + 6],
                _ => &[],
            };
            let offsets = (0..bytes.len())
                .step_by(step)
                .chain(key_ids.iter().copied());
            for offset in offsets {
                let at = format!("{mode:?} {name}@{offset}");
                let typed = |e: &Error| match e {
                    Error::Corruption { file, .. } => file.as_path() == Path::new(name),
                    _ => false,
                };
                let vfs = SimVfs::new();
                for (n, b) in &files {
                    vfs.write_file(Path::new(n), b);
                }
                let mut damaged = bytes.clone();
                damaged[offset] ^= 0x10;
                vfs.write_file(Path::new(name), &damaged);
                checked += 1;
                let db = match Db::open_with_config(sim_config(&vfs, alg)) {
                    Ok(db) => db,
                    Err(e) => {
                        assert!(typed(&e), "{at}: open failed with {e:?}");
                        detected += 1;
                        key_ids_named += usize::from(
                            in_key_id(name, offset)
                                && matches!(&e, Error::Corruption { what, .. } if what.contains("data key")),
                        );
                        continue;
                    }
                };
                let mut missing = Vec::new();
                for (i, (k, v)) in expected.iter().enumerate() {
                    match db.get(k) {
                        Ok(Some(got)) => assert_eq!(&got, v, "{at}: wrong data"),
                        Ok(None) => missing.push(i),
                        Err(e) => assert!(typed(&e), "{at}: get failed with {e:?}"),
                    }
                }
                if !missing.is_empty() {
                    // Only the unproven tail may be cut, and only its records.
                    assert!(
                        *name == live && offset >= proven,
                        "{at}: lost {missing:?} (the proven part ends at {proven})"
                    );
                    assert!(
                        missing.iter().all(|&i| i >= expected.len() - tail_records),
                        "{at}: lost {missing:?}, only the last {tail_records} may go"
                    );
                    cut += 1;
                }
            }
        }
        // The flips reached the WAL records, the page file and the registry.
        assert!(
            checked > 200 && detected > 80,
            "{mode:?}: {checked} {detected}"
        );
        assert!(cut <= 2, "{mode:?}: {cut} flips cut records");
        // A flipped key id names a key the registry lacks (sealed only):
        // damage named in its file.
        assert_eq!(
            key_ids_named > 0,
            alg.is_some(),
            "{mode:?}: {key_ids_named}"
        );
    }
}

fn file_bytes<'a>(files: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    &files.iter().find(|(n, _)| n == name).unwrap().1
}
