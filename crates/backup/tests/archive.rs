//! Export, import and verify: round trips, concurrent writers, tampering,
//! wrong keys, canaries, and a model proptest.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use proptest::prelude::*;
use sealkv::crypto::{EncryptionAlgorithm, KdfParams, KeySource, MasterKey, Passphrase};
use sealkv::{Config, Db};
use sealkv_backup::archive::{
    self, ArchiveError, ArchiveReader, ExportOptions, ImportOptions, Location, format,
};
use sealkv_testkit::{Canaries, scan_for_plaintext};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn key(b: u8) -> MasterKey {
    MasterKey::from_bytes(&[b; 32]).unwrap()
}

fn src(k: &MasterKey) -> KeySource {
    KeySource::Key(k.clone())
}

#[derive(Clone, Copy, Debug)]
enum Flavor {
    Plain,
    Aes,
    ChaCha,
}

fn config(dir: &Path, flavor: Flavor, k: &MasterKey) -> Config {
    match flavor {
        Flavor::Plain => Config::new(dir),
        Flavor::Aes => Config::new(dir)
            .encrypt_at_rest(true)
            .encryption_key(k.clone())
            .encryption_algorithm(EncryptionAlgorithm::Aes256Gcm),
        Flavor::ChaCha => Config::new(dir)
            .encrypt_at_rest(true)
            .encryption_key(k.clone())
            .encryption_algorithm(EncryptionAlgorithm::ChaCha20Poly1305),
    }
}

fn fill(db: &Db, n: usize) -> Model {
    let mut model = Model::new();
    for i in 0..n {
        let k = format!("key/{i:05}").into_bytes();
        let v = format!("value {i} {}", "x".repeat(i % 50)).into_bytes();
        db.put(&k, &v).unwrap();
        model.insert(k, v);
    }
    model
}

fn contents(db: &Db) -> Model {
    db.range::<&[u8]>(..).unwrap().map(|r| r.unwrap()).collect()
}

fn read_all(path: &Path, key: Option<&KeySource>) -> Result<Model, ArchiveError> {
    let bytes = std::fs::read(path).unwrap();
    read_bytes(&bytes, key)
}

fn read_bytes(bytes: &[u8], key: Option<&KeySource>) -> Result<Model, ArchiveError> {
    let provider = sealkv::crypto::CryptoProvider::default();
    let mut r = ArchiveReader::open(bytes, Path::new("a.skva"), key, &provider)?;
    let mut m = Model::new();
    while let Some((k, v)) = r.next_record()? {
        m.insert(k, v);
    }
    Ok(m)
}

/// A small archive with many chunks: (bytes, chunk offsets, model).
fn small_archive(dir: &Path, k: &MasterKey, name: &str) -> (Vec<u8>, Vec<u64>, Model) {
    let db = Db::open(dir.join(format!("{name}-db"))).unwrap();
    let model = fill(&db, 20);
    let file = dir.join(format!("{name}.skva"));
    let opts = ExportOptions::sealed(src(k)).chunk_size(128);
    archive::export(&db, &file, &opts, &mut |_| {}).unwrap();
    let bytes = std::fs::read(&file).unwrap();
    (bytes.clone(), chunk_offsets(&bytes), model)
}

/// Offsets of every chunk, parsed from the frames.
fn chunk_offsets(bytes: &[u8]) -> Vec<u64> {
    let mut at = format::HEADER_LEN;
    let mut out = Vec::new();
    while at < bytes.len() {
        out.push(at as u64);
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        at += format::FRAME_LEN + len + format::CHUNK_TAG_LEN;
    }
    assert_eq!(at, bytes.len());
    out
}

fn chunk_of(e: &ArchiveError) -> Option<u64> {
    e.location().and_then(|l| l.chunk())
}

