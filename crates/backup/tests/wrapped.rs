//! A database under an in-process [`SoftwareWrapper`]: the whole life of a
//! wrapped-key database (see `support/wrapped_lifecycle.rs`), and export
//! archives sealed under the wrapper: wrong keys, tampered wrapper
//! sections, outages.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sealkv::crypto::registry::RegistryError;
use sealkv::crypto::{
    KeyError, KeySource, KeyWrapper, MasterKey, SecretKey, SoftwareWrapper, WrapError,
};
use sealkv::{Config, Db, Error, SyncMode};
use sealkv_backup::archive::format::HEADER_LEN;
use sealkv_backup::archive::{
    ArchiveError, ExportOptions, ImportOptions, Location, export, import, verify_archive,
};

#[path = "support/wrapped_lifecycle.rs"]
mod wrapped_lifecycle;

fn wrapper(id: &str, byte: u8) -> Arc<SoftwareWrapper> {
    Arc::new(SoftwareWrapper::new(
        id,
        MasterKey::from_bytes(&[byte; 32]).unwrap(),
    ))
}

#[test]
fn a_database_under_a_software_wrapper_lives_a_whole_life() {
    let tmp = tempfile::tempdir().unwrap();
    wrapped_lifecycle::run(
        tmp.path(),
        wrapper("first", 1),
        wrapper("second", 2),
        wrapper("first", 3),
    );
}

/// A software wrapper that can be switched off, as an HSM outage would.
struct Flaky {
    inner: SoftwareWrapper,
    down: AtomicBool,
}

