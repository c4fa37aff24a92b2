//! Export archives carry every keyspace: the writer's rules, the reader's
//! checks of keyspace markers, and an export of a snapshot taken before
//! keyspaces changed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

use sealkv::crypto::{KeySource, MasterKey, checksum_tag};
use sealkv::{Config, Db};
use sealkv_backup::archive::{
    self, ArchiveError, ArchiveWriter, Entry, ExportOptions, ImportOptions, format,
};

type Records = BTreeMap<Vec<u8>, Vec<u8>>;

fn all(iter: sealkv::DbIter) -> Records {
    iter.collect::<Result<_, _>>().unwrap()
}

fn key() -> KeySource {
    KeySource::Key(MasterKey::from_bytes(&[0x33; 32]).unwrap())
}

#[test]
fn an_export_carries_every_keyspace_as_the_snapshot_had_it() {
    for options in [
        ExportOptions::sealed(key()),
        ExportOptions::plaintext_unencrypted(),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_with_config(Config::new(dir.path().join("db"))).unwrap();
        db.put(b"d", b"default").unwrap();
        let users = db.keyspace("users").unwrap();
        for i in 0..500u32 {
            users.put(i.to_be_bytes(), format!("user {i}")).unwrap();
        }
        let doomed = db.keyspace("doomed").unwrap();
        doomed.put(b"k", b"in the snapshot").unwrap();
        db.keyspace("empty").unwrap();
        let snap = db.snapshot().unwrap();
        // After the snapshot: a drop, a new keyspace, more writes.
        drop(doomed);
        db.drop_keyspace("doomed").unwrap();
        db.keyspace("later").unwrap().put(b"k", b"after").unwrap();
        users.put(b"late", b"after").unwrap();

        let path = dir.path().join("a.skva");
        archive::export_snapshot(&snap, db.id(), &path, &options, &mut |_| {}).unwrap();
        let sealed = options.is_sealed();
        let k = key();
        let archive_key = sealed.then_some(&k);
        let summary = archive::verify_archive(&path, archive_key, &mut |_| {}).unwrap();
        assert_eq!(summary.records, 1 + 500 + 1);
        assert_eq!(summary.header.version, format::VERSION);

        let dest = dir.path().join("imported");
        archive::import(
            &path,
            archive_key,
            &dest,
            &|p: &Path| Config::new(p),
            &ImportOptions::new(),
            &mut |_| {},
        )
        .unwrap();
        let copy = Db::open_with_config(Config::new(&dest)).unwrap();
        assert_eq!(copy.keyspaces().unwrap(), vec!["doomed", "empty", "users"]);
        assert_eq!(all(copy.iter().unwrap()), all(snap.iter()));
        for name in ["doomed", "empty", "users"] {
            assert_eq!(
                all(copy.keyspace(name).unwrap().iter().unwrap()),
                all(snap.iter_named(name).unwrap()),
                "{name}"
            );
        }
        assert_eq!(
            all(copy.keyspace("empty").unwrap().iter().unwrap()).len(),
            0
        );
    }
}

#[test]
fn the_writer_keeps_keyspaces_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.skva");
    let file = std::fs::File::create(&path).unwrap();
    let mut w = ArchiveWriter::new(
        file,
        &path,
        &ExportOptions::plaintext_unencrypted(),
        sealkv::crypto::DbId([1; 16]),
        1,
    )
    .unwrap();
    w.push(b"b", b"default").unwrap();
    w.begin_keyspace("m").unwrap();
    // Key order starts over in each keyspace.
    w.push(b"a", b"1").unwrap();
    let refused = |r: Result<(), ArchiveError>| matches!(r, Err(ArchiveError::InvalidOptions(_)));
    assert!(refused(w.begin_keyspace("a")));
    assert!(refused(w.begin_keyspace("m")));
    assert!(refused(w.begin_keyspace("")));
    assert!(refused(w.begin_keyspace(&"x".repeat(256))));
    w.begin_keyspace("z").unwrap();
    w.finish().unwrap();
    let mut reader = archive::ArchiveReader::open(
        std::fs::File::open(&path).unwrap(),
        &path,
        None,
        &Default::default(),
    )
    .unwrap();
    let mut entries = Vec::new();
    while let Some(e) = reader.next_entry().unwrap() {
        entries.push(e);
    }
    assert_eq!(
        entries,
        vec![
            Entry::Record(b"b".to_vec(), b"default".to_vec()),
            Entry::Keyspace("m".into()),
            Entry::Record(b"a".to_vec(), b"1".to_vec()),
            Entry::Keyspace("z".into()),
        ]
    );
}