#[test]
fn round_trips_across_every_pair_of_flavors() {
    let dir = tempfile::tempdir().unwrap();
    let flavors = [Flavor::Plain, Flavor::Aes, Flavor::ChaCha];
    for (i, from) in flavors.iter().enumerate() {
        let k1 = key(1);
        let db =
            Db::open_with_config(config(&dir.path().join(format!("src{i}")), *from, &k1)).unwrap();
        let model = fill(&db, 300);
        db.delete(b"key/00007").unwrap();
        let model: Model = model
            .into_iter()
            .filter(|(k, _)| k != b"key/00007")
            .collect();
        for (j, to) in flavors.iter().enumerate() {
            for sealed in [true, false] {
                let file = dir.path().join(format!("a{i}{j}{sealed}.skva"));
                let opts = if sealed {
                    ExportOptions::sealed(src(&k1)).algorithm(EncryptionAlgorithm::ChaCha20Poly1305)
                } else {
                    ExportOptions::plaintext_unencrypted()
                };
                let written = archive::export(&db, &file, &opts, &mut |_| {}).unwrap();
                assert_eq!(written.records, model.len() as u64);
                assert_eq!(written.is_sealed(), sealed);
                let k2 = key(2);
                let dest = dir.path().join(format!("dst{i}{j}{sealed}"));
                let make = |d: &Path| config(d, *to, &k2).page_size(8192);
                // A plaintext archive is read with no key (with one it is
                // refused: see plaintext_archive_is_refused_when_a_key_is_given).
                let archive_key = src(&k1);
                let read = archive::import(
                    &file,
                    sealed.then_some(&archive_key),
                    &dest,
                    &make,
                    &ImportOptions::new(),
                    &mut |_| {},
                )
                .unwrap();
                assert_eq!(read.records, written.records);
                assert_eq!(read.data_bytes, written.data_bytes);
                let copy = Db::open_with_config(make(&dest)).unwrap();
                assert_eq!(contents(&copy), model, "{from:?} -> {to:?} sealed={sealed}");
                let stats = copy.stats().unwrap();
                assert_eq!(
                    stats.encryption.encrypt_at_rest,
                    !matches!(to, Flavor::Plain)
                );
                copy.close().unwrap();
            }
        }
        db.close().unwrap();
    }
}

#[test]
fn export_while_writers_write_equals_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(3);
    let db = Db::open_with_config(
        config(&dir.path().join("db"), Flavor::Aes, &k).sync_mode(sealkv::SyncMode::Never),
    )
    .unwrap();
    fill(&db, 3000);
    db.flush().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // Each writer sets pair/a/N and pair/b/N to one value in one batch, and
    // deletes now and then: any consistent snapshot shows equal pairs.
    let writers: Vec<_> = (0..2)
        .map(|t| {
            let db = db.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let n = i % 500;
                    let mut b = sealkv::WriteBatch::new();
                    let v = format!("t{t} round {i}");
                    b.put(format!("pair/a/{n:03}"), &v)
                        .put(format!("pair/b/{n:03}"), &v);
                    b.put(format!("key/{:05}", (i * 7) % 3000), &v);
                    if i.is_multiple_of(5) {
                        b.delete(format!("key/{:05}", (i * 13) % 3000));
                    }
                    db.write(&b).unwrap();
                    i += 1;
                }
                i
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(30));
    let snapshot = db.snapshot().unwrap();
    let file = dir.path().join("live.skva");
    let opts = ExportOptions::sealed(src(&k)).chunk_size(4096);
    let summary = archive::export_snapshot(&snapshot, db.id(), &file, &opts, &mut |_| {}).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(30));
    stop.store(true, Ordering::Relaxed);
    let writes: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(writes > 0);
    // The model: the snapshot, read independently after the export (and
    // after more writes).
    let model: Model = snapshot.range::<&[u8]>(..).map(|r| r.unwrap()).collect();
    assert_eq!(summary.header.snapshot_seq, snapshot.seq());
    assert_eq!(summary.header.source_db, db.id());
    assert_ne!(
        contents(&db),
        model,
        "the writers changed nothing after the snapshot?"
    );
    for (key, v) in model.range(b"pair/a/".to_vec()..b"pair/b/".to_vec()) {
        let twin = [b"pair/b/".as_slice(), &key[7..]].concat();
        assert_eq!(model.get(&twin), Some(v), "torn batch in the snapshot");
    }
    let dest = dir.path().join("imported");
    let make = |d: &Path| config(d, Flavor::ChaCha, &key(4));
    archive::import(
        &file,
        Some(&src(&k)),
        &dest,
        &make,
        &ImportOptions::new(),
        &mut |_| {},
    )
    .unwrap();
    let copy = Db::open_with_config(make(&dest)).unwrap();
    assert_eq!(contents(&copy), model);
    // A plain export (its own snapshot) of the quiet database equals it too.
    let quiet = contents(&db);
    let file2 = dir.path().join("quiet.skva");
    archive::export(&db, &file2, &ExportOptions::sealed(src(&k)), &mut |_| {}).unwrap();
    assert_eq!(read_all(&file2, Some(&src(&k))).unwrap(), quiet);
    // The live database is unaffected and still writable.
    db.put(b"after", b"export").unwrap();
    assert_eq!(db.get(b"after").unwrap().as_deref(), Some(&b"export"[..]));
    db.close().unwrap();
}

