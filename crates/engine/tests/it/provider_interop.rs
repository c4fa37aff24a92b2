//! The `ring` provider is interchangeable on disk with the default
//! RustCrypto one (feature `ring`): a database written with either — pages,
//! a WAL tail left by a writer that never closed, the key registry, a
//! field-sealed value, a rotated data key — opens, verifies and reads with
//! the other, and goes on being written. Besides the ciphers, the providers
//! differ in their HKDF (every subkey), HMAC (the registry's key check and
//! MAC) and random source, so this covers those parts too (passphrase
//! registries and archives: crypto-envelope's `tests/provider_parts.rs`).

use std::sync::Arc;

use sealkv::Db;
use sealkv::crypto::{CryptoProvider, EncryptionAlgorithm};
use sealkv_fileio::SimVfs;

use crate::support::{collect, sim_config};

fn provider(ring: bool) -> Arc<CryptoProvider> {
    Arc::new(if ring {
        CryptoProvider::ring()
    } else {
        CryptoProvider::rustcrypto()
    })
}

fn value(i: u32, round: u32) -> Vec<u8> {
    format!("value {i:05} round {round} ")
        .repeat(4)
        .into_bytes()
}

fn open(vfs: &SimVfs, alg: EncryptionAlgorithm, ring: bool) -> Db {
    Db::open_with_config(sim_config(vfs, Some(alg)).crypto_provider(provider(ring))).unwrap()
}

/// Writes 2,000 records (flushed to pages), rotates the data key, writes
/// 300 more and a field-sealed value, and stops without closing (a power
/// cut): the last writes live only in the WAL.
fn write(vfs: &SimVfs, alg: EncryptionAlgorithm, ring: bool, round: u32) {
    let db = open(vfs, alg, ring);
    for i in 0..2000 {
        db.put(format!("k{i:05}"), value(i, round)).unwrap();
    }
    db.flush().unwrap();
    db.rotate_data_key().unwrap();
    for i in 0..300 {
        db.put(format!("k{i:05}"), value(i, round + 1)).unwrap();
    }
    let fk = db.create_field_key().unwrap();
    db.put_sealed(b"secret", format!("field {round}"), fk)
        .unwrap();
    // Acknowledged under SyncMode::Always: durable in the WAL. No close.
    std::mem::forget(db);
    vfs.crash();
}

fn check(db: &Db, round: u32) {
    let all = collect(db.range::<&[u8]>(..).unwrap());
    assert_eq!(all.len(), 2001);
    for (i, (k, v)) in all.iter().take(2000).enumerate() {
        let i = i as u32;
        assert_eq!(k, format!("k{i:05}").as_bytes());
        let expected = if i < 300 { round + 1 } else { round };
        assert_eq!(v, &value(i, expected), "k{i:05}");
    }
    assert_eq!(
        db.get_sealed(b"secret", None).unwrap(),
        Some(format!("field {round}").into_bytes())
    );
}

#[test]
fn a_database_written_by_one_provider_opens_with_the_other() {
    for alg in [
        EncryptionAlgorithm::Aes256Gcm,
        EncryptionAlgorithm::ChaCha20Poly1305,
    ] {
        for writer_ring in [false, true] {
            let vfs = SimVfs::new();
            write(&vfs, alg, writer_ring, 0);
            // The other provider recovers the WAL tail, reads, verifies.
            let db = open(&vfs, alg, !writer_ring);
            check(&db, 0);
            let report = db.verify().unwrap();
            assert!(report.is_clean(), "{alg} {writer_ring}: {report:?}");
            assert!(report.entries > 0 && report.wal_records > 0, "{report:?}");
            db.close().unwrap();
            // It writes on over the first provider's data, and the first
            // reads that back.
            write(&vfs, alg, !writer_ring, 10);
            let db = open(&vfs, alg, writer_ring);
            check(&db, 10);
            assert!(db.verify().unwrap().is_clean());
            db.close().unwrap();
        }
    }
}

/// The interop test must be able to fail: a flipped byte in a leaf page is
/// caught by both providers, named, never read as data.
#[test]
fn a_tampered_page_fails_with_either_provider() {
    for ring in [false, true] {
        let vfs = SimVfs::new();
        let alg = EncryptionAlgorithm::Aes256Gcm;
        let db = open(&vfs, alg, !ring);
        for i in 0..2000 {
            db.put(format!("k{i:05}"), value(i, 0)).unwrap();
        }
        db.flush().unwrap();
        let tree: Vec<u64> = db
            .page_roles()
            .unwrap()
            .into_iter()
            .filter(|(_, role)| *role == "tree")
            .map(|(p, _)| p)
            .collect();
        db.close().unwrap();
        let path = crate::support::dir().join("data.sealkv");
        let mut bytes = vfs.read_file(&path).unwrap();
        // One byte in the body of every leaf (kind 3; the branches stay
        // whole, so the database opens and each leaf is read on its own).
        let leaves: Vec<u64> = tree
            .into_iter()
            .filter(|&p| bytes[p as usize * 4096] == 3)
            .collect();
        assert!(leaves.len() > 3, "{leaves:?}");
        for &p in &leaves {
            bytes[p as usize * 4096 + 2000] ^= 0x40;
        }
        vfs.write_file(&path, &bytes);
        let db = Db::open_with_config(sim_config(&vfs, Some(alg)).crypto_provider(provider(ring)))
            .unwrap();
        let names_data = |e: &sealkv::Error| matches!(e, sealkv::Error::Corruption { file, .. } if file.ends_with("data.sealkv"));
        for i in 0..2000 {
            match db.get(format!("k{i:05}")) {
                Err(e) => assert!(names_data(&e), "ring={ring} k{i:05}: {e:?}"),
                Ok(v) => panic!("ring={ring}: k{i:05} read from a damaged leaf: {v:?}"),
            }
        }
        let mut named: Vec<u64> = db
            .verify()
            .unwrap()
            .findings
            .iter()
            .filter(|f| f.file.ends_with("data.sealkv"))
            .filter_map(|f| {
                f.what
                    .strip_prefix("page ")?
                    .split(':')
                    .next()?
                    .parse()
                    .ok()
            })
            .collect();
        named.sort_unstable();
        named.dedup();
        assert_eq!(
            named, leaves,
            "ring={ring}: verify names every damaged leaf"
        );
    }
}
