//! Damage and tampering: bit flips, dropped, duplicated, reordered and
//! spliced records and segments.

use sealkv_core_wal::{Error, Seq};
use sealkv_crypto_envelope::{DbId, EncryptionAlgorithm};

use sealkv_testkit::proof::Tally;

use crate::*;

fn reopen_with(bytes: &[u8], opts: &sealkv_core_wal::WalOptions) -> Result<Replayed> {
    let (s, v) = sim();
    s.write_file(&seg_path(1), bytes);
    open(&v, opts).map(|(_, _, seen)| seen)
}

#[test]
fn a_flipped_bit_anywhere_never_yields_a_wrong_batch() {
    let mut t = Tally::new("tamper-wal", "a_flipped_bit_anywhere");
    for prot in PROTECTIONS {
        let opts = options(prot);
        let (s, _v, batches) = fresh_log(&opts, 5, 24);
        let full = s.read_file(&seg_path(1)).unwrap();
        let ranges = record_ranges(&full);
        let all = units(&full);
        assert_eq!(ranges.len(), batches.len());
        // A closed log ends with a durable sync marker.
        let last = *all.last().unwrap();
        assert!(last.2);
        for pos in 0..full.len() {
            let mut bytes = full.clone();
            bytes[pos] ^= 1 << (pos % 8);
            match reopen_with(&bytes, &opts) {
                Ok(seen) => {
                    // Only the final sync marker may go (the torn-tail
                    // rule); every record is proven fsynced by a marker
                    // after it.
                    assert!(pos >= last.0, "{prot:?} flip at {pos} was cut as torn");
                    assert_eq!(seen.len(), batches.len());
                    assert_prefix(&seen, &batches);
                    t.case("marker_cut");
                }
                Err(Error::Corruption {
                    segment: 1, offset, ..
                }) => {
                    assert!(pos < last.0, "{prot:?} flip at {pos}");
                    let hit = all.iter().find(|r| r.0 <= pos && pos < r.1);
                    assert_eq!(offset, hit.map_or(0, |r| r.0 as u64), "flip at {pos}");
                    t.case("detected");
                    t.add("corruption", 1);
                }
                // The data key id cannot be authenticated without the key:
                // a flipped id names a key the keyring lacks. (A flipped
                // algorithm or sealed flag is Corruption, above.) The
                // engine reports it as Corruption naming the segment.
                Err(Error::MissingKey { .. }) if (16..20).contains(&pos) => {
                    t.case("detected");
                    t.add("missing_key", 1);
                }
                Err(e) => panic!("{prot:?} flip at {pos}: unexpected {e}"),
            }
        }
    }
    t.print();
}

fn rebuild(full: &[u8], ranges: &[(usize, usize)], order: &[usize]) -> Vec<u8> {
    let mut out = full[..128].to_vec();
    for &i in order {
        out.extend_from_slice(&full[ranges[i].0..ranges[i].1]);
    }
    out
}

#[test]
fn dropped_duplicated_and_reordered_records_are_detected() {
    let mut t = Tally::new("tamper-wal", "dropped_duplicated_reordered_records");
    for prot in PROTECTIONS {
        let opts = options(prot);
        // Equal sizes, so a moved record lands exactly where another was.
        let (s, _v, _) = fresh_log(&opts, 5, 30);
        let full = s.read_file(&seg_path(1)).unwrap();
        let ranges = record_ranges(&full);
        for (name, order) in [
            ("drop", vec![0, 1, 3, 4]),
            ("duplicate", vec![0, 1, 2, 2, 3, 4]),
            ("reorder", vec![0, 1, 3, 2, 4]),
        ] {
            let bytes = rebuild(&full, &ranges, &order);
            match reopen_with(&bytes, &opts) {
                Err(Error::Corruption { segment: 1, .. }) => t.case("detected"),
                other => panic!("{prot:?} {name}: {:?}", other.map(|s| s.len())),
            }
        }
    }
    t.print();
}