#[test]
fn wrong_key_missing_key_and_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, _, model) = small_archive(dir.path(), &key(1), "a");
    assert!(matches!(
        read_bytes(&bytes, Some(&src(&key(2)))),
        Err(ArchiveError::WrongKey { .. })
    ));
    assert!(matches!(
        read_bytes(&bytes, None),
        Err(ArchiveError::MissingKey { .. })
    ));
    let pass = |s: &str| KeySource::Passphrase {
        passphrase: Passphrase::new(s).unwrap(),
        params: KdfParams::FLOOR,
    };
    assert!(matches!(
        read_bytes(&bytes, Some(&pass("x"))),
        Err(ArchiveError::WrongKey { .. })
    ));
    assert_eq!(read_bytes(&bytes, Some(&src(&key(1)))).unwrap(), model);

    // Under a passphrase: the Argon2id salt and cost travel in the header.
    let db = Db::open(dir.path().join("p-db")).unwrap();
    let model = fill(&db, 10);
    let file = dir.path().join("p.skva");
    archive::export(
        &db,
        &file,
        &ExportOptions::sealed(pass("correct horse")),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(
        read_all(&file, Some(&pass("correct horse"))).unwrap(),
        model
    );
    assert!(matches!(
        read_all(&file, Some(&pass("wrong horse"))),
        Err(ArchiveError::WrongKey { .. })
    ));
    assert!(matches!(
        read_all(&file, Some(&src(&key(1)))),
        Err(ArchiveError::WrongKey { .. })
    ));
}

#[test]
fn truncation_at_every_boundary_and_inside_every_chunk_names_the_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(1);
    let (bytes, offsets, _) = small_archive(dir.path(), &k, "a");
    assert!(offsets.len() > 5, "want many chunks, got {}", offsets.len());
    for (i, &off) in offsets.iter().enumerate() {
        // Cut exactly before chunk i: it is missing.
        let e = read_bytes(&bytes[..off as usize], Some(&src(&k))).unwrap_err();
        assert!(
            matches!(e, ArchiveError::Truncated { .. }),
            "cut at chunk {i}: {e}"
        );
        assert_eq!(chunk_of(&e), Some(i as u64), "cut at chunk {i}: {e}");
        // Cut inside its frame, body and tag.
        let end = offsets.get(i + 1).map_or(bytes.len(), |&o| o as usize);
        for cut in [off as usize + 3, (off as usize + end) / 2, end - 1] {
            let e = read_bytes(&bytes[..cut], Some(&src(&k))).unwrap_err();
            assert!(
                matches!(e, ArchiveError::Truncated { .. }),
                "cut at {cut}: {e}"
            );
            assert_eq!(chunk_of(&e), Some(i as u64), "cut at {cut}: {e}");
        }
    }
    // Inside the header.
    let e = read_bytes(&bytes[..100], Some(&src(&k))).unwrap_err();
    assert_eq!(e.location(), Some(Location::Header));
    // Extra bytes after the trailer.
    let mut longer = bytes.clone();
    longer.push(0);
    let e = read_bytes(&longer, Some(&src(&k))).unwrap_err();
    assert_eq!(chunk_of(&e), Some(offsets.len() as u64), "{e}");
}

#[test]
fn a_flipped_byte_anywhere_is_caught_and_located() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(1);
    let (bytes, offsets, _) = small_archive(dir.path(), &k, "a");
    for pos in 0..bytes.len() {
        let mut b = bytes.clone();
        b[pos] ^= 0x01;
        let e = read_bytes(&b, Some(&src(&k))).expect_err(&format!("flip at {pos} went unseen"));
        let expected = offsets.iter().rposition(|&o| o as usize <= pos);
        match expected {
            None => assert_eq!(e.location(), Some(Location::Header), "flip at {pos}: {e}"),
            // A flipped length can make the chunk look longer (read into
            // the next one, or past the end): the error names this chunk
            // or, for the last chunk, the missing bytes after it.
            Some(i) => {
                let c = chunk_of(&e).expect("a chunk is named");
                assert!(
                    c == i as u64 || c == i as u64 + 1,
                    "flip at {pos} in chunk {i}: {e}"
                );
            }
        }
    }
}