impl KeyWrapper for Flaky {
    fn kind(&self) -> &str {
        self.inner.kind()
    }
    fn key_id(&self) -> Result<String, WrapError> {
        self.check()?;
        self.inner.key_id()
    }
    fn wrap(&self, key: &SecretKey, context: &[u8]) -> Result<Vec<u8>, WrapError> {
        self.check()?;
        self.inner.wrap(key, context)
    }
    fn unwrap(&self, wrapped: &[u8], context: &[u8]) -> Result<SecretKey, WrapError> {
        self.check()?;
        self.inner.unwrap(wrapped, context)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

impl Flaky {
    fn check(&self) -> Result<(), WrapError> {
        if self.down.load(Ordering::SeqCst) {
            Err(WrapError::Unavailable("the HSM does not answer".into()))
        } else {
            Ok(())
        }
    }
}

#[test]
fn an_outage_of_the_wrapper_fails_opens_but_not_an_open_database() {
    let tmp = tempfile::tempdir().unwrap();
    let flaky = Arc::new(Flaky {
        inner: SoftwareWrapper::new("hsm", MasterKey::from_bytes(&[9; 32]).unwrap()),
        down: AtomicBool::new(false),
    });
    let config = |dir: &std::path::Path| {
        Config::new(dir)
            .sync_mode(SyncMode::Always)
            .key_wrapper(flaky.clone())
    };
    let dir = tmp.path().join("db");
    let db = Db::open_with_config(config(&dir)).unwrap();
    db.put(b"before", b"the outage").unwrap();

    flaky.down.store(true, Ordering::SeqCst);
    // The open database keeps working: its keys are in memory.
    db.put(b"during", b"the outage").unwrap();
    db.rotate_data_key().unwrap();
    db.put(b"after-rotation", b"still fine").unwrap();
    db.reencrypt(&mut |_| std::ops::ControlFlow::Continue(()))
        .unwrap();
    db.backup_to(&tmp.path().join("backup"), &mut |_| {})
        .unwrap();
    assert!(db.verify().unwrap().is_clean());
    // A rekey to the wrapper needs it, and fails before writing anything.
    let generation = db.stats().unwrap().encryption.registry_generation;
    assert!(db.rekey(KeySource::Wrapper(flaky.clone())).is_err());
    assert_eq!(
        db.stats().unwrap().encryption.registry_generation,
        generation
    );
    db.close().unwrap();
    // Opening needs the wrapper: a typed error, not WrongKey.
    match Db::open_with_config(config(&dir)) {
        Err(Error::Registry(RegistryError::Key(KeyError::Wrap(WrapError::Unavailable(_))))) => {}
        other => panic!("open during the outage: {:?}", other.map(|_| ())),
    }
    flaky.down.store(false, Ordering::SeqCst);
    let db = Db::open_with_config(config(&dir)).unwrap();
    for k in [&b"before"[..], b"during", b"after-rotation"] {
        assert!(db.get(k).unwrap().is_some());
    }
    assert!(db.verify().unwrap().is_clean());
    let backup = Db::open_with_config(config(&tmp.path().join("backup"))).unwrap();
    assert!(backup.get(b"during").unwrap().is_some());
}

/// A small database under `wrapper` and an archive of it sealed under the
/// wrapper itself; returns the archive's path.
fn wrapped_archive(root: &std::path::Path, wrapper: Arc<dyn KeyWrapper>) -> std::path::PathBuf {
    let db = Db::open_with_config(
        Config::new(root.join("db"))
            .sync_mode(SyncMode::Always)
            .key_wrapper(wrapper.clone()),
    )
    .unwrap();
    for i in 0..50u32 {
        db.put(format!("k{i:03}"), format!("v{i}")).unwrap();
    }
    let path = root.join("wrapped.skva");
    export(
        &db,
        &path,
        &ExportOptions::sealed(KeySource::Wrapper(wrapper)).chunk_size(256),
        &mut |_| {},
    )
    .unwrap();
    db.close().unwrap();
    path
}

/// Where the wrapper section's fields are in an archive's bytes: (kind,
/// key id, wrapped key) as byte ranges, and the section's whole range.
fn section_fields(
    bytes: &[u8],
) -> (
    std::ops::Range<usize>,
    std::ops::Range<usize>,
    std::ops::Range<usize>,
    std::ops::Range<usize>,
) {
    let at = HEADER_LEN;
    let len = u32::from_le_bytes(bytes[84..88].try_into().unwrap()) as usize;
    let kind = at + 1..at + 1 + bytes[at] as usize;
    let id = kind.end + 1..kind.end + 1 + bytes[kind.end] as usize;
    let wlen = u16::from_le_bytes(bytes[id.end..id.end + 2].try_into().unwrap()) as usize;
    let wrapped = id.end + 2..id.end + 2 + wlen;
    assert_eq!(wrapped.end + 4, at + len, "the section ends with its CRC");
    (kind, id, wrapped, at..at + len)
}

/// Recomputes the wrapper section's CRC, as a forger would.
fn fix_section_crc(bytes: &mut [u8]) {
    let (_, _, wrapped, section) = section_fields(bytes);
    let crc = crc32c_of(&bytes[section.start..wrapped.end]);
    bytes[wrapped.end..section.end].copy_from_slice(&crc.to_le_bytes());
}

/// CRC32C (Castagnoli), bitwise: the tests need no dependency for it.
fn crc32c_of(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn verify_with(path: &std::path::Path, wrapper: Arc<dyn KeyWrapper>) -> Result<u64, ArchiveError> {
    verify_archive(path, Some(&KeySource::Wrapper(wrapper)), &mut |_| {}).map(|s| s.records)
}

#[test]
fn an_archive_sealed_under_a_wrapper_reads_with_it_alone_and_no_other_key() {
    let tmp = tempfile::tempdir().unwrap();
    let w = wrapper("hsm", 7);
    let path = wrapped_archive(tmp.path(), w.clone());
    assert_eq!(verify_with(&path, w.clone()).unwrap(), 50);
    let bytes = std::fs::read(&path).unwrap();
    let (kind, id, wrapped, _) = section_fields(&bytes);
    assert_eq!(&bytes[kind], b"software");
    assert_eq!(&bytes[id], b"hsm");
    assert_eq!(wrapped.len(), 60);
    // Another wrapping key under the same id, another id, a raw key, a
    // passphrase, no key: each refused, and never as damage.
    for other in [wrapper("hsm", 8), wrapper("other", 7)] {
        assert!(matches!(
            verify_with(&path, other),
            Err(ArchiveError::WrongKey { .. })
        ));
    }
    let raw = KeySource::Key(MasterKey::from_bytes(&[7; 32]).unwrap());
    assert!(matches!(
        verify_archive(&path, Some(&raw), &mut |_| {}),
        Err(ArchiveError::WrongKey { .. })
    ));
    assert!(matches!(
        verify_archive(&path, None, &mut |_| {}),
        Err(ArchiveError::MissingKey { .. })
    ));
    // Two archives of one database under one wrapper never share an
    // archive key: their wrapped keys and salts differ.
    let second = tmp.path().join("second.skva");
    let db =
        Db::open_with_config(Config::new(tmp.path().join("db")).key_wrapper(w.clone())).unwrap();
    export(
        &db,
        &second,
        &ExportOptions::sealed(KeySource::Wrapper(w.clone())),
        &mut |_| {},
    )
    .unwrap();
    let other = std::fs::read(&second).unwrap();
    let (_, _, wrapped_2, _) = section_fields(&other);
    assert_ne!(&bytes[wrapped.clone()], &other[wrapped_2]);
    assert_ne!(&bytes[20..52], &other[20..52]);
    // The wrapper is the wrong key for an archive under a raw key.
    let raw_archive = tmp.path().join("raw.skva");
    export(&db, &raw_archive, &ExportOptions::sealed(raw), &mut |_| {}).unwrap();
    assert!(matches!(
        verify_with(&raw_archive, w),
        Err(ArchiveError::WrongKey { .. })
    ));
}

#[test]
fn a_tampered_wrapper_section_fails_closed() {
    let tmp = tempfile::tempdir().unwrap();
    let w = wrapper("hsm", 7);
    let path = wrapped_archive(tmp.path(), w.clone());
    let good = std::fs::read(&path).unwrap();
    let (kind, id, wrapped, section) = section_fields(&good);
    let bad = tmp.path().join("bad.skva");
    let check = |bytes: &[u8], key: Arc<dyn KeyWrapper>, what: &str| -> ArchiveError {
        std::fs::write(&bad, bytes).unwrap();
        match verify_with(&bad, key) {
            Ok(n) => panic!("{what}: the tampered archive read {n} records"),
            Err(e) => e,
        }
    };
    // Any byte of the section flipped, its CRC left alone: damage.
    for i in section.clone() {
        let mut b = good.clone();
        b[i] ^= 0x01;
        let e = check(&b, w.clone(), &format!("section byte {i}"));
        assert!(
            matches!(e, ArchiveError::Corruption { .. }),
            "byte {i}: {e:?}"
        );
    }
    // A forger who also fixes the CRC (each case below fails the unwrap,
    // `WrongKey`; a key that unwrapped unbound would fail the key check
    // instead, `Corruption`): the kind no longer names the
    // wrapper (refused before any unwrap)...
    let mut b = good.clone();
    b[kind.start] ^= 0x01;
    fix_section_crc(&mut b);
    let e = check(&b, w.clone(), "kind");
    assert!(matches!(e, ArchiveError::WrongKey { .. }), "{e:?}");
    // ...another key id, even to a wrapper holding the same key under
    // that id: the wrap context binds the id, so the unwrap fails...
    let mut b = good.clone();
    b[id.start] = b'H';
    fix_section_crc(&mut b);
    let e = check(&b, w.clone(), "key id");
    assert!(matches!(e, ArchiveError::WrongKey { .. }), "{e:?}");
    let e = check(&b, wrapper("Hsm", 7), "key id, matching wrapper");
    assert!(matches!(e, ArchiveError::WrongKey { .. }), "{e:?}");
    // ...and any byte of the wrapped key changed: the unwrap fails.
    for i in wrapped.clone() {
        let mut b = good.clone();
        b[i] ^= 0x80;
        fix_section_crc(&mut b);
        let e = check(&b, w.clone(), &format!("wrapped byte {i}"));
        assert!(
            matches!(e, ArchiveError::WrongKey { .. }),
            "byte {i}: {e:?}"
        );
    }
    // The wrapper section of another archive under the same wrapper: its
    // key is bound to the other archive's salt.
    let other_root = tmp.path().join("other");
    std::fs::create_dir_all(&other_root).unwrap();
    let other = std::fs::read(wrapped_archive(&other_root, w.clone())).unwrap();
    let (_, _, _, other_section) = section_fields(&other);
    assert_eq!(other_section, section, "same wrapper, same section length");
    let mut b = good.clone();
    b[section.clone()].copy_from_slice(&other[other_section]);
    let e = check(&b, w.clone(), "another archive's section");
    assert!(matches!(e, ArchiveError::WrongKey { .. }), "{e:?}");
    // The archive salt (bytes 20..52) or the source database id (52..68)
    // changed, the header CRC fixed: the wrap context binds both, so the
    // unwrap itself fails (an unbound key would unwrap and then fail the
    // key check, which is `Corruption`).
    for (what, at) in [("salt", 20), ("database id", 52)] {
        let mut b = good.clone();
        b[at] ^= 0x01;
        let crc = crc32c_of(&b[..160]);
        b[160..164].copy_from_slice(&crc.to_le_bytes());
        let e = check(&b, w.clone(), what);
        assert!(matches!(e, ArchiveError::WrongKey { .. }), "{what}: {e:?}");
    }
    // The header's key check changed (its CRC fixed) while the wrapped key
    // opens: the right wrapper unwrapped the right key, so the header is
    // damaged, not the key wrong.
    let mut b = good.clone();
    b[128] ^= 0x01;
    let crc = crc32c_of(&b[..160]);
    b[160..164].copy_from_slice(&crc.to_le_bytes());
    let e = check(&b, w.clone(), "key check");
    assert!(
        matches!(
            e,
            ArchiveError::Corruption {
                at: Location::Header,
                ..
            }
        ),
        "{e:?}"
    );
    // A version-2 header naming key kind 3 (header CRC fixed): unsupported.
    let mut b = good.clone();
    b[8..10].copy_from_slice(&2u16.to_le_bytes());
    let crc = crc32c_of(&b[..160]);
    b[160..164].copy_from_slice(&crc.to_le_bytes());
    let e = check(&b, w.clone(), "version 2");
    assert!(matches!(e, ArchiveError::Unsupported { .. }), "{e:?}");
    // Cut inside the section: truncated at the header.
    let e = check(&good[..section.start + 5], w.clone(), "cut");
    assert!(
        matches!(
            e,
            ArchiveError::Truncated {
                at: Location::Header,
                ..
            }
        ),
        "{e:?}"
    );
    // The untouched archive still reads.
    assert_eq!(verify_with(&path, w).unwrap(), 50);
}

#[test]
fn an_outage_of_the_wrapper_fails_an_export_or_import_as_an_outage() {
    let tmp = tempfile::tempdir().unwrap();
    let flaky = Arc::new(Flaky {
        inner: SoftwareWrapper::new("hsm", MasterKey::from_bytes(&[9; 32]).unwrap()),
        down: AtomicBool::new(false),
    });
    let path = wrapped_archive(tmp.path(), flaky.clone());
    flaky.down.store(true, Ordering::SeqCst);
    let outage = |r: Result<u64, ArchiveError>| {
        matches!(
            r,
            Err(ArchiveError::Key(KeyError::Wrap(WrapError::Unavailable(_))))
        )
    };
    assert!(outage(verify_with(&path, flaky.clone())));
    let dest = tmp.path().join("imported");
    let key = KeySource::Wrapper(flaky.clone());
    assert!(outage(
        import(
            &path,
            Some(&key),
            &dest,
            &|p: &std::path::Path| Config::new(p),
            &ImportOptions::new(),
            &mut |_| {},
        )
        .map(|s| s.records)
    ));
    assert!(!dest.exists());
    // An export cannot wrap its archive key: no archive is left behind.
    flaky.down.store(false, Ordering::SeqCst);
    let db = Db::open_with_config(Config::new(tmp.path().join("db")).key_wrapper(flaky.clone()))
        .unwrap();
    flaky.down.store(true, Ordering::SeqCst);
    let refused = tmp.path().join("refused.skva");
    assert!(outage(
        export(&db, &refused, &ExportOptions::sealed(key), &mut |_| {}).map(|s| s.records)
    ));
    assert!(!refused.exists());
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("sealkv-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    flaky.down.store(false, Ordering::SeqCst);
    assert_eq!(verify_with(&path, flaky).unwrap(), 50);
}

/// Writes the `archive_verify` fuzz seed of key kind 3: five records
/// exported under the software wrapper the fuzz target reads with (key id
/// `fuzz`, key `0x5a` x 32), so mutants start past the wrapper section.
/// Run with `cargo test -p sealkv-backup --test wrapped -- --ignored`.
#[test]
#[ignore = "writes the fuzz seed into fuzz/corpus"]
fn write_fuzz_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let w = wrapper("fuzz", 0x5a);
    let db = Db::open_with_config(
        Config::new(tmp.path().join("db"))
            .sync_mode(SyncMode::Always)
            .key_wrapper(w.clone()),
    )
    .unwrap();
    for i in 0..5u32 {
        db.put(format!("k{i}"), format!("v{i}")).unwrap();
    }
    let path = tmp.path().join("wrapped.skva");
    export(
        &db,
        &path,
        &ExportOptions::sealed(KeySource::Wrapper(w.clone())).chunk_size(64),
        &mut |_| {},
    )
    .unwrap();
    db.close().unwrap();
    assert_eq!(verify_with(&path, w).unwrap(), 5);
    sealkv_testkit::write_fuzz_seed(
        "archive_verify",
        "wrapped.skva",
        &std::fs::read(&path).unwrap(),
    );
}