#[test]
fn a_segment_or_record_from_another_database_under_the_same_key_is_detected() {
    let mut t = Tally::new("tamper-wal", "segment_or_record_from_another_database");
    for alg in [
        EncryptionAlgorithm::Aes256Gcm,
        EncryptionAlgorithm::ChaCha20Poly1305,
    ] {
        let key = [0x42; 32];
        let a = {
            let mut o = sealkv_core_wal::WalOptions::new(DB);
            o.keyring = Some(keyring_for(DB, alg, key));
            o
        };
        let other = DbId([0x77; 16]);
        let b = {
            let mut o = sealkv_core_wal::WalOptions::new(other);
            o.keyring = Some(keyring_for(other, alg, key));
            o
        };
        let (sa, va, _) = fresh_log(&a, 5, 30);
        let (sb, _vb, _) = fresh_log(&b, 5, 30);
        let seg_b = sb.read_file(&seg_path(1)).unwrap();
        // A whole segment spliced in as the next segment.
        sa.write_file(&seg_path(2), &seg_b);
        assert!(matches!(
            open(&va, &a),
            Err(Error::Corruption {
                segment: 2,
                offset: 0,
                ..
            })
        ));
        t.case("detected");
        // One record spliced into the middle of a segment.
        let mut seg_a = sa.read_file(&seg_path(1)).unwrap();
        let r = record_ranges(&seg_a)[2];
        assert_eq!(r, record_ranges(&seg_b)[2]);
        seg_a[r.0..r.1].copy_from_slice(&seg_b[r.0..r.1]);
        assert!(matches!(
            reopen_with(&seg_a, &a),
            Err(Error::Corruption { segment: 1, .. })
        ));
        t.case("detected");
    }
    t.print();
}

#[test]
fn a_plaintext_segment_of_another_database_is_wrong_database() {
    let (s, _v, _) = fresh_log(&options(None), 2, 10);
    let bytes = s.read_file(&seg_path(1)).unwrap();
    let mut o = sealkv_core_wal::WalOptions::new(DbId([1; 16]));
    o.first_seq = Seq(1);
    assert!(matches!(
        reopen_with(&bytes, &o),
        Err(Error::WrongDatabase { segment: 1 })
    ));
    let mut t = Tally::new("tamper-wal", "plaintext_segment_of_another_database");
    t.case("detected");
    t.print();
}

#[test]
fn key_and_mode_mismatches_are_named() {
    let aes = options(Some(EncryptionAlgorithm::Aes256Gcm));
    let (s, _v, _) = fresh_log(&aes, 2, 10);
    let sealed = s.read_file(&seg_path(1)).unwrap();
    assert!(matches!(
        reopen_with(&sealed, &options(None)),
        Err(Error::EncryptedLog { segment: 1 })
    ));
    // The same key id, now holding a ChaCha key: the header's algorithm
    // field is not trusted before authentication, and the header fails
    // its tag under the ChaCha key.
    assert!(matches!(
        reopen_with(
            &sealed,
            &options(Some(EncryptionAlgorithm::ChaCha20Poly1305))
        ),
        Err(Error::Corruption {
            segment: 1,
            offset: 0,
            ..
        })
    ));
    // A keyring without the segment's data key.
    let ring = sealkv_crypto_envelope::Keyring::new(
        DB,
        std::sync::Arc::new(sealkv_crypto_envelope::CryptoProvider::default()),
    );
    ring.insert(sealkv_crypto_envelope::DataKey::new(
        sealkv_crypto_envelope::KeyId(2),
        EncryptionAlgorithm::Aes256Gcm.id(),
        sealkv_crypto_envelope::SecretKey::random().unwrap(),
    ));
    ring.set_active(sealkv_crypto_envelope::KeyId(2)).unwrap();
    let mut o = sealkv_core_wal::WalOptions::new(DB);
    o.keyring = Some(std::sync::Arc::new(ring));
    assert!(matches!(
        reopen_with(&sealed, &o),
        Err(Error::MissingKey { segment: 1, .. })
    ));
    let (s, _v, _) = fresh_log(&options(None), 2, 10);
    let plain = s.read_file(&seg_path(1)).unwrap();
    assert!(matches!(
        reopen_with(&plain, &aes),
        Err(Error::PlaintextLog { segment: 1 })
    ));
    // A wrong key of the right algorithm: the header does not authenticate.
    let mut wrong = sealkv_core_wal::WalOptions::new(DB);
    wrong.keyring = Some(keyring_for(DB, EncryptionAlgorithm::Aes256Gcm, [9; 32]));
    assert!(matches!(
        reopen_with(&sealed, &wrong),
        Err(Error::Corruption {
            segment: 1,
            offset: 0,
            ..
        })
    ));
}