/// A plaintext archive around a hand-made record `stream`, its trailer
/// counting `records` records of `data_bytes`, with header version
/// `version` (the header of a real plaintext archive, patched).
fn craft(stream: &[u8], records: u64, data_bytes: u64, version: u16) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with_config(Config::new(dir.path().join("db"))).unwrap();
    let path = dir.path().join("real.skva");
    archive::export(
        &db,
        &path,
        &ExportOptions::plaintext_unencrypted(),
        &mut |_| {},
    )
    .unwrap();
    let real = std::fs::read(&path).unwrap();
    let mut header = real[..format::HEADER_LEN].to_vec();
    header[8..10].copy_from_slice(&version.to_le_bytes());
    let crc = crc32c::crc32c(&header[..160]);
    header[160..164].copy_from_slice(&crc.to_le_bytes());
    let mut out = header.clone();
    let mut chunk = |index: u64, last: bool, body: &[u8]| {
        let mut frame = [0u8; format::FRAME_LEN];
        frame[0] = u8::from(last);
        frame[4..8].copy_from_slice(&(body.len() as u32).to_le_bytes());
        let mut aad = header.clone();
        aad.extend_from_slice(&index.to_le_bytes());
        aad.extend_from_slice(&frame);
        out.extend_from_slice(&frame);
        out.extend_from_slice(body);
        out.extend_from_slice(&checksum_tag(&aad, body));
    };
    chunk(0, false, stream);
    let mut trailer = Vec::new();
    trailer.extend_from_slice(&records.to_le_bytes());
    trailer.extend_from_slice(&data_bytes.to_le_bytes());
    trailer.extend_from_slice(&(stream.len() as u64).to_le_bytes());
    chunk(1, true, &trailer);
    out
}

fn marker(name: &[u8], value_len: u32) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&(format::KEYSPACE_MARK | name.len() as u32).to_le_bytes());
    m.extend_from_slice(&value_len.to_le_bytes());
    m.extend_from_slice(name);
    m
}

fn record(k: &[u8], v: &[u8]) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend_from_slice(&(k.len() as u32).to_le_bytes());
    r.extend_from_slice(&(v.len() as u32).to_le_bytes());
    r.extend_from_slice(k);
    r.extend_from_slice(v);
    r
}

fn read(bytes: &[u8]) -> Result<Vec<Entry>, ArchiveError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crafted.skva");
    std::fs::write(&path, bytes).unwrap();
    let mut reader = archive::ArchiveReader::open(
        std::fs::File::open(&path).unwrap(),
        &path,
        None,
        &Default::default(),
    )?;
    let mut out = Vec::new();
    while let Some(e) = reader.next_entry()? {
        out.push(e);
    }
    Ok(out)
}

#[test]
fn the_reader_refuses_malformed_keyspace_markers() {
    // The control: a well-formed stream reads back.
    let good = [marker(b"a", 0), record(b"k", b"v"), marker(b"b", 0)].concat();
    assert_eq!(
        read(&craft(&good, 1, 2, 2)).unwrap(),
        vec![
            Entry::Keyspace("a".into()),
            Entry::Record(b"k".to_vec(), b"v".to_vec()),
            Entry::Keyspace("b".into())
        ]
    );
    let corrupt = |stream: Vec<u8>, records: u64, data: u64, version: u16, why: &str| match read(
        &craft(&stream, records, data, version),
    ) {
        Err(ArchiveError::Corruption { what, .. }) => assert!(what.contains(why), "{what}"),
        other => panic!("{why}: {other:?}"),
    };
    corrupt(good.clone(), 1, 2, 1, "version-1 archive");
    corrupt(
        [marker(b"b", 0), marker(b"a", 0)].concat(),
        0,
        0,
        2,
        "ascending name order",
    );
    corrupt(
        [marker(b"a", 0), marker(b"a", 0)].concat(),
        0,
        0,
        2,
        "ascending name order",
    );
    corrupt(marker(b"a", 1), 0, 0, 2, "length out of range");
    corrupt(marker(b"", 0), 0, 0, 2, "length out of range");
    corrupt(marker(&[0xff, 0xfe], 0), 0, 0, 2, "not UTF-8");
    // Key order starts over per keyspace, but not within one.
    let unordered = [marker(b"a", 0), record(b"k2", b""), record(b"k1", b"")].concat();
    corrupt(unordered, 2, 4, 2, "ascending key order");
}

