//! The page store, plaintext (CRC32C) vs sealed (AES-256-GCM): point
//! lookups with our cache warm and cold (the file in the OS page cache, our
//! cache empty), forward range scans, and commits of 1, 100 and 10,000
//! sorted puts.
//!
//! Reads run on the real file system (a temporary directory); commits run
//! on the in-memory `SimVfs`, so they measure the CPU cost of a commit
//! (building, sealing and writing pages) rather than the disk's fsync
//! latency, which would hide it.
//!
//! `cargo bench -p sealkv-benches --bench store -- --warm-up-time 1 --measurement-time 2`

#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sealkv_core_store::{Store, StoreOptions};
use sealkv_crypto_envelope::{
    CryptoProvider, DataKey, DbId, EncryptionAlgorithm, KeyId, Keyring, SecretKey,
};
use sealkv_fileio::{SimVfs, SplitMix64, StdVfs, Vfs};

const KEYS: u32 = 100_000;

fn keyring() -> Arc<Keyring> {
    let k = Keyring::new(DbId([1; 16]), Arc::new(CryptoProvider::default()));
    k.insert(DataKey::new(
        KeyId(1),
        EncryptionAlgorithm::Aes256Gcm.id(),
        SecretKey::from_bytes(&[7; 32]).unwrap(),
    ));
    k.set_active(KeyId(1)).unwrap();
    Arc::new(k)
}

fn key(i: u32) -> Vec<u8> {
    format!("user:{i:010}").into_bytes()
}

fn value(i: u32, g: u32) -> Vec<u8> {
    let mut v = format!("{i}:{g}:").into_bytes();
    v.resize(100, b'v');
    v
}

fn mode_name(sealed: bool) -> &'static str {
    if sealed { "aes256gcm" } else { "plaintext" }
}

fn populate(store: &Store) {
    for chunk in (0..KEYS).collect::<Vec<_>>().chunks(20_000) {
        let mut w = store.write().unwrap();
        w.apply(chunk.iter().map(|&i| (key(i), Some(value(i, 0)))))
            .unwrap();
        w.commit().unwrap();
    }
}

fn options(sealed: bool, cache_bytes: usize) -> StoreOptions {
    StoreOptions {
        keyring: sealed.then(keyring),
        cache_bytes,
        ..StoreOptions::default()
    }
}

/// Pseudo-random key indexes, the same for every run.
fn picks(n: usize) -> Vec<u32> {
    let mut rng = SplitMix64::new(0x2545_F491_4F6C_DD1D);
    (0..n).map(|_| rng.below(u64::from(KEYS)) as u32).collect()
}

fn bench_reads(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let vfs: Arc<dyn Vfs> = Arc::new(StdVfs::new());
    let mut group = c.benchmark_group("store/lookup");
    let keys = picks(4096);
    for sealed in [false, true] {
        let path = dir.path().join(format!("{}.sealkv", mode_name(sealed)));
        let (store, _) = Store::create(vfs.clone(), &path, options(sealed, 256 << 20)).unwrap();
        populate(&store);
        drop(store);
        for (name, cache) in [("warm", 256usize << 20), ("cold", 0usize)] {
            let (store, _) = Store::open(vfs.clone(), &path, options(sealed, cache)).unwrap();
            let r = store.read();
            for &k in &keys {
                r.get(&key(k)).unwrap();
            }
            let mut n = 0usize;
            group.bench_function(BenchmarkId::new(name, mode_name(sealed)), |b| {
                b.iter(|| {
                    n = (n + 1) % keys.len();
                    black_box(r.get(&key(keys[n])).unwrap())
                })
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("store/scan");
    group.throughput(Throughput::Elements(1000));
    for sealed in [false, true] {
        let path = dir.path().join(format!("{}.sealkv", mode_name(sealed)));
        let (store, _) = Store::open(vfs.clone(), &path, options(sealed, 256 << 20)).unwrap();
        let r = store.read();
        let mut n = 0usize;
        group.bench_function(BenchmarkId::new("warm_1000", mode_name(sealed)), |b| {
            b.iter(|| {
                n = (n + 1) % keys.len();
                let lo = key(keys[n].min(KEYS - 1001));
                let count = r
                    .range(Bound::Included(&lo[..]), Bound::Unbounded)
                    .take(1000)
                    .count();
                black_box(count)
            })
        });
    }
    group.finish();
}

fn bench_commits(c: &mut Criterion) {
    let mut group = c.benchmark_group("store/commit");
    for ops in [1u32, 100, 10_000] {
        group.throughput(Throughput::Elements(u64::from(ops)));
        for sealed in [false, true] {
            let sim = SimVfs::new();
            let vfs: Arc<dyn Vfs> = Arc::new(sim.clone());
            vfs.create_dir_all(Path::new("/b")).unwrap();
            let (store, _) =
                Store::create(vfs, Path::new("/b/data.sealkv"), options(sealed, 256 << 20))
                    .unwrap();
            populate(&store);
            let starts = picks(1024);
            let mut g = 1u32;
            let mut n = 0usize;
            group.bench_function(
                BenchmarkId::new(format!("sorted_{ops}"), mode_name(sealed)),
                |b| {
                    b.iter(|| {
                        n = (n + 1) % starts.len();
                        g += 1;
                        let start = starts[n].min(KEYS - ops);
                        let mut w = store.write().unwrap();
                        w.apply((start..start + ops).map(|i| (key(i), Some(value(i, g)))))
                            .unwrap();
                        black_box(w.commit().unwrap())
                    })
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, bench_reads, bench_commits);
criterion_main!(benches);