#[test]
fn damage_in_an_earlier_segment_is_corruption_even_at_its_end() {
    let mut t = Tally::new("tamper-wal", "damage_in_an_earlier_segment");
    for prot in PROTECTIONS {
        let opts = options(prot);
        let (s, v) = sim();
        let (wal, _, _) = open(&v, &opts).unwrap();
        let batches: Vec<_> = (0..4).map(|i| batch(i, 30)).collect();
        wal.append(&batches[0]).unwrap();
        wal.append(&batches[1]).unwrap();
        assert_eq!(wal.roll().unwrap(), 2);
        wal.append(&batches[2]).unwrap();
        wal.append(&batches[3]).unwrap();
        wal.close().unwrap();
        let good1 = s.read_file(&seg_path(1)).unwrap();
        let ranges = record_ranges(&good1);
        // The last record of segment 1: not a torn tail, since segment 2
        // was written after segment 1 was fsynced.
        let mut bad = good1.clone();
        bad[ranges[1].0 + 36] ^= 4;
        s.write_file(&seg_path(1), &bad);
        match open(&v, &opts) {
            Err(Error::Corruption {
                segment: 1, offset, ..
            }) => {
                assert_eq!(offset, ranges[1].0 as u64);
                t.case("detected");
            }
            other => panic!("{prot:?}: {:?}", other.map(|x| x.1)),
        }
        s.write_file(&seg_path(1), &good1);
        // A missing middle segment.
        let seg2 = s.read_file(&seg_path(2)).unwrap();
        let (_w, _, seen) = open(&v, &opts).unwrap();
        assert_eq!(seen.len(), 4);
        drop(_w);
        sealkv_fileio::Vfs::remove_file(&s, &seg_path(2)).unwrap();
        assert!(matches!(open(&v, &opts), Err(Error::Corruption { .. })));
        t.case("detected");
        // Put back, the log opens again.
        s.write_file(&seg_path(2), &seg2);
        let (_w, _, seen) = open(&v, &opts).unwrap();
        assert_eq!(seen.len(), 4);
    }
    t.print();
}

/// A torn record whose value is full of fake record headers (each in
/// sequence, each claiming a body that fits in the file): the damage scan
/// must not check every candidate's body from disk. Recovery either cuts
/// the torn tail or refuses with Corruption, within a bounded number of
/// reads.
#[test]
fn a_value_full_of_fake_headers_does_not_make_the_scan_quadratic() {
    use sealkv_fileio::{FaultyVfs, OpKind};
    let opts = options(None);
    let value_len = 2 << 20;
    let claimed: u32 = 1_200_000;
    let mut fake = [0u8; 32];
    fake[0..4].copy_from_slice(&claimed.to_le_bytes());
    fake[8..16].copy_from_slice(&1u64.to_le_bytes()); // seq: the next one
    fake[24..32].copy_from_slice(&128u64.to_le_bytes()); // durable mark
    let mut value = vec![0x77u8; value_len];
    for chunk in value.chunks_mut(4096) {
        if let Some(head) = chunk.get_mut(..32) {
            head.copy_from_slice(&fake);
        }
    }
    let mut b = Batch::new();
    b.put(b"k", &value);
    let (s, v) = sim();
    let (wal, _, _) = open(&v, &opts).unwrap();
    wal.append(&b).unwrap();
    wal.close().unwrap();
    let mut bytes = s.read_file(&seg_path(1)).unwrap();
    let record = record_ranges(&bytes)[0];
    bytes.truncate(record.1 - 1); // torn inside the record
    s.write_file(&seg_path(1), &bytes);
    let faulty = FaultyVfs::over_sim(&s);
    let fv: Arc<dyn Vfs> = Arc::new(faulty.clone());
    let before = faulty.counts().get(OpKind::Read);
    match open(&fv, &opts) {
        Ok((_w, report, seen)) => {
            assert!(seen.is_empty());
            assert_eq!(report.torn_tail.map(|t| t.offset), Some(128));
        }
        Err(e) => assert!(
            matches!(e, sealkv_core_wal::Error::Corruption { .. }),
            "{e}"
        ),
    }
    let reads = faulty.counts().get(OpKind::Read) - before;
    assert!(reads <= 32, "{reads} reads to recover a 2 MiB segment");
}