#[test]
fn a_physical_backup_and_its_restore_hold_every_keyspace() {
    use sealkv_backup::{RestoreOptions, restore};
    let dir = tempfile::tempdir().unwrap();
    let k = MasterKey::from_bytes(&[0x44; 32]).unwrap();
    let config = |p: &Path| Config::new(p).encryption_key(k.clone());
    let db = Db::open_with_config(config(&dir.path().join("db"))).unwrap();
    let users = db.keyspace("users").unwrap();
    for i in 0..300u32 {
        users.put(i.to_be_bytes(), [7u8; 50]).unwrap();
    }
    db.put(b"d", b"default").unwrap();
    db.keyspace("empty").unwrap();
    db.backup_to(&dir.path().join("backup"), &mut |_| {})
        .unwrap();
    users.put(b"after", b"the backup").unwrap();
    let dest = dir.path().join("restored");
    restore(
        &config(&dir.path().join("backup")),
        &dest,
        &RestoreOptions::new(),
        &mut |_| {},
    )
    .unwrap();
    let restored = Db::open_with_config(config(&dest)).unwrap();
    assert_eq!(restored.keyspaces().unwrap(), vec!["empty", "users"]);
    let got = all(restored.keyspace("users").unwrap().iter().unwrap());
    assert_eq!(got.len(), 300);
    assert!(!got.contains_key(&b"after"[..]));
    assert_eq!(
        restored.get(b"d").unwrap().as_deref(),
        Some(&b"default"[..])
    );
    assert!(restored.verify().unwrap().is_clean());
}

#[test]
fn an_export_of_one_keyspace_carries_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with_config(Config::new(dir.path().join("db"))).unwrap();
    db.put(b"d", b"default").unwrap();
    let users = db.keyspace("users").unwrap();
    users.put(b"1", b"Ada").unwrap();
    users.put(b"2", b"Grace").unwrap();
    db.keyspace("orders").unwrap().put(b"1", b"book").unwrap();

    let path = dir.path().join("users.skva");
    let options = ExportOptions::sealed(key()).keyspace("users");
    archive::export(&db, &path, &options, &mut |_| {}).unwrap();
    let k = key();
    let summary = archive::verify_archive(&path, Some(&k), &mut |_| {}).unwrap();
    assert_eq!(summary.records, 2);
    let dest = dir.path().join("imported");
    archive::import(
        &path,
        Some(&k),
        &dest,
        &|p: &Path| Config::new(p),
        &ImportOptions::new(),
        &mut |_| {},
    )
    .unwrap();
    let copy = Db::open_with_config(Config::new(&dest)).unwrap();
    assert_eq!(copy.keyspaces().unwrap(), vec!["users"]);
    assert_eq!(all(copy.iter().unwrap()), Records::new());
    assert_eq!(
        all(copy.keyspace("users").unwrap().iter().unwrap()),
        all(users.iter().unwrap())
    );

    // A keyspace the database lacks: a typed error, and no file.
    let missing = dir.path().join("missing.skva");
    let err = archive::export(
        &db,
        &missing,
        &ExportOptions::sealed(key()).keyspace("nope"),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        matches!(&err, ArchiveError::Db(sealkv::Error::KeyspaceNotFound { name }) if name == "nope"),
        "{err:?}"
    );
    assert!(!missing.exists());
}