#[test]
fn flipped_bytes_in_a_plaintext_export_fail_the_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("db")).unwrap();
    let model = fill(&db, 20);
    let file = dir.path().join("p.skva");
    let opts = ExportOptions::plaintext_unencrypted().chunk_size(128);
    archive::export(&db, &file, &opts, &mut |_| {}).unwrap();
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(read_bytes(&bytes, None).unwrap(), model);
    for pos in 0..bytes.len() {
        let mut b = bytes.clone();
        b[pos] ^= 0x80;
        assert!(read_bytes(&b, None).is_err(), "flip at {pos} went unseen");
    }
}

fn swap_chunks(bytes: &[u8], offsets: &[u64], a: usize, b: usize) -> Vec<u8> {
    let span = |i: usize| {
        let s = offsets[i] as usize;
        let e = offsets.get(i + 1).map_or(bytes.len(), |&o| o as usize);
        bytes[s..e].to_vec()
    };
    let mut out = bytes[..offsets[0] as usize].to_vec();
    for i in 0..offsets.len() {
        let j = if i == a {
            b
        } else if i == b {
            a
        } else {
            i
        };
        out.extend_from_slice(&span(j));
    }
    out
}

#[test]
fn swapped_duplicated_and_spliced_chunks_name_the_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(1);
    let (bytes, offsets, _) = small_archive(dir.path(), &k, "a");
    let (other, other_offsets, _) = small_archive(dir.path(), &k, "b");
    // Same record set, same key, same chunk size: only the salt differs.
    assert_eq!(offsets, other_offsets);

    // Two chunks swapped: the first out of place is named.
    let e = read_bytes(&swap_chunks(&bytes, &offsets, 2, 4), Some(&src(&k))).unwrap_err();
    assert!(matches!(e, ArchiveError::Corruption { .. }), "{e}");
    assert_eq!(chunk_of(&e), Some(2), "{e}");

    // A chunk duplicated (chunk 3 written twice).
    let (s3, e3) = (offsets[3] as usize, offsets[4] as usize);
    let mut dup = bytes[..e3].to_vec();
    dup.extend_from_slice(&bytes[s3..]);
    let e = read_bytes(&dup, Some(&src(&k))).unwrap_err();
    assert_eq!(chunk_of(&e), Some(4), "{e}");

    // Chunk 3 replaced by chunk 3 of another archive under the same key.
    let mut spliced = bytes[..s3].to_vec();
    spliced.extend_from_slice(&other[s3..e3]);
    spliced.extend_from_slice(&bytes[e3..]);
    let e = read_bytes(&spliced, Some(&src(&k))).unwrap_err();
    assert_eq!(chunk_of(&e), Some(3), "{e}");

    // The other archive's header on this archive's chunks.
    let mut header_swap = other[..format::HEADER_LEN].to_vec();
    header_swap.extend_from_slice(&bytes[format::HEADER_LEN..]);
    let e = read_bytes(&header_swap, Some(&src(&k))).unwrap_err();
    assert_eq!(chunk_of(&e), Some(0), "{e}");

    // A chunk dropped from the middle.
    let mut dropped = bytes[..s3].to_vec();
    dropped.extend_from_slice(&bytes[e3..]);
    let e = read_bytes(&dropped, Some(&src(&k))).unwrap_err();
    assert_eq!(chunk_of(&e), Some(3), "{e}");
}

#[test]
fn a_sealed_archive_holds_no_canary_and_a_plaintext_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let canaries = Canaries::new(200);
    let db = Db::open(dir.path().join("db")).unwrap();
    for i in 0..canaries.len() {
        db.put(canaries.key(i), canaries.value(i)).unwrap();
    }
    let sealed = dir.path().join("s.skva");
    archive::export(
        &db,
        &sealed,
        &ExportOptions::sealed(src(&key(5))),
        &mut |_| {},
    )
    .unwrap();
    let files = vec![("s.skva".to_string(), std::fs::read(&sealed).unwrap())];
    assert_eq!(scan_for_plaintext(&files, &canaries), vec![]);
    // The scanner works: the plaintext export leaks every canary.
    let plain = dir.path().join("p.skva");
    archive::export(
        &db,
        &plain,
        &ExportOptions::plaintext_unencrypted(),
        &mut |_| {},
    )
    .unwrap();
    let files = vec![("p.skva".to_string(), std::fs::read(&plain).unwrap())];
    assert!(!scan_for_plaintext(&files, &canaries).is_empty());
}

