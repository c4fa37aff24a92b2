//! No (subkey, nonce) pair repeats: across crash-and-reopen cycles and
//! across a copied log directory appended to on both sides. The nonces are
//! read from every header, record and sync marker written to the disk
//! (`sealkv_testkit::nonces`), not from the sealer's own count.

use std::path::Path;
use std::sync::Arc;

use sealkv_crypto_envelope::EncryptionAlgorithm;
use sealkv_fileio::{SimVfs, Vfs};
use sealkv_testkit::nonces::{DiskWrites, reuses, sessions};

use crate::*;

/// A simulated disk, and the same disk with every write recorded.
fn recorded() -> (SimVfs, Arc<dyn Vfs>, DiskWrites) {
    let s = SimVfs::new();
    let writes = DiskWrites::new();
    let v: Arc<dyn Vfs> = Arc::new(writes.vfs(Arc::new(s.clone())));
    (s, v, writes)
}

#[test]
fn no_nonce_repeats_across_crashes_and_copies() {
    for alg in EncryptionAlgorithm::ALL {
        let opts = options(Some(alg));
        let (s, v, writes) = recorded();
        let mut appended = 0;
        for cycle in 0..5u64 {
            let (wal, _, seen) = open(&v, &opts).unwrap();
            assert!(seen.len() <= appended);
            appended = seen.len();
            for i in 0..7 {
                wal.append(&batch(cycle * 10 + i, 50)).unwrap();
                appended += 1;
            }
            if cycle % 2 == 0 {
                wal.roll().unwrap();
            }
            drop(wal);
            // Some crashes tear the unsynced tail (none here under Always,
            // but the headers and records are all re-read and re-sealed
            // from new sessions regardless).
            s.crash_torn(cycle);
        }
        // cp -r of the whole log, then both copies keep writing.
        s.copy_tree(&dir(), Path::new("/copy/wal"));
        writes.copied(&dir(), Path::new("/copy/wal"));
        let (a, _, seen_a) = open(&v, &opts).unwrap();
        let (b, _, seen_b) = open_at(&v, Path::new("/copy/wal"), &opts).unwrap();
        assert_eq!(seen_a.len(), seen_b.len());
        for i in 0..10 {
            a.append(&batch(1000 + i, 40)).unwrap();
            b.append(&batch(1000 + i, 40)).unwrap();
        }
        a.close().unwrap();
        b.close().unwrap();
        let units = writes.units();
        // 55 records, their sync markers and a header per session.
        assert!(units.len() > 100, "{alg}: {} units", units.len());
        // Five cycles and the two sides of the copy: a session each.
        assert_eq!(sessions(&units), 7, "{alg}");
        let reused = reuses(&units);
        assert!(reused.is_empty(), "{alg}: {reused:?}");
    }
}

/// `new_session` (the engine calls it after rotating the data key) moves
/// writing to a new segment under a fresh salt and the new active key;
/// replay reads across both sessions and keys.
#[test]
fn new_session_moves_to_a_new_salt_and_the_active_key() {
    use sealkv_crypto_envelope::{DataKey, KeyId, SecretKey};
    let opts = options(Some(EncryptionAlgorithm::Aes256Gcm));
    let ring = opts.keyring.clone().unwrap();
    let (_s, v, writes) = recorded();
    let (wal, report, _) = open(&v, &opts).unwrap();
    let first = report.write_segment;
    let batches: Vec<_> = (0..6).map(|i| batch(i, 40)).collect();
    wal.append(&batches[0]).unwrap();
    wal.roll().unwrap();
    wal.append(&batches[1]).unwrap();
    ring.insert(DataKey::new(
        KeyId(2),
        EncryptionAlgorithm::ChaCha20Poly1305.id(),
        SecretKey::from_bytes(&[7; 32]).unwrap(),
    ));
    ring.set_active(KeyId(2)).unwrap();
    let seg = wal.new_session().unwrap();
    assert_eq!(seg, first + 2);
    wal.append(&batches[2]).unwrap();
    assert_eq!(wal.new_session().unwrap(), first + 3);
    assert_eq!(wal.new_session().unwrap(), first + 4);
    for b in &batches[3..] {
        wal.append(b).unwrap();
    }
    assert_eq!(wal.stats().sessions, 3);
    wal.close().unwrap();
    let (_w, report, seen) = open(&v, &opts).unwrap();
    assert_eq!(report.torn_tail, None);
    assert_eq!(seen.len(), 6);
    assert_prefix(&seen, &batches);
    // The first open's session, three new ones, and the reopen's.
    let units = writes.units();
    assert_eq!(sessions(&units), 5);
    // Segments from the first `new_session` on are sealed under key 2.
    for u in &units {
        let n = (first..first + 6).find(|n| u.file == seg_path(*n));
        let n = n.unwrap_or_else(|| panic!("{}", u.file.display()));
        assert_eq!(u.nonce.key_id, if n < first + 2 { 1 } else { 2 }, "{n}");
    }
    assert!(reuses(&units).is_empty());
}

/// A segment sealed under a data key that was since retired is refused
/// only while it is still needed: once older than `first_seq` it is removed.
#[test]
fn an_obsolete_segment_under_a_retired_key_is_removed_not_refused() {
    use sealkv_crypto_envelope::{DataKey, KeyId, SecretKey};
    let opts = options(Some(EncryptionAlgorithm::Aes256Gcm));
    let ring = opts.keyring.clone().unwrap();
    let (_s, v) = sim();
    let (wal, _, _) = open(&v, &opts).unwrap();
    wal.append(&batch(1, 20)).unwrap();
    ring.insert(DataKey::new(
        KeyId(2),
        EncryptionAlgorithm::Aes256Gcm.id(),
        SecretKey::from_bytes(&[8; 32]).unwrap(),
    ));
    ring.set_active(KeyId(2)).unwrap();
    wal.new_session().unwrap();
    wal.append(&batch(2, 20)).unwrap();
    wal.close().unwrap();
    ring.remove(KeyId(1));
    assert!(matches!(
        open(&v, &opts),
        Err(sealkv_core_wal::Error::MissingKey { segment: 1, .. })
    ));
    let mut o = opts.clone();
    o.first_seq = sealkv_core_wal::Seq(2);
    let (_w, report, seen) = open(&v, &o).unwrap();
    assert_eq!(report.segments_removed, vec![1]);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].1, batch(2, 20));
}