/// Header fields are not trusted before the header is authenticated: a
/// flipped algorithm or sealed flag is Corruption, not a named refusal.
#[test]
fn flipped_header_fields_are_corruption_not_refusals() {
    let mut t = Tally::new("tamper-wal", "flipped_header_fields");
    let aes = options(Some(EncryptionAlgorithm::Aes256Gcm));
    let (s, _v, _) = fresh_log(&aes, 2, 10);
    let sealed = s.read_file(&seg_path(1)).unwrap();
    let corrupt = |r: Result<Replayed>| {
        matches!(
            r,
            Err(Error::Corruption {
                segment: 1,
                offset: 0,
                ..
            })
        )
    };
    // Algorithm bytes naming ChaCha20-Poly1305.
    let mut b = sealed.clone();
    b[12..14].copy_from_slice(&EncryptionAlgorithm::ChaCha20Poly1305.id().0.to_le_bytes());
    assert!(corrupt(reopen_with(&b, &aes)));
    t.case("detected");
    // Sealed flag cleared on a sealed segment.
    let mut b = sealed.clone();
    b[10] &= !1;
    assert!(corrupt(reopen_with(&b, &aes)));
    t.case("detected");
    // Sealed flag set on a plaintext segment.
    let (s, _v, _) = fresh_log(&options(None), 2, 10);
    let mut b = s.read_file(&seg_path(1)).unwrap();
    b[10] |= 1;
    assert!(corrupt(reopen_with(&b, &options(None))));
    t.case("detected");
    t.print();
}

/// The newest segment holds only its header (a roll, then nothing): a
/// flipped byte anywhere in the header is removed with the segment (it
/// held nothing) but reported as damage; a header a crash interrupted (cut
/// short, or never written: zeros) is removed without a report. A flipped
/// data key id (16..20) names a key the keyring lacks: refused, as that
/// segment is still the log's newest.
#[test]
fn a_damaged_header_of_an_empty_newest_segment_is_reported() {
    for prot in PROTECTIONS {
        let opts = options(prot);
        let (s, v) = sim();
        let (wal, _, _) = open(&v, &opts).unwrap();
        wal.append(&batch(0, 24)).unwrap();
        let newest = wal.roll().unwrap();
        wal.close().unwrap();
        let path = seg_path(newest);
        let header = s.read_file(&path).unwrap();
        assert_eq!(header.len(), 128);
        for pos in 0..128 {
            let (s2, v2) = sim();
            s2.write_file(&seg_path(1), &s.read_file(&seg_path(1)).unwrap());
            let mut bytes = header.clone();
            bytes[pos] ^= 0x10;
            s2.write_file(&path, &bytes);
            match open(&v2, &opts) {
                Ok((_, report, seen)) => {
                    assert_eq!(seen.len(), 1, "{prot:?} flip at {pos}");
                    assert_eq!(
                        report
                            .damaged_headers
                            .iter()
                            .map(|d| d.segment)
                            .collect::<Vec<_>>(),
                        vec![newest],
                        "{prot:?} flip at {pos}"
                    );
                }
                Err(Error::MissingKey { segment, .. })
                    if prot.is_some() && (16..20).contains(&pos) =>
                {
                    assert_eq!(segment, newest);
                }
                Err(e) => panic!("{prot:?} flip at {pos}: {e}"),
            }
        }
        for interrupted in [Vec::new(), header[..60].to_vec(), vec![0u8; 128]] {
            let (s2, v2) = sim();
            s2.write_file(&seg_path(1), &s.read_file(&seg_path(1)).unwrap());
            s2.write_file(&path, &interrupted);
            let (_, report, seen) = open(&v2, &opts).unwrap();
            assert_eq!(seen.len(), 1);
            assert!(report.segments_removed.contains(&newest));
            assert!(report.damaged_headers.is_empty(), "{prot:?}");
        }
    }
}