#[test]
fn destinations_are_refused_unless_replacing_and_failures_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(1);
    let db = Db::open(dir.path().join("db")).unwrap();
    let model = fill(&db, 50);
    let file = dir.path().join("a.skva");
    std::fs::write(&file, b"precious").unwrap();
    let opts = ExportOptions::sealed(src(&k));
    assert!(matches!(
        archive::export(&db, &file, &opts, &mut |_| {}),
        Err(ArchiveError::Exists { .. })
    ));
    assert_eq!(std::fs::read(&file).unwrap(), b"precious");
    // A failing export (here: a chunk size out of range) leaves no file.
    let failed = dir.path().join("failed.skva");
    assert!(matches!(
        archive::export(&db, &failed, &opts.clone().chunk_size(8), &mut |_| {}),
        Err(ArchiveError::InvalidOptions(_))
    ));
    assert!(!failed.exists());
    archive::export(
        &db,
        &file,
        &opts.clone().replace_existing(true),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(read_all(&file, Some(&src(&k))).unwrap(), model);

    // Import into an existing directory: refused; a damaged archive leaves
    // no destination and no temporary directory behind.
    let dest = dir.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    let make = |d: &Path| Config::new(d);
    assert!(matches!(
        archive::import(
            &file,
            Some(&src(&k)),
            &dest,
            &make,
            &ImportOptions::new(),
            &mut |_| {}
        ),
        Err(ArchiveError::Exists { .. })
    ));
    let mut bytes = std::fs::read(&file).unwrap();
    let n = bytes.len();
    bytes[n - 5] ^= 1;
    let bad = dir.path().join("bad.skva");
    std::fs::write(&bad, &bytes).unwrap();
    let fresh = dir.path().join("fresh");
    let e = archive::import(
        &bad,
        Some(&src(&k)),
        &fresh,
        &make,
        &ImportOptions::new(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(matches!(e, ArchiveError::Corruption { .. }), "{e}");
    assert!(!fresh.exists());
    let leftovers: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    assert_eq!(leftovers, Vec::<PathBuf>::new());
    // Replacing an existing database works and removes the old one.
    archive::import(
        &file,
        Some(&src(&k)),
        &dest,
        &make,
        &ImportOptions::new().replace_existing(true),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(contents(&Db::open(&dest).unwrap()), model);
}

#[test]
fn verify_reports_records_bytes_and_progress() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(1);
    let db = Db::open(dir.path().join("db")).unwrap();
    let model = fill(&db, 10_000);
    let file = dir.path().join("a.skva");
    let mut reports = 0;
    let written = archive::export(&db, &file, &ExportOptions::sealed(src(&k)), &mut |_| {
        reports += 1
    })
    .unwrap();
    assert!(reports >= 2);
    let mut last = None;
    let checked = archive::verify_archive(&file, Some(&src(&k)), &mut |p| last = Some(*p)).unwrap();
    let data: u64 = model.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum();
    assert_eq!(checked.records, 10_000);
    assert_eq!(checked.data_bytes, data);
    assert_eq!(
        checked.archive_bytes,
        std::fs::metadata(&file).unwrap().len()
    );
    assert_eq!(checked, written);
    let last = last.unwrap();
    assert_eq!(last.records_done, 10_000);
    assert_eq!(last.bytes_done, last.bytes_total.unwrap());
}

#[test]
fn empty_database_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("db")).unwrap();
    let file = dir.path().join("a.skva");
    let s = archive::export(
        &db,
        &file,
        &ExportOptions::sealed(src(&key(1))),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!((s.records, s.chunks), (0, 1));
    assert_eq!(read_all(&file, Some(&src(&key(1)))).unwrap(), Model::new());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn arbitrary_record_sets_round_trip(
        records in proptest::collection::btree_map(
            proptest::collection::vec(any::<u8>(), 0..40),
            proptest::collection::vec(any::<u8>(), 0..600),
            0..60,
        ),
        chunk in 64u32..400,
        sealed in any::<bool>(),
    ) {
        let opts = if sealed {
            ExportOptions::sealed(src(&key(7)))
        } else {
            ExportOptions::plaintext_unencrypted()
        }
        .chunk_size(chunk);
        let mut w = archive::ArchiveWriter::new(
            Vec::new(), Path::new("p.skva"), &opts, sealkv::crypto::DbId([1; 16]), 9,
        ).unwrap();
        for (k, v) in &records {
            w.push(k, v).unwrap();
        }
        let (bytes, summary) = w.finish().unwrap();
        prop_assert_eq!(summary.records, records.len() as u64);
        prop_assert_eq!(summary.archive_bytes, bytes.len() as u64);
        let k = src(&key(7));
        let read = read_bytes(&bytes, sealed.then_some(&k)).unwrap();
        prop_assert_eq!(read, records);
    }
}

/// A plaintext archive in a sealed one's
/// place is refused when a key is given (it is read only with no key), and
/// a reader stops for good at its first error.
#[test]
fn plaintext_archive_is_refused_when_a_key_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(1);
    let db = Db::open_with_config(config(&dir.path().join("src"), Flavor::Aes, &k)).unwrap();
    let model = fill(&db, 50);
    let file = dir.path().join("p.skva");
    archive::export(
        &db,
        &file,
        &ExportOptions::plaintext_unencrypted(),
        &mut |_| {},
    )
    .unwrap();
    let err = archive::verify_archive(&file, Some(&src(&k)), &mut |_| {}).unwrap_err();
    assert!(matches!(err, ArchiveError::NotSealed { .. }), "{err:?}");
    let dest = dir.path().join("dst");
    let make = |d: &Path| config(d, Flavor::Aes, &k);
    let err = archive::import(
        &file,
        Some(&src(&k)),
        &dest,
        &make,
        &ImportOptions::new(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(matches!(err, ArchiveError::NotSealed { .. }), "{err:?}");
    assert!(!dest.exists());
    let read = archive::import(
        &file,
        None,
        &dest,
        &make,
        &ImportOptions::new(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(read.records, model.len() as u64);

    // A damaged chunk: the first error, then every later call fails too.
    let sealed = dir.path().join("s.skva");
    archive::export(
        &db,
        &sealed,
        &ExportOptions::sealed(src(&k)).chunk_size(256),
        &mut |_| {},
    )
    .unwrap();
    let mut bytes = std::fs::read(&sealed).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 1;
    let mut reader = ArchiveReader::open(
        &bytes[..],
        Path::new("s.skva"),
        Some(&src(&k)),
        &Default::default(),
    )
    .unwrap();
    let mut first_err = None;
    for _ in 0..10_000 {
        match reader.next_record() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("a damaged archive read to its end"),
            Err(e) => {
                first_err = Some(e);
                break;
            }
        }
    }
    assert!(first_err.is_some());
    for _ in 0..3 {
        assert!(
            reader.next_record().is_err(),
            "a reader went on after an error"
        );
    }
}

#[test]
fn import_and_verify_open_the_archive_with_the_provider_they_are_given() {
    use sealkv::crypto::{CryptoError, CryptoProvider};
    let dir = tempfile::tempdir().unwrap();
    let k = key(3);
    let (_, _, model) = small_archive(dir.path(), &k, "p");
    let file = dir.path().join("p.skva");
    // A provider without AES-256-GCM, the archive's algorithm (here: none
    // at all): refused, which shows it is the one used.
    let default = CryptoProvider::default();
    let no_aes = CryptoProvider::from_algorithms(Vec::new()).unwrap();
    let unsupported = |e: ArchiveError| {
        matches!(
            e,
            ArchiveError::Crypto(CryptoError::UnsupportedAlgorithm(id))
                if id == EncryptionAlgorithm::Aes256Gcm.id()
        )
    };
    let e = archive::verify_archive_with(&file, Some(&src(&k)), &no_aes, &mut |_| {}).unwrap_err();
    assert!(unsupported(e));
    let summary =
        archive::verify_archive_with(&file, Some(&src(&k)), &default, &mut |_| {}).unwrap();
    assert_eq!(summary.records, model.len() as u64);

    let dest = dir.path().join("imported");
    let import_with = |provider: CryptoProvider| {
        archive::import(
            &file,
            Some(&src(&k)),
            &dest,
            &|d: &Path| Config::new(d),
            &ImportOptions::new().crypto_provider(Arc::new(provider)),
            &mut |_| {},
        )
    };
    assert!(unsupported(import_with(no_aes).unwrap_err()));
    assert!(!dest.exists(), "a refused import leaves nothing");
    import_with(default).unwrap();
    assert_eq!(contents(&Db::open(&dest).unwrap()), model);
}
