//! Integration tests of the write-ahead log (one binary, one module per
//! concern).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealkv_core_wal::{
    Batch, RecoveryMode, RecoveryReport, Result, Seq, SyncMode, Wal, WalOptions,
};
use sealkv_crypto_envelope::{
    CryptoProvider, DataKey, DbId, EncryptionAlgorithm, KeyId, Keyring, SecretKey,
};
use sealkv_fileio::{SimVfs, Vfs};

mod canary;
mod crash;
mod durability;
mod faults;
mod fuzz;
mod group;
mod modes;
mod nonces;
mod roundtrip;
mod tamper;

/// Plaintext and every sealing algorithm the WAL is used with.
pub const PROTECTIONS: [Option<EncryptionAlgorithm>; 3] = [
    None,
    Some(EncryptionAlgorithm::Aes256Gcm),
    Some(EncryptionAlgorithm::ChaCha20Poly1305),
];

pub const DB: DbId = DbId([0x5e; 16]);

pub fn dir() -> PathBuf {
    PathBuf::from("/db/wal")
}

pub fn keyring_for(db: DbId, alg: EncryptionAlgorithm, key: [u8; 32]) -> Arc<Keyring> {
    let r = Keyring::new(db, Arc::new(CryptoProvider::default()));
    r.insert(DataKey::new(
        KeyId(1),
        alg.id(),
        SecretKey::from_bytes(&key).unwrap(),
    ));
    r.set_active(KeyId(1)).unwrap();
    Arc::new(r)
}

pub fn options(alg: Option<EncryptionAlgorithm>) -> WalOptions {
    let mut o = WalOptions::new(DB);
    if let Some(a) = alg {
        o = o.sealed(keyring_for(DB, a, [0x42; 32]));
    }
    o
}

pub fn sim() -> (SimVfs, Arc<dyn Vfs>) {
    let s = SimVfs::new();
    let v: Arc<dyn Vfs> = Arc::new(s.clone());
    (s, v)
}

pub type Replayed = Vec<(Seq, Batch)>;

pub fn open_at(
    vfs: &Arc<dyn Vfs>,
    dir: &Path,
    opts: &WalOptions,
) -> Result<(Wal, RecoveryReport, Replayed)> {
    let mut seen = Vec::new();
    let (wal, report) = Wal::open(vfs.clone(), dir, opts.clone(), |seq, b| {
        seen.push((seq, b));
        Ok::<(), std::io::Error>(())
    })?;
    Ok((wal, report, seen))
}

pub fn open(vfs: &Arc<dyn Vfs>, opts: &WalOptions) -> Result<(Wal, RecoveryReport, Replayed)> {
    open_at(vfs, &dir(), opts)
}

pub fn with_mode(mut o: WalOptions, mode: RecoveryMode) -> WalOptions {
    o.recovery_mode = mode;
    o
}

pub fn with_sync(mut o: WalOptions, mode: SyncMode) -> WalOptions {
    o.sync_mode = mode;
    o
}

/// A batch that depends on `i`, of roughly `size` bytes.
pub fn batch(i: u64, size: usize) -> Batch {
    let mut b = Batch::new();
    let key = format!("key-{i:08}");
    let value: Vec<u8> = (0..size).map(|j| (i as usize * 31 + j) as u8).collect();
    b.put(key.as_bytes(), &value);
    if i.is_multiple_of(3) {
        b.delete(format!("gone-{i}").as_bytes());
    }
    b
}

/// One unit of a segment file: `(start, end, is_sync_marker)`.
pub type Unit = (usize, usize, bool);

/// The records and sync markers of a segment file, in order (walks the
/// length fields; stops at the first unit that does not fit).
pub fn units(file: &[u8]) -> Vec<Unit> {
    let mut out = Vec::new();
    let mut off = 128;
    while off + 48 <= file.len() {
        let len = u32::from_le_bytes(file[off..off + 4].try_into().unwrap()) as usize;
        let marker = file[off + 4] & 1 == 1;
        let end = off + 48 + len;
        if end > file.len() {
            break;
        }
        out.push((off, end, marker));
        off = end;
    }
    out
}

/// Byte ranges of the records (not markers) of a segment file.
pub fn record_ranges(file: &[u8]) -> Vec<(usize, usize)> {
    units(file)
        .into_iter()
        .filter(|u| !u.2)
        .map(|u| (u.0, u.1))
        .collect()
}

pub fn seg_path(n: u64) -> PathBuf {
    dir().join(format!("{n:020}.wal"))
}

/// Writes `n` batches into a fresh log (segment 1) and closes it.
pub fn fresh_log(opts: &WalOptions, n: u64, size: usize) -> (SimVfs, Arc<dyn Vfs>, Vec<Batch>) {
    let (s, v) = sim();
    let (wal, _, _) = open(&v, opts).unwrap();
    let batches: Vec<Batch> = (0..n).map(|i| batch(i, size)).collect();
    for b in &batches {
        wal.append(b).unwrap();
    }
    wal.close().unwrap();
    (s, v, batches)
}

/// The replayed batches must be exactly the first `k` of `expected`,
/// numbered from 1.
pub fn assert_prefix(seen: &Replayed, expected: &[Batch]) {
    assert!(seen.len() <= expected.len(), "more records than written");
    for (i, (seq, b)) in seen.iter().enumerate() {
        assert_eq!(*seq, Seq(i as u64 + 1));
        assert_eq!(b, &expected[i], "record {i} differs");
    }
}
